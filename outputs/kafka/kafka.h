/*
 * The kafka output's private declarations, shared by its files: kafka.c (the producer, its
 * deliveries and their reports, the descriptor), kafka_conf.c (settings and the librdkafka
 * configuration) and kafka_stats.c (metrics and librdkafka statistics).
 */
#ifndef SP_KAFKA_H
#define SP_KAFKA_H

#include <librdkafka/rdkafka.h>

#include "log.h"
#include "output.h"
#include "record.h"

/** The settings of one kafka output. */
typedef struct {
    char *brokers;
    char *topic;
    char *topic_key;
    char *key;
    char *dead_letter_topic;
    sp_kvlist headers;
    sp_kvlist properties;
    uint64_t retry_backoff;
    int unsafe_properties; /* accept properties that weaken "delivered" (docs/kafka.md) */
    uint64_t queue_kbytes; /* not a key: set from memory_limit at start (0: librdkafka's) */
} sp_kafka_conf;

/** Where a per-record value (key, topic) comes from. */
enum { SP_KF_NONE, SP_KF_ID, SP_KF_NAME, SP_KF_STREAM, SP_KF_TAG, SP_KF_EXTRA };

typedef struct {
    int kind;
    sp_slice name; /* SP_KF_EXTRA: the record field's name */
} sp_kafka_field;

/** Parses a `key`/`topic_key` value; `none` is allowed only when `allow_none`. 0 or -1. */
int sp_kafka_field_parse(const char *s, int allow_none, sp_kafka_field *f);
/** The value of `f` in record `r` (str or bin only); base NULL when absent. Thread-safe. */
sp_slice sp_kafka_field_get(const sp_kafka_field *f, const sp_record *r, sp_slice tag);

/** A librdkafka configuration: our defaults, then `properties`. NULL and `errstr` on error,
 * with *bad_key set to the property that failed (NULL for our own settings). */
rd_kafka_conf_t *sp_kafka_conf_build(const sp_kafka_conf *c, char *errstr, size_t errlen,
                                     const char **bad_key);

enum { SP_KM_PENDING, SP_KM_INFLIGHT, SP_KM_OK, SP_KM_RETRY, SP_KM_REJECTED };

struct sp_kdel;

/** One record as one Kafka message; its value lives in the delivery's buffer. */
typedef struct {
    struct sp_kdel *del;
    const char *key;   /* into the chunk; NULL: no key */
    const char *tname; /* into the chunk; NULL: the static topic */
    uint32_t klen, tlen;
    uint32_t voff, vlen;
    int64_t ts_ms;  /* the record's time: the message's timestamp */
    char idhex[32]; /* the record's id in hex, written on the pool: the `shipper-id` header
                     * (docs/kafka.md) */
    uint8_t state;
    uint8_t dead; /* rejected once: now going to the dead-letter topic */
} sp_kmsg;

/** A chunk on its way: encoded once, then produced message by message without copies. */
typedef struct sp_kdel {
    uv_work_t work;
    sp_list link; /* sp_kafka.dels, in arrival order */
    sp_delivery *d;
    struct sp_kafka *k;
    sp_buf buf; /* every JSON document of the chunk, back to back */
    sp_kmsg *msgs;
    uint32_t msgs_cap;
    uint32_t n;
    uint32_t next;     /* first message never produced */
    uint32_t inflight; /* produced, report pending */
    uint32_t retry;    /* waiting to be produced again */
    uint32_t delivered, rejected;
    int started; /* its encoding was queued (it is counted in sp_kafka.active) */
    int encoded;
    size_t held; /* bytes accounted with sp_output_hold */
} sp_kdel;

#define SP_KAFKA_TOPICS 64
#define SP_KAFKA_REASONS 16
#define SP_KAFKA_SPARE 4
/* librdkafka's queue may hold 1/SP_KAFKA_MEMORY_SHARE of memory_limit (queue.buffering.max.kbytes,
 * unless `properties` sets it). */
#define SP_KAFKA_MEMORY_SHARE 8
/* Deliveries in progress may hold 1/SP_KAFKA_MEMORY_FLOOR of memory_limit even when the buffer is
 * full (sp_kafka_encode_more). That floor is counted ahead, as a reserve, so chunks pause short
 * of it and the total stays within memory_limit (docs/architecture.md, "Who owns what"). */
#define SP_KAFKA_MEMORY_FLOOR 16
/* What librdkafka keeps per message besides the value we own: its message header and, while a
 * produce request is built and in flight, a copy of key and value (counted as the value's size
 * again). Measured: RSS tracks this within a few MiB (test_memory_limit). */
#define SP_KAFKA_MSG_COST 512

typedef struct sp_kafka {
    sp_output *o;
    const sp_kafka_conf *conf;
    rd_kafka_t *rk;
    rd_kafka_queue_t *mainq;
    rd_kafka_topic_t *rkt; /* the static topic */
    rd_kafka_topic_t *dlt; /* dead_letter_topic, if any */
    struct {
        char *name;
        size_t len;
        rd_kafka_topic_t *rkt;
    } topics[SP_KAFKA_TOPICS]; /* topics chosen by topic_key, most recent ones */
    int ntopics, topic_next, topic_last;
    rd_kafka_headers_t *headers;
    sp_kafka_field keyf, topicf;
    int pipefd[2];
    uv_poll_t poll;
    uv_timer_t tick, retry_timer;
    sp_list dels;
    struct sp_kdel spare[SP_KAFKA_SPARE]; /* buffers of finished deliveries, for reuse */
    int nspare;
    size_t dels_held;   /* what the deliveries in `dels` count (their `held`) */
    size_t reserve;     /* counted ahead for them: reserve_cap - dels_held, at least 0 */
    size_t reserve_cap; /* memory_limit / SP_KAFKA_MEMORY_FLOOR while running, 0 once stopped */
    int active;         /* deliveries whose encoding started, not answered yet */
    int qfull;          /* librdkafka's queue is full: wait for reports */
    int retry_due;      /* the retry backoff is over */
    uint32_t retry_attempt;
    uint64_t retry_msgs; /* messages waiting for a backoff, all deliveries */
    int encoding;        /* encode jobs on the thread pool */
    int stopping, handles, destroyed;
    int busy, destroy_pending; /* inside librdkafka calls on the loop thread */
    int retiring;              /* producers being destroyed on the thread pool */
    int fatal;                 /* the producer raised a fatal error: it is to be replaced */
    int purged;                /* ...and its messages were purged: waiting for their reports */
    uint32_t ticks;
    /* counters */
    uint64_t inflight_msgs, produced, delivered_msgs, dead_lettered, requeued, queue_full;
    uint64_t restarts;
    struct {
        rd_kafka_resp_err_t err;
        uint64_t n;
    } failed[SP_KAFKA_REASONS];
    /* from librdkafka's statistics */
    uint64_t st_txmsgs, st_txbytes, st_msg_cnt;
    double st_rtt_avg_us;
    sp_ratelimit rl_reject, rl_retry, rl_error;
} sp_kafka;

/** The settings (kafka_conf.c). */
extern const sp_conf_field sp_kafka_fields[];
/** Checks them beyond their types, `properties` against librdkafka (kafka_conf.c). */
int sp_kafka_check(sp_output *o, const sp_node *n, sp_conf_err *err);

/** Counts a failure by reason (the librdkafka error name). */
void sp_kafka_count_failure(sp_kafka *k, rd_kafka_resp_err_t err);
/** librdkafka's statistics callback (runs on the loop thread, from rd_kafka_poll). */
int sp_kafka_stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque);
/** Appends the output's Prometheus lines. */
void sp_kafka_metrics(sp_output *o, sp_buf *out);

/* Producing (kafka_send.c). */
/** Sets what a delivery's `*del_held` and a kept buffer's `*spare_held` count against
 * memory_limit to `del_now` and `spare_now` (either pointer may be NULL), and the reserve to what
 * the deliveries leave of reserve_cap, in one step (docs/architecture.md, "Who owns what"). */
void sp_kafka_account(sp_kafka *k, size_t *del_held, size_t del_now, size_t *spare_held,
                      size_t spare_now);
/** Sets what delivery `kd` counts to `now`. */
void sp_kafka_hold(sp_kafka *k, struct sp_kdel *kd, size_t now);
/** Produces what can be produced, in arrival order, unless the output is stopping. */
void sp_kafka_pump(sp_kafka *k);
/** Ends a use of librdkafka on the loop thread; a stop that came meanwhile retires it now. */
void sp_kafka_leave(sp_kafka *k);
/** Starts encoding waiting deliveries while the memory budget has room. */
void sp_kafka_encode_more(sp_kafka *k);
/** The output's deliver entry. */
void sp_kafka_deliver(sp_output *o, sp_delivery *d);
/** librdkafka's delivery report callback (on the loop thread, from rd_kafka_poll). */
void sp_kafka_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque);

/* Lifecycle (kafka.c). */
/** Detaches the producer and destroys it off the loop; `final` at the output's stop. */
void sp_kafka_retire(sp_kafka *k, int final);
/** Frees the output once its handles, encodings and producers are all gone. */
void sp_kafka_maybe_closed(sp_kafka *k);

#endif
