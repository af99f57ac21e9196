/* Record layout in chunks, and the hash that names records. */
#include "record.h"

#include "mp.h"

static void sp_record_put_opt_str(sp_buf *b, sp_slice s)
{
    if (s.base)
        sp_mp_put_str(b, s.base, s.len);
    else
        sp_mp_put_nil(b);
}

void sp_record_write(sp_buf *out, const sp_record *r)
{
    sp_buf_reserve(out, 48 + r->message.len + r->stream.len + r->container_id.len +
                            r->container_name.len + r->extras.len);
    sp_mp_put_array(out, 10);
    sp_mp_put_uint(out, r->sec);
    sp_mp_put_uint(out, r->nsec);
    sp_mp_put_uint(out, r->prec);
    sp_mp_put_bin(out, r->id, 16);
    sp_record_put_opt_str(out, r->message);
    sp_record_put_opt_str(out, r->stream);
    sp_record_put_opt_str(out, r->container_id);
    sp_record_put_opt_str(out, r->container_name);
    sp_mp_put_uint(out, r->flags);
    sp_mp_put_map(out, r->nextras);
    sp_buf_append(out, r->extras.base, r->extras.len);
}

static int sp_record_get_uint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    sp_mp_obj o;
    int rc = sp_mp_read(p, end, &o);
    if (rc) return rc;
    if (o.type != SP_MP_UINT) return SP_MP_EINVAL;
    *v = o.v.u;
    return 0;
}

static int sp_record_get_opt_str(const uint8_t **p, const uint8_t *end, sp_slice *s)
{
    sp_mp_obj o;
    int rc = sp_mp_read_fast(p, end, &o);
    if (rc) return rc;
    if (o.type == SP_MP_NIL)
        *s = SP_SLICE_NULL;
    else if (o.type == SP_MP_STR)
        *s = o.s;
    else
        return SP_MP_EINVAL;
    return 0;
}

int sp_record_read(const uint8_t **p, const uint8_t *end, sp_record *r)
{
    sp_mp_obj o;
    uint64_t v;
    int rc;
    if ((rc = sp_mp_read(p, end, &o))) return rc;
    if (o.type != SP_MP_ARRAY || o.v.n != 10) return SP_MP_EINVAL;
    if ((rc = sp_record_get_uint(p, end, &r->sec))) return rc;
    if ((rc = sp_record_get_uint(p, end, &v))) return rc;
    r->nsec = (uint32_t)v;
    if ((rc = sp_record_get_uint(p, end, &v))) return rc;
    r->prec = (uint8_t)v;
    if ((rc = sp_mp_read(p, end, &o))) return rc;
    if (o.type != SP_MP_BIN || o.s.len != 16) return SP_MP_EINVAL;
    memcpy(r->id, o.s.base, 16);
    if ((rc = sp_record_get_opt_str(p, end, &r->message))) return rc;
    if ((rc = sp_record_get_opt_str(p, end, &r->stream))) return rc;
    if ((rc = sp_record_get_opt_str(p, end, &r->container_id))) return rc;
    if ((rc = sp_record_get_opt_str(p, end, &r->container_name))) return rc;
    if ((rc = sp_record_get_uint(p, end, &v))) return rc;
    r->flags = (uint32_t)v;
    if ((rc = sp_mp_read(p, end, &o))) return rc;
    if (o.type != SP_MP_MAP) return SP_MP_EINVAL;
    r->nextras = o.v.n;
    const uint8_t *start = *p;
    for (uint32_t i = 0; i < 2 * o.v.n; i++)
        if ((rc = sp_mp_skip(p, end))) return rc;
    r->extras = sp_slice_make(start, (size_t)(*p - start));
    return 0;
}

/* A multiply-xorshift hash over 8-byte words in two lanes; not cryptographic, but ids only need
 * to be stable and collision-free across honest inputs. */
static inline uint64_t sp_record_mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

void sp_hash128(const void *data, size_t n, uint64_t seed, uint8_t out[16])
{
    const uint8_t *p = data;
    uint64_t a = seed ^ 0x9e3779b97f4a7c15ULL ^ n, b = seed ^ 0x6a09e667f3bcc909ULL;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        a = sp_record_mix(a ^ w) + b;
        b = sp_record_mix(b + w * 0x9e3779b97f4a7c15ULL) ^ a;
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, n);
    a = sp_record_mix(a ^ w ^ ((uint64_t)n << 56));
    b = sp_record_mix(b ^ a ^ w);
    a = sp_record_mix(a + b);
    memcpy(out, &a, 8);
    memcpy(out + 8, &b, 8);
}
