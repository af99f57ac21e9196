/*
 * The kafka input's consumer (docs/kafka_input.md): rebalances (assign, revoke
 * once in-flight records are delivered) and messages, taken from the consumer's queue in
 * batches and appended as records. The design is in kafka_in.c's opening comment.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kafka_in_int.h"
#include "mp.h"

/* ---- rebalances ---- */

/* Entries of a partition given up are left to their watchers (freed when they fire). */
void sp_kafka_in_orphan(sp_kafka_in *k, sp_kafka_in_part *x)
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
    sp_kafka_in_hold_orphan(x); /* a group emitted later is consumed again by the next owner */
    x->assigned = x->revoking = 0;
    x->next = x->sent = x->committed = -1;
}

/* The revoke's commit is done (or was not needed): give the partitions up. */
void sp_kafka_in_unassign_done(sp_kafka_in *k)
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
        if (!sp_list_empty(&x->held)) return 1; /* a group still held: until flush_timeout */
        sp_list_foreach(ei, &x->pending)
        {
            if (!sp_list_entry(ei, sp_kafka_in_ent, link)->fired) return 1;
        }
    }
    return 0;
}

/* While a revoke (or stop) waits: once nothing of those partitions is in flight, or at the
 * deadline, commit what is delivered and go on. */
void sp_kafka_in_drain_check(uv_timer_t *t)
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

void sp_kafka_in_set_paused(sp_kafka_in *k, rd_kafka_topic_partition_list_t *l, int pause)
{
    if (!l || !l->cnt) return;
    if (pause)
        rd_kafka_pause_partitions(k->rk, l);
    else
        rd_kafka_resume_partitions(k->rk, l);
}

/* Whether the group rebalances cooperatively (incremental assign and unassign). librdkafka
 * answers NULL once the group is being left (a revoke served by rd_kafka_consumer_close at
 * stop): then the last answer seen on the loop holds (eager before any). */
static int sp_kafka_in_coop(sp_kafka_in *k, rd_kafka_t *rk)
{
    const char *p = rd_kafka_rebalance_protocol(rk);
    if (!p) return k->coop;
    int coop = strcmp(p, "COOPERATIVE") == 0;
    if (!k->closing) k->coop = coop; /* closing: a pool thread; the loop reads it no more */
    return coop;
}

void sp_kafka_in_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                              rd_kafka_topic_partition_list_t *l, void *opaque)
{
    sp_kafka_in *k = opaque;
    int coop = sp_kafka_in_coop(k, rk);
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
        sp_kafka_in_set_paused(k, l, k->fetch_paused || k->stopping);
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
    k->in->hold = &x->hold; /* a filter holding the record keeps the commit before it */
    sp_input_append(k->in, tag, &r, sp_kafka_in_watch, x);
    k->in->hold = NULL;
    x->next = m->offset + 1;
}

static void sp_kafka_in_more_cb(uv_idle_t *h)
{
    sp_kafka_in_drain(h->data);
}

void sp_kafka_in_drain(sp_kafka_in *k)
{
    if (k->closing || !k->rk) return;
    if (k->paused && !k->fetch_paused && !k->stopping) return; /* backpressure: take nothing */
    rd_kafka_message_t *msgs[SP_KAFKA_IN_BATCH];
    size_t budget = SP_KAFKA_IN_BUDGET;
    ssize_t n = 0;
    while (budget > 0) {
        n = rd_kafka_consume_batch_queue(k->q, 0, msgs, SP_KAFKA_IN_BATCH);
        if (n <= 0) break;
        for (ssize_t i = 0; i < n; i++) {
            k->drained_bytes += msgs[i]->len + msgs[i]->key_len;
            if (!k->stopping) sp_kafka_in_message(k, msgs[i]);
            rd_kafka_message_destroy(msgs[i]);
        }
        k->drained_msgs += (uint64_t)n;
        budget = (size_t)n < budget ? budget - (size_t)n : 0;
    }
    if (n == 0) { /* empty: was it full enough to stop fetching? (docs/kafka_input.md) */
        if ((k->wake_bytes && k->drained_bytes >= k->wake_bytes) ||
            (k->wake_msgs && k->drained_msgs >= k->wake_msgs))
            sp_kafka_in_wake(k); /* forgets the counts once a job runs */
        else
            k->drained_bytes = k->drained_msgs = 0;
    }
    if (budget == 0 && !k->stopping)
        uv_idle_start(&k->more, sp_kafka_in_more_cb); /* the rest after other handles ran */
    else
        uv_idle_stop(&k->more);
}

void sp_kafka_in_poll_cb(uv_poll_t *h, int status, int events)
{
    sp_kafka_in *k = h->data;
    char buf[256];
    while (read(k->pipefd[0], buf, sizeof buf) > 0)
        ;
    sp_kafka_in_drain(k);
}
