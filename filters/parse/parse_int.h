/* The parse filter's decoders: text -> MessagePack key/value pairs, without allocating (they
 * append to the caller's reused buffers). */
#ifndef SP_PARSE_INT_H
#define SP_PARSE_INT_H

#include <stdint.h>

#include "filter.h"

/** Nesting limit of parsed JSON (deeper: not parsed). */
#define SP_PARSE_JSON_DEPTH 32

/** Scratch the decoders reuse for duplicate keys: `index` (json: a stack of the open objects'
 * members; logfmt, regex: sp_extras_dedup's pairs) and `table` (a hash table). */
typedef struct {
    sp_buf index, table;
} sp_parse_scratch;

/**
 * A JSON object (whitespace around it allowed) -> its members appended to `out` as MessagePack
 * pairs (nested objects and arrays as maps and arrays; a key repeated keeps its last value);
 * *n is the number of pairs. 0, or -1 when the text is not one JSON object (`out` is then
 * truncated back to its length before the call).
 */
int sp_parse_json(const char *s, size_t len, sp_buf *out, uint32_t *n, sp_parse_scratch *sc);

/** What sp_parse_json_places reads: the scratch and output of the last sp_parse_json call. */
typedef struct {
    const sp_parse_scratch *sc;
    const sp_buf *out; /* the pairs written from its start */
} sp_parse_json_at;

/**
 * sp_extras_fill_fn (filter.h) for the n pairs the last sp_parse_json call wrote: their keys and
 * raw values in x[0..n) from the places the decoder noted, without walking them; -1 when a key
 * was repeated (the places moved).
 */
int sp_parse_json_places(void *at, sp_extra *x, uint32_t n);

/**
 * A logfmt line (`key=value key="quoted value" flag`) -> pairs (values are strings; a bare key
 * is `true`; a key repeated keeps its last value). 0, or -1 when it is not logfmt: no
 * key=value pair at all, an unterminated quote, a quote right after a value, or an empty key.
 */
int sp_parse_logfmt(const char *s, size_t len, sp_buf *out, uint32_t *n, sp_parse_scratch *sc);

/* ---- time_key (parse_time.c) ---- */

enum {
    SP_PTIME_RFC3339,
    SP_PTIME_EPOCH,
    SP_PTIME_EPOCH_MS,
    SP_PTIME_EPOCH_US,
    SP_PTIME_EPOCH_NS,
    SP_PTIME_STRPTIME
};

/** Longest time text a strptime format reads (longer: not a time). */
#define SP_PARSE_TIME_MAX 127

/** time_format, compiled once. */
typedef struct {
    int kind;     /* SP_PTIME_* */
    char *before; /* strptime: the format before %L (all of it without %L) */
    char *after;  /* strptime: the format after %L; NULL without %L */
} sp_parse_time_fmt;

/** rfc3339 | epoch | epoch_ms | epoch_us | epoch_ns | a strptime format (with `%L`: the fraction
 * of a second). 0, or -1 with a message in why[0..whycap). */
int sp_parse_time_compile(sp_parse_time_fmt *t, const char *format, char *why, size_t whycap);
void sp_parse_time_free(sp_parse_time_fmt *t);
/** Text as a time: 0 with the seconds since the epoch (at most SP_TIME_MAX_SEC), nanoseconds and
 * the sub-second digits that came (0-9); -1 when it is not one in this format. */
int sp_parse_time_text(const sp_parse_time_fmt *t, const char *s, size_t len, uint64_t *sec,
                       uint32_t *nsec, uint8_t *prec);
/** A raw MessagePack value as a time: a string as sp_parse_time_text; for the epoch formats an
 * unsigned integer too, and for `epoch` a float (kept to the microsecond). */
int sp_parse_time(const sp_parse_time_fmt *t, sp_slice raw, uint64_t *sec, uint32_t *nsec,
                  uint8_t *prec);

/* ---- level_key (parse_level.c) ---- */

enum {
    SP_LEVEL_TRACE,
    SP_LEVEL_DEBUG,
    SP_LEVEL_INFO,
    SP_LEVEL_WARN,
    SP_LEVEL_ERROR,
    SP_LEVEL_FATAL
};
/** The normalised names, by SP_LEVEL_*. */
extern const char *const sp_parse_level_names[];
/** A level's text (any case; a number as text too) as SP_LEVEL_*, or -1 when unknown. */
int sp_parse_level_text(const char *s, size_t len);
/** A raw MessagePack value (string or unsigned integer) as SP_LEVEL_*, or -1. */
int sp_parse_level(sp_slice raw);

#endif
