/*
 * The docker_audit input (docs/audit.md): at start and every `interval`, the running
 * containers' posture from the Engine API as records (one when a container is new or its
 * posture changed) and, with `drift`, a record for every path that changed since the last run
 * (`docker diff`). The Docker calls run on the input's worker threads (audit_scan.c); this file
 * is the loop side: the timer, the answers, the gauges, the descriptor last.
 */
#define SP_AUDIT_INPUT
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_int.h"
#include "meta.h"

static const sp_conf_field sp_audit_fields[] = {
    {"docker_socket", SP_CONF_STR, offsetof(sp_audit_conf, docker_socket), "/var/run/docker.sock",
     "Docker Engine API Unix socket"},
    {"interval", SP_CONF_DURATION, offsetof(sp_audit_conf, interval), "30s",
     "how often containers are audited (a scan also runs at start)"},
    {"drift", SP_CONF_BOOL, offsetof(sp_audit_conf, drift), "true",
     "also compare each running container's changes (docker diff) with the last run"},
    {"concurrency", SP_CONF_INT, offsetof(sp_audit_conf, concurrency), "4",
     "Docker API requests at once (worker threads)"},
    {"timeout", SP_CONF_DURATION, offsetof(sp_audit_conf, timeout), "10s",
     "longest wait for one Docker API request"},
    {"tag_prefix", SP_CONF_STR, offsetof(sp_audit_conf, tag_prefix), "audit.",
     "records are tagged <prefix><container name>"},
    {"all", SP_CONF_BOOL, offsetof(sp_audit_conf, all), "false",
     "also audit containers that are not running (created, exited); drift only for running ones"},
    {"drift_max_paths", SP_CONF_INT, offsetof(sp_audit_conf, drift_max_paths), "10000",
     "changed paths kept per container; more are ignored (counted)"},
    {"ignore", SP_CONF_STRLIST, offsetof(sp_audit_conf, ignore), NULL,
     "rule ids not checked at all"},
    {"advisory", SP_CONF_STRLIST, offsetof(sp_audit_conf, advisory), "cpu-unlimited",
     "rule ids reported as findings that leave `compliant` true"},
    SP_CONF_END};

/* Every entry of `ignore` or `advisory` is a rule id. */
static int sp_audit_check_rules(sp_input *in, const sp_node *n, const char *key,
                                const sp_strlist *l, sp_conf_err *err)
{
    for (size_t i = 0; i < l->n; i++) {
        const char *const *r = sp_audit_rule_ids;
        while (*r && strcmp(*r, l->v[i]) != 0)
            r++;
        if (!*r) {
            sp_conf_error(err, sp_node_line(n, key, in->line), key,
                          "unknown rule id \"%s\" (docs/audit.md lists them)", l->v[i]);
            return -1;
        }
    }
    return 0;
}

static int sp_audit_check(sp_input *in, const sp_node *n, sp_conf_err *err)
{
    sp_audit_conf *c = in->conf;
    if (sp_audit_check_rules(in, n, "ignore", &c->ignore, err) ||
        sp_audit_check_rules(in, n, "advisory", &c->advisory, err))
        return -1;
    if (c->concurrency < 1 || c->concurrency > 64)
        sp_conf_error(err, sp_node_line(n, "concurrency", in->line), "concurrency",
                      "must be 1 to 64");
    else if (c->interval < 100)
        sp_conf_error(err, sp_node_line(n, "interval", in->line), "interval", "must be >= 100ms");
    else if (c->timeout < 100)
        sp_conf_error(err, sp_node_line(n, "timeout", in->line), "timeout", "must be >= 100ms");
    else if (c->drift_max_paths < 1)
        sp_conf_error(err, sp_node_line(n, "drift_max_paths", in->line), "drift_max_paths",
                      "must be >= 1");
    else if (!c->docker_socket || !*c->docker_socket)
        sp_conf_error(err, sp_node_line(n, "docker_socket", in->line), "docker_socket",
                      "must be set");
    else
        return 0;
    return -1;
}

/* ---- scans ---- */

static void sp_audit_scan_done(sp_audit *s)
{
    uint64_t ok = 0, bad = 0;
    for (sp_audit_cont *c = s->conts; c; c = c->next)
        if (c->posture_hash) c->compliant ? ok++ : bad++;
    s->ncompliant = ok;
    s->nnoncompliant = bad;
    s->scanning = 0;
    s->ready = 1;
    s->scans++;
    s->scan_ns = uv_hrtime() - s->scan_start_ns;
}

static void sp_audit_timer_cb(uv_timer_t *t)
{
    sp_audit *s = t->data;
    if (s->scanning || s->paused || s->closing) return;
    if (!s->api) {
        int rc = sp_docker_api_open(&s->api, s->conf->docker_socket, (int)s->conf->concurrency, 0);
        if (rc) {
            sp_input_error(s->in, "socket");
            sp_in_log_limited(s->in, &s->rl, SP_LOG_WARN, "docker_socket %s: %s",
                              s->conf->docker_socket, strerror(-rc));
            return;
        }
    }
    sp_audit_job *j = calloc(1, sizeof *j);
    if (!j) return;
    j->kind = SP_AUDIT_LIST;
    s->scanning = 1;
    s->scan_start_ns = uv_hrtime();
    sp_audit_post(s, j);
}

static sp_audit_cont *sp_audit_cont_get(sp_audit *s, const char *id)
{
    for (sp_audit_cont *c = s->conts; c; c = c->next)
        if (strcmp(c->id, id) == 0) return c;
    sp_audit_cont *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    snprintf(c->id, sizeof c->id, "%s", id);
    c->next = s->conts;
    s->conts = c;
    return c;
}

static void sp_audit_cont_free(sp_audit_cont *c)
{
    sp_audit_drift_free(&c->drift);
    sp_audit_set_free(&c->mounts);
    free(c);
}

/* The list came: a job per container, and containers gone are forgotten. */
static void sp_audit_on_list(sp_audit *s, sp_audit_job *j)
{
    for (sp_audit_cont *c = s->conts; c; c = c->next)
        c->seen = 0;
    size_t i;
    json_t *id;
    json_array_foreach(j->ids, i, id)
    {
        sp_audit_cont *c = sp_audit_cont_get(s, json_string_value(id));
        if (!c || c->busy) continue;
        c->seen = c->busy = 1;
        sp_audit_job *cj = calloc(1, sizeof *cj);
        if (!cj) {
            c->busy = 0;
            continue;
        }
        cj->kind = SP_AUDIT_CONTAINER;
        cj->c = c;
        s->pending++;
        sp_audit_post(s, cj);
    }
    for (sp_audit_cont **pp = &s->conts; *pp;) {
        sp_audit_cont *c = *pp;
        if (c->seen || c->busy) {
            pp = &c->next;
            continue;
        }
        *pp = c->next;
        sp_audit_cont_free(c);
    }
    if (!s->pending) sp_audit_scan_done(s);
}

static void sp_audit_on_container(sp_audit *s, sp_audit_job *j)
{
    sp_audit_cont *c = j->c;
    c->busy = 0;
    if (j->name[0]) snprintf(c->name, sizeof c->name, "%s", j->name);
    if (j->posture) {
        uint64_t h = j->posture_hash;
        if (h != c->posture_hash) sp_audit_emit_posture(s, c, j->posture, h);
        c->posture_hash = h;
        c->compliant = json_is_true(json_object_get(j->posture, "compliant"));
    }
    if (j->fresh) sp_audit_emit_drift(s, c, j->fresh);
    if (j->fresh) { /* the worker is done with c->drift: a copy for the metrics */
        c->drift_paths = c->drift.paths;
        c->drift_seen = 1;
    }
    if (--s->pending == 0) sp_audit_scan_done(s);
}

static void sp_audit_drain(sp_audit *s)
{
    sp_audit_job *j = sp_audit_take_done(s), *next;
    for (; j; j = next) {
        next = j->next;
        if (j->reason) {
            sp_input_error(s->in, j->reason);
            char st[32];
            snprintf(st, sizeof st, "HTTP status %d", j->rc);
            sp_in_log_limited(s->in, &s->rl, SP_LOG_WARN, "%s: %s", j->reason,
                              j->rc < 0 ? strerror(-j->rc) : st);
        }
        if (j->kind == SP_AUDIT_LIST) {
            if (j->ids)
                sp_audit_on_list(s, j);
            else
                s->scanning = 0;
        } else {
            sp_audit_on_container(s, j);
        }
        sp_audit_job_free(j);
    }
}

static void sp_audit_closed_cb(uv_handle_t *h)
{
    sp_audit *s = h->data;
    if (++s->nclosed < 2) return; /* the timer and the async */
    sp_input *in = s->in;
    while (s->conts) {
        sp_audit_cont *c = s->conts;
        s->conts = c->next;
        sp_audit_cont_free(c);
    }
    sp_docker_api_close(s->api);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->threads);
    free(s);
    in->data = NULL;
    sp_input_closed(in);
}

/* Every worker has exited: join them, drop what is left, close the handles. */
static void sp_audit_finish(sp_audit *s)
{
    for (int i = 0; i < s->nthreads; i++)
        pthread_join(s->threads[i], NULL);
    sp_audit_job *j = sp_audit_take_done(s), *next;
    for (; j; j = next) {
        next = j->next;
        sp_audit_job_free(j);
    }
    for (j = s->todo; j; j = next) {
        next = j->next;
        sp_audit_job_free(j);
    }
    s->todo = NULL;
    uv_close((uv_handle_t *)&s->async, sp_audit_closed_cb);
}

static void sp_audit_async_cb(uv_async_t *a)
{
    sp_audit *s = a->data;
    if (s->closing) {
        pthread_mutex_lock(&s->mu);
        int all = s->exited == s->nthreads;
        pthread_mutex_unlock(&s->mu);
        if (all && !uv_is_closing((uv_handle_t *)&s->async)) sp_audit_finish(s);
        return;
    }
    if (!s->paused) sp_audit_drain(s);
}

static int sp_audit_start(sp_input *in)
{
    const sp_audit_conf *conf = in->conf;
    sp_audit *s = calloc(1, sizeof *s);
    if (!s) return -ENOMEM;
    s->in = in;
    s->conf = conf;
    s->policy =
        (sp_audit_policy){conf->ignore.v, conf->ignore.n, conf->advisory.v, conf->advisory.n};
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    in->data = s;
    int rc = sp_docker_api_open(&s->api, conf->docker_socket, (int)conf->concurrency, 0);
    if (rc)
        sp_in_warn(in, "docker_socket %s: %s (tried again every interval)", conf->docker_socket,
                   strerror(-rc));
    /* Documents get the container's image and labels from the same API. */
    if (sp_meta_set_socket(conf->docker_socket) == 0)
        sp_in_debug(in, "container metadata from the Docker API on %s", conf->docker_socket);
    uv_async_init(in->loop, &s->async, sp_audit_async_cb);
    s->async.data = s;
    uv_timer_init(in->loop, &s->timer);
    s->timer.data = s;
    rc = sp_audit_workers_start(s);
    if (rc) {
        sp_in_error(in, "worker threads: %s", strerror(-rc));
        return rc;
    }
    uv_timer_start(&s->timer, sp_audit_timer_cb, 0, conf->interval);
    sp_in_info(in, "auditing containers on %s every %llu ms (drift %s)", conf->docker_socket,
               (unsigned long long)conf->interval, conf->drift ? "on" : "off");
    return 0;
}

static void sp_audit_pause(sp_input *in)
{
    sp_audit *s = in->data;
    if (s) s->paused = 1;
}

static void sp_audit_resume(sp_input *in)
{
    sp_audit *s = in->data;
    if (!s) return;
    s->paused = 0;
    sp_audit_drain(s);
}

static void sp_audit_stop(sp_input *in)
{
    sp_audit *s = in->data;
    if (!s) {
        sp_input_closed(in);
        return;
    }
    s->closing = 1;
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, sp_audit_closed_cb);
    sp_audit_workers_stop(s);
    uv_async_send(&s->async); /* no workers at all (start failed) still finishes */
}

static void sp_audit_metrics(sp_input *in, sp_buf *out)
{
    sp_audit *s = in->data;
    if (!s) return;
    const char *n = in->name;
    if (s->ready) {
        sp_buf_printf(out, "shipper_containers{input=\"%s\",compliant=\"true\"} %llu\n", n,
                      (unsigned long long)s->ncompliant);
        sp_buf_printf(out, "shipper_containers{input=\"%s\",compliant=\"false\"} %llu\n", n,
                      (unsigned long long)s->nnoncompliant);
    }
    for (sp_audit_cont *c = s->conts; s->conf->drift && c; c = c->next)
        if (c->drift_seen)
            sp_buf_printf(out,
                          "shipper_container_drift_paths{input=\"%s\",container_id=\"%.12s\","
                          "container_name=\"%s\"} %zu\n",
                          n, c->id, c->name, c->drift_paths);
    sp_buf_metric(out, "shipper_audit_scans_total", "input", n, s->scans);
    sp_buf_printf(
        out,
        "# TYPE shipper_audit_scan_seconds gauge\nshipper_audit_scan_seconds{input=\"%s\"} %.3f\n",
        n, (double)s->scan_ns / 1e9);
    sp_buf_printf(out, "shipper_audit_records_total{input=\"%s\",kind=\"posture\"} %llu\n", n,
                  (unsigned long long)s->posture_records);
    sp_buf_printf(out, "shipper_audit_records_total{input=\"%s\",kind=\"drift\"} %llu\n", n,
                  (unsigned long long)s->drift_records);
}

const sp_input_type sp_input_docker_audit = {
    .name = "docker_audit",
    .fields = sp_audit_fields,
    .conf_size = sizeof(sp_audit_conf),
    .check = sp_audit_check,
    .start = sp_audit_start,
    .pause = sp_audit_pause,
    .resume = sp_audit_resume,
    .stop = sp_audit_stop,
    .metrics = sp_audit_metrics,
};
