/*
 * The docker_events input (docs/architecture.md, "The docker_events input"): container
 * lifecycle events from Docker's Engine API as records. The worker thread
 * (docker_events_stream.c) reads the stream; here, on the loop, queued events become records of
 * one batch per wake-up, with a watcher that carries the resume point they reach. Once the
 * batch's chunk is delivered (in order) that point is committed and written to the state file
 * at most once a second, and at stop.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "docker_events_int.h"
#include "meta.h"
#include "mp.h"

#define SP_DE_SAVE_MS 1000

static const sp_conf_field sp_de_fields[] = {
    {"docker_socket", SP_CONF_STR, offsetof(sp_de_conf, docker_socket), "/var/run/docker.sock",
     "Docker Engine API Unix socket"},
    {"tag", SP_CONF_STR, offsetof(sp_de_conf, tag), "docker.events", "tag of the records"},
    {"reconnect_max", SP_CONF_DURATION, offsetof(sp_de_conf, reconnect_max), "30s",
     "longest wait between reconnects when the daemon is away (from 1s, doubling)"},
    {"max_queue", SP_CONF_INT, offsetof(sp_de_conf, max_queue), "4096",
     "events read and not yet appended; when full the stream is closed until there is room"},
    SP_CONF_END};

static int sp_de_check(sp_input *in, const sp_node *n, sp_conf_err *err)
{
    const sp_de_conf *c = in->conf;
    if (c->max_queue < 1) {
        sp_conf_error(err, sp_node_line(n, "max_queue", in->line), "max_queue", "must be >= 1");
        return -1;
    }
    if (c->reconnect_max < 1000) {
        sp_conf_error(err, sp_node_line(n, "reconnect_max", in->line), "reconnect_max",
                      "must be at least 1s");
        return -1;
    }
    return 0;
}

static void sp_de_free(sp_de *d)
{
    while (d->head) {
        sp_de_event *e = d->head;
        d->head = e->next;
        sp_de_event_free(e);
    }
    sp_docker_api_close(d->api);
    pthread_mutex_destroy(&d->lock);
    pthread_cond_destroy(&d->cond);
    sp_buf_free(&d->seen.keys);
    sp_buf_free(&d->appended.keys);
    sp_buf_free(&d->committed.keys);
    sp_buf_free(&d->msg);
    sp_buf_free(&d->extras);
    free(d->state_path);
    d->in->data = NULL;
    free(d);
}

static void sp_de_save(sp_de *d)
{
    d->state_dirty = 0;
    d->last_save_ms = uv_now(d->in->loop);
    if (!d->state_path) return;
    int rc = sp_de_state_save(d->state_path, &d->committed);
    if (rc) sp_in_error(d->in, "cannot write %s: %s", d->state_path, strerror(-rc));
}

static void sp_de_watch_cb(sp_chunk_watch *cw, sp_chunk *c, int delivered)
{
    sp_de_watch *w = (sp_de_watch *)cw;
    sp_de *d = w->d;
    w->fired = 1;
    w->delivered = delivered;
    /* The point moves in order: a chunk released early waits for the ones before it. One not
     * delivered (dropped at shutdown) holds it where it is for good. */
    while (!sp_list_empty(&d->watches)) {
        sp_de_watch *h = sp_list_entry(d->watches.next, sp_de_watch, link);
        if (!h->fired) break;
        d->frozen |= !h->delivered;
        if (!d->frozen) {
            sp_de_point_copy(&d->committed, &h->point);
            d->state_dirty = 1;
        }
        sp_list_remove(&h->link);
        sp_buf_free(&h->point.keys);
        free(h);
        d->nwatch--;
    }
    if (!d->stopping) return;
    /* Stopping: every release may be the last one. */
    if (d->state_dirty) sp_de_save(d);
    if (d->nwatch == 0 && d->in->closed) sp_de_free(d);
}

/* ---- records ---- */

static void sp_de_message(sp_buf *m, const sp_de_event *e)
{
    const char *who = e->name ? e->name : e->id;
    m->len = 0;
    switch (e->action) {
    case SP_DE_DIE:
        sp_buf_printf(m, "container %s died", who);
        if (e->has_exit) sp_buf_printf(m, " (exit code %lld)", (long long)e->exit_code);
        break;
    case SP_DE_OOM:
        sp_buf_printf(m, "container %s ran out of memory", who);
        break;
    case SP_DE_KILL:
        sp_buf_printf(m, "container %s killed with signal %s", who, e->detail ? e->detail : "?");
        break;
    case SP_DE_HEALTH:
        sp_buf_printf(m, "container %s is %s", who, e->detail ? e->detail : "unknown");
        break;
    case SP_DE_CREATE:
        sp_buf_printf(m, "container %s created", who);
        break;
    case SP_DE_START:
        sp_buf_printf(m, "container %s started", who);
        break;
    default:
        sp_buf_printf(m, "container %s destroyed", who);
        break;
    }
    if (e->image && e->action == SP_DE_CREATE) sp_buf_printf(m, " from image %s", e->image);
}

static void sp_de_append(sp_de *d, const sp_de_event *e)
{
    sp_de_point_take(&d->appended, e->time_nano, e->key);
    sp_meta_learn(sp_slice_make(e->id, 64), e->name, e->image, (const char *const *)e->labels,
                  e->nlabels);
    sp_de_message(&d->msg, e);
    d->extras.len = 0;
    sp_mp_put_str(&d->extras, "event", 5);
    sp_mp_put_map(&d->extras, 1 + (e->has_exit || e->detail));
    sp_mp_put_str(&d->extras, "action", 6);
    sp_mp_put_str(&d->extras, sp_de_actions[e->action], strlen(sp_de_actions[e->action]));
    if (e->has_exit) {
        sp_mp_put_str(&d->extras, "exit_code", 9);
        sp_mp_put_int(&d->extras, e->exit_code);
    } else if (e->detail) {
        const char *k = e->action == SP_DE_KILL ? "signal" : "health";
        sp_mp_put_str(&d->extras, k, strlen(k));
        sp_mp_put_str(&d->extras, e->detail, strlen(e->detail));
    }
    sp_record r = {.sec = e->time_nano / 1000000000ULL,
                   .nsec = (uint32_t)(e->time_nano % 1000000000ULL),
                   .prec = 9,
                   .message = sp_buf_slice(&d->msg),
                   .container_id = sp_slice_make(e->id, 64),
                   .nextras = 1,
                   .extras = sp_buf_slice(&d->extras)};
    if (e->name) r.container_name = sp_slice_str(e->name);
    char idkey[256];
    int n = snprintf(idkey, sizeof idkey, "%s %llu", e->key, (unsigned long long)e->time_nano);
    sp_hash128(idkey, (size_t)n < sizeof idkey ? (size_t)n : sizeof idkey - 1, 0x646576656e7473ULL,
               r.id);
    sp_slice tag = sp_slice_str(d->conf->tag);
    sp_input_batch_add(d->in, &d->batch, tag, &r);
    d->counts[e->action]++;
}

static sp_chunk_watch *sp_de_batch_watch(void *ctx, sp_chunk *c)
{
    sp_de *d = ctx;
    sp_de_watch *w = sp_calloc(1, sizeof *w);
    w->w.cb = sp_de_watch_cb;
    w->d = d;
    sp_de_point_copy(&w->point, &d->appended);
    sp_list_insert_tail(&d->watches, &w->link);
    d->nwatch++;
    return &w->w;
}

/* Appends what the worker queued, in batches of one chunk each. */
static void sp_de_drain(sp_de *d)
{
    pthread_mutex_lock(&d->lock);
    sp_de_event *list = d->head;
    d->head = NULL;
    d->tail = &d->head;
    d->queued = 0;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
    while (list) {
        sp_de_event *e = list;
        list = e->next;
        sp_de_append(d, e);
        sp_de_event_free(e);
        if (sp_input_batch_full(d->in, &d->batch))
            sp_input_batch_commit(d->in, &d->batch, sp_de_batch_watch, d);
    }
    sp_input_batch_commit(d->in, &d->batch, sp_de_batch_watch, d);
}

/* ---- the loop side of the worker ---- */

static void sp_de_closed(uv_handle_t *h)
{
    sp_de *d = h->data;
    sp_input *in = d->in;
    if (d->state_dirty) sp_de_save(d);
    sp_input_closed(in);
    if (d->nwatch == 0) sp_de_free(d);
}

static void sp_de_async(uv_async_t *a)
{
    sp_de *d = a->data;
    if (!d->stopping && !d->paused) sp_de_drain(d);
    pthread_mutex_lock(&d->lock);
    int done = d->worker_done;
    pthread_mutex_unlock(&d->lock);
    if (d->stopping && done && !d->closing) {
        d->closing = 1;
        uv_thread_join(&d->thread);
        uv_close((uv_handle_t *)&d->async, sp_de_closed);
    }
}

static int sp_de_start(sp_input *in)
{
    const sp_de_conf *c = in->conf;
    sp_de *d = sp_calloc(1, sizeof *d);
    d->in = in;
    d->conf = c;
    int rc = sp_docker_api_open(&d->api, c->docker_socket, 1, 0);
    if (rc == -ENOENT) { /* dockerd not started yet: the stream connects with backoff */
        sp_in_warn(in, "docker_socket %s: %s (connecting with backoff until it appears)",
                   c->docker_socket, strerror(-rc));
        rc = sp_docker_api_new(&d->api, c->docker_socket, 1, 0);
    }
    if (rc) {
        sp_in_error(in, "docker_socket %s: %s", c->docker_socket, strerror(-rc));
        free(d);
        return rc;
    }
    sp_meta_set_socket(c->docker_socket); /* image and labels of live containers */
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->cond, NULL);
    d->tail = &d->head;
    sp_list_init(&d->watches);
    if (in->state_dir) {
        sp_buf p = {0};
        sp_buf_printf(&p, "%s/%s.events", in->state_dir, in->name);
        sp_buf_putc(&p, 0);
        d->state_path = p.base;
        rc = sp_de_state_load(d->state_path, &d->committed);
        if (rc && rc != -ENOENT)
            sp_in_warn(in, "%s unreadable (%s): starting from now", d->state_path, strerror(-rc));
        if (rc == 0)
            sp_in_info(in, "resuming after %llu", (unsigned long long)d->committed.time_nano);
    }
    if (!d->committed.time_nano) { /* no state: from now on */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        d->committed.time_nano = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
        d->state_dirty = 1;
    }
    sp_de_point_copy(&d->seen, &d->committed);
    sp_de_point_copy(&d->appended, &d->committed);
    uv_async_init(in->loop, &d->async, sp_de_async);
    d->async.data = d;
    in->data = d;
    rc = uv_thread_create(&d->thread, sp_de_worker, d);
    if (rc) {
        sp_in_error(in, "cannot start its thread: %s", uv_strerror(rc));
        d->stopping = d->closing = 1;
        uv_close((uv_handle_t *)&d->async, NULL);
        return rc;
    }
    d->thread_started = 1;
    return 0;
}

static void sp_de_pause(sp_input *in)
{
    sp_de *d = in->data;
    if (d) d->paused = 1;
}

static void sp_de_resume(sp_input *in)
{
    sp_de *d = in->data;
    if (!d || !d->paused) return;
    d->paused = 0;
    uv_async_send(&d->async); /* what waited in the queue */
}

static void sp_de_tick(sp_input *in, uint64_t now_ms)
{
    sp_de *d = in->data;
    if (d && d->state_dirty && uv_now(in->loop) - d->last_save_ms >= SP_DE_SAVE_MS) sp_de_save(d);
}

static void sp_de_stop(sp_input *in)
{
    sp_de *d = in->data;
    if (!d) {
        sp_input_closed(in);
        return;
    }
    d->stopping = 1;
    atomic_store(&d->cancel, 1); /* the stream notices within a second */
    pthread_mutex_lock(&d->lock);
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
    uv_async_send(&d->async);
}

static void sp_de_metrics(sp_input *in, sp_buf *out)
{
    sp_de *d = in->data;
    if (!d) return;
    for (int i = 0; i < SP_DE_NACTIONS; i++)
        sp_buf_printf(out, "shipper_docker_events_total{input=\"%s\",action=\"%s\"} %llu\n",
                      in->name, sp_de_actions[i], (unsigned long long)d->counts[i]);
    sp_buf_metric(out, "shipper_docker_events_reconnects_total", "input", in->name, d->reconnects);
    sp_buf_metric(out, "shipper_docker_events_queue_full_total", "input", in->name, d->queue_full);
}

const sp_input_type sp_input_docker_events = {
    .name = "docker_events",
    .fields = sp_de_fields,
    .conf_size = sizeof(sp_de_conf),
    .check = sp_de_check,
    .start = sp_de_start,
    .pause = sp_de_pause,
    .resume = sp_de_resume,
    .tick = sp_de_tick,
    .stop = sp_de_stop,
    .metrics = sp_de_metrics,
};
