/* The kafka input's reader (inputs/kafka/kafka_in_doc.c): documents as the kafka output writes
 * them back into records, the shipper-id header, raw mode, invalid JSON in json mode. */
#include "unit.h"

#include "document.h"
#include "kafka_in_int.h"
#include "mp.h"

/* The document of `r`, as the kafka output writes it (sp_document_record). */
static char *test_doc(const sp_record *r, const char *tag)
{
    sp_buf b = {0};
    sp_document_record(&b, r, sp_slice_make(tag, strlen(tag)));
    sp_buf_putc(&b, 0);
    return b.base;
}

static sp_record test_record(sp_buf *ex)
{
    sp_mp_put_str(ex, "app", 3);
    sp_mp_put_str(ex, "web \"front\"\n", 12);
    sp_mp_put_str(ex, "n", 1);
    sp_mp_put_int(ex, -42);
    sp_mp_put_str(ex, "ratio", 5);
    sp_mp_put_double(ex, 0.5);
    sp_mp_put_str(ex, "kv", 2);
    sp_mp_put_map(ex, 2);
    sp_mp_put_str(ex, "a", 1);
    sp_mp_put_array(ex, 3);
    sp_mp_put_bool(ex, 1);
    sp_mp_put_nil(ex);
    sp_mp_put_uint(ex, 18446744073709551615ULL - 1);
    sp_mp_put_str(ex, "b", 1);
    sp_mp_put_map(ex, 0);
    sp_record r = {0};
    r.sec = 1796184573; /* 2026-12-01T03:29:33 */
    r.nsec = 123456789;
    r.prec = 9;
    r.message = SP_SLICE_LIT("GET / 200 \xc3\xa9\t\"q\" \\ \x01");
    r.stream = SP_SLICE_LIT("stdout");
    r.container_id = SP_SLICE_LIT("0123456789ab");
    r.container_name = SP_SLICE_LIT("web-1");
    r.nextras = 4;
    r.extras = sp_buf_slice(ex);
    return r;
}

/* record -> document -> record -> document: the same document both times. */
static void test_roundtrip(void **st)
{
    (void)st;
    sp_buf ex = {0};
    sp_record r0 = test_record(&ex);
    char *d0 = test_doc(&r0, "docker.web-1");
    sp_kafka_in_scratch s = {0};
    sp_record r1;
    sp_slice tag;
    assert_int_equal(sp_kafka_in_doc(d0, strlen(d0), &s, &r1, &tag), 0);
    assert_true(SP_SLICE_IS(tag, "docker.web-1"));
    assert_true(sp_slice_eq(r1.message, r0.message));
    assert_true(SP_SLICE_IS(r1.stream, "stdout"));
    assert_true(SP_SLICE_IS(r1.container_id, "0123456789ab"));
    assert_true(SP_SLICE_IS(r1.container_name, "web-1"));
    assert_int_equal(r1.sec, r0.sec);
    assert_int_equal(r1.nsec, r0.nsec);
    assert_int_equal(r1.prec, 9);
    assert_int_equal(r1.nextras, 4);
    char *d1 = test_doc(&r1, "docker.web-1");
    assert_string_equal(d1, d0);
    free(d0);
    free(d1);
    sp_buf_free(&ex);
    sp_buf_free(&s.str);
    sp_buf_free(&s.ext);
}

/* Unknown members of `container` come back as "container.<key>"; whitespace, escapes and
 * surrogate pairs; a non-string `message` is an extra; an unparsable @timestamp leaves the time
 * to the caller. */
static void test_members(void **st)
{
    (void)st;
    const char *j = " { \"@timestamp\" : \"soon\", \"message\": 7, \"container\": {\"id\": \"c1\","
                    " \"image\": \"nginx\", \"labels\": {\"a\\u00e9\": \"\\ud83d\\ude00\"}},"
                    " \"x\": [1, -2.5e3, \"\\/\"] } ";
    sp_kafka_in_scratch s = {0};
    sp_record r;
    sp_slice tag;
    assert_int_equal(sp_kafka_in_doc(j, strlen(j), &s, &r, &tag), 0);
    assert_int_equal(r.prec, 0xff);
    assert_null(r.message.base);
    assert_null(tag.base);
    assert_true(SP_SLICE_IS(r.container_id, "c1"));
    assert_null(r.container_name.base);
    assert_int_equal(r.nextras, 4);
    const uint8_t *p = (const uint8_t *)r.extras.base, *end = p + r.extras.len;
    const char *keys[] = {"message", "container.image", "container.labels", "x"};
    for (int i = 0; i < 4; i++) {
        sp_mp_obj o;
        assert_int_equal(sp_mp_read(&p, end, &o), 0);
        assert_int_equal(o.type, SP_MP_STR);
        assert_true(sp_slice_eq(o.s, sp_slice_make(keys[i], strlen(keys[i]))));
        if (i == 2) { /* {"aé": "😀"} */
            assert_int_equal(sp_mp_read(&p, end, &o), 0);
            assert_int_equal(o.type, SP_MP_MAP);
            assert_int_equal(o.v.n, 1);
            assert_int_equal(sp_mp_read(&p, end, &o), 0);
            assert_true(SP_SLICE_IS(o.s, "a\xc3\xa9"));
            assert_int_equal(sp_mp_read(&p, end, &o), 0);
            assert_true(SP_SLICE_IS(o.s, "\xf0\x9f\x98\x80"));
        } else {
            assert_int_equal(sp_mp_skip(&p, end), 0);
        }
    }
    assert_ptr_equal(p, end);
    sp_buf_free(&s.str);
    sp_buf_free(&s.ext);
}

static void test_hexid(void **st)
{
    (void)st;
    uint8_t id[16], want[16];
    for (int i = 0; i < 16; i++)
        want[i] = (uint8_t)(i * 17 + 3);
    char hex[33];
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", want[i]); /* as the kafka output writes it */
    assert_int_equal(sp_kafka_in_hexid(hex, 32, id), 0);
    assert_memory_equal(id, want, 16);
    hex[5] = 'A' + (hex[5] >= 'a' ? 0 : 1); /* upper case reads too */
    assert_int_equal(sp_kafka_in_hexid(hex, 32, id), 0);
    memset(id, 0x55, 16);
    assert_int_equal(sp_kafka_in_hexid(hex, 31, id), -1);
    hex[7] = 'g';
    assert_int_equal(sp_kafka_in_hexid(hex, 32, id), -1);
    assert_int_equal(sp_kafka_in_hexid(NULL, 32, id), -1);
    for (int i = 0; i < 16; i++)
        assert_int_equal(id[i], 0x55); /* untouched by a bad header */
}

static void test_raw(void **st)
{
    (void)st;
    const char *v = "{\"message\":\"not parsed in raw mode\"}";
    sp_kafka_in_scratch s = {0};
    sp_record r;
    sp_slice tag;
    assert_int_equal(sp_kafka_in_decode(SP_KAFKA_IN_RAW, v, strlen(v), &s, &r, &tag),
                     SP_KAFKA_IN_LINE);
    assert_true(sp_slice_eq(r.message, sp_slice_make(v, strlen(v))));
    assert_int_equal(r.nextras, 0);
    assert_int_equal(r.prec, 0xff);
    assert_null(tag.base);
    assert_int_equal(sp_kafka_in_decode(SP_KAFKA_IN_RAW, NULL, 0, &s, &r, &tag), SP_KAFKA_IN_LINE);
    assert_non_null(r.message.base); /* an empty message, not an absent one */
    assert_int_equal(r.message.len, 0);
    assert_int_equal(sp_kafka_in_decode(SP_KAFKA_IN_JSON, v, strlen(v), &s, &r, &tag),
                     SP_KAFKA_IN_DOC);
    assert_true(SP_SLICE_IS(r.message, "not parsed in raw mode"));
    sp_buf_free(&s.str);
    sp_buf_free(&s.ext);
}

static void test_invalid(void **st)
{
    (void)st;
    const char *bad[] = {
        "this is {not json",
        "{\"message\": \"x\"",
        "{\"message\": \"x\"} trailing",
        "[1, 2]",
        "{\"a\": tru}",
        "{\"a\": \"\\q\"}",
        "{\"a\": \"ctl \x01\"}",
        "{\"a\" 1}",
        "{\"a\": [1,]}",
        "{\"a\": 01x}",
        "",
        "{\"container\": {\"id\": 1,}}",
        "{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
    };
    sp_kafka_in_scratch s = {0};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        sp_record r;
        sp_slice tag;
        size_t n = strlen(bad[i]);
        assert_int_equal(sp_kafka_in_decode(SP_KAFKA_IN_JSON, bad[i], n, &s, &r, &tag),
                         SP_KAFKA_IN_INVALID);
        assert_true(sp_slice_eq(r.message, sp_slice_make(bad[i], n)));
        assert_null(tag.base);
        assert_int_equal(r.nextras, 1); /* kafka_invalid_json: true */
        const uint8_t *p = (const uint8_t *)r.extras.base, *end = p + r.extras.len;
        sp_mp_obj o;
        assert_int_equal(sp_mp_read(&p, end, &o), 0);
        assert_true(SP_SLICE_IS(o.s, "kafka_invalid_json"));
        assert_int_equal(sp_mp_read(&p, end, &o), 0);
        assert_int_equal(o.type, SP_MP_BOOL);
        assert_true(o.v.b);
        assert_ptr_equal(p, end);
    }
    sp_buf_free(&s.str);
    sp_buf_free(&s.ext);
}

/* `n` bytes of valid UTF-8 ("\xc3\xa9" every third unit, letters otherwise) at m; the count. */
static size_t test_text(char *m, size_t n)
{
    size_t i = 0;
    for (size_t u = 0; i < n; u++) {
        if (u % 3 == 2 && i + 2 <= n) {
            m[i++] = (char)0xc3;
            m[i++] = (char)0xa9;
        } else {
            m[i++] = (char)('a' + (int)(u % 26));
        }
    }
    return i;
}

/* Long messages with the byte a plain run stops at ('"', '\\', a control character, an escape)
 * at every position around an 8-byte step (the reader scans eight bytes at a time), and bytes
 * >= 0x80 near it: the message comes back exactly; a raw control character fails the document. */
static void test_alignment(void **st)
{
    (void)st;
    static const char specials[] = {'"', '\\', '\n', '\x01', '\x1f', '/'};
    sp_kafka_in_scratch s = {0};
    for (size_t at = 0; at < 24; at++)
        for (size_t after = 0; after < 20; after++)
            for (size_t k = 0; k < sizeof specials; k++) {
                char msg[64];
                size_t len = test_text(msg, at);
                msg[len++] = specials[k];
                len += test_text(msg + len, after);
                sp_record r0 = {0}, r1;
                r0.sec = 1796184573;
                r0.prec = 3;
                r0.message = sp_slice_make(msg, len);
                char *d = test_doc(&r0, "t");
                sp_slice tag;
                assert_int_equal(sp_kafka_in_doc(d, strlen(d), &s, &r1, &tag), 0);
                assert_int_equal(r1.message.len, len);
                assert_memory_equal(r1.message.base, msg, len);
                free(d);
            }
    /* a raw control character inside a string, at every offset: not a document */
    for (size_t at = 0; at < 48; at++) {
        char d[96];
        int n = snprintf(d, sizeof d, "{\"message\":\"%.*s%c%.*s\"}", (int)(at % 24),
                         "abcdefghijklmnopqrstuvwxyz", 'Z', 12, "abcdefghijkl");
        d[12 + at % 24] = at < 24 ? '\x02' : '\x1f';
        sp_record r;
        sp_slice tag;
        assert_int_equal(sp_kafka_in_doc(d, (size_t)n, &s, &r, &tag), -1);
    }
    sp_buf_free(&s.str);
    sp_buf_free(&s.ext);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip), cmocka_unit_test(test_members),
        cmocka_unit_test(test_hexid),     cmocka_unit_test(test_raw),
        cmocka_unit_test(test_invalid),   cmocka_unit_test(test_alignment),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
