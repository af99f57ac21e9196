/* The spool at start: segments scanned and verified entry by entry, done chunks left out, the
 * rest replayed a slice per loop turn while memory allows (docs/architecture.md, "The states of a
 * chunk"). */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "spool_int.h"

/* Replay at startup brings this much back per loop turn, so inputs accept meanwhile. */
#define SP_REPLAY_SLICE (4u << 20)

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

int sp_spool_load(sp_spool *s)
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
