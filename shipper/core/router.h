/*
 * The router: owns chunks from their opening to their release. Inputs ask it for the open
 * chunk of a tag and append records; it closes chunks when full or old, hands each to every
 * output whose `match` fits the tag, queues deliveries, applies retry backoff, and keeps the one
 * count of buffered bytes that pauses and resumes every input.
 */
#ifndef SP_ROUTER_H
#define SP_ROUTER_H

#include <stdint.h>
#include <uv.h>

#include "chunk.h"
#include "fair.h"
#include "filter.h"
#include "input.h"
#include "log.h"
#include "output.h"

/** A tag seen recently: its open chunk and which outputs match it (computed once). */
typedef struct sp_tagent {
    char *tag;
    size_t len;
    uint64_t hash;
    sp_chunk *open;
    uint64_t outputs;
    uint64_t filters; /* which filters match it */
    uint64_t last_ms;
} sp_tagent;

typedef struct sp_router {
    uv_loop_t *loop;
    sp_input **inputs;
    size_t ninputs;
    sp_output **outputs;
    size_t noutputs;
    struct sp_filter **filters; /* the filter stage, in order (filters.c) */
    size_t nfilters;
    /* while an input's record runs through the filters: its batch, where sp_filter_emit writes */
    struct sp_input *emit_in;
    struct sp_input_batch *emit_batch;
    /* settings */
    uint64_t memory_limit;
    uint64_t chunk_size;
    uint64_t flush_interval_ms;
    uint64_t retry_min_ms;
    /* tag table: open addressing, power-of-two size */
    sp_tagent **tags;
    size_t tags_cap, ntags;
    sp_tagent *last_tag; /* the tag looked up last: inputs append runs of the same tag */
    sp_list open;        /* open chunks, oldest first */
    sp_list free_chunks; /* released chunks whose buffers are kept for reuse, newest first */
    int nfree;
    /* accounting */
    uint64_t bytes;      /* every live chunk's data */
    int64_t extra_bytes; /* held outside chunks: partial lines, outputs' buffers */
    uint64_t live_chunks;
    uint64_t cached_bytes; /* free_chunks' buffers, by the bytes each last held */
    uint64_t pool_used_ms; /* when a chunk last came from free_chunks */
    int paused;
    uint64_t pause_count;
    sp_fair fair;          /* which sources pause above buffer.fair_mark (fair.c) */
    sp_source *cur_source; /* the source of the record in the filter stage now */
    sp_hold *cur_hold;     /* what an input's record in the filter stage waits on (input.h) */
    sp_holds *cur_holds;   /* ... or what a record a filter emitted carries (filters.c) */
    sp_ratelimit rl_pause, rl_resume; /* pause/resume lines: one each per 10 s */
    uint64_t seq;
    uint64_t unmatched;     /* records no output matched */
    struct sp_spool *spool; /* NULL unless buffer.spool */
    uv_timer_t tick;
    int stopping;
    void (*on_drained)(struct sp_router *r); /* stopping and every output idle */
} sp_router;

/** Sets up the router on `loop` (timers start with sp_router_start). */
void sp_router_init(sp_router *r, uv_loop_t *loop);
void sp_router_start(sp_router *r);

/** The open chunk for `tag`, created if there is none. Append with sp_record_write to its data. */
sp_chunk *sp_router_chunk(sp_router *r, sp_slice tag);
/** The filters (bit i: filters[i]) whose `match` fits `tag`, computed once per tag. */
uint64_t sp_router_filter_mask(sp_router *r, sp_slice tag);
/** Accounts records appended to `c` since its data length was `len_before`; may close it. */
void sp_router_commit(sp_router *r, sp_chunk *c, size_t len_before, uint32_t nrecords);
/** sp_router_commit, then, with `flush` and the chunk still open, sp_router_close_chunk. */
void sp_router_commit_flush(sp_router *r, sp_chunk *c, size_t len_before, uint32_t nrecords,
                            int flush);
/** Opens the spool (buffer.spool) as r->spool, with the router as its owner (router_spool.c).
 * 0 or a negative errno. */
int sp_router_spool_open(sp_router *r, const char *dir, uint64_t limit);
/** Hands a closed chunk to its outputs (the spool calls it once the chunk is durable). */
void sp_router_dispatch(sp_router *r, sp_chunk *c);
/** Re-creates a chunk read back from the spool (its copies in segments spool_first ..
 * spool_last) and dispatches it. */
void sp_router_restore(sp_router *r, sp_slice tag, const void *data, size_t len, uint32_t nrecords,
                       uint64_t seq, void *spool_first, void *spool_last);
/**
 * An ack waits on the open chunk `c` (ack: durable or delivered): makes it answerable soon. With
 * the spool and only durable watchers, the records appended so far are written and fsynced and
 * the chunk stays open (its durable watchers get `upto` = what it holds now); otherwise the
 * chunk is closed now. Nothing for a chunk already closed.
 */
void sp_router_close_chunk(sp_router *r, sp_chunk *c);
/** The spool made more of `c` durable: answers its durable watchers that it covers now. */
void sp_router_durable(sp_router *r, sp_chunk *c);
/** What sp_output_done and sp_output_park (plugin.c) do: the delivery's answer, queues, retry. */
void sp_router_done(sp_delivery *d, int result, uint32_t delivered, uint32_t rejected);
void sp_router_park(sp_delivery *d);
/** Adjusts bytes held outside chunks, counted against memory_limit: by an input (partial lines
 * being joined) or an output (encoded bodies, responses, a client library's queue). */
void sp_router_hold(sp_router *r, int64_t delta);
/** Every byte counted against memory_limit now: chunks plus what sp_router_hold added. The
 * pool of kept chunk buffers is not in it; it only fills what the limit leaves beside it. */
uint64_t sp_router_held(const sp_router *r);
/** Closes every open chunk (all != 0) or only those older than flush_interval. */
void sp_router_flush(sp_router *r, int all);
/** Begins shutdown: flush everything; on_drained fires once all outputs are idle. */
void sp_router_drain(sp_router *r);
/** Records still queued or in flight across all outputs (for the shutdown report). */
uint64_t sp_router_pending_records(sp_router *r);
/** The upper bounds (seconds) of the first 13 buckets of an output's latency histogram
 * (sp_output.lat_buckets; the 14th is +Inf). */
const double *sp_router_latency_bounds(void);
/** Frees a chunk nobody holds (refs 0) as not delivered: the spool's, at shutdown. */
void sp_router_drop(sp_router *r, sp_chunk *c);
/** Stops timers and frees chunks still held, as not delivered: open ones, those queued, and
 * those in flight that a stopped output abandoned. Every output must be closed. */
void sp_router_close(sp_router *r);
/** The entry of `tag`, made (with its output and filter masks) when new (router_tags.c). */
sp_tagent *sp_router_tag(sp_router *r, sp_slice tag);
/** Forgets tags unused for a minute, when enough of them are (router_tags.c). */
void sp_router_tags_expire(sp_router *r, uint64_t now);
/* Chunk buffers kept for reuse (router_pool.c). */
/** A kept chunk (zeroed but for its buffer, emptied), or NULL. */
sp_chunk *sp_router_pool_get(sp_router *r);
/** Keeps released `c` (its tag freed) for reuse if the pool has room: 1, or 0 (free it). */
int sp_router_pool_put(sp_router *r, sp_chunk *c);
/** Frees kept buffers until held plus the pool fit memory_limit (held grew). */
void sp_router_pool_fit(sp_router *r);
/** Makes the next SP_PREFAULT_STEP bytes of `c`'s buffer past its data, up to `upto`, resident
 * at once. */
#define SP_PREFAULT_STEP (32u << 10)
void sp_router_pool_prefault(sp_chunk *c, size_t upto);
/** Frees the pool, but for a few buffers, once no chunk came from it for a while. */
void sp_router_pool_tick(sp_router *r, uint64_t now);
void sp_router_pool_free(sp_router *r);

#endif
