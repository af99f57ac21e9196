/* MessagePack for the tests, encoded by msgpack-c's packer (msgpack_packer writing into an
 * sp_buf), so the encoder the tests trust is not the author of the decoder they test
 * (shipper/mp.c). Same signatures as mp.h's sp_mp_put_*; msgpack-c picks the smallest form for
 * each value (docs/msgpack.md). Tests that need a particular form write it with tp_raw. */
#ifndef TESTS_MP_PACK_H
#define TESTS_MP_PACK_H

#include <msgpack.h>
#include <stdint.h>
#include <string.h>

#include "slice.h"

static int tp_write(void *data, const char *buf, size_t len)
{
    sp_buf_append(data, buf, len);
    return 0;
}

static inline msgpack_packer tp_packer(sp_buf *b)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, b, tp_write);
    return pk;
}

static inline void tp_put_nil(sp_buf *b)
{
    msgpack_packer pk = tp_packer(b);
    msgpack_pack_nil(&pk);
}

static inline void tp_put_bool(sp_buf *b, int v)
{
    msgpack_packer pk = tp_packer(b);
    if (v)
        msgpack_pack_true(&pk);
    else
        msgpack_pack_false(&pk);
}

static inline void tp_put_uint(sp_buf *b, uint64_t v)
{
    msgpack_packer pk = tp_packer(b);
    msgpack_pack_uint64(&pk, v);
}

static inline void tp_put_int(sp_buf *b, int64_t v)
{
    msgpack_packer pk = tp_packer(b);
    msgpack_pack_int64(&pk, v);
}

static inline void tp_put_double(sp_buf *b, double v)
{
    msgpack_packer pk = tp_packer(b);
    msgpack_pack_double(&pk, v);
}

static inline void tp_put_str(sp_buf *b, const void *s, size_t n)
{
    msgpack_packer pk = tp_packer(b);
    msgpack_pack_str_with_body(&pk, s, n);
}

static inline void tp_put_bin(sp_buf *b, const void *s, size_t n)
{
    msgpack_packer pk = tp_packer(b);
    msgpack_pack_bin_with_body(&pk, s, n);
}

static inline void tp_put_array(sp_buf *b, uint32_t n)
{
    msgpack_packer pk = tp_packer(b);
    msgpack_pack_array(&pk, n);
}

static inline void tp_put_map(sp_buf *b, uint32_t n)
{
    msgpack_packer pk = tp_packer(b);
    msgpack_pack_map(&pk, n);
}

static inline void tp_put_ext(sp_buf *b, int8_t type, const void *s, size_t n)
{
    msgpack_packer pk = tp_packer(b);
    msgpack_pack_ext_with_body(&pk, s, n, type);
}

/* Bytes as they are, for a form msgpack-c would not choose (e.g. a signed int for a positive
 * time, as Go's msgp writes it) or for invalid input. */
static inline void tp_raw(sp_buf *b, const void *s, size_t n)
{
    sp_buf_append(b, s, n);
}

#endif
