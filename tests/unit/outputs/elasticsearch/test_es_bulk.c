/* Elasticsearch output: bulk body encoding (ids, index names, splitting, dead letters, gzip). */
#include "unit.h"

#include <jansson.h>
#include <zlib.h>

#include "es.h"

static void rec(sp_buf *chunk, uint64_t sec, int i, const char *msg)
{
    sp_record r = {0};
    r.sec = sec;
    memset(r.id, i, 16);
    r.id[0] = (uint8_t)(i >> 8);
    r.message = sp_slice_str(msg);
    sp_record_write(chunk, &r);
}

static void test_id_base64url(void **st)
{
    uint8_t id[16];
    char out[23] = {0};
    memset(id, 0, 16);
    sp_es_id_b64(id, out);
    assert_string_equal(out, "AAAAAAAAAAAAAAAAAAAAAA");
    memset(id, 0xff, 16);
    sp_es_id_b64(id, out);
    assert_string_equal(out, "_____________________w"); /* url alphabet, no padding */
    for (int i = 0; i < 16; i++)
        id[i] = (uint8_t)(i * 17);
    sp_es_id_b64(id, out);
    assert_string_equal(out, "ABEiM0RVZneImaq7zN3u_w");
}

static void test_index_names(void **st)
{
    sp_es_index ix;
    sp_es_index_init(&ix, "logs-%Y.%m.%d");
    assert_int_equal(ix.period, 86400);
    sp_slice s = sp_es_index_name(&ix, 1764390000); /* 2025-11-29T04:20:00Z */
    assert_int_equal(s.len, 15);
    assert_memory_equal(s.base, "logs-2025.11.29", 15);
    s = sp_es_index_name(&ix, 1764390000 + 86400);
    assert_memory_equal(s.base, "logs-2025.11.30", 15);
    sp_es_index_init(&ix, "h-%Y%m%d%H");
    assert_int_equal(ix.period, 1);
    s = sp_es_index_name(&ix, 1764390000);
    assert_memory_equal(s.base, "h-2025112904", s.len);
    sp_es_index_init(&ix, "logs-docker-default");
    s = sp_es_index_name(&ix, 1);
    assert_memory_equal(s.base, "logs-docker-default", s.len);
}

/* A time past 9999-12-31T23:59:59Z (a huge integer time from a client) is clamped to that
 * second: gmtime_r fails far beyond it, and the name was formatted from an unset struct tm. */
static void test_index_name_time_clamped(void **st)
{
    static const uint64_t huge[] = {UINT64_MAX, (uint64_t)INT64_MAX + 1, (uint64_t)INT64_MAX,
                                    100000000000000000ULL, 253402300800ULL /* 10000-01-01 */};
    const char *fmts[] = {"logs-%Y.%m.%d", "s-%Y-%m-%dT%H:%M:%S"};
    const char *want[] = {"logs-9999.12.31", "s-9999-12-31T23:59:59"};
    for (size_t f = 0; f < 2; f++) {
        for (size_t i = 0; i < sizeof huge / sizeof *huge; i++) {
            sp_es_index ix;
            sp_es_index_init(&ix, fmts[f]);
            memset(ix.name, 'X', sizeof ix.name); /* what an unset struct tm would leave */
            sp_slice s = sp_es_index_name(&ix, huge[i]);
            assert_int_equal(s.len, strlen(want[f]));
            assert_memory_equal(s.base, want[f], s.len);
        }
    }
    sp_es_index ix;
    sp_es_index_init(&ix, "logs-%Y.%m.%d");
    sp_slice s = sp_es_index_name(&ix, 253402300799ULL); /* the last second itself */
    assert_memory_equal(s.base, "logs-9999.12.31", s.len);
    s = sp_es_index_name(&ix, UINT64_MAX); /* and the cache does not keep a stale name */
    assert_memory_equal(s.base, "logs-9999.12.31", s.len);
    s = sp_es_index_name(&ix, 1764390000);
    assert_memory_equal(s.base, "logs-2025.11.29", s.len);
}

static sp_es_enc mkenc(size_t max)
{
    sp_es_enc e = {0};
    sp_es_index_init(&e.ix, "ix-%Y");
    e.tag = SP_SLICE_LIT("t");
    e.max_bytes = max;
    e.dl_index = "dead";
    return e;
}

/* Every line of `body` is JSON; returns the number of lines. */
static int lines_json(const sp_buf *b)
{
    int n = 0;
    const char *p = b->base, *end = b->base + b->len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        assert_non_null(nl);
        json_error_t err;
        json_t *j = json_loadb(p, (size_t)(nl - p), 0, &err);
        assert_non_null(j);
        json_decref(j);
        n++;
        p = nl + 1;
    }
    return n;
}

static void test_encode_and_split(void **st)
{
    sp_buf chunk = {0}, body = {0};
    for (int i = 0; i < 100; i++)
        rec(&chunk, 1764390000, i, "hello \"world\"");
    sp_es_item items[100];
    sp_es_enc e = mkenc(1u << 20);
    size_t off = 0;
    uint32_t n = sp_es_encode_range(&e, &body, (uint8_t *)chunk.base, chunk.len, &off, items);
    assert_int_equal(n, 100);
    assert_int_equal(off, chunk.len);
    assert_int_equal(lines_json(&body), 200);
    sp_buf_putc(&body, 0);
    assert_non_null(strstr(
        body.base, "{\"create\":{\"_index\":\"ix-2025\",\"_id\":\"AAAAAAAAAAAAAAAAAAAAAA\"}}\n"
                   "{\"@timestamp\":\"2025-11-29T04:20:00Z\",\"message\":\"hello \\\"world\\\"\""));
    /* A small bulk_max_bytes: several requests, every record exactly once, at least one each. */
    e.max_bytes = 1000;
    off = 0;
    int total = 0, reqs = 0;
    while (off < chunk.len) {
        body.len = 0;
        n = sp_es_encode_range(&e, &body, (uint8_t *)chunk.base, chunk.len, &off, items);
        assert_true(n >= 1);
        assert_true(body.len <= 1000);
        assert_int_equal(lines_json(&body), 2 * (int)n);
        total += (int)n;
        reqs++;
    }
    assert_int_equal(total, 100);
    assert_true(reqs > 5);
    e.max_bytes = 10; /* smaller than one record: still one per request */
    off = 0;
    body.len = 0;
    assert_int_equal(sp_es_encode_range(&e, &body, (uint8_t *)chunk.base, chunk.len, &off, items),
                     1);
    sp_buf_free(&chunk);
    sp_buf_free(&body);
    sp_buf_free(&e.scratch);
}

static void test_items_and_dead_letters(void **st)
{
    sp_buf chunk = {0}, body = {0};
    sp_es_item items[3];
    for (int i = 0; i < 3; i++)
        rec(&chunk, 1764390000, i, "m");
    sp_es_enc e = mkenc(1u << 20);
    size_t off = 0;
    sp_es_encode_range(&e, &body, (uint8_t *)chunk.base, chunk.len, &off, items);
    const char errs[] = "{\"type\":\"mapper_parsing_exception\"}";
    e.errs = errs;
    sp_es_item sel[2] = {items[2], {items[0].off, 1}};
    body.len = 0;
    assert_int_equal(sp_es_encode_items(&e, &body, (uint8_t *)chunk.base, chunk.len, sel, 2), 2);
    assert_int_equal(lines_json(&body), 4);
    sp_buf_putc(&body, 0);
    char *dl = strstr(body.base, "{\"create\":{\"_index\":\"dead\"");
    assert_non_null(dl);
    json_t *doc = json_loads(strchr(dl, '\n') + 1, JSON_DISABLE_EOF_CHECK, NULL);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "index")), "ix-2025");
    assert_string_equal(json_string_value(json_object_get(json_object_get(doc, "error"), "type")),
                        "mapper_parsing_exception");
    json_t *orig = json_loads(json_string_value(json_object_get(doc, "original")), 0, NULL);
    assert_string_equal(json_string_value(json_object_get(orig, "message")), "m");
    json_decref(orig);
    json_decref(doc);
    sp_buf_free(&chunk);
    sp_buf_free(&body);
    sp_buf_free(&e.scratch);
}

static void test_gzip_roundtrip(void **st)
{
    sp_buf in = {0}, out = {0};
    for (int i = 0; i < 10000; i++)
        sp_buf_printf(&in, "{\"n\":%d}\n", i);
    struct libdeflate_compressor *z = libdeflate_alloc_compressor(1);
    for (int round = 0; round < 2; round++) { /* the compressor is reused */
        assert_int_equal(sp_es_gzip(z, &in, &out), 0);
        assert_true(out.len < in.len / 3);
        assert_int_equal((uint8_t)out.base[0], 0x1f);
        char *back = malloc(in.len);
        z_stream u = {0};
        inflateInit2(&u, 15 + 16);
        u.next_in = (Bytef *)out.base;
        u.avail_in = (uInt)out.len;
        u.next_out = (Bytef *)back;
        u.avail_out = (uInt)in.len;
        assert_int_equal(inflate(&u, Z_FINISH), Z_STREAM_END);
        assert_int_equal(u.total_out, in.len);
        assert_memory_equal(back, in.base, in.len);
        inflateEnd(&u);
        free(back);
    }
    libdeflate_free_compressor(z);
    sp_buf_free(&in);
    sp_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_id_base64url),
        cmocka_unit_test(test_index_names),
        cmocka_unit_test(test_index_name_time_clamped),
        cmocka_unit_test(test_encode_and_split),
        cmocka_unit_test(test_items_and_dead_letters),
        cmocka_unit_test(test_gzip_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
