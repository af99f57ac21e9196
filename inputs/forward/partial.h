/*
 * Joining Docker's partial messages. Docker cuts lines over 16 KiB into pieces that carry
 * partial_message/partial_id/partial_ordinal/partial_last; all pieces of a line come over one
 * connection in order. The joiner keeps one pending line per (container_id, stream, partial_id),
 * emits the whole line with the first piece's time when the last piece arrives, cuts lines at
 * max_line_size, and gives up on a line whose last piece never comes after a timeout.
 */
#ifndef SP_PARTIAL_H
#define SP_PARTIAL_H

#include <stdint.h>

#include "list.h"
#include "record.h"

/** Called with each finished line; the record's slices are valid during the call only. */
typedef void (*sp_joiner_emit_fn)(void *ctx, sp_slice tag, const sp_record *r);

typedef struct {
    sp_list pending;
    size_t max_line;
    uint64_t timeout_ms;
    size_t held;         /* bytes held in pending lines */
    uint64_t splits;     /* lines cut at max_line */
    uint64_t timeouts;   /* lines emitted incomplete */
    uint64_t duplicates; /* pieces seen twice (a client's resend) and dropped */
    sp_joiner_emit_fn emit;
    void *ctx;
} sp_joiner;

void sp_joiner_init(sp_joiner *j, size_t max_line, uint64_t timeout_ms, sp_joiner_emit_fn emit,
                    void *ctx);
/**
 * Adds a piece (`r->message` is its text). `ordinal` is 1-based (0 if unknown); `last` ends
 * the line. Emits through the callback as lines complete or are cut.
 */
void sp_joiner_add(sp_joiner *j, sp_slice tag, const sp_record *r, sp_slice partial_id,
                   uint32_t ordinal, int last, uint64_t now_ms);
/** Emits lines older than the timeout (all of them when `all`), flagged incomplete. */
void sp_joiner_expire(sp_joiner *j, uint64_t now_ms, int all);
/** Frees pending lines without emitting. */
void sp_joiner_free(sp_joiner *j);

#endif
