/*
 * Fluentd Forward protocol v1 decoding, free of I/O so it can be unit-tested and fuzzed.
 * A frame is one MessagePack array: Message [tag, time, record, option?], Forward
 * [tag, [[time, record], ...], option?], PackedForward [tag, bin|str of entries, option?]
 * (gzip-compressed when option.compressed == "gzip"), or nil (a heartbeat).
 *
 * Wherever a time may stand, Fluent Bit 2.1+ sends [time, metadata] (metadata a map, usually
 * empty): entries [[time, metadata], record], and Message frames [tag, [time, metadata], record,
 * option?]. Its option `fluent_signal` says what the frame carries: 0 (or absent) logs, 1 metrics,
 * 2 traces in Fluent Bit's own encodings; only logs become records (docs/forward.md).
 */
#ifndef SP_FORWARD_PROTO_H
#define SP_FORWARD_PROTO_H

#include <stdint.h>

#include "mp.h"
#include "slice.h"

/** One entry of a frame, handed to the handler. */
typedef struct {
    sp_slice tag;
    uint64_t sec;
    uint32_t nsec;
    uint8_t prec;       /* 0: integer seconds; 9: EventTime or float */
    const uint8_t *rec; /* the record map, header included */
    const uint8_t *rec_end;
    uint32_t index; /* position of the entry in its frame */
    sp_slice chunk; /* option "chunk" (ack requested), or empty */
    sp_slice meta;  /* Fluent Bit's metadata map (MessagePack) when not empty, else empty */
} sp_fwd_entry;

typedef struct {
    void *ctx;
    /**
     * Called per entry in order. Returns the length of the record map it read (rec..rec_end
     * may extend past the record), 0 to let the decoder find it, or a negative error that
     * aborts the frame.
     */
    int (*entry)(void *ctx, const sp_fwd_entry *e);
    /** Called after all entries of a frame whose option asked for an ack. */
    void (*ack)(void *ctx, sp_slice chunk);
    sp_buf *inflate;     /* scratch for decompression, reused across frames */
    size_t max_inflated; /* bound on a frame's decompressed size */
} sp_fwd_handler;

enum {
    SP_FWD_EMALFORMED = -10, /* not MessagePack */
    SP_FWD_ESHAPE = -11,     /* MessagePack, but not a Forward frame */
    SP_FWD_ETOOBIG = -12,    /* over max_message_size or max_inflated */
    SP_FWD_EDEPTH = -13,     /* nesting too deep */
    SP_FWD_EGZIP = -14,      /* bad compressed entries */
};

/** sp_fwd_decode's answer for a frame of another signal than logs (acked, not decoded). */
#define SP_FWD_OTHER_SIGNAL 1

/**
 * Finds the end of the frame at the start of buf[0..len), resuming from `s`. Returns 1 when
 * complete (length s->off), 0 when more bytes are needed, or a negative SP_FWD_E* error.
 */
int sp_fwd_scan(sp_mp_scan *s, const uint8_t *buf, size_t len, size_t max_size);

/**
 * The fast path for Docker's frames: if buf starts with a complete, well-formed Message-mode
 * frame, decodes it without a separate scan, sets *consumed and returns 1. Returns 0 when it
 * is anything else (incomplete, another mode, malformed: the scanner then decides), or a
 * negative error from the handler.
 */
int sp_fwd_try_message(const uint8_t *buf, size_t len, size_t max_size, sp_fwd_handler *h,
                       size_t *consumed);

/**
 * Decodes one complete frame; 0, SP_FWD_OTHER_SIGNAL (a metrics or traces frame: its ack, if
 * asked, was given and nothing else was read), or a negative SP_FWD_E* (or handler) error.
 */
int sp_fwd_decode(const uint8_t *buf, size_t len, sp_fwd_handler *h);

/** The metric reason for an error code: "malformed", "bad_shape", "too_large", ... */
const char *sp_fwd_reason(int rc);

#endif
