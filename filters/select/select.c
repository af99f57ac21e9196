/*
 * select: keeps or drops records by their fields (docs/filters.md). `include`: every condition
 * must hold (a missing field fails it); `exclude`: any condition that holds drops the record.
 * Conditions are field -> glob, or /regex/. Follows Fluent Bit's grep filter (Regex/Exclude).
 */
#include <stdlib.h>

#include "filter.h"

typedef struct {
    sp_kvlist include;
    sp_kvlist exclude;
} sp_select_conf;

static const sp_conf_field sp_select_fields[] = {
    {"include", SP_CONF_MAP, offsetof(sp_select_conf, include), NULL,
     "field -> glob or /regex/: keep only records where every one matches"},
    {"exclude", SP_CONF_MAP, offsetof(sp_select_conf, exclude), NULL,
     "field -> glob or /regex/: drop records where any one matches"},
    SP_CONF_END};

typedef struct {
    sp_field field; /* resolved at check */
    sp_pattern *pat;
} sp_select_cond;

typedef struct {
    sp_select_cond *inc, *exc;
    size_t ninc, nexc;
} sp_select;

static int sp_select_compile(sp_filter *f, const sp_node *n, const sp_kvlist *l, const char *key,
                             sp_select_cond **out, size_t *nout, sp_conf_err *err)
{
    *out = sp_calloc(l->n ? l->n : 1, sizeof **out);
    for (size_t i = 0; i < l->n; i++) {
        char why[300];
        sp_pattern *p = sp_pattern_new(l->v[i], why, sizeof why);
        if (!p) {
            sp_conf_error(err, sp_node_line(n, key, f->line), key, "%s: %s", l->k[i], why);
            return -1;
        }
        (*out)[i] = (sp_select_cond){sp_field_make(sp_slice_str(l->k[i])), p};
        (*nout)++;
    }
    return 0;
}

static void sp_select_free(sp_filter *f)
{
    sp_select *s = f->data;
    if (!s) return;
    for (size_t i = 0; i < s->ninc; i++)
        sp_pattern_free(s->inc[i].pat);
    for (size_t i = 0; i < s->nexc; i++)
        sp_pattern_free(s->exc[i].pat);
    free(s->inc);
    free(s->exc);
    free(s);
    f->data = NULL;
}

static int sp_select_check(sp_filter *f, const sp_node *n, sp_conf_err *err)
{
    sp_select_conf *c = f->conf;
    sp_select *s = sp_calloc(1, sizeof *s);
    f->data = s;
    if (!c->include.n && !c->exclude.n) {
        sp_conf_error(err, f->line, "select", "needs `include` or `exclude`");
        return -1;
    }
    if (sp_select_compile(f, n, &c->include, "include", &s->inc, &s->ninc, err)) return -1;
    return sp_select_compile(f, n, &c->exclude, "exclude", &s->exc, &s->nexc, err);
}

static inline int sp_select_test(sp_select_cond *c, const sp_record *r, sp_slice tag)
{
    return sp_field_match(&c->field, r, tag, c->pat);
}

static int sp_select_apply(sp_filter *f, sp_record *r, sp_slice tag)
{
    sp_select *s = f->data;
    for (size_t i = 0; i < s->ninc; i++)
        if (!sp_select_test(&s->inc[i], r, tag)) return SP_FILTER_DROP;
    for (size_t i = 0; i < s->nexc; i++)
        if (sp_select_test(&s->exc[i], r, tag)) return SP_FILTER_DROP;
    return SP_FILTER_KEEP;
}

const sp_filter_type sp_filter_select = {.name = "select",
                                         .fields = sp_select_fields,
                                         .conf_size = sizeof(sp_select_conf),
                                         .check = sp_select_check,
                                         .apply = sp_select_apply,
                                         .free = sp_select_free};
