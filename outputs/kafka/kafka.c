/*
 * The kafka output: one librdkafka producer per output, driven from the libuv loop.
 *
 * A delivery (one or more chunks) is encoded as JSON documents into one buffer on
 * the thread pool, then produced one message each with pointers into that buffer (no copy, no
 * per-record allocation of ours). librdkafka signals its main queue through a pipe watched by
 * uv_poll, and rd_kafka_poll serves the delivery reports on the loop thread. The delivery is
 * answered only when every message has a report: success, or a permanent failure (rejected,
 * counted, optionally sent to the dead-letter topic). Retryable failures (what is left after
 * librdkafka's own retries) are produced again after a backoff, for as long as it takes; the
 * chunk stays buffered meanwhile, so inputs pause through the normal accounting when Kafka is
 * away. Deliveries are produced strictly in arrival order, so a container's lines enter
 * librdkafka in order and idempotence keeps that order per partition.
 *
 * This file: the producer's lifecycle (start, replacement after a fatal error, stop), its
 * librdkafka callbacks and the descriptor. Producing and delivery reports: kafka_send.c;
 * settings: kafka_conf.c; metrics: kafka_stats.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "document.h"
#include "kafka.h"

static void sp_kafka_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    sp_kafka *k = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[512];
        rd_kafka_fatal_error(rk, buf, sizeof buf);
        sp_out_error(k->o,
                     "the kafka producer failed for good: %s; replacing it, its "
                     "messages will be produced again",
                     buf);
        k->fatal = 1;
        return;
    }
    sp_out_log_limited(k->o, &k->rl_error, SP_LOG_WARN, "kafka: %s", reason);
}

static void sp_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    sp_kafka *k = rd_kafka_opaque(rk);
    if (level <= 4) /* syslog warning and worse: broker connection trouble repeats, limit it */
        sp_out_log_limited(k->o, &k->rl_error, level <= 3 ? SP_LOG_ERROR : SP_LOG_WARN,
                           "kafka %s: %s", fac, buf);
    else
        sp_out_log(k->o, level == 7 ? SP_LOG_DEBUG : SP_LOG_INFO, "kafka %s: %s", fac, buf);
}

static void sp_kafka_recover(sp_kafka *k);

static void sp_kafka_serve(sp_kafka *k)
{
    if (k->stopping || !k->rk) return;
    k->busy++;
    int was_full = k->qfull;
    rd_kafka_poll(k->rk, 0);
    if (!k->stopping && k->fatal) sp_kafka_recover(k);
    if (!k->stopping && ((was_full && !k->qfull) || k->retry_due)) sp_kafka_pump(k);
    sp_kafka_leave(k);
}

static void sp_kafka_poll_cb(uv_poll_t *h, int status, int events)
{
    (void)status, (void)events;
    sp_kafka *k = h->data;
    char b[64];
    while (read(k->pipefd[0], b, sizeof b) > 0)
        ;
    sp_kafka_serve(k);
}

/* The safety net: a wake-up lost for any reason costs at most one tick. */
static int sp_kafka_producer_new(sp_kafka *k);

static void sp_kafka_tick_cb(uv_timer_t *t)
{
    sp_kafka *k = t->data;
    /* A replacement producer that could not be created is tried again each second. */
    if (!k->rk && !k->stopping && !k->retiring && ++k->ticks % 10 == 0 &&
        sp_kafka_producer_new(k) == 0)
        sp_kafka_pump(k);
    sp_kafka_serve(k);
    if (k->qfull && !k->stopping) {
        k->qfull = 0;
        sp_kafka_pump(k);
    }
    /* Memory freed elsewhere (another output, a spool write) lets waiting deliveries start. */
    if (!k->stopping) sp_kafka_encode_more(k);
}

/* ---- lifecycle ---- */

/* Creates the producer, its topic handles and its wake-up pipe hook: at start, and again when
 * a fatal error retired the previous one. A producer made only in part is retired at once. */
static int sp_kafka_producer_new(sp_kafka *k)
{
    const sp_kafka_conf *c = k->conf;
    char errstr[512];
    const char *bad;
    rd_kafka_conf_t *rc = sp_kafka_conf_build(c, errstr, sizeof errstr, &bad);
    if (!rc) {
        sp_out_error(k->o, "%s", errstr);
        return -EINVAL;
    }
    rd_kafka_conf_set_opaque(rc, k);
    rd_kafka_conf_set_dr_msg_cb(rc, sp_kafka_dr_cb);
    rd_kafka_conf_set_error_cb(rc, sp_kafka_error_cb);
    rd_kafka_conf_set_log_cb(rc, sp_kafka_log_cb);
    rd_kafka_conf_set_stats_cb(rc, sp_kafka_stats_cb);
    k->rk = rd_kafka_new(RD_KAFKA_PRODUCER, rc, errstr, sizeof errstr);
    if (!k->rk) {
        rd_kafka_conf_destroy(rc);
        sp_out_error(k->o, "cannot create the kafka producer: %s", errstr);
        return -EINVAL;
    }
    rd_kafka_set_log_queue(k->rk, NULL); /* logs too are served by rd_kafka_poll */
    k->mainq = rd_kafka_queue_get_main(k->rk);
    k->rkt = rd_kafka_topic_new(k->rk, c->topic, NULL);
    if (c->dead_letter_topic) k->dlt = rd_kafka_topic_new(k->rk, c->dead_letter_topic, NULL);
    if (!k->rkt || (c->dead_letter_topic && !k->dlt)) {
        sp_out_error(k->o, "invalid topic name");
        sp_kafka_retire(k, 0);
        return -EINVAL;
    }
    /* librdkafka writes a byte when its main queue turns non-empty: the loop wakes up. */
    rd_kafka_queue_io_event_enable(k->mainq, k->pipefd[1], "1", 1);
    return 0;
}

static int sp_kafka_start(sp_output *o)
{
    sp_kafka_conf *c = o->conf;
    sp_kafka *k = sp_calloc(1, sizeof *k);
    k->o = o;
    k->conf = c;
    k->pipefd[0] = k->pipefd[1] = -1;
    sp_list_init(&k->dels);
    o->data = k;
    sp_kafka_field_parse(c->key, 1, &k->keyf);
    k->topicf.kind = SP_KF_NONE;
    if (c->topic_key) sp_kafka_field_parse(c->topic_key, 0, &k->topicf);
    if (c->headers.n) {
        k->headers = rd_kafka_headers_new(c->headers.n);
        for (size_t i = 0; i < c->headers.n; i++)
            rd_kafka_header_add(k->headers, c->headers.k[i], -1, c->headers.v[i], -1);
    }
    /* librdkafka's queue gets a share of memory_limit; what it holds is counted (encode_more). */
    c->queue_kbytes = sp_output_memory_limit(o) / SP_KAFKA_MEMORY_SHARE / 1024;
    if (c->queue_kbytes < 1024) c->queue_kbytes = 1024;
    if (pipe2(k->pipefd, O_NONBLOCK | O_CLOEXEC)) return -errno;
    int rc = sp_kafka_producer_new(k);
    if (rc) return rc;
    /* What deliveries may take past a full buffer is counted from the start (kafka_send.c). */
    k->reserve_cap = sp_output_memory_limit(o) / SP_KAFKA_MEMORY_FLOOR;
    sp_kafka_account(k, NULL, 0, NULL, 0);
    uv_poll_init(o->loop, &k->poll, k->pipefd[0]);
    uv_timer_init(o->loop, &k->tick);
    uv_timer_init(o->loop, &k->retry_timer);
    k->poll.data = k->tick.data = k->retry_timer.data = k;
    k->handles = 3;
    uv_poll_start(&k->poll, UV_READABLE, sp_kafka_poll_cb);
    uv_timer_start(&k->tick, sp_kafka_tick_cb, 100, 100);
    sp_out_info(o, "kafka producer for %s, topic %s%s%s", c->brokers, c->topic,
                c->topic_key ? ", per record from " : "", c->topic_key ? c->topic_key : "");
    return 0;
}

void sp_kafka_maybe_closed(sp_kafka *k)
{
    if (k->handles || k->encoding || k->retiring || !k->destroyed) return;
    sp_output *o = k->o;
    /* Deliveries still here were not confirmed in time: they are abandoned, not answered. */
    while (!sp_list_empty(&k->dels)) {
        sp_kdel *kd = sp_list_entry(k->dels.next, sp_kdel, link);
        sp_list_remove(&kd->link);
        sp_kafka_hold(k, kd, 0);
        sp_buf_free(&kd->buf);
        free(kd->msgs);
        free(kd);
    }
    for (int i = 0; i < k->nspare; i++) {
        sp_kafka_account(k, NULL, 0, &k->spare[i].held, 0);
        sp_buf_free(&k->spare[i].buf);
        free(k->spare[i].msgs);
    }
    k->reserve_cap = 0;
    sp_kafka_account(k, NULL, 0, NULL, 0); /* gives the reserve back */
    for (int i = 0; i < k->ntopics; i++)
        free(k->topics[i].name);
    if (k->headers) rd_kafka_headers_destroy(k->headers);
    for (int i = 0; i < 2; i++)
        if (k->pipefd[i] >= 0) close(k->pipefd[i]);
    free(k);
    o->data = NULL;
    sp_output_closed(o);
}

static void sp_kafka_handle_closed(uv_handle_t *h)
{
    sp_kafka *k = h->data;
    k->handles--;
    sp_kafka_maybe_closed(k);
}

/* A producer on its way out: at stop, or replaced after a fatal error. */
typedef struct {
    uv_work_t work;
    sp_kafka *k;
    rd_kafka_t *rk;
    rd_kafka_queue_t *mainq;
    rd_kafka_topic_t *rkt, *dlt, *topics[SP_KAFKA_TOPICS];
    int ntopics;
    int final; /* the output's stop: it closes once this is gone */
} sp_kgone;

/* rd_kafka_destroy joins librdkafka's threads: on the pool, so the loop never waits for it. */
static void sp_kafka_gone_work(uv_work_t *w)
{
    sp_kgone *g = w->data;
    for (int i = 0; i < g->ntopics; i++)
        rd_kafka_topic_destroy(g->topics[i]);
    if (g->rkt) rd_kafka_topic_destroy(g->rkt);
    if (g->dlt) rd_kafka_topic_destroy(g->dlt);
    if (g->mainq) rd_kafka_queue_destroy(g->mainq);
    rd_kafka_destroy(g->rk);
}

static void sp_kafka_gone(uv_work_t *w, int status)
{
    (void)status;
    sp_kgone *g = w->data;
    sp_kafka *k = g->k;
    k->retiring--;
    if (g->final) k->destroyed = 1;
    free(g);
    sp_kafka_maybe_closed(k);
}

/* Takes back every message the producer holds: they come back as failed reports. */
static void sp_kafka_purge(sp_kafka *k)
{
    rd_kafka_purge(k->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT |
                              RD_KAFKA_PURGE_F_NON_BLOCKING);
}

/* Detaches the producer and everything made from it, and destroys them off the loop. */
void sp_kafka_retire(sp_kafka *k, int final)
{
    sp_kafka_purge(k); /* nothing more is served: the destroy must not wait on queued messages */
    if (k->mainq) rd_kafka_queue_io_event_enable(k->mainq, -1, NULL, 0);
    sp_kgone *g = sp_calloc(1, sizeof *g);
    g->k = k;
    g->final = final;
    g->rk = k->rk;
    g->mainq = k->mainq;
    g->rkt = k->rkt;
    g->dlt = k->dlt;
    for (int i = 0; i < k->ntopics; i++) {
        g->topics[i] = k->topics[i].rkt;
        free(k->topics[i].name);
    }
    g->ntopics = k->ntopics;
    k->ntopics = k->topic_next = k->topic_last = 0;
    k->rk = NULL;
    k->mainq = NULL;
    k->rkt = k->dlt = NULL;
    k->retiring++;
    g->work.data = g;
    uv_queue_work(k->o->loop, &g->work, sp_kafka_gone_work, sp_kafka_gone);
}

/*
 * After a fatal error (the idempotent producer lost its sequence state with the broker) the
 * producer accepts nothing more. Its messages are purged and come back through their reports
 * as failures waiting to be produced again; once none is left inside it, it is destroyed and a
 * new producer (a new producer id) takes over, in the same order. Messages that may have been
 * written before the error can be duplicated by this, as after any retry past idempotence.
 */
static void sp_kafka_recover(sp_kafka *k)
{
    if (!k->purged) {
        sp_kafka_purge(k);
        k->purged = 1;
    }
    if (k->inflight_msgs) return; /* their reports come through later polls */
    sp_kafka_retire(k, 0);
    k->fatal = k->purged = 0;
    k->qfull = 0;
    k->restarts++;
    if (sp_kafka_producer_new(k) == 0) /* else the tick tries again */
        sp_out_warn(k->o, "new kafka producer started");
}

static void sp_kafka_stop(sp_output *o)
{
    sp_kafka *k = o->data;
    if (!k) {
        sp_output_closed(o);
        return;
    }
    k->stopping = 1;
    if (k->inflight_msgs)
        sp_out_warn(o, "%llu kafka messages not confirmed at stop are abandoned",
                    (unsigned long long)k->inflight_msgs);
    if (k->handles) {
        uv_close((uv_handle_t *)&k->poll, sp_kafka_handle_closed);
        uv_close((uv_handle_t *)&k->tick, sp_kafka_handle_closed);
        uv_close((uv_handle_t *)&k->retry_timer, sp_kafka_handle_closed);
    }
    if (k->rk && k->busy) {
        k->destroy_pending = 1;
    } else if (k->rk) {
        sp_kafka_retire(k, 1);
    } else {
        k->destroyed = 1;
        sp_kafka_maybe_closed(k);
    }
}

const sp_output_type sp_output_kafka = {
    .name = "kafka",
    .fields = sp_kafka_fields,
    .conf_size = sizeof(sp_kafka_conf),
    .check = sp_kafka_check,
    .start = sp_kafka_start,
    .deliver = sp_kafka_deliver,
    .stop = sp_kafka_stop,
    .metrics = sp_kafka_metrics,
    .default_inflight = 16,
};
