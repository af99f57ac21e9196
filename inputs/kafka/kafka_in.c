/*
 * The kafka input: an indexer in a consumer group (docs/kafka_input.md).
 *
 * One librdkafka high-level consumer per input. Its queue (the main queue is redirected to it,
 * so rebalances and commit results come the same way) wakes the loop through a pipe watched by
 * uv_poll; messages are taken in batches with a zero timeout, so the loop never blocks. Each
 * message becomes one record (format json: the document the kafka output wrote, with its id
 * from the `shipper-id` header; raw: the value as `message`).
 *
 * Offsets: the records of one partition that went to one chunk are an entry with a watcher on
 * that chunk. A partition's committable offset is the first offset of its oldest entry whose
 * chunk was not released as delivered (or, with none, the offset after the last record), so a
 * commit never passes an undelivered record; nor a record a filter holds (a multiline group:
 * in->hold, the partition's held list, until the group is in a chunk). Commits carry explicit
 * offsets (enable.auto.commit and enable.auto.offset.store are off). Blocking calls (a commit that
 * must finish before a rebalance goes on, fetching committed offsets, closing) run on the thread
 * pool.
 *
 * This file: the settings, partitions, start, pause and stop, metrics and the descriptor.
 * Rebalances and messages: kafka_in_group.c; entries, commits and pool jobs: kafka_in_commit.c;
 * documents: kafka_in_doc.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kafka_in_int.h"
#include "mp.h"

static const char *const sp_kafka_in_formats[] = {"json", "raw", NULL};

static const sp_conf_field sp_kafka_in_fields[] = {
    {"brokers", SP_CONF_STR, offsetof(sp_kafka_in_conf, brokers), NULL,
     "bootstrap brokers, host:port[,host:port]"},
    {"topics", SP_CONF_STRLIST, offsetof(sp_kafka_in_conf, topics), NULL,
     "topics to consume; a name starting with ^ is a regex (as librdkafka reads it)"},
    {"group_id", SP_CONF_STR, offsetof(sp_kafka_in_conf, group_id), NULL,
     "the consumer group: Kafka spreads the partitions over its members"},
    {"format", SP_CONF_ENUM, offsetof(sp_kafka_in_conf, format), "json",
     "json (documents as the kafka output writes them) | raw (the value as message)",
     sp_kafka_in_formats},
    {"tag", SP_CONF_STR, offsetof(sp_kafka_in_conf, tag), NULL,
     "tag of raw records and of documents without one; unset: kafka.<topic>"},
    {"properties", SP_CONF_MAP, offsetof(sp_kafka_in_conf, properties), NULL,
     "librdkafka consumer properties, passed through"},
    {"commit_interval", SP_CONF_DURATION, offsetof(sp_kafka_in_conf, commit_interval), "1s",
     "how often offsets of delivered records are committed"},
    {"revoke_timeout", SP_CONF_DURATION, offsetof(sp_kafka_in_conf, revoke_timeout), "10s",
     "on a rebalance (and at stop): how long in-flight records may take to be delivered "
     "before what is delivered is committed and the partitions are given up"},
    {"pause_delay", SP_CONF_DURATION, offsetof(sp_kafka_in_conf, pause_delay), "500ms",
     "under backpressure the input first stops taking messages (librdkafka's prefetch stays "
     "bounded by queued.max.messages.kbytes); past this the partitions are paused in "
     "librdkafka, which drops its prefetch and fetches it again on resume. 0: at once; "
     "at most 10s (rebalances wait meanwhile)"},
    SP_CONF_END};

sp_kafka_in_part *sp_kafka_in_part_get(sp_kafka_in *k, const char *topic, int32_t p, int create)
{
    if (k->hit && k->hit->partition == p && strcmp(k->hit->topic, topic) == 0) return k->hit;
    sp_list *it;
    sp_list_foreach(it, &k->parts)
    {
        sp_kafka_in_part *x = sp_list_entry(it, sp_kafka_in_part, link);
        if (x->partition == p && strcmp(x->topic, topic) == 0) return k->hit = x;
    }
    if (!create) return NULL;
    sp_kafka_in_part *x = sp_calloc(1, sizeof *x);
    x->topic = sp_strndup(topic, strlen(topic));
    x->partition = p;
    x->k = k;
    sp_buf t = {0};
    if (k->conf->tag)
        sp_buf_printf(&t, "%s", k->conf->tag);
    else
        sp_buf_printf(&t, "kafka.%s", topic);
    sp_buf_putc(&t, 0);
    x->tag = t.base;
    x->tag_len = t.len - 1;
    x->next = x->sent = x->committed = -1;
    sp_list_init(&x->pending);
    sp_kafka_in_hold_init(x);
    sp_list_insert_tail(&k->parts, &x->link);
    return k->hit = x;
}

static void sp_kafka_in_free(sp_kafka_in *k)
{
    sp_list *it, *tmp;
    sp_list_foreach_safe(it, tmp, &k->parts)
    {
        sp_kafka_in_part *x = sp_list_entry(it, sp_kafka_in_part, link);
        free(x->topic);
        free(x->tag);
        free(x);
    }
    sp_kafka_in_hold_free(k);
    sp_buf_free(&k->scratch.str);
    sp_buf_free(&k->scratch.ext);
    free(k);
}

/* Freed once stopped, its handles closed, no pool job running, no watcher left and no record
 * a filter holds. */
void sp_kafka_in_maybe_free(sp_kafka_in *k)
{
    if (k->closed_handles && !k->works && !k->nent && !k->nheld) sp_kafka_in_free(k);
}

/* ---- start, pause, stop ---- */

/*
 * librdkafka's prefetch queue is memory held for records: queued.max.messages.kbytes defaults to
 * 1/SP_KAFKA_IN_QUEUE_SHARE of memory_limit (at least SP_KAFKA_IN_QUEUE_MIN_KB), and the input
 * counts twice what the queue may hold against the limit from its start (the messages and
 * librdkafka's per-message operations, about as large again), at most a quarter of the limit.
 */
#define SP_KAFKA_IN_QUEUE_SHARE 16
#define SP_KAFKA_IN_QUEUE_MIN_KB 256

static rd_kafka_conf_t *sp_kafka_in_conf_build(const sp_kafka_in_conf *c, uint64_t queue_kb,
                                               char *errstr, size_t errlen, const char **bad)
{
    rd_kafka_conf_t *rc = rd_kafka_conf_new();
    char qv[32];
    snprintf(qv, sizeof qv, "%llu", (unsigned long long)queue_kb);
    const char *ours[][2] = {
        {"bootstrap.servers", c->brokers},
        {"group.id", c->group_id},
        {"enable.auto.commit", "false"},       /* offsets are committed by us, explicitly */
        {"enable.auto.offset.store", "false"}, /* ... and only past delivered records */
        {"auto.offset.reset", "earliest"},     /* a partition never committed: from its start */
        {"queued.max.messages.kbytes", qv},    /* `properties` may still set it */
        /* A fetch response under the daemon's 2 MiB mmap threshold (daemon.c) comes from the
         * heap and is reused; librdkafka's 50 MB default was an mmap and its page faults for
         * every response: 25-45% of the input's CPU (bench/run-kafka-in.sh, paired runs). */
        {"fetch.max.bytes", "1900000"},
    };
    *bad = NULL;
    for (size_t i = 0; i < sizeof ours / sizeof ours[0]; i++)
        if (rd_kafka_conf_set(rc, ours[i][0], ours[i][1], errstr, errlen) != RD_KAFKA_CONF_OK)
            goto fail;
    for (size_t i = 0; i < c->properties.n; i++) {
        const char *key = c->properties.k[i], *v = c->properties.v[i];
        if ((!strcmp(key, "enable.auto.commit") || !strcmp(key, "enable.auto.offset.store")) &&
            strcmp(v, "false") != 0) {
            snprintf(errstr, errlen,
                     "must stay false: offsets are committed only past "
                     "delivered records (docs/kafka.md)");
            *bad = key;
            goto fail;
        }
        if (rd_kafka_conf_set(rc, key, v, errstr, errlen) != RD_KAFKA_CONF_OK) {
            *bad = key;
            goto fail;
        }
    }
    return rc;
fail:
    rd_kafka_conf_destroy(rc);
    return NULL;
}

static void sp_kafka_in_log_none(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk, (void)level, (void)fac, (void)buf; /* the check's throwaway handle says nothing */
}

static int sp_kafka_in_check(sp_input *in, const sp_node *n, sp_conf_err *err)
{
    const sp_kafka_in_conf *c = in->conf;
    const sp_node *f;
    if (!c->brokers || !*c->brokers) {
        sp_conf_error(err, n->line, "brokers", "required");
        return -1;
    }
    if (!c->group_id || !*c->group_id) {
        sp_conf_error(err, n->line, "group_id", "required");
        return -1;
    }
    if (!c->topics.n) {
        sp_conf_error(err, n->line, "topics", "required: one topic or more");
        return -1;
    }
    for (size_t i = 0; i < c->topics.n; i++)
        if (!*c->topics.v[i]) {
            f = sp_node_get(n, "topics");
            sp_conf_error(err, f ? f->line : n->line, "topics", "an empty topic name");
            return -1;
        }
    if (!c->revoke_timeout) {
        f = sp_node_get(n, "revoke_timeout");
        sp_conf_error(err, f ? f->line : n->line, "revoke_timeout", "must be more than 0");
        return -1;
    }
    if (c->pause_delay > 10000) {
        f = sp_node_get(n, "pause_delay");
        sp_conf_error(err, f ? f->line : n->line, "pause_delay",
                      "at most 10s: rebalances wait while the input takes nothing");
        return -1;
    }
    char errstr[512];
    const char *bad;
    rd_kafka_conf_t *rc =
        sp_kafka_in_conf_build(c, SP_KAFKA_IN_QUEUE_MIN_KB, errstr, sizeof errstr, &bad);
    if (!rc) {
        f = sp_node_get(n, "properties");
        sp_conf_error(err, f ? f->line : n->line, bad ? "properties" : "brokers", "%s%s%s",
                      bad ? bad : "", bad ? ": " : "", errstr);
        return -1;
    }
    /* librdkafka checks some combinations (fetch.max.bytes against message.max.bytes and
     * receive.message.max.bytes) only when a handle is made: make one with no broker to reach
     * (nothing connects, a few ms) and throw it away, so they are config errors here rather than
     * a consumer that cannot start. */
    rd_kafka_conf_set_log_cb(rc, sp_kafka_in_log_none);
    rd_kafka_t *rk = NULL;
    if (rd_kafka_conf_set(rc, "bootstrap.servers", "", errstr, sizeof errstr) == RD_KAFKA_CONF_OK)
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, rc, errstr, sizeof errstr);
    if (!rk) {
        rd_kafka_conf_destroy(rc);
        f = sp_node_get(n, "properties");
        sp_conf_error(err, f ? f->line : n->line, "properties", "%s", errstr);
        return -1;
    }
    rd_kafka_destroy(rk);
    return 0;
}

/* A numeric property as librdkafka will use it (ours, the user's or its default). */
static uint64_t sp_kafka_in_conf_u64(const rd_kafka_conf_t *rc, const char *name)
{
    char v[32];
    size_t len = sizeof v;
    if (rd_kafka_conf_get(rc, name, v, &len) != RD_KAFKA_CONF_OK) return 0;
    return strtoull(v, NULL, 10);
}

static int sp_kafka_in_start(sp_input *in)
{
    const sp_kafka_in_conf *c = in->conf;
    sp_kafka_in *k = sp_calloc(1, sizeof *k);
    k->in = in;
    k->conf = c;
    k->pipefd[0] = k->pipefd[1] = -1;
    sp_list_init(&k->parts);
    sp_list_init(&k->held_free);
    char errstr[512];
    const char *bad;
    uint64_t limit = sp_input_memory_limit(in), queue_kb = limit / SP_KAFKA_IN_QUEUE_SHARE / 1024;
    if (queue_kb < SP_KAFKA_IN_QUEUE_MIN_KB) queue_kb = SP_KAFKA_IN_QUEUE_MIN_KB;
    rd_kafka_conf_t *rc = sp_kafka_in_conf_build(c, queue_kb, errstr, sizeof errstr, &bad);
    if (!rc) {
        sp_error("input %s: %s: %s", in->name, bad ? bad : "configuration", errstr);
        sp_kafka_in_free(k);
        return -EINVAL;
    }
    uint64_t queue_bytes = sp_kafka_in_conf_u64(rc, "queued.max.messages.kbytes") * 1024;
    k->wake_bytes = queue_bytes / 2;
    k->wake_msgs = sp_kafka_in_conf_u64(rc, "queued.min.messages") / 2;
    rd_kafka_conf_set_opaque(rc, k);
    rd_kafka_conf_set_rebalance_cb(rc, sp_kafka_in_rebalance_cb);
    rd_kafka_conf_set_offset_commit_cb(rc, sp_kafka_in_commit_cb);
    k->rk = rd_kafka_new(RD_KAFKA_CONSUMER, rc, errstr, sizeof errstr);
    if (!k->rk) {
        sp_error("input %s: cannot create the consumer: %s", in->name, errstr);
        rd_kafka_conf_destroy(rc);
        sp_kafka_in_free(k);
        return -EINVAL;
    }
    k->reserved = (int64_t)(2 * queue_bytes < limit / 4 ? 2 * queue_bytes : limit / 4);
    sp_input_hold(in, k->reserved);
    rd_kafka_poll_set_consumer(k->rk); /* rebalances, errors, commit results: one queue */
    k->q = rd_kafka_queue_get_consumer(k->rk);
    if (pipe2(k->pipefd, O_NONBLOCK | O_CLOEXEC) != 0) {
        int e = errno;
        rd_kafka_queue_destroy(k->q);
        rd_kafka_destroy(k->rk);
        sp_input_hold(in, -k->reserved);
        sp_kafka_in_free(k);
        return -e;
    }
    rd_kafka_queue_io_event_enable(k->q, k->pipefd[1], "1", 1);
    uv_poll_init(in->loop, &k->poll, k->pipefd[0]);
    uv_idle_init(in->loop, &k->more);
    uv_timer_init(in->loop, &k->commit_timer);
    uv_timer_init(in->loop, &k->drain_timer);
    uv_timer_init(in->loop, &k->pause_timer);
    k->poll.data = k->more.data = k->commit_timer.data = k->drain_timer.data = k;
    k->pause_timer.data = k;
    in->data = k;
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new((int)c->topics.n);
    for (size_t i = 0; i < c->topics.n; i++)
        rd_kafka_topic_partition_list_add(topics, c->topics.v[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(k->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err) sp_error("input %s: subscribing failed: %s", in->name, rd_kafka_err2str(err));
    uv_poll_start(&k->poll, UV_READABLE, sp_kafka_in_poll_cb);
    uint64_t ci = c->commit_interval ? c->commit_interval : 1;
    uv_timer_start(&k->commit_timer, sp_kafka_in_commit_timer, ci, ci);
    sp_info("input %s: consuming %zu topic(s) in group %s from %s", in->name, c->topics.n,
            c->group_id, c->brokers);
    sp_kafka_in_drain(k);
    return err ? -EINVAL : 0;
}

rd_kafka_topic_partition_list_t *sp_kafka_in_fetching(sp_kafka_in *k)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);
    sp_list *it;
    sp_list_foreach(it, &k->parts)
    {
        sp_kafka_in_part *x = sp_list_entry(it, sp_kafka_in_part, link);
        if (x->assigned && !x->revoking)
            rd_kafka_topic_partition_list_add(l, x->topic, x->partition);
    }
    return l;
}

/* Backpressure past pause_delay: librdkafka pauses the partitions (and drops its prefetch); the
 * queue is served again, for rebalances and for messages of the old fetch that it still hands
 * out. */
static void sp_kafka_in_pause_fetch(uv_timer_t *t)
{
    sp_kafka_in *k = t->data;
    if (!k->paused || k->fetch_paused || k->stopping || k->closing) return;
    k->fetch_paused = 1;
    k->fetch_pauses++;
    rd_kafka_topic_partition_list_t *l = sp_kafka_in_fetching(k);
    sp_kafka_in_set_paused(k, l, 1);
    rd_kafka_topic_partition_list_destroy(l);
    sp_kafka_in_drain(k);
}

/* Backpressure: nothing more is taken. A short pause stops there (librdkafka fills its bounded
 * prefetch queue and stops fetching by itself; resuming goes on from that queue); a longer one
 * pauses the partitions in librdkafka, which then refetches from the last consumed offset on
 * resume, a quarter of a second later (docs/kafka_input.md, "Backpressure"). */
static void sp_kafka_in_pause(sp_input *in)
{
    sp_kafka_in *k = in->data;
    if (!k || k->paused || k->closing) return;
    k->paused = 1;
    k->pauses++;
    uv_idle_stop(&k->more);
    if (k->conf->pause_delay)
        uv_timer_start(&k->pause_timer, sp_kafka_in_pause_fetch, k->conf->pause_delay, 0);
    else
        sp_kafka_in_pause_fetch(&k->pause_timer);
}

static void sp_kafka_in_resume(sp_input *in)
{
    sp_kafka_in *k = in->data;
    if (!k || !k->paused || k->closing) return;
    k->paused = 0;
    uv_timer_stop(&k->pause_timer);
    if (k->stopping) return;
    if (k->fetch_paused) {
        k->fetch_paused = 0;
        rd_kafka_topic_partition_list_t *l = sp_kafka_in_fetching(k);
        sp_kafka_in_set_paused(k, l, 0);
        rd_kafka_topic_partition_list_destroy(l);
    }
    sp_kafka_in_drain(k); /* what waited in the queue; a full one wakes the fetchers */
}

static void sp_kafka_in_handle_closed(uv_handle_t *h)
{
    sp_kafka_in *k = h->data;
    if (--k->handles) return;
    sp_input *in = k->in;
    k->closed_handles = 1;
    in->data = NULL;
    sp_kafka_in_maybe_free(k);
    sp_input_closed(in);
}

void sp_kafka_in_close_handles(sp_kafka_in *k)
{
    /* Entries still in chunks are freed by their watchers. */
    sp_list *it;
    sp_list_foreach(it, &k->parts) sp_kafka_in_orphan(k, sp_list_entry(it, sp_kafka_in_part, link));
    k->handles = 5;
    uv_close((uv_handle_t *)&k->poll, sp_kafka_in_handle_closed);
    uv_close((uv_handle_t *)&k->more, sp_kafka_in_handle_closed);
    uv_close((uv_handle_t *)&k->commit_timer, sp_kafka_in_handle_closed);
    uv_close((uv_handle_t *)&k->drain_timer, sp_kafka_in_handle_closed);
    uv_close((uv_handle_t *)&k->pause_timer, sp_kafka_in_handle_closed);
    close(k->pipefd[0]);
    close(k->pipefd[1]);
}

/* Stopping, once in-flight records are delivered (or revoke_timeout passed): commit what is
 * delivered, leave the group and close, on the thread pool (these calls block). */
void sp_kafka_in_final(sp_kafka_in *k)
{
    /* CLOSE destroys the handle, so it waits until no other pool job runs (a committed-offsets
     * lookup may block for seconds): one still using the handle crashed the process. */
    if (k->works) {
        k->close_wanted = 1;
        return;
    }
    k->close_wanted = 0;
    rd_kafka_topic_partition_list_t *l = sp_kafka_in_collect(k, 0);
    k->closing = 1;
    sp_kafka_in_job(k, SP_KAFKA_IN_JOB_CLOSE, l);
}

static void sp_kafka_in_stop(sp_input *in)
{
    sp_kafka_in *k = in->data;
    if (!k) {
        sp_input_closed(in);
        return;
    }
    k->stopping = 1;
    uv_idle_stop(&k->more);
    uv_timer_stop(&k->commit_timer);
    uv_timer_stop(&k->pause_timer);
    rd_kafka_topic_partition_list_t *l = sp_kafka_in_fetching(k);
    sp_kafka_in_set_paused(k, l, 1);
    rd_kafka_topic_partition_list_destroy(l);
    /* Records already taken reach the outputs meanwhile; the queue is still served (drain
     * drops messages while stopping) so a rebalance is answered. */
    k->drain_deadline = uv_now(in->loop) + k->conf->revoke_timeout;
    uv_timer_start(&k->drain_timer, sp_kafka_in_drain_check, 0, 20);
}

static void sp_kafka_in_metrics(sp_input *in, sp_buf *out)
{
    sp_kafka_in *k = in->data;
    if (!k) return;
    const char *n = in->name;
    sp_buf_metric(out, "shipper_kafka_input_consumed_total", "input", n, k->consumed);
    sp_buf_metric(out, "shipper_kafka_input_committed_total", "input", n, k->committed);
    sp_buf_metric(out, "shipper_kafka_input_commit_errors_total", "input", n, k->commit_errors);
    sp_buf_metric(out, "shipper_kafka_input_rebalances_total", "input", n, k->rebalances);
    sp_buf_metric(out, "shipper_kafka_input_invalid_total", "input", n, k->invalid);
    sp_buf_metric(out, "shipper_kafka_input_pauses_total", "input", n, k->pauses);
    sp_buf_metric(out, "shipper_kafka_input_wakes_total", "input", n, k->wakes);
    sp_buf_metric(out, "shipper_kafka_input_fetch_pauses_total", "input", n, k->fetch_pauses);
    sp_buf_printf(out, "shipper_kafka_input_paused{input=\"%s\"} %d\n", n, k->paused);
    int assigned = 0;
    int64_t lag = 0;
    sp_list *it;
    sp_list_foreach(it, &k->parts)
    {
        sp_kafka_in_part *x = sp_list_entry(it, sp_kafka_in_part, link);
        if (!x->assigned) continue;
        assigned++;
        int64_t lo = -1, hi = -1;
        if (k->rk && !k->closing)
            rd_kafka_get_watermark_offsets(k->rk, x->topic, x->partition, &lo, &hi);
        int64_t from = x->committed >= 0 ? x->committed : lo;
        if (hi >= 0 && from >= 0 && hi > from) lag += hi - from;
        if (x->committed >= 0)
            sp_buf_printf(out,
                          "shipper_kafka_input_committed_offset{input=\"%s\",topic=\"%s\","
                          "partition=\"%d\"} %lld\n",
                          n, x->topic, (int)x->partition, (long long)x->committed);
    }
    sp_buf_printf(out, "shipper_kafka_input_assigned_partitions{input=\"%s\"} %d\n", n, assigned);
    sp_buf_printf(out, "shipper_kafka_input_lag{input=\"%s\"} %lld\n", n, (long long)lag);
}

const sp_input_type sp_input_kafka = {
    .name = "kafka",
    .fields = sp_kafka_in_fields,
    .conf_size = sizeof(sp_kafka_in_conf),
    .check = sp_kafka_in_check,
    .start = sp_kafka_in_start,
    .pause = sp_kafka_in_pause,
    .resume = sp_kafka_in_resume,
    .stop = sp_kafka_in_stop,
    .metrics = sp_kafka_in_metrics,
};
