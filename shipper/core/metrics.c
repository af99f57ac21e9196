/* Prometheus text exposition of every counter the daemon keeps. */
#include "daemon.h"
#include "filters.h"
#include "router.h"
#include "spool.h"
#include "upgrade.h"

#include <stdlib.h>
#include <string.h>

/* One metric family while the body is regrouped: its TYPE line and its samples, in order. */
typedef struct {
    const char *name; /* the family name, in the old body */
    size_t nlen;
    const char *type; /* its "# TYPE" line (with "\n"), NULL when none came */
    size_t tlen;
    size_t first, last; /* its first and last line, chained through sp_metrics_line.next */
} sp_metrics_family;

typedef struct {
    const char *p;
    size_t len;  /* with its "\n" */
    size_t next; /* the family's next line, or (size_t)-1 */
} sp_metrics_line;

static size_t sp_metrics_find(sp_metrics_family *f, size_t n, const char *name, size_t len)
{
    for (size_t i = n; i-- > 0;)
        if (f[i].nlen == len && memcmp(f[i].name, name, len) == 0) return i;
    return (size_t)-1;
}

/* The family a sample belongs to: its name, or a histogram's name without _bucket/_sum/_count. */
static size_t sp_metrics_sample_family(sp_metrics_family *f, size_t n, const char *s, size_t len)
{
    size_t k = sp_metrics_find(f, n, s, len);
    static const char *const suffix[] = {"_bucket", "_sum", "_count"};
    for (int i = 0; k == (size_t)-1 && i < 3; i++) {
        size_t sl = strlen(suffix[i]);
        if (len > sl && memcmp(s + len - sl, suffix[i], sl) == 0) {
            size_t b = sp_metrics_find(f, n, s, len - sl);
            if (b != (size_t)-1 && f[b].type) k = b;
        }
    }
    return k;
}

void sp_metrics_group(sp_buf *out, size_t from)
{
    size_t nl = 0, nf = 0;
    for (size_t i = from; i < out->len; i++)
        nl += out->base[i] == '\n';
    if (nl < 2) return;
    sp_metrics_line *l = calloc(nl, sizeof *l);
    sp_metrics_family *f = calloc(nl, sizeof *f);
    if (!l || !f) goto done; /* the body stays as it was */
    const char *p = out->base + from, *end = out->base + out->len;
    for (size_t i = 0; i < nl && p < end; i++) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        l[i] = (sp_metrics_line){p, (size_t)(e - p) + 1, (size_t)-1};
        int is_type = l[i].len > 7 && memcmp(p, "# TYPE ", 7) == 0;
        const char *name = is_type ? p + 7 : p;
        size_t len = strcspn(name, is_type ? " \n" : "{ \n");
        size_t k = is_type ? sp_metrics_find(f, nf, name, len)
                           : sp_metrics_sample_family(f, nf, name, len);
        if (k == (size_t)-1) {
            k = nf++;
            f[k] = (sp_metrics_family){name, len, NULL, 0, (size_t)-1, (size_t)-1};
        }
        if (is_type) {
            if (!f[k].type) f[k].type = p, f[k].tlen = l[i].len;
        } else if (f[k].first == (size_t)-1) {
            f[k].first = f[k].last = i;
        } else {
            l[f[k].last].next = i, f[k].last = i;
        }
        p = e + 1;
    }
    sp_buf grouped = {0};
    sp_buf_reserve_exact(&grouped, out->len);
    sp_buf_append(&grouped, out->base, from);
    for (size_t k = 0; k < nf; k++) {
        if (f[k].type) sp_buf_append(&grouped, f[k].type, f[k].tlen);
        for (size_t i = f[k].first; i != (size_t)-1; i = l[i].next)
            sp_buf_append(&grouped, l[i].p, l[i].len);
    }
    sp_buf_free(out);
    *out = grouped;
done:
    free(l);
    free(f);
}

/* One family of a uint64_t counter or gauge that every input has (at `off` in sp_input): its
 * TYPE line, then one sample an input. */
static void sp_metrics_inputs(const sp_daemon *d, sp_buf *out, const char *metric, const char *type,
                              size_t off)
{
    sp_buf_printf(out, "# TYPE %s %s\n", metric, type);
    for (size_t i = 0; i < d->ninputs; i++) {
        const sp_input *in = d->inputs[i];
        uint64_t v;
        memcpy(&v, (const char *)in + off, sizeof v);
        sp_buf_metric(out, metric, "input", in->name, v);
    }
}

void sp_metrics_render(const sp_daemon *d, sp_buf *out)
{
    const sp_router *r = &d->router;
    size_t from = out->len;
    sp_metrics_inputs(d, out, "shipper_input_records_total", "counter",
                      offsetof(sp_input, records));
    sp_metrics_inputs(d, out, "shipper_input_bytes_total", "counter", offsetof(sp_input, bytes));
    SP_BUF_LIT(out, "# TYPE shipper_input_errors_total counter\n");
    for (size_t i = 0; i < d->ninputs; i++)
        sp_reasons_render(&d->inputs[i]->errors, out, "shipper_input_errors_total", "input",
                          d->inputs[i]->name);
    sp_metrics_inputs(d, out, "shipper_sources_paused", "gauge",
                      offsetof(sp_input, sources_paused));
    sp_metrics_inputs(d, out, "shipper_source_pauses_total", "counter",
                      offsetof(sp_input, source_pauses));
    sp_filters_metrics(d, out);
    SP_BUF_LIT(out, "# TYPE shipper_output_records_total counter\n");
    for (size_t i = 0; i < d->noutputs; i++) {
        const sp_output *o = d->outputs[i];
        sp_buf_printf(out,
                      "shipper_output_records_total{output=\"%s\",result=\"delivered\"} %llu\n"
                      "shipper_output_records_total{output=\"%s\",result=\"retried\"} %llu\n"
                      "shipper_output_records_total{output=\"%s\",result=\"rejected\"} %llu\n",
                      o->name, (unsigned long long)o->delivered, o->name,
                      (unsigned long long)o->retried, o->name, (unsigned long long)o->rejected);
    }
    SP_BUF_LIT(out, "# TYPE shipper_output_latency_seconds histogram\n");
    const double *bounds = sp_router_latency_bounds();
    for (size_t i = 0; i < d->noutputs; i++) {
        const sp_output *o = d->outputs[i];
        uint64_t cum = 0;
        for (int b = 0; b < 13; b++) {
            cum += o->lat_buckets[b];
            sp_buf_printf(out,
                          "shipper_output_latency_seconds_bucket{output=\"%s\",le=\"%g\"} %llu\n",
                          o->name, bounds[b], (unsigned long long)cum);
        }
        sp_buf_printf(out,
                      "shipper_output_latency_seconds_bucket{output=\"%s\",le=\"+Inf\"} %llu\n"
                      "shipper_output_latency_seconds_sum{output=\"%s\"} %.6f\n"
                      "shipper_output_latency_seconds_count{output=\"%s\"} %llu\n",
                      o->name, (unsigned long long)o->lat_count, o->name, o->lat_sum, o->name,
                      (unsigned long long)o->lat_count);
    }
    SP_BUF_LIT(out, "# TYPE shipper_output_queued_chunks gauge\n");
    for (size_t i = 0; i < d->noutputs; i++) {
        const sp_output *o = d->outputs[i];
        sp_buf_metric(out, "shipper_output_queued_chunks", "output", o->name, o->queued_chunks);
    }
    if (r->spool) sp_spool_metrics(r->spool, out);
    sp_upgrade_metrics(out);
    for (size_t i = 0; i < d->noutputs; i++)
        if (d->outputs[i]->type->metrics) d->outputs[i]->type->metrics(d->outputs[i], out);
    for (size_t i = 0; i < d->ninputs; i++)
        if (d->inputs[i]->type->metrics) d->inputs[i]->type->metrics(d->inputs[i], out);
    sp_buf_printf(out,
                  "# TYPE shipper_buffer_bytes gauge\nshipper_buffer_bytes %llu\n"
                  "# TYPE shipper_buffer_limit_bytes gauge\nshipper_buffer_limit_bytes %llu\n"
                  "# TYPE shipper_spool_bytes gauge\nshipper_spool_bytes %llu\n"
                  "# TYPE shipper_spool_limit_bytes gauge\nshipper_spool_limit_bytes %llu\n"
                  "# TYPE shipper_paused gauge\nshipper_paused %d\n"
                  "# TYPE shipper_pauses_total counter\nshipper_pauses_total %llu\n"
                  "# TYPE shipper_unmatched_records_total counter\n"
                  "shipper_unmatched_records_total %llu\n",
                  (unsigned long long)sp_router_held(r), (unsigned long long)r->memory_limit,
                  (unsigned long long)(r->spool ? sp_spool_bytes(r->spool) : 0),
                  (unsigned long long)(r->spool ? d->buffer.spool_limit : 0), r->paused,
                  (unsigned long long)r->pause_count, (unsigned long long)r->unmatched);
    sp_looplag_metrics(&d->lag, out);
    sp_metrics_group(out, from); /* plugins of several instances each wrote TYPE lines */
}
