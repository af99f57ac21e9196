/*
 * The kafka input's shared declarations: kafka_in.c (settings, lifecycle, metrics, the
 * descriptor), kafka_in_group.c (rebalances, messages), kafka_in_commit.c (entries, commits,
 * pool jobs) and kafka_in_doc.c (a document the kafka output wrote, back into a record).
 * docs/kafka_input.md.
 */
#ifndef SP_KAFKA_IN_INT_H
#define SP_KAFKA_IN_INT_H

#include <librdkafka/rdkafka.h>

#include "input.h"
#include "log.h"
#include "record.h"

enum { SP_KAFKA_IN_JSON, SP_KAFKA_IN_RAW };

typedef struct {
    char *brokers;
    sp_strlist topics;
    char *group_id;
    int format;
    char *tag;
    sp_kvlist properties;
    uint64_t commit_interval;
    uint64_t revoke_timeout;
    uint64_t pause_delay; /* backpressure this long before librdkafka pauses the partitions */
} sp_kafka_in_conf;

struct sp_kafka_in;
struct sp_kafka_in_part;

/* The records of one partition that went to one chunk: committed past only once the chunk is
 * released as delivered. Entries of a partition are in the order of their first offset. */
typedef struct {
    sp_chunk_watch w;
    sp_list link;                  /* the partition's pending list */
    struct sp_kafka_in_part *part; /* NULL: the partition was revoked meanwhile */
    struct sp_kafka_in *k;
    sp_chunk *chunk;
    uint64_t seq;
    int64_t first; /* offset of its first record */
    int fired;     /* the chunk was released */
    int delivered;
} sp_kafka_in_ent;

/* A record of a partition that a filter holds (a multiline group's line): the partition's
 * committable offset stops at its offset until the group is in a chunk (docs/kafka_input.md,
 * "Offsets"). Reused through the input's free list: nothing is allocated per held record once
 * the longest group was seen. */
typedef struct {
    sp_hold h;                     /* emitted, dropped */
    sp_list link;                  /* the partition's held list (offset order), or the free list */
    struct sp_kafka_in_part *part; /* NULL: the partition was given up meanwhile */
    struct sp_kafka_in *k;
    int64_t off;
} sp_kafka_in_held;

typedef struct sp_kafka_in_part {
    sp_list link;
    struct sp_kafka_in *k;
    char *topic;
    int32_t partition;
    char *tag; /* raw and untagged records: `tag`, or kafka.<topic> */
    size_t tag_len;
    int assigned, revoking;
    int64_t cur;       /* offset of the record being appended */
    int64_t next;      /* offset after the last record appended; -1: none this assignment */
    int64_t sent;      /* the last offset a commit was sent for */
    int64_t committed; /* the last offset the group coordinator confirmed (or fetched); -1 */
    sp_list pending;   /* sp_kafka_in_ent, in the order of their first offset */
    sp_kafka_in_ent *last;
    sp_hold hold; /* in->hold while its records are appended: `take` makes an sp_kafka_in_held */
    sp_list held; /* sp_kafka_in_held, in offset order */
} sp_kafka_in_part;

/** Scratch buffers reused for every document (no allocation per record once grown). */
typedef struct {
    sp_buf str; /* unescaped strings */
    sp_buf ext; /* extras, MessagePack */
} sp_kafka_in_scratch;

#define SP_KAFKA_IN_BATCH 256
#define SP_KAFKA_IN_BUDGET 8192 /* messages per loop iteration, then other handles run */

typedef struct sp_kafka_in {
    sp_input *in;
    const sp_kafka_in_conf *conf;
    rd_kafka_t *rk;
    rd_kafka_queue_t *q;
    int pipefd[2];
    uv_poll_t poll;
    uv_idle_t more;
    uv_timer_t commit_timer, drain_timer;
    uv_timer_t pause_timer; /* pause_delay: then the partitions are paused in librdkafka */
    int handles;
    sp_list parts;
    sp_kafka_in_part *hit;
    sp_kafka_in_scratch scratch;
    /* a revoke waiting for deliveries (or stop) */
    rd_kafka_topic_partition_list_t *revoking;
    int revoke_coop;
    int coop; /* the group's rebalance protocol is cooperative (the last one librdkafka named) */
    uint64_t drain_deadline;
    int stopping, closing, works, closed_handles;
    int close_wanted; /* stopping is done but a pool job still runs: CLOSE waits for it */
    int paused;       /* backpressure: no message is taken (docs/kafka_input.md) */
    int fetch_paused; /* ... and past pause_delay, the partitions are paused in librdkafka */
    /* Waking the fetchers (docs/kafka_input.md, "Throughput"): a queue drained of this much may
     * have stopped librdkafka 2.0.2's fetching, which it looks at again only a second later. */
    uint64_t wake_bytes, wake_msgs; /* half of queued.max.messages.kbytes, queued.min.messages */
    uint64_t drained_bytes, drained_msgs; /* taken since the queue was last seen empty */
    int64_t reserved;  /* counted against memory_limit for librdkafka's prefetch queue */
    int waking;        /* a wake job runs */
    int wake_again;    /* ... and a full queue was drained meanwhile */
    uint64_t nent;     /* entries not freed */
    uint64_t nheld;    /* records a filter holds (sp_kafka_in_held in use) */
    sp_list held_free; /* sp_kafka_in_held for reuse */
    struct sp_kafka_in_job_s *last_job;
    /* counters */
    uint64_t consumed, committed, commit_errors, rebalances, invalid, pauses, errors, wakes;
    uint64_t fetch_pauses; /* pauses that went on past pause_delay (librdkafka paused) */
    sp_ratelimit rl;
} sp_kafka_in;

enum {
    SP_KAFKA_IN_JOB_COMMITTED,
    SP_KAFKA_IN_JOB_REVOKE,
    SP_KAFKA_IN_JOB_CLOSE,
    SP_KAFKA_IN_JOB_WAKE
};

/* kafka_in.c */
/** The partition `topic`[p], made (with `create`) when unknown; NULL otherwise. */
sp_kafka_in_part *sp_kafka_in_part_get(sp_kafka_in *k, const char *topic, int32_t p, int create);
/** Frees the input once stopped, its handles closed, no pool job running and no watcher left. */
void sp_kafka_in_maybe_free(sp_kafka_in *k);
/** The assigned partitions that may fetch (not being revoked). */
rd_kafka_topic_partition_list_t *sp_kafka_in_fetching(sp_kafka_in *k);
/** Closes the handles after the consumer is closed. */
void sp_kafka_in_close_handles(sp_kafka_in *k);
/** Stopping, in-flight records delivered or late: commit, leave the group, close. */
void sp_kafka_in_final(sp_kafka_in *k);

/* kafka_in_commit.c */
/** Sets up x->hold and x->held (a new partition). */
void sp_kafka_in_hold_init(sp_kafka_in_part *x);
/** Leaves the records of `x` a filter holds to the filter (their offsets are forgotten). */
void sp_kafka_in_hold_orphan(sp_kafka_in_part *x);
/** Frees the reusable held-record tokens (the input is freed). */
void sp_kafka_in_hold_free(sp_kafka_in *k);
/** The watcher for the record at part->cur in chunk `c` (sp_input_append's callback). */
sp_chunk_watch *sp_kafka_in_watch(void *ctx, sp_chunk *c);
/** The offsets to commit now (only revoking partitions' with `revoking_only`); NULL: none. */
rd_kafka_topic_partition_list_t *sp_kafka_in_collect(sp_kafka_in *k, int revoking_only);
/** librdkafka's offset commit callback (async commits). */
void sp_kafka_in_commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                           rd_kafka_topic_partition_list_t *l, void *opaque);
/** The commit_interval timer. */
void sp_kafka_in_commit_timer(uv_timer_t *t);
/** The queue was drained after a large intake: ask every leader of a fetching partition for its
 * end offset, on the pool, so its broker thread wakes and fetches again (one job at a time). */
void sp_kafka_in_wake(sp_kafka_in *k);
/** Runs a blocking job (SP_KAFKA_IN_JOB_*) on the thread pool; it owns `l`. */
void sp_kafka_in_job(sp_kafka_in *k, int kind, rd_kafka_topic_partition_list_t *l);

/* kafka_in_group.c */
/** Leaves a partition's entries to their watchers and forgets its offsets. */
void sp_kafka_in_orphan(sp_kafka_in *k, sp_kafka_in_part *x);
/** The revoke's commit is done (or was not needed): gives the partitions up. */
void sp_kafka_in_unassign_done(sp_kafka_in *k);
/** The drain timer of a revoke or a stop. */
void sp_kafka_in_drain_check(uv_timer_t *t);
/** Pauses or resumes fetching the partitions in `l`. */
void sp_kafka_in_set_paused(sp_kafka_in *k, rd_kafka_topic_partition_list_t *l, int pause);
/** librdkafka's rebalance callback. */
void sp_kafka_in_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                              rd_kafka_topic_partition_list_t *l, void *opaque);
/** Takes the messages waiting in the consumer's queue, a budget a loop iteration. */
void sp_kafka_in_drain(sp_kafka_in *k);
/** The consumer queue's wake-up pipe. */
void sp_kafka_in_poll_cb(uv_poll_t *h, int status, int events);

/**
 * Parses a document the kafka output wrote (README, "The document") into `r`: @timestamp,
 * message, stream, container.id and .name; every other member as an extra (other members of
 * `container` as "container.<key>"). `tag` gets the document's "tag" (base NULL when absent).
 * Slices point into `s`. 0, or -1 when the value is not a JSON object.
 */
int sp_kafka_in_doc(const char *json, size_t len, sp_kafka_in_scratch *s, sp_record *r,
                    sp_slice *tag);

enum { SP_KAFKA_IN_DOC, SP_KAFKA_IN_LINE, SP_KAFKA_IN_INVALID };

/**
 * A message's value into `r` by `format` (SP_KAFKA_IN_JSON or _RAW): SP_KAFKA_IN_DOC, a document
 * (sp_kafka_in_doc); SP_KAFKA_IN_LINE, raw: the value as message; SP_KAFKA_IN_INVALID, json but
 * not a document: the value as message with the extra `kafka_invalid_json: true`. The time is
 * left to the caller when r->prec is 0xff. Never fails.
 */
int sp_kafka_in_decode(int format, const void *value, size_t len, sp_kafka_in_scratch *s,
                       sp_record *r, sp_slice *tag);

/** The `shipper-id` header's value (32 hex digits) into `id`: 0, or -1 leaving `id` as it was. */
int sp_kafka_in_hexid(const void *hex, size_t n, uint8_t id[16]);

/** Parses RFC 3339 ("2026-11-29T04:09:33.123Z", offsets allowed). 0 or -1. */
int sp_kafka_in_time(const char *s, size_t n, uint64_t *sec, uint32_t *nsec, uint8_t *prec);

#endif
