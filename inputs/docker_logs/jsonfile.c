/*
 * The json-file line parser. Docker writes a fixed shape, but the parser accepts any member
 * order, whitespace and unknown members, so a future Docker field is skipped rather than
 * turning every line into a corrupt one. Strings without escapes are returned in place; the
 * common log value "text\n" is also returned in place (the escaped newline is just dropped),
 * so most lines are parsed without copying the message. The rest are unescaped in one pass, 16
 * bytes a step, and a line's time reuses the previous line's parse of the same second: this
 * parser is about half of the input's CPU (README, benchmarks, note 6).
 */
#include "json.h"
#include "jsonfile.h"

#include "mp.h"
#include "record.h"

#define SP_JF_MAX_DEPTH 32

typedef struct {
    const char *p, *end;
    char *out; /* scratch write position: unescaped text is never longer than its source */
} sp_jsonfile_cur;

static void sp_jsonfile_ws(sp_jsonfile_cur *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\r' || *j->p == '\n'))
        j->p++;
}

/* A hex digit's value plus one; 0 for any other byte. */
static const uint8_t sp_jsonfile_hexv[256] = {
    ['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,  ['6'] = 7,  ['7'] = 8,
    ['8'] = 9,  ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
    ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

/* n (2 or 4) hex digits at p; -1 when one is not. */
static inline int sp_jsonfile_hexn(const char *p, int n, uint32_t *v)
{
    const uint8_t *u = (const uint8_t *)p;
    uint32_t x = 0, ok = 1;
    for (int i = 0; i < n; i++) {
        uint32_t d = sp_jsonfile_hexv[u[i]];
        ok &= d != 0;
        x = x << 4 | ((d - 1) & 15);
    }
    *v = x;
    return ok ? 0 : -1;
}

static int sp_jsonfile_hex4(const char *p, uint32_t *v)
{
    return sp_jsonfile_hexn(p, 4, v);
}

/* One escape at j->p (just past the backslash) written to o; advances. NULL on a bad escape. */
static char *sp_jsonfile_escape(sp_jsonfile_cur *j, char *o)
{
    if (j->p >= j->end) return NULL;
    char c = *j->p++;
    switch (c) {
    case '"':
        *o++ = '"';
        return o;
    case '\\':
        *o++ = '\\';
        return o;
    case '/':
        *o++ = '/';
        return o;
    case 'b':
        *o++ = '\b';
        return o;
    case 'f':
        *o++ = '\f';
        return o;
    case 'n':
        *o++ = '\n';
        return o;
    case 'r':
        *o++ = '\r';
        return o;
    case 't':
        *o++ = '\t';
        return o;
    case 'u':
        break;
    default:
        return NULL;
    }
    uint32_t cp, lo;
    /* \u00XX: Docker's escape for controls (colour codes) and <, >, & */
    if (j->end - j->p >= 4 && j->p[0] == '0' && j->p[1] == '0' &&
        !sp_jsonfile_hexn(j->p + 2, 2, &cp)) {
        j->p += 4;
        if (cp < 0x80) {
            *o++ = (char)cp;
        } else {
            *o++ = (char)(0xc0 | (cp >> 6));
            *o++ = (char)(0x80 | (cp & 0x3f));
        }
        return o;
    }
    if (j->end - j->p < 4 || sp_jsonfile_hex4(j->p, &cp)) return NULL;
    j->p += 4;
    if (cp >= 0xd800 && cp <= 0xdbff) {
        /* A high surrogate makes a character only with the low one right after it. */
        if (j->end - j->p >= 6 && j->p[0] == '\\' && j->p[1] == 'u' &&
            !sp_jsonfile_hex4(j->p + 2, &lo) && lo >= 0xdc00 && lo <= 0xdfff) {
            j->p += 6;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        } else {
            cp = 0xfffd;
        }
    } else if (cp >= 0xdc00 && cp <= 0xdfff) {
        cp = 0xfffd;
    }
    return sp_json_utf8(o, cp);
}

/* The first '"' or '\\' at or after p; `end` when neither comes before it. Control characters
 * (Docker escapes them; tolerated here) are plain text. */
static inline const char *sp_jsonfile_qb(const char *p, const char *end)
{
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        unsigned bits = (unsigned)_mm_movemask_epi8(
            _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)));
        if (bits) return p + __builtin_ctz(bits);
        p += 16;
    }
    while (p < end && *p != '"' && *p != '\\')
        p++;
#else
    while ((p = sp_json_special(p, end)) < end && *p != '"' && *p != '\\')
        p++;
#endif
    return p;
}

/*
 * Unescapes from p (at a backslash) to the closing quote into o, in one pass: each 16-byte block
 * is stored to the output whole and only its first '"' or '\\' is acted on (the rest is stored
 * again from there), so plain text costs one load and one store per block. The output has room:
 * what is written never runs ahead of what is read, and a block is taken only with 16 bytes of
 * the line left. Returns the output's end (j->p past the quote) or NULL on a bad string.
 */
static char *sp_jsonfile_unescape(sp_jsonfile_cur *j, const char *p, char *o)
{
    const char *end = j->end;
    for (;;) {
        if (*p == '\\') {
            j->p = p + 1;
            if (!(o = sp_jsonfile_escape(j, o))) return NULL;
            p = j->p;
        }
#ifdef __SSE2__
        const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
        unsigned bits = 0;
        while (end - p >= 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
            _mm_storeu_si128((__m128i *)(void *)o, v);
            bits = (unsigned)_mm_movemask_epi8(
                _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)));
            if (bits) break;
            p += 16;
            o += 16;
        }
        if (bits) {
            unsigned k = (unsigned)__builtin_ctz(bits);
            p += k;
            o += k;
        } else
#endif
        {
            const char *q = sp_jsonfile_qb(p, end);
            memcpy(o, p, (size_t)(q - p));
            o += q - p;
            p = q;
            if (p >= end) return NULL;
        }
        if (*p == '"') {
            j->p = p + 1;
            return o;
        }
    }
}

/*
 * A string at j->p (the opening quote). With `nl` set, a value ending in an escaped newline has
 * it removed and *nl set, which lets "text\n" come back in place.
 */
static int sp_jsonfile_str(sp_jsonfile_cur *j, sp_slice *s, int *nl)
{
    if (j->p >= j->end || *j->p != '"') return SP_JF_ECORRUPT;
    const char *start = ++j->p, *end = j->end;
    const char *x = sp_jsonfile_qb(start, end);
    if (nl) *nl = 0;
    if (x >= end) return SP_JF_ECORRUPT;
    if (*x == '"') { /* no escape at all */
        *s = sp_slice_make(start, (size_t)(x - start));
        j->p = x + 1;
        return 0;
    }
    if (nl && end - x >= 3 && x[1] == 'n' && x[2] == '"') {
        *s = sp_slice_make(start, (size_t)(x - start));
        *nl = 1;
        j->p = x + 3;
        return 0;
    }
    char *o0 = j->out, *o = o0;
    memcpy(o, start, (size_t)(x - start));
    if (!(o = sp_jsonfile_unescape(j, x, o + (x - start)))) return SP_JF_ECORRUPT;
    j->out = o;
    if (nl && o > o0 && o[-1] == '\n') {
        *nl = 1;
        o--;
    }
    *s = sp_slice_make(o0, (size_t)(o - o0));
    return 0;
}

static int sp_jsonfile_skip(sp_jsonfile_cur *j, int depth)
{
    if (depth > SP_JF_MAX_DEPTH) return SP_JF_ECORRUPT;
    sp_jsonfile_ws(j);
    if (j->p >= j->end) return SP_JF_ECORRUPT;
    char c = *j->p;
    if (c == '"') {
        char *save = j->out;
        sp_slice s;
        int rc = sp_jsonfile_str(j, &s, NULL);
        j->out = save; /* skipped strings need no room */
        return rc;
    }
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        j->p++;
        sp_jsonfile_ws(j);
        if (j->p < j->end && *j->p == close) {
            j->p++;
            return 0;
        }
        for (;;) {
            if (c == '{') {
                if (sp_jsonfile_skip(j, depth + 1)) return SP_JF_ECORRUPT; /* the key */
                sp_jsonfile_ws(j);
                if (j->p >= j->end || *j->p++ != ':') return SP_JF_ECORRUPT;
            }
            if (sp_jsonfile_skip(j, depth + 1)) return SP_JF_ECORRUPT;
            sp_jsonfile_ws(j);
            if (j->p >= j->end) return SP_JF_ECORRUPT;
            if (*j->p == close) {
                j->p++;
                return 0;
            }
            if (*j->p++ != ',') return SP_JF_ECORRUPT;
        }
    }
    const char *s = j->p;
    while (j->p < j->end && ((*j->p >= '0' && *j->p <= '9') || (*j->p >= 'a' && *j->p <= 'z') ||
                             *j->p == '-' || *j->p == '+' || *j->p == '.' || *j->p == 'E'))
        j->p++;
    return j->p > s ? 0 : SP_JF_ECORRUPT;
}

static int sp_jsonfile_attrs(sp_jsonfile_cur *j, sp_buf *attrs, uint32_t *n)
{
    sp_jsonfile_ws(j);
    if (j->p >= j->end || *j->p != '{') return sp_jsonfile_skip(j, 1); /* not an object: ignored */
    j->p++;
    sp_jsonfile_ws(j);
    if (j->p < j->end && *j->p == '}') {
        j->p++;
        return 0;
    }
    for (;;) {
        sp_slice k, v;
        sp_jsonfile_ws(j);
        if (sp_jsonfile_str(j, &k, NULL)) return SP_JF_ECORRUPT;
        sp_jsonfile_ws(j);
        if (j->p >= j->end || *j->p++ != ':') return SP_JF_ECORRUPT;
        sp_jsonfile_ws(j);
        if (j->p < j->end && *j->p == '"') {
            if (sp_jsonfile_str(j, &v, NULL)) return SP_JF_ECORRUPT;
            sp_mp_put_str(attrs, k.base, k.len);
            sp_mp_put_str(attrs, v.base, v.len);
            (*n)++;
        } else if (sp_jsonfile_skip(j, 2)) {
            return SP_JF_ECORRUPT;
        }
        sp_jsonfile_ws(j);
        if (j->p >= j->end) return SP_JF_ECORRUPT;
        if (*j->p == '}') {
            j->p++;
            return 0;
        }
        if (*j->p++ != ',') return SP_JF_ECORRUPT;
    }
}

static int sp_jsonfile_digits(const char *p, int n, uint32_t *v)
{
    uint32_t x = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return -1;
        x = x * 10 + (uint32_t)(p[i] - '0');
    }
    *v = x;
    return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t sp_jsonfile_days(int64_t y, uint32_t m, uint32_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The last "YYYY-MM-DDTHH:MM:SS" parsed and its seconds (local, before any offset): lines written
 * in the same second share it, so most lines parse only their fraction. Per thread. */
static _Thread_local struct {
    char prefix[19];
    int set;
    int64_t sec;
} sp_jsonfile_tcache;

/* The seconds of s's first 19 bytes (len >= 20 checked by the caller); -1 when not a date. */
static int sp_jsonfile_datetime(const char *s, int64_t *t)
{
    if (sp_jsonfile_tcache.set && !memcmp(s, sp_jsonfile_tcache.prefix, 19)) {
        *t = sp_jsonfile_tcache.sec;
        return 0;
    }
    uint32_t y, mo, d, h, mi, se;
    if (sp_jsonfile_digits(s, 4, &y) || s[4] != '-' || sp_jsonfile_digits(s + 5, 2, &mo) ||
        s[7] != '-' || sp_jsonfile_digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') ||
        sp_jsonfile_digits(s + 11, 2, &h) || s[13] != ':' || sp_jsonfile_digits(s + 14, 2, &mi) ||
        s[16] != ':' || sp_jsonfile_digits(s + 17, 2, &se))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) return -1;
    *t = sp_jsonfile_days(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
    memcpy(sp_jsonfile_tcache.prefix, s, 19);
    sp_jsonfile_tcache.sec = *t;
    sp_jsonfile_tcache.set = 1;
    return 0;
}

int sp_rfc3339_parse(const char *s, size_t len, uint64_t *sec, uint32_t *nsec)
{
    uint32_t frac = 0;
    int64_t t;
    if (len < 20 || sp_jsonfile_datetime(s, &t)) return SP_JF_ECORRUPT;
    size_t i = 19;
    if (i < len && s[i] == '.') {
        int digits = 0;
        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, digits++)
            if (digits < 9) frac = frac * 10 + (uint32_t)(s[i] - '0');
        if (digits == 0) return SP_JF_ECORRUPT;
        for (; digits < 9; digits++)
            frac *= 10;
    }
    int64_t off = 0;
    if (i + 1 == len && (s[i] == 'Z' || s[i] == 'z')) {
        off = 0;
    } else if (i + 6 == len && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
        uint32_t oh, om;
        if (sp_jsonfile_digits(s + i + 1, 2, &oh) || sp_jsonfile_digits(s + i + 4, 2, &om) ||
            oh > 23 || om > 59)
            return SP_JF_ECORRUPT;
        off = (int64_t)(oh * 3600 + om * 60) * (s[i] == '+' ? 1 : -1);
    } else {
        return SP_JF_ECORRUPT;
    }
    t -= off;
    if (t < 0) return SP_JF_ECORRUPT;
    /* 9999-12-31 with a negative offset: past the last writable second, clamped like any time */
    *sec = (uint64_t)t < SP_TIME_MAX_SEC ? (uint64_t)t : SP_TIME_MAX_SEC;
    *nsec = frac;
    return 0;
}

/* A member's key, its colon and the whitespace around them. Docker's own keys, written without
 * whitespace, are matched whole before the general path. */
static int sp_jsonfile_key(sp_jsonfile_cur *j, sp_slice *k)
{
    sp_jsonfile_ws(j);
    if (j->end - j->p >= 9) {
        const char *p = j->p;
        size_t n = p[1] == 'l' && !memcmp(p, "\"log\":", 6)      ? 6
                   : p[1] == 't' && !memcmp(p, "\"time\":", 7)   ? 7
                   : p[1] == 's' && !memcmp(p, "\"stream\":", 9) ? 9
                                                                 : 0;
        if (n) {
            *k = sp_slice_make(p + 1, n - 3);
            j->p += n;
            sp_jsonfile_ws(j);
            return 0;
        }
    }
    if (sp_jsonfile_str(j, k, NULL)) return SP_JF_ECORRUPT;
    sp_jsonfile_ws(j);
    if (j->p >= j->end || *j->p++ != ':') return SP_JF_ECORRUPT;
    sp_jsonfile_ws(j);
    return 0;
}

int sp_jsonfile_parse(const char *line, size_t len, sp_jsonfile_line *out, sp_buf *scratch,
                      sp_buf *attrs)
{
    scratch->len = 0;
    attrs->len = 0;
    sp_buf_reserve(scratch, len + 16); /* slack for the unescaper's 16-byte stores */
    sp_jsonfile_cur j = {line, line + len, scratch->base};
    int have_log = 0, have_time = 0;
    out->log = out->stream = SP_SLICE_NULL;
    out->partial = 0;
    out->nattrs = 0;
    out->sec = 0;
    out->nsec = 0;
    sp_jsonfile_ws(&j);
    if (j.p >= j.end || *j.p++ != '{') return SP_JF_ECORRUPT;
    sp_jsonfile_ws(&j);
    if (j.p < j.end && *j.p == '}') return SP_JF_ECORRUPT;
    for (;;) {
        sp_slice k, v;
        if (sp_jsonfile_key(&j, &k)) return SP_JF_ECORRUPT;
        int nl = 0;
        if (SP_SLICE_IS(k, "log")) {
            if (sp_jsonfile_str(&j, &out->log, &nl)) return SP_JF_ECORRUPT;
            out->partial = !nl;
            have_log = 1;
        } else if (SP_SLICE_IS(k, "stream")) {
            if (sp_jsonfile_str(&j, &out->stream, NULL)) return SP_JF_ECORRUPT;
        } else if (SP_SLICE_IS(k, "time")) {
            if (sp_jsonfile_str(&j, &v, NULL) ||
                sp_rfc3339_parse(v.base, v.len, &out->sec, &out->nsec))
                return SP_JF_ECORRUPT;
            have_time = 1;
        } else if (SP_SLICE_IS(k, "attrs")) {
            if (sp_jsonfile_attrs(&j, attrs, &out->nattrs)) return SP_JF_ECORRUPT;
        } else if (sp_jsonfile_skip(&j, 1)) {
            return SP_JF_ECORRUPT;
        }
        sp_jsonfile_ws(&j);
        if (j.p >= j.end) return SP_JF_ECORRUPT;
        if (*j.p == '}') break;
        if (*j.p++ != ',') return SP_JF_ECORRUPT;
    }
    j.p++;
    sp_jsonfile_ws(&j);
    if (j.p != j.end || !have_log || !have_time) return SP_JF_ECORRUPT;
    scratch->len = (size_t)(j.out - scratch->base);
    return 0;
}
