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
#include <stdlib.h>
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
    memset(c, 0, sizeof *c);
    c->data = data;
    c->data.len = 0;
    return c;
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
