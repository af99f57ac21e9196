/*
 * Bulk bodies: NDJSON pairs of an action line and a document. Every function here only reads the
 * chunk and writes buffers owned by one job, so encoding runs on libuv's thread pool.
 */
#include <string.h>
#include <time.h>

#include "document.h"
#include "es.h"
#include "json.h"

/* Conversions that change within a day; a pattern with none of them is cached per day. */
static const char sp_es_bulk_subday[] = "HIklMpPrRsSTcXxzZ+";

void sp_es_index_init(sp_es_index *ix, const char *fmt)
{
    memset(ix, 0, sizeof *ix);
    ix->fmt = fmt;
    ix->literal = strchr(fmt, '%') == NULL;
    ix->period = 86400;
    for (const char *p = fmt; (p = strchr(p, '%')) && p[1]; p += 2) {
        const char *c = p + 1;
        if (*c == 'E' || *c == 'O') c++; /* modifiers */
        if (*c && strchr(sp_es_bulk_subday, *c)) ix->period = 1;
    }
    ix->key = UINT64_MAX;
    if (ix->literal) {
        ix->len = strlen(fmt) < sizeof ix->name ? strlen(fmt) : sizeof ix->name - 1;
        memcpy(ix->name, fmt, ix->len);
    }
}

sp_slice sp_es_index_name(sp_es_index *ix, uint64_t sec)
{
    /* Past 9999-12-31T23:59:59Z gmtime_r fails (or the year gets a fifth digit): clamped, as
     * in the document's @timestamp. */
    if (sec > SP_TIME_MAX_SEC) sec = SP_TIME_MAX_SEC;
    if (!ix->literal && sec / ix->period != ix->key) {
        ix->key = sec / ix->period;
        time_t t = (time_t)sec;
        struct tm tm;
        if (!gmtime_r(&t, &tm)) memset(&tm, 0, sizeof tm); /* cannot fail in range */
        ix->len = strftime(ix->name, sizeof ix->name, ix->fmt, &tm);
    }
    return sp_slice_make(ix->name, ix->len);
}

void sp_es_id_b64(const uint8_t id[16], char out[22])
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    int o = 0;
    for (int i = 0; i < 15; i += 3) {
        uint32_t v = (uint32_t)id[i] << 16 | (uint32_t)id[i + 1] << 8 | id[i + 2];
        out[o++] = a[v >> 18];
        out[o++] = a[(v >> 12) & 63];
        out[o++] = a[(v >> 6) & 63];
        out[o++] = a[v & 63];
    }
    out[o++] = a[id[15] >> 2];
    out[o] = a[(id[15] & 3) << 4];
}

static void sp_es_bulk_action(sp_buf *out, sp_slice index, const uint8_t id[16])
{
    SP_BUF_LIT(out, "{\"create\":{\"_index\":");
    sp_json_str(out, index.base, index.len);
    SP_BUF_LIT(out, ",\"_id\":\"");
    sp_buf_reserve(out, 22);
    sp_es_id_b64(id, out->base + out->len);
    out->len += 22;
    SP_BUF_LIT(out, "\"}}\n");
}

/* The dead-letter document: the original as a JSON string, the error, and where it was going. */
static void sp_es_bulk_dead_letter_doc(sp_es_enc *e, sp_buf *out, const sp_record *r,
                                       const char *error)
{
    e->scratch.len = 0;
    sp_document_record(&e->scratch, r, e->tag);
    SP_BUF_LIT(out, "{\"@timestamp\":");
    sp_json_timestamp(out, e->now_sec, e->now_nsec, 3);
    SP_BUF_LIT(out, ",\"original\":");
    sp_json_str(out, e->scratch.base, e->scratch.len);
    SP_BUF_LIT(out, ",\"error\":");
    if (error && *error)
        sp_buf_append(out, error, strlen(error));
    else
        SP_BUF_LIT(out, "{}");
    SP_BUF_LIT(out, ",\"index\":");
    sp_slice ix = sp_es_index_name(&e->ix, r->sec);
    sp_json_str(out, ix.base, ix.len);
    sp_buf_putc(out, '}');
}

void sp_es_dead_letter_line(sp_es_enc *e, sp_buf *out, const sp_record *r, const char *error)
{
    sp_es_bulk_dead_letter_doc(e, out, r, error);
    sp_buf_putc(out, '\n');
}

/* Appends one record's pair: a document, or with `err` its dead-letter document. */
static void sp_es_bulk_encode_one(sp_es_enc *e, sp_buf *out, const sp_record *r, uint32_t err)
{
    if (err) {
        sp_es_bulk_action(out, sp_slice_str(e->dl_index), r->id);
        sp_es_bulk_dead_letter_doc(e, out, r, e->errs + err - 1);
    } else {
        sp_es_bulk_action(out, sp_es_index_name(&e->ix, r->sec), r->id);
        sp_document_record(out, r, e->tag);
    }
    sp_buf_putc(out, '\n');
}

uint32_t sp_es_encode_range(sp_es_enc *e, sp_buf *out, const uint8_t *chunk, size_t chunk_len,
                            size_t *off, sp_es_item *items)
{
    uint32_t n = 0;
    while (*off < chunk_len) {
        size_t before = out->len;
        sp_es_item it = {(uint32_t)*off, 0, e->ci};
        const uint8_t *p = chunk + *off;
        sp_record r;
        if (sp_record_read(&p, chunk + chunk_len, &r)) {
            *off = chunk_len; /* chunks are written by us: cannot happen */
            break;
        }
        sp_es_bulk_encode_one(e, out, &r, 0);
        if (before > 0 && out->len > e->max_bytes) {
            out->len = before; /* this one starts the next request */
            break;
        }
        items[n++] = it;
        *off = (size_t)(p - chunk);
    }
    return n;
}

uint32_t sp_es_encode_items(sp_es_enc *e, sp_buf *out, const uint8_t *chunk, size_t chunk_len,
                            const sp_es_item *items, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n; i++) {
        size_t before = out->len;
        const uint8_t *p = chunk + items[i].off;
        sp_record r;
        if (items[i].off >= chunk_len || sp_record_read(&p, chunk + chunk_len, &r)) continue;
        sp_es_bulk_encode_one(e, out, &r, items[i].err);
        if (before > 0 && out->len > e->max_bytes) {
            out->len = before;
            break;
        }
    }
    return i;
}

int sp_es_gzip(struct libdeflate_compressor *c, const sp_buf *in, sp_buf *out)
{
    out->len = 0;
    sp_buf_reserve(out, libdeflate_gzip_compress_bound(c, in->len));
    size_t n = libdeflate_gzip_compress(c, in->base, in->len, out->base, out->cap);
    if (n == 0) return -1;
    out->len = n;
    return 0;
}
