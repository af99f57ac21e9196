/* The /metrics body: one TYPE line per family and its samples together, however many plugin
 * instances wrote a block of the same family (Prometheus rejects a second TYPE line). */
#include "unit.h"

#include "daemon.h"

static void test_group_families(void **st)
{
    sp_buf b = {0};
    const char *in = "head 1\n"
                     "# TYPE shipper_a_total counter\n"
                     "shipper_a_total{x=\"1\"} 1\n"
                     "# TYPE shipper_h histogram\n"
                     "shipper_h_bucket{le=\"+Inf\"} 2\n"
                     "shipper_h_sum 0.5\n"
                     "shipper_h_count 2\n"
                     "# TYPE shipper_a_total counter\n"
                     "shipper_a_total{x=\"2\"} 3\n"
                     "# TYPE shipper_h histogram\n"
                     "shipper_h_count 4\n";
    sp_buf_append(&b, "keep\n", 5);
    sp_buf_append(&b, in, strlen(in));
    sp_metrics_group(&b, 5);
    const char *want = "keep\n"
                       "head 1\n"
                       "# TYPE shipper_a_total counter\n"
                       "shipper_a_total{x=\"1\"} 1\n"
                       "shipper_a_total{x=\"2\"} 3\n"
                       "# TYPE shipper_h histogram\n"
                       "shipper_h_bucket{le=\"+Inf\"} 2\n"
                       "shipper_h_sum 0.5\n"
                       "shipper_h_count 2\n"
                       "shipper_h_count 4\n";
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.base, want, b.len);
    sp_buf_free(&b);
}

static void test_group_nothing_to_do(void **st)
{
    sp_buf b = {0};
    const char *in = "# TYPE x gauge\nx 1\n# TYPE y gauge\ny 2\n";
    sp_buf_append(&b, in, strlen(in));
    sp_metrics_group(&b, 0);
    assert_int_equal(b.len, strlen(in));
    assert_memory_equal(b.base, in, b.len);
    sp_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_group_families),
                                       cmocka_unit_test(test_group_nothing_to_do)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
