/*
 * The kafka input's offsets (docs/kafka_input.md): entries (the records of one partition in one
 * chunk) and their watchers, records a filter holds (sp_hold), what may be committed, commits
 * and their results, and the blocking calls run on the thread pool (commits before a revoke,
 * fetching committed offsets, closing). The design is in kafka_in.c's opening comment.
 */
#include <stdlib.h>

#include "kafka_in_int.h"

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

/* The entry of partition x on chunk c (not released yet), or NULL. */
static sp_kafka_in_ent *sp_kafka_in_ent_on(sp_kafka_in_part *x, sp_chunk *c)
{
    sp_kafka_in_ent *e = x->last;
    if (e && e->chunk == c && e->seq == c->seq && !e->fired) return e;
    sp_list *it;
    for (it = x->pending.prev; it != &x->pending; it = it->prev) {
        e = sp_list_entry(it, sp_kafka_in_ent, link);
        if (e->chunk == c && e->seq == c->seq && !e->fired) return x->last = e;
    }
    return NULL;
}

/* Puts e into x->pending in the order of first offsets (looked for from the tail, where a new
 * record's entry goes; a held group's may go further back). */
static void sp_kafka_in_ent_place(sp_kafka_in_part *x, sp_kafka_in_ent *e)
{
    sp_list *at = x->pending.prev;
    while (at != &x->pending && sp_list_entry(at, sp_kafka_in_ent, link)->first > e->first)
        at = at->prev;
    sp_list_insert_head(at, &e->link);
}

static sp_kafka_in_ent *sp_kafka_in_ent_new(sp_kafka_in_part *x, sp_chunk *c, int64_t first)
{
    sp_kafka_in_ent *e = sp_calloc(1, sizeof *e);
    e->w.cb = sp_kafka_in_fired;
    e->part = x;
    e->k = x->k;
    e->chunk = c;
    e->seq = c->seq;
    e->first = first;
    sp_kafka_in_ent_place(x, e);
    x->last = e;
    x->k->nent++;
    return e;
}

/* The watcher for the record at part->cur in chunk `c`: none when an entry of this partition
 * is on `c` already (its first offset is lower, which covers this record). */
sp_chunk_watch *sp_kafka_in_watch(void *ctx, sp_chunk *c)
{
    sp_kafka_in_part *x = ctx;
    if (sp_kafka_in_ent_on(x, c)) return NULL;
    return &sp_kafka_in_ent_new(x, c, x->cur)->w;
}

/* ---- records a filter holds (multiline; docs/architecture.md, "Acks and watchers") ---- */

/* One held record is done (in a chunk, dropped, or its partition given up): reused later. */
static void sp_kafka_in_held_put(sp_kafka_in_held *t)
{
    sp_kafka_in *k = t->k;
    sp_list_remove(&t->link);
    t->part = NULL;
    sp_list_insert_head(&k->held_free, &t->link);
    k->nheld--;
}

/* The group holding the record went into chunk c (not committed yet): the partition's entry on
 * c covers the record's offset from now on (created, or its first offset lowered), so the
 * commit passes it only once c is delivered. */
static sp_chunk_watch *sp_kafka_in_held_emitted(sp_hold *h, sp_chunk *c)
{
    sp_kafka_in_held *t = (sp_kafka_in_held *)h;
    sp_kafka_in_part *x = t->part;
    int64_t off = t->off;
    sp_kafka_in *k = t->k;
    sp_kafka_in_held_put(t);
    sp_chunk_watch *w = NULL;
    if (x) {
        sp_kafka_in_ent *e = sp_kafka_in_ent_on(x, c);
        if (!e) {
            w = &sp_kafka_in_ent_new(x, c, off)->w;
        } else if (off < e->first) {
            sp_list_remove(&e->link);
            e->first = off;
            sp_kafka_in_ent_place(x, e);
        }
    }
    if (!w) sp_kafka_in_maybe_free(k); /* stopped meanwhile: this may be the last reference */
    return w;
}

/* The group never reaches a chunk (a later filter dropped it; or the filter was freed holding
 * it, which never happens while running): the offset may move, as for a dropped record. */
static void sp_kafka_in_held_dropped(sp_hold *h, int delivered)
{
    sp_kafka_in *k = ((sp_kafka_in_held *)h)->k;
    sp_kafka_in_held_put((sp_kafka_in_held *)h);
    sp_kafka_in_maybe_free(k);
}

/* x->hold's take: a filter holds the record at x->cur; its offset bounds the commit. */
static sp_hold *sp_kafka_in_hold_take(sp_hold *h)
{
    sp_kafka_in_part *x = sp_list_entry(h, sp_kafka_in_part, hold);
    sp_kafka_in *k = x->k;
    sp_kafka_in_held *t;
    if (!sp_list_empty(&k->held_free)) {
        t = sp_list_entry(k->held_free.next, sp_kafka_in_held, link);
        sp_list_remove(&t->link);
    } else {
        t = sp_calloc(1, sizeof *t);
        t->h.emitted = sp_kafka_in_held_emitted;
        t->h.dropped = sp_kafka_in_held_dropped;
        t->k = k;
    }
    t->part = x;
    t->off = x->cur;
    sp_list *at = x->held.prev; /* offset order: the tail but after a seek */
    while (at != &x->held && sp_list_entry(at, sp_kafka_in_held, link)->off > t->off)
        at = at->prev;
    sp_list_insert_head(at, &t->link);
    k->nheld++;
    return &t->h;
}

void sp_kafka_in_hold_init(sp_kafka_in_part *x)
{
    x->hold.take = sp_kafka_in_hold_take;
    sp_list_init(&x->held);
}

void sp_kafka_in_hold_orphan(sp_kafka_in_part *x)
{
    while (!sp_list_empty(&x->held)) {
        sp_kafka_in_held *t = sp_list_entry(x->held.next, sp_kafka_in_held, link);
        sp_list_remove(&t->link);
        t->part = NULL;
    }
}

void sp_kafka_in_hold_free(sp_kafka_in *k)
{
    while (!sp_list_empty(&k->held_free)) {
        sp_list *it = k->held_free.next;
        sp_list_remove(it);
        free(sp_list_entry(it, sp_kafka_in_held, link));
    }
}

/* The offset partition `x` may be committed up to: entries delivered at its head are dropped;
 * the oldest one left bounds it, and so does the oldest record a filter holds. -1: nothing
 * consumed since it was assigned. */
static int64_t sp_kafka_in_committable(sp_kafka_in *k, sp_kafka_in_part *x)
{
    int64_t off = x->next;
    while (!sp_list_empty(&x->pending)) {
        sp_kafka_in_ent *e = sp_list_entry(x->pending.next, sp_kafka_in_ent, link);
        if (!e->fired || !e->delivered) {
            off = e->first;
            break;
        }
        sp_kafka_in_ent_free(k, e);
    }
    if (!sp_list_empty(&x->held)) {
        int64_t h = sp_list_entry(x->held.next, sp_kafka_in_held, link)->off;
        if (off < 0 || h < off) off = h;
    }
    return off;
}

/* The offsets to commit now, of assigned partitions (only revoking ones when `revoking_only`);
 * NULL when none moved. */
rd_kafka_topic_partition_list_t *sp_kafka_in_collect(sp_kafka_in *k, int revoking_only)
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

void sp_kafka_in_commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                           rd_kafka_topic_partition_list_t *l, void *opaque)
{
    sp_kafka_in *k = opaque;
    if (k->closing || err == RD_KAFKA_RESP_ERR__NO_OFFSET) return; /* pool thread: not ours */
    sp_kafka_in_commit_result(k, err, l);
}

void sp_kafka_in_commit_timer(uv_timer_t *t)
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

/* A wake job waits this long at most for the answers, which do not matter: sending the requests
 * is what wakes the broker threads, and an answer may queue behind a fetch that the broker holds
 * for fetch.wait.max.ms (a wake job running that long kept the next wake from starting). */
#define SP_KAFKA_IN_WAKE_TIMEOUT_MS 20

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
    case SP_KAFKA_IN_JOB_WAKE:
        /* One ListOffsets request to each leader (timestamp -1: the end offset); the answer
         * does not matter, the request is what wakes that broker's thread. */
        j->err = rd_kafka_offsets_for_times(k->rk, j->l, SP_KAFKA_IN_WAKE_TIMEOUT_MS);
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
    case SP_KAFKA_IN_JOB_WAKE:
        k->waking = 0;
        if (k->wake_again) sp_kafka_in_wake(k); /* a full queue was drained meanwhile */
        break;
    case SP_KAFKA_IN_JOB_CLOSE:
        k->rk = NULL;
        sp_input_hold(k->in, -k->reserved); /* the prefetch queue is gone with the consumer */
        k->reserved = 0;
        if (j->l) sp_kafka_in_commit_result(k, j->err, j->l);
        if (k->revoking) rd_kafka_topic_partition_list_destroy(k->revoking);
        k->revoking = NULL;
        sp_kafka_in_close_handles(k);
        break;
    }
    if (j->l) rd_kafka_topic_partition_list_destroy(j->l);
    free(j);
    if (k->close_wanted && !k->works) sp_kafka_in_final(k); /* the last job before CLOSE */
    sp_kafka_in_maybe_free(k);
}

void sp_kafka_in_wake(sp_kafka_in *k)
{
    if (k->paused || k->stopping || k->closing || k->close_wanted) return;
    k->wake_again = k->waking; /* one job at a time: the next one when this one is done */
    if (k->waking) return;
    rd_kafka_topic_partition_list_t *l = sp_kafka_in_fetching(k);
    if (!l->cnt) {
        rd_kafka_topic_partition_list_destroy(l);
        return;
    }
    for (int i = 0; i < l->cnt; i++)
        l->elems[i].offset = RD_KAFKA_OFFSET_END; /* the timestamp asked: latest */
    k->drained_bytes = k->drained_msgs = 0;
    k->waking = 1;
    k->wakes++;
    sp_kafka_in_job(k, SP_KAFKA_IN_JOB_WAKE, l);
}

void sp_kafka_in_job(sp_kafka_in *k, int kind, rd_kafka_topic_partition_list_t *l)
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
