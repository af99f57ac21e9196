/* The forward input, upgrade in place (docs/deploy.md, "Upgrades"). */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "forward_int.h"

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
    sp_fwd_conn_read_cb(st, nread, buf);
    if (!c->closing && c->reading && sp_fwd_handover_finished(c)) {
        uv_read_stop(st);
        c->reading = 0;
    }
}

/* After the close_notify: what the client still sends is dropped (it gets no ack for it and
 * resends it to the new process); its close ends the connection. */
static void sp_fwd_handover_bye_read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    if (nread < 0) sp_fwd_conn_close(st->data, NULL, NULL);
}

void sp_fwd_handover_reading(sp_fwd_conn *c)
{
    if (c->tls_bye) {
        uv_read_start(&c->h.stream, sp_fwd_conn_alloc_cb, sp_fwd_handover_bye_read_cb);
    } else if (sp_fwd_handover_finished(c)) {
        c->reading = 0;
    } else {
        uv_read_start(&c->h.stream, sp_fwd_conn_alloc_cb, sp_fwd_handover_read_cb);
    }
}

static void sp_fwd_handover_shutdown_cb(uv_shutdown_t *req, int status)
{
    free(req);
}

/* A TLS connection at a frame boundary with its acks written: close_notify, then FIN. */
static void sp_fwd_handover_bye(sp_fwd_conn *c)
{
    sp_fwd_server *s = c->srv;
    if (sp_fwd_tls_shutdown(c->tls)) { /* no session yet: nothing to end cleanly */
        s->ho_closed++;
        sp_fwd_conn_close(c, NULL, NULL);
        return;
    }
    c->tls_bye = 1;
    c->bye_ms = uv_now(s->in->loop);
    s->ho_bye++;
    sp_buf *out = &s->tls_out;
    out->len = 0;
    sp_fwd_tls_pending(c->tls, out);
    if (out->len) sp_fwd_ack_send(c, out->base, out->len);
    uv_shutdown_t *req = sp_malloc(sizeof *req);
    if (uv_shutdown(req, &c->h.stream, sp_fwd_handover_shutdown_cb)) free(req);
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
        sp_fwd_conn_close(c, NULL, NULL);
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
    sp_fwd_conn_close(c, NULL, NULL);
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
            if (late || now - c->bye_ms >= SP_FWD_HO_BYE_MS) sp_fwd_conn_close(c, NULL, NULL);
        } else if (late || sp_fwd_handover_ready(c)) {
            sp_fwd_handover_conn(c);
        }
    }
    if (!sp_list_empty(&s->conns)) return;
    uv_timer_stop(t);
    sp_in_info(s->in, "%s: %llu connection(s) handed over to the new process", s->conf->listen,
               (unsigned long long)s->ho_sent);
    if (s->ho_bye)
        sp_in_info(s->in,
                   "%s: closed %llu TLS connection(s) with close_notify after their last "
                   "frame (a TLS session cannot be handed over; clients reconnect)",
                   s->conf->listen, (unsigned long long)s->ho_bye);
    if (s->ho_closed)
        sp_in_warn(s->in,
                   "%s: closed %llu connection(s) that could not be handed over (an ack "
                   "still unwritten at the deadline, a failed hand-over)",
                   s->conf->listen, (unsigned long long)s->ho_closed);
    /* Done: close what is left, as a stop does. */
    s->stopping = 1;
    s->handles += 2;
    uv_close((uv_handle_t *)&s->spin, sp_fwd_handle_closed);
    uv_close((uv_handle_t *)&s->flush, sp_fwd_handle_closed);
    uv_close((uv_handle_t *)&s->ho_timer, sp_fwd_handle_closed); /* counted at its start */
}

void sp_fwd_handover_begin(sp_fwd_server *s)
{
    sp_input *in = s->in;
    s->handover = 1;
    s->ho_deadline = uv_now(in->loop) + in->handover_ms;
    sp_in_info(s->in, "%s: handing connections over (%d open)", s->conf->listen, s->nconns);
    uv_close(&s->l.handle, sp_fwd_listener_closed); /* our descriptor only: the socket goes on */
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
static int sp_fwd_handover_same_listener(const sp_fwd_server *s, const char *listen, size_t len)
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
int sp_fwd_handover_adopt(sp_input *in, int fd, const uint8_t *st, size_t len)
{
    sp_fwd_server *s = in->data;
    if (!s || s->stopping || s->handover) return -ENOENT;
    if (len < 4 || st[0] != SP_FWD_HO_VERSION || len < 4 + (size_t)(st[2] | st[3] << 8))
        return -EPROTO;
    size_t ll = (size_t)(st[2] | st[3] << 8), off = 4 + ll;
    int flags = st[1];
    if (!sp_fwd_handover_same_listener(s, (const char *)st + 4, ll)) return -ENOENT;
    if (!(flags & SP_FWD_HO_AUTHED) && len < off + 32) return -EPROTO;
    const char *why = NULL;
    if (s->tls)
        why = "a plaintext connection, and this listener is TLS now";
    else if (s->auth.shared_key && (flags & SP_FWD_HO_AUTHED) && !(flags & SP_FWD_HO_KEYED))
        why = "it never authenticated, and this listener requires shared_key now";
    else if (!s->auth.shared_key && !(flags & SP_FWD_HO_AUTHED))
        why = "it is in the middle of a handshake this listener no longer asks for";
    if (why) {
        sp_in_log_limited(s->in, &s->rl, SP_LOG_WARN, "%s: a connection handed over is closed: %s",
                          s->conf->listen, why);
        close(fd);
        return 1;
    }
    sp_fwd_conn *c = sp_fwd_conn_new(s);
    int rc = s->addr.is_unix ? uv_pipe_open(&c->h.pipe, fd) : uv_tcp_open(&c->h.tcp, fd);
    if (rc) {
        sp_in_log_limited(s->in, &s->rl, SP_LOG_WARN, "%s: a connection handed over: %s",
                          s->conf->listen, uv_strerror(rc));
        close(fd);
        c->closing = 1;
        uv_close(&c->h.handle, sp_fwd_conn_closed);
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
    if (sp_fwd_conn_may_read(c)) {
        c->reading = 1;
        sp_fwd_conn_start_reading(c);
    }
    return 0;
}

int sp_fwd_handover_listen_fd(sp_input *in)
{
    sp_fwd_server *s = in->data;
    uv_os_fd_t fd;
    if (!s || !s->listening || uv_fileno(&s->l.handle, &fd)) return -1;
    return fd;
}
