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

/* Decodes {"k":<value>} with sp_parse_json; the value's MessagePack object. */
static int str_value(const char *json, size_t len, sp_buf *out, sp_mp_obj *o)
{
    sp_parse_scratch sc = {0};
    uint32_t n;
    out->len = 0;
    int rc = sp_parse_json(json, len, out, &n, &sc);
    sp_buf_free(&sc.index);
    sp_buf_free(&sc.table);
    if (rc) return rc;
    assert_int_equal(n, 1);
    const uint8_t *p = (const uint8_t *)out->base, *end = p + out->len;
    sp_mp_obj k;
    assert_int_equal(sp_mp_read(&p, end, &k), 0);
    assert_int_equal(sp_mp_read(&p, end, o), 0);
    assert_true(p == end); /* nothing after the value: the header's length was right */
    return 0;
}

/* Strings of every length around the 16-byte blocks and MessagePack's header sizes, with an
 * escape, a control character or a quote at every position: the same text as a byte-by-byte
 * reference, and control characters refused wherever they are. */
static void test_json_strings_every_position(void **st)
{
    static const size_t lens[] = {0,  1,  7,   8,   15,  16,  17,    31,    32,    33,   47,
                                  63, 64, 100, 254, 255, 256, 65534, 65535, 65536, 70000};
    sp_buf in = {0}, out = {0}, want = {0};
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        size_t len = lens[li];
        /* at == len: no special byte at all */
        for (size_t at = 0; at <= len; at += len > 300 ? len / 7 + 1 : 1) {
            for (int kind = 0; kind < 4; kind++) {
                in.len = want.len = 0;
                SP_BUF_LIT(&in, "{\"k\":\"");
                for (size_t i = 0; i < len; i++) {
                    char c = (char)('a' + i % 26);
                    if (i == at && kind == 0) { /* \" */
                        SP_BUF_LIT(&in, "\\\"");
                        sp_buf_putc(&want, '"');
                    } else if (i == at && kind == 1) { /* \u00e9 */
                        SP_BUF_LIT(&in, "\\u00e9");
                        SP_BUF_LIT(&want, "\xc3\xa9");
                    } else if (i == at && kind == 2) { /* a raw control character */
                        sp_buf_putc(&in, '\x1f');
                    } else if (i == at && kind == 3) { /* bytes >= 0x80 pass as they are */
                        sp_buf_putc(&in, '\xff');
                        sp_buf_putc(&want, '\xff');
                    } else {
                        sp_buf_putc(&in, c);
                        sp_buf_putc(&want, c);
                    }
                }
                SP_BUF_LIT(&in, "\"}");
                sp_mp_obj o;
                int rc = str_value(in.base, in.len, &out, &o);
                if (kind == 2 && at < len) {
                    assert_int_equal(rc, -1);
                    continue;
                }
                assert_int_equal(rc, 0);
                assert_int_equal(o.type, SP_MP_STR);
                assert_int_equal(o.s.len, want.len);
                assert_memory_equal(o.s.base, want.base ? want.base : "", want.len);
            }
        }
    }
    /* Unterminated, with the end inside a block or right after a backslash. */
    const char *bad[] = {"{\"k\":\"abc", "{\"k\":\"abcdefghijklmnopqrstuvwxyz",
                         "{\"k\":\"abcdefghijklmnop\\\"}", "{\"k\":\"\\"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sp_mp_obj o;
        assert_int_equal(str_value(bad[i], strlen(bad[i]), &out, &o), -1);
        assert_int_equal(out.len, 0); /* truncated back */
    }
    sp_buf_free(&in);
    sp_buf_free(&out);
    sp_buf_free(&want);
}

/* Objects of 1 to 40 members with one key repeated at every pair of positions, nested too: the
 * last value wins, in the last one's place; no other member is lost. */
static void test_json_duplicates_every_size(void **st)
{
    assert_int_equal(flt_load("  - type: parse\n    into: j\n"), 0);
    sp_buf m = {0}, want = {0};
    for (int n = 1; n <= 40; n++) {
        for (int a = 0; a < n; a++) {
            for (int b = a + 1; b<n; b += n> 12 ? 5 : 1) {
                m.len = want.len = 0;
                SP_BUF_LIT(&m, "{\"o\":{");
                SP_BUF_LIT(&want, "\"j\":{\"o\":{");
                int first = 1;
                for (int i = 0; i < n; i++) {
                    sp_buf_printf(&m, "%s\"%s%d\":%d", i ? "," : "", i == a || i == b ? "d" : "k",
                                  i == a || i == b ? 0 : i, i);
                    if (i == a) continue; /* replaced by its repeat at b */
                    sp_buf_printf(&want, "%s\"%s%d\":%d", first ? "" : ",", i == b ? "d" : "k",
                                  i == b ? 0 : i, i);
                    first = 0;
                }
                SP_BUF_LIT(&m, "},\"x\":1}");
                SP_BUF_LIT(&want, "},\"x\":1}");
                sp_buf_putc(&want, 0);
                sp_record r = flt_rec(m.base, m.len, NULL, 0);
                flt_run(0, &r);
                assert_has(flt_doc, want.base);
            }
        }
    }
    assert_int_equal(unparsed(0), 0);
    sp_buf_free(&m);
    sp_buf_free(&want);
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

/* After parse, the filters down the chain find the decoded pairs from the places the decoder
 * noted (sp_extras_known): the same pairs a walk finds, for objects of 1 to 40 members, nested
 * objects and arrays above them on the decoder's stack, a key repeated at every pair of places
 * (the pairs moved: walked instead), an empty object, and after a line that did not parse. */
static void test_json_places_same_as_walk(void **st)
{
    assert_int_equal(flt_load("  - type: parse\n"), 0);
    sp_buf m = {0};
    for (int n = 0; n <= 40; n++) {
        for (int a = -1; a < n; a++) {
            for (int b = a + 1; b<n; b += n> 12 ? 7 : 1) {
                m.len = 0;
                sp_buf_putc(&m, '{');
                for (int i = 0; i < n; i++) {
                    int dup = a >= 0 && (i == a || i == b);
                    sp_buf_printf(&m, "%s\"%s%d\":", i ? "," : "", dup ? "d" : "key", dup ? 0 : i);
                    if (i % 3 == 1)
                        sp_buf_printf(&m, "{\"o\":{\"p\":[%d,{\"q\":\"r\"}],\"p\":1}}", i);
                    else if (i % 3 == 2)
                        SP_BUF_LIT(&m, "\"t\\u00e9xt\"");
                    else
                        sp_buf_printf(&m, "%d", i * 1000);
                }
                sp_buf_putc(&m, '}');
                for (int bad = 0; bad < 2; bad++) {
                    sp_record r = flt_rec(m.base, bad ? m.len - 1 : m.len, NULL, 0);
                    sp_extras_pass(1);
                    sp_filter *f = flt_d.filters[0];
                    assert_int_equal(f->type->apply(f, &r, SP_SLICE_LIT("t")), SP_FILTER_KEEP);
                    const sp_extra *x;
                    uint32_t got = sp_extras_pairs(&r, &x);
                    const uint8_t *p = (const uint8_t *)r.extras.base;
                    const uint8_t *end = p + r.extras.len;
                    uint32_t want = 0;
                    for (; want < r.nextras; want++) {
                        sp_slice k, v;
                        if (sp_extras_next(&p, end, &k, &v)) break;
                        if (k.base != x[want].key.base || k.len != x[want].key.len ||
                            v.base != x[want].val.base || v.len != x[want].val.len)
                            fail_msg("%.*s: pair %u differs from the walk", (int)m.len, m.base,
                                     want);
                    }
                    assert_int_equal(got, want);
                    assert_int_equal(want, bad ? 0 : (uint32_t)(a >= 0 && b < n ? n - 1 : n));
                    sp_extras_pass(0);
                }
                if (a < 0) break;
            }
        }
    }
    sp_buf_free(&m);
    flt_unload();
}

/* time_key: the record's time (the document's @timestamp, with the digits that came) from a
 * decoded field, dropped unless time_keep; level_key: normalised in place. A time or level that
 * does not read is kept as it came, counted, and the record keeps its own time. */
static void test_time_and_level(void **st)
{
    assert_int_equal(flt_load("  - type: parse\n    time_key: ts\n    level_key: level\n"), 0);
    const char *d =
        flt_run_msg(0, "{\"ts\":\"2026-11-29T06:09:33.123+02:00\",\"level\":\"WARNING\","
                       "\"msg\":\"disk\"}");
    assert_has(d, "\"@timestamp\":\"2026-11-29T04:09:33.123Z\"");
    assert_has(d, "\"level\":\"warn\",\"msg\":\"disk\"");
    assert_lacks(d, "\"ts\"");
    d = flt_run_msg(0, "{\"ts\":\"yesterday\",\"level\":\"LOUD\"}");
    assert_has(d, "\"@timestamp\":\"2023-11-14T22:13:20Z\""); /* flt_rec's own time */
    assert_has(d, "\"ts\":\"yesterday\",\"level\":\"LOUD\"");
    assert_int_equal(sp_reasons_get(&flt_d.filters[0]->results, "time_unparsed"), 1);
    assert_int_equal(sp_reasons_get(&flt_d.filters[0]->results, "level_unknown"), 1);
    d = flt_run_msg(0, "{\"level\":30,\"a\":1}"); /* pino's info; no time field: not counted */
    assert_has(d, "\"level\":\"info\",\"a\":1");
    assert_int_equal(sp_reasons_get(&flt_d.filters[0]->results, "time_unparsed"), 1);
    flt_unload();

    assert_int_equal(flt_load("  - type: parse\n    format: logfmt\n    time_key: t\n"
                              "    time_format: epoch_ms\n    time_keep: true\n    into: j\n"),
                     0);
    d = flt_run_msg(0, "t=1795925373042 lvl=info");
    assert_has(d, "\"@timestamp\":\"2026-11-29T04:09:33.042Z\"");
    assert_has(d, "\"j\":{\"t\":\"1795925373042\",\"lvl\":\"info\"}");
    flt_unload();

    /* with fields of its own (the merge), and a regex */
    assert_int_equal(flt_load("  - type: parse\n    format: regex\n"
                              "    pattern: '^(?<when>\\S+ \\S+) (?<sev>\\w+) (?<rest>.*)$'\n"
                              "    time_key: when\n    time_format: '%Y/%m/%d %H:%M:%S'\n"
                              "    level_key: sev\n"),
                     0);
    sp_buf x = {0};
    tp_put_str(&x, "app", 3);
    tp_put_str(&x, "web", 3);
    const char *line = "2026/11/29 04:09:33 E failed";
    sp_record r = flt_rec(line, strlen(line), &x, 1);
    flt_run(0, &r);
    assert_has(flt_doc, "\"@timestamp\":\"2026-11-29T04:09:33Z\"");
    assert_has(flt_doc, "\"app\":\"web\"");
    assert_has(flt_doc, "\"sev\":\"error\"");
    assert_has(flt_doc, "\"rest\":\"failed\"");
    assert_lacks(flt_doc, "\"when\"");
    sp_buf_free(&x);
    flt_unload();
}

/* The filters after parse see the fields as rewritten for time_key and level_key. */
static void test_time_level_places(void **st)
{
    assert_int_equal(flt_load("  - type: parse\n    time_key: ts\n    level_key: level\n"), 0);
    const char *m = "{\"a\":1,\"ts\":\"2026-11-29T04:09:33Z\",\"level\":\"E\",\"b\":[2]}";
    sp_record r = flt_rec(m, strlen(m), NULL, 0);
    sp_extras_pass(1);
    sp_filter *f = flt_d.filters[0];
    assert_int_equal(f->type->apply(f, &r, SP_SLICE_LIT("t")), SP_FILTER_KEEP);
    assert_int_equal(r.nextras, 3);
    sp_slice v;
    assert_false(sp_extras_find(&r, SP_SLICE_LIT("ts"), &v));
    assert_true(sp_extras_find(&r, SP_SLICE_LIT("level"), &v));
    assert_int_equal(v.len, 6); /* fixstr "error" */
    assert_memory_equal(v.base + 1, "error", 5);
    assert_true(sp_extras_find(&r, SP_SLICE_LIT("b"), &v));
    sp_extras_pass(0);
    flt_unload();
}

static void test_time_config_errors(void **st)
{
    assert_int_equal(flt_load("  - type: parse\n    time_key: t\n    time_format: iso\n"), -1);
    assert_non_null(strstr(flt_err.msg, "time_format"));
    assert_int_equal(flt_load("  - type: parse\n    time_key: \"\"\n"), -1);
    assert_non_null(strstr(flt_err.msg, "time_key"));
    assert_int_equal(flt_load("  - type: parse\n    level_key: \"\"\n"), -1);
    flt_unload();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_fields),
        cmocka_unit_test(test_json_not_parsed),
        cmocka_unit_test(test_json_duplicates_collisions),
        cmocka_unit_test(test_json_invalid_utf8_huge),
        cmocka_unit_test(test_json_strings_every_position),
        cmocka_unit_test(test_json_duplicates_every_size),
        cmocka_unit_test(test_json_other_field),
        cmocka_unit_test(test_json_places_same_as_walk),
        cmocka_unit_test(test_time_and_level),
        cmocka_unit_test(test_time_level_places),
        cmocka_unit_test(test_time_config_errors),
        cmocka_unit_test(test_logfmt),
        cmocka_unit_test(test_regex),
        cmocka_unit_test(test_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
