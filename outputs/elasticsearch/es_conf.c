/* The elasticsearch output's settings and their check (README, "elasticsearch"). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "es.h"

static const char *const sp_es_compressions[] = {"none", "gzip", NULL};

const sp_conf_field sp_es_fields[] = {
    {"url", SP_CONF_STRLIST, offsetof(sp_es_conf, url), "http://127.0.0.1:9200",
     "node URL, or a list (round robin; a failing node is skipped for node_cooldown)"},
    {"index", SP_CONF_STR, offsetof(sp_es_conf, index), "logs-%Y.%m.%d",
     "index name; strftime on the record's UTC time"},
    {"data_stream", SP_CONF_STR, offsetof(sp_es_conf, data_stream), NULL,
     "write to this data stream instead of `index`"},
    {"pipeline", SP_CONF_STR, offsetof(sp_es_conf, pipeline), NULL, "ingest pipeline"},
    {"user", SP_CONF_STR, offsetof(sp_es_conf, user), NULL, "basic auth user"},
    {"password", SP_CONF_STR, offsetof(sp_es_conf, password), NULL, "basic auth password"},
    {"api_key", SP_CONF_STR, offsetof(sp_es_conf, api_key), NULL,
     "API key (base64 id:key), sent as `Authorization: ApiKey ...`"},
    {"compression", SP_CONF_ENUM, offsetof(sp_es_conf, compression), "none",
     "request body compression: none | gzip", sp_es_compressions},
    {"bulk_max_bytes", SP_CONF_SIZE, offsetof(sp_es_conf, bulk_max_bytes), "5MiB",
     "largest bulk body before compression; a larger chunk is sent as several requests"},
    {"timeout", SP_CONF_DURATION, offsetof(sp_es_conf, timeout), "30s",
     "one request, connect to last byte"},
    {"connect_timeout", SP_CONF_DURATION, offsetof(sp_es_conf, connect_timeout), "5s",
     "TCP and TLS connect"},
    {"tls_ca_file", SP_CONF_STR, offsetof(sp_es_conf, tls_ca_file), NULL,
     "PEM CA bundle to verify the server (default: the system's)"},
    {"tls_cert", SP_CONF_STR, offsetof(sp_es_conf, tls_cert), NULL, "PEM client certificate"},
    {"tls_key", SP_CONF_STR, offsetof(sp_es_conf, tls_key), NULL, "PEM client key"},
    {"tls_verify", SP_CONF_BOOL, offsetof(sp_es_conf, tls_verify), "true",
     "verify the server's certificate and host name"},
    {"tls", SP_CONF_MAP, offsetof(sp_es_conf, tls), NULL,
     "the tls_* settings as a map: {ca_file, cert, key, verify}"},
    {"dead_letter_index", SP_CONF_STR, offsetof(sp_es_conf, dead_letter_index), NULL,
     "index for rejected documents (wrapped with the error)"},
    {"dead_letter_file", SP_CONF_STR, offsetof(sp_es_conf, dead_letter_file), NULL,
     "file that rejected documents are appended to (NDJSON)"},
    {"node_cooldown", SP_CONF_DURATION, offsetof(sp_es_conf, node_cooldown), "10s",
     "how long a failing node is skipped when others are configured"},
    SP_CONF_END};

int sp_es_check(sp_output *o, const sp_node *n, sp_conf_err *err)
{
    sp_es_conf *c = o->conf;
#define SP_LINE(key) sp_node_line(n, key, o->line)
    /* tls: {ca_file, cert, key, verify} fills the flat tls_* settings. */
    sp_conf_tls tls = {&c->tls_ca_file, &c->tls_cert, &c->tls_key, NULL, &c->tls_verify};
    if (sp_conf_tls_map(&c->tls, &tls, n, o->line, err)) return -1;
    if (c->url.n == 0) {
        sp_conf_error(err, SP_LINE("url"), "url", "at least one URL is required");
        return -1;
    }
    for (size_t i = 0; i < c->url.n; i++) {
        const char *u = c->url.v[i];
        if (strncmp(u, "http://", 7) && strncmp(u, "https://", 8)) {
            sp_conf_error(err, SP_LINE("url"), "url", "\"%s\": must start with http:// or https://",
                          u);
            return -1;
        }
        if (strchr(u, '?') || strchr(u, '#') || !u[strncmp(u, "http://", 7) ? 8 : 7]) {
            sp_conf_error(err, SP_LINE("url"), "url",
                          "\"%s\": expected scheme://host[:port][/path]", u);
            return -1;
        }
    }
    if (c->data_stream && sp_node_get(n, "index")) {
        sp_conf_error(err, SP_LINE("data_stream"), "data_stream",
                      "set either `index` or `data_stream`, not both");
        return -1;
    }
    const char *target = c->data_stream ? c->data_stream : c->index;
    if (!target || !*target || strlen(target) > 200) {
        sp_conf_error(err, SP_LINE(c->data_stream ? "data_stream" : "index"),
                      c->data_stream ? "data_stream" : "index", "must be 1 to 200 characters");
        return -1;
    }
    if (c->dead_letter_index && c->dead_letter_file) {
        sp_conf_error(err, SP_LINE("dead_letter_file"), "dead_letter_file",
                      "set either `dead_letter_index` or `dead_letter_file`, not both");
        return -1;
    }
    if (c->api_key && (c->user || c->password)) {
        sp_conf_error(err, SP_LINE("api_key"), "api_key", "use either api_key or user/password");
        return -1;
    }
    if (!c->user != !c->password) {
        sp_conf_error(err, SP_LINE(c->user ? "user" : "password"), c->user ? "user" : "password",
                      "user and password go together");
        return -1;
    }
    if (!c->tls_cert != !c->tls_key) {
        sp_conf_error(err, SP_LINE(c->tls_cert ? "tls_cert" : "tls_key"),
                      c->tls_cert ? "tls_cert" : "tls_key", "tls_cert and tls_key go together");
        return -1;
    }
    const char *files[] = {"tls_ca_file", c->tls_ca_file, "tls_cert",
                           c->tls_cert,   "tls_key",      c->tls_key};
    for (int i = 0; i < 6; i += 2)
        if (files[i + 1] && access(files[i + 1], R_OK)) {
            sp_conf_error(err, SP_LINE(files[i]), files[i], "\"%s\": %s", files[i + 1],
                          strerror(errno));
            return -1;
        }
    if (c->bulk_max_bytes < 1024 || c->bulk_max_bytes > (1u << 30)) {
        sp_conf_error(err, SP_LINE("bulk_max_bytes"), "bulk_max_bytes",
                      "must be between 1KiB and 1GiB");
        return -1;
    }
    if (c->timeout < 100 || c->connect_timeout < 100) {
        sp_conf_error(err, SP_LINE("timeout"), "timeout", "timeouts must be at least 100ms");
        return -1;
    }
#undef SP_LINE
    return 0;
}
