/*
 * The kafka input's JSON reader: a document as the kafka output writes it, back into a record
 * (docs/kafka.md, "The kafka input"). One pass, no tree: strings are unescaped into a scratch
 * buffer, other members are converted to MessagePack extras as they are read.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "kafka_in_int.h"
#include "mp.h"

#define SP_KAFKA_IN_DEPTH 32

typedef struct {
    const char *p, *end;
    sp_kafka_in_scratch *s;
    int depth;
} sp_kafka_in_jp;

static void sp_kafka_in_ws(sp_kafka_in_jp *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static int sp_kafka_in_nibble(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* `n` hex digits at p into *out: 0 or -1. */
static int sp_kafka_in_hex(const char *p, int n, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < n; i++) {
        int d = sp_kafka_in_nibble(p[i]);
        if (d < 0) return -1;
        v = v << 4 | (unsigned)d;
    }
    *out = v;
    return 0;
}

int sp_kafka_in_hexid(const void *hex, size_t n, uint8_t id[16])
{
    uint8_t tmp[16];
    unsigned b;
    if (!hex || n != 32) return -1;
    for (int i = 0; i < 16; i++) {
        if (sp_kafka_in_hex((const char *)hex + 2 * i, 2, &b)) return -1;
        tmp[i] = (uint8_t)b;
    }
    memcpy(id, tmp, 16);
    return 0;
}

/* A string at j->p ('"'): its unescaped bytes appended to `out`. */
static int sp_kafka_in_str(sp_kafka_in_jp *j, sp_buf *out)
{
    if (j->p >= j->end || *j->p != '"') return -1;
    j->p++;
    for (;;) {
        const char *run = j->p;
        j->p = sp_json_special(j->p, j->end);
        if (j->p > run) sp_buf_append(out, run, (size_t)(j->p - run));
        if (j->p >= j->end || (unsigned char)*j->p < 0x20) return -1;
        if (*j->p == '"') {
            j->p++;
            return 0;
        }
        if (j->end - j->p < 2) return -1;
        char c = j->p[1];
        j->p += 2;
        const char *e = c && c != 'u' ? strchr("\"\\/bfnrt", c) : NULL;
        if (e) {
            sp_buf_putc(out, "\"\\/\b\f\n\r\t"[e - "\"\\/bfnrt"]);
            continue;
        }
        unsigned cp, lo;
        if (c != 'u' || j->end - j->p < 4 || sp_kafka_in_hex(j->p, 4, &cp)) return -1;
        j->p += 4;
        if (cp >= 0xd800 && cp < 0xdc00 && j->end - j->p >= 6 && j->p[0] == '\\' &&
            j->p[1] == 'u' && sp_kafka_in_hex(j->p + 2, 4, &lo) == 0 && lo >= 0xdc00 &&
            lo < 0xe000) {
            j->p += 6;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        } else if (cp >= 0xd800 && cp < 0xe000) {
            cp = 0xfffd; /* a lone surrogate */
        }
        char u[4];
        sp_buf_append(out, u, (size_t)(sp_json_utf8(u, cp) - u));
    }
}

/* A string as a MessagePack str: unescaped at the end of the scratch, then copied. */
static int sp_kafka_in_str_mp(sp_kafka_in_jp *j, sp_buf *out)
{
    sp_buf *t = &j->s->str;
    size_t at = t->len;
    if (sp_kafka_in_str(j, t)) return -1;
    sp_mp_put_str(out, t->base + at, t->len - at);
    t->len = at;
    return 0;
}

static int sp_kafka_in_lit(sp_kafka_in_jp *j, const char *lit, size_t n)
{
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n) != 0) return -1;
    j->p += n;
    return 0;
}

static int sp_kafka_in_num(sp_kafka_in_jp *j, sp_buf *out)
{
    const char *s = j->p;
    int real = 0;
    if (j->p < j->end && *j->p == '-') j->p++;
    if (j->p >= j->end || *j->p < '0' || *j->p > '9') return -1;
    while (j->p < j->end) {
        char c = *j->p;
        if (c >= '0' && c <= '9')
            ;
        else if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-')
            real = 1;
        else
            break;
        j->p++;
    }
    char tmp[64];
    size_t n = (size_t)(j->p - s);
    if (n >= sizeof tmp) return -1;
    memcpy(tmp, s, n);
    tmp[n] = 0;
    char *e;
    if (!real) {
        if (tmp[0] == '-') {
            long long v = strtoll(tmp, &e, 10);
            if (*e == 0 && v != (long long)(-9223372036854775807LL - 1)) {
                sp_mp_put_int(out, v);
                return 0;
            }
        } else {
            unsigned long long v = strtoull(tmp, &e, 10);
            if (*e == 0 && v != ~0ULL) {
                sp_mp_put_uint(out, v);
                return 0;
            }
        }
    }
    double d = strtod(tmp, &e);
    if (*e) return -1;
    sp_mp_put_double(out, d);
    return 0;
}

typedef struct {
    size_t off, len;
    int set;
} sp_kafka_in_span;

/* Called for each member of an object (key unescaped in the scratch, j->p at its value) or each
 * item of an array (key NULL). 0 or -1. */
typedef int (*sp_kafka_in_item_fn)(sp_kafka_in_jp *j, const sp_kafka_in_span *key, void *ctx);

/* The members or items of the object or array at j->p: `fn` for each, the count in *n. Every
 * reader of a container goes through here (values, the document, its `container`). */
static int sp_kafka_in_each(sp_kafka_in_jp *j, sp_kafka_in_item_fn fn, void *ctx, uint32_t *n)
{
    int obj = *j->p == '{';
    char close = obj ? '}' : ']';
    sp_buf *t = &j->s->str;
    if (++j->depth > SP_KAFKA_IN_DEPTH) return -1;
    j->p++;
    *n = 0;
    sp_kafka_in_ws(j);
    if (j->p < j->end && *j->p == close) {
        j->p++;
        j->depth--;
        return 0;
    }
    for (;;) {
        sp_kafka_in_span key = {t->len, 0, 1};
        sp_kafka_in_ws(j);
        if (obj) {
            if (sp_kafka_in_str(j, t)) return -1;
            key.len = t->len - key.off;
            sp_kafka_in_ws(j);
            if (j->p >= j->end || *j->p != ':') return -1;
            j->p++;
            sp_kafka_in_ws(j);
        }
        if (j->p >= j->end || fn(j, obj ? &key : NULL, ctx)) return -1;
        (*n)++;
        sp_kafka_in_ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == close) break;
        return -1;
    }
    j->p++;
    j->depth--;
    return 0;
}

static int sp_kafka_in_value(sp_kafka_in_jp *j, sp_buf *out);

/* A member of a nested value: its key and value as MessagePack. */
static int sp_kafka_in_value_item(sp_kafka_in_jp *j, const sp_kafka_in_span *key, void *ctx)
{
    sp_buf *out = ctx;
    if (key) {
        sp_mp_put_str(out, j->s->str.base + key->off, key->len);
        j->s->str.len = key->off; /* the key is copied: its scratch is free again */
    }
    return sp_kafka_in_value(j, out);
}

static int sp_kafka_in_value(sp_kafka_in_jp *j, sp_buf *out)
{
    sp_kafka_in_ws(j);
    if (j->p >= j->end) return -1;
    switch (*j->p) {
    case '"':
        return sp_kafka_in_str_mp(j, out);
    case 't':
        return sp_kafka_in_lit(j, "true", 4) ? -1 : (sp_mp_put_bool(out, 1), 0);
    case 'f':
        return sp_kafka_in_lit(j, "false", 5) ? -1 : (sp_mp_put_bool(out, 0), 0);
    case 'n':
        return sp_kafka_in_lit(j, "null", 4) ? -1 : (sp_mp_put_nil(out), 0);
    case '{':
    case '[': {
        size_t at = out->len;
        uint8_t h[5] = {*j->p == '{' ? 0xdf : 0xdd, 0, 0, 0, 0}; /* map32 / array32 */
        uint32_t n;
        sp_buf_append(out, h, 5);
        if (sp_kafka_in_each(j, sp_kafka_in_value_item, out, &n)) return -1;
        uint8_t *q = (uint8_t *)out->base + at + 1; /* the count, now known */
        q[0] = (uint8_t)(n >> 24);
        q[1] = (uint8_t)(n >> 16);
        q[2] = (uint8_t)(n >> 8);
        q[3] = (uint8_t)n;
        return 0;
    }
    default:
        return sp_kafka_in_num(j, out);
    }
}

static int sp_kafka_in_digits(const char *s, int n, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return 0;
}

int sp_kafka_in_time(const char *s, size_t n, uint64_t *sec, uint32_t *nsec, uint8_t *prec)
{
    unsigned Y, M, D, h, m, sc;
    if (n < 20 || sp_kafka_in_digits(s, 4, &Y) || s[4] != '-' || sp_kafka_in_digits(s + 5, 2, &M) ||
        s[7] != '-' || sp_kafka_in_digits(s + 8, 2, &D) || (s[10] != 'T' && s[10] != 't') ||
        sp_kafka_in_digits(s + 11, 2, &h) || s[13] != ':' || sp_kafka_in_digits(s + 14, 2, &m) ||
        s[16] != ':' || sp_kafka_in_digits(s + 17, 2, &sc))
        return -1;
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sc > 60) return -1;
    size_t i = 19;
    uint32_t ns = 0;
    uint8_t digits = 0;
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (digits < 9) {
                ns = ns * 10 + (uint32_t)(s[i] - '0');
                digits++;
            }
            i++;
        }
        if (!digits) return -1;
        for (uint8_t k = digits; k < 9; k++)
            ns *= 10;
    }
    int64_t off = 0;
    if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i + 6 == n && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
        unsigned oh, om;
        if (sp_kafka_in_digits(s + i + 1, 2, &oh) || sp_kafka_in_digits(s + i + 4, 2, &om))
            return -1;
        off = (int64_t)(oh * 3600 + om * 60) * (s[i] == '+' ? 1 : -1);
        i += 6;
    } else {
        return -1;
    }
    if (i != n) return -1;
    int64_t t = sp_json_days(Y, M, D) * 86400 + h * 3600 + m * 60 + sc - off;
    if (t < 0) return -1;
    *sec = (uint64_t)t;
    *nsec = ns;
    *prec = digits;
    return 0;
}

/* The members of a document the reader keeps as record fields; the rest become extras. */
typedef struct {
    sp_kafka_in_span ts, msg, stream, tag, cid, cname;
    uint32_t nextras;
} sp_kafka_in_fields;

typedef struct {
    const char *key;
    size_t off; /* of its span in sp_kafka_in_fields */
} sp_kafka_in_known;

static const sp_kafka_in_known sp_kafka_in_top[] = {
    {"@timestamp", offsetof(sp_kafka_in_fields, ts)},
    {"message", offsetof(sp_kafka_in_fields, msg)},
    {"stream", offsetof(sp_kafka_in_fields, stream)},
    {"tag", offsetof(sp_kafka_in_fields, tag)},
    {NULL, 0},
};

static const sp_kafka_in_known sp_kafka_in_cont[] = {
    {"id", offsetof(sp_kafka_in_fields, cid)},
    {"name", offsetof(sp_kafka_in_fields, cname)},
    {NULL, 0},
};

static int sp_kafka_in_is(const sp_kafka_in_jp *j, const sp_kafka_in_span *k, const char *lit)
{
    size_t n = strlen(lit);
    return k->len == n && memcmp(j->s->str.base + k->off, lit, n) == 0;
}

/* A member at the level `known` describes: a string one of those keys names is kept as the span
 * (the key's scratch reused: the value's unescaped bytes follow it); any other one becomes an
 * extra named `prefix` + key. */
static int sp_kafka_in_member(sp_kafka_in_jp *j, const sp_kafka_in_span *key, void *ctx,
                              const sp_kafka_in_known *known, const char *prefix)
{
    sp_kafka_in_fields *f = ctx;
    sp_buf *t = &j->s->str;
    if (*j->p == '"') {
        for (const sp_kafka_in_known *k = known; k->key; k++) {
            if (!sp_kafka_in_is(j, key, k->key)) continue;
            sp_kafka_in_span *sp = (sp_kafka_in_span *)((char *)f + k->off);
            sp->off = t->len;
            if (sp_kafka_in_str(j, t)) return -1;
            sp->len = t->len - sp->off;
            sp->set = 1;
            return 0;
        }
    }
    size_t pl = strlen(prefix);
    if (pl) { /* "container.<key>": built after the key, then the key's bytes are free again */
        size_t at = t->len;
        sp_buf_reserve(t, pl + key->len);
        sp_buf_append(t, prefix, pl);
        sp_buf_append(t, t->base + key->off, key->len);
        sp_mp_put_str(&j->s->ext, t->base + at, t->len - at);
    } else {
        sp_mp_put_str(&j->s->ext, t->base + key->off, key->len);
    }
    t->len = key->off;
    f->nextras++;
    return sp_kafka_in_value(j, &j->s->ext);
}

static int sp_kafka_in_cont_item(sp_kafka_in_jp *j, const sp_kafka_in_span *key, void *ctx)
{
    return sp_kafka_in_member(j, key, ctx, sp_kafka_in_cont, "container.");
}

static int sp_kafka_in_top_item(sp_kafka_in_jp *j, const sp_kafka_in_span *key, void *ctx)
{
    uint32_t n;
    if (*j->p == '{' && sp_kafka_in_is(j, key, "container"))
        return sp_kafka_in_each(j, sp_kafka_in_cont_item, ctx, &n);
    return sp_kafka_in_member(j, key, ctx, sp_kafka_in_top, "");
}

static sp_slice sp_kafka_in_slice(const sp_kafka_in_scratch *s, const sp_kafka_in_span *f)
{
    return f->set ? sp_slice_make(s->str.base + f->off, f->len) : sp_slice_make(NULL, 0);
}

int sp_kafka_in_doc(const char *json, size_t len, sp_kafka_in_scratch *s, sp_record *r,
                    sp_slice *tag)
{
    sp_kafka_in_jp j = {.p = json, .end = json + len, .s = s};
    sp_kafka_in_fields f = {0};
    uint32_t n;
    s->str.len = 0;
    s->ext.len = 0;
    sp_buf_reserve(&s->str, len + 16); /* a base even for empty strings */
    sp_buf_reserve(&s->ext, 16);
    sp_kafka_in_ws(&j);
    if (j.p >= j.end || *j.p != '{' || sp_kafka_in_each(&j, sp_kafka_in_top_item, &f, &n))
        return -1;
    sp_kafka_in_ws(&j);
    if (j.p != j.end) return -1;
    if (!f.ts.set ||
        sp_kafka_in_time(s->str.base + f.ts.off, f.ts.len, &r->sec, &r->nsec, &r->prec))
        r->prec = 0xff; /* no usable @timestamp: the caller uses the message's time */
    r->message = sp_kafka_in_slice(s, &f.msg);
    r->stream = sp_kafka_in_slice(s, &f.stream);
    r->container_id = sp_kafka_in_slice(s, &f.cid);
    r->container_name = sp_kafka_in_slice(s, &f.cname);
    r->flags = 0;
    r->nextras = f.nextras;
    r->extras = sp_slice_make(s->ext.base, s->ext.len);
    *tag = sp_kafka_in_slice(s, &f.tag);
    return 0;
}

int sp_kafka_in_decode(int format, const void *value, size_t len, sp_kafka_in_scratch *s,
                       sp_record *r, sp_slice *tag)
{
    /* MessagePack of "kafka_invalid_json": true */
    static const char flag[] = "\xb2kafka_invalid_json\xc3";
    if (format == SP_KAFKA_IN_JSON && sp_kafka_in_doc(value, len, s, r, tag) == 0)
        return SP_KAFKA_IN_DOC;
    memset(r, 0, sizeof *r);
    *tag = sp_slice_make(NULL, 0);
    r->prec = 0xff;
    r->message = sp_slice_make(value ? (const char *)value : "", len);
    if (format != SP_KAFKA_IN_JSON) return SP_KAFKA_IN_LINE;
    r->nextras = 1;
    r->extras = sp_slice_make(flag, sizeof flag - 1);
    return SP_KAFKA_IN_INVALID;
}
