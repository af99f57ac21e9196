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

#endif
