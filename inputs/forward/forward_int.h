/*
 * The forward input's internals, shared by its files (Fluent Bit's in_forward layout):
 *   forward.c           the entry: start, pause/resume, tick, stop, metrics; the descriptor last
 *   forward_config.c    settings, their check, the TLS context
 *   forward_conn.c      connections and reads (plaintext and TLS), frame processing
 *   forward_ack.c       entries → records → chunks, acks that wait for chunks, ack writes, spinning
 *   forward_handover.c  upgrade in place: handing connections over, taking them
 * and the pure parts: forward_proto.c (frames), forward_record.c (record maps), forward_auth.c
 * (handshake), forward_tls.c (OpenSSL memory BIOs), partial.c (Docker partial lines).
 */
#ifndef SP_FORWARD_INT_H
#define SP_FORWARD_INT_H

#include <uv.h>

#include "addr.h"
#include "forward_auth.h"
#include "forward_proto.h"
#include "forward_tls.h"
#include "input.h"
#include "log.h"
#include "partial.h"

enum { SP_ACK_ACCEPTED, SP_ACK_DURABLE, SP_ACK_DELIVERED };

typedef struct {
    char *listen;
    uint64_t max_message_size;
    uint64_t max_line_size;
    int64_t max_connections;
    uint64_t idle_timeout;
    uint64_t partial_timeout;
    int ack;
    int64_t ack_spin_us;
    uint64_t pending_frames_limit;
    char *metadata_path;
    char *docker_socket;
    char *shared_key;
    char *self_hostname;
    sp_kvlist users;
    sp_kvlist tls;
} sp_forward_conf;

#define SP_RBUF_SIZE (256 * 1024)

typedef struct {
    sp_input *in;
    sp_forward_conf *conf;
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_stream_t stream;
        uv_handle_t handle;
    } l;
    sp_addr addr;
    int listening;
    sp_list conns;
    int nconns;
    int paused;
    char *rbuf;
    uint64_t serial;
    uint64_t nonce; /* per process: ids of records without a client chunk id */
    sp_buf inflate;
    sp_buf extras;
    sp_ratelimit rl;
    sp_ratelimit rl_signal; /* frames of metrics or traces, dropped */
    uv_idle_t spin;         /* keeps the loop polling without sleeping for ack_spin after an ack */
    uv_check_t flush;       /* writes acks that chunks answered (sp_fwd_ackwait_flush_cb) */
    sp_list flushq;         /* sp_fwd_conn with such acks */
    uint64_t pend_total;    /* bytes of incomplete-frame buffers over all connections */
    uint64_t spin_until;
    int spin_hit;        /* a frame arrived during the current spin */
    uint32_t spin_miss;  /* spins in a row that caught nothing */
    uint32_t spin_probe; /* acks since the last spin while spinning is backed off */
    uint64_t spins[3];   /* metrics: hit, miss, skipped */
    int handles;         /* open handles, for stop completion */
    int stopping;
    sp_fwd_auth_conf auth; /* shared_key set: the handshake comes first */
    sp_fwd_tls_ctx *tls;   /* tls set: every connection is TLS */
    char *cbuf;            /* ciphertext reads, with TLS */
    sp_buf tls_out;        /* ciphertext on its way to a socket */
    char hostname[256];
    int handover;         /* an upgrade: connections go to the new process (see the end) */
    uv_timer_t ho_timer;  /* checks which connections can go */
    uint64_t ho_deadline; /* then they go (or close) whatever their state */
    uint64_t ho_sent, ho_bye, ho_closed; /* handed over, TLS ended, closed */
} sp_fwd_server;

typedef struct {
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_stream_t stream;
        uv_handle_t handle;
    } h;
    sp_fwd_server *srv;
    sp_source src; /* fair backpressure: the router may pause this connection alone */
    sp_list link;
    sp_buf pend;         /* an incomplete frame, from its first byte */
    size_t pend_counted; /* pend.cap as counted in the server's pend_total */
    sp_mp_scan scan;     /* how far the frame in `pend` has been scanned */
    sp_buf acks;         /* acks produced by this read, written together */
    sp_joiner joiner;
    uint64_t serial, recno;
    uint64_t last_ms, frame_ms;
    size_t write_bytes; /* acks queued in the kernel-bound write queue */
    sp_list waiters;    /* sp_fwd_ackwait not yet answered */
    sp_list flush_link; /* in the server's flushq while acks answered by chunks wait */
    char cid[64];       /* the last container id seen: its metadata lookup has started */
    const char *id_for; /* the chunk id frame_id was computed for (this frame) */
    uint8_t frame_id[16];
    struct sp_fwd_ackwait *frame_wait; /* the ack of the frame being decoded (durable/delivered) */
    sp_slice frame_chunk;              /* the chunk id (ack) of the frame being decoded, or empty */
    sp_hold hold; /* in->hold while its records are appended: a filter holding one of
                   * them makes the frame's ack wait for it (sp_fwd_hold_take) */
    int reading, closing;
    int authed;       /* the handshake is done, or not required */
    int tls_bye;      /* upgrade: close_notify sent, the connection is ending */
    uint64_t bye_ms;  /* ...since then */
    sp_fwd_tls *tls;  /* NULL: plain TCP */
    sp_fwd_auth auth; /* what this connection's HELO sent */
    uint64_t now_ms;
} sp_fwd_conn;

/* ---- acks that wait (ack: durable | delivered) ---- */

/* One frame's ack waits for every chunk that holds one of the frame's records to be durable or
 * delivered. A frame can span chunks, and chunks finish out of order (an output runs several
 * deliveries at once, a failed one is retried after later ones succeeded; the spool may finish
 * them out of order too), so each chunk the frame touched gets its own watch and the ack goes
 * when the last of them has answered and the frame is decoded to its end. */
typedef struct sp_fwd_ackref {
    sp_chunk_watch w;
    struct sp_fwd_ackwait *a;
    sp_chunk *chunk;            /* watched until it answers; NULL after (or never attached) */
    struct sp_fwd_ackref *next; /* the frame's other chunks */
} sp_fwd_ackref;

typedef struct sp_fwd_ackwait {
    sp_hold hold;        /* what a held record of the frame keeps (input.h, sp_hold) */
    sp_fwd_ackref first; /* most frames touch one chunk: it needs no allocation */
    sp_fwd_ackref *last; /* the chunk the frame's records were appended to last */
    sp_fwd_conn *conn;   /* NULL once the connection is gone */
    sp_list conn_link;
    /* chunks not answered yet, records a filter holds (multiline), plus one until the frame is
     * decoded */
    uint32_t pending;
    int failed; /* a chunk was dropped without delivery (shutdown): no ack */
    int ack;    /* the input's ack mode (the waiter may outlive its connection) */
    size_t len;
    char id[];
} sp_fwd_ackwait;

/* ---- forward_config.c ---- */

extern const sp_conf_field sp_fwd_config_fields[];
/** The input's `check`: settings beyond their types. */
int sp_fwd_config_check(sp_input *in, const sp_node *n, sp_conf_err *err);
/** The TLS context of the tls map; NULL with `why` filled when the map or its files are wrong. */
sp_fwd_tls_ctx *sp_fwd_config_tls_ctx(const sp_forward_conf *conf, char *why, size_t len);

/* ---- forward_conn.c: connections and reads ---- */

/** The listener's callback: accepts a connection (or refuses it: max_connections). */
void sp_fwd_conn_accept_cb(uv_stream_t *server, int status);
/** A connection's handle, not open yet. */
sp_fwd_conn *sp_fwd_conn_new(sp_fwd_server *s);
/** An open connection (accepted, or taken over from the previous process) joins the server. */
void sp_fwd_conn_open(sp_fwd_server *s, sp_fwd_conn *c);
/** Closes a connection; with a reason, counts and logs it (detail: optional). */
void sp_fwd_conn_close(sp_fwd_conn *c, const char *reason, const char *detail);
/** uv_close callback of a connection's handle: frees it. */
void sp_fwd_conn_closed(uv_handle_t *h);
/** Reads the connection (or, during an upgrade, only as far as it can be handed over from). */
void sp_fwd_conn_start_reading(sp_fwd_conn *c);
/** Nothing stops `c` from reading: not closing, neither the input nor the connection paused
 * (fair backpressure), its client reads its acks. */
int sp_fwd_conn_may_read(const sp_fwd_conn *c);
void sp_fwd_conn_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf);
void sp_fwd_conn_read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);
/** The last handle of a stopping server is closed: frees it all, tells the core. */
void sp_fwd_conn_server_done(sp_fwd_server *s);

/* ---- forward_ack.c: records, acks and spinning ---- */

/** The decoder's entry callback: one entry → a record, appended (or joined). */
int sp_fwd_ack_entry(void *ctx, const sp_fwd_entry *e);
/** The decoder's end-of-frame callback: answer now, or when the frame's chunks are ready. */
void sp_fwd_ack_frame_end(void *ctx, sp_slice chunk);
/** The partial joiner's callback: a joined (or cut) line is appended. */
void sp_fwd_ack_joined(void *ctx, sp_slice tag, const sp_record *r);
/** The frame gets no ack (it was refused): detach from its chunks and free it (once no filter
 * holds a record of it). */
void sp_fwd_ackwait_cancel(sp_fwd_ackwait *a);
/** Sets up c->hold (a connection's sp_hold). */
void sp_fwd_hold_init(sp_fwd_conn *c);
/** Writes the acks (and, over TLS, the ciphertext) the connection has ready. */
void sp_fwd_ack_flush(sp_fwd_conn *c);
/** Writes bytes to the socket, now if the kernel takes them, else queued. */
void sp_fwd_ack_send(sp_fwd_conn *c, const char *data, size_t len);
/** Acks were sent: poll for the client's next frame for ack_spin_us instead of sleeping. */
void sp_fwd_ack_spin_start(sp_fwd_server *s);

/* ---- forward_handover.c: upgrade in place ---- */

/** `stop` during an upgrade: connections go to the new process as each can. */
void sp_fwd_handover_begin(sp_fwd_server *s);
/** Reading while handing over: only up to the point the connection can go from. */
void sp_fwd_handover_reading(sp_fwd_conn *c);
int sp_fwd_handover_adopt(sp_input *in, int fd, const uint8_t *st, size_t len);
int sp_fwd_handover_listen_fd(sp_input *in);

/* ---- forward.c: the entry, lifecycle ---- */

/** uv_close callbacks of the server's own handles: the last one frees the server. */
void sp_fwd_handle_closed(uv_handle_t *h);
void sp_fwd_listener_closed(uv_handle_t *h);

#endif
