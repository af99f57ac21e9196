/*
 * Configuration: a YAML file (or quick flags turned into YAML) parsed into typed structs through
 * declarative field tables. Every component declares its settings once, with a default and help
 * text; parsing, validation, error messages and `--check` output all come from that table.
 */
#ifndef SP_CONFIG_H
#define SP_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "slice.h"

typedef enum {
    SP_CONF_STR,      /* char * */
    SP_CONF_INT,      /* int64_t */
    SP_CONF_SIZE,     /* uint64_t bytes: 512, 64KiB, 1MiB, 4GiB, 1MB */
    SP_CONF_DURATION, /* uint64_t milliseconds: 500ms, 10s, 5m, 1h */
    SP_CONF_BOOL,     /* int */
    SP_CONF_ENUM,     /* int: index into `choices` */
    SP_CONF_STRLIST,  /* sp_strlist: a string or a list of strings */
    SP_CONF_MAP,      /* sp_kvlist: a map of scalar strings (passed through) */
} sp_conf_kind;

typedef struct {
    char **v;
    size_t n;
} sp_strlist;

typedef struct {
    char **k;
    char **v;
    size_t n;
} sp_kvlist;

/** One setting: its key, type, where it lives in the struct, default (as YAML text) and help. */
typedef struct {
    const char *key;
    sp_conf_kind kind;
    size_t offset;
    const char *def; /* NULL: no default (unset) */
    const char *help;
    const char *const *choices; /* SP_CONF_ENUM: NULL-terminated */
    /** Values accepted by the parser but not built yet: rejected as "not supported yet". */
    const char *const *unsupported;
} sp_conf_field;

#define SP_CONF_END                                                                                \
    {                                                                                              \
        NULL, 0, 0, NULL, NULL, NULL, NULL                                                         \
    }

/** A parsed YAML node with the line it came from, for file:line error messages. */
typedef struct sp_node sp_node;
typedef enum { SP_NODE_SCALAR, SP_NODE_MAP, SP_NODE_SEQ } sp_node_type;
struct sp_node {
    sp_node_type type;
    int line;
    char *value;    /* scalar, after ${VAR} expansion */
    char *key;      /* when a map member */
    sp_node *child; /* first member (map/seq) */
    sp_node *next;  /* next sibling */
};

/** Where errors are reported: the file name and the first error. */
typedef struct {
    const char *file;
    char msg[512];
} sp_conf_err;

/** Parses YAML text into a node tree; NULL and an error on failure. */
sp_node *sp_yaml_parse(const char *text, size_t len, sp_conf_err *err);
void sp_node_free(sp_node *n);
/** Looks up a member of a map node. */
sp_node *sp_node_get(const sp_node *map, const char *key);
/** The line of member `key` of `map` (for an error about it), or `fallback` when it is absent
 * (or `map` is NULL): `sp_conf_error(err, sp_node_line(n, "listen", in->line), "listen", ...)`. */
int sp_node_line(const sp_node *map, const char *key, int fallback);

/**
 * Fills `dst` from the map node `n` through `fields`: defaults first, then the values given.
 * Keys in `n` that are neither in `fields` nor in `extra_keys` (NULL-terminated) are errors.
 * `section` prefixes key names in messages (e.g. "outputs[0]"). Returns 0 or -1 with err set.
 */
int sp_conf_apply(void *dst, const sp_conf_field *fields, const sp_node *n, const char *section,
                  const char *const *extra_keys, sp_conf_err *err);
/** Sets defaults only. */
int sp_conf_defaults(void *dst, const sp_conf_field *fields, sp_conf_err *err);
/** Frees strings and lists a table owns in `dst`. */
void sp_conf_free(void *dst, const sp_conf_field *fields);
/** Appends the resolved values as YAML, indented by `indent` spaces. */
void sp_conf_print(sp_buf *out, const void *src, const sp_conf_field *fields, int indent,
                   const char *first_prefix);

/** Value parsers shared with the CLI. 0 on success, -1 when the text is not such a value. */
int sp_parse_size(const char *s, uint64_t *out);
int sp_parse_duration(const char *s, uint64_t *out_ms);

/** Records an error "file:line: key: message" unless one is recorded already. */
void sp_conf_error(sp_conf_err *err, int line, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/** Where the keys of a `tls:` map land: the plugin's flat tls_* settings. A NULL target is a key
 * the plugin does not take (Elasticsearch has no server_name). */
typedef struct {
    char **ca_file;
    char **cert;
    char **key;
    char **server_name;
    int *verify;
} sp_conf_tls;

/**
 * Fills the targets of `t` from the map `tls` (the SP_CONF_MAP setting "tls" of the map node `n`):
 * strings are copied over what the flat key set, verify must be true or false. An unknown key or
 * a bad verify is "file:line: tls: KEY: expected ca_file, cert, ..." at the key's line (the line
 * of "tls", else `fallback_line`). Returns 0 or -1 with err set (docs/architecture.md, "Config").
 */
int sp_conf_tls_map(const sp_kvlist *tls, const sp_conf_tls *t, const sp_node *n, int fallback_line,
                    sp_conf_err *err);

#endif
