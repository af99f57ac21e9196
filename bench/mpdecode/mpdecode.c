/* shipper-mpdecode: decodes the same Forward frames with shipper/mp.c and with msgpack-c and
 * prints records/s and allocations per record for each (bench/run-msgpack.sh, README
 * "msgpack-c and mp.c").
 *
 * Frames come from shipper-bench's own builder (bench_payload.c: Docker-style records, encoded
 * with msgpack-c's packer). Every decoder visits every value of every record and folds it into
 * a checksum; the checksums must agree, so no decoder skips work the others do.
 *
 *   mp.c stream      bytes arrive in --read pieces into a receive buffer; sp_mp_scan_feed finds
 *                    the end of a frame (resuming across pieces), sp_mp_read walks it in place
 *   mp.c buffer      sp_mp_read walks the whole block at once
 *   unpacker stream  msgpack_unpacker fed the same pieces, msgpack_unpacker_next per frame
 *   unpack_next      msgpack_unpack_next over the whole block
 * PackedForward's bin is walked in place by mp.c and decoded with msgpack_unpack_next over the
 * bin by msgpack-c (the unpacker has no way to decode a sub-buffer).
 */
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "mp.h"

/* ---- allocation counter: the program's own malloc, forwarding to glibc's ---- */

#if defined(__SANITIZE_ADDRESS__)
#define MPD_COUNTING 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MPD_COUNTING 0
#endif
#endif
#ifndef MPD_COUNTING
#define MPD_COUNTING 1
#endif

static uint64_t mpd_allocs;

#if MPD_COUNTING
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

void *malloc(size_t n)
{
    mpd_allocs++;
    return __libc_malloc(n);
}
void *calloc(size_t n, size_t m)
{
    mpd_allocs++;
    return __libc_calloc(n, m);
}
void *realloc(void *p, size_t n)
{
    mpd_allocs++;
    return __libc_realloc(p, n);
}
void free(void *p)
{
    __libc_free(p);
}
#endif

typedef struct {
    uint64_t records;
    uint64_t sum;
} mpd_result;

/* ---- the checksum both sides compute ---- */

static inline void mpd_fold(uint64_t *sum, uint64_t v)
{
    *sum = (*sum ^ v) * 0x100000001b3ull;
}

/* ---- mp.c ---- */

static int mpd_mp_walk(const uint8_t **p, const uint8_t *end, uint64_t *sum)
{
    sp_mp_obj o;
    int rc = sp_mp_read(p, end, &o);
    if (rc) return rc;
    switch (o.type) {
    case SP_MP_UINT:
    case SP_MP_INT:
        mpd_fold(sum, o.v.u);
        break;
    case SP_MP_STR:
    case SP_MP_BIN:
    case SP_MP_EXT:
        mpd_fold(sum, o.s.len);
        if (o.s.len) mpd_fold(sum, (uint8_t)o.s.base[o.s.len - 1]);
        break;
    case SP_MP_ARRAY:
    case SP_MP_MAP: {
        uint64_t n = o.type == SP_MP_MAP ? 2 * (uint64_t)o.v.n : o.v.n;
        mpd_fold(sum, n);
        for (uint64_t i = 0; i < n; i++)
            if ((rc = mpd_mp_walk(p, end, sum))) return rc;
        break;
    }
    default:
        mpd_fold(sum, o.type);
    }
    return 0;
}

/* One Forward frame [tag, time|entries|bin, ...]: counts its records and walks every value. */
static int mpd_mp_frame(const uint8_t **p, const uint8_t *end, mpd_result *r)
{
    sp_mp_obj a, x;
    int rc = sp_mp_read(p, end, &a);
    if (rc || a.type != SP_MP_ARRAY || a.v.n < 2) return rc ? rc : -1;
    if ((rc = mpd_mp_walk(p, end, &r->sum))) return rc; /* tag */
    const uint8_t *at = *p;
    uint32_t rest = 2;
    if ((rc = sp_mp_read(p, end, &x))) return rc;
    if (x.type == SP_MP_ARRAY) { /* Forward */
        r->records += x.v.n;
        mpd_fold(&r->sum, x.v.n);
        for (uint32_t i = 0; i < x.v.n; i++)
            if ((rc = mpd_mp_walk(p, end, &r->sum))) return rc;
    } else if (x.type == SP_MP_BIN || x.type == SP_MP_STR) { /* PackedForward */
        const uint8_t *q = (const uint8_t *)x.s.base, *qe = q + x.s.len;
        while (q < qe) {
            if ((rc = mpd_mp_walk(&q, qe, &r->sum))) return rc;
            r->records++;
        }
    } else { /* Message: the time, then the record below */
        *p = at;
        r->records++;
        rest = 1;
    }
    for (uint32_t i = rest; i < a.v.n; i++)
        if ((rc = mpd_mp_walk(p, end, &r->sum))) return rc;
    return 0;
}

static void mpd_mp_buffer(const bench_block_t *blk, size_t piece, mpd_result *r)
{
    const uint8_t *p = (const uint8_t *)blk->bytes.data, *end = p + blk->bytes.len;
    while (p < end)
        if (mpd_mp_frame(&p, end, r)) bench_die("mp.c: bad frame");
}

static void mpd_mp_stream(const bench_block_t *blk, size_t piece, mpd_result *r)
{
    static bench_buf_t rx;
    sp_mp_scan sc = {0};
    size_t in = 0;
    rx.len = 0;
    while (in < blk->bytes.len || rx.len) {
        size_t n = blk->bytes.len - in < piece ? blk->bytes.len - in : piece;
        if (n) bench_buf_append(&rx, blk->bytes.data + in, n); /* the read() */
        in += n;
        size_t start = 0;
        for (;;) {
            int rc = sp_mp_scan_feed(&sc, (const uint8_t *)rx.data + start, rx.len - start);
            if (rc < 0) bench_die("mp.c: scan error %d", rc);
            if (rc == 0) break;
            const uint8_t *p = (const uint8_t *)rx.data + start;
            if (mpd_mp_frame(&p, p + sc.off, r)) bench_die("mp.c: bad frame");
            start += sc.off;
            sp_mp_scan_reset(&sc);
        }
        memmove(rx.data, rx.data + start, rx.len - start); /* keep the partial frame */
        rx.len -= start;
        if (n == 0 && rx.len) bench_die("mp.c: trailing partial frame");
    }
}

/* ---- msgpack-c ---- */

static void mpd_obj_walk(const msgpack_object *o, uint64_t *sum)
{
    switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        mpd_fold(sum, o->via.u64);
        break;
    case MSGPACK_OBJECT_STR:
    case MSGPACK_OBJECT_BIN:
        mpd_fold(sum, o->via.str.size);
        if (o->via.str.size) mpd_fold(sum, (uint8_t)o->via.str.ptr[o->via.str.size - 1]);
        break;
    case MSGPACK_OBJECT_EXT:
        mpd_fold(sum, o->via.ext.size);
        if (o->via.ext.size) mpd_fold(sum, (uint8_t)o->via.ext.ptr[o->via.ext.size - 1]);
        break;
    case MSGPACK_OBJECT_ARRAY:
        mpd_fold(sum, o->via.array.size);
        for (uint32_t i = 0; i < o->via.array.size; i++)
            mpd_obj_walk(&o->via.array.ptr[i], sum);
        break;
    case MSGPACK_OBJECT_MAP:
        mpd_fold(sum, 2 * (uint64_t)o->via.map.size);
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            mpd_obj_walk(&o->via.map.ptr[i].key, sum);
            mpd_obj_walk(&o->via.map.ptr[i].val, sum);
        }
        break;
    default:
        mpd_fold(sum, o->type == MSGPACK_OBJECT_NIL ? SP_MP_NIL : SP_MP_BOOL);
    }
}

static void mpd_obj_frame(const msgpack_object *f, msgpack_unpacked *inner, mpd_result *r)
{
    if (f->type != MSGPACK_OBJECT_ARRAY || f->via.array.size < 2) bench_die("msgpack-c: bad frame");
    const msgpack_object *e = f->via.array.ptr;
    mpd_obj_walk(&e[0], &r->sum);
    uint32_t rest = 2;
    if (e[1].type == MSGPACK_OBJECT_ARRAY) {
        r->records += e[1].via.array.size;
        mpd_obj_walk(&e[1], &r->sum);
    } else if (e[1].type == MSGPACK_OBJECT_BIN || e[1].type == MSGPACK_OBJECT_STR) {
        size_t off = 0;
        while (off < e[1].via.bin.size) {
            int rc = msgpack_unpack_next(inner, e[1].via.bin.ptr, e[1].via.bin.size, &off);
            if (rc != MSGPACK_UNPACK_SUCCESS) bench_die("msgpack-c: bad packed entry (%d)", rc);
            mpd_obj_walk(&inner->data, &r->sum);
            r->records++;
        }
    } else {
        r->records++;
        rest = 1;
    }
    for (uint32_t i = rest; i < f->via.array.size; i++)
        mpd_obj_walk(&e[i], &r->sum);
}

static void mpd_unpack_next(const bench_block_t *blk, size_t piece, mpd_result *r)
{
    msgpack_unpacked u, inner;
    msgpack_unpacked_init(&u);
    msgpack_unpacked_init(&inner);
    size_t off = 0;
    while (off < blk->bytes.len) {
        int rc = msgpack_unpack_next(&u, blk->bytes.data, blk->bytes.len, &off);
        if (rc != MSGPACK_UNPACK_SUCCESS) bench_die("msgpack-c: unpack_next %d", rc);
        mpd_obj_frame(&u.data, &inner, r);
    }
    msgpack_unpacked_destroy(&inner);
    msgpack_unpacked_destroy(&u);
}

static void mpd_unpacker(const bench_block_t *blk, size_t piece, mpd_result *r)
{
    msgpack_unpacker up;
    msgpack_unpacked u, inner;
    if (!msgpack_unpacker_init(&up, MSGPACK_UNPACKER_INIT_BUFFER_SIZE))
        bench_die("msgpack-c: unpacker_init");
    msgpack_unpacked_init(&u);
    msgpack_unpacked_init(&inner);
    for (size_t in = 0; in < blk->bytes.len;) {
        size_t n = blk->bytes.len - in < piece ? blk->bytes.len - in : piece;
        if (!msgpack_unpacker_reserve_buffer(&up, n)) bench_die("msgpack-c: reserve_buffer");
        memcpy(msgpack_unpacker_buffer(&up), blk->bytes.data + in, n); /* the read() */
        msgpack_unpacker_buffer_consumed(&up, n);
        in += n;
        int rc;
        while ((rc = msgpack_unpacker_next(&up, &u)) == MSGPACK_UNPACK_SUCCESS)
            mpd_obj_frame(&u.data, &inner, r);
        if (rc != MSGPACK_UNPACK_CONTINUE) bench_die("msgpack-c: unpacker_next %d", rc);
    }
    msgpack_unpacked_destroy(&inner);
    msgpack_unpacked_destroy(&u);
    msgpack_unpacker_destroy(&up);
}

/* ---- driver ---- */

typedef struct {
    const char *name;
    void (*run)(const bench_block_t *blk, size_t piece, mpd_result *r);
} mpd_decoder;

static const mpd_decoder mpd_decoders[] = {
    {"mp.c stream", mpd_mp_stream},
    {"mp.c buffer", mpd_mp_buffer},
    {"msgpack_unpacker stream", mpd_unpacker},
    {"msgpack_unpack_next buffer", mpd_unpack_next},
};

static const char *mpd_arg(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) bench_usage_die("%s needs a value", argv[*i]);
    return argv[++*i];
}

static uint64_t mpd_count(const char *s)
{
    uint64_t v;
    if (bench_parse_count(s, &v) || v == 0) bench_usage_die("bad count '%s'", s);
    return v;
}

/* Runs each decoder `rounds` times over the block; prints the best round's rate. */
static void mpd_mode(const char *mode, const bench_block_t *blk, size_t piece, unsigned rounds)
{
    uint64_t want_sum = 0, want_records = 0;
    for (size_t d = 0; d < sizeof mpd_decoders / sizeof mpd_decoders[0]; d++) {
        double best = 0;
        uint64_t allocs = 0;
        mpd_result r = {0};
        for (unsigned k = 0; k < rounds; k++) {
            memset(&r, 0, sizeof r);
            uint64_t a0 = mpd_allocs, t0 = bench_now_ns();
            mpd_decoders[d].run(blk, piece, &r);
            uint64_t t = bench_now_ns() - t0;
            allocs = mpd_allocs - a0;
            double rate = (double)r.records * 1e9 / (double)(t ? t : 1);
            if (rate > best) best = rate;
        }
        if (d == 0) {
            want_sum = r.sum;
            want_records = r.records;
        } else if (r.sum != want_sum || r.records != want_records) {
            bench_die("%s %s: checksum %016llx/%llu records, mp.c saw %016llx/%llu", mode,
                      mpd_decoders[d].name, (unsigned long long)r.sum,
                      (unsigned long long)r.records, (unsigned long long)want_sum,
                      (unsigned long long)want_records);
        }
        char allocs_s[32] = "n/a (ASan)";
        if (MPD_COUNTING)
            snprintf(allocs_s, sizeof allocs_s, "%.4f", (double)allocs / (double)r.records);
        printf("%-8s %-27s %10.0f rec/s  %12s allocs/record  (%llu records, %llu allocs)\n", mode,
               mpd_decoders[d].name, best, allocs_s, (unsigned long long)r.records,
               (unsigned long long)(MPD_COUNTING ? allocs : 0));
        fflush(stdout);
    }
}

int main(int argc, char **argv)
{
    uint64_t records = 1000000, size = 200, batch = 1000, piece = 65536, rounds = 5;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--records") == 0)
            records = mpd_count(mpd_arg(argc, argv, &i));
        else if (strcmp(argv[i], "--size") == 0)
            size = mpd_count(mpd_arg(argc, argv, &i));
        else if (strcmp(argv[i], "--batch") == 0)
            batch = mpd_count(mpd_arg(argc, argv, &i));
        else if (strcmp(argv[i], "--read") == 0)
            piece = mpd_count(mpd_arg(argc, argv, &i));
        else if (strcmp(argv[i], "--rounds") == 0)
            rounds = mpd_count(mpd_arg(argc, argv, &i));
        else
            bench_usage_die("usage: shipper-mpdecode [--records N] [--size BYTES] [--batch B] "
                            "[--read BYTES] [--rounds R]");
    }
    static const struct {
        const char *name;
        bench_mode_t mode;
    } modes[] = {{"message", BENCH_MODE_MESSAGE},
                 {"forward", BENCH_MODE_FORWARD},
                 {"packed", BENCH_MODE_PACKED}};
    printf("# %llu records, %llu-byte log, batch %llu, reads of %llu bytes, best of %llu rounds\n",
           (unsigned long long)records, (unsigned long long)size, (unsigned long long)batch,
           (unsigned long long)piece, (unsigned long long)rounds);
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        bench_payload_opts_t o = {
            .mode = modes[m].mode, .tag = "docker.bench", .log_size = size, .containers = 8};
        uint32_t per = o.mode == BENCH_MODE_MESSAGE ? 1 : (uint32_t)batch;
        bench_block_t blk;
        bench_block_build(&blk, &o, (size_t)((records + per - 1) / per), per, 0);
        mpd_mode(modes[m].name, &blk, (size_t)piece, (unsigned)rounds);
        bench_block_free(&blk);
    }
    return 0;
}
