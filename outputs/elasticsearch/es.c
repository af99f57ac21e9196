/*
 * The elasticsearch output: lifecycle and the life of one delivery.
 *
 * A delivery (one or more chunks) is sent as one or more bulk requests, one at a time: first the
 * records in order, cut at bulk_max_bytes; then, without waiting, dead-letter documents of
 * records that were rejected; then, after a capped exponential backoff, the records whose items
 * failed with 429/5xx, in a new body of just those. `workers` deliveries run at once, each with
 * its own job (buffers, curl handle, gzip stream), so nothing is allocated per record; a job that
 * only waits for its item retries is parked (sp_output_park), so the next delivery starts on a
 * new job meanwhile. Encoding and gzip run on libuv's thread pool; HTTP runs on the loop through
 * curl multi.
 * A whole-request failure hands the delivery back to the core (SP_OUT_RETRY), which backs off
 * and retries all of it: the records' deterministic _ids turn the repeats into 409s.
 * Settings and their check are in es_conf.c, counters and metrics in es_metrics.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "es.h"

/* ---- one delivery ---- */

static void sp_es_job_step(sp_es_job *j);
static void sp_es_maybe_closed(sp_es *es);

/* Counts what the job's buffers occupy against memory_limit (docs/architecture.md, "Who owns
 * what"): on the loop thread, after each step that may have grown them. A job with a delivery
 * counts at least a whole body and a response as large from the start, since they grow while
 * it runs: counted only once grown, they came on top of a buffer the inputs had already filled
 * to the limit (peak RSS 5-10 MiB past it with 256 MiB). */
static void sp_es_job_account(sp_es_job *j)
{
    size_t now = j->body.cap + j->gz_peak + j->req.resp.cap + j->errs.cap + j->enc.scratch.cap +
                 (size_t)j->cap * 3 * sizeof(sp_es_item);
    int waits = uv_is_active((uv_handle_t *)&j->timer); /* parked for an item retry */
    if (j->d && !waits && now < 2 * j->es->body_max) now = 2 * j->es->body_max;
    if (now == j->held) return;
    int64_t delta = (int64_t)now - (int64_t)j->held;
    j->held = now;
    sp_output_hold(j->es->o, delta);
}

/* Gives back a job's large buffers: a job only waiting for an item retry, or one of the extra
 * jobs made for such waits, holds nothing the budget has to carry. */
static void sp_es_job_release(sp_es_job *j)
{
    sp_buf_free(&j->body);
    sp_buf_free(&j->gz);
    sp_buf_free(&j->req.resp);
    j->gz_peak = 0;
    sp_es_job_account(j);
}

static void sp_es_job_retry_all(sp_es_job *j)
{
    sp_delivery *d = j->d;
    j->d = NULL;
    sp_es_job_account(j);
    sp_output_done(d, SP_OUT_RETRY, 0, 0);
}

static void sp_es_job_finish(sp_es_job *j)
{
    sp_delivery *d = j->d;
    j->d = NULL;
    /* Jobs past `workers` exist only while others wait for item retries. */
    for (int i = j->es->o->max_inflight; i < j->es->njobs; i++)
        if (j->es->jobs[i] == j) sp_es_job_release(j);
    sp_es_job_account(j);
    sp_output_done(d, SP_OUT_DONE, j->delivered, j->rejected);
}

static void sp_es_job_use_chunk(sp_es_job *j, uint32_t ci)
{
    const sp_chunk *c = j->d->chunks[ci];
    j->enc.tag = sp_slice_make(c->tag, c->tag_len);
    j->enc.ci = ci;
}

static void sp_es_job_encode_cb(uv_work_t *w)
{
    sp_es_job *j = w->data;
    const sp_delivery *d = j->d;
    j->body.len = 0;
    j->nsent = 0;
    if (j->from_now) {
        /* Items of one chunk at a time, in their order, while the body has room. */
        uint32_t taken = 0;
        while (taken < j->nnow) {
            uint32_t ci = j->now[taken].ci, run = 1;
            while (taken + run < j->nnow && j->now[taken + run].ci == ci)
                run++;
            const sp_chunk *c = d->chunks[ci];
            sp_es_job_use_chunk(j, ci);
            uint32_t k = sp_es_encode_items(&j->enc, &j->body, SP_CHUNK_BEGIN(c), c->data.len,
                                            j->now + taken, run);
            memcpy(j->sent + j->nsent, j->now + taken, k * sizeof *j->sent);
            j->nsent += k;
            taken += k;
            if (k < run) break; /* the body is full */
        }
        memmove(j->now, j->now + taken, (j->nnow - taken) * sizeof *j->now);
        j->nnow -= taken;
    } else {
        /* Fresh records, chunk after chunk, while the body has room. */
        while (j->cur_ci < d->nchunks) {
            const sp_chunk *c = d->chunks[j->cur_ci];
            sp_es_job_use_chunk(j, j->cur_ci);
            j->nsent += sp_es_encode_range(&j->enc, &j->body, SP_CHUNK_BEGIN(c), c->data.len,
                                           &j->cursor, j->sent + j->nsent);
            if (j->cursor < c->data.len) break; /* the body is full */
            j->cur_ci++;
            j->cursor = 0;
        }
    }
    j->dl_sent = 0;
    for (uint32_t i = 0; i < j->nsent; i++)
        j->dl_sent += j->sent[i].err != 0;
    if (j->es->conf->compression == SP_ES_COMP_GZIP && sp_es_gzip(j->gzc, &j->body, &j->gz))
        j->gz.len = 0; /* cannot happen with a sized buffer; sent uncompressed below */
}

static size_t sp_es_node_pick(sp_es *es)
{
    uint64_t now = uv_now(es->o->loop);
    size_t best = es->rr % es->nnodes;
    for (size_t i = 0; i < es->nnodes; i++) {
        size_t k = (es->rr + i) % es->nnodes;
        if (es->nodes[k].down_until <= now) {
            best = k;
            break;
        }
        if (es->nodes[k].down_until < es->nodes[best].down_until) best = k;
    }
    es->rr = best + 1;
    return best;
}

static void sp_es_node_failed(sp_es *es, int node)
{
    if (es->nnodes > 1) es->nodes[node].down_until = uv_now(es->o->loop) + es->conf->node_cooldown;
}

/* A job's work on the thread pool came back: 0, or -1 when the output is stopping (the job is
 * given up and the output may close now). */
static int sp_es_job_back(sp_es_job *j)
{
    sp_es *es = j->es;
    j->working = 0;
    if (!es->stopping) return 0;
    es->open--;
    sp_es_maybe_closed(es);
    return -1;
}

static void sp_es_job_encoded_cb(uv_work_t *w, int status)
{
    sp_es_job *j = w->data;
    sp_es *es = j->es;
    if (sp_es_job_back(j)) return;
    int gz = es->conf->compression == SP_ES_COMP_GZIP && j->gz.len;
    const sp_buf *b = gz ? &j->gz : &j->body;
    if (j->gz.len > j->gz_peak) j->gz_peak = j->gz.len;
    sp_es_job_account(j);
    es->bytes_encoded += j->body.len;
    es->bytes_sent += b->len;
    j->node = (int)sp_es_node_pick(es);
    CURL *e = j->req.easy;
    curl_easy_setopt(e, CURLOPT_URL, es->nodes[j->node].url);
    /* The first header is Content-Encoding when gzip is on; a body left uncompressed (gzip
     * failed) is sent with the rest of the list. */
    int skip = es->conf->compression == SP_ES_COMP_GZIP && !gz;
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, skip ? es->headers->next : es->headers);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, b->base);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)b->len);
    if (sp_es_http_send(es->http, &j->req)) {
        es->err_other++;
        sp_es_job_retry_all(j);
    }
}

static void sp_es_job_item_cb(void *ctx, uint32_t index, int status, const char *type,
                              const char *reason, const char *error)
{
    sp_es_job *j = ctx;
    sp_es *es = j->es;
    sp_es_item it = j->sent[index];
    int cls = sp_es_item_class(status);
    if (it.err) j->dl_notok++;
    if (cls == SP_ES_ITEM_RETRY) {
        j->retry[j->nretry++] = it;
        es->items_retried++;
        return;
    }
    if (it.err) {
        es->dl_failed++;
        sp_out_log_limited(es->o, &es->rl_dl, SP_LOG_ERROR,
                           "dead-letter document rejected (%d %s: %s); it is dropped", status, type,
                           reason);
        return;
    }
    j->rejected++;
    sp_es_count_rejected(es, type);
    sp_out_log_limited(es->o, &es->rl_item, SP_LOG_WARN, "document rejected (%d %s: %s)%s", status,
                       type, reason,
                       es->conf->dead_letter_index  ? "; sent to the dead-letter index"
                       : es->conf->dead_letter_file ? "; written to the dead-letter file"
                                                    : "");
    if (es->conf->dead_letter_index) {
        j->now[j->nnow++] = (sp_es_item){it.off, (uint32_t)j->errs.len + 1, it.ci};
        sp_buf_append(&j->errs, error, strlen(error) + 1);
        j->enc.errs = j->errs.base;
    } else if (es->dl_fd >= 0) {
        /* The rejected path only, and a local append: a plain write is fine on the loop. */
        const sp_chunk *c = j->d->chunks[it.ci];
        const uint8_t *p = SP_CHUNK_BEGIN(c) + it.off;
        sp_record r;
        if (sp_record_read(&p, SP_CHUNK_END(c), &r)) return;
        sp_es_job_use_chunk(j, it.ci);
        j->body.len = 0;
        sp_es_dead_letter_line(&j->enc, &j->body, &r, error);
        if (write(es->dl_fd, j->body.base, j->body.len) == (ssize_t)j->body.len)
            es->dl_written++;
        else
            es->dl_failed++;
    }
}

/*
 * HTTP 413: the server's http.max_content_length is below this body. Retrying the same body
 * would fail forever and hold the buffer, so the job halves its body limit (kept for its later
 * deliveries: the server's limit does not change often) and sends the same records again in the
 * smaller bodies. A single document that is still too large can never be indexed: it is
 * rejected like a mapping error (dead-letter file or index, counted by reason).
 */
static void sp_es_job_too_large(sp_es_job *j)
{
    sp_es *es = j->es;
    if (j->nsent == 1) {
        sp_es_job_item_cb(j, 0, 413, "request_too_large",
                          "the document alone is larger than the server accepts",
                          "{\"type\":\"request_too_large\",\"reason\":\"HTTP 413: the document "
                          "alone is larger than the server's http.max_content_length\"}");
        sp_es_job_step(j);
        return;
    }
    size_t half = j->body.len / 2;
    sp_out_log_limited(es->o, &es->rl_req, SP_LOG_WARN,
                       "%s: HTTP 413 for a bulk of %u documents (%zu bytes); sending "
                       "bodies of at most %zu bytes (lower bulk_max_bytes)",
                       es->nodes[j->node].base, j->nsent, j->body.len, half);
    j->enc.max_bytes = half;
    /* The sent records go first in the queue of records to send without waiting. */
    memmove(j->now + j->nsent, j->now, j->nnow * sizeof *j->now);
    memcpy(j->now, j->sent, j->nsent * sizeof *j->now);
    j->nnow += j->nsent;
    sp_es_job_step(j);
}

static void sp_es_job_scan_cb(uv_work_t *w)
{
    sp_es_job *j = w->data;
    sp_es_req *q = &j->req;
    j->scanned =
        sp_es_scan_response(q->resp.base ? q->resp.base : "", q->resp.len, j->nsent, &j->fails);
}

static void sp_es_job_scanned_cb(uv_work_t *w, int status)
{
    sp_es_job *j = w->data;
    sp_es *es = j->es;
    if (sp_es_job_back(j)) return;
    if (j->scanned < 0) {
        es->err_response++;
        sp_out_log_limited(es->o, &es->rl_req, SP_LOG_WARN,
                           "%s: incomplete or unreadable bulk response (%zu bytes); "
                           "retrying",
                           es->nodes[j->node].base, j->req.resp.len);
        sp_es_job_retry_all(j);
        return;
    }
    j->dl_notok = 0;
    sp_es_report_failures(&j->fails, sp_es_job_item_cb, j);
    uint32_t dl_ok = j->dl_sent - j->dl_notok;
    es->dl_written += dl_ok;
    j->delivered += (uint32_t)j->scanned - dl_ok;
    sp_es_job_step(j);
}

static void sp_es_job_http_done(sp_es_req *q, CURLcode rc, long status)
{
    sp_es_job *j = (sp_es_job *)((char *)q - offsetof(sp_es_job, req));
    sp_es *es = j->es;
    sp_es_count_status(es, rc, status);
    sp_es_job_account(j);
    const char *url = es->nodes[j->node].base;
    if (rc != CURLE_OK) {
        sp_out_log_limited(es->o, &es->rl_req, SP_LOG_WARN, "%s: %s; retrying", url,
                           q->errbuf[0] ? q->errbuf : curl_easy_strerror(rc));
        sp_es_node_failed(es, j->node);
        sp_es_job_retry_all(j);
        return;
    }
    if (status == 413) {
        sp_es_job_too_large(j);
        return;
    }
    if (status != 200) {
        sp_out_log_limited(es->o, &es->rl_req, SP_LOG_WARN, "%s: HTTP %ld: %.*s; retrying", url,
                           status, (int)(q->resp.len < 300 ? q->resp.len : 300),
                           q->resp.base ? q->resp.base : "");
        if (status == 429 || status >= 500) sp_es_node_failed(es, j->node);
        sp_es_job_retry_all(j);
        return;
    }
    /* A full-items response is a few MiB: it is read on the thread pool, not on the loop
     * (docs/elasticsearch.md, "Performance"). */
    j->working = 1;
    j->work.data = j;
    uv_queue_work(es->o->loop, &j->work, sp_es_job_scan_cb, sp_es_job_scanned_cb);
}

static void sp_es_job_retry_timer_cb(uv_timer_t *t)
{
    sp_es_job *j = t->data;
    sp_es_item *tmp = j->now;
    j->now = j->retry;
    j->nnow = j->nretry;
    j->retry = tmp;
    j->nretry = 0;
    sp_es_job_step(j);
}

static void sp_es_job_queue_encode(sp_es_job *j, int from_now)
{
    j->from_now = from_now;
    j->working = 1;
    j->work.data = j;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    j->enc.now_sec = (uint64_t)ts.tv_sec;
    j->enc.now_nsec = (uint32_t)ts.tv_nsec;
    uv_queue_work(j->es->o->loop, &j->work, sp_es_job_encode_cb, sp_es_job_encoded_cb);
}

static void sp_es_job_step(sp_es_job *j)
{
    if (j->cur_ci < j->d->nchunks) {
        sp_es_job_queue_encode(j, 0);
    } else if (j->nnow) {
        sp_es_job_queue_encode(j, 1);
    } else if (j->nretry) {
        j->rounds++;
        uint64_t ms = sp_backoff_ms(j->rounds, 250, j->es->o->retry_max_ms);
        sp_out_debug(j->es->o, "retrying %u items in %llu ms", j->nretry, (unsigned long long)ms);
        uv_timer_start(&j->timer, sp_es_job_retry_timer_cb, ms, 0);
        /* The job only waits now: the next delivery need not wait with it (up to a bound on
         * jobs waiting at once, each with its buffers). */
        int busy = 0;
        for (int i = 0; i < j->es->njobs; i++)
            busy += j->es->jobs[i]->d != NULL;
        if (busy < SP_ES_JOBS_PER_WORKER * j->es->o->max_inflight) {
            sp_es_job_release(j);
            sp_output_park(j->d);
        }
    } else {
        sp_es_job_finish(j);
    }
}

static sp_es_job *sp_es_job_new(sp_es *es);

static void sp_es_deliver(sp_output *o, sp_delivery *d)
{
    sp_es *es = o->data;
    sp_es_job *j = NULL;
    for (int i = 0; i < es->njobs && !j; i++)
        if (!es->jobs[i]->d) j = es->jobs[i];
    if (!j) j = sp_es_job_new(es); /* some wait for an item retry (parked) */
    uint32_t n = d->nrecords;
    if (n > j->cap) {
        j->cap = n;
        j->sent = sp_realloc(j->sent, n * sizeof *j->sent);
        j->now = sp_realloc(j->now, n * sizeof *j->now);
        j->retry = sp_realloc(j->retry, n * sizeof *j->retry);
    }
    j->d = d;
    j->cur_ci = 0;
    j->cursor = 0;
    j->nnow = j->nretry = j->nsent = 0;
    j->delivered = j->rejected = j->rounds = 0;
    j->errs.len = 0;
    sp_es_job_account(j);
    sp_es_job_step(j);
}

/* ---- lifecycle ---- */

static size_t sp_es_write_cb(char *ptr, size_t size, size_t n, void *ud)
{
    sp_buf *b = ud;
    sp_buf_append(b, ptr, size * n);
    return size * n;
}

static sp_es_job *sp_es_job_new(sp_es *es)
{
    sp_es_conf *c = es->conf;
    sp_es_job *j = sp_calloc(1, sizeof *j);
    es->jobs = sp_realloc(es->jobs, (size_t)(es->njobs + 1) * sizeof *es->jobs);
    es->jobs[es->njobs++] = j;
    j->es = es;
    sp_es_req_init(&j->req);
    j->req.done = sp_es_job_http_done;
    uv_timer_init(es->o->loop, &j->timer);
    j->timer.data = j;
    if (c->compression == SP_ES_COMP_GZIP) j->gzc = libdeflate_alloc_compressor(1);
    sp_es_index_init(&j->enc.ix, c->data_stream ? c->data_stream : c->index);
    j->enc.dl_index = c->dead_letter_index;
    j->enc.max_bytes = es->body_max;
    CURL *e = j->req.easy;
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)c->timeout);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)c->connect_timeout);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sp_es_write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &j->req.resp);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "shipper/" SHIPPER_VERSION);
    if (c->user) {
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(e, CURLOPT_USERNAME, c->user);
        curl_easy_setopt(e, CURLOPT_PASSWORD, c->password);
    }
    if (c->tls_ca_file) curl_easy_setopt(e, CURLOPT_CAINFO, c->tls_ca_file);
    if (c->tls_cert) curl_easy_setopt(e, CURLOPT_SSLCERT, c->tls_cert);
    if (c->tls_key) curl_easy_setopt(e, CURLOPT_SSLKEY, c->tls_key);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, c->tls_verify ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, c->tls_verify ? 2L : 0L);
    return j;
}

static int sp_es_start(sp_output *o)
{
    static int curl_ready;
    if (!curl_ready && curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK) curl_ready = 1;
    sp_es *es = sp_calloc(1, sizeof *es);
    es->o = o;
    es->conf = o->conf;
    es->dl_fd = -1;
    sp_es_conf *c = es->conf;
    if (c->dead_letter_file) {
        es->dl_fd = open(c->dead_letter_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (es->dl_fd < 0) {
            int rc = -errno;
            sp_out_error(o, "dead_letter_file %s: %s", c->dead_letter_file, strerror(errno));
            free(es);
            return rc;
        }
    }
    char *pipe = c->pipeline ? curl_easy_escape(NULL, c->pipeline, 0) : NULL;
    es->nnodes = c->url.n;
    es->nodes = sp_calloc(es->nnodes, sizeof *es->nodes);
    for (size_t i = 0; i < es->nnodes; i++) {
        sp_buf u = {0};
        const char *s = c->url.v[i];
        size_t n = strlen(s);
        while (n && s[n - 1] == '/')
            n--;
        sp_buf_append(&u, s, n);
        SP_BUF_LIT(&u, SP_ES_FILTER);
        if (pipe) sp_buf_printf(&u, "&pipeline=%s", pipe);
        sp_buf_putc(&u, 0);
        es->nodes[i].url = u.base;
        es->nodes[i].base = sp_strndup(s, n);
    }
    curl_free(pipe);
    /* Content-Encoding goes first, so sp_es_job_encoded_cb can send the list without it. */
    struct curl_slist *h = NULL;
    if (c->compression == SP_ES_COMP_GZIP) h = curl_slist_append(h, "Content-Encoding: gzip");
    h = curl_slist_append(h, "Content-Type: application/x-ndjson");
    h = curl_slist_append(h, "Expect:");
    if (c->api_key) {
        sp_buf a = {0};
        sp_buf_printf(&a, "Authorization: ApiKey %s", c->api_key);
        sp_buf_putc(&a, 0);
        h = curl_slist_append(h, a.base);
        sp_buf_free(&a);
    }
    es->headers = h;
    es->http = sp_es_http_new(o->loop, o->max_inflight);
    if (!es->http) return -ENOMEM;
    /* Each worker's job holds about three bodies (body, gzip copy, response). */
    uint64_t share = sp_output_memory_limit(o) / SP_ES_MEMORY_SHARE / 3 / (uint64_t)o->max_inflight;
    es->body_max = c->bulk_max_bytes;
    if (es->body_max > share) {
        es->body_max = share > SP_ES_BODY_MIN ? share : SP_ES_BODY_MIN;
        sp_out_info(o,
                    "bodies of at most %zu bytes (bulk_max_bytes %llu): memory_limit is "
                    "small",
                    es->body_max, (unsigned long long)c->bulk_max_bytes);
    }
    for (int i = 0; i < o->max_inflight; i++)
        sp_es_job_new(es);
    o->data = es;
    /* A delivery takes queued chunks up to about one body: documents are about twice their
     * MessagePack records. */
    o->batch_bytes = es->body_max / 2;
    sp_out_info(o, "elasticsearch %s%s, %d workers%s", c->url.v[0],
                c->url.n > 1 ? " (and more)" : "", o->max_inflight,
                c->compression == SP_ES_COMP_GZIP ? ", gzip" : "");
    return 0;
}

static void sp_es_free(sp_es *es)
{
    for (int i = 0; i < es->njobs; i++) {
        sp_es_job *j = es->jobs[i];
        if (j->held) sp_output_hold(es->o, -(int64_t)j->held);
        curl_easy_cleanup(j->req.easy);
        libdeflate_free_compressor(j->gzc);
        sp_buf_free(&j->req.resp);
        sp_buf_free(&j->body);
        sp_buf_free(&j->gz);
        sp_buf_free(&j->errs);
        sp_buf_free(&j->enc.scratch);
        free(j->sent);
        free(j->now);
        free(j->retry);
        free(j->fails.v);
        free(j);
    }
    for (size_t i = 0; i < es->nnodes; i++) {
        free(es->nodes[i].url);
        free(es->nodes[i].base);
    }
    free(es->nodes);
    free(es->jobs);
    curl_slist_free_all(es->headers);
    if (es->dl_fd >= 0) close(es->dl_fd);
    sp_output *o = es->o;
    o->data = NULL;
    free(es);
    sp_output_closed(o);
}

static void sp_es_maybe_closed(sp_es *es)
{
    if (es->open == 0) sp_es_free(es);
}

static void sp_es_closed_one(void *arg)
{
    sp_es *es = arg;
    es->open--;
    sp_es_maybe_closed(es);
}

static void sp_es_job_timer_closed(uv_handle_t *h)
{
    sp_es_closed_one(((sp_es_job *)h->data)->es);
}

static void sp_es_stop(sp_output *o)
{
    sp_es *es = o->data;
    if (!es) {
        sp_output_closed(o);
        return;
    }
    es->stopping = 1;
    es->open = 1 + es->njobs; /* the http handles and each job's timer */
    for (int i = 0; i < es->njobs; i++) {
        sp_es_job *j = es->jobs[i];
        /* Deliveries in flight are abandoned: the core keeps their chunks. */
        sp_es_http_cancel(es->http, &j->req);
        if (j->working) es->open++;
        uv_close((uv_handle_t *)&j->timer, sp_es_job_timer_closed);
    }
    sp_es_http_free(es->http, sp_es_closed_one, es);
}

const sp_output_type sp_output_elasticsearch = {
    .name = "elasticsearch",
    .fields = sp_es_fields,
    .conf_size = sizeof(sp_es_conf),
    .check = sp_es_check,
    .start = sp_es_start,
    .deliver = sp_es_deliver,
    .stop = sp_es_stop,
    .metrics = sp_es_metrics,
    .default_inflight = 2,
};
