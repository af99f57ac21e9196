/* shipper-bench: load generator for the shipper daemon.
 *
 * Shared declarations of the bench_ modules: a growable buffer, the msgpack writer (msgpack-c's
 * packer, so the frames are not encoded by the author of shipper's decoder), the log-line
 * generator and the prebuilt frame blocks that the forward subcommand sends.
 */
#ifndef BENCH_H
#define BENCH_H

#include <stddef.h>
#include <stdint.h>

/* ---- buffer (bench_buf.c) ---- */

typedef struct {
    char *data;
    size_t len;
    size_t cap;
} bench_buf_t;

void bench_buf_init(bench_buf_t *b, size_t cap);
void bench_buf_free(bench_buf_t *b);
/* Makes room for `extra` more bytes and returns where they go (len is not advanced). */
char *bench_buf_reserve(bench_buf_t *b, size_t extra);
void bench_buf_append(bench_buf_t *b, const void *p, size_t n);
void bench_buf_putc(bench_buf_t *b, char c);

/* ---- msgpack writer (msgpack-c's packer) and ack reader (bench_msgpack.c) ---- */

void bench_mp_array(bench_buf_t *b, uint32_t n);
void bench_mp_map(bench_buf_t *b, uint32_t n);
void bench_mp_str_header(bench_buf_t *b, size_t n);
void bench_mp_str(bench_buf_t *b, const char *s, size_t n);
void bench_mp_cstr(bench_buf_t *b, const char *s);
void bench_mp_bin_header(bench_buf_t *b, size_t n);
/* Signed integer in the smallest form that Go's msgp (Docker's encoder) picks for an int64. */
void bench_mp_int(bench_buf_t *b, int64_t v);
/* Forward-protocol EventTime: fixext8 (0xd7), type 0, BE u32 seconds + BE u32 nanoseconds. */
void bench_mp_eventtime(bench_buf_t *b, uint32_t sec, uint32_t nsec);

/* Reads one ack response `{"ack": "<id>"}` from p[0..len).
 * Returns 1 and sets *used, *id and *idlen when a whole map was read, 0 when more bytes are needed,
 * -1 when the bytes are not an ack map (the message is in *err). */
int bench_mp_read_ack(const char *p, size_t len, size_t *used, const char **id, size_t *idlen,
                      const char **err);

/* Standard base64 with padding; writes 4*ceil(n/3) chars to out (no terminator). */
void bench_base64(const uint8_t *in, size_t n, char *out);

/* ---- helpers (bench_util.c) ---- */

uint64_t bench_now_ns(void);  /* monotonic */
uint64_t bench_wall_ns(void); /* CLOCK_REALTIME, for stamps other processes compare with */
/* Parses a decimal count with an optional k/m/g (x1000) or K/M/G-iB (x1024) suffix. */
int bench_parse_count(const char *s, uint64_t *out);
/* Prints "shipper-bench: <message>" and exits 1 (runtime failure). */
void bench_die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
/* Same, exit 2: a bad command line, like the daemon's exit code for bad flags. */
void bench_usage_die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
void *bench_xmalloc(size_t n);

/* Progress for runs longer than a second: one line to stderr per second, rewritten in place on
 * a terminal; off when stderr is not a terminal unless forced (--progress), off with --quiet. */
typedef struct {
    int mode; /* 0 off, 1 rewrite the line (terminal), 2 one line each time */
    const char *what;
    uint64_t total, t0, last_t, last_n;
} bench_progress_t;
void bench_progress_init(bench_progress_t *p, int quiet, int forced, uint64_t total,
                         const char *what);
/* Prints when a second has passed since the last line; `done` counts what `what` names. */
void bench_progress_tick(bench_progress_t *p, uint64_t done);
void bench_progress_end(bench_progress_t *p);
void *bench_xcalloc(size_t n, size_t size);

/* ---- log text (bench_payload.c) ---- */

/* Every generated log line starts with a fixed-width head "bench c0003 s000000001234 ": the
 * stream (connection) number and that stream's sequence number, so a receiver can check order
 * per connection. Lines shorter than the head carry only filler text. */
#define BENCH_HEAD_LEN 26   /* "bench c" 4 digits " s" 12 digits " " */
#define BENCH_SEQ_OFFSET 13 /* where the 12 sequence digits start within the head */
#define BENCH_SEQ_DIGITS 12

/* Writes exactly `len` bytes of plausible application log text (quotes, <>&, a tab, some
 * non-ASCII UTF-8 unless ascii_only) for record `variant`: the head when it fits, then words.
 * A UTF-8 character is never cut at the end. Returns 1 if the head (with `seq`) was written. */
int bench_log_fill(char *dst, size_t len, uint32_t stream, uint64_t variant, uint64_t seq,
                   int ascii_only);
/* Overwrites the 12 sequence digits at dst (zero padded decimal). */
void bench_seq_write(char *dst, uint64_t seq);

/* ---- prebuilt Forward frames (bench_payload.c) ---- */

typedef enum {
    BENCH_MODE_MESSAGE,
    BENCH_MODE_FORWARD,
    BENCH_MODE_PACKED,
    BENCH_MODE_COMPRESSED
} bench_mode_t;

#define BENCH_CHUNK_LEN 24 /* base64 of a 16-byte id, like fluent-logger-golang's */

typedef struct {
    bench_mode_t mode;
    const char *tag;
    size_t log_size;
    uint32_t containers;
    int eventtime;
    int json; /* the log text is a JSON object: {"level":"info","code":200,"msg":"..."} */
    int ack;
    uint32_t conn; /* connection number, part of the container-independent log text */
} bench_payload_opts_t;

/* A run of complete frames stored back to back, so a run of them is one write(). */
typedef struct {
    bench_buf_t bytes;
    size_t nframes;
    size_t *frame_end; /* frame i is bytes[frame_end[i-1] (or 0) .. frame_end[i]) */
    uint32_t records_per_frame;
    size_t *seq_off;   /* per record: where its 12 digits are; NULL if not patchable */
    size_t *chunk_off; /* per frame: where its 24-char chunk id is; NULL without ack */
} bench_block_t;

/* Builds `nframes` frames of `per_frame` records each (per_frame is 1 in message mode).
 * Record k of the block (k counts across frames) uses container k % containers and, when the
 * block cannot be patched later (compressed mode), sequence number first_seq + k. */
void bench_block_build(bench_block_t *blk, const bench_payload_opts_t *o, size_t nframes,
                       uint32_t per_frame, uint64_t first_seq);
void bench_block_free(bench_block_t *blk);
static inline size_t bench_block_frame_start(const bench_block_t *blk, size_t i)
{
    return i == 0 ? 0 : blk->frame_end[i - 1];
}

/* ---- subcommands ---- */

int bench_forward_main(int argc, char **argv);
int bench_jsonfile_main(int argc, char **argv);
/** `shipper-bench pingpong`: the round-trip floor of a one-in-flight request-ack client. */
int bench_pingpong_main(int argc, char **argv);

#endif
