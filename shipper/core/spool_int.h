/* The spool's private types and the calls its three files make of each other: spool.c
 * (open, close, segments, accounting), spool_write.c (appending chunks, grouped fsyncs, handing
 * durable chunks on), spool_load.c (scan and verify at start, replay). Only the spool's files
 * include it (docs/architecture.md, "The path of a record"). */
#ifndef SP_SPOOL_INT_H
#define SP_SPOOL_INT_H

#include <pthread.h>
#include <stdint.h>
#include <libdeflate.h>

#include "spool.h"

#define SP_SEG_MAX (64u << 20)
#define SP_MAGIC_CHUNK 0x31435053u /* "SPC1": a whole chunk */
#define SP_MAGIC_PIECE 0x31505053u /* "SPP1": the records of a chunk from an offset on */
#define SP_MAGIC_DONE 0x31445053u  /* "SPD1" */

/* One entry's header; the payload follows: the tag, for a piece the 8-byte offset of its records
 * in the chunk, then the records (data_len bytes, nrecords of them). The CRC covers the header
 * (with crc 0) and the payload. */
typedef struct {
    uint32_t magic;
    uint32_t crc;
    uint64_t seq;
    uint32_t nrecords;
    uint32_t tag_len;
    uint64_t data_len;
} sp_spool_hdr;

typedef struct sp_seg {
    sp_list link;
    uint64_t id;
    uint64_t size;
    int64_t live; /* chunks with a copy in it (or in a segment on each side) not yet done */
} sp_seg;

/* An entry to replay: a whole chunk or a piece. Entries of one chunk are kept together: the
 * first of them (the group's head) says how many there are and which segments they span. */
typedef struct {
    sp_seg *seg;
    uint64_t off;  /* in the segment */
    uint64_t doff; /* of its records in the chunk (0 for a whole chunk) */
    sp_spool_hdr h;
    sp_seg *lo, *hi; /* the head: the first and last segment holding an entry of the chunk */
    uint32_t n;      /* the head: entries of the chunk */
    int take;        /* part of what is replayed (not a copy of data another entry holds) */
} sp_replay;

struct sp_spool {
    sp_spool_owner owner; /* the router, through callbacks */
    int opened;           /* sp_spool_open returned it */
    char *dir;
    uint64_t limit;
    uint64_t seg_max; /* a segment is left for a new one at this size */
    sp_list segs;     /* oldest first */
    sp_seg *cur;
    int fd;
    uint64_t next_id;
    uint64_t bytes;
    sp_list work;   /* chunks to write, to fsync or to hand on (spool_link), in order */
    uint64_t epoch; /* bumped by every failed fsync: a sync begun before it proves nothing */
    /* fsyncs run on a thread of their own, so a busy thread pool (encoders of every output)
     * never delays a durable ack: the loop posts a request, the thread answers through async */
    pthread_t sync_thread;
    pthread_mutex_t sync_mu;
    pthread_cond_t sync_cv;
    uv_async_t sync_async;
    int sync_req, sync_quit; /* under sync_mu */
    int sync_fd, sync_rc, sync_running;
    uint64_t sync_epoch;
    uv_timer_t timer;
    int write_failing; /* a write failed: retried each second */
    int sync_failing;  /* an fsync failed: cleared by the next good one */
    int sync_failures; /* in a row */
    int failing, closed;
    int handles;           /* timer, async and replay_idle, until closed */
    uv_idle_t replay_idle; /* brings chunks back a slice per loop turn (sp_spool_replay_start) */
    int over;              /* bytes > limit, as the router last heard */
    int completing;        /* handing on what an fsync made durable */
    int hand_on_again;     /* ... and a chunk was added that is ready too */
    sp_buf done;           /* done entries not written yet */
    sp_replay *replay;
    size_t nreplay, replay_pos;
    uint64_t corrupt_entries, corrupt_bytes, write_errors, replayed, fsyncs;
    sp_ratelimit rl;
};

/* CRC-32 (the gzip/zlib polynomial: entries written by zlib's crc32 check the same), with
 * libdeflate's folding implementation: twice zlib's speed here, and the whole spool is checked
 * before a restart accepts anything (docs/architecture.md). */
static inline uint32_t sp_spool_crc32(uint32_t crc, const void *p, size_t len)
{
    return libdeflate_crc32(crc, p, len);
}

/* spool.c */
void sp_spool_seg_path(const sp_spool *s, uint64_t id, char *out, size_t n);
sp_seg *sp_spool_seg_next(sp_spool *s, sp_seg *g);
void sp_spool_live(sp_spool *s, sp_seg *lo, sp_seg *hi, int delta);
void sp_spool_gc(sp_spool *s);
void sp_spool_check_limit(sp_spool *s);

/* spool_write.c */
int sp_spool_write(sp_spool *s, sp_chunk *c);
int sp_spool_flush_done(sp_spool *s);
void *sp_spool_sync_main(void *arg);
void sp_spool_sync_after(uv_async_t *a);
void sp_spool_timer_cb(uv_timer_t *t);

/* spool_load.c */
int sp_spool_load(sp_spool *s);

#endif
