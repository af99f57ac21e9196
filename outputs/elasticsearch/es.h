/*
 * The elasticsearch output, shared between its files: es.c (lifecycle, the per-delivery state
 * machine, the descriptor), es_conf.c (settings and their check), es_metrics.c (counters and
 * metrics), es_bulk.c (bulk bodies and gzip, thread-safe), es_http.c (libcurl multi on the libuv
 * loop) and es_response.c (per-item results of a bulk response).
 */
#ifndef SP_ES_H
#define SP_ES_H

#include <curl/curl.h>
#include <stdint.h>
#include <uv.h>
#include <libdeflate.h>

#include "config.h"
#include "output.h"
#include "record.h"
#include "slice.h"

/* ---- settings ---- */

enum { SP_ES_COMP_NONE, SP_ES_COMP_GZIP };

typedef struct {
    sp_strlist url;
    char *index;
    char *data_stream;
    char *pipeline;
    char *user;
    char *password;
    char *api_key;
    int compression;
    uint64_t bulk_max_bytes;
    uint64_t timeout;
    uint64_t connect_timeout;
    char *tls_ca_file;
    char *tls_cert;
    char *tls_key;
    int tls_verify;
    sp_kvlist tls; /* the same four as a map, as the README's config reference writes them: tls:
                      {ca_file: ...} */
    char *dead_letter_index;
    char *dead_letter_file;
    uint64_t node_cooldown;
} sp_es_conf;

/* ---- bulk bodies (es_bulk.c): pure functions, safe on the thread pool ---- */

/**
 * An index name from a strftime pattern on the record's UTC time, cached: a name is recomputed
 * only when the record's second (or day, when the pattern has no finer field) changes.
 */
typedef struct {
    const char *fmt;
    int literal;     /* no '%': the name is fmt itself */
    uint64_t period; /* seconds a computed name stays valid: 1 or 86400 */
    uint64_t key;    /* sec / period of the cached name, UINT64_MAX when none */
    char name[256];
    size_t len;
} sp_es_index;

/** One record to send: its offset in its chunk, and for a dead-letter document the offset+1 of
 * its error text in the delivery's error arena (0: a normal document); `ci` is the chunk's index
 * in the delivery. */
typedef struct {
    uint32_t off;
    uint32_t err;
    uint32_t ci;
} sp_es_item;

/** Prepares `ix` for pattern `fmt` (a data stream name is a pattern without '%'). */
void sp_es_index_init(sp_es_index *ix, const char *fmt);
/** The index name for a record at `sec` (UTC seconds). */
sp_slice sp_es_index_name(sp_es_index *ix, uint64_t sec);
/** Writes the 22-character base64url form (no padding) of a 16-byte id. */
void sp_es_id_b64(const uint8_t id[16], char out[22]);

/** What one body encoding needs to know; one per job (the index cache is not shared). */
typedef struct {
    sp_es_index ix;
    const char *dl_index; /* dead-letter index, or NULL */
    const char *errs;     /* the error arena that sp_es_item.err points into */
    uint64_t now_sec;     /* @timestamp of dead-letter documents */
    uint32_t now_nsec;
    sp_slice tag;     /* of the chunk being encoded */
    uint32_t ci;      /* its index in the delivery, written into the items */
    size_t max_bytes; /* a body (the whole `out` buffer) stops growing past this */
    sp_buf scratch;   /* the document of a dead-letter record before it is quoted */
} sp_es_enc;

/**
 * Appends bulk lines (action + document) for the records of `chunk` starting at offset *off, while
 * `out` stays within `max_bytes` (a record that alone fills an empty `out` still goes). Writes
 * each sent record's offset to `items` (room for every record left), advances *off and returns
 * how many were encoded. Called again with the next chunk, it fills the same body.
 */
uint32_t sp_es_encode_range(sp_es_enc *e, sp_buf *out, const uint8_t *chunk, size_t chunk_len,
                            size_t *off, sp_es_item *items);
/**
 * Appends bulk lines for `items[0..n)` (normal or dead-letter documents, all of `chunk`), while
 * `out` stays within `max_bytes` (one into an empty `out` always goes). Returns how many were
 * encoded.
 */
uint32_t sp_es_encode_items(sp_es_enc *e, sp_buf *out, const uint8_t *chunk, size_t chunk_len,
                            const sp_es_item *items, uint32_t n);
/** Appends the NDJSON line of the dead-letter file for one rejected record. */
void sp_es_dead_letter_line(sp_es_enc *e, sp_buf *out, const sp_record *r, const char *error);
/**
 * Gzips the whole of `in` into `out` (replacing its contents) with a reusable libdeflate
 * compressor (level 1: about twice zlib's speed at level 1, with a better ratio); 0 or -1.
 */
int sp_es_gzip(struct libdeflate_compressor *c, const sp_buf *in, sp_buf *out);

/* ---- responses (es_response.c) ---- */

enum { SP_ES_ITEM_OK, SP_ES_ITEM_RETRY, SP_ES_ITEM_REJECT };

/** Classifies an item status: 2xx and 409 delivered, 429 and 5xx retried, other rejected. */
int sp_es_item_class(int status);

/** Called for each item that was not delivered, in body order. `error` is the item's error
 * object as compact JSON ("" when absent); `type` its error type (or "status_NNN"). */
typedef void (*sp_es_item_cb)(void *ctx, uint32_t index, int status, const char *type,
                              const char *reason, const char *error);

/** A failed item: its index, status and the bytes of its error object (NULL when absent). */
typedef struct {
    uint32_t index;
    int status;
    const char *err, *err_end;
} sp_es_failed;

/** The failed items of one response, pointing into its body; reused across responses. */
typedef struct {
    sp_es_failed *v;
    uint32_t n, cap;
} sp_es_failures;

/**
 * The first half of sp_es_parse_response, safe on the thread pool (it calls nothing and logs
 * nothing): returns the number of delivered items or -1, and notes the others in `f`.
 */
int64_t sp_es_scan_response(const char *body, size_t len, uint32_t nitems, sp_es_failures *f);
/** The second half, on the loop: `cb` for each failed item noted by sp_es_scan_response. */
void sp_es_report_failures(const sp_es_failures *f, sp_es_item_cb cb, void *ctx);

/**
 * Reads a bulk response (filter_path=errors,items.*.status,items.*.error) for `nitems` items.
 * Returns the number of delivered items, calling `cb` for the others; -1 when the body is not a
 * complete bulk response for that many items (the whole request is then retried).
 */
int64_t sp_es_parse_response(const char *body, size_t len, uint32_t nitems, sp_es_item_cb cb,
                             void *ctx);

/* ---- HTTP (es_http.c): libcurl multi driven by the loop ---- */

typedef struct sp_es_http sp_es_http;
typedef struct sp_es_req sp_es_req;

/** One request in flight: fill `easy` options through sp_es_http_send. */
struct sp_es_req {
    CURL *easy;
    sp_buf resp;
    char errbuf[CURL_ERROR_SIZE];
    void (*done)(sp_es_req *q, CURLcode rc, long status);
    int active;
};

/** Creates the multi handle on `loop`; `max_conns` bounds connections per host. */
sp_es_http *sp_es_http_new(uv_loop_t *loop, long max_conns);
/** Makes `q` ready for use (its easy handle is kept across requests: connections stay warm). */
void sp_es_req_init(sp_es_req *q);
/** Starts the POST already configured on q->easy; q->done is called on the loop later. */
int sp_es_http_send(sp_es_http *h, sp_es_req *q);
/** Abandons a request in flight (no callback). */
void sp_es_http_cancel(sp_es_http *h, sp_es_req *q);
/** Closes everything; `closed(arg)` is called once all libuv handles are closed. */
void sp_es_http_free(sp_es_http *h, void (*closed)(void *), void *arg);

/* ---- the output's running state (es.c, es_conf.c, es_metrics.c) ---- */

#define SP_ES_MAX_REASONS 16
/* Jobs (deliveries with their buffers) at once, per worker, counting those parked while a few
 * of their items wait for a retry. */
#define SP_ES_JOBS_PER_WORKER 4
#define SP_ES_FILTER "/_bulk?filter_path=errors,items.*.status,items.*.error"
/* A job holds a body, its gzip copy and a response: about three bodies. All the workers' jobs
 * together get at most 1/SP_ES_MEMORY_SHARE of memory_limit, so a body is cut below
 * bulk_max_bytes when the limit is small (README, buffer.memory_limit). */
#define SP_ES_MEMORY_SHARE 4
#define SP_ES_BODY_MIN (64u << 10)

typedef struct sp_es sp_es;

typedef struct {
    char *url;  /* the bulk endpoint with its query */
    char *base; /* as configured, for log lines */
    uint64_t down_until;
} sp_es_node;

typedef struct {
    sp_es *es;
    sp_delivery *d; /* NULL: the job is free */
    sp_es_req req;
    uv_work_t work;
    uv_timer_t timer;                  /* item-retry backoff */
    int working;                       /* on the thread pool */
    struct libdeflate_compressor *gzc; /* with compression: gzip */
    sp_es_enc enc;
    sp_buf body, gz;
    sp_es_item *sent, *now, *retry;
    uint32_t nsent, nnow, nretry, cap;
    uint32_t cur_ci;      /* next fresh record: in this chunk of the delivery, */
    size_t cursor;        /* at this offset */
    int from_now;         /* this request sends items of `now` */
    sp_es_failures fails; /* of the last response, scanned on the thread pool */
    int64_t scanned;      /* its delivered items, or -1 */
    sp_buf errs;          /* error texts of dead-letter items */
    uint32_t delivered, rejected, rounds, dl_sent, dl_notok;
    int node;
    size_t gz_peak; /* the most of `gz` written: what of it is resident */
    size_t held;    /* its buffers, as counted with sp_output_hold */
} sp_es_job;

struct sp_es {
    sp_output *o;
    sp_es_conf *conf;
    sp_es_http *http;
    sp_es_node *nodes;
    size_t nnodes, rr;
    sp_es_job **jobs; /* `workers` of them, more while some wait for an item retry */
    int njobs;
    struct curl_slist *headers;
    int dl_fd;
    int stopping, open; /* open: things to close before the output is closed */
    size_t body_max;    /* bulk_max_bytes, or less under a small memory_limit */
    sp_ratelimit rl_req, rl_item, rl_dl;
    /* metrics */
    uint64_t by_status[600];
    uint64_t err_connect, err_timeout, err_other, err_response;
    uint64_t items_retried, dl_written, dl_failed;
    uint64_t bytes_encoded, bytes_sent;
    struct {
        char reason[64];
        uint64_t n;
    } reasons[SP_ES_MAX_REASONS];
    uint64_t reasons_other;
};

extern const sp_conf_field sp_es_fields[];
/** Checks the settings beyond their types; fills the flat tls_* ones from `tls:`. */
int sp_es_check(sp_output *o, const sp_node *n, sp_conf_err *err);
/** Counts one request's outcome: a curl error or the HTTP status. */
void sp_es_count_status(sp_es *es, CURLcode rc, long status);
/** Counts a rejected document by its error type (a metric label; the first 16 types, then
 * "other"). */
void sp_es_count_rejected(sp_es *es, const char *type);
/** Appends the output's Prometheus lines. */
void sp_es_metrics(sp_output *o, sp_buf *out);

#endif
