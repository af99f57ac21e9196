/* JSON -> MessagePack for the parse filter: a recursive-descent scanner that writes as it reads
 * (strings found 16 bytes a step and unescaped in place into the output, containers' counts
 * patched at their end, repeated keys found from the members' offsets noted on the way; docs/
 * filters.md, "parse"). */
#include <stdlib.h>
#include <string.h>

#include "filter.h"
#include "json.h"
#include "mp.h"
#include "parse_int.h"

typedef struct {
    const char *p, *end;
    sp_buf *out;
    sp_parse_scratch *sc;
} sp_pjson;

static void sp_pjson_ws(sp_pjson *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static int sp_pjson_hex4(const char *p, const char *end, uint32_t *v)
{
    if (end - p < 4) return -1;
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) return -1;
        *v = *v << 4 | (uint32_t)d;
    }
    return 0;
}

/* One escape at *pp (just past its backslash), unescaped into `b` (room reserved by
 * sp_pjson_string); advances *pp. -1 on a bad escape. */
static int sp_pjson_escape(sp_buf *b, const char **pp, const char *q)
{
    const char *p = *pp;
    char c = *p++, e;
    switch (c) {
    case '"':
        e = '"';
        break;
    case '\\':
        e = '\\';
        break;
    case '/':
        e = '/';
        break;
    case 'b':
        e = '\b';
        break;
    case 'f':
        e = '\f';
        break;
    case 'n':
        e = '\n';
        break;
    case 'r':
        e = '\r';
        break;
    case 't':
        e = '\t';
        break;
    case 'u': {
        uint32_t cp, lo;
        if (sp_pjson_hex4(p, q, &cp)) return -1;
        p += 4;
        if (cp >= 0xd800 && cp < 0xdc00 && q - p >= 6 && p[0] == '\\' && p[1] == 'u' &&
            sp_pjson_hex4(p + 2, q, &lo) == 0 && lo >= 0xdc00 && lo < 0xe000) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            p += 6;
        } else if (cp >= 0xd800 && cp < 0xe000) {
            cp = 0xfffd; /* a lone surrogate */
        }
        /* \u escapes may write up to 3 bytes for 6 raw ones (4 for 12): still within raw */
        b->len = (size_t)(sp_json_utf8(b->base + b->len, cp) - b->base);
        *pp = p;
        return 0;
    }
    default:
        return -1;
    }
    b->base[b->len++] = e;
    *pp = p;
    return 0;
}

/* A string with escapes, s .. its closing quote: its raw end first, for the header's size (the
 * unescaped length is at most the raw one: the header is sized for that and patched), then
 * runs copied and escapes unescaped. */
static int sp_pjson_escaped(sp_pjson *j, const char *s, size_t *koff)
{
    const char *q = s;
    for (;;) {
        q = sp_json_special(q, j->end);
        if (q >= j->end || (uint8_t)*q < 0x20) return -1;
        if (*q == '"') break;
        if (j->end - q < 2) return -1;
        q += 2; /* the backslash and the byte it escapes */
    }
    size_t raw = (size_t)(q - s);
    sp_buf *b = j->out;
    size_t hdr = b->len, hlen = raw < 256 ? 2 : raw < 65536 ? 3 : 5;
    sp_buf_reserve(b, hlen + raw);
    b->len += hlen;
    const char *p = s;
    while (p < q) {
        const char *run = p;
        p = sp_json_special(p, q);
        if (p > run) {
            memcpy(b->base + b->len, run, (size_t)(p - run));
            b->len += (size_t)(p - run);
        }
        if (p >= q) break;
        if (*p != '\\') return -1; /* a raw control character */
        p++;
        if (sp_pjson_escape(b, &p, q)) return -1;
    }
    *koff = hdr + hlen;
    sp_mp_str_header((uint8_t *)b->base + hdr, hlen, b->len - hdr - hlen);
    j->p = q + 1;
    return 0;
}

/* A string at j->p (on its opening quote) -> a MessagePack str; *koff where its bytes start in
 * the output. Without escapes (the common case) one scan and one copy. */
static int sp_pjson_string(sp_pjson *j, size_t *koff)
{
    const char *s = ++j->p;
    const char *e = sp_json_special(s, j->end);
    if (e >= j->end || *e != '"')
        return e < j->end && *e == '\\' ? sp_pjson_escaped(j, s, koff) : -1;
    size_t n = (size_t)(e - s), hlen = sp_mp_str_hlen(n);
    sp_buf *b = j->out;
    sp_buf_reserve(b, hlen + n);
    sp_mp_str_header((uint8_t *)b->base + b->len, hlen, n);
    memcpy(b->base + b->len + hlen, s, n);
    *koff = b->len + hlen;
    b->len += hlen + n;
    j->p = e + 1;
    return 0;
}

static int sp_pjson_number(sp_pjson *j)
{
    const char *s = j->p, *p = s;
    if (p < j->end && *p == '-') p++;
    if (p >= j->end || *p < '0' || *p > '9') return -1;
    if (*p == '0')
        p++;
    else
        while (p < j->end && *p >= '0' && *p <= '9')
            p++;
    int is_int = 1;
    if (p < j->end && *p == '.') {
        is_int = 0;
        p++;
        if (p >= j->end || *p < '0' || *p > '9') return -1;
        while (p < j->end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < j->end && (*p == 'e' || *p == 'E')) {
        is_int = 0;
        p++;
        if (p < j->end && (*p == '+' || *p == '-')) p++;
        if (p >= j->end || *p < '0' || *p > '9') return -1;
        while (p < j->end && *p >= '0' && *p <= '9')
            p++;
    }
    size_t n = (size_t)(p - s);
    j->p = p;
    if (is_int && n <= 19) { /* fits in 64 bits (one digit short of overflowing) */
        uint64_t v = 0;
        for (const char *d = s + (*s == '-'); d < p; d++)
            v = v * 10 + (uint64_t)(*d - '0');
        if (*s == '-')
            sp_mp_put_int(j->out, -(int64_t)v);
        else
            sp_mp_put_uint(j->out, v);
        return 0;
    }
    char tmp[64];
    if (n >= sizeof tmp) { /* a number too long for a double's text: kept as its text */
        sp_mp_put_str(j->out, s, n);
        return 0;
    }
    memcpy(tmp, s, n);
    tmp[n] = 0;
    sp_mp_put_double(j->out, strtod(tmp, NULL));
    return 0;
}

static int sp_pjson_lit(sp_pjson *j, const char *lit, size_t n)
{
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n) != 0) return -1;
    j->p += n;
    return 0;
}

static int sp_pjson_value(sp_pjson *j, int depth);

/* A member of an object being read, on the scratch stack sc->index (a nested object's members
 * go above its parent's and are popped at its end): where its pair and key are in the output. */
typedef struct {
    size_t off, koff;
    uint32_t klen, drop;
} sp_pjson_key;

/* Marks the earlier of repeated keys among k[0..n) dropped; 1 when any was. Pairwise for a few
 * members, a hash table (sc->table) for more. */
static int sp_pjson_mark(sp_pjson *j, sp_pjson_key *k, uint32_t n)
{
    const char *o = j->out->base;
    int dup = 0;
    if (n <= 8) {
        for (uint32_t i = 1; i < n; i++)
            for (uint32_t m = 0; m < i; m++)
                if (k[m].klen == k[i].klen && memcmp(o + k[m].koff, o + k[i].koff, k[i].klen) == 0)
                    k[m].drop = dup = 1;
        return dup;
    }
    size_t cap = 16;
    while (cap < (size_t)n * 2)
        cap *= 2;
    sp_buf *tb = &j->sc->table;
    tb->len = 0;
    sp_buf_reserve(tb, cap * sizeof(uint32_t));
    uint32_t *t = (uint32_t *)(void *)tb->base;
    memset(t, 0xff, cap * sizeof(uint32_t));
    for (uint32_t i = n; i-- > 0;) { /* from the last: a key seen already (later) drops this one */
        size_t h = sp_hash_bytes(o + k[i].koff, k[i].klen) & (cap - 1);
        for (; t[h] != UINT32_MAX; h = (h + 1) & (cap - 1)) {
            sp_pjson_key *s = &k[t[h]];
            if (s->klen == k[i].klen && memcmp(o + s->koff, o + k[i].koff, s->klen) == 0) break;
        }
        if (t[h] != UINT32_MAX)
            k[i].drop = dup = 1;
        else
            t[h] = i;
    }
    return dup;
}

/* A repeated key keeps its last value, in its last place: the earlier pairs are cut out of the
 * output (k[i]'s pair ends where k[i + 1]'s starts, the last at the output's end). */
static uint32_t sp_pjson_dedup(sp_pjson *j, size_t base, uint32_t n)
{
    sp_pjson_key *k = (sp_pjson_key *)(void *)(j->sc->index.base + base);
    if (n < 2 || !sp_pjson_mark(j, k, n)) return n;
    sp_buf *b = j->out;
    size_t w = k[0].off, end = b->len;
    uint32_t kept = 0;
    for (uint32_t i = 0; i < n; i++) {
        size_t to = i + 1 < n ? k[i + 1].off : end;
        if (k[i].drop) continue;
        memmove(b->base + w, b->base + k[i].off, to - k[i].off);
        w += to - k[i].off;
        kept++;
    }
    b->len = w;
    return kept;
}

/* The members of an object (j->p after its '{') appended as pairs; *n their count. */
static int sp_pjson_members(sp_pjson *j, int depth, uint32_t *n)
{
    sp_buf *ix = &j->sc->index;
    size_t base = ix->len;
    *n = 0;
    sp_pjson_ws(j);
    if (j->p < j->end && *j->p == '}') {
        j->p++;
        return 0;
    }
    for (;;) {
        sp_pjson_ws(j);
        sp_pjson_key k = {.off = j->out->len};
        if (j->p >= j->end || *j->p != '"' || sp_pjson_string(j, &k.koff)) return -1;
        k.klen = (uint32_t)(j->out->len - k.koff);
        sp_buf_reserve(ix, sizeof k);
        memcpy(ix->base + ix->len, &k, sizeof k);
        ix->len += sizeof k;
        sp_pjson_ws(j);
        if (j->p >= j->end || *j->p++ != ':') return -1;
        if (sp_pjson_value(j, depth + 1)) return -1;
        (*n)++;
        sp_pjson_ws(j);
        if (j->p >= j->end) return -1;
        char c = *j->p++;
        if (c == '}') break;
        if (c != ',') return -1;
    }
    *n = sp_pjson_dedup(j, base, *n);
    ix->len = base;
    return 0;
}

static void sp_pjson_patch32(sp_buf *b, size_t at, uint8_t type, uint32_t n)
{
    uint8_t *h = (uint8_t *)b->base + at;
    h[0] = type;
    h[1] = (uint8_t)(n >> 24);
    h[2] = (uint8_t)(n >> 16);
    h[3] = (uint8_t)(n >> 8);
    h[4] = (uint8_t)n;
}

static int sp_pjson_value(sp_pjson *j, int depth)
{
    if (depth > SP_PARSE_JSON_DEPTH) return -1;
    sp_pjson_ws(j);
    if (j->p >= j->end) return -1;
    switch (*j->p) {
    case '"': {
        size_t koff;
        return sp_pjson_string(j, &koff);
    }
    case '{': {
        j->p++;
        size_t at = j->out->len;
        sp_buf_reserve(j->out, 5);
        j->out->len += 5;
        uint32_t n;
        if (sp_pjson_members(j, depth, &n)) return -1;
        sp_pjson_patch32(j->out, at, 0xdf, n);
        return 0;
    }
    case '[': {
        j->p++;
        size_t at = j->out->len;
        sp_buf_reserve(j->out, 5);
        j->out->len += 5;
        uint32_t n = 0;
        sp_pjson_ws(j);
        if (j->p < j->end && *j->p == ']') {
            j->p++;
        } else {
            for (;;) {
                if (sp_pjson_value(j, depth + 1)) return -1;
                n++;
                sp_pjson_ws(j);
                if (j->p >= j->end) return -1;
                char c = *j->p++;
                if (c == ']') break;
                if (c != ',') return -1;
            }
        }
        sp_pjson_patch32(j->out, at, 0xdd, n);
        return 0;
    }
    case 't':
        if (sp_pjson_lit(j, "true", 4)) return -1;
        sp_mp_put_bool(j->out, 1);
        return 0;
    case 'f':
        if (sp_pjson_lit(j, "false", 5)) return -1;
        sp_mp_put_bool(j->out, 0);
        return 0;
    case 'n':
        if (sp_pjson_lit(j, "null", 4)) return -1;
        sp_mp_put_nil(j->out);
        return 0;
    default:
        return sp_pjson_number(j);
    }
}

int sp_parse_json(const char *s, size_t len, sp_buf *out, uint32_t *n, sp_parse_scratch *sc)
{
    sp_pjson j = {s, s + len, out, sc};
    size_t before = out->len;
    *n = 0;
    sc->index.len = 0;
    sp_pjson_ws(&j);
    if (j.p >= j.end || *j.p != '{') return -1;
    j.p++;
    if (sp_pjson_members(&j, 1, n)) goto bad;
    sp_pjson_ws(&j);
    if (j.p != j.end) goto bad;
    return 0;
bad:
    out->len = before;
    *n = 0;
    return -1;
}

int sp_parse_json_places(void *arg, sp_extra *x, uint32_t n)
{
    const sp_parse_json_at *at = arg;
    const char *b = at->out->base;
    /* the top level's members are left at the bottom of the stack (nested objects' above them
     * are popped); a repeated key moved the pairs after it (sp_pjson_dedup) and marked one of
     * the first n */
    const sp_pjson_key *k = (const sp_pjson_key *)(const void *)at->sc->index.base;
    if (!n || at->sc->index.cap < n * sizeof *k) return -1;
    for (uint32_t i = 0; i < n; i++) {
        if (k[i].drop) return -1;
        const char *key = b + k[i].koff, *v = key + k[i].klen;
        const char *end = b + (i + 1 < n ? k[i + 1].off : at->out->len);
        x[i].key.base = key;
        x[i].key.len = k[i].klen;
        x[i].val.base = v;
        x[i].val.len = (size_t)(end - v);
    }
    return 0;
}
