/* The router with a fake output: answers in any order, retries, answers after stop, pausing. */
#include "unit.h"

#include "daemon.h"
#include "record.h"
#include "router.h"

/* ---- a fake output: keeps deliveries until the test answers them ---- */

#define FAKE_MAX 64

typedef struct {
    sp_delivery *d[FAKE_MAX];
    int n;          /* deliveries held (not answered yet) */
    int delivered;  /* deliveries started in total */
    int stopped;    /* stop was called */
    int hold_close; /* stop does not report closed by itself */
} fake_state;

static void fake_deliver(sp_output *o, sp_delivery *d)
{
    fake_state *f = o->data;
    assert_true(f->n < FAKE_MAX);
    f->d[f->n++] = d;
    f->delivered++;
}

static int fake_start(sp_output *o)
{
    return 0;
}

static void fake_stop(sp_output *o)
{
    fake_state *f = o->data;
    f->stopped = 1;
    if (!f->hold_close) sp_output_closed(o);
}

static const sp_conf_field fake_fields[] = {SP_CONF_END};
static const sp_output_type fake_type = {
    .name = "fake",
    .fields = fake_fields,
    .start = fake_start,
    .deliver = fake_deliver,
    .stop = fake_stop,
};

/* Takes delivery i out of the fake's list (to answer it). */
static sp_delivery *fake_take(fake_state *f, int i)
{
    assert_true(i < f->n);
    sp_delivery *d = f->d[i];
    memmove(&f->d[i], &f->d[i + 1], (size_t)(f->n - i - 1) * sizeof *f->d);
    f->n--;
    return d;
}

/* ---- a watcher that records how it was told ---- */

typedef struct {
    sp_chunk_watch w;
    int calls;
    int delivered;
} watch;

static void watch_cb(sp_chunk_watch *w, sp_chunk *c, int delivered)
{
    watch *x = (watch *)w;
    x->calls++;
    x->delivered = delivered;
}

/* ---- the harness: a loop, a router and N fake outputs ---- */

typedef struct {
    sp_daemon d; /* only for sp_output_closed, which finds the daemon through loop->data */
    sp_output outs[2];
    sp_output *outp[2];
    fake_state fakes[2];
} harness;

static harness *h_new(int nouts)
{
    harness *h = calloc(1, sizeof *h);
    uv_loop_init(&h->d.loop);
    h->d.loop.data = &h->d;
    h->d.open_components = 100; /* never "all closed": the test closes the router itself */
    sp_router *r = &h->d.router;
    sp_router_init(r, &h->d.loop);
    r->chunk_size = 4096;
    r->memory_limit = 1 << 20;
    r->retry_min_ms = 1;
    for (int i = 0; i < nouts; i++) {
        sp_output *o = &h->outs[i];
        o->type = &fake_type;
        o->name = "fake";
        o->match = "*";
        o->index = i;
        o->max_inflight = 4;
        o->retry_max_ms = 1;
        o->loop = &h->d.loop;
        o->router = r;
        o->data = &h->fakes[i];
        h->outp[i] = o;
    }
    r->outputs = h->outp;
    r->noutputs = (size_t)nouts;
    sp_router_start(r);
    return h;
}

static void h_free(harness *h)
{
    sp_router_close(&h->d.router);
    uv_run(&h->d.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&h->d.loop), 0);
    free(h);
}

/* Appends one record with `msg` to the open chunk of `tag`; returns that chunk. */
static sp_chunk *append(sp_router *r, const char *tag, const char *msg)
{
    sp_chunk *c = sp_router_chunk(r, sp_slice_str(tag));
    size_t before = c->data.len;
    sp_record rec = {0};
    rec.sec = 1;
    rec.message = sp_slice_str(msg);
    sp_record_write(&c->data, &rec);
    sp_router_commit(r, c, before, 1);
    return c;
}

/* ---- tests ---- */

/* The stop of an output began (as the daemon does it: closed = 1, then stop); its delivery in
 * flight then fails. The chunk was not delivered: its watchers must hear delivered = 0. */
static void test_retry_after_close_is_not_delivered(void **st)
{
    harness *h = h_new(1);
    sp_router *r = &h->d.router;
    sp_chunk *c = append(r, "t", "one");
    watch w = {{.cb = watch_cb}};
    sp_chunk_watch_add(c, &w.w);
    sp_router_flush(r, 1);
    assert_int_equal(h->fakes[0].n, 1);
    sp_output *o = &h->outs[0];
    o->closed = 1;
    h->fakes[0].hold_close = 1;
    o->type->stop(o);
    sp_output_done(fake_take(&h->fakes[0], 0), SP_OUT_RETRY, 0, 0);
    assert_int_equal(w.calls, 1);
    assert_int_equal(w.delivered, 0);
    assert_int_equal(o->delivered, 0);
    sp_output_closed(o);
    h_free(h);
}

/* A DONE that comes while the output is stopping is a real delivery. */
static void test_done_while_stopping_is_delivered(void **st)
{
    harness *h = h_new(1);
    sp_router *r = &h->d.router;
    sp_chunk *c = append(r, "t", "one");
    watch w = {{.cb = watch_cb}};
    sp_chunk_watch_add(c, &w.w);
    sp_router_flush(r, 1);
    sp_output *o = &h->outs[0];
    o->closed = 1;
    h->fakes[0].hold_close = 1;
    o->type->stop(o);
    sp_output_done(fake_take(&h->fakes[0], 0), SP_OUT_DONE, 1, 0);
    assert_int_equal(w.calls, 1);
    assert_int_equal(w.delivered, 1);
    sp_output_closed(o);
    h_free(h);
}

/* Two deliveries in flight, answered in the other order: each chunk is released when its own
 * answer comes, and the buffer accounting goes back to zero. */
static void test_out_of_order_completion(void **st)
{
    harness *h = h_new(1);
    sp_router *r = &h->d.router;
    watch w1 = {{.cb = watch_cb}}, w2 = {{.cb = watch_cb}};
    sp_chunk_watch_add(append(r, "a", "one"), &w1.w);
    sp_chunk_watch_add(append(r, "b", "two"), &w2.w);
    sp_router_flush(r, 1);
    assert_int_equal(h->fakes[0].n, 2);
    assert_int_equal(h->fakes[0].d[0]->nchunks, 1);
    sp_output_done(fake_take(&h->fakes[0], 1), SP_OUT_DONE, 1, 0);
    assert_int_equal(w2.calls, 1);
    assert_int_equal(w2.delivered, 1);
    assert_int_equal(w1.calls, 0);
    assert_true(r->bytes > 0);
    sp_output_done(fake_take(&h->fakes[0], 0), SP_OUT_DONE, 1, 0);
    assert_int_equal(w1.calls, 1);
    assert_int_equal(r->bytes, 0);
    assert_int_equal(h->outs[0].delivered, 2);
    assert_int_equal(h->outs[0].queued_chunks, 0);
    h_free(h);
}

/* A failed delivery is retried after a backoff, before what was queued after it. */
static void test_retry_keeps_order(void **st)
{
    harness *h = h_new(1);
    sp_router *r = &h->d.router;
    h->outs[0].max_inflight = 1;
    h->outs[0].batch_bytes = 0; /* one chunk per delivery */
    append(r, "a", "one");
    sp_router_flush(r, 1);
    sp_chunk *first = h->fakes[0].d[0]->chunk;
    append(r, "b", "two");
    sp_router_flush(r, 1);
    assert_int_equal(h->fakes[0].n, 1);
    sp_output_done(fake_take(&h->fakes[0], 0), SP_OUT_RETRY, 0, 0);
    assert_int_equal(h->outs[0].retried, 1);
    assert_int_equal(h->fakes[0].n, 0); /* blocked for the backoff */
    while (h->fakes[0].n == 0)
        uv_run(&h->d.loop, UV_RUN_ONCE);
    assert_ptr_equal(h->fakes[0].d[0]->chunk, first);
    assert_int_equal(h->fakes[0].d[0]->attempts, 1);
    sp_output_done(fake_take(&h->fakes[0], 0), SP_OUT_DONE, 1, 0);
    assert_int_equal(h->fakes[0].n, 1);
    assert_true(h->fakes[0].d[0]->chunk != first);
    sp_output_done(fake_take(&h->fakes[0], 0), SP_OUT_DONE, 1, 0);
    h_free(h);
}

/* Chunks that queue up while the output is busy go out together, in order, up to the output's
 * batch_bytes and batch_records; one answer releases them all. */
static void test_queued_chunks_are_batched(void **st)
{
    harness *h = h_new(1);
    sp_router *r = &h->d.router;
    sp_output *o = &h->outs[0];
    o->max_inflight = 1;
    append(r, "t0", "busy");
    sp_router_flush(r, 1);
    assert_int_equal(h->fakes[0].n, 1);
    sp_chunk *c[7];
    watch w[7];
    for (int i = 0; i < 7; i++) {
        char tag[8];
        snprintf(tag, sizeof tag, "t%d", i + 1); /* any tags: a delivery may mix them */
        c[i] = append(r, tag, "queued");
        w[i] = (watch){{.cb = watch_cb}};
        sp_chunk_watch_add(c[i], &w[i].w);
        sp_router_flush(r, 1);
    }
    o->batch_bytes = 3 * c[0]->data.len; /* three chunks fit */
    o->batch_records = 0;
    sp_output_done(fake_take(&h->fakes[0], 0), SP_OUT_DONE, 1, 0);
    assert_int_equal(h->fakes[0].n, 1);
    sp_delivery *d = h->fakes[0].d[0];
    assert_int_equal(d->nchunks, 3);
    assert_int_equal(d->nrecords, 3);
    for (int i = 0; i < 3; i++)
        assert_ptr_equal(d->chunks[i], c[i]);
    assert_int_equal(o->queued_chunks, 7);
    sp_output_done(fake_take(&h->fakes[0], 0), SP_OUT_DONE, 3, 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(w[i].calls, 1);
    assert_int_equal(w[3].calls, 0);
    o->batch_records = 2; /* now the record count is the limit */
    d = h->fakes[0].d[0];
    assert_int_equal(d->nchunks, 3); /* taken before the limit changed */
    sp_output_done(fake_take(&h->fakes[0], 0), SP_OUT_DONE, 3, 0);
    d = h->fakes[0].d[0];
    assert_int_equal(d->nchunks, 1);
    assert_ptr_equal(d->chunk, c[6]);
    sp_output_done(fake_take(&h->fakes[0], 0), SP_OUT_DONE, 1, 0);
    assert_int_equal(o->delivered, 8);
    assert_int_equal(o->queued_chunks, 0);
    assert_int_equal(r->bytes, 0);
    h_free(h);
}

/* A parked delivery (waiting for a retry of a few items) lets the next one start. */
static void test_parked_delivery_frees_its_slot(void **st)
{
    harness *h = h_new(1);
    sp_router *r = &h->d.router;
    h->outs[0].max_inflight = 1;
    append(r, "a", "one");
    sp_router_flush(r, 1);
    append(r, "b", "two");
    sp_router_flush(r, 1);
    assert_int_equal(h->fakes[0].n, 1);
    sp_output_park(h->fakes[0].d[0]);
    assert_int_equal(h->fakes[0].n, 2);
    assert_int_equal(h->outs[0].inflight, 1);
    sp_output_done(fake_take(&h->fakes[0], 0), SP_OUT_DONE, 1, 0); /* the parked one */
    assert_int_equal(h->outs[0].inflight, 1);
    sp_output_done(fake_take(&h->fakes[0], 0), SP_OUT_DONE, 1, 0);
    assert_int_equal(h->outs[0].inflight, 0);
    assert_int_equal(r->bytes, 0);
    h_free(h);
}

/* A chunk for two outputs is released once both have answered; if one gives up on it while
 * stopping, it is released as not delivered. */
static void test_two_outputs(void **st)
{
    harness *h = h_new(2);
    sp_router *r = &h->d.router;
    watch w = {{.cb = watch_cb}};
    sp_chunk_watch_add(append(r, "t", "one"), &w.w);
    sp_router_flush(r, 1);
    sp_output_done(fake_take(&h->fakes[0], 0), SP_OUT_DONE, 1, 0);
    assert_int_equal(w.calls, 0);
    h->outs[1].closed = 1;
    sp_output_done(fake_take(&h->fakes[1], 0), SP_OUT_RETRY, 0, 0);
    assert_int_equal(w.calls, 1);
    assert_int_equal(w.delivered, 0);
    h->outs[1].closed = 0;
    h_free(h);
}

/* ---- pausing ---- */

static int pauses, resumes;
static void in_pause(sp_input *in)
{
    pauses++;
}
static void in_resume(sp_input *in)
{
    resumes++;
}
static const sp_input_type fake_in_type = {.name = "fake", .pause = in_pause, .resume = in_resume};

/* Over memory_limit every input pauses; it resumes once delivery brings the buffer to 80%. */
static void test_pause_resume_at_memory_limit(void **st)
{
    harness *h = h_new(1);
    sp_router *r = &h->d.router;
    sp_input in = {.type = &fake_in_type};
    sp_input *inp = &in;
    r->inputs = &inp;
    r->ninputs = 1;
    pauses = resumes = 0;
    char msg[1000];
    memset(msg, 'x', sizeof msg - 1);
    msg[sizeof msg - 1] = 0;
    sp_chunk *c = append(r, "t", msg);
    r->memory_limit = 10 * c->data.len;
    r->chunk_size = 2 * c->data.len; /* two records a chunk */
    for (int i = 0; i < 11 && !r->paused; i++)
        append(r, "t", msg);
    assert_int_equal(r->paused, 1);
    assert_int_equal(pauses, 1);
    assert_int_equal(r->pause_count, 1);
    /* Releasing one chunk (2 of ~10 records' worth) reaches 80%: resume, once. */
    int n = 0;
    while (r->paused && h->fakes[0].n > 0) {
        sp_output_done(fake_take(&h->fakes[0], 0), SP_OUT_DONE, 2, 0);
        n++;
    }
    assert_int_equal(r->paused, 0);
    assert_int_equal(resumes, 1);
    assert_true(n <= 2);
    assert_true(r->bytes <= r->memory_limit / 10 * 8);
    while (h->fakes[0].n > 0)
        sp_output_done(fake_take(&h->fakes[0], 0), SP_OUT_DONE, 2, 0);
    r->inputs = NULL;
    r->ninputs = 0;
    h_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_after_close_is_not_delivered),
        cmocka_unit_test(test_done_while_stopping_is_delivered),
        cmocka_unit_test(test_out_of_order_completion),
        cmocka_unit_test(test_retry_keeps_order),
        cmocka_unit_test(test_queued_chunks_are_batched),
        cmocka_unit_test(test_parked_delivery_frees_its_slot),
        cmocka_unit_test(test_two_outputs),
        cmocka_unit_test(test_pause_resume_at_memory_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
