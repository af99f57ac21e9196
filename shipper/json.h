/*
 * JSON encoding of records into the document (README, "The document"; docs/architecture.md); pure:
 * container metadata is merged in by document.c, which calls it. Output
 * is always valid UTF-8: invalid bytes become U+FFFD (one per maximal invalid subpart, as Unicode
 * recommends) and control characters are escaped. Plain ASCII runs are copied with memcpy.
 */
#ifndef SP_JSON_H
#define SP_JSON_H

#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "record.h"
#include "slice.h"

/** Appends `s` as a quoted JSON string. */
void sp_json_str(sp_buf *out, const char *s, size_t n);
/** Appends one MessagePack value (any type) as JSON and advances *p; -1 on malformed input. */
int sp_json_mp(sp_buf *out, const uint8_t **p, const uint8_t *end);
/** Appends "YYYY-MM-DDTHH:MM:SS[.fffffffff]Z" (quoted) with `prec` fraction digits (0..9). */
void sp_json_timestamp(sp_buf *out, uint64_t sec, uint32_t nsec, int prec);
/** Days from 1970-01-01 to the civil date y-m-d (proleptic Gregorian; Howard Hinnant's
 * days_from_civil): what reading a timestamp needs, no timegm, no locale. */
int64_t sp_json_days(int64_t y, unsigned m, unsigned d);
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

/** The first byte of [p, end) that ends a JSON string's plain run: '"', '\\' or a control
 * character (< 0x20); `end` when none. 16 bytes a step with SSE2 (every x86-64), 8 with 64-bit
 * words elsewhere. Shared by the JSON readers (json-file lines, the kafka input's documents, the
 * parse filter): most of a log line is plain text and this scan is their largest cost. */
static inline const char *sp_json_special(const char *p, const char *end)
{
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
    const __m128i ctl = _mm_set1_epi8(0x1f);
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                                 _mm_cmpeq_epi8(_mm_max_epu8(v, ctl), ctl)); /* v <= 0x1f */
        unsigned bits = (unsigned)_mm_movemask_epi8(m);
        if (bits) return p + __builtin_ctz(bits);
        p += 16;
    }
#else
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    while (end - p >= 8) {
        uint64_t w, q, b;
        memcpy(&w, p, 8);
        q = w ^ (ones * '"');
        b = w ^ (ones * '\\');
        /* a byte of q or b zero, or a byte of w below 0x20 (exact for "any") */
        if ((((q - ones) & ~q) | ((b - ones) & ~b) | ((w - ones * 0x20) & ~w)) & highs) break;
        p += 8;
    }
#endif
    while (p < end && *p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
        p++;
    return p;
}

#endif
