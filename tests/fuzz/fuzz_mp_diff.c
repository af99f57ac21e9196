/* libFuzzer differential harness: shipper/mp.c against msgpack-c (docs/msgpack.md).
 *
 * The input is read as a sequence of MessagePack objects. For each one, mp.c's three readers
 * (sp_mp_skip on the whole buffer, the resumable scanner fed in two pieces, sp_mp_read walking
 * the values) and msgpack-c's msgpack_unpack_next must agree: on accept, on "incomplete", on
 * reject, on the object's length and on every value (str/bin/ext payloads must be the same bytes
 * of the input, at the same address). Deliberate differences, each in docs/msgpack.md:
 *  - rejection reasons: mp.c says EINVAL (0xc1) or EDEPTH, msgpack-c PARSE_ERROR or NOMEM_ERROR
 *    (its answer to nesting past 32); only "rejected" is compared;
 *  - float width: mp.c widens float32 to double and does not say which it read;
 *  - a container claiming more elements than bytes remain: msgpack-c allocates the elements when
 *    it reads the header (up to 48 bytes per claimed element), mp.c allocates nothing; such
 *    input is certainly incomplete or invalid, and only mp.c's readers are compared on it;
 *  - an ext32 of length 2^32-1: msgpack-c rejects it (length + type byte overflow its 32-bit
 *    counter), mp.c says incomplete; only mp.c's readers are compared on such input.
 */
#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mp.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_mp_diff: %s (line %d)\n", #c, __LINE__);                         \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* 1 when, from p on, some container header claims more elements than bytes follow it, or an
 * ext32 claims 2^32-1 bytes (msgpack-c counts the type byte into the 32-bit length and rejects
 * it as a parse error; mp.c waits for the bytes). */
static int fz_beyond_msgpack_c(const uint8_t *p, const uint8_t *end)
{
    sp_mp_obj o;
    for (;;) {
        if (end - p >= 5 && p[0] == 0xc9 && sp_be32(p + 1) == UINT32_MAX) return 1;
        if (p >= end || sp_mp_read(&p, end, &o) != SP_MP_OK) break;
        if (o.type == SP_MP_ARRAY && o.v.n > (size_t)(end - p)) return 1;
        if (o.type == SP_MP_MAP && 2 * (uint64_t)o.v.n > (size_t)(end - p)) return 1;
    }
    return 0;
}

static void fz_same_value(const uint8_t **p, const uint8_t *end, const msgpack_object *m)
{
    sp_mp_obj o;
    CHECK(sp_mp_read(p, end, &o) == SP_MP_OK);
    switch (o.type) {
    case SP_MP_NIL:
        CHECK(m->type == MSGPACK_OBJECT_NIL);
        break;
    case SP_MP_BOOL:
        CHECK(m->type == MSGPACK_OBJECT_BOOLEAN && m->via.boolean == !!o.v.b);
        break;
    case SP_MP_UINT:
        CHECK(m->type == MSGPACK_OBJECT_POSITIVE_INTEGER && m->via.u64 == o.v.u);
        break;
    case SP_MP_INT:
        CHECK(m->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && m->via.i64 == o.v.i);
        CHECK(o.v.i < 0);
        break;
    case SP_MP_FLOAT:
        CHECK(m->type == MSGPACK_OBJECT_FLOAT32 || m->type == MSGPACK_OBJECT_FLOAT64);
        CHECK(memcmp(&m->via.f64, &o.v.f, sizeof(double)) == 0 ||
              (m->via.f64 != m->via.f64 && o.v.f != o.v.f));
        break;
    case SP_MP_STR:
    case SP_MP_BIN:
        CHECK(m->type == (o.type == SP_MP_STR ? MSGPACK_OBJECT_STR : MSGPACK_OBJECT_BIN));
        CHECK(m->via.str.size == o.s.len && (o.s.len == 0 || m->via.str.ptr == o.s.base));
        break;
    case SP_MP_EXT:
        CHECK(m->type == MSGPACK_OBJECT_EXT && m->via.ext.type == o.ext_type);
        CHECK(m->via.ext.size == o.s.len && (o.s.len == 0 || m->via.ext.ptr == o.s.base));
        break;
    case SP_MP_ARRAY:
        CHECK(m->type == MSGPACK_OBJECT_ARRAY && m->via.array.size == o.v.n);
        for (uint32_t i = 0; i < o.v.n; i++)
            fz_same_value(p, end, &m->via.array.ptr[i]);
        break;
    case SP_MP_MAP:
        CHECK(m->type == MSGPACK_OBJECT_MAP && m->via.map.size == o.v.n);
        for (uint32_t i = 0; i < o.v.n; i++) {
            fz_same_value(p, end, &m->via.map.ptr[i].key);
            fz_same_value(p, end, &m->via.map.ptr[i].val);
        }
        break;
    }
}

/* mp.c's verdict on the object at p: its length (> 0), 0 for incomplete, < 0 rejected; the
 * skipper and the scanner (fed a piece, then everything) must agree on it. */
static long fz_mp_verdict(const uint8_t *p, const uint8_t *end)
{
    const uint8_t *q = p;
    int rc = sp_mp_skip(&q, end);
    sp_mp_scan sc = {0};
    size_t len = (size_t)(end - p);
    int s = sp_mp_scan_feed(&sc, p, len / 2);
    CHECK(s <= 0 || sc.off <= len / 2);
    if (s == 0) s = sp_mp_scan_feed(&sc, p, len);
    if (rc == SP_MP_OK) {
        CHECK(s == 1 && sc.off == (size_t)(q - p));
        return (long)(q - p);
    }
    if (rc == SP_MP_EAGAIN) {
        CHECK(s == 0);
        return 0;
    }
    CHECK(s < 0);
    return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static msgpack_unpacked u;
    static int ready;
    if (!ready) {
        msgpack_unpacked_init(&u);
        ready = 1;
    }
    const uint8_t *end = data + size;
    size_t off = 0;
    while (off < size) {
        long mp = fz_mp_verdict(data + off, end);
        if (fz_beyond_msgpack_c(data + off, end)) return 0; /* only mp.c's readers compared */
        size_t moff = off;
        int rc = msgpack_unpack_next(&u, (const char *)data, size, &moff);
        if (mp > 0) {
            CHECK(rc == MSGPACK_UNPACK_SUCCESS || rc == MSGPACK_UNPACK_EXTRA_BYTES);
            CHECK(moff - off == (size_t)mp);
            const uint8_t *p = data + off;
            fz_same_value(&p, end, &u.data);
            CHECK(p == data + moff);
            off = moff;
        } else if (mp == 0) {
            CHECK(rc == MSGPACK_UNPACK_CONTINUE);
            return 0;
        } else {
            CHECK(rc == MSGPACK_UNPACK_PARSE_ERROR || rc == MSGPACK_UNPACK_NOMEM_ERROR);
            return 0;
        }
    }
    return 0;
}
