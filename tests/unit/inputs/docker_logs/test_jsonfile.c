/* The json-file line parser: escapes, surrogates, partial lines, attrs, time, corrupt input. */
#include "unit.h"

#include "jsonfile.h"
#include "mp.h"

static sp_buf scratch, attrs;

static int parse(const char *s, sp_jsonfile_line *l)
{
    return sp_jsonfile_parse(s, strlen(s), l, &scratch, &attrs);
}

static void assert_slice(sp_slice s, const char *want, size_t n)
{
    assert_int_equal(s.len, n);
    assert_memory_equal(s.base, want, n);
}
#define ASSERT_SLICE(s, lit) assert_slice((s), "" lit, sizeof(lit) - 1)

static void test_plain(void **st)
{
    sp_jsonfile_line l;
    assert_int_equal(parse("{\"log\":\"hello world\\n\",\"stream\":\"stdout\","
                           "\"time\":\"2026-11-29T04:09:33.123456789Z\"}",
                           &l),
                     0);
    ASSERT_SLICE(l.log, "hello world");
    ASSERT_SLICE(l.stream, "stdout");
    assert_int_equal(l.partial, 0);
    assert_int_equal(l.sec, 1795925373ULL);
    assert_int_equal(l.nsec, 123456789);
    assert_int_equal(l.nattrs, 0);
}

static void test_escapes(void **st)
{
    sp_jsonfile_line l;
    assert_int_equal(parse("{\"log\":\"a\\\"b\\\\c\\/d\\te\\u003cf\\u0026\\u0000g\\ufffd\\n\","
                           "\"stream\":\"stderr\",\"time\":\"2026-01-01T00:00:00Z\"}",
                           &l),
                     0);
    ASSERT_SLICE(l.log, "a\"b\\c/d\te<f&\0g\xef\xbf\xbd");
    ASSERT_SLICE(l.stream, "stderr");
    assert_int_equal(l.nsec, 0);
    assert_int_equal(l.partial, 0);
}

static void test_surrogates(void **st)
{
    sp_jsonfile_line l;
    /* a pair; a lone high; a lone low; a high followed by a non-surrogate escape */
    assert_int_equal(parse("{\"log\":\"\\ud83d\\ude00|\\ud83dx|\\ude00|\\ud83d\\u0041\\n\","
                           "\"time\":\"2026-01-01T00:00:00.5Z\"}",
                           &l),
                     0);
    ASSERT_SLICE(l.log, "\xf0\x9f\x98\x80|\xef\xbf\xbdx|\xef\xbf\xbd|\xef\xbf\xbd"
                        "A");
    assert_int_equal(l.nsec, 500000000);
    assert_null(l.stream.base);
}

static void test_partial(void **st)
{
    sp_jsonfile_line l;
    assert_int_equal(
        parse("{\"log\":\"piece\",\"stream\":\"stdout\",\"time\":\"2026-01-01T00:00:00Z\"}", &l),
        0);
    assert_int_equal(l.partial, 1);
    ASSERT_SLICE(l.log, "piece");
    /* an escaped newline in the middle does not end the line */
    assert_int_equal(
        parse("{\"log\":\"a\\nb\",\"stream\":\"stdout\",\"time\":\"2026-01-01T00:00:00Z\"}", &l),
        0);
    assert_int_equal(l.partial, 1);
    ASSERT_SLICE(l.log, "a\nb");
    /* an empty line */
    assert_int_equal(parse("{\"log\":\"\\n\",\"time\":\"2026-01-01T00:00:00Z\"}", &l), 0);
    assert_int_equal(l.partial, 0);
    assert_int_equal(l.log.len, 0);
}

static void test_attrs(void **st)
{
    sp_jsonfile_line l;
    assert_int_equal(parse("{\"log\":\"x\\n\",\"stream\":\"stdout\",\"attrs\":{\"app\":\"web\","
                           "\"n\\u00e9\":\"v\\\"\",\"num\":5},\"time\":\"2026-01-01T00:00:00Z\"}",
                           &l),
                     0);
    assert_int_equal(l.nattrs, 2);
    const uint8_t *p = (const uint8_t *)attrs.base, *end = p + attrs.len;
    sp_mp_obj o;
    const char *want[] = {"app", "web", "n\xc3\xa9", "v\""};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(sp_mp_read(&p, end, &o), 0);
        assert_int_equal(o.type, SP_MP_STR);
        assert_slice(o.s, want[i], strlen(want[i]));
    }
    assert_ptr_equal(p, end);
}

static void test_order_and_unknown(void **st)
{
    sp_jsonfile_line l;
    assert_int_equal(parse(" { \"time\" : \"2026-01-01T01:00:00+01:00\" , \"x\":[1,{\"a\":null},"
                           "true,-1.5e3,\"s\\\"\"], \"log\" : \"y\\n\" } ",
                           &l),
                     0);
    ASSERT_SLICE(l.log, "y");
    assert_int_equal(l.sec, 1767225600ULL);
}

static void test_corrupt(void **st)
{
    sp_jsonfile_line l;
    const char *bad[] = {
        "",
        "{",
        "{}",
        "not json",
        "{\"log\":\"x\\n\"}",                                           /* no time */
        "{\"time\":\"2026-01-01T00:00:00Z\"}",                          /* no log */
        "{\"log\":\"x\\q\",\"time\":\"2026-01-01T00:00:00Z\"}",         /* bad escape */
        "{\"log\":\"x\\u12\",\"time\":\"2026-01-01T00:00:00Z\"}",       /* short \u */
        "{\"log\":\"x\\n\",\"time\":\"2026-13-01T00:00:00Z\"}",         /* bad month */
        "{\"log\":\"x\\n\",\"time\":\"yesterday\"}",                    /* bad time */
        "{\"log\":\"x\\n\",\"time\":\"2026-01-01T00:00:00Z\"} x",       /* trailing bytes */
        "{\"log\":\"x\\n\",\"stream\":\"std",                           /* truncated */
        "{\"log\":\"unterminated\\n,\"time\":\"2026-01-01T00:00:00Z\"", /* truncated */
        "{\"log\":\"x\\n\",\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]"
        "]"
        "]]]]]]]]]]]]]]],\"time\":\"2026-01-01T00:00:00Z\"}", /* too deep */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (parse(bad[i], &l) != SP_JF_ECORRUPT) fail_msg("accepted: %s", bad[i]);
    }
}

static void test_time(void **st)
{
    uint64_t s;
    uint32_t ns;
    assert_int_equal(sp_rfc3339_parse("1970-01-01T00:00:00Z", 20, &s, &ns), 0);
    assert_int_equal(s, 0);
    assert_int_equal(sp_rfc3339_parse("2000-02-29T12:34:56.000000001Z", 30, &s, &ns), 0);
    assert_int_equal(s, 951827696ULL);
    assert_int_equal(ns, 1);
    /* more than nine digits: the rest is ignored */
    assert_int_equal(sp_rfc3339_parse("2000-02-29T12:34:56.1234567891Z", 31, &s, &ns), 0);
    assert_int_equal(ns, 123456789);
    /* past 9999-12-31T23:59:59Z (only a negative offset gets there): clamped to that second */
    assert_int_equal(sp_rfc3339_parse("9999-12-31T23:59:59Z", 20, &s, &ns), 0);
    assert_int_equal(s, 253402300799ULL);
    assert_int_equal(sp_rfc3339_parse("9999-12-31T23:00:00.5-02:00", 27, &s, &ns), 0);
    assert_int_equal(s, 253402300799ULL);
}

/* Every escape kind at every offset across two 16-byte blocks of the unescaper, and with the
 * string ending right at the end of the line (the read buffer's end: the line is copied to an
 * allocation of its exact size, so a read past it is caught under ASan). */
static void test_escape_blocks(void **st)
{
    static const struct {
        const char *esc, *raw;
    } kinds[] = {
        {"\\\"", "\""},
        {"\\\\", "\\"},
        {"\\/", "/"},
        {"\\n", "\n"},
        {"\\t", "\t"},
        {"\\u001b", "\x1b"},
        {"\\u003c", "<"},
        {"\\u00e9", "\xc3\xa9"},
        {"\\u00FF", "\xc3\xbf"},
        {"\\u2028", "\xe2\x80\xa8"},
        {"\\ud83d\\ude00", "\xf0\x9f\x98\x80"},
        {"\\udc00", "\xef\xbf\xbd"},
        {"\x01", "\x01"}, /* a raw control: tolerated */
    };
    char line[320], want[160], text[64], gap[64], tail[64];
    memset(text, 'a', sizeof text);
    memset(gap, 'b', sizeof gap);
    memset(tail, 'z', sizeof tail);
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        /* `at` plain bytes, the escape, `g` plain bytes, \u001b, `t` plain bytes, the quote: the
         * unescaper's blocks start after each escape, so `g` and `t` put the next backslash and
         * the closing quote at every offset of a block */
        for (int at = 0; at < 20; at++) {
            for (int g = 0; g < 36; g++) {
                int t = (g * 7 + at) % 36;
                for (int last = 0; last < 2; last++) {
                    int n;
                    if (last) /* "log" is the last member: its quote is 2 bytes from the end */
                        n = snprintf(line, sizeof line,
                                     "{\"time\":\"2026-01-01T00:00:00Z\",\"log\":\"%.*s%s%.*s"
                                     "\\u001b%.*s\"}",
                                     at, text, kinds[k].esc, g, gap, t, tail);
                    else
                        n = snprintf(line, sizeof line,
                                     "{\"log\":\"%.*s%s%.*s\\u001b%.*s\\n\",\"stream\":\"stdout\","
                                     "\"time\":\"2026-01-01T00:00:00Z\"}",
                                     at, text, kinds[k].esc, g, gap, t, tail);
                    size_t rl = strlen(kinds[k].raw), wl = 0;
                    memcpy(want, text, (size_t)at);
                    wl += (size_t)at;
                    memcpy(want + wl, kinds[k].raw, rl);
                    wl += rl;
                    memcpy(want + wl, gap, (size_t)g);
                    wl += (size_t)g;
                    want[wl++] = '\x1b';
                    memcpy(want + wl, tail, (size_t)t);
                    wl += (size_t)t;
                    char *copy = malloc((size_t)n);
                    memcpy(copy, line, (size_t)n);
                    sp_jsonfile_line l;
                    if (sp_jsonfile_parse(copy, (size_t)n, &l, &scratch, &attrs))
                        fail_msg("rejected: %s", line);
                    if (l.log.len != wl || memcmp(l.log.base, want, wl))
                        fail_msg("wrong log for %s", line);
                    assert_int_equal(l.partial, last);
                    free(copy);
                    if (at > 1) continue;
                    /* every cut of the line is corrupt, and read only inside the cut */
                    for (int cut = 0; cut < n; cut++) {
                        char *c2 = malloc((size_t)cut + 1);
                        memcpy(c2, line, (size_t)cut);
                        if (sp_jsonfile_parse(c2, (size_t)cut, &l, &scratch, &attrs) == 0)
                            fail_msg("accepted a cut at %d of %s", cut, line);
                        free(c2);
                    }
                }
            }
        }
    }
}

/* Lines of one second share the date and time: a remembered prefix must not leak a wrong second
 * or offset into the next line. */
static void test_time_same_second(void **st)
{
    uint64_t s;
    uint32_t ns;
    assert_int_equal(sp_rfc3339_parse("2026-11-29T04:09:33.1Z", 22, &s, &ns), 0);
    assert_int_equal(s, 1795925373ULL);
    assert_int_equal(ns, 100000000);
    assert_int_equal(sp_rfc3339_parse("2026-11-29T04:09:33.25Z", 23, &s, &ns), 0);
    assert_int_equal(s, 1795925373ULL);
    assert_int_equal(ns, 250000000);
    assert_int_equal(sp_rfc3339_parse("2026-11-29T04:09:33Z", 20, &s, &ns), 0);
    assert_int_equal(s, 1795925373ULL);
    assert_int_equal(ns, 0);
    assert_int_equal(sp_rfc3339_parse("2026-11-29T04:09:33.5+01:00", 27, &s, &ns), 0);
    assert_int_equal(s, 1795925373ULL - 3600);
    assert_int_equal(ns, 500000000);
    assert_int_equal(sp_rfc3339_parse("2026-11-29T04:09:33.5x", 22, &s, &ns), SP_JF_ECORRUPT);
    assert_int_equal(sp_rfc3339_parse("2026-11-29T04:09:33.Z", 21, &s, &ns), SP_JF_ECORRUPT);
    assert_int_equal(sp_rfc3339_parse("2026-11-29T04:09:34Z", 20, &s, &ns), 0);
    assert_int_equal(s, 1795925374ULL);
    assert_int_equal(sp_rfc3339_parse("2026-11-29T04:09:3xZ", 20, &s, &ns), SP_JF_ECORRUPT);
    assert_int_equal(sp_rfc3339_parse("2026-11-29T04:09:34Z", 20, &s, &ns), 0);
    assert_int_equal(s, 1795925374ULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain),         cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_surrogates),    cmocka_unit_test(test_partial),
        cmocka_unit_test(test_attrs),         cmocka_unit_test(test_order_and_unknown),
        cmocka_unit_test(test_corrupt),       cmocka_unit_test(test_time),
        cmocka_unit_test(test_escape_blocks), cmocka_unit_test(test_time_same_second),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    sp_buf_free(&scratch);
    sp_buf_free(&attrs);
    return rc;
}
