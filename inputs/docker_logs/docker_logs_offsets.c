/*
 * The docker_logs input, offsets.
 *
 * Offsets: after appending a file's records to a chunk, a watcher on that chunk carries the
 * file offset they end at; when every output has released the chunk the file's committed offset
 * moves there (in order), and the store (offsets.c) is rewritten at most once a second. A file's
 * identity is (device, inode) plus a hash of its first bytes, so a reused inode is not taken for
 * the old file, and a rewritten file is noticed as a truncation.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "docker_logs_int.h"
#include "log.h"
#include "offsets.h"

static void sp_dl_offsets_watch_cb(sp_chunk_watch *cw, sp_chunk *ch, int delivered);

/* How far f's offset may move: not past a line being joined, nor past one a filter holds. */
static uint64_t sp_dl_offsets_safe(sp_dl_cont *c, sp_dl_file *f)
{
    uint64_t off = f->line_off;
    for (int i = 0; i < 3; i++) {
        if (c->join[i].active && c->join[i].file == f && c->join[i].off < off) off = c->join[i].off;
        if (c->hold[i].refs && c->hold[i].file == f && c->hold[i].off < off) off = c->hold[i].off;
    }
    return off;
}

/* What sp_dl_batch_end's watcher picker needs to know. */
typedef struct {
    sp_dl *s;
    sp_dl_cont *c;
    sp_dl_file *f;
} sp_dl_batch_ctx;

/* The watcher that carries offset `end` of f for chunk ch: f's last one, moved further, when it
 * is on the same chunk (returns NULL); else a new one. */
static sp_chunk_watch *sp_dl_offsets_watch(sp_dl *s, sp_dl_file *f, sp_chunk *ch, uint64_t end)
{
    sp_dl_watch *last =
        sp_list_empty(&f->watches) ? NULL : sp_list_entry(f->watches.prev, sp_dl_watch, link);
    /* (Not a watcher already told how much of the chunk it waits for: see sp_chunk_watch.) */
    if (last && !last->fired && !last->w.upto && last->chunk_seq == ch->seq &&
        last->gen == f->gen) {
        if (end > last->end) last->end = end;
        return NULL;
    }
    sp_dl_watch *w = sp_calloc(1, sizeof *w);
    w->w.cb = sp_dl_offsets_watch_cb;
    /* With the spool, a line is safe once its chunk is on disk (the spool replays it), so the
     * offset may move then; without it, only once every output has it. */
    w->w.durable = sp_input_spool_on(s->in);
    w->f = f;
    w->end = end;
    w->chunk_seq = ch->seq;
    w->gen = f->gen;
    sp_list_insert_tail(&f->watches, &w->link);
    s->nwatch++;
    return &w->w;
}

/* The watcher that carries the file offset the appended records end at (an sp_input_watch_fn). */
static sp_chunk_watch *sp_dl_offsets_batch_watch(void *ctx, sp_chunk *ch)
{
    sp_dl_batch_ctx *x = ctx;
    return sp_dl_offsets_watch(x->s, x->f, ch, sp_dl_offsets_safe(x->c, x->f));
}

/* ---- lines a filter holds (multiline): the offset stays before the first of them ---- */

/* A filter holds the line being appended (s->add_file, s->add_off). */
static sp_hold *sp_dl_hold_take(sp_hold *hh)
{
    sp_dl_hold *h = (sp_dl_hold *)hh;
    sp_dl *s = h->c->s;
    if (!h->refs++) {
        h->file = s->add_file;
        h->off = s->add_off;
    }
    s->nwatch++; /* the state stays until the line is in a chunk */
    return hh;
}

/* One reference on the state is gone; when stopping, the last one frees it. */
static void sp_dl_hold_put_state(sp_dl *s)
{
    if (--s->nwatch || !s->stopping || !s->in->closed) return;
    sp_dl_save(s);
    sp_dl_free(s);
}

/* One held line is gone. */
static void sp_dl_hold_put(sp_dl_hold *h)
{
    if (!--h->refs) h->file = NULL;
    sp_dl_hold_put_state(h->c->s);
}

/* The group holding the lines went into chunk ch (not committed yet): the offset moves past
 * them once ch is released, in order with the file's other watchers. While a line is being
 * appended (the group goes ahead of it into the same batch) the offset stops before that line,
 * which may be the first of the next group. */
static sp_chunk_watch *sp_dl_hold_emitted(sp_hold *hh, sp_chunk *ch)
{
    sp_dl_hold *h = (sp_dl_hold *)hh;
    sp_dl_cont *c = h->c;
    sp_dl *s = c->s;
    sp_dl_file *f = h->file;
    s->nwatch++; /* the put below must not free the state yet */
    sp_dl_hold_put(h);
    sp_chunk_watch *w = NULL;
    if (f) {
        uint64_t end = sp_dl_offsets_safe(c, f);
        if (s->add_file == f && s->add_off < end) end = s->add_off;
        w = sp_dl_offsets_watch(s, f, ch, end);
    }
    sp_dl_hold_put_state(s);
    return w;
}

static void sp_dl_hold_dropped(sp_hold *hh, int delivered)
{
    sp_dl_hold_put((sp_dl_hold *)hh);
}

void sp_dl_hold_init(sp_dl_cont *c)
{
    for (int i = 0; i < 3; i++) {
        c->hold[i].c = c;
        c->hold[i].h.take = sp_dl_hold_take;
        c->hold[i].h.emitted = sp_dl_hold_emitted;
        c->hold[i].h.dropped = sp_dl_hold_dropped;
    }
}

int sp_dl_held(const sp_dl_file *f)
{
    for (int i = 0; i < 3; i++)
        if (f->cont->hold[i].refs && f->cont->hold[i].file == f) return 1;
    return 0;
}

/* Ends the current append: a watcher carries the file offset the appended records end at. */
void sp_dl_batch_end(sp_dl *s, sp_dl_cont *c, sp_dl_file *f)
{
    /* Without a file (a joined line whose file is gone) there is no offset to move. */
    sp_dl_batch_ctx x = {s, c, f};
    sp_input_batch_commit(s->in, &s->batch, f ? sp_dl_offsets_batch_watch : NULL, &x);
}

const sp_offset *sp_dl_saved(sp_dl *s, const char *id)
{
    for (size_t i = 0; i < s->nsaved; i++)
        if (strcmp(s->saved[i].id, id) == 0) return &s->saved[i];
    return NULL;
}

void sp_dl_save(sp_dl *s)
{
    if (!s->offsets_path) return;
    sp_offset *v = NULL;
    size_t n = 0, cap = 0;
    sp_list *it;
    sp_list_foreach(it, &s->conts)
    {
        sp_dl_cont *c = sp_list_entry(it, sp_dl_cont, link);
        if (sp_list_empty(&c->files)) continue;
        sp_dl_files_fp_grow(c); /* a short fingerprint would not find a compressed copy */
        /* The oldest file with records not yet released; if there is none, the newest. A
         * restart resumes there and reads every newer file from its start. */
        sp_dl_file *f = NULL;
        sp_list *fi;
        sp_list_foreach(fi, &c->files)
        {
            f = sp_list_entry(fi, sp_dl_file, link);
            if (!f->done || !sp_list_empty(&f->watches) || sp_dl_held(f)) break;
        }
        if (n == cap) v = sp_realloc(v, (cap = cap ? cap * 2 : 16) * sizeof *v);
        sp_offset *o = &v[n++];
        memcpy(o->id, c->id, 65);
        o->dev = f->dev;
        o->ino = f->ino;
        o->fp = f->fp;
        o->fp_len = f->fp_len;
        o->offset = f->committed;
    }
    int rc = sp_offsets_save(s->offsets_path, v, n);
    if (rc)
        sp_in_log_limited(s->in, &s->rl, SP_LOG_ERROR, "cannot write %s: %s", s->offsets_path,
                          strerror(-rc));
    free(v);
    s->state_dirty = 0;
    s->last_save_ms = uv_now(s->in->loop);
}

static void sp_dl_offsets_watch_cb(sp_chunk_watch *cw, sp_chunk *ch, int delivered)
{
    sp_dl_watch *w = sp_list_entry(cw, sp_dl_watch, w);
    sp_dl_file *f = w->f;
    sp_dl *s = f->cont->s;
    w->fired = 1;
    w->delivered = delivered;
    /* Offsets move in order: a chunk released early waits for the ones before it. An
     * undelivered chunk (dropped at shutdown) holds the offset where it is for good. */
    while (!sp_list_empty(&f->watches)) {
        sp_dl_watch *h = sp_list_entry(f->watches.next, sp_dl_watch, link);
        if (!h->fired || !h->delivered) break;
        if (h->gen == f->gen && h->end > f->committed) f->committed = h->end;
        sp_list_remove(&h->link);
        free(h);
        s->nwatch--;
        s->state_dirty = 1;
    }
    if (!s->stopping) return;
    /* Stopping: the poll timer is gone, and every release may be the last one. */
    if (s->state_dirty) sp_dl_save(s);
    if (s->nwatch == 0 && s->in->closed) sp_dl_free(s);
}
