/*
 * The Docker Engine API client (docs/architecture.md, "The Docker API client"): HTTP/1.1 over
 * the daemon's Unix socket with libcurl (which decodes Content-Length and chunked bodies and
 * keeps the timeouts), JSON with jansson. Blocking by design: callers are worker threads.
 */
#include "docker_api.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct sp_docker_api {
    char *socket;
    size_t max_body;
    int max_requests;
    int running; /* plain requests in flight, under `lock` */
    pthread_mutex_t lock;
    pthread_cond_t cond;
};

static uint64_t sp_docker_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static pthread_once_t sp_docker_curl_once = PTHREAD_ONCE_INIT;

static void sp_docker_curl_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

int sp_docker_api_open(sp_docker_api **out, const char *socket_path, int max_requests,
                       size_t max_body)
{
    if (access(socket_path, R_OK | W_OK)) return -errno;
    return sp_docker_api_new(out, socket_path, max_requests, max_body);
}

int sp_docker_api_new(sp_docker_api **out, const char *socket_path, int max_requests,
                      size_t max_body)
{
    pthread_once(&sp_docker_curl_once, sp_docker_curl_init); /* before any thread uses curl */
    sp_docker_api *a = sp_calloc(1, sizeof *a);
    a->socket = sp_strndup(socket_path, strlen(socket_path));
    a->max_body = max_body ? max_body : SP_DOCKER_MAX_BODY;
    a->max_requests = max_requests > 0 ? max_requests : 1;
    pthread_mutex_init(&a->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&a->cond, &ca);
    pthread_condattr_destroy(&ca);
    *out = a;
    return 0;
}

void sp_docker_api_close(sp_docker_api *a)
{
    if (!a) return;
    pthread_mutex_destroy(&a->lock);
    pthread_cond_destroy(&a->cond);
    free(a->socket);
    free(a);
}

const char *sp_docker_api_socket(const sp_docker_api *a)
{
    return a->socket;
}

/* Takes one of the `max_requests` slots, waiting at most `timeout_ms`: 0 or -ETIMEDOUT. */
static int sp_docker_slot_take(sp_docker_api *a, uint64_t timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += (time_t)(timeout_ms / 1000);
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    int rc = 0;
    pthread_mutex_lock(&a->lock);
    while (a->running >= a->max_requests && rc == 0)
        rc = pthread_cond_timedwait(&a->cond, &a->lock, &until);
    if (a->running < a->max_requests) {
        a->running++;
        rc = 0;
    } else {
        rc = -ETIMEDOUT;
    }
    pthread_mutex_unlock(&a->lock);
    return rc;
}

static void sp_docker_slot_give(sp_docker_api *a)
{
    pthread_mutex_lock(&a->lock);
    a->running--;
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->lock);
}

/* A curl result as a negative errno. */
static int sp_docker_curl_errno(CURLcode rc)
{
    switch (rc) {
    case CURLE_OK:
        return 0;
    case CURLE_OPERATION_TIMEDOUT:
        return -ETIMEDOUT;
    case CURLE_COULDNT_CONNECT:
        return -ECONNREFUSED;
    case CURLE_WRITE_ERROR:
        return -EMSGSIZE; /* our callbacks refuse only for size */
    case CURLE_ABORTED_BY_CALLBACK:
        return -ECANCELED;
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
        return -ECONNRESET;
    case CURLE_OUT_OF_MEMORY:
        return -ENOMEM;
    default:
        return -EPROTO;
    }
}

static CURL *sp_docker_easy(sp_docker_api *a, const char *path)
{
    CURL *c = curl_easy_init();
    if (!c) return NULL;
    sp_buf url = {0};
    SP_BUF_LIT(&url, "http://localhost");
    sp_buf_append(&url, path, strlen(path) + 1);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR,
                     "http"); /* nothing else reachable (docs/deploy.md, "Size") */
    curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, a->socket);
    curl_easy_setopt(c, CURLOPT_URL, url.base); /* curl copies it */
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    sp_buf_free(&url);
    return c;
}

typedef struct {
    sp_buf *body;
    size_t start, max;
} sp_docker_body;

static size_t sp_docker_body_cb(char *p, size_t size, size_t n, void *arg)
{
    sp_docker_body *b = arg;
    if (b->body->len - b->start + n > b->max) return 0;
    sp_buf_append(b->body, p, n);
    return n;
}

int sp_docker_get(sp_docker_api *a, const char *path, uint64_t timeout_ms, sp_buf *body)
{
    uint64_t t0 = sp_docker_now_ms();
    int rc = sp_docker_slot_take(a, timeout_ms);
    if (rc) return rc;
    uint64_t spent = sp_docker_now_ms() - t0;
    uint64_t left = spent < timeout_ms ? timeout_ms - spent : 1;
    CURL *c = sp_docker_easy(a, path);
    if (!c) {
        sp_docker_slot_give(a);
        return -ENOMEM;
    }
    sp_docker_body b = {body, body->len, a->max_body};
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)left);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sp_docker_body_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    long status = 0;
    rc = sp_docker_curl_errno(curl_easy_perform(c));
    if (rc == 0 && curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK)
        rc = status > 0 ? (int)status : -EPROTO;
    curl_easy_cleanup(c);
    sp_docker_slot_give(a);
    if (rc < 0) body->len = b.start;
    return rc;
}

int sp_docker_get_json(sp_docker_api *a, const char *path, uint64_t timeout_ms, json_t **out)
{
    *out = NULL;
    sp_buf body = {0};
    int rc = sp_docker_get(a, path, timeout_ms, &body);
    if (rc == 200) {
        *out = json_loadb(body.base ? body.base : "", body.len, 0, NULL);
        rc = *out ? 0 : -EBADMSG;
    }
    sp_buf_free(&body);
    return rc;
}

/* ---- streams ---- */

typedef struct {
    CURL *curl;
    const atomic_int *cancel;
    sp_docker_line_fn fn;
    void *ctx;
    sp_buf line;
    long status; /* 0 until the first body bytes */
    int stopped; /* what fn returned, or -EMSGSIZE */
} sp_docker_stream_st;

/* Hands out the complete lines in `p`, keeping a partial one for the next call. */
static int sp_docker_stream_lines(sp_docker_stream_st *s, const char *p, size_t n)
{
    while (n) {
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;
        if (s->line.len + take > SP_DOCKER_MAX_LINE) return -EMSGSIZE;
        if (!nl) {
            sp_buf_append(&s->line, p, take);
            return 0;
        }
        const char *l = p;
        size_t len = take;
        if (s->line.len) {
            sp_buf_append(&s->line, p, take);
            l = s->line.base;
            len = s->line.len;
        }
        if (len && l[len - 1] == '\r') len--;
        int rc = len ? s->fn(s->ctx, l, len) : 0;
        s->line.len = 0;
        if (rc) return rc;
        p += take + 1;
        n -= take + 1;
    }
    return 0;
}

static size_t sp_docker_stream_cb(char *p, size_t size, size_t n, void *arg)
{
    sp_docker_stream_st *s = arg;
    if (!s->status) curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &s->status);
    if (s->status != 200) return n; /* an error body: read and dropped */
    int rc = sp_docker_stream_lines(s, p, n);
    if (rc) {
        s->stopped = rc;
        return 0;
    }
    return n;
}

static int sp_docker_stream_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut,
                                     curl_off_t un)
{
    sp_docker_stream_st *s = arg;
    return s->cancel && atomic_load(s->cancel) ? 1 : 0;
}

int sp_docker_stream(sp_docker_api *a, const char *path, uint64_t connect_timeout_ms,
                     const atomic_int *cancel, sp_docker_line_fn fn, void *ctx)
{
    CURL *c = sp_docker_easy(a, path);
    if (!c) return -ENOMEM;
    sp_docker_stream_st s = {.curl = c, .cancel = cancel, .fn = fn, .ctx = ctx};
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sp_docker_stream_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, sp_docker_stream_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &s);
    CURLcode cc = curl_easy_perform(c);
    int rc;
    if (s.stopped)
        rc = s.stopped;
    else if (cc == CURLE_OK || cc == CURLE_PARTIAL_FILE || cc == CURLE_RECV_ERROR) {
        if (!s.status) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &s.status);
        if (s.status != 200)
            rc = s.status > 0 ? (int)s.status : -ECONNRESET;
        else
            rc = cc == CURLE_OK ? 0 : -ECONNRESET;
    } else
        rc = sp_docker_curl_errno(cc);
    curl_easy_cleanup(c);
    sp_buf_free(&s.line);
    return rc;
}

void sp_docker_escape(sp_buf *out, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            sp_buf_putc(out, (char)ch);
        } else {
            sp_buf_putc(out, '%');
            sp_buf_putc(out, hex[ch >> 4]);
            sp_buf_putc(out, hex[ch & 15]);
        }
    }
}
