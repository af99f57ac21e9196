/*
 * The router's tag table: each tag seen, with the outputs and filters whose match it fits
 * (fnmatch, once per tag), in an open-addressing hash table; idle tags are forgotten
 * (docs/architecture.md, "The path of a record").
 */
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "filters.h"
#include "router.h"

#define SP_TAG_IDLE_MS 60000

static void sp_router_tags_grow(sp_router *r)
{
    size_t cap = r->tags_cap * 2;
    sp_tagent **t = sp_calloc(cap, sizeof *t);
    for (size_t i = 0; i < r->tags_cap; i++) {
        sp_tagent *e = r->tags[i];
        if (!e) continue;
        size_t j = e->hash & (cap - 1);
        while (t[j])
            j = (j + 1) & (cap - 1);
        t[j] = e;
    }
    free(r->tags);
    r->tags = t;
    r->tags_cap = cap;
}

sp_tagent *sp_router_tag(sp_router *r, sp_slice tag)
{
    sp_tagent *last = r->last_tag;
    if (last && last->len == tag.len && memcmp(last->tag, tag.base, tag.len) == 0) return last;
    uint64_t h = sp_hash_bytes(tag.base, tag.len);
    size_t j = h & (r->tags_cap - 1);
    for (sp_tagent *e; (e = r->tags[j]); j = (j + 1) & (r->tags_cap - 1))
        if (e->hash == h && e->len == tag.len && memcmp(e->tag, tag.base, tag.len) == 0)
            return r->last_tag = e;
    sp_tagent *e = sp_calloc(1, sizeof *e);
    e->tag = sp_strndup(tag.base, tag.len);
    e->len = tag.len;
    e->hash = h;
    for (size_t i = 0; i < r->noutputs; i++)
        if (fnmatch(r->outputs[i]->match, e->tag, 0) == 0) e->outputs |= 1ULL << i;
    for (size_t i = 0; i < r->nfilters; i++)
        if (fnmatch(r->filters[i]->match, e->tag, 0) == 0) e->filters |= 1ULL << i;
    r->tags[j] = e;
    if (++r->ntags * 2 > r->tags_cap) sp_router_tags_grow(r);
    return r->last_tag = e;
}

uint64_t sp_router_filter_mask(sp_router *r, sp_slice tag)
{
    sp_tagent *e = sp_router_tag(r, tag);
    e->last_ms = uv_now(r->loop);
    return e->filters;
}

/* Forgets tags unused for a while, so a host with container churn doesn't grow the table.
 * Rebuilding is simpler than deletion with open addressing, and it runs rarely. */
void sp_router_tags_expire(sp_router *r, uint64_t now)
{
    size_t idle = 0;
    for (size_t i = 0; i < r->tags_cap; i++)
        if (r->tags[i] && !r->tags[i]->open && now - r->tags[i]->last_ms > SP_TAG_IDLE_MS) idle++;
    if (idle < 64 || idle * 4 < r->ntags) return;
    sp_tagent **old = r->tags;
    size_t oldcap = r->tags_cap;
    r->last_tag = NULL;
    r->tags = sp_calloc(oldcap, sizeof *r->tags);
    r->ntags = 0;
    for (size_t i = 0; i < oldcap; i++) {
        sp_tagent *e = old[i];
        if (!e) continue;
        if (!e->open && now - e->last_ms > SP_TAG_IDLE_MS) {
            free(e->tag);
            free(e);
            continue;
        }
        size_t j = e->hash & (oldcap - 1);
        while (r->tags[j])
            j = (j + 1) & (oldcap - 1);
        r->tags[j] = e;
        r->ntags++;
    }
    free(old);
}
