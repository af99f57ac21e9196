/*
 * The kafka output's settings: the field table, validation (every librdkafka property is tried
 * at config time, so a typo is exit 2 with file:line, not a runtime failure), and where the
 * per-record message key and topic come from.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka.h"
#include "mp.h"

int sp_kafka_field_parse(const char *s, int allow_none, sp_kafka_field *f)
{
    f->name = SP_SLICE_NULL;
    if (!s || !*s) return -1;
    if (strcmp(s, "none") == 0) {
        f->kind = SP_KF_NONE;
        return allow_none ? 0 : -1;
    }
    if (strcmp(s, "container.id") == 0)
        f->kind = SP_KF_ID;
    else if (strcmp(s, "container.name") == 0)
        f->kind = SP_KF_NAME;
    else if (strcmp(s, "stream") == 0)
        f->kind = SP_KF_STREAM;
    else if (strcmp(s, "tag") == 0)
        f->kind = SP_KF_TAG;
    else {
        f->kind = SP_KF_EXTRA;
        f->name = sp_slice_str(s);
    }
    return 0;
}

sp_slice sp_kafka_field_get(const sp_kafka_field *f, const sp_record *r, sp_slice tag)
{
    switch (f->kind) {
    case SP_KF_ID:
        return r->container_id;
    case SP_KF_NAME:
        return r->container_name;
    case SP_KF_STREAM:
        return r->stream;
    case SP_KF_TAG:
        return tag;
    case SP_KF_EXTRA: {
        const uint8_t *p = (const uint8_t *)r->extras.base, *end = p + r->extras.len;
        for (uint32_t i = 0; i < r->nextras; i++) {
            sp_mp_obj k, v;
            if (sp_mp_read(&p, end, &k)) break;
            int match = (k.type == SP_MP_STR || k.type == SP_MP_BIN) && sp_slice_eq(k.s, f->name);
            const uint8_t *vp = p;
            if (match && sp_mp_read(&vp, end, &v) == 0 &&
                (v.type == SP_MP_STR || v.type == SP_MP_BIN))
                return v.s;
            if (sp_mp_skip(&p, end)) break;
        }
        return SP_SLICE_NULL;
    }
    default:
        return SP_SLICE_NULL;
    }
}

/* Our defaults. Idempotence with acks=all: librdkafka's own retries neither duplicate nor
 * reorder. Statistics every 10 s feed the metrics. Logs go to the main queue, so they are
 * written from the loop thread like every other line. */
static const char *const sp_kafka_defaults[][2] = {
    {"enable.idempotence", "true"},
    {"acks", "all"},
    {"linger.ms", "5"},
    {"statistics.interval.ms", "10000"},
    {"log.queue", "true"},
    {"compression.type", "none"},
    {"client.id", "shipper"},
    {"partitioner", "murmur2_random"},
};

rd_kafka_conf_t *sp_kafka_conf_build(const sp_kafka_conf *c, char *errstr, size_t errlen,
                                     const char **bad_key)
{
    rd_kafka_conf_t *rc = rd_kafka_conf_new();
    *bad_key = NULL;
    for (size_t i = 0; i < sizeof sp_kafka_defaults / sizeof sp_kafka_defaults[0]; i++)
        if (rd_kafka_conf_set(rc, sp_kafka_defaults[i][0], sp_kafka_defaults[i][1], errstr,
                              errlen) != RD_KAFKA_CONF_OK)
            goto fail;
    if (rd_kafka_conf_set(rc, "bootstrap.servers", c->brokers, errstr, errlen) != RD_KAFKA_CONF_OK)
        goto fail;
    if (c->queue_kbytes) { /* a share of memory_limit; `properties` may still override it */
        char v[32];
        snprintf(v, sizeof v, "%llu", (unsigned long long)c->queue_kbytes);
        if (rd_kafka_conf_set(rc, "queue.buffering.max.kbytes", v, errstr, errlen) !=
            RD_KAFKA_CONF_OK)
            goto fail;
    }
    for (size_t i = 0; i < c->properties.n; i++) {
        if (rd_kafka_conf_set(rc, c->properties.k[i], c->properties.v[i], errstr, errlen) !=
            RD_KAFKA_CONF_OK) {
            *bad_key = c->properties.k[i];
            goto fail;
        }
    }
    return rc;
fail:
    rd_kafka_conf_destroy(rc);
    return NULL;
}

/* Properties that change what "delivered" means, and the value shipper needs. Each is read back
 * from a configuration built with one user property at a time, so aliases (`acks`,
 * `request.required.acks`) and spellings (`all`, `-1`) compare alike. docs/kafka.md lists them. */
static const struct {
    const char *name, *need, *says;
} sp_kafka_guarded[] = {
    {"request.required.acks", "-1", "acks=all"},
    {"enable.idempotence", "true", "enable.idempotence=true"},
    {"transactional.id", "", "no transactional.id"},
    {"delivery.report.only.error", "false", "a delivery report for every message"},
    {"queuing.strategy", "fifo", "queuing.strategy=fifo"},
};

/* What an idempotent producer needs of properties the user changed; librdkafka checks these only
 * when the producer is created, which would be a failure at start instead of a config error. */
static const struct {
    const char *name;
    long long min, max;
    const char *says;
} sp_kafka_idem_limits[] = {
    {"max.in.flight.requests.per.connection", 1, 5, "at most 5"},
    {"message.send.max.retries", 1, 2147483647, "at least 1"},
};

static void sp_kafka_conf_value(const rd_kafka_conf_t *rc, const char *name, char *v, size_t cap)
{
    size_t len = cap;
    if (rd_kafka_conf_get(rc, name, v, &len) != RD_KAFKA_CONF_OK) v[0] = '\0'; /* unset */
}

/*
 * Checks user property `i` against the two tables (`base`: the configuration without any user
 * property; `idem`: idempotence is on in the full one). 0: fine; 1: it weakens a guarded setting
 * (*g is its index); 2: it breaks an idempotence limit (`why` says how).
 */
static int sp_kafka_prop_check(const sp_kafka_conf *c, size_t i, const rd_kafka_conf_t *base,
                               int idem, int *g, char *why, size_t whylen)
{
    char errstr[512];
    sp_kafka_conf one = *c;
    one.properties.k += i;
    one.properties.v += i;
    one.properties.n = 1;
    const char *bad;
    rd_kafka_conf_t *rc = sp_kafka_conf_build(&one, errstr, sizeof errstr, &bad);
    if (!rc) return 0; /* cannot be: the full build accepted it */
    int res = 0;
    char v[256], was[256];
    for (size_t k = 0; k < sizeof sp_kafka_guarded / sizeof *sp_kafka_guarded && !res; k++) {
        sp_kafka_conf_value(rc, sp_kafka_guarded[k].name, v, sizeof v);
        if (strcmp(v, sp_kafka_guarded[k].need) != 0) res = 1, *g = (int)k;
    }
    for (size_t k = 0;
         idem && k < sizeof sp_kafka_idem_limits / sizeof *sp_kafka_idem_limits && !res; k++) {
        sp_kafka_conf_value(rc, sp_kafka_idem_limits[k].name, v, sizeof v);
        sp_kafka_conf_value(base, sp_kafka_idem_limits[k].name, was, sizeof was);
        long long x = strtoll(v, NULL, 10);
        if (strcmp(v, was) != 0 &&
            (x < sp_kafka_idem_limits[k].min || x > sp_kafka_idem_limits[k].max)) {
            snprintf(why, whylen, "%s must be %s with enable.idempotence=true",
                     sp_kafka_idem_limits[k].name, sp_kafka_idem_limits[k].says);
            res = 2;
        }
    }
    rd_kafka_conf_destroy(rc);
    return res;
}

/* The line of property `key` under `properties` (the output's line when not found). */
static int sp_kafka_prop_line(const sp_node *n, const char *key)
{
    sp_node *props = sp_node_get(n, "properties");
    if (props)
        for (sp_node *m = props->child; m; m = m->next)
            if (m->key && strcmp(m->key, key) == 0) return m->line;
    return n->line;
}

int sp_kafka_check(sp_output *o, const sp_node *n, sp_conf_err *err)
{
    sp_kafka_conf *c = o->conf;
    sp_kafka_field f;
    if (!c->brokers || !*c->brokers) {
        sp_conf_error(err, n->line, "brokers", "is required (host:port[,host:port...])");
        return -1;
    }
    if (!c->topic || !*c->topic) {
        sp_conf_error(err, n->line, "topic", "must not be empty");
        return -1;
    }
    if (sp_kafka_field_parse(c->key, 1, &f)) {
        sp_node *k = sp_node_get(n, "key");
        sp_conf_error(err, k ? k->line : n->line, "key",
                      "must be none, container.id, container.name, stream, tag or a field name");
        return -1;
    }
    if (c->topic_key && sp_kafka_field_parse(c->topic_key, 0, &f)) {
        sp_node *k = sp_node_get(n, "topic_key");
        sp_conf_error(err, k ? k->line : n->line, "topic_key",
                      "must be container.id, container.name, stream, tag or a field name");
        return -1;
    }
    char errstr[512];
    const char *bad;
    rd_kafka_conf_t *rc = sp_kafka_conf_build(c, errstr, sizeof errstr, &bad);
    if (!rc) {
        sp_node *props = sp_node_get(n, "properties");
        int line = n->line;
        if (bad && props)
            for (sp_node *m = props->child; m; m = m->next)
                if (m->key && strcmp(m->key, bad) == 0) line = m->line;
        char key[300];
        snprintf(key, sizeof key, "properties.%s", bad ? bad : "brokers");
        sp_conf_error(err, line, bad ? key : "brokers", "%s", errstr);
        return -1;
    }
    char idem[8];
    sp_kafka_conf_value(rc, "enable.idempotence", idem, sizeof idem);
    rd_kafka_conf_destroy(rc);
    sp_kafka_conf base = *c;
    base.properties.n = 0;
    rd_kafka_conf_t *brc = sp_kafka_conf_build(&base, errstr, sizeof errstr, &bad);
    if (!brc) return 0; /* cannot be: the full build accepted it */
    int rc2 = 0;
    for (size_t i = 0; i < c->properties.n && !rc2; i++) {
        const char *k = c->properties.k[i], *v = c->properties.v[i];
        char why[300], key[300];
        int g = 0;
        int r = sp_kafka_prop_check(c, i, brc, strcmp(idem, "true") == 0, &g, why, sizeof why);
        if (r == 0) continue;
        snprintf(key, sizeof key, "properties.%s", k);
        if (r == 2) {
            sp_conf_error(err, sp_kafka_prop_line(n, k), key, "\"%s\": %s", v, why);
            rc2 = -1;
        } else if (c->unsafe_properties) {
            sp_out_warn(o,
                        "kafka: unsafe_properties: %s=%s replaces %s, so a record counts "
                        "delivered on weaker terms (docs/kafka.md)",
                        k, v, sp_kafka_guarded[g].says);
        } else {
            sp_conf_error(err, sp_kafka_prop_line(n, k), key,
                          "\"%s\" changes what delivered means (shipper needs %s); remove it, or "
                          "set unsafe_properties: true (docs/kafka.md)",
                          v, sp_kafka_guarded[g].says);
            rc2 = -1;
        }
    }
    rd_kafka_conf_destroy(brc);
    return rc2;
}

const sp_conf_field sp_kafka_fields[] = {
    {"brokers", SP_CONF_STR, offsetof(sp_kafka_conf, brokers), NULL,
     "bootstrap brokers: host:port[,host:port...]"},
    {"topic", SP_CONF_STR, offsetof(sp_kafka_conf, topic), "docker-logs",
     "the topic; with topic_key, the fallback when a record lacks that field"},
    {"topic_key", SP_CONF_STR, offsetof(sp_kafka_conf, topic_key), NULL,
     "choose the topic per record from this field (container.name, tag, or any field)"},
    {"key", SP_CONF_STR, offsetof(sp_kafka_conf, key), "container.id",
     "message key: container.id (each container's order kept in one partition), "
     "container.name, stream, tag, any field, or none"},
    {"headers", SP_CONF_MAP, offsetof(sp_kafka_conf, headers), NULL,
     "static headers added to every message"},
    {"properties", SP_CONF_MAP, offsetof(sp_kafka_conf, properties), NULL,
     "librdkafka producer properties, e.g. {compression.type: lz4}"},
    {"dead_letter_topic", SP_CONF_STR, offsetof(sp_kafka_conf, dead_letter_topic), NULL,
     "records the broker refuses for good go here (still counted rejected)"},
    {"retry_backoff", SP_CONF_DURATION, offsetof(sp_kafka_conf, retry_backoff), "500ms",
     "first wait before producing failed messages again (doubles up to retry_max)"},
    {"unsafe_properties", SP_CONF_BOOL, offsetof(sp_kafka_conf, unsafe_properties), "false",
     "accept properties that change what delivered means (acks, enable.idempotence, ...)"},
    SP_CONF_END};
