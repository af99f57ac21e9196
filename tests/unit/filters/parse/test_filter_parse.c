/* parse: json, logfmt and regex; empty, invalid UTF-8, huge, nested, duplicate and colliding
 * keys, into/keep_original, and values that do not parse (passed unchanged, counted). */
#include "../filter_unit.h"
#include "mp_pack.h"
#include "parse_int.h"

static uint64_t unparsed(size_t i)
{
    return sp_reasons_get(&flt_d.filters[i]->results, "unparsed");
}

static void test_json_fields(void **st)
{
    assert_int_equal(flt_load("  - type: parse\n"), 0);
    const char *d =
        flt_run_msg(0, "{\"a\":1,\"b\":-2,\"c\":1.5,\"d\":true,\"e\":null,"
                       "\"f\":\"x\\\"y\\u00e9\\ud83d\\ude00\",\"g\":{\"h\":[1,{\"i\":[]}]}}");
    assert_has(d, "\"a\":1,\"b\":-2,\"c\":1.5,\"d\":true,\"e\":null,\"f\":"
                  "\"x\\\"y\xc3\xa9\xf0\x9f\x98\x80\"");
    assert_has(d, "\"g\":{\"h\":[1,{\"i\":[]}]}");
    assert_has(d, "\"message\":\"{\\\"a\\\":1"); /* keep_original: true */
    assert_int_equal(unparsed(0), 0);
    flt_unload();
}

static void test_json_not_parsed(void **st)
{
    assert_int_equal(flt_load("  - type: parse\n"), 0);
    const char *bad[] = {"",         "   ",         "plain",           "[1,2]",
                         "{\"a\":1", "{\"a\":1} x", "{\"a\":tru}",     "{\"a\":\"\x01\"}",
                         "{a:1}",    "{\"a\":01x}", "{\"a\":\"\\q\"}", "\"s\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *d = flt_run_msg(0, bad[i]);
        assert_lacks(d, "\"a\":");
    }
    assert_int_equal(unparsed(0), sizeof bad / sizeof bad[0]);
    /* Nesting past the limit: not parsed. */
    sp_buf deep = {0};
    for (int i = 0; i < SP_PARSE_JSON_DEPTH + 2; i++)
        sp_buf_printf(&deep, "{\"k%d\":", i);
    SP_BUF_LIT(&deep, "1");
    for (int i = 0; i < SP_PARSE_JSON_DEPTH + 2; i++)
        sp_buf_putc(&deep, '}');
    sp_record r = flt_rec(deep.base, deep.len, NULL, 0);
    flt_run(0, &r);
    assert_int_equal(r.nextras, 0);
    sp_buf_free(&deep);
    /* No message at all: nothing to do, not counted. */
    uint64_t before = unparsed(0);
    r = flt_rec(NULL, 0, NULL, 0);
    assert_int_equal(flt_run(0, &r), SP_FILTER_KEEP);
    assert_int_equal(unparsed(0), before);
    flt_unload();
}

static void test_json_duplicates_collisions(void **st)
{
    assert_int_equal(flt_load("  - type: parse\n"), 0);
    sp_buf ex = {0};
    tp_put_str(&ex, "a", 1);
    tp_put_str(&ex, "old", 3);
    tp_put_str(&ex, "z", 1);
    tp_put_str(&ex, "kept", 4);
    const char *m = "{\"a\":1,\"b\":{\"x\":1,\"x\":2},\"a\":3,\"message\":\"m\",\"tag\":\"t\","
                    "\"@timestamp\":\"ts\",\"container\":{}}";
    sp_record r = flt_rec(m, strlen(m), &ex, 2);
    flt_run(0, &r);
    /* The last of a repeated key wins, over the record's own extras too; keys the document has
     * itself are prefixed with "_". */
    assert_has(flt_doc, "\"z\":\"kept\"");
    assert_has(flt_doc, "\"b\":{\"x\":2},\"a\":3");
    assert_lacks(flt_doc, "\"old\"");
    assert_lacks(flt_doc, "\"a\":1");
    assert_has(flt_doc,
               "\"_message\":\"m\",\"_tag\":\"t\",\"_@timestamp\":\"ts\",\"_container\":{}");
    assert_has(flt_doc, "\"tag\":\"fwd.web-1\"");
    sp_buf_free(&ex);
    flt_unload();
}

static void test_json_invalid_utf8_huge(void **st)
{
    assert_int_equal(flt_load("  - type: parse\n    into: j\n    keep_original: false\n"), 0);
    const char *d = flt_run_msg(0, "{\"k\xff\":\"v\xc3\"}");
    assert_has(d, "\"j\":{\"k\xef\xbf\xbd\":\"v\xef\xbf\xbd\"}"); /* U+FFFD in the document */
    assert_lacks(d, "\"message\"");
    /* 4 MiB string and 100,000 members */
    sp_buf big = {0};
    SP_BUF_LIT(&big, "{\"s\":\"");
    for (int i = 0; i < 4 << 20; i++)
        sp_buf_putc(&big, 'a' + i % 26);
    SP_BUF_LIT(&big, "\"");
    for (int i = 0; i < 100000; i++)
        sp_buf_printf(&big, ",\"k%d\":%d", i, i);
    SP_BUF_LIT(&big, ",\"k5\":\"last\"}");
    sp_record r = flt_rec(big.base, big.len, NULL, 0);
    flt_run(0, &r);
    assert_int_equal(r.nextras, 1);
    assert_has(flt_doc, ",\"k99999\":99999,\"k5\":\"last\"}}"); /* the last one, in its place */
    assert_has(flt_doc, "\"k4\":4,\"k6\":6");
    assert_has(flt_doc, "\"k5\":\"last\"");
    assert_true(strlen(flt_doc) > 4u << 20);
    sp_buf_free(&big);
    flt_unload();
}

static void test_json_other_field(void **st)
{
    assert_int_equal(flt_load("  - type: parse\n    field: payload\n    keep_original: false\n"),
                     0);
    sp_buf ex = {0};
    tp_put_str(&ex, "payload", 7);
    tp_put_str(&ex, "{\"p\":1}", 7);
    sp_record r = flt_rec("msg", 3, &ex, 1);
    flt_run(0, &r);
    assert_has(flt_doc, "\"message\":\"msg\"");
    assert_has(flt_doc, "\"p\":1}");
    assert_lacks(flt_doc, "payload");
    ex.len = 0; /* not a string: unparsed */
    tp_put_str(&ex, "payload", 7);
    tp_put_uint(&ex, 5);
    r = flt_rec("msg", 3, &ex, 1);
    flt_run(0, &r);
    assert_has(flt_doc, "\"payload\":5");
    assert_int_equal(unparsed(0), 1);
    sp_buf_free(&ex);
    flt_unload();
}

static void test_logfmt(void **st)
{
    assert_int_equal(flt_load("  - type: parse\n    format: logfmt\n"), 0);
    const char *d = flt_run_msg(0, "  level=info msg=\"a \\\"quoted\\\" \\\\ value\" empty= flag "
                                   "level=warn url=http://x/?a=b\t");
    assert_has(d, "\"msg\":\"a \\\"quoted\\\" \\\\ value\",\"empty\":\"\",\"flag\":true,"
                  "\"level\":\"warn\",\"url\":\"http://x/?a=b\"");
    assert_lacks(d, "\"level\":\"info\"");
    const char *bad[] = {"",         "just some words", "=x",     "k=\"unterminated",
                         "k=\"a\"b", "k=a\"b",          "\"k\"=v"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sp_record r = flt_rec(bad[i], strlen(bad[i]), NULL, 0);
        flt_run(0, &r);
        assert_int_equal(r.nextras, 0);
    }
    assert_int_equal(unparsed(0), sizeof bad / sizeof bad[0]);
    d = flt_run_msg(0, "k\xff=v\xc3"); /* invalid UTF-8: kept, replaced in the document */
    assert_has(d, "\"k\xef\xbf\xbd\":\"v\xef\xbf\xbd\"");
    flt_unload();
}

static void test_regex(void **st)
{
    assert_int_equal(
        flt_load("  - type: parse\n    format: regex\n    into: http\n"
                 "    pattern: '^(?<method>[A-Z]+) (?<path>\\S+)(?: (?<status>\\d+))?$'\n"),
        0);
    const char *d = flt_run_msg(0, "GET /x 200");
    assert_has(d, "\"http\":{\"method\":\"GET\",\"path\":\"/x\",\"status\":\"200\"}");
    d = flt_run_msg(0, "PUT /y"); /* a group that took no part is left out */
    assert_has(d, "\"http\":{\"method\":\"PUT\",\"path\":\"/y\"}");
    d = flt_run_msg(0, "no match");
    assert_lacks(d, "http");
    assert_int_equal(unparsed(0), 1);
    flt_unload();
}

static void test_config_errors(void **st)
{
    assert_int_equal(flt_load("  - type: parse\n    format: regex\n"), -1);
    assert_has(flt_err.msg, "t.yaml:3: format: regex needs a `pattern`");
    assert_int_equal(flt_load("  - type: parse\n    format: regex\n    pattern: '(a'\n"), -1);
    assert_has(flt_err.msg, "t.yaml:4: pattern:");
    assert_int_equal(flt_load("  - type: parse\n    format: regex\n    pattern: 'a+'\n"), -1);
    assert_has(flt_err.msg, "no named group");
    assert_int_equal(flt_load("  - type: parse\n    format: yaml\n"), -1);
    assert_int_equal(flt_load("  - type: parse\n    pattern: x\n"), -1);
    assert_int_equal(flt_load("  - type: parsley\n"), -1);
    assert_has(flt_err.msg, "t.yaml:2: type: unknown filter type \"parsley\" (");
    assert_int_equal(flt_load("  - type: parse\n    bogus: 1\n"), -1);
    assert_has(flt_err.msg, "bogus");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_fields),
        cmocka_unit_test(test_json_not_parsed),
        cmocka_unit_test(test_json_duplicates_collisions),
        cmocka_unit_test(test_json_invalid_utf8_huge),
        cmocka_unit_test(test_json_other_field),
        cmocka_unit_test(test_logfmt),
        cmocka_unit_test(test_regex),
        cmocka_unit_test(test_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
