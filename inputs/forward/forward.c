/*
 * The forward input: a TCP or Unix-socket listener speaking Fluentd Forward v1.
 *
 * Reads land in one shared 256 KiB buffer; every complete frame in it is decoded in place and
 * only an incomplete tail is copied to the connection, where the next reads append to it and the
 * resumable scanner continues from where it stopped. Backpressure stops reading a socket, never
 * closes it; bad input closes only the connection that sent it.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "forward_auth.h"
#include "forward_proto.h"
#include "forward_tls.h"
#include "forward_record.h"
#include "input.h"
#include "log.h"
#include "meta.h"
#include "mp.h"
#include "partial.h"

enum { SP_ACK_ACCEPTED, SP_ACK_DURABLE, SP_ACK_DELIVERED };

typedef struct {
    char *listen;
    uint64_t max_message_size;
    uint64_t max_line_size;
    int64_t max_connections;
    uint64_t idle_timeout;
    uint64_t partial_timeout;
    int ack;
    int64_t ack_spin_us;
    uint64_t pending_frames_limit;
    char *metadata_path;
    char *docker_socket;
    char *shared_key;
    char *self_hostname;
    sp_kvlist users;
    sp_kvlist tls;
} sp_forward_conf;

static const char *const sp__ack_modes[] = {"accepted", "durable", "delivered", NULL};

static const sp_conf_field sp__forward_fields[] = {
    {"listen", SP_CONF_STR, offsetof(sp_forward_conf, listen), "127.0.0.1:24224",
     "host:port, [v6]:port or unix:///path.sock (mode 0660)"},
    {"max_message_size", SP_CONF_SIZE, offsetof(sp_forward_conf, max_message_size), "16MiB",
     "largest frame; a larger one closes that connection"},
    {"max_line_size", SP_CONF_SIZE, offsetof(sp_forward_conf, max_line_size), "1MiB",
     "longest joined partial line; longer lines are split (counted)"},
    {"max_connections", SP_CONF_INT, offsetof(sp_forward_conf, max_connections), "1024",
     "connections beyond this are closed at accept (counted)"},
    {"idle_timeout", SP_CONF_DURATION, offsetof(sp_forward_conf, idle_timeout), "300s",
     "a connection silent this long, or a frame incomplete this long, is closed"},
    {"partial_timeout", SP_CONF_DURATION, offsetof(sp_forward_conf, partial_timeout), "5s",
     "a partial line whose last piece has not come by then is shipped as it is (flagged)"},
    {"ack", SP_CONF_ENUM, offsetof(sp_forward_conf, ack), "accepted",
     "when a client asks for an ack: accepted (in memory) | durable (spooled, fsynced) | "
     "delivered (every matching output confirmed it)",
     sp__ack_modes},
    {"pending_frames_limit", SP_CONF_SIZE, offsetof(sp_forward_conf, pending_frames_limit), "64MiB",
     "memory for incomplete frames across all connections; over it, the connection holding the "
     "frame that grew is closed (counted frame_memory)"},
    {"ack_spin_us", SP_CONF_INT, offsetof(sp_forward_conf, ack_spin_us), "100",
     "after sending acks, poll this many microseconds for the client's next frame instead of "
     "sleeping; backs off by itself while spins catch nothing (0: off)"},
    {"shared_key", SP_CONF_STR, offsetof(sp_forward_conf, shared_key), NULL,
     "require the Forward handshake (HELO/PING/PONG) with this key before any record"},
    {"self_hostname", SP_CONF_STR, offsetof(sp_forward_conf, self_hostname), NULL,
     "the server name in the handshake's PONG (default: the host name)"},
    {"users", SP_CONF_MAP, offsetof(sp_forward_conf, users), NULL,
     "with shared_key, also require one of these users: {username: password}"},
    {"tls", SP_CONF_MAP, offsetof(sp_forward_conf, tls), NULL,
     "serve TLS on this listener: {cert: PEM chain file, key: PEM key file}"},
    {"metadata_path", SP_CONF_STR, offsetof(sp_forward_conf, metadata_path),
     "/var/lib/docker/containers",
     "Docker's containers directory: image and labels by container_id, if readable (\"\" = off)"},
    {"docker_socket", SP_CONF_STR, offsetof(sp_forward_conf, docker_socket), NULL,
     "Docker's API socket (e.g. /var/run/docker.sock): image and labels for containers not "
     "found under metadata_path"},
    SP_CONF_END};

#define SP_RBUF_SIZE (256 * 1024)

typedef struct {
    sp_input *in;
    sp_forward_conf *conf;
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_stream_t stream;
        uv_handle_t handle;
    } l;
    sp_addr addr;
    int listening;
    sp_list conns;
    int nconns;
    int paused;
    char *rbuf;
    uint64_t serial;
    uint64_t nonce; /* per process: ids of records without a client chunk id */
    sp_buf inflate;
    sp_buf extras;
    sp_ratelimit rl;
    sp_ratelimit rl_signal; /* frames of metrics or traces, dropped */
    uv_idle_t spin;         /* keeps the loop polling without sleeping for ack_spin after an ack */
    uv_check_t flush;       /* writes acks that chunks answered (sp_fwd_ackwait_flush_cb) */
    sp_list flushq;         /* sp_fwd_conn with such acks */
    uint64_t pend_total;    /* bytes of incomplete-frame buffers over all connections */
    uint64_t spin_until;
    int spin_hit;        /* a frame arrived during the current spin */
    uint32_t spin_miss;  /* spins in a row that caught nothing */
    uint32_t spin_probe; /* acks since the last spin while spinning is backed off */
    uint64_t spins[3];   /* metrics: hit, miss, skipped */
    int handles;         /* open handles, for stop completion */
    int stopping;
    sp_fwd_auth_conf auth; /* shared_key set: the handshake comes first */
    sp_fwd_tls_ctx *tls;   /* tls set: every connection is TLS */
    char *cbuf;            /* ciphertext reads, with TLS */
    sp_buf tls_out;        /* ciphertext on its way to a socket */
    char hostname[256];
    int handover;         /* an upgrade: connections go to the new process (see the end) */
    uv_timer_t ho_timer;  /* checks which connections can go */
    uint64_t ho_deadline; /* then they go (or close) whatever their state */
    uint64_t ho_sent, ho_bye, ho_closed; /* handed over, TLS ended, closed */
} sp_fwd_server;

typedef struct {
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_stream_t stream;
        uv_handle_t handle;
    } h;
    sp_fwd_server *srv;
    sp_list link;
    sp_buf pend;         /* an incomplete frame, from its first byte */
    size_t pend_counted; /* pend.cap as counted in the server's pend_total */
    sp_mp_scan scan;     /* how far the frame in `pend` has been scanned */
    sp_buf acks;         /* acks produced by this read, written together */
    sp_joiner joiner;
    uint64_t serial, recno;
    uint64_t last_ms, frame_ms;
    size_t write_bytes; /* acks queued in the kernel-bound write queue */
    sp_list waiters;    /* sp_ackwait not yet answered */
    sp_list flush_link; /* in the server's flushq while acks answered by chunks wait */
    char cid[64];       /* the last container id seen: its metadata lookup has started */
    const char *id_for; /* the chunk id frame_id was computed for (this frame) */
    uint8_t frame_id[16];
    struct sp_ackwait *frame_wait; /* the ack of the frame being decoded (durable/delivered) */
    int reading, closing;
    int authed;       /* the handshake is done, or not required */
    int tls_bye;      /* upgrade: close_notify sent, the connection is ending */
    uint64_t bye_ms;  /* ...since then */
    sp_fwd_tls *tls;  /* NULL: plain TCP */
    sp_fwd_auth auth; /* what this connection's HELO sent */
    uint64_t now_ms;
} sp_fwd_conn;

static void sp__conn_close(sp_fwd_conn *c, const char *reason, const char *detail);
static void sp__start_reading(sp_fwd_conn *c);
static void sp_fwd_handover_reading(sp_fwd_conn *c);
static void sp_fwd_handover_begin(sp_fwd_server *s);

/* ---- acks that wait (ack: durable | delivered) ---- */

/* One frame's ack waits for every chunk that holds one of the frame's records to be durable or
 * delivered. A frame can span chunks, and chunks finish out of order (an output runs several
 * deliveries at once, a failed one is retried after later ones succeeded; the spool may finish
 * them out of order too), so each chunk the frame touched gets its own watch and the ack goes
 * when the last of them has answered and the frame is decoded to its end. */
typedef struct sp_fwd_ackref {
    sp_chunk_watch w;
    struct sp_ackwait *a;
    sp_chunk *chunk;            /* watched until it answers; NULL after (or never attached) */
    struct sp_fwd_ackref *next; /* the frame's other chunks */
} sp_fwd_ackref;

typedef struct sp_ackwait {
    sp_fwd_ackref first; /* most frames touch one chunk: it needs no allocation */
    sp_fwd_ackref *last; /* the chunk the frame's records were appended to last */
    sp_fwd_conn *conn;   /* NULL once the connection is gone */
    sp_list conn_link;
    uint32_t pending; /* chunks not answered yet, plus one until the frame is decoded */
    int failed;       /* a chunk was dropped without delivery (shutdown): no ack */
    size_t len;
    char id[];
} sp_ackwait;

static void sp__ack(void *ctx, sp_slice chunk);
static void sp__flush_acks(sp_fwd_conn *c);

/* Writes the acks that chunks answered since the last time (once per loop iteration). */
static void sp_fwd_ackwait_flush_cb(uv_check_t *h)
{
    sp_fwd_server *s = h->data;
    while (!sp_list_empty(&s->flushq)) {
        sp_fwd_conn *c = sp_list_entry(s->flushq.next, sp_fwd_conn, flush_link);
        sp_list_remove(&c->flush_link);
        sp__flush_acks(c); /* may close c, which is out of the queue already */
    }
    uv_check_stop(h);
}

static void sp__ackwait_free(sp_ackwait *a)
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
static void sp_fwd_ackwait_put(sp_ackwait *a)
{
    if (--a->pending) return;
    sp_fwd_conn *c = a->conn;
    if (a->failed || (c && (c->closing || c->srv->stopping))) c = NULL;
    if (c) {
        sp_fwd_server *s = c->srv;
        sp__ack(c, sp_slice_make(a->id, a->len)); /* the id is copied into c->acks */
        if (sp_list_empty(&c->flush_link)) {
            sp_list_insert_tail(&s->flushq, &c->flush_link);
            uv_check_start(&s->flush, sp_fwd_ackwait_flush_cb);
        }
    }
    sp__ackwait_free(a);
}

static void sp__ackwait_cb(sp_chunk_watch *w, sp_chunk *chunk, int delivered)
{
    sp_fwd_ackref *r = (sp_fwd_ackref *)w;
    r->chunk = NULL;
    if (!delivered) r->a->failed = 1;
    sp_fwd_ackwait_put(r->a);
}

/* The watcher for the chunk a record of the frame was just appended to, unless the frame's
 * watcher is on that chunk already (an sp_input_watch_fn). */
static sp_chunk_watch *sp__ackwait_follow(void *ctx, sp_chunk *chunk)
{
    sp_fwd_conn *c = ctx;
    sp_ackwait *a = c->frame_wait;
    if (!a || (a->last && a->last->chunk == chunk)) return NULL;
    sp_fwd_ackref *r = &a->first;
    if (a->last) { /* a frame over chunks: one allocation per further chunk, not per record */
        r = sp_calloc(1, sizeof *r);
        r->next = a->first.next;
        a->first.next = r;
    }
    r->a = a;
    r->chunk = chunk;
    r->w.cb = sp__ackwait_cb;
    r->w.durable = c->srv->conf->ack == SP_ACK_DURABLE;
    a->last = r;
    a->pending++;
    return &r->w;
}

/* The frame gets no ack (it was refused): detach from its chunks and free it. */
static void sp_fwd_ackwait_cancel(sp_ackwait *a)
{
    for (sp_fwd_ackref *r = &a->first; r; r = r->next)
        if (r->chunk) {
            sp_list_remove(&r->w.link);
            r->chunk = NULL;
        }
    sp__ackwait_free(a);
}

/* ---- records ---- */

static void sp__append(sp_fwd_conn *conn, sp_slice tag, const sp_record *r)
{
    sp_input_append(conn->srv->in, tag, r, sp__ackwait_follow, conn);
}

static void sp__joined(void *ctx, sp_slice tag, const sp_record *r)
{
    sp__append(ctx, tag, r);
}

static int sp__entry(void *ctx, const sp_fwd_entry *e)
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
    if (e->chunk.len && s->conf->ack != SP_ACK_ACCEPTED && !c->frame_wait) {
        sp_ackwait *a = sp_calloc(1, sizeof *a + e->chunk.len + 1);
        a->pending = 1; /* the frame's own reference, dropped at its end */
        a->conn = c;
        a->len = e->chunk.len;
        memcpy(a->id, e->chunk.base, e->chunk.len);
        sp_list_insert_tail(&c->waiters, &a->conn_link);
        c->frame_wait = a;
    }
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
    sp__append(c, e->tag, &r);
    return len;
}

/* The decoder's end-of-frame callback: answer now, or when the frame's chunks are ready. */
static void sp__frame_ack(void *ctx, sp_slice chunk)
{
    sp_fwd_conn *c = ctx;
    c->id_for = NULL;
    sp_ackwait *a = c->frame_wait;
    c->frame_wait = NULL;
    if (!a) {
        sp__ack(c, chunk); /* ack: accepted */
        return;
    }
    /* Close the frame's open chunks now rather than at flush_interval: the client waits for this
     * ack. The frame's own reference keeps the waiter while chunks answer during the loop. */
    for (sp_fwd_ackref *r = &a->first; r; r = r->next)
        if (r->chunk) sp_input_flush_chunk(c->srv->in, r->chunk);
    /* A frame with no record in a chunk (only pieces of a line still being joined) is answered
     * here: the client sends the line's next piece only after this ack. */
    sp_fwd_ackwait_put(a);
}

static void sp__ack(void *ctx, sp_slice chunk)
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

static void sp__write_cb(uv_write_t *req, int status)
{
    sp_ackw *w = (sp_ackw *)req;
    sp_fwd_conn *c = w->conn;
    c->write_bytes -= w->len;
    free(w);
    /* A client that doesn't read its acks was paused (below); let it go on once they drain. */
    if (!c->closing && !c->reading && !c->srv->paused && c->write_bytes == 0 && status == 0) {
        c->reading = 1;
        sp__start_reading(c);
    }
}

/* Writes bytes to the socket, now if the kernel takes them, else queued. */
static void sp__send(sp_fwd_conn *c, const char *data, size_t len)
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
    if (uv_write(&w->req, &c->h.stream, &b, 1, sp__write_cb)) {
        c->write_bytes -= w->len;
        free(w);
        return;
    }
    if (c->write_bytes > (1 << 20) && c->reading) {
        uv_read_stop(&c->h.stream);
        c->reading = 0;
    }
}

static void sp__flush_acks(sp_fwd_conn *c)
{
    if (c->closing) {
        c->acks.len = 0;
        return;
    }
    if (!c->tls) {
        if (c->acks.len) sp__send(c, c->acks.base, c->acks.len);
        c->acks.len = 0;
        return;
    }
    /* Over TLS, what is written before the handshake is done (the HELO) waits for it. */
    if (c->acks.len && sp_fwd_tls_ready(c->tls)) {
        int rc = sp_fwd_tls_write(c->tls, c->acks.base, c->acks.len);
        c->acks.len = 0;
        if (rc) {
            sp__conn_close(c, "tls_error", sp_fwd_tls_error());
            return;
        }
    }
    sp_buf *out = &c->srv->tls_out;
    out->len = 0;
    sp_fwd_tls_pending(c->tls, out);
    if (out->len) sp__send(c, out->base, out->len);
}

/* ---- reading ---- */

static void sp__alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    sp_fwd_conn *c = h->data;
    if (c->tls) {
        *buf = uv_buf_init(c->srv->cbuf, SP_RBUF_SIZE);
        return;
    }
    if (c->pend.len == 0) {
        *buf = uv_buf_init(c->srv->rbuf, SP_RBUF_SIZE);
        return;
    }
    sp_buf_reserve(&c->pend, SP_RBUF_SIZE);
    *buf = uv_buf_init(c->pend.base + c->pend.len, (unsigned)(c->pend.cap - c->pend.len));
}

/* Decodes every complete frame in data[0..len); returns bytes consumed or -1 (closed). */
static ssize_t sp__process(sp_fwd_conn *c, const uint8_t *data, size_t len)
{
    sp_fwd_server *s = c->srv;
    sp_fwd_handler h = {c, sp__entry, sp__frame_ack, &s->inflate, s->conf->max_message_size * 4};
    size_t off = 0;
    while (off < len) {
        int rc;
        if (!c->authed) { /* the first frame must be the PING */
            rc = sp_fwd_scan(&c->scan, data + off, len - off, 64 * 1024);
            if (rc == 0) break;
            if (rc == 1) {
                size_t flen = c->scan.off;
                const char *why;
                sp_mp_scan_reset(&c->scan);
                rc = sp_fwd_auth_ping(&c->auth, &s->auth, data + off, flen, &c->acks, &why);
                off += flen;
                if (rc == 0) {
                    c->authed = 1;
                    continue;
                }
                sp__flush_acks(c); /* the PONG says why, then the connection is closed */
                sp__conn_close(c, "auth_failed", why);
                return -1;
            }
            sp__conn_close(c, "auth_failed", "not a PING frame");
            return -1;
        }
        if (c->scan.off == 0 && c->scan.depth == 0) {
            size_t n;
            rc = sp_fwd_try_message(data + off, len - off, s->conf->max_message_size, &h, &n);
            if (rc == 1) {
                off += n;
                continue;
            }
        }
        rc = sp_fwd_scan(&c->scan, data + off, len - off, s->conf->max_message_size);
        if (rc == 0) break;
        if (rc == 1) {
            size_t flen = c->scan.off;
            sp_mp_scan_reset(&c->scan);
            rc = sp_fwd_decode(data + off, flen, &h);
            off += flen;
            if (rc == 0) continue;
            if (rc == SP_FWD_OTHER_SIGNAL) { /* acked and dropped; closing would loop the client */
                sp_input_error(s->in, "unsupported_signal");
                sp_log_limited(&s->rl_signal, SP_LOG_WARN,
                               "forward %s: dropped a frame of Fluent Bit metrics or traces "
                               "(fluent_signal != 0): only logs are shipped",
                               s->conf->listen);
                continue;
            }
        }
        if (c->frame_wait) { /* the bad frame gets no ack */
            sp_ackwait *a = c->frame_wait;
            c->frame_wait = NULL;
            sp_fwd_ackwait_cancel(a);
        }
        sp__flush_acks(c); /* frames before the bad one were accepted: ack them */
        sp__conn_close(c, sp_fwd_reason(rc), NULL);
        return -1;
    }
    return (ssize_t)off;
}

/* Spins that catch nothing, SP_SPIN_BACKOFF times in a row, mean the clients are not waiting on
 * acks right now (slow senders, or no ack loop at all): from then on only every
 * SP_SPIN_PROBE-th ack spins, until one catches a frame again. */
#define SP_SPIN_BACKOFF 8
#define SP_SPIN_PROBE 64

static void sp__spin_cb(uv_idle_t *h)
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

static void sp__spin_start(sp_fwd_server *s)
{
    if (!uv_is_active((uv_handle_t *)&s->spin)) {
        if (s->spin_miss >= SP_SPIN_BACKOFF && ++s->spin_probe % SP_SPIN_PROBE != 0) {
            s->spins[2]++;
            return;
        }
        s->spin_hit = 0;
        uv_idle_start(&s->spin, sp__spin_cb);
    }
    s->spin_until = uv_hrtime() + (uint64_t)s->conf->ack_spin_us * 1000;
}

/* Takes plaintext that is in s->rbuf, or appended to c->pend already; -1 when it closed. */
static int sp__consume(sp_fwd_conn *c, const char *base, size_t nread)
{
    sp_fwd_server *s = c->srv;
    if (base == s->rbuf) {
        ssize_t used = sp__process(c, (const uint8_t *)base, nread);
        if (used < 0) return -1;
        if ((size_t)used < nread) {
            c->frame_ms = c->now_ms; /* a new frame started in this read */
            sp_buf_append(&c->pend, base + used, nread - (size_t)used);
        }
    } else {
        c->pend.len += nread;
        ssize_t used = sp__process(c, (const uint8_t *)c->pend.base, c->pend.len);
        if (used < 0) return -1;
        if (used > 0) c->frame_ms = c->now_ms;
        memmove(c->pend.base, c->pend.base + used, c->pend.len - (size_t)used);
        c->pend.len -= (size_t)used;
        if (c->pend.len == 0 && c->pend.cap > 4 * SP_RBUF_SIZE) sp_buf_free(&c->pend);
    }
    if (c->pend.cap != c->pend_counted) {
        s->pend_total = s->pend_total - c->pend_counted + c->pend.cap;
        c->pend_counted = c->pend.cap;
        /* Incomplete frames are outside the buffer accounting: bound them on their own, or
         * many clients sending huge frames slowly could hold max_message_size each. */
        if (s->pend_total > s->conf->pending_frames_limit && c->pend.len) {
            sp__conn_close(c, "frame_memory", "pending_frames_limit reached");
            return -1;
        }
    }
    return 0;
}

/* Ciphertext in: decrypt all there is, straight into where plaintext is consumed from. */
static int sp__tls_in(sp_fwd_conn *c, const char *data, size_t n)
{
    sp_fwd_server *s = c->srv;
    sp_fwd_tls_feed(c->tls, data, n);
    for (;;) {
        char *dst = s->rbuf;
        size_t cap = SP_RBUF_SIZE;
        if (c->pend.len) {
            sp_buf_reserve(&c->pend, SP_RBUF_SIZE);
            dst = c->pend.base + c->pend.len;
            cap = c->pend.cap - c->pend.len;
        }
        int got = sp_fwd_tls_read(c->tls, dst, cap);
        if (got < 0) {
            sp__conn_close(c, "tls_error", sp_fwd_tls_error());
            return -1;
        }
        if (got == 0) return 0;
        if (sp__consume(c, dst, (size_t)got)) return -1;
    }
}

static void sp__read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    sp_fwd_conn *c = st->data;
    sp_fwd_server *s = c->srv;
    if (nread == 0) return;
    if (nread < 0) {
        if (c->pend.len) sp_input_error(s->in, "truncated");
        sp__conn_close(c, nread == UV_EOF ? NULL : "read_error",
                       nread == UV_EOF ? NULL : uv_strerror((int)nread));
        return;
    }
    c->now_ms = uv_now(st->loop);
    c->last_ms = c->now_ms;
    s->in->bytes += (uint64_t)nread;
    if (uv_is_active((uv_handle_t *)&s->spin)) s->spin_hit = 1;
    if (c->tls ? sp__tls_in(c, buf->base, (size_t)nread) : sp__consume(c, buf->base, (size_t)nread))
        return;
    /* A client waiting for this ack sends its next frame within microseconds: polling for it
     * beats a sleep and a wake-up, which cost more than the work itself. */
    if (c->acks.len && s->conf->ack_spin_us) sp__spin_start(s);
    sp__flush_acks(c);
}

static void sp__start_reading(sp_fwd_conn *c)
{
    if (c->srv->handover) {
        sp_fwd_handover_reading(c);
        return;
    }
    uv_read_start(&c->h.stream, sp__alloc_cb, sp__read_cb);
}

/* ---- connections ---- */

/* The last handle of a stopping server is closed: free it all. */
static void sp__server_done(sp_fwd_server *s)
{
    sp_input *in = s->in;
    in->data = NULL;
    free(s->rbuf);
    free(s->cbuf);
    sp_buf_free(&s->tls_out);
    sp_fwd_tls_ctx_free(s->tls);
    sp_buf_free(&s->inflate);
    sp_buf_free(&s->extras);
    free(s);
    sp_input_closed(in);
}

static void sp__conn_closed(uv_handle_t *h)
{
    sp_fwd_conn *c = h->data;
    sp_fwd_server *s = c->srv;
    sp_buf_free(&c->pend);
    sp_buf_free(&c->acks);
    sp_fwd_tls_free(c->tls);
    free(c);
    if (--s->handles == 0 && s->stopping) sp__server_done(s);
}

static void sp__conn_close(sp_fwd_conn *c, const char *reason, const char *detail)
{
    if (c->closing) return;
    sp_fwd_server *s = c->srv;
    c->closing = 1;
    if (reason) {
        sp_input_error(s->in, reason);
        sp_log_limited(&s->rl, SP_LOG_WARN, "forward %s: closing connection %llu: %s%s%s",
                       s->conf->listen, (unsigned long long)c->serial, reason, detail ? ": " : "",
                       detail ? detail : "");
    }
    /* Lines whose last piece will never come on this connection: ship what there is. */
    size_t held = c->joiner.held;
    sp_joiner_expire(&c->joiner, c->now_ms, 1);
    sp_input_hold(s->in, -(int64_t)held);
    sp_joiner_free(&c->joiner);
    /* Acks still waiting have no one to go to; the records stay on their way. Each waiter is
     * freed by its last reference: its last chunk answering, or the end of the frame being
     * decoded (every waiter holds one of these until it is freed). */
    while (!sp_list_empty(&c->waiters)) {
        sp_ackwait *a = sp_list_entry(c->waiters.next, sp_ackwait, conn_link);
        sp_list_remove(&a->conn_link);
        a->conn = NULL;
    }
    sp_list_remove(&c->flush_link);
    sp_list_remove(&c->link);
    s->nconns--;
    s->pend_total -= c->pend_counted;
    c->pend_counted = 0;
    uv_close(&c->h.handle, sp__conn_closed);
}

/* A connection's handle, not open yet. */
static sp_fwd_conn *sp_fwd_conn_new(sp_fwd_server *s)
{
    sp_fwd_conn *c = sp_calloc(1, sizeof *c);
    c->srv = s;
    if (s->addr.is_unix)
        uv_pipe_init(s->in->loop, &c->h.pipe, 0);
    else
        uv_tcp_init(s->in->loop, &c->h.tcp);
    c->h.handle.data = c;
    s->handles++;
    sp_list_init(&c->link);
    sp_list_init(&c->waiters);
    sp_list_init(&c->flush_link);
    return c;
}

/* An open connection (accepted, or taken over from the previous process) joins the server. */
static void sp_fwd_conn_open(sp_fwd_server *s, sp_fwd_conn *c)
{
    if (!s->addr.is_unix) uv_tcp_nodelay(&c->h.tcp, 1); /* acks must leave at once */
    c->serial = ++s->serial;
    c->now_ms = c->last_ms = uv_now(s->in->loop);
    sp_joiner_init(&c->joiner, s->conf->max_line_size, s->conf->partial_timeout, sp__joined, c);
    sp_list_insert_tail(&s->conns, &c->link);
    s->nconns++;
}

static void sp__connection_cb(uv_stream_t *server, int status)
{
    sp_fwd_server *s = server->data;
    if (status < 0) {
        sp_log_limited(&s->rl, SP_LOG_WARN, "forward %s: accept: %s", s->conf->listen,
                       uv_strerror(status));
        return;
    }
    sp_fwd_conn *c = sp_fwd_conn_new(s);
    if (uv_accept(server, &c->h.stream)) {
        c->closing = 1;
        uv_close(&c->h.handle, sp__conn_closed);
        return;
    }
    if (s->nconns >= s->conf->max_connections) {
        sp_input_error(s->in, "too_many_connections");
        sp_log_limited(&s->rl, SP_LOG_WARN, "forward %s: max_connections (%lld) reached",
                       s->conf->listen, (long long)s->conf->max_connections);
        c->closing = 1;
        uv_close(&c->h.handle, sp__conn_closed);
        return;
    }
    sp_fwd_conn_open(s, c);
    if (s->tls && !(c->tls = sp_fwd_tls_new(s->tls))) {
        sp__conn_close(c, "tls_error", "cannot create the TLS state");
        return;
    }
    c->authed = s->auth.shared_key == NULL;
    if (!c->authed) { /* the server speaks first: HELO */
        int rc = sp_fwd_auth_helo(&c->auth, &s->auth, &c->acks);
        if (rc) {
            sp__conn_close(c, "auth_failed", strerror(-rc));
            return;
        }
        sp__flush_acks(c);
    }
    if (!s->paused) {
        c->reading = 1;
        sp__start_reading(c);
    }
}

/* ---- the input interface ---- */

/* The TLS context of the tls map; NULL with `why` filled when the map or its files are wrong. */
static sp_fwd_tls_ctx *sp__tls_ctx(const sp_forward_conf *conf, char *why, size_t len)
{
    const char *cert = NULL, *key = NULL;
    for (size_t i = 0; i < conf->tls.n; i++) {
        if (!strcmp(conf->tls.k[i], "cert")) {
            cert = conf->tls.v[i];
        } else if (!strcmp(conf->tls.k[i], "key")) {
            key = conf->tls.v[i];
        } else {
            snprintf(why, len, "unknown key \"%s\" (cert, key)", conf->tls.k[i]);
            return NULL;
        }
    }
    if (!cert || !key) {
        snprintf(why, len, "needs both cert and key (PEM files)");
        return NULL;
    }
    return sp_fwd_tls_ctx_new(cert, key, why, len);
}

static int sp__check(sp_input *in, const sp_node *n, sp_conf_err *err)
{
    sp_forward_conf *conf = in->conf;
    in->needs_spool = conf->ack == SP_ACK_DURABLE;
    sp_addr a;
    const char *why;
    if (sp_addr_parse(conf->listen, &a, &why)) {
        sp_node *v = sp_node_get(n, "listen");
        sp_conf_error(err, v ? v->line : in->line, "listen", "\"%s\": %s", conf->listen, why);
        return -1;
    }
    if (conf->ack_spin_us < 0 || conf->ack_spin_us > 10000) {
        sp_conf_error(err, in->line, "ack_spin_us", "must be between 0 and 10000");
        return -1;
    }
    if (conf->shared_key && !*conf->shared_key) {
        sp_node *v = sp_node_get(n, "shared_key");
        sp_conf_error(err, v ? v->line : in->line, "shared_key", "must not be empty");
        return -1;
    }
    if ((conf->users.n || conf->self_hostname) && !conf->shared_key) {
        const char *k = conf->users.n ? "users" : "self_hostname";
        sp_node *v = sp_node_get(n, k);
        sp_conf_error(err, v ? v->line : in->line, k, "needs shared_key");
        return -1;
    }
    if (conf->tls.n) {
        char why[512];
        sp_fwd_tls_ctx *ctx = sp__tls_ctx(conf, why, sizeof why);
        if (!ctx) {
            sp_node *v = sp_node_get(n, "tls");
            sp_conf_error(err, v ? v->line : in->line, "tls", "%s", why);
            return -1;
        }
        sp_fwd_tls_ctx_free(ctx);
    }
    if (conf->max_connections < 1 || conf->max_message_size < 64) {
        sp_conf_error(err, in->line, "max_connections", "limits must be positive");
        return -1;
    }
    return 0;
}

static int sp__start(sp_input *in)
{
    sp_forward_conf *conf = in->conf;
    sp_fwd_server *s = sp_calloc(1, sizeof *s);
    in->data = s;
    s->in = in;
    s->conf = conf;
    if (conf->shared_key) {
        if (conf->self_hostname) {
            snprintf(s->hostname, sizeof s->hostname, "%s", conf->self_hostname);
        } else if (gethostname(s->hostname, sizeof s->hostname - 1)) {
            snprintf(s->hostname, sizeof s->hostname, "shipper");
        }
        s->auth.shared_key = conf->shared_key;
        s->auth.self_hostname = s->hostname;
        s->auth.users = &conf->users;
        sp_info("forward %s: clients must authenticate (shared_key%s)", conf->listen,
                conf->users.n ? " and users" : "");
    }
    sp_list_init(&s->conns);
    s->rbuf = sp_malloc(SP_RBUF_SIZE);
    if (conf->tls.n) {
        char why[512];
        s->tls = sp__tls_ctx(conf, why, sizeof why);
        if (!s->tls) { /* checked at load; the files changed since */
            sp_error("forward %s: tls: %s", conf->listen, why);
            return -EINVAL;
        }
        s->cbuf = sp_malloc(SP_RBUF_SIZE);
        sp_info("forward %s: TLS on", conf->listen);
    }
    uv_idle_init(in->loop, &s->spin);
    s->spin.data = s;
    uv_check_init(in->loop, &s->flush);
    s->flush.data = s;
    sp_list_init(&s->flushq);
    /* On the Docker host the records' container ids can be enriched from Docker's own files. */
    if (conf->metadata_path && *conf->metadata_path && sp_meta_add_dir(conf->metadata_path) == 0)
        sp_info("forward: container metadata from %s", conf->metadata_path);
    if (conf->docker_socket && *conf->docker_socket) {
        int mrc = sp_meta_set_socket(conf->docker_socket);
        if (mrc)
            sp_warn("forward: docker_socket %s: %s", conf->docker_socket, strerror(-mrc));
        else
            sp_info("forward: container metadata from the Docker API on %s", conf->docker_socket);
    }
    uint64_t t = uv_hrtime() ^ ((uint64_t)getpid() << 32);
    uint8_t h[16];
    sp_hash128(&t, sizeof t, 7, h);
    memcpy(&s->nonce, h, sizeof s->nonce);
    const char *why;
    if (sp_addr_parse(conf->listen, &s->addr, &why)) return -EINVAL;
    int rc, fd = sp_input_inherited_fd(in, &s->addr);
    if (fd >= 0) { /* already bound and listening: systemd socket activation */
        if (s->addr.is_unix) {
            uv_pipe_init(in->loop, &s->l.pipe, 0);
            rc = uv_pipe_open(&s->l.pipe, fd);
        } else {
            uv_tcp_init(in->loop, &s->l.tcp);
            rc = uv_tcp_open(&s->l.tcp, fd);
        }
        if (rc == 0) sp_info("forward %s: using the inherited socket (fd %d)", conf->listen, fd);
    } else if (s->addr.is_unix) {
        struct stat st;
        /* A socket left by a previous run would make bind fail: remove it (only a socket). */
        if (lstat(s->addr.path, &st) == 0 && S_ISSOCK(st.st_mode)) unlink(s->addr.path);
        uv_pipe_init(in->loop, &s->l.pipe, 0);
        rc = uv_pipe_bind(&s->l.pipe, s->addr.path);
        if (rc == 0) chmod(s->addr.path, 0660);
    } else {
        uv_tcp_init(in->loop, &s->l.tcp);
        rc = uv_tcp_bind(&s->l.tcp, (const struct sockaddr *)&s->addr.sa, 0);
    }
    s->l.handle.data = s;
    s->handles = 1;
    if (rc == 0) rc = uv_listen(&s->l.stream, 1024, sp__connection_cb);
    if (rc) {
        sp_error("forward: cannot listen on %s: %s", conf->listen, uv_strerror(rc));
        return rc;
    }
    s->listening = 1;
    sp_info("forward: listening on %s", conf->listen);
    return 0;
}

static void sp__pause(sp_input *in)
{
    sp_fwd_server *s = in->data;
    if (!s) return; /* not started yet (an upgrade starts it late) */
    s->paused = 1;
    sp_list *it;
    sp_list_foreach(it, &s->conns)
    {
        sp_fwd_conn *c = sp_list_entry(it, sp_fwd_conn, link);
        if (c->reading) uv_read_stop(&c->h.stream);
        c->reading = 0;
    }
}

static void sp__resume(sp_input *in)
{
    sp_fwd_server *s = in->data;
    if (!s) return;
    s->paused = 0;
    uint64_t now = uv_now(in->loop);
    sp_list *it;
    sp_list_foreach(it, &s->conns)
    {
        sp_fwd_conn *c = sp_list_entry(it, sp_fwd_conn, link);
        c->last_ms = now; /* time spent paused is not the client's idleness */
        if (!c->reading && !c->closing && c->write_bytes <= (1 << 20)) {
            c->reading = 1;
            sp__start_reading(c);
        }
    }
}

static void sp__tick(sp_input *in, uint64_t now)
{
    sp_fwd_server *s = in->data;
    if (!s) return;
    sp_list *it, *tmp;
    sp_list_foreach_safe(it, tmp, &s->conns)
    {
        sp_fwd_conn *c = sp_list_entry(it, sp_fwd_conn, link);
        c->now_ms = now;
        if (c->joiner.held || !sp_list_empty(&c->joiner.pending)) {
            size_t held = c->joiner.held;
            sp_joiner_expire(&c->joiner, now, 0);
            sp_input_hold(in, (int64_t)c->joiner.held - (int64_t)held);
        }
        if (s->paused || s->handover) continue;
        if (c->pend.len && now - c->frame_ms > s->conf->idle_timeout)
            sp__conn_close(c, "slow_frame", "a frame did not complete within idle_timeout");
        else if (now - c->last_ms > s->conf->idle_timeout)
            sp__conn_close(c, "idle_timeout", NULL);
    }
}

static void sp__spin_closed(uv_handle_t *h)
{
    sp_fwd_server *s = h->data;
    if (--s->handles == 0) sp__server_done(s);
}

static void sp__listener_closed(uv_handle_t *h)
{
    sp_fwd_server *s = h->data;
    /* Handed over: the socket file is the new process's listener. */
    if (s->addr.is_unix && !s->handover) unlink(s->addr.path);
    if (--s->handles == 0) sp__server_done(s);
}

static void sp__stop(sp_input *in)
{
    sp_fwd_server *s = in->data;
    if (!s) {
        sp_input_closed(in);
        return;
    }
    if (s->handover) return; /* a stop signal during an upgrade: the hand-over goes on */
    if (in->handover_ms) {
        sp_fwd_handover_begin(s);
        return;
    }
    s->stopping = 1;
    s->handles += 2;
    uv_close((uv_handle_t *)&s->spin, sp__spin_closed);
    uv_close((uv_handle_t *)&s->flush, sp__spin_closed); /* it only counts the handle */
    while (!sp_list_empty(&s->conns))
        sp__conn_close(sp_list_entry(s->conns.next, sp_fwd_conn, link), NULL, NULL);
    uv_close(&s->l.handle, sp__listener_closed);
}

static void sp__metrics(sp_input *in, sp_buf *out)
{
    sp_fwd_server *s = in->data;
    sp_buf_printf(out, "shipper_forward_connections{input=\"%s\"} %d\n", in->name,
                  s ? s->nconns : 0);
    static const char *const res[] = {"hit", "miss", "skipped"};
    for (int i = 0; i < 3; i++)
        sp_buf_printf(out, "shipper_forward_ack_spins_total{input=\"%s\",result=\"%s\"} %llu\n",
                      in->name, res[i], (unsigned long long)(s ? s->spins[i] : 0));
}

/* ---- upgrade: handing connections over, and taking them ---- */

/*
 * The old process stops accepting (the listening socket lives on in the new one) and hands each
 * connection over once it is at a point the new process can go on from: its acks for the frames
 * read are written (durable ones once their chunks are fsynced, delivered ones once delivered),
 * and no line over 16 KiB is half joined (the connection is read on until the line's last piece,
 * or partial_timeout). What is handed over: the fd, the listener, the unparsed bytes of an
 * incomplete frame (the new process scans them again from their start), and the handshake state.
 * A TLS session cannot move with OpenSSL's memory BIOs: such a connection is read on to the end of
 * the frame it is in, acked, and closed with close_notify; TLS clients reconnect. After the
 * deadline (service.grace), the rest goes as it is (their pending acks are not written: the
 * client resends those frames, with the same chunk ids, so Elasticsearch keeps one copy).
 */

#define SP_FWD_HO_VERSION 1
#define SP_FWD_HO_AUTHED 1    /* the handshake is done, or was not required */
#define SP_FWD_HO_KEYED 2     /* the old listener required shared_key */
#define SP_FWD_HO_TICK_MS 5   /* how often the old process looks for connections that can go */
#define SP_FWD_HO_BYE_MS 2000 /* a TLS connection lingers this long after its close_notify */

/* A connection can be handed over only with no line half joined; a TLS one also only between
 * frames (it is closed rather than handed over). */
static int sp_fwd_handover_finished(const sp_fwd_conn *c)
{
    return sp_list_empty(&c->joiner.pending) && (!c->tls || c->pend.len == 0);
}

static int sp_fwd_handover_ready(const sp_fwd_conn *c)
{
    return !c->reading && sp_fwd_handover_finished(c) && sp_list_empty(&c->waiters) &&
           c->write_bytes == 0 && c->acks.len == 0 && sp_list_empty(&c->flush_link);
}

/* While handing over, a connection is read only up to the point it can go from. */
static void sp_fwd_handover_read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    sp_fwd_conn *c = st->data;
    sp__read_cb(st, nread, buf);
    if (!c->closing && c->reading && sp_fwd_handover_finished(c)) {
        uv_read_stop(st);
        c->reading = 0;
    }
}

/* After the close_notify: what the client still sends is dropped (it gets no ack for it and
 * resends it to the new process); its close ends the connection. */
static void sp_fwd_bye_read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    if (nread < 0) sp__conn_close(st->data, NULL, NULL);
}

static void sp_fwd_handover_reading(sp_fwd_conn *c)
{
    if (c->tls_bye) {
        uv_read_start(&c->h.stream, sp__alloc_cb, sp_fwd_bye_read_cb);
    } else if (sp_fwd_handover_finished(c)) {
        c->reading = 0;
    } else {
        uv_read_start(&c->h.stream, sp__alloc_cb, sp_fwd_handover_read_cb);
    }
}

static void sp_fwd_shutdown_cb(uv_shutdown_t *req, int status)
{
    free(req);
}

/* A TLS connection at a frame boundary with its acks written: close_notify, then FIN. */
static void sp_fwd_handover_bye(sp_fwd_conn *c)
{
    sp_fwd_server *s = c->srv;
    if (sp_fwd_tls_shutdown(c->tls)) { /* no session yet: nothing to end cleanly */
        s->ho_closed++;
        sp__conn_close(c, NULL, NULL);
        return;
    }
    c->tls_bye = 1;
    c->bye_ms = uv_now(s->in->loop);
    s->ho_bye++;
    sp_buf *out = &s->tls_out;
    out->len = 0;
    sp_fwd_tls_pending(c->tls, out);
    if (out->len) sp__send(c, out->base, out->len);
    uv_shutdown_t *req = sp_malloc(sizeof *req);
    if (uv_shutdown(req, &c->h.stream, sp_fwd_shutdown_cb)) free(req);
    if (c->reading) uv_read_stop(&c->h.stream);
    c->reading = 1;
    sp_fwd_handover_reading(c);
}

static void sp_fwd_handover_conn(sp_fwd_conn *c)
{
    sp_fwd_server *s = c->srv;
    if (c->tls && !c->write_bytes) {
        sp_fwd_handover_bye(c);
        return;
    }
    if (c->tls || c->write_bytes) {
        /* At the deadline, an ack half written: the byte stream cannot go on from here in
         * another process. */
        s->ho_closed++;
        sp__conn_close(c, NULL, NULL);
        return;
    }
    sp_buf st = {0};
    size_t ll = strlen(s->conf->listen);
    uint8_t head[4] = {
        SP_FWD_HO_VERSION,
        (uint8_t)((c->authed ? SP_FWD_HO_AUTHED : 0) | (s->auth.shared_key ? SP_FWD_HO_KEYED : 0)),
        (uint8_t)(ll & 0xff), (uint8_t)(ll >> 8)};
    sp_buf_append(&st, head, sizeof head);
    sp_buf_append(&st, s->conf->listen, ll);
    if (!c->authed) { /* its HELO's values: the PING answers them */
        sp_buf_append(&st, c->auth.nonce, sizeof c->auth.nonce);
        sp_buf_append(&st, c->auth.salt, sizeof c->auth.salt);
    }
    sp_buf_append(&st, c->pend.base, c->pend.len);
    uv_os_fd_t fd;
    if (uv_fileno(&c->h.handle, &fd) || sp_input_handover(s->in, fd, st.base, st.len))
        s->ho_closed++;
    else
        s->ho_sent++;
    sp_buf_free(&st);
    /* Our descriptor goes; the connection stays open in the new process (no FIN). */
    sp__conn_close(c, NULL, NULL);
}

static void sp_fwd_handover_tick(uv_timer_t *t)
{
    sp_fwd_server *s = t->data;
    uint64_t now = uv_now(t->loop);
    int late = now >= s->ho_deadline;
    sp_list *it, *tmp;
    sp_list_foreach_safe(it, tmp, &s->conns)
    {
        sp_fwd_conn *c = sp_list_entry(it, sp_fwd_conn, link);
        if (c->tls_bye) {
            if (late || now - c->bye_ms >= SP_FWD_HO_BYE_MS) sp__conn_close(c, NULL, NULL);
        } else if (late || sp_fwd_handover_ready(c)) {
            sp_fwd_handover_conn(c);
        }
    }
    if (!sp_list_empty(&s->conns)) return;
    uv_timer_stop(t);
    sp_info("forward %s: %llu connection(s) handed over to the new process", s->conf->listen,
            (unsigned long long)s->ho_sent);
    if (s->ho_bye)
        sp_info("forward %s: closed %llu TLS connection(s) with close_notify after their last "
                "frame (a TLS session cannot be handed over; clients reconnect)",
                s->conf->listen, (unsigned long long)s->ho_bye);
    if (s->ho_closed)
        sp_warn("forward %s: closed %llu connection(s) that could not be handed over (an ack "
                "still unwritten at the deadline, a failed hand-over)",
                s->conf->listen, (unsigned long long)s->ho_closed);
    /* Done: close what is left, as a stop does. */
    s->stopping = 1;
    s->handles += 2;
    uv_close((uv_handle_t *)&s->spin, sp__spin_closed);
    uv_close((uv_handle_t *)&s->flush, sp__spin_closed);
    uv_close((uv_handle_t *)&s->ho_timer, sp__spin_closed); /* counted at its start */
}

static void sp_fwd_handover_begin(sp_fwd_server *s)
{
    sp_input *in = s->in;
    s->handover = 1;
    s->ho_deadline = uv_now(in->loop) + in->handover_ms;
    sp_info("forward %s: handing connections over (%d open)", s->conf->listen, s->nconns);
    uv_close(&s->l.handle, sp__listener_closed); /* our descriptor only: the socket goes on */
    s->listening = 0;
    sp_list *it;
    sp_list_foreach(it, &s->conns)
    {
        sp_fwd_conn *c = sp_list_entry(it, sp_fwd_conn, link);
        if (c->reading) uv_read_stop(&c->h.stream);
        c->reading = !s->paused && !sp_fwd_handover_finished(c);
        if (c->reading) sp_fwd_handover_reading(c);
    }
    uv_timer_init(in->loop, &s->ho_timer);
    s->ho_timer.data = s;
    s->handles++;
    uv_timer_start(&s->ho_timer, sp_fwd_handover_tick, 0, SP_FWD_HO_TICK_MS);
}

/* Whether the old listener `listen` is this server's: the same text, or the same address. */
static int sp_fwd_same_listener(const sp_fwd_server *s, const char *listen, size_t len)
{
    if (strlen(s->conf->listen) == len && memcmp(s->conf->listen, listen, len) == 0) return 1;
    char buf[512];
    sp_addr a;
    const char *why;
    if (len >= sizeof buf) return 0;
    memcpy(buf, listen, len);
    buf[len] = '\0';
    if (sp_addr_parse(buf, &a, &why) || a.is_unix != s->addr.is_unix) return 0;
    if (a.is_unix) return strcmp(a.path, s->addr.path) == 0;
    if (a.sa.ss_family != s->addr.sa.ss_family) return 0;
    if (a.sa.ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)&a.sa, *y = (const void *)&s->addr.sa;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const void *)&a.sa, *y = (const void *)&s->addr.sa;
    return x->sin6_port == y->sin6_port && !memcmp(&x->sin6_addr, &y->sin6_addr, 16);
}

/* The new process: a connection the old one handed over (state as sp_fwd_handover_conn made
 * it). 0 taken, 1 refused (closed, reason logged), -ENOENT another listener's. */
static int sp__adopt(sp_input *in, int fd, const uint8_t *st, size_t len)
{
    sp_fwd_server *s = in->data;
    if (!s || s->stopping || s->handover) return -ENOENT;
    if (len < 4 || st[0] != SP_FWD_HO_VERSION || len < 4 + (size_t)(st[2] | st[3] << 8))
        return -EPROTO;
    size_t ll = (size_t)(st[2] | st[3] << 8), off = 4 + ll;
    int flags = st[1];
    if (!sp_fwd_same_listener(s, (const char *)st + 4, ll)) return -ENOENT;
    if (!(flags & SP_FWD_HO_AUTHED) && len < off + 32) return -EPROTO;
    const char *why = NULL;
    if (s->tls)
        why = "a plaintext connection, and this listener is TLS now";
    else if (s->auth.shared_key && (flags & SP_FWD_HO_AUTHED) && !(flags & SP_FWD_HO_KEYED))
        why = "it never authenticated, and this listener requires shared_key now";
    else if (!s->auth.shared_key && !(flags & SP_FWD_HO_AUTHED))
        why = "it is in the middle of a handshake this listener no longer asks for";
    if (why) {
        sp_log_limited(&s->rl, SP_LOG_WARN, "forward %s: a connection handed over is closed: %s",
                       s->conf->listen, why);
        close(fd);
        return 1;
    }
    sp_fwd_conn *c = sp_fwd_conn_new(s);
    int rc = s->addr.is_unix ? uv_pipe_open(&c->h.pipe, fd) : uv_tcp_open(&c->h.tcp, fd);
    if (rc) {
        sp_log_limited(&s->rl, SP_LOG_WARN, "forward %s: a connection handed over: %s",
                       s->conf->listen, uv_strerror(rc));
        close(fd);
        c->closing = 1;
        uv_close(&c->h.handle, sp__conn_closed);
        return 1;
    }
    sp_fwd_conn_open(s, c);
    c->authed = (flags & SP_FWD_HO_AUTHED) != 0;
    if (!c->authed) {
        memcpy(c->auth.nonce, st + off, sizeof c->auth.nonce);
        memcpy(c->auth.salt, st + off + 16, sizeof c->auth.salt);
        off += 32;
    }
    if (len > off) { /* the start of a frame: scanned again from its first byte */
        sp_buf_append(&c->pend, st + off, len - off);
        c->frame_ms = c->now_ms;
        s->pend_total += c->pend.cap;
        c->pend_counted = c->pend.cap;
    }
    if (!s->paused) {
        c->reading = 1;
        sp__start_reading(c);
    }
    return 0;
}

static int sp__listen_fd(sp_input *in)
{
    sp_fwd_server *s = in->data;
    uv_os_fd_t fd;
    if (!s || !s->listening || uv_fileno(&s->l.handle, &fd)) return -1;
    return fd;
}

const sp_input_type sp_input_forward = {
    .name = "forward",
    .fields = sp__forward_fields,
    .conf_size = sizeof(sp_forward_conf),
    .planned = NULL,
    .check = sp__check,
    .start = sp__start,
    .pause = sp__pause,
    .resume = sp__resume,
    .tick = sp__tick,
    .stop = sp__stop,
    .metrics = sp__metrics,
    .listen_fd = sp__listen_fd,
    .adopt = sp__adopt,
};
