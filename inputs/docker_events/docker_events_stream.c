/*
 * The docker_events input, its worker thread (docs/architecture.md, "The docker_events input"):
 * GET /events?filters={"type":["container"]}&since=<the resume point's second>, one JSON object
 * a line, parsed here with jansson. Events before the resume point, or at its nanosecond and
 * already taken, are skipped, so a `since` that repeats a second never ships anything twice.
 * When the daemon goes away the stream reconnects with a doubling backoff up to reconnect_max.
 * Parsed events wait in a bounded queue for the loop (uv_async); when it is full the stream is
 * closed and opened again, from the resume point, once there is room.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "docker_events_int.h"

const char *const sp_de_actions[SP_DE_NACTIONS] = {"create", "start",         "die",    "oom",
                                                   "kill",   "health_status", "destroy"};

/* Attributes Docker adds to a container event that are not the container's labels. */
static const char *const sp_de_not_labels[] = {"name",         "image",     "exitCode", "signal",
                                               "execDuration", "container", "exitcode", NULL};

void sp_de_event_free(sp_de_event *e)
{
    free(e->name);
    free(e->image);
    free(e->detail);
    for (size_t i = 0; i < 2 * e->nlabels; i++)
        free(e->labels[i]);
    free(e->labels);
    free(e->key);
    free(e);
}

static char *sp_de_dup(const char *s)
{
    return s ? sp_strndup(s, strlen(s)) : NULL;
}

int sp_de_point_take(sp_de_point *p, uint64_t time_nano, const char *key)
{
    if (time_nano < p->time_nano) return 0;
    size_t kl = strlen(key);
    if (time_nano > p->time_nano) {
        p->time_nano = time_nano;
        p->keys.len = 0;
        p->nkeys = 0;
    } else {
        for (size_t off = 0; off < p->keys.len;) {
            const char *nl = memchr(p->keys.base + off, '\n', p->keys.len - off);
            size_t l = (size_t)(nl - (p->keys.base + off));
            if (l == kl && memcmp(p->keys.base + off, key, kl) == 0) return 0;
            off += l + 1;
        }
    }
    if (p->nkeys < SP_DE_BOUNDARY_KEYS) {
        sp_buf_append(&p->keys, key, kl);
        sp_buf_putc(&p->keys, '\n');
        p->nkeys++;
    }
    return 1;
}

void sp_de_point_copy(sp_de_point *dst, const sp_de_point *src)
{
    dst->time_nano = src->time_nano;
    dst->nkeys = src->nkeys;
    dst->keys.len = 0;
    if (src->keys.len) sp_buf_append(&dst->keys, src->keys.base, src->keys.len);
}

static int sp_de_action(const char *a, const char **detail)
{
    *detail = NULL;
    if (strncmp(a, "health_status", 13) == 0) {
        if (a[13] == ':') *detail = a + 14 + (a[14] == ' ');
        return SP_DE_HEALTH;
    }
    for (int i = 0; i < SP_DE_NACTIONS; i++)
        if (strcmp(a, sp_de_actions[i]) == 0) return i;
    return -1;
}

static void sp_de_attributes(sp_de_event *e, json_t *attrs)
{
    e->name = sp_de_dup(json_string_value(json_object_get(attrs, "name")));
    e->image = sp_de_dup(json_string_value(json_object_get(attrs, "image")));
    const char *code = json_string_value(json_object_get(attrs, "exitCode"));
    if (e->action == SP_DE_DIE && code) {
        e->has_exit = 1;
        e->exit_code = strtoll(code, NULL, 10);
    }
    const char *sig = json_string_value(json_object_get(attrs, "signal"));
    if (e->action == SP_DE_KILL && sig && !e->detail) e->detail = sp_de_dup(sig);
    size_t n = json_object_size(attrs);
    e->labels = sp_calloc(2 * n + 1, sizeof *e->labels);
    const char *k;
    json_t *v;
    json_object_foreach(attrs, k, v)
    {
        int skip = !json_is_string(v);
        for (int i = 0; sp_de_not_labels[i] && !skip; i++)
            skip = strcmp(k, sp_de_not_labels[i]) == 0;
        if (skip) continue;
        e->labels[2 * e->nlabels] = sp_de_dup(k);
        e->labels[2 * e->nlabels + 1] = sp_de_dup(json_string_value(v));
        e->nlabels++;
    }
}

/* One line of the stream: an event, or NULL when it is not one we ship (or malformed). */
static sp_de_event *sp_de_parse(const char *line, size_t len)
{
    json_t *j = json_loadb(line, len, 0, NULL);
    if (!j) return NULL;
    sp_de_event *e = NULL;
    const char *type = json_string_value(json_object_get(j, "Type"));
    const char *action = json_string_value(json_object_get(j, "Action"));
    json_t *actor = json_object_get(j, "Actor");
    const char *id = json_string_value(json_object_get(actor, "ID"));
    json_t *tn = json_object_get(j, "timeNano");
    const char *detail = NULL;
    int a = action ? sp_de_action(action, &detail) : -1;
    if (type && strcmp(type, "container") == 0 && a >= 0 && id && strlen(id) == 64 &&
        json_is_integer(tn)) {
        e = sp_calloc(1, sizeof *e);
        e->action = a;
        e->time_nano = (uint64_t)json_integer_value(tn);
        memcpy(e->id, id, 65);
        e->detail = sp_de_dup(detail);
        sp_de_attributes(e, json_object_get(actor, "Attributes"));
        sp_buf k = {0};
        sp_buf_printf(&k, "%s %s", id, action);
        sp_buf_putc(&k, 0);
        e->key = k.base;
    }
    json_decref(j);
    return e;
}

/* The stream is given up while the queue is full (the loop is paused): dockerd drops events
 * for a subscriber that does not take them within 100 ms, but keeps its last 256 and replays
 * them to `since`, so the stream is opened again once there is room. */
#define SP_DE_QUEUE_FULL 1

static int sp_de_line(void *arg, const char *line, size_t len)
{
    sp_de *d = arg;
    sp_de_event *e = sp_de_parse(line, len);
    if (!e) return 0;
    pthread_mutex_lock(&d->lock);
    int full = d->queued >= d->conf->max_queue;
    pthread_mutex_unlock(&d->lock);
    if (full) {
        sp_de_event_free(e);
        return SP_DE_QUEUE_FULL;
    }
    if (!sp_de_point_take(&d->seen, e->time_nano, e->key)) {
        sp_de_event_free(e);
        return 0;
    }
    pthread_mutex_lock(&d->lock);
    *d->tail = e;
    d->tail = &e->next;
    d->queued++;
    pthread_mutex_unlock(&d->lock);
    uv_async_send(&d->async);
    return 0;
}

/* Waits until the loop has taken queued events, or until stopped. */
static void sp_de_wait_room(sp_de *d)
{
    pthread_mutex_lock(&d->lock);
    while (d->queued >= d->conf->max_queue && !atomic_load(&d->cancel))
        pthread_cond_wait(&d->cond, &d->lock);
    pthread_mutex_unlock(&d->lock);
}

/* Waits `ms` or until stopped. */
static void sp_de_backoff(sp_de *d, uint64_t ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)(ms / 1000);
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&d->lock);
    while (!atomic_load(&d->cancel))
        if (pthread_cond_timedwait(&d->cond, &d->lock, &until) == ETIMEDOUT) break;
    pthread_mutex_unlock(&d->lock);
}

void sp_de_worker(void *arg)
{
    sp_de *d = arg;
    uint64_t backoff = 1000;
    while (!atomic_load(&d->cancel)) {
        sp_buf path = {0};
        SP_BUF_LIT(&path, "/events?filters=");
        sp_docker_escape(&path, "{\"type\":[\"container\"]}");
        sp_buf_printf(&path, "&since=%" PRIu64, (uint64_t)(d->seen.time_nano / 1000000000ULL));
        sp_buf_putc(&path, 0);
        uint64_t before = d->seen.time_nano;
        int rc = sp_docker_stream(d->api, path.base, 5000, &d->cancel, sp_de_line, d);
        sp_buf_free(&path);
        if (atomic_load(&d->cancel)) break;
        if (rc == SP_DE_QUEUE_FULL) {
            d->queue_full++;
            sp_de_wait_room(d);
            continue;
        }
        if (d->seen.time_nano != before) backoff = 1000; /* it worked for a while */
        d->reconnects++;
        char why[32];
        snprintf(why, sizeof why, "HTTP %d", rc);
        sp_in_log_limited(d->in, &d->rl, SP_LOG_WARN,
                          "docker events stream from %s ended (%s); reconnecting in %llu ms",
                          d->conf->docker_socket,
                          rc > 0 ? why
                          : rc   ? strerror(-rc)
                                 : "closed",
                          (unsigned long long)backoff);
        sp_de_backoff(d, backoff);
        backoff = backoff * 2 > d->conf->reconnect_max ? d->conf->reconnect_max : backoff * 2;
    }
    pthread_mutex_lock(&d->lock);
    d->worker_done = 1;
    pthread_mutex_unlock(&d->lock);
    uv_async_send(&d->async);
}
