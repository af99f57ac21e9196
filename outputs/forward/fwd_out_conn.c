/*
 * One connection of the forward output: TCP connect, TLS (OpenSSL through memory BIOs, so libuv
 * does all socket I/O), the client side of the shared-key handshake (HELO in, PING out, PONG in,
 * the server's digest checked), frames out and acks in. docs/forward_output.md.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "digest.h"
#include "fwd_out.h"
#include "mp.h"

typedef struct {
    uv_write_t req;
    sp_fwdout_conn *c;
    sp_fwdout_frame_t *f; /* require_ack false: answered when this write completes */
    char *base;
    size_t cap; /* an encoded frame's buffer (kept for the next frame), or 0 */
} sp_fwdout_write;

static const char *sp_fwdout_tls_reason(void)
{
    static char buf[256];
    unsigned long e = ERR_get_error();
    if (!e) return "TLS error";
    ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return buf;
}

int sp_fwdout_tls_ctx(sp_fwdout *fo, char *err, size_t errlen)
{
    sp_fwdout_conf *c = fo->conf;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) goto fail;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (c->tls_ca_file) {
        if (SSL_CTX_load_verify_locations(ctx, c->tls_ca_file, NULL) != 1) {
            snprintf(err, errlen, "ca_file %s: %s", c->tls_ca_file, sp_fwdout_tls_reason());
            goto fail_ctx;
        }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        snprintf(err, errlen, "the system CA store: %s", sp_fwdout_tls_reason());
        goto fail_ctx;
    }
    if (c->tls_cert) {
        if (SSL_CTX_use_certificate_chain_file(ctx, c->tls_cert) != 1) {
            snprintf(err, errlen, "cert %s: %s", c->tls_cert, sp_fwdout_tls_reason());
            goto fail_ctx;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, c->tls_key, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
            snprintf(err, errlen, "key %s: %s", c->tls_key, sp_fwdout_tls_reason());
            goto fail_ctx;
        }
    }
    SSL_CTX_set_verify(ctx, c->tls_verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    fo->ssl_ctx = ctx;
    return 0;
fail_ctx:
    SSL_CTX_free(ctx);
    return -1;
fail:
    snprintf(err, errlen, "%s", sp_fwdout_tls_reason());
    return -1;
}

/* ---- writing ---- */

static void sp_fwdout_write_cb(uv_write_t *req, int status)
{
    sp_fwdout_write *w = (sp_fwdout_write *)req;
    sp_fwdout_conn *c = w->c;
    sp_fwdout *fo = c->fo;
    /* A fresh 1 MiB buffer per frame is an mmap and 256 page faults while it is encoded into:
     * a few are kept for the next frames. */
    if (w->cap && fo->nspare < SP_FWDOUT_SPARE)
        fo->spare[fo->nspare++] = (sp_buf){.base = w->base, .len = 0, .cap = w->cap};
    else
        free(w->base);
    if (status == 0 && w->f) {
        w->f->written = 1;
        sp_fwdout_frame_done(c->fo, w->f, 1);
    }
    free(w);
    if (status < 0 && status != UV_ECANCELED && !c->closing && c->srv)
        sp_fwdout_server_down(c->srv, SP_FWDOUT_E_CLOSED, "write: %s", uv_strerror(status));
}

/* Writes `base` (taken over) to the socket. */
static int sp_fwdout_write_raw(sp_fwdout_conn *c, char *base, size_t len, size_t cap,
                               sp_fwdout_frame_t *f)
{
    sp_fwdout_write *w = sp_malloc(sizeof *w);
    w->c = c;
    w->f = f;
    w->base = base;
    w->cap = cap;
    uv_buf_t b = uv_buf_init(base, (unsigned)len);
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, sp_fwdout_write_cb);
    if (rc) {
        free(base);
        free(w);
        if (c->srv) sp_fwdout_server_down(c->srv, SP_FWDOUT_E_CLOSED, "write: %s", uv_strerror(rc));
        return -1;
    }
    return 0;
}

/* The ciphertext TLS produced, to the socket. */
static int sp_fwdout_tls_flush(sp_fwdout_conn *c, sp_fwdout_frame_t *f)
{
    size_t n = (size_t)BIO_ctrl_pending(c->wbio);
    if (!n) {
        if (f) { /* nothing to write (cannot be: a frame is never empty) */
            f->written = 1;
            sp_fwdout_frame_done(c->fo, f, 1);
        }
        return 0;
    }
    char *base = sp_malloc(n);
    int got = BIO_read(c->wbio, base, (int)n);
    if (got <= 0) {
        free(base);
        return 0;
    }
    return sp_fwdout_write_raw(c, base, (size_t)got, 0, f);
}

/* Plaintext out: through TLS when it is on. `data` is taken over when `own`. */
static int sp_fwdout_send(sp_fwdout_conn *c, char *data, size_t len, int own, size_t cap,
                          sp_fwdout_frame_t *f)
{
    if (!c->ssl) {
        char *base = data;
        if (!own) {
            base = sp_malloc(len);
            memcpy(base, data, len);
        }
        return sp_fwdout_write_raw(c, base, len, own ? cap : 0, f);
    }
    int rc = SSL_write(c->ssl, data, (int)len);
    if (own) free(data);
    if (rc <= 0) {
        if (c->srv)
            sp_fwdout_server_down(c->srv, SP_FWDOUT_E_TLS, "TLS write: %s", sp_fwdout_tls_reason());
        return -1;
    }
    return sp_fwdout_tls_flush(c, f);
}

int sp_fwdout_conn_send(sp_fwdout_conn *c, sp_buf *data, sp_fwdout_frame_t *f)
{
    sp_list_insert_tail(&c->frames, &f->link);
    f->deadline_ms = sp_fwdout_now(c->fo) + c->fo->conf->ack_timeout;
    int noack = !c->fo->conf->require_ack;
    if (c->ssl) return sp_fwdout_send(c, data->base, data->len, 0, 0, noack ? f : NULL);
    /* Plain: the encoded frame itself is written (no copy); the next one gets a new buffer. */
    char *base = data->base;
    size_t len = data->len, cap = data->cap;
    *data = (sp_buf){0};
    return sp_fwdout_send(c, base, len, 1, cap, noack ? f : NULL);
}

/* ---- closing ---- */

static void sp_fwdout_closed_cb(uv_handle_t *h)
{
    sp_fwdout_conn *c = h->data;
    sp_fwdout *fo = c->fo;
    /* Frames still waiting: not delivered, retried (the delivery is answered once). */
    sp_list frames = c->frames;
    if (sp_list_empty(&c->frames)) {
        sp_list_init(&frames);
    } else {
        frames.next->prev = &frames;
        frames.prev->next = &frames;
    }
    sp_list_init(&c->frames);
    while (!sp_list_empty(&frames)) {
        sp_fwdout_frame_t *f = sp_list_entry(frames.next, sp_fwdout_frame_t, link);
        sp_fwdout_frame_done(fo, f, 0);
    }
    if (c->ssl) SSL_free(c->ssl); /* frees the BIOs too */
    sp_buf_free(&c->in);
    free(c);
    sp_fwdout_unref(fo);
}

void sp_fwdout_conn_close(sp_fwdout_conn *c)
{
    if (c->closing) return;
    c->closing = 1;
    if (c->srv && c->srv->conn == c) c->srv->conn = NULL;
    c->srv = NULL;
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_close((uv_handle_t *)&c->tcp, sp_fwdout_closed_cb);
}

void sp_fwdout_conn_tick(sp_fwdout_conn *c, uint64_t now)
{
    sp_fwdout_server *s = c->srv;
    if (!s) return;
    if (c->deadline_ms && now >= c->deadline_ms) {
        sp_fwdout_server_down(s, SP_FWDOUT_E_CONNECT,
                              "not connected within %llu ms (connect_timeout: TCP, TLS and the "
                              "handshake)",
                              (unsigned long long)c->fo->conf->connect_timeout);
        return;
    }
    if (!sp_list_empty(&c->frames)) {
        sp_fwdout_frame_t *f = sp_list_entry(c->frames.next, sp_fwdout_frame_t, link);
        if (now >= f->deadline_ms)
            sp_fwdout_server_down(s, SP_FWDOUT_E_ACK_TIMEOUT,
                                  "chunk %s: no %s within %llu ms (ack_timeout)", f->id,
                                  c->fo->conf->require_ack ? "ack" : "write",
                                  (unsigned long long)c->fo->conf->ack_timeout);
    }
}

/* ---- the handshake ---- */

static void sp_fwdout_established(sp_fwdout_conn *c)
{
    if (c->fo->conf->shared_key) {
        c->handshake = 1; /* the server speaks first: HELO */
        return;
    }
    c->deadline_ms = 0;
    sp_fwdout_server_up(c->srv);
}

static int sp_fwdout_bytes(const uint8_t **p, const uint8_t *end, sp_slice *s)
{
    sp_mp_obj o;
    if (sp_mp_read(p, end, &o) || (o.type != SP_MP_STR && o.type != SP_MP_BIN)) return -1;
    *s = o.s;
    return 0;
}

/* HELO ["HELO", {"nonce": bin, "auth": bin|str, "keepalive": bool}] → PING. */
static int sp_fwdout_helo(sp_fwdout_conn *c, const uint8_t *p, const uint8_t *end)
{
    sp_fwdout_conf *conf = c->fo->conf;
    sp_mp_obj o, k;
    sp_slice kind, nonce = SP_SLICE_NULL, auth = SP_SLICE_NULL;
    if (sp_mp_read(&p, end, &o) || o.type != SP_MP_ARRAY || o.v.n < 2 ||
        sp_fwdout_bytes(&p, end, &kind) || !SP_SLICE_IS(kind, "HELO") || sp_mp_read(&p, end, &o) ||
        o.type != SP_MP_MAP)
        return -1;
    for (uint32_t i = 0; i < o.v.n; i++) {
        if (sp_mp_read(&p, end, &k)) return -1;
        const uint8_t *vp = p;
        sp_slice v;
        if (k.type == SP_MP_STR && SP_SLICE_IS(k.s, "nonce") && !sp_fwdout_bytes(&vp, end, &v))
            nonce = v;
        else if (k.type == SP_MP_STR && SP_SLICE_IS(k.s, "auth") && !sp_fwdout_bytes(&vp, end, &v))
            auth = v;
        if (sp_mp_skip(&p, end)) return -1;
    }
    if (!nonce.base || nonce.len != 16) return -1;
    memcpy(c->nonce, nonce.base, 16);
    if (getrandom(c->salt, sizeof c->salt, 0) != (ssize_t)sizeof c->salt) return -1;
    const char *host = conf->self_hostname ? conf->self_hostname : c->fo->hostname;
    sp_slice hs = sp_slice_str(host), key = sp_slice_str(conf->shared_key);
    char digest[129], pwdigest[129] = "";
    sp_slice parts[] = {sp_slice_make(c->salt, 16), hs, sp_slice_make(c->nonce, 16), key};
    sp_sha512_hex(parts, 4, digest);
    const char *user = conf->username ? conf->username : "";
    if (auth.len && conf->username) {
        sp_slice up[] = {auth, sp_slice_str(user), sp_slice_str(conf->password)};
        sp_sha512_hex(up, 3, pwdigest);
    }
    sp_buf b = {0};
    sp_mp_put_array(&b, 6);
    sp_mp_put_str(&b, "PING", 4);
    sp_mp_put_str(&b, hs.base, hs.len);
    sp_mp_put_str(&b, (const char *)c->salt, 16);
    sp_mp_put_str(&b, digest, 128);
    sp_mp_put_str(&b, user, strlen(user));
    sp_mp_put_str(&b, pwdigest, strlen(pwdigest));
    c->handshake = 2;
    return sp_fwdout_send(c, b.base, b.len, 1, 0, NULL) ? -2 : 0;
}

/* PONG ["PONG", ok, reason, server_hostname, sha512_hex(salt + hostname + nonce + key)]. */
static int sp_fwdout_pong(sp_fwdout_conn *c, const uint8_t *p, const uint8_t *end, const char **why)
{
    sp_mp_obj o;
    sp_slice kind, reason, host, digest;
    *why = "not a PONG";
    if (sp_mp_read(&p, end, &o) || o.type != SP_MP_ARRAY || o.v.n < 5 ||
        sp_fwdout_bytes(&p, end, &kind) || !SP_SLICE_IS(kind, "PONG") || sp_mp_read(&p, end, &o) ||
        o.type != SP_MP_BOOL || sp_fwdout_bytes(&p, end, &reason) ||
        sp_fwdout_bytes(&p, end, &host) || sp_fwdout_bytes(&p, end, &digest))
        return -1;
    static char msg[300];
    if (!o.v.b) {
        snprintf(msg, sizeof msg, "the server refused us: %.*s", (int)reason.len, reason.base);
        *why = msg;
        return -1;
    }
    char want[129];
    sp_slice parts[] = {sp_slice_make(c->salt, 16), host, sp_slice_make(c->nonce, 16),
                        sp_slice_str(c->fo->conf->shared_key)};
    sp_sha512_hex(parts, 4, want);
    if (digest.len != 128 || CRYPTO_memcmp(want, digest.base, 128) != 0) {
        *why = "the server's PONG digest does not match our shared_key (a server with another "
               "key, or not the server we meant)";
        return -1;
    }
    return 0;
}

/* ---- reading ---- */

static void sp_fwdout_ack(sp_fwdout_conn *c, const uint8_t *p, const uint8_t *end)
{
    sp_mp_obj o, k, v;
    /* require_ack off: a frame is done once written. It still carries the chunk option (the
     * receiver derives record ids from it), so servers ack it: ignored, or an ack for a written
     * frame would complete a later one of the same id still being written (freed twice). */
    if (!c->fo->conf->require_ack) return;
    if (sp_mp_read(&p, end, &o) || o.type != SP_MP_MAP) return;
    for (uint32_t i = 0; i < o.v.n; i++) {
        if (sp_mp_read(&p, end, &k)) return;
        const uint8_t *vp = p;
        if (k.type == SP_MP_STR && SP_SLICE_IS(k.s, "ack") && sp_mp_read(&vp, end, &v) == 0 &&
            (v.type == SP_MP_STR || v.type == SP_MP_BIN)) {
            sp_list *it;
            sp_list_foreach(it, &c->frames)
            {
                sp_fwdout_frame_t *f = sp_list_entry(it, sp_fwdout_frame_t, link);
                if (v.s.len == SP_FWDOUT_ID_LEN && memcmp(f->id, v.s.base, v.s.len) == 0) {
                    if (c->srv) c->srv->acks++;
                    sp_fwdout_frame_done(c->fo, f, 1);
                    return;
                }
            }
            sp_out_debug(c->fo->o, "an ack for no chunk of ours: %.*s", (int)v.s.len, v.s.base);
            return;
        }
        if (sp_mp_skip(&p, end)) return;
    }
}

/* Handles the complete objects in c->in. */
static void sp_fwdout_parse(sp_fwdout_conn *c)
{
    size_t off = 0;
    while (!c->closing && off < c->in.len) {
        const uint8_t *start = (const uint8_t *)c->in.base + off, *p = start;
        const uint8_t *end = (const uint8_t *)c->in.base + c->in.len;
        int rc = sp_mp_skip(&p, end);
        if (rc == SP_MP_EAGAIN) break;
        if (rc) {
            sp_fwdout_server_down(c->srv, SP_FWDOUT_E_PROTOCOL, "the server sent bad MessagePack");
            return;
        }
        off += (size_t)(p - start);
        if (c->handshake == 1) {
            int hr = sp_fwdout_helo(c, start, p);
            if (hr == -1)
                sp_fwdout_server_down(c->srv, SP_FWDOUT_E_AUTH, "expected a HELO from the server");
            if (hr) return;
        } else if (c->handshake == 2) {
            const char *why;
            if (sp_fwdout_pong(c, start, p, &why)) {
                sp_fwdout_server_down(c->srv, SP_FWDOUT_E_AUTH, "handshake failed: %s", why);
                return;
            }
            c->handshake = 0;
            c->deadline_ms = 0;
            sp_fwdout_server_up(c->srv);
        } else if (start[0] == 0x92 && c->fo->conf->shared_key == NULL && end - start > 5 &&
                   memcmp(start + 1, "\xa4HELO", 5) == 0) {
            sp_fwdout_server_down(c->srv, SP_FWDOUT_E_AUTH,
                                  "the server asks for the shared-key handshake: set shared_key");
            return;
        } else {
            sp_fwdout_ack(c, start, p);
        }
    }
    if (c->closing) return;
    if (off) {
        memmove(c->in.base, c->in.base + off, c->in.len - off);
        c->in.len -= off;
    }
    if (c->in.len > (1u << 20)) /* acks and handshake frames are small */
        sp_fwdout_server_down(c->srv, SP_FWDOUT_E_PROTOCOL, "the server sent an oversized frame");
}

static void sp_fwdout_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    sp_fwdout_conn *c = h->data;
    sp_buf *b = c->ssl ? &c->fo->cipher : &c->in;
    if (c->ssl) b->len = 0;
    sp_buf_reserve(b, 65536);
    *buf = uv_buf_init(b->base + b->len, (unsigned)(b->cap - b->len));
}

/* Drives TLS after ciphertext came in: the handshake, then plaintext into c->in. */
static int sp_fwdout_tls_in(sp_fwdout_conn *c)
{
    if (!c->tls_done) {
        int r = SSL_do_handshake(c->ssl);
        if (r != 1) {
            int e = SSL_get_error(c->ssl, r);
            sp_fwdout_tls_flush(c, NULL);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
            long vr = SSL_get_verify_result(c->ssl);
            if (c->srv)
                sp_fwdout_server_down(c->srv, SP_FWDOUT_E_TLS, "TLS handshake: %s%s%s",
                                      sp_fwdout_tls_reason(), vr != X509_V_OK ? ": " : "",
                                      vr != X509_V_OK ? X509_verify_cert_error_string(vr) : "");
            return -1;
        }
        c->tls_done = 1;
        sp_fwdout_tls_flush(c, NULL);
        if (c->closing) return -1;
        sp_fwdout_established(c);
        if (c->closing) return -1;
    }
    for (;;) {
        sp_buf_reserve(&c->in, 65536);
        int n = SSL_read(c->ssl, c->in.base + c->in.len, (int)(c->in.cap - c->in.len));
        if (n > 0) {
            c->in.len += (size_t)n;
            continue;
        }
        int e = SSL_get_error(c->ssl, n);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) break;
        if (c->srv)
            sp_fwdout_server_down(c->srv, SP_FWDOUT_E_CLOSED, "TLS: %s",
                                  e == SSL_ERROR_ZERO_RETURN ? "the server closed the session"
                                                             : sp_fwdout_tls_reason());
        return -1;
    }
    sp_fwdout_tls_flush(c, NULL);
    return c->closing ? -1 : 0;
}

static void sp_fwdout_read_cb(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    sp_fwdout_conn *c = st->data;
    if (c->closing || !c->srv) return;
    if (n < 0) {
        sp_fwdout_server_down(c->srv, SP_FWDOUT_E_CLOSED, "%s",
                              n == UV_EOF ? "the server closed the connection"
                                          : uv_strerror((int)n));
        return;
    }
    if (n == 0) return;
    if (c->ssl) {
        BIO_write(c->rbio, buf->base, (int)n);
        if (sp_fwdout_tls_in(c)) return;
    } else {
        c->in.len += (size_t)n;
    }
    sp_fwdout_parse(c);
}

/* ---- connecting ---- */

static void sp_fwdout_connect_cb(uv_connect_t *req, int status)
{
    sp_fwdout_conn *c = req->data;
    if (c->closing || !c->srv) return;
    if (status < 0) {
        sp_fwdout_server_down(c->srv, SP_FWDOUT_E_CONNECT, "connect: %s", uv_strerror(status));
        return;
    }
    sp_fwdout_conf *conf = c->fo->conf;
    uv_tcp_nodelay(&c->tcp, 1);
    uv_tcp_keepalive(&c->tcp, 1, 30);
    uv_read_start((uv_stream_t *)&c->tcp, sp_fwdout_alloc_cb, sp_fwdout_read_cb);
    if (!c->fo->ssl_ctx) {
        sp_fwdout_established(c);
        return;
    }
    c->ssl = SSL_new(c->fo->ssl_ctx);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    SSL_set_connect_state(c->ssl);
    const char *name = conf->tls_server_name ? conf->tls_server_name : c->srv->host;
    struct in6_addr a6;
    int is_ip = inet_pton(AF_INET, name, &a6) == 1 || inet_pton(AF_INET6, name, &a6) == 1;
    if (!is_ip) SSL_set_tlsext_host_name(c->ssl, name);
    if (conf->tls_verify) {
        X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
        if (is_ip)
            X509_VERIFY_PARAM_set1_ip_asc(vp, name);
        else
            X509_VERIFY_PARAM_set1_host(vp, name, 0);
    }
    sp_fwdout_tls_in(c);
}

void sp_fwdout_conn_open(sp_fwdout_server *s, const struct sockaddr *sa)
{
    sp_fwdout *fo = s->fo;
    sp_fwdout_conn *c = sp_calloc(1, sizeof *c);
    c->fo = fo;
    c->srv = s;
    sp_list_init(&c->frames);
    c->deadline_ms = sp_fwdout_now(fo) + fo->conf->connect_timeout;
    uv_tcp_init(fo->o->loop, &c->tcp);
    c->tcp.data = c;
    c->connect.data = c;
    fo->handles++;
    s->conn = c;
    s->state = SP_FWDOUT_CONNECTING;
    s->connects++;
    int rc = uv_tcp_connect(&c->connect, &c->tcp, sa, sp_fwdout_connect_cb);
    if (rc) sp_fwdout_server_down(s, SP_FWDOUT_E_CONNECT, "connect: %s", uv_strerror(rc));
}
