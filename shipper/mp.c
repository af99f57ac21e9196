/* MessagePack reader, resumable scanner and writer. */
#include "mp.h"

#define NEED(n)                                                                                    \
    do {                                                                                           \
        if ((size_t)(end - q) < (size_t)(n)) return SP_MP_EAGAIN;                                  \
    } while (0)

/* Long (about 220 lines): one case per MessagePack format byte, in the spec's order; it runs
 * for every value of every record, so it stays one switch without calls between cases. */
int sp_mp_read(const uint8_t **p, const uint8_t *end, sp_mp_obj *o)
{
    const uint8_t *q = *p;
    NEED(1);
    uint8_t c = *q++;
    size_t len;

    if (c <= 0x7f) {
        o->type = SP_MP_UINT;
        o->v.u = c;
        goto done;
    }
    if (c >= 0xe0) {
        o->type = SP_MP_INT;
        o->v.i = (int8_t)c;
        goto done;
    }
    if ((c & 0xe0) == 0xa0) {
        len = c & 0x1f;
        o->type = SP_MP_STR;
        goto payload;
    }
    if ((c & 0xf0) == 0x90) {
        o->type = SP_MP_ARRAY;
        o->v.n = c & 0x0f;
        goto done;
    }
    if ((c & 0xf0) == 0x80) {
        o->type = SP_MP_MAP;
        o->v.n = c & 0x0f;
        goto done;
    }
    switch (c) {
    case 0xc0:
        o->type = SP_MP_NIL;
        goto done;
    case 0xc2:
        o->type = SP_MP_BOOL;
        o->v.b = 0;
        goto done;
    case 0xc3:
        o->type = SP_MP_BOOL;
        o->v.b = 1;
        goto done;
    case 0xc4:
        NEED(1);
        len = q[0];
        q += 1;
        o->type = SP_MP_BIN;
        goto payload;
    case 0xc5:
        NEED(2);
        len = sp_be16(q);
        q += 2;
        o->type = SP_MP_BIN;
        goto payload;
    case 0xc6:
        NEED(4);
        len = sp_be32(q);
        q += 4;
        o->type = SP_MP_BIN;
        goto payload;
    case 0xc7:
        NEED(2);
        len = q[0];
        o->ext_type = (int8_t)q[1];
        q += 2;
        o->type = SP_MP_EXT;
        goto payload;
    case 0xc8:
        NEED(3);
        len = sp_be16(q);
        o->ext_type = (int8_t)q[2];
        q += 3;
        o->type = SP_MP_EXT;
        goto payload;
    case 0xc9:
        NEED(5);
        len = sp_be32(q);
        o->ext_type = (int8_t)q[4];
        q += 5;
        o->type = SP_MP_EXT;
        goto payload;
    case 0xca: {
        NEED(4);
        union {
            uint32_t u;
            float f;
        } x = {.u = sp_be32(q)};
        q += 4;
        o->type = SP_MP_FLOAT;
        o->v.f = x.f;
        goto done;
    }
    case 0xcb: {
        NEED(8);
        union {
            uint64_t u;
            double f;
        } x = {.u = sp_be64(q)};
        q += 8;
        o->type = SP_MP_FLOAT;
        o->v.f = x.f;
        goto done;
    }
    case 0xcc:
        NEED(1);
        o->type = SP_MP_UINT;
        o->v.u = q[0];
        q += 1;
        goto done;
    case 0xcd:
        NEED(2);
        o->type = SP_MP_UINT;
        o->v.u = sp_be16(q);
        q += 2;
        goto done;
    case 0xce:
        NEED(4);
        o->type = SP_MP_UINT;
        o->v.u = sp_be32(q);
        q += 4;
        goto done;
    case 0xcf:
        NEED(8);
        o->type = SP_MP_UINT;
        o->v.u = sp_be64(q);
        q += 8;
        goto done;
    case 0xd0:
        NEED(1);
        o->type = SP_MP_INT;
        o->v.i = (int8_t)q[0];
        q += 1;
        goto done;
    case 0xd1:
        NEED(2);
        o->type = SP_MP_INT;
        o->v.i = (int16_t)sp_be16(q);
        q += 2;
        goto done;
    case 0xd2:
        NEED(4);
        o->type = SP_MP_INT;
        o->v.i = (int32_t)sp_be32(q);
        q += 4;
        goto done;
    case 0xd3:
        NEED(8);
        o->type = SP_MP_INT;
        o->v.i = (int64_t)sp_be64(q);
        q += 8;
        goto done;
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
        NEED(1);
        len = (size_t)1 << (c - 0xd4);
        o->ext_type = (int8_t)q[0];
        q += 1;
        o->type = SP_MP_EXT;
        goto payload;
    case 0xd9:
        NEED(1);
        len = q[0];
        q += 1;
        o->type = SP_MP_STR;
        goto payload;
    case 0xda:
        NEED(2);
        len = sp_be16(q);
        q += 2;
        o->type = SP_MP_STR;
        goto payload;
    case 0xdb:
        NEED(4);
        len = sp_be32(q);
        q += 4;
        o->type = SP_MP_STR;
        goto payload;
    case 0xdc:
        NEED(2);
        o->type = SP_MP_ARRAY;
        o->v.n = sp_be16(q);
        q += 2;
        goto done;
    case 0xdd:
        NEED(4);
        o->type = SP_MP_ARRAY;
        o->v.n = sp_be32(q);
        q += 4;
        goto done;
    case 0xde:
        NEED(2);
        o->type = SP_MP_MAP;
        o->v.n = sp_be16(q);
        q += 2;
        goto done;
    case 0xdf:
        NEED(4);
        o->type = SP_MP_MAP;
        o->v.n = sp_be32(q);
        q += 4;
        goto done;
    default:
        return SP_MP_EINVAL; /* 0xc1 */
    }
payload:
    NEED(len);
    o->s.base = (const char *)q;
    o->s.len = len;
    q += len;
done:
    /* Encoders may write small positive numbers in signed forms (Go's does for time):
     * report every non-negative integer as UINT so callers check one type. */
    if (o->type == SP_MP_INT && o->v.i >= 0) {
        o->type = SP_MP_UINT;
        o->v.u = (uint64_t)o->v.i;
    }
    *p = q;
    return SP_MP_OK;
}

int sp_mp_scan_feed(sp_mp_scan *s, const uint8_t *buf, size_t len)
{
    const uint8_t *end = buf + len;
    if (s->off == 0 && s->depth == 0) s->remaining[0] = 1;
    for (;;) {
        /* Pop finished levels; the object is complete when the outermost level is done. */
        while (s->remaining[s->depth] == 0) {
            if (s->depth == 0) return 1;
            s->depth--;
        }
        const uint8_t *q = buf + s->off;
        sp_mp_obj o;
        int rc = sp_mp_read(&q, end, &o);
        if (rc != SP_MP_OK) return rc == SP_MP_EAGAIN ? 0 : rc;
        s->off = (size_t)(q - buf);
        s->remaining[s->depth]--;
        if (o.type == SP_MP_ARRAY || o.type == SP_MP_MAP) {
            /* An empty container counts as a level too, as in sp_mp_skip and msgpack-c
             * (docs/msgpack.md "Limits"): the scanner must not pass what the decoder rejects. */
            if (s->depth == SP_MP_MAX_DEPTH) return SP_MP_EDEPTH;
            if (o.v.n > 0)
                s->remaining[++s->depth] = o.type == SP_MP_MAP ? 2 * (uint64_t)o.v.n : o.v.n;
        }
    }
}

const uint8_t sp_mp_size_tab[256] = {
    [0x00 ... 0x7f] = 1,                                      /* positive fixint */
    [0xc0] = 1,                                               /* nil */
    [0xc2 ... 0xc3] = 1,                                      /* false, true */
    [0xc4] = SP_MP_LEN8,                                      /* bin8 */
    [0xca] = 5,                                               /* float32, float64 */
    [0xcb] = 9,          [0xcc] = 2,                          /* uint8..64 */
    [0xcd] = 3,          [0xce] = 5, [0xcf] = 9,  [0xd0] = 2, /* int8..64 */
    [0xd1] = 3,          [0xd2] = 5, [0xd3] = 9,  [0xd4] = 3, /* fixext 1, 2, 4, 8, 16 */
    [0xd5] = 4,          [0xd6] = 6, [0xd7] = 10, [0xd8] = 18, [0xd9] = SP_MP_LEN8, /* str8 */
    [0xe0 ... 0xff] = 1, /* negative fixint */
};

static int sp_mp_skip_depth(const uint8_t **p, const uint8_t *end, int depth)
{
    const uint8_t *q = *p;
    size_t n;
    if (q < end && (n = sp_mp_size_simple(q, end))) { /* scalars, short strings */
        *p = q + n;
        return SP_MP_OK;
    }
    if (q < end && (*q & 0xe0) == 0x80) { /* fixmap, fixarray: a level even when empty */
        if (depth >= SP_MP_MAX_DEPTH) return SP_MP_EDEPTH;
        uint32_t k = (uint32_t)(*q & 0x0f) << ((*q & 0xf0) == 0x80); /* a map: 2 per entry */
        q++;
        for (uint32_t i = 0; i < k; i++) {
            if (q < end && (n = sp_mp_size_simple(q, end))) { /* most members: no call */
                q += n;
                continue;
            }
            *p = q;
            int rc = sp_mp_skip_depth(p, end, depth + 1);
            if (rc) return rc;
            q = *p;
        }
        *p = q;
        return SP_MP_OK;
    }
    sp_mp_obj o;
    int rc = sp_mp_read(p, end, &o);
    if (rc) return rc;
    if (o.type != SP_MP_ARRAY && o.type != SP_MP_MAP) return SP_MP_OK;
    if (depth >= SP_MP_MAX_DEPTH) return SP_MP_EDEPTH;
    uint64_t m = o.type == SP_MP_MAP ? 2 * (uint64_t)o.v.n : o.v.n;
    for (uint64_t i = 0; i < m; i++)
        if ((rc = sp_mp_skip_depth(p, end, depth + 1))) return rc;
    return SP_MP_OK;
}

int sp_mp_skip(const uint8_t **p, const uint8_t *end)
{
    /* Recursion bounded by SP_MP_MAX_DEPTH; cheaper than the scanner for complete buffers. */
    return sp_mp_skip_depth(p, end, 0);
}

/* ---- writer ---- */

static inline void sp_mp_put1(sp_buf *b, uint8_t c)
{
    sp_buf_putc(b, (char)c);
}

static void sp_mp_put_be(sp_buf *b, uint8_t tag, uint64_t v, int bytes)
{
    sp_buf_reserve(b, 1 + bytes);
    uint8_t *o = (uint8_t *)b->base + b->len;
    o[0] = tag;
    for (int i = 0; i < bytes; i++)
        o[1 + i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
    b->len += 1 + bytes;
}

void sp_mp_put_nil(sp_buf *b)
{
    sp_mp_put1(b, 0xc0);
}

void sp_mp_put_bool(sp_buf *b, int v)
{
    sp_mp_put1(b, v ? 0xc3 : 0xc2);
}

void sp_mp_put_uint(sp_buf *b, uint64_t v)
{
    if (v <= 0x7f)
        sp_mp_put1(b, (uint8_t)v);
    else if (v <= 0xff)
        sp_mp_put_be(b, 0xcc, v, 1);
    else if (v <= 0xffff)
        sp_mp_put_be(b, 0xcd, v, 2);
    else if (v <= 0xffffffffu)
        sp_mp_put_be(b, 0xce, v, 4);
    else
        sp_mp_put_be(b, 0xcf, v, 8);
}

void sp_mp_put_int(sp_buf *b, int64_t v)
{
    if (v >= 0)
        sp_mp_put_uint(b, (uint64_t)v);
    else if (v >= -32)
        sp_mp_put1(b, (uint8_t)(int8_t)v);
    else if (v >= INT8_MIN)
        sp_mp_put_be(b, 0xd0, (uint8_t)(int8_t)v, 1);
    else if (v >= INT16_MIN)
        sp_mp_put_be(b, 0xd1, (uint16_t)(int16_t)v, 2);
    else if (v >= INT32_MIN)
        sp_mp_put_be(b, 0xd2, (uint32_t)(int32_t)v, 4);
    else
        sp_mp_put_be(b, 0xd3, (uint64_t)v, 8);
}

void sp_mp_put_double(sp_buf *b, double v)
{
    union {
        double f;
        uint64_t u;
    } x = {.f = v};
    sp_mp_put_be(b, 0xcb, x.u, 8);
}

static void sp_mp_put_raw(sp_buf *b, const void *s, size_t n)
{
    sp_buf_append(b, s, n);
}

void sp_mp_put_str(sp_buf *b, const void *s, size_t n)
{
    size_t hlen = sp_mp_str_hlen(n);
    sp_buf_reserve(b, hlen + n);
    sp_mp_str_header((uint8_t *)b->base + b->len, hlen, n);
    b->len += hlen;
    sp_mp_put_raw(b, s, n);
}

void sp_mp_put_bin(sp_buf *b, const void *s, size_t n)
{
    if (n <= 0xff)
        sp_mp_put_be(b, 0xc4, n, 1);
    else if (n <= 0xffff)
        sp_mp_put_be(b, 0xc5, n, 2);
    else
        sp_mp_put_be(b, 0xc6, n, 4);
    sp_mp_put_raw(b, s, n);
}

void sp_mp_put_array(sp_buf *b, uint32_t n)
{
    if (n <= 15)
        sp_mp_put1(b, (uint8_t)(0x90 | n));
    else if (n <= 0xffff)
        sp_mp_put_be(b, 0xdc, n, 2);
    else
        sp_mp_put_be(b, 0xdd, n, 4);
}

void sp_mp_put_map(sp_buf *b, uint32_t n)
{
    if (n <= 15)
        sp_mp_put1(b, (uint8_t)(0x80 | n));
    else if (n <= 0xffff)
        sp_mp_put_be(b, 0xde, n, 2);
    else
        sp_mp_put_be(b, 0xdf, n, 4);
}

size_t sp_mp_put_map32(sp_buf *b)
{
    size_t at = b->len;
    sp_mp_put_be(b, 0xdf, 0, 4);
    return at;
}

void sp_mp_patch_map32(sp_buf *b, size_t at, uint32_t n)
{
    uint8_t *o = (uint8_t *)b->base + at + 1;
    o[0] = (uint8_t)(n >> 24);
    o[1] = (uint8_t)(n >> 16);
    o[2] = (uint8_t)(n >> 8);
    o[3] = (uint8_t)n;
}
