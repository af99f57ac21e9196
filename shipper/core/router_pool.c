/*
 * Chunk buffers kept for reuse (docs/architecture.md, "Who owns what"). A released chunk's
 * buffer goes back to the pool instead of to malloc, and the next chunk takes it: under a flood
 * the buffer swings between memory_limit (inputs pause) and 80% of it (they resume), and
 * without the pool every swing freed a fifth of the limit into holes of the heap — resident,
 * counted nowhere — or, at the heap's top, gave it back to the kernel and faulted it in again.
 * The pool holds at most a quarter of memory_limit. A buffer enters it as its chunk leaves what
 * sp_router_held counts and leaves it as a new chunk starts to fill, so held plus the pool grow
 * only when held does, as if chunks were freed and made anew; when an output's or input's own
 * hold grows, the pool shrinks to keep the sum within the limit. It is counted by what each
 * buffer's last chunk wrote (the pages it touched; the rest of its capacity was never faulted in).
 * The pool is given back after SP_POOL_IDLE_MS without a taker.
 */
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "router.h"

#define SP_POOL_IDLE_MS 2000 /* no chunk taken from the pool for this long: free it */
#define SP_POOL_KEEP 4       /* ... but for this many buffers */

sp_chunk *sp_router_pool_get(sp_router *r)
{
    if (sp_list_empty(&r->free_chunks)) return NULL;
    sp_list *l = r->free_chunks.next;
    sp_list_remove(l);
    r->nfree--;
    sp_chunk *c = sp_list_entry(l, sp_chunk, link);
    r->cached_bytes -= c->data.len;
    r->pool_used_ms = uv_now(r->loop);
    sp_buf data = c->data;
    size_t touched = c->touched > data.len ? c->touched : data.len;
    memset(c, 0, sizeof *c);
    c->data = data;
    c->data.len = 0;
    c->touched = touched; /* its pages are resident already: no prefault up to there */
    return c;
}

/* The pages of a chunk buffer just ahead of what the inputs write are made resident in one call
 * (Linux 5.14+) instead of one page fault per 4 KiB as records are written: the first fill of
 * memory_limit was a third of the loop thread's time in a flood (page faults and the kernel
 * zeroing pages). A step at a time, so a chunk holds at most two steps past its data (a tag
 * that writes little stays a few pages). Where the call is unknown it fails and the pages fault
 * in as before. Called by sp_router_commit when a chunk's data crosses into a new step that is
 * not resident yet (a buffer from the pool is, as far as its last chunk wrote). */
void sp_router_pool_prefault(sp_chunk *c, size_t upto)
{
#ifdef MADV_POPULATE_WRITE
    static uintptr_t page;
    if (!page) page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t base = (uintptr_t)c->data.base;
    size_t end = (c->data.len / SP_PREFAULT_STEP + 2) * SP_PREFAULT_STEP;
    if (end > upto) end = upto; /* chunk_size: past it only the record that fills it */
    if (end > c->data.cap) end = c->data.cap;
    uintptr_t a = (base + c->data.len) & ~(page - 1), e = (base + end) & ~(page - 1);
    if (e > a) (void)madvise((void *)a, e - a, MADV_POPULATE_WRITE);
    if (end > c->touched) c->touched = end;
#else
    (void)c, (void)upto;
#endif
}

static void sp_router_pool_drop(sp_router *r)
{
    sp_chunk *c = sp_list_entry(r->free_chunks.prev, sp_chunk, link); /* the oldest */
    sp_list_remove(&c->link);
    r->nfree--;
    r->cached_bytes -= c->data.len;
    sp_buf_free(&c->data);
    free(c);
}

int sp_router_pool_put(sp_router *r, sp_chunk *c)
{
    if (c->data.cap > r->chunk_size * 2 || r->stopping ||
        r->cached_bytes + c->data.len > r->memory_limit / 4)
        return 0;
    sp_list_insert_head(&r->free_chunks, &c->link); /* data.len stays: what it occupies */
    r->nfree++;
    r->cached_bytes += c->data.len;
    return 1;
}

void sp_router_pool_fit(sp_router *r)
{
    uint64_t held = sp_router_held(r);
    while (r->nfree && held + r->cached_bytes > r->memory_limit)
        sp_router_pool_drop(r);
}

void sp_router_pool_tick(sp_router *r, uint64_t now)
{
    if (r->nfree <= SP_POOL_KEEP || now - r->pool_used_ms < SP_POOL_IDLE_MS) return;
    while (r->nfree > SP_POOL_KEEP)
        sp_router_pool_drop(r);
#ifdef __GLIBC__
    malloc_trim(0); /* the freed buffers may sit below the heap's top: give their pages back */
#endif
}

void sp_router_pool_free(sp_router *r)
{
    while (r->nfree)
        sp_router_pool_drop(r);
}
