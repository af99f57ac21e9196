/* Record → JSON document. The hot path of every output; no allocation beyond `out` growing. */
#include "json.h"

#include <math.h>
#include <stdio.h>

#include "mp.h"

/* 0: copy as is; 1: needs an escape; 2: non-ASCII, validate as UTF-8. */
static const uint8_t sp_json_class[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};

/* Length of the valid UTF-8 sequence at s (1..4), or 0 with *bad set to the bytes that form
 * the maximal invalid subpart (replaced by one U+FFFD). */
static size_t sp_json_utf8_len(const uint8_t *s, size_t n, size_t *bad)
{
    uint8_t c = s[0];
    size_t need;
    uint8_t lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
        need = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        need = 3;
        if (c == 0xe0) lo = 0xa0;
        if (c == 0xed) hi = 0x9f; /* no surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f;
    } else {
        *bad = 1;
        return 0;
    }
    size_t i = 1;
    for (; i < need; i++) {
        if (i >= n) break;
        uint8_t lo_i = i == 1 ? lo : 0x80, hi_i = i == 1 ? hi : 0xbf;
        if (s[i] < lo_i || s[i] > hi_i) break;
    }
    if (i == need) return need;
    *bad = i;
    return 0;
}

#ifndef __SSE2__
/* Nonzero when a byte of `w` is below 0x20, '"', '\\', DEL or 0x80 and above. Borrows may flag a
 * byte after a true one too; the caller rescans the word byte by byte, so that is harmless. */
static inline uint64_t sp_json_word_special(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
    uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\'), d = w ^ (ones * 0x7f);
    uint64_t below = (w - ones * 0x20) & ~w; /* a byte < 0x20 */
    uint64_t quote = (q - ones) & ~q;        /* a zero byte in q: '"' */
    uint64_t bslash = (b - ones) & ~b;       /* a zero byte in b: '\\' */
    uint64_t del = (d - ones) & ~d;          /* DEL, escaped like the controls */
    return (below | quote | bslash | del | w) & high;
}
#endif

/* The end of the plain run at s: the first byte that is a control, '"', '\\', DEL or non-ASCII
 * (sp_json_class not 0), or `end`. 16 bytes a step with SSE2 (a signed compare below 0x20 takes
 * the controls and 0x80 and above at once), 8 with words elsewhere. */
static inline const uint8_t *sp_json_str_plain(const uint8_t *s, const uint8_t *end)
{
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
    const __m128i del = _mm_set1_epi8(0x7f), space = _mm_set1_epi8(' ');
    while (end - s >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)s);
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                                 _mm_or_si128(_mm_cmpeq_epi8(v, del), _mm_cmplt_epi8(v, space)));
        unsigned bits = (unsigned)_mm_movemask_epi8(m);
        if (bits) return s + __builtin_ctz(bits);
        s += 16;
    }
#else
    while (end - s >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        if (sp_json_word_special(w)) break;
        s += 8;
    }
#endif
    while (s < end && sp_json_class[*s] == 0)
        s++;
    return s;
}

void sp_json_str(sp_buf *out, const char *str, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const uint8_t *s = (const uint8_t *)str, *end = s + n;
    /* Worst case is 6 bytes per input byte (\u00XX); reserve for the common case and grow. */
    sp_buf_reserve(out, n + 2 + 16);
    out->base[out->len++] = '"';
    while (s < end) {
        const uint8_t *run = s;
        s = sp_json_str_plain(s, end);
        if (s > run) sp_buf_append(out, run, (size_t)(s - run));
        if (s == end) break;
        if (sp_json_class[*s] == 1) {
            sp_buf_reserve(out, 6);
            char *o = out->base + out->len;
            switch (*s) {
            case '"':
                o[0] = '\\', o[1] = '"', out->len += 2;
                break;
            case '\\':
                o[0] = '\\', o[1] = '\\', out->len += 2;
                break;
            case '\n':
                o[0] = '\\', o[1] = 'n', out->len += 2;
                break;
            case '\r':
                o[0] = '\\', o[1] = 'r', out->len += 2;
                break;
            case '\t':
                o[0] = '\\', o[1] = 't', out->len += 2;
                break;
            default:
                memcpy(o, "\\u00", 4);
                o[4] = hex[*s >> 4];
                o[5] = hex[*s & 15];
                out->len += 6;
            }
            s++;
            continue;
        }
        size_t bad = 0, len = sp_json_utf8_len(s, (size_t)(end - s), &bad);
        if (len) {
            sp_buf_append(out, s, len);
            s += len;
        } else {
            sp_buf_append(out, "\xef\xbf\xbd", 3);
            s += bad;
        }
    }
    sp_buf_putc(out, '"');
}

int64_t sp_json_days(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* Civil date from days since 1970-01-01 (Howard Hinnant's algorithm): no gmtime, no locks. */
static void sp_json_civil(int64_t days, int *y, unsigned *m, unsigned *d)
{
    days += 719468;
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    unsigned doe = (unsigned)(days - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yy + (*m <= 2));
}

void sp_json_timestamp(sp_buf *out, uint64_t sec, uint32_t nsec, int prec)
{
    /* Records arrive in bursts within the same second: format the date part once per second. */
    static __thread uint64_t cached_sec = UINT64_MAX;
    static __thread char cached[48];
    if (sec > SP_TIME_MAX_SEC) sec = SP_TIME_MAX_SEC; /* four-digit years: README "The document" */
    if (sec != cached_sec) {
        int y;
        unsigned mo, d;
        sp_json_civil((int64_t)(sec / 86400), &y, &mo, &d);
        unsigned s = (unsigned)(sec % 86400);
        snprintf(cached, sizeof cached, "%04d-%02u-%02uT%02u:%02u:%02u", y % 10000, mo, d, s / 3600,
                 s / 60 % 60, s % 60);
        cached_sec = sec;
    }
    sp_buf_reserve(out, 34);
    char *o = out->base + out->len;
    o[0] = '"';
    memcpy(o + 1, cached, 19);
    size_t n = 20;
    if (prec > 0) {
        if (prec > 9) prec = 9;
        o[n++] = '.';
        char digits[9];
        uint32_t v = nsec;
        for (int i = 8; i >= 0; i--)
            digits[i] = (char)('0' + v % 10), v /= 10;
        memcpy(o + n, digits, (size_t)prec);
        n += (size_t)prec;
    }
    o[n++] = 'Z';
    o[n++] = '"';
    out->len += n;
}

/* JSON keys are strings. A number, bool or nil key is written as its text; a container key
 * (legal MessagePack, useless as a field name) as "_key<i>": rendering it as escaped JSON
 * would grow exponentially with nesting. */
static int sp_json_json_key(sp_buf *out, const uint8_t **p, const uint8_t *end, uint32_t i)
{
    sp_mp_obj k;
    const uint8_t *kp = *p;
    if (sp_mp_read(&kp, end, &k)) return -1;
    if (k.type == SP_MP_ARRAY || k.type == SP_MP_MAP || k.type == SP_MP_EXT) {
        if (sp_mp_skip(p, end)) return -1;
        sp_buf_printf(out, "\"_key%u\"", i);
        return 0;
    }
    sp_buf_putc(out, '"');
    int rc = sp_json_mp(out, p, end); /* a scalar: no quotes or escapes in its text */
    sp_buf_putc(out, '"');
    return rc;
}

int sp_json_mp(sp_buf *out, const uint8_t **p, const uint8_t *end)
{
    sp_mp_obj o;
    if (sp_mp_read(p, end, &o)) return -1;
    switch (o.type) {
    case SP_MP_NIL:
        SP_BUF_LIT(out, "null");
        return 0;
    case SP_MP_BOOL:
        if (o.v.b)
            SP_BUF_LIT(out, "true");
        else
            SP_BUF_LIT(out, "false");
        return 0;
    case SP_MP_UINT:
        sp_buf_printf(out, "%llu", (unsigned long long)o.v.u);
        return 0;
    case SP_MP_INT:
        sp_buf_printf(out, "%lld", (long long)o.v.i);
        return 0;
    case SP_MP_FLOAT:
        if (isfinite(o.v.f))
            sp_buf_printf(out, "%.17g", o.v.f);
        else
            SP_BUF_LIT(out, "null");
        return 0;
    case SP_MP_STR:
    case SP_MP_BIN:
        sp_json_str(out, o.s.base, o.s.len);
        return 0;
    case SP_MP_EXT:
        if (o.ext_type == 0 && o.s.len == 8) { /* Fluentd EventTime */
            const uint8_t *b = (const uint8_t *)o.s.base;
            sp_json_timestamp(out, sp_be32(b), sp_be32(b + 4), 9);
        } else {
            SP_BUF_LIT(out, "null");
        }
        return 0;
    case SP_MP_ARRAY:
        sp_buf_putc(out, '[');
        for (uint32_t i = 0; i < o.v.n; i++) {
            if (i) sp_buf_putc(out, ',');
            if (sp_json_mp(out, p, end)) return -1;
        }
        sp_buf_putc(out, ']');
        return 0;
    case SP_MP_MAP:
        sp_buf_putc(out, '{');
        for (uint32_t i = 0; i < o.v.n; i++) {
            if (i) sp_buf_putc(out, ',');
            sp_mp_obj k;
            const uint8_t *kp = *p;
            if (sp_mp_read(&kp, end, &k)) return -1;
            if (k.type == SP_MP_STR || k.type == SP_MP_BIN) {
                sp_json_str(out, k.s.base, k.s.len);
                *p = kp;
            } else if (sp_json_json_key(out, p, end, i)) {
                return -1;
            }
            sp_buf_putc(out, ':');
            if (sp_json_mp(out, p, end)) return -1;
        }
        sp_buf_putc(out, '}');
        return 0;
    }
    return -1;
}

/* Keys of the document itself; a record field with such a name is written as "_name". */
static int sp_json_reserved(sp_slice k)
{
    return SP_SLICE_IS(k, "@timestamp") || SP_SLICE_IS(k, "message") || SP_SLICE_IS(k, "stream") ||
           SP_SLICE_IS(k, "container") || SP_SLICE_IS(k, "tag");
}

void sp_json_document(sp_buf *out, const sp_record *r, sp_slice tag, sp_json_container_fn more,
                      void *ctx)
{
    SP_BUF_LIT(out, "{\"@timestamp\":");
    sp_json_timestamp(out, r->sec, r->nsec, r->prec);
    if (r->message.base) {
        SP_BUF_LIT(out, ",\"message\":");
        sp_json_str(out, r->message.base, r->message.len);
    }
    if (r->stream.base) {
        SP_BUF_LIT(out, ",\"stream\":");
        sp_json_str(out, r->stream.base, r->stream.len);
    }
    if (r->container_id.base || r->container_name.base) {
        SP_BUF_LIT(out, ",\"container\":{");
        int first = 1;
        if (r->container_id.base) {
            SP_BUF_LIT(out, "\"id\":");
            sp_json_str(out, r->container_id.base, r->container_id.len);
            first = 0;
        }
        if (r->container_name.base) {
            if (!first) sp_buf_putc(out, ',');
            SP_BUF_LIT(out, "\"name\":");
            sp_json_str(out, r->container_name.base, r->container_name.len);
        }
        if (r->container_id.base && more) more(ctx, r->container_id, out);
        sp_buf_putc(out, '}');
    }
    SP_BUF_LIT(out, ",\"tag\":");
    sp_json_str(out, tag.base, tag.len);
    const uint8_t *p = (const uint8_t *)r->extras.base, *end = p + r->extras.len;
    for (uint32_t i = 0; i < r->nextras; i++) {
        sp_mp_obj k;
        const uint8_t *kp = p;
        sp_buf_putc(out, ',');
        if (sp_mp_read(&kp, end, &k) == 0 && (k.type == SP_MP_STR || k.type == SP_MP_BIN)) {
            if (sp_json_reserved(k.s)) {
                sp_buf tmp = {0};
                sp_buf_putc(&tmp, '_');
                sp_buf_append(&tmp, k.s.base, k.s.len);
                sp_json_str(out, tmp.base, tmp.len);
                sp_buf_free(&tmp);
            } else {
                sp_json_str(out, k.s.base, k.s.len);
            }
            p = kp;
        } else if (sp_json_json_key(out, &p, end, i)) { /* extras are validated on input */
            SP_BUF_LIT(out, "\"_invalid\":null");
            break;
        }
        sp_buf_putc(out, ':');
        if (sp_json_mp(out, &p, end)) {
            SP_BUF_LIT(out, "null");
            break;
        }
    }
    sp_buf_putc(out, '}');
}
