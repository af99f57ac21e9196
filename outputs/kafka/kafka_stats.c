/*
 * The kafka output's metrics: messages in flight, produced, failures by reason, and a small
 * summary of librdkafka's own statistics (sent messages and bytes, broker round-trip time).
 */
#include <stdlib.h>
#include <string.h>

#include "kafka.h"

void sp_kafka_count_failure(sp_kafka *k, rd_kafka_resp_err_t err)
{
    for (int i = 0; i < SP_KAFKA_REASONS; i++) {
        if (k->failed[i].n == 0) k->failed[i].err = err;
        if (k->failed[i].err == err) {
            k->failed[i].n++;
            return;
        }
    }
    /* More than SP_KAFKA_REASONS distinct errors: the last slot collects the rest. */
    k->failed[SP_KAFKA_REASONS - 1].n++;
}

/* The number after the first `"key":` at or after `from` (or the last one in the text, with
 * `last`); -1 when absent. librdkafka writes the client's totals after its "brokers" and
 * "topics" objects, whose partitions repeat some of the names: a total is the last match. */
static double sp_kafka_stats_num(const char *from, const char *end, const char *key, int last)
{
    size_t kl = strlen(key);
    double found = -1;
    for (const char *p = from; p && p + kl + 3 < end; p++) {
        p = memchr(p, '"', (size_t)(end - p));
        if (!p || p + kl + 2 >= end) break;
        if (memcmp(p + 1, key, kl) == 0 && p[kl + 1] == '"') {
            const char *v = p + kl + 2;
            while (v < end && (*v == ':' || *v == ' '))
                v++;
            found = strtod(v, NULL);
            if (!last) break;
        }
    }
    return found;
}

int sp_kafka_stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    (void)rk;
    sp_kafka *k = opaque;
    const char *end = json + len;
    double v;
    if ((v = sp_kafka_stats_num(json, end, "txmsgs", 1)) >= 0) k->st_txmsgs = (uint64_t)v;
    if ((v = sp_kafka_stats_num(json, end, "txmsg_bytes", 1)) >= 0) k->st_txbytes = (uint64_t)v;
    if ((v = sp_kafka_stats_num(json, end, "msg_cnt", 0)) >= 0) k->st_msg_cnt = (uint64_t)v;
    /* Brokers: the worst average round-trip time among those that answered requests. */
    double worst = 0;
    const char *b = strstr(json, "\"brokers\"");
    for (const char *p = b; p && (p = strstr(p, "\"rtt\"")); p += 5) {
        const char *q = p + 5;
        double avg = sp_kafka_stats_num(q, end, "avg", 0);
        double cnt = sp_kafka_stats_num(q, end, "cnt", 0);
        if (cnt > 0 && avg > worst) worst = avg;
    }
    k->st_rtt_avg_us = worst;
    return 0; /* librdkafka frees the JSON */
}

void sp_kafka_metrics(sp_output *o, sp_buf *out)
{
    sp_kafka *k = o->data;
    if (!k) return;
    const char *n = o->name;
    sp_buf_printf(out,
                  "# TYPE shipper_kafka_messages_in_flight gauge\n"
                  "shipper_kafka_messages_in_flight{output=\"%s\"} %llu\n"
                  "# TYPE shipper_kafka_produced_total counter\n"
                  "shipper_kafka_produced_total{output=\"%s\"} %llu\n"
                  "# TYPE shipper_kafka_delivered_total counter\n"
                  "shipper_kafka_delivered_total{output=\"%s\"} %llu\n"
                  "# TYPE shipper_kafka_dead_lettered_total counter\n"
                  "shipper_kafka_dead_lettered_total{output=\"%s\"} %llu\n"
                  "# TYPE shipper_kafka_reproduced_total counter\n"
                  "shipper_kafka_reproduced_total{output=\"%s\"} %llu\n"
                  "# TYPE shipper_kafka_queue_full_total counter\n"
                  "shipper_kafka_queue_full_total{output=\"%s\"} %llu\n"
                  "# TYPE shipper_kafka_producer_restarts_total counter\n"
                  "shipper_kafka_producer_restarts_total{output=\"%s\"} %llu\n"
                  "# TYPE shipper_kafka_failed_total counter\n",
                  n, (unsigned long long)k->inflight_msgs, n, (unsigned long long)k->produced, n,
                  (unsigned long long)k->delivered_msgs, n, (unsigned long long)k->dead_lettered, n,
                  (unsigned long long)k->requeued, n, (unsigned long long)k->queue_full, n,
                  (unsigned long long)k->restarts);
    for (int i = 0; i < SP_KAFKA_REASONS && k->failed[i].n; i++)
        sp_buf_printf(out, "shipper_kafka_failed_total{output=\"%s\",reason=\"%s\"} %llu\n", n,
                      rd_kafka_err2name(k->failed[i].err), (unsigned long long)k->failed[i].n);
    sp_buf_printf(out,
                  "# TYPE shipper_kafka_txmsgs_total counter\n"
                  "shipper_kafka_txmsgs_total{output=\"%s\"} %llu\n"
                  "# TYPE shipper_kafka_txbytes_total counter\n"
                  "shipper_kafka_txbytes_total{output=\"%s\"} %llu\n"
                  "# TYPE shipper_kafka_queued_messages gauge\n"
                  "shipper_kafka_queued_messages{output=\"%s\"} %llu\n"
                  "# TYPE shipper_kafka_broker_rtt_avg_seconds gauge\n"
                  "shipper_kafka_broker_rtt_avg_seconds{output=\"%s\"} %.6f\n",
                  n, (unsigned long long)k->st_txmsgs, n, (unsigned long long)k->st_txbytes, n,
                  (unsigned long long)k->st_msg_cnt, n, k->st_rtt_avg_us / 1e6);
}
