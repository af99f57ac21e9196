/*
 * The kafka input's shared declarations: kafka_in.c (the consumer, rebalances, commits, the
 * descriptor) and kafka_in_doc.c (a document the kafka output wrote, back into a record).
 * docs/kafka.md, "The kafka input".
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
    sp_list pending;   /* sp_kafka_in_ent */
    sp_kafka_in_ent *last;
} sp_kafka_in_part;

/** Scratch buffers reused for every document (no allocation per record once grown). */
typedef struct {
    sp_buf str; /* unescaped strings */
    sp_buf ext; /* extras, MessagePack */
} sp_kafka_in_scratch;

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
