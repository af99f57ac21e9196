/* The configuration: the service and buffer settings, the inputs and outputs (one loader for
 * both kinds), --check's printout, and freeing it all. The lifecycle is in daemon.c. */
#include "daemon.h"

#include <stdio.h>
#include <stdlib.h>

#include "addr.h"

static const char *const sp_daemon_levels[] = {"error", "warn", "info", "debug", NULL};

static const sp_conf_field sp_daemon_service_fields[] = {
    {"log_level", SP_CONF_ENUM, offsetof(sp_service_conf, log_level), "info",
     "error | warn | info | debug", sp_daemon_levels},
    {"http_listen", SP_CONF_STR, offsetof(sp_service_conf, http_listen), "127.0.0.1:2020",
     "GET /metrics, /healthz, /readyz; \"\" turns it off"},
    {"state_dir", SP_CONF_STR, offsetof(sp_service_conf, state_dir), NULL,
     "tail offsets and spool; unset: nothing is written anywhere"},
    {"grace", SP_CONF_DURATION, offsetof(sp_service_conf, grace_ms), "10s",
     "on SIGTERM/SIGINT, how long to keep delivering before exiting"},
    {"pid_file", SP_CONF_STR, offsetof(sp_service_conf, pid_file), NULL,
     "written with the process id once running (after an upgrade: the new process's)"},
    {"http_reload", SP_CONF_BOOL, offsetof(sp_service_conf, http_reload), "false",
     "POST /reload on http_listen reloads the config as SIGHUP does"},
    SP_CONF_END};

static const sp_conf_field sp_daemon_buffer_fields[] = {
    {"memory_limit", SP_CONF_SIZE, offsetof(sp_buffer_conf, memory_limit), "64MiB",
     "buffered bytes at which inputs pause (resume at 80%)"},
    {"chunk_size", SP_CONF_SIZE, offsetof(sp_buffer_conf, chunk_size), "1MiB",
     "a chunk is closed and shipped at this size"},
    {"flush_interval", SP_CONF_DURATION, offsetof(sp_buffer_conf, flush_interval), "1s",
     "a chunk is closed and shipped at this age"},
    {"spool", SP_CONF_BOOL, offsetof(sp_buffer_conf, spool), "false",
     "keep chunks on disk under state_dir before they count as accepted; replayed at start"},
    {"spool_limit", SP_CONF_SIZE, offsetof(sp_buffer_conf, spool_limit), "4GiB",
     "spooled bytes at which inputs pause"},
    {"retry_min", SP_CONF_DURATION, offsetof(sp_buffer_conf, retry_min), "500ms",
     "first retry delay of a failed delivery (doubles up to the output's retry_max)"},
    {"fair", SP_CONF_BOOL, offsetof(sp_buffer_conf, fair), "true",
     "above fair_mark, pause the sources taking in more than their share first"},
    {"fair_mark", SP_CONF_SIZE, offsetof(sp_buffer_conf, fair_mark), "0",
     "buffered bytes at which fair backpressure starts (0: half of memory_limit; resume at 80%)"},
    SP_CONF_END};

/* Settings every output has, handled here rather than by each output. */
typedef struct {
    char *type;
    char *match;
    char *name;
    uint64_t retry_max;
    int64_t workers;
} sp_output_common;

static const sp_conf_field sp_daemon_output_common[] = {
    {"type", SP_CONF_STR, offsetof(sp_output_common, type), NULL, "the output type"},
    {"match", SP_CONF_STR, offsetof(sp_output_common, match), "*", "glob on the record's tag"},
    {"name", SP_CONF_STR, offsetof(sp_output_common, name), NULL, "name in metrics"},
    {"retry_max", SP_CONF_DURATION, offsetof(sp_output_common, retry_max), "30s",
     "longest backoff between retries"},
    {"workers", SP_CONF_INT, offsetof(sp_output_common, workers), "0",
     "deliveries in flight at once (0: the output's default)"},
    SP_CONF_END};

typedef struct {
    char *type;
    char *name;
} sp_input_common;

static const sp_conf_field sp_daemon_input_common[] = {
    {"type", SP_CONF_STR, offsetof(sp_input_common, type), NULL, "the input type"},
    {"name", SP_CONF_STR, offsetof(sp_input_common, name), NULL, "name in metrics"},
    SP_CONF_END};

typedef struct {
    char *type;
    char *match;
    char *name;
} sp_filter_common;

static const sp_conf_field sp_daemon_filter_common[] = {
    {"type", SP_CONF_STR, offsetof(sp_filter_common, type), NULL, "the filter type"},
    {"match", SP_CONF_STR, offsetof(sp_filter_common, match), "*", "glob on the record's tag"},
    {"name", SP_CONF_STR, offsetof(sp_filter_common, name), NULL, "name in metrics"},
    SP_CONF_END};

static const char *const sp_daemon_common_keys[] = {"type",      "match",   "name",
                                                    "retry_max", "workers", NULL};

const sp_conf_field *sp_daemon_table(const char *which)
{
    static const struct {
        const char *name;
        const sp_conf_field *fields;
    } tables[] = {{"service", sp_daemon_service_fields},
                  {"buffer", sp_daemon_buffer_fields},
                  {"input", sp_daemon_input_common},
                  {"filter", sp_daemon_filter_common},
                  {"output", sp_daemon_output_common}};
    for (size_t i = 0; i < sizeof tables / sizeof *tables; i++)
        if (strcmp(tables[i].name, which) == 0) return tables[i].fields;
    return NULL;
}

/* Splits a component's map: the common keys go through `common`, the rest through `fields`. */
static int sp_daemon_component(const sp_node *n, const char *section, void *common,
                               const sp_conf_field *common_fields, void *conf,
                               const sp_conf_field *fields, sp_conf_err *err)
{
    /* Each table sees the other's keys as allowed, so an unknown key is still an error. */
    const char *type_keys[64];
    size_t k = 0;
    for (const sp_conf_field *f = fields; f->key && k < 63; f++)
        type_keys[k++] = f->key;
    type_keys[k] = NULL;
    const char *const *allow_common = sp_daemon_common_keys;
    if (sp_conf_apply(conf, fields, n, section, allow_common, err)) return -1;
    if (sp_conf_apply(common, common_fields, n, section, type_keys, err)) return -1;
    return 0;
}

/* What the loader needs to know of a registered type, whichever kind it is. */
typedef struct {
    const char *name;
    const sp_conf_field *fields;
    size_t conf_size;
    const char *unsupported;
    const char *const *planned;
} sp_daemon_type_info;

/* One kind of component (inputs, outputs): its list key, its common settings, its registered
 * types and how an instance is made once its settings are parsed. */
typedef struct {
    const char *list; /* "inputs": the top-level key */
    const char *one;  /* "input": in messages */
    size_t max;       /* most instances (0: any number) */
    const sp_conf_field *common_fields;
    size_t name_off; /* where the common struct holds `name` */
    /* Fills `info` for registered type `k` and returns 1; 0 past the last one. */
    int (*type_at)(size_t k, sp_daemon_type_info *info);
    /* Adds the instance of type `k` configured by `n` (takes `name` and `conf`), then checks
     * the common settings and the type's own. 0, or -1 with err set. */
    int (*add)(sp_daemon *d, const sp_node *n, size_t k, int index, char *name, void *conf,
               void *common, sp_conf_err *err);
    int optional; /* the list may be absent */
} sp_daemon_kind;

static int sp_daemon_input_at(size_t k, sp_daemon_type_info *info)
{
    const sp_input_type *t = sp_input_types[k];
    if (!t) return 0;
    *info = (sp_daemon_type_info){t->name, t->fields, t->conf_size, t->unsupported, t->planned};
    return 1;
}

static int sp_daemon_output_at(size_t k, sp_daemon_type_info *info)
{
    const sp_output_type *t = sp_output_types[k];
    if (!t) return 0;
    *info = (sp_daemon_type_info){t->name, t->fields, t->conf_size, t->unsupported, NULL};
    return 1;
}

static int sp_daemon_filter_at(size_t k, sp_daemon_type_info *info)
{
    const sp_filter_type *t = sp_filter_types[k];
    if (!t) return 0;
    *info = (sp_daemon_type_info){t->name, t->fields, t->conf_size, NULL, t->planned};
    return 1;
}

static int sp_daemon_add_filter(sp_daemon *d, const sp_node *n, size_t k, int index, char *name,
                                void *conf, void *common_, sp_conf_err *err)
{
    sp_filter_common *common = common_;
    sp_filter *f = sp_calloc(1, sizeof *f);
    d->filters = sp_realloc(d->filters, (d->nfilters + 1) * sizeof *d->filters);
    d->filters[d->nfilters++] = f;
    f->type = sp_filter_types[k];
    f->index = index;
    f->line = n->line;
    f->conf = conf;
    f->name = name;
    f->match = strdup(common->match ? common->match : "*");
    return f->type->check ? f->type->check(f, n, err) : 0;
}

static int sp_daemon_add_input(sp_daemon *d, const sp_node *n, size_t k, int index, char *name,
                               void *conf, void *common, sp_conf_err *err)
{
    sp_input *in = sp_calloc(1, sizeof *in);
    d->inputs = sp_realloc(d->inputs, (d->ninputs + 1) * sizeof *d->inputs);
    d->inputs[d->ninputs++] = in;
    in->type = sp_input_types[k];
    in->index = index;
    in->line = n->line;
    in->conf = conf;
    in->name = name;
    return in->type->check ? in->type->check(in, n, err) : 0;
}

static int sp_daemon_add_output(sp_daemon *d, const sp_node *n, size_t k, int index, char *name,
                                void *conf, void *common_, sp_conf_err *err)
{
    sp_output_common *common = common_;
    sp_output *o = sp_calloc(1, sizeof *o);
    d->outputs = sp_realloc(d->outputs, (d->noutputs + 1) * sizeof *d->outputs);
    d->outputs[d->noutputs++] = o;
    o->type = sp_output_types[k];
    o->index = index;
    o->line = n->line;
    o->conf = conf;
    o->name = name;
    o->match = strdup(common->match ? common->match : "*");
    o->retry_max_ms = common->retry_max;
    o->max_inflight = common->workers > 0 ? (int)common->workers : o->type->default_inflight;
    if (o->max_inflight < 1) o->max_inflight = 1;
    if (common->workers < 0 || common->workers > 256) {
        sp_conf_error(err, n->line, "workers", "must be between 0 and 256");
        return -1;
    }
    return o->type->check ? o->type->check(o, n, err) : 0;
}

static const sp_daemon_kind sp_daemon_inputs = {"inputs",
                                                "input",
                                                0,
                                                sp_daemon_input_common,
                                                offsetof(sp_input_common, name),
                                                sp_daemon_input_at,
                                                sp_daemon_add_input};
static const sp_daemon_kind sp_daemon_outputs = {"outputs",
                                                 "output",
                                                 64,
                                                 sp_daemon_output_common,
                                                 offsetof(sp_output_common, name),
                                                 sp_daemon_output_at,
                                                 sp_daemon_add_output};
static const sp_daemon_kind sp_daemon_filters = {.list = "filters",
                                                 .one = "filter",
                                                 .max = 64, /* a mask per tag */
                                                 .common_fields = sp_daemon_filter_common,
                                                 .name_off = offsetof(sp_filter_common, name),
                                                 .type_at = sp_daemon_filter_at,
                                                 .add = sp_daemon_add_filter,
                                                 .optional = 1};

/* The registered type called `tname` (its index in `k`), or -1 with an "unknown type" error that
 * lists the registered names (the plugins this binary was built with). */
static int sp_daemon_find_type(const sp_daemon_kind *kind, const sp_node *n, const char *tname,
                               sp_daemon_type_info *info, sp_conf_err *err)
{
    sp_buf names = {0};
    for (size_t k = 0; kind->type_at(k, info); k++) {
        if (strcmp(info->name, tname) == 0) {
            sp_buf_free(&names);
            return (int)k;
        }
        sp_buf_printf(&names, "%s%s", names.len ? ", " : "", info->name);
    }
    sp_conf_error(err, sp_node_get(n, "type")->line, "type", "unknown %s type \"%s\" (%.*s)",
                  kind->one, tname, (int)names.len, names.base ? names.base : "");
    sp_buf_free(&names);
    return -1;
}

static const char *sp_daemon_node_type_str(const sp_node *n)
{
    sp_node *t = sp_node_get(n, "type");
    return t && t->type == SP_NODE_SCALAR ? t->value : NULL;
}

static char *sp_daemon_name(const char *given, const char *type, size_t index, size_t same_type)
{
    if (given) return strdup(given);
    if (same_type <= 1) return strdup(type);
    char buf[128];
    snprintf(buf, sizeof buf, "%s.%zu", type, index);
    return strdup(buf);
}

/* Item `i` of a component list: its type, settings and name. */
static int sp_daemon_load_one(sp_daemon *d, const sp_daemon_kind *kind, const sp_node *seq,
                              const sp_node *n, size_t i, sp_conf_err *err)
{
    char section[32];
    snprintf(section, sizeof section, "%s[%zu]", kind->list, i);
    if (kind->max && i >= kind->max) {
        sp_conf_error(err, n->line, section, "at most %zu %s", kind->max, kind->list);
        return -1;
    }
    const char *tname = sp_daemon_node_type_str(n);
    if (n->type != SP_NODE_MAP || !tname) {
        sp_conf_error(err, n->line, section, "needs a `type`");
        return -1;
    }
    sp_daemon_type_info t;
    int k = sp_daemon_find_type(kind, n, tname, &t, err);
    if (k < 0) return -1;
    if (t.unsupported) {
        sp_conf_error(err, sp_node_get(n, "type")->line, "type", "%s", t.unsupported);
        return -1;
    }
    for (const char *const *key = t.planned; key && *key; key++) {
        sp_node *v = sp_node_get(n, *key);
        if (v) {
            sp_conf_error(err, v->line, *key, "not supported yet (planned)");
            return -1;
        }
    }
    void *conf = sp_calloc(1, t.conf_size ? t.conf_size : 1);
    union {
        sp_input_common in;
        sp_output_common out;
        sp_filter_common filter;
    } common = {0};
    if (sp_daemon_component(n, section, &common, kind->common_fields, conf, t.fields, err)) {
        sp_conf_free(&common, kind->common_fields);
        sp_conf_free(conf, t.fields);
        free(conf);
        return -1;
    }
    size_t same = 0;
    for (sp_node *m = seq->child; m; m = m->next) {
        const char *mt = sp_daemon_node_type_str(m);
        if (mt && strcmp(mt, tname) == 0) same++;
    }
    const char *given = *(char **)((char *)&common + kind->name_off);
    char *name = sp_daemon_name(given, tname, i, same);
    int rc = kind->add(d, n, (size_t)k, (int)i, name, conf, &common, err);
    sp_conf_free(&common, kind->common_fields);
    return rc;
}

/* A list of components (`inputs:` or `outputs:`), at least one. */
static int sp_daemon_load_list(sp_daemon *d, const sp_daemon_kind *kind, const sp_node *seq,
                               sp_conf_err *err)
{
    if (!seq && kind->optional) return 0;
    if (!seq) {
        sp_conf_error(err, 1, kind->list, "at least one %s is required", kind->one);
        return -1;
    }
    if (seq->type != SP_NODE_SEQ || !seq->child) {
        sp_conf_error(err, seq->line, kind->list, "must be a list of %s", kind->list);
        return -1;
    }
    size_t i = 0;
    for (sp_node *n = seq->child; n; n = n->next, i++)
        if (sp_daemon_load_one(d, kind, seq, n, i, err)) return -1;
    return 0;
}

int sp_daemon_load(sp_daemon *d, const char *text, size_t len, sp_conf_err *err)
{
    memset(d, 0, sizeof *d);
    sp_node *root = sp_yaml_parse(text, len, err);
    if (!root) return -1;
    int rc = -1;
    static const char *const top[] = {"service", "buffer", "filters", "inputs", "outputs", NULL};
    for (sp_node *c = root->child; c; c = c->next) {
        int ok = 0;
        for (const char *const *t = top; *t; t++)
            ok |= strcmp(*t, c->key) == 0;
        if (!ok) {
            sp_conf_error(err, c->line, c->key,
                          "unknown key (expected service, buffer, filters, inputs, outputs)");
            goto out;
        }
    }
    if (sp_conf_apply(&d->service, sp_daemon_service_fields, sp_node_get(root, "service"),
                      "service", NULL, err))
        goto out;
    if (sp_conf_apply(&d->buffer, sp_daemon_buffer_fields, sp_node_get(root, "buffer"), "buffer",
                      NULL, err))
        goto out;
    if (d->buffer.chunk_size < 1024 || d->buffer.memory_limit < d->buffer.chunk_size) {
        sp_conf_error(err, sp_node_line(root, "buffer", 1), "buffer",
                      "chunk_size must be at least 1KiB and memory_limit at least chunk_size");
        goto out;
    }
    if (d->buffer.flush_interval == 0) d->buffer.flush_interval = 1;
    if (d->service.http_listen && *d->service.http_listen) {
        sp_addr a;
        const char *why;
        if (sp_addr_parse(d->service.http_listen, &a, &why) || a.is_unix) {
            sp_conf_error(err, sp_node_line(sp_node_get(root, "service"), "http_listen", 1),
                          "service.http_listen", "\"%s\": %s", d->service.http_listen,
                          a.is_unix ? "must be host:port" : why);
            goto out;
        }
    }
    if (d->buffer.spool && !d->service.state_dir) {
        sp_conf_error(err, sp_node_line(sp_node_get(root, "buffer"), "spool", 1), "buffer.spool",
                      "needs service.state_dir");
        goto out;
    }
    if (sp_daemon_load_list(d, &sp_daemon_filters, sp_node_get(root, "filters"), err)) goto out;
    if (sp_daemon_load_list(d, &sp_daemon_inputs, sp_node_get(root, "inputs"), err)) goto out;
    for (size_t i = 0; i < d->ninputs; i++)
        if (d->inputs[i]->needs_spool && !d->buffer.spool) {
            sp_conf_error(err, d->inputs[i]->line, d->inputs[i]->name,
                          "ack: durable needs buffer.spool: true (and service.state_dir)");
            goto out;
        }
    if (sp_daemon_load_list(d, &sp_daemon_outputs, sp_node_get(root, "outputs"), err)) goto out;
    rc = 0;
out:
    sp_node_free(root);
    return rc;
}

void sp_daemon_print(const sp_daemon *d, sp_buf *out)
{
    SP_BUF_LIT(out, "service:\n");
    sp_conf_print(out, &d->service, sp_daemon_service_fields, 2, NULL);
    SP_BUF_LIT(out, "buffer:\n");
    sp_conf_print(out, &d->buffer, sp_daemon_buffer_fields, 2, NULL);
    if (d->nfilters) SP_BUF_LIT(out, "filters:\n");
    for (size_t i = 0; i < d->nfilters; i++) {
        sp_filter *f = d->filters[i];
        sp_buf_printf(out, "  - type: %s\n    name: %s\n    match: \"%s\"\n", f->type->name,
                      f->name, f->match);
        sp_conf_print(out, f->conf, f->type->fields, 4, NULL);
    }
    SP_BUF_LIT(out, "inputs:\n");
    for (size_t i = 0; i < d->ninputs; i++) {
        sp_input *in = d->inputs[i];
        sp_buf_printf(out, "  - type: %s\n    name: %s\n", in->type->name, in->name);
        sp_conf_print(out, in->conf, in->type->fields, 4, NULL);
    }
    SP_BUF_LIT(out, "outputs:\n");
    for (size_t i = 0; i < d->noutputs; i++) {
        sp_output *o = d->outputs[i];
        sp_buf_printf(out, "  - type: %s\n    name: %s\n    match: \"%s\"\n", o->type->name,
                      o->name, o->match);
        sp_buf_printf(out, "    retry_max: %llums\n    workers: %d\n",
                      (unsigned long long)o->retry_max_ms, o->max_inflight);
        sp_conf_print(out, o->conf, o->type->fields, 4, NULL);
    }
}

void sp_daemon_free(sp_daemon *d)
{
    for (size_t i = 0; i < d->ninputs; i++) {
        sp_input *in = d->inputs[i];
        sp_conf_free(in->conf, in->type->fields);
        free(in->conf);
        free(in->name);
        free(in);
    }
    for (size_t i = 0; i < d->noutputs; i++) {
        sp_output *o = d->outputs[i];
        sp_conf_free(o->conf, o->type->fields);
        free(o->conf);
        free(o->name);
        free(o->match);
        free(o);
    }
    for (size_t i = 0; i < d->nfilters; i++) {
        sp_filter *f = d->filters[i];
        if (f->type->free) f->type->free(f);
        sp_conf_free(f->conf, f->type->fields);
        free(f->conf);
        free(f->name);
        free(f->match);
        free(f);
    }
    free(d->inputs);
    free(d->outputs);
    free(d->filters);
    sp_conf_free(&d->service, sp_daemon_service_fields);
    sp_conf_free(&d->buffer, sp_daemon_buffer_fields);
}
