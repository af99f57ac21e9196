/*
 * The record: one log line with its time, identity and fields, stored as MessagePack inside a
 * chunk. Every input writes this layout and every output reads it, so the document shape of
 * the README is decided in one place (json.c) no matter where a line came from.
 *
 * Layout: array(10) [sec, nsec, prec, id(bin 16), message, stream, container_id,
 *                    container_name, flags, extras(map)]
 * where message/stream/container_* are str or nil, and extras holds every other key as it came.
 */
#ifndef SP_RECORD_H
#define SP_RECORD_H

#include <stdint.h>

#include "slice.h"

enum {
    SP_REC_SPLIT = 1,      /* a longer line cut at max_line_size; more pieces follow */
    SP_REC_INCOMPLETE = 2, /* a partial line whose last piece never came */
};

/* The latest record time: 9999-12-31T23:59:59Z, the last second RFC 3339 (four-digit years)
 * and strftime index names can write. A later time is clamped to it (counted by the input). */
#define SP_TIME_MAX_SEC 253402300799ULL

typedef struct {
    uint64_t sec;
    uint32_t nsec;
    uint8_t prec; /* digits of sub-second precision that came in: 0 or 9 */
    uint8_t id[16];
    sp_slice message; /* base == NULL: absent */
    sp_slice stream;
    sp_slice container_id;
    sp_slice container_name; /* without Docker's leading '/' */
    uint32_t flags;
    uint32_t nextras;
    sp_slice extras; /* nextras raw MessagePack key/value pairs */
} sp_record;

/** Appends `r` to `out` in the chunk layout. */
void sp_record_write(sp_buf *out, const sp_record *r);

/** Reads the record at *p (slices point into the buffer) and advances. 0 or SP_MP_E*. */
int sp_record_read(const uint8_t **p, const uint8_t *end, sp_record *r);

/** A 128-bit hash of `n` bytes; record ids are made of it (stable across restarts). */
void sp_hash128(const void *data, size_t n, uint64_t seed, uint8_t out[16]);

#endif
