/* The lifecycle: start, run, graceful stop within `grace` (the configuration: daemon_config.c). */
#include "daemon.h"

#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "listenfds.h"
#include "log.h"
#include "spool.h"
#include "upgrade.h"

/* How long stopped outputs may take to close (e.g. to finish a write they cannot cancel). */
#define SP_STOP_DEADLINE_MS 2000
/* Records one delivery carries at most, unless the output says otherwise. */
#define SP_BATCH_RECORDS 10000

/* ---- lifecycle ---- */

static void sp_daemon_exit_cb(uv_timer_t *t)
{
    uv_stop(t->loop);
}

void sp_daemon_closed_one(sp_daemon *d)
{
    if (--d->open_components > 0 || !d->finishing || d->all_closed) return;
    d->all_closed = 1;
    /* Everything is closed: release the remaining handles so uv_run returns. The spool first:
     * it writes what it still holds, then the router frees every chunk left as undelivered. */
    sp_router_flush(&d->router, 1); /* chunks still open (grace ran out): to the spool */
    sp_spool_close(d->router.spool);
    d->router.spool = NULL;
    sp_router_close(&d->router);
    sp_http_stop(d->http);
    d->http = NULL;
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
    sp_upgrade_closed(d);
    /* Work stuck on the thread pool (a write to a stdout nobody reads) would keep the loop
     * alive forever: everything that matters is closed and spooled, so stop waiting soon. */
    uv_timer_start(&d->grace, sp_daemon_exit_cb, 1000, 0);
    uv_unref((uv_handle_t *)&d->grace);
}

/* An output (or input) still has not closed SP_STOP_DEADLINE_MS after its stop: a thread is
 * stuck in a call we cannot interrupt (a write to a stdout nobody reads). Its chunks are not
 * delivered; the spool keeps what it holds for the next start, and we exit without freeing
 * anything the stuck work might still touch. */
static void sp_daemon_deadline_cb(uv_timer_t *t)
{
    sp_daemon *d = t->data;
    for (size_t i = 0; i < d->noutputs; i++)
        if (d->outputs[i]->closed != 2)
            sp_out_warn(
                d->outputs[i], "still busy %d ms after its stop; exiting without waiting for it%s",
                SP_STOP_DEADLINE_MS, d->router.spool ? " (its chunks stay in the spool)" : "");
    sp_spool_close(d->router.spool);
    fflush(stderr);
    _exit(d->exit_code);
}

/* Delivery is over (all delivered, or grace ran out): stop the outputs. */
void sp_daemon_finish(sp_daemon *d)
{
    if (d->finishing) return;
    d->finishing = 1;
    uv_timer_start(&d->grace, sp_daemon_deadline_cb, SP_STOP_DEADLINE_MS, 0);
    uint64_t pending = sp_router_pending_records(&d->router);
    if (pending) {
        if (d->router.spool)
            sp_warn("grace period over: %llu records not delivered stay in the spool for the "
                    "next start",
                    (unsigned long long)pending);
        else
            sp_warn("grace period over: %llu records not delivered are dropped (no spool)",
                    (unsigned long long)pending);
    }
    /* Held across the loop: an output that closes synchronously in stop must not end the loop
     * (and close the router) while this function still runs. Inputs may still be closing; the
     * count ends the loop when all are done. */
    d->open_components++;
    for (size_t i = 0; i < d->noutputs; i++) {
        sp_output *o = d->outputs[i];
        if (o->closed) continue;
        o->closed = 1;
        uv_timer_stop(&o->retry_timer);
        o->type->stop(o);
    }
    sp_daemon_closed_one(d);
}

static void sp_daemon_drained(sp_router *r)
{
    sp_daemon *d = r->loop->data;
    sp_info("all records delivered");
    sp_daemon_finish(d);
}

static void sp_daemon_grace_cb(uv_timer_t *t)
{
    sp_daemon_finish(t->data);
}

void sp_daemon_stop(sp_daemon *d)
{
    if (d->stopping) {
        if (!d->finishing) {
            sp_warn("second stop signal: exiting without waiting for delivery");
            sp_daemon_finish(d);
        }
        return;
    }
    d->stopping = 1;
    d->ready = 0;
    sp_info("stopping: no new input; delivering for up to %llu ms",
            (unsigned long long)d->service.grace_ms);
    for (size_t i = 0; i < d->ninputs; i++)
        if (!d->inputs[i]->closed) d->inputs[i]->type->stop(d->inputs[i]);
    uv_timer_start(&d->grace, sp_daemon_grace_cb, d->service.grace_ms, 0);
    d->router.on_drained = sp_daemon_drained;
    sp_router_drain(&d->router);
}

static void sp_daemon_signal_cb(uv_signal_t *s, int signum)
{
    sp_info("received %s", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    sp_daemon_stop(s->data);
}

/* POST /reload: the SIGHUP path (upgrade.c), when service.http_reload allows it. */
static int sp_daemon_http_post(sp_daemon *d, const char *path, sp_buf *body)
{
    if (strcmp(path, "/reload") != 0) {
        SP_BUF_LIT(body, "only POST /reload\n");
        return 405;
    }
    if (!d->service.http_reload) {
        SP_BUF_LIT(body, "off: set service.http_reload: true to allow POST /reload\n");
        return 403;
    }
    sp_info("POST /reload: reloading as on SIGHUP");
    kill(getpid(), SIGHUP);
    SP_BUF_LIT(body, "reloading\n");
    return 202;
}

static int sp_daemon_http_handler(void *ctx, const char *method, const char *path, sp_buf *body,
                                  const char **ctype)
{
    sp_daemon *d = ctx;
    if (strcmp(method, "POST") == 0) return sp_daemon_http_post(d, path, body);
    if (strcmp(path, "/reload") == 0) {
        SP_BUF_LIT(body, "POST /reload\n");
        return 405;
    }
    if (strcmp(path, "/metrics") == 0) {
        *ctype = "text/plain; version=0.0.4; charset=utf-8";
        sp_metrics_render(d, body);
        return 200;
    }
    if (strcmp(path, "/healthz") == 0) {
        SP_BUF_LIT(body, "ok\n");
        return 200;
    }
    if (strcmp(path, "/readyz") == 0) {
        if (d->ready) {
            SP_BUF_LIT(body, "ready\n");
            return 200;
        }
        sp_buf_printf(body, "%s", d->stopping ? "stopping\n" : "starting\n");
        return 503;
    }
    SP_BUF_LIT(body, "not found: try /metrics, /healthz or /readyz\n");
    return 404;
}

/*
 * glibc's allocator, tuned so peak RSS stays near what memory_limit counts (docs/architecture.md,
 * "Who owns what"). By default it raises its mmap threshold to each large block freed (up to
 * 32 MiB) and its trim threshold to twice that, so chunks, bodies and librdkafka's request
 * buffers end up in the heaps of the threads that used them, which keep the pages after free:
 * peak RSS went ~10 MiB past what was counted under a 32 MiB limit. Blocks of 2 MiB and more
 * (bulk bodies) are mmapped and given back when freed; a heap returns free memory above
 * memory_limit / 32. Trimming more often costs page faults (at 128 KiB, a Kafka flood took 50%
 * more CPU), so a large limit trims little. MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ in
 * the environment win.
 */
static void sp_daemon_malloc(uint64_t memory_limit)
{
#ifdef __GLIBC__
    uint64_t trim = memory_limit / 32;
    if (trim < (128u << 10)) trim = 128u << 10;
    if (trim > (64u << 20)) trim = 64u << 20;
    if (!getenv("MALLOC_MMAP_THRESHOLD_")) mallopt(M_MMAP_THRESHOLD, 2 << 20);
    if (!getenv("MALLOC_TRIM_THRESHOLD_")) mallopt(M_TRIM_THRESHOLD, (int)trim);
#else
    (void)memory_limit;
#endif
}

int sp_daemon_run(sp_daemon *d)
{
    sp_log_level = d->service.log_level;
    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&d->loop);
    d->loop.data = d;
    sp_router *r = &d->router;
    sp_router_init(r, &d->loop);
    r->memory_limit = d->buffer.memory_limit;
    sp_fair_set(&r->fair, d->buffer.fair, d->buffer.fair_mark, r->memory_limit);
    sp_daemon_malloc(r->memory_limit);
    r->chunk_size = d->buffer.chunk_size;
    r->flush_interval_ms = d->buffer.flush_interval;
    r->retry_min_ms = d->buffer.retry_min ? d->buffer.retry_min : 1;
    r->inputs = d->inputs;
    r->ninputs = d->ninputs;
    r->outputs = d->outputs;
    r->noutputs = d->noutputs;
    r->filters = d->filters;
    r->nfilters = d->nfilters;
    for (size_t i = 0; i < d->nfilters; i++)
        d->filters[i]->router = r;
    uv_timer_init(&d->loop, &d->grace);
    d->grace.data = d;
    uv_signal_init(&d->loop, &d->sigterm);
    uv_signal_init(&d->loop, &d->sigint);
    d->sigterm.data = d->sigint.data = d;
    d->open_components = (int)(d->ninputs + d->noutputs);
    int rc = 0;
    for (size_t i = 0; i < d->ninputs; i++) {
        sp_input *in = d->inputs[i];
        in->loop = &d->loop;
        in->router = r;
        in->state_dir = d->service.state_dir;
    }

    for (size_t i = 0; i < d->noutputs && !rc; i++) {
        sp_output *o = d->outputs[i];
        o->loop = &d->loop;
        o->router = r;
        o->batch_bytes = r->chunk_size;
        o->batch_records = SP_BATCH_RECORDS;
        if (o->retry_max_ms < r->retry_min_ms) o->retry_max_ms = r->retry_min_ms;
        if ((rc = o->type->start(o))) sp_out_error(o, "cannot start: %s", uv_strerror(rc));
    }
    sp_router_start(r);
    uv_signal_start(&d->sigterm, sp_daemon_signal_cb, SIGTERM);
    uv_signal_start(&d->sigint, sp_daemon_signal_cb, SIGINT);
    if (rc) {
        d->exit_code = 1;
        sp_daemon_stop(d);
        sp_daemon_finish(d);
    } else if (!sp_upgrade_start(d)) {
        /* (A process started by an upgrade starts its inputs once the old one hands over.) */
        sp_daemon_start_inputs(d, SP_START_ALL);
    }
    sp_looplag_start(&d->lag, &d->loop); /* the loop's lag, not the start-up's */
    uv_run(&d->loop, UV_RUN_DEFAULT);
    if (uv_loop_alive(&d->loop)) {
        /* A thread is blocked in a system call we cannot interrupt; exit without joining it. */
        sp_warn("exiting with an output still blocked in a write");
        fflush(stdout);
        _exit(d->exit_code);
    }
    uv_close((uv_handle_t *)&d->grace, NULL);
    sp_looplag_close(&d->lag);
    uv_run(&d->loop, UV_RUN_DEFAULT);
    uv_loop_close(&d->loop);
    if (!d->exit_code) sp_info("stopped");
    return d->exit_code;
}

int sp_daemon_start_inputs(sp_daemon *d, int which)
{
    sp_router *r = &d->router;
    int rc = 0;
    if (d->stopping) return -ECANCELED;
    if (d->buffer.spool && !r->spool) {
        rc = sp_router_spool_open(r, d->service.state_dir, d->buffer.spool_limit);
        if (!rc) sp_spool_replay_start(r->spool);
    }
    for (size_t i = 0; i < d->ninputs && !rc; i++) {
        sp_input *in = d->inputs[i];
        if (in->started || (which == SP_START_CONNS && !in->type->adopt) ||
            (which == SP_START_REST && in->type->adopt))
            continue;
        in->started = 1;
        rc = in->type->start(in);
        if (!rc && r->paused && in->type->pause) in->type->pause(in); /* the buffer is full */
    }
    if (!rc && !d->ready && d->service.http_listen && *d->service.http_listen) {
        rc = sp_http_start(&d->loop, d->service.http_listen, sp_daemon_http_handler, d, &d->http);
        if (rc)
            sp_error("http: cannot listen on %s: %s", d->service.http_listen, uv_strerror(rc));
        else
            sp_info("http: metrics and health on %s", d->service.http_listen);
    }
    if (!rc && !d->ready) sp_listenfds_close_unused();
    if (rc) {
        d->exit_code = 1;
        sp_daemon_stop(d);
        sp_daemon_finish(d);
    } else if (!d->ready) {
        d->ready = 1;
        sp_upgrade_running(d);
        sp_info("shipper %s running: %zu input(s), %zu output(s)", SHIPPER_VERSION, d->ninputs,
                d->noutputs);
    }
    return rc;
}
