/* throttle: a burst then drops, per key, the bounded key table ("other"), bytes rates, config. */
#include "../filter_unit.h"
#include "mp_pack.h"

#include "filters.h"
#include "router.h"

static void test_throttle(void **st)
{
    assert_int_equal(flt_load("  - type: throttle\n    key: k\n    rate: 1/s\n    burst: 3\n"
                              "    max_keys: 2\n"),
                     0);
    sp_buf ex[4] = {{0}};
    for (int i = 0; i < 4; i++) {
        tp_put_str(&ex[i], "k", 1);
        tp_put_uint(&ex[i], (uint64_t)i);
    }
    /* Keys 0 and 1 have buckets of their own; 2 and 3 share "other". Within the same second,
     * each bucket lets its burst through and drops the rest. */
    int kept[4] = {0};
    for (int n = 0; n < 5; n++)
        for (int i = 0; i < 4; i++) {
            sp_record r = flt_rec("x", 1, &ex[i], 1);
            kept[i] += flt_run(0, &r) == SP_FILTER_KEEP;
        }
    assert_in_range(kept[0], 3, 4); /* 4 only if the clock ticked a second in between */
    assert_in_range(kept[1], 3, 4);
    assert_in_range(kept[2] + kept[3], 3, 4);
    sp_buf m = {0};
    flt_d.filters[0]->type->metrics(flt_d.filters[0], &m);
    sp_buf_putc(&m, 0);
    assert_has(m.base,
               "shipper_filter_throttled_total{filter=\"throttle\",class=\"key\",key=\"0\"}");
    assert_has(m.base, "class=\"other\"");
    assert_has(m.base, "shipper_filter_throttle_keys{filter=\"throttle\"} 2");
    sp_buf_free(&m);
    for (int i = 0; i < 4; i++)
        sp_buf_free(&ex[i]);
    flt_unload();
    /* bytes/s: a record costs its message's and extras' bytes. At 100 B/s the second record
     * would need 3.76 s of refill: a slow machine (ASan, load) cannot make it pass. */
    assert_int_equal(flt_load("  - type: throttle\n    rate: 100B/s\n    burst: 1KiB\n"), 0);
    char big[700];
    memset(big, 'a', sizeof big);
    sp_record r = flt_rec(big, sizeof big, NULL, 0);
    assert_int_equal(flt_run(0, &r), SP_FILTER_KEEP);
    r = flt_rec(big, sizeof big, NULL, 0);
    assert_int_equal(flt_run(0, &r), SP_FILTER_DROP);
    flt_unload();
}

/* action: slow keeps every record and pauses the record's source alone until the bucket has
 * refilled (the router's tick resumes it); without a source the record passes, counted. */
static int slow_pauses, slow_resumes;
static void slow_pause(sp_source *s)
{
    slow_pauses++;
}
static void slow_resume(sp_source *s)
{
    slow_resumes++;
}

static void test_slow(void **st)
{
    /* 1/s: the third record is over the burst unless a whole second passed (ASan, load) */
    assert_int_equal(flt_load("  - type: throttle\n    rate: 1/s\n    burst: 2\n"
                              "    action: slow\n"),
                     0);
    sp_filter *f = flt_d.filters[0];
    sp_record r = flt_rec("x", 1, NULL, 0);
    for (int i = 0; i < 3; i++) /* no router, no source: kept, counted "unslowed" */
        assert_int_equal(flt_run(0, &r), SP_FILTER_KEEP);
    assert_int_equal(f->dropped, 0);
    sp_router rt;
    sp_router_init(&rt, uv_default_loop());
    sp_input in = {.name = "forward", .router = &rt};
    sp_source src = {0};
    sp_source_add(&in, &src, slow_pause, slow_resume);
    f->router = &rt;
    rt.cur_source = &src;
    for (int i = 0; i < 5; i++) {
        r = flt_rec("x", 1, NULL, 0);
        assert_int_equal(flt_run(0, &r), SP_FILTER_KEEP); /* nothing is dropped */
    }
    assert_true(src.paused & SP_SOURCE_SLOW);
    assert_int_equal(slow_pauses, 1); /* paused once, however many records were over */
    assert_int_equal(in.sources_paused, 1);
    assert_int_equal(in.source_pauses, 1);
    uint64_t now = uv_now(rt.loop);
    assert_true(src.slow_until > now && src.slow_until <= now + 10001); /* debt <= 10 s */
    sp_fair_tick(&rt.fair, now);
    assert_int_equal(slow_resumes, 0);
    sp_fair_tick(&rt.fair, src.slow_until);
    assert_int_equal(slow_resumes, 1);
    assert_int_equal(src.paused, 0);
    assert_int_equal(in.sources_paused, 0);
    sp_buf m = {0};
    sp_filters_metrics(&flt_d, &m);
    sp_buf_putc(&m, 0);
    assert_has(m.base, "result=\"slowed\"");
    assert_has(m.base, "result=\"unslowed\"} 1");
    sp_buf_free(&m);
    sp_source_remove(&src);
    free(rt.tags);
    f->router = NULL;
    flt_unload();
}

static void test_config(void **st)
{
    assert_int_equal(flt_load("  - type: throttle\n"), -1);
    assert_has(flt_err.msg, "rate: is required");
    assert_int_equal(flt_load("  - type: throttle\n    rate: 10\n"), -1);
    assert_int_equal(flt_load("  - type: throttle\n    rate: 0/s\n"), -1);
    assert_int_equal(flt_load("  - type: throttle\n    rate: 10/s\n    burst: lots\n"), -1);
    assert_int_equal(flt_load("  - type: throttle\n    rate: 10/s\n    action: nope\n"), -1);
    assert_int_equal(flt_load("  - type: throttle\n    rate: 10/s\n    max_keys: 0\n"), -1);
    assert_int_equal(flt_load("  - type: throttle\n    rate: 10/s\n"), 0);
    sp_buf out = {0};
    sp_daemon_print(&flt_d, &out);
    sp_buf_putc(&out, 0);
    assert_has(out.base, "filters:\n  - type: throttle\n    name: throttle\n    match: \"*\"\n");
    assert_has(out.base, "    rate: 10/s\n");
    sp_buf_free(&out);
    flt_unload();
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_throttle), cmocka_unit_test(test_slow),
                                       cmocka_unit_test(test_config)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
