/*
 * The spool: chunks on disk before they count as durable (buffer.spool: true).
 *
 * Chunks are appended to segment files under <state_dir>/spool with a CRC per entry; fsyncs run
 * on a thread of their own and are grouped (what comes while one fsync runs is written in one go
 * and shares the next), and a chunk is handed to the outputs only once its fsync is done. An open
 * chunk that a durable ack waits on is written in pieces (what it holds so far), and stays open;
 * replay puts the pieces back together. When every output has
 * finished with a chunk a small "done" entry is appended; segments whose chunks are all done are
 * deleted oldest first. At start the segments are read back: chunks without a done entry are
 * replayed to the outputs; a torn tail is cut off at the last good entry, a corrupt entry is
 * skipped up to the next one whose CRC checks, and both are reported. A write error (disk full,
 * read-only dir) keeps the chunk in memory, pauses the inputs and retries each second. A failed
 * fsync leaves the segment: what it covered is written again from memory into a new segment, and
 * counts as durable only once that one's fsync succeeds (inputs paused meanwhile).
 */
#ifndef SP_SPOOL_H
#define SP_SPOOL_H

#include <stdint.h>
#include <uv.h>

#include "chunk.h"

typedef struct sp_spool sp_spool;

/**
 * What the spool needs from its owner (the router: router_spool.c; a unit test's fakes), given
 * at sp_spool_open. Everything is called on the loop thread.
 */
typedef struct {
    void *ctx;           /* passed to every call */
    uint64_t chunk_size; /* buffer.chunk_size: a segment holds at least two chunks */
    /** All of the closed chunk `c` is durable: hand it to its outputs. */
    void (*dispatch)(void *ctx, sp_chunk *c);
    /** More of the open chunk `c` is durable: answer the durable watchers that it covers now. */
    void (*durable)(void *ctx, sp_chunk *c);
    /** A chunk read back by replay (its copies are in segments `first` .. `last`). */
    void (*restore)(void *ctx, sp_slice tag, const void *data, size_t len, uint32_t nrecords,
                    uint64_t seq, void *first, void *last);
    /** At close: a closed chunk the spool held was never dispatched; free it as not delivered. */
    void (*drop)(void *ctx, sp_chunk *c);
    /** sp_spool_blocked may have changed (failing, or across spool_limit): pause or resume. */
    void (*blocked_changed)(void *ctx);
    /** Nonzero while replay may bring back another chunk (memory allows). */
    int (*replay_room)(void *ctx);
    /** The highest seq in the segments, at open: chunks made from now on must get higher ones. */
    void (*seq_seen)(void *ctx, uint64_t seq);
} sp_spool_owner;

/** Opens (creating) <dir>/spool and reads what a previous run left. 0 or a negative errno. */
int sp_spool_open(sp_spool **out, uv_loop_t *loop, const char *dir, uint64_t limit,
                  const sp_spool_owner *owner);
/** Hands replayed chunks to the router while memory allows; call again as chunks are freed. */
void sp_spool_replay(sp_spool *s);
/**
 * Starts replaying in the background: a slice (SP_REPLAY_SLICE) per loop turn until half of
 * memory_limit is back, so inputs start and accept right after the spool is read and checked;
 * as chunks are delivered, sp_spool_done brings the next ones.
 */
void sp_spool_replay_start(sp_spool *s);
/**
 * Writes what `c` holds that is not on disk yet, and fsyncs it (grouped). A closed chunk is
 * dispatched (owner's `dispatch`) once all of it is durable; an open one stays open, and the
 * owner hears (`durable`) as its records become durable. Call again when it closes.
 */
void sp_spool_add(sp_spool *s, sp_chunk *c);
/** Every output has finished with `c`: it will not be replayed. */
void sp_spool_done(sp_spool *s, sp_chunk *c);
/** Nonzero while over spool_limit or unable to write: inputs stay paused. */
int sp_spool_blocked(const sp_spool *s);
/** Nonzero while chunks are waiting to be written, fsynced or replayed. */
int sp_spool_busy(const sp_spool *s);
/** Nonzero when every chunk handed to the spool is written and fsynced (replay aside). */
int sp_spool_settled(const sp_spool *s);
/** Bytes in segment files. */
uint64_t sp_spool_bytes(const sp_spool *s);
/** Appends spool metrics. */
void sp_spool_metrics(const sp_spool *s, sp_buf *out);
/** Writes what is pending, fsyncs, closes files and timers. Blocking; at shutdown only. */
void sp_spool_close(sp_spool *s);

/** fdatasync(2), called for every fsync of the spool; unit tests replace it to inject failures. */
extern int (*sp_spool_sync_fn)(int fd);

#endif
