/*
 * parse: decodes a field (default `message`) into fields (docs/filters.md): json, logfmt, or a
 * regex's named groups (PCRE2, compiled once, JIT where available). Follows Fluent Bit's parser
 * filter (Key_Name, Reserve_Data, Preserve_Key) with Vector's names for the formats. A value that
 * does not parse passes unchanged and is counted (result "unparsed").
 *
 * Where fields go: `into: ""` merges them into the record's top level (a parsed key replaces an
 * extra of the same name; a key the document has itself, such as message or tag, is written
 * with a "_" prefix, as for any field); `into: KEY` nests them under KEY.
 */
#include <stdlib.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "filter.h"
#include "mp.h"
#include "parse_int.h"

enum { SP_PARSE_JSON, SP_PARSE_LOGFMT, SP_PARSE_REGEX };
static const char *const sp_parse_formats[] = {"json", "logfmt", "regex", NULL};

typedef struct {
    char *field;
    int format;
    char *pattern;
    char *into;
    int keep_original;
    char *time_key;
    char *time_format;
    int time_keep;
    char *level_key;
} sp_parse_conf;

static const sp_conf_field sp_parse_fields[] = {
    {"field", SP_CONF_STR, offsetof(sp_parse_conf, field), "message",
     "the field to decode (message, or a string field)"},
    {"format", SP_CONF_ENUM, offsetof(sp_parse_conf, format), "json", "json | logfmt | regex",
     sp_parse_formats},
    {"pattern", SP_CONF_STR, offsetof(sp_parse_conf, pattern), NULL,
     "format regex: a PCRE2 pattern; its named groups become fields"},
    {"into", SP_CONF_STR, offsetof(sp_parse_conf, into), "",
     "\"\": the top level; else the key the fields are nested under"},
    {"keep_original", SP_CONF_BOOL, offsetof(sp_parse_conf, keep_original), "true",
     "keep the decoded text in its field"},
    {"time_key", SP_CONF_STR, offsetof(sp_parse_conf, time_key), NULL,
     "a decoded field holding the record's time (@timestamp)"},
    {"time_format", SP_CONF_STR, offsetof(sp_parse_conf, time_format), "rfc3339",
     "rfc3339 | epoch | epoch_ms | epoch_us | epoch_ns | a strptime format (%L: fraction)"},
    {"time_keep", SP_CONF_BOOL, offsetof(sp_parse_conf, time_keep), "false",
     "keep the time field among the fields"},
    {"level_key", SP_CONF_STR, offsetof(sp_parse_conf, level_key), NULL,
     "a decoded field normalised to trace|debug|info|warn|error|fatal"},
    SP_CONF_END};

typedef struct {
    sp_slice field;
    int is_message;
    pcre2_code *re;
    pcre2_match_data *md;
    uint32_t ngroups, name_size;
    PCRE2_SPTR names;
    sp_buf pairs; /* the decoded fields */
    sp_parse_scratch sc;
    sp_parse_json_at at; /* {&sc, &pairs}: the decoded fields' places for the filters after */
    sp_extras_edit e;
    sp_slice time_key, level_key; /* base NULL: not set */
    sp_parse_time_fmt time_fmt;
    sp_buf post; /* the decoded fields rewritten for time_key and level_key (swapped with pairs) */
} sp_parse;

static void sp_parse_free(sp_filter *f)
{
    sp_parse *p = f->data;
    if (!p) return;
    if (p->md) pcre2_match_data_free(p->md);
    if (p->re) pcre2_code_free(p->re);
    sp_buf_free(&p->pairs);
    sp_buf_free(&p->sc.index);
    sp_buf_free(&p->sc.table);
    sp_extras_edit_free(&p->e);
    sp_parse_time_free(&p->time_fmt);
    sp_buf_free(&p->post);
    free(p);
    f->data = NULL;
}

/* time_key, time_format, time_keep and level_key. */
static int sp_parse_check_keys(sp_filter *f, const sp_node *n, sp_conf_err *err)
{
    sp_parse_conf *c = f->conf;
    sp_parse *p = f->data;
    char why[300];
    if ((c->time_key && !*c->time_key) || (c->level_key && !*c->level_key)) {
        const char *k = c->time_key && !*c->time_key ? "time_key" : "level_key";
        sp_conf_error(err, sp_node_line(n, k, f->line), k, "must not be empty");
        return -1;
    }
    if (sp_parse_time_compile(&p->time_fmt, c->time_format, why, sizeof why)) {
        sp_conf_error(err, sp_node_line(n, "time_format", f->line), "time_format", "%s", why);
        return -1;
    }
    if (c->time_key) p->time_key = sp_slice_str(c->time_key);
    if (c->level_key) p->level_key = sp_slice_str(c->level_key);
    return 0;
}

static int sp_parse_check(sp_filter *f, const sp_node *n, sp_conf_err *err)
{
    sp_parse_conf *c = f->conf;
    sp_parse *p = sp_calloc(1, sizeof *p);
    f->data = p;
    if (!*c->field) {
        sp_conf_error(err, sp_node_line(n, "field", f->line), "field", "must not be empty");
        return -1;
    }
    p->field = sp_slice_str(c->field);
    p->at = (sp_parse_json_at){&p->sc, &p->pairs};
    p->is_message = strcmp(c->field, "message") == 0;
    if (sp_parse_check_keys(f, n, err)) return -1;
    if (c->format != SP_PARSE_REGEX) {
        if (c->pattern) {
            sp_conf_error(err, sp_node_line(n, "pattern", f->line), "pattern",
                          "only with format: regex");
            return -1;
        }
        return 0;
    }
    if (!c->pattern) {
        sp_conf_error(err, sp_node_line(n, "format", f->line), "format",
                      "regex needs a `pattern` with named groups");
        return -1;
    }
    int ec;
    PCRE2_SIZE eo;
    p->re = pcre2_compile((PCRE2_SPTR)c->pattern, PCRE2_ZERO_TERMINATED,
                          PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &ec, &eo, NULL);
    if (!p->re) {
        char msg[256];
        pcre2_get_error_message(ec, (PCRE2_UCHAR *)msg, sizeof msg);
        sp_conf_error(err, sp_node_line(n, "pattern", f->line), "pattern", "%s at offset %zu", msg,
                      (size_t)eo);
        return -1;
    }
    pcre2_pattern_info(p->re, PCRE2_INFO_NAMECOUNT, &p->ngroups);
    pcre2_pattern_info(p->re, PCRE2_INFO_NAMEENTRYSIZE, &p->name_size);
    pcre2_pattern_info(p->re, PCRE2_INFO_NAMETABLE, &p->names);
    if (!p->ngroups) {
        sp_conf_error(err, sp_node_line(n, "pattern", f->line), "pattern",
                      "has no named group, (?<name>...)");
        return -1;
    }
    pcre2_jit_compile(p->re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter */
    p->md = pcre2_match_data_create_from_pattern(p->re, NULL);
    return 0;
}

static int sp_parse_regex(sp_parse *p, sp_slice s, uint32_t *n)
{
    *n = 0;
    if (pcre2_match(p->re, (PCRE2_SPTR)(s.base ? s.base : ""), s.len, 0, 0, p->md, NULL) < 0)
        return -1;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(p->md);
    uint32_t count = pcre2_get_ovector_count(p->md);
    size_t at = p->pairs.len;
    for (uint32_t i = 0; i < p->ngroups; i++) {
        PCRE2_SPTR e = p->names + (size_t)i * p->name_size;
        uint32_t g = (uint32_t)(e[0] << 8 | e[1]);
        if (g >= count || ov[2 * g] == PCRE2_UNSET) continue; /* the group took no part */
        const char *name = (const char *)e + 2;
        sp_mp_put_str(&p->pairs, name, strlen(name));
        sp_mp_put_str(&p->pairs, s.base + ov[2 * g], ov[2 * g + 1] - ov[2 * g]);
        (*n)++;
    }
    /* (?J) allows a name twice: the last group that matched wins */
    *n = sp_extras_dedup(&p->pairs, at, *n, &p->sc.index, &p->sc.table);
    return 0;
}

/* time_key and level_key on the n decoded pairs: the record's time from the one, the other
 * written as its normalised name. Returns 1 when the pairs were rewritten (into p->post, then
 * swapped with p->pairs; *n updated). */
static __attribute__((noinline)) int sp_parse_post(sp_filter *f, sp_parse *p, sp_record *r,
                                                   uint32_t *n)
{
    const sp_parse_conf *c = f->conf;
    const uint8_t *q = (const uint8_t *)p->pairs.base, *end = q + p->pairs.len;
    sp_slice k, v, tval = SP_SLICE_NULL, lval = SP_SLICE_NULL;
    for (uint32_t i = 0; i < *n && !sp_extras_next(&q, end, &k, &v); i++) {
        if (p->time_key.base && k.base && sp_slice_eq(k, p->time_key)) tval = v;
        if (p->level_key.base && k.base && sp_slice_eq(k, p->level_key)) lval = v;
    }
    int drop_time = 0, level = -1;
    if (tval.base) {
        uint64_t sec;
        uint32_t nsec;
        uint8_t prec;
        if (sp_parse_time(&p->time_fmt, tval, &sec, &nsec, &prec) == 0) {
            r->sec = sec;
            r->nsec = nsec;
            r->prec = prec;
            drop_time = !c->time_keep;
        } else {
            sp_filter_count(f, "time_unparsed"); /* kept as it came; the record keeps its time */
        }
    }
    if (lval.base && (level = sp_parse_level(lval)) < 0) sp_filter_count(f, "level_unknown");
    if (!drop_time && level < 0) return 0;
    p->post.len = 0;
    uint32_t kept = 0;
    q = (const uint8_t *)p->pairs.base;
    for (uint32_t i = 0; i < *n; i++) {
        const uint8_t *at = q;
        if (sp_extras_next(&q, end, &k, &v)) break;
        if (drop_time && v.base == tval.base) continue;
        if (level >= 0 && v.base == lval.base) {
            sp_buf_append(&p->post, (const char *)at, (size_t)((const uint8_t *)v.base - at));
            const char *name = sp_parse_level_names[level];
            sp_mp_put_str(&p->post, name, strlen(name));
        } else {
            sp_buf_append(&p->post, (const char *)at, (size_t)(q - at));
        }
        kept++;
    }
    sp_buf t = p->pairs; /* swapped: the pairs' buffer and its capacity stay with the filter */
    p->pairs = p->post;
    p->post = t;
    *n = kept;
    return 1;
}

static int sp_parse_apply(sp_filter *f, sp_record *r, sp_slice tag)
{
    sp_parse_conf *c = f->conf;
    sp_parse *p = f->data;
    sp_slice text;
    if (p->is_message) {
        text = r->message;
        if (!text.base) return SP_FILTER_KEEP; /* nothing to decode: not counted */
    } else {
        sp_slice v;
        if (!sp_extras_find(r, p->field, &v)) return SP_FILTER_KEEP;
        const uint8_t *vp = (const uint8_t *)v.base;
        sp_mp_obj o;
        if (sp_mp_read(&vp, vp + v.len, &o) || (o.type != SP_MP_STR && o.type != SP_MP_BIN)) {
            sp_filter_count(f, "unparsed");
            return SP_FILTER_KEEP;
        }
        text = o.s;
    }
    p->pairs.len = 0;
    uint32_t n = 0;
    int rc = c->format == SP_PARSE_JSON ? sp_parse_json(text.base, text.len, &p->pairs, &n, &p->sc)
             : c->format == SP_PARSE_LOGFMT
                 ? sp_parse_logfmt(text.base, text.len, &p->pairs, &n, &p->sc)
                 : sp_parse_regex(p, text, &n);
    if (rc) {
        sp_filter_count(f, "unparsed");
        return SP_FILTER_KEEP;
    }
    int rewrote = (p->time_key.base || p->level_key.base) && sp_parse_post(f, p, r, &n);
    if (!*c->into && !r->nextras) { /* no fields to merge with: the pairs are the extras */
        r->extras = n ? sp_buf_slice(&p->pairs) : sp_slice_make("", 0);
        r->nextras = n;
        if (n && c->format == SP_PARSE_JSON && !rewrote) /* the filters after need no walk */
            sp_extras_known(r, sp_parse_json_places, &p->at);
        if (!c->keep_original && p->is_message) r->message = SP_SLICE_NULL;
        return SP_FILTER_KEEP;
    }
    sp_extras_begin(&p->e);
    int drop_field = !c->keep_original && !p->is_message;
    sp_extras_copy(&p->e, r, &p->field, drop_field ? 1 : 0);
    if (*c->into) {
        sp_mp_put_str(&p->e.out, c->into, strlen(c->into));
        sp_mp_put_map(&p->e.out, n);
        if (n) sp_buf_append(&p->e.out, p->pairs.base, p->pairs.len);
        p->e.n++;
    } else {
        if (n) sp_extras_put_pairs(&p->e, sp_buf_slice(&p->pairs), n);
    }
    sp_extras_finish(&p->e, r);
    if (!c->keep_original && p->is_message) r->message = SP_SLICE_NULL;
    return SP_FILTER_KEEP;
}

const sp_filter_type sp_filter_parse = {.name = "parse",
                                        .fields = sp_parse_fields,
                                        .conf_size = sizeof(sp_parse_conf),
                                        .check = sp_parse_check,
                                        .apply = sp_parse_apply,
                                        .free = sp_parse_free};
