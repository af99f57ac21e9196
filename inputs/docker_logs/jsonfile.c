/*
 * The json-file line parser. Docker writes a fixed shape, but the parser accepts any member
 * order, whitespace and unknown members, so a future Docker field is skipped rather than
 * turning every line into a corrupt one. Strings without escapes are returned in place; the
 * common log value "text\n" is also returned in place (the escaped newline is just dropped),
 * so most lines are parsed without copying the message.
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

static int sp_jsonfile_hex4(const char *p, uint32_t *v)
{
    uint32_t x = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        x <<= 4;
        if (c >= '0' && c <= '9')
            x |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            x |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            x |= (uint32_t)(c - 'A' + 10);
        else
            return -1;
    }
    *v = x;
    return 0;
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

/*
 * A string at j->p (the opening quote). With `nl` set, a value ending in an escaped newline has
 * it removed and *nl set, which lets "text\n" come back in place.
 */
/* The first '"' (*q) or, before any, '\\' (*bs) at or after p; both NULL when neither comes
 * before end. Control characters (Docker escapes them; tolerated here) are stepped over. */
static void sp_jsonfile_stop(const char *p, const char *end, const char **q, const char **bs)
{
    *q = *bs = NULL;
    while ((p = sp_json_special(p, end)) < end) {
        if (*p == '"') {
            *q = p;
            return;
        }
        if (*p == '\\') {
            *bs = p;
            return;
        }
        p++;
    }
}

static int sp_jsonfile_str(sp_jsonfile_cur *j, sp_slice *s, int *nl)
{
    if (j->p >= j->end || *j->p != '"') return SP_JF_ECORRUPT;
    const char *start = ++j->p, *end = j->end;
    const char *bs = NULL, *q = NULL;
    sp_jsonfile_stop(start, end, &q, &bs);
    if (nl) *nl = 0;
    if (q) { /* no escape at all */
        *s = sp_slice_make(start, (size_t)(q - start));
        j->p = q + 1;
        return 0;
    }
    if (!bs) return SP_JF_ECORRUPT;
    if (nl && end - bs >= 3 && bs[1] == 'n' && bs[2] == '"') {
        *s = sp_slice_make(start, (size_t)(bs - start));
        *nl = 1;
        j->p = bs + 3;
        return 0;
    }
    char *o0 = j->out, *o = o0;
    const char *p = start;
    for (;;) {
        memcpy(o, p, (size_t)(bs - p));
        o += bs - p;
        j->p = bs + 1;
        if (!(o = sp_jsonfile_escape(j, o))) return SP_JF_ECORRUPT;
        p = j->p;
        sp_jsonfile_stop(p, end, &q, &bs);
        if (q) break;
        if (!bs) return SP_JF_ECORRUPT;
    }
    memcpy(o, p, (size_t)(q - p));
    o += q - p;
    j->p = q + 1;
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

int sp_rfc3339_parse(const char *s, size_t len, uint64_t *sec, uint32_t *nsec)
{
    uint32_t y, mo, d, h, mi, se, frac = 0;
    if (len < 20 || sp_jsonfile_digits(s, 4, &y) || s[4] != '-' ||
        sp_jsonfile_digits(s + 5, 2, &mo) || s[7] != '-' || sp_jsonfile_digits(s + 8, 2, &d) ||
        (s[10] != 'T' && s[10] != 't') || sp_jsonfile_digits(s + 11, 2, &h) || s[13] != ':' ||
        sp_jsonfile_digits(s + 14, 2, &mi) || s[16] != ':' || sp_jsonfile_digits(s + 17, 2, &se))
        return SP_JF_ECORRUPT;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) return SP_JF_ECORRUPT;
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
    int64_t t = sp_jsonfile_days(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - off;
    if (t < 0) return SP_JF_ECORRUPT;
    /* 9999-12-31 with a negative offset: past the last writable second, clamped like any time */
    *sec = (uint64_t)t < SP_TIME_MAX_SEC ? (uint64_t)t : SP_TIME_MAX_SEC;
    *nsec = frac;
    return 0;
}

int sp_jsonfile_parse(const char *line, size_t len, sp_jsonfile_line *out, sp_buf *scratch,
                      sp_buf *attrs)
{
    scratch->len = 0;
    attrs->len = 0;
    sp_buf_reserve(scratch, len + 1);
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
        sp_jsonfile_ws(&j);
        if (sp_jsonfile_str(&j, &k, NULL)) return SP_JF_ECORRUPT;
        sp_jsonfile_ws(&j);
        if (j.p >= j.end || *j.p++ != ':') return SP_JF_ECORRUPT;
        sp_jsonfile_ws(&j);
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
