/* TLS for the forward input through memory BIOs: OpenSSL never touches the socket. */
#include "forward_tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>

struct sp_fwd_tls_ctx {
    SSL_CTX *ssl;
};

struct sp_fwd_tls {
    SSL *ssl;
    BIO *in;  /* ciphertext from the socket, read by OpenSSL */
    BIO *out; /* ciphertext from OpenSSL, to the socket */
};

sp_fwd_tls_ctx *sp_fwd_tls_ctx_new(const char *cert, const char *key, char *err, size_t errlen)
{
    SSL_CTX *s = SSL_CTX_new(TLS_server_method());
    if (!s) {
        snprintf(err, errlen, "%s", sp_fwd_tls_error());
        return NULL;
    }
    SSL_CTX_set_min_proto_version(s, TLS1_2_VERSION);
    /* Acks are small and many: let one SSL_write go out as several records without waiting. */
    SSL_CTX_set_mode(s, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    const char *file = cert;
    int ok = SSL_CTX_use_certificate_chain_file(s, cert) == 1;
    if (ok) {
        file = key;
        ok = SSL_CTX_use_PrivateKey_file(s, key, SSL_FILETYPE_PEM) == 1 &&
             SSL_CTX_check_private_key(s) == 1;
    }
    if (!ok) {
        snprintf(err, errlen, "%s: %s", file, sp_fwd_tls_error());
        SSL_CTX_free(s);
        return NULL;
    }
    sp_fwd_tls_ctx *c = sp_calloc(1, sizeof *c);
    c->ssl = s;
    return c;
}

void sp_fwd_tls_ctx_free(sp_fwd_tls_ctx *ctx)
{
    if (!ctx) return;
    SSL_CTX_free(ctx->ssl);
    free(ctx);
}

sp_fwd_tls *sp_fwd_tls_new(sp_fwd_tls_ctx *ctx)
{
    sp_fwd_tls *t = sp_calloc(1, sizeof *t);
    t->ssl = SSL_new(ctx->ssl);
    t->in = BIO_new(BIO_s_mem());
    t->out = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->in || !t->out) { /* not attached yet: each is freed on its own */
        SSL_free(t->ssl);
        BIO_free(t->in);
        BIO_free(t->out);
        free(t);
        return NULL;
    }
    BIO_set_mem_eof_return(t->in, -1);  /* empty means "more to come", not end of stream */
    SSL_set_bio(t->ssl, t->in, t->out); /* the SSL owns both BIOs from here */
    SSL_set_accept_state(t->ssl);
    return t;
}

void sp_fwd_tls_free(sp_fwd_tls *t)
{
    if (!t) return;
    SSL_free(t->ssl);
    free(t);
}

void sp_fwd_tls_feed(sp_fwd_tls *t, const void *data, size_t len)
{
    BIO_write(t->in, data, (int)len); /* a memory BIO grows: it takes all of it */
}

int sp_fwd_tls_read(sp_fwd_tls *t, void *buf, size_t cap)
{
    ERR_clear_error();
    int n = SSL_read(t->ssl, buf, cap > (1u << 30) ? (1 << 30) : (int)cap);
    if (n > 0) return n;
    switch (SSL_get_error(t->ssl, n)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    default:
        return -1;
    }
}

int sp_fwd_tls_ready(const sp_fwd_tls *t)
{
    return SSL_is_init_finished(t->ssl);
}

int sp_fwd_tls_write(sp_fwd_tls *t, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ERR_clear_error();
        int n = SSL_write(t->ssl, p, len > (1u << 30) ? (1 << 30) : (int)len);
        if (n <= 0) return -1; /* memory BIOs never push back: anything else is an error */
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

void sp_fwd_tls_pending(sp_fwd_tls *t, sp_buf *out)
{
    size_t n = BIO_ctrl_pending(t->out);
    if (!n) return;
    sp_buf_reserve(out, n);
    int got = BIO_read(t->out, out->base + out->len, (int)n);
    if (got > 0) out->len += (size_t)got;
}

int sp_fwd_tls_shutdown(sp_fwd_tls *t)
{
    if (!SSL_is_init_finished(t->ssl)) return -1;
    ERR_clear_error();
    SSL_shutdown(t->ssl); /* 0: sent, the peer's has not come; that is all we wait for */
    ERR_clear_error();
    return 0;
}

const char *sp_fwd_tls_error(void)
{
    static __thread char buf[256];
    unsigned long e = ERR_peek_last_error();
    if (!e) return "TLS error";
    ERR_error_string_n(e, buf, sizeof buf);
    return buf;
}
