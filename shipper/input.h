/*
 * The input interface: a source of records (forward listener, json-file tailer). Part of the
 * plugin SDK (docs/architecture.md, "The plugin SDK"): an input sees this header, output.h,
 * chunk.h, record.h, config.h and the leaf utilities, never the core's own headers. It appends
 * records with sp_input_append (or a batch), and calls back sp_input_error / sp_input_closed.
 */
#ifndef SP_INPUT_H
#define SP_INPUT_H

#include <stdint.h>
#include <uv.h>

#include "addr.h"
#include "chunk.h"
#include "config.h"
#include "list.h"
#include "log.h"
#include "reasons.h"
#include "record.h"

typedef struct sp_input sp_input;
typedef struct sp_source sp_source;
typedef struct sp_hold sp_hold;
struct sp_router;

/** What an input type declares: its settings and its callbacks. */
typedef struct {
    const char *name;            /* the `type:` value */
    const sp_conf_field *fields; /* settings; the struct is `conf_size` bytes */
    size_t conf_size;
    const char *unsupported;    /* non-NULL: rejected at config time with this reason */
    const char *const *planned; /* keys rejected as "not supported yet (planned)" */
    /** Validates settings beyond their types (0, or -1 with err set). Optional. */
    int (*check)(sp_input *in, const sp_node *n, sp_conf_err *err);
    /** Binds, listens or starts watching; 0 or a negative errno. */
    int (*start)(sp_input *in);
    /** Stop reading (buffer full) / read again. Connections and files stay open. */
    void (*pause)(sp_input *in);
    void (*resume)(sp_input *in);
    /** Once a second: timeouts and housekeeping. Optional. */
    void (*tick)(sp_input *in, uint64_t now_ms);
    /** Stop accepting and reading, close every handle; call sp_input_closed when all are. */
    void (*stop)(sp_input *in);
    /** Appends input-specific Prometheus lines. Optional. */
    void (*metrics)(sp_input *in, sp_buf *out);
    /* Upgrade in place (docs/deploy.md, "Upgrades"). Inputs with `adopt` take connections from
     * the previous process and start as soon as it stops accepting; the others start once it
     * has exited (their state files are final then). All optional. */
    /** The listening socket the next process takes over, or -1. */
    int (*listen_fd)(sp_input *in);
    /** Takes connection `fd` that the previous process handed over with `state` (made by this
     * input type's hand-over): 0 when taken, 1 when refused (closed, the reason logged),
     * -ENOENT when it belongs to another listener, another negative errno when malformed. */
    int (*adopt)(sp_input *in, int fd, const uint8_t *state, size_t len);
} sp_input_type;

struct sp_input {
    const sp_input_type *type;
    char *name; /* for metrics: the type, or type.N when there are several */
    int index;
    int line;   /* where it was configured */
    void *conf; /* the settings struct */
    void *data; /* the running instance */
    uv_loop_t *loop;
    struct sp_router *router;
    const char *state_dir; /* service.state_dir, or NULL: where inputs may keep state */
    int closed;
    int started;
    int needs_spool; /* set by `check` when a setting only works with buffer.spool */
    /* Nonzero: `stop` hands the connections over to the next process (sp_upgrade_send_conn)
     * instead of closing them, giving each up to this many ms to reach a point where it can. */
    uint64_t handover_ms;
    uint64_t records, bytes;
    sp_reasons errors; /* shipper_input_errors_total, by reason (sp_input_error) */
    /* Fair backpressure: shipper_sources_paused and shipper_source_pauses_total. */
    uint64_t sources_paused, source_pauses;
    /* The source whose records the input appends now, or NULL: set around a read or a slice so
     * the filter stage knows it (throttle `action: slow`). */
    sp_source *source;
    /* What the records the input appends now wait on (a Forward frame's ack, a json-file
     * offset), or NULL: set around an append like `source`, so a record a filter holds keeps it
     * waiting (sp_hold below). */
    sp_hold *hold;
};

/* Log lines about an input instance: "input <name>: " and the message. */
#define sp_in_error(in, fmt, ...) sp_error("input %s: " fmt, (in)->name, ##__VA_ARGS__)
#define sp_in_warn(in, fmt, ...) sp_warn("input %s: " fmt, (in)->name, ##__VA_ARGS__)
#define sp_in_info(in, fmt, ...) sp_info("input %s: " fmt, (in)->name, ##__VA_ARGS__)
#define sp_in_debug(in, fmt, ...) sp_debug("input %s: " fmt, (in)->name, ##__VA_ARGS__)
/* The same through a rate limiter (sp_log_limited). */
#define sp_in_log_limited(in, rl, level, fmt, ...)                                                 \
    sp_log_limited(rl, level, "input %s: " fmt, (in)->name, ##__VA_ARGS__)

/** Counts an error by reason (a string literal: "malformed", "too_large", ...). */
void sp_input_error(sp_input *in, const char *reason);
/** The input's handles are all closed (stop is complete). */
void sp_input_closed(sp_input *in);

/* ---- appending records ---- */

/**
 * Picks the watcher to attach to chunk `c`, which the records just appended went to, or returns
 * NULL for none (e.g. the input's watcher from the record before is on `c` already). Called
 * before the records are committed: a commit may close and release the chunk at once, and the
 * watcher must be on it by then.
 */
typedef sp_chunk_watch *(*sp_input_watch_fn)(void *ctx, sp_chunk *c);

/**
 * Appends one record to the open chunk of `tag` (created if there is none), attaches the watcher
 * `watch(ctx, chunk)` picks (`watch` may be NULL) and commits it; counts it in in->records.
 */
void sp_input_append(sp_input *in, sp_slice tag, const sp_record *r, sp_input_watch_fn watch,
                     void *ctx);

/**
 * Several records of one tag appended with one commit (the json-file input writes a file's
 * lines so): sp_input_batch_add each record, then sp_input_batch_commit. A batch commits once
 * its chunk is full (sp_input_batch_full) and before the input returns to the loop.
 */
typedef struct sp_input_batch {
    sp_chunk *chunk; /* NULL: nothing appended since the last commit */
    size_t before;   /* the chunk's length before the batch */
    uint32_t nrecords;
    int flush; /* a held record that an ack waits on went in: close the chunk at the commit */
} sp_input_batch;

/** Appends `r` to the batch (the first record opens it on the open chunk of `tag`; later
 * records of the batch go to the same chunk, whatever `tag` they pass). */
void sp_input_batch_add(sp_input *in, sp_input_batch *b, sp_slice tag, const sp_record *r);
/** The batch's chunk has reached buffer.chunk_size: commit now. */
int sp_input_batch_full(const sp_input *in, const sp_input_batch *b);
/** Attaches the watcher `watch` picks (as in sp_input_append) and commits the batch; nothing
 * when the batch is empty. The batch is empty again after. */
void sp_input_batch_commit(sp_input *in, sp_input_batch *b, sp_input_watch_fn watch, void *ctx);

/**
 * An ack waits on chunk `c` (a watcher of this input is on it): make it answerable soon rather
 * than at flush_interval (see sp_chunk_watch's `upto`). Nothing when `c` is closed already.
 */
void sp_input_flush_chunk(sp_input *in, sp_chunk *c);
/** Adjusts the bytes the input holds outside chunks (e.g. partial lines being joined): they
 * count against buffer.memory_limit like chunks do. */
void sp_input_hold(sp_input *in, int64_t delta);
/** buffer.memory_limit, for inputs that size what they hold outside chunks by it. */
uint64_t sp_input_memory_limit(const sp_input *in);
/** buffer.spool is on: chunks are durable once written and fsynced, before their delivery. */
int sp_input_spool_on(const sp_input *in);

/* ---- held records (docs/architecture.md, "Acks and watchers") ---- */

/**
 * What a record waits on while a filter holds it (multiline): a Forward frame's ack, a json-file
 * offset. The input sets in->hold around an append; when a filter holds the record it calls
 * `take` once per record (the token it returns is referenced: the input's ack or offset waits).
 * Each reference ends once: `emitted` when the record the filter made of it (a group) is written
 * to chunk `c`, not committed yet (returns the watcher to put on `c`, or NULL), or `dropped`
 * when that record never reaches a chunk (a later filter dropped it: delivered = 1; the filter
 * was freed holding it: delivered = 0). Nothing of this runs for a record no filter holds.
 */
struct sp_hold {
    sp_hold *(*take)(sp_hold *h);
    sp_chunk_watch *(*emitted)(sp_hold *h, sp_chunk *c);
    void (*dropped)(sp_hold *h, int delivered);
    int flush; /* someone waits on the chunk (an ack): close it soon rather than at flush_interval
                */
};

/* ---- sources: fair backpressure (docs/architecture.md, "Fair backpressure") ---- */

/**
 * One stream of records the router can pause alone: a Forward connection, a json-file
 * container. The input embeds it, registers it with sp_source_add and counts what it reads with
 * sp_source_count (per read or batch, not per record). Above buffer.fair_mark the router pauses
 * the largest sources first (pause(s), s->paused = 1): the input stops reading that one (never
 * closes it) until resume(s), and must not restart it on its own while s->paused is set.
 */
struct sp_source {
    sp_list link;        /* the router's list of sources */
    sp_input *in;        /* its input (for the metrics) */
    uint64_t recent;     /* bytes taken in recently: halved every second, frozen while paused */
    int paused;          /* set by the router (SP_SOURCE_FAIR | SP_SOURCE_SLOW): do not read it */
    int registered;      /* between sp_source_add and sp_source_remove */
    uint64_t slow_until; /* SP_SOURCE_SLOW: throttle `action: slow` holds it until then (ms) */
    void (*pause)(sp_source *s);
    void (*resume)(sp_source *s);
};

enum { SP_SOURCE_FAIR = 1, SP_SOURCE_SLOW = 2 }; /* why a source is paused */

/** Registers `s` (zeroed or removed before) with its pause and resume callbacks. */
void sp_source_add(sp_input *in, sp_source *s, void (*pause)(sp_source *s),
                   void (*resume)(sp_source *s));
/** Unregisters `s` (its connection closed, its file gone); nothing when it is not registered. */
void sp_source_remove(sp_source *s);
/** Counts `bytes` taken in from `s`: a read, a frame, a batch. */
static inline void sp_source_count(sp_source *s, uint64_t bytes)
{
    s->recent += bytes;
}

/* ---- restarts and upgrades (docs/deploy.md) ---- */

/** The inherited listening socket bound to `a` (socket activation, upgrade), or -1: bind it. */
int sp_input_inherited_fd(sp_input *in, const sp_addr *a);
/** In `stop`, when in->handover_ms is set: gives connection `fd` with the `state` the next
 * process's `adopt` reads to that process. 0 or a negative errno; the caller closes its own
 * handle either way. */
int sp_input_handover(sp_input *in, int fd, const void *state, size_t len);

#endif
