/* The filter stage's core side (filters.c): running the filters of a tag, their metrics. */
#ifndef SP_FILTERS_H
#define SP_FILTERS_H

#include "filter.h"
#include "input.h"
#include "router.h"

struct sp_daemon;

/** Runs the filters matching `tag` from filters[from] on, in order, on `r` (which they may
 * rewrite); SP_FILTER_KEEP or SP_FILTER_DROP (counted for the filter that dropped it). */
int sp_filters_apply(sp_router *rt, size_t from, sp_slice tag, sp_record *r);
/** At shutdown: every filter emits what it holds (multiline groups), before the last flush. */
void sp_filters_drain(sp_router *rt);
/** Writes `r` into the input's batch `b` (plugin.c); sp_filter_emit inside `apply` uses it. */
void sp_input_batch_write(sp_input *in, sp_input_batch *b, sp_slice tag, const sp_record *r);
/** Appends shipper_filter_records_total and each filter's own lines. */
void sp_filters_metrics(const struct sp_daemon *d, sp_buf *out);

#endif
