/* Docker partial-message joiner. */
#include "partial.h"

#include <stdlib.h>

typedef struct {
    sp_list link;
    sp_buf key;    /* container_id \0 stream \0 partial_id */
    sp_buf fields; /* tag, container_id, container_name, stream, extras: owned copies */
    size_t off_tag, off_cid, off_name, off_stream, off_extras;
    size_t len_tag, len_cid, len_name, len_stream, len_extras;
    int has_cid, has_name, has_stream;
    sp_buf msg;
    sp_record first; /* time, flags, nextras of the first piece */
    uint32_t next_ordinal;
    uint64_t cuts; /* pieces cut off this line so far */
    uint64_t started_ms;
} sp_pending;

void sp_joiner_init(sp_joiner *j, size_t max_line, uint64_t timeout_ms, sp_joiner_emit_fn emit,
                    void *ctx)
{
    memset(j, 0, sizeof *j);
    sp_list_init(&j->pending);
    j->max_line = max_line ? max_line : 1 << 20;
    j->timeout_ms = timeout_ms;
    j->emit = emit;
    j->ctx = ctx;
}

static size_t sp_partial_keep(sp_buf *b, sp_slice s, size_t *len)
{
    size_t off = b->len;
    sp_buf_append(b, s.base, s.len);
    *len = s.len;
    return off;
}

static sp_slice sp_partial_at(const sp_pending *p, size_t off, size_t len, int has)
{
    return has ? sp_slice_make(p->fields.base + off, len) : SP_SLICE_NULL;
}

/* Emits `n` bytes of the pending line from `at`; the caller drops them from the line. */
static void sp_partial_emit(sp_joiner *j, sp_pending *p, size_t at, size_t n, const uint8_t *id,
                            uint32_t flags)
{
    sp_record r = p->first;
    memcpy(r.id, id, 16);
    r.flags = flags;
    r.message = sp_slice_make(p->msg.base ? p->msg.base + at : "", n);
    r.container_id = sp_partial_at(p, p->off_cid, p->len_cid, p->has_cid);
    r.container_name = sp_partial_at(p, p->off_name, p->len_name, p->has_name);
    r.stream = sp_partial_at(p, p->off_stream, p->len_stream, p->has_stream);
    r.extras = sp_partial_at(p, p->off_extras, p->len_extras, 1);
    j->emit(j->ctx, sp_slice_make(p->fields.base + p->off_tag, p->len_tag), &r);
}

/* A cut piece's id: the id of the record whose text made the cut and the cut's number, hashed
 * into 128 bits. A line may be cut any number of times (max_message_size / max_line_size, and
 * more over several pieces), so the number is never folded into a few bits of the record id: a
 * wrapped counter gave two pieces one id, and Elasticsearch answered the second with 409, which
 * counts as delivered. The same input (a resend) gives the same ids. */
static void sp_joiner_cut_id(const uint8_t base[16], uint64_t cut, uint8_t out[16])
{
    uint8_t key[24];
    memcpy(key, base, 16);
    memcpy(key + 16, &cut, 8);
    sp_hash128(key, sizeof key, 0x6375742d6964ULL, out);
}

static void sp_partial_drop(sp_joiner *j, sp_pending *p)
{
    j->held -= p->msg.len;
    sp_list_remove(&p->link);
    sp_buf_free(&p->key);
    sp_buf_free(&p->fields);
    sp_buf_free(&p->msg);
    free(p);
}

void sp_joiner_add(sp_joiner *j, sp_slice tag, const sp_record *r, sp_slice partial_id,
                   uint32_t ordinal, int last, uint64_t now_ms)
{
    sp_buf key = {0};
    sp_buf_append(&key, r->container_id.base, r->container_id.len);
    sp_buf_putc(&key, '\0');
    sp_buf_append(&key, r->stream.base, r->stream.len);
    sp_buf_putc(&key, '\0');
    sp_buf_append(&key, partial_id.base, partial_id.len);

    sp_pending *p = NULL;
    sp_list *it;
    sp_list_foreach(it, &j->pending)
    {
        sp_pending *q = sp_list_entry(it, sp_pending, link);
        if (sp_slice_eq(sp_buf_slice(&q->key), sp_buf_slice(&key))) {
            p = q;
            break;
        }
    }
    if (p) {
        sp_buf_free(&key);
        /* A client that resends after a lost ack sends a piece again: drop the copy. */
        if (ordinal && ordinal < p->next_ordinal) {
            j->duplicates++;
            return;
        }
    } else {
        p = sp_calloc(1, sizeof *p);
        p->key = key;
        p->first = *r;
        p->first.message = SP_SLICE_NULL;
        p->off_tag = sp_partial_keep(&p->fields, tag, &p->len_tag);
        p->has_cid = r->container_id.base != NULL;
        p->off_cid = sp_partial_keep(&p->fields, r->container_id, &p->len_cid);
        p->has_name = r->container_name.base != NULL;
        p->off_name = sp_partial_keep(&p->fields, r->container_name, &p->len_name);
        p->has_stream = r->stream.base != NULL;
        p->off_stream = sp_partial_keep(&p->fields, r->stream, &p->len_stream);
        p->off_extras = sp_partial_keep(&p->fields, r->extras, &p->len_extras);
        p->started_ms = now_ms;
        sp_list_insert_tail(&j->pending, &p->link);
    }
    p->next_ordinal = ordinal ? ordinal + 1 : p->next_ordinal + 1;
    sp_buf_append(&p->msg, r->message.base, r->message.len);
    j->held += r->message.len;

    /* Cut from the front, then move the rest once: a piece may hold many lines' worth. */
    size_t at = 0;
    while (p->msg.len - at > j->max_line) {
        uint8_t id[16];
        sp_joiner_cut_id(r->id, ++p->cuts, id); /* each cut piece gets its own stable id */
        j->splits++;
        sp_partial_emit(j, p, at, j->max_line, id, SP_REC_SPLIT);
        at += j->max_line;
    }
    if (at) {
        memmove(p->msg.base, p->msg.base + at, p->msg.len - at);
        p->msg.len -= at;
        j->held -= at;
    }
    if (last) {
        sp_partial_emit(j, p, 0, p->msg.len, r->id, 0);
        sp_partial_drop(j, p);
    }
}

void sp_joiner_expire(sp_joiner *j, uint64_t now_ms, int all)
{
    sp_list *it, *tmp;
    sp_list_foreach_safe(it, tmp, &j->pending)
    {
        sp_pending *p = sp_list_entry(it, sp_pending, link);
        if (!all && now_ms - p->started_ms < j->timeout_ms) continue;
        j->timeouts++;
        uint8_t id[16];
        memcpy(id, p->first.id, 16);
        id[15] ^= 0x7f;
        sp_partial_emit(j, p, 0, p->msg.len, id, SP_REC_INCOMPLETE);
        sp_partial_drop(j, p);
    }
}

void sp_joiner_free(sp_joiner *j)
{
    while (!sp_list_empty(&j->pending))
        sp_partial_drop(j, sp_list_entry(j->pending.next, sp_pending, link));
}
