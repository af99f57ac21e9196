/*
 * A chunk → one PackedForward frame, in the shape the forward input reads back into the same
 * record (docs/forward_output.md): entries [time, map] with EventTime when the record has
 * sub-second precision, `log`, `source`, `container_id`, `container_name` and the extras as they
 * came.
 */
#include <libdeflate.h>
#include <openssl/evp.h>
#include <string.h>

#include "fwd_out.h"
#include "mp.h"
#include "record.h"

static void sp_fwdout_put_time(sp_buf *b, const sp_record *r)
{
    if (r->prec && r->sec <= UINT32_MAX) {
        uint8_t t[10] = {0xd7, 0x00};
        uint32_t s = (uint32_t)r->sec, ns = r->nsec;
        t[2] = (uint8_t)(s >> 24), t[3] = (uint8_t)(s >> 16), t[4] = (uint8_t)(s >> 8),
        t[5] = (uint8_t)s;
        t[6] = (uint8_t)(ns >> 24), t[7] = (uint8_t)(ns >> 16), t[8] = (uint8_t)(ns >> 8),
        t[9] = (uint8_t)ns;
        sp_buf_append(b, t, sizeof t);
    } else {
        sp_mp_put_uint(b, r->sec);
    }
}

static void sp_fwdout_put_kv(sp_buf *b, const char *k, size_t klen, sp_slice v)
{
    sp_mp_put_str(b, k, klen);
    sp_mp_put_str(b, v.base, v.len);
}

/* The entries of `c` into `b`; the record ids (and the tag) into `ids`. Records in the chunk. */
static int sp_fwdout_entries(sp_buf *b, sp_buf *ids, const sp_chunk *c, uint32_t *nrec)
{
    const uint8_t *p = SP_CHUNK_BEGIN(c), *end = SP_CHUNK_END(c);
    sp_buf_append(ids, c->tag, c->tag_len);
    *nrec = 0;
    while (p < end) {
        sp_record r;
        if (sp_record_read(&p, end, &r)) return -1;
        sp_buf_append(ids, r.id, 16);
        sp_mp_put_array(b, 2);
        sp_fwdout_put_time(b, &r);
        uint32_t n = r.nextras + !!r.message.base + !!r.stream.base + !!r.container_id.base +
                     !!r.container_name.base;
        sp_mp_put_map(b, n);
        if (r.message.base) sp_fwdout_put_kv(b, "log", 3, r.message);
        if (r.stream.base) sp_fwdout_put_kv(b, "source", 6, r.stream);
        if (r.container_id.base) sp_fwdout_put_kv(b, "container_id", 12, r.container_id);
        if (r.container_name.base) sp_fwdout_put_kv(b, "container_name", 14, r.container_name);
        sp_buf_append(b, r.extras.base, r.extras.len);
        (*nrec)++;
    }
    return 0;
}

int sp_fwdout_frame(sp_buf *out, sp_buf scratch[2], const sp_chunk *c,
                    struct libdeflate_compressor *gz, char id[SP_FWDOUT_ID_LEN + 1])
{
    sp_buf *ids = &scratch[0], *plain = &scratch[1];
    ids->len = 0;
    plain->len = 0;
    size_t start = out->len;
    sp_mp_put_array(out, 3);
    sp_mp_put_str(out, c->tag, c->tag_len);
    /* bin32 header, its length patched once the entries are written */
    size_t hdr = out->len;
    sp_buf_reserve(out, 5);
    out->base[out->len] = (char)0xc6;
    out->len += 5;
    uint32_t nrec;
    size_t blen;
    if (gz) {
        if (sp_fwdout_entries(plain, ids, c, &nrec)) goto fail;
        size_t bound = libdeflate_gzip_compress_bound(gz, plain->len);
        sp_buf_reserve(out, bound);
        blen = libdeflate_gzip_compress(gz, plain->base, plain->len, out->base + out->len, bound);
        if (!blen) goto fail;
        out->len += blen;
    } else {
        size_t before = out->len;
        if (sp_fwdout_entries(out, ids, c, &nrec)) goto fail;
        blen = out->len - before;
    }
    if (blen > UINT32_MAX) goto fail;
    uint8_t *h = (uint8_t *)out->base + hdr + 1;
    h[0] = (uint8_t)(blen >> 24), h[1] = (uint8_t)(blen >> 16), h[2] = (uint8_t)(blen >> 8),
    h[3] = (uint8_t)blen;

    uint8_t hash[16];
    sp_hash128(ids->base, ids->len, 0x66776f7574ULL, hash);
    EVP_EncodeBlock((unsigned char *)id, hash, 16); /* 24 characters and a NUL */
    sp_mp_put_map(out, gz ? 3 : 2);
    sp_mp_put_str(out, "chunk", 5);
    sp_mp_put_str(out, id, SP_FWDOUT_ID_LEN);
    sp_mp_put_str(out, "size", 4);
    sp_mp_put_uint(out, nrec);
    if (gz) {
        sp_mp_put_str(out, "compressed", 10);
        sp_mp_put_str(out, "gzip", 4);
    }
    return 0;
fail:
    out->len = start;
    return -1;
}
