/* Log text and prebuilt Forward-protocol frames.
 *
 * Frames are encoded once, before the clock starts, into contiguous blocks; the sender then
 * only patches fixed-width fields in place (12 sequence digits per record, a 24-char chunk id
 * per frame) and hands whole runs of frames to write(). That keeps the generator's cost per
 * record at a few nanoseconds, far below what the daemon spends decoding the same record.
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

/* Plausible application-log words. Some need JSON escaping (quote, <, >, &, tab, an ANSI colour
 * escape) and two are non-ASCII UTF-8, so the daemon's escaping and UTF-8 paths do real work, as
 * they do on real logs. */
static const char *const bench_words[] = {
    "GET",
    "POST",
    "/api/v1/orders",
    "/healthz",
    "status=200",
    "status=404",
    "user_id=4821",
    "latency_ms=12",
    "\"quoted\"",
    "<div>",
    "a&b",
    "\t",
    "caf\xc3\xa9",
    "na\xc3\xafve",
    "request_id=7f3a9c",
    "INFO",
    "WARN",
    "worker-3",
    "retrying",
    "connection",
    "upstream",
    "timeout=30s",
    "{\"k\":1}",
    "ok",
    "cache",
    "miss",
    "bytes=5120",
    "GET /index.html",
    "took",
    "done",
    "\x1b[32mOK\x1b[0m",
};
#define BENCH_NWORDS (sizeof(bench_words) / sizeof(bench_words[0]))

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int is_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80) return 0;
    return 1;
}

static void put_digits(char *dst, int width, uint64_t v)
{
    for (int i = width - 1; i >= 0; i--) {
        dst[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

void bench_seq_write(char *dst, uint64_t seq)
{
    put_digits(dst, BENCH_SEQ_DIGITS, seq);
}

int bench_log_fill(char *dst, size_t len, uint32_t stream, uint64_t variant, uint64_t seq,
                   int ascii_only)
{
    size_t pos = 0;
    int head = len >= BENCH_HEAD_LEN;
    if (head) {
        memcpy(dst, "bench c", 7);
        put_digits(dst + 7, 4, stream);
        memcpy(dst + 11, " s", 2);
        bench_seq_write(dst + BENCH_SEQ_OFFSET, seq);
        dst[BENCH_HEAD_LEN - 1] = ' ';
        pos = BENCH_HEAD_LEN;
    }
    uint64_t rng = variant * 0x2545F4914F6CDD1Dull + 7;
    for (;;) {
        const char *w = bench_words[splitmix64(&rng) % BENCH_NWORDS];
        size_t wl = strlen(w);
        if (ascii_only && !is_ascii(w)) continue;
        if (pos + wl + 1 > len) break;
        memcpy(dst + pos, w, wl);
        pos += wl;
        dst[pos++] = ' ';
    }
    /* Pad with ASCII so the text is exactly len bytes and never ends inside a character. */
    while (pos < len)
        dst[pos++] = '.';
    return head;
}

/* A container id is 64 lowercase hex digits, as Docker's are; derived from the index so
 * every run uses the same ids. */
static void container_id(char out[64], uint32_t c)
{
    static const char hex[] = "0123456789abcdef";
    uint64_t st = 0xC0FFEEull + c;
    for (int w = 0; w < 4; w++) {
        uint64_t v = splitmix64(&st);
        for (int i = 0; i < 16; i++)
            out[w * 16 + i] = hex[(v >> (4 * i)) & 15];
    }
}

typedef struct {
    const bench_payload_opts_t *o;
    uint32_t now;
    size_t nrec; /* records written so far in this block */
    uint64_t first_seq;
    size_t *seq_off; /* absolute offsets, or offsets into a scratch buffer */
} bench_enc_t;

static void put_time(bench_buf_t *b, bench_enc_t *e)
{
    if (e->o->eventtime)
        bench_mp_eventtime(b, e->now,
                           (uint32_t)((e->nrec * 1000003ull + 123456789ull) % 1000000000ull));
    else
        bench_mp_int(b, e->now);
}

/* Writes one record map the way Docker's fluentd driver fills it. If seq_off is kept, the
 * offset recorded is relative to the start of `b`; the caller rebases it. */
static void put_record(bench_buf_t *b, bench_enc_t *e)
{
    const bench_payload_opts_t *o = e->o;
    uint32_t c = (uint32_t)(e->nrec % o->containers);
    char id[64], name[32];

    container_id(id, c);
    int nl = snprintf(name, sizeof(name), "/bench-%u", c);
    bench_mp_map(b, 4);
    bench_mp_cstr(b, "container_id");
    bench_mp_str(b, id, 64);
    bench_mp_cstr(b, "container_name");
    bench_mp_str(b, name, (size_t)nl);
    bench_mp_cstr(b, "source");
    bench_mp_cstr(b, "stdout");
    bench_mp_cstr(b, "log");
    bench_mp_str_header(b, o->log_size);
    char *text = bench_buf_reserve(b, o->log_size);
    /* --json: the same text as the "msg" of a JSON object, made safe to embed unescaped. */
    static const char jpre[] = "{\"level\":\"info\",\"code\":200,\"msg\":\"";
    size_t skip = 0;
    if (o->json && o->log_size >= sizeof jpre - 1 + 2 + BENCH_HEAD_LEN) {
        skip = sizeof jpre - 1;
        memcpy(text, jpre, skip);
    }
    size_t tlen = skip ? o->log_size - skip - 2 : o->log_size;
    int head = bench_log_fill(text + skip, tlen, o->conn, e->nrec, e->first_seq + e->nrec, 0);
    if (skip) {
        for (size_t k = skip; k < skip + tlen; k++)
            if (text[k] == '"' || text[k] == '\\' || (unsigned char)text[k] < 0x20) text[k] = '_';
        memcpy(text + skip + tlen, "\"}", 2);
    }
    if (e->seq_off != NULL && head) e->seq_off[e->nrec] = b->len + skip + BENCH_SEQ_OFFSET;
    b->len += o->log_size;
    e->nrec++;
}

static void put_entry(bench_buf_t *b, bench_enc_t *e)
{
    bench_mp_array(b, 2);
    put_time(b, e);
    put_record(b, e);
}

/* gzip (not raw deflate or zlib): CompressedPackedForward carries a gzip stream. */
static void gzip_append(bench_buf_t *out, const bench_buf_t *in, z_stream *zs)
{
    size_t bound = deflateBound(zs, in->len) + 32;
    bench_buf_t tmp;
    bench_buf_init(&tmp, bound);
    zs->next_in = (Bytef *)in->data;
    zs->avail_in = (uInt)in->len;
    zs->next_out = (Bytef *)tmp.data;
    zs->avail_out = (uInt)bound;
    if (deflate(zs, Z_FINISH) != Z_STREAM_END) bench_die("gzip: deflate did not finish");
    tmp.len = bound - zs->avail_out;
    deflateReset(zs);
    bench_mp_bin_header(out, tmp.len);
    bench_buf_append(out, tmp.data, tmp.len);
    bench_buf_free(&tmp);
}

void bench_block_build(bench_block_t *blk, const bench_payload_opts_t *o, size_t nframes,
                       uint32_t per_frame, uint64_t first_seq)
{
    size_t nrec = nframes * per_frame;
    int patchable = o->mode != BENCH_MODE_COMPRESSED && o->log_size >= BENCH_HEAD_LEN;
    bench_buf_t *b = &blk->bytes;
    bench_buf_t entries = {0};
    z_stream zs;

    memset(blk, 0, sizeof(*blk));
    blk->nframes = nframes;
    blk->records_per_frame = per_frame;
    blk->frame_end = bench_xcalloc(nframes, sizeof(size_t));
    blk->seq_off = patchable ? bench_xcalloc(nrec, sizeof(size_t)) : NULL;
    blk->chunk_off = o->ack ? bench_xcalloc(nframes, sizeof(size_t)) : NULL;
    bench_buf_init(b, nrec * (o->log_size + 140) + nframes * 64 + 64);

    bench_enc_t e = {
        .o = o, .now = (uint32_t)time(NULL), .first_seq = first_seq, .seq_off = blk->seq_off};
    int packed = o->mode == BENCH_MODE_PACKED || o->mode == BENCH_MODE_COMPRESSED;
    if (o->mode == BENCH_MODE_COMPRESSED) {
        memset(&zs, 0, sizeof(zs));
        /* Level 1: the receiver's inflate cost hardly depends on the level, and the prebuild
         * of millions of records stays short. */
        if (deflateInit2(&zs, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            bench_die("gzip: deflateInit2 failed");
    }

    for (size_t f = 0; f < nframes; f++) {
        switch (o->mode) {
        case BENCH_MODE_MESSAGE:
            bench_mp_array(b, 4);
            bench_mp_cstr(b, o->tag);
            put_time(b, &e);
            put_record(b, &e);
            break;
        case BENCH_MODE_FORWARD:
            bench_mp_array(b, 3);
            bench_mp_cstr(b, o->tag);
            bench_mp_array(b, per_frame);
            for (uint32_t i = 0; i < per_frame; i++)
                put_entry(b, &e);
            break;
        case BENCH_MODE_PACKED:
        case BENCH_MODE_COMPRESSED: {
            size_t first = e.nrec;
            entries.len = 0;
            for (uint32_t i = 0; i < per_frame; i++)
                put_entry(&entries, &e);
            bench_mp_array(b, 3);
            bench_mp_cstr(b, o->tag);
            if (o->mode == BENCH_MODE_PACKED) {
                bench_mp_bin_header(b, entries.len);
                if (blk->seq_off != NULL) /* rebase offsets from `entries` onto the block */
                    for (size_t k = first; k < e.nrec; k++)
                        blk->seq_off[k] += b->len;
                bench_buf_append(b, entries.data, entries.len);
            } else {
                gzip_append(b, &entries, &zs);
            }
            break;
        }
        }

        /* Option map: {} like Docker without ack; "chunk" when asking for an ack. */
        uint32_t nopt = (o->ack ? 1 : 0) + (packed ? 1 : 0) + (o->mode == BENCH_MODE_COMPRESSED);
        bench_mp_map(b, nopt);
        if (o->ack) {
            bench_mp_cstr(b, "chunk");
            bench_mp_str_header(b, BENCH_CHUNK_LEN);
            blk->chunk_off[f] = b->len;
            memset(bench_buf_reserve(b, BENCH_CHUNK_LEN), 'A', BENCH_CHUNK_LEN);
            b->len += BENCH_CHUNK_LEN;
        }
        if (packed) {
            bench_mp_cstr(b, "size");
            bench_mp_int(b, per_frame);
        }
        if (o->mode == BENCH_MODE_COMPRESSED) {
            bench_mp_cstr(b, "compressed");
            bench_mp_cstr(b, "gzip");
        }
        blk->frame_end[f] = b->len;
    }
    if (o->mode == BENCH_MODE_COMPRESSED) deflateEnd(&zs);
    bench_buf_free(&entries);
}

void bench_block_free(bench_block_t *blk)
{
    bench_buf_free(&blk->bytes);
    free(blk->frame_end);
    free(blk->seq_off);
    free(blk->chunk_off);
    memset(blk, 0, sizeof(*blk));
}
