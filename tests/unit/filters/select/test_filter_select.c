/* select: include (all must hold), exclude (any drops), globs and /regex/, missing fields,
 * dotted paths, numbers, invalid UTF-8. */
#include "../filter_unit.h"
#include "mp_pack.h"

static int run_with(size_t i, const char *msg, const sp_buf *ex, uint32_t n)
{
    sp_record r = flt_rec(msg, strlen(msg), ex, n);
    return flt_run(i, &r);
}

static void test_exclude(void **st)
{
    assert_int_equal(flt_load("  - type: select\n    exclude: {container.name: \"web-*\", "
                              "message: \"/^DEBUG\\\\b/\"}\n"
                              "  - type: select\n    exclude: {stream: stderr, tag: \"x.*\"}\n"),
                     0);
    assert_int_equal(run_with(0, "hello", NULL, 0), SP_FILTER_DROP); /* web-1 */
    assert_int_equal(run_with(1, "hello", NULL, 0), SP_FILTER_KEEP); /* stdout, fwd.web-1 */
    flt_unload();
    assert_int_equal(flt_load("  - type: select\n    exclude: {message: \"/^DEBUG\\\\b/\"}\n"), 0);
    assert_int_equal(run_with(0, "DEBUG x", NULL, 0), SP_FILTER_DROP);
    assert_int_equal(run_with(0, "DEBUGGER x", NULL, 0), SP_FILTER_KEEP);
    assert_int_equal(run_with(0, "", NULL, 0), SP_FILTER_KEEP);
    assert_int_equal(run_with(0, "\xff\xfe DEBUG", NULL, 0), SP_FILTER_KEEP); /* invalid UTF-8 */
    sp_record r = flt_rec(NULL, 0, NULL, 0); /* no message: an exclude cannot match */
    assert_int_equal(flt_run(0, &r), SP_FILTER_KEEP);
    flt_unload();
}

static void test_include(void **st)
{
    assert_int_equal(flt_load("  - type: select\n    include: {level: \"/^(warn|error)$/\", "
                              "user.id: \"7\", code: \"5??\"}\n"),
                     0);
    sp_buf ex = {0};
    tp_put_str(&ex, "level", 5);
    tp_put_str(&ex, "warn", 4);
    tp_put_str(&ex, "user", 4);
    tp_put_map(&ex, 1);
    tp_put_str(&ex, "id", 2);
    tp_put_uint(&ex, 7);
    tp_put_str(&ex, "code", 4);
    tp_put_uint(&ex, 503);
    assert_int_equal(run_with(0, "m", &ex, 3), SP_FILTER_KEEP);
    assert_int_equal(run_with(0, "m", &ex, 2), SP_FILTER_DROP); /* code missing */
    assert_int_equal(run_with(0, "m", NULL, 0), SP_FILTER_DROP);
    ex.len = 0;
    tp_put_str(&ex, "level", 5);
    tp_put_str(&ex, "info", 4);
    assert_int_equal(run_with(0, "m", &ex, 1), SP_FILTER_DROP);
    sp_buf_free(&ex);
    flt_unload();
}

static void test_errors(void **st)
{
    assert_int_equal(flt_load("  - type: select\n"), -1);
    assert_has(flt_err.msg, "needs `include` or `exclude`");
    assert_int_equal(flt_load("  - type: select\n    include: {a: \"/(x/\"}\n"), -1);
    assert_has(flt_err.msg, "t.yaml:3: include: a: regex /(x/:");
    flt_unload();
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_exclude),
                                       cmocka_unit_test(test_include),
                                       cmocka_unit_test(test_errors)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
