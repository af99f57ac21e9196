/* The plugin SDK's append calls (shipper/core/plugin.c) with a real router and no output: the
 * watcher is on the chunk before a commit that closes and releases it; batches commit once; what a
 * held record waits on (sp_hold) moves to the chunk of the record a filter emits for it. */
#include "unit.h"

#include "daemon.h"
#include "filter.h"
#include "input.h"
#include "router.h"

typedef struct {
    sp_chunk_watch w;
    int calls;
    int delivered;
} test_watch;

static void test_watch_cb(sp_chunk_watch *w, sp_chunk *c, int delivered)
{
    test_watch *x = (test_watch *)w;
    x->calls++;
    x->delivered = delivered;
}

/* The sp_input_watch_fn under test: hands out its watcher once, and remembers the chunk. */
typedef struct {
    test_watch watch;
    int asked;
    sp_chunk *chunk;
} test_picker;

static sp_chunk_watch *test_pick(void *ctx, sp_chunk *c)
{
    test_picker *p = ctx;
    p->chunk = c;
    return p->asked++ ? NULL : &p->watch.w;
}

typedef struct {
    sp_daemon d;
    sp_input in;
} test_harness;

static test_harness *harness_new(void)
{
    test_harness *h = calloc(1, sizeof *h);
    uv_loop_init(&h->d.loop);
    h->d.loop.data = &h->d;
    h->d.open_components = 100;
    sp_router_init(&h->d.router, &h->d.loop);
    h->d.router.chunk_size = 1024;
    h->d.router.memory_limit = 1 << 20;
    sp_router_start(&h->d.router);
    h->in.router = &h->d.router;
    h->in.loop = &h->d.loop;
    return h;
}

static void harness_free(test_harness *h)
{
    sp_router_close(&h->d.router);
    uv_run(&h->d.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&h->d.loop), 0);
    free(h);
}

static sp_record test_record(const char *msg)
{
    sp_record r = {0};
    r.sec = 1;
    r.message = sp_slice_str(msg);
    return r;
}

/* A record that fills the chunk: the commit closes it and, with no output, releases it at once.
 * The watcher must have been attached before, so it is told (delivered) right then. */
static void test_append_watcher_before_commit(void **state)
{
    test_harness *h = harness_new();
    test_picker p = {.watch.w.cb = test_watch_cb};
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    sp_record r = test_record(big);
    sp_input_append(&h->in, sp_slice_str("t"), &r, test_pick, &p);
    assert_int_equal(p.asked, 1);
    assert_int_equal(p.watch.calls, 1);
    assert_int_equal(p.watch.delivered, 1);
    assert_int_equal(h->in.records, 1);
    assert_int_equal(h->d.router.bytes, 0); /* released */
    harness_free(h);
}

/* Small records share the open chunk: the picker sees the same chunk and attaches only once. */
static void test_append_same_chunk(void **state)
{
    test_harness *h = harness_new();
    test_picker p = {.watch.w.cb = test_watch_cb};
    sp_record r = test_record("hello");
    sp_input_append(&h->in, sp_slice_str("t"), &r, test_pick, &p);
    sp_chunk *first = p.chunk;
    sp_input_append(&h->in, sp_slice_str("t"), &r, test_pick, &p);
    assert_ptr_equal(p.chunk, first);
    assert_int_equal(first->nrecords, 2);
    assert_int_equal(p.watch.calls, 0); /* still open */
    sp_router_flush(&h->d.router, 1);
    assert_int_equal(p.watch.calls, 1);
    assert_int_equal(h->in.records, 2);
    harness_free(h);
}

/* A batch: records written, one commit, the watcher on before it; empty again after. */
static void test_batch(void **state)
{
    test_harness *h = harness_new();
    test_picker p = {.watch.w.cb = test_watch_cb};
    sp_input_batch b = {0};
    sp_record r = test_record("line");
    for (int i = 0; i < 3; i++)
        sp_input_batch_add(&h->in, &b, sp_slice_str("t"), &r);
    assert_non_null(b.chunk);
    assert_int_equal(b.nrecords, 3);
    assert_false(sp_input_batch_full(&h->in, &b));
    assert_int_equal(h->d.router.bytes, 0); /* not committed yet */
    sp_chunk *c = b.chunk;
    sp_input_batch_commit(&h->in, &b, test_pick, &p);
    assert_null(b.chunk);
    assert_ptr_equal(p.chunk, c);
    assert_int_equal(c->nrecords, 3);
    assert_true(h->d.router.bytes > 0);
    sp_input_batch_commit(&h->in, &b, test_pick, &p); /* empty: nothing */
    assert_int_equal(p.asked, 1);
    sp_router_flush(&h->d.router, 1);
    assert_int_equal(p.watch.calls, 1);
    harness_free(h);
}

/* "unknown type" errors list the types the registry was generated with. */
static void test_unknown_type_lists_registered(void **state)
{
    char y[256];
    snprintf(y, sizeof y, "inputs:\n  - type: %s\noutputs:\n  - type: nope\n",
             sp_input_types[0]->name);
    sp_daemon d;
    sp_conf_err err = {0};
    assert_int_equal(sp_daemon_load(&d, y, strlen(y), &err), -1);
    sp_buf want = {0};
    sp_buf_printf(&want, "unknown output type \"nope\" (");
    for (const sp_output_type *const *t = sp_output_types; *t; t++)
        sp_buf_printf(&want, "%s%s", t == sp_output_types ? "" : ", ", (*t)->name);
    sp_buf_putc(&want, ')');
    sp_buf_putc(&want, '\0');
    assert_non_null(strstr(err.msg, want.base));
    sp_buf_free(&want);
    sp_daemon_free(&d);
}

/* ---- held records (sp_hold) ---- */

/* An input's sp_hold that counts its calls; its watcher is the one `emitted` hands out. */
typedef struct {
    sp_hold h;
    int taken, emitted, dropped, dropped_ok;
    sp_chunk *chunk;
    test_watch watch;
} test_hold;

static sp_hold *test_hold_take(sp_hold *h)
{
    ((test_hold *)h)->taken++;
    return h;
}

static sp_chunk_watch *test_hold_emitted(sp_hold *h, sp_chunk *c)
{
    test_hold *t = (test_hold *)h;
    t->chunk = c;
    return t->emitted++ ? NULL : &t->watch.w;
}

static void test_hold_dropped(sp_hold *h, int delivered)
{
    test_hold *t = (test_hold *)h;
    t->dropped++;
    t->dropped_ok += delivered;
}

/* A filter that holds every record whose message starts with 'h' and, on one starting with 'e',
 * emits what it holds as one record (ahead of the 'e' record), or on 'x' drops it at a later
 * filter (the second instance drops records starting with 'D'). */
typedef struct {
    sp_holds holds;
    int n;
} test_flt;

static int test_flt_apply(sp_filter *f, sp_record *r, sp_slice tag)
{
    test_flt *x = f->data;
    char c = r->message.len ? r->message.base[0] : 0;
    if (f->index == 1) return c == 'D' ? SP_FILTER_DROP : SP_FILTER_KEEP;
    if (c == 'h') {
        sp_filter_hold(f, &x->holds);
        x->n++;
        return SP_FILTER_HOLD;
    }
    if (c == 'e' || c == 'x') {
        sp_record g = test_record(c == 'e' ? "group" : "Dropped group");
        sp_filter_emit_held(f, tag, &g, &x->holds);
        x->n = 0;
    }
    return SP_FILTER_KEEP;
}

static const sp_filter_type test_flt_type = {.name = "t", .apply = test_flt_apply};

static void test_hold_moves_to_chunk(void **state)
{
    test_harness *h = harness_new();
    test_flt data[2] = {{{0}}};
    sp_filter f[2] = {{0}};
    sp_filter *fs[2] = {&f[0], &f[1]};
    for (int i = 0; i < 2; i++) {
        f[i].type = &test_flt_type;
        f[i].index = i;
        f[i].match = "*";
        f[i].data = &data[i];
        f[i].router = &h->d.router;
    }
    h->d.router.filters = fs;
    h->d.router.nfilters = 2;
    test_hold t = {.h = {test_hold_take, test_hold_emitted, test_hold_dropped, 1}};
    t.watch.w.cb = test_watch_cb;
    test_picker p = {.watch.w.cb = test_watch_cb};
    sp_record r = test_record("h1");
    h->in.hold = &t.h;
    sp_input_append(&h->in, SP_SLICE_LIT("t"), &r, test_pick, &p);
    r = test_record("h2");
    sp_input_append(&h->in, SP_SLICE_LIT("t"), &r, test_pick, &p);
    assert_int_equal(t.taken, 2); /* one reference per held record */
    assert_int_equal(p.asked, 0); /* nothing in a chunk yet */
    assert_int_equal(t.emitted, 0);
    r = test_record("end");
    sp_input_append(&h->in, SP_SLICE_LIT("t"), &r, test_pick, &p);
    assert_int_equal(t.emitted, 2);     /* both references went to the group's chunk */
    assert_ptr_equal(t.chunk, p.chunk); /* the 'end' record's chunk */
    /* an ack waits (flush): the chunk is closed at the commit rather than at flush_interval,
     * and with no output released at once, the watcher told */
    assert_int_equal(t.watch.calls, 1);
    assert_int_equal(t.watch.delivered, 1);
    assert_int_equal(t.dropped, 0);
    /* a group a later filter drops: its references end as done, with no chunk */
    r = test_record("h3");
    sp_input_append(&h->in, SP_SLICE_LIT("t"), &r, test_pick, &p);
    r = test_record("x");
    sp_input_append(&h->in, SP_SLICE_LIT("t"), &r, test_pick, &p);
    assert_int_equal(t.taken, 3);
    assert_int_equal(t.emitted, 2);
    assert_int_equal(t.dropped, 1);
    assert_int_equal(t.dropped_ok, 1);
    /* a group still held when the filter goes: its references fail */
    r = test_record("h4");
    sp_input_append(&h->in, SP_SLICE_LIT("t"), &r, test_pick, &p);
    h->in.hold = NULL;
    sp_holds_free(&data[0].holds, 0);
    assert_int_equal(t.dropped, 2);
    assert_int_equal(t.dropped_ok, 1);
    h->d.router.filters = NULL;
    h->d.router.nfilters = 0;
    harness_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_watcher_before_commit),
        cmocka_unit_test(test_append_same_chunk),
        cmocka_unit_test(test_batch),
        cmocka_unit_test(test_unknown_type_lists_registered),
        cmocka_unit_test(test_hold_moves_to_chunk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
