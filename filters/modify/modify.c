/*
 * modify: remove, rename, copy, add and set fields (docs/filters.md), in that order. Follows
 * Fluent Bit's modify filter: `add` only adds a field that is absent, `set` overwrites. Values
 * are literals; ${ENV} in them is expanded when the configuration is read. Fields are the
 * record's extras (top-level keys); `message` may also be removed, renamed or copied.
 */
#include <stdlib.h>

#include "filter.h"

typedef struct {
    sp_strlist remove;
    sp_kvlist rename;
    sp_kvlist copy;
    sp_kvlist add;
    sp_kvlist set;
} sp_modify_conf;

static const sp_conf_field sp_modify_fields[] = {
    {"remove", SP_CONF_STRLIST, offsetof(sp_modify_conf, remove), NULL,
     "fields to remove (message too)"},
    {"rename", SP_CONF_MAP, offsetof(sp_modify_conf, rename), NULL,
     "from -> to (an existing `to` is replaced)"},
    {"copy", SP_CONF_MAP, offsetof(sp_modify_conf, copy), NULL, "from -> to"},
    {"add", SP_CONF_MAP, offsetof(sp_modify_conf, add), NULL,
     "field -> value, when the field is absent (${ENV} expanded)"},
    {"set", SP_CONF_MAP, offsetof(sp_modify_conf, set), NULL, "field -> value, always"},
    SP_CONF_END};

typedef struct {
    sp_slice *skip; /* removed and renamed keys */
    size_t nskip;
    sp_extras_edit e;
} sp_modify;

static int sp_modify_check(sp_filter *f, const sp_node *n, sp_conf_err *err)
{
    sp_modify_conf *c = f->conf;
    if (!c->remove.n && !c->rename.n && !c->copy.n && !c->add.n && !c->set.n) {
        sp_conf_error(err, f->line, "modify", "needs remove, rename, copy, add or set");
        return -1;
    }
    sp_modify *m = sp_calloc(1, sizeof *m);
    f->data = m;
    m->skip = sp_calloc(c->remove.n + c->rename.n + 1, sizeof *m->skip);
    for (size_t i = 0; i < c->remove.n; i++)
        m->skip[m->nskip++] = sp_slice_str(c->remove.v[i]);
    for (size_t i = 0; i < c->rename.n; i++)
        m->skip[m->nskip++] = sp_slice_str(c->rename.k[i]);
    const sp_kvlist *lists[] = {&c->rename, &c->copy, &c->add, &c->set};
    for (size_t l = 0; l < 4; l++)
        for (size_t i = 0; i < lists[l]->n; i++)
            if (!*lists[l]->k[i] || (l < 2 && !*lists[l]->v[i])) {
                sp_conf_error(err, f->line, "modify", "empty field name");
                return -1;
            }
    return 0;
}

static void sp_modify_free(sp_filter *f)
{
    sp_modify *m = f->data;
    if (!m) return;
    free(m->skip);
    sp_extras_edit_free(&m->e);
    free(m);
    f->data = NULL;
}

/* Puts field `from` of the original record under `to`; 1 when it was there. */
static int sp_modify_move(sp_extras_edit *e, const sp_record *orig, const char *from,
                          const char *to)
{
    sp_slice v, k = sp_slice_str(from);
    if (SP_SLICE_IS(k, "message")) {
        if (!orig->message.base) return 0;
        sp_extras_put_str(e, sp_slice_str(to), orig->message);
        return 1;
    }
    if (!sp_extras_find(orig, k, &v)) return 0;
    sp_extras_put_raw(e, sp_slice_str(to), v);
    return 1;
}

static int sp_modify_apply(sp_filter *f, sp_record *r, sp_slice tag)
{
    sp_modify_conf *c = f->conf;
    sp_modify *m = f->data;
    sp_record orig = *r;
    sp_extras_begin(&m->e);
    sp_extras_copy(&m->e, &orig, m->skip, m->nskip);
    for (size_t i = 0; i < c->remove.n; i++)
        if (strcmp(c->remove.v[i], "message") == 0) r->message = SP_SLICE_NULL;
    for (size_t i = 0; i < c->rename.n; i++)
        if (sp_modify_move(&m->e, &orig, c->rename.k[i], c->rename.v[i]) &&
            strcmp(c->rename.k[i], "message") == 0)
            r->message = SP_SLICE_NULL;
    for (size_t i = 0; i < c->copy.n; i++)
        sp_modify_move(&m->e, &orig, c->copy.k[i], c->copy.v[i]);
    for (size_t i = 0; i < c->add.n; i++) {
        sp_slice k = sp_slice_str(c->add.k[i]), v;
        int present = sp_extras_find(&orig, k, &v);
        for (size_t j = 0; j < m->nskip && present; j++)
            if (sp_slice_eq(m->skip[j], k)) present = 0; /* removed or renamed away above */
        for (size_t j = 0; j < c->rename.n && !present; j++)
            present = strcmp(c->rename.v[j], c->add.k[i]) == 0 &&
                      (strcmp(c->rename.k[j], "message") == 0
                           ? orig.message.base != NULL
                           : sp_extras_find(&orig, sp_slice_str(c->rename.k[j]), &v));
        if (!present) sp_extras_put_str(&m->e, k, sp_slice_str(c->add.v[i]));
    }
    for (size_t i = 0; i < c->set.n; i++)
        sp_extras_put_str(&m->e, sp_slice_str(c->set.k[i]), sp_slice_str(c->set.v[i]));
    sp_extras_finish(&m->e, r);
    return SP_FILTER_KEEP;
}

const sp_filter_type sp_filter_modify = {.name = "modify",
                                         .fields = sp_modify_fields,
                                         .conf_size = sizeof(sp_modify_conf),
                                         .check = sp_modify_check,
                                         .apply = sp_modify_apply,
                                         .free = sp_modify_free};
