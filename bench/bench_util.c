/* Small helpers shared by shipper-bench and shipper-mpdecode: clocks, counts, dying. */
#include "bench.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
