/* Shared between the forward subcommand's command line (bench_forward.c) and its
 * per-connection sender threads (bench_conn.c). */
#ifndef BENCH_FORWARD_H
#define BENCH_FORWARD_H

#include "bench.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct {
    const char *addr;
    bench_mode_t mode;
    uint64_t records;
    uint64_t size;
    uint64_t conns;
    uint64_t batch;
    uint64_t window;
    uint64_t containers;
    double ack_timeout;
    int ack, eventtime, json, quiet, progress;
    const char *tag;
    const char *stamp_file;
} bench_fwd_opts_t;

/* State all connection threads share. */
typedef struct {
    atomic_int failed;       /* set by the first thread that fails; the others stop early */
    pthread_barrier_t start; /* connect + encode happen before it, timing after it */
} bench_run_t;

typedef struct {
    uint32_t id;
    const bench_fwd_opts_t *o;
    int fd;
    uint64_t records;      /* this connection's share of --records */
    uint32_t per_frame;    /* records per frame: 1 in message mode, else --batch */
    uint64_t full_frames;  /* frames holding per_frame records */
    uint32_t tail_records; /* records of the one short last frame, 0 if none */
    bench_block_t main;    /* cycled through to send full_frames frames */
    bench_block_t tail;
    uint32_t nonce;
    bench_run_t *run;
    pthread_t thread;

    _Atomic uint64_t sent_records; /* read by the progress display */
    uint64_t bytes;
    uint64_t t_first, t_last;
    uint64_t *lat_ns;
    size_t nlat;
    char err[256];
} bench_conn_t;

/* Thread body: connects, builds the frames, waits at run->start, sends, closes. */
void *bench_conn_thread(void *arg);

#endif
