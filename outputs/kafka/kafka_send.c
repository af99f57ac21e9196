/*
 * The kafka output's producing (the design is in kafka.c's opening comment): deliveries encoded
 * on the thread pool, produced in arrival order under the memory budget (docs/architecture.md,
 * "Who owns what"), their delivery reports, and retryable failures produced again after a
 * backoff. The producer's lifecycle is in kafka.c.
 */
#include <errno.h>
#include <stdlib.h>

#include "document.h"
#include "kafka.h"

/* Deliveries and kept buffers count what they hold; deliveries in progress draw first on a
 * reserve counted ahead (SP_KAFKA_MEMORY_FLOOR), so what they may take past a full buffer is
 * inside memory_limit. One sp_output_hold per change: a move between a delivery and a kept
 * buffer never crosses the pause or resume mark on the way. */
void sp_kafka_account(sp_kafka *k, size_t *del_held, size_t del_now, size_t *spare_held,
                      size_t spare_now)
{
    int64_t delta = 0;
    if (del_held) {
        delta += (int64_t)del_now - (int64_t)*del_held;
        k->dels_held = k->dels_held - *del_held + del_now;
        *del_held = del_now;
    }
    if (spare_held) {
        delta += (int64_t)spare_now - (int64_t)*spare_held;
        *spare_held = spare_now;
    }
    size_t reserve = k->reserve_cap > k->dels_held ? k->reserve_cap - k->dels_held : 0;
    delta += (int64_t)reserve - (int64_t)k->reserve;
    k->reserve = reserve;
    if (delta) sp_output_hold(k->o, delta);
}

void sp_kafka_hold(sp_kafka *k, sp_kdel *kd, size_t now)
{
    sp_kafka_account(k, &kd->held, now, NULL, 0);
}

/* A delivery's memory once encoded: its documents, its messages, and librdkafka's part of them
 * (SP_KAFKA_MSG_COST each plus a copy of the values while they are in produce requests). */
static size_t sp_kafka_footprint(const sp_kdel *kd, size_t doc_cap, size_t doc_len, uint32_t n)
{
    uint32_t m = kd->msgs_cap > n ? kd->msgs_cap : n;
    return doc_cap + (size_t)m * sizeof(sp_kmsg) + (size_t)n * SP_KAFKA_MSG_COST + doc_len;
}

/* ---- encoding (thread pool) ---- */

/* The record's id as the `shipper-id` header's 32 hex digits: made here, on the pool, so the
 * loop thread only hands them to librdkafka. */
static void sp_kafka_id_hex(char out[32], const uint8_t id[16])
{
    static const char hexd[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hexd[id[i] >> 4];
        out[2 * i + 1] = hexd[id[i] & 15];
    }
}

/* A delivery's buffers, allocated on the loop thread before its encoding is queued: in the main
 * heap, not in the heap of whichever pool thread encodes it. Each of those heaps kept up to
 * glibc's trim threshold of freed buffers, uncounted: peak RSS at the default memory_limit went
 * about 15 MiB past what was counted (docs/architecture.md, "Who owns what"). */
static void sp_kafka_alloc(sp_kdel *kd, size_t need)
{
    const sp_delivery *d = kd->d;
    if (kd->msgs_cap < d->nrecords) {
        free(kd->msgs);
        kd->msgs_cap = d->nrecords;
        kd->msgs = sp_malloc((size_t)kd->msgs_cap * sizeof *kd->msgs);
    }
    if (kd->buf.cap < need) {
        sp_buf_free(&kd->buf);
        kd->buf.base = sp_malloc(need);
        kd->buf.cap = need;
    }
}

/* A document is about 1.3 times its MessagePack record: one allocation of just that much (not
 * rounded up to a power of two: the buffer is counted against memory_limit), rarely a second. */
static size_t sp_kafka_need(const sp_delivery *d)
{
    return d->bytes * 3 / 2 + 4096;
}

static void sp_kafka_encode(uv_work_t *w)
{
    sp_kdel *kd = w->data;
    const sp_kafka *k = kd->k;
    const sp_delivery *d = kd->d;
    uint32_t n = 0;
    for (uint32_t i = 0; i < d->nchunks; i++) {
        const sp_chunk *c = d->chunks[i];
        sp_slice tag = sp_slice_make(c->tag, c->tag_len);
        const uint8_t *p = SP_CHUNK_BEGIN(c), *end = SP_CHUNK_END(c);
        while (p < end && n < d->nrecords) {
            sp_record r;
            if (sp_record_read(&p, end, &r)) break; /* chunks are written by us: cannot happen */
            sp_kmsg *m = &kd->msgs[n++];
            m->del = kd;
            m->voff = (uint32_t)kd->buf.len;
            sp_document_record(&kd->buf, &r, tag);
            m->vlen = (uint32_t)(kd->buf.len - m->voff);
            uint64_t sec = r.sec < SP_TIME_MAX_SEC ? r.sec : SP_TIME_MAX_SEC; /* inputs clamp */
            m->ts_ms = (int64_t)(sec * 1000 + r.nsec / 1000000);
            sp_kafka_id_hex(m->idhex, r.id);
            sp_slice key = sp_kafka_field_get(&k->keyf, &r, tag);
            m->key = key.base;
            m->klen = (uint32_t)key.len;
            sp_slice t = sp_kafka_field_get(&k->topicf, &r, tag);
            m->tname = t.len ? t.base : NULL;
            m->tlen = (uint32_t)t.len;
            m->state = SP_KM_PENDING;
            m->dead = 0;
        }
    }
    kd->n = n;
}

/* ---- producing ---- */

static int sp_kafka_permanent(rd_kafka_resp_err_t e)
{
    switch (e) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
        return 1;
    default:
        return 0;
    }
}

static void sp_kafka_retry_cb(uv_timer_t *t)
{
    sp_kafka *k = t->data;
    k->retry_due = 1;
    sp_kafka_pump(k);
}

static void sp_kafka_arm_retry(sp_kafka *k)
{
    if (uv_is_active((uv_handle_t *)&k->retry_timer)) return;
    uint64_t min = k->conf->retry_backoff ? k->conf->retry_backoff : 1;
    uint64_t max = k->o->retry_max_ms > min ? k->o->retry_max_ms : min;
    uv_timer_start(&k->retry_timer, sp_kafka_retry_cb, sp_backoff_ms(++k->retry_attempt, min, max),
                   0);
}

static const char *sp_kafka_topic_name(const sp_kafka *k, const sp_kmsg *m, char *buf, size_t size)
{
    if (m->dead) return k->conf->dead_letter_topic;
    if (!m->tname) return k->conf->topic;
    size_t n = m->tlen < size - 1 ? m->tlen : size - 1;
    memcpy(buf, m->tname, n);
    buf[n] = 0;
    return buf;
}

/* A message failed (at produce time or in its report): retry it later, or reject it. */
static void sp_kafka_failed(sp_kafka *k, sp_kdel *kd, sp_kmsg *m, rd_kafka_resp_err_t err)
{
    char tbuf[256];
    sp_kafka_count_failure(k, err);
    int permanent = sp_kafka_permanent(err);
    if (permanent) {
        sp_out_log_limited(k->o, &k->rl_reject, SP_LOG_WARN, "topic %s refused a record: %s%s",
                           sp_kafka_topic_name(k, m, tbuf, sizeof tbuf), rd_kafka_err2str(err),
                           k->dlt && !m->dead ? " (sent to the dead-letter topic)" : "");
        if (!k->dlt || m->dead) {
            m->state = SP_KM_REJECTED;
            kd->rejected++;
            return;
        }
        m->dead = 1;
    } else {
        sp_out_log_limited(k->o, &k->rl_retry, SP_LOG_WARN,
                           "producing to %s failed: %s; will produce it again",
                           sp_kafka_topic_name(k, m, tbuf, sizeof tbuf), rd_kafka_err2str(err));
    }
    m->state = SP_KM_RETRY;
    kd->retry++;
    k->retry_msgs++;
    k->requeued++;
    if (permanent)
        k->retry_due = 1; /* to the dead-letter topic: at once, no backoff */
    else
        sp_kafka_arm_retry(k);
}

/* The topic handle of a message: the static one, the dead-letter one, or one named by a record
 * field (a small cache of the recent ones; a chunk's records usually share one). */
static rd_kafka_topic_t *sp_kafka_topic(sp_kafka *k, const sp_kmsg *m)
{
    if (m->dead) return k->dlt;
    if (!m->tname) return k->rkt;
    int i = k->topic_last;
    if (i < k->ntopics && k->topics[i].len == m->tlen &&
        memcmp(k->topics[i].name, m->tname, m->tlen) == 0)
        return k->topics[i].rkt;
    for (i = 0; i < k->ntopics; i++)
        if (k->topics[i].len == m->tlen && memcmp(k->topics[i].name, m->tname, m->tlen) == 0) {
            k->topic_last = i;
            return k->topics[i].rkt;
        }
    if (m->tlen > 249 || memchr(m->tname, 0, m->tlen)) return NULL; /* Kafka's name limit */
    char name[256];
    memcpy(name, m->tname, m->tlen);
    name[m->tlen] = 0;
    rd_kafka_topic_t *t = rd_kafka_topic_new(k->rk, name, NULL);
    if (!t) return NULL;
    if (k->ntopics < SP_KAFKA_TOPICS) {
        i = k->ntopics++;
    } else { /* messages hold their own reference: dropping ours is safe */
        i = k->topic_next++ % SP_KAFKA_TOPICS;
        rd_kafka_topic_destroy(k->topics[i].rkt);
        free(k->topics[i].name);
    }
    k->topics[i].name = sp_strndup(name, m->tlen);
    k->topics[i].len = m->tlen;
    k->topics[i].rkt = t;
    k->topic_last = i;
    return t;
}

/* Produces one message; only QUEUE_FULL is returned (the caller stops), every other failure is
 * handled here. */
static rd_kafka_resp_err_t sp_kafka_produce_one(sp_kafka *k, sp_kdel *kd, sp_kmsg *m)
{
    rd_kafka_topic_t *rkt = sp_kafka_topic(k, m);
    void *value = kd->buf.base + m->voff;
    rd_kafka_resp_err_t err;
    /* The record's id travels in the header `shipper-id` (hex): the kafka input restores it,
     * so Elasticsearch gets the same _id by either path (docs/kafka.md). */
    const char *hex = m->idhex;
    if (!rkt) {
        err = RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION;
    } else if (k->headers) {
        /* librdkafka takes ownership of a message's headers: each message needs its copy. */
        rd_kafka_headers_t *h = rd_kafka_headers_copy(k->headers);
        rd_kafka_header_add(h, "shipper-id", 10, hex, sizeof m->idhex);
        err = rd_kafka_producev(k->rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_VALUE(value, m->vlen),
                                RD_KAFKA_V_KEY(m->key, m->klen), RD_KAFKA_V_OPAQUE(m),
                                RD_KAFKA_V_TIMESTAMP(m->ts_ms), RD_KAFKA_V_HEADERS(h),
                                RD_KAFKA_V_END);
        if (err) rd_kafka_headers_destroy(h);
    } else {
        err = rd_kafka_producev(
            k->rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_VALUE(value, m->vlen),
            RD_KAFKA_V_KEY(m->key, m->klen), RD_KAFKA_V_OPAQUE(m), RD_KAFKA_V_TIMESTAMP(m->ts_ms),
            RD_KAFKA_V_HEADER("shipper-id", hex, (ssize_t)sizeof m->idhex), RD_KAFKA_V_END);
    }
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        m->state = SP_KM_INFLIGHT;
        kd->inflight++;
        k->inflight_msgs++;
        k->produced++;
        return 0;
    }
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        k->queue_full++;
        return err;
    }
    sp_kafka_failed(k, kd, m, err);
    return 0;
}

/* Keeps a few deliveries' buffers: a fresh multi-MiB malloc is an mmap plus page faults. */
static void sp_kafka_kdel_free(sp_kafka *k, sp_kdel *kd)
{
    size_t keep = kd->buf.cap + (size_t)kd->msgs_cap * sizeof(sp_kmsg), kept = 0;
    for (int i = 0; i < k->nspare; i++)
        kept += k->spare[i].held;
    /* Kept buffers are memory too: they stay counted, so they get only a small part of the
     * budget (what stays counted for good must leave room for chunks). */
    if (k->nspare < SP_KAFKA_SPARE && !k->stopping &&
        kept + keep <= sp_output_memory_limit(k->o) / 16) {
        sp_kdel *sp = &k->spare[k->nspare++];
        sp->held = 0;
        sp_kafka_account(k, &kd->held, 0, &sp->held, keep);
        sp->buf = kd->buf;
        sp->msgs = kd->msgs;
        sp->msgs_cap = kd->msgs_cap;
    } else {
        sp_kafka_hold(k, kd, 0);
        sp_buf_free(&kd->buf);
        free(kd->msgs);
    }
    free(kd);
}

static void sp_kafka_finish(sp_kdel *kd)
{
    sp_kafka *k = kd->k;
    sp_list_remove(&kd->link);
    k->active--;
    sp_delivery *d = kd->d;
    uint32_t delivered = kd->delivered, rejected = kd->rejected;
    sp_kafka_kdel_free(k, kd);
    sp_output_done(d, SP_OUT_DONE, delivered, rejected);
    if (!k->stopping) sp_kafka_encode_more(k);
}

static void sp_kafka_check_done(sp_kdel *kd)
{
    if (kd->encoded && kd->next == kd->n && !kd->inflight && !kd->retry) sp_kafka_finish(kd);
}

/* Produces what can be produced, deliveries in arrival order, until librdkafka's queue is
 * full. While failed messages wait for their backoff nothing new is produced, and when they are
 * due they go before anything newer: a container's lines stay in order through a failure
 * (except for messages already in librdkafka's hands when it happened). */
static void sp_kafka_pump_run(sp_kafka *k)
{
    if (k->fatal || !k->rk) return; /* nothing goes to a producer that is being replaced */
    int due = k->retry_due;
    int hold = k->retry_msgs > 0 && !due;
    k->retry_due = 0;
    sp_list *it, *tmp;
    sp_list_foreach_safe(it, tmp, &k->dels)
    {
        sp_kdel *kd = sp_list_entry(it, sp_kdel, link);
        if (!kd->encoded) break; /* order: a later chunk never overtakes an earlier one */
        for (uint32_t i = 0; due && kd->retry && i < kd->next; i++) {
            sp_kmsg *m = &kd->msgs[i];
            if (m->state != SP_KM_RETRY) continue;
            kd->retry--;
            k->retry_msgs--;
            if (sp_kafka_produce_one(k, kd, m)) {
                kd->retry++;
                k->retry_msgs++;
                k->qfull = 1;
                k->retry_due = 1;
                return;
            }
        }
        if (hold) return;
        while (kd->next < kd->n) {
            if (sp_kafka_produce_one(k, kd, &kd->msgs[kd->next])) {
                k->qfull = 1;
                k->retry_due |= due;
                return;
            }
            kd->next++;
        }
        sp_kafka_check_done(kd); /* may answer the last delivery, and the daemon then stops us */
        if (k->stopping) return;
    }
}

/* librdkafka is in use on the loop thread (serving reports or producing): a stop that comes
 * from inside, through the last delivery's answer, destroys the producer only afterwards. */
void sp_kafka_leave(sp_kafka *k)
{
    if (--k->busy == 0 && k->destroy_pending) {
        k->destroy_pending = 0;
        sp_kafka_retire(k, 1);
    }
}

void sp_kafka_pump(sp_kafka *k)
{
    if (k->stopping) return;
    k->busy++;
    sp_kafka_pump_run(k);
    sp_kafka_leave(k);
}

static void sp_kafka_encoded(uv_work_t *w, int status)
{
    (void)status; /* jobs are never cancelled */
    sp_kdel *kd = w->data;
    sp_kafka *k = kd->k;
    k->encoding--;
    kd->encoded = 1;
    if (k->stopping) {
        sp_kafka_maybe_closed(k);
        return;
    }
    /* The documents are buffered bytes too: they count towards memory_limit. */
    sp_kafka_hold(k, kd, sp_kafka_footprint(kd, kd->buf.cap, kd->buf.len, kd->n));
    sp_kafka_pump(k);
}

/*
 * Starts encoding deliveries in arrival order while the memory budget has room: a delivery is
 * counted (estimated) before it is encoded. Under a full buffer (the inputs paused at
 * memory_limit, chunks waiting) deliveries still start while those in progress hold less than
 * 1/SP_KAFKA_MEMORY_FLOOR of the limit, and one may always run: librdkafka keeps enough to make
 * full requests, and the output never waits on memory only it could free. So the total goes at
 * most that floor (or one delivery) past memory_limit.
 */
void sp_kafka_encode_more(sp_kafka *k)
{
    uint64_t limit = sp_output_memory_limit(k->o);
    size_t active = 0; /* what the deliveries in progress hold; a handful of them */
    sp_list *it;
    sp_list_foreach(it, &k->dels)
    {
        sp_kdel *kd = sp_list_entry(it, sp_kdel, link);
        if (kd->started) {
            active += kd->held;
            continue;
        }
        if (k->active && sp_output_held(k->o) >= limit && active >= limit / SP_KAFKA_MEMORY_FLOOR)
            return;
        const sp_delivery *d = kd->d;
        size_t need = sp_kafka_need(d);
        sp_kafka_alloc(kd, need);
        sp_kafka_hold(k, kd, sp_kafka_footprint(kd, kd->buf.cap, need, d->nrecords));
        kd->started = 1;
        active += kd->held;
        k->active++;
        k->encoding++;
        kd->work.data = kd;
        uv_queue_work(k->o->loop, &kd->work, sp_kafka_encode, sp_kafka_encoded);
    }
}

void sp_kafka_deliver(sp_output *o, sp_delivery *d)
{
    sp_kafka *k = o->data;
    sp_kdel *kd = sp_calloc(1, sizeof *kd);
    if (k->nspare) {
        sp_kdel *sp = &k->spare[--k->nspare];
        kd->buf = sp->buf;
        kd->buf.len = 0;
        kd->msgs = sp->msgs;
        kd->msgs_cap = sp->msgs_cap;
        sp_kafka_account(k, &kd->held, sp->held, &sp->held, 0); /* still counted */
    }
    kd->d = d;
    kd->k = k;
    d->odata = kd;
    sp_list_insert_tail(&k->dels, &kd->link);
    sp_kafka_encode_more(k);
}

/* ---- librdkafka callbacks (all on the loop thread, from rd_kafka_poll) ---- */

void sp_kafka_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    (void)rk;
    sp_kafka *k = opaque;
    sp_kmsg *m = msg->_private;
    sp_kdel *kd = m->del;
    kd->inflight--;
    k->inflight_msgs--;
    k->qfull = 0; /* a report frees room in librdkafka's queue */
    if (k->stopping) return;
    if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        m->state = SP_KM_OK;
        k->retry_attempt = 0;
        if (m->dead) {
            kd->rejected++;
            k->dead_lettered++;
        } else {
            kd->delivered++;
            k->delivered_msgs++;
        }
    } else {
        if (rd_kafka_message_status(msg) == RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED)
            sp_out_log_limited(k->o, &k->rl_retry, SP_LOG_WARN,
                               "a message failed (%s) after it may have been written: "
                               "producing it again may duplicate it",
                               rd_kafka_err2str(msg->err));
        sp_kafka_failed(k, kd, m, msg->err);
    }
    sp_kafka_check_done(kd);
}
