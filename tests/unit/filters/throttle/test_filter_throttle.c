/* throttle: a burst then drops, per key, the bounded key table ("other"), bytes rates, config. */
#include "../filter_unit.h"
#include "mp_pack.h"

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
    /* bytes/s: a record costs its message's and extras' bytes */
    assert_int_equal(flt_load("  - type: throttle\n    rate: 1KiB/s\n    burst: 1KiB\n"), 0);
    char big[700];
    memset(big, 'a', sizeof big);
    sp_record r = flt_rec(big, sizeof big, NULL, 0);
    assert_int_equal(flt_run(0, &r), SP_FILTER_KEEP);
    r = flt_rec(big, sizeof big, NULL, 0);
    assert_int_equal(flt_run(0, &r), SP_FILTER_DROP);
    flt_unload();
}

static void test_config(void **st)
{
    assert_int_equal(flt_load("  - type: throttle\n"), -1);
    assert_has(flt_err.msg, "rate: is required");
    assert_int_equal(flt_load("  - type: throttle\n    rate: 10\n"), -1);
    assert_int_equal(flt_load("  - type: throttle\n    rate: 0/s\n"), -1);
    assert_int_equal(flt_load("  - type: throttle\n    rate: 10/s\n    burst: lots\n"), -1);
    assert_int_equal(flt_load("  - type: throttle\n    rate: 10/s\n    action: slow\n"), -1);
    assert_has(flt_err.msg, "slow");
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
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_throttle),
                                       cmocka_unit_test(test_config)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
