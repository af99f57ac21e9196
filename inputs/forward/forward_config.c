/* The forward input, settings: the field table, their check, the TLS context. */
#include <stdio.h>
#include <string.h>

#include "forward_int.h"

static const char *const sp_fwd_config_ack_modes[] = {"accepted", "durable", "delivered", NULL};

const sp_conf_field sp_fwd_config_fields[] = {
    {"listen", SP_CONF_STR, offsetof(sp_forward_conf, listen), "127.0.0.1:24224",
     "host:port, [v6]:port or unix:///path.sock (mode 0660)"},
    {"max_message_size", SP_CONF_SIZE, offsetof(sp_forward_conf, max_message_size), "16MiB",
     "largest frame; a larger one closes that connection"},
    {"max_line_size", SP_CONF_SIZE, offsetof(sp_forward_conf, max_line_size), "1MiB",
     "longest joined partial line; longer lines are split (counted)"},
    {"max_connections", SP_CONF_INT, offsetof(sp_forward_conf, max_connections), "1024",
     "connections beyond this are closed at accept (counted)"},
    {"idle_timeout", SP_CONF_DURATION, offsetof(sp_forward_conf, idle_timeout), "300s",
     "a connection silent this long, or a frame incomplete this long, is closed"},
    {"partial_timeout", SP_CONF_DURATION, offsetof(sp_forward_conf, partial_timeout), "5s",
     "a partial line whose last piece has not come by then is shipped as it is (flagged)"},
    {"ack", SP_CONF_ENUM, offsetof(sp_forward_conf, ack), "accepted",
     "when a client asks for an ack: accepted (in memory) | durable (spooled, fsynced) | "
     "delivered (every matching output confirmed it)",
     sp_fwd_config_ack_modes},
    {"pending_frames_limit", SP_CONF_SIZE, offsetof(sp_forward_conf, pending_frames_limit), "64MiB",
     "memory for incomplete frames across all connections; over it, the connection holding the "
     "frame that grew is closed (counted frame_memory)"},
    {"ack_spin_us", SP_CONF_INT, offsetof(sp_forward_conf, ack_spin_us), "100",
     "after sending acks, poll this many microseconds for the client's next frame instead of "
     "sleeping; backs off by itself while spins catch nothing (0: off)"},
    {"shared_key", SP_CONF_STR, offsetof(sp_forward_conf, shared_key), NULL,
     "require the Forward handshake (HELO/PING/PONG) with this key before any record"},
    {"self_hostname", SP_CONF_STR, offsetof(sp_forward_conf, self_hostname), NULL,
     "the server name in the handshake's PONG (default: the host name)"},
    {"users", SP_CONF_MAP, offsetof(sp_forward_conf, users), NULL,
     "with shared_key, also require one of these users: {username: password}"},
    {"tls", SP_CONF_MAP, offsetof(sp_forward_conf, tls), NULL,
     "serve TLS on this listener: {cert: PEM chain file, key: PEM key file}"},
    {"metadata_path", SP_CONF_STR, offsetof(sp_forward_conf, metadata_path),
     "/var/lib/docker/containers",
     "Docker's containers directory: image and labels by container_id, if readable (\"\" = off)"},
    {"docker_socket", SP_CONF_STR, offsetof(sp_forward_conf, docker_socket), NULL,
     "Docker's API socket (e.g. /var/run/docker.sock): image and labels for containers not "
     "found under metadata_path"},
    SP_CONF_END};

/* The TLS context of the tls map; NULL with `why` filled when the map or its files are wrong. */
sp_fwd_tls_ctx *sp_fwd_config_tls_ctx(const sp_forward_conf *conf, char *why, size_t len)
{
    const char *cert = NULL, *key = NULL;
    for (size_t i = 0; i < conf->tls.n; i++) {
        if (!strcmp(conf->tls.k[i], "cert")) {
            cert = conf->tls.v[i];
        } else if (!strcmp(conf->tls.k[i], "key")) {
            key = conf->tls.v[i];
        } else {
            snprintf(why, len, "unknown key \"%s\" (cert, key)", conf->tls.k[i]);
            return NULL;
        }
    }
    if (!cert || !key) {
        snprintf(why, len, "needs both cert and key (PEM files)");
        return NULL;
    }
    return sp_fwd_tls_ctx_new(cert, key, why, len);
}

int sp_fwd_config_check(sp_input *in, const sp_node *n, sp_conf_err *err)
{
    sp_forward_conf *conf = in->conf;
    in->needs_spool = conf->ack == SP_ACK_DURABLE;
    sp_addr a;
    const char *why;
    if (sp_addr_parse(conf->listen, &a, &why)) {
        sp_conf_error(err, sp_node_line(n, "listen", in->line), "listen", "\"%s\": %s",
                      conf->listen, why);
        return -1;
    }
    if (conf->ack_spin_us < 0 || conf->ack_spin_us > 10000) {
        sp_conf_error(err, in->line, "ack_spin_us", "must be between 0 and 10000");
        return -1;
    }
    if (conf->shared_key && !*conf->shared_key) {
        sp_conf_error(err, sp_node_line(n, "shared_key", in->line), "shared_key",
                      "must not be empty");
        return -1;
    }
    if ((conf->users.n || conf->self_hostname) && !conf->shared_key) {
        const char *k = conf->users.n ? "users" : "self_hostname";
        sp_conf_error(err, sp_node_line(n, k, in->line), k, "needs shared_key");
        return -1;
    }
    if (conf->tls.n) {
        char why[512];
        sp_fwd_tls_ctx *ctx = sp_fwd_config_tls_ctx(conf, why, sizeof why);
        if (!ctx) {
            sp_conf_error(err, sp_node_line(n, "tls", in->line), "tls", "%s", why);
            return -1;
        }
        sp_fwd_tls_ctx_free(ctx);
    }
    if (conf->max_connections < 1 || conf->max_message_size < 64) {
        sp_conf_error(err, in->line, "max_connections", "limits must be positive");
        return -1;
    }
    return 0;
}
