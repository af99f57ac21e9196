/* Forward protocol decoding: every mode and time form, acks, partial input, bad input. */
#include "unit.h"
#include "mp_pack.h"

#include <zlib.h>

#include "forward_proto.h"
#include "forward_record.h"
#include "json.h"
#include "mp.h"

typedef struct {
    int n;
    char tags[16][32];
    uint64_t sec[16];
    uint32_t nsec[16];
    int prec[16];
    char msg[16][64];
    uint32_t index[16];
    char chunk[16][32];
    int acks;
    char ack[40];
    char meta[16][64]; /* the document's metadata field, when the entry had metadata */
} seen;

static sp_buf extras, inflate_buf;

static int on_entry(void *ctx, const sp_fwd_entry *e)
{
    seen *s = ctx;
    sp_record r;
    sp_docker_partial p;
    int len = sp_fwd_record(e->rec, e->rec_end, &r, &extras, &p);
    if (len < 0) return len;
    int i = s->n++;
    if (e->meta.len) {
        sp_fwd_record_meta(&r, &extras, e->meta);
        sp_buf doc = {0};
        sp_json_document(&doc, &r, e->tag, NULL, NULL);
        const char *m = memmem(doc.base, doc.len, "fluent_metadata", 15);
        if (m && m > doc.base) m--; /* the key's quote, or the "_" of a renamed key */
        snprintf(s->meta[i], 64, "%.*s", m ? (int)(doc.base + doc.len - m) : 0, m ? m : "");
        sp_buf_free(&doc);
    }
    snprintf(s->tags[i], 32, "%.*s", (int)e->tag.len, e->tag.base);
    s->sec[i] = e->sec;
    s->nsec[i] = e->nsec;
    s->prec[i] = e->prec;
    snprintf(s->msg[i], 64, "%.*s", (int)r.message.len, r.message.base ? r.message.base : "");
    s->index[i] = e->index;
    snprintf(s->chunk[i], 32, "%.*s", (int)e->chunk.len, e->chunk.base ? e->chunk.base : "");
    return len;
}

static void on_ack(void *ctx, sp_slice c)
{
    seen *s = ctx;
    s->acks++;
    snprintf(s->ack, sizeof s->ack, "%.*s", (int)c.len, c.base);
}

static int decode(sp_buf *b, seen *s)
{
    memset(s, 0, sizeof *s);
    sp_fwd_handler h = {s, on_entry, on_ack, &inflate_buf, 1 << 20};
    sp_mp_scan sc;
    sp_mp_scan_reset(&sc);
    int rc = sp_fwd_scan(&sc, (const uint8_t *)b->base, b->len, 1 << 20);
    if (rc != 1) return rc == 0 ? -999 : rc;
    assert_int_equal(sc.off, b->len);
    return sp_fwd_decode((const uint8_t *)b->base, b->len, &h);
}

static void put_record(sp_buf *b, const char *log)
{
    tp_put_map(b, 3);
    tp_put_str(b, "log", 3);
    tp_put_str(b, log, strlen(log));
    tp_put_str(b, "source", 6);
    tp_put_str(b, "stdout", 6);
    tp_put_str(b, "container_name", 14);
    tp_put_str(b, "/web-1", 6);
}

static void put_eventtime_fixext8(sp_buf *b, uint32_t sec, uint32_t nsec)
{
    uint8_t x[10] = {0xd7, 0x00,       sec >> 24,  sec >> 16, sec >> 8,
                     sec,  nsec >> 24, nsec >> 16, nsec >> 8, nsec};
    sp_buf_append(b, x, 10);
}

static void put_eventtime_ext8(sp_buf *b, uint32_t sec, uint32_t nsec)
{
    uint8_t x[11] = {0xc7, 8,          0x00,       sec >> 24, sec >> 16, sec >> 8,
                     sec,  nsec >> 24, nsec >> 16, nsec >> 8, nsec};
    sp_buf_append(b, x, 11);
}

static void put_chunk_option(sp_buf *b, const char *id)
{
    tp_put_map(b, 1);
    tp_put_str(b, "chunk", 5);
    tp_put_str(b, id, strlen(id));
}

static void test_message_int_time(void **st)
{
    sp_buf b = {0};
    seen s;
    tp_put_array(&b, 3);
    tp_put_str(&b, "docker.web", 10);
    tp_put_uint(&b, 1764389373);
    put_record(&b, "hello");
    assert_int_equal(decode(&b, &s), 0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.tags[0], "docker.web");
    assert_int_equal(s.sec[0], 1764389373);
    assert_int_equal(s.prec[0], 0);
    assert_string_equal(s.msg[0], "hello");
    assert_int_equal(s.acks, 0);
    sp_buf_free(&b);
}

static void test_message_eventtime_and_ack(void **st)
{
    sp_buf b = {0};
    seen s;
    tp_put_array(&b, 4);
    tp_put_str(&b, "t", 1);
    put_eventtime_fixext8(&b, 1764389373, 123456789);
    put_record(&b, "ev");
    put_chunk_option(&b, "abc==");
    assert_int_equal(decode(&b, &s), 0);
    assert_int_equal(s.sec[0], 1764389373);
    assert_int_equal(s.nsec[0], 123456789);
    assert_int_equal(s.prec[0], 9);
    assert_int_equal(s.acks, 1);
    assert_string_equal(s.ack, "abc==");
    assert_string_equal(s.chunk[0], "abc==");

    b.len = 0; /* the ext8 form of EventTime */
    tp_put_array(&b, 3);
    tp_put_str(&b, "t", 1);
    put_eventtime_ext8(&b, 7, 999999999);
    put_record(&b, "ev8");
    assert_int_equal(decode(&b, &s), 0);
    assert_int_equal(s.sec[0], 7);
    assert_int_equal(s.nsec[0], 999999999);
    sp_buf_free(&b);
}

static void test_forward_mode(void **st)
{
    sp_buf b = {0};
    seen s;
    tp_put_array(&b, 3);
    tp_put_str(&b, "fw", 2);
    tp_put_array(&b, 3);
    for (int i = 0; i < 3; i++) {
        char m[8];
        snprintf(m, sizeof m, "m%d", i);
        tp_put_array(&b, 2);
        tp_put_uint(&b, 100 + i);
        put_record(&b, m);
    }
    put_chunk_option(&b, "fwd1");
    assert_int_equal(decode(&b, &s), 0);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.msg[2], "m2");
    assert_int_equal(s.sec[1], 101);
    assert_int_equal(s.index[2], 2);
    assert_string_equal(s.chunk[0], "fwd1"); /* options after entries are known to entries */
    assert_int_equal(s.acks, 1);
    sp_buf_free(&b);
}

static void put_entries(sp_buf *e, int n)
{
    for (int i = 0; i < n; i++) {
        char m[16];
        snprintf(m, sizeof m, "p%d", i);
        tp_put_array(e, 2);
        if (i % 2)
            put_eventtime_fixext8(e, 200, i);
        else
            tp_put_uint(e, 200);
        put_record(e, m);
    }
}

static void test_packed_forward_bin_and_str(void **st)
{
    for (int as_str = 0; as_str < 2; as_str++) {
        sp_buf e = {0}, b = {0};
        seen s;
        put_entries(&e, 5);
        tp_put_array(&b, 3);
        tp_put_str(&b, "pk", 2);
        if (as_str)
            tp_put_str(&b, e.base, e.len);
        else
            tp_put_bin(&b, e.base, e.len);
        tp_put_map(&b, 1);
        tp_put_str(&b, "size", 4);
        tp_put_uint(&b, 5);
        assert_int_equal(decode(&b, &s), 0);
        assert_int_equal(s.n, 5);
        assert_string_equal(s.msg[4], "p4");
        assert_int_equal(s.prec[1], 9);
        assert_int_equal(s.nsec[3], 3);
        sp_buf_free(&e);
        sp_buf_free(&b);
    }
}

static void gzip_append(sp_buf *out, const char *data, size_t n)
{
    z_stream z = {0};
    deflateInit2(&z, 1, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    sp_buf_reserve(out, n + 256);
    z.next_in = (Bytef *)data;
    z.avail_in = (uInt)n;
    z.next_out = (Bytef *)out->base + out->len;
    z.avail_out = (uInt)(out->cap - out->len);
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    out->len = out->cap - z.avail_out;
    deflateEnd(&z);
}

static void test_compressed_packed_concatenated(void **st)
{
    sp_buf e1 = {0}, e2 = {0}, gz = {0}, b = {0};
    seen s;
    put_entries(&e1, 3);
    put_entries(&e2, 2);
    gzip_append(&gz, e1.base, e1.len); /* two gzip members, as Fluentd clients may send */
    gzip_append(&gz, e2.base, e2.len);
    tp_put_array(&b, 3);
    tp_put_str(&b, "gz", 2);
    tp_put_bin(&b, gz.base, gz.len);
    tp_put_map(&b, 2);
    tp_put_str(&b, "compressed", 10);
    tp_put_str(&b, "gzip", 4);
    tp_put_str(&b, "chunk", 5);
    tp_put_str(&b, "gzc", 3);
    assert_int_equal(decode(&b, &s), 0);
    assert_int_equal(s.n, 5);
    assert_string_equal(s.msg[3], "p0");
    assert_int_equal(s.acks, 1);

    b.len = 0; /* corrupt gzip is an error, not a crash */
    gz.base[gz.len / 2] ^= 0x55;
    tp_put_array(&b, 3);
    tp_put_str(&b, "gz", 2);
    tp_put_bin(&b, gz.base, gz.len / 2 + 3);
    tp_put_map(&b, 1);
    tp_put_str(&b, "compressed", 10);
    tp_put_str(&b, "gzip", 4);
    assert_int_equal(decode(&b, &s), SP_FWD_EGZIP);
    sp_buf_free(&e1);
    sp_buf_free(&e2);
    sp_buf_free(&gz);
    sp_buf_free(&b);
}

static void test_heartbeat_and_shapes(void **st)
{
    sp_buf b = {0};
    seen s;
    tp_put_nil(&b);
    assert_int_equal(decode(&b, &s), 0);
    assert_int_equal(s.n, 0);

    b.len = 0; /* a map is not a frame */
    tp_put_map(&b, 0);
    assert_int_equal(decode(&b, &s), SP_FWD_ESHAPE);

    b.len = 0; /* record not a map */
    tp_put_array(&b, 3);
    tp_put_str(&b, "t", 1);
    tp_put_uint(&b, 1);
    tp_put_str(&b, "x", 1);
    assert_int_equal(decode(&b, &s), SP_FWD_ESHAPE);

    b.len = 0; /* tag not a string */
    tp_put_array(&b, 3);
    tp_put_uint(&b, 5);
    tp_put_uint(&b, 1);
    put_record(&b, "x");
    assert_int_equal(decode(&b, &s), SP_FWD_ESHAPE);

    b.len = 0; /* 0xc1 is never valid */
    sp_buf_putc(&b, (char)0xc1);
    assert_int_equal(decode(&b, &s), SP_FWD_EMALFORMED);
    sp_buf_free(&b);
}

static void test_depth_and_size_limits(void **st)
{
    sp_buf b = {0};
    tp_put_array(&b, 3);
    tp_put_str(&b, "t", 1);
    tp_put_uint(&b, 1);
    for (int i = 0; i < 100; i++) {
        tp_put_map(&b, 1);
        tp_put_str(&b, "k", 1);
    }
    tp_put_nil(&b);
    sp_mp_scan sc;
    sp_mp_scan_reset(&sc);
    assert_int_equal(sp_fwd_scan(&sc, (const uint8_t *)b.base, b.len, 1 << 20), SP_FWD_EDEPTH);

    b.len = 0; /* a 2 MiB string against a 1 MiB limit: too large before it is complete */
    tp_put_array(&b, 3);
    tp_put_str(&b, "t", 1);
    tp_put_uint(&b, 1);
    tp_put_map(&b, 1);
    tp_put_str(&b, "log", 3);
    char *big = calloc(1, 2 << 20);
    tp_put_str(&b, big, 2 << 20);
    free(big);
    sp_mp_scan_reset(&sc);
    assert_int_equal(sp_fwd_scan(&sc, (const uint8_t *)b.base, 1 << 20, 1 << 20), SP_FWD_ETOOBIG);
    sp_buf_free(&b);
}

static void test_scan_resumes_byte_by_byte(void **st)
{
    sp_buf b = {0};
    tp_put_array(&b, 3);
    tp_put_str(&b, "fw", 2);
    tp_put_array(&b, 20);
    for (int i = 0; i < 20; i++) {
        tp_put_array(&b, 2);
        put_eventtime_fixext8(&b, 1, 2);
        put_record(&b, "some longer line of text");
    }
    put_chunk_option(&b, "id");
    sp_mp_scan sc;
    sp_mp_scan_reset(&sc);
    size_t n;
    for (n = 1; n < b.len; n++)
        assert_int_equal(sp_fwd_scan(&sc, (const uint8_t *)b.base, n, 1 << 20), 0);
    assert_int_equal(sp_fwd_scan(&sc, (const uint8_t *)b.base, n, 1 << 20), 1);
    assert_int_equal(sc.off, b.len);
    sp_buf_free(&b);
}

static void test_docker_record_fields(void **st)
{
    sp_buf b = {0};
    tp_put_map(&b, 9);
    tp_put_str(&b, "container_id", 12);
    tp_put_str(&b, "abc", 3);
    tp_put_str(&b, "container_name", 14);
    tp_put_str(&b, "/web", 4);
    tp_put_str(&b, "source", 6);
    tp_put_str(&b, "stderr", 6);
    tp_put_str(&b, "log", 3);
    tp_put_str(&b, "piece", 5);
    tp_put_str(&b, "partial_message", 15);
    tp_put_str(&b, "true", 4);
    tp_put_str(&b, "partial_id", 10);
    tp_put_str(&b, "pid1", 4);
    tp_put_str(&b, "partial_ordinal", 15);
    tp_put_str(&b, "2", 1);
    tp_put_str(&b, "partial_last", 12);
    tp_put_str(&b, "false", 5);
    tp_put_str(&b, "app", 3);
    tp_put_str(&b, "web", 3);
    sp_record r;
    sp_docker_partial p;
    const uint8_t *q = (const uint8_t *)b.base;
    assert_int_equal(sp_fwd_record(q, q + b.len, &r, &extras, &p), (int)b.len);
    assert_true(SP_SLICE_IS(r.container_id, "abc"));
    assert_true(SP_SLICE_IS(r.container_name, "web"));
    assert_true(SP_SLICE_IS(r.stream, "stderr"));
    assert_true(SP_SLICE_IS(r.message, "piece"));
    assert_int_equal(p.is_partial, 1);
    assert_int_equal(p.ordinal, 2);
    assert_int_equal(p.last, 0);
    assert_true(SP_SLICE_IS(p.id, "pid1"));
    assert_int_equal(r.nextras, 1); /* only "app" is kept as an extra field */
    sp_buf_free(&b);
}

static void test_try_message_fast_path(void **st)
{
    sp_buf b = {0};
    seen s;
    memset(&s, 0, sizeof s);
    sp_fwd_handler h = {&s, on_entry, on_ack, &inflate_buf, 1 << 20};
    tp_put_array(&b, 4);
    tp_put_str(&b, "docker.web", 10);
    put_eventtime_fixext8(&b, 1764389373, 42);
    put_record(&b, "fast");
    put_chunk_option(&b, "c1");
    size_t n = 0;
    /* Every proper prefix is "not here": nothing emitted, the scanner takes over. */
    for (size_t cut = 0; cut < b.len; cut++) {
        assert_int_equal(sp_fwd_try_message((const uint8_t *)b.base, cut, 1 << 20, &h, &n), 0);
        assert_int_equal(s.n, 0);
        assert_int_equal(s.acks, 0);
    }
    sp_buf_putc(&b, (char)0xc0); /* a heartbeat after the frame is not consumed */
    assert_int_equal(sp_fwd_try_message((const uint8_t *)b.base, b.len, 1 << 20, &h, &n), 1);
    assert_int_equal(n, b.len - 1);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.msg[0], "fast");
    assert_int_equal(s.nsec[0], 42);
    assert_int_equal(s.acks, 1);
    /* Over max_size: not decoded here (the scanner reports it as too large). */
    memset(&s, 0, sizeof s);
    assert_int_equal(sp_fwd_try_message((const uint8_t *)b.base, b.len, 20, &h, &n), 0);
    assert_int_equal(s.n, 0);
    /* Forward mode is left to the scanner. */
    b.len = 0;
    tp_put_array(&b, 2);
    tp_put_str(&b, "t", 1);
    tp_put_array(&b, 0);
    assert_int_equal(sp_fwd_try_message((const uint8_t *)b.base, b.len, 1 << 20, &h, &n), 0);
    sp_buf_free(&b);
}

/* ---- Fluent Bit 2.1+ out_forward, byte for byte as captured from Fluent Bit 5.1.1 ---- */

/* [[EventTime(1764389373.5), {}], {"log": "hi"}] */
static const uint8_t fb_entry[] = {0x92, 0x92, 0xd7, 0x00, 0x69, 0x2a, 0x7b, 0xfd, 0x1d, 0xcd, 0x65,
                                   0x00, 0x80, 0x81, 0xa3, 'l',  'o',  'g',  0xa2, 'h',  'i'};

static void put_fb_head(sp_buf *b, int nelem)
{
    uint8_t h[] = {0x90 | nelem, 0xa7, 'd', 'u', 'm', 'm', 'y', '.', '0'};
    sp_buf_append(b, h, sizeof h);
}

static void test_fluentbit_plain(void **st)
{
    sp_buf b = {0};
    seen s;
    put_fb_head(&b, 2); /* no options: a 2-element frame */
    sp_buf_putc(&b, (char)0x91);
    sp_buf_append(&b, fb_entry, sizeof fb_entry);
    assert_int_equal(decode(&b, &s), 0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.tags[0], "dummy.0");
    assert_string_equal(s.msg[0], "hi");
    assert_int_equal(s.sec[0], 1764391933);
    assert_int_equal(s.nsec[0], 500000000);
    assert_int_equal(s.prec[0], 9);
    assert_string_equal(s.meta[0], ""); /* empty metadata is dropped */
    assert_int_equal(s.acks, 0);
    sp_buf_free(&b);
}

static void test_fluentbit_ack_and_signal(void **st)
{
    sp_buf b = {0};
    seen s;
    static const char chunk[] = "0f5a3f3b5e1c4d2b8a9e7c6d5b4a3928";
    /* Require_ack_response: {"chunk": ..., "size": 1, "fluent_signal": 0} as map32 */
    put_fb_head(&b, 3);
    sp_buf_putc(&b, (char)0x91);
    sp_buf_append(&b, fb_entry, sizeof fb_entry);
    uint8_t m32[] = {0xdf, 0, 0, 0, 3};
    sp_buf_append(&b, m32, sizeof m32);
    tp_put_str(&b, "chunk", 5);
    tp_put_str(&b, chunk, 32);
    tp_put_str(&b, "size", 4);
    tp_put_uint(&b, 1);
    tp_put_str(&b, "fluent_signal", 13);
    tp_put_uint(&b, 0);
    assert_int_equal(decode(&b, &s), 0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.msg[0], "hi");
    assert_int_equal(s.acks, 1);
    assert_string_equal(s.ack, chunk);

    /* The same frame as metrics (1) or traces (2): acked, nothing decoded, not an error. */
    for (int sig = 1; sig <= 2; sig++) {
        b.base[b.len - 1] = (char)sig;
        assert_int_equal(decode(&b, &s), SP_FWD_OTHER_SIGNAL);
        assert_int_equal(s.n, 0);
        assert_int_equal(s.acks, 1);
    }
    /* A metrics payload is not an entry array: it must not be read at all. */
    b.len = 0;
    put_fb_head(&b, 3);
    tp_put_bin(&b, "\xc1\xc1\xc1", 3); /* not MessagePack */
    tp_put_map(&b, 2);
    tp_put_str(&b, "fluent_signal", 13);
    tp_put_uint(&b, 1);
    tp_put_str(&b, "chunk", 5);
    tp_put_str(&b, "m1", 2);
    assert_int_equal(decode(&b, &s), SP_FWD_OTHER_SIGNAL);
    assert_string_equal(s.ack, "m1");
    sp_buf_free(&b);
}

static void test_fluentbit_gzip(void **st)
{
    sp_buf plain = {0}, gz = {0}, b = {0};
    seen s;
    for (int i = 0; i < 3; i++)
        sp_buf_append(&plain, fb_entry, sizeof fb_entry);
    gzip_append(&gz, plain.base, plain.len);
    put_fb_head(&b, 3);
    tp_put_bin(&b, gz.base, gz.len);
    tp_put_map(&b, 3);
    tp_put_str(&b, "size", 4);
    tp_put_uint(&b, 3);
    tp_put_str(&b, "compressed", 10);
    tp_put_str(&b, "gzip", 4);
    tp_put_str(&b, "fluent_signal", 13);
    tp_put_uint(&b, 0);
    assert_int_equal(decode(&b, &s), 0);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.msg[2], "hi");
    assert_int_equal(s.index[2], 2);
    assert_int_equal(s.nsec[2], 500000000);
    sp_buf_free(&plain);
    sp_buf_free(&gz);
    sp_buf_free(&b);
}

static void test_fluentbit_metadata_and_int_time(void **st)
{
    sp_buf b = {0};
    seen s;
    /* Time_as_Integer, and metadata from an OpenTelemetry input: kept in the document. */
    put_fb_head(&b, 2);
    tp_put_array(&b, 2);
    tp_put_array(&b, 2); /* entry with metadata */
    tp_put_array(&b, 2);
    tp_put_uint(&b, 1764389373);
    tp_put_map(&b, 1);
    tp_put_str(&b, "otlp", 4);
    tp_put_map(&b, 1);
    tp_put_str(&b, "severity", 8);
    tp_put_uint(&b, 9);
    put_record(&b, "with-meta");
    tp_put_array(&b, 2); /* the same record with its own "fluent_metadata" key */
    tp_put_array(&b, 2);
    tp_put_uint(&b, 1764389374);
    tp_put_map(&b, 1);
    tp_put_str(&b, "k", 1);
    tp_put_str(&b, "v", 1);
    tp_put_map(&b, 2);
    tp_put_str(&b, "log", 3);
    tp_put_str(&b, "own", 3);
    tp_put_str(&b, "fluent_metadata", 15);
    tp_put_str(&b, "mine", 4);
    assert_int_equal(decode(&b, &s), 0);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.msg[0], "with-meta");
    assert_int_equal(s.sec[0], 1764389373);
    assert_int_equal(s.prec[0], 0);
    assert_string_equal(s.meta[0], "\"fluent_metadata\":{\"otlp\":{\"severity\":9}}}");
    assert_string_equal(s.msg[1], "own");
    assert_string_equal(s.meta[1],
                        "\"fluent_metadata\":\"mine\",\"_fluent_metadata\":{\"k\":\"v\"}}");

    /* Message mode with [time, metadata] (Fluent Bit with a dynamic tag). */
    b.len = 0;
    tp_put_array(&b, 4);
    tp_put_str(&b, "dyn", 3);
    tp_put_array(&b, 2);
    put_eventtime_fixext8(&b, 1764389373, 5);
    tp_put_map(&b, 0);
    put_record(&b, "msg-meta");
    put_chunk_option(&b, "mm");
    assert_int_equal(decode(&b, &s), 0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.msg[0], "msg-meta");
    assert_int_equal(s.nsec[0], 5);
    assert_string_equal(s.ack, "mm");

    /* Wrong shapes inside the time pair are errors. */
    b.len = 0;
    put_fb_head(&b, 2);
    tp_put_array(&b, 1);
    tp_put_array(&b, 2);
    tp_put_array(&b, 2);
    tp_put_uint(&b, 1);
    tp_put_str(&b, "notamap", 7);
    put_record(&b, "x");
    assert_int_equal(decode(&b, &s), SP_FWD_ESHAPE);
    b.len = 0;
    put_fb_head(&b, 3);
    sp_buf_putc(&b, (char)0x91);
    sp_buf_append(&b, fb_entry, sizeof fb_entry);
    tp_put_map(&b, 1);
    tp_put_str(&b, "fluent_signal", 13);
    tp_put_str(&b, "logs", 4);
    assert_int_equal(decode(&b, &s), SP_FWD_ESHAPE);
    sp_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_message_int_time),
        cmocka_unit_test(test_message_eventtime_and_ack),
        cmocka_unit_test(test_forward_mode),
        cmocka_unit_test(test_packed_forward_bin_and_str),
        cmocka_unit_test(test_compressed_packed_concatenated),
        cmocka_unit_test(test_heartbeat_and_shapes),
        cmocka_unit_test(test_depth_and_size_limits),
        cmocka_unit_test(test_scan_resumes_byte_by_byte),
        cmocka_unit_test(test_docker_record_fields),
        cmocka_unit_test(test_try_message_fast_path),
        cmocka_unit_test(test_fluentbit_plain),
        cmocka_unit_test(test_fluentbit_ack_and_signal),
        cmocka_unit_test(test_fluentbit_gzip),
        cmocka_unit_test(test_fluentbit_metadata_and_int_time),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    sp_buf_free(&extras);
    sp_buf_free(&inflate_buf);
    return rc;
}
