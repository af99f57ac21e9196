/*
 * JSON encoding of records into the document (README, "The document"; docs/architecture.md); pure:
 * container metadata is merged in by document.c, which calls it. Output
 * is always valid UTF-8: invalid bytes become U+FFFD (one per maximal invalid subpart, as Unicode
 * recommends) and control characters are escaped. Plain ASCII runs are copied with memcpy.
 */
#ifndef SP_JSON_H
#define SP_JSON_H

#include <stdint.h>

#include "record.h"
#include "slice.h"

/** Appends `s` as a quoted JSON string. */
void sp_json_str(sp_buf *out, const char *s, size_t n);
/** Appends one MessagePack value (any type) as JSON and advances *p; -1 on malformed input. */
int sp_json_mp(sp_buf *out, const uint8_t **p, const uint8_t *end);
/** Appends "YYYY-MM-DDTHH:MM:SS[.fffffffff]Z" (quoted) with `prec` fraction digits (0..9). */
void sp_json_timestamp(sp_buf *out, uint64_t sec, uint32_t nsec, int prec);
/** Appends members to a document's "container" object (`,"image":{...}`) for container `id`. */
typedef void (*sp_json_container_fn)(void *ctx, sp_slice id, sp_buf *out);
/**
 * Appends the whole document for `r` (no trailing newline); when the record has a container id,
 * `more(ctx, id, out)` (optional) adds members to its "container" object. Reads no state of its
 * own: the document with container metadata is document.h's sp_document_record.
 */
void sp_json_document(sp_buf *out, const sp_record *r, sp_slice tag, sp_json_container_fn more,
                      void *ctx);

/** Writes code point `cp` (at most U+10FFFF) as 1 to 4 UTF-8 bytes at `o`; returns the end. Shared
 * by the JSON readers that unescape \uXXXX (inline: they run it per escape). */
static inline char *sp_json_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xc0 | (cp >> 6));
        *o++ = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xe0 | (cp >> 12));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *o++ = (char)(0x80 | (cp & 0x3f));
    } else {
        *o++ = (char)(0xf0 | (cp >> 18));
        *o++ = (char)(0x80 | ((cp >> 12) & 0x3f));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *o++ = (char)(0x80 | (cp & 0x3f));
    }
    return o;
}

#endif
