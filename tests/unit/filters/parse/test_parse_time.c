/* parse's time_key formats (parse_time.c) and level_key names (parse_level.c): every format on
 * good and bad text, fractions, zones, calendar limits, numbers as MessagePack, and the level
 * table with numbers. */
#include "unit.h"

#include "mp_pack.h"
#include "parse_int.h"
#include "record.h"

static sp_parse_time_fmt fmt(const char *format)
{
    sp_parse_time_fmt t;
    char why[200];
    if (sp_parse_time_compile(&t, format, why, sizeof why)) fail_msg("%s: %s", format, why);
    return t;
}

/* text in format -> want_sec, want_nsec, want_prec; want_sec UINT64_MAX: not a time */
static void check(const char *format, const char *text, uint64_t want_sec, uint32_t want_nsec,
                  int want_prec)
{
    sp_parse_time_fmt t = fmt(format);
    uint64_t sec = 0;
    uint32_t nsec = 0;
    uint8_t prec = 0;
    int rc = sp_parse_time_text(&t, text, strlen(text), &sec, &nsec, &prec);
    sp_parse_time_free(&t);
    if (want_sec == UINT64_MAX) {
        if (rc == 0)
            fail_msg("%s %s: read as %llu.%09u", format, text, (unsigned long long)sec, nsec);
        return;
    }
    if (rc) fail_msg("%s %s: not read", format, text);
    if (sec != want_sec || nsec != want_nsec || prec != want_prec)
        fail_msg("%s %s: %llu.%09u (%d digits), want %llu.%09u (%d)", format, text,
                 (unsigned long long)sec, nsec, prec, (unsigned long long)want_sec, want_nsec,
                 want_prec);
}

#define BAD UINT64_MAX

static void test_rfc3339(void **st)
{
    check("rfc3339", "2026-11-29T04:09:33Z", 1795925373, 0, 0);
    check("rfc3339", "2026-11-29T04:09:33.123Z", 1795925373, 123000000, 3);
    check("rfc3339", "2026-11-29T04:09:33.123456789Z", 1795925373, 123456789, 9);
    check("rfc3339", "2026-11-29T04:09:33.1234567891234Z", 1795925373, 123456789, 9);
    check("rfc3339", "2026-11-29 04:09:33,5", 1795925373, 500000000, 1); /* Python's asctime */
    check("rfc3339", "2026-11-29t04:09:33z", 1795925373, 0, 0);
    check("rfc3339", "2026-11-29T06:09:33+02:00", 1795925373, 0, 0);
    check("rfc3339", "2026-11-29T06:09:33+0200", 1795925373, 0, 0);
    check("rfc3339", "2026-11-29T06:09:33+02", 1795925373, 0, 0);
    check("rfc3339", "2026-11-28T22:39:33.000-05:30", 1795925373, 0, 3);
    check("rfc3339", "1970-01-01T00:00:00Z", 0, 0, 0);
    check("rfc3339", "2024-02-29T00:00:00Z", 1709164800, 0, 0);
    check("rfc3339", "9999-12-31T23:59:59Z", SP_TIME_MAX_SEC, 0, 0);
    const char *bad[] = {"",
                         "2026",
                         "2026-11-29",
                         "2026-11-29T04:09",
                         "2026-13-01T00:00:00Z",
                         "2026-02-29T00:00:00Z",
                         "2026-11-31T00:00:00Z",
                         "2026-11-29T24:00:00Z",
                         "2026-11-29T04:60:00Z",
                         "2026-11-29T04:09:33.Z",
                         "2026-11-29T04:09:33 ",
                         "2026-11-29T04:09:33+2",
                         "2026-11-29T04:09:33+24:00",
                         "1969-12-31T23:59:59Z",
                         "1970-01-01T00:00:00+00:01",
                         "2026-11-29X04:09:33Z",
                         "２026-11-29T04:09:33Z",
                         "2026-11-29T04:09:33ZZ",
                         "0000-01-01T00:00:00Z"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        check("rfc3339", bad[i], BAD, 0, 0);
}

static void test_epoch(void **st)
{
    check("epoch", "1795925373", 1795925373, 0, 0);
    check("epoch", "1795925373.25", 1795925373, 250000000, 2);
    check("epoch_ms", "1795925373123", 1795925373, 123000000, 3);
    check("epoch_us", "1795925373123456", 1795925373, 123456000, 6);
    check("epoch_ns", "1795925373123456789", 1795925373, 123456789, 9);
    check("epoch", "253402300799", SP_TIME_MAX_SEC, 0, 0);
    const char *bad[] = {"",    "-1",  "1.",           ".5",
                         "1e9", "12a", "253402300800", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        check("epoch", bad[i], BAD, 0, 0);
    check("epoch_ms", "1795925373123.5", BAD, 0, 0); /* a fraction only for seconds */
}

static void test_strptime(void **st)
{
    check("%d/%b/%Y:%H:%M:%S %z", "29/Nov/2026:06:09:33 +0200", 1795925373, 0, 0); /* nginx */
    check("%Y-%m-%d %H:%M:%S", "2026-11-29 04:09:33", 1795925373, 0, 0); /* no zone: UTC */
    check("%Y-%m-%d %H:%M:%S.%L", "2026-11-29 04:09:33.042", 1795925373, 42000000, 3);
    check("%Y-%m-%dT%H:%M:%S.%LZ", "2026-11-29T04:09:33.7Z", 1795925373, 700000000, 1);
    check("%Y-%m-%d %H:%M:%S", "2026-11-29 04:09:33 trailing", BAD, 0, 0);
    check("%Y-%m-%d %H:%M:%S.%L", "2026-11-29 04:09:33.", BAD, 0, 0);
    check("%Y-%m-%d", "not a date", BAD, 0, 0);
    char longtext[300];
    memset(longtext, '1', sizeof longtext - 1);
    longtext[sizeof longtext - 1] = 0;
    check("%Y%m", longtext, BAD, 0, 0);
}

static void test_formats_checked(void **st)
{
    sp_parse_time_fmt t;
    char why[200];
    assert_int_equal(sp_parse_time_compile(&t, "iso", why, sizeof why), -1);
    assert_non_null(strstr(why, "strptime"));
    assert_int_equal(sp_parse_time_compile(&t, "%L.%L", why, sizeof why), -1);
}

/* Values as MessagePack: strings, unsigned integers for the epochs, floats for `epoch`. */
static void test_time_values(void **st)
{
    sp_buf b = {0};
    uint64_t sec;
    uint32_t nsec;
    uint8_t prec;
    sp_parse_time_fmt e = fmt("epoch"), ms = fmt("epoch_ms"), r = fmt("rfc3339");
    tp_put_uint(&b, 1795925373);
    assert_int_equal(sp_parse_time(&e, sp_buf_slice(&b), &sec, &nsec, &prec), 0);
    assert_true(sec == 1795925373 && nsec == 0 && prec == 0);
    assert_int_equal(sp_parse_time(&r, sp_buf_slice(&b), &sec, &nsec, &prec), -1);
    b.len = 0;
    tp_put_uint(&b, 1795925373123ull);
    assert_int_equal(sp_parse_time(&ms, sp_buf_slice(&b), &sec, &nsec, &prec), 0);
    assert_true(sec == 1795925373 && nsec == 123000000 && prec == 3);
    b.len = 0;
    tp_put_double(&b, 1795925373.123456);
    assert_int_equal(sp_parse_time(&e, sp_buf_slice(&b), &sec, &nsec, &prec), 0);
    assert_true(sec == 1795925373 && nsec == 123456000 && prec == 6);
    assert_int_equal(sp_parse_time(&ms, sp_buf_slice(&b), &sec, &nsec, &prec), -1);
    b.len = 0;
    tp_put_int(&b, -5);
    assert_int_equal(sp_parse_time(&e, sp_buf_slice(&b), &sec, &nsec, &prec), -1);
    b.len = 0;
    tp_put_double(&b, -1.0);
    assert_int_equal(sp_parse_time(&e, sp_buf_slice(&b), &sec, &nsec, &prec), -1);
    b.len = 0;
    tp_put_str(&b, "2026-11-29T04:09:33Z", 20);
    assert_int_equal(sp_parse_time(&r, sp_buf_slice(&b), &sec, &nsec, &prec), 0);
    assert_true(sec == 1795925373);
    b.len = 0;
    tp_put_bool(&b, 1);
    assert_int_equal(sp_parse_time(&e, sp_buf_slice(&b), &sec, &nsec, &prec), -1);
    assert_int_equal(sp_parse_time(&e, sp_slice_make("", 0), &sec, &nsec, &prec), -1);
    sp_parse_time_free(&e);
    sp_parse_time_free(&ms);
    sp_parse_time_free(&r);
    sp_buf_free(&b);
}

static void test_levels(void **st)
{
    static const struct {
        const char *text;
        int level;
    } cases[] = {
        {"INFO", SP_LEVEL_INFO},
        {"Information", SP_LEVEL_INFO},
        {"notice", SP_LEVEL_INFO},
        {"I", SP_LEVEL_INFO},
        {"WARNING", SP_LEVEL_WARN},
        {"Warn", SP_LEVEL_WARN},
        {"W", SP_LEVEL_WARN},
        {"ERR", SP_LEVEL_ERROR},
        {"error", SP_LEVEL_ERROR},
        {"SEVERE", SP_LEVEL_ERROR},
        {"CRITICAL", SP_LEVEL_FATAL},
        {"dpanic", SP_LEVEL_FATAL},
        {"Fatal", SP_LEVEL_FATAL},
        {"emerg", SP_LEVEL_FATAL},
        {"DEBUG", SP_LEVEL_DEBUG},
        {"dbg", SP_LEVEL_DEBUG},
        {"Verbose", SP_LEVEL_TRACE},
        {"TRACE", SP_LEVEL_TRACE},
        {"30", SP_LEVEL_INFO},
        {"60", SP_LEVEL_FATAL},
        {"3", SP_LEVEL_ERROR},
        {"7", SP_LEVEL_DEBUG},
        {"0", SP_LEVEL_FATAL},
        {"35", -1},
        {"8", -1},
        {"70", -1},
        {"", -1},
        {"informational", SP_LEVEL_INFO},
        {"informationalx", -1},
        {"inf0", -1},
        {"warn ", -1},
        {"a-very-long-level-name", -1},
        {"\xc3\xa9", -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int got = sp_parse_level_text(cases[i].text, strlen(cases[i].text));
        if (got != cases[i].level) fail_msg("%s: %d, want %d", cases[i].text, got, cases[i].level);
    }
    sp_buf b = {0};
    tp_put_uint(&b, 50);
    assert_int_equal(sp_parse_level(sp_buf_slice(&b)), SP_LEVEL_ERROR);
    b.len = 0;
    tp_put_int(&b, -1);
    assert_int_equal(sp_parse_level(sp_buf_slice(&b)), -1);
    b.len = 0;
    tp_put_str(&b, "WARN", 4);
    assert_int_equal(sp_parse_level(sp_buf_slice(&b)), SP_LEVEL_WARN);
    b.len = 0;
    tp_put_bool(&b, 1);
    assert_int_equal(sp_parse_level(sp_buf_slice(&b)), -1);
    assert_string_equal(sp_parse_level_names[SP_LEVEL_WARN], "warn");
    sp_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc3339),     cmocka_unit_test(test_epoch),
        cmocka_unit_test(test_strptime),    cmocka_unit_test(test_formats_checked),
        cmocka_unit_test(test_time_values), cmocka_unit_test(test_levels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
