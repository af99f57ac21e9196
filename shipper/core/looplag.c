/* Event-loop lag (docs/architecture.md, "Loop lag"): a one-shot timer, armed again from its
 * callback, due SP_LOOPLAG_PERIOD_MS after it was armed; how late it runs is the time the loop
 * spent in other callbacks (or blocked) past that point. */
#include "looplag.h"

static const double sp_looplag_bounds[SP_LOOPLAG_NBUCKETS - 1] = {0.005, 0.025, 0.1, 0.5, 2.5};

void sp_looplag_observe(sp_looplag *l, uint64_t due_ns, uint64_t now_ns)
{
    uint64_t lag = now_ns > due_ns ? now_ns - due_ns : 0;
    if (lag > l->max_ns) l->max_ns = lag;
    l->sum_ns += lag;
    l->count++;
    int b = 0;
    while (b < SP_LOOPLAG_NBUCKETS - 1 && (double)lag / 1e9 > sp_looplag_bounds[b])
        b++;
    l->buckets[b]++;
}

static void sp_looplag_cb(uv_timer_t *t);

static void sp_looplag_arm(sp_looplag *l)
{
    uv_update_time(l->timer.loop); /* the timer counts from now, not from the iteration start */
    l->due_ns = uv_hrtime() + (uint64_t)SP_LOOPLAG_PERIOD_MS * 1000000;
    uv_timer_start(&l->timer, sp_looplag_cb, SP_LOOPLAG_PERIOD_MS, 0);
}

static void sp_looplag_cb(uv_timer_t *t)
{
    sp_looplag *l = t->data;
    sp_looplag_observe(l, l->due_ns, uv_hrtime());
    sp_looplag_arm(l);
}

void sp_looplag_start(sp_looplag *l, uv_loop_t *loop)
{
    uv_timer_init(loop, &l->timer);
    l->timer.data = l;
    uv_unref((uv_handle_t *)&l->timer);
    sp_looplag_arm(l);
}

void sp_looplag_close(sp_looplag *l)
{
    if (l->timer.loop && !uv_is_closing((uv_handle_t *)&l->timer))
        uv_close((uv_handle_t *)&l->timer, NULL);
}

void sp_looplag_metrics(const sp_looplag *l, sp_buf *out)
{
    sp_buf_printf(out,
                  "# TYPE shipper_loop_lag_seconds_max gauge\n"
                  "shipper_loop_lag_seconds_max %.6f\n"
                  "# TYPE shipper_loop_lag_seconds histogram\n",
                  (double)l->max_ns / 1e9);
    uint64_t cum = 0;
    for (int b = 0; b < SP_LOOPLAG_NBUCKETS - 1; b++) {
        cum += l->buckets[b];
        sp_buf_printf(out, "shipper_loop_lag_seconds_bucket{le=\"%g\"} %llu\n",
                      sp_looplag_bounds[b], (unsigned long long)cum);
    }
    sp_buf_printf(out,
                  "shipper_loop_lag_seconds_bucket{le=\"+Inf\"} %llu\n"
                  "shipper_loop_lag_seconds_sum %.6f\nshipper_loop_lag_seconds_count %llu\n",
                  (unsigned long long)l->count, (double)l->sum_ns / 1e9,
                  (unsigned long long)l->count);
}
