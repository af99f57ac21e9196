/* modify: remove, rename, copy, add (only when absent), set; message as a field; ${ENV}. */
#include "../filter_unit.h"
#include "mp_pack.h"

static void test_modify(void **st)
{
    setenv("FLT_UNIT_ENV", "prod", 1);
    assert_int_equal(flt_load("  - type: modify\n    remove: [secret, message]\n"
                              "    rename: {lvl: level, message: original}\n"
                              "    copy: {level: severity}\n"
                              "    add: {env: \"${FLT_UNIT_ENV}\", keep: no, level: dropped}\n"
                              "    set: {forced: yes}\n"),
                     0);
    sp_buf ex = {0};
    tp_put_str(&ex, "secret", 6);
    tp_put_str(&ex, "s3", 2);
    tp_put_str(&ex, "lvl", 3);
    tp_put_str(&ex, "info", 4);
    tp_put_str(&ex, "keep", 4);
    tp_put_uint(&ex, 1);
    tp_put_str(&ex, "forced", 6);
    tp_put_str(&ex, "old", 3);
    sp_record r = flt_rec("text", 4, &ex, 4);
    assert_int_equal(flt_run(0, &r), SP_FILTER_KEEP);
    assert_lacks(flt_doc, "secret");
    assert_lacks(flt_doc, "\"message\"");
    assert_lacks(flt_doc, "lvl");
    assert_has(flt_doc, "\"keep\":1");         /* add does not overwrite */
    assert_has(flt_doc, "\"env\":\"prod\"");   /* ${ENV} */
    assert_has(flt_doc, "\"level\":\"info\""); /* renamed, and add left it */
    assert_lacks(flt_doc, "dropped");
    assert_lacks(flt_doc, "severity"); /* copy reads the record as it came: no `level` yet */
    assert_has(flt_doc, "\"forced\":\"yes\"");
    assert_lacks(flt_doc, "old");
    assert_has(flt_doc, "\"original\":\"text\"");
    /* Empty record: only what add/set make. */
    r = flt_rec(NULL, 0, NULL, 0);
    flt_run(0, &r);
    assert_has(flt_doc, "\"tag\":\"fwd.web-1\",\"env\":\"prod\",\"keep\":\"no\",\"level\":"
                        "\"dropped\",\"forced\":\"yes\"}");
    sp_buf_free(&ex);
    flt_unload();
    assert_int_equal(flt_load("  - type: modify\n"), -1);
    assert_has(flt_err.msg, "needs remove, rename, copy, add or set");
    unsetenv("FLT_UNIT_ENV_MISSING");
    assert_int_equal(flt_load("  - type: modify\n    add: {a: \"${FLT_UNIT_ENV_MISSING}\"}\n"), -1);
    /* 64 add entries at most (a bit each), and 64 rename + copy */
    sp_buf y = {0};
    for (int n = 64; n <= 65; n++) {
        y.len = 0;
        sp_buf_printf(&y, "  - type: modify\n    add: {");
        for (int i = 0; i < n; i++)
            sp_buf_printf(&y, "%sk%d: v", i ? ", " : "", i);
        sp_buf_printf(&y, "}\n");
        sp_buf_putc(&y, 0);
        assert_int_equal(flt_load(y.base), n == 64 ? 0 : -1);
    }
    assert_has(flt_err.msg, "at most 64");
    sp_buf_free(&y);
    flt_unload();
}

/* Keys that collide: a renamed, copied, added or set key replaces the record's own field of
 * that name (once); a key the record repeats is read at its last value and written once. */
static void test_modify_collisions(void **st)
{
    assert_int_equal(flt_load("  - type: modify\n    rename: {a: x, s: t}\n    copy: {b: c}\n"
                              "    add: {b: no}\n    set: {d: new}\n"),
                     0);
    sp_buf ex = {0};
    const char *kv[] = {"a", "1", "t",  "old", "s", "2", "c",  "oldc", "b",
                        "3", "d", "d1", "a",   "4", "d", "d2", "e",    "5"};
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        tp_put_str(&ex, kv[i], strlen(kv[i]));
    for (int round = 0; round < 2; round++) { /* the second with the filter's buffers in use */
        sp_record r = flt_rec("m", 1, &ex, 9);
        assert_int_equal(flt_run(0, &r), SP_FILTER_KEEP);
        assert_has(flt_doc, "\"tag\":\"fwd.web-1\",\"b\":\"3\",\"e\":\"5\",\"x\":\"4\",\"t\":\"2\","
                            "\"c\":\"3\",\"d\":\"new\"}");
        assert_int_equal(r.nextras, 6);
    }
    flt_unload();
    /* No key in common: the pairs as they are; a key the record repeats still written once. */
    assert_int_equal(flt_load("  - type: modify\n    rename: {a: x}\n    set: {z: new}\n"), 0);
    ex.len = 0;
    const char *kv2[] = {"q", "1", "a", "2", "w", "3"};
    for (size_t i = 0; i < sizeof kv2 / sizeof kv2[0]; i++)
        tp_put_str(&ex, kv2[i], strlen(kv2[i]));
    sp_record r = flt_rec("m", 1, &ex, 3);
    flt_run(0, &r);
    assert_has(flt_doc, "\"tag\":\"fwd.web-1\",\"q\":\"1\",\"w\":\"3\",\"x\":\"2\",\"z\":\"new\"}");
    assert_int_equal(r.nextras, 4);
    tp_put_str(&ex, "q", 1);
    tp_put_str(&ex, "4", 1);
    r = flt_rec("m", 1, &ex, 4);
    flt_run(0, &r);
    assert_has(flt_doc, "\"tag\":\"fwd.web-1\",\"w\":\"3\",\"q\":\"4\",\"x\":\"2\",\"z\":\"new\"}");
    assert_int_equal(r.nextras, 4);
    sp_buf_free(&ex);
    flt_unload();
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_modify),
                                       cmocka_unit_test(test_modify_collisions)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
