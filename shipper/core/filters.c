/*
 * The filter stage (docs/filters.md): every filter whose `match` fits a record's tag, in the
 * configured order, where records enter the buffer (sp_input_batch_add). The tag's filters are a
 * mask computed once per tag by the router; a record no filter matches costs one tag lookup.
 */
#include "filters.h"

#include "daemon.h"

int sp_filters_apply(sp_router *rt, size_t from, sp_slice tag, sp_record *r)
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
            return SP_FILTER_DROP; /* not in the buffer now: the filter emits it later */
        }
        f->kept++;
    }
    return SP_FILTER_KEEP;
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

void sp_filter_emit(sp_filter *f, sp_slice tag, const sp_record *r0)
{
    sp_router *rt = f->router;
    if (!rt || (rt->stopping && !rt->emit_batch)) return; /* an input's record still goes in */
    sp_record r = *r0;
    sp_source *src = rt->cur_source; /* the record being filtered keeps its own */
    rt->cur_source = NULL;           /* a record the filter made: no source to slow */
    int v = sp_filters_apply(rt, (size_t)f->index + 1, tag, &r);
    rt->cur_source = src;
    if (v == SP_FILTER_DROP) return;
    if (rt->emit_batch) { /* inside apply: into the input's open batch, ahead of its record */
        sp_input_batch_write(rt->emit_in, rt->emit_batch, tag, &r);
        return;
    }
    sp_chunk *c = sp_router_chunk(rt, tag);
    size_t before = c->data.len;
    sp_record_write(&c->data, &r);
    sp_router_commit(rt, c, before, 1);
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
