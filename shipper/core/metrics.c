/* Prometheus text exposition of every counter the daemon keeps. */
#include "daemon.h"
#include "filters.h"
#include "router.h"
#include "spool.h"
#include "upgrade.h"

void sp_metrics_render(const sp_daemon *d, sp_buf *out)
{
    const sp_router *r = &d->router;
    SP_BUF_LIT(out, "# TYPE shipper_input_records_total counter\n");
    for (size_t i = 0; i < d->ninputs; i++)
        sp_buf_printf(out, "shipper_input_records_total{input=\"%s\"} %llu\n", d->inputs[i]->name,
                      (unsigned long long)d->inputs[i]->records);
    SP_BUF_LIT(out, "# TYPE shipper_input_bytes_total counter\n");
    for (size_t i = 0; i < d->ninputs; i++)
        sp_buf_printf(out, "shipper_input_bytes_total{input=\"%s\"} %llu\n", d->inputs[i]->name,
                      (unsigned long long)d->inputs[i]->bytes);
    SP_BUF_LIT(out, "# TYPE shipper_input_errors_total counter\n");
    for (size_t i = 0; i < d->ninputs; i++)
        sp_reasons_render(&d->inputs[i]->errors, out, "shipper_input_errors_total", "input",
                          d->inputs[i]->name);
    SP_BUF_LIT(out, "# TYPE shipper_sources_paused gauge\n");
    for (size_t i = 0; i < d->ninputs; i++)
        sp_buf_printf(out, "shipper_sources_paused{input=\"%s\"} %llu\n", d->inputs[i]->name,
                      (unsigned long long)d->inputs[i]->sources_paused);
    SP_BUF_LIT(out, "# TYPE shipper_source_pauses_total counter\n");
    for (size_t i = 0; i < d->ninputs; i++)
        sp_buf_printf(out, "shipper_source_pauses_total{input=\"%s\"} %llu\n", d->inputs[i]->name,
                      (unsigned long long)d->inputs[i]->source_pauses);
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
        sp_buf_printf(out, "shipper_output_queued_chunks{output=\"%s\"} %llu\n", o->name,
                      (unsigned long long)o->queued_chunks);
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
}
