/* Slices and growable buffers: the two memory shapes every module passes around. */
#ifndef SP_SLICE_H
#define SP_SLICE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/** A borrowed view of bytes; never owns memory. */
typedef struct {
    const char *base;
    size_t len;
} sp_slice;

#define SP_SLICE_LIT(s) ((sp_slice){(s), sizeof(s) - 1})
#define SP_SLICE_NULL ((sp_slice){NULL, 0})

static inline sp_slice sp_slice_make(const void *base, size_t len)
{
    return (sp_slice){(const char *)base, len};
}

static inline sp_slice sp_slice_str(const char *s)
{
    return (sp_slice){s, s ? strlen(s) : 0};
}

static inline int sp_slice_eq(sp_slice a, sp_slice b)
{
    /* the first byte before memcmp: most unequal keys of equal length differ there */
    return a.len == b.len &&
           (a.len == 0 || (a.base[0] == b.base[0] && memcmp(a.base, b.base, a.len) == 0));
}

/* sp_slice_eq for short slices (keys): the bytes compared in line, no call to memcmp. */
static inline int sp_slice_eq_short(sp_slice a, sp_slice b)
{
    if (a.len != b.len) return 0;
    for (size_t i = 0; i < a.len; i++)
        if (a.base[i] != b.base[i]) return 0;
    return 1;
}

static inline int sp_slice_eq_lit(sp_slice a, const char *lit, size_t litlen)
{
    return a.len == litlen && memcmp(a.base, lit, litlen) == 0;
}
#define SP_SLICE_IS(s, lit) sp_slice_eq_lit((s), "" lit, sizeof("" lit) - 1)

/** An owned, growable byte buffer. Zero-initialised is an empty buffer. */
typedef struct {
    char *base;
    size_t len;
    size_t cap;
} sp_buf;

void sp_buf_grow_(sp_buf *b, size_t extra);

/** Makes room for `extra` more bytes; aborts on out-of-memory (nothing sane to do then). */
static inline void sp_buf_reserve(sp_buf *b, size_t extra)
{
    if (b->cap - b->len < extra) sp_buf_grow_(b, extra);
}
/**
 * Makes room for exactly `extra` more bytes, not rounded up to a power of two: for large
 * buffers sized once (chunks, frames), so 1.1 MiB does not take a 2 MiB block, which glibc
 * would map and unmap on every use (the mmap threshold set in core/daemon.c), faulting its
 * pages in each time.
 */
void sp_buf_reserve_exact(sp_buf *b, size_t extra);
/** Appends bytes (inline: filters and encoders append a few pieces per record). */
static inline void sp_buf_append(sp_buf *b, const void *p, size_t n)
{
    if (n == 0) return;
    sp_buf_reserve(b, n);
    memcpy(b->base + b->len, p, n);
    b->len += n;
}
/** Appends a printf-formatted string. */
void sp_buf_printf(sp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Appends one Prometheus line `metric{label="name"} v` (a plugin's counters and gauges). */
void sp_buf_metric(sp_buf *b, const char *metric, const char *label, const char *name, uint64_t v);
/** Frees the storage; the buffer is empty again. */
void sp_buf_free(sp_buf *b);

static inline void sp_buf_putc(sp_buf *b, char c)
{
    if (b->len == b->cap) sp_buf_grow_(b, 1);
    b->base[b->len++] = c;
}

static inline void sp_buf_lit_(sp_buf *b, const char *s, size_t n)
{
    if (b->cap - b->len < n) sp_buf_reserve(b, n);
    memcpy(b->base + b->len, s, n);
    b->len += n;
}
/* `"" lit` only compiles for string literals, so sizeof can never be a pointer size. */
#define SP_BUF_LIT(b, lit) sp_buf_lit_((b), "" lit, sizeof("" lit) - 1)

static inline sp_slice sp_buf_slice(const sp_buf *b)
{
    return (sp_slice){b->base, b->len};
}

/**
 * The hash of the open-addressing tables (tags, keys): FNV-1a 64's loop and prime, with the
 * offset basis these tables have always used, 1469598103934665603 (one digit short of FNV's
 * 14695981039346656037; as good for a table). Kept as is: the throttle filter seeds its summary
 * record ids with it.
 */
static inline uint64_t sp_hash_bytes(const void *s, size_t n)
{
    const uint8_t *p = (const uint8_t *)s;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

/** Allocation that aborts on failure instead of returning NULL. */
void *sp_malloc(size_t n);
void *sp_calloc(size_t n, size_t sz);
void *sp_realloc(void *p, size_t n);
char *sp_strndup(const char *s, size_t n);

#endif
