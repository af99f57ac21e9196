/* select: include (all must hold), exclude (any drops), globs and /regex/, missing fields,
 * dotted paths, numbers, invalid UTF-8. */
#include "../filter_unit.h"

#include <sys/stat.h>

#include "meta.h"
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

/* container.image.name (or container.image) and container.labels.KEY (dots in KEY) from the
 * container's metadata (its config.v2.json here); a container not known, or a record without a
 * container id, has neither. */
static void test_image_and_labels(void **st)
{
    char dir[64], path[256];
    snprintf(dir, sizeof dir, "/tmp/sp_test_select_XXXXXX");
    assert_non_null(mkdtemp(dir));
    const char *id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    snprintf(path, sizeof path, "%s/%s", dir, id);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/%s/config.v2.json", dir, id);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("{\"Name\":\"/web-1\",\"Config\":{\"Image\":\"registry.example.com/team/nginx:1.25\","
          "\"Labels\":{\"app\":\"web\",\"com.example.tier\":\"debug\",\"empty\":\"\"}}}",
          fp);
    fclose(fp);
    sp_meta_reset();
    assert_int_equal(sp_meta_add_dir(dir), 0);

    assert_int_equal(flt_load("  - type: select\n    include: {container.image.name: \"*/nginx:*\"}\n"
                              "  - type: select\n    exclude: {container.labels.com.example.tier: "
                              "debug}\n"
                              "  - type: select\n    include: {container.image: \"/^redis/\"}\n"
                              "  - type: select\n    include: {container.labels.app: web, "
                              "container.labels.empty: \"\"}\n"
                              "  - type: select\n    include: {container.labels.nope: \"*\"}\n"),
                     0);
    assert_int_equal(run_with(0, "x", NULL, 0), SP_FILTER_KEEP);
    assert_int_equal(run_with(1, "x", NULL, 0), SP_FILTER_DROP);
    assert_int_equal(run_with(2, "x", NULL, 0), SP_FILTER_DROP);
    assert_int_equal(run_with(3, "x", NULL, 0), SP_FILTER_KEEP);
    assert_int_equal(run_with(4, "x", NULL, 0), SP_FILTER_DROP); /* no such label */
    sp_record r = flt_rec("x", 1, NULL, 0);
    r.container_id = SP_SLICE_LIT("fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210");
    assert_int_equal(flt_run(0, &r), SP_FILTER_DROP); /* not known: no image */
    assert_int_equal(flt_run(1, &r), SP_FILTER_KEEP);
    r.container_id = SP_SLICE_NULL;
    assert_int_equal(flt_run(0, &r), SP_FILTER_DROP);
    flt_unload();
    snprintf(path, sizeof path, "rm -rf %s", dir);
    assert_int_equal(system(path), 0);
    sp_meta_reset();
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_exclude),
                                       cmocka_unit_test(test_include),
                                       cmocka_unit_test(test_errors),
                                       cmocka_unit_test(test_image_and_labels)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
