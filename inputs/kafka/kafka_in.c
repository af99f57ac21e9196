/*
 * The kafka input: an indexer in a consumer group (docs/kafka.md, "The kafka input").
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
 * commit never passes an undelivered record. Commits carry explicit offsets
 * (enable.auto.commit and enable.auto.offset.store are off). Blocking calls (a commit that must
 * finish before a rebalance goes on, fetching committed offsets, closing) run on the thread pool.
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
    SP_CONF_END};

#define SP_KAFKA_IN_BATCH 256
#define SP_KAFKA_IN_BUDGET 8192 /* messages per loop iteration, then other handles run */

typedef struct sp_kafka_in {
    sp_input *in;
    const sp_kafka_in_conf *conf;
    rd_kafka_t *rk;
    rd_kafka_queue_t *q;
    int pipefd[2];
    uv_poll_t poll;
    uv_idle_t more;
    uv_timer_t commit_timer, drain_timer;
    int handles;
    sp_list parts;
    sp_kafka_in_part *hit;
    sp_kafka_in_scratch scratch;
    /* a revoke waiting for deliveries (or stop) */
    rd_kafka_topic_partition_list_t *revoking;
    int revoke_coop;
    uint64_t drain_deadline;
    int stopping, closing, works, closed_handles;
    int paused;
    uint64_t nent; /* entries not freed */
    struct sp_kafka_in_job_s *last_job;
    /* counters */
    uint64_t consumed, committed, commit_errors, rebalances, invalid, pauses, errors;
    sp_ratelimit rl;
} sp_kafka_in;

static sp_kafka_in_part *sp_kafka_in_part_get(sp_kafka_in *k, const char *topic, int32_t p,
                                              int create)
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
    sp_buf_free(&k->scratch.str);
    sp_buf_free(&k->scratch.ext);
    free(k);
}

/* Freed once stopped, its handles closed, no pool job running and no watcher left. */
static void sp_kafka_in_maybe_free(sp_kafka_in *k)
{
    if (k->closed_handles && !k->works && !k->nent) sp_kafka_in_free(k);
}

/* ---- entries and commits ---- */

static void sp_kafka_in_ent_free(sp_kafka_in *k, sp_kafka_in_ent *e)
{
    if (e->part) {
        sp_list_remove(&e->link);
        if (e->part->last == e) e->part->last = NULL;
    }
    free(e);
    k->nent--;
}

static void sp_kafka_in_fired(sp_chunk_watch *w, sp_chunk *c, int delivered)
{
    sp_kafka_in_ent *e = (sp_kafka_in_ent *)w;
    sp_kafka_in *k = e->k;
    e->fired = 1;
    e->delivered = delivered;
    if (!e->part) {
        sp_kafka_in_ent_free(k, e);
        sp_kafka_in_maybe_free(k);
    }
}

/* The watcher for the record at part->cur in chunk `c`: none when an entry of this partition
 * is on `c` already (its first offset is lower, which covers this record). */
static sp_chunk_watch *sp_kafka_in_watch(void *ctx, sp_chunk *c)
{
    sp_kafka_in_part *x = ctx;
    sp_kafka_in_ent *e = x->last;
    if (e && e->chunk == c && e->seq == c->seq && !e->fired) return NULL;
    sp_list *it;
    for (it = x->pending.prev; it != &x->pending; it = it->prev) {
        e = sp_list_entry(it, sp_kafka_in_ent, link);
        if (e->chunk == c && e->seq == c->seq && !e->fired) {
            x->last = e;
            return NULL;
        }
    }
    e = sp_calloc(1, sizeof *e);
    e->w.cb = sp_kafka_in_fired;
    e->part = x;
    e->k = x->k;
    e->chunk = c;
    e->seq = c->seq;
    e->first = x->cur;
    sp_list_insert_tail(&x->pending, &e->link);
    x->last = e;
    x->k->nent++;
    return &e->w;
}

/* The offset partition `x` may be committed up to: entries delivered at its head are dropped;
 * the oldest one left bounds it. -1: nothing consumed since it was assigned. */
static int64_t sp_kafka_in_committable(sp_kafka_in *k, sp_kafka_in_part *x)
{
    while (!sp_list_empty(&x->pending)) {
        sp_kafka_in_ent *e = sp_list_entry(x->pending.next, sp_kafka_in_ent, link);
        if (!e->fired || !e->delivered) return e->first;
        sp_kafka_in_ent_free(k, e);
    }
    return x->next;
}

/* The offsets to commit now, of assigned partitions (only revoking ones when `revoking_only`);
 * NULL when none moved. */
static rd_kafka_topic_partition_list_t *sp_kafka_in_collect(sp_kafka_in *k, int revoking_only)
{
    rd_kafka_topic_partition_list_t *l = NULL;
    sp_list *it;
    sp_list_foreach(it, &k->parts)
    {
        sp_kafka_in_part *x = sp_list_entry(it, sp_kafka_in_part, link);
        if (!x->assigned || (revoking_only && !x->revoking)) continue;
        int64_t off = sp_kafka_in_committable(k, x);
        if (off < 0 || off <= x->sent) continue;
        if (!l) l = rd_kafka_topic_partition_list_new(8);
        rd_kafka_topic_partition_list_add(l, x->topic, x->partition)->offset = off;
        x->sent = off;
    }
    return l;
}

/* Results of commits: from the consumer's queue (async commits) or a pool job (sync ones). */
static void sp_kafka_in_commit_result(sp_kafka_in *k, rd_kafka_resp_err_t err,
                                      const rd_kafka_topic_partition_list_t *l)
{
    for (int i = 0; l && i < l->cnt; i++) {
        const rd_kafka_topic_partition_t *t = &l->elems[i];
        sp_kafka_in_part *x = sp_kafka_in_part_get(k, t->topic, t->partition, 0);
        if (!x) continue;
        if (!err && !t->err) {
            if (t->offset > x->committed) x->committed = t->offset;
            k->committed++;
        } else {
            k->commit_errors++;
            sp_log_limited(&k->rl, SP_LOG_WARN, "input %s: committing %s[%d] at %lld failed: %s",
                           k->in->name, t->topic, (int)t->partition, (long long)t->offset,
                           rd_kafka_err2str(err ? err : t->err));
            if (x->sent == t->offset) x->sent = x->committed; /* again at the next interval */
        }
    }
}

static void sp_kafka_in_commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                  rd_kafka_topic_partition_list_t *l, void *opaque)
{
    sp_kafka_in *k = opaque;
    if (k->closing || err == RD_KAFKA_RESP_ERR__NO_OFFSET) return; /* pool thread: not ours */
    sp_kafka_in_commit_result(k, err, l);
}

static void sp_kafka_in_commit_timer(uv_timer_t *t)
{
    sp_kafka_in *k = t->data;
    if (k->closing || k->stopping) return;
    rd_kafka_topic_partition_list_t *l = sp_kafka_in_collect(k, 0);
    if (!l) return;
    rd_kafka_resp_err_t err = rd_kafka_commit(k->rk, l, 1);
    if (err) sp_kafka_in_commit_result(k, err, l);
    rd_kafka_topic_partition_list_destroy(l);
}

/* ---- pool jobs ---- */

enum { SP_KAFKA_IN_JOB_COMMITTED, SP_KAFKA_IN_JOB_REVOKE, SP_KAFKA_IN_JOB_CLOSE };

typedef struct sp_kafka_in_job_s {
    uv_work_t w;
    sp_kafka_in *k;
    int kind;
    rd_kafka_topic_partition_list_t *l; /* offsets to commit, or partitions to look up */
    rd_kafka_resp_err_t err;
    int tries;
} sp_kafka_in_job_t;

static void sp_kafka_in_job_run(uv_work_t *w)
{
    sp_kafka_in_job_t *j = w->data;
    sp_kafka_in *k = j->k;
    switch (j->kind) {
    case SP_KAFKA_IN_JOB_COMMITTED:
        j->err = rd_kafka_committed(k->rk, j->l, 10000);
        break;
    case SP_KAFKA_IN_JOB_REVOKE:
        if (j->l) j->err = rd_kafka_commit(k->rk, j->l, 0);
        break;
    case SP_KAFKA_IN_JOB_CLOSE:
        if (j->l) j->err = rd_kafka_commit(k->rk, j->l, 0);
        if (k->revoking) { /* a revoke waiting for our answer: give the partitions up first */
            if (k->revoke_coop)
                rd_kafka_incremental_unassign(k->rk, k->revoking);
            else
                rd_kafka_assign(k->rk, NULL);
        }
        rd_kafka_consumer_close(k->rk);
        rd_kafka_queue_destroy(k->q);
        rd_kafka_destroy(k->rk);
        break;
    }
}

static void sp_kafka_in_close_handles(sp_kafka_in *k);
static void sp_kafka_in_unassign_done(sp_kafka_in *k);
static void sp_kafka_in_job(sp_kafka_in *k, int kind, rd_kafka_topic_partition_list_t *l);

static void sp_kafka_in_job_done(uv_work_t *w, int status)
{
    sp_kafka_in_job_t *j = w->data;
    sp_kafka_in *k = j->k;
    k->works--;
    switch (j->kind) {
    case SP_KAFKA_IN_JOB_COMMITTED: {
        /* Known committed offsets make the lag and committed_offset metrics right before this
         * member commits anything itself. During a rebalance the coordinator may refuse: the
         * partitions still assigned with none are asked again (a few times). */
        rd_kafka_topic_partition_list_t *again = NULL;
        for (int i = 0; !k->closing && i < j->l->cnt; i++) {
            const rd_kafka_topic_partition_t *t = &j->l->elems[i];
            sp_kafka_in_part *x = sp_kafka_in_part_get(k, t->topic, t->partition, 0);
            if (!x || !x->assigned) continue;
            if (j->err || t->err) {
                if (x->committed < 0 && j->tries < 5) {
                    if (!again) again = rd_kafka_topic_partition_list_new(j->l->cnt);
                    rd_kafka_topic_partition_list_add(again, t->topic, t->partition);
                }
                continue;
            }
            if (t->offset < 0) continue;
            if (t->offset > x->committed) x->committed = t->offset;
            if (t->offset > x->sent) x->sent = t->offset;
        }
        if (again) {
            sp_kafka_in_job(k, SP_KAFKA_IN_JOB_COMMITTED, again);
            k->last_job->tries = j->tries + 1;
        }
        break;
    }
    case SP_KAFKA_IN_JOB_REVOKE:
        if (j->l) sp_kafka_in_commit_result(k, j->err, j->l);
        if (!k->closing) sp_kafka_in_unassign_done(k);
        break;
    case SP_KAFKA_IN_JOB_CLOSE:
        k->rk = NULL;
        if (j->l) sp_kafka_in_commit_result(k, j->err, j->l);
        if (k->revoking) rd_kafka_topic_partition_list_destroy(k->revoking);
        k->revoking = NULL;
        sp_kafka_in_close_handles(k);
        break;
    }
    if (j->l) rd_kafka_topic_partition_list_destroy(j->l);
    free(j);
    sp_kafka_in_maybe_free(k);
}

static void sp_kafka_in_job(sp_kafka_in *k, int kind, rd_kafka_topic_partition_list_t *l)
{
    sp_kafka_in_job_t *j = sp_calloc(1, sizeof *j);
    j->w.data = j;
    j->k = k;
    j->kind = kind;
    j->l = l;
    k->works++;
    k->last_job = j;
    uv_queue_work(k->in->loop, &j->w, sp_kafka_in_job_run, sp_kafka_in_job_done);
}

/* ---- rebalances ---- */

/* Entries of a partition given up are left to their watchers (freed when they fire). */
static void sp_kafka_in_orphan(sp_kafka_in *k, sp_kafka_in_part *x)
{
    while (!sp_list_empty(&x->pending)) {
        sp_kafka_in_ent *e = sp_list_entry(x->pending.next, sp_kafka_in_ent, link);
        sp_list_remove(&e->link);
        e->part = NULL;
        if (e->fired) {
            free(e);
            k->nent--;
        }
    }
    x->last = NULL;
    x->assigned = x->revoking = 0;
    x->next = x->sent = x->committed = -1;
}

/* The revoke's commit is done (or was not needed): give the partitions up. */
static void sp_kafka_in_unassign_done(sp_kafka_in *k)
{
    rd_kafka_topic_partition_list_t *l = k->revoking;
    if (!l) return;
    for (int i = 0; i < l->cnt; i++) {
        sp_kafka_in_part *x = sp_kafka_in_part_get(k, l->elems[i].topic, l->elems[i].partition, 0);
        if (x) sp_kafka_in_orphan(k, x);
    }
    rd_kafka_error_t *e = NULL;
    if (k->revoke_coop)
        e = rd_kafka_incremental_unassign(k->rk, l);
    else
        rd_kafka_assign(k->rk, NULL);
    if (e) rd_kafka_error_destroy(e);
    rd_kafka_topic_partition_list_destroy(l);
    k->revoking = NULL;
}

static int sp_kafka_in_inflight(sp_kafka_in *k, int revoking_only)
{
    sp_list *it, *ei;
    sp_list_foreach(it, &k->parts)
    {
        sp_kafka_in_part *x = sp_list_entry(it, sp_kafka_in_part, link);
        if (!x->assigned || (revoking_only && !x->revoking)) continue;
        sp_list_foreach(ei, &x->pending)
        {
            if (!sp_list_entry(ei, sp_kafka_in_ent, link)->fired) return 1;
        }
    }
    return 0;
}

static void sp_kafka_in_final(sp_kafka_in *k);

/* While a revoke (or stop) waits: once nothing of those partitions is in flight, or at the
 * deadline, commit what is delivered and go on. */
static void sp_kafka_in_drain_check(uv_timer_t *t)
{
    sp_kafka_in *k = t->data;
    int late = uv_now(k->in->loop) >= k->drain_deadline;
    if (k->stopping) {
        if (!late && sp_kafka_in_inflight(k, 0)) return;
        uv_timer_stop(t);
        sp_kafka_in_final(k);
        return;
    }
    if (!k->revoking) {
        uv_timer_stop(t);
        return;
    }
    if (!late && sp_kafka_in_inflight(k, 1)) return;
    uv_timer_stop(t);
    if (late)
        sp_warn("input %s: revoked partitions still had records in flight after %llu ms; they "
                "will be consumed again by their new owner",
                k->in->name, (unsigned long long)k->conf->revoke_timeout);
    sp_kafka_in_job(k, SP_KAFKA_IN_JOB_REVOKE, sp_kafka_in_collect(k, 1));
}

static void sp_kafka_in_set_paused(sp_kafka_in *k, rd_kafka_topic_partition_list_t *l, int pause)
{
    if (!l || !l->cnt) return;
    if (pause)
        rd_kafka_pause_partitions(k->rk, l);
    else
        rd_kafka_resume_partitions(k->rk, l);
}

static void sp_kafka_in_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                     rd_kafka_topic_partition_list_t *l, void *opaque)
{
    sp_kafka_in *k = opaque;
    int coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    if (k->closing) { /* from rd_kafka_consumer_close on the pool thread */
        if (err != RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
            if (coop) {
                rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, l);
                if (e) rd_kafka_error_destroy(e);
            } else {
                rd_kafka_assign(rk, NULL);
            }
        }
        return;
    }
    k->rebalances++;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        for (int i = 0; i < l->cnt; i++) {
            sp_kafka_in_part *x =
                sp_kafka_in_part_get(k, l->elems[i].topic, l->elems[i].partition, 1);
            x->assigned = 1;
            x->revoking = 0;
            x->next = x->sent = x->committed = -1;
        }
        sp_info("input %s: %d partition(s) assigned", k->in->name, l->cnt);
        if (coop) {
            rd_kafka_error_t *e = rd_kafka_incremental_assign(rk, l);
            if (e) rd_kafka_error_destroy(e);
        } else {
            rd_kafka_assign(rk, l);
        }
        /* A partition keeps librdkafka's pause across a revoke (ours, in it): set it anew. */
        sp_kafka_in_set_paused(k, l, k->paused || k->stopping);
        sp_kafka_in_job(k, SP_KAFKA_IN_JOB_COMMITTED, rd_kafka_topic_partition_list_copy(l));
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        sp_info("input %s: %d partition(s) revoked", k->in->name, l->cnt);
        for (int i = 0; i < l->cnt; i++) {
            sp_kafka_in_part *x =
                sp_kafka_in_part_get(k, l->elems[i].topic, l->elems[i].partition, 0);
            if (x && x->assigned) x->revoking = 1;
        }
        sp_kafka_in_set_paused(k, l, 1); /* nothing more is fetched for them */
        if (k->revoking) rd_kafka_topic_partition_list_destroy(k->revoking);
        k->revoking = rd_kafka_topic_partition_list_copy(l);
        k->revoke_coop = coop;
        if (!k->stopping) {
            k->drain_deadline = uv_now(k->in->loop) + k->conf->revoke_timeout;
            uv_timer_start(&k->drain_timer, sp_kafka_in_drain_check, 0, 20);
        }
    } else {
        sp_warn("input %s: rebalance error: %s", k->in->name, rd_kafka_err2str(err));
        rd_kafka_assign(rk, NULL);
    }
}

/* ---- messages ---- */

static void sp_kafka_in_id(const rd_kafka_message_t *m, sp_kafka_in_part *x, uint8_t id[16])
{
    rd_kafka_headers_t *h = NULL;
    const void *v;
    size_t n;
    if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        rd_kafka_header_get_last(h, "shipper-id", &v, &n) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        sp_kafka_in_hexid(v, n, id) == 0)
        return;
    /* No id came with it: where it is in Kafka, so its new owner gives it the same one. */
    char key[300];
    int kl =
        snprintf(key, sizeof key, "%s/%d/%lld", x->topic, (int)x->partition, (long long)m->offset);
    sp_hash128(key, (size_t)(kl < (int)sizeof key ? kl : (int)sizeof key - 1), 0x6b61666b61ULL, id);
}

static void sp_kafka_in_message(sp_kafka_in *k, rd_kafka_message_t *m)
{
    if (m->err) {
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) return;
        k->errors++;
        sp_input_error(k->in, "consume");
        sp_log_limited(&k->rl, SP_LOG_WARN, "input %s: %s", k->in->name,
                       rd_kafka_message_errstr(m));
        return;
    }
    sp_kafka_in_part *x = sp_kafka_in_part_get(k, rd_kafka_topic_name(m->rkt), m->partition, 0);
    if (!x || !x->assigned || x->revoking) return; /* its new owner consumes it */
    k->consumed++;
    k->in->bytes += m->len;
    sp_record r;
    sp_slice tag = {0};
    if (sp_kafka_in_decode(k->conf->format, m->payload, m->len, &k->scratch, &r, &tag) ==
        SP_KAFKA_IN_INVALID) {
        k->invalid++;
        sp_input_error(k->in, "invalid_json");
        sp_log_limited(&k->rl, SP_LOG_WARN,
                       "input %s: %s[%d] offset %lld is not a JSON document; shipped as raw "
                       "message (kafka_invalid_json)",
                       k->in->name, x->topic, (int)x->partition, (long long)m->offset);
    }
    if (r.prec == 0xff) { /* the message's timestamp, else now */
        int64_t ms = rd_kafka_message_timestamp(m, NULL);
        if (ms < 0) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        }
        r.sec = (uint64_t)(ms / 1000);
        r.nsec = (uint32_t)(ms % 1000) * 1000000;
        r.prec = 3;
    }
    if (r.sec > SP_TIME_MAX_SEC) r.sec = SP_TIME_MAX_SEC;
    sp_kafka_in_id(m, x, r.id);
    if (!tag.len) tag = sp_slice_make(x->tag, x->tag_len);
    x->cur = m->offset;
    sp_input_append(k->in, tag, &r, sp_kafka_in_watch, x);
    x->next = m->offset + 1;
}

static void sp_kafka_in_drain(sp_kafka_in *k);

static void sp_kafka_in_more_cb(uv_idle_t *h)
{
    sp_kafka_in_drain(h->data);
}

static void sp_kafka_in_drain(sp_kafka_in *k)
{
    if (k->closing || !k->rk) return;
    rd_kafka_message_t *msgs[SP_KAFKA_IN_BATCH];
    size_t budget = SP_KAFKA_IN_BUDGET;
    ssize_t n = 0;
    while (budget > 0) {
        n = rd_kafka_consume_batch_queue(k->q, 0, msgs, SP_KAFKA_IN_BATCH);
        if (n <= 0) break;
        for (ssize_t i = 0; i < n; i++) {
            if (!k->stopping) sp_kafka_in_message(k, msgs[i]);
            rd_kafka_message_destroy(msgs[i]);
        }
        budget = (size_t)n < budget ? budget - (size_t)n : 0;
    }
    if (budget == 0 && !k->stopping)
        uv_idle_start(&k->more, sp_kafka_in_more_cb); /* the rest after other handles ran */
    else
        uv_idle_stop(&k->more);
}

static void sp_kafka_in_poll_cb(uv_poll_t *h, int status, int events)
{
    sp_kafka_in *k = h->data;
    char buf[256];
    while (read(k->pipefd[0], buf, sizeof buf) > 0)
        ;
    sp_kafka_in_drain(k);
}

/* ---- start, pause, stop ---- */

static rd_kafka_conf_t *sp_kafka_in_conf_build(const sp_kafka_in_conf *c, char *errstr,
                                               size_t errlen, const char **bad)
{
    rd_kafka_conf_t *rc = rd_kafka_conf_new();
    const char *ours[][2] = {
        {"bootstrap.servers", c->brokers},
        {"group.id", c->group_id},
        {"enable.auto.commit", "false"},       /* offsets are committed by us, explicitly */
        {"enable.auto.offset.store", "false"}, /* ... and only past delivered records */
        {"auto.offset.reset", "earliest"},     /* a partition never committed: from its start */
        {"queued.max.messages.kbytes", "16384"},
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
    char errstr[512];
    const char *bad;
    rd_kafka_conf_t *rc = sp_kafka_in_conf_build(c, errstr, sizeof errstr, &bad);
    if (!rc) {
        f = sp_node_get(n, "properties");
        sp_conf_error(err, f ? f->line : n->line, bad ? "properties" : "brokers", "%s%s%s",
                      bad ? bad : "", bad ? ": " : "", errstr);
        return -1;
    }
    rd_kafka_conf_destroy(rc);
    return 0;
}

static int sp_kafka_in_start(sp_input *in)
{
    const sp_kafka_in_conf *c = in->conf;
    sp_kafka_in *k = sp_calloc(1, sizeof *k);
    k->in = in;
    k->conf = c;
    k->pipefd[0] = k->pipefd[1] = -1;
    sp_list_init(&k->parts);
    char errstr[512];
    const char *bad;
    rd_kafka_conf_t *rc = sp_kafka_in_conf_build(c, errstr, sizeof errstr, &bad);
    if (!rc) {
        sp_error("input %s: %s: %s", in->name, bad ? bad : "configuration", errstr);
        sp_kafka_in_free(k);
        return -EINVAL;
    }
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
    rd_kafka_poll_set_consumer(k->rk); /* rebalances, errors, commit results: one queue */
    k->q = rd_kafka_queue_get_consumer(k->rk);
    if (pipe2(k->pipefd, O_NONBLOCK | O_CLOEXEC) != 0) {
        int e = errno;
        rd_kafka_queue_destroy(k->q);
        rd_kafka_destroy(k->rk);
        sp_kafka_in_free(k);
        return -e;
    }
    rd_kafka_queue_io_event_enable(k->q, k->pipefd[1], "1", 1);
    uv_poll_init(in->loop, &k->poll, k->pipefd[0]);
    uv_idle_init(in->loop, &k->more);
    uv_timer_init(in->loop, &k->commit_timer);
    uv_timer_init(in->loop, &k->drain_timer);
    k->poll.data = k->more.data = k->commit_timer.data = k->drain_timer.data = k;
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

/* The assigned partitions that may fetch (not being revoked). */
static rd_kafka_topic_partition_list_t *sp_kafka_in_fetching(sp_kafka_in *k)
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

static void sp_kafka_in_pause(sp_input *in)
{
    sp_kafka_in *k = in->data;
    if (!k || k->paused || k->closing) return;
    k->paused = 1;
    k->pauses++;
    rd_kafka_topic_partition_list_t *l = sp_kafka_in_fetching(k);
    sp_kafka_in_set_paused(k, l, 1);
    rd_kafka_topic_partition_list_destroy(l);
}

static void sp_kafka_in_resume(sp_input *in)
{
    sp_kafka_in *k = in->data;
    if (!k || !k->paused || k->closing) return;
    k->paused = 0;
    if (k->stopping) return;
    rd_kafka_topic_partition_list_t *l = sp_kafka_in_fetching(k);
    sp_kafka_in_set_paused(k, l, 0);
    rd_kafka_topic_partition_list_destroy(l);
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

static void sp_kafka_in_close_handles(sp_kafka_in *k)
{
    /* Entries still in chunks are freed by their watchers. */
    sp_list *it;
    sp_list_foreach(it, &k->parts) sp_kafka_in_orphan(k, sp_list_entry(it, sp_kafka_in_part, link));
    k->handles = 4;
    uv_close((uv_handle_t *)&k->poll, sp_kafka_in_handle_closed);
    uv_close((uv_handle_t *)&k->more, sp_kafka_in_handle_closed);
    uv_close((uv_handle_t *)&k->commit_timer, sp_kafka_in_handle_closed);
    uv_close((uv_handle_t *)&k->drain_timer, sp_kafka_in_handle_closed);
    close(k->pipefd[0]);
    close(k->pipefd[1]);
}

/* Stopping, once in-flight records are delivered (or revoke_timeout passed): commit what is
 * delivered, leave the group and close, on the thread pool (these calls block). */
static void sp_kafka_in_final(sp_kafka_in *k)
{
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
    sp_buf_printf(out, "shipper_kafka_input_consumed_total{input=\"%s\"} %llu\n", n,
                  (unsigned long long)k->consumed);
    sp_buf_printf(out, "shipper_kafka_input_committed_total{input=\"%s\"} %llu\n", n,
                  (unsigned long long)k->committed);
    sp_buf_printf(out, "shipper_kafka_input_commit_errors_total{input=\"%s\"} %llu\n", n,
                  (unsigned long long)k->commit_errors);
    sp_buf_printf(out, "shipper_kafka_input_rebalances_total{input=\"%s\"} %llu\n", n,
                  (unsigned long long)k->rebalances);
    sp_buf_printf(out, "shipper_kafka_input_invalid_total{input=\"%s\"} %llu\n", n,
                  (unsigned long long)k->invalid);
    sp_buf_printf(out, "shipper_kafka_input_pauses_total{input=\"%s\"} %llu\n", n,
                  (unsigned long long)k->pauses);
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
