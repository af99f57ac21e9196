/*
 * The filter stage (docs/filters.md): every filter whose `match` fits a record's tag, in the
 * configured order, where records enter the buffer (sp_input_batch_add). The tag's filters are a
 * mask computed once per tag by the router; a record no filter matches costs one tag lookup.
 */
#include "filters.h"

#include <stdlib.h>
#include <string.h>

#include "daemon.h"

static void sp_holds_push(sp_holds *h, sp_hold *t)
{
    if (h->n == h->cap) { /* grows with the longest group; reused after */
        h->cap = h->cap ? h->cap * 2 : 16;
        h->v = sp_realloc(h->v, h->cap * sizeof *h->v);
    }
    h->v[h->n++] = t;
}

static int sp_filters_run(sp_router *rt, size_t from, sp_slice tag, sp_record *r)
{
    uint64_t mask = sp_router_filter_mask(rt, tag) >> from;
    for (size_t i = from; mask; i++, mask >>= 1) {
        if (!(mask & 1)) continue;
        sp_filter *f = rt->filters[i];
        int v = f->type->apply(f, r, tag);
        if (v == SP_FILTER_DROP) {
            f->dropped++;
            return SP_FILTER_DROP;
        }
        if (v == SP_FILTER_HOLD) {
            f->held++;
            return SP_FILTER_HOLD; /* not in the buffer now: the filter emits it later */
        }
        f->kept++;
    }
    return SP_FILTER_KEEP;
}

int sp_filters_apply(sp_router *rt, size_t from, sp_slice tag, sp_record *r)
{
    sp_extras_pass(1); /* the filters share one index of the record's extras (filter.h) */
    int v = sp_filters_run(rt, from, tag, r);
    sp_extras_pass(0);
    return v;
}

sp_source *sp_filter_source(const sp_filter *f)
{
    return f->router ? f->router->cur_source : NULL;
}

void sp_source_slow(sp_source *s, uint64_t ms)
{
    if (!s->registered) return;
    sp_router *rt = s->in->router;
    sp_fair_slow(&rt->fair, s, uv_now(rt->loop) + ms);
}

void sp_filter_count(sp_filter *f, const char *result)
{
    sp_reasons_add(&f->results, result);
}

void sp_filter_hold(sp_filter *f, sp_holds *h)
{
    sp_router *rt = f->router;
    if (!rt) return;
    if (rt->cur_holds) { /* a record a filter before this one emitted: its holds move here */
        sp_holds *from = rt->cur_holds;
        for (uint32_t i = 0; i < from->n; i++)
            sp_holds_push(h, from->v[i]);
        from->n = 0;
        return;
    }
    if (rt->cur_hold) sp_holds_push(h, rt->cur_hold->take(rt->cur_hold));
}

void sp_holds_free(sp_holds *h, int delivered)
{
    for (uint32_t i = 0; i < h->n; i++)
        h->v[i]->dropped(h->v[i], delivered);
    free(h->v);
    memset(h, 0, sizeof *h);
}

/* The held records of `h` are in chunk c (written, not committed): their watchers go on it.
 * Returns 1 when one of them wants the chunk closed soon (an ack waits). */
static int sp_filter_holds_attach(sp_holds *h, sp_chunk *c)
{
    int flush = 0;
    for (uint32_t i = 0; i < h->n; i++) {
        sp_hold *t = h->v[i];
        flush |= t->flush; /* before `emitted`, which may free t (its last reference) */
        sp_chunk_watch *w = t->emitted(t, c);
        if (w) sp_chunk_watch_add(c, w);
    }
    h->n = 0;
    return flush;
}

void sp_filter_emit_held(sp_filter *f, sp_slice tag, const sp_record *r0, sp_holds *h)
{
    sp_router *rt = f->router;
    if (!rt || (rt->stopping && !rt->emit_batch)) { /* an input's record still goes in */
        if (h) sp_holds_free(h, 0);
        return;
    }
    sp_record r = *r0;
    sp_source *src = rt->cur_source; /* the record being filtered keeps its own */
    sp_hold *hold = rt->cur_hold;
    sp_holds *holds = rt->cur_holds;
    rt->cur_source = NULL; /* a record the filter made: no source to slow */
    rt->cur_hold = NULL;
    rt->cur_holds = h && h->n ? h : NULL;
    int v = sp_filters_apply(rt, (size_t)f->index + 1, tag, &r);
    rt->cur_source = src;
    rt->cur_hold = hold;
    rt->cur_holds = holds;
    if (v != SP_FILTER_KEEP) { /* held by a later filter (it took h), or dropped: done */
        if (h)
            for (; h->n; h->n--)
                h->v[h->n - 1]->dropped(h->v[h->n - 1], 1);
        return;
    }
    if (rt->emit_batch) { /* inside apply: into the input's open batch, ahead of its record */
        sp_input_batch_write(rt->emit_in, rt->emit_batch, tag, &r);
        if (h && sp_filter_holds_attach(h, rt->emit_batch->chunk)) rt->emit_batch->flush = 1;
        return;
    }
    sp_chunk *c = sp_router_chunk(rt, tag);
    size_t before = c->data.len;
    sp_record_write(&c->data, &r);
    int flush = h ? sp_filter_holds_attach(h, c) : 0;
    sp_router_commit_flush(rt, c, before, 1, flush);
}

void sp_filter_emit(sp_filter *f, sp_slice tag, const sp_record *r)
{
    sp_filter_emit_held(f, tag, r, NULL);
}

void sp_filters_drain(sp_router *rt)
{
    for (size_t i = 0; i < rt->nfilters; i++)
        if (rt->filters[i]->type->drain) rt->filters[i]->type->drain(rt->filters[i]);
}

void sp_filters_metrics(const sp_daemon *d, sp_buf *out)
{
    if (!d->nfilters) return;
    SP_BUF_LIT(out, "# TYPE shipper_filter_records_total counter\n");
    for (size_t i = 0; i < d->nfilters; i++) {
        const sp_filter *f = d->filters[i];
        sp_buf_printf(out,
                      "shipper_filter_records_total{filter=\"%s\",result=\"kept\"} %llu\n"
                      "shipper_filter_records_total{filter=\"%s\",result=\"dropped\"} %llu\n",
                      f->name, (unsigned long long)f->kept, f->name,
                      (unsigned long long)f->dropped);
        if (f->held)
            sp_buf_printf(out, "shipper_filter_records_total{filter=\"%s\",result=\"held\"} %llu\n",
                          f->name, (unsigned long long)f->held);
        for (int k = 0; k < SP_REASONS_MAX && f->results.slot[k].name[0]; k++)
            sp_buf_printf(out, "shipper_filter_records_total{filter=\"%s\",result=\"%s\"} %llu\n",
                          f->name, f->results.slot[k].name,
                          (unsigned long long)f->results.slot[k].n);
    }
    for (size_t i = 0; i < d->nfilters; i++)
        if (d->filters[i]->type->metrics) d->filters[i]->type->metrics(d->filters[i], out);
}
