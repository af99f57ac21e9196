/* Loop-lag arithmetic (looplag.c, docs/architecture.md "Loop lag"): the worst lag, the sum and
 * count, the histogram buckets, and a timer that fired early counts as no lag. */
#include "unit.h"

#include "looplag.h"

#define MS 1000000ull

static void test_observe(void **state)
{
    (void)state;
    sp_looplag l = {0};
    sp_looplag_observe(&l, 1000 * MS, 1000 * MS + 2 * MS);    /* 2 ms: le 0.005 */
    sp_looplag_observe(&l, 2000 * MS, 2000 * MS + 300 * MS);  /* 300 ms: le 0.5 */
    sp_looplag_observe(&l, 3000 * MS, 3000 * MS - 1 * MS);    /* early: 0 */
    sp_looplag_observe(&l, 4000 * MS, 4000 * MS + 9000 * MS); /* 9 s: +Inf */
    assert_int_equal(l.max_ns, 9000 * MS);
    assert_int_equal(l.sum_ns, 9302 * MS);
    assert_int_equal(l.count, 4);
    assert_int_equal(l.buckets[0], 2);
    assert_int_equal(l.buckets[3], 1);
    assert_int_equal(l.buckets[5], 1);
}

static void test_metrics(void **state)
{
    (void)state;
    sp_looplag l = {0};
    sp_looplag_observe(&l, 0, 30 * MS); /* le 0.1 */
    sp_looplag_observe(&l, 0, 1 * MS);
    sp_buf out = {0};
    sp_looplag_metrics(&l, &out);
    sp_buf_append(&out, "", 1);
    const char *s = out.base;
    assert_non_null(strstr(s, "# TYPE shipper_loop_lag_seconds_max gauge\n"
                              "shipper_loop_lag_seconds_max 0.030000\n"));
    assert_non_null(strstr(s, "shipper_loop_lag_seconds_bucket{le=\"0.005\"} 1\n"));
    assert_non_null(strstr(s, "shipper_loop_lag_seconds_bucket{le=\"0.025\"} 1\n"));
    assert_non_null(strstr(s, "shipper_loop_lag_seconds_bucket{le=\"0.1\"} 2\n"));
    assert_non_null(strstr(s, "shipper_loop_lag_seconds_bucket{le=\"+Inf\"} 2\n"));
    assert_non_null(strstr(s, "shipper_loop_lag_seconds_sum 0.031000\n"));
    assert_non_null(strstr(s, "shipper_loop_lag_seconds_count 2\n"));
    sp_buf_free(&out);
}

/* In a running loop: a callback that blocks 250 ms, due before the lag timer, delays it by at
 * least 150 ms (libuv runs expired timers in due order, so the block always comes first). */
static void block_cb(uv_timer_t *t)
{
    uv_sleep(250);
    uv_close((uv_handle_t *)t, NULL);
}

static void stop_cb(uv_timer_t *t)
{
    sp_looplag_close(t->data);
    uv_close((uv_handle_t *)t, NULL);
}

static void test_loop(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    sp_looplag l = {0};
    sp_looplag_start(&l, &loop);
    uv_timer_t block, stop;
    uv_timer_init(&loop, &block);
    uv_timer_init(&loop, &stop);
    stop.data = &l;
    uv_timer_start(&block, block_cb, 50, 0);
    uv_timer_start(&stop, stop_cb, 600, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_true(l.count >= 1);
    assert_true(l.max_ns >= 150 * MS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_observe),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
