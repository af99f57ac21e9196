/* Growable buffers and aborting allocators. */
#include "slice.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static void sp_slice_oom(size_t n)
{
    fprintf(stderr, "shipper: out of memory allocating %zu bytes\n", n);
    abort();
}

void *sp_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) sp_slice_oom(n);
    return p;
}

void *sp_calloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    if (!p) sp_slice_oom(n * sz);
    return p;
}

void *sp_realloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p) sp_slice_oom(n);
    return p;
}

char *sp_strndup(const char *s, size_t n)
{
    char *d = sp_malloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

void sp_buf_reserve_exact(sp_buf *b, size_t extra)
{
    if (b->cap - b->len >= extra) return;
    b->base = sp_realloc(b->base, b->len + extra);
    b->cap = b->len + extra;
}

void sp_buf_grow_(sp_buf *b, size_t extra)
{
    if (b->cap - b->len >= extra) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < extra)
        cap *= 2;
    b->base = sp_realloc(b->base, cap);
    b->cap = cap;
}

void sp_buf_printf(sp_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0) return;
    sp_buf_reserve(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(b->base + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void sp_buf_metric(sp_buf *b, const char *metric, const char *label, const char *name, uint64_t v)
{
    sp_buf_printf(b, "%s{%s=\"%s\"} %llu\n", metric, label, name, (unsigned long long)v);
}

void sp_buf_free(sp_buf *b)
{
    free(b->base);
    b->base = NULL;
    b->len = b->cap = 0;
}
