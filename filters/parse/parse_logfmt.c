/* logfmt -> MessagePack pairs for the parse filter: a state machine over the line's bytes
 * (the format of Go's go-logfmt and Heroku's logfmt). */
#include "filter.h"
#include "mp.h"
#include "parse_int.h"

static int sp_logfmt_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* A quoted value at *pp (its opening quote) -> a str appended; *pp past the closing quote. */
static int sp_logfmt_quoted(const char **pp, const char *end, sp_buf *out)
{
    const char *s = *pp + 1, *q = s;
    int escapes = 0;
    while (q < end && *q != '"') {
        if (*q == '\\') {
            escapes = 1;
            if (++q >= end) return -1;
        }
        q++;
    }
    if (q >= end) return -1; /* unterminated */
    *pp = q + 1;
    if (!escapes) {
        sp_mp_put_str(out, s, (size_t)(q - s));
        return 0;
    }
    /* Unescaped length: raw minus one per escape; count first so the header is exact. */
    size_t n = 0;
    for (const char *p = s; p < q; p++, n++)
        if (*p == '\\') p++;
    size_t hlen = sp_mp_str_hlen(n);
    sp_buf_reserve(out, hlen + n);
    sp_mp_str_header((uint8_t *)out->base + out->len, hlen, n);
    out->len += hlen;
    for (const char *p = s; p < q; p++) {
        char c = *p;
        if (c == '\\') {
            c = *++p;
            c = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
        }
        out->base[out->len++] = c;
    }
    return 0;
}

int sp_parse_logfmt(const char *s, size_t len, sp_buf *out, uint32_t *n, sp_parse_scratch *sc)
{
    const char *p = s, *end = s + len;
    size_t before = out->len;
    uint32_t pairs = 0, assigned = 0;
    *n = 0;
    for (;;) {
        while (p < end && sp_logfmt_space(*p))
            p++;
        if (p >= end) break;
        const char *k = p;
        while (p < end && !sp_logfmt_space(*p) && *p != '=' && *p != '"')
            p++;
        if (p == k) goto bad; /* '=' or '"' where a key starts */
        sp_mp_put_str(out, k, (size_t)(p - k));
        pairs++;
        if (p >= end || *p != '=') { /* a bare key */
            sp_mp_put_bool(out, 1);
            continue;
        }
        p++;
        assigned++;
        if (p < end && *p == '"') {
            if (sp_logfmt_quoted(&p, end, out)) goto bad;
            if (p < end && !sp_logfmt_space(*p)) goto bad; /* "a"b */
            continue;
        }
        const char *v = p;
        while (p < end && !sp_logfmt_space(*p)) {
            if (*p == '"') goto bad; /* a quote inside an unquoted value */
            p++;
        }
        sp_mp_put_str(out, v, (size_t)(p - v));
    }
    if (!assigned) goto bad; /* plain words are not logfmt */
    *n = sp_extras_dedup(out, before, pairs, &sc->index, &sc->table);
    return 0;
bad:
    out->len = before;
    return -1;
}
