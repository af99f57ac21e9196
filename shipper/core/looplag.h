/* Event-loop lag: how late a periodic timer fires (docs/architecture.md, "Loop lag"). */
#ifndef SP_LOOPLAG_H
#define SP_LOOPLAG_H

#include <stdint.h>

#include <uv.h>

#include "slice.h"

#define SP_LOOPLAG_PERIOD_MS 100
#define SP_LOOPLAG_NBUCKETS 6

typedef struct {
    uv_timer_t timer;
    uint64_t due_ns; /* when the timer should fire next (uv_hrtime) */
    uint64_t max_ns; /* the worst lag since start */
    uint64_t sum_ns;
    uint64_t count;
    uint64_t buckets[SP_LOOPLAG_NBUCKETS]; /* not cumulative; the last is +Inf */
} sp_looplag;

/** Counts one observation: the timer due at `due_ns` fired at `now_ns`. */
void sp_looplag_observe(sp_looplag *l, uint64_t due_ns, uint64_t now_ns);
/** Starts the unreferenced timer (it never keeps the loop alive). */
void sp_looplag_start(sp_looplag *l, uv_loop_t *loop);
void sp_looplag_close(sp_looplag *l);
/** Appends shipper_loop_lag_seconds_max and the shipper_loop_lag_seconds histogram. */
void sp_looplag_metrics(const sp_looplag *l, sp_buf *out);

#endif
