/* The filter stage's core side (filters.c): running the filters of a tag, their metrics. */
#ifndef SP_FILTERS_H
#define SP_FILTERS_H

#include "filter.h"
#include "router.h"

struct sp_daemon;

/** Runs the filters matching `tag` from filters[from] on, in order, on `r` (which they may
 * rewrite); SP_FILTER_KEEP or SP_FILTER_DROP (counted for the filter that dropped it). */
int sp_filters_apply(sp_router *rt, size_t from, sp_slice tag, sp_record *r);
/** Appends shipper_filter_records_total and each filter's own lines. */
void sp_filters_metrics(const struct sp_daemon *d, sp_buf *out);

#endif
