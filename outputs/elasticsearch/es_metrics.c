/* The elasticsearch output's counters and its Prometheus lines (README, "Metrics"). */
#include <string.h>

#include "es.h"

void sp_es_count_status(sp_es *es, CURLcode rc, long status)
{
    if (rc == CURLE_OPERATION_TIMEDOUT)
        es->err_timeout++;
    else if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST)
        es->err_connect++;
    else if (rc != CURLE_OK)
        es->err_other++;
    else if (status > 0 && status < 600)
        es->by_status[status]++;
}

/* Counts a rejected document by its error type. */
void sp_es_count_rejected(sp_es *es, const char *type)
{
    /* The reason is a metric label: keep it to characters Prometheus text needs no escape for. */
    char label[64];
    snprintf(label, sizeof label, "%s", type);
    for (char *r = label; *r; r++)
        if (!(*r == '_' || (*r >= 'a' && *r <= 'z') || (*r >= 'A' && *r <= 'Z') ||
              (*r >= '0' && *r <= '9')))
            *r = '_';
    int k;
    for (k = 0; k < SP_ES_MAX_REASONS && es->reasons[k].reason[0]; k++)
        if (!strcmp(es->reasons[k].reason, label)) break;
    if (k == SP_ES_MAX_REASONS) {
        es->reasons_other++;
    } else {
        if (!es->reasons[k].reason[0]) memcpy(es->reasons[k].reason, label, sizeof label);
        es->reasons[k].n++;
    }
}

void sp_es_metrics(sp_output *o, sp_buf *out)
{
    sp_es *es = o->data;
    if (!es) return;
    const char *n = o->name;
    SP_BUF_LIT(out, "# TYPE shipper_es_requests_total counter\n");
    for (int s = 0; s < 600; s++)
        if (es->by_status[s])
            sp_buf_printf(out, "shipper_es_requests_total{output=\"%s\",status=\"%d\"} %llu\n", n,
                          s, (unsigned long long)es->by_status[s]);
    sp_buf_printf(out,
                  "shipper_es_requests_total{output=\"%s\",status=\"connect_error\"} %llu\n"
                  "shipper_es_requests_total{output=\"%s\",status=\"timeout\"} %llu\n"
                  "shipper_es_requests_total{output=\"%s\",status=\"error\"} %llu\n"
                  "shipper_es_requests_total{output=\"%s\",status=\"bad_response\"} %llu\n",
                  n, (unsigned long long)es->err_connect, n, (unsigned long long)es->err_timeout, n,
                  (unsigned long long)es->err_other, n, (unsigned long long)es->err_response);
    sp_buf_printf(out,
                  "# TYPE shipper_es_items_retried_total counter\n"
                  "shipper_es_items_retried_total{output=\"%s\"} %llu\n",
                  n, (unsigned long long)es->items_retried);
    SP_BUF_LIT(out, "# TYPE shipper_es_rejected_total counter\n");
    for (int k = 0; k < SP_ES_MAX_REASONS && es->reasons[k].reason[0]; k++)
        sp_buf_printf(out, "shipper_es_rejected_total{output=\"%s\",reason=\"%s\"} %llu\n", n,
                      es->reasons[k].reason, (unsigned long long)es->reasons[k].n);
    if (es->reasons_other)
        sp_buf_printf(out, "shipper_es_rejected_total{output=\"%s\",reason=\"other\"} %llu\n", n,
                      (unsigned long long)es->reasons_other);
    sp_buf_printf(out,
                  "# TYPE shipper_es_dead_letter_total counter\n"
                  "shipper_es_dead_letter_total{output=\"%s\",result=\"written\"} %llu\n"
                  "shipper_es_dead_letter_total{output=\"%s\",result=\"failed\"} %llu\n"
                  "# TYPE shipper_es_bytes_total counter\n"
                  "shipper_es_bytes_total{output=\"%s\",stage=\"encoded\"} %llu\n"
                  "shipper_es_bytes_total{output=\"%s\",stage=\"sent\"} %llu\n",
                  n, (unsigned long long)es->dl_written, n, (unsigned long long)es->dl_failed, n,
                  (unsigned long long)es->bytes_encoded, n, (unsigned long long)es->bytes_sent);
}
