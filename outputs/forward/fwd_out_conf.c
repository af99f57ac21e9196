/* The forward output's settings and their validation (README, config reference). */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fwd_out.h"

static const char *const sp_fwdout_compressions[] = {"none", "gzip", NULL};

const sp_conf_field sp_fwdout_fields[] = {
    {"servers", SP_CONF_STRLIST, offsetof(sp_fwdout_conf, servers), "127.0.0.1:24224",
     "host:port of each server (several: round robin by chunk, with failover)"},
    {"shared_key", SP_CONF_STR, offsetof(sp_fwdout_conf, shared_key), NULL,
     "Forward handshake key (HELO/PING/PONG); the servers must have the same"},
    {"self_hostname", SP_CONF_STR, offsetof(sp_fwdout_conf, self_hostname), NULL,
     "the name sent in PING (default: this host's name)"},
    {"username", SP_CONF_STR, offsetof(sp_fwdout_conf, username), NULL,
     "user for the server's user authentication (with shared_key)"},
    {"password", SP_CONF_STR, offsetof(sp_fwdout_conf, password), NULL, "that user's password"},
    {"tls", SP_CONF_MAP, offsetof(sp_fwdout_conf, tls), NULL,
     "TLS on: {ca_file, verify, cert, key, server_name}"},
    {"tls_ca_file", SP_CONF_STR, offsetof(sp_fwdout_conf, tls_ca_file), NULL,
     "PEM CA bundle the servers' certificates are checked against (default: the system's)"},
    {"tls_cert", SP_CONF_STR, offsetof(sp_fwdout_conf, tls_cert), NULL, "PEM client certificate"},
    {"tls_key", SP_CONF_STR, offsetof(sp_fwdout_conf, tls_key), NULL, "PEM client key"},
    {"tls_server_name", SP_CONF_STR, offsetof(sp_fwdout_conf, tls_server_name), NULL,
     "name checked in the server certificate and sent as SNI (default: the server's host)"},
    {"tls_verify", SP_CONF_BOOL, offsetof(sp_fwdout_conf, tls_verify), "true",
     "check the server certificate and its name"},
    {"compression", SP_CONF_ENUM, offsetof(sp_fwdout_conf, compression), "none",
     "none | gzip (CompressedPackedForward)", sp_fwdout_compressions},
    {"require_ack", SP_CONF_BOOL, offsetof(sp_fwdout_conf, require_ack), "true",
     "a chunk is delivered when the server acks it (false: once written to the socket)"},
    {"ack_timeout", SP_CONF_DURATION, offsetof(sp_fwdout_conf, ack_timeout), "30s",
     "no ack by then: the connection is closed and its chunks retried"},
    {"connect_timeout", SP_CONF_DURATION, offsetof(sp_fwdout_conf, connect_timeout), "5s",
     "TCP connect, TLS and the handshake together"},
    {"reconnect_min", SP_CONF_DURATION, offsetof(sp_fwdout_conf, reconnect_min), "500ms",
     "first reconnect backoff of a server (then doubling, up to retry_max, with jitter)"},
    {"gzip_level", SP_CONF_INT, offsetof(sp_fwdout_conf, gzip_level), "1",
     "1 (fastest) .. 9 (smallest)"},
    {"encode_threads", SP_CONF_INT, offsetof(sp_fwdout_conf, encode_threads), "2",
     "chunks encoded into frames at once on libuv's thread pool (0: on the event loop)"},
    SP_CONF_END};

int sp_fwdout_split_addr(const char *s, char *host, size_t hostcap, int *port, const char **why)
{
    const char *p, *h = s;
    size_t hl;
    *port = 24224;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || (close[1] && close[1] != ':')) {
            *why = "expected [ipv6]:port";
            return -1;
        }
        h = s + 1;
        hl = (size_t)(close - h);
        p = close[1] ? close + 2 : NULL;
    } else {
        const char *colon = strchr(s, ':');
        if (colon && strchr(colon + 1, ':')) {
            *why = "an IPv6 address goes in brackets: [addr]:port";
            return -1;
        }
        hl = colon ? (size_t)(colon - s) : strlen(s);
        p = colon ? colon + 1 : NULL;
    }
    if (hl == 0 || hl >= hostcap) {
        *why = hl ? "host name too long" : "missing host";
        return -1;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    if (p) {
        char *end;
        long pn = strtol(p, &end, 10);
        if (!*p || *end || pn < 1 || pn > 65535) {
            *why = "bad port (1..65535)";
            return -1;
        }
        *port = (int)pn;
    }
    return 0;
}

int sp_fwdout_check(sp_output *o, const sp_node *n, sp_conf_err *err)
{
    sp_fwdout_conf *c = o->conf;
    sp_node *k;
#define SP_LINE(key) ((k = sp_node_get(n, key)) ? k->line : o->line)
    sp_conf_tls tls = {&c->tls_ca_file, &c->tls_cert, &c->tls_key, &c->tls_server_name,
                       &c->tls_verify};
    if (sp_conf_tls_map(&c->tls, &tls, n, o->line, err)) return -1;
    c->tls_on = sp_node_get(n, "tls") || c->tls_ca_file || c->tls_cert || c->tls_server_name ||
                sp_node_get(n, "tls_verify");
    if (c->servers.n == 0) {
        sp_conf_error(err, SP_LINE("servers"), "servers", "at least one server is required");
        return -1;
    }
    if (c->servers.n > 64) {
        sp_conf_error(err, SP_LINE("servers"), "servers", "at most 64 servers");
        return -1;
    }
    for (size_t i = 0; i < c->servers.n; i++) {
        char host[256];
        int port;
        const char *why;
        if (sp_fwdout_split_addr(c->servers.v[i], host, sizeof host, &port, &why)) {
            sp_conf_error(err, SP_LINE("servers"), "servers", "\"%s\": %s", c->servers.v[i], why);
            return -1;
        }
    }
    if (c->shared_key && !*c->shared_key) {
        sp_conf_error(err, SP_LINE("shared_key"), "shared_key", "must not be empty");
        return -1;
    }
    if (!c->username != !c->password) {
        const char *key = c->username ? "username" : "password";
        sp_conf_error(err, SP_LINE(key), key, "username and password go together");
        return -1;
    }
    if (c->username && !c->shared_key) {
        sp_conf_error(err, SP_LINE("username"), "username",
                      "user authentication is part of the handshake: set shared_key too");
        return -1;
    }
    if (c->self_hostname && !*c->self_hostname) {
        sp_conf_error(err, SP_LINE("self_hostname"), "self_hostname", "must not be empty");
        return -1;
    }
    if (!c->tls_cert != !c->tls_key) {
        const char *key = c->tls_cert ? "tls_cert" : "tls_key";
        sp_conf_error(err, SP_LINE(sp_node_get(n, "tls") ? "tls" : key), "tls",
                      "cert and key go together");
        return -1;
    }
    const char *files[] = {"ca_file", c->tls_ca_file, "cert", c->tls_cert, "key", c->tls_key};
    for (int i = 0; i < 6; i += 2)
        if (files[i + 1] && access(files[i + 1], R_OK)) {
            sp_conf_error(err, SP_LINE(sp_node_get(n, "tls") ? "tls" : "tls_ca_file"), "tls",
                          "%s \"%s\": %s", files[i], files[i + 1], strerror(errno));
            return -1;
        }
    if (c->ack_timeout < 100 || c->connect_timeout < 100) {
        sp_conf_error(err, SP_LINE(c->ack_timeout < 100 ? "ack_timeout" : "connect_timeout"),
                      c->ack_timeout < 100 ? "ack_timeout" : "connect_timeout",
                      "must be at least 100ms");
        return -1;
    }
    if (c->reconnect_min < 10) {
        sp_conf_error(err, SP_LINE("reconnect_min"), "reconnect_min", "must be at least 10ms");
        return -1;
    }
    if (c->gzip_level < 1 || c->gzip_level > 9) {
        sp_conf_error(err, SP_LINE("gzip_level"), "gzip_level", "must be between 1 and 9");
        return -1;
    }
    if (c->encode_threads < 0 || c->encode_threads > SP_FWDOUT_ENCODE_THREADS_MAX) {
        sp_conf_error(err, SP_LINE("encode_threads"), "encode_threads", "must be between 0 and %d",
                      SP_FWDOUT_ENCODE_THREADS_MAX);
        return -1;
    }
#undef SP_LINE
    return 0;
}
