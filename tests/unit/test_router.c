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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_after_close_is_not_delivered),
        cmocka_unit_test(test_done_while_stopping_is_delivered),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
