/* Chunks, delivery queues, retries and backpressure; the tag table is in router_tags.c. */
#include "router.h"

#include <stdlib.h>

#include "filters.h"
#include "log.h"
#include "spool.h"

static void sp_router_pump(sp_output *o);
static void sp_router_check_drained(sp_router *r);

void sp_router_init(sp_router *r, uv_loop_t *loop)
{
    memset(r, 0, sizeof *r);
    r->loop = loop;
    r->memory_limit = 256u << 20;
    r->chunk_size = 1u << 20;
    r->flush_interval_ms = 1000;
    r->retry_min_ms = 500;
    r->tags_cap = 64;
    r->tags = sp_calloc(r->tags_cap, sizeof *r->tags);
    sp_list_init(&r->open);
    sp_list_init(&r->free_chunks);
    sp_fair_init(&r->fair);
    uv_timer_init(loop, &r->tick);
}

/* ---- backpressure ---- */

static void sp_router_pressure(sp_router *r)
{
    uint64_t held = sp_router_held(r);
    int spool_blocked = r->spool && sp_spool_blocked(r->spool);
    if (r->fair.on) sp_fair_check(&r->fair, held); /* pause the big sources first */
    if (!r->paused && (held >= r->memory_limit || spool_blocked)) {
        r->paused = 1;
        r->pause_count++;
        /* Under sustained pressure this flips about twice a second: one line per 10 s says so
         * (shipper_pauses_total counts every pause). */
        if (held >= r->memory_limit)
            sp_log_limited(&r->rl_pause, SP_LOG_INFO,
                           "buffer full (%llu bytes >= memory_limit): pausing inputs",
                           (unsigned long long)held);
        else
            sp_log_limited(&r->rl_pause, SP_LOG_INFO,
                           "spool over spool_limit or failing: pausing inputs");
        for (size_t i = 0; i < r->ninputs; i++)
            if (r->inputs[i]->type->pause && !r->inputs[i]->closed)
                r->inputs[i]->type->pause(r->inputs[i]);
    } else if (r->paused && held <= r->memory_limit / 10 * 8 && !spool_blocked) {
        /* Resume at 80% so a buffer at the limit doesn't flap between the two states. */
        r->paused = 0;
        sp_log_limited(&r->rl_resume, SP_LOG_INFO,
                       "buffer below low-water mark (%llu bytes) and spool writable: resuming "
                       "inputs",
                       (unsigned long long)held);
        for (size_t i = 0; i < r->ninputs; i++)
            if (r->inputs[i]->type->resume && !r->inputs[i]->closed)
                r->inputs[i]->type->resume(r->inputs[i]);
    }
}

uint64_t sp_router_held(const sp_router *r)
{
    return r->bytes + (uint64_t)(r->extra_bytes > 0 ? r->extra_bytes : 0);
}

void sp_router_hold(sp_router *r, int64_t delta)
{
    r->extra_bytes += delta;
    if (delta > 0) sp_router_pool_fit(r);
    sp_router_pressure(r);
}

/* ---- chunks ---- */

static sp_chunk *sp_router_chunk_alloc(sp_router *r, sp_tagent *e, sp_slice tag)
{
    sp_chunk *c = sp_router_pool_get(r);
    if (!c) {
        c = sp_calloc(1, sizeof *c);
        sp_buf_reserve_exact(&c->data, r->chunk_size + r->chunk_size / 8);
    }
    sp_list_init(&c->watchers);
    sp_list_init(&c->link);
    sp_list_init(&c->spool_link);
    c->tag = sp_strndup(tag.base, tag.len);
    c->tag_len = tag.len;
    c->seq = ++r->seq;
    c->opened_ms = uv_now(r->loop);
    c->outputs = e->outputs;
    e->last_ms = c->opened_ms;
    r->live_chunks++;
    return c;
}

sp_chunk *sp_router_chunk(sp_router *r, sp_slice tag)
{
    sp_tagent *e = sp_router_tag(r, tag);
    if (e->open) return e->open;
    sp_chunk *c = sp_router_chunk_alloc(r, e, tag);
    c->tagent = e;
    e->open = c;
    sp_list_insert_tail(&r->open, &c->link);
    return c;
}

void sp_router_restore(sp_router *r, sp_slice tag, const void *data, size_t len, uint32_t nrecords,
                       uint64_t seq, void *spool_first, void *spool_last)
{
    sp_chunk *c = sp_router_chunk_alloc(r, sp_router_tag(r, tag), tag);
    r->seq--; /* the chunk keeps the seq it was spooled with */
    c->seq = seq;
    sp_buf_append(&c->data, data, len);
    c->nrecords = nrecords;
    c->spool = spool_first;
    c->spool_last = spool_last;
    c->spooled = c->durable = len;
    c->spooled_records = c->durable_records = nrecords;
    r->bytes += len;
    sp_router_dispatch(r, c);
}

static void sp_router_chunk_release(sp_router *r, sp_chunk *c, int delivered)
{
    if (c->spool && delivered && r->spool) sp_spool_done(r->spool, c);
    while (!sp_list_empty(&c->watchers)) {
        sp_list *l = c->watchers.next;
        sp_list_remove(l);
        sp_chunk_watch *w = sp_list_entry(l, sp_chunk_watch, link);
        w->cb(w, c, delivered);
    }
    r->bytes -= c->data.len;
    r->live_chunks--;
    free(c->tag);
    c->tag = NULL;
    if (!sp_router_pool_put(r, c)) { /* router_pool.c */
        sp_buf_free(&c->data);
        free(c);
    }
    sp_router_pressure(r);
}

static void sp_router_chunk_free(sp_router *r, sp_chunk *c)
{
    sp_router_chunk_release(r, c, !c->undelivered);
}

void sp_router_drop(sp_router *r, sp_chunk *c)
{
    sp_router_chunk_release(r, c, 0);
}

static void sp_router_close_now(sp_router *r, sp_chunk *c)
{
    sp_list_remove(&c->link);
    if (c->tagent) c->tagent->open = NULL;
    c->tagent = NULL;
    if (c->nrecords == 0) {
        sp_router_chunk_free(r, c);
        return;
    }
    if (r->spool)
        sp_spool_add(r->spool, c); /* dispatched once it is on disk */
    else
        sp_router_dispatch(r, c);
}

/*
 * A watcher waits on `c` (an ack). When every watcher on it only waits for durability and the
 * spool is on, the records appended so far are written and fsynced now and the chunk stays open,
 * so that acking line after line (Docker's one frame in flight) still fills whole chunks, and
 * the outputs get whole requests (README, "Delivery guarantees"). Otherwise the chunk is closed
 * now: delivery needs a closed chunk.
 */
void sp_router_close_chunk(sp_router *r, sp_chunk *c)
{
    if (!c->tagent) return; /* closed already */
    sp_list *it;
    int durable_only = r->spool != NULL;
    sp_list_foreach(it, &c->watchers)
    {
        durable_only &= sp_list_entry(it, sp_chunk_watch, link)->durable;
    }
    if (!durable_only) {
        sp_router_close_now(r, c);
        return;
    }
    sp_list_foreach(it, &c->watchers)
    {
        sp_chunk_watch *w = sp_list_entry(it, sp_chunk_watch, link);
        if (!w->upto) w->upto = c->data.len;
    }
    sp_spool_add(r->spool, c);
}

void sp_router_durable(sp_router *r, sp_chunk *c)
{
    sp_list *it, *tmp;
    sp_list_foreach_safe(it, tmp, &c->watchers)
    {
        sp_chunk_watch *w = sp_list_entry(it, sp_chunk_watch, link);
        if (!w->durable || !w->upto || w->upto > c->durable) continue;
        sp_list_remove(it);
        w->cb(w, c, 1);
    }
}

void sp_router_dispatch(sp_router *r, sp_chunk *c)
{
    /* Watchers that wait for durability (ack: durable) are answered now. */
    sp_list *it, *tmp;
    sp_list_foreach_safe(it, tmp, &c->watchers)
    {
        sp_chunk_watch *w = sp_list_entry(it, sp_chunk_watch, link);
        if (!w->durable) continue;
        sp_list_remove(it);
        w->cb(w, c, 1);
    }
    c->refs = 1; /* held while dispatching, so a synchronous output can't free it under us */
    for (size_t i = 0; i < r->noutputs; i++) {
        if (!(c->outputs & (1ULL << i))) continue;
        sp_output *o = r->outputs[i];
        sp_delivery *d = sp_calloc(1, sizeof *d);
        d->chunk = d->one = c;
        d->chunks = &d->one;
        d->nchunks = 1;
        d->nrecords = c->nrecords;
        d->bytes = c->data.len;
        d->out = o;
        c->refs++;
        sp_list_insert_tail(&o->queue, &d->link);
        o->queued_chunks++;
        sp_router_pump(o);
    }
    if (c->outputs == 0) {
        if (r->unmatched == 0)
            sp_warn("records tagged \"%s\" match no output's `match`: they are dropped", c->tag);
        r->unmatched += c->nrecords;
    }
    if (--c->refs == 0) sp_router_chunk_free(r, c);
    sp_router_check_drained(r);
}

void sp_router_commit(sp_router *r, sp_chunk *c, size_t len_before, uint32_t nrecords)
{
    r->bytes += c->data.len - len_before;
    c->nrecords += nrecords;
    if (c->data.len / SP_PREFAULT_STEP != len_before / SP_PREFAULT_STEP &&
        c->data.len + SP_PREFAULT_STEP > c->touched)
        sp_router_pool_prefault(c, r->chunk_size);
    if (c->data.len >= r->chunk_size) sp_router_close_now(r, c);
    uint64_t held = sp_router_held(r);
    if (held >= r->fair.high || held >= r->memory_limit) sp_router_pressure(r);
}

void sp_router_commit_flush(sp_router *r, sp_chunk *c, size_t len_before, uint32_t nrecords,
                            int flush)
{
    /* A chunk the commit leaves open is closed after it (an ack waits on a record in it); one
     * the commit fills is closed by it, and may be released at once: not touched again. */
    int open = flush && c->data.len < r->chunk_size;
    sp_router_commit(r, c, len_before, nrecords);
    if (open) sp_router_close_chunk(r, c);
}

void sp_router_flush(sp_router *r, int all)
{
    uint64_t now = uv_now(r->loop);
    sp_list *it, *tmp;
    sp_list_foreach_safe(it, tmp, &r->open)
    {
        sp_chunk *c = sp_list_entry(it, sp_chunk, link);
        if (!all && now - c->opened_ms < r->flush_interval_ms) break; /* oldest first */
        sp_router_close_now(r, c);
    }
}

/* ---- outputs ---- */

/* Moves the chunks of the fresh deliveries queued after `d` into it, in order, while they fit
 * the output's batch limits: a backlog of small chunks goes out in full requests. */
static void sp_router_batch(sp_output *o, sp_delivery *d)
{
    if (!o->batch_bytes || d->attempts) return;
    while (d->link.next != &o->queue) {
        sp_delivery *n = sp_list_entry(d->link.next, sp_delivery, link);
        if (n->attempts || n->nchunks != 1 || d->bytes + n->bytes > o->batch_bytes ||
            (o->batch_records && d->nrecords + n->nrecords > o->batch_records))
            break;
        if (d->nchunks == (d->cap ? d->cap : 1)) {
            uint32_t cap = d->cap ? d->cap * 2 : 16;
            sp_chunk **v = sp_malloc(cap * sizeof *v);
            memcpy(v, d->chunks, d->nchunks * sizeof *v);
            if (d->cap) free(d->chunks);
            d->chunks = v;
            d->cap = cap;
        }
        d->chunks[d->nchunks++] = n->chunk;
        d->nrecords += n->nrecords;
        d->bytes += n->bytes;
        sp_list_remove(&n->link);
        free(n);
    }
}

static void sp_router_delivery_free(sp_delivery *d)
{
    if (d->cap) free(d->chunks);
    free(d);
}

static void sp_router_pump(sp_output *o)
{
    if (o->pumping) {
        o->repump = 1;
        return;
    }
    o->pumping = 1;
    do {
        o->repump = 0;
        while (!o->blocked && !o->closed && o->inflight < o->max_inflight &&
               !sp_list_empty(&o->queue)) {
            sp_delivery *d = sp_list_entry(o->queue.next, sp_delivery, link);
            sp_router_batch(o, d);
            sp_list_remove(&d->link);
            sp_list_insert_tail(&o->running, &d->link);
            o->inflight++;
            o->type->deliver(o, d);
        }
    } while (o->repump);
    o->pumping = 0;
}

static void sp_router_retry_cb(uv_timer_t *t)
{
    sp_output *o = t->data;
    o->blocked = 0;
    sp_router_pump(o);
}

static const double sp_router_lat_bounds[13] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                1,     2.5,  5,     10,   30,  60};

static void sp_router_observe(sp_output *o, double secs)
{
    int i = 0;
    while (i < 13 && secs > sp_router_lat_bounds[i])
        i++;
    o->lat_buckets[i]++;
    o->lat_count++;
    o->lat_sum += secs;
}

const double *sp_router_latency_bounds(void)
{
    return sp_router_lat_bounds;
}

static void sp_router_check_drained(sp_router *r)
{
    if (!r->stopping || !r->on_drained || !sp_list_empty(&r->open)) return;
    if (r->spool && sp_spool_busy(r->spool)) return;
    for (size_t i = 0; i < r->noutputs; i++) {
        sp_output *o = r->outputs[i];
        if (!sp_list_empty(&o->running) || !sp_list_empty(&o->queue)) return;
    }
    void (*cb)(sp_router *) = r->on_drained;
    r->on_drained = NULL;
    cb(r);
}

void sp_router_park(sp_delivery *d)
{
    if (d->parked) return;
    d->parked = 1;
    d->out->inflight--;
    sp_router_pump(d->out);
}

void sp_router_done(sp_delivery *d, int result, uint32_t delivered, uint32_t rejected)
{
    sp_output *o = d->out;
    sp_router *r = o->router;
    if (!d->parked) o->inflight--;
    d->parked = 0;
    sp_list_remove(&d->link);
    int undelivered = 0;
    if (result == SP_OUT_RETRY && o->closed) {
        /* Stopping: a failed delivery is not retried, and it is not delivered either. */
        undelivered = 1;
    } else if (result == SP_OUT_RETRY) {
        d->attempts++;
        o->retried += d->nrecords;
        sp_list_insert_head(&o->queue, &d->link); /* keeps order: these chunks go next */
        if (!o->blocked) {
            o->blocked = 1;
            o->backoff_attempt++;
            uint64_t ms = sp_backoff_ms(o->backoff_attempt, r->retry_min_ms, o->retry_max_ms);
            sp_debug("output %s: retrying %u chunk(s) from %llu in %llu ms (attempt %u)", o->name,
                     d->nchunks, (unsigned long long)d->chunk->seq, (unsigned long long)ms,
                     d->attempts);
            uv_timer_start(&o->retry_timer, sp_router_retry_cb, ms, 0);
        }
        return;
    } else {
        o->delivered += delivered;
        o->rejected += rejected;
        o->backoff_attempt = 0;
    }
    uint64_t now = uv_now(r->loop);
    for (uint32_t i = 0; i < d->nchunks; i++) {
        sp_chunk *c = d->chunks[i];
        if (undelivered)
            c->undelivered = 1;
        else
            sp_router_observe(o, (double)(now - c->opened_ms) / 1000.0);
        o->queued_chunks--;
        if (--c->refs == 0) sp_router_chunk_free(r, c);
    }
    sp_router_delivery_free(d);
    sp_router_pump(o);
    sp_router_check_drained(r);
}

/* ---- lifecycle ---- */

static void sp_router_tick_cb(uv_timer_t *t)
{
    sp_router *r = t->data;
    uint64_t now = uv_now(r->loop);
    sp_router_flush(r, r->stopping);
    sp_fair_tick(&r->fair, now);
    for (size_t i = 0; i < r->ninputs; i++)
        if (r->inputs[i]->type->tick && !r->inputs[i]->closed)
            r->inputs[i]->type->tick(r->inputs[i], now);
    for (size_t i = 0; i < r->nfilters; i++)
        if (r->filters[i]->type->tick) r->filters[i]->type->tick(r->filters[i], now);
    sp_router_tags_expire(r, now);
    sp_router_pool_tick(r, now);
}

void sp_router_start(sp_router *r)
{
    /* A quarter of flush_interval, so a chunk waits at most 1.25x it (not up to 2x). */
    uint64_t period = r->flush_interval_ms / 4;
    if (period > 250) period = 250;
    if (period < 20) period = 20;
    r->tick.data = r;
    uv_timer_start(&r->tick, sp_router_tick_cb, period, period);
    for (size_t i = 0; i < r->noutputs; i++) {
        sp_output *o = r->outputs[i];
        sp_list_init(&o->queue);
        sp_list_init(&o->running);
        uv_timer_init(r->loop, &o->retry_timer);
        o->retry_timer.data = o;
        if (o->max_inflight < 1) o->max_inflight = 1;
    }
}

void sp_router_drain(sp_router *r)
{
    sp_filters_drain(r); /* pending multiline groups, while the router still takes records */
    r->stopping = 1;
    sp_router_flush(r, 1);
    sp_router_check_drained(r);
}

uint64_t sp_router_pending_records(sp_router *r)
{
    uint64_t n = 0;
    sp_list *it;
    sp_list_foreach(it, &r->open) n += sp_list_entry(it, sp_chunk, link)->nrecords;
    for (size_t i = 0; i < r->noutputs; i++) {
        sp_output *o = r->outputs[i];
        sp_list_foreach(it, &o->queue) n += sp_list_entry(it, sp_delivery, link)->nrecords;
        sp_list_foreach(it, &o->running) n += sp_list_entry(it, sp_delivery, link)->nrecords;
    }
    return n;
}

void sp_router_close(sp_router *r)
{
    uv_close((uv_handle_t *)&r->tick, NULL);
    for (size_t i = 0; i < r->noutputs; i++) {
        sp_output *o = r->outputs[i];
        uv_close((uv_handle_t *)&o->retry_timer, NULL);
        /* Queued, and abandoned by the output's stop: neither was delivered. */
        sp_list *lists[2] = {&o->queue, &o->running};
        for (int k = 0; k < 2; k++)
            while (!sp_list_empty(lists[k])) {
                sp_delivery *d = sp_list_entry(lists[k]->next, sp_delivery, link);
                sp_list_remove(&d->link);
                for (uint32_t i = 0; i < d->nchunks; i++)
                    if (--d->chunks[i]->refs == 0) sp_router_chunk_release(r, d->chunks[i], 0);
                sp_router_delivery_free(d);
            }
    }
    while (!sp_list_empty(&r->open)) {
        sp_chunk *c = sp_list_entry(r->open.next, sp_chunk, link);
        sp_list_remove(&c->link);
        if (c->tagent) c->tagent->open = NULL;
        sp_router_chunk_release(r, c, 0);
    }
    sp_router_pool_free(r);
    for (size_t i = 0; i < r->tags_cap; i++)
        if (r->tags[i]) free(r->tags[i]->tag), free(r->tags[i]);
    free(r->tags);
    r->tags = NULL;
}
