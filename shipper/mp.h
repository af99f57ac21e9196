/*
 * A small MessagePack reader and writer. The reader is a cursor over a buffer that decodes one
 * object header at a time without allocating; strings are returned as slices into the buffer.
 * The scanner finds the end of one object in a stream that arrives piecewise and resumes where
 * it stopped, so a large frame is never re-scanned from its start.
 */
#ifndef SP_MP_H
#define SP_MP_H

#include <stdint.h>

#include "slice.h"

enum {
    SP_MP_OK = 0,
    SP_MP_EAGAIN = -1, /* the buffer ends inside the object */
    SP_MP_EINVAL = -2, /* not MessagePack (the never-used byte 0xc1) */
    SP_MP_EDEPTH = -3, /* nesting deeper than allowed */
};

/** Nesting limit used by the scanner; deeper input is rejected. */
#define SP_MP_MAX_DEPTH 32

typedef enum {
    SP_MP_NIL,
    SP_MP_BOOL,
    SP_MP_UINT,
    SP_MP_INT, /* negative integers only (non-negative signed forms read as UINT) */
    SP_MP_FLOAT,
    SP_MP_STR,
    SP_MP_BIN,
    SP_MP_ARRAY,
    SP_MP_MAP,
    SP_MP_EXT,
} sp_mp_type;

/** One decoded object header. Containers carry only their element count `n`. */
typedef struct {
    sp_mp_type type;
    int8_t ext_type;
    union {
        uint64_t u;
        int64_t i;
        double f;
        int b;
        uint32_t n;
    } v;
    sp_slice s; /* str, bin and ext payload */
} sp_mp_obj;

/** Decodes the header at *p and advances past it (and past str/bin/ext payloads). */
int sp_mp_read(const uint8_t **p, const uint8_t *end, sp_mp_obj *o);

/* The whole size of each value whose first byte tells it (fixed-size scalars); SP_MP_LEN8 for
 * str8 and bin8 (the size in the next byte); 0 for the rest: fixstr (computed in
 * sp_mp_size_simple), containers, ext8/16/32, longer str and bin, 0xc1. */
#define SP_MP_LEN8 0xff
extern const uint8_t sp_mp_size_tab[256];

/** The whole size of the scalar or short string at q (q < end) when its first bytes tell it and
 * all of it is there; 0 otherwise (a container, a longer form, or cut short: sp_mp_read and
 * sp_mp_skip decide). Lets the walkers step over most values without decoding them. */
static inline size_t sp_mp_size_simple(const uint8_t *q, const uint8_t *end)
{
    uint8_t c = *q;
    size_t n = (c & 0xe0) == 0xa0 ? 1 + (size_t)(c & 0x1f) : sp_mp_size_tab[c];
    if (n == SP_MP_LEN8) n = end - q >= 2 ? 2 + (size_t)q[1] : 0;
    return (size_t)(end - q) >= n ? n : 0;
}

/** sp_mp_read with fixstr and str8 (most keys and values of a log record) decoded in line. */
static inline int sp_mp_read_fast(const uint8_t **p, const uint8_t *end, sp_mp_obj *o)
{
    const uint8_t *q = *p;
    size_t avail = (size_t)(end - q), n;
    if (avail && (q[0] & 0xe0) == 0xa0 && avail > (n = q[0] & 0x1fu)) {
        o->type = SP_MP_STR;
        o->s = sp_slice_make(q + 1, n);
        *p = q + 1 + n;
        return SP_MP_OK;
    }
    if (avail >= 2 && q[0] == 0xd9 && avail - 2 >= (n = q[1])) {
        o->type = SP_MP_STR;
        o->s = sp_slice_make(q + 2, n);
        *p = q + 2 + n;
        return SP_MP_OK;
    }
    return sp_mp_read(p, end, o);
}

/** Skips one complete object including its children. */
int sp_mp_skip(const uint8_t **p, const uint8_t *end);

/** Resumable scanner state; zero-initialise (or sp_mp_scan_reset) before a new object. */
typedef struct {
    size_t off;
    int depth;
    uint64_t remaining[SP_MP_MAX_DEPTH + 1];
} sp_mp_scan;

static inline void sp_mp_scan_reset(sp_mp_scan *s)
{
    s->off = 0;
    s->depth = 0;
}

/**
 * Advances the scanner over buf[0..len) (the same buffer start each call, growing). Returns 1
 * when the object is complete (its length is then s->off), 0 when more bytes are needed, or a
 * negative SP_MP_E* error.
 */
int sp_mp_scan_feed(sp_mp_scan *s, const uint8_t *buf, size_t len);

/* Writer: appends MessagePack to a buffer. */
void sp_mp_put_nil(sp_buf *b);
void sp_mp_put_bool(sp_buf *b, int v);
void sp_mp_put_uint(sp_buf *b, uint64_t v);
void sp_mp_put_int(sp_buf *b, int64_t v);
void sp_mp_put_double(sp_buf *b, double v);
void sp_mp_put_str(sp_buf *b, const void *s, size_t n);
void sp_mp_put_bin(sp_buf *b, const void *s, size_t n);
void sp_mp_put_array(sp_buf *b, uint32_t n);
void sp_mp_put_map(sp_buf *b, uint32_t n);
/** Writes a map32 header whose count is patched later with sp_mp_patch_map32. */
size_t sp_mp_put_map32(sp_buf *b);
void sp_mp_patch_map32(sp_buf *b, size_t at, uint32_t n);

/** Bytes of the smallest str header (fixstr, str8, str16, str32) for `n` bytes. */
static inline size_t sp_mp_str_hlen(size_t n)
{
    return n < 32 ? 1 : n < 256 ? 2 : n < 65536 ? 3 : 5;
}

/**
 * Writes a str header of `hlen` bytes (1, 2, 3 or 5; at least sp_mp_str_hlen(n)) for `n` bytes
 * at h: for writers that reserve the header before they know the exact length and patch it.
 */
static inline void sp_mp_str_header(uint8_t *h, size_t hlen, size_t n)
{
    if (hlen == 1) {
        h[0] = (uint8_t)(0xa0 | n);
    } else if (hlen == 2) {
        h[0] = 0xd9;
        h[1] = (uint8_t)n;
    } else if (hlen == 3) {
        h[0] = 0xda;
        h[1] = (uint8_t)(n >> 8);
        h[2] = (uint8_t)n;
    } else {
        h[0] = 0xdb;
        h[1] = (uint8_t)(n >> 24);
        h[2] = (uint8_t)(n >> 16);
        h[3] = (uint8_t)(n >> 8);
        h[4] = (uint8_t)n;
    }
}

static inline uint16_t sp_be16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}
static inline uint32_t sp_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t sp_be64(const uint8_t *p)
{
    return ((uint64_t)sp_be32(p) << 32) | sp_be32(p + 4);
}

/**
 * The size of a str8/16/32 or bin8/16/32 object at q (header plus payload; *hlen its header), or
 * 0 when q holds another type or a header cut short by `end`. The payload may still run past
 * `end`: the caller checks. For readers that look at one byte before calling sp_mp_read.
 */
static inline size_t sp_mp_strbin_size(const uint8_t *q, const uint8_t *end, size_t *hlen)
{
    uint8_t c = *q;
    size_t h = c == 0xd9 || c == 0xc4   ? 2
               : c == 0xda || c == 0xc5 ? 3
               : c == 0xdb || c == 0xc6 ? 5
                                        : 0;
    if (!h || (size_t)(end - q) < h) return 0;
    size_t n = h == 2 ? q[1] : h == 3 ? sp_be16(q + 1) : sp_be32(q + 1);
    *hlen = h;
    return h + n;
}

#endif
