/* JSON -> MessagePack for the parse filter: a recursive-descent scanner that writes as it reads
 * (strings unescaped in place into the output, containers' counts patched at their end). */
#include <stdlib.h>

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

/* A string at j->p (on its opening quote) -> a MessagePack str. Its unescaped length is at most
 * the raw one, so the header is sized for that and its length patched. */
static int sp_pjson_string(sp_pjson *j)
{
    const char *s = ++j->p;
    const char *q = s;
    while (q < j->end && *q != '"') { /* the raw end, for the header's size */
        if (*q == '\\') q++;
        q++;
    }
    if (q >= j->end) return -1;
    size_t raw = (size_t)(q - s);
    sp_buf *b = j->out;
    size_t hdr = b->len, hlen = raw < 256 ? 2 : raw < 65536 ? 3 : 5;
    sp_buf_reserve(b, hlen + raw);
    b->len += hlen;
    const char *p = s;
    while (p < q) {
        const char *run = p;
        while (p < q && *p != '\\' && (uint8_t)*p >= 0x20)
            p++;
        if (p > run) {
            memcpy(b->base + b->len, run, (size_t)(p - run));
            b->len += (size_t)(p - run);
        }
        if (p >= q) break;
        if ((uint8_t)*p < 0x20) return -1; /* a raw control character */
        p++;                               /* the backslash */
        if (sp_pjson_escape(b, &p, q)) return -1;
    }
    size_t n = b->len - hdr - hlen;
    uint8_t *h = (uint8_t *)b->base + hdr;
    if (hlen == 2) {
        h[0] = 0xd9;
        h[1] = (uint8_t)n;
    } else if (hlen == 3) {
        h[0] = 0xda;
        h[1] = (uint8_t)(n >> 8);
        h[2] = (uint8_t)n;
    } else {
        h[0] = 0xdb;
        h[1] = (uint8_t)(n >> 24);
        h[2] = (uint8_t)(n >> 16);
        h[3] = (uint8_t)(n >> 8);
        h[4] = (uint8_t)n;
    }
    j->p = q + 1;
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

/* The members of an object (j->p after its '{') appended as pairs; *n their count. */
static int sp_pjson_members(sp_pjson *j, int depth, uint32_t *n)
{
    size_t at = j->out->len;
    *n = 0;
    sp_pjson_ws(j);
    if (j->p < j->end && *j->p == '}') {
        j->p++;
        return 0;
    }
    for (;;) {
        sp_pjson_ws(j);
        if (j->p >= j->end || *j->p != '"' || sp_pjson_string(j)) return -1;
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
    *n = sp_extras_dedup(j->out, at, *n, &j->sc->index, &j->sc->table);
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
    case '"':
        return sp_pjson_string(j);
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
