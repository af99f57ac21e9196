/* Fields of a record for filters (filter.h): lookup by name, extras rebuilt without allocating
 * per record, and the glob-or-regex patterns filters test fields with. */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "filter.h"
#include "meta.h"
#include "mp.h"

/* ---- lookup ---- */

/* A scalar MessagePack value at `v` as text. */
static int sp_fields_scalar_text(const uint8_t *p, const uint8_t *end, sp_slice *out, char *tmp,
                                 size_t tmpcap)
{
    sp_mp_obj o;
    if (sp_mp_read_fast(&p, end, &o)) return 0; /* short strings (most values) in line */
    int n = -1;
    switch (o.type) {
    case SP_MP_STR:
    case SP_MP_BIN:
        *out = o.s;
        return 1;
    case SP_MP_UINT:
        n = snprintf(tmp, tmpcap, "%llu", (unsigned long long)o.v.u);
        break;
    case SP_MP_INT:
        n = snprintf(tmp, tmpcap, "%lld", (long long)o.v.i);
        break;
    case SP_MP_FLOAT:
        n = snprintf(tmp, tmpcap, "%.17g", o.v.f);
        break;
    case SP_MP_BOOL:
        n = snprintf(tmp, tmpcap, "%s", o.v.b ? "true" : "false");
        break;
    default:
        return 0;
    }
    if (n < 0 || (size_t)n >= tmpcap) return 0;
    *out = sp_slice_make(tmp, (size_t)n);
    return 1;
}

/* sp_extras_next, inlined where whole maps are walked (the index below): a fixstr key and a
 * value sized by its first bytes (sp_mp_size_simple) take a few instructions. */
static inline __attribute__((always_inline)) int
sp_fields_next(const uint8_t **p, const uint8_t *end, sp_slice *key, sp_slice *val)
{
    const uint8_t *q = *p;
    size_t n, h = 1;
    if (q >= end) return -1;
    uint8_t c = *q;
    if ((c & 0xe0) == 0xa0) { /* fixstr: most keys */
        n = c & 0x1f;
        if ((size_t)(end - q) <= 1 + n) return -1; /* the value's first byte too */
        *key = sp_slice_make(q + 1, n);
        q += 1 + n;
    } else if ((n = sp_mp_strbin_size(q, end, &h))) {
        if ((size_t)(end - q) <= n) return -1;
        *key = sp_slice_make(q + h, n - h);
        q += n;
    } else {
        sp_mp_obj k;
        if (sp_mp_read(&q, end, &k) || q >= end) return -1;
        *key = k.type == SP_MP_STR || k.type == SP_MP_BIN ? k.s : SP_SLICE_NULL;
    }
    const uint8_t *v = q;
    if (!(n = sp_mp_size_simple(q, end))) {
        if (sp_mp_skip(&q, end)) return -1; /* containers, ext, longer str and bin, cut short */
        n = (size_t)(q - v);
    }
    *val = sp_slice_make(v, n);
    *p = v + n;
    return 0;
}

int sp_extras_next(const uint8_t **p, const uint8_t *end, sp_slice *key, sp_slice *val)
{
    return sp_fields_next(p, end, key, val);
}

/* ---- the extras index shared down the chain ---- */

/* The pairs of the record being filtered, found once and read by every filter after it while
 * r->extras stays the same slice (docs/filters.md, "One index of the fields per record"). A pass is
 * one record's way through the chain (sp_extras_pass); an index is reused only within the pass it
 * was built in, so a buffer a filter reuses for the next record never serves a stale one. Per
 * thread: filters run on the loop; another thread calling these functions builds its own, never
 * reused. */
static _Thread_local struct {
    sp_extra *v;      /* the pairs */
    uint32_t cap;     /* entries allocated (grows with the most pairs seen; never per record) */
    uint32_t n;       /* well-formed pairs found (fewer than nextras when the bytes end early) */
    uint32_t nextras; /* the record's count it was built for */
    const char *base; /* the extras slice it was built for */
    size_t len;
    uint64_t pass;          /* the pass it was built in; 0: not reusable */
    uint64_t cur;           /* the current pass; 0 outside any */
    uint64_t count;         /* passes so far */
    uint32_t depth;         /* passes open (a filter's emitted record runs inside another) */
    sp_extras_fill_fn fill; /* not NULL: v is not filled yet, fill(fill_arg) lists the pairs */
    void *fill_arg;
} sp_fields_ix;

void sp_extras_pass(int enter)
{
    sp_fields_ix.depth += enter ? 1 : (uint32_t)-1;
    /* entering or leaving (back to the outer record, whose filter may have moved on): new pass */
    sp_fields_ix.cur = sp_fields_ix.depth ? ++sp_fields_ix.count : 0;
}

/* Room in the index for n pairs (grows with the most pairs seen: not per record). */
static inline void sp_fields_ix_room(__typeof__(sp_fields_ix) *x, uint32_t n)
{
    if (n > x->cap || !x->v) {
        x->cap = n > 16 ? n : 16;
        free(x->v);
        x->v = sp_calloc(x->cap, sizeof *x->v);
    }
}

/* The index made ready for r (room for its pairs), as built in the current pass. */
static inline __typeof__(sp_fields_ix) *sp_fields_ix_for(const sp_record *r)
{
    __typeof__(sp_fields_ix) *x = &sp_fields_ix;
    sp_fields_ix_room(x, r->nextras);
    x->n = x->nextras = r->nextras;
    x->base = r->extras.base;
    x->len = r->extras.len;
    x->pass = x->cur;
    x->fill = NULL;
    return x;
}

/* sp_extras_pairs when the index is not filled for r: listed by the filter that wrote the pairs
 * (fill, sp_extras_known), or walked. Out of line: the common case needs none of its registers. */
static __attribute__((noinline)) uint32_t sp_fields_ix_build(const sp_record *r,
                                                             const sp_extra **out, int hit)
{
    __typeof__(sp_fields_ix) *x = &sp_fields_ix;
    if (hit) {
        sp_extras_fill_fn fill = x->fill;
        x->fill = NULL;
        sp_fields_ix_room(x, r->nextras);
        if (fill(x->fill_arg, x->v, r->nextras) == 0) {
            *out = x->v;
            return x->n = r->nextras;
        }
    }
    x = sp_fields_ix_for(r);
    sp_extra *v = x->v;
    const uint8_t *p = (const uint8_t *)r->extras.base, *end = p + r->extras.len;
    uint32_t i = 0, n = r->nextras;
    for (; i < n; i++)
        if (sp_fields_next(&p, end, &v[i].key, &v[i].val)) break;
    x->n = i;
    *out = v;
    return i;
}

uint32_t sp_extras_pairs(const sp_record *r, const sp_extra **out)
{
    __typeof__(sp_fields_ix) *x = &sp_fields_ix;
    int hit = x->cur && x->pass == x->cur && x->base == r->extras.base && x->len == r->extras.len &&
              x->nextras == r->nextras;
    if (__builtin_expect(!hit || x->fill, 0)) return sp_fields_ix_build(r, out, hit);
    *out = x->v;
    return x->n;
}

void sp_extras_known(const sp_record *r, sp_extras_fill_fn fill, void *arg)
{
    __typeof__(sp_fields_ix) *x = &sp_fields_ix;
    x->nextras = r->nextras;
    x->base = r->extras.base;
    x->len = r->extras.len;
    x->pass = x->cur;
    x->fill = fill;
    x->fill_arg = arg;
}

/* Member `key` of the map at *p (raw value in *val). */
static int sp_fields_map_find(const uint8_t *p, const uint8_t *end, uint32_t n, sp_slice key,
                              sp_slice *val)
{
    int found = 0;
    for (uint32_t i = 0; i < n; i++) {
        sp_slice k, v;
        if (sp_fields_next(&p, end, &k, &v)) return found;
        if (k.base && sp_slice_eq(k, key)) {
            *val = v;
            found = 1; /* keep going: the last one wins, as in the document */
        }
    }
    return found;
}

int sp_extras_find(const sp_record *r, sp_slice key, sp_slice *val)
{
    const sp_extra *x;
    for (uint32_t i = sp_extras_pairs(r, &x); i-- > 0;) /* the last one wins, as in the document */
        if (x[i].key.base && sp_slice_eq(x[i].key, key)) {
            *val = x[i].val;
            return 1;
        }
    return 0;
}

#define SP_FIELD_LABELS "container.labels."

sp_field sp_field_make(sp_slice name)
{
    sp_field f = {.name = name, .slot = SP_FIELD_EXTRA};
    if (SP_SLICE_IS(name, "message"))
        f.slot = SP_FIELD_MESSAGE;
    else if (SP_SLICE_IS(name, "stream"))
        f.slot = SP_FIELD_STREAM;
    else if (SP_SLICE_IS(name, "container.id"))
        f.slot = SP_FIELD_CONTAINER_ID;
    else if (SP_SLICE_IS(name, "container.name"))
        f.slot = SP_FIELD_CONTAINER_NAME;
    else if (SP_SLICE_IS(name, "tag"))
        f.slot = SP_FIELD_TAG;
    else if (SP_SLICE_IS(name, "container.image.name") || SP_SLICE_IS(name, "container.image"))
        f.slot = SP_FIELD_IMAGE;
    else if (name.len > sizeof SP_FIELD_LABELS - 1 &&
             memcmp(name.base, SP_FIELD_LABELS, sizeof SP_FIELD_LABELS - 1) == 0)
        f.slot = SP_FIELD_LABEL;
    f.dotted = f.slot == SP_FIELD_EXTRA && memchr(name.base, '.', name.len) != NULL;
    return f;
}

/* A dotted path: the first part an extra, the rest members of nested maps. */
static int sp_fields_path(const sp_record *r, sp_slice name, sp_slice *out, char *tmp,
                          size_t tmpcap)
{
    const uint8_t *p = NULL, *end = NULL;
    uint32_t n = 0;
    sp_slice rest = name, v;
    while (rest.len) {
        const char *dot = memchr(rest.base, '.', rest.len);
        sp_slice part = sp_slice_make(rest.base, dot ? (size_t)(dot - rest.base) : rest.len);
        if (!(p ? sp_fields_map_find(p, end, n, part, &v) : sp_extras_find(r, part, &v))) return 0;
        p = (const uint8_t *)v.base;
        end = p + v.len;
        if (!dot) return sp_fields_scalar_text(p, end, out, tmp, tmpcap);
        rest = sp_slice_make(dot + 1, rest.len - part.len - 1);
        sp_mp_obj o;
        if (sp_mp_read(&p, end, &o) || o.type != SP_MP_MAP) return 0;
        n = o.v.n;
    }
    return 0;
}

/* The container's image or one of its labels (shipper/meta.h: its config.v2.json, or what the
 * Engine API or docker_events told), in a per-thread buffer until the next call. */
static __attribute__((noinline)) sp_slice sp_fields_meta(const sp_field *f, const sp_record *r)
{
    static __thread sp_buf v;
    v.len = 0;
    sp_buf_reserve(&v, 1); /* an empty value is there (base not NULL) */
    size_t skip = sizeof SP_FIELD_LABELS - 1;
    int got = f->slot == SP_FIELD_IMAGE
                  ? sp_meta_get(r->container_id, NULL, 0, &v)
                  : sp_meta_get(r->container_id, f->name.base + skip, f->name.len - skip, &v);
    return got ? sp_buf_slice(&v) : SP_SLICE_NULL;
}

/* One of the record's own fields (f->slot not SP_FIELD_EXTRA). */
static inline sp_slice sp_field_fixed(const sp_field *f, const sp_record *r, sp_slice tag)
{
    switch (f->slot) {
    case SP_FIELD_IMAGE:
    case SP_FIELD_LABEL:
        return r->container_id.base ? sp_fields_meta(f, r) : SP_SLICE_NULL;
    case SP_FIELD_MESSAGE:
        return r->message;
    case SP_FIELD_STREAM:
        return r->stream;
    case SP_FIELD_CONTAINER_ID:
        return r->container_id;
    case SP_FIELD_CONTAINER_NAME:
        return r->container_name;
    default:
        return tag;
    }
}

int sp_field_get(const sp_field *f, const sp_record *r, sp_slice tag, sp_slice *out, char *tmp,
                 size_t tmpcap)
{
    if (f->slot != SP_FIELD_EXTRA) {
        *out = sp_field_fixed(f, r, tag);
        return out->base != NULL;
    }
    sp_slice v; /* a key with dots may be a top-level key too: that first */
    if (sp_extras_find(r, f->name, &v))
        return sp_fields_scalar_text((const uint8_t *)v.base, (const uint8_t *)v.base + v.len, out,
                                     tmp, tmpcap);
    return f->dotted && sp_fields_path(r, f->name, out, tmp, tmpcap);
}

int sp_field_text(const sp_record *r, sp_slice tag, sp_slice name, sp_slice *out, char *tmp,
                  size_t tmpcap)
{
    sp_field f = sp_field_make(name);
    return sp_field_get(&f, r, tag, out, tmp, tmpcap);
}

/* ---- extras rebuilt ---- */

typedef struct {
    uint32_t off, len;   /* the whole pair in the buffer */
    uint32_t koff, klen; /* the key's bytes */
} sp_fields_pair;

/* The pairs kept (len not 0) moved together from `at`; their count. */
static uint32_t sp_fields_compact(sp_buf *buf, size_t at, const sp_fields_pair *pr, uint32_t n)
{
    size_t w = at;
    uint32_t kept = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (!pr[i].len) continue;
        memmove(buf->base + w, buf->base + pr[i].off, pr[i].len);
        w += pr[i].len;
        kept++;
    }
    buf->len = w;
    return kept;
}

uint32_t sp_extras_dedup(sp_buf *buf, size_t at, uint32_t n, sp_buf *index, sp_buf *table)
{
    if (n < 2) return n;
    index->len = 0;
    sp_buf_reserve(index, n * sizeof(sp_fields_pair));
    sp_fields_pair *pr = (sp_fields_pair *)index->base;
    const uint8_t *base = (const uint8_t *)buf->base;
    const uint8_t *p = base + at, *end = base + buf->len;
    uint32_t m = 0;
    for (; m < n; m++) {
        const uint8_t *start = p;
        sp_slice k, v;
        if (sp_fields_next(&p, end, &k, &v)) break;
        pr[m].koff = pr[m].klen = 0;
        if (k.base) {
            pr[m].koff = (uint32_t)((const uint8_t *)k.base - base);
            pr[m].klen = (uint32_t)k.len;
        } else {
            pr[m].klen = UINT32_MAX; /* not a string: never a duplicate */
        }
        pr[m].off = (uint32_t)(start - base);
        pr[m].len = (uint32_t)(p - start);
    }
    if (m != n) return n; /* malformed: leave it (cannot happen for our own encodings) */
    int dup = 0;
    if (n <= 8) { /* a few pairs: compared pairwise, no table to clear */
        for (uint32_t i = 1; i < n; i++)
            for (uint32_t j = 0; j < i; j++)
                if (pr[j].klen != UINT32_MAX && pr[j].klen == pr[i].klen &&
                    memcmp(base + pr[j].koff, base + pr[i].koff, pr[i].klen) == 0) {
                    dup |= pr[j].len != 0;
                    pr[j].len = 0; /* the later one stays */
                }
        return dup ? sp_fields_compact(buf, at, pr, n) : n;
    }
    size_t cap = 16;
    while (cap < (size_t)n * 2)
        cap *= 2;
    table->len = 0;
    sp_buf_reserve(table, cap * sizeof(uint32_t));
    uint32_t *t = (uint32_t *)table->base;
    memset(t, 0xff, cap * sizeof(uint32_t));
    /* From the last pair back: a key seen already (later) marks this pair dropped. */
    for (uint32_t i = n; i-- > 0;) {
        if (pr[i].klen == UINT32_MAX) continue;
        const char *ks = (const char *)base + pr[i].koff;
        size_t j = sp_hash_bytes(ks, pr[i].klen) & (cap - 1);
        for (; t[j] != UINT32_MAX; j = (j + 1) & (cap - 1)) {
            sp_fields_pair *o = &pr[t[j]];
            if (o->klen == pr[i].klen && memcmp(base + o->koff, ks, o->klen) == 0) break;
        }
        if (t[j] != UINT32_MAX) {
            pr[i].len = 0;
            dup = 1;
        } else {
            t[j] = i;
        }
    }
    return dup ? sp_fields_compact(buf, at, pr, n) : n;
}

void sp_extras_begin(sp_extras_edit *e)
{
    e->out.len = 0;
    e->n = 0;
}

void sp_extras_copy(sp_extras_edit *e, const sp_record *r, const sp_slice *skip, size_t nskip)
{
    if (!nskip) {
        sp_buf_append(&e->out, r->extras.base, r->extras.len);
        e->n += r->nextras;
        return;
    }
    const sp_extra *x;
    uint32_t n = sp_extras_pairs(r, &x);
    const char *run = r->extras.base; /* kept pairs not yet copied: one append per run */
    for (uint32_t i = 0; i < n; i++) {
        int drop = 0;
        if (x[i].key.base)
            for (size_t j = 0; j < nskip && !drop; j++)
                drop = sp_slice_eq(x[i].key, skip[j]);
        if (!drop) {
            e->n++;
            continue;
        }
        const char *start = sp_extra_start(r, x, i);
        if (start > run) sp_buf_append(&e->out, run, (size_t)(start - run));
        run = x[i].val.base + x[i].val.len;
    }
    const char *stop = sp_extra_start(r, x, n);
    if (stop > run) sp_buf_append(&e->out, run, (size_t)(stop - run));
}

void sp_extras_put_raw(sp_extras_edit *e, sp_slice key, sp_slice value)
{
    sp_mp_put_str(&e->out, key.base, key.len);
    sp_buf_append(&e->out, value.base, value.len);
    e->n++;
}

void sp_extras_put_str(sp_extras_edit *e, sp_slice key, sp_slice value)
{
    sp_mp_put_str(&e->out, key.base, key.len);
    sp_mp_put_str(&e->out, value.base, value.len);
    e->n++;
}

void sp_extras_put_pairs(sp_extras_edit *e, sp_slice pairs, uint32_t n)
{
    sp_buf_append(&e->out, pairs.base, pairs.len);
    e->n += n;
}

void sp_extras_finish(sp_extras_edit *e, sp_record *r)
{
    e->n = sp_extras_dedup(&e->out, 0, e->n, &e->index, &e->table);
    r->extras = sp_buf_slice(&e->out);
    if (!r->extras.base) r->extras = sp_slice_make("", 0);
    r->nextras = e->n;
}

void sp_extras_edit_free(sp_extras_edit *e)
{
    sp_buf_free(&e->out);
    sp_buf_free(&e->index);
    sp_buf_free(&e->table);
}

/* ---- patterns ---- */

struct sp_pattern {
    char *glob;
    int simple;   /* only '*' and '?': matched on the slice itself; 2: `fixed` below */
    size_t fixed; /* the glob's length when it has no wildcard but one '*' at the end, or none */
    int prefix;   /* that '*' is there: a prefix test */
    pcre2_code *re;
    pcre2_match_data *md;
    int jit;    /* JIT-compiled: pcre2_jit_match, the fast path (safe on invalid UTF-8 with
                 * PCRE2_MATCH_INVALID_UTF, which every pattern is compiled with) */
    sp_buf tmp; /* a NUL-terminated copy for fnmatch */
};

sp_pattern *sp_pattern_new(const char *text, char *why, size_t whycap)
{
    sp_pattern *p = sp_calloc(1, sizeof *p);
    size_t n = strlen(text);
    if (n >= 2 && text[0] == '/' && text[n - 1] == '/') {
        int ec;
        PCRE2_SIZE eo;
        p->re = pcre2_compile((PCRE2_SPTR)text + 1, n - 2, PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &ec,
                              &eo, NULL);
        if (!p->re) {
            char msg[256];
            pcre2_get_error_message(ec, (PCRE2_UCHAR *)msg, sizeof msg);
            snprintf(why, whycap, "regex %s: %s at offset %zu", text, msg, (size_t)eo);
            free(p);
            return NULL;
        }
        p->jit = pcre2_jit_compile(p->re, PCRE2_JIT_COMPLETE) == 0; /* else the interpreter */
        p->md = pcre2_match_data_create_from_pattern(p->re, NULL);
        return p;
    }
    p->glob = strdup(text);
    p->simple = strpbrk(text, "[\\") == NULL;
    size_t w = strcspn(text, "*?[\\"); /* the common globs: `info`, `/debug-*` */
    if (w == n || (w == n - 1 && text[w] == '*')) {
        p->fixed = w;
        p->prefix = w < n;
        p->simple = 2;
    }
    return p;
}

/* '*' and '?' on a slice, with the usual backtracking to the last star. */
static int sp_pattern_glob(const char *g, const char *s, size_t n)
{
    const char *star = NULL;
    size_t i = 0, mark = 0;
    while (i < n) {
        if (*g == '?' || (*g && *g != '*' && *g == s[i])) {
            g++;
            i++;
        } else if (*g == '*') {
            star = g++;
            mark = i;
        } else if (star) {
            g = star + 1;
            i = ++mark;
        } else {
            return 0;
        }
    }
    while (*g == '*')
        g++;
    return *g == 0;
}

/* A pattern of simple == 2: the text itself, or a prefix. */
static inline int sp_pattern_fixed(const sp_pattern *p, sp_slice s)
{
    if (p->prefix ? s.len < p->fixed : s.len != p->fixed) return 0;
    for (size_t i = 0; i < p->fixed; i++) /* short: a call to memcmp costs more */
        if (s.base[i] != p->glob[i]) return 0;
    return 1;
}

int sp_pattern_match(sp_pattern *p, sp_slice s)
{
    if (p->simple == 2) return sp_pattern_fixed(p, s);
    PCRE2_SPTR subject = (PCRE2_SPTR)(s.base ? s.base : "");
    if (p->jit) return pcre2_jit_match(p->re, subject, s.len, 0, 0, p->md, NULL) >= 0;
    if (p->re) return pcre2_match(p->re, subject, s.len, 0, 0, p->md, NULL) >= 0;
    if (p->simple) return sp_pattern_glob(p->glob, s.base, s.len);
    p->tmp.len = 0;
    sp_buf_append(&p->tmp, s.base, s.len);
    sp_buf_putc(&p->tmp, 0);
    return fnmatch(p->glob, p->tmp.base, 0) == 0;
}

void sp_pattern_free(sp_pattern *p)
{
    if (!p) return;
    free(p->glob);
    if (p->md) pcre2_match_data_free(p->md);
    if (p->re) pcre2_code_free(p->re);
    sp_buf_free(&p->tmp);
    free(p);
}

/* sp_field_match's other cases, out of its line: the value val (raw) as text, or (val NULL) a
 * dotted path. */
static __attribute__((noinline)) int sp_field_match_text(const sp_field *f, const sp_record *r,
                                                         sp_slice tag, sp_pattern *p,
                                                         const sp_slice *val)
{
    char tmp[64];
    sp_slice s;
    const uint8_t *v = val ? (const uint8_t *)val->base : NULL;
    int got = val ? sp_fields_scalar_text(v, v + val->len, &s, tmp, sizeof tmp)
                  : sp_fields_path(r, f->name, &s, tmp, sizeof tmp);
    return got && sp_pattern_match(p, s);
}

int sp_field_match(const sp_field *f, const sp_record *r, sp_slice tag, sp_pattern *p)
{
    sp_slice s;
    if (f->slot != SP_FIELD_EXTRA) {
        s = sp_field_fixed(f, r, tag);
        if (!s.base) return 0;
    } else { /* the shared index, from the last pair: the last one wins */
        const sp_extra *x;
        uint32_t i = sp_extras_pairs(r, &x);
        while (i-- > 0)
            if (x[i].key.base && sp_slice_eq_short(x[i].key, f->name)) break;
        if (i == UINT32_MAX) return f->dotted && sp_field_match_text(f, r, tag, p, NULL);
        const uint8_t *v = (const uint8_t *)x[i].val.base;
        if ((v[0] & 0xe0) != 0xa0) return sp_field_match_text(f, r, tag, p, &x[i].val);
        s = sp_slice_make((const char *)v + 1, v[0] & 0x1f); /* a short string: where it lies */
    }
    return p->simple == 2 ? sp_pattern_fixed(p, s) : sp_pattern_match(p, s);
}
