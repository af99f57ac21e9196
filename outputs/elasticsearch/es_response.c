/*
 * Bulk responses: {"took":N,"errors":B,"items":[{"create":{...,"status":N[,"error":{...}]}},...]}
 * in full (Elasticsearch without filter_path, OpenSearch, proxies that drop the query) or
 * filtered to errors,items.*.status,items.*.error. When "errors":false comes before the items
 * (as Elasticsearch writes it), no item failed: the items are counted, not read (one "status":
 * each, the array closing the body). Otherwise one pass of a scanner that builds no tree reads
 * the statuses and notes where each failed item's error object is; only those (rare) objects are
 * parsed with jansson, for their type and reason. The body is validated whole before any item is
 * reported, so a malformed body reports nothing. docs/elasticsearch.md, "Responses".
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "es.h"

int sp_es_item_class(int status)
{
    if ((status >= 200 && status < 300) || status == 409) return SP_ES_ITEM_OK;
    if (status == 429 || status >= 500) return SP_ES_ITEM_RETRY;
    return SP_ES_ITEM_REJECT;
}

#define SP_ES_SCAN_DEPTH 64

typedef struct {
    const char *p, *end;
} sp_es_scan;

/* JSON white space. */
static inline int sp_es_is_ws(char c)
{
    return (unsigned char)c <= ' ' && (c == ' ' || c == '\n' || c == '\r' || c == '\t');
}

static inline void sp_es_scan_ws(sp_es_scan *s)
{
    /* Elasticsearch writes no white space: one test in the common case. */
    while (s->p < s->end && sp_es_is_ws(*s->p))
        s->p++;
}

/* Consumes `c` after white space; 0 or -1. */
static inline int sp_es_scan_char(sp_es_scan *s, char c)
{
    sp_es_scan_ws(s);
    if (s->p >= s->end || *s->p != c) return -1;
    s->p++;
    return 0;
}

/*
 * A string: [*str, *str_end) is its raw content (escapes left as they are). 0 or -1. Keys and
 * values of a bulk response are short: a byte loop beats a memchr call per string (the loop's
 * hottest code on full items, docs/elasticsearch.md "Performance"); an escape skips its next byte.
 */
static inline int sp_es_scan_string(sp_es_scan *s, const char **str, const char **str_end)
{
    if (sp_es_scan_char(s, '"')) return -1;
    const char *q = s->p, *end = s->end;
    for (;;) {
        while (q < end && *q != '"' && *q != '\\')
            q++;
        if (q >= end) return -1;
        if (*q == '"') break;
        q += 2; /* a backslash and the byte it escapes */
    }
    if (str) *str = s->p;
    if (str_end) *str_end = q;
    s->p = q + 1;
    return 0;
}

static int sp_es_scan_value(sp_es_scan *s, int depth);

/* The rest of an object or array after its opening bracket. */
static int sp_es_scan_members(sp_es_scan *s, char close, int depth)
{
    if (depth > SP_ES_SCAN_DEPTH) return -1;
    sp_es_scan_ws(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        return 0;
    }
    for (;;) {
        if (close == '}' && (sp_es_scan_string(s, NULL, NULL) || sp_es_scan_char(s, ':')))
            return -1;
        if (sp_es_scan_value(s, depth)) return -1;
        sp_es_scan_ws(s);
        if (s->p >= s->end) return -1;
        if (*s->p == close) {
            s->p++;
            return 0;
        }
        if (*s->p++ != ',') return -1;
    }
}

/* Skips one value of any type. */
static int sp_es_scan_value(sp_es_scan *s, int depth)
{
    sp_es_scan_ws(s);
    if (s->p >= s->end) return -1;
    switch (*s->p) {
    case '"':
        return sp_es_scan_string(s, NULL, NULL);
    case '{':
        s->p++;
        return sp_es_scan_members(s, '}', depth + 1);
    case '[':
        s->p++;
        return sp_es_scan_members(s, ']', depth + 1);
    default: { /* number, true, false, null */
        const char *q = s->p;
        while (q < s->end && ((*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'z') || *q == '-' ||
                              *q == '+' || *q == '.' || *q == 'E'))
            q++;
        if (q == s->p) return -1;
        s->p = q;
        return 0;
    }
    }
}

static int sp_es_scan_key_is(const char *k, const char *k_end, const char *lit)
{
    size_t n = strlen(lit);
    return (size_t)(k_end - k) == n && memcmp(k, lit, n) == 0;
}

/* An integer status (the value at s->p); 0 or -1. */
static int sp_es_scan_status(sp_es_scan *s, int *status)
{
    sp_es_scan_ws(s);
    const char *q = s->p;
    int v = 0;
    while (q < s->end && *q >= '0' && *q <= '9' && q - s->p < 4)
        v = v * 10 + (*q++ - '0');
    if (q == s->p || (q < s->end && *q >= '0' && *q <= '9')) return -1;
    s->p = q;
    *status = v;
    return 0;
}

/* One item: {"<op>": {..., "status": N, "error": {...}, ...}}. */
static int sp_es_scan_item(sp_es_scan *s, int *status, const char **err, const char **err_end)
{
    if (sp_es_scan_char(s, '{') || sp_es_scan_string(s, NULL, NULL) || sp_es_scan_char(s, ':') ||
        sp_es_scan_char(s, '{'))
        return -1;
    *status = -1;
    *err = *err_end = NULL;
    sp_es_scan_ws(s);
    if (s->p < s->end && *s->p == '}') return -1; /* no status */
    for (;;) {
        const char *k, *k_end;
        if (sp_es_scan_string(s, &k, &k_end) || sp_es_scan_char(s, ':')) return -1;
        if (sp_es_scan_key_is(k, k_end, "status")) {
            if (sp_es_scan_status(s, status)) return -1;
        } else if (sp_es_scan_key_is(k, k_end, "error")) {
            sp_es_scan_ws(s);
            *err = s->p;
            if (sp_es_scan_value(s, 3)) return -1;
            *err_end = s->p;
        } else if (sp_es_scan_value(s, 3)) {
            return -1;
        }
        sp_es_scan_ws(s);
        if (s->p >= s->end) return -1;
        if (*s->p == '}') break;
        if (*s->p++ != ',') return -1;
    }
    s->p++;
    if (*status < 0) return -1;
    return sp_es_scan_char(s, '}'); /* exactly one operation per item */
}

/* "items": [...]: statuses counted, failed items noted in `f` (grown as needed). */
static int sp_es_scan_items(sp_es_scan *s, uint32_t nitems, uint32_t *n, uint32_t *ok,
                            sp_es_failures *f)
{
    if (sp_es_scan_char(s, '[')) return -1;
    sp_es_scan_ws(s);
    if (s->p < s->end && *s->p == ']') {
        s->p++;
        return 0;
    }
    for (;;) {
        int status;
        const char *err, *err_end;
        if (*n >= nitems || sp_es_scan_item(s, &status, &err, &err_end)) return -1;
        if (sp_es_item_class(status) == SP_ES_ITEM_OK) {
            (*ok)++;
        } else {
            if (f->n == f->cap) {
                uint32_t cap = f->cap ? f->cap * 2 : 16;
                sp_es_failed *v = realloc(f->v, cap * sizeof *v);
                if (!v) return -1;
                f->v = v;
                f->cap = cap;
            }
            f->v[f->n++] = (sp_es_failed){*n, status, err, err_end};
        }
        (*n)++;
        sp_es_scan_ws(s);
        if (s->p >= s->end) return -1;
        if (*s->p == ']') {
            s->p++;
            return 0;
        }
        if (*s->p++ != ',') return -1;
    }
}

/* Reports one failed item, reading its error object (type, reason, compact text). */
static void sp_es_report(const sp_es_failed *f, sp_es_item_cb cb, void *ctx)
{
    json_t *err = f->err ? json_loadb(f->err, (size_t)(f->err_end - f->err), 0, NULL) : NULL;
    char typebuf[32];
    const char *type = json_string_value(json_object_get(err, "type"));
    const char *reason = json_string_value(json_object_get(err, "reason"));
    if (!type) {
        snprintf(typebuf, sizeof typebuf, "status_%d", f->status);
        type = typebuf;
    }
    char *text = err ? json_dumps(err, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ENCODE_ANY) : NULL;
    cb(ctx, f->index, f->status, type, reason ? reason : "", text ? text : "");
    free(text);
    json_decref(err);
}

/* Whether "status": starts at q (at least 9 bytes there). */
static inline int sp_es_status_at(const char *q)
{
    return q[0] == '"' && q[8] == ':' && memcmp(q + 1, "status\"", 7) == 0;
}

/* How many times "status": occurs in [p, end): 16 candidate places a step (a quote with a colon 8
 * bytes on, SSE2), each candidate then compared whole. */
static size_t sp_es_statuses(const char *p, const char *end)
{
    size_t n = 0;
    const char *q = p;
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"'), colon = _mm_set1_epi8(':');
    for (; end - q >= 24; q += 16) {
        __m128i a = _mm_loadu_si128((const __m128i *)(const void *)q);
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(q + 8));
        unsigned m = (unsigned)_mm_movemask_epi8(
            _mm_and_si128(_mm_cmpeq_epi8(a, quote), _mm_cmpeq_epi8(b, colon)));
        for (; m; m &= m - 1)
            n += sp_es_status_at(q + __builtin_ctz(m));
    }
#endif
    for (; end - q >= 9; q++)
        n += sp_es_status_at(q);
    return n;
}

/*
 * "errors":false, then "items" at s->p: the items counted without reading them. nitems when
 * the array ends the body and holds exactly one "status": per item; -1 otherwise (the caller
 * then scans the body in full). A key or string value cannot hold the bytes "status": (a quote
 * inside a string is escaped), so each one is an item's status.
 */
static int64_t sp_es_count_items(const sp_es_scan *s, uint32_t nitems)
{
    const char *p = s->p, *end = s->end;
    while (end > p && sp_es_is_ws(end[-1]))
        end--;
    if (end - p < 2 || end[-1] != '}') return -1;
    end--;
    while (end > p && sp_es_is_ws(end[-1]))
        end--;
    if (end <= p || end[-1] != ']') return -1; /* more keys after the items: scanned in full */
    while (p < end && sp_es_is_ws(*p))
        p++;
    if (p >= end || *p != '[') return -1;
    return sp_es_statuses(p, end) == nitems ? (int64_t)nitems : -1;
}

int64_t sp_es_scan_response(const char *body, size_t len, uint32_t nitems, sp_es_failures *f)
{
    sp_es_scan s = {body, body + len};
    uint32_t n = 0, ok = 0;
    int errors = -1, items = 0;
    f->n = 0;
    if (sp_es_scan_char(&s, '{')) return -1;
    sp_es_scan_ws(&s);
    if (s.p < s.end && *s.p == '}') return -1; /* neither errors nor items */
    for (;;) {
        const char *k, *k_end;
        if (sp_es_scan_string(&s, &k, &k_end) || sp_es_scan_char(&s, ':')) return -1;
        sp_es_scan_ws(&s);
        if (sp_es_scan_key_is(k, k_end, "errors")) {
            if (s.end - s.p >= 4 && memcmp(s.p, "true", 4) == 0)
                errors = 1, s.p += 4;
            else if (s.end - s.p >= 5 && memcmp(s.p, "false", 5) == 0)
                errors = 0, s.p += 5;
            else
                return -1;
        } else if (sp_es_scan_key_is(k, k_end, "items")) {
            int64_t all = errors == 0 && !items ? sp_es_count_items(&s, nitems) : -1;
            if (all >= 0) return all; /* none failed: nothing to read in the items */
            if (items++ || sp_es_scan_items(&s, nitems, &n, &ok, f)) return -1;
        } else if (sp_es_scan_value(&s, 1)) {
            return -1;
        }
        sp_es_scan_ws(&s);
        if (s.p >= s.end) return -1;
        if (*s.p == '}') break;
        if (*s.p++ != ',') return -1;
    }
    s.p++;
    sp_es_scan_ws(&s);
    if (s.p != s.end || errors < 0 || n != nitems || (nitems > 0 && !items)) return -1;
    return ok;
}

void sp_es_report_failures(const sp_es_failures *f, sp_es_item_cb cb, void *ctx)
{
    for (uint32_t i = 0; i < f->n; i++)
        sp_es_report(&f->v[i], cb, ctx);
}

int64_t sp_es_parse_response(const char *body, size_t len, uint32_t nitems, sp_es_item_cb cb,
                             void *ctx)
{
    sp_es_failures f = {0};
    int64_t ok = sp_es_scan_response(body, len, nitems, &f);
    if (ok >= 0) sp_es_report_failures(&f, cb, ctx);
    free(f.v);
    return ok;
}
