/*
 * es_sink: a fast Elasticsearch bulk sink for benchmarks, so the server is not the limit.
 * HTTP/1.1 keep-alive on libuv; a bulk request (Content-Length body, plain or gzip) is answered
 * with a correct per-item response, one item per action line (counted as newlines / 2),
 * without parsing documents. As Elasticsearch does, a request with filter_path gets filtered
 * items ({"errors":false,"items":[{"create":{"status":201}},...]}) and one without gets every
 * item in full (_index, _id, _version, result, _shards, _seq_no, _primary_term, status);
 * --ignore-filter-path answers in full always, as a proxy or a server that drops the query does.
 * --delay-ms D holds each bulk answer D milliseconds (a slow cluster: the sender's buffer fills).
 * GET /_sink/count answers {"count": N}: items acknowledged so far (counted when answered).
 *
 *   es_sink [--port P] [--port-file F] [--ignore-filter-path] [--delay-ms D]
 *   (port 0 or omitted: a free one)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>
#include <zlib.h>

typedef struct {
    uv_tcp_t tcp;
    char *buf;
    size_t len, cap;
    size_t body_len, body_got, newlines;
    int in_body, gzip, full;
    z_stream z;
    int z_init;
    uv_timer_t delay; /* --delay-ms: the answer waiting in `pending` */
    char *pending;
    size_t pending_len, pending_items;
    int handles; /* open libuv handles of the connection */
} conn;

static uint64_t total;
static int ignore_filter_path;
static uint64_t delay_ms;
static uv_loop_t *loop;

static void on_close(uv_handle_t *h)
{
    conn *c = h->data;
    if (--c->handles) return;
    if (c->z_init) inflateEnd(&c->z);
    free(c->pending);
    free(c->buf);
    free(c);
}

typedef struct {
    uv_write_t w;
    char head[128];
    char *body;
} reply_req;

static void on_written(uv_write_t *w, int status)
{
    reply_req *r = (reply_req *)w;
    free(r->body);
    free(r);
}

/* Sends `body` (malloc'ed; freed once written) after its head, without copying it. */
static void reply_owned(conn *c, char *body, size_t n)
{
    reply_req *r = malloc(sizeof *r);
    int hn = snprintf(r->head, sizeof r->head,
                      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      n);
    r->body = body;
    uv_buf_t b[2] = {uv_buf_init(r->head, (unsigned)hn), uv_buf_init(body, (unsigned)n)};
    uv_write(&r->w, (uv_stream_t *)&c->tcp, b, 2, on_written);
}

static void reply(conn *c, const char *body, size_t n)
{
    char *copy = malloc(n + 1);
    memcpy(copy, body, n);
    reply_owned(c, copy, n);
}

static void on_delay(uv_timer_t *t)
{
    conn *c = t->data;
    total += c->pending_items;
    reply_owned(c, c->pending, c->pending_len);
    c->pending = NULL;
}

/* Adds one to a 20-digit decimal number written in ASCII. */
static void dec_inc(char d[20])
{
    for (int i = 19; i >= 0; i--) {
        if (d[i] != '9') {
            d[i]++;
            return;
        }
        d[i] = '0';
    }
}

/*
 * Items are copied from a template with only the counter written in (a sprintf per item cost the
 * sink about a third of a CPU-second per million items: it shares the cores with shipper).
 */
static void bulk_done(conn *c)
{
    size_t items = c->newlines / 2;
    static const char filtered[] = "{\"create\":{\"status\":201}}";
    /* An item as Elasticsearch 8 writes it without filter_path (ids are 20 characters). */
    static const char full_a[] = "{\"create\":{\"_index\":\"logs-2026.11.30\",\"_id\":\"";
    static const char full_b[] =
        "\",\"_version\":1,\"result\":\"created\",\"_shards\":{\"total\":2,"
        "\"successful\":1,\"failed\":0},\"_seq_no\":";
    static const char full_c[] = ",\"_primary_term\":1,\"status\":201}}";
    size_t item_max =
        c->full ? sizeof full_a + sizeof full_b + sizeof full_c + 40 : sizeof filtered;
    size_t n = 64 + items * item_max;
    char *b = malloc(n), *p = b;
    char num[21];
    snprintf(num, sizeof num, "%020llu", (unsigned long long)total);
    p += sprintf(
        p, c->full ? "{\"took\":%d,\"errors\":false,\"items\":[" : "{\"errors\":false,\"items\":[",
        (int)(items / 1000) + 1);
    for (size_t i = 0; i < items; i++) {
        if (i) *p++ = ',';
        if (c->full) {
            int z = 0; /* _seq_no without the leading zeros */
            while (z < 19 && num[z] == '0')
                z++;
            memcpy(p, full_a, sizeof full_a - 1), p += sizeof full_a - 1;
            memcpy(p, num, 20), p += 20;
            memcpy(p, full_b, sizeof full_b - 1), p += sizeof full_b - 1;
            memcpy(p, num + z, (size_t)(20 - z)), p += 20 - z;
            memcpy(p, full_c, sizeof full_c - 1), p += sizeof full_c - 1;
            dec_inc(num);
        } else {
            memcpy(p, filtered, sizeof filtered - 1);
            p += sizeof filtered - 1;
        }
    }
    *p++ = ']';
    *p++ = '}';
    if (delay_ms) {
        c->pending = b;
        c->pending_len = (size_t)(p - b);
        c->pending_items = items;
        uv_timer_start(&c->delay, on_delay, delay_ms, 0);
        return;
    }
    total += items;
    reply_owned(c, b, (size_t)(p - b));
}

static size_t count_nl(const char *p, size_t n)
{
    size_t k = 0;
    const char *e = p + n;
    while ((p = memchr(p, '\n', (size_t)(e - p)))) {
        k++;
        p++;
    }
    return k;
}

/* Consumes body bytes; returns how many were used. */
static size_t body_bytes(conn *c, const char *p, size_t n)
{
    size_t want = c->body_len - c->body_got;
    if (n > want) n = want;
    if (c->gzip) {
        static char out[1 << 16];
        c->z.next_in = (Bytef *)p;
        c->z.avail_in = (uInt)n;
        while (c->z.avail_in) {
            c->z.next_out = (Bytef *)out;
            c->z.avail_out = sizeof out;
            int rc = inflate(&c->z, Z_NO_FLUSH);
            c->newlines += count_nl(out, sizeof out - c->z.avail_out);
            if (rc == Z_STREAM_END)
                inflateReset(&c->z);
            else if (rc != Z_OK && rc != Z_BUF_ERROR)
                break;
        }
    } else {
        c->newlines += count_nl(p, n);
    }
    c->body_got += n;
    if (c->body_got == c->body_len) {
        c->in_body = 0;
        bulk_done(c);
    }
    return n;
}

static int handle_head(conn *c, char *head, size_t n)
{
    head[n] = 0;
    if (!strncmp(head, "GET /_sink/count", 16)) {
        char b[64];
        int k = snprintf(b, sizeof b, "{\"count\":%llu}", (unsigned long long)total);
        reply(c, b, (size_t)k);
        return 0;
    }
    char *cl = strcasestr(head, "\r\ncontent-length:");
    c->body_len = cl ? strtoull(cl + 17, NULL, 10) : 0;
    c->gzip = strcasestr(head, "\r\ncontent-encoding: gzip") != NULL;
    char *eol = strstr(head, "\r\n");
    c->full =
        ignore_filter_path || !memmem(head, eol ? (size_t)(eol - head) : n, "filter_path=", 12);
    c->body_got = c->newlines = 0;
    if (c->gzip) {
        if (!c->z_init)
            inflateInit2(&c->z, 15 + 16);
        else
            inflateReset(&c->z);
        c->z_init = 1;
    }
    c->in_body = 1;
    if (c->body_len == 0) {
        c->in_body = 0;
        bulk_done(c);
    }
    return 0;
}

static void on_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    static char rbuf[1 << 18];
    *b = uv_buf_init(rbuf, sizeof rbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    conn *c = (conn *)s;
    if (nread < 0) {
        uv_close((uv_handle_t *)&c->delay, on_close);
        uv_close((uv_handle_t *)s, on_close);
        return;
    }
    const char *p = b->base;
    size_t n = (size_t)nread;
    while (n) {
        if (c->in_body) {
            size_t k = body_bytes(c, p, n);
            p += k, n -= k;
            continue;
        }
        /* header bytes: accumulate until the blank line */
        if (c->len + n + 1 > c->cap) {
            c->cap = (c->len + n + 1) * 2;
            c->buf = realloc(c->buf, c->cap);
        }
        memcpy(c->buf + c->len, p, n);
        size_t old = c->len;
        c->len += n;
        c->buf[c->len] = 0;
        char *e = strstr(c->buf, "\r\n\r\n");
        if (!e) return;
        size_t hl = (size_t)(e - c->buf) + 4;
        size_t used = hl - old; /* bytes of this read that were header */
        handle_head(c, c->buf, hl - 4);
        c->len = 0;
        p += used, n -= used;
    }
}

static void on_conn(uv_stream_t *srv, int status)
{
    conn *c = calloc(1, sizeof *c);
    uv_tcp_init(loop, &c->tcp);
    uv_timer_init(loop, &c->delay);
    c->tcp.data = c->delay.data = c;
    c->handles = 2;
    if (uv_accept(srv, (uv_stream_t *)&c->tcp)) {
        uv_close((uv_handle_t *)&c->delay, on_close);
        uv_close((uv_handle_t *)&c->tcp, on_close);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int main(int argc, char **argv)
{
    int port = 0;
    const char *port_file = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--ignore-filter-path"))
            ignore_filter_path = 1;
        else if (!strcmp(argv[i], "--port") && i + 1 < argc)
            port = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--port-file") && i + 1 < argc)
            port_file = argv[++i];
        else if (!strcmp(argv[i], "--delay-ms") && i + 1 < argc)
            delay_ms = strtoull(argv[++i], NULL, 10);
    }
    loop = uv_default_loop();
    uv_tcp_t srv;
    uv_tcp_init(loop, &srv);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", port, &a);
    if (uv_tcp_bind(&srv, (struct sockaddr *)&a, 0) ||
        uv_listen((uv_stream_t *)&srv, 128, on_conn)) {
        fprintf(stderr, "es_sink: cannot listen on port %d\n", port);
        return 1;
    }
    struct sockaddr_in got;
    int len = sizeof got;
    uv_tcp_getsockname(&srv, (struct sockaddr *)&got, &len);
    printf("listening on %d\n", ntohs(got.sin_port));
    fflush(stdout);
    if (port_file) {
        FILE *f = fopen(port_file, "w");
        fprintf(f, "%d\n", ntohs(got.sin_port));
        fclose(f);
    }
    return uv_run(loop, UV_RUN_DEFAULT);
}
