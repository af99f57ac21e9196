/* The on-disk spool: segment files of CRC-checked chunk entries, grouped fsyncs, replay. */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

#include "log.h"
#include "router.h"

#define SP_SEG_MAX (64u << 20)
#define SP_MAGIC_CHUNK 0x31435053u /* "SPC1" */
#define SP_MAGIC_DONE 0x31445053u  /* "SPD1" */

/* One entry's header; the payload (tag, then records) follows. CRC covers header and payload. */
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
    int64_t live; /* chunks in it not yet done */
} sp_seg;

typedef struct {
    sp_seg *seg;
    uint64_t off;
    sp_spool_hdr h;
} sp_replay;

struct sp_spool {
    sp_router *r;
    char *dir;
    uint64_t limit;
    uint64_t seg_max; /* a segment is left for a new one at this size */
    sp_list segs;     /* oldest first */
    sp_seg *cur;
    int fd;
    uint64_t next_id;
    uint64_t bytes;
    sp_list pending;  /* chunks not written yet (a write failed) */
    sp_list unsynced; /* written, waiting for the next fsync */
    sp_list syncing;  /* covered by the fsync running now */
    uv_work_t work;
    int sync_fd, sync_rc, sync_running;
    uv_timer_t timer;
    int failing, closed;
    sp_buf done; /* done entries not written yet */
    sp_replay *replay;
    size_t nreplay, replay_pos;
    uint64_t corrupt_entries, corrupt_bytes, write_errors, replayed, fsyncs;
    sp_ratelimit rl;
};

static uint32_t sp__crc(const sp_spool_hdr *h, const void *tag, const void *data)
{
    sp_spool_hdr c = *h;
    c.crc = 0;
    uLong crc = crc32(0L, (const Bytef *)&c, sizeof c);
    crc = crc32(crc, tag, h->tag_len);
    crc = crc32(crc, data, (uInt)h->data_len);
    return (uint32_t)crc;
}

static void sp__seg_path(const sp_spool *s, uint64_t id, char *out, size_t n)
{
    snprintf(out, n, "%s/%016llx.seg", s->dir, (unsigned long long)id);
}

/* ---- segments ---- */

static int sp__rotate(sp_spool *s)
{
    if (s->fd >= 0) {
        fdatasync(s->fd); /* chunks written there must be durable before it is left */
        close(s->fd);
        s->fd = -1;
    }
    char path[4200];
    sp__seg_path(s, s->next_id, path, sizeof path);
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
static void sp__gc(sp_spool *s)
{
    while (!sp_list_empty(&s->segs)) {
        sp_seg *g = sp_list_entry(s->segs.next, sp_seg, link);
        if (g->live > 0) break;
        if (g == s->cur) {
            /* Only when it has grown (or the disk is full): recreating a file per chunk would
             * cost an open and a directory fsync each time. */
            if (!s->failing && g->size < s->seg_max / 4) break;
            /* Every chunk ever spooled is done: start afresh, or a full disk would stay full
             * of finished chunks. Pending done entries only named chunks deleted by now. */
            close(s->fd);
            s->fd = -1;
            s->cur = NULL;
            s->done.len = 0;
        }
        char path[4200];
        sp__seg_path(s, g->id, path, sizeof path);
        unlink(path);
        s->bytes -= g->size;
        sp_list_remove(&g->link);
        free(g);
    }
}

/* ---- writing ---- */

static int sp__writev_all(sp_spool *s, struct iovec *iov, int n, size_t total)
{
    ssize_t w = writev(s->fd, iov, n);
    if (w == (ssize_t)total) return 0;
    int err = w < 0 ? errno : ENOSPC;
    /* A short write would leave a torn entry in the middle of the segment: cut it off. */
    (void)!ftruncate(s->fd, (off_t)s->cur->size);
    return -err;
}

static int sp__flush_done(sp_spool *s)
{
    if (!s->done.len || s->fd < 0) return 0;
    struct iovec iov = {s->done.base, s->done.len};
    int rc = sp__writev_all(s, &iov, 1, s->done.len);
    if (rc) return rc;
    s->cur->size += s->done.len;
    s->bytes += s->done.len;
    s->done.len = 0;
    return 0;
}

static int sp__write(sp_spool *s, sp_chunk *c)
{
    if (!s->cur || s->cur->size >= s->seg_max) {
        int rc = sp__rotate(s);
        if (rc) return rc;
    }
    sp_spool_hdr h = {SP_MAGIC_CHUNK, 0, c->seq, c->nrecords, (uint32_t)c->tag_len, c->data.len};
    h.crc = sp__crc(&h, c->tag, c->data.base);
    struct iovec iov[3] = {{&h, sizeof h}, {c->tag, c->tag_len}, {c->data.base, c->data.len}};
    size_t total = sizeof h + c->tag_len + c->data.len;
    int rc = sp__writev_all(s, iov, 3, total);
    if (rc) return rc;
    s->cur->size += total;
    s->cur->live++;
    s->bytes += total;
    c->spool = s->cur;
    sp__flush_done(s); /* on failure, done entries wait for the next write */
    return 0;
}

static void sp__sync_start(sp_spool *s);

static void sp__sync_work(uv_work_t *w)
{
    sp_spool *s = w->data;
    s->sync_rc = fdatasync(s->sync_fd) ? -errno : 0;
}

static void sp__sync_after(uv_work_t *w, int status)
{
    sp_spool *s = w->data;
    close(s->sync_fd);
    s->sync_running = 0;
    s->fsyncs++;
    if (s->closed) return;
    if (s->sync_rc) {
        /* The data may not be on disk: keep the chunks, try again. */
        s->write_errors++;
        sp_log_limited(&s->rl, SP_LOG_ERROR, "spool: fsync in %s failed: %s", s->dir,
                       strerror(-s->sync_rc));
        while (!sp_list_empty(&s->syncing)) {
            sp_list *l = s->syncing.prev;
            sp_list_remove(l);
            sp_list_insert_head(&s->unsynced, l);
        }
        return; /* the timer retries */
    }
    while (!sp_list_empty(&s->syncing)) {
        sp_chunk *c = sp_list_entry(s->syncing.next, sp_chunk, link);
        sp_list_remove(&c->link);
        sp_router_dispatch(s->r, c);
    }
    sp__sync_start(s);
}

static void sp__sync_start(sp_spool *s)
{
    if (s->sync_running || sp_list_empty(&s->unsynced) || s->fd < 0) return;
    s->sync_fd = dup(s->fd);
    if (s->sync_fd < 0) return;
    while (!sp_list_empty(&s->unsynced)) {
        sp_list *l = s->unsynced.next;
        sp_list_remove(l);
        sp_list_insert_tail(&s->syncing, l);
    }
    s->sync_running = 1;
    s->work.data = s;
    uv_queue_work(s->r->loop, &s->work, sp__sync_work, sp__sync_after);
}

static void sp__set_failing(sp_spool *s, int failing, int err)
{
    if (failing && !s->failing)
        sp_error("spool: cannot write to %s: %s; inputs paused until it can", s->dir,
                 strerror(-err));
    else if (!failing && s->failing)
        sp_info("spool: writing to %s again", s->dir);
    if (failing) s->write_errors++;
    s->failing = failing;
    sp_router_hold(s->r, 0); /* re-evaluates pausing */
}

/* Writes pending chunks in order; stops at the first failure. */
static void sp__drain_pending(sp_spool *s)
{
    while (!sp_list_empty(&s->pending)) {
        sp_chunk *c = sp_list_entry(s->pending.next, sp_chunk, link);
        int rc = sp__write(s, c);
        if (rc) {
            sp__set_failing(s, 1, rc);
            return;
        }
        sp_list_remove(&c->link);
        sp_list_insert_tail(&s->unsynced, &c->link);
    }
    if (s->failing) sp__set_failing(s, 0, 0);
    sp__sync_start(s);
}

void sp_spool_add(sp_spool *s, sp_chunk *c)
{
    sp_list_insert_tail(&s->pending, &c->link);
    if (!s->failing) sp__drain_pending(s);
}

void sp_spool_done(sp_spool *s, sp_chunk *c)
{
    sp_seg *g = c->spool;
    c->spool = NULL;
    if (!g) return;
    sp_spool_hdr h = {SP_MAGIC_DONE, 0, c->seq, 0, 0, 0};
    h.crc = sp__crc(&h, "", "");
    sp_buf_append(&s->done, &h, sizeof h);
    g->live--;
    sp__gc(s);
    if (s->replay_pos < s->nreplay) sp_spool_replay(s);
}

static void sp__timer_cb(uv_timer_t *t)
{
    sp_spool *s = t->data;
    if (!sp_list_empty(&s->pending)) sp__drain_pending(s);
    if (!s->failing && sp__flush_done(s) == 0) sp__gc(s);
    sp__sync_start(s);
}

int sp_spool_busy(const sp_spool *s)
{
    return !sp_list_empty(&s->pending) || !sp_list_empty(&s->unsynced) ||
           !sp_list_empty(&s->syncing) || s->replay_pos < s->nreplay;
}

int sp_spool_settled(const sp_spool *s)
{
    return sp_list_empty(&s->pending) && sp_list_empty(&s->unsynced) && sp_list_empty(&s->syncing);
}

int sp_spool_blocked(const sp_spool *s)
{
    return s->failing || s->bytes > s->limit;
}

/* ---- replay ---- */

static int sp__cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int sp__cmp_id(const void *a, const void *b)
{
    return sp__cmp_u64(a, b);
}

/* Length of the valid entry at m[off..size), or 0 if there is none there. */
static uint64_t sp__entry_at(const uint8_t *m, uint64_t size, uint64_t off, sp_spool_hdr *h)
{
    if (size - off < sizeof *h) return 0;
    memcpy(h, m + off, sizeof *h);
    if (h->magic != SP_MAGIC_CHUNK && h->magic != SP_MAGIC_DONE) return 0;
    uint64_t plen = (uint64_t)h->tag_len + h->data_len;
    if (plen > size - off - sizeof *h) return 0; /* runs past the end: torn */
    const uint8_t *pl = m + off + sizeof *h;
    if (sp__crc(h, pl, pl + h->tag_len) != h->crc) return 0;
    return sizeof *h + plen;
}

/* The next offset after `off` where a valid entry starts, or `size`. */
static uint64_t sp__resync(const uint8_t *m, uint64_t size, uint64_t off)
{
    for (uint64_t at = off + 1; at + sizeof(sp_spool_hdr) <= size; at++) {
        if (m[at] != 'S' || m[at + 1] != 'P' || (m[at + 2] != 'C' && m[at + 2] != 'D')) continue;
        sp_spool_hdr h;
        if (sp__entry_at(m, size, at, &h)) return at;
    }
    return size;
}

/* Reads one segment: chunk entries become replay candidates, done entries are collected. A
 * corrupt entry (bit rot, a torn write) is skipped up to the next entry whose CRC checks, so
 * one bad chunk costs only itself; a torn tail is cut off. Both are counted and reported. */
static void sp__scan_seg(sp_spool *s, sp_seg *g, uint64_t **done, size_t *ndone, uint64_t *maxseq)
{
    char path[4200];
    sp__seg_path(s, g->id, path, sizeof path);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) return;
    struct stat st;
    uint64_t size = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0, off = 0, good_end = 0;
    const uint8_t *m = size ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    if (m == MAP_FAILED) m = NULL, size = 0;
    while (off < size) {
        sp_spool_hdr h;
        uint64_t len = sp__entry_at(m, size, off, &h);
        if (!len) {
            uint64_t next = sp__resync(m, size, off);
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
            s->replay = sp_realloc(s->replay, (s->nreplay + 1) * sizeof *s->replay);
            s->replay[s->nreplay++] = (sp_replay){g, off, h};
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

static int sp__load(sp_spool *s)
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
    if (nids) qsort(ids, nids, sizeof *ids, sp__cmp_id);
    uint64_t *done = NULL, maxseq = 0;
    size_t ndone = 0;
    for (size_t i = 0; i < nids; i++) {
        sp_seg *g = sp_calloc(1, sizeof *g);
        g->id = ids[i];
        sp_list_insert_tail(&s->segs, &g->link);
        sp__scan_seg(s, g, &done, &ndone, &maxseq);
        s->next_id = ids[i] + 1;
    }
    free(ids);
    if (ndone) qsort(done, ndone, sizeof *done, sp__cmp_u64);
    size_t keep = 0;
    for (size_t i = 0; i < s->nreplay; i++) {
        uint64_t seq = s->replay[i].h.seq;
        if (ndone && bsearch(&seq, done, ndone, sizeof *done, sp__cmp_u64)) continue;
        s->replay[i].seg->live++;
        s->replay[keep++] = s->replay[i];
    }
    s->nreplay = keep;
    free(done);
    if (s->r->seq < maxseq) s->r->seq = maxseq; /* new chunks must not reuse a spooled seq */
    sp__gc(s);
    if (s->nreplay)
        sp_info("spool: %zu chunk(s) from a previous run will be delivered", s->nreplay);
    return 0;
}

void sp_spool_replay(sp_spool *s)
{
    /* Bring chunks back only while memory allows, so a large spool never exceeds the limit. */
    while (s->replay_pos < s->nreplay && s->r->bytes < s->r->memory_limit / 2) {
        sp_replay *e = &s->replay[s->replay_pos++];
        char path[4200];
        sp__seg_path(s, e->seg->id, path, sizeof path);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        sp_buf b = {0};
        uint64_t plen = (uint64_t)e->h.tag_len + e->h.data_len;
        sp_buf_reserve(&b, plen + 1);
        int ok = fd >= 0 &&
                 pread(fd, b.base, plen, (off_t)(e->off + sizeof e->h)) == (ssize_t)plen &&
                 sp__crc(&e->h, b.base, b.base + e->h.tag_len) == e->h.crc;
        if (fd >= 0) close(fd);
        if (!ok) {
            s->corrupt_entries++;
            e->seg->live--;
            sp_buf_free(&b);
            continue;
        }
        s->replayed++;
        sp_router_restore(s->r, sp_slice_make(b.base, e->h.tag_len), b.base + e->h.tag_len,
                          e->h.data_len, e->h.nrecords, e->h.seq, e->seg);
        sp_buf_free(&b);
    }
    if (s->replay_pos == s->nreplay && s->replay) {
        free(s->replay);
        s->replay = NULL;
        s->nreplay = s->replay_pos = 0;
        sp__gc(s);
    }
}

int sp_spool_open(sp_spool **out, sp_router *r, const char *dir, uint64_t limit)
{
    sp_spool *s = sp_calloc(1, sizeof *s);
    s->r = r;
    s->limit = limit;
    /* Small segments for small limits, so finished ones can be deleted long before the limit. */
    s->seg_max = limit / 8 < SP_SEG_MAX ? limit / 8 : SP_SEG_MAX;
    if (s->seg_max < 2 * r->chunk_size) s->seg_max = 2 * r->chunk_size;
    s->fd = -1;
    size_t n = strlen(dir) + 8;
    s->dir = sp_malloc(n);
    snprintf(s->dir, n, "%s/spool", dir);
    sp_list_init(&s->segs);
    sp_list_init(&s->pending);
    sp_list_init(&s->unsynced);
    sp_list_init(&s->syncing);
    mkdir(dir, 0700);
    if (mkdir(s->dir, 0700) && errno != EEXIST) {
        int err = -errno;
        sp_error("spool: cannot create %s: %s", s->dir, strerror(errno));
        free(s->dir);
        free(s);
        return err;
    }
    int rc = sp__load(s);
    if (rc) {
        sp_error("spool: cannot read %s: %s", s->dir, strerror(-rc));
        free(s->dir);
        free(s);
        return rc;
    }
    uv_timer_init(r->loop, &s->timer);
    s->timer.data = s;
    uv_timer_start(&s->timer, sp__timer_cb, 1000, 1000);
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

static void sp__free(uv_handle_t *h)
{
    sp_spool *s = h->data;
    if (s->sync_running) return; /* its callback still needs the struct; exit is near anyway */
    while (!sp_list_empty(&s->segs)) {
        sp_list *l = s->segs.next;
        sp_list_remove(l);
        free(sp_list_entry(l, sp_seg, link));
    }
    sp_buf_free(&s->done);
    free(s->replay);
    free(s->dir);
    free(s);
}

void sp_spool_close(sp_spool *s)
{
    if (!s) return;
    s->closed = 1;
    /* Whatever is still in memory and unwritten gets one more try, so a clean stop leaves it
     * for the next start. */
    while (!sp_list_empty(&s->pending)) {
        sp_chunk *c = sp_list_entry(s->pending.next, sp_chunk, link);
        if (sp__write(s, c)) break;
        sp_list_remove(&c->link);
    }
    sp__flush_done(s);
    if (s->fd >= 0) {
        fdatasync(s->fd);
        close(s->fd);
        s->fd = -1;
    }
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, sp__free);
}
