/* `shipper-bench jsonfile`: writes a log file byte-for-byte as Docker's json-file driver would.
 *
 * Format (moby daemon/logger/jsonfilelog/jsonlog): {"log":<string>,"stream":"stdout",
 * "time":<RFC3339Nano>}\n, where the string is escaped by Docker's own encoder rather than
 * encoding/json: `\"`, `\\`, `\n`, `\r` as shown, every other control and `<`, `>`, `&` as
 * \u00XX, invalid UTF-8 as \ufffd, U+2028/2029 escaped; and the time uses Go's RFC3339Nano,
 * which trims trailing zeros of the fraction (and drops it at 0 ns). Lines longer than 16 KiB
 * reach the driver as 16 KiB pieces; each piece is its own line whose log lacks the trailing
 * \n, and all pieces carry the first piece's time.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BENCH_PIECE 16384 /* Docker's copier buffer: the size of each partial piece */

/* Length of the valid UTF-8 sequence at p (Go's utf8.DecodeRune rules), or 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f; /* no surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (n < len || p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if ((p[i] & 0xc0) != 0x80) return 0;
    return len;
}

/* Docker's ffjsonWriteJSONBytesAsString, quotes included. */
static void json_escape(bench_buf_t *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    size_t start = 0, i = 0;
    bench_buf_reserve(out, n + 2); /* most text needs no escaping: one growth at most */
    bench_buf_putc(out, '"');
    while (i < n) {
        unsigned char b = u[i];
        if (b < 0x80) {
            if (b >= 0x20 && b != '\\' && b != '"' && b != '<' && b != '>' && b != '&') {
                i++;
                continue;
            }
            bench_buf_append(out, s + start, i - start);
            char esc[6] = {'\\', 'u', '0', '0', hex[b >> 4], hex[b & 15]};
            if (b == '\\' || b == '"') {
                esc[1] = (char)b;
                bench_buf_append(out, esc, 2);
            } else if (b == '\n' || b == '\r') {
                esc[1] = b == '\n' ? 'n' : 'r';
                bench_buf_append(out, esc, 2);
            } else {
                bench_buf_append(out, esc, 6);
            }
            start = ++i;
            continue;
        }
        size_t len = utf8_len(u + i, n - i);
        if (len == 0) {
            bench_buf_append(out, s + start, i - start);
            bench_buf_append(out, "\\ufffd", 6);
            start = ++i;
        } else if (len == 3 && b == 0xe2 && u[i + 1] == 0x80 && (u[i + 2] & 0xfe) == 0xa8) {
            bench_buf_append(out, s + start, i - start);
            bench_buf_append(out, u[i + 2] == 0xa8 ? "\\u2028" : "\\u2029", 6);
            start = i += 3;
        } else {
            i += len;
        }
    }
    bench_buf_append(out, s + start, n - start);
    bench_buf_putc(out, '"');
}

/* Go's time.Format(RFC3339Nano) in UTC, with quotes. */
static size_t format_time(char *out, uint64_t ns)
{
    time_t sec = (time_t)(ns / 1000000000ull);
    uint32_t frac = (uint32_t)(ns % 1000000000ull);
    struct tm tm;
    gmtime_r(&sec, &tm);
    size_t n = strftime(out, 40, "\"%Y-%m-%dT%H:%M:%S", &tm);
    if (frac != 0) {
        char digits[10];
        snprintf(digits, sizeof(digits), "%09u", frac);
        int len = 9;
        while (digits[len - 1] == '0')
            len--;
        out[n++] = '.';
        memcpy(out + n, digits, (size_t)len);
        n += (size_t)len;
    }
    memcpy(out + n, "Z\"", 2);
    return n + 2;
}

static void put_line(bench_buf_t *out, const char *log, size_t n, const char *time_str,
                     size_t time_len)
{
    bench_buf_append(out, "{\"log\":", 7);
    json_escape(out, log, n);
    bench_buf_append(out, ",\"stream\":\"stdout\",\"time\":", 26);
    bench_buf_append(out, time_str, time_len);
    bench_buf_append(out, "}\n", 2);
}

static void flush_to(int fd, bench_buf_t *out, const char *path, uint64_t *bytes)
{
    size_t off = 0;
    while (off < out->len) {
        ssize_t w = write(fd, out->data + off, out->len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) bench_die("jsonfile: write %s: %s", path, strerror(errno));
        off += (size_t)w;
    }
    *bytes += out->len;
    out->len = 0;
}

static uint64_t count_arg(const char *name, const char *v, uint64_t min)
{
    uint64_t x;
    if (v == NULL) bench_usage_die("jsonfile: %s needs a value", name);
    if (bench_parse_count(v, &x) != 0 || x < min)
        bench_usage_die("jsonfile: bad value for %s: '%s'", name, v);
    return x;
}

int bench_jsonfile_main(int argc, char **argv)
{
    const char *path = NULL;
    uint64_t records = 1000000, size = 106, partial_every = 0, partial_size = 40960;
    int append = 0, quiet = 0, progress = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--out") == 0 && v != NULL)
            path = argv[++i];
        else if (strcmp(a, "--records") == 0)
            records = count_arg(a, v, 1), i++;
        else if (strcmp(a, "--size") == 0)
            size = count_arg(a, v, 1), i++;
        else if (strcmp(a, "--partial-every") == 0)
            partial_every = count_arg(a, v, 0), i++;
        else if (strcmp(a, "--partial-size") == 0)
            partial_size = count_arg(a, v, BENCH_PIECE + 1), i++;
        else if (strcmp(a, "--append") == 0)
            append = 1;
        else if (strcmp(a, "--quiet") == 0)
            quiet = 1;
        else if (strcmp(a, "--progress") == 0)
            progress = 1;
        else
            bench_usage_die("jsonfile: unknown option or missing value '%s' (see --help)", a);
    }
    if (path == NULL) bench_usage_die("jsonfile: --out FILE is required");
    if (size > 64ull * 1024 * 1024 || partial_size > 1024ull * 1024 * 1024)
        bench_usage_die("jsonfile: --size or --partial-size too large");

    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0644);
    if (fd < 0) bench_die("jsonfile: cannot open %s: %s", path, strerror(errno));

    size_t maxlen = (size_t)(size > partial_size ? size : partial_size) + 1;
    char *text = bench_xmalloc(maxlen);
    bench_buf_t out;
    bench_buf_init(&out, 2 * 1024 * 1024);
    uint64_t lines = 0, pieces = 0, bytes = 0;
    /* Times step by 250 ns from a whole microsecond, so the fractions come out with 9, 8, 7 and
     * fewer digits after Go's trimming, as real files have. */
    uint64_t t = bench_wall_ns() / 1000 * 1000;
    char ts[48];
    bench_progress_t prog;
    bench_progress_init(&prog, quiet, progress, records, "records written");

    for (uint64_t r = 0; r < records; r++, t += 250) {
        size_t tl = format_time(ts, t);
        int long_line = partial_every > 0 && r % partial_every == partial_every - 1;
        if (!long_line) {
            size_t n = (size_t)size;
            bench_log_fill(text, n, 0, r, r, 0);
            text[n] = '\n';
            put_line(&out, text, n + 1, ts, tl);
            lines++;
        } else {
            /* ASCII only, so cutting at 16 KiB never splits a character and the joined line
             * equals what was "printed". */
            size_t n = (size_t)partial_size;
            bench_log_fill(text, n, 0, r, r, 1);
            text[n++] = '\n';
            for (size_t off = 0; off < n; off += BENCH_PIECE) {
                size_t piece = n - off < BENCH_PIECE ? n - off : BENCH_PIECE;
                put_line(&out, text + off, piece, ts, tl);
                lines++;
                if (off + piece < n) pieces++;
            }
        }
        if (out.len >= 1024 * 1024) {
            flush_to(fd, &out, path, &bytes);
            bench_progress_tick(&prog, r + 1); /* a clock read per MiB written */
        }
    }
    flush_to(fd, &out, path, &bytes);
    bench_progress_end(&prog);
    if (close(fd) != 0) bench_die("jsonfile: close %s: %s", path, strerror(errno));
    printf("wrote %llu lines (%llu records, %llu partial pieces), %llu bytes to %s\n",
           (unsigned long long)lines, (unsigned long long)records, (unsigned long long)pieces,
           (unsigned long long)bytes, path);
    bench_buf_free(&out);
    free(text);
    return 0;
}
