/* The spool's writing side: chunks appended to the current segment as CRC-checked entries,
 * grouped fsyncs on the spool's own thread, durable chunks handed on in order
 * (docs/architecture.md, "The path of a record"). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>
#include <fcntl.h>

#include "log.h"
#include "spool_int.h"

static uint32_t sp_spool_entry_crc(const sp_spool_hdr *h, const void *tag, const void *data)
{
    sp_spool_hdr c = *h;
    c.crc = 0;
    uint32_t crc = sp_spool_crc32(0, &c, sizeof c);
    crc = sp_spool_crc32(crc, tag, h->tag_len);
    crc = sp_spool_crc32(crc, data, h->data_len);
    return (uint32_t)crc;
}

int (*sp_spool_sync_fn)(int fd) = fdatasync;

static void sp_spool_sync_failed(sp_spool *s, int err);
static void sp_spool_sync_start(sp_spool *s);

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

int sp_spool_flush_done(sp_spool *s)
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
int sp_spool_write(sp_spool *s, sp_chunk *c)
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

/* The fsync thread: one fdatasync per request, answered through sync_async. */
void *sp_spool_sync_main(void *arg)
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

void sp_spool_sync_after(uv_async_t *a)
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

void sp_spool_timer_cb(uv_timer_t *t)
{
    sp_spool *s = t->data;
    sp_spool_write_pass(s); /* retries failed writes, and rewrites after a failed fsync */
    if (!s->write_failing && sp_spool_flush_done(s) == 0) sp_spool_gc(s);
    sp_spool_sync_start(s);
}
