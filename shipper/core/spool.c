/* The on-disk spool: open, close, segments and accounting. Writing and fsyncs are in
 * spool_write.c, the scan and replay at start in spool_load.c (docs/architecture.md). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "spool_int.h"

void sp_spool_seg_path(const sp_spool *s, uint64_t id, char *out, size_t n)
{
    snprintf(out, n, "%s/%016llx.seg", s->dir, (unsigned long long)id);
}

/* ---- segments ---- */

sp_seg *sp_spool_seg_next(sp_spool *s, sp_seg *g)
{
    return g->link.next == &s->segs ? NULL : sp_list_entry(g->link.next, sp_seg, link);
}

/* Adds `delta` to the live count of every segment from `lo` to `hi`, in order. */
void sp_spool_live(sp_spool *s, sp_seg *lo, sp_seg *hi, int delta)
{
    for (sp_seg *g = lo; g; g = g == hi ? NULL : sp_spool_seg_next(s, g))
        g->live += delta;
}

/* Deletes segments whose chunks are all done, oldest first: a newer segment may hold the done
 * entries of an older one, so it must outlive it. */
void sp_spool_gc(sp_spool *s)
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

/* Tells the router when the spool crosses spool_limit (either way): inputs pause over it. */
void sp_spool_check_limit(sp_spool *s)
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
