/* The spool alone, without the router: its owner's callbacks (sp_spool_owner) are fakes that
 * record what the spool asked for. Dispatch after the fsync, replay through `restore` gated by
 * `replay_room`, the highest spooled seq, `blocked_changed` on an fsync failure, and `drop` of
 * the closed chunks it still held at close. */
#include "unit.h"

#include <errno.h>
#include <unistd.h>

#include "record.h"
#include "spool.h"

typedef struct {
    sp_chunk *dispatched[16];
    int ndispatched, ndurable, ndropped, nblocked_changed, room;
    uint64_t seq_seen;
    struct {
        char tag[32];
        sp_buf data;
        uint32_t nrecords;
        uint64_t seq;
    } restored[16];
    int nrestored;
} fake_owner;

static void fo_dispatch(void *ctx, sp_chunk *c)
{
    fake_owner *f = ctx;
    assert_true(f->ndispatched < 16);
    f->dispatched[f->ndispatched++] = c;
}

static void fo_durable(void *ctx, sp_chunk *c)
{
    ((fake_owner *)ctx)->ndurable++;
}

static void fo_restore(void *ctx, sp_slice tag, const void *data, size_t len, uint32_t nrecords,
                       uint64_t seq, void *first, void *last)
{
    fake_owner *f = ctx;
    assert_true(f->nrestored < 16);
    assert_non_null(first);
    assert_non_null(last);
    snprintf(f->restored[f->nrestored].tag, 32, "%.*s", (int)tag.len, tag.base);
    f->restored[f->nrestored].data = (sp_buf){0};
    sp_buf_append(&f->restored[f->nrestored].data, data, len);
    f->restored[f->nrestored].nrecords = nrecords;
    f->restored[f->nrestored].seq = seq;
    f->nrestored++;
}

static void fo_drop(void *ctx, sp_chunk *c)
{
    ((fake_owner *)ctx)->ndropped++;
}

static void fo_blocked_changed(void *ctx)
{
    ((fake_owner *)ctx)->nblocked_changed++;
}

static int fo_replay_room(void *ctx)
{
    return ((fake_owner *)ctx)->room;
}

static void fo_seq_seen(void *ctx, uint64_t seq)
{
    fake_owner *f = ctx;
    if (seq > f->seq_seen) f->seq_seen = seq;
}

static sp_spool_owner owner_of(fake_owner *f)
{
    return (sp_spool_owner){.ctx = f,
                            .chunk_size = 4096,
                            .dispatch = fo_dispatch,
                            .durable = fo_durable,
                            .restore = fo_restore,
                            .drop = fo_drop,
                            .blocked_changed = fo_blocked_changed,
                            .replay_room = fo_replay_room,
                            .seq_seen = fo_seq_seen};
}

/* A closed chunk (no tag entry) of `n` records "line <seq>.<i>". */
static sp_chunk *chunk_new(const char *tag, uint64_t seq, int n)
{
    sp_chunk *c = calloc(1, sizeof *c);
    c->tag = strdup(tag);
    c->tag_len = strlen(tag);
    c->seq = seq;
    sp_list_init(&c->watchers);
    sp_list_init(&c->spool_link);
    for (int i = 0; i < n; i++) {
        char msg[32];
        int len = snprintf(msg, sizeof msg, "line %llu.%d", (unsigned long long)seq, i);
        sp_record r = {0};
        r.sec = 1;
        r.message = sp_slice_make(msg, (size_t)len);
        sp_record_write(&c->data, &r);
    }
    c->nrecords = (uint32_t)n;
    return c;
}

static void chunk_free(sp_chunk *c)
{
    sp_buf_free(&c->data);
    free(c->tag);
    free(c);
}

static void mkstate(char *dir, size_t n)
{
    snprintf(dir, n, "/tmp/shipper-unit-spool-alone.XXXXXX");
    assert_non_null(mkdtemp(dir));
}

static void rmstate(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* Runs `loop` until *count reaches n, for at most 5 s. */
static int run_until(uv_loop_t *loop, const int *count, int n)
{
    uint64_t start = uv_hrtime();
    while (*count < n && uv_hrtime() - start < 5000000000ULL)
        uv_run(loop, UV_RUN_NOWAIT);
    return *count >= n;
}

static void spool_close(uv_loop_t *loop, sp_spool *s)
{
    sp_spool_close(s);
    uv_run(loop, UV_RUN_DEFAULT);
}

static int fail_sync(int fd)
{
    errno = EIO;
    return -1;
}

/* A chunk is dispatched once fsynced; one marked done is not replayed, one not done comes back
 * through `restore` (same tag, records, seq) only while `replay_room` says so. */
static void test_dispatch_done_and_replay(void **st)
{
    char dir[256];
    mkstate(dir, sizeof dir);
    uv_loop_t loop;
    uv_loop_init(&loop);
    fake_owner f = {.room = 1};
    sp_spool_owner ow = owner_of(&f);
    sp_spool *s = NULL;
    assert_int_equal(sp_spool_open(&s, &loop, dir, 64 << 20, &ow), 0);
    sp_spool_replay(s);
    assert_int_equal(f.nrestored, 0);

    sp_chunk *a = chunk_new("app.a", 7, 3), *b = chunk_new("app.b", 9, 2);
    sp_spool_add(s, a);
    sp_spool_add(s, b);
    assert_true(run_until(&loop, &f.ndispatched, 2));
    assert_ptr_equal(f.dispatched[0], a);
    assert_ptr_equal(f.dispatched[1], b);
    assert_int_equal(a->durable, a->data.len);
    assert_int_equal(f.nblocked_changed, 0);
    assert_int_equal(sp_spool_blocked(s), 0);
    sp_spool_done(s, a); /* b stays undelivered */
    spool_close(&loop, s);
    assert_int_equal(f.ndropped, 0); /* both were dispatched: the owner's */

    fake_owner g = {.room = 0};
    ow = owner_of(&g);
    assert_int_equal(sp_spool_open(&s, &loop, dir, 64 << 20, &ow), 0);
    assert_int_equal(g.seq_seen, 9); /* new chunks must get higher seqs */
    sp_spool_replay(s);
    assert_int_equal(g.nrestored, 0); /* no room */
    g.room = 1;
    sp_spool_replay(s);
    assert_int_equal(g.nrestored, 1);
    assert_string_equal(g.restored[0].tag, "app.b");
    assert_int_equal(g.restored[0].seq, 9);
    assert_int_equal(g.restored[0].nrecords, 2);
    assert_int_equal(g.restored[0].data.len, b->data.len);
    assert_memory_equal(g.restored[0].data.base, b->data.base, b->data.len);
    spool_close(&loop, s);
    sp_buf_free(&g.restored[0].data);
    assert_int_equal(uv_loop_close(&loop), 0);
    chunk_free(a);
    chunk_free(b);
    rmstate(dir);
}

/* Every fsync fails: the chunk is not dispatched, the spool is blocked and tells its owner
 * (which pauses the inputs); at close the closed chunk it still held is dropped through the
 * owner, as not delivered. */
static void test_fsync_failure_blocks_and_close_drops(void **st)
{
    char dir[256];
    mkstate(dir, sizeof dir);
    uv_loop_t loop;
    uv_loop_init(&loop);
    fake_owner f = {.room = 1};
    sp_spool_owner ow = owner_of(&f);
    sp_spool *s = NULL;
    int (*saved)(int) = sp_spool_sync_fn;
    sp_spool_sync_fn = fail_sync;
    assert_int_equal(sp_spool_open(&s, &loop, dir, 64 << 20, &ow), 0);
    sp_chunk *a = chunk_new("app.a", 1, 4);
    sp_spool_add(s, a);
    assert_true(run_until(&loop, &f.nblocked_changed, 1));
    assert_true(sp_spool_blocked(s));
    assert_int_equal(f.ndispatched, 0);
    assert_int_equal(a->durable, 0);
    sp_spool_sync_fn = saved;
    spool_close(&loop, s);
    assert_int_equal(f.ndispatched, 0);
    assert_int_equal(f.ndropped, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
    chunk_free(a);
    rmstate(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dispatch_done_and_replay),
        cmocka_unit_test(test_fsync_failure_blocks_and_close_drops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
