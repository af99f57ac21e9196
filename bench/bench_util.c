/* Small helpers shared by shipper-bench and shipper-mpdecode: clocks, counts, dying. */
#include "bench.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t bench_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int bench_parse_count(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || s[0] == '-') return -1;
    uint64_t mul = 1;
    if (*end != '\0') {
        int binary = end[1] == 'i' && (end[2] == 'B' || end[2] == '\0');
        switch (end[0]) {
        case 'k':
        case 'K':
            mul = binary ? 1024ull : 1000ull;
            break;
        case 'm':
        case 'M':
            mul = binary ? 1024ull * 1024 : 1000000ull;
            break;
        case 'g':
        case 'G':
            mul = binary ? 1024ull * 1024 * 1024 : 1000000000ull;
            break;
        default:
            return -1;
        }
        size_t rest = strlen(end);
        if (!(rest == 1 || (binary && rest <= 3))) return -1;
    }
    *out = (uint64_t)v * mul;
    return 0;
}

static void __attribute__((noreturn)) vdie(int code, const char *fmt, va_list ap)
{
    fputs("shipper-bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    exit(code);
}

void bench_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vdie(1, fmt, ap);
}

void bench_usage_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vdie(2, fmt, ap);
}

void *bench_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL) bench_die("out of memory (%zu bytes)", n);
    return p;
}

void *bench_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL) bench_die("out of memory (%zu x %zu bytes)", n, size);
    return p;
}

void bench_progress_init(bench_progress_t *p, int quiet, int forced, uint64_t total,
                         const char *what)
{
    p->mode = quiet ? 0 : isatty(2) ? 1 : forced ? 2 : 0;
    p->what = what;
    p->total = total;
    p->t0 = p->last_t = bench_now_ns();
    p->last_n = 0;
}

void bench_progress_tick(bench_progress_t *p, uint64_t done)
{
    if (p->mode == 0) return;
    uint64_t now = bench_now_ns();
    if (now - p->last_t < 1000000000ull) return;
    double rate = (double)(done - p->last_n) * 1e9 / (double)(now - p->last_t);
    fprintf(stderr, "%sshipper-bench: %llu / %llu %s (%.0f%%), %.0f/s, %.0f s%s",
            p->mode == 1 ? "\r\033[K" : "", (unsigned long long)done, (unsigned long long)p->total,
            p->what, p->total ? 100.0 * (double)done / (double)p->total : 0.0, rate,
            (double)(now - p->t0) / 1e9, p->mode == 1 ? "" : "\n");
    fflush(stderr);
    p->last_t = now;
    p->last_n = done;
}

void bench_progress_end(bench_progress_t *p)
{
    if (p->mode == 1 && p->last_n) fputs("\r\033[K", stderr);
}
