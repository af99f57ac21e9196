/*
 * TLS for the forward input: OpenSSL driven through memory BIOs, so libuv keeps doing all the
 * socket I/O. Ciphertext read from the socket goes in with sp_fwd_tls_feed; plaintext comes out
 * of sp_fwd_tls_read; plaintext to send goes in with sp_fwd_tls_write; the ciphertext that
 * produced (handshake records included) comes out of sp_fwd_tls_pending.
 */
#ifndef SP_FORWARD_TLS_H
#define SP_FORWARD_TLS_H

#include <stddef.h>

#include "slice.h"

typedef struct sp_fwd_tls_ctx sp_fwd_tls_ctx;
typedef struct sp_fwd_tls sp_fwd_tls;

/** A server context from PEM files; NULL with `err` filled (file and OpenSSL's reason). */
sp_fwd_tls_ctx *sp_fwd_tls_ctx_new(const char *cert, const char *key, char *err, size_t errlen);
void sp_fwd_tls_ctx_free(sp_fwd_tls_ctx *ctx);

/** One connection's TLS state (server side). */
sp_fwd_tls *sp_fwd_tls_new(sp_fwd_tls_ctx *ctx);
void sp_fwd_tls_free(sp_fwd_tls *t);

/** Hands ciphertext read from the socket to TLS. */
void sp_fwd_tls_feed(sp_fwd_tls *t, const void *data, size_t len);

/**
 * Decrypts into buf[0..cap): returns the plaintext length, 0 when TLS needs more ciphertext (or
 * the peer closed cleanly), or -1 on a TLS error (the reason is left in OpenSSL's queue: see
 * sp_fwd_tls_error). Drives the handshake too.
 */
int sp_fwd_tls_read(sp_fwd_tls *t, void *buf, size_t cap);

/** 1 once the handshake is done: plaintext may be written. */
int sp_fwd_tls_ready(const sp_fwd_tls *t);

/** Encrypts plaintext; 0, or -1 on a TLS error. Call only when ready. */
int sp_fwd_tls_write(sp_fwd_tls *t, const void *data, size_t len);

/** Moves the ciphertext waiting to go to the socket into `out` (appended). */
void sp_fwd_tls_pending(sp_fwd_tls *t, sp_buf *out);

/** Ends the session cleanly: a close_notify joins the pending ciphertext. 0, or -1 when the
 * handshake never finished (there is no session to end). */
int sp_fwd_tls_shutdown(sp_fwd_tls *t);

/** The last TLS error as text (OpenSSL's reason), for the log. */
const char *sp_fwd_tls_error(void);

#endif
