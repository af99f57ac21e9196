/*
 * Docker's json-file line format: one JSON object per line,
 * {"log":"text\n","stream":"stdout","attrs":{"k":"v"},"time":"2026-11-29T04:09:33.123456789Z"}.
 * The parser is pure (no I/O, no allocation beyond the caller's buffers) so it can be unit-tested
 * and fuzzed on its own.
 */
#ifndef SP_JSONFILE_H
#define SP_JSONFILE_H

#include <stdint.h>

#include "slice.h"

enum {
    SP_JF_ECORRUPT = -1, /* not a json-file line: bad JSON, bad escape, missing log/time */
};

/** One parsed line. Slices point into the line or into the caller's scratch buffer. */
typedef struct {
    sp_slice log;    /* unescaped, without the trailing '\n' */
    int partial;     /* the log did not end in '\n': a piece of a longer line */
    sp_slice stream; /* base == NULL when absent */
    uint64_t sec;
    uint32_t nsec;
    uint32_t nattrs; /* key/value pairs appended to `attrs` as MessagePack str/str */
} sp_jsonfile_line;

/**
 * Parses one line (without its '\n'). `scratch` receives unescaped strings (it is reset and
 * sized once, so slices into it stay valid until the next call); `attrs` is reset and receives
 * the attrs members as MessagePack key/value pairs. Returns 0 or SP_JF_ECORRUPT.
 */
int sp_jsonfile_parse(const char *line, size_t len, sp_jsonfile_line *out, sp_buf *scratch,
                      sp_buf *attrs);

/**
 * Parses an RFC 3339 timestamp ("2026-11-29T04:09:33.123456789Z", or with a ±hh:mm offset)
 * into UTC seconds and nanoseconds. 0 or SP_JF_ECORRUPT.
 */
int sp_rfc3339_parse(const char *s, size_t len, uint64_t *sec, uint32_t *nsec);

#endif
