/* YAML → node tree (libyaml events), ${VAR} expansion, and the typed field tables. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

void sp_conf_error(sp_conf_err *err, int line, const char *key, const char *fmt, ...)
{
    if (err->msg[0]) return;
    int n =
        snprintf(err->msg, sizeof err->msg, "%s:%d: ", err->file ? err->file : "<config>", line);
    if (key && n < (int)sizeof err->msg)
        n += snprintf(err->msg + n, sizeof err->msg - n, "%s: ", key);
    if (n < (int)sizeof err->msg) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg + n, sizeof err->msg - n, fmt, ap);
        va_end(ap);
    }
}

/* ${VAR} and ${VAR:-default}; an unset VAR without default is an error, so a typo in a
 * variable name is caught instead of becoming an empty setting. */
static char *sp_conf_expand(const char *s, int line, sp_conf_err *err)
{
    sp_buf b = {0};
    while (*s) {
        if (s[0] == '$' && s[1] == '{') {
            const char *close = strchr(s, '}');
            if (!close) {
                sp_conf_error(err, line, NULL, "unterminated ${ in \"%s\"", s);
                sp_buf_free(&b);
                return NULL;
            }
            char name[256];
            size_t n = (size_t)(close - s - 2);
            if (n >= sizeof name) n = sizeof name - 1;
            memcpy(name, s + 2, n);
            name[n] = '\0';
            char *def = strstr(name, ":-");
            if (def) {
                *def = '\0';
                def += 2;
            }
            const char *v = getenv(name);
            if (!v || (def && !*v)) v = def;
            if (!v) {
                sp_conf_error(err, line, NULL, "environment variable %s is not set", name);
                sp_buf_free(&b);
                return NULL;
            }
            sp_buf_append(&b, v, strlen(v));
            s = close + 1;
        } else {
            sp_buf_putc(&b, *s++);
        }
    }
    sp_buf_putc(&b, '\0');
    return b.base;
}

void sp_node_free(sp_node *n)
{
    while (n) {
        sp_node *next = n->next;
        sp_node_free(n->child);
        free(n->value);
        free(n->key);
        free(n);
        n = next;
    }
}

sp_node *sp_node_get(const sp_node *map, const char *key)
{
    if (!map || map->type != SP_NODE_MAP) return NULL;
    for (sp_node *c = map->child; c; c = c->next)
        if (strcmp(c->key, key) == 0) return c;
    return NULL;
}

int sp_node_line(const sp_node *map, const char *key, int fallback)
{
    const sp_node *c = sp_node_get(map, key);
    return c ? c->line : fallback;
}

/* Recursive descent over libyaml's event stream. */
static sp_node *sp_conf_yaml_node(yaml_parser_t *p, yaml_event_t *ev, sp_conf_err *err);

static int sp_conf_yaml_next(yaml_parser_t *p, yaml_event_t *ev, sp_conf_err *err)
{
    if (!yaml_parser_parse(p, ev)) {
        sp_conf_error(err, (int)p->problem_mark.line + 1, NULL, "YAML syntax: %s",
                      p->problem ? p->problem : "error");
        return -1;
    }
    return 0;
}

static sp_node *sp_conf_yaml_node(yaml_parser_t *p, yaml_event_t *ev, sp_conf_err *err)
{
    sp_node *n = sp_calloc(1, sizeof *n);
    n->line = (int)ev->start_mark.line + 1;
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        n->type = SP_NODE_SCALAR;
        n->value = sp_conf_expand((const char *)ev->data.scalar.value, n->line, err);
        yaml_event_delete(ev);
        if (!n->value) goto fail;
        return n;
    case YAML_ALIAS_EVENT:
        sp_conf_error(err, n->line, NULL, "YAML aliases are not supported");
        yaml_event_delete(ev);
        goto fail;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        int is_map = ev->type == YAML_MAPPING_START_EVENT;
        n->type = is_map ? SP_NODE_MAP : SP_NODE_SEQ;
        yaml_event_delete(ev);
        sp_node **tail = &n->child;
        for (;;) {
            yaml_event_t e;
            if (sp_conf_yaml_next(p, &e, err)) goto fail;
            if (e.type == YAML_SEQUENCE_END_EVENT || e.type == YAML_MAPPING_END_EVENT) {
                yaml_event_delete(&e);
                return n;
            }
            char *key = NULL;
            int kline = 0;
            if (is_map) {
                if (e.type != YAML_SCALAR_EVENT) {
                    sp_conf_error(err, (int)e.start_mark.line + 1, NULL, "map keys must be plain");
                    yaml_event_delete(&e);
                    goto fail;
                }
                key = sp_strndup((const char *)e.data.scalar.value, e.data.scalar.length);
                kline = (int)e.start_mark.line + 1;
                yaml_event_delete(&e);
                for (sp_node *c = n->child; c; c = c->next)
                    if (strcmp(c->key, key) == 0) {
                        sp_conf_error(err, kline, key, "duplicate key");
                        free(key);
                        goto fail;
                    }
                if (sp_conf_yaml_next(p, &e, err)) {
                    free(key);
                    goto fail;
                }
            }
            sp_node *c = sp_conf_yaml_node(p, &e, err);
            if (!c) {
                free(key);
                goto fail;
            }
            c->key = key;
            if (key) c->line = kline; /* errors about a member point at its key */
            *tail = c;
            tail = &c->next;
        }
    }
    default:
        sp_conf_error(err, n->line, NULL, "unexpected YAML event");
        yaml_event_delete(ev);
        goto fail;
    }
fail:
    sp_node_free(n);
    return NULL;
}

sp_node *sp_yaml_parse(const char *text, size_t len, sp_conf_err *err)
{
    yaml_parser_t p;
    yaml_event_t ev;
    sp_node *root = NULL;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    for (;;) {
        if (sp_conf_yaml_next(&p, &ev, err)) break;
        if (ev.type == YAML_STREAM_END_EVENT || ev.type == YAML_DOCUMENT_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        if (ev.type == YAML_STREAM_START_EVENT || ev.type == YAML_DOCUMENT_START_EVENT) {
            yaml_event_delete(&ev);
            continue;
        }
        root = sp_conf_yaml_node(&p, &ev, err);
        break;
    }
    yaml_parser_delete(&p);
    if (!root && !err->msg[0]) root = sp_calloc(1, sizeof *root), root->type = SP_NODE_MAP;
    if (root && root->type != SP_NODE_MAP) {
        sp_conf_error(err, root->line, NULL, "the top level must be a map");
        sp_node_free(root);
        return NULL;
    }
    return err->msg[0] ? (sp_node_free(root), NULL) : root;
}

/* ---- value parsers ---- */

int sp_parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || v < 0) return -1;
    while (*end == ' ')
        end++;
    static const struct {
        const char *suffix;
        double mult;
    } units[] = {{"", 1},
                 {"B", 1},
                 {"K", 1024},
                 {"KB", 1e3},
                 {"KiB", 1024},
                 {"M", 1048576},
                 {"MB", 1e6},
                 {"MiB", 1048576},
                 {"G", 1073741824},
                 {"GB", 1e9},
                 {"GiB", 1073741824},
                 {"T", 1099511627776.0},
                 {"TiB", 1099511627776.0},
                 {"TB", 1e12}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(end, units[i].suffix) == 0) {
            *out = (uint64_t)(v * units[i].mult);
            return 0;
        }
    return -1;
}

int sp_parse_duration(const char *s, uint64_t *out_ms)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || v < 0) return -1;
    static const struct {
        const char *suffix;
        double mult;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"", 1000}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(end, units[i].suffix) == 0) {
            *out_ms = (uint64_t)(v * units[i].mult);
            return 0;
        }
    return -1;
}

static const char *sp_conf_kind_name(sp_conf_kind k)
{
    static const char *names[] = {"a string",
                                  "an integer",
                                  "a size (e.g. 64KiB, 1MiB)",
                                  "a duration (e.g. 500ms, 10s)",
                                  "true or false",
                                  "one of",
                                  "a string or a list of strings",
                                  "a map of strings"};
    return names[k];
}

static int sp_conf_set_scalar(void *dst, const sp_conf_field *f, const char *v, int line,
                              const char *key, sp_conf_err *err)
{
    char *at = (char *)dst + f->offset;
    if (f->unsupported)
        for (const char *const *u = f->unsupported; *u; u++)
            if (strcmp(*u, v) == 0) {
                sp_conf_error(err, line, key, "\"%s\" is not supported yet", v);
                return -1;
            }
    switch (f->kind) {
    case SP_CONF_STR:
        free(*(char **)at);
        *(char **)at = strdup(v);
        return 0;
    case SP_CONF_INT: {
        char *end;
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (*v == '\0' || *end || errno) break;
        *(int64_t *)at = x;
        return 0;
    }
    case SP_CONF_SIZE:
        if (sp_parse_size(v, (uint64_t *)at)) break;
        return 0;
    case SP_CONF_DURATION:
        if (sp_parse_duration(v, (uint64_t *)at)) break;
        return 0;
    case SP_CONF_BOOL:
        if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on"))
            *(int *)at = 1;
        else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off"))
            *(int *)at = 0;
        else
            break;
        return 0;
    case SP_CONF_ENUM:
        for (int i = 0; f->choices[i]; i++)
            if (strcmp(f->choices[i], v) == 0) {
                *(int *)at = i;
                return 0;
            }
        {
            char list[256] = "";
            for (int i = 0; f->choices[i]; i++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? " | " : "",
                         f->choices[i]);
            sp_conf_error(err, line, key, "\"%s\" is not one of: %s", v, list);
        }
        return -1;
    case SP_CONF_STRLIST: {
        sp_strlist *l = (sp_strlist *)at;
        l->v = sp_realloc(l->v, (l->n + 1) * sizeof *l->v);
        l->v[l->n++] = strdup(v);
        return 0;
    }
    case SP_CONF_MAP:
        break;
    }
    sp_conf_error(err, line, key, "\"%s\" is not %s", v, sp_conf_kind_name(f->kind));
    return -1;
}

static void sp_conf_free_field(void *dst, const sp_conf_field *f)
{
    char *at = (char *)dst + f->offset;
    if (f->kind == SP_CONF_STR) {
        free(*(char **)at);
        *(char **)at = NULL;
    } else if (f->kind == SP_CONF_STRLIST) {
        sp_strlist *l = (sp_strlist *)at;
        for (size_t i = 0; i < l->n; i++)
            free(l->v[i]);
        free(l->v);
        l->v = NULL;
        l->n = 0;
    } else if (f->kind == SP_CONF_MAP) {
        sp_kvlist *l = (sp_kvlist *)at;
        for (size_t i = 0; i < l->n; i++)
            free(l->k[i]), free(l->v[i]);
        free(l->k);
        free(l->v);
        l->k = l->v = NULL;
        l->n = 0;
    }
}

int sp_conf_defaults(void *dst, const sp_conf_field *fields, sp_conf_err *err)
{
    for (const sp_conf_field *f = fields; f->key; f++) {
        sp_conf_free_field(dst, f);
        if (f->def && sp_conf_set_scalar(dst, f, f->def, 0, f->key, err)) return -1;
    }
    return 0;
}

void sp_conf_free(void *dst, const sp_conf_field *fields)
{
    for (const sp_conf_field *f = fields; f->key; f++)
        sp_conf_free_field(dst, f);
}

int sp_conf_apply(void *dst, const sp_conf_field *fields, const sp_node *n, const char *section,
                  const char *const *extra_keys, sp_conf_err *err)
{
    if (sp_conf_defaults(dst, fields, err)) return -1;
    if (!n) return 0;
    if (n->type != SP_NODE_MAP) {
        sp_conf_error(err, n->line, section, "must be a map");
        return -1;
    }
    for (sp_node *c = n->child; c; c = c->next) {
        char key[160];
        snprintf(key, sizeof key, "%s%s%s", section ? section : "", section ? "." : "", c->key);
        const sp_conf_field *f = fields;
        while (f->key && strcmp(f->key, c->key) != 0)
            f++;
        if (!f->key) {
            int extra = 0;
            for (const char *const *e = extra_keys; e && *e; e++)
                if (strcmp(*e, c->key) == 0) extra = 1;
            if (extra) continue;
            sp_conf_error(err, c->line, key, "unknown key");
            return -1;
        }
        if (f->kind == SP_CONF_MAP) {
            if (c->type != SP_NODE_MAP) {
                sp_conf_error(err, c->line, key, "must be a map");
                return -1;
            }
            sp_kvlist *l = (sp_kvlist *)((char *)dst + f->offset);
            for (sp_node *m = c->child; m; m = m->next) {
                if (m->type != SP_NODE_SCALAR) {
                    sp_conf_error(err, m->line, key, "%s: values must be plain", m->key);
                    return -1;
                }
                l->k = sp_realloc(l->k, (l->n + 1) * sizeof *l->k);
                l->v = sp_realloc(l->v, (l->n + 1) * sizeof *l->v);
                l->k[l->n] = strdup(m->key);
                l->v[l->n++] = strdup(m->value);
            }
            continue;
        }
        if (f->kind == SP_CONF_STRLIST) {
            sp_conf_free_field(dst, f); /* a given list replaces the default */
            if (c->type == SP_NODE_SEQ) {
                for (sp_node *m = c->child; m; m = m->next) {
                    if (m->type != SP_NODE_SCALAR) {
                        sp_conf_error(err, m->line, key, "list items must be strings");
                        return -1;
                    }
                    if (sp_conf_set_scalar(dst, f, m->value, m->line, key, err)) return -1;
                }
                continue;
            }
        }
        if (c->type != SP_NODE_SCALAR) {
            sp_conf_error(err, c->line, key, "must be %s", sp_conf_kind_name(f->kind));
            return -1;
        }
        if (sp_conf_set_scalar(dst, f, c->value, c->line, key, err)) return -1;
    }
    return 0;
}

static void sp_conf_print_str(sp_buf *out, const char *s)
{
    int plain = *s != '\0';
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("._/-:@%", *p)) plain = 0;
    if (plain) {
        sp_buf_append(out, s, strlen(s));
        return;
    }
    sp_buf_putc(out, '"');
    for (const char *p = s; *p; p++) {
        if (*p == '"' || *p == '\\') sp_buf_putc(out, '\\');
        sp_buf_putc(out, *p);
    }
    sp_buf_putc(out, '"');
}

static void sp_conf_print_size(sp_buf *out, uint64_t v)
{
    static const char *u[] = {"", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    while (i < 4 && v && v % 1024 == 0)
        v /= 1024, i++;
    sp_buf_printf(out, "%llu%s", (unsigned long long)v, u[i]);
}

static void sp_conf_print_duration(sp_buf *out, uint64_t ms)
{
    if (ms % 1000 == 0)
        sp_buf_printf(out, "%llus", (unsigned long long)(ms / 1000));
    else
        sp_buf_printf(out, "%llums", (unsigned long long)ms);
}

void sp_conf_print(sp_buf *out, const void *src, const sp_conf_field *fields, int indent,
                   const char *first_prefix)
{
    int first = 1;
    for (const sp_conf_field *f = fields; f->key; f++) {
        const char *at = (const char *)src + f->offset;
        if (f->kind == SP_CONF_STR && !*(char *const *)at) continue; /* unset */
        if (first && first_prefix)
            sp_buf_printf(out, "%*s%s", indent - 2, "", first_prefix);
        else
            sp_buf_printf(out, "%*s", indent, "");
        first = 0;
        sp_buf_printf(out, "%s: ", f->key);
        /* --check output is shared in tickets and CI logs: never print credentials. */
        if (f->kind == SP_CONF_STR && (strstr(f->key, "password") || strstr(f->key, "api_key") ||
                                       strstr(f->key, "shared_key") || strstr(f->key, "secret"))) {
            SP_BUF_LIT(out, "\"<redacted>\"\n");
            continue;
        }
        switch (f->kind) {
        case SP_CONF_STR:
            sp_conf_print_str(out, *(char *const *)at);
            break;
        case SP_CONF_INT:
            sp_buf_printf(out, "%lld", (long long)*(const int64_t *)at);
            break;
        case SP_CONF_SIZE:
            sp_conf_print_size(out, *(const uint64_t *)at);
            break;
        case SP_CONF_DURATION:
            sp_conf_print_duration(out, *(const uint64_t *)at);
            break;
        case SP_CONF_BOOL:
            sp_buf_printf(out, "%s", *(const int *)at ? "true" : "false");
            break;
        case SP_CONF_ENUM:
            sp_conf_print_str(out, f->choices[*(const int *)at]);
            break;
        case SP_CONF_STRLIST: {
            const sp_strlist *l = (const sp_strlist *)at;
            SP_BUF_LIT(out, "[");
            for (size_t i = 0; i < l->n; i++) {
                if (i) SP_BUF_LIT(out, ", ");
                sp_conf_print_str(out, l->v[i]);
            }
            SP_BUF_LIT(out, "]");
            break;
        }
        case SP_CONF_MAP: {
            const sp_kvlist *l = (const sp_kvlist *)at;
            SP_BUF_LIT(out, "{");
            for (size_t i = 0; i < l->n; i++) {
                if (i) SP_BUF_LIT(out, ", ");
                sp_conf_print_str(out, l->k[i]);
                SP_BUF_LIT(out, ": ");
                /* users: {name: password}; properties: {sasl.password: ...} */
                if (!strcmp(f->key, "users") || strstr(l->k[i], "password") ||
                    strstr(l->k[i], "secret"))
                    SP_BUF_LIT(out, "\"<redacted>\"");
                else
                    sp_conf_print_str(out, l->v[i]);
            }
            SP_BUF_LIT(out, "}");
            break;
        }
        }
        SP_BUF_LIT(out, "\n");
    }
}

/* The line of key `key` in the "tls" map of `n`, else of "tls", else `fallback`. */
static int sp_conf_tls_line(const sp_node *n, const char *key, int fallback)
{
    const sp_node *map = sp_node_get(n, "tls");
    return sp_node_line(map, key, sp_node_line(n, "tls", fallback));
}

int sp_conf_tls_map(const sp_kvlist *tls, const sp_conf_tls *t, const sp_node *n, int fallback_line,
                    sp_conf_err *err)
{
    for (size_t i = 0; i < tls->n; i++) {
        const char *key = tls->k[i], *v = tls->v[i];
        char **dst = !strcmp(key, "ca_file")       ? t->ca_file
                     : !strcmp(key, "cert")        ? t->cert
                     : !strcmp(key, "key")         ? t->key
                     : !strcmp(key, "server_name") ? t->server_name
                                                   : NULL;
        if (dst) {
            free(*dst);
            *dst = strdup(v);
        } else if (!strcmp(key, "verify") && t->verify &&
                   (!strcmp(v, "true") || !strcmp(v, "false"))) {
            *t->verify = !strcmp(v, "true");
        } else {
            sp_conf_error(err, sp_conf_tls_line(n, key, fallback_line), "tls",
                          "%s: expected ca_file, cert, key%s or verify (true|false)", key,
                          t->server_name ? ", server_name" : "");
            return -1;
        }
    }
    return 0;
}
