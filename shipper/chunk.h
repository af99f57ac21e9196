/*
 * A chunk: a contiguous buffer of records (record.h layout) that share one tag. Inputs append to
 * an open chunk; once closed (full, or flush_interval old) the router hands it to every matching
 * output, and it is freed when the last of them has finished with it.
 */
#ifndef SP_CHUNK_H
#define SP_CHUNK_H

#include <stdint.h>

#include "list.h"
#include "slice.h"

struct sp_chunk;

/**
 * A watcher on a chunk: told once when the chunk is released, i.e. every matching output has
 * finished with it (`delivered` = 1: each record delivered or rejected), or it is dropped at
 * shutdown (`delivered` = 0). Inputs use it to advance file offsets or to answer acks that wait
 * for delivery. Embed it in your own struct; it must stay valid until called.
 */
typedef struct sp_chunk_watch {
    sp_list link;
    int durable; /* 1: called as soon as the chunk is durable (spooled), not at release */
    /* durable watchers: called once the chunk's first `upto` bytes are durable, though the chunk
     * may still be open. Set by sp_router_close_chunk (the records appended by then); 0: when
     * the whole chunk is. */
    size_t upto;
    void (*cb)(struct sp_chunk_watch *w, struct sp_chunk *c, int delivered);
} sp_chunk_watch;

typedef struct sp_chunk {
    sp_list link; /* router's open list, then nothing while outputs hold it */
    char *tag;    /* NUL-terminated copy */
    size_t tag_len;
    sp_buf data; /* the records */
    uint32_t nrecords;
    int refs;        /* outputs that have not finished with it */
    int undelivered; /* an output gave up on it while stopping: released as not delivered */
    uint64_t seq;    /* creation order, unique per process */
    uint64_t opened_ms;
    uint64_t outputs;         /* bitmask of matching outputs, fixed at creation */
    struct sp_tagent *tagent; /* while open: the tag entry that points at it */
    void *spool;              /* the spool's handle when the chunk is on disk */
    sp_list watchers;         /* sp_chunk_watch */
    /* the spool's bookkeeping (spool.c) */
    sp_list spool_link; /* on the spool's work list while it has spool work */
    void *spool_last;   /* the last segment holding it (`spool` is the first) */
    size_t spooled;     /* bytes of data written to the spool */
    size_t durable;     /* ... of which an fsync confirmed */
    size_t sync_upto;   /* ... covered by the fsync running now */
    uint32_t spooled_records, durable_records, sync_records;
    int durable_moved; /* the last fsync made more of it durable */
    size_t touched;    /* the core's: bytes of the buffer made resident (core/router_pool.c) */
} sp_chunk;

/** Adds a watcher to `c` (normally the open chunk a record was just appended to). */
static inline void sp_chunk_watch_add(sp_chunk *c, sp_chunk_watch *w)
{
    sp_list_insert_tail(&c->watchers, &w->link);
}

/** Iterates records: `for (p = start; p < end;) sp_record_read(&p, end, &r)`. */
#define SP_CHUNK_BEGIN(c) ((const uint8_t *)(c)->data.base)
#define SP_CHUNK_END(c) ((const uint8_t *)(c)->data.base + (c)->data.len)

#endif
