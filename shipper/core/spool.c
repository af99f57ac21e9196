/* The on-disk spool: segment files of CRC-checked chunk entries, grouped fsyncs, replay. */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <libdeflate.h>

#include "log.h"

#define SP_SEG_MAX (64u << 20)
#define SP_MAGIC_CHUNK 0x31435053u /* "SPC1": a whole chunk */
#define SP_MAGIC_PIECE 0x31505053u /* "SPP1": the records of a chunk from an offset on */
#define SP_MAGIC_DONE 0x31445053u  /* "SPD1" */

/* One entry's header; the payload follows: the tag, for a piece the 8-byte offset of its records
 * in the chunk, then the records (data_len bytes, nrecords of them). The CRC covers the header
 * (with crc 0) and the payload. */
/* Replay at startup brings this much back per loop turn, so inputs accept meanwhile. */
#define SP_REPLAY_SLICE (4u << 20)

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

static uint32_t sp_spool_entry_crc(const sp_spool_hdr *h, const void *tag, const void *data)
{
    sp_spool_hdr c = *h;
    c.crc = 0;
    uint32_t crc = sp_spool_crc32(0, &c, sizeof c);
    crc = sp_spool_crc32(crc, tag, h->tag_len);
    crc = sp_spool_crc32(crc, data, h->data_len);
    return (uint32_t)crc;
}

static void sp_spool_seg_path(const sp_spool *s, uint64_t id, char *out, size_t n)
{
    snprintf(out, n, "%s/%016llx.seg", s->dir, (unsigned long long)id);
}

int (*sp_spool_sync_fn)(int fd) = fdatasync;

static void sp_spool_sync_failed(sp_spool *s, int err);
static void sp_spool_check_limit(sp_spool *s);

/* ---- segments ---- */

static sp_seg *sp_spool_seg_next(sp_spool *s, sp_seg *g)
{
    return g->link.next == &s->segs ? NULL : sp_list_entry(g->link.next, sp_seg, link);
}

/* Adds `delta` to the live count of every segment from `lo` to `hi`, in order. */
static void sp_spool_live(sp_spool *s, sp_seg *lo, sp_seg *hi, int delta)
{
    for (sp_seg *g = lo; g; g = g == hi ? NULL : sp_spool_seg_next(s, g))
        g->live += delta;
}

static int sp_spool_rotate(sp_spool *s)
{
    if (s->fd >= 0) {
        /* Chunks written there must be durable before it is left. If they may not be, they
         * are written again into the new segment (the failure resets them). */
        int bad = sp_spool_sync_fn(s->fd) ? errno : 0;
        close(s->fd);
        s->fd = -1;
        s->cur = NULL;
        if (bad) sp_spool_sync_failed(s, -bad);
    }
    char path[4200];
    sp_spool_seg_path(s, s->next_id, path, sizeof path);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return -errno;
    int dfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) fsync(dfd), close(dfd); /* the new name itself must survive a crash */
    sp_seg *g = sp_calloc(1, sizeof *g);
    g->id = s->next_id++;
    sp_list_insert_tail(&s->segs, &g->link);
    s->cur = g;
    s->fd = fd;
    return 0;
}

/* Deletes segments whose chunks are all done, oldest first: a newer segment may hold the done
 * entries of an older one, so it must outlive it. */
static void sp_spool_gc(sp_spool *s)
{
    while (!sp_list_empty(&s->segs)) {
        sp_seg *g = sp_list_entry(s->segs.next, sp_seg, link);
        if (g->live > 0) break;
        if (g == s->cur) {
            /* Only when it has grown (or the disk is full): recreating a file per chunk would
             * cost an open and a directory fsync each time. */
            if (!s->write_failing && g->size < s->seg_max / 4) break;
            /* Every chunk ever spooled is done: start afresh, or a full disk would stay full
             * of finished chunks. Pending done entries only named chunks deleted by now. */
            close(s->fd);
            s->fd = -1;
            s->cur = NULL;
            s->done.len = 0;
        }
        char path[4200];
        sp_spool_seg_path(s, g->id, path, sizeof path);
        unlink(path);
        s->bytes -= g->size;
        sp_list_remove(&g->link);
        free(g);
    }
    if (!s->closed) sp_spool_check_limit(s);
}

/* ---- writing ---- */

static int sp_spool_writev_all(sp_spool *s, struct iovec *iov, int n, size_t total)
{
    ssize_t w = writev(s->fd, iov, n);
    if (w == (ssize_t)total) return 0;
    int err = w < 0 ? errno : ENOSPC;
    /* A short write would leave a torn entry in the middle of the segment: cut it off. */
    (void)!ftruncate(s->fd, (off_t)s->cur->size);
    return -err;
}

static int sp_spool_flush_done(sp_spool *s)
{
    if (!s->done.len || s->fd < 0) return 0;
    struct iovec iov = {s->done.base, s->done.len};
    int rc = sp_spool_writev_all(s, &iov, 1, s->done.len);
    if (rc) return rc;
    s->cur->size += s->done.len;
    s->bytes += s->done.len;
    s->done.len = 0;
    return 0;
}

/* Writes what of `c` is not in the spool yet as one entry. */
static int sp_spool_write(sp_spool *s, sp_chunk *c)
{
    if (!s->cur || s->cur->size >= s->seg_max) {
        int rc = sp_spool_rotate(s);
        if (rc) return rc;
    }
    /* A closed chunk written at once is one whole entry; an open one (a durable ack waits on
     * it), or the rest of one, is written as pieces. */
    uint64_t doff = c->spooled;
    size_t len = c->data.len - c->spooled;
    int whole = doff == 0 && !c->tagent;
    sp_spool_hdr h = {whole ? SP_MAGIC_CHUNK : SP_MAGIC_PIECE,
                      0,
                      c->seq,
                      c->nrecords - c->spooled_records,
                      (uint32_t)c->tag_len,
                      len};
    const char *data = c->data.base + doff;
    sp_spool_hdr h0 = h;
    uint32_t crc = sp_spool_crc32(0, &h0, sizeof h0);
    crc = sp_spool_crc32(crc, c->tag, c->tag_len);
    if (!whole) crc = sp_spool_crc32(crc, &doff, sizeof doff);
    h.crc = sp_spool_crc32(crc, data, len);
    struct iovec iov[4] = {{&h, sizeof h}, {c->tag, c->tag_len}, {&doff, sizeof doff}, {0}};
    int n = 2;
    if (!whole) n++;
    iov[n++] = (struct iovec){(void *)data, len};
    size_t total = sizeof h + c->tag_len + (whole ? 0 : sizeof doff) + len;
    int rc = sp_spool_writev_all(s, iov, n, total);
    if (rc) return rc;
    s->cur->size += total;
    s->bytes += total;
    /* Its copies span segments c->spool .. c->spool_last, each counting it as live. */
    if (!c->spool) {
        c->spool = c->spool_last = s->cur;
        s->cur->live++;
    } else if (c->spool_last != s->cur) {
        sp_spool_live(s, sp_spool_seg_next(s, c->spool_last), s->cur, 1);
        c->spool_last = s->cur;
    }
    c->spooled = c->data.len;
    c->spooled_records = c->nrecords;
    sp_spool_flush_done(s); /* on failure, done entries wait for the next write */
    return 0;
}

static void sp_spool_sync_start(sp_spool *s);

/* The fsync thread: one fdatasync per request, answered through sync_async. */
static void *sp_spool_sync_main(void *arg)
{
    sp_spool *s = arg;
    pthread_mutex_lock(&s->sync_mu);
    for (;;) {
        while (!s->sync_req && !s->sync_quit)
            pthread_cond_wait(&s->sync_cv, &s->sync_mu);
        if (!s->sync_req) break; /* quit, nothing asked */
        int fd = s->sync_fd;
        pthread_mutex_unlock(&s->sync_mu);
        int rc = sp_spool_sync_fn(fd) ? -errno : 0;
        pthread_mutex_lock(&s->sync_mu);
        s->sync_rc = rc;
        s->sync_req = 0;
        uv_async_send(&s->sync_async);
    }
    pthread_mutex_unlock(&s->sync_mu);
    return NULL;
}

static void sp_spool_update_failing(sp_spool *s, int err)
{
    int failing = s->write_failing || s->sync_failing;
    if (failing && !s->failing)
        sp_error("spool: cannot write to %s: %s; inputs paused until it can", s->dir,
                 strerror(-err));
    else if (!failing && s->failing)
        sp_info("spool: writing to %s again", s->dir);
    s->failing = failing;
    s->owner.blocked_changed(s->owner.ctx); /* re-evaluates pausing */
}

/* Tells the router when the spool crosses spool_limit (either way): inputs pause over it. */
static void sp_spool_check_limit(sp_spool *s)
{
    if (!s->opened) return; /* still opening: the owner asks sp_spool_blocked itself */
    int over = s->bytes > s->limit;
    if (over == s->over) return;
    s->over = over;
    if (over)
        sp_warn("spool: %llu bytes in %s, over spool_limit (%llu): inputs paused until "
                "delivered chunks free some",
                (unsigned long long)s->bytes, s->dir, (unsigned long long)s->limit);
    s->owner.blocked_changed(s->owner.ctx);
}

/* Writes every chunk of the work list that has unwritten data, in order; stops at the first
 * failure. Then starts an fsync for what was written. */
static void sp_spool_write_pass(sp_spool *s)
{
    uint64_t epoch;
    do {
        epoch = s->epoch;
        sp_list *it;
        sp_list_foreach(it, &s->work)
        {
            sp_chunk *c = sp_list_entry(it, sp_chunk, spool_link);
            if (c->spooled >= c->data.len) continue;
            int rc = sp_spool_write(s, c);
            if (rc) {
                if (!s->write_failing) s->write_errors++;
                s->write_failing = 1;
                sp_spool_update_failing(s, rc);
                return;
            }
            /* A failed fsync on rotation reset every chunk not yet durable: from the top. */
            if (s->epoch != epoch) break;
        }
    } while (s->epoch != epoch);
    sp_spool_check_limit(s);
    if (s->write_failing) {
        s->write_failing = 0;
        sp_spool_update_failing(s, 0);
    }
    sp_spool_sync_start(s);
}

/*
 * An fsync failed: the kernel may have dropped the pages it could not write, and a later fsync
 * of the same file can succeed without them. Nothing written since the last good fsync counts:
 * the current segment is left, each chunk's unconfirmed data is written again from memory into
 * a new one and fsynced there, and inputs stay paused until that succeeds. Only then are these
 * chunks acked as durable and handed to the outputs.
 */
static void sp_spool_sync_failed(sp_spool *s, int err)
{
    s->epoch++;
    s->write_errors++;
    s->sync_failures++;
    sp_log_limited(&s->rl, SP_LOG_ERROR,
                   "spool: fsync in %s failed: %s; writing what it held again into a new segment",
                   s->dir, strerror(-err));
    if (s->fd >= 0) close(s->fd);
    s->fd = -1;
    s->cur = NULL;
    sp_list *it;
    sp_list_foreach(it, &s->work)
    {
        sp_chunk *c = sp_list_entry(it, sp_chunk, spool_link);
        c->spooled = c->durable;
        c->spooled_records = c->durable_records;
    }
    s->sync_failing = 1;
    sp_spool_update_failing(s, err);
}

/* Closed chunks that are durable whole are handed to the outputs, in order; the acks waiting
 * on open chunks (and on the pieces of closed ones) are answered as far as they are covered. */
static void sp_spool_hand_on(sp_spool *s)
{
    int in_order = 1;
    sp_list *it, *tmp;
    sp_list_foreach_safe(it, tmp, &s->work)
    {
        sp_chunk *c = sp_list_entry(it, sp_chunk, spool_link);
        int moved = c->durable_moved;
        c->durable_moved = 0;
        if (c->tagent || c->durable < c->data.len) {
            if (moved) s->owner.durable(s->owner.ctx, c);
            if (c->tagent && c->durable == c->spooled) sp_list_remove(&c->spool_link);
            if (!c->tagent) in_order = 0;
            continue;
        }
        if (!in_order) continue;
        sp_list_remove(&c->spool_link);
        s->owner.dispatch(s->owner.ctx, c);
    }
}

static void sp_spool_sync_after(uv_async_t *a)
{
    sp_spool *s = a->data;
    pthread_mutex_lock(&s->sync_mu);
    int done = s->sync_running && !s->sync_req;
    pthread_mutex_unlock(&s->sync_mu);
    if (!done || s->closed) return;
    close(s->sync_fd);
    s->sync_running = 0;
    s->fsyncs++;
    if (s->sync_epoch != s->epoch) {
        /* A failure since it began: what it covered is being written again. */
        sp_spool_write_pass(s);
        return;
    }
    if (s->sync_rc) {
        sp_spool_sync_failed(s, s->sync_rc);
        /* At once the first time; if it fails again, each second (the timer). */
        if (s->sync_failures == 1) sp_spool_write_pass(s);
        return;
    }
    /* What this fsync covered is durable now. What the calls below write meanwhile (inputs
     * resumed, acks answered) waits for the next fsync: none starts before this is over, so
     * what counts as covered is what this one covered. */
    s->completing = 1;
    sp_list *it;
    sp_list_foreach(it, &s->work)
    {
        sp_chunk *c = sp_list_entry(it, sp_chunk, spool_link);
        c->durable_moved = c->sync_upto > c->durable && c->sync_upto <= c->spooled;
        if (c->durable_moved) {
            c->durable = c->sync_upto;
            c->durable_records = c->sync_records;
        }
    }
    s->sync_failures = 0;
    if (s->sync_failing) {
        s->sync_failing = 0;
        sp_spool_update_failing(s, 0);
    }
    do {
        s->hand_on_again = 0;
        sp_spool_hand_on(s);
    } while (s->hand_on_again);
    s->completing = 0;
    if (!s->write_failing) sp_spool_write_pass(s); /* what came meanwhile, then its fsync */
}

static void sp_spool_sync_start(sp_spool *s)
{
    if (s->sync_running || s->completing || s->fd < 0) return;
    int any = 0;
    sp_list *it;
    sp_list_foreach(it, &s->work)
    {
        sp_chunk *c = sp_list_entry(it, sp_chunk, spool_link);
        c->sync_upto = c->spooled;
        c->sync_records = c->spooled_records;
        any |= c->spooled > c->durable;
    }
    if (!any) return;
    s->sync_fd = dup(s->fd);
    if (s->sync_fd < 0) return;
    s->sync_running = 1;
    s->sync_epoch = s->epoch;
    pthread_mutex_lock(&s->sync_mu);
    s->sync_req = 1;
    pthread_cond_signal(&s->sync_cv);
    pthread_mutex_unlock(&s->sync_mu);
}

void sp_spool_add(sp_spool *s, sp_chunk *c)
{
    if (sp_list_empty(&c->spool_link)) sp_list_insert_tail(&s->work, &c->spool_link);
    /* While an fsync runs, what comes waits and is written in one go when it ends, just before
     * the next one: one write (and one entry) for every record appended meanwhile. */
    if (!s->write_failing && !s->sync_running) sp_spool_write_pass(s);
    /* Closed, and durable whole already (acks made every piece of it durable): on its way. */
    if (!c->tagent && c->durable == c->data.len) {
        if (s->completing) {
            s->hand_on_again = 1; /* handing on already: that loop goes round once more */
            return;
        }
        s->completing = 1;
        do {
            s->hand_on_again = 0;
            sp_spool_hand_on(s);
        } while (s->hand_on_again);
        s->completing = 0;
        sp_spool_sync_start(s);
    }
}

void sp_spool_done(sp_spool *s, sp_chunk *c)
{
    sp_seg *g = c->spool;
    c->spool = NULL;
    if (!g) return;
    sp_spool_hdr h = {SP_MAGIC_DONE, 0, c->seq, 0, 0, 0};
    h.crc = sp_spool_entry_crc(&h, "", "");
    sp_buf_append(&s->done, &h, sizeof h);
    sp_spool_live(s, g, c->spool_last, -1);
    sp_spool_gc(s);
    if (s->replay_pos < s->nreplay) sp_spool_replay(s);
}

static void sp_spool_timer_cb(uv_timer_t *t)
{
    sp_spool *s = t->data;
    sp_spool_write_pass(s); /* retries failed writes, and rewrites after a failed fsync */
    if (!s->write_failing && sp_spool_flush_done(s) == 0) sp_spool_gc(s);
    sp_spool_sync_start(s);
}

int sp_spool_busy(const sp_spool *s)
{
    return !sp_list_empty(&s->work) || s->replay_pos < s->nreplay;
}

int sp_spool_settled(const sp_spool *s)
{
    /* Every chunk handed to the spool leaves the work list once it is written, fsynced and
     * handed on; an open chunk leaves it once what it holds is durable. */
    return sp_list_empty(&s->work) && !s->sync_running;
}

int sp_spool_blocked(const sp_spool *s)
{
    return s->failing || s->bytes > s->limit;
}

/* ---- replay ---- */

static int sp_spool_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int sp_spool_cmp_id(const void *a, const void *b)
{
    return sp_spool_cmp_u64(a, b);
}

/* Replay entries by chunk, then by where their records are in it (the longest first when two
 * start at the same place), then in file order. */
static int sp_spool_cmp_replay(const void *a, const void *b)
{
    const sp_replay *x = a, *y = b;
    if (x->h.seq != y->h.seq) return x->h.seq < y->h.seq ? -1 : 1;
    if (x->doff != y->doff) return x->doff < y->doff ? -1 : 1;
    if (x->h.data_len != y->h.data_len) return x->h.data_len > y->h.data_len ? -1 : 1;
    if (x->seg->id != y->seg->id) return x->seg->id < y->seg->id ? -1 : 1;
    return x->off < y->off ? -1 : x->off > y->off;
}

static uint64_t sp_spool_payload_len(const sp_spool_hdr *h)
{
    return (uint64_t)h->tag_len + (h->magic == SP_MAGIC_PIECE ? 8 : 0) + h->data_len;
}

/* The CRC of an entry whose payload is at `pl`. */
static uint32_t sp_spool_crc(const sp_spool_hdr *h, const void *pl)
{
    sp_spool_hdr c = *h;
    c.crc = 0;
    uint32_t crc = sp_spool_crc32(0, &c, sizeof c);
    return sp_spool_crc32(crc, pl, sp_spool_payload_len(h));
}

/* Length of the valid entry at m[off..size), or 0 if there is none there. */
static uint64_t sp_spool_entry_at(const uint8_t *m, uint64_t size, uint64_t off, sp_spool_hdr *h)
{
    if (size - off < sizeof *h) return 0;
    memcpy(h, m + off, sizeof *h);
    if (h->magic != SP_MAGIC_CHUNK && h->magic != SP_MAGIC_PIECE && h->magic != SP_MAGIC_DONE)
        return 0;
    if (h->tag_len > size || h->data_len > size) return 0;
    uint64_t plen = sp_spool_payload_len(h);
    if (plen > size - off - sizeof *h) return 0; /* runs past the end: torn */
    if (sp_spool_crc(h, m + off + sizeof *h) != h->crc) return 0;
    return sizeof *h + plen;
}

/* The next offset after `off` where a valid entry starts, or `size`. */
static uint64_t sp_spool_resync(const uint8_t *m, uint64_t size, uint64_t off)
{
    for (uint64_t at = off + 1; at + sizeof(sp_spool_hdr) <= size; at++) {
        if (m[at] != 'S' || m[at + 1] != 'P' ||
            (m[at + 2] != 'C' && m[at + 2] != 'D' && m[at + 2] != 'P'))
            continue;
        sp_spool_hdr h;
        if (sp_spool_entry_at(m, size, at, &h)) return at;
    }
    return size;
}

/* Reads one segment: chunk entries become replay candidates, done entries are collected. A
 * corrupt entry (bit rot, a torn write) is skipped up to the next entry whose CRC checks, so
 * one bad chunk costs only itself; a torn tail is cut off. Both are counted and reported. */
static void sp_spool_scan_seg(sp_spool *s, sp_seg *g, uint64_t **done, size_t *ndone,
                              uint64_t *maxseq)
{
    char path[4200];
    sp_spool_seg_path(s, g->id, path, sizeof path);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) return;
    struct stat st;
    uint64_t size = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0, off = 0, good_end = 0;
    const uint8_t *m = size ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    if (m == MAP_FAILED) m = NULL, size = 0;
    while (off < size) {
        sp_spool_hdr h;
        uint64_t len = sp_spool_entry_at(m, size, off, &h);
        if (!len) {
            uint64_t next = sp_spool_resync(m, size, off);
            s->corrupt_entries++;
            s->corrupt_bytes += next - off;
            sp_warn("spool: %s: %llu bytes of torn or corrupt data at offset %llu %s", path,
                    (unsigned long long)(next - off), (unsigned long long)off,
                    next < size ? "skipped; the entries after it are kept" : "cut off");
            off = next;
            continue;
        }
        if (h.seq > *maxseq) *maxseq = h.seq;
        if (h.magic == SP_MAGIC_DONE) {
            *done = sp_realloc(*done, (*ndone + 1) * sizeof **done);
            (*done)[(*ndone)++] = h.seq;
        } else {
            uint64_t doff = 0;
            if (h.magic == SP_MAGIC_PIECE) memcpy(&doff, m + off + sizeof h + h.tag_len, 8);
            if (s->nreplay % 1024 == 0)
                s->replay = sp_realloc(s->replay, (s->nreplay + 1024) * sizeof *s->replay);
            s->replay[s->nreplay++] = (sp_replay){g, off, doff, h, g, g, 1, 0};
        }
        off += len;
        good_end = off;
    }
    if (m) munmap((void *)m, size);
    if (good_end < size) (void)!ftruncate(fd, (off_t)good_end);
    g->size = good_end;
    s->bytes += good_end;
    close(fd);
}

static int sp_spool_load(sp_spool *s)
{
    DIR *d = opendir(s->dir);
    if (!d) return -errno;
    uint64_t *ids = NULL;
    size_t nids = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        unsigned long long id;
        char tail[8];
        if (sscanf(e->d_name, "%16llx.%3s", &id, tail) == 2 && strcmp(tail, "seg") == 0) {
            ids = sp_realloc(ids, (nids + 1) * sizeof *ids);
            ids[nids++] = id;
        }
    }
    closedir(d);
    if (nids) qsort(ids, nids, sizeof *ids, sp_spool_cmp_id);
    uint64_t *done = NULL, maxseq = 0;
    size_t ndone = 0;
    for (size_t i = 0; i < nids; i++) {
        sp_seg *g = sp_calloc(1, sizeof *g);
        g->id = ids[i];
        sp_list_insert_tail(&s->segs, &g->link);
        sp_spool_scan_seg(s, g, &done, &ndone, &maxseq);
        s->next_id = ids[i] + 1;
    }
    free(ids);
    if (ndone) qsort(done, ndone, sizeof *done, sp_spool_cmp_u64);
    size_t keep = 0;
    for (size_t i = 0; i < s->nreplay; i++) {
        uint64_t seq = s->replay[i].h.seq;
        if (ndone && bsearch(&seq, done, ndone, sizeof *done, sp_spool_cmp_u64)) continue;
        s->replay[keep++] = s->replay[i];
    }
    s->nreplay = keep;
    free(done);
    /* By chunk: a chunk has one whole entry, or pieces (written as durable acks waited on it
     * while it was open), and after a failed fsync some of them twice. Its records are the
     * pieces laid end to end from offset 0, each copy taken once; a piece lost to corruption
     * leaves a gap, the rest is kept. The chunk keeps every segment from its first entry to its
     * last alive until it is done. */
    if (s->nreplay) qsort(s->replay, s->nreplay, sizeof *s->replay, sp_spool_cmp_replay);
    size_t nchunks = 0;
    for (size_t i = 0, j; i < s->nreplay; i = j) {
        sp_replay *head = &s->replay[i];
        uint64_t end = 0;
        for (j = i; j < s->nreplay && s->replay[j].h.seq == head->h.seq; j++) {
            sp_replay *e = &s->replay[j];
            if (e->seg->id < head->lo->id) head->lo = e->seg;
            if (e->seg->id > head->hi->id) head->hi = e->seg;
            /* Held by what was taken already: a copy. Overlapping only in part (not written
             * that way): taken whole, a duplicate rather than a loss. */
            e->take = j == i || e->doff + e->h.data_len > end;
            if (e->take && e->doff + e->h.data_len > end) end = e->doff + e->h.data_len;
        }
        head->n = (uint32_t)(j - i);
        sp_spool_live(s, head->lo, head->hi, 1);
        nchunks++;
    }
    s->owner.seq_seen(s->owner.ctx, maxseq); /* new chunks must not reuse a spooled seq */
    sp_spool_gc(s);
    if (nchunks) sp_info("spool: %zu chunk(s) from a previous run will be delivered", nchunks);
    return 0;
}

/* Appends the records of entry `e` to `b` (its tag too when `tag` is set); 0 when it no longer
 * reads back as it was scanned. */
static int sp_spool_read_entry(sp_spool *s, const sp_replay *e, sp_buf *b, int tag)
{
    char path[4200];
    sp_spool_seg_path(s, e->seg->id, path, sizeof path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    uint64_t plen = sp_spool_payload_len(&e->h);
    size_t at = b->len;
    sp_buf_reserve(b, plen + 1);
    int ok = pread(fd, b->base + at, plen, (off_t)(e->off + sizeof e->h)) == (ssize_t)plen &&
             sp_spool_crc(&e->h, b->base + at) == e->h.crc;
    close(fd);
    if (!ok) return 0;
    /* Keep [tag] + records: a piece's offset goes, and the tag unless it is wanted. */
    size_t keep = tag ? e->h.tag_len : 0, hole = e->h.magic == SP_MAGIC_PIECE ? 8 : 0;
    memmove(b->base + at + keep, b->base + at + e->h.tag_len + hole, e->h.data_len);
    b->len = at + keep + e->h.data_len;
    return 1;
}

/* Brings chunks back, about `budget` bytes of them, and only while memory allows, so a large
 * spool never exceeds the limit. */
static void sp_spool_replay_some(sp_spool *s, uint64_t budget)
{
    sp_buf b = {0};
    uint64_t took = 0;
    while (s->replay_pos < s->nreplay && took < budget && s->owner.replay_room(s->owner.ctx)) {
        sp_replay *head = &s->replay[s->replay_pos];
        s->replay_pos += head->n;
        b.len = 0;
        size_t tag_len = 0;
        uint32_t nrecords = 0;
        int have_tag = 0;
        for (uint32_t k = 0; k < head->n; k++) {
            const sp_replay *e = head + k;
            if (!e->take) continue;
            if (!sp_spool_read_entry(s, e, &b, !have_tag)) {
                s->corrupt_entries++;
                continue;
            }
            if (!have_tag) tag_len = e->h.tag_len;
            have_tag = 1;
            nrecords += e->h.nrecords;
        }
        if (!nrecords) {
            sp_spool_live(s, head->lo, head->hi, -1);
            continue;
        }
        s->replayed++;
        took += b.len;
        s->owner.restore(s->owner.ctx, sp_slice_make(b.base, tag_len), b.base + tag_len,
                         b.len - tag_len, nrecords, head->h.seq, head->lo, head->hi);
    }
    sp_buf_free(&b);
    if (s->replay_pos == s->nreplay && s->replay) {
        uv_idle_stop(&s->replay_idle);
        free(s->replay);
        s->replay = NULL;
        s->nreplay = s->replay_pos = 0;
        sp_spool_gc(s);
    }
}

void sp_spool_replay(sp_spool *s)
{
    sp_spool_replay_some(s, UINT64_MAX);
}

static void sp_spool_replay_idle_cb(uv_idle_t *h)
{
    sp_spool *s = h->data;
    sp_spool_replay_some(s, SP_REPLAY_SLICE);
    /* Memory reached: sp_spool_done brings the next ones as chunks are delivered. */
    if (s->replay_pos < s->nreplay && !s->owner.replay_room(s->owner.ctx))
        uv_idle_stop(&s->replay_idle);
}

void sp_spool_replay_start(sp_spool *s)
{
    if (s->replay_pos < s->nreplay && !s->closed)
        uv_idle_start(&s->replay_idle, sp_spool_replay_idle_cb);
}

int sp_spool_open(sp_spool **out, uv_loop_t *loop, const char *dir, uint64_t limit,
                  const sp_spool_owner *owner)
{
    sp_spool *s = sp_calloc(1, sizeof *s);
    s->owner = *owner;
    s->limit = limit;
    /* Small segments for small limits, so finished ones can be deleted long before the limit. */
    s->seg_max = limit / 8 < SP_SEG_MAX ? limit / 8 : SP_SEG_MAX;
    if (s->seg_max < 2 * owner->chunk_size) s->seg_max = 2 * owner->chunk_size;
    s->fd = -1;
    size_t n = strlen(dir) + 8;
    s->dir = sp_malloc(n);
    snprintf(s->dir, n, "%s/spool", dir);
    sp_list_init(&s->segs);
    sp_list_init(&s->work);
    mkdir(dir, 0700);
    if (mkdir(s->dir, 0700) && errno != EEXIST) {
        int err = -errno;
        sp_error("spool: cannot create %s: %s", s->dir, strerror(errno));
        free(s->dir);
        free(s);
        return err;
    }
    int rc = sp_spool_load(s);
    if (rc) {
        sp_error("spool: cannot read %s: %s", s->dir, strerror(-rc));
        free(s->dir);
        free(s);
        return rc;
    }
    pthread_mutex_init(&s->sync_mu, NULL);
    pthread_cond_init(&s->sync_cv, NULL);
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setstacksize(&at, 256 << 10);
    rc = pthread_create(&s->sync_thread, &at, sp_spool_sync_main, s);
    pthread_attr_destroy(&at);
    if (rc) {
        sp_error("spool: cannot start its fsync thread: %s", strerror(rc));
        return -rc; /* shipper exits: what was loaded is not worth freeing one by one */
    }
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    uv_timer_start(&s->timer, sp_spool_timer_cb, 1000, 1000);
    uv_async_init(loop, &s->sync_async, sp_spool_sync_after);
    s->sync_async.data = s;
    uv_idle_init(loop, &s->replay_idle);
    s->replay_idle.data = s;
    s->handles = 3;
    s->opened = 1;
    *out = s;
    return 0;
}

void sp_spool_metrics(const sp_spool *s, sp_buf *out)
{
    sp_buf_printf(out,
                  "# TYPE shipper_spool_failing gauge\nshipper_spool_failing %d\n"
                  "# TYPE shipper_spool_write_errors_total counter\n"
                  "shipper_spool_write_errors_total %llu\n"
                  "# TYPE shipper_spool_corrupt_entries_total counter\n"
                  "shipper_spool_corrupt_entries_total %llu\n"
                  "# TYPE shipper_spool_corrupt_bytes_total counter\n"
                  "shipper_spool_corrupt_bytes_total %llu\n"
                  "# TYPE shipper_spool_replayed_chunks_total counter\n"
                  "shipper_spool_replayed_chunks_total %llu\n"
                  "# TYPE shipper_spool_fsyncs_total counter\nshipper_spool_fsyncs_total %llu\n",
                  s->failing, (unsigned long long)s->write_errors,
                  (unsigned long long)s->corrupt_entries, (unsigned long long)s->corrupt_bytes,
                  (unsigned long long)s->replayed, (unsigned long long)s->fsyncs);
}

uint64_t sp_spool_bytes(const sp_spool *s)
{
    return s->bytes;
}

static void sp_spool_free(uv_handle_t *h)
{
    sp_spool *s = h->data;
    if (--s->handles) return;
    while (!sp_list_empty(&s->segs)) {
        sp_list *l = s->segs.next;
        sp_list_remove(l);
        free(sp_list_entry(l, sp_seg, link));
    }
    sp_buf_free(&s->done);
    free(s->replay);
    free(s->dir);
    pthread_mutex_destroy(&s->sync_mu);
    pthread_cond_destroy(&s->sync_cv);
    free(s);
}

void sp_spool_close(sp_spool *s)
{
    if (!s) return;
    s->closed = 1;
    /* The fsync thread finishes what it runs (if anything) and ends. */
    pthread_mutex_lock(&s->sync_mu);
    s->sync_quit = 1;
    pthread_cond_signal(&s->sync_cv);
    pthread_mutex_unlock(&s->sync_mu);
    pthread_join(s->sync_thread, NULL);
    if (s->sync_running) close(s->sync_fd);
    s->sync_running = 0;
    /* Whatever is still in memory and not on disk gets one more try, so a clean stop leaves it
     * for the next start. */
    sp_list *it;
    sp_list_foreach(it, &s->work)
    {
        sp_chunk *c = sp_list_entry(it, sp_chunk, spool_link);
        if (c->spooled < c->data.len && sp_spool_write(s, c)) break;
    }
    sp_spool_flush_done(s);
    if (s->fd >= 0) {
        if (sp_spool_sync_fn(s->fd))
            sp_error("spool: fsync in %s failed at stop: %s; what the last run acked as durable "
                     "is kept, the rest may be lost",
                     s->dir, strerror(errno));
        close(s->fd);
        s->fd = -1;
    }
    /* The closed chunks it held were never dispatched: the router frees them as not delivered
     * (open ones are the router's: it frees them when it closes). */
    while (!sp_list_empty(&s->work)) {
        sp_chunk *c = sp_list_entry(s->work.next, sp_chunk, spool_link);
        sp_list_remove(&c->spool_link);
        if (!c->tagent) s->owner.drop(s->owner.ctx, c);
    }
    uv_timer_stop(&s->timer);
    uv_idle_stop(&s->replay_idle);
    uv_close((uv_handle_t *)&s->replay_idle, sp_spool_free);
    uv_close((uv_handle_t *)&s->timer, sp_spool_free);
    uv_close((uv_handle_t *)&s->sync_async, sp_spool_free);
}
