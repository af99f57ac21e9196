/*
 * The router as the spool's owner: the callbacks (sp_spool_owner) through which the spool hands
 * chunks back, so spool.c needs nothing of the router's (docs/architecture.md, "Layers").
 */
#include "router.h"
#include "spool.h"

static void sp_router_spool_dispatch(void *ctx, sp_chunk *c)
{
    sp_router_dispatch(ctx, c);
}

static void sp_router_spool_durable(void *ctx, sp_chunk *c)
{
    sp_router_durable(ctx, c);
}

static void sp_router_spool_restore(void *ctx, sp_slice tag, const void *data, size_t len,
                                    uint32_t nrecords, uint64_t seq, void *first, void *last)
{
    sp_router_restore(ctx, tag, data, len, nrecords, seq, first, last);
}

static void sp_router_spool_drop(void *ctx, sp_chunk *c)
{
    sp_router_drop(ctx, c);
}

static void sp_router_spool_blocked_changed(void *ctx)
{
    sp_router_hold(ctx, 0); /* re-evaluates pausing */
}

/* Replay brings chunks back only while the router holds under half of memory_limit. */
static int sp_router_spool_replay_room(void *ctx)
{
    const sp_router *r = ctx;
    return r->bytes < r->memory_limit / 2;
}

static void sp_router_spool_seq_seen(void *ctx, uint64_t seq)
{
    sp_router *r = ctx;
    if (r->seq < seq) r->seq = seq;
}

int sp_router_spool_open(sp_router *r, const char *dir, uint64_t limit)
{
    sp_spool_owner owner = {
        .ctx = r,
        .chunk_size = r->chunk_size,
        .dispatch = sp_router_spool_dispatch,
        .durable = sp_router_spool_durable,
        .restore = sp_router_spool_restore,
        .drop = sp_router_spool_drop,
        .blocked_changed = sp_router_spool_blocked_changed,
        .replay_room = sp_router_spool_replay_room,
        .seq_seen = sp_router_spool_seq_seen,
    };
    return sp_spool_open(&r->spool, r->loop, dir, limit, &owner);
}
