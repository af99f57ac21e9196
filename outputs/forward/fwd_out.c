/*
 * The forward output: deliveries (one chunk each) spread round robin over the servers that are
 * up, per-server health with reconnect backoff, metrics, and the output descriptor.
 * docs/forward_output.md.
 */
#include <errno.h>
#include <libdeflate.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fwd_out.h"

#define SP_FWDOUT_TICK_MS 100

const char *const sp_fwdout_error_names[SP_FWDOUT_E_COUNT] = {
    "connect", "resolve", "tls", "auth", "ack_timeout", "closed", "protocol",
};

uint64_t sp_fwdout_now(sp_fwdout *fo)
{
    return uv_now(fo->o->loop);
}

static void sp_fwdout_free(sp_fwdout *fo)
{
    sp_output *o = fo->o;
    for (int i = 0; i < fo->nservers; i++)
        free(fo->servers[i].spec);
    free(fo->servers);
    if (fo->ssl_ctx) SSL_CTX_free(fo->ssl_ctx);
    while (!sp_list_empty(&fo->idle)) {
        sp_fwdout_enc *e = sp_list_entry(fo->idle.next, sp_fwdout_enc, link);
        sp_list_remove(&e->link);
        sp_fwdout_enc_free(e);
    }
    sp_fwdout_slots_free(fo);
    while (fo->nspare > 0)
        sp_buf_free(&fo->spare[--fo->nspare]);
    sp_buf_free(&fo->cipher);
    free(fo);
    o->data = NULL;
    sp_output_closed(o);
}

void sp_fwdout_unref(sp_fwdout *fo)
{
    if (--fo->handles == 0 && fo->stopping) sp_fwdout_free(fo);
}

/* ---- deliveries ---- */

static void sp_fwdout_job_answer(sp_fwdout_job *job)
{
    sp_delivery *d = job->d;
    int failed = job->failed;
    free(job);
    if (failed)
        sp_output_done(d, SP_OUT_RETRY, 0, 0);
    else
        sp_output_done(d, SP_OUT_DONE, d->nrecords, 0);
}

void sp_fwdout_frame_done(sp_fwdout *fo, sp_fwdout_frame_t *f, int ok)
{
    sp_list_remove(&f->link);
    sp_fwdout_job *job = f->job;
    free(f);
    if (!ok) job->failed = 1;
    if (--job->outstanding == 0) sp_fwdout_job_answer(job);
}

/* Sends every chunk of the job to `s` (up), one frame each, encoded off the loop. */
static void sp_fwdout_send_job(sp_fwdout *fo, sp_fwdout_server *s, sp_fwdout_job *job)
{
    sp_delivery *d = job->d;
    job->outstanding = d->nchunks + 1; /* +1: held until every frame is handed over */
    for (uint32_t i = 0; i < d->nchunks; i++) {
        sp_fwdout_frame_t *f = sp_calloc(1, sizeof *f);
        sp_list_init(&f->link);
        f->job = job;
        f->records = d->chunks[i]->nrecords;
        sp_fwdout_enc_submit(fo, s, f, d->chunks[i]);
    }
    if (--job->outstanding == 0) sp_fwdout_job_answer(job);
}

/* The next server that is up, round robin; NULL when none is. */
static sp_fwdout_server *sp_fwdout_pick(sp_fwdout *fo)
{
    for (int i = 0; i < fo->nservers; i++) {
        sp_fwdout_server *s = &fo->servers[(fo->rr + (uint32_t)i) % (uint32_t)fo->nservers];
        if (s->state == SP_FWDOUT_UP && s->conn) {
            fo->rr = (fo->rr + (uint32_t)i + 1) % (uint32_t)fo->nservers;
            return s;
        }
    }
    return NULL;
}

static int sp_fwdout_any_connecting(sp_fwdout *fo)
{
    for (int i = 0; i < fo->nservers; i++)
        if (fo->servers[i].state == SP_FWDOUT_RESOLVING ||
            fo->servers[i].state == SP_FWDOUT_CONNECTING)
            return 1;
    return 0;
}

/* Every waiting delivery: retried (after the core's backoff). */
static void sp_fwdout_fail_waiting(sp_fwdout *fo)
{
    while (!sp_list_empty(&fo->waiting)) {
        sp_fwdout_job *job = sp_list_entry(fo->waiting.next, sp_fwdout_job, link);
        sp_list_remove(&job->link);
        job->failed = 1;
        sp_fwdout_job_answer(job);
    }
}

static void sp_fwdout_deliver(sp_output *o, sp_delivery *d)
{
    sp_fwdout *fo = o->data;
    sp_fwdout_job *job = sp_calloc(1, sizeof *job);
    job->d = d;
    d->odata = job;
    sp_list_init(&job->link);
    sp_fwdout_server *s = fo->stopping ? NULL : sp_fwdout_pick(fo);
    if (s) {
        sp_fwdout_send_job(fo, s, job);
    } else if (!fo->stopping && sp_fwdout_any_connecting(fo)) {
        sp_list_insert_tail(&fo->waiting, &job->link); /* sent once a server is up */
    } else {
        job->failed = 1;
        sp_fwdout_job_answer(job);
    }
}

/* ---- servers ---- */

void sp_fwdout_server_up(sp_fwdout_server *s)
{
    sp_fwdout *fo = s->fo;
    s->state = SP_FWDOUT_UP;
    if (s->attempt) sp_out_info(fo->o, "%s is up again", s->spec);
    s->attempt = 0;
    sp_out_debug(fo->o, "connected to %s", s->spec);
    while (!sp_list_empty(&fo->waiting)) {
        sp_fwdout_server *to = sp_fwdout_pick(fo);
        if (!to) break;
        sp_fwdout_job *job = sp_list_entry(fo->waiting.next, sp_fwdout_job, link);
        sp_list_remove(&job->link);
        sp_fwdout_send_job(fo, to, job);
    }
}

void sp_fwdout_server_down(sp_fwdout_server *s, int reason, const char *fmt, ...)
{
    sp_fwdout *fo = s->fo;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    s->errors[reason]++;
    s->attempt++;
    uint64_t ms =
        sp_backoff_ms(s->attempt, fo->conf->reconnect_min,
                      fo->o->retry_max_ms > fo->conf->reconnect_min ? fo->o->retry_max_ms
                                                                    : fo->conf->reconnect_min);
    sp_out_log_limited(fo->o, &s->rl, reason == SP_FWDOUT_E_AUTH ? SP_LOG_ERROR : SP_LOG_WARN,
                       "server %s: %s; retrying in %llu ms", s->spec, msg, (unsigned long long)ms);
    s->state = SP_FWDOUT_DOWN;
    s->retry_at_ms = sp_fwdout_now(fo) + ms;
    if (s->conn) sp_fwdout_conn_close(s->conn); /* its frames are retried once it is closed */
    if (!sp_fwdout_any_connecting(fo) && !sp_fwdout_pick(fo)) sp_fwdout_fail_waiting(fo);
}

static void sp_fwdout_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    sp_fwdout_server *s = req->data;
    sp_fwdout *fo = s->fo;
    if (fo->stopping) {
        if (res) uv_freeaddrinfo(res);
        sp_fwdout_unref(fo);
        return;
    }
    if (status < 0 || !res) {
        sp_fwdout_server_down(s, SP_FWDOUT_E_RESOLVE, "resolving %s: %s", s->host,
                              uv_strerror(status));
    } else {
        /* Several addresses: each reconnect attempt takes the next. */
        int n = 0;
        for (struct addrinfo *a = res; a; a = a->ai_next)
            n++;
        struct addrinfo *a = res;
        for (uint32_t i = 0; i < s->attempt % (uint32_t)n; i++)
            a = a->ai_next;
        sp_fwdout_conn_open(s, a->ai_addr);
    }
    if (res) uv_freeaddrinfo(res);
    sp_fwdout_unref(fo);
}

void sp_fwdout_server_connect(sp_fwdout_server *s)
{
    sp_fwdout *fo = s->fo;
    char port[8];
    snprintf(port, sizeof port, "%d", s->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    s->state = SP_FWDOUT_RESOLVING;
    s->gai.data = s;
    fo->handles++;
    int rc = uv_getaddrinfo(fo->o->loop, &s->gai, sp_fwdout_resolved, s->host, port, &hints);
    if (rc) {
        fo->handles--;
        sp_fwdout_server_down(s, SP_FWDOUT_E_RESOLVE, "resolving %s: %s", s->host, uv_strerror(rc));
    }
}

static void sp_fwdout_tick(uv_timer_t *t)
{
    sp_fwdout *fo = t->data;
    uint64_t now = sp_fwdout_now(fo);
    for (int i = 0; i < fo->nservers && !fo->stopping; i++) {
        sp_fwdout_server *s = &fo->servers[i];
        if (s->conn)
            sp_fwdout_conn_tick(s->conn, now);
        else if (s->state == SP_FWDOUT_DOWN && now >= s->retry_at_ms)
            sp_fwdout_server_connect(s);
    }
}

/* ---- lifecycle ---- */

static int sp_fwdout_start(sp_output *o)
{
    sp_fwdout_conf *conf = o->conf;
    sp_fwdout *fo = sp_calloc(1, sizeof *fo);
    fo->o = o;
    fo->conf = conf;
    sp_list_init(&fo->waiting);
    sp_list_init(&fo->encoding);
    sp_list_init(&fo->idle);
    fo->slots =
        sp_calloc(conf->encode_threads ? (size_t)conf->encode_threads : 1, sizeof *fo->slots);
    if (gethostname(fo->hostname, sizeof fo->hostname - 1) || !fo->hostname[0])
        strcpy(fo->hostname, "localhost");
    if (conf->tls_on) {
        char err[512];
        if (sp_fwdout_tls_ctx(fo, err, sizeof err)) {
            sp_out_error(o, "tls: %s", err);
            free(fo->slots);
            free(fo);
            return -EINVAL;
        }
    }
    fo->nservers = (int)conf->servers.n;
    fo->servers = sp_calloc(conf->servers.n, sizeof *fo->servers);
    for (int i = 0; i < fo->nservers; i++) {
        sp_fwdout_server *s = &fo->servers[i];
        const char *why;
        s->fo = fo;
        s->index = i;
        s->spec = strdup(conf->servers.v[i]);
        sp_fwdout_split_addr(s->spec, s->host, sizeof s->host, &s->port, &why); /* checked */
    }
    o->data = fo;
    /* One chunk per delivery: round robin by chunk, and a chunk is one frame with one ack. */
    o->batch_bytes = 0;
    o->batch_records = 0;
    uv_timer_init(o->loop, &fo->tick);
    fo->tick.data = fo;
    fo->handles++;
    uv_timer_start(&fo->tick, sp_fwdout_tick, SP_FWDOUT_TICK_MS, SP_FWDOUT_TICK_MS);
    sp_out_info(o, "%d server(s)%s%s%s, require_ack %s", fo->nservers, conf->tls_on ? ", TLS" : "",
                conf->shared_key ? ", shared_key" : "", conf->compression ? ", gzip" : "",
                conf->require_ack ? "on" : "off");
    for (int i = 0; i < fo->nservers; i++)
        sp_fwdout_server_connect(&fo->servers[i]);
    return 0;
}

static void sp_fwdout_timer_closed(uv_handle_t *h)
{
    sp_fwdout_unref(h->data);
}

static void sp_fwdout_stop(sp_output *o)
{
    sp_fwdout *fo = o->data;
    if (!fo) {
        sp_output_closed(o);
        return;
    }
    if (fo->stopping) return;
    fo->stopping = 1;
    fo->handles++; /* held while this runs: answers below may re-enter */
    uv_close((uv_handle_t *)&fo->tick, sp_fwdout_timer_closed);
    for (int i = 0; i < fo->nservers; i++) {
        sp_fwdout_server *s = &fo->servers[i];
        if (s->conn) sp_fwdout_conn_close(s->conn);
        if (s->state == SP_FWDOUT_RESOLVING) uv_cancel((uv_req_t *)&s->gai);
        s->state = SP_FWDOUT_DOWN;
    }
    sp_fwdout_fail_waiting(fo);
    sp_fwdout_unref(fo);
}

static void sp_fwdout_metrics(sp_output *o, sp_buf *out)
{
    sp_fwdout *fo = o->data;
    if (!fo) return;
    static const char *const names[] = {"up", "chunks_total", "records_total", "acks_total",
                                        "connects_total"};
    static const char *const types[] = {"gauge", "counter", "counter", "counter", "counter"};
    for (int m = 0; m < 5; m++) {
        sp_buf_printf(out, "# TYPE shipper_forward_output_server_%s %s\n", names[m], types[m]);
        for (int i = 0; i < fo->nservers; i++) {
            sp_fwdout_server *s = &fo->servers[i];
            uint64_t v = m == 0   ? s->state == SP_FWDOUT_UP
                         : m == 1 ? s->chunks
                         : m == 2 ? s->records
                         : m == 3 ? s->acks
                                  : s->connects;
            sp_buf_printf(out,
                          "shipper_forward_output_server_%s{output=\"%s\",server=\"%s\"} %llu\n",
                          names[m], o->name, s->spec, (unsigned long long)v);
        }
    }
    sp_buf_printf(out, "# TYPE shipper_forward_output_server_errors_total counter\n");
    for (int i = 0; i < fo->nservers; i++)
        for (int e = 0; e < SP_FWDOUT_E_COUNT; e++)
            sp_buf_printf(out,
                          "shipper_forward_output_server_errors_total{output=\"%s\",server=\"%s\","
                          "reason=\"%s\"} %llu\n",
                          o->name, fo->servers[i].spec, sp_fwdout_error_names[e],
                          (unsigned long long)fo->servers[i].errors[e]);
}

const sp_output_type sp_output_forward = {
    .name = "forward",
    .fields = sp_fwdout_fields,
    .conf_size = sizeof(sp_fwdout_conf),
    .check = sp_fwdout_check,
    .start = sp_fwdout_start,
    .deliver = sp_fwdout_deliver,
    .stop = sp_fwdout_stop,
    .metrics = sp_fwdout_metrics,
    .default_inflight = 16,
};
