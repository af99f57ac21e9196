/* `shipper-bench forward`: command line, thread start, progress display and the report.
 * The sending itself is in bench_conn.c.
 */
#include "bench_forward.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t total_sent(bench_conn_t *conns, size_t n)
{
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++)
        s += atomic_load_explicit(&conns[i].sent_records, memory_order_relaxed);
    return s;
}

/* Accepts "--name value" and "--name=value". Returns the value or NULL if arg is not --name. */
static const char *opt_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0) return NULL;
    if (argv[*i][n] == '=') return argv[*i] + n + 1;
    if (argv[*i][n] != '\0') return NULL;
    if (*i + 1 >= argc) bench_usage_die("forward: %s needs a value", name);
    return argv[++*i];
}

static uint64_t opt_count(const char *name, const char *v, uint64_t min)
{
    uint64_t x;
    if (bench_parse_count(v, &x) != 0 || x < min)
        bench_usage_die("forward: bad value for %s: '%s' (want an integer >= %llu)", name, v,
                        (unsigned long long)min);
    return x;
}

static void parse_opts(bench_fwd_opts_t *o, int argc, char **argv)
{
    *o = (bench_fwd_opts_t){.addr = "127.0.0.1:24224",
                            .mode = BENCH_MODE_MESSAGE,
                            .records = 1000000,
                            .size = 106,
                            .conns = 1,
                            .batch = 1000,
                            .window = 1,
                            .containers = 1,
                            .ack_timeout = 10.0,
                            .tag = "docker.bench"};
    for (int i = 1; i < argc; i++) {
        const char *v;
        if ((v = opt_value(argc, argv, &i, "--addr")) != NULL) {
            o->addr = v;
        } else if ((v = opt_value(argc, argv, &i, "--mode")) != NULL) {
            if (strcmp(v, "message") == 0)
                o->mode = BENCH_MODE_MESSAGE;
            else if (strcmp(v, "forward") == 0)
                o->mode = BENCH_MODE_FORWARD;
            else if (strcmp(v, "packed") == 0)
                o->mode = BENCH_MODE_PACKED;
            else if (strcmp(v, "compressed") == 0)
                o->mode = BENCH_MODE_COMPRESSED;
            else
                bench_usage_die("forward: --mode must be message, forward, packed or compressed");
        } else if ((v = opt_value(argc, argv, &i, "--records")) != NULL) {
            o->records = opt_count("--records", v, 1);
        } else if ((v = opt_value(argc, argv, &i, "--size")) != NULL) {
            o->size = opt_count("--size", v, 1);
        } else if ((v = opt_value(argc, argv, &i, "--conns")) != NULL) {
            o->conns = opt_count("--conns", v, 1);
        } else if ((v = opt_value(argc, argv, &i, "--batch")) != NULL) {
            o->batch = opt_count("--batch", v, 1);
        } else if ((v = opt_value(argc, argv, &i, "--window")) != NULL) {
            o->window = opt_count("--window", v, 1);
        } else if ((v = opt_value(argc, argv, &i, "--containers")) != NULL) {
            o->containers = opt_count("--containers", v, 1);
        } else if ((v = opt_value(argc, argv, &i, "--ack-timeout")) != NULL) {
            char *end;
            o->ack_timeout = strtod(v, &end);
            if (*end != '\0' || !(o->ack_timeout > 0))
                bench_usage_die("forward: bad value for --ack-timeout: '%s' (seconds)", v);
        } else if ((v = opt_value(argc, argv, &i, "--tag")) != NULL) {
            o->tag = v;
        } else if ((v = opt_value(argc, argv, &i, "--stamp-file")) != NULL) {
            o->stamp_file = v;
        } else if (strcmp(argv[i], "--ack") == 0) {
            o->ack = 1;
        } else if (strcmp(argv[i], "--eventtime") == 0) {
            o->eventtime = 1;
        } else if (strcmp(argv[i], "--json") == 0) {
            o->json = 1;
        } else if (strcmp(argv[i], "--quiet") == 0) {
            o->quiet = 1;
        } else if (strcmp(argv[i], "--progress") == 0) {
            o->progress = 1;
        } else {
            bench_usage_die("forward: unknown option '%s' (see shipper-bench --help)", argv[i]);
        }
    }
    if (o->conns > 4096) bench_usage_die("forward: --conns is at most 4096");
    if (o->batch > UINT32_MAX || o->containers > UINT32_MAX || o->window > 1000000)
        bench_usage_die("forward: --batch, --containers or --window too large");
    if (o->size > 256ull * 1024 * 1024) bench_usage_die("forward: --size is at most 256MiB");
}

int bench_forward_main(int argc, char **argv)
{
    bench_fwd_opts_t o;
    parse_opts(&o, argc, argv);
    signal(SIGPIPE, SIG_IGN); /* a closed socket is an error we report, not a silent death */

    uint32_t per_frame = o.mode == BENCH_MODE_MESSAGE ? 1 : (uint32_t)o.batch;
    uint64_t frame_est = per_frame * (o.size + 150);
    if (frame_est > 16ull * 1024 * 1024)
        fprintf(stderr,
                "shipper-bench: warning: frames of ~%llu bytes exceed shipper's default "
                "max_message_size (16MiB)\n",
                (unsigned long long)frame_est);

    size_t nconn = (size_t)o.conns;
    bench_conn_t *conns = bench_xcalloc(nconn, sizeof(*conns));
    uint32_t nonce = (uint32_t)(bench_wall_ns() ^ ((uint64_t)getpid() << 16));
    bench_run_t run = {0};
    pthread_barrier_init(&run.start, NULL, (unsigned)nconn + 1);
    for (size_t i = 0; i < nconn; i++) {
        bench_conn_t *c = &conns[i];
        c->id = (uint32_t)i;
        c->o = &o;
        c->fd = -1;
        c->nonce = nonce;
        c->run = &run;
        c->records = o.records / nconn + (i < o.records % nconn ? 1 : 0);
        c->per_frame = per_frame;
        c->full_frames = c->records / per_frame;
        c->tail_records = (uint32_t)(c->records % per_frame);
        if (pthread_create(&c->thread, NULL, bench_conn_thread, c) != 0)
            bench_die("forward: cannot start thread %zu", i);
    }

    /* Taken before the barrier so every thread's first write comes after it. */
    uint64_t mono0 = bench_now_ns(), wall0 = bench_wall_ns();
    pthread_barrier_wait(&run.start);

    /* Progress for a person watching; when piped only with --progress, so scripts read one
     * clean line. */
    bench_progress_t prog;
    bench_progress_init(&prog, o.quiet, o.progress, o.records, "records sent");
    size_t joined = 0;
    for (;;) {
        while (joined < nconn && pthread_tryjoin_np(conns[joined].thread, NULL) == 0)
            joined++;
        if (joined == nconn) break;
        usleep(50 * 1000);
        bench_progress_tick(&prog, total_sent(conns, nconn));
    }
    bench_progress_end(&prog);

    int failed = 0;
    uint64_t bytes = 0, t_first = UINT64_MAX, t_last = 0, nlat = 0;
    for (size_t i = 0; i < nconn; i++) {
        bench_conn_t *c = &conns[i];
        if (c->err[0]) {
            fprintf(stderr, "shipper-bench: %s\n", c->err);
            failed = 1;
        }
        bytes += c->bytes;
        nlat += c->nlat;
        if (c->t_first && c->t_first < t_first) t_first = c->t_first;
        if (c->t_last > t_last) t_last = c->t_last;
    }
    if (failed) return 1;

    double secs = (double)(t_last - t_first) / 1e9;
    if (secs <= 0) secs = 1e-9;
    printf("sent %llu records (%llu bytes) in %.3f s: %.0f rec/s, %.1f MB/s\n",
           (unsigned long long)o.records, (unsigned long long)bytes, secs, (double)o.records / secs,
           (double)bytes / secs / 1e6);
    if (o.ack && nlat > 0) {
        uint64_t *all = bench_xmalloc(nlat * sizeof(uint64_t));
        size_t k = 0;
        for (size_t i = 0; i < nconn; i++) {
            memcpy(all + k, conns[i].lat_ns, conns[i].nlat * sizeof(uint64_t));
            k += conns[i].nlat;
        }
        qsort(all, nlat, sizeof(uint64_t), cmp_u64);
        printf("ack latency over %llu frames: median %.3f ms, p99 %.3f ms, max %.3f ms\n",
               (unsigned long long)nlat, (double)all[nlat / 2] / 1e6,
               (double)all[(size_t)((double)(nlat - 1) * 0.99)] / 1e6, (double)all[nlat - 1] / 1e6);
        free(all);
    }
    fflush(stdout);

    if (o.stamp_file != NULL) {
        /* Wall-clock times so a script can compare them with when the daemon counted. */
        FILE *f = fopen(o.stamp_file, "w");
        if (f == NULL) bench_die("forward: cannot write %s: %s", o.stamp_file, strerror(errno));
        fprintf(f, "%llu %llu %llu %llu\n", (unsigned long long)(wall0 + (t_first - mono0)),
                (unsigned long long)(wall0 + (t_last - mono0)), (unsigned long long)o.records,
                (unsigned long long)bytes);
        fclose(f);
    }
    for (size_t i = 0; i < nconn; i++) {
        bench_block_free(&conns[i].main);
        bench_block_free(&conns[i].tail);
        free(conns[i].lat_ns);
    }
    free(conns);
    return 0;
}
