/*
 * The forward input: a TCP or Unix-socket listener speaking Fluentd Forward v1 (docs/forward.md).
 * This file is its entry: start, pause and resume, tick, stop, metrics, and the descriptor last;
 * forward_int.h says which file does the rest.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "forward_int.h"
#include "meta.h"

/* Binds (or takes the inherited socket of) `listen` and starts accepting. */
static int sp_fwd_listen(sp_fwd_server *s)
{
    sp_input *in = s->in;
    sp_forward_conf *conf = s->conf;
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
        if (rc == 0) sp_in_info(in, "%s: using the inherited socket (fd %d)", conf->listen, fd);
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
    if (rc == 0) rc = uv_listen(&s->l.stream, 1024, sp_fwd_conn_accept_cb);
    if (rc) {
        sp_in_error(in, "cannot listen on %s: %s", conf->listen, uv_strerror(rc));
        return rc;
    }
    s->listening = 1;
    sp_in_info(in, "listening on %s", conf->listen);
    return 0;
}

static int sp_fwd_start(sp_input *in)
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
        sp_in_info(in, "%s: clients must authenticate (shared_key%s)", conf->listen,
                   conf->users.n ? " and users" : "");
    }
    sp_list_init(&s->conns);
    s->rbuf = sp_malloc(SP_RBUF_SIZE);
    if (conf->tls.n) {
        char why[512];
        s->tls = sp_fwd_config_tls_ctx(conf, why, sizeof why);
        if (!s->tls) { /* checked at load; the files changed since */
            sp_in_error(in, "%s: tls: %s", conf->listen, why);
            return -EINVAL;
        }
        s->cbuf = sp_malloc(SP_RBUF_SIZE);
        sp_in_info(in, "%s: TLS on", conf->listen);
    }
    uv_idle_init(in->loop, &s->spin);
    s->spin.data = s;
    uv_check_init(in->loop, &s->flush);
    s->flush.data = s;
    sp_list_init(&s->flushq);
    /* On the Docker host the records' container ids can be enriched from Docker's own files. */
    if (conf->metadata_path && *conf->metadata_path && sp_meta_add_dir(conf->metadata_path) == 0)
        sp_in_info(in, "container metadata from %s", conf->metadata_path);
    if (conf->docker_socket && *conf->docker_socket) {
        int mrc = sp_meta_set_socket(conf->docker_socket);
        if (mrc)
            sp_in_warn(in, "docker_socket %s: %s", conf->docker_socket, strerror(-mrc));
        else
            sp_in_info(in, "container metadata from the Docker API on %s", conf->docker_socket);
    }
    uint64_t t = uv_hrtime() ^ ((uint64_t)getpid() << 32);
    uint8_t h[16];
    sp_hash128(&t, sizeof t, 7, h);
    memcpy(&s->nonce, h, sizeof s->nonce);
    return sp_fwd_listen(s);
}

static void sp_fwd_pause(sp_input *in)
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

static void sp_fwd_resume(sp_input *in)
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
        if (!c->reading && sp_fwd_conn_may_read(c)) {
            c->reading = 1;
            sp_fwd_conn_start_reading(c);
        }
    }
}

static void sp_fwd_tick(sp_input *in, uint64_t now)
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
            sp_fwd_conn_close(c, "slow_frame", "a frame did not complete within idle_timeout");
        else if (now - c->last_ms > s->conf->idle_timeout)
            sp_fwd_conn_close(c, "idle_timeout", NULL);
    }
}

void sp_fwd_handle_closed(uv_handle_t *h)
{
    sp_fwd_server *s = h->data;
    if (--s->handles == 0) sp_fwd_conn_server_done(s);
}

void sp_fwd_listener_closed(uv_handle_t *h)
{
    sp_fwd_server *s = h->data;
    /* Handed over: the socket file is the new process's listener. */
    if (s->addr.is_unix && !s->handover) unlink(s->addr.path);
    if (--s->handles == 0) sp_fwd_conn_server_done(s);
}

static void sp_fwd_stop(sp_input *in)
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
    uv_close((uv_handle_t *)&s->spin, sp_fwd_handle_closed);
    uv_close((uv_handle_t *)&s->flush, sp_fwd_handle_closed); /* it only counts the handle */
    while (!sp_list_empty(&s->conns))
        sp_fwd_conn_close(sp_list_entry(s->conns.next, sp_fwd_conn, link), NULL, NULL);
    uv_close(&s->l.handle, sp_fwd_listener_closed);
}

static void sp_fwd_metrics(sp_input *in, sp_buf *out)
{
    sp_fwd_server *s = in->data;
    sp_buf_printf(out, "shipper_forward_connections{input=\"%s\"} %d\n", in->name,
                  s ? s->nconns : 0);
    static const char *const res[] = {"hit", "miss", "skipped"};
    for (int i = 0; i < 3; i++)
        sp_buf_printf(out, "shipper_forward_ack_spins_total{input=\"%s\",result=\"%s\"} %llu\n",
                      in->name, res[i], (unsigned long long)(s ? s->spins[i] : 0));
}

const sp_input_type sp_input_forward = {
    .name = "forward",
    .fields = sp_fwd_config_fields,
    .conf_size = sizeof(sp_forward_conf),
    .planned = NULL,
    .check = sp_fwd_config_check,
    .start = sp_fwd_start,
    .pause = sp_fwd_pause,
    .resume = sp_fwd_resume,
    .tick = sp_fwd_tick,
    .stop = sp_fwd_stop,
    .metrics = sp_fwd_metrics,
    .listen_fd = sp_fwd_handover_listen_fd,
    .adopt = sp_fwd_handover_adopt,
};
