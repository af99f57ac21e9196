/* shipper/mp.c: the resumable scanner, the skipper and the reader agree with each other on
 * limits (docs/msgpack.md); inputs are encoded with msgpack-c's packer (mp_pack.h). */
#include "unit.h"

#include "mp.h"
#include "mp_pack.h"

/* The scanner's verdict on the whole buffer, fed one byte at a time (resuming every time). */
static int scan_bytewise(const sp_buf *b, size_t *len)
{
    sp_mp_scan sc = {0};
    int rc = 0;
    for (size_t n = 1; n <= b->len && rc == 0; n++)
        rc = sp_mp_scan_feed(&sc, (const uint8_t *)b->base, n);
    *len = sc.off;
    return rc;
}

static int skip_all(const sp_buf *b, size_t *len)
{
    const uint8_t *p = (const uint8_t *)b->base;
    int rc = sp_mp_skip(&p, p + b->len);
    *len = (size_t)(p - (const uint8_t *)b->base);
    return rc;
}

/* `levels` nested one-element arrays around `inner` (an empty array or a map here). */
static void nest(sp_buf *b, int levels, int inner_map)
{
    b->len = 0;
    for (int i = 0; i < levels; i++)
        tp_put_array(b, 1);
    if (inner_map)
        tp_put_map(b, 0);
    else
        tp_put_array(b, 0);
}

/* Found by fuzz_mp_diff: the scanner let an empty container through one level below the limit
 * while sp_mp_skip (and msgpack-c) rejected it, so a frame could pass framing and then fail. */
static void test_depth_limit_counts_empty_containers(void **st)
{
    sp_buf b = {0};
    size_t n1, n2;
    for (int inner_map = 0; inner_map < 2; inner_map++) {
        nest(&b, SP_MP_MAX_DEPTH - 1, inner_map); /* 32 levels in all: allowed */
        assert_int_equal(scan_bytewise(&b, &n1), 1);
        assert_int_equal(skip_all(&b, &n2), SP_MP_OK);
        assert_int_equal(n1, b.len);
        assert_int_equal(n2, b.len);

        nest(&b, SP_MP_MAX_DEPTH, inner_map); /* 33 levels, the last one empty: too deep */
        assert_int_equal(skip_all(&b, &n2), SP_MP_EDEPTH);
        assert_int_equal(scan_bytewise(&b, &n1), SP_MP_EDEPTH);
    }
    sp_buf_free(&b);
}

/* Every header form msgpack-c writes reads back as what was packed. */
static void test_reads_what_msgpack_c_packs(void **st)
{
    sp_buf b = {0};
    static const char big[70000];
    tp_put_array(&b, 12);
    tp_put_nil(&b);
    tp_put_bool(&b, 1);
    tp_put_uint(&b, UINT64_MAX);
    tp_put_int(&b, INT64_MIN);
    tp_put_int(&b, -33);
    tp_put_double(&b, 2.5);
    tp_put_str(&b, big, 40);
    tp_put_str(&b, big, 300);
    tp_put_str(&b, big, sizeof big);
    tp_put_bin(&b, big, 3);
    tp_put_ext(&b, -1, big, 8);
    tp_put_map(&b, 20);
    for (int i = 0; i < 20; i++) {
        tp_put_uint(&b, (uint64_t)i);
        tp_put_array(&b, 0);
    }
    const uint8_t *p = (const uint8_t *)b.base, *end = p + b.len;
    sp_mp_obj o;
    assert_int_equal(sp_mp_read(&p, end, &o), 0);
    assert_true(o.type == SP_MP_ARRAY && o.v.n == 12);
    assert_int_equal(sp_mp_read(&p, end, &o), 0);
    assert_int_equal(o.type, SP_MP_NIL);
    assert_int_equal(sp_mp_read(&p, end, &o), 0);
    assert_true(o.type == SP_MP_BOOL && o.v.b == 1);
    assert_int_equal(sp_mp_read(&p, end, &o), 0);
    assert_true(o.type == SP_MP_UINT && o.v.u == UINT64_MAX);
    assert_int_equal(sp_mp_read(&p, end, &o), 0);
    assert_true(o.type == SP_MP_INT && o.v.i == INT64_MIN);
    assert_int_equal(sp_mp_read(&p, end, &o), 0);
    assert_true(o.type == SP_MP_INT && o.v.i == -33);
    assert_int_equal(sp_mp_read(&p, end, &o), 0);
    assert_true(o.type == SP_MP_FLOAT && o.v.f == 2.5);
    size_t lens[] = {40, 300, sizeof big};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(sp_mp_read(&p, end, &o), 0);
        assert_true(o.type == SP_MP_STR && o.s.len == lens[i]);
    }
    assert_int_equal(sp_mp_read(&p, end, &o), 0);
    assert_true(o.type == SP_MP_BIN && o.s.len == 3);
    assert_int_equal(sp_mp_read(&p, end, &o), 0);
    assert_true(o.type == SP_MP_EXT && o.ext_type == -1 && o.s.len == 8);
    assert_int_equal(sp_mp_skip(&p, end), 0);
    assert_ptr_equal(p, end);
    size_t n;
    assert_int_equal(scan_bytewise(&b, &n), 1);
    assert_int_equal(n, b.len);
    sp_buf_free(&b);
}

/* The str header writers (sp_mp_put_str, sp_mp_str_header) write what msgpack-c's packer
 * writes at every size boundary, and sp_mp_strbin_size reads str and bin sizes back. */
static void test_str_headers_match_msgpack_c(void **st)
{
    static const char big[70000];
    static const size_t sizes[] = {0, 31, 32, 255, 256, 65535, 65536, sizeof big};
    sp_buf want = {0}, got = {0};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i], h = 0;
        want.len = got.len = 0;
        tp_put_str(&want, big, n);
        sp_mp_put_str(&got, big, n);
        assert_int_equal(got.len, want.len);
        assert_memory_equal(got.base, want.base, want.len);
        uint8_t hdr[5];
        size_t hlen = sp_mp_str_hlen(n);
        assert_int_equal(hlen, want.len - n);
        sp_mp_str_header(hdr, hlen, n);
        assert_memory_equal(hdr, want.base, hlen);
        const uint8_t *p = (const uint8_t *)want.base;
        assert_int_equal(sp_mp_strbin_size(p, p + want.len, &h), hlen > 1 ? want.len : 0);
        if (hlen > 1) assert_int_equal(h, hlen);
        want.len = 0;
        tp_put_bin(&want, big, n);
        p = (const uint8_t *)want.base;
        assert_int_equal(sp_mp_strbin_size(p, p + want.len, &h), want.len);
        assert_int_equal(h, want.len - n);
        assert_int_equal(sp_mp_strbin_size(p, p + h - 1, &h), 0); /* header cut short */
    }
    sp_buf_free(&want);
    sp_buf_free(&got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_depth_limit_counts_empty_containers),
        cmocka_unit_test(test_reads_what_msgpack_c_packs),
        cmocka_unit_test(test_str_headers_match_msgpack_c),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
