/*
 * The plugin SDK's calls into the core, in one place: what input.h and output.h promise inputs
 * and outputs (docs/architecture.md, "The plugin SDK"). Plugins never see the router, the spool
 * or the daemon; these functions are the door.
 */
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "filters.h"
#include "listenfds.h"
#include "router.h"
#include "upgrade.h"

/* ---- inputs ---- */

void sp_input_batch_write(sp_input *in, sp_input_batch *b, sp_slice tag, const sp_record *r)
{
    if (!b->chunk) {
        b->chunk = sp_router_chunk(in->router, tag);
        b->before = b->chunk->data.len;
        b->nrecords = 0;
    }
    sp_record_write(&b->chunk->data, r);
    b->nrecords++;
}

void sp_input_batch_add(sp_input *in, sp_input_batch *b, sp_slice tag, const sp_record *r)
{
    sp_router *rt = in->router;
    in->records++;
    if (rt->nfilters) { /* the filter stage: the one place records enter the buffer */
        sp_record filtered = *r;
        /* a filter may emit a record it held (a multiline group) into this batch first */
        rt->emit_in = in;
        rt->emit_batch = b;
        rt->cur_source = in->source; /* throttle's action: slow pauses this source */
        rt->cur_hold = in->hold;     /* a filter holding the record keeps its ack waiting */
        int v = sp_filters_apply(rt, 0, tag, &filtered);
        rt->emit_in = NULL;
        rt->emit_batch = NULL;
        rt->cur_hold = NULL;
        if (v != SP_FILTER_KEEP) return; /* counted by the filter that dropped or held it */
        sp_input_batch_write(in, b, tag, &filtered);
        return;
    }
    sp_input_batch_write(in, b, tag, r);
}

int sp_input_batch_full(const sp_input *in, const sp_input_batch *b)
{
    return b->chunk && b->chunk->data.len >= in->router->chunk_size;
}

void sp_input_batch_commit(sp_input *in, sp_input_batch *b, sp_input_watch_fn watch, void *ctx)
{
    sp_chunk *c = b->chunk;
    if (!c) return;
    b->chunk = NULL;
    /* The ordering rule: the watcher goes on first, as committing may close the chunk and (with
     * no output matching its tag) release it at once, telling its watchers. */
    sp_chunk_watch *w = watch ? watch(ctx, c) : NULL;
    if (w) sp_chunk_watch_add(c, w);
    sp_router_commit_flush(in->router, c, b->before, b->nrecords, b->flush);
    b->flush = 0;
}

void sp_input_append(sp_input *in, sp_slice tag, const sp_record *r, sp_input_watch_fn watch,
                     void *ctx)
{
    sp_input_batch b = {0};
    sp_input_batch_add(in, &b, tag, r);
    sp_input_batch_commit(in, &b, watch, ctx);
}

void sp_input_flush_chunk(sp_input *in, sp_chunk *c)
{
    sp_router_close_chunk(in->router, c); /* nothing for a closed chunk */
}

void sp_input_hold(sp_input *in, int64_t delta)
{
    sp_router_hold(in->router, delta);
}

uint64_t sp_input_memory_limit(const sp_input *in)
{
    return in->router->memory_limit;
}

void sp_source_add(sp_input *in, sp_source *s, void (*pause)(sp_source *s),
                   void (*resume)(sp_source *s))
{
    if (s->registered) return;
    s->in = in;
    s->recent = 0;
    s->paused = 0;
    s->registered = 1;
    s->pause = pause;
    s->resume = resume;
    sp_fair_add(&in->router->fair, s);
}

void sp_source_remove(sp_source *s)
{
    if (!s->registered) return;
    s->registered = 0;
    sp_fair_remove(&s->in->router->fair, s);
}

int sp_input_spool_on(const sp_input *in)
{
    return in->router->spool != NULL;
}

int sp_input_inherited_fd(sp_input *in, const sp_addr *a)
{
    return sp_listenfds_take(a);
}

int sp_input_handover(sp_input *in, int fd, const void *state, size_t len)
{
    return sp_upgrade_send_conn(in->type->name, fd, state, len);
}

void sp_input_error(sp_input *in, const char *reason)
{
    sp_reasons_add(&in->errors, reason);
}

void sp_input_closed(sp_input *in)
{
    if (in->closed) return;
    in->closed = 1;
    sp_daemon_closed_one(in->router->loop->data);
}

/* ---- outputs ---- */

void sp_output_done(sp_delivery *d, int result, uint32_t delivered, uint32_t rejected)
{
    sp_router_done(d, result, delivered, rejected);
}

void sp_output_park(sp_delivery *d)
{
    sp_router_park(d);
}

void sp_output_closed(sp_output *o)
{
    if (o->closed == 2) return;
    o->closed = 2;
    sp_daemon_closed_one(o->router->loop->data);
}

void sp_output_hold(sp_output *o, int64_t delta)
{
    sp_router_hold(o->router, delta);
}

uint64_t sp_output_memory_limit(const sp_output *o)
{
    return o->router->memory_limit;
}

uint64_t sp_output_held(const sp_output *o)
{
    return sp_router_held(o->router);
}

uint64_t sp_backoff_ms(uint32_t attempt, uint64_t min_ms, uint64_t max_ms)
{
    uint64_t cap = min_ms;
    for (uint32_t i = 1; i < attempt && cap < max_ms; i++)
        cap *= 2;
    if (cap > max_ms) cap = max_ms;
    /* Half fixed, half random: spreads retries of many shippers without ever retrying at 0. */
    return cap / 2 + (uint64_t)rand() % (cap / 2 + 1);
}
