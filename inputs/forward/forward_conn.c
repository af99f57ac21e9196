/*
 * The forward input, connections and reads. Reads land in one shared 256 KiB buffer; every
 * complete frame in it is decoded in place and only an incomplete tail is copied to the
 * connection, where the next reads append to it and the resumable scanner continues from where it
 * stopped. With TLS, ciphertext is decrypted straight into the same place. Backpressure stops
 * reading a socket, never closes it; bad input closes only the connection that sent it.
 */
#include <stdlib.h>
#include <string.h>

#include "forward_int.h"
#include "mp.h"

/* ---- reading ---- */

void sp_fwd_conn_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
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
static ssize_t sp_fwd_conn_process(sp_fwd_conn *c, const uint8_t *data, size_t len)
{
    sp_fwd_server *s = c->srv;
    sp_fwd_handler h = {c, sp_fwd_ack_entry, sp_fwd_ack_frame_end, &s->inflate,
                        s->conf->max_message_size * 4};
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
                sp_fwd_ack_flush(c); /* the PONG says why, then the connection is closed */
                sp_fwd_conn_close(c, "auth_failed", why);
                return -1;
            }
            sp_fwd_conn_close(c, "auth_failed", "not a PING frame");
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
                sp_in_log_limited(s->in, &s->rl_signal, SP_LOG_WARN,
                                  "%s: dropped a frame of Fluent Bit metrics or traces "
                                  "(fluent_signal != 0): only logs are shipped",
                                  s->conf->listen);
                continue;
            }
        }
        if (c->frame_wait) { /* the bad frame gets no ack */
            sp_fwd_ackwait *a = c->frame_wait;
            c->frame_wait = NULL;
            c->frame_chunk = sp_slice_make(NULL, 0);
            sp_fwd_ackwait_cancel(a);
        }
        sp_fwd_ack_flush(c); /* frames before the bad one were accepted: ack them */
        sp_fwd_conn_close(c, sp_fwd_reason(rc), NULL);
        return -1;
    }
    return (ssize_t)off;
}

/* Takes plaintext that is in s->rbuf, or appended to c->pend already; -1 when it closed. */
static int sp_fwd_conn_consume(sp_fwd_conn *c, const char *base, size_t nread)
{
    sp_fwd_server *s = c->srv;
    if (base == s->rbuf) {
        ssize_t used = sp_fwd_conn_process(c, (const uint8_t *)base, nread);
        if (used < 0) return -1;
        if ((size_t)used < nread) {
            c->frame_ms = c->now_ms; /* a new frame started in this read */
            sp_buf_append(&c->pend, base + used, nread - (size_t)used);
        }
    } else {
        c->pend.len += nread;
        ssize_t used = sp_fwd_conn_process(c, (const uint8_t *)c->pend.base, c->pend.len);
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
            sp_fwd_conn_close(c, "frame_memory", "pending_frames_limit reached");
            return -1;
        }
    }
    return 0;
}

/* Ciphertext in: decrypt all there is, straight into where plaintext is consumed from. */
static int sp_fwd_conn_tls_in(sp_fwd_conn *c, const char *data, size_t n)
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
            sp_fwd_conn_close(c, "tls_error", sp_fwd_tls_error());
            return -1;
        }
        if (got == 0) return 0;
        if (sp_fwd_conn_consume(c, dst, (size_t)got)) return -1;
    }
}

void sp_fwd_conn_read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    sp_fwd_conn *c = st->data;
    sp_fwd_server *s = c->srv;
    if (nread == 0) return;
    if (nread < 0) {
        if (c->pend.len) sp_input_error(s->in, "truncated");
        sp_fwd_conn_close(c, nread == UV_EOF ? NULL : "read_error",
                          nread == UV_EOF ? NULL : uv_strerror((int)nread));
        return;
    }
    c->now_ms = uv_now(st->loop);
    c->last_ms = c->now_ms;
    s->in->bytes += (uint64_t)nread;
    sp_source_count(&c->src, (uint64_t)nread);
    if (uv_is_active((uv_handle_t *)&s->spin)) s->spin_hit = 1;
    s->in->source = &c->src; /* the filter stage's throttle `action: slow` */
    int rc = c->tls ? sp_fwd_conn_tls_in(c, buf->base, (size_t)nread)
                    : sp_fwd_conn_consume(c, buf->base, (size_t)nread);
    s->in->source = NULL;
    if (rc) return;
    /* A client waiting for this ack sends its next frame within microseconds: polling for it
     * beats a sleep and a wake-up, which cost more than the work itself. */
    if (c->acks.len && s->conf->ack_spin_us) sp_fwd_ack_spin_start(s);
    sp_fwd_ack_flush(c);
}

void sp_fwd_conn_start_reading(sp_fwd_conn *c)
{
    if (c->srv->handover) {
        sp_fwd_handover_reading(c);
        return;
    }
    uv_read_start(&c->h.stream, sp_fwd_conn_alloc_cb, sp_fwd_conn_read_cb);
}

/* ---- connections ---- */

/* The last handle of a stopping server is closed: free it all. */
void sp_fwd_conn_server_done(sp_fwd_server *s)
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

void sp_fwd_conn_closed(uv_handle_t *h)
{
    sp_fwd_conn *c = h->data;
    sp_fwd_server *s = c->srv;
    sp_buf_free(&c->pend);
    sp_buf_free(&c->acks);
    sp_fwd_tls_free(c->tls);
    free(c);
    if (--s->handles == 0 && s->stopping) sp_fwd_conn_server_done(s);
}

void sp_fwd_conn_close(sp_fwd_conn *c, const char *reason, const char *detail)
{
    if (c->closing) return;
    sp_fwd_server *s = c->srv;
    c->closing = 1;
    if (reason) {
        sp_input_error(s->in, reason);
        sp_in_log_limited(s->in, &s->rl, SP_LOG_WARN, "%s: closing connection %llu: %s%s%s",
                          s->conf->listen, (unsigned long long)c->serial, reason,
                          detail ? ": " : "", detail ? detail : "");
    }
    /* Lines whose last piece will never come on this connection: ship what there is (with no
     * frame's ack to wait for them). */
    c->frame_chunk = sp_slice_make(NULL, 0);
    size_t held = c->joiner.held;
    sp_joiner_expire(&c->joiner, c->now_ms, 1);
    sp_input_hold(s->in, -(int64_t)held);
    sp_joiner_free(&c->joiner);
    /* Acks still waiting have no one to go to; the records stay on their way. Each waiter is
     * freed by its last reference: its last chunk answering, or the end of the frame being
     * decoded (every waiter holds one of these until it is freed). */
    while (!sp_list_empty(&c->waiters)) {
        sp_fwd_ackwait *a = sp_list_entry(c->waiters.next, sp_fwd_ackwait, conn_link);
        sp_list_remove(&a->conn_link);
        a->conn = NULL;
    }
    sp_list_remove(&c->flush_link);
    sp_list_remove(&c->link);
    sp_source_remove(&c->src);
    s->nconns--;
    s->pend_total -= c->pend_counted;
    c->pend_counted = 0;
    uv_close(&c->h.handle, sp_fwd_conn_closed);
}

/* A connection's handle, not open yet. */
sp_fwd_conn *sp_fwd_conn_new(sp_fwd_server *s)
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
    sp_fwd_hold_init(c);
    return c;
}

/* Fair backpressure (docs/architecture.md, "Fair backpressure"): the router pauses this
 * connection alone; it stays open, and reads again once resumed (unless the whole input is
 * paused, or the client does not read its acks). */
static void sp_fwd_conn_src_pause(sp_source *src)
{
    sp_fwd_conn *c = sp_list_entry(src, sp_fwd_conn, src);
    if (c->reading) uv_read_stop(&c->h.stream);
    c->reading = 0;
}

static void sp_fwd_conn_src_resume(sp_source *src)
{
    sp_fwd_conn *c = sp_list_entry(src, sp_fwd_conn, src);
    if (!c->reading && sp_fwd_conn_may_read(c)) {
        c->last_ms = uv_now(c->srv->in->loop); /* paused is not idle */
        c->reading = 1;
        sp_fwd_conn_start_reading(c);
    }
}

int sp_fwd_conn_may_read(const sp_fwd_conn *c)
{
    return !c->closing && !c->srv->paused && !c->src.paused && c->write_bytes <= (1 << 20);
}

/* An open connection (accepted, or taken over from the previous process) joins the server. */
void sp_fwd_conn_open(sp_fwd_server *s, sp_fwd_conn *c)
{
    if (!s->addr.is_unix) uv_tcp_nodelay(&c->h.tcp, 1); /* acks must leave at once */
    c->serial = ++s->serial;
    c->now_ms = c->last_ms = uv_now(s->in->loop);
    sp_joiner_init(&c->joiner, s->conf->max_line_size, s->conf->partial_timeout, sp_fwd_ack_joined,
                   c);
    sp_list_insert_tail(&s->conns, &c->link);
    sp_source_add(s->in, &c->src, sp_fwd_conn_src_pause, sp_fwd_conn_src_resume);
    s->nconns++;
}

void sp_fwd_conn_accept_cb(uv_stream_t *server, int status)
{
    sp_fwd_server *s = server->data;
    if (status < 0) {
        sp_in_log_limited(s->in, &s->rl, SP_LOG_WARN, "%s: accept: %s", s->conf->listen,
                          uv_strerror(status));
        return;
    }
    sp_fwd_conn *c = sp_fwd_conn_new(s);
    if (uv_accept(server, &c->h.stream)) {
        c->closing = 1;
        uv_close(&c->h.handle, sp_fwd_conn_closed);
        return;
    }
    if (s->nconns >= s->conf->max_connections) {
        sp_input_error(s->in, "too_many_connections");
        sp_in_log_limited(s->in, &s->rl, SP_LOG_WARN, "%s: max_connections (%lld) reached",
                          s->conf->listen, (long long)s->conf->max_connections);
        c->closing = 1;
        uv_close(&c->h.handle, sp_fwd_conn_closed);
        return;
    }
    sp_fwd_conn_open(s, c);
    if (s->tls && !(c->tls = sp_fwd_tls_new(s->tls))) {
        sp_fwd_conn_close(c, "tls_error", "cannot create the TLS state");
        return;
    }
    c->authed = s->auth.shared_key == NULL;
    if (!c->authed) { /* the server speaks first: HELO */
        int rc = sp_fwd_auth_helo(&c->auth, &s->auth, &c->acks);
        if (rc) {
            sp_fwd_conn_close(c, "auth_failed", strerror(-rc));
            return;
        }
        sp_fwd_ack_flush(c);
    }
    if (sp_fwd_conn_may_read(c)) {
        c->reading = 1;
        sp_fwd_conn_start_reading(c);
    }
}
