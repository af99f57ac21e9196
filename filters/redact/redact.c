/*
 * redact: replaces what matches built-in or custom patterns in `message` with a mask
 * (docs/filters.md). Built-ins: email (addresses), card (13 to 19 digits, spaces or dashes
 * between, that pass the Luhn check), bearer (the token after "Bearer "). Patterns are PCRE2,
 * compiled once (JIT where available). Records with a match are counted (result "redacted").
 * Follows Vector's redact function in remap (its built-in us_social_security_number aside).
 */
#include <stdlib.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "filter.h"

typedef struct {
    sp_strlist builtins;
    sp_strlist patterns;
    char *mask;
} sp_redact_conf;

static const sp_conf_field sp_redact_fields[] = {
    {"builtins", SP_CONF_STRLIST, offsetof(sp_redact_conf, builtins), NULL,
     "email | card | bearer (any of them)"},
    {"patterns", SP_CONF_STRLIST, offsetof(sp_redact_conf, patterns), NULL,
     "PCRE2 patterns whose matches are masked"},
    {"mask", SP_CONF_STR, offsetof(sp_redact_conf, mask), "[REDACTED]", "what a match becomes"},
    SP_CONF_END};

static const struct {
    const char *name, *re;
} sp_redact_builtins[] = {
    {"email", "[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)*\\.[A-Za-z]{2,}"},
    {"card", "(?<![0-9])[0-9](?:[ -]?[0-9]){12,18}(?![0-9])"},
    {"bearer", "(?i)\\bbearer\\s+\\K[A-Za-z0-9._~+/-]+=*"},
};

typedef struct {
    pcre2_code *re;
    pcre2_match_data *md;
    int luhn;
} sp_redact_re;

typedef struct {
    sp_redact_re *res;
    size_t nres;
    sp_slice mask;
    sp_buf buf[2]; /* the message rewritten: each pattern writes the other one */
} sp_redact;

static void sp_redact_free(sp_filter *f)
{
    sp_redact *x = f->data;
    if (!x) return;
    for (size_t i = 0; i < x->nres; i++) {
        pcre2_match_data_free(x->res[i].md);
        pcre2_code_free(x->res[i].re);
    }
    free(x->res);
    sp_buf_free(&x->buf[0]);
    sp_buf_free(&x->buf[1]);
    free(x);
    f->data = NULL;
}

static int sp_redact_add(sp_filter *f, const sp_node *n, const char *key, const char *re, int luhn,
                         sp_conf_err *err)
{
    sp_redact *x = f->data;
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *c = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED,
                                  PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &ec, &eo, NULL);
    if (!c) {
        char msg[256];
        pcre2_get_error_message(ec, (PCRE2_UCHAR *)msg, sizeof msg);
        sp_conf_error(err, sp_node_line(n, key, f->line), key, "\"%s\": %s at offset %zu", re, msg,
                      (size_t)eo);
        return -1;
    }
    pcre2_jit_compile(c, PCRE2_JIT_COMPLETE);
    x->res[x->nres++] = (sp_redact_re){c, pcre2_match_data_create_from_pattern(c, NULL), luhn};
    return 0;
}

static int sp_redact_check(sp_filter *f, const sp_node *n, sp_conf_err *err)
{
    sp_redact_conf *c = f->conf;
    sp_redact *x = sp_calloc(1, sizeof *x);
    f->data = x;
    x->res = sp_calloc(c->builtins.n + c->patterns.n + 1, sizeof *x->res);
    x->mask = sp_slice_str(c->mask);
    if (!c->builtins.n && !c->patterns.n) {
        sp_conf_error(err, f->line, "redact", "needs `builtins` or `patterns`");
        return -1;
    }
    for (size_t i = 0; i < c->builtins.n; i++) {
        size_t k = 0, nb = sizeof sp_redact_builtins / sizeof sp_redact_builtins[0];
        while (k < nb && strcmp(sp_redact_builtins[k].name, c->builtins.v[i]) != 0)
            k++;
        if (k == nb) {
            sp_conf_error(err, sp_node_line(n, "builtins", f->line), "builtins",
                          "unknown \"%s\" (email, card, bearer)", c->builtins.v[i]);
            return -1;
        }
        if (sp_redact_add(f, n, "builtins", sp_redact_builtins[k].re, k == 1, err)) return -1;
    }
    for (size_t i = 0; i < c->patterns.n; i++)
        if (sp_redact_add(f, n, "patterns", c->patterns.v[i], 0, err)) return -1;
    return 0;
}

/* The Luhn check over the digits of s[0..n) (spaces and dashes skipped). */
int sp_redact_luhn(const char *s, size_t n)
{
    int sum = 0, dbl = 0, digits = 0;
    for (size_t i = n; i-- > 0;) {
        if (s[i] < '0' || s[i] > '9') continue;
        int d = s[i] - '0';
        if (dbl && (d *= 2) > 9) d -= 9;
        sum += d;
        dbl = !dbl;
        digits++;
    }
    return digits >= 13 && sum % 10 == 0;
}

/* Masks the matches of `re` in `in` into `out`; the number of matches masked. */
static size_t sp_redact_one(sp_redact *x, sp_redact_re *re, sp_slice in, sp_buf *out)
{
    size_t start = 0, copied = 0, masked = 0;
    while (start <= in.len) {
        int rc = pcre2_match(re->re, (PCRE2_SPTR)in.base, in.len, start, 0, re->md, NULL);
        if (rc < 0) break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(re->md);
        size_t a = ov[0], b = ov[1];
        if (b <= a) { /* an empty match: step past it */
            start = b + 1;
            continue;
        }
        start = b;
        if (re->luhn && !sp_redact_luhn(in.base + a, b - a)) continue;
        if (!masked) out->len = 0;
        sp_buf_append(out, in.base + copied, a - copied);
        sp_buf_append(out, x->mask.base, x->mask.len);
        copied = b;
        masked++;
    }
    if (masked) sp_buf_append(out, in.base + copied, in.len - copied);
    return masked;
}

static int sp_redact_apply(sp_filter *f, sp_record *r, sp_slice tag)
{
    sp_redact *x = f->data;
    if (!r->message.base || !r->message.len) return SP_FILTER_KEEP;
    sp_slice cur = r->message;
    int which = 0;
    size_t masked = 0;
    for (size_t i = 0; i < x->nres; i++) {
        size_t m = sp_redact_one(x, &x->res[i], cur, &x->buf[which]);
        if (!m) continue;
        masked += m;
        cur = sp_buf_slice(&x->buf[which]);
        which ^= 1;
    }
    if (!masked) return SP_FILTER_KEEP;
    r->message = cur;
    sp_filter_count(f, "redacted");
    return SP_FILTER_KEEP;
}

const sp_filter_type sp_filter_redact = {.name = "redact",
                                         .fields = sp_redact_fields,
                                         .conf_size = sizeof(sp_redact_conf),
                                         .check = sp_redact_check,
                                         .apply = sp_redact_apply,
                                         .free = sp_redact_free};
