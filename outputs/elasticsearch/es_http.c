/*
 * libcurl's multi interface driven by the libuv loop: curl tells us which sockets to watch
 * (CURLMOPT_SOCKETFUNCTION → uv_poll) and when to call it back (CURLMOPT_TIMERFUNCTION →
 * uv_timer); we hand socket events back through curl_multi_socket_action. No thread and no
 * blocking call per request, and the multi handle's connection cache keeps connections alive.
 */
#include <stdlib.h>

#include "es.h"
#include "list.h"

struct sp_es_http {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    sp_list socks; /* sp_es_sock being watched */
    int handles;   /* libuv handles not yet closed */
    int freeing;
    void (*closed)(void *);
    void *closed_arg;
};

typedef struct {
    sp_list link;
    uv_poll_t poll;
    curl_socket_t fd;
    sp_es_http *h;
} sp_es_sock;

static void sp_es_http_check_done(sp_es_http *h)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(h->multi, &left))) {
        if (m->msg != CURLMSG_DONE) continue;
        CURL *e = m->easy_handle;
        CURLcode rc = m->data.result;
        sp_es_req *q = NULL;
        long status = 0;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&q);
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        curl_multi_remove_handle(h->multi, e);
        q->active = 0;
        q->done(q, rc, status);
    }
}

static void sp_es_http_handle_closed(uv_handle_t *hd)
{
    sp_es_http *h = hd->data;
    if (hd != (uv_handle_t *)&h->timer) free(sp_list_entry(hd, sp_es_sock, poll));
    if (--h->handles == 0 && h->freeing) {
        void (*cb)(void *) = h->closed;
        void *arg = h->closed_arg;
        free(h);
        cb(arg);
    }
}

static void sp_es_http_poll_cb(uv_poll_t *p, int status, int events)
{
    sp_es_sock *s = p->data;
    sp_es_http *h = s->h;
    int flags = 0;
    if (status < 0) flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
    int running;
    curl_multi_socket_action(h->multi, s->fd, flags, &running);
    sp_es_http_check_done(h);
}

static void sp_es_http_sock_close(sp_es_sock *s)
{
    sp_list_remove(&s->link);
    uv_poll_stop(&s->poll);
    s->poll.data = s->h;
    uv_close((uv_handle_t *)&s->poll, sp_es_http_handle_closed);
}

static int sp_es_http_socket_cb(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
    sp_es_http *h = userp;
    sp_es_sock *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            curl_multi_assign(h->multi, fd, NULL);
            sp_es_http_sock_close(s);
        }
        return 0;
    }
    if (!s) {
        s = sp_calloc(1, sizeof *s);
        s->fd = fd;
        s->h = h;
        if (uv_poll_init_socket(h->loop, &s->poll, fd)) {
            free(s);
            return -1;
        }
        s->poll.data = s;
        h->handles++;
        sp_list_insert_tail(&h->socks, &s->link);
        curl_multi_assign(h->multi, fd, s);
    }
    int ev = 0;
    if (what & CURL_POLL_IN) ev |= UV_READABLE;
    if (what & CURL_POLL_OUT) ev |= UV_WRITABLE;
    uv_poll_start(&s->poll, ev, sp_es_http_poll_cb);
    return 0;
}

static void sp_es_http_timer_cb(uv_timer_t *t)
{
    sp_es_http *h = t->data;
    int running;
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    sp_es_http_check_done(h);
}

static int sp_es_http_timer_fn(CURLM *m, long timeout_ms, void *userp)
{
    sp_es_http *h = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&h->timer);
    else
        uv_timer_start(&h->timer, sp_es_http_timer_cb, (uint64_t)timeout_ms, 0);
    return 0;
}

sp_es_http *sp_es_http_new(uv_loop_t *loop, long max_conns)
{
    sp_es_http *h = sp_calloc(1, sizeof *h);
    h->loop = loop;
    sp_list_init(&h->socks);
    h->multi = curl_multi_init();
    if (!h->multi) {
        free(h);
        return NULL;
    }
    uv_timer_init(loop, &h->timer);
    h->timer.data = h;
    h->handles = 1;
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, sp_es_http_socket_cb);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, sp_es_http_timer_fn);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, max_conns);
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, max_conns * 2);
    return h;
}

void sp_es_req_init(sp_es_req *q)
{
    memset(q, 0, sizeof *q);
    q->easy = curl_easy_init();
    /* Only http and https, redirects included: the image's libcurl has no working rtmp or ldap
     * (docs/deploy.md, "Image size"). */
    if (q->easy) curl_easy_setopt(q->easy, CURLOPT_PROTOCOLS_STR, "http,https");
}

int sp_es_http_send(sp_es_http *h, sp_es_req *q)
{
    q->resp.len = 0;
    q->errbuf[0] = 0;
    curl_easy_setopt(q->easy, CURLOPT_PRIVATE, q);
    curl_easy_setopt(q->easy, CURLOPT_ERRORBUFFER, q->errbuf);
    if (curl_multi_add_handle(h->multi, q->easy) != CURLM_OK) return -1;
    q->active = 1;
    return 0;
}

void sp_es_http_cancel(sp_es_http *h, sp_es_req *q)
{
    if (!q->active) return;
    curl_multi_remove_handle(h->multi, q->easy);
    q->active = 0;
}

void sp_es_http_free(sp_es_http *h, void (*closed)(void *), void *arg)
{
    h->freeing = 1;
    h->closed = closed;
    h->closed_arg = arg;
    curl_multi_cleanup(h->multi); /* may still report sockets removed */
    h->multi = NULL;
    while (!sp_list_empty(&h->socks))
        sp_es_http_sock_close(sp_list_entry(h->socks.next, sp_es_sock, link));
    uv_timer_stop(&h->timer);
    uv_close((uv_handle_t *)&h->timer, sp_es_http_handle_closed);
}
