/* Growable buffer, the msgpack writer, the ack reader and base64.
 *
 * The writer is msgpack-c's packer (msgpack_packer, writing into a bench_buf_t), so the encoder
 * the tests and benchmarks trust is not the author of shipper's decoder (shipper/mp.c). It emits
 * exactly the encodings Docker's fluentd driver (Go msgp) emits, so the frames exercise the same
 * decoder paths in shipper as real traffic: fixstr/str8/str16 by length, the smallest signed int
 * form (msgpack_pack_fix_int*: msgp writes a unix time as int32, msgpack-c's own choice would be
 * uint32), fixext8 for EventTime. Frames are encoded once, before the clock starts.
 */
#include "bench.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

void bench_buf_init(bench_buf_t *b, size_t cap)
{
    b->data = cap ? bench_xmalloc(cap) : NULL;
    b->len = 0;
    b->cap = cap;
}

void bench_buf_free(bench_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

char *bench_buf_reserve(bench_buf_t *b, size_t extra)
{
    if (b->len + extra > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + extra)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (p == NULL) bench_die("out of memory (%zu bytes)", cap);
        b->data = p;
        b->cap = cap;
    }
    return b->data + b->len;
}

void bench_buf_append(bench_buf_t *b, const void *p, size_t n)
{
    memcpy(bench_buf_reserve(b, n), p, n);
    b->len += n;
}

void bench_buf_putc(bench_buf_t *b, char c)
{
    *bench_buf_reserve(b, 1) = c;
    b->len++;
}

/* msgpack_packer callback: append to the bench_buf_t. */
static int bench_mp_write(void *data, const char *buf, size_t len)
{
    bench_buf_append(data, buf, len);
    return 0;
}

static inline msgpack_packer bench_mp_packer(bench_buf_t *b)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, b, bench_mp_write);
    return pk;
}

void bench_mp_array(bench_buf_t *b, uint32_t n)
{
    msgpack_packer pk = bench_mp_packer(b);
    msgpack_pack_array(&pk, n);
}

void bench_mp_map(bench_buf_t *b, uint32_t n)
{
    msgpack_packer pk = bench_mp_packer(b);
    msgpack_pack_map(&pk, n);
}

void bench_mp_str_header(bench_buf_t *b, size_t n)
{
    msgpack_packer pk = bench_mp_packer(b);
    msgpack_pack_str(&pk, n);
}

void bench_mp_str(bench_buf_t *b, const char *s, size_t n)
{
    msgpack_packer pk = bench_mp_packer(b);
    msgpack_pack_str_with_body(&pk, s, n);
}

void bench_mp_cstr(bench_buf_t *b, const char *s)
{
    bench_mp_str(b, s, strlen(s));
}

void bench_mp_bin_header(bench_buf_t *b, size_t n)
{
    msgpack_packer pk = bench_mp_packer(b);
    msgpack_pack_bin(&pk, n);
}

void bench_mp_int(bench_buf_t *b, int64_t v)
{
    msgpack_packer pk = bench_mp_packer(b);
    /* msgp's AppendInt64: fixints, then the smallest *signed* form, so a unix time today is
     * int32 (0xd2), where msgpack_pack_int64 would pick uint32 (0xce). */
    if (v >= -32 && v < 128)
        msgpack_pack_int64(&pk, v); /* positive or negative fixint */
    else if (v >= INT8_MIN && v <= INT8_MAX)
        msgpack_pack_fix_int8(&pk, (int8_t)v);
    else if (v >= INT16_MIN && v <= INT16_MAX)
        msgpack_pack_fix_int16(&pk, (int16_t)v);
    else if (v >= INT32_MIN && v <= INT32_MAX)
        msgpack_pack_fix_int32(&pk, (int32_t)v);
    else
        msgpack_pack_fix_int64(&pk, v);
}

void bench_mp_eventtime(bench_buf_t *b, uint32_t sec, uint32_t nsec)
{
    msgpack_packer pk = bench_mp_packer(b);
    uint8_t body[8];
    for (int i = 0; i < 4; i++) {
        body[i] = (uint8_t)(sec >> (24 - 8 * i));
        body[4 + i] = (uint8_t)(nsec >> (24 - 8 * i));
    }
    msgpack_pack_ext_with_body(&pk, body, sizeof body, 0); /* fixext8 (0xd7), type 0 */
}

/* Reads a str header at p; returns bytes of header, 0 if incomplete, -1 if not a str. */
static int read_str_header(const uint8_t *p, size_t len, size_t *n)
{
    if (len < 1) return 0;
    if ((p[0] & 0xe0) == 0xa0) {
        *n = p[0] & 0x1f;
        return 1;
    }
    int w = p[0] == 0xd9 ? 1 : p[0] == 0xda ? 2 : p[0] == 0xdb ? 4 : -1;
    if (w < 0) return -1;
    if (len < 1 + (size_t)w) return 0;
    *n = 0;
    for (int i = 0; i < w; i++)
        *n = (*n << 8) | p[1 + i];
    return 1 + w;
}

int bench_mp_read_ack(const char *p, size_t len, size_t *used, const char **id, size_t *idlen,
                      const char **err)
{
    const uint8_t *u = (const uint8_t *)p;
    size_t pos = 0, n;
    int h;

    /* Servers answer with a one-entry map; anything else is a protocol error worth reporting. */
    if (len < 1) return 0;
    if (u[0] != 0x81) {
        *err = "ack response is not a one-entry msgpack map";
        return -1;
    }
    pos = 1;
    if ((h = read_str_header(u + pos, len - pos, &n)) <= 0) {
        *err = "ack response key is not a string";
        return h == 0 ? 0 : -1;
    }
    pos += (size_t)h;
    if (len - pos < n) return 0;
    if (n != 3 || memcmp(p + pos, "ack", 3) != 0) {
        *err = "ack response key is not \"ack\"";
        return -1;
    }
    pos += n;
    if ((h = read_str_header(u + pos, len - pos, &n)) <= 0) {
        *err = "ack response value is not a string";
        return h == 0 ? 0 : -1;
    }
    pos += (size_t)h;
    if (len - pos < n) return 0;
    *id = p + pos;
    *idlen = n;
    *used = pos + n;
    return 1;
}

void bench_base64(const uint8_t *in, size_t n, char *out)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *out++ = tbl[v >> 18];
        *out++ = tbl[(v >> 12) & 63];
        *out++ = tbl[(v >> 6) & 63];
        *out++ = tbl[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        *out++ = tbl[v >> 18];
        *out++ = tbl[(v >> 12) & 63];
        *out++ = '=';
        *out++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        *out++ = tbl[v >> 18];
        *out++ = tbl[(v >> 12) & 63];
        *out++ = tbl[(v >> 6) & 63];
        *out++ = '=';
    }
}
