/*
 * throttle: a token bucket per key (default container.id) in records/s or bytes/s, with a burst
 * (docs/filters.md). Above the rate, `action: drop` drops the record, counted per key; at the
 * end of each window a key that lost records gets one summary record saying how many. Follows
 * Fluent Bit's throttle filter (rate per window) and Vector's throttle transform (key_field,
 * per-key buckets). `action: slow` keeps the record and pauses its source (a Forward
 * connection, a json-file container: sp_filter_source) alone until the bucket has refilled
 * (docs/architecture.md, "Fair backpressure"); a record without a source passes, counted.
 *
 * The key table is bounded (max_keys); keys beyond it share one bucket, the "other" class. Keys
 * idle for a minute are forgotten.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "filter.h"
#include "mp.h"

enum { SP_THROTTLE_DROP, SP_THROTTLE_SLOW };
static const char *const sp_throttle_actions[] = {"drop", "slow", NULL};

typedef struct {
    char *key;
    char *rate;
    char *burst;
    int action;
    char *window;
    int64_t max_keys;
} sp_throttle_conf;

static const sp_conf_field sp_throttle_fields[] = {
    {"key", SP_CONF_STR, offsetof(sp_throttle_conf, key), "container.id",
     "the field whose values get a bucket each"},
    {"rate", SP_CONF_STR, offsetof(sp_throttle_conf, rate), NULL,
     "records per second per key (1000/s), or bytes (1MiB/s)"},
    {"burst", SP_CONF_STR, offsetof(sp_throttle_conf, burst), NULL,
     "the bucket's size: records, or bytes with a bytes rate (default: one second of rate)"},
    {"action", SP_CONF_ENUM, offsetof(sp_throttle_conf, action), "drop",
     "drop (counted, summarised) | slow (pause the record's source until under the rate)",
     sp_throttle_actions},
    {"window", SP_CONF_STR, offsetof(sp_throttle_conf, window), "1s",
     "how often a key that lost records gets its summary record"},
    {"max_keys", SP_CONF_INT, offsetof(sp_throttle_conf, max_keys), "10000",
     "keys with a bucket of their own; more share the \"other\" bucket"},
    SP_CONF_END};

#define SP_THROTTLE_KEY_MAX 128
#define SP_THROTTLE_IDLE_MS 60000

typedef struct {
    uint16_t klen, tlen, nlen;
    uint8_t used, has_id;
    char key[SP_THROTTLE_KEY_MAX];
    char tag[SP_THROTTLE_KEY_MAX]; /* for the summary record */
    char id[64];
    char name[SP_THROTTLE_KEY_MAX];
    double tokens;
    uint64_t last_ms;
    uint64_t window_dropped;
    uint64_t dropped;
} sp_throttle_ent;

typedef struct {
    int bytes; /* the rate counts bytes */
    double rate, burst;
    uint64_t window_ms;
    sp_field key;       /* resolved at check */
    sp_throttle_ent *t; /* open addressing; cap = a power of two >= 2 * max_keys */
    size_t cap, n, max;
    sp_throttle_ent other;
    uint64_t window_start;
    sp_buf scratch; /* the summary's extras */
} sp_throttle;

static uint64_t sp_throttle_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts); /* vDSO: no syscall */
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sp_throttle_free(sp_filter *f)
{
    sp_throttle *t = f->data;
    if (!t) return;
    free(t->t);
    sp_buf_free(&t->scratch);
    free(t);
    f->data = NULL;
}

static int sp_throttle_check(sp_filter *f, const sp_node *n, sp_conf_err *err)
{
    sp_throttle_conf *c = f->conf;
    sp_throttle *t = sp_calloc(1, sizeof *t);
    f->data = t;
    if (!c->rate) {
        sp_conf_error(err, f->line, "rate", "is required (1000/s, or bytes: 1MiB/s)");
        return -1;
    }
    size_t rl = strlen(c->rate);
    if (rl < 3 || strcmp(c->rate + rl - 2, "/s") != 0) {
        sp_conf_error(err, sp_node_line(n, "rate", f->line), "rate",
                      "\"%s\": records or bytes per second (1000/s, 1MiB/s)", c->rate);
        return -1;
    }
    char num[64];
    snprintf(num, sizeof num, "%.*s", (int)(rl - 2), c->rate);
    char *end;
    long long v = strtoll(num, &end, 10);
    uint64_t sz;
    if (*end == 0 && v > 0) {
        t->rate = (double)v;
    } else if (sp_parse_size(num, &sz) == 0 && sz > 0) {
        t->rate = (double)sz;
        t->bytes = 1;
    } else {
        sp_conf_error(err, sp_node_line(n, "rate", f->line), "rate",
                      "\"%s\": records or bytes per second (1000/s, 1MiB/s)", c->rate);
        return -1;
    }
    t->burst = t->rate;
    if (c->burst) {
        if (t->bytes ? sp_parse_size(c->burst, &sz) : (sz = strtoull(c->burst, &end, 10), *end)) {
            sp_conf_error(err, sp_node_line(n, "burst", f->line), "burst", "\"%s\": not a %s",
                          c->burst, t->bytes ? "size" : "count");
            return -1;
        }
        if (sz < 1) {
            sp_conf_error(err, sp_node_line(n, "burst", f->line), "burst", "must be at least 1");
            return -1;
        }
        t->burst = (double)sz;
    }
    if (sp_parse_duration(c->window, &t->window_ms) || t->window_ms < 100) {
        sp_conf_error(err, sp_node_line(n, "window", f->line), "window",
                      "\"%s\": a duration of at least 100ms", c->window);
        return -1;
    }
    if (c->max_keys < 1 || c->max_keys > 1000000) {
        sp_conf_error(err, sp_node_line(n, "max_keys", f->line), "max_keys",
                      "must be between 1 and 1000000");
        return -1;
    }
    if (!*c->key) {
        sp_conf_error(err, sp_node_line(n, "key", f->line), "key", "must not be empty");
        return -1;
    }
    t->key = sp_field_make(sp_slice_str(c->key));
    t->max = (size_t)c->max_keys;
    t->cap = 16;
    while (t->cap < t->max * 2)
        t->cap *= 2;
    return 0;
}

static sp_throttle_ent *sp_throttle_find(sp_throttle *t, sp_slice k, uint64_t now)
{
    if (k.len > SP_THROTTLE_KEY_MAX) k.len = SP_THROTTLE_KEY_MAX; /* longer keys: their start */
    if (!t->t) t->t = sp_calloc(t->cap, sizeof *t->t); /* at the first record, not at --check */
    size_t j = sp_hash_bytes(k.base, k.len) & (t->cap - 1);
    for (; t->t[j].used; j = (j + 1) & (t->cap - 1))
        if (t->t[j].klen == k.len && memcmp(t->t[j].key, k.base, k.len) == 0) return &t->t[j];
    if (t->n >= t->max) return &t->other;
    sp_throttle_ent *e = &t->t[j];
    memset(e, 0, sizeof *e);
    e->used = 1;
    e->klen = (uint16_t)k.len;
    memcpy(e->key, k.base, k.len);
    e->tokens = t->burst;
    e->last_ms = now;
    t->n++;
    return e;
}

static void sp_throttle_note(sp_throttle_ent *e, const sp_record *r, sp_slice tag)
{
    if (e->tlen) return; /* the first dropped record of the window names the source */
    e->tlen = (uint16_t)(tag.len < SP_THROTTLE_KEY_MAX ? tag.len : SP_THROTTLE_KEY_MAX);
    memcpy(e->tag, tag.base, e->tlen);
    e->has_id = r->container_id.base && r->container_id.len == 64;
    if (e->has_id) memcpy(e->id, r->container_id.base, 64);
    e->nlen = (uint16_t)(r->container_name.len < SP_THROTTLE_KEY_MAX ? r->container_name.len
                                                                     : SP_THROTTLE_KEY_MAX);
    if (r->container_name.base) memcpy(e->name, r->container_name.base, e->nlen);
}

/* action: slow. The record is kept (it is read already) and paid for: the bucket goes into debt,
 * and the source stays paused until the debt is paid back at the rate. Records of the same read
 * still in hand pass and deepen the debt; nothing is lost. The debt is bounded by 10 s of rate
 * (or a burst, when larger), so one pause lasts at most that. */
static int sp_throttle_slow(sp_filter *f, sp_throttle *t, sp_throttle_ent *e, double cost)
{
    e->tokens -= cost;
    double most = t->rate * 10 > t->burst ? t->rate * 10 : t->burst;
    if (e->tokens < -most) e->tokens = -most;
    sp_source *src = sp_filter_source(f);
    if (!src) {
        sp_filter_count(f, "unslowed"); /* no source to pause: kept */
        return SP_FILTER_KEEP;
    }
    uint64_t ms = (uint64_t)(-e->tokens * 1000.0 / t->rate) + 1;
    sp_source_slow(src, ms);
    sp_filter_count(f, "slowed");
    return SP_FILTER_KEEP;
}

static int sp_throttle_apply(sp_filter *f, sp_record *r, sp_slice tag)
{
    sp_throttle *t = f->data;
    char tmp[64];
    sp_slice k;
    if (!sp_field_get(&t->key, r, tag, &k, tmp, sizeof tmp)) k = SP_SLICE_LIT("");
    uint64_t now = sp_throttle_now();
    sp_throttle_ent *e = sp_throttle_find(t, k, now);
    if (e == &t->other && !e->last_ms) {
        e->tokens = t->burst;
        e->last_ms = now;
    }
    if (now > e->last_ms) {
        e->tokens += (double)(now - e->last_ms) * t->rate / 1000.0;
        if (e->tokens > t->burst) e->tokens = t->burst;
        e->last_ms = now;
    }
    double cost = t->bytes ? (double)(r->message.len + r->extras.len) : 1.0;
    if (e->tokens >= cost) {
        e->tokens -= cost;
        return SP_FILTER_KEEP;
    }
    if (((sp_throttle_conf *)f->conf)->action == SP_THROTTLE_SLOW)
        return sp_throttle_slow(f, t, e, cost);
    if (!e->window_dropped) sp_throttle_note(e, r, tag);
    e->window_dropped++;
    e->dropped++;
    return SP_FILTER_DROP;
}

/* The summary record of a key that lost records in the window just ended. */
static void sp_throttle_summary(sp_filter *f, sp_throttle *t, sp_throttle_ent *e, uint64_t now)
{
    sp_throttle_conf *c = f->conf;
    int other = e == &t->other;
    char msg[512];
    int n = snprintf(msg, sizeof msg, "throttle %s: dropped %llu records of %s %s%.*s in %llums",
                     f->name, (unsigned long long)e->window_dropped, c->key,
                     other ? "(other keys)" : "", other ? 0 : (int)e->klen, e->key,
                     (unsigned long long)t->window_ms);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    sp_record r = {0};
    r.sec = (uint64_t)ts.tv_sec;
    r.nsec = (uint32_t)ts.tv_nsec;
    r.prec = 9;
    r.message = sp_slice_make(msg, n < (int)sizeof msg ? (size_t)n : sizeof msg - 1);
    if (e->has_id) r.container_id = sp_slice_make(e->id, 64);
    if (e->nlen) r.container_name = sp_slice_make(e->name, e->nlen);
    struct {
        uint64_t now;
        char key[SP_THROTTLE_KEY_MAX];
    } idsrc = {now, {0}};
    memcpy(idsrc.key, e->key, e->klen);
    sp_hash128(&idsrc, sizeof idsrc, sp_hash_bytes(f->name, strlen(f->name)), r.id);
    sp_buf *b = &t->scratch;
    b->len = 0;
    sp_mp_put_str(b, "throttle", 8);
    sp_mp_put_map(b, 3);
    sp_mp_put_str(b, "dropped", 7);
    sp_mp_put_uint(b, e->window_dropped);
    sp_mp_put_str(b, "key", 3);
    if (other)
        sp_mp_put_nil(b);
    else
        sp_mp_put_str(b, e->key, e->klen);
    sp_mp_put_str(b, "filter", 6);
    sp_mp_put_str(b, f->name, strlen(f->name));
    r.nextras = 1;
    r.extras = sp_buf_slice(b);
    sp_filter_emit(f, sp_slice_make(e->tag, e->tlen), &r);
    e->window_dropped = 0;
    e->tlen = 0;
}

static void sp_throttle_tick(sp_filter *f, uint64_t now_ms)
{
    sp_throttle *t = f->data;
    uint64_t now = sp_throttle_now();
    if (!t->window_start) t->window_start = now;
    if (now - t->window_start < t->window_ms) return;
    t->window_start = now;
    size_t idle = 0;
    for (size_t i = 0; t->t && i < t->cap; i++) {
        sp_throttle_ent *e = &t->t[i];
        if (!e->used) continue;
        if (e->window_dropped) sp_throttle_summary(f, t, e, now);
        if (now - e->last_ms > SP_THROTTLE_IDLE_MS) idle++;
    }
    if (t->other.window_dropped) sp_throttle_summary(f, t, &t->other, now);
    if (!idle) return;
    /* Forget idle keys: rebuild the table (rare; deletion with open addressing is not simpler). */
    sp_throttle_ent *old = t->t;
    t->t = sp_calloc(t->cap, sizeof *t->t);
    t->n = 0;
    for (size_t i = 0; i < t->cap; i++) {
        sp_throttle_ent *e = &old[i];
        if (!e->used || now - e->last_ms > SP_THROTTLE_IDLE_MS) continue;
        size_t j = sp_hash_bytes(e->key, e->klen) & (t->cap - 1);
        while (t->t[j].used)
            j = (j + 1) & (t->cap - 1);
        t->t[j] = *e;
        t->n++;
    }
    free(old);
}

static void sp_throttle_label(sp_buf *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '"' || c == '\\') sp_buf_putc(out, '\\');
        if (c == '\n') {
            SP_BUF_LIT(out, "\\n");
            continue;
        }
        sp_buf_putc(out, c);
    }
}

static void sp_throttle_metrics(sp_filter *f, sp_buf *out)
{
    sp_throttle *t = f->data;
    SP_BUF_LIT(out, "# TYPE shipper_filter_throttled_total counter\n");
    for (size_t i = 0; t->t && i < t->cap; i++) {
        sp_throttle_ent *e = &t->t[i];
        if (!e->used || !e->dropped) continue;
        sp_buf_printf(out, "shipper_filter_throttled_total{filter=\"%s\",class=\"key\",key=\"",
                      f->name);
        sp_throttle_label(out, e->key, e->klen);
        sp_buf_printf(out, "\"} %llu\n", (unsigned long long)e->dropped);
    }
    sp_buf_printf(out,
                  "shipper_filter_throttled_total{filter=\"%s\",class=\"other\",key=\"\"} %llu\n",
                  f->name, (unsigned long long)t->other.dropped);
    sp_buf_printf(out,
                  "# TYPE shipper_filter_throttle_keys gauge\n"
                  "shipper_filter_throttle_keys{filter=\"%s\"} %zu\n",
                  f->name, t->n);
}

const sp_filter_type sp_filter_throttle = {.name = "throttle",
                                           .fields = sp_throttle_fields,
                                           .conf_size = sizeof(sp_throttle_conf),
                                           .check = sp_throttle_check,
                                           .apply = sp_throttle_apply,
                                           .tick = sp_throttle_tick,
                                           .metrics = sp_throttle_metrics,
                                           .free = sp_throttle_free};
