/*
 * modify: remove, rename, copy, add and set fields (docs/filters.md), in that order. Follows
 * Fluent Bit's modify filter: `add` only adds a field that is absent, `set` overwrites. Values
 * are literals; ${ENV} in them is expanded when the configuration is read. Fields are the
 * record's extras (top-level keys); `message` may also be removed, renamed or copied.
 */
#include <stdlib.h>

#include "filter.h"
#include "mp.h"

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

/* A key the configuration names, with what the filter does with it: found once per pair of a
 * record instead of testing every list. */
typedef struct {
    sp_slice k;
    uint64_t src;    /* bit j: source j (rename's, then copy's) reads it */
    uint64_t add;    /* bit j: it is add key j */
    uint8_t drop;    /* removed or renamed away */
    uint8_t written; /* written by rename, copy, add or set: a kept pair of it may clash */
} sp_modify_name;

/* pre's spare bytes after its end, so that a short span is copied in one fixed-size move. */
#define SP_MODIFY_PRE_PAD 16

/* At most this many rename + copy entries, and add entries (bits of sp_modify_name). */
#define SP_MODIFY_MAX 64

typedef struct {
    sp_modify_name *names; /* every key named (message aside), once */
    size_t nnames;
    sp_slice *skip; /* removed and renamed keys */
    size_t nskip;
    sp_slice *src;      /* the fields rename and copy read: rename's, then copy's */
    uint8_t *src_msg;   /* src[i] is `message` */
    sp_slice *val;      /* per record: src[i]'s raw value in the extras, when bit i of `have` */
    uint64_t have;      /* per record: bit i, src[i] is in the extras */
    uint8_t *add_gone;  /* add key i is removed or renamed away */
    uint8_t *add_renam; /* [i * rename.n + j]: rename j writes add key i */
    sp_slice *to;       /* the keys rename and copy write (as src) */
    sp_slice *addk, *addv, *setk, *setv;
    int rm_message;
    int wdup;         /* two of the keys written (to, addk, setk) are the same */
    uint64_t keymask; /* sp_modify_bit of every key named in the config: others skip the loops */
    sp_buf pre;       /* MessagePack written once: to[i]'s key, add's and set's whole pairs */
    size_t *to_off, *add_off, *set_off; /* where each starts in pre (one more: the end) */
    sp_extras_edit e;
} sp_modify;

/* A key's bit in keymask, from its length and first byte: a key whose bit is clear is none of
 * the configured keys, so it is only copied (and checked against the kept keys). */
static uint64_t sp_modify_bit(sp_slice k)
{
    return 1ULL << ((k.len * 7 + (k.len ? (uint8_t)k.base[0] : 0)) & 63);
}

/* Kept keys remembered per record to tell whether the output can hold a key twice; more than
 * this many: sp_extras_finish's dedup decides. */
#define SP_MODIFY_TRACK 16

/* Encodes once what every record gets: rename's and copy's target keys, add's and set's pairs. */
static void sp_modify_encode(sp_modify *m, const sp_modify_conf *c, size_t nsrc)
{
    m->to_off = sp_calloc(nsrc + 1, sizeof *m->to_off);
    m->add_off = sp_calloc(c->add.n + 1, sizeof *m->add_off);
    m->set_off = sp_calloc(c->set.n + 1, sizeof *m->set_off);
    for (size_t i = 0; i < nsrc; i++) {
        m->to_off[i] = m->pre.len;
        sp_mp_put_str(&m->pre, m->to[i].base, m->to[i].len);
    }
    m->to_off[nsrc] = m->pre.len;
    for (size_t i = 0; i < c->add.n; i++) {
        m->add_off[i] = m->pre.len;
        sp_mp_put_str(&m->pre, m->addk[i].base, m->addk[i].len);
        sp_mp_put_str(&m->pre, m->addv[i].base, m->addv[i].len);
    }
    m->add_off[c->add.n] = m->pre.len;
    for (size_t i = 0; i < c->set.n; i++) {
        m->set_off[i] = m->pre.len;
        sp_mp_put_str(&m->pre, m->setk[i].base, m->setk[i].len);
        sp_mp_put_str(&m->pre, m->setv[i].base, m->setv[i].len);
    }
    m->set_off[c->set.n] = m->pre.len;
    sp_buf_reserve(&m->pre, SP_MODIFY_PRE_PAD);
    memset(m->pre.base + m->pre.len, 0, SP_MODIFY_PRE_PAD);
}

/* Appends pre's span i of offs (a key, or a whole pair) to the output. */
static inline void sp_modify_put_pre(sp_modify *m, const size_t *offs, size_t i)
{
    size_t n = offs[i + 1] - offs[i];
    const char *src = m->pre.base + offs[i];
    sp_buf *o = &m->e.out;
    if (n > SP_MODIFY_PRE_PAD) {
        sp_buf_append(o, src, n);
        return;
    }
    sp_buf_reserve(o, SP_MODIFY_PRE_PAD); /* most spans: no call to memcpy */
    memcpy(o->base + o->len, src, SP_MODIFY_PRE_PAD);
    o->len += n;
}

/* The entry of key k in m->names, added when absent. */
static sp_modify_name *sp_modify_name_get(sp_modify *m, sp_slice k)
{
    for (size_t i = 0; i < m->nnames; i++)
        if (sp_slice_eq(m->names[i].k, k)) return &m->names[i];
    m->names[m->nnames] = (sp_modify_name){.k = k};
    return &m->names[m->nnames++];
}

static void sp_modify_names(sp_modify *m, const sp_modify_conf *c, size_t nsrc)
{
    m->names = sp_calloc(m->nskip + 2 * nsrc + c->add.n + c->set.n + 1, sizeof *m->names);
    for (size_t i = 0; i < m->nskip; i++)
        sp_modify_name_get(m, m->skip[i])->drop = 1;
    for (size_t i = 0; i < nsrc; i++) {
        if (!m->src_msg[i]) sp_modify_name_get(m, m->src[i])->src |= 1ULL << i;
        sp_modify_name_get(m, m->to[i])->written = 1;
    }
    for (size_t i = 0; i < c->add.n; i++) {
        sp_modify_name *n = sp_modify_name_get(m, m->addk[i]);
        n->add |= 1ULL << i;
        n->written = 1;
    }
    for (size_t i = 0; i < c->set.n; i++)
        sp_modify_name_get(m, m->setk[i])->written = 1;
}

static int sp_modify_prepare(sp_modify *m, const sp_modify_conf *c)
{
    size_t nsrc = c->rename.n + c->copy.n;
    m->skip = sp_calloc(c->remove.n + c->rename.n + 1, sizeof *m->skip);
    m->src = sp_calloc(nsrc + 1, sizeof *m->src);
    m->src_msg = sp_calloc(nsrc + 1, 1);
    m->val = sp_calloc(nsrc + 1, sizeof *m->val);
    m->add_gone = sp_calloc(c->add.n + 1, 1);
    m->add_renam = sp_calloc(c->add.n * c->rename.n + 1, 1);
    m->to = sp_calloc(nsrc + 1, sizeof *m->to);
    m->addk = sp_calloc(c->add.n + 1, sizeof *m->addk);
    m->addv = sp_calloc(c->add.n + 1, sizeof *m->addv);
    m->setk = sp_calloc(c->set.n + 1, sizeof *m->setk);
    m->setv = sp_calloc(c->set.n + 1, sizeof *m->setv);
    for (size_t i = 0; i < c->add.n; i++) {
        m->addk[i] = sp_slice_str(c->add.k[i]);
        m->addv[i] = sp_slice_str(c->add.v[i]);
    }
    for (size_t i = 0; i < c->set.n; i++) {
        m->setk[i] = sp_slice_str(c->set.k[i]);
        m->setv[i] = sp_slice_str(c->set.v[i]);
    }
    /* every key written, to see whether two are the same */
    size_t nw = nsrc + c->add.n + c->set.n;
    sp_slice *w = sp_calloc(nw + 1, sizeof *w);
    for (size_t i = 0; i < nw; i++)
        w[i] = i < nsrc
                   ? sp_slice_str(i < c->rename.n ? c->rename.v[i] : c->copy.v[i - c->rename.n])
               : i < nsrc + c->add.n ? m->addk[i - nsrc]
                                     : m->setk[i - nsrc - c->add.n];
    for (size_t i = 0; i < nw; i++)
        for (size_t j = 0; j < i; j++)
            m->wdup |= sp_slice_eq(w[i], w[j]);
    memcpy(m->to, w, nsrc * sizeof *w);
    free(w);
    for (size_t i = 0; i < c->remove.n; i++) {
        m->skip[m->nskip++] = sp_slice_str(c->remove.v[i]);
        m->rm_message |= strcmp(c->remove.v[i], "message") == 0;
    }
    for (size_t i = 0; i < c->rename.n; i++)
        m->skip[m->nskip++] = sp_slice_str(c->rename.k[i]);
    for (size_t i = 0; i < nsrc; i++) {
        const char *k = i < c->rename.n ? c->rename.k[i] : c->copy.k[i - c->rename.n];
        m->src[i] = sp_slice_str(k);
        m->src_msg[i] = strcmp(k, "message") == 0;
    }
    for (size_t i = 0; i < m->nskip; i++)
        m->keymask |= sp_modify_bit(m->skip[i]);
    for (size_t i = 0; i < nsrc; i++)
        m->keymask |= sp_modify_bit(m->src[i]) | sp_modify_bit(m->to[i]);
    for (size_t i = 0; i < c->add.n; i++)
        m->keymask |= sp_modify_bit(m->addk[i]);
    for (size_t i = 0; i < c->set.n; i++)
        m->keymask |= sp_modify_bit(m->setk[i]);
    sp_modify_encode(m, c, nsrc);
    sp_modify_names(m, c, nsrc);
    for (size_t i = 0; i < c->add.n; i++) {
        for (size_t j = 0; j < m->nskip; j++)
            m->add_gone[i] |= sp_slice_eq(m->skip[j], sp_slice_str(c->add.k[i]));
        for (size_t j = 0; j < c->rename.n; j++)
            m->add_renam[i * c->rename.n + j] = strcmp(c->rename.v[j], c->add.k[i]) == 0;
    }
    return 0;
}

static int sp_modify_check(sp_filter *f, const sp_node *n, sp_conf_err *err)
{
    sp_modify_conf *c = f->conf;
    if (!c->remove.n && !c->rename.n && !c->copy.n && !c->add.n && !c->set.n) {
        sp_conf_error(err, f->line, "modify", "needs remove, rename, copy, add or set");
        return -1;
    }
    if (c->rename.n + c->copy.n > SP_MODIFY_MAX || c->add.n > SP_MODIFY_MAX) {
        sp_conf_error(err, f->line, "modify", "at most %d rename and copy entries, and %d add",
                      SP_MODIFY_MAX, SP_MODIFY_MAX);
        return -1;
    }
    sp_modify *m = sp_calloc(1, sizeof *m);
    f->data = m;
    sp_modify_prepare(m, c);
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
    free(m->src);
    free(m->src_msg);
    free(m->val);
    free(m->names);
    free(m->add_gone);
    free(m->add_renam);
    free(m->to);
    free(m->addk);
    free(m->addv);
    free(m->setk);
    free(m->setv);
    free(m->to_off);
    free(m->add_off);
    free(m->set_off);
    sp_buf_free(&m->pre);
    sp_extras_edit_free(&m->e);
    free(m);
    f->data = NULL;
}

/* Whether kept key k may appear twice in the output: equal to an earlier kept key (kept[],
 * *nkept: the kept keys so far). */
static int sp_modify_clash(sp_slice k, sp_slice *kept, size_t *nkept)
{
    if (*nkept >= SP_MODIFY_TRACK) return 1;
    for (size_t j = 0; j < *nkept; j++)
        if (sp_slice_eq(k, kept[j])) return 1;
    kept[(*nkept)++] = k;
    return 0;
}

/* The configured key equal to k, or NULL. */
static const sp_modify_name *sp_modify_name_find(const sp_modify *m, sp_slice k)
{
    for (size_t i = 0; i < m->nnames; i++)
        if (sp_slice_eq_short(k, m->names[i].k)) return &m->names[i];
    return NULL;
}

/* One pass over the record's extras: the pairs not removed or renamed copied to the output, the
 * values rename and copy read noted (the last of a repeated key), and which add keys are there
 * (*add_seen: bit i for add key i). 1 when the output may hold a key twice (then
 * sp_extras_finish removes the earlier ones). */
static int sp_modify_scan(sp_modify *m, const sp_modify_conf *c, const sp_record *r,
                          uint64_t *add_seen)
{
    size_t nkept = 0;
    sp_slice kept[SP_MODIFY_TRACK];
    int clash = m->wdup;
    uint64_t have = 0;
    const sp_extra *x;
    uint32_t np = sp_extras_pairs(r, &x); /* shared with the filters before and after */
    if (np < r->nextras) clash = 1;   /* malformed: what came before is kept, and deduplicated */
    const char *run = r->extras.base; /* the kept pairs not yet copied: one append per run */
    for (uint32_t i = 0; i < np; i++) {
        sp_slice k = x[i].key;
        if (!k.base) { /* not a string: kept, never a clash */
            m->e.n++;
            continue;
        }
        const sp_modify_name *nm = m->keymask & sp_modify_bit(k) ? sp_modify_name_find(m, k) : NULL;
        if (nm) {
            have |= nm->src;
            for (uint64_t b = nm->src; b; b &= b - 1)
                m->val[__builtin_ctzll(b)] = x[i].val;
            *add_seen |= nm->add;
        }
        if (!nm || !nm->drop) {
            if (!clash) clash = (nm && nm->written) || sp_modify_clash(k, kept, &nkept);
            m->e.n++;
            continue;
        }
        const char *start = sp_extra_start(r, x, i);
        if (start > run) sp_buf_append(&m->e.out, run, (size_t)(start - run));
        run = x[i].val.base + x[i].val.len;
    }
    const char *stop = sp_extra_start(r, x, np);
    if (stop > run) sp_buf_append(&m->e.out, run, (size_t)(stop - run));
    m->have = have;
    return clash;
}

/* Puts source i (rename's or copy's) under m->to[i]; 1 when it was there. */
static int sp_modify_move(sp_modify *m, sp_slice message, size_t i)
{
    if (m->src_msg[i]) {
        if (!message.base) return 0;
        sp_extras_put_str(&m->e, m->to[i], message);
        return 1;
    }
    if (!(m->have >> i & 1)) return 0;
    sp_modify_put_pre(m, m->to_off, i);
    sp_buf_append(&m->e.out, m->val[i].base, m->val[i].len);
    m->e.n++;
    return 1;
}

static int sp_modify_apply(sp_filter *f, sp_record *r, sp_slice tag)
{
    sp_modify_conf *c = f->conf;
    sp_modify *m = f->data;
    sp_slice message = r->message; /* as it came: rename and copy read it after remove */
    sp_extras_begin(&m->e);
    uint64_t add_seen = 0;
    int clash = sp_modify_scan(m, c, r, &add_seen);
    if (m->rm_message) r->message = SP_SLICE_NULL;
    for (size_t i = 0; i < c->rename.n; i++)
        if (sp_modify_move(m, message, i) && m->src_msg[i]) r->message = SP_SLICE_NULL;
    for (size_t i = 0; i < c->copy.n; i++)
        sp_modify_move(m, message, c->rename.n + i);
    for (size_t i = 0; i < c->add.n; i++) {
        int present = (add_seen >> i & 1) && !m->add_gone[i]; /* not removed or renamed away */
        for (size_t j = 0; j < c->rename.n && !present; j++)
            present = m->add_renam[i * c->rename.n + j] &&
                      (m->src_msg[j] ? message.base != NULL : (m->have >> j & 1));
        if (present) continue;
        sp_modify_put_pre(m, m->add_off, i);
        m->e.n++;
    }
    for (size_t i = 0; i < c->set.n; i++) {
        sp_modify_put_pre(m, m->set_off, i);
        m->e.n++;
    }
    if (clash) {
        sp_extras_finish(&m->e, r);
    } else { /* every key once: nothing for sp_extras_finish's dedup to find */
        r->extras = m->e.out.len ? sp_buf_slice(&m->e.out) : sp_slice_make("", 0);
        r->nextras = m->e.n;
    }
    return SP_FILTER_KEEP;
}

const sp_filter_type sp_filter_modify = {.name = "modify",
                                         .fields = sp_modify_fields,
                                         .conf_size = sizeof(sp_modify_conf),
                                         .check = sp_modify_check,
                                         .apply = sp_modify_apply,
                                         .free = sp_modify_free};
