/*
 * The output interface. An output gets deliveries (one or more chunks each, up to `max_inflight`
 * at once), encodes its wire format from the records and answers each delivery exactly once with
 * sp_output_done. The core owns queueing, batching of queued chunks, retry backoff and
 * accounting, so an output is only the code that talks to its server.
 */
#ifndef SP_OUTPUT_H
#define SP_OUTPUT_H

#include <stdint.h>
#include <uv.h>

#include "chunk.h"
#include "config.h"
#include "list.h"
#include "log.h"

typedef struct sp_output sp_output;
struct sp_router;

/**
 * Chunks on their way to one output: one delivery is answered as a whole. The core puts several
 * queued chunks (in order, any tags) into one delivery, up to the output's batch_bytes and
 * batch_records, so a backlog of small chunks still goes out in full requests.
 */
typedef struct {
    sp_list link;
    sp_chunk *chunk; /* the first chunk (chunks[0]) */
    sp_output *out;
    uint32_t attempts; /* failed attempts so far */
    void *odata;       /* the output's own per-delivery state, if it wants one */
    sp_chunk **chunks; /* every chunk, in order */
    uint32_t nchunks;
    uint32_t nrecords; /* over all its chunks */
    size_t bytes;      /* their data */
    uint32_t cap;      /* room in `chunks` (0: it points at `one`) */
    int parked;        /* sp_output_park: no longer counted in flight */
    sp_chunk *one;
} sp_delivery;

enum {
    SP_OUT_DONE = 0,  /* finished: every record delivered or rejected (counted in the call) */
    SP_OUT_RETRY = 1, /* nothing more delivered; try the whole delivery again after a backoff */
};

typedef struct {
    const char *name;
    const sp_conf_field *fields;
    size_t conf_size;
    const char *unsupported;
    int (*check)(sp_output *o, const sp_node *n, sp_conf_err *err); /* optional */
    /** Creates handles on o->loop; 0 or a negative errno. May change o->batch_bytes and
     * o->batch_records (set to buffer.chunk_size and 10000 before it is called). */
    int (*start)(sp_output *o);
    /** Starts delivering `d`; later (or now) calls sp_output_done(d, ...) exactly once. */
    void (*deliver)(sp_output *o, sp_delivery *d);
    /** Closes handles and frees the instance; calls sp_output_closed when done. Until then it
     * may still answer deliveries in flight (work it cannot cancel, e.g. a write on the thread
     * pool, is waited for); those it has not answered by then are abandoned: not delivered
     * (they stay in the spool if it is on). Nothing may be answered after sp_output_closed. */
    void (*stop)(sp_output *o);
    void (*metrics)(sp_output *o, sp_buf *out); /* optional extra Prometheus lines */
    int default_inflight;                       /* concurrent deliveries; 0 means 1 */
} sp_output_type;

struct sp_output {
    const sp_output_type *type;
    char *name;
    int index;
    int line;
    char *match;           /* glob on the tag */
    uint64_t retry_max_ms; /* backoff cap */
    int max_inflight;
    uint64_t batch_bytes;   /* a delivery's chunks carry at most this much data (0: one chunk) */
    uint32_t batch_records; /* ... and at most this many records (0: no limit) */
    void *conf;
    void *data;
    uv_loop_t *loop;
    struct sp_router *router;
    /* core state */
    sp_list queue;   /* sp_delivery waiting */
    sp_list running; /* sp_delivery given to `deliver`, not answered yet */
    int inflight;
    int blocked; /* a retry is waiting for its backoff */
    uint32_t backoff_attempt;
    uv_timer_t retry_timer;
    int closed; /* 1: stopping (answers still come), 2: closed (sp_output_closed) */
    uint64_t delivered, retried, rejected; /* records */
    uint64_t queued_chunks;                /* chunks waiting or in flight */
    int pumping, repump;
    /* latency from a chunk's opening to its delivery, for the histogram */
    uint64_t lat_buckets[14];
    uint64_t lat_count;
    double lat_sum;
};

/* Log lines about an output instance: "output <name>: " and the message. */
#define sp_out_error(o, fmt, ...) sp_error("output %s: " fmt, (o)->name, ##__VA_ARGS__)
#define sp_out_warn(o, fmt, ...) sp_warn("output %s: " fmt, (o)->name, ##__VA_ARGS__)
#define sp_out_info(o, fmt, ...) sp_info("output %s: " fmt, (o)->name, ##__VA_ARGS__)
#define sp_out_debug(o, fmt, ...) sp_debug("output %s: " fmt, (o)->name, ##__VA_ARGS__)
/* At a level chosen at run time (e.g. a client library's own log levels). */
#define sp_out_log(o, level, fmt, ...) sp_log(level, "output %s: " fmt, (o)->name, ##__VA_ARGS__)
/* The same through a rate limiter (sp_log_limited). */
#define sp_out_log_limited(o, rl, level, fmt, ...)                                                 \
    sp_log_limited(rl, level, "output %s: " fmt, (o)->name, ##__VA_ARGS__)

/**
 * Answers a delivery. With SP_OUT_DONE, `delivered` + `rejected` should equal the chunk's
 * records. With SP_OUT_RETRY the counts are ignored and the chunk's records are counted retried;
 * once the output is stopping, SP_OUT_RETRY means "not delivered": the chunk is released as
 * undelivered (not marked done in the spool, offsets and acks that wait for delivery do not
 * move). Must be called on the loop thread.
 */
void sp_output_done(sp_delivery *d, int result, uint32_t delivered, uint32_t rejected);
/**
 * The delivery `d` is only waiting now (e.g. for the backoff of a few rejected items): it stops
 * counting against max_inflight, so the core starts the next one meanwhile; it is still
 * answered with sp_output_done. The output must then cope with more deliveries than workers.
 */
void sp_output_park(sp_delivery *d);
/** The output's handles are all closed (stop is complete). */
void sp_output_closed(sp_output *o);
/** Adjusts the bytes the output holds for records outside chunks (encoded bodies, responses, a
 * client library's queue): they count against buffer.memory_limit like chunks do
 * (docs/architecture.md, "Who owns what"). Loop thread only. */
void sp_output_hold(sp_output *o, int64_t delta);
/** buffer.memory_limit, for outputs that size their buffers by it. */
uint64_t sp_output_memory_limit(const sp_output *o);
/** Every byte counted against memory_limit now, over the whole process: chunks and what inputs
 * and outputs hold. */
uint64_t sp_output_held(const sp_output *o);
/** A backoff delay for attempt n (1-based): capped exponential with full jitter. */
uint64_t sp_backoff_ms(uint32_t attempt, uint64_t min_ms, uint64_t max_ms);

#endif
