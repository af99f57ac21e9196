/*
 * The forward output: chunks to another shipper, Fluentd or Fluent Bit over the Forward protocol
 * (docs/forward_output.md). One chunk is one PackedForward frame (CompressedPackedForward with
 * gzip) carrying the `chunk` option; with require_ack it is delivered when the server's ack
 * comes back. Several servers: round robin by chunk over the healthy ones, failover, reconnect
 * with backoff (the host name resolved again each time), optional shared-key handshake and TLS.
 *   fwd_out.c       the instance, deliveries, servers, metrics, the descriptor
 *   fwd_out_conn.c  one connection: connect, TLS, handshake, frames out, acks in
 *   fwd_out_conf.c  settings and their validation
 *   fwd_out_frame.c records → a PackedForward frame (free of I/O: unit-tested)
 */
#ifndef SP_FWD_OUT_H
#define SP_FWD_OUT_H

#include <openssl/ssl.h>
#include <stdint.h>
#include <uv.h>

#include "chunk.h"
#include "config.h"
#include "list.h"
#include "log.h"
#include "output.h"
#include "slice.h"

enum { SP_FWDOUT_COMP_NONE = 0, SP_FWDOUT_COMP_GZIP = 1 };

#define SP_FWDOUT_SPARE 4 /* frame buffers kept for reuse */

typedef struct {
    sp_strlist servers;
    char *shared_key;
    char *self_hostname;
    char *username;
    char *password;
    sp_kvlist tls;
    char *tls_ca_file;
    char *tls_cert;
    char *tls_key;
    char *tls_server_name;
    int tls_verify;
    int compression;
    int require_ack;
    uint64_t ack_timeout;
    uint64_t connect_timeout;
    uint64_t reconnect_min;
    int64_t gzip_level;
    int64_t encode_threads;
    /* resolved by check, not in the field table */
    int tls_on;
} sp_fwdout_conf;

extern const sp_conf_field sp_fwdout_fields[];
int sp_fwdout_check(sp_output *o, const sp_node *n, sp_conf_err *err);
/** Splits "host:port" / "[v6]:port" / "host" (port 24224); 0 or -1 with `why`. */
int sp_fwdout_split_addr(const char *s, char *host, size_t hostcap, int *port, const char **why);

/* ---- frames (fwd_out_frame.c) ---- */

/** The b64 chunk id (24 characters + NUL) of a chunk: a hash of its record ids, so a resend of
 * the same chunk carries the same id and the receiver derives the same record ids from it. */
#define SP_FWDOUT_ID_LEN 24

struct libdeflate_compressor;

/**
 * Appends one PackedForward frame [tag, bin entries, {chunk, size[, compressed]}] for the chunk
 * `c` to `out`; `scratch` (two buffers) is reused between calls. `gz` (NULL: no compression)
 * compresses the entries as one gzip member. Writes the chunk id to `id`. 0, or -1 when the chunk
 * cannot be read or compressed (cannot happen with chunks shipper wrote).
 */
int sp_fwdout_frame(sp_buf *out, sp_buf scratch[2], const sp_chunk *c,
                    struct libdeflate_compressor *gz, char id[SP_FWDOUT_ID_LEN + 1]);

/* ---- instance, servers, connections ---- */

#define SP_FWDOUT_ENCODE_THREADS_MAX 64

typedef struct sp_fwdout sp_fwdout;
typedef struct sp_fwdout_server sp_fwdout_server;
typedef struct sp_fwdout_conn sp_fwdout_conn;

/** One delivery's progress: its frames answered so far. */
typedef struct {
    sp_delivery *d;
    sp_list link;         /* sp_fwdout.waiting while no server is up yet */
    uint32_t outstanding; /* frames not answered yet */
    int failed;
} sp_fwdout_job;

/** One frame sent (or being written) on a connection, waiting for its ack or write. */
typedef struct {
    sp_list link; /* conn->frames */
    sp_fwdout_job *job;
    uint64_t deadline_ms;
    uint32_t records;
    int written;
    char id[SP_FWDOUT_ID_LEN + 1];
} sp_fwdout_frame_t;

enum {
    SP_FWDOUT_DOWN = 0,   /* waiting for the reconnect backoff */
    SP_FWDOUT_RESOLVING,  /* getaddrinfo */
    SP_FWDOUT_CONNECTING, /* TCP connect, TLS handshake, HELO/PING/PONG */
    SP_FWDOUT_UP,
};

enum {
    SP_FWDOUT_E_CONNECT = 0,
    SP_FWDOUT_E_RESOLVE,
    SP_FWDOUT_E_TLS,
    SP_FWDOUT_E_AUTH,
    SP_FWDOUT_E_ACK_TIMEOUT,
    SP_FWDOUT_E_CLOSED,
    SP_FWDOUT_E_PROTOCOL,
    SP_FWDOUT_E_COUNT,
};
extern const char *const sp_fwdout_error_names[SP_FWDOUT_E_COUNT];

/** An encoder's working memory: one per `encode_threads`, kept for the output's life. */
typedef struct {
    sp_buf scratch[2];
    struct libdeflate_compressor *gz;
    int busy;
} sp_fwdout_slot;

/** One chunk handed over to be encoded into its frame, on libuv's thread pool (fwd_out_enc.c);
 * a few are kept for the next chunks with their frame buffer. */
typedef struct {
    uv_work_t work;
    sp_list link; /* sp_fwdout.encoding (hand-over order) or .idle */
    sp_fwdout *fo;
    sp_fwdout_server *srv; /* where the frame goes */
    sp_fwdout_frame_t *f;
    const sp_chunk *chunk;
    sp_buf out;
    sp_fwdout_slot *slot; /* while encoding */
    int state;
    int rc;
} sp_fwdout_enc;

struct sp_fwdout_server {
    sp_fwdout *fo;
    int index;
    char *spec; /* as configured, for logs and metrics */
    char host[256];
    int port;
    int state;
    uint32_t attempt;     /* failed connects in a row */
    uint64_t retry_at_ms; /* state DOWN: when to reconnect */
    uv_getaddrinfo_t gai;
    sp_fwdout_conn *conn; /* the live connection (CONNECTING or UP) */
    sp_ratelimit rl;
    /* metrics */
    uint64_t chunks, acks, records, connects;
    uint64_t errors[SP_FWDOUT_E_COUNT];
};

struct sp_fwdout_conn {
    uv_tcp_t tcp;
    uv_connect_t connect;
    sp_fwdout_server *srv; /* NULL once the server moved on (closing) */
    sp_fwdout *fo;
    int closing;
    int handshake;        /* 0: none or done; 1: waiting for HELO; 2: waiting for PONG */
    uint64_t deadline_ms; /* connect/handshake deadline (0 once up) */
    SSL *ssl;
    BIO *rbio, *wbio;
    int tls_done;
    sp_buf in;      /* plaintext received, not yet parsed */
    sp_list frames; /* sp_fwdout_frame_t, oldest first */
    uint8_t nonce[16];
    uint8_t auth_salt[16];
    int has_auth;
    uint8_t salt[16];
};

struct sp_fwdout {
    sp_output *o;
    sp_fwdout_conf *conf;
    sp_fwdout_server *servers;
    int nservers;
    uint32_t rr;
    uv_timer_t tick;
    int handles; /* open handles and requests; closed when 0 after stop */
    int stopping;
    SSL_CTX *ssl_ctx;
    sp_list encoding; /* sp_fwdout_enc, in the order their chunks were handed over */
    sp_list idle;     /* sp_fwdout_enc kept for reuse */
    int nidle;
    int64_t encoding_now;          /* encoders on the thread pool */
    sp_fwdout_slot *slots;         /* encode_threads of them (one with 0) */
    sp_buf spare[SP_FWDOUT_SPARE]; /* written frames' buffers, for the next frames */
    int nspare;
    sp_buf cipher;   /* TLS: ciphertext read, before it goes into the connection's BIO */
    sp_list waiting; /* sp_fwdout_job: no server up yet, one connecting */
    char hostname[256];
    sp_ratelimit rl;
};

uint64_t sp_fwdout_now(sp_fwdout *fo);
/** Starts a connection to `s` (resolving first). */
void sp_fwdout_server_connect(sp_fwdout_server *s);
/** The connection of `s` is up (handshake done): sends waiting deliveries. */
void sp_fwdout_server_up(sp_fwdout_server *s);
/** The connection of `s` failed with `reason`: its frames are retried, backoff starts. */
void sp_fwdout_server_down(sp_fwdout_server *s, int reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** Answers one frame of a job (ok: acked or written); answers the delivery with the last one. */
void sp_fwdout_frame_done(sp_fwdout *fo, sp_fwdout_frame_t *f, int ok);
/** A handle or request of the output has finished closing. */
void sp_fwdout_unref(sp_fwdout *fo);

/* fwd_out_enc.c */
/** Encodes chunk `c` for frame `f` (on the thread pool), then sends it to `s` in hand-over
 * order; the frame fails if `s` is no longer up by then. */
void sp_fwdout_enc_submit(sp_fwdout *fo, sp_fwdout_server *s, sp_fwdout_frame_t *f,
                          const sp_chunk *c);
void sp_fwdout_enc_free(sp_fwdout_enc *e);
/** The slots' memory (at the output's end). */
void sp_fwdout_slots_free(sp_fwdout *fo);

/* fwd_out_conn.c */
int sp_fwdout_tls_ctx(sp_fwdout *fo, char *err, size_t errlen);
/** Connects to the resolved address `ai` (the connection becomes s->conn). */
void sp_fwdout_conn_open(sp_fwdout_server *s, const struct sockaddr *sa);
/** Sends `data` (one frame; `f` goes on the connection's list). 0 or -1 (the conn is failed). */
int sp_fwdout_conn_send(sp_fwdout_conn *c, sp_buf *data, sp_fwdout_frame_t *f);
/** Closes the connection; its frames are answered as failed once it is closed. */
void sp_fwdout_conn_close(sp_fwdout_conn *c);
/** Fails the connection if its oldest frame's ack or its handshake is overdue. */
void sp_fwdout_conn_tick(sp_fwdout_conn *c, uint64_t now);

#endif
