/* The metrics/health listener and the `--health` probe. */
#include "http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <poll.h>
#include <fcntl.h>
#include <errno.h>

#include "addr.h"
#include "listenfds.h"
#include "log.h"

struct sp_http {
    uv_tcp_t tcp;
    sp_http_handler handler;
    void *ctx;
};

typedef struct {
    uv_tcp_t tcp;
    sp_http *srv;
    char req[4096];
    size_t len;
    uv_write_t wreq;
    sp_buf resp;
    uv_timer_t timer;
    int closing;
} sp_http_conn;

static void sp_http_timer_closed(uv_handle_t *h)
{
    sp_http_conn *c = h->data;
    sp_buf_free(&c->resp);
    free(c);
}

static void sp_http_tcp_closed(uv_handle_t *h)
{
    sp_http_conn *c = h->data;
    uv_close((uv_handle_t *)&c->timer, sp_http_timer_closed);
}

static void sp_http_close(sp_http_conn *c)
{
    if (c->closing) return;
    c->closing = 1;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->tcp, sp_http_tcp_closed);
}

static void sp_http_written(uv_write_t *w, int status)
{
    sp_http_close(w->data);
}

static void sp_http_respond(sp_http_conn *c)
{
    char method[8], path[256];
    int status;
    sp_buf body = {0};
    const char *ctype = "text/plain; charset=utf-8";
    if (sscanf(c->req, "%7s %255s", method, path) != 2) {
        status = 400;
        SP_BUF_LIT(&body, "bad request\n");
    } else if (strcmp(method, "GET") && strcmp(method, "HEAD") && strcmp(method, "POST")) {
        status = 405;
        SP_BUF_LIT(&body, "only GET and POST\n");
    } else {
        char *q = strchr(path, '?');
        if (q) *q = '\0';
        status = c->srv->handler(c->srv->ctx, method, path, &body, &ctype);
    }
    const char *reason = status == 200   ? "OK"
                         : status == 202 ? "Accepted"
                         : status == 403 ? "Forbidden"
                         : status == 404 ? "Not Found"
                         : status == 405 ? "Method Not Allowed"
                         : status == 503 ? "Service Unavailable"
                                         : "Error";
    sp_buf_printf(&c->resp,
                  "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                  "Connection: close\r\n\r\n",
                  status, reason, ctype, body.len);
    if (strcmp(method, "HEAD") != 0) sp_buf_append(&c->resp, body.base, body.len);
    sp_buf_free(&body);
    uv_buf_t b = uv_buf_init(c->resp.base, (unsigned)c->resp.len);
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, sp_http_written)) sp_http_close(c);
}

static void sp_http_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    sp_http_conn *c = h->data;
    *buf = uv_buf_init(c->req + c->len, (unsigned)(sizeof c->req - 1 - c->len));
}

static void sp_http_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    sp_http_conn *c = st->data;
    if (n < 0) {
        sp_http_close(c);
        return;
    }
    c->len += (size_t)n;
    c->req[c->len] = '\0';
    if (strstr(c->req, "\r\n\r\n") || strstr(c->req, "\n\n")) {
        uv_read_stop(st);
        sp_http_respond(c);
    } else if (c->len >= sizeof c->req - 1) {
        sp_http_close(c);
    }
}

static void sp_http_timeout(uv_timer_t *t)
{
    sp_http_close(t->data);
}

static void sp_http_accept(uv_stream_t *server, int status)
{
    if (status < 0) return;
    sp_http *s = server->data;
    sp_http_conn *c = sp_calloc(1, sizeof *c);
    c->srv = s;
    uv_tcp_init(server->loop, &c->tcp);
    uv_timer_init(server->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp)) {
        sp_http_close(c);
        return;
    }
    uv_timer_start(&c->timer, sp_http_timeout, 10000, 0);
    uv_read_start((uv_stream_t *)&c->tcp, sp_http_alloc, sp_http_read);
}

int sp_http_start(uv_loop_t *loop, const char *addr, sp_http_handler h, void *ctx, sp_http **out)
{
    sp_addr a;
    const char *why;
    if (sp_addr_parse(addr, &a, &why) || a.is_unix) return UV_EINVAL;
    sp_http *s = sp_calloc(1, sizeof *s);
    s->handler = h;
    s->ctx = ctx;
    uv_tcp_init(loop, &s->tcp);
    s->tcp.data = s;
    /* Passed by the process this one took over from (an upgrade), or by systemd. */
    int fd = sp_listenfds_take(&a);
    int rc = fd >= 0 ? uv_tcp_open(&s->tcp, fd) : uv_tcp_bind(&s->tcp, (struct sockaddr *)&a.sa, 0);
    if (!rc) rc = uv_listen((uv_stream_t *)&s->tcp, 64, sp_http_accept);
    if (rc) {
        uv_close((uv_handle_t *)&s->tcp, (uv_close_cb)free);
        return rc;
    }
    *out = s;
    return 0;
}

void sp_http_stop(sp_http *s)
{
    if (s) uv_close((uv_handle_t *)&s->tcp, (uv_close_cb)free);
}

int sp_http_fd(sp_http *s)
{
    uv_os_fd_t fd;
    return s && uv_fileno((uv_handle_t *)&s->tcp, &fd) == 0 ? fd : -1;
}

int sp_http_probe(const char *url)
{
    if (strncmp(url, "http://", 7) != 0) {
        fprintf(stderr, "shipper: --health needs an http://host:port/path URL\n");
        return 1;
    }
    char hostport[300];
    const char *path = strchr(url + 7, '/');
    size_t n = path ? (size_t)(path - url - 7) : strlen(url + 7);
    if (n >= sizeof hostport) return 1;
    memcpy(hostport, url + 7, n);
    hostport[n] = '\0';
    if (!path) path = "/healthz";
    sp_addr a;
    const char *why;
    if (sp_addr_parse(hostport, &a, &why)) {
        fprintf(stderr, "shipper: --health %s: %s\n", url, why);
        return 1;
    }
    int fd = socket(a.sa.ss_family, SOCK_STREAM, 0);
    if (fd < 0) return 1;
    socklen_t sl =
        a.sa.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    struct timeval tv = {3, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a.sa, sl)) {
        fprintf(stderr, "shipper: --health %s: %s\n", url, strerror(errno));
        close(fd);
        return 1;
    }
    char req[512];
    int rl = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
                      path, hostport);
    if (write(fd, req, (size_t)rl) != rl) {
        close(fd);
        return 1;
    }
    char resp[64] = "";
    ssize_t got = read(fd, resp, sizeof resp - 1);
    close(fd);
    if (got <= 0) {
        fprintf(stderr, "shipper: --health %s: no answer\n", url);
        return 1;
    }
    resp[got] = '\0';
    int status = 0;
    sscanf(resp, "HTTP/%*s %d", &status);
    if (status != 200) {
        fprintf(stderr, "shipper: --health %s: status %d\n", url, status);
        return 1;
    }
    return 0;
}
