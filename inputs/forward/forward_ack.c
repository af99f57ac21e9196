/*
 * The forward input, records and acks: a decoded entry becomes a record appended to its tag's
 * chunk (sp_input_append); a frame's ack goes at once (ack: accepted) or waits for every chunk
 * the frame's records went to (durable, delivered); acks are written together, and after writing
 * them the loop may spin briefly for the client's next frame (ack_spin_us).
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "forward_int.h"
#include "forward_record.h"
#include "meta.h"
#include "mp.h"

/* ---- acks that wait (ack: durable | delivered) ---- */

static void sp_fwd_ack_add(void *ctx, sp_slice chunk);

/* Writes the acks that chunks answered since the last time (once per loop iteration). */
static void sp_fwd_ackwait_flush_cb(uv_check_t *h)
{
    sp_fwd_server *s = h->data;
    while (!sp_list_empty(&s->flushq)) {
        sp_fwd_conn *c = sp_list_entry(s->flushq.next, sp_fwd_conn, flush_link);
        sp_list_remove(&c->flush_link);
        sp_fwd_ack_flush(c); /* may close c, which is out of the queue already */
    }
    uv_check_stop(h);
}

static void sp_fwd_ackwait_free(sp_fwd_ackwait *a)
{
    sp_list_remove(&a->conn_link);
    for (sp_fwd_ackref *r = a->first.next, *next; r; r = next) {
        next = r->next;
        free(r);
    }
    free(a);
}

/* Drops one of the waiter's references (a chunk answered, or the frame's decoding ended); the
 * last one answers the client, unless a chunk was dropped, and frees the waiter. The ack is
 * written after the loop's I/O phase (sp_fwd_ackwait_flush_cb), not here: this runs inside the
 * router's and the outputs' callbacks, and a write that fails (TLS) closes the connection, which
 * must not happen under them. Acks answered in one loop iteration go out in one write. */
static void sp_fwd_ackwait_put(sp_fwd_ackwait *a)
{
    if (--a->pending) return;
    sp_fwd_conn *c = a->conn;
    if (a->failed || (c && (c->closing || c->srv->stopping))) c = NULL;
    if (c) {
        sp_fwd_server *s = c->srv;
        sp_fwd_ack_add(c, sp_slice_make(a->id, a->len)); /* the id is copied into c->acks */
        if (sp_list_empty(&c->flush_link)) {
            sp_list_insert_tail(&s->flushq, &c->flush_link);
            uv_check_start(&s->flush, sp_fwd_ackwait_flush_cb);
        }
    }
    sp_fwd_ackwait_free(a);
}

static void sp_fwd_ackwait_cb(sp_chunk_watch *w, sp_chunk *chunk, int delivered)
{
    sp_fwd_ackref *r = (sp_fwd_ackref *)w;
    r->chunk = NULL;
    if (!delivered) r->a->failed = 1;
    sp_fwd_ackwait_put(r->a);
}

/* The watcher for chunk `chunk`, which a record of the frame (or a group holding one) was just
 * appended to, unless the frame's watcher is on that chunk already, or the ack waits for no
 * chunk (ack: accepted). */
static sp_chunk_watch *sp_fwd_ackwait_watch(sp_fwd_ackwait *a, sp_chunk *chunk)
{
    if (a->ack == SP_ACK_ACCEPTED || (a->last && a->last->chunk == chunk)) return NULL;
    sp_fwd_ackref *r = &a->first;
    if (a->last) { /* a frame over chunks: one allocation per further chunk, not per record */
        r = sp_calloc(1, sizeof *r);
        r->next = a->first.next;
        a->first.next = r;
    }
    r->a = a;
    r->chunk = chunk;
    r->w.cb = sp_fwd_ackwait_cb;
    r->w.durable = a->ack == SP_ACK_DURABLE;
    a->last = r;
    a->pending++;
    return &r->w;
}

/* An sp_input_watch_fn: the watcher of the frame being decoded for `chunk`. */
static sp_chunk_watch *sp_fwd_ackwait_follow(void *ctx, sp_chunk *chunk)
{
    sp_fwd_conn *c = ctx;
    return c->frame_wait ? sp_fwd_ackwait_watch(c->frame_wait, chunk) : NULL;
}

/* The frame gets no ack (it was refused): detach from its chunks; the waiter goes with its last
 * reference (at once, unless a filter holds a record of the frame). */
void sp_fwd_ackwait_cancel(sp_fwd_ackwait *a)
{
    for (sp_fwd_ackref *r = &a->first; r; r = r->next)
        if (r->chunk) {
            sp_list_remove(&r->w.link);
            r->chunk = NULL;
            a->pending--;
        }
    a->failed = 1;
    sp_fwd_ackwait_put(a); /* the frame's own reference */
}

/* ---- held records (multiline): the frame's ack waits for the group they join ---- */

/* A group holding a record of the frame went into `chunk` (not committed yet): the ack now
 * waits for that chunk instead of the record (docs/architecture.md, "Acks and watchers"). */
static sp_chunk_watch *sp_fwd_hold_emitted(sp_hold *h, sp_chunk *chunk)
{
    sp_fwd_ackwait *a = (sp_fwd_ackwait *)h;
    sp_chunk_watch *w = NULL;
    if (!a->failed) w = sp_fwd_ackwait_watch(a, chunk);
    sp_fwd_ackwait_put(a); /* the held record's reference; the watcher (if any) holds one now */
    return w;
}

static void sp_fwd_hold_dropped(sp_hold *h, int delivered)
{
    sp_fwd_ackwait *a = (sp_fwd_ackwait *)h;
    if (!delivered) a->failed = 1;
    sp_fwd_ackwait_put(a);
}

static sp_fwd_ackwait *sp_fwd_ackwait_new(sp_fwd_conn *c, sp_slice id)
{
    sp_fwd_ackwait *a = sp_calloc(1, sizeof *a + id.len + 1);
    a->pending = 1; /* the frame's own reference, dropped at its end */
    a->conn = c;
    a->ack = c->srv->conf->ack;
    a->hold.emitted = sp_fwd_hold_emitted;
    a->hold.dropped = sp_fwd_hold_dropped;
    a->hold.flush = c->srv->conf->ack != SP_ACK_ACCEPTED;
    a->len = id.len;
    memcpy(a->id, id.base, id.len);
    sp_list_insert_tail(&c->waiters, &a->conn_link);
    return a;
}

/* A filter holds a record of the frame being decoded: the frame's ack waits for it. With ack:
 * accepted the frame has no waiter until then (none is made for a frame no filter holds). */
static sp_hold *sp_fwd_hold_take(sp_hold *h)
{
    sp_fwd_conn *c = (sp_fwd_conn *)((char *)h - offsetof(sp_fwd_conn, hold));
    if (!c->frame_wait) c->frame_wait = sp_fwd_ackwait_new(c, c->frame_chunk);
    c->frame_wait->pending++;
    return &c->frame_wait->hold;
}

void sp_fwd_hold_init(sp_fwd_conn *c)
{
    c->hold.take = sp_fwd_hold_take;
}

/* ---- records ---- */

static void sp_fwd_ack_append(sp_fwd_conn *conn, sp_slice tag, const sp_record *r)
{
    sp_input *in = conn->srv->in;
    in->hold = conn->frame_chunk.len ? &conn->hold : NULL; /* the frame wants an ack */
    sp_input_append(in, tag, r, sp_fwd_ackwait_follow, conn);
    in->hold = NULL;
}

void sp_fwd_ack_joined(void *ctx, sp_slice tag, const sp_record *r)
{
    sp_fwd_ack_append(ctx, tag, r);
}

int sp_fwd_ack_entry(void *ctx, const sp_fwd_entry *e)
{
    sp_fwd_conn *c = ctx;
    sp_fwd_server *s = c->srv;
    sp_record r;
    sp_docker_partial part;
    int len = sp_fwd_record(e->rec, e->rec_end, &r, &s->extras, &part);
    if (len < 0) return len;
    if (e->meta.len) sp_fwd_record_meta(&r, &s->extras, e->meta);
    r.sec = e->sec;
    r.nsec = e->nsec;
    r.prec = e->prec;
    if (r.sec == 0) { /* Fluentd convention: time 0 means "now" */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        r.sec = (uint64_t)ts.tv_sec;
        r.nsec = (uint32_t)ts.tv_nsec;
        r.prec = 9;
    }
    if (r.sec > SP_TIME_MAX_SEC) { /* an integer time past year 9999: README "The document" */
        r.sec = SP_TIME_MAX_SEC;
        sp_input_error(s->in, "time_clamped");
    }
    /* Ids: a client's chunk id names its resends too, so Elasticsearch drops the copies; without
     * one, the position in this process's stream names the record. */
    if (e->chunk.len) {
        /* One hash per frame; entries differ by their index. */
        if (c->id_for != e->chunk.base) {
            sp_hash128(e->chunk.base, e->chunk.len, 0, c->frame_id);
            c->id_for = e->chunk.base;
        }
        memcpy(r.id, c->frame_id, 16);
        uint32_t ix;
        memcpy(&ix, r.id + 12, 4);
        ix ^= e->index;
        memcpy(r.id + 12, &ix, 4);
    } else {
        uint64_t hi = s->nonce ^ (c->serial * 0x9e3779b97f4a7c15ULL), lo = c->recno;
        memcpy(r.id, &hi, 8);
        memcpy(r.id + 8, &lo, 8);
    }
    c->recno++;
    /* Docker opens one connection per container: this is once per connection, in practice. */
    if (r.container_id.len == 64 && memcmp(c->cid, r.container_id.base, 64) != 0) {
        memcpy(c->cid, r.container_id.base, 64);
        sp_meta_prefetch(s->in->loop, r.container_id);
    }
    c->frame_chunk = e->chunk;
    if (e->chunk.len && s->conf->ack != SP_ACK_ACCEPTED && !c->frame_wait)
        c->frame_wait = sp_fwd_ackwait_new(c, e->chunk);
    if (part.is_partial) {
        size_t held = c->joiner.held;
        sp_joiner_add(&c->joiner, e->tag, &r, part.id, part.ordinal, part.last, c->now_ms);
        sp_input_hold(s->in, (int64_t)c->joiner.held - (int64_t)held);
        return len;
    }
    if (r.message.len > c->joiner.max_line) {
        /* A whole line over the limit: cut it like a joined one. */
        sp_joiner_add(&c->joiner, e->tag, &r, SP_SLICE_LIT("whole"), 0, 1, c->now_ms);
        return len;
    }
    sp_fwd_ack_append(c, e->tag, &r);
    return len;
}

/* The decoder's end-of-frame callback: answer now, or when the frame's chunks are ready. */
void sp_fwd_ack_frame_end(void *ctx, sp_slice chunk)
{
    sp_fwd_conn *c = ctx;
    c->id_for = NULL;
    c->frame_chunk = sp_slice_make(NULL, 0);
    sp_fwd_ackwait *a = c->frame_wait;
    c->frame_wait = NULL;
    if (!a) {
        sp_fwd_ack_add(c, chunk); /* ack: accepted */
        return;
    }
    /* Close the frame's open chunks now rather than at flush_interval: the client waits for this
     * ack. The frame's own reference keeps the waiter while chunks answer during the loop. */
    for (sp_fwd_ackref *r = &a->first; r; r = r->next)
        if (r->chunk) sp_input_flush_chunk(c->srv->in, r->chunk);
    /* A frame with no record in a chunk (only pieces of a line still being joined) is answered
     * here: the client sends the line's next piece only after this ack. One with records a
     * filter holds (multiline) is answered once their group reached the ack's point. */
    sp_fwd_ackwait_put(a);
}

static void sp_fwd_ack_add(void *ctx, sp_slice chunk)
{
    sp_fwd_conn *c = ctx;
    sp_mp_put_map(&c->acks, 1);
    sp_mp_put_str(&c->acks, "ack", 3);
    sp_mp_put_str(&c->acks, chunk.base, chunk.len);
}

/* ---- acks ---- */

typedef struct {
    uv_write_t req;
    sp_fwd_conn *conn;
    size_t len;
    char data[];
} sp_ackw;

static void sp_fwd_ack_write_cb(uv_write_t *req, int status)
{
    sp_ackw *w = (sp_ackw *)req;
    sp_fwd_conn *c = w->conn;
    c->write_bytes -= w->len;
    free(w);
    /* A client that doesn't read its acks was paused (below); let it go on once they drain. */
    if (!c->reading && sp_fwd_conn_may_read(c) && c->write_bytes == 0 && status == 0) {
        c->reading = 1;
        sp_fwd_conn_start_reading(c);
    }
}

/* Writes bytes to the socket, now if the kernel takes them, else queued. */
void sp_fwd_ack_send(sp_fwd_conn *c, const char *data, size_t len)
{
    size_t off = 0;
    if (c->write_bytes == 0) {
        /* Usually the whole ack fits the socket buffer: write it now, with no request to
         * allocate and no callback to wait a loop iteration for. */
        uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
        int n = uv_try_write(&c->h.stream, &b, 1);
        if (n == (int)len) return;
        if (n > 0) off = (size_t)n;
    }
    sp_ackw *w = sp_malloc(sizeof *w + len - off);
    w->conn = c;
    w->len = len - off;
    memcpy(w->data, data + off, w->len);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)w->len);
    c->write_bytes += w->len;
    if (uv_write(&w->req, &c->h.stream, &b, 1, sp_fwd_ack_write_cb)) {
        c->write_bytes -= w->len;
        free(w);
        return;
    }
    if (c->write_bytes > (1 << 20) && c->reading) {
        uv_read_stop(&c->h.stream);
        c->reading = 0;
    }
}

void sp_fwd_ack_flush(sp_fwd_conn *c)
{
    if (c->closing) {
        c->acks.len = 0;
        return;
    }
    if (!c->tls) {
        if (c->acks.len) sp_fwd_ack_send(c, c->acks.base, c->acks.len);
        c->acks.len = 0;
        return;
    }
    /* Over TLS, what is written before the handshake is done (the HELO) waits for it. */
    if (c->acks.len && sp_fwd_tls_ready(c->tls)) {
        int rc = sp_fwd_tls_write(c->tls, c->acks.base, c->acks.len);
        c->acks.len = 0;
        if (rc) {
            sp_fwd_conn_close(c, "tls_error", sp_fwd_tls_error());
            return;
        }
    }
    sp_buf *out = &c->srv->tls_out;
    out->len = 0;
    sp_fwd_tls_pending(c->tls, out);
    if (out->len) sp_fwd_ack_send(c, out->base, out->len);
}

/* ---- spinning ---- */

/* Spins that catch nothing, SP_SPIN_BACKOFF times in a row, mean the clients are not waiting on
 * acks right now (slow senders, or no ack loop at all): from then on only every
 * SP_SPIN_PROBE-th ack spins, until one catches a frame again. */
#define SP_SPIN_BACKOFF 8
#define SP_SPIN_PROBE 64

static void sp_fwd_ack_spin_cb(uv_idle_t *h)
{
    sp_fwd_server *s = h->data;
    if (uv_hrtime() <= s->spin_until) return;
    uv_idle_stop(h);
    if (s->spin_hit) {
        s->spins[0]++;
        s->spin_miss = 0;
    } else {
        s->spins[1]++;
        s->spin_miss++;
    }
}

void sp_fwd_ack_spin_start(sp_fwd_server *s)
{
    if (!uv_is_active((uv_handle_t *)&s->spin)) {
        if (s->spin_miss >= SP_SPIN_BACKOFF && ++s->spin_probe % SP_SPIN_PROBE != 0) {
            s->spins[2]++;
            return;
        }
        s->spin_hit = 0;
        uv_idle_start(&s->spin, sp_fwd_ack_spin_cb);
    }
    s->spin_until = uv_hrtime() + (uint64_t)s->conf->ack_spin_us * 1000;
}
