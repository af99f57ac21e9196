/* Forward protocol frame decoding. */
#include "forward_proto.h"

#include <math.h>
#include <zlib.h>

int sp_fwd_scan(sp_mp_scan *s, const uint8_t *buf, size_t len, size_t max_size)
{
    size_t n = len < max_size ? len : max_size;
    int rc = sp_mp_scan_feed(s, buf, n);
    if (rc == 1) return 1;
    if (rc == SP_MP_EDEPTH) return SP_FWD_EDEPTH;
    if (rc < 0) return SP_FWD_EMALFORMED;
    if (len >= max_size) return SP_FWD_ETOOBIG; /* max_size bytes and still not complete */
    return 0;
}

const char *sp_fwd_reason(int rc)
{
    switch (rc) {
    case SP_FWD_EMALFORMED:
        return "malformed";
    case SP_FWD_ESHAPE:
        return "bad_shape";
    case SP_FWD_ETOOBIG:
        return "too_large";
    case SP_FWD_EDEPTH:
        return "too_deep";
    case SP_FWD_EGZIP:
        return "bad_gzip";
    default:
        return "rejected";
    }
}

static int sp_fwd_proto_read(const uint8_t **p, const uint8_t *end, sp_mp_obj *o)
{
    return sp_mp_read(p, end, o) ? SP_FWD_EMALFORMED : 0;
}

static int sp_fwd_proto_time(const uint8_t **p, const uint8_t *end, sp_fwd_entry *e)
{
    sp_mp_obj o;
    if (sp_fwd_proto_read(p, end, &o)) return SP_FWD_EMALFORMED;
    switch (o.type) {
    case SP_MP_UINT:
        e->sec = o.v.u;
        e->nsec = 0;
        e->prec = 0;
        return 0;
    case SP_MP_EXT:
        if (o.ext_type != 0 || o.s.len != 8) return SP_FWD_ESHAPE;
        e->sec = sp_be32((const uint8_t *)o.s.base);
        e->nsec = sp_be32((const uint8_t *)o.s.base + 4);
        if (e->nsec > 999999999) return SP_FWD_ESHAPE;
        e->prec = 9;
        return 0;
    case SP_MP_FLOAT:
        if (!(o.v.f >= 0 && o.v.f < 1e12)) return SP_FWD_ESHAPE;
        e->sec = (uint64_t)o.v.f;
        e->nsec = (uint32_t)((o.v.f - (double)e->sec) * 1e9);
        if (e->nsec > 999999999) e->nsec = 999999999;
        e->prec = 9;
        return 0;
    default:
        return SP_FWD_ESHAPE;
    }
}

/* A time, or Fluent Bit's [time, metadata]: the metadata map is kept when it is not empty. */
static int sp_fwd_proto_when(const uint8_t **p, const uint8_t *end, sp_fwd_entry *e)
{
    e->meta = SP_SLICE_NULL;
    if (*p >= end || (**p != 0x92 && **p != 0xdc && **p != 0xdd))
        return sp_fwd_proto_time(p, end, e);
    sp_mp_obj o;
    int rc;
    if ((rc = sp_fwd_proto_read(p, end, &o))) return rc;
    if (o.v.n != 2) return SP_FWD_ESHAPE;
    if ((rc = sp_fwd_proto_time(p, end, e))) return rc;
    const uint8_t *m = *p;
    if ((rc = sp_fwd_proto_read(p, end, &o))) return rc;
    if (o.type != SP_MP_MAP) return SP_FWD_ESHAPE;
    if (o.v.n == 0) return 0;
    *p = m;
    rc = sp_mp_skip(p, end);
    if (rc == SP_MP_EDEPTH) return SP_FWD_EDEPTH;
    if (rc) return SP_FWD_EMALFORMED;
    e->meta = sp_slice_make((const char *)m, (size_t)(*p - m));
    return 0;
}

/* The record must be a map. With `skip`, its end is found here; without, the handler reports
 * how many bytes it read (saving a second pass over every record of a packed frame). */
static int sp_fwd_proto_record(const uint8_t **p, const uint8_t *end, sp_fwd_entry *e, int skip)
{
    if (*p >= end || !((**p & 0xf0) == 0x80 || **p == 0xde || **p == 0xdf)) return SP_FWD_ESHAPE;
    e->rec = *p;
    e->rec_end = end;
    if (!skip) return 0;
    int rc = sp_mp_skip(p, end);
    if (rc == SP_MP_EDEPTH) return SP_FWD_EDEPTH;
    if (rc) return SP_FWD_EMALFORMED;
    e->rec_end = *p;
    return 0;
}

/* Hands one entry to the handler and moves *p past its record. */
static int sp_fwd_proto_emit(sp_fwd_handler *h, sp_fwd_entry *e, const uint8_t **p)
{
    int rc = h->entry(h->ctx, e);
    if (rc < 0) return rc;
    if (*p != e->rec) return 0; /* the record was skipped already */
    if (rc > 0) {
        if (rc > e->rec_end - e->rec) return SP_FWD_EMALFORMED;
        *p += rc;
        return 0;
    }
    rc = sp_mp_skip(p, e->rec_end); /* the handler did not say how long the record was */
    if (rc == SP_MP_EDEPTH) return SP_FWD_EDEPTH;
    return rc ? SP_FWD_EMALFORMED : 0;
}

/* [time, record] or [[time, metadata], record] as found in Forward and PackedForward entries. */
static int sp_fwd_proto_pair(const uint8_t **p, const uint8_t *end, sp_fwd_entry *e)
{
    sp_mp_obj o;
    int rc;
    if ((rc = sp_fwd_proto_read(p, end, &o))) return rc;
    if (o.type != SP_MP_ARRAY || o.v.n != 2) return SP_FWD_ESHAPE;
    if ((rc = sp_fwd_proto_when(p, end, e))) return rc;
    return sp_fwd_proto_record(p, end, e, 0);
}

/* Reads the option map: the ack id, compression, and Fluent Bit's signal (0 logs). */
static int sp_fwd_proto_options(const uint8_t *p, const uint8_t *end, sp_slice *chunk, int *gzip,
                                uint64_t *signal)
{
    sp_mp_obj o, k, v;
    if (sp_fwd_proto_read(&p, end, &o)) return SP_FWD_EMALFORMED;
    if (o.type == SP_MP_NIL) return 0;
    if (o.type != SP_MP_MAP) return SP_FWD_ESHAPE;
    for (uint32_t i = 0; i < o.v.n; i++) {
        const uint8_t *kp = p;
        if (sp_fwd_proto_read(&kp, end, &k) || sp_mp_skip(&p, end)) return SP_FWD_EMALFORMED;
        const uint8_t *vp = p;
        if (sp_fwd_proto_read(&vp, end, &v)) return SP_FWD_EMALFORMED;
        if (k.type == SP_MP_STR && SP_SLICE_IS(k.s, "chunk") && v.type == SP_MP_STR) {
            *chunk = v.s;
        } else if (k.type == SP_MP_STR && SP_SLICE_IS(k.s, "compressed") && v.type == SP_MP_STR) {
            if (SP_SLICE_IS(v.s, "gzip"))
                *gzip = 1;
            else if (!SP_SLICE_IS(v.s, "text"))
                return SP_FWD_ESHAPE;
        } else if (k.type == SP_MP_STR && SP_SLICE_IS(k.s, "fluent_signal")) {
            if (v.type != SP_MP_UINT) return SP_FWD_ESHAPE;
            *signal = v.v.u;
        }
        if (sp_mp_skip(&p, end)) return SP_FWD_EMALFORMED;
    }
    return 0;
}

/* Inflates gzip data, including several concatenated members (as Fluentd's clients send). */
static int sp_fwd_proto_gunzip(const uint8_t *in, size_t n, sp_fwd_handler *h)
{
    sp_buf *out = h->inflate;
    out->len = 0;
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) return SP_FWD_EGZIP;
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    int rc = SP_FWD_EGZIP;
    for (;;) {
        sp_buf_reserve(out, n * 4 + 4096);
        z.next_out = (Bytef *)out->base + out->len;
        z.avail_out = (uInt)(out->cap - out->len);
        int zr = inflate(&z, Z_NO_FLUSH);
        out->len = out->cap - z.avail_out;
        if (out->len > h->max_inflated) {
            rc = SP_FWD_ETOOBIG;
            break;
        }
        if (zr == Z_STREAM_END) {
            if (z.avail_in == 0) {
                rc = 0;
                break;
            }
            if (inflateReset(&z) != Z_OK) break;
            continue;
        }
        if (zr != Z_OK && zr != Z_BUF_ERROR) break;
        if (zr == Z_BUF_ERROR && z.avail_in == 0) break; /* truncated */
    }
    inflateEnd(&z);
    return rc;
}

int sp_fwd_try_message(const uint8_t *buf, size_t len, size_t max_size, sp_fwd_handler *h,
                       size_t *consumed)
{
    const uint8_t *p = buf, *end = buf + (len < max_size ? len : max_size);
    sp_mp_obj o, tag;
    if (sp_mp_read(&p, end, &o) || o.type != SP_MP_ARRAY || (o.v.n != 3 && o.v.n != 4)) return 0;
    if (sp_mp_read(&p, end, &tag) || tag.type != SP_MP_STR || p >= end) return 0;
    if (*p != 0xd7 && *p != 0xc7 && *p > 0x7f && *p != 0xce && *p != 0xd2) return 0;
    sp_fwd_entry e;
    memset(&e, 0, sizeof e);
    e.tag = tag.s;
    int gzip = 0;
    uint64_t signal = 0;
    /* Everything is read before the handler sees the entry: an incomplete frame has no
     * side effect, and the scanner takes over. */
    if (sp_fwd_proto_time(&p, end, &e) || sp_fwd_proto_record(&p, end, &e, 1)) return 0;
    if (o.v.n == 4) {
        const uint8_t *opt = p;
        if (sp_mp_skip(&p, end) || sp_fwd_proto_options(opt, p, &e.chunk, &gzip, &signal) || signal)
            return 0;
    }
    int rc = sp_fwd_proto_emit(h, &e, &(const uint8_t *){e.rec_end});
    if (rc < 0) return rc;
    if (e.chunk.len && h->ack) h->ack(h->ctx, e.chunk);
    *consumed = (size_t)(p - buf);
    return 1;
}

/* Message mode: [tag, time, record, option?], the time possibly [time, metadata]. */
static int sp_fwd_proto_message(const uint8_t *p, const uint8_t *end, uint32_t nelem,
                                sp_fwd_handler *h, sp_fwd_entry *e)
{
    int rc, gzip = 0;
    uint64_t signal = 0;
    if (nelem < 3) return SP_FWD_ESHAPE;
    if ((rc = sp_fwd_proto_when(&p, end, e))) return rc;
    if ((rc = sp_fwd_proto_record(&p, end, e, 1))) return rc;
    if (nelem == 4 && (rc = sp_fwd_proto_options(p, end, &e->chunk, &gzip, &signal))) return rc;
    if (signal) return SP_FWD_OTHER_SIGNAL;
    return sp_fwd_proto_emit(h, e, &p);
}

/* Forward mode: [tag, [entry, ...], option?]; the option comes after the entries, so it is
 * found first (the chunk id names every entry). */
static int sp_fwd_proto_forward(const uint8_t *p, const uint8_t *end, uint32_t nelem, uint32_t n,
                                sp_fwd_handler *h, sp_fwd_entry *e)
{
    int rc, gzip = 0;
    uint64_t signal = 0;
    if (nelem > 3) return SP_FWD_ESHAPE;
    const uint8_t *entries = p;
    for (uint32_t i = 0; i < n; i++)
        if (sp_mp_skip(&p, end)) return SP_FWD_EMALFORMED;
    if (nelem == 3 && (rc = sp_fwd_proto_options(p, end, &e->chunk, &gzip, &signal))) return rc;
    if (signal) return SP_FWD_OTHER_SIGNAL;
    p = entries;
    for (uint32_t i = 0; i < n; i++) {
        e->index = i;
        if ((rc = sp_fwd_proto_pair(&p, end, e))) return rc;
        if ((rc = sp_fwd_proto_emit(h, e, &p))) return rc;
    }
    return 0;
}

/* PackedForward / CompressedPackedForward: [tag, bin|str of entries, option?]. */
static int sp_fwd_proto_packed(sp_slice bin, const uint8_t *opt, const uint8_t *end, uint32_t nelem,
                               sp_fwd_handler *h, sp_fwd_entry *e)
{
    int rc, gzip = 0;
    uint64_t signal = 0;
    if (nelem > 3) return SP_FWD_ESHAPE;
    if (nelem == 3 && (rc = sp_fwd_proto_options(opt, end, &e->chunk, &gzip, &signal))) return rc;
    if (signal) return SP_FWD_OTHER_SIGNAL;
    const uint8_t *q = (const uint8_t *)bin.base, *qend = q + bin.len;
    if (gzip) {
        if ((rc = sp_fwd_proto_gunzip(q, bin.len, h))) return rc;
        q = (const uint8_t *)h->inflate->base;
        qend = q + h->inflate->len;
    }
    for (uint32_t i = 0; q < qend; i++) {
        /* Entries inside the bin were not scanned with the frame: they are read bounded by
         * the bin, and reading the record map enforces the depth limit. */
        e->index = i;
        if ((rc = sp_fwd_proto_pair(&q, qend, e))) return rc;
        if ((rc = sp_fwd_proto_emit(h, e, &q))) return rc;
    }
    return 0;
}

/* The first element of an array at p is a time: then the array is [time, metadata]. */
static int sp_fwd_proto_starts_with_time(const uint8_t *p, const uint8_t *end)
{
    sp_mp_obj o;
    if (sp_mp_read(&p, end, &o)) return 0;
    return o.type == SP_MP_UINT || o.type == SP_MP_EXT || o.type == SP_MP_FLOAT;
}

int sp_fwd_decode(const uint8_t *buf, size_t len, sp_fwd_handler *h)
{
    const uint8_t *p = buf, *end = buf + len;
    sp_mp_obj o, tag, second;
    int rc;
    if ((rc = sp_fwd_proto_read(&p, end, &o))) return rc;
    if (o.type == SP_MP_NIL) return 0; /* heartbeat */
    if (o.type != SP_MP_ARRAY || o.v.n < 2 || o.v.n > 4) return SP_FWD_ESHAPE;
    uint32_t nelem = o.v.n;
    if ((rc = sp_fwd_proto_read(&p, end, &tag))) return rc;
    if (tag.type != SP_MP_STR) return SP_FWD_ESHAPE;

    sp_fwd_entry e;
    memset(&e, 0, sizeof e);
    e.tag = tag.s;

    const uint8_t *second_at = p;
    if ((rc = sp_fwd_proto_read(&p, end, &second))) return rc;
    switch (second.type) {
    case SP_MP_UINT:
    case SP_MP_EXT:
    case SP_MP_FLOAT:
        rc = sp_fwd_proto_message(second_at, end, nelem, h, &e);
        break;
    case SP_MP_ARRAY:
        if (second.v.n == 2 && sp_fwd_proto_starts_with_time(p, end))
            rc = sp_fwd_proto_message(second_at, end, nelem, h,
                                      &e); /* [tag, [time, meta], record] */
        else
            rc = sp_fwd_proto_forward(p, end, nelem, second.v.n, h, &e);
        break;
    case SP_MP_BIN:
    case SP_MP_STR:
        rc = sp_fwd_proto_packed(second.s, p, end, nelem, h, &e);
        break;
    default:
        rc = SP_FWD_ESHAPE;
    }
    if (rc < 0) return rc;
    if (e.chunk.len && h->ack) h->ack(h->ctx, e.chunk);
    return rc;
}
