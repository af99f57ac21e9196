/*
 * multiline: joins a stack trace's lines into one record per (tag, container, stream)
 * (docs/filters.md, "multiline"). A line matching a start pattern opens a group, which the filter
 * holds (SP_FILTER_HOLD); lines that continue it (ml_rules.c) join it with "\n"; the group is
 * emitted (sp_filter_emit) with its first line's time, id and fields when a line does not
 * continue it (ahead of that line, in the same batch), after `flush_timeout` idle (tick), at
 * max_lines / max_bytes (cut, flagged) and at shutdown (drain). Follows Fluent Bit's multiline
 * filter (built-in parsers, flush_timeout) and its custom start_state/cont rules.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ml_int.h"
#include "mp.h"

static const char *const sp_ml_modes[] = {"auto", "java", "python", "go", "nodejs", "custom", NULL};

typedef struct {
    int mode;
    char *start;
    char *cont;
    uint64_t flush_timeout;
    int64_t max_lines;
    uint64_t max_bytes;
    int64_t max_groups;
} sp_ml_conf;

static const sp_conf_field sp_ml_fields[] = {
    {"mode", SP_CONF_ENUM, offsetof(sp_ml_conf, mode), "auto",
     "auto (java, python, go, nodejs) | java | python | go | nodejs | custom", sp_ml_modes},
    {"start", SP_CONF_STR, offsetof(sp_ml_conf, start), NULL,
     "custom: PCRE2 pattern of a group's first line"},
    {"continue", SP_CONF_STR, offsetof(sp_ml_conf, cont), NULL,
     "custom: PCRE2 pattern of the lines that continue it"},
    {"flush_timeout", SP_CONF_DURATION, offsetof(sp_ml_conf, flush_timeout), "1s",
     "a group with no new line for this long is emitted"},
    {"max_lines", SP_CONF_INT, offsetof(sp_ml_conf, max_lines), "1000",
     "lines in one group; more are cut into the next group"},
    {"max_bytes", SP_CONF_SIZE, offsetof(sp_ml_conf, max_bytes), "1MiB",
     "bytes of one group's message; more are cut into the next group"},
    {"max_groups", SP_CONF_INT, offsetof(sp_ml_conf, max_groups), "10000",
     "groups pending at once (one per container and stream); past it lines pass unjoined"},
    SP_CONF_END};

enum { SP_ML_ENDED, SP_ML_TIMEOUT, SP_ML_MAX_LINES, SP_ML_MAX_BYTES, SP_ML_DRAIN, SP_ML_NREASONS };
static const char *const sp_ml_reasons[] = {"ended", "timeout", "max_lines", "max_bytes", "drain"};

#define SP_ML_BUCKETS 4096

enum { SP_ML_F_STREAM, SP_ML_F_ID, SP_ML_F_NAME, SP_ML_F_EXTRAS, SP_ML_NF };

typedef struct sp_ml_group {
    struct sp_ml_group *next; /* bucket chain, or the free list */
    uint64_t hash;
    size_t taglen;
    sp_buf key;  /* tag, id, stream */
    sp_buf meta; /* the first line's stream, container id and name, extras */
    sp_buf msg;  /* the joined message */
    size_t off[SP_ML_NF], len[SP_ML_NF];
    uint8_t has[SP_ML_NF];
    sp_record first; /* time, id, flags, nextras of the first line */
    sp_holds holds;  /* what its lines' acks and offsets wait on (filter.h) */
    uint8_t lang, state;
    uint32_t lines;
    uint64_t last_ms;
} sp_ml_group;

typedef struct {
    sp_ml_rules rules;
    sp_ml_group *bucket[SP_ML_BUCKETS];
    sp_ml_group *free_groups;
    size_t npending, nfree;
    int drained; /* after drain nothing is held: no tick would emit it */
    uint64_t groups[SP_ML_NREASONS];
    sp_extras_edit edit; /* a cut group's extras */
} sp_ml;

static uint64_t sp_ml_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts); /* vDSO: no syscall */
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sp_ml_group_free(sp_ml_group *g)
{
    sp_holds_free(&g->holds, 0); /* a pending group's lines are lost: their acks never go */
    sp_buf_free(&g->key);
    sp_buf_free(&g->meta);
    sp_buf_free(&g->msg);
    free(g);
}

static void sp_ml_free(sp_filter *f)
{
    sp_ml *m = f->data;
    if (!m) return;
    sp_ml_rules_free(&m->rules);
    for (size_t i = 0; i < SP_ML_BUCKETS; i++)
        for (sp_ml_group *g = m->bucket[i], *n; g; g = n) {
            n = g->next;
            sp_ml_group_free(g);
        }
    for (sp_ml_group *g = m->free_groups, *n; g; g = n) {
        n = g->next;
        sp_ml_group_free(g);
    }
    sp_extras_edit_free(&m->edit);
    free(m);
    f->data = NULL;
}

static int sp_ml_check(sp_filter *f, const sp_node *n, sp_conf_err *err)
{
    sp_ml_conf *c = f->conf;
    sp_ml *m = sp_calloc(1, sizeof *m);
    f->data = m;
    if (c->mode == SP_ML_CUSTOM && (!c->start || !c->cont)) {
        sp_conf_error(err, sp_node_line(n, "mode", f->line), c->start ? "continue" : "start",
                      "is required with mode: custom");
        return -1;
    }
    if (c->mode != SP_ML_CUSTOM && (c->start || c->cont)) {
        sp_conf_error(err, sp_node_line(n, c->start ? "start" : "continue", f->line),
                      c->start ? "start" : "continue", "only with mode: custom");
        return -1;
    }
    if (c->flush_timeout < 1) {
        sp_conf_error(err, sp_node_line(n, "flush_timeout", f->line), "flush_timeout",
                      "must be more than 0");
        return -1;
    }
    if (c->max_lines < 1 || c->max_lines > 1000000) {
        sp_conf_error(err, sp_node_line(n, "max_lines", f->line), "max_lines",
                      "must be between 1 and 1000000");
        return -1;
    }
    if (c->max_bytes < 1 || c->max_bytes > (256ULL << 20)) {
        sp_conf_error(err, sp_node_line(n, "max_bytes", f->line), "max_bytes",
                      "must be between 1 and 256MiB");
        return -1;
    }
    if (c->max_groups < 1 || c->max_groups > 1000000) {
        sp_conf_error(err, sp_node_line(n, "max_groups", f->line), "max_groups",
                      "must be between 1 and 1000000");
        return -1;
    }
    char why[256];
    if (sp_ml_rules_init(&m->rules, c->mode, c->start, c->cont, why, sizeof why)) {
        sp_conf_error(err, sp_node_line(n, c->mode == SP_ML_CUSTOM ? "start" : "mode", f->line),
                      c->mode == SP_ML_CUSTOM ? "start" : "mode", "%s", why);
        return -1;
    }
    return 0;
}

/* The group key: tag, container id and stream. Hashed and compared part by part, so a record
 * builds nothing; a group keeps its key as (u32 length, bytes) x 3 (sp_ml_key_save). */
typedef struct {
    sp_slice part[3];
} sp_ml_keyparts;

static sp_ml_keyparts sp_ml_keyparts_of(sp_slice tag, const sp_record *r)
{
    return (sp_ml_keyparts){{tag, r->container_id, r->stream}};
}

static uint64_t sp_ml_mix(uint64_t h, uint64_t v)
{
    h = (h ^ v) * 0x9e3779b97f4a7c15ULL;
    return h ^ (h >> 32);
}

/* 8 bytes a step; each part's length goes in too, so ("ab","c") is not ("a","bc"). */
static uint64_t sp_ml_hash(const sp_ml_keyparts *k)
{
    uint64_t h = 0x243f6a8885a308d3ULL;
    for (int i = 0; i < 3; i++) {
        const char *s = k->part[i].base;
        size_t n = k->part[i].len, j = 0;
        h = sp_ml_mix(h, n);
        for (; j + 8 <= n; j += 8) {
            uint64_t v;
            memcpy(&v, s + j, 8);
            h = sp_ml_mix(h, v);
        }
        if (j < n) {
            uint64_t v = 0;
            memcpy(&v, s + j, n - j);
            h = sp_ml_mix(h, v);
        }
    }
    return h;
}

static void sp_ml_key_save(sp_buf *b, const sp_ml_keyparts *k)
{
    b->len = 0;
    for (int i = 0; i < 3; i++) {
        uint32_t l = (uint32_t)k->part[i].len;
        sp_buf_append(b, &l, sizeof l);
        if (l) sp_buf_append(b, k->part[i].base, l);
    }
}

static int sp_ml_key_equal(const sp_buf *b, const sp_ml_keyparts *k)
{
    const char *p = b->base, *end = b->base + b->len;
    for (int i = 0; i < 3; i++) {
        uint32_t l;
        if ((size_t)(end - p) < sizeof l) return 0;
        memcpy(&l, p, sizeof l);
        p += sizeof l;
        if (l != k->part[i].len || (size_t)(end - p) < l) return 0;
        if (l && memcmp(p, k->part[i].base, l) != 0) return 0;
        p += l;
    }
    return p == end;
}

static sp_ml_group **sp_ml_find(sp_ml *m, uint64_t h, const sp_ml_keyparts *k)
{
    sp_ml_group **p = &m->bucket[h & (SP_ML_BUCKETS - 1)];
    for (; *p; p = &(*p)->next)
        if ((*p)->hash == h && sp_ml_key_equal(&(*p)->key, k)) return p;
    return p;
}

static void sp_ml_keep(sp_ml_group *g, int i, sp_slice s)
{
    g->has[i] = s.base != NULL;
    g->off[i] = g->meta.len;
    g->len[i] = s.len;
    if (s.len) sp_buf_append(&g->meta, s.base, s.len);
}

static sp_slice sp_ml_kept(const sp_ml_group *g, int i)
{
    if (!g->has[i]) return sp_slice_make(NULL, 0);
    return sp_slice_make(g->meta.base ? g->meta.base + g->off[i] : "", g->len[i]);
}

/* Opens group g with r, its first line. */
static void sp_ml_open(sp_ml_group *g, sp_slice tag, const sp_record *r, uint8_t lang,
                       uint8_t state, uint64_t now)
{
    g->taglen = tag.len;
    g->meta.len = 0;
    sp_ml_keep(g, SP_ML_F_STREAM, r->stream);
    sp_ml_keep(g, SP_ML_F_ID, r->container_id);
    sp_ml_keep(g, SP_ML_F_NAME, r->container_name);
    sp_ml_keep(g, SP_ML_F_EXTRAS, r->extras);
    g->first = *r;
    g->msg.len = 0;
    sp_buf_append(&g->msg, r->message.base, r->message.len);
    g->lang = lang;
    g->state = state;
    g->lines = 1;
    g->last_ms = now;
}

/* Emits group g (it stays where it is: the caller reopens it or lets it go). */
static void sp_ml_emit(sp_filter *f, sp_ml *m, sp_ml_group *g, int reason)
{
    sp_record r = g->first;
    r.message = sp_slice_make(g->msg.base ? g->msg.base : "", g->msg.len);
    r.stream = sp_ml_kept(g, SP_ML_F_STREAM);
    r.container_id = sp_ml_kept(g, SP_ML_F_ID);
    r.container_name = sp_ml_kept(g, SP_ML_F_NAME);
    r.extras = sp_ml_kept(g, SP_ML_F_EXTRAS);
    if (!r.extras.base) r.extras = sp_slice_make("", 0);
    if (reason == SP_ML_MAX_LINES || reason == SP_ML_MAX_BYTES) {
        /* cut: the document says so ("multiline": {"cut": true}); more of the trace follows */
        static const uint8_t cut[] = {0x81, 0xa3, 'c', 'u', 't', 0xc3};
        sp_slice skip = SP_SLICE_LIT("multiline");
        sp_extras_begin(&m->edit);
        sp_extras_copy(&m->edit, &r, &skip, 1);
        sp_extras_put_raw(&m->edit, skip, sp_slice_make((const char *)cut, sizeof cut));
        sp_extras_finish(&m->edit, &r);
        r.flags |= SP_REC_SPLIT;
    }
    m->groups[reason]++;
    /* the key begins with the tag's length and bytes */
    /* its lines' acks and offsets now wait on the chunk it goes to */
    sp_filter_emit_held(f, sp_slice_make(g->key.base + sizeof(uint32_t), g->taglen), &r, &g->holds);
}

/* Unlinks the pending group at *p and keeps it for reuse. */
static void sp_ml_release(sp_ml *m, sp_ml_group **p)
{
    sp_ml_group *g = *p;
    *p = g->next;
    m->npending--;
    if (m->nfree >= 64) {
        sp_ml_group_free(g);
        return;
    }
    g->next = m->free_groups;
    m->free_groups = g;
    m->nfree++;
}

static int sp_ml_apply(sp_filter *f, sp_record *r, sp_slice tag)
{
    sp_ml *m = f->data;
    sp_ml_conf *c = f->conf;
    if (!r->message.base) return SP_FILTER_KEEP;
    /* the common case: no group pending and the line starts none -- no key, no hash, no clock */
    if (!m->npending && (m->drained || !sp_ml_rules_may_start(&m->rules, r->message)))
        return SP_FILTER_KEEP;
    sp_ml_keyparts key = sp_ml_keyparts_of(tag, r);
    uint64_t h = sp_ml_hash(&key);
    sp_ml_group **p = sp_ml_find(m, h, &key);
    uint64_t now = sp_ml_now();
    if (*p) {
        sp_ml_group *g = *p;
        uint8_t state = g->state;
        if (sp_ml_rules_continue(&m->rules, g->lang, &state, r->message)) {
            int reason = g->lines >= (uint64_t)c->max_lines               ? SP_ML_MAX_LINES
                         : g->msg.len + 1 + r->message.len > c->max_bytes ? SP_ML_MAX_BYTES
                                                                          : -1;
            if (reason >= 0) {
                sp_ml_emit(f, m, g, reason);
                sp_ml_open(g, tag, r, g->lang, state, now);
                sp_filter_hold(f, &g->holds);
                return SP_FILTER_HOLD;
            }
            sp_buf_putc(&g->msg, '\n');
            sp_buf_append(&g->msg, r->message.base, r->message.len);
            g->state = state;
            g->lines++;
            g->last_ms = now;
            sp_filter_hold(f, &g->holds);
            return SP_FILTER_HOLD;
        }
        sp_ml_emit(f, m, g, SP_ML_ENDED);
        sp_ml_release(m, p);
        p = sp_ml_find(m, h, &key); /* the end of the chain again */
    }
    int lang = m->drained ? 0 : sp_ml_rules_start(&m->rules, r->message);
    if (!lang) return SP_FILTER_KEEP;
    if (m->npending >= (size_t)c->max_groups) {
        sp_filter_count(f, "unjoined");
        return SP_FILTER_KEEP;
    }
    sp_ml_group *g = m->free_groups;
    if (g) {
        m->free_groups = g->next;
        m->nfree--;
    } else {
        g = sp_calloc(1, sizeof *g);
    }
    g->next = NULL;
    g->hash = h;
    sp_ml_key_save(&g->key, &key);
    sp_ml_open(g, tag, r, (uint8_t)lang, 1, now);
    sp_filter_hold(f, &g->holds);
    *p = g;
    m->npending++;
    return SP_FILTER_HOLD;
}

/* Emits the pending groups idle for flush_timeout (all of them when `all`). */
static void sp_ml_flush(sp_filter *f, int all)
{
    sp_ml *m = f->data;
    sp_ml_conf *c = f->conf;
    if (!m || !m->npending) return;
    uint64_t now = sp_ml_now();
    for (size_t i = 0; i < SP_ML_BUCKETS && m->npending; i++)
        for (sp_ml_group **p = &m->bucket[i]; *p;) {
            if (!all && now - (*p)->last_ms < c->flush_timeout) {
                p = &(*p)->next;
                continue;
            }
            sp_ml_emit(f, m, *p, all ? SP_ML_DRAIN : SP_ML_TIMEOUT);
            sp_ml_release(m, p);
        }
}

static void sp_ml_tick(sp_filter *f, uint64_t now_ms)
{
    (void)now_ms;
    sp_ml_flush(f, 0);
}

static void sp_ml_drain(sp_filter *f)
{
    sp_ml_flush(f, 1);
    ((sp_ml *)f->data)->drained = 1;
}

static void sp_ml_metrics(sp_filter *f, sp_buf *out)
{
    sp_ml *m = f->data;
    SP_BUF_LIT(out, "# TYPE shipper_filter_multiline_groups_total counter\n");
    for (int i = 0; i < SP_ML_NREASONS; i++)
        sp_buf_printf(out,
                      "shipper_filter_multiline_groups_total{filter=\"%s\",reason=\"%s\"} %llu\n",
                      f->name, sp_ml_reasons[i], (unsigned long long)m->groups[i]);
    sp_buf_printf(out,
                  "# TYPE shipper_filter_multiline_pending gauge\n"
                  "shipper_filter_multiline_pending{filter=\"%s\"} %zu\n",
                  f->name, m->npending);
}

const sp_filter_type sp_filter_multiline = {.name = "multiline",
                                            .fields = sp_ml_fields,
                                            .conf_size = sizeof(sp_ml_conf),
                                            .check = sp_ml_check,
                                            .apply = sp_ml_apply,
                                            .tick = sp_ml_tick,
                                            .drain = sp_ml_drain,
                                            .metrics = sp_ml_metrics,
                                            .free = sp_ml_free};
