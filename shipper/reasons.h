/*
 * A counter by reason: the table behind a `{...,reason="..."}` metric (an input's errors; the
 * outputs' rejections and failures can move to it). Reasons are counted in the order they first
 * appear; past SP_REASONS_MAX distinct ones, the rest are counted as "other".
 */
#ifndef SP_REASONS_H
#define SP_REASONS_H

#include <stdint.h>

#include "slice.h"

#define SP_REASONS_MAX 16

typedef struct {
    struct {
        char name[64]; /* "" : unused; a Prometheus label value that needs no escaping */
        uint64_t n;
    } slot[SP_REASONS_MAX];
    uint64_t other; /* reasons past the table's SP_REASONS_MAX */
} sp_reasons;

/** Counts one `reason`. Characters other than [A-Za-z0-9_] become '_' (it is a label value);
 * a reason is cut to 63 characters. */
void sp_reasons_add(sp_reasons *t, const char *reason);
/** The count of `reason` (as it was passed to sp_reasons_add); 0 when never counted. */
uint64_t sp_reasons_get(const sp_reasons *t, const char *reason);
/** Appends `metric{label="value",reason="..."} n` for each reason, then reason="other" if any
 * were counted so. */
void sp_reasons_render(const sp_reasons *t, sp_buf *out, const char *metric, const char *label,
                       const char *value);

#endif
