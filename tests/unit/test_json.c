/* JSON encoding: escapes, UTF-8 repair, timestamps, the document shape. */
#include "unit.h"
#include "mp_pack.h"

#include "json.h"
#include "mp.h"

static char *enc(const char *s, size_t n)
{
    static sp_buf b;
    b.len = 0;
    sp_json_str(&b, s, n);
    sp_buf_putc(&b, '\0');
    return b.base;
}
#define ENC(lit) enc(lit, sizeof(lit) - 1)

static void test_plain_and_escapes(void **st)
{
    assert_string_equal(ENC("hello"), "\"hello\"");
    assert_string_equal(ENC("a\"b\\c"), "\"a\\\"b\\\\c\"");
    assert_string_equal(ENC("\n\r\t"), "\"\\n\\r\\t\"");
    assert_string_equal(ENC("\x01\x1f\x7f"), "\"\\u0001\\u001f\\u007f\"");
    assert_string_equal(ENC("nul\0x"), "\"nul\\u0000x\"");
}

/* Long runs are scanned 16 bytes at a time (8 without SSE2): a special byte at every position of
 * the run, and every byte value, must come out as the byte-by-byte path writes it. */
static void test_escapes_at_every_position(void **st)
{
    static const struct {
        const char *in, *out;
    } sp[] = {{"\"", "\\\""},           {"\\", "\\\\"},          {"\n", "\\n"},
              {"\x01", "\\u0001"},      {"\x1f", "\\u001f"},     {"\x7f", "\\u007f"},
              {"\xc3\xa9", "\xc3\xa9"}, {"\xff", "\xef\xbf\xbd"}};
    char in[64], want[96];
    for (size_t k = 0; k < sizeof sp / sizeof sp[0]; k++)
        for (int pos = 0; pos + (int)strlen(sp[k].in) <= 40; pos++) {
            memset(in, 'a', 40);
            size_t l = strlen(sp[k].in);
            memcpy(in + pos, sp[k].in, l);
            snprintf(want, sizeof want, "\"%.*s%s%.*s\"", pos, in, sp[k].out, (int)(40 - pos - l),
                     in + pos + l);
            assert_string_equal(enc(in, 40), want);
        }
    for (int c = 0x20; c < 0x7f; c++) { /* every plain byte passes through in a long run */
        if (c == '"' || c == '\\') continue;
        memset(in, c, 40);
        snprintf(want, sizeof want, "\"%.40s\"", in);
        assert_string_equal(enc(in, 40), want);
    }
}

static void test_utf8_valid_kept(void **st)
{
    assert_string_equal(ENC("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
    assert_string_equal(ENC("\xe2\x82\xac"), "\"\xe2\x82\xac\"");         /* € */
    assert_string_equal(ENC("\xf0\x9f\x98\x80"), "\"\xf0\x9f\x98\x80\""); /* 😀 */
}

static void test_utf8_invalid_replaced(void **st)
{
#define FFFD "\xef\xbf\xbd"
    assert_string_equal(ENC("a\xff"
                            "b"),
                        "\"a" FFFD "b\"");
    assert_string_equal(ENC("\xc0\xaf"), "\"" FFFD FFFD "\"");          /* overlong */
    assert_string_equal(ENC("\xed\xa0\x80"), "\"" FFFD FFFD FFFD "\""); /* surrogate */
    assert_string_equal(ENC("\xe2\x82"), "\"" FFFD "\"");               /* truncated: one U+FFFD */
    assert_string_equal(ENC("\xe2\x82z"), "\"" FFFD "z\"");
    assert_string_equal(ENC("\xf4\x90\x80\x80"), "\"" FFFD FFFD FFFD FFFD "\""); /* > U+10FFFF */
    assert_string_equal(ENC("\x80"), "\"" FFFD "\"");
}

static void test_timestamps(void **st)
{
    sp_buf b = {0};
    sp_json_timestamp(&b, 1764389373, 123456789, 9);
    sp_buf_putc(&b, '\0');
    assert_string_equal(b.base, "\"2025-11-29T04:09:33.123456789Z\"");
    b.len = 0;
    sp_json_timestamp(&b, 1764389373, 5, 9);
    sp_buf_putc(&b, '\0');
    assert_string_equal(b.base, "\"2025-11-29T04:09:33.000000005Z\"");
    b.len = 0;
    sp_json_timestamp(&b, 0, 0, 0);
    sp_buf_putc(&b, '\0');
    assert_string_equal(b.base, "\"1970-01-01T00:00:00Z\"");
    b.len = 0;
    sp_json_timestamp(&b, 951782400, 0, 0); /* 2000-02-29, a leap day */
    sp_buf_putc(&b, '\0');
    assert_string_equal(b.base, "\"2000-02-29T00:00:00Z\"");
    sp_buf_free(&b);
}

/* Times past 9999-12-31T23:59:59Z are written as that second (RFC 3339 has four year digits). */
static void test_timestamp_clamped(void **st)
{
    static const uint64_t huge[] = {UINT64_MAX, (uint64_t)INT64_MAX, 1ULL << 40,
                                    253402300800ULL /* 10000-01-01 */, 999999999999ULL};
    sp_buf b = {0};
    for (size_t i = 0; i < sizeof huge / sizeof *huge; i++) {
        b.len = 0;
        sp_json_timestamp(&b, huge[i], 0, 0);
        sp_buf_putc(&b, '\0');
        assert_string_equal(b.base, "\"9999-12-31T23:59:59Z\"");
        b.len = 0;
        sp_json_timestamp(&b, huge[i], 123456789, 9);
        sp_buf_putc(&b, '\0');
        assert_string_equal(b.base, "\"9999-12-31T23:59:59.123456789Z\"");
    }
    b.len = 0;
    sp_json_timestamp(&b, 253402300799ULL, 0, 0);
    sp_buf_putc(&b, '\0');
    assert_string_equal(b.base, "\"9999-12-31T23:59:59Z\"");
    sp_buf_free(&b);
}

static void test_document(void **st)
{
    sp_buf extras = {0}, b = {0};
    tp_put_str(&extras, "app", 3);
    tp_put_str(&extras, "web", 3);
    tp_put_str(&extras, "message", 7); /* collides with the document's own key */
    tp_put_uint(&extras, 7);
    tp_put_str(&extras, "nested", 6);
    tp_put_map(&extras, 1);
    tp_put_str(&extras, "a", 1);
    tp_put_array(&extras, 2);
    tp_put_bool(&extras, 1);
    tp_put_nil(&extras);
    sp_record r;
    memset(&r, 0, sizeof r);
    r.sec = 1764389373;
    r.nsec = 1000;
    r.prec = 9;
    r.message = SP_SLICE_LIT("hi \"there\"");
    r.stream = SP_SLICE_LIT("stdout");
    r.container_id = SP_SLICE_LIT("abc");
    r.container_name = SP_SLICE_LIT("web-1");
    r.extras = sp_buf_slice(&extras);
    r.nextras = 3;
    sp_json_document(&b, &r, SP_SLICE_LIT("docker.web-1"), NULL, NULL);
    sp_buf_putc(&b, '\0');
    assert_string_equal(b.base,
                        "{\"@timestamp\":\"2025-11-29T04:09:33.000001000Z\",\"message\":\"hi "
                        "\\\"there\\\"\",\"stream\":\"stdout\",\"container\":{\"id\":\"abc\","
                        "\"name\":\"web-1\"},\"tag\":\"docker.web-1\",\"app\":\"web\","
                        "\"_message\":7,\"nested\":{\"a\":[true,null]}}");
    sp_buf_free(&b);
    sp_buf_free(&extras);
}

static void test_non_string_keys(void **st)
{
    sp_buf in = {0}, out = {0};
    tp_put_map(&in, 3);
    tp_put_uint(&in, 7); /* a number key: its text */
    tp_put_str(&in, "a", 1);
    tp_put_map(&in, 1); /* a container key: a placeholder, however deep */
    for (int i = 0; i < 30; i++)
        tp_put_map(&in, 1);
    tp_put_nil(&in);
    for (int i = 0; i < 31; i++)
        tp_put_nil(&in);
    tp_put_nil(&in);
    tp_put_bool(&in, 1);
    tp_put_str(&in, "t", 1);
    const uint8_t *p = (const uint8_t *)in.base;
    assert_int_equal(sp_json_mp(&out, &p, p + in.len), 0);
    sp_buf_putc(&out, '\0');
    assert_string_equal(out.base, "{\"7\":\"a\",\"_key1\":null,\"true\":\"t\"}");
    sp_buf_free(&in);
    sp_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_and_escapes), cmocka_unit_test(test_escapes_at_every_position),
        cmocka_unit_test(test_utf8_valid_kept),   cmocka_unit_test(test_utf8_invalid_replaced),
        cmocka_unit_test(test_timestamps),        cmocka_unit_test(test_document),
        cmocka_unit_test(test_timestamp_clamped), cmocka_unit_test(test_non_string_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
