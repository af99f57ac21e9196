/* Configuration assembly and the lifecycle: start, run, graceful stop within `grace`. */
#include "daemon.h"

#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "addr.h"
#include "listenfds.h"
#include "log.h"
#include "spool.h"
#include "upgrade.h"

/* How long stopped outputs may take to close (e.g. to finish a write they cannot cancel). */
#define SP_STOP_DEADLINE_MS 2000
/* Records one delivery carries at most, unless the output says otherwise. */
#define SP_BATCH_RECORDS 10000

static const char *const sp__levels[] = {"error", "warn", "info", "debug", NULL};

static const sp_conf_field sp__service_fields[] = {
    {"log_level", SP_CONF_ENUM, offsetof(sp_service_conf, log_level), "info",
     "error | warn | info | debug", sp__levels},
    {"http_listen", SP_CONF_STR, offsetof(sp_service_conf, http_listen), "127.0.0.1:2020",
     "GET /metrics, /healthz, /readyz; \"\" turns it off"},
    {"state_dir", SP_CONF_STR, offsetof(sp_service_conf, state_dir), NULL,
     "tail offsets and spool; unset: nothing is written anywhere"},
    {"grace", SP_CONF_DURATION, offsetof(sp_service_conf, grace_ms), "10s",
     "on SIGTERM/SIGINT, how long to keep delivering before exiting"},
    {"pid_file", SP_CONF_STR, offsetof(sp_service_conf, pid_file), NULL,
     "written with the process id once running (after an upgrade: the new process's)"},
    SP_CONF_END};

static const sp_conf_field sp__buffer_fields[] = {
    {"memory_limit", SP_CONF_SIZE, offsetof(sp_buffer_conf, memory_limit), "256MiB",
     "buffered bytes at which inputs pause (resume at 80%)"},
    {"chunk_size", SP_CONF_SIZE, offsetof(sp_buffer_conf, chunk_size), "1MiB",
     "a chunk is closed and shipped at this size"},
    {"flush_interval", SP_CONF_DURATION, offsetof(sp_buffer_conf, flush_interval), "1s",
     "a chunk is closed and shipped at this age"},
    {"spool", SP_CONF_BOOL, offsetof(sp_buffer_conf, spool), "false",
     "keep chunks on disk under state_dir before they count as accepted; replayed at start"},
    {"spool_limit", SP_CONF_SIZE, offsetof(sp_buffer_conf, spool_limit), "4GiB",
     "spooled bytes at which inputs pause"},
    {"retry_min", SP_CONF_DURATION, offsetof(sp_buffer_conf, retry_min), "500ms",
     "first retry delay of a failed delivery (doubles up to the output's retry_max)"},
    SP_CONF_END};

/* Settings every output has, handled here rather than by each output. */
typedef struct {
    char *type;
    char *match;
    char *name;
    uint64_t retry_max;
    int64_t workers;
} sp_output_common;

static const sp_conf_field sp__output_common[] = {
    {"type", SP_CONF_STR, offsetof(sp_output_common, type), NULL, "the output type"},
    {"match", SP_CONF_STR, offsetof(sp_output_common, match), "*", "glob on the record's tag"},
    {"name", SP_CONF_STR, offsetof(sp_output_common, name), NULL, "name in metrics"},
    {"retry_max", SP_CONF_DURATION, offsetof(sp_output_common, retry_max), "30s",
     "longest backoff between retries"},
    {"workers", SP_CONF_INT, offsetof(sp_output_common, workers), "0",
     "deliveries in flight at once (0: the output's default)"},
    SP_CONF_END};

typedef struct {
    char *type;
    char *name;
} sp_input_common;

static const sp_conf_field sp__input_common[] = {
    {"type", SP_CONF_STR, offsetof(sp_input_common, type), NULL, "the input type"},
    {"name", SP_CONF_STR, offsetof(sp_input_common, name), NULL, "name in metrics"},
    SP_CONF_END};

static const char *const sp__common_keys[] = {"type",      "match",   "name",
                                              "retry_max", "workers", NULL};

/* Splits a component's map: the common keys go through `common`, the rest through `fields`. */
static int sp__component(const sp_node *n, const char *section, void *common,
                         const sp_conf_field *common_fields, void *conf,
                         const sp_conf_field *fields, sp_conf_err *err)
{
    /* Each table sees the other's keys as allowed, so an unknown key is still an error. */
    const char *type_keys[64];
    size_t k = 0;
    for (const sp_conf_field *f = fields; f->key && k < 63; f++)
        type_keys[k++] = f->key;
    type_keys[k] = NULL;
    const char *const *allow_common = sp__common_keys;
    if (sp_conf_apply(conf, fields, n, section, allow_common, err)) return -1;
    if (sp_conf_apply(common, common_fields, n, section, type_keys, err)) return -1;
    return 0;
}

static const sp_input_type *sp__input_type(const char *name)
{
    for (const sp_input_type *const *t = sp_input_types; *t; t++)
        if (strcmp((*t)->name, name) == 0) return *t;
    return NULL;
}

static const sp_output_type *sp__output_type(const char *name)
{
    for (const sp_output_type *const *t = sp_output_types; *t; t++)
        if (strcmp((*t)->name, name) == 0) return *t;
    return NULL;
}

static const char *sp__node_type_str(const sp_node *n)
{
    sp_node *t = sp_node_get(n, "type");
    return t && t->type == SP_NODE_SCALAR ? t->value : NULL;
}

static char *sp__name(const char *given, const char *type, size_t index, size_t same_type)
{
    if (given) return strdup(given);
    if (same_type <= 1) return strdup(type);
    char buf[128];
    snprintf(buf, sizeof buf, "%s.%zu", type, index);
    return strdup(buf);
}

static int sp__load_inputs(sp_daemon *d, const sp_node *seq, sp_conf_err *err)
{
    if (!seq) {
        sp_conf_error(err, 1, "inputs", "at least one input is required");
        return -1;
    }
    if (seq->type != SP_NODE_SEQ || !seq->child) {
        sp_conf_error(err, seq->line, "inputs", "must be a list of inputs");
        return -1;
    }
    size_t i = 0;
    for (sp_node *n = seq->child; n; n = n->next, i++) {
        char section[32];
        snprintf(section, sizeof section, "inputs[%zu]", i);
        const char *tname = sp__node_type_str(n);
        if (n->type != SP_NODE_MAP || !tname) {
            sp_conf_error(err, n->line, section, "needs a `type`");
            return -1;
        }
        const sp_input_type *t = sp__input_type(tname);
        if (!t) {
            sp_conf_error(err, sp_node_get(n, "type")->line, "type",
                          "unknown input type \"%s\" (forward, docker_logs)", tname);
            return -1;
        }
        if (t->unsupported) {
            sp_conf_error(err, sp_node_get(n, "type")->line, "type", "%s", t->unsupported);
            return -1;
        }
        for (const char *const *k = t->planned; k && *k; k++) {
            sp_node *v = sp_node_get(n, *k);
            if (v) {
                sp_conf_error(err, v->line, *k, "not supported yet (planned)");
                return -1;
            }
        }
        sp_input *in = sp_calloc(1, sizeof *in);
        d->inputs = sp_realloc(d->inputs, (d->ninputs + 1) * sizeof *d->inputs);
        d->inputs[d->ninputs++] = in;
        in->type = t;
        in->index = (int)i;
        in->line = n->line;
        in->conf = sp_calloc(1, t->conf_size ? t->conf_size : 1);
        sp_input_common common = {0};
        int rc = sp__component(n, section, &common, sp__input_common, in->conf, t->fields, err);
        size_t same = 0;
        for (sp_node *m = seq->child; m; m = m->next) {
            const char *mt = sp__node_type_str(m);
            if (mt && strcmp(mt, tname) == 0) same++;
        }
        in->name = sp__name(common.name, tname, i, same);
        sp_conf_free(&common, sp__input_common);
        if (rc) return -1;
        if (t->check && t->check(in, n, err)) return -1;
    }
    return 0;
}

static int sp__load_outputs(sp_daemon *d, const sp_node *seq, sp_conf_err *err)
{
    if (!seq) {
        sp_conf_error(err, 1, "outputs", "at least one output is required");
        return -1;
    }
    if (seq->type != SP_NODE_SEQ || !seq->child) {
        sp_conf_error(err, seq->line, "outputs", "must be a list of outputs");
        return -1;
    }
    size_t i = 0;
    for (sp_node *n = seq->child; n; n = n->next, i++) {
        char section[32];
        snprintf(section, sizeof section, "outputs[%zu]", i);
        if (i >= 64) {
            sp_conf_error(err, n->line, section, "at most 64 outputs");
            return -1;
        }
        const char *tname = sp__node_type_str(n);
        if (n->type != SP_NODE_MAP || !tname) {
            sp_conf_error(err, n->line, section, "needs a `type`");
            return -1;
        }
        const sp_output_type *t = sp__output_type(tname);
        if (!t) {
            sp_conf_error(err, sp_node_get(n, "type")->line, "type",
                          "unknown output type \"%s\" (elasticsearch, kafka, stdout, null)", tname);
            return -1;
        }
        if (t->unsupported) {
            sp_conf_error(err, sp_node_get(n, "type")->line, "type", "%s", t->unsupported);
            return -1;
        }
        sp_output *o = sp_calloc(1, sizeof *o);
        d->outputs = sp_realloc(d->outputs, (d->noutputs + 1) * sizeof *d->outputs);
        d->outputs[d->noutputs++] = o;
        o->type = t;
        o->index = (int)i;
        o->line = n->line;
        o->conf = sp_calloc(1, t->conf_size ? t->conf_size : 1);
        sp_output_common common = {0};
        int rc = sp__component(n, section, &common, sp__output_common, o->conf, t->fields, err);
        size_t same = 0;
        for (sp_node *m = seq->child; m; m = m->next) {
            const char *mt = sp__node_type_str(m);
            if (mt && strcmp(mt, tname) == 0) same++;
        }
        o->name = sp__name(common.name, tname, i, same);
        o->match = common.match ? strdup(common.match) : strdup("*");
        o->retry_max_ms = common.retry_max;
        o->max_inflight = common.workers > 0 ? (int)common.workers : t->default_inflight;
        if (o->max_inflight < 1) o->max_inflight = 1;
        if (common.workers < 0 || common.workers > 256) {
            sp_conf_error(err, n->line, "workers", "must be between 0 and 256");
            rc = -1;
        }
        sp_conf_free(&common, sp__output_common);
        if (rc) return -1;
        if (t->check && t->check(o, n, err)) return -1;
    }
    return 0;
}

int sp_daemon_load(sp_daemon *d, const char *text, size_t len, sp_conf_err *err)
{
    memset(d, 0, sizeof *d);
    sp_node *root = sp_yaml_parse(text, len, err);
    if (!root) return -1;
    int rc = -1;
    static const char *const top[] = {"service", "buffer", "inputs", "outputs", NULL};
    for (sp_node *c = root->child; c; c = c->next) {
        int ok = 0;
        for (const char *const *t = top; *t; t++)
            ok |= strcmp(*t, c->key) == 0;
        if (!ok) {
            sp_conf_error(err, c->line, c->key,
                          "unknown key (expected service, buffer, inputs, outputs)");
            goto out;
        }
    }
    if (sp_conf_apply(&d->service, sp__service_fields, sp_node_get(root, "service"), "service",
                      NULL, err))
        goto out;
    if (sp_conf_apply(&d->buffer, sp__buffer_fields, sp_node_get(root, "buffer"), "buffer", NULL,
                      err))
        goto out;
    if (d->buffer.chunk_size < 1024 || d->buffer.memory_limit < d->buffer.chunk_size) {
        sp_node *b = sp_node_get(root, "buffer");
        sp_conf_error(err, b ? b->line : 1, "buffer",
                      "chunk_size must be at least 1KiB and memory_limit at least chunk_size");
        goto out;
    }
    if (d->buffer.flush_interval == 0) d->buffer.flush_interval = 1;
    if (d->service.http_listen && *d->service.http_listen) {
        sp_addr a;
        const char *why;
        if (sp_addr_parse(d->service.http_listen, &a, &why) || a.is_unix) {
            sp_node *s = sp_node_get(sp_node_get(root, "service"), "http_listen");
            sp_conf_error(err, s ? s->line : 1, "service.http_listen", "\"%s\": %s",
                          d->service.http_listen, a.is_unix ? "must be host:port" : why);
            goto out;
        }
    }
    if (d->buffer.spool && !d->service.state_dir) {
        sp_node *b = sp_node_get(sp_node_get(root, "buffer"), "spool");
        sp_conf_error(err, b ? b->line : 1, "buffer.spool", "needs service.state_dir");
        goto out;
    }
    if (sp__load_inputs(d, sp_node_get(root, "inputs"), err)) goto out;
    for (size_t i = 0; i < d->ninputs; i++)
        if (d->inputs[i]->needs_spool && !d->buffer.spool) {
            sp_conf_error(err, d->inputs[i]->line, d->inputs[i]->name,
                          "ack: durable needs buffer.spool: true (and service.state_dir)");
            goto out;
        }
    if (sp__load_outputs(d, sp_node_get(root, "outputs"), err)) goto out;
    rc = 0;
out:
    sp_node_free(root);
    return rc;
}

void sp_daemon_print(const sp_daemon *d, sp_buf *out)
{
    SP_BUF_LIT(out, "service:\n");
    sp_conf_print(out, &d->service, sp__service_fields, 2, NULL);
    SP_BUF_LIT(out, "buffer:\n");
    sp_conf_print(out, &d->buffer, sp__buffer_fields, 2, NULL);
    SP_BUF_LIT(out, "inputs:\n");
    for (size_t i = 0; i < d->ninputs; i++) {
        sp_input *in = d->inputs[i];
        sp_buf_printf(out, "  - type: %s\n    name: %s\n", in->type->name, in->name);
        sp_conf_print(out, in->conf, in->type->fields, 4, NULL);
    }
    SP_BUF_LIT(out, "outputs:\n");
    for (size_t i = 0; i < d->noutputs; i++) {
        sp_output *o = d->outputs[i];
        sp_buf_printf(out, "  - type: %s\n    name: %s\n    match: \"%s\"\n", o->type->name,
                      o->name, o->match);
        sp_buf_printf(out, "    retry_max: %llums\n    workers: %d\n",
                      (unsigned long long)o->retry_max_ms, o->max_inflight);
        sp_conf_print(out, o->conf, o->type->fields, 4, NULL);
    }
}

/* ---- lifecycle ---- */

static void sp__closed_one(sp_daemon *d);

static void sp__exit_cb(uv_timer_t *t)
{
    uv_stop(t->loop);
}

void sp_input_closed(sp_input *in)
{
    if (in->closed) return;
    in->closed = 1;
    sp__closed_one(in->router->loop->data);
}

void sp_output_closed(sp_output *o)
{
    if (o->closed == 2) return;
    o->closed = 2;
    sp__closed_one(o->router->loop->data);
}

void sp_input_error(sp_input *in, const char *reason)
{
    for (int i = 0; i < SP_INPUT_MAX_REASONS; i++) {
        if (!in->errors[i].reason) in->errors[i].reason = reason;
        if (in->errors[i].reason == reason || strcmp(in->errors[i].reason, reason) == 0) {
            in->errors[i].n++;
            return;
        }
    }
}

static void sp__closed_one(sp_daemon *d)
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
    uv_timer_start(&d->grace, sp__exit_cb, 1000, 0);
    uv_unref((uv_handle_t *)&d->grace);
}

/* An output (or input) still has not closed SP_STOP_DEADLINE_MS after its stop: a thread is
 * stuck in a call we cannot interrupt (a write to a stdout nobody reads). Its chunks are not
 * delivered; the spool keeps what it holds for the next start, and we exit without freeing
 * anything the stuck work might still touch. */
static void sp__deadline_cb(uv_timer_t *t)
{
    sp_daemon *d = t->data;
    for (size_t i = 0; i < d->noutputs; i++)
        if (d->outputs[i]->closed != 2)
            sp_warn("output %s: still busy %d ms after its stop; exiting without waiting for it%s",
                    d->outputs[i]->name, SP_STOP_DEADLINE_MS,
                    d->router.spool ? " (its chunks stay in the spool)" : "");
    sp_spool_close(d->router.spool);
    fflush(stderr);
    _exit(d->exit_code);
}

/* Delivery is over (all delivered, or grace ran out): stop the outputs. */
static void sp__finish(sp_daemon *d)
{
    if (d->finishing) return;
    d->finishing = 1;
    uv_timer_start(&d->grace, sp__deadline_cb, SP_STOP_DEADLINE_MS, 0);
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
    sp__closed_one(d);
}

void sp_daemon_finish(sp_daemon *d)
{
    sp__finish(d);
}

static void sp__drained(sp_router *r)
{
    sp_daemon *d = r->loop->data;
    sp_info("all records delivered");
    sp__finish(d);
}

static void sp__grace_cb(uv_timer_t *t)
{
    sp__finish(t->data);
}

void sp_daemon_stop(sp_daemon *d)
{
    if (d->stopping) {
        if (!d->finishing) {
            sp_warn("second stop signal: exiting without waiting for delivery");
            sp__finish(d);
        }
        return;
    }
    d->stopping = 1;
    d->ready = 0;
    sp_info("stopping: no new input; delivering for up to %llu ms",
            (unsigned long long)d->service.grace_ms);
    for (size_t i = 0; i < d->ninputs; i++)
        if (!d->inputs[i]->closed) d->inputs[i]->type->stop(d->inputs[i]);
    uv_timer_start(&d->grace, sp__grace_cb, d->service.grace_ms, 0);
    d->router.on_drained = sp__drained;
    sp_router_drain(&d->router);
}

static void sp__signal_cb(uv_signal_t *s, int signum)
{
    sp_info("received %s", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    sp_daemon_stop(s->data);
}

static int sp__http_handler(void *ctx, const char *path, sp_buf *body, const char **ctype)
{
    sp_daemon *d = ctx;
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
    sp_daemon_malloc(r->memory_limit);
    r->chunk_size = d->buffer.chunk_size;
    r->flush_interval_ms = d->buffer.flush_interval;
    r->retry_min_ms = d->buffer.retry_min ? d->buffer.retry_min : 1;
    r->inputs = d->inputs;
    r->ninputs = d->ninputs;
    r->outputs = d->outputs;
    r->noutputs = d->noutputs;
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
        if ((rc = o->type->start(o)))
            sp_error("output %s: cannot start: %s", o->name, uv_strerror(rc));
    }
    sp_router_start(r);
    uv_signal_start(&d->sigterm, sp__signal_cb, SIGTERM);
    uv_signal_start(&d->sigint, sp__signal_cb, SIGINT);
    if (rc) {
        d->exit_code = 1;
        sp_daemon_stop(d);
        sp__finish(d);
    } else if (!sp_upgrade_start(d)) {
        /* (A process started by an upgrade starts its inputs once the old one hands over.) */
        sp_daemon_start_inputs(d, SP_START_ALL);
    }
    uv_run(&d->loop, UV_RUN_DEFAULT);
    if (uv_loop_alive(&d->loop)) {
        /* A thread is blocked in a system call we cannot interrupt; exit without joining it. */
        sp_warn("exiting with an output still blocked in a write");
        fflush(stdout);
        _exit(d->exit_code);
    }
    uv_close((uv_handle_t *)&d->grace, NULL);
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
        rc = sp_spool_open(&r->spool, r, d->service.state_dir, d->buffer.spool_limit);
        if (!rc) sp_spool_replay(r->spool);
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
        rc = sp_http_start(&d->loop, d->service.http_listen, sp__http_handler, d, &d->http);
        if (rc)
            sp_error("http: cannot listen on %s: %s", d->service.http_listen, uv_strerror(rc));
        else
            sp_info("http: metrics and health on %s", d->service.http_listen);
    }
    if (!rc && !d->ready) sp_listenfds_close_unused();
    if (rc) {
        d->exit_code = 1;
        sp_daemon_stop(d);
        sp__finish(d);
    } else if (!d->ready) {
        d->ready = 1;
        sp_upgrade_running(d);
        sp_info("shipper %s running: %zu input(s), %zu output(s)", SHIPPER_VERSION, d->ninputs,
                d->noutputs);
    }
    return rc;
}

void sp_daemon_free(sp_daemon *d)
{
    for (size_t i = 0; i < d->ninputs; i++) {
        sp_input *in = d->inputs[i];
        sp_conf_free(in->conf, in->type->fields);
        free(in->conf);
        free(in->name);
        free(in);
    }
    for (size_t i = 0; i < d->noutputs; i++) {
        sp_output *o = d->outputs[i];
        sp_conf_free(o->conf, o->type->fields);
        free(o->conf);
        free(o->name);
        free(o->match);
        free(o);
    }
    free(d->inputs);
    free(d->outputs);
    sp_conf_free(&d->service, sp__service_fields);
    sp_conf_free(&d->buffer, sp__buffer_fields);
}
