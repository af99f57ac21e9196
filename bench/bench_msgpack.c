/* Growable buffer, a minimal msgpack writer, the ack reader and base64.
 *
 * The writer emits exactly the encodings Docker's fluentd driver (Go msgp) emits, so the frames
 * exercise the same decoder paths in shipper as real traffic: fixstr/str8/str16 by length,
 * smallest signed int form, fixext8 for EventTime.
 */
#include "bench.h"

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

static void put_be(bench_buf_t *b, uint8_t tag, uint64_t v, int bytes)
{
    uint8_t *p = (uint8_t *)bench_buf_reserve(b, 1 + (size_t)bytes);
    p[0] = tag;
    for (int i = 0; i < bytes; i++)
        p[1 + i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
    b->len += 1 + (size_t)bytes;
}

void bench_mp_array(bench_buf_t *b, uint32_t n)
{
    if (n < 16)
        bench_buf_putc(b, (char)(0x90 | n));
    else if (n < 65536)
        put_be(b, 0xdc, n, 2);
    else
        put_be(b, 0xdd, n, 4);
}

void bench_mp_map(bench_buf_t *b, uint32_t n)
{
    if (n < 16)
        bench_buf_putc(b, (char)(0x80 | n));
    else if (n < 65536)
        put_be(b, 0xde, n, 2);
    else
        put_be(b, 0xdf, n, 4);
}

void bench_mp_str_header(bench_buf_t *b, size_t n)
{
    if (n < 32)
        bench_buf_putc(b, (char)(0xa0 | n));
    else if (n < 256)
        put_be(b, 0xd9, n, 1);
    else if (n < 65536)
        put_be(b, 0xda, n, 2);
    else
        put_be(b, 0xdb, n, 4);
}

void bench_mp_str(bench_buf_t *b, const char *s, size_t n)
{
    bench_mp_str_header(b, n);
    bench_buf_append(b, s, n);
}

void bench_mp_cstr(bench_buf_t *b, const char *s)
{
    bench_mp_str(b, s, strlen(s));
}

void bench_mp_bin_header(bench_buf_t *b, size_t n)
{
    if (n < 256)
        put_be(b, 0xc4, n, 1);
    else if (n < 65536)
        put_be(b, 0xc5, n, 2);
    else
        put_be(b, 0xc6, n, 4);
}

void bench_mp_int(bench_buf_t *b, int64_t v)
{
    /* Same choice as msgp's AppendInt64: a unix time today becomes int32 (0xd2), not uint32. */
    if (v >= 0 && v < 128)
        bench_buf_putc(b, (char)v);
    else if (v < 0 && v >= -32)
        bench_buf_putc(b, (char)(0xe0 | (v + 32)));
    else if (v >= INT8_MIN && v <= INT8_MAX)
        put_be(b, 0xd0, (uint64_t)v, 1);
    else if (v >= INT16_MIN && v <= INT16_MAX)
        put_be(b, 0xd1, (uint64_t)v, 2);
    else if (v >= INT32_MIN && v <= INT32_MAX)
        put_be(b, 0xd2, (uint64_t)v, 4);
    else
        put_be(b, 0xd3, (uint64_t)v, 8);
}

void bench_mp_eventtime(bench_buf_t *b, uint32_t sec, uint32_t nsec)
{
    uint8_t *p = (uint8_t *)bench_buf_reserve(b, 10);
    p[0] = 0xd7;
    p[1] = 0x00;
    for (int i = 0; i < 4; i++) {
        p[2 + i] = (uint8_t)(sec >> (24 - 8 * i));
        p[6 + i] = (uint8_t)(nsec >> (24 - 8 * i));
    }
    b->len += 10;
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
