/*
 * Frames encoded off the event loop (docs/forward_output.md, "Encoding"): each chunk handed to a
 * server is re-encoded into its PackedForward frame on libuv's thread pool, `encode_threads` at
 * once, so the loop keeps reading the inputs meanwhile. Frames leave in the order their chunks
 * were handed over, whichever encoder finishes first. `encode_threads: 0` encodes on the loop.
 */
#include <libdeflate.h>
#include <stdlib.h>

#include "fwd_out.h"

enum { SP_FWDOUT_ENC_QUEUED = 0, SP_FWDOUT_ENC_WORKING, SP_FWDOUT_ENC_DONE };

/* Thread pool (or the loop with encode_threads 0): the chunk into e->out. */
static void sp_fwdout_enc_work(uv_work_t *w)
{
    sp_fwdout_enc *e = w->data;
    sp_fwdout_slot *sl = e->slot;
    if (e->fo->conf->compression == SP_FWDOUT_COMP_GZIP && !sl->gz)
        sl->gz = libdeflate_alloc_compressor((int)e->fo->conf->gzip_level);
    if (e->fo->conf->compression == SP_FWDOUT_COMP_GZIP && !sl->gz) {
        e->rc = -1;
        return;
    }
    e->rc = sp_fwdout_frame(&e->out, sl->scratch, e->chunk, sl->gz, e->f->id);
}

/* The encoder back to the idle list (a few kept with their buffers), or freed. */
static void sp_fwdout_enc_release(sp_fwdout *fo, sp_fwdout_enc *e)
{
    sp_list_remove(&e->link);
    if (fo->nidle < SP_FWDOUT_SPARE && !fo->stopping) {
        if (e->out.base && e->out.cap > (8u << 20)) sp_buf_free(&e->out); /* an outsized one */
        sp_list_insert_tail(&fo->idle, &e->link);
        fo->nidle++;
        return;
    }
    sp_fwdout_enc_free(e);
}

void sp_fwdout_enc_free(sp_fwdout_enc *e)
{
    sp_buf_free(&e->out);
    free(e);
}

void sp_fwdout_slots_free(sp_fwdout *fo)
{
    int64_t n = fo->conf->encode_threads ? fo->conf->encode_threads : 1;
    for (int64_t i = 0; fo->slots && i < n; i++) {
        sp_buf_free(&fo->slots[i].scratch[0]);
        sp_buf_free(&fo->slots[i].scratch[1]);
        if (fo->slots[i].gz) libdeflate_free_compressor(fo->slots[i].gz);
    }
    free(fo->slots);
}

/* A free slot for an encoder (there is one while encoding_now < encode_threads). */
static sp_fwdout_slot *sp_fwdout_slot_take(sp_fwdout *fo)
{
    for (int64_t i = 0;; i++)
        if (!fo->slots[i].busy) {
            fo->slots[i].busy = 1;
            return &fo->slots[i];
        }
}

/* The encoded frame of `e` to its server's connection, or the frame failed. */
static void sp_fwdout_enc_send(sp_fwdout *fo, sp_fwdout_enc *e)
{
    sp_fwdout_server *s = e->srv;
    sp_fwdout_frame_t *f = e->f;
    sp_fwdout_conn *c = s->conn;
    if (fo->stopping || !c || s->state != SP_FWDOUT_UP || e->rc) {
        if (e->rc && !fo->stopping)
            sp_out_log_limited(fo->o, &fo->rl, SP_LOG_ERROR, "chunk %llu could not be encoded",
                               (unsigned long long)e->chunk->seq);
        sp_fwdout_frame_done(fo, f, 0);
        return;
    }
    s->chunks++;
    s->records += f->records;
    sp_fwdout_conn_send(c, &e->out, f); /* plain: takes e->out over */
}

static void sp_fwdout_enc_pump(sp_fwdout *fo);
static void sp_fwdout_enc_drain(sp_fwdout *fo);

/* Loop thread: an encoder finished. */
static void sp_fwdout_enc_done(uv_work_t *w, int status)
{
    sp_fwdout_enc *e = w->data;
    sp_fwdout *fo = e->fo;
    if (status < 0) e->rc = -1;
    e->slot->busy = 0;
    e->slot = NULL;
    e->state = SP_FWDOUT_ENC_DONE;
    fo->encoding_now--;
    fo->handles++; /* held: answers below may re-enter deliver (or stop) */
    sp_fwdout_enc_drain(fo);
    sp_fwdout_enc_pump(fo);
    sp_fwdout_unref(fo);                               /* the hold */
    if (fo->conf->encode_threads) sp_fwdout_unref(fo); /* the work request */
}

/* Sends the finished frames at the head of the list, in hand-over order. Stopping: the chunks
 * not being encoded yet are not encoded (they fail). */
static void sp_fwdout_enc_drain(sp_fwdout *fo)
{
    sp_list *it;
    if (fo->stopping) sp_list_foreach(it, &fo->encoding)
        {
            sp_fwdout_enc *q = sp_list_entry(it, sp_fwdout_enc, link);
            if (q->state == SP_FWDOUT_ENC_QUEUED) q->state = SP_FWDOUT_ENC_DONE, q->rc = 0;
        }
    while (!sp_list_empty(&fo->encoding)) {
        sp_fwdout_enc *h = sp_list_entry(fo->encoding.next, sp_fwdout_enc, link);
        if (h->state != SP_FWDOUT_ENC_DONE) break;
        sp_list_remove(&h->link);
        sp_list_init(&h->link);
        sp_fwdout_enc_send(fo, h);
        sp_fwdout_enc_release(fo, h);
    }
}

/* Loop thread: `e` gets a slot and its frame buffer, sized for the whole frame (no regrowth
 * while encoding). Taken here, on the loop and only when the encoding starts: a buffer a pool
 * thread allocated comes from (and goes back to) that thread's heap, and buffers reserved for
 * every queued chunk outnumber the kept ones; either way glibc gave the memory back and every
 * frame faulted its pages in again (up to twice the page faults). */
static void sp_fwdout_enc_start(sp_fwdout *fo, sp_fwdout_enc *e)
{
    const sp_chunk *c = e->chunk;
    if (!e->out.base && fo->nspare) e->out = fo->spare[--fo->nspare];
    e->out.len = 0;
    sp_buf_reserve_exact(&e->out, c->data.len + c->data.len / 4 + 512);
    e->state = SP_FWDOUT_ENC_WORKING;
    e->slot = sp_fwdout_slot_take(fo);
    fo->encoding_now++;
}

/* Starts encoders on queued chunks, up to encode_threads at once. */
static void sp_fwdout_enc_pump(sp_fwdout *fo)
{
    if (!fo->conf->encode_threads) return;
    sp_list *it;
    sp_list_foreach(it, &fo->encoding)
    {
        if (fo->encoding_now >= fo->conf->encode_threads) return;
        sp_fwdout_enc *e = sp_list_entry(it, sp_fwdout_enc, link);
        if (e->state != SP_FWDOUT_ENC_QUEUED) continue;
        sp_fwdout_enc_start(fo, e);
        fo->handles++;
        uv_queue_work(fo->o->loop, &e->work, sp_fwdout_enc_work, sp_fwdout_enc_done);
    }
}

void sp_fwdout_enc_submit(sp_fwdout *fo, sp_fwdout_server *s, sp_fwdout_frame_t *f,
                          const sp_chunk *c)
{
    sp_fwdout_enc *e;
    if (!sp_list_empty(&fo->idle)) {
        e = sp_list_entry(fo->idle.next, sp_fwdout_enc, link);
        sp_list_remove(&e->link);
        fo->nidle--;
    } else {
        e = sp_calloc(1, sizeof *e);
        e->fo = fo;
    }
    e->work.data = e;
    e->srv = s;
    e->f = f;
    e->chunk = c;
    e->rc = 0;
    e->state = SP_FWDOUT_ENC_QUEUED;
    sp_list_insert_tail(&fo->encoding, &e->link);
    if (!fo->conf->encode_threads) { /* on the loop, now */
        sp_fwdout_enc_start(fo, e);
        sp_fwdout_enc_work(&e->work);
        sp_fwdout_enc_done(&e->work, 0);
        return;
    }
    sp_fwdout_enc_pump(fo);
}
