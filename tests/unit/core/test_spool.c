/* The spool with the router and a fake output: fsync failures (injected), durable acks on open
 * chunks, replay, spool_limit. */
#include "unit.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "record.h"
#include "router.h"
#include "spool.h"

/* ---- a fake output that keeps every delivery until the test answers it ---- */

#define FAKE_MAX 4096

typedef struct {
    sp_delivery *d[FAKE_MAX];
    int n;
} fake_state;

static void fake_deliver(sp_output *o, sp_delivery *d)
{
    fake_state *f = o->data;
    assert_true(f->n < FAKE_MAX);
    f->d[f->n++] = d;
}

static int fake_start(sp_output *o)
{
    return 0;
}

static void fake_stop(sp_output *o)
{
    sp_output_closed(o);
}

static const sp_conf_field fake_fields[] = {SP_CONF_END};
static const sp_output_type fake_type = {
    .name = "fake",
    .fields = fake_fields,
    .start = fake_start,
    .deliver = fake_deliver,
    .stop = fake_stop,
};

/* ---- an fdatasync that fails on demand, and remembers every call ---- */

typedef struct {
    char path[512];
    off_t size; /* the file's size when the sync began: what it covers */
    int ok;
} sync_call;

static pthread_mutex_t sync_mu = PTHREAD_MUTEX_INITIALIZER;
static sync_call calls[256];
static int ncalls;
static char fail_path[600]; /* syncs of this file fail, */
static int fail_from;       /* from its fail_from-th one (1: all of them) */
static int path_calls;

static int fake_sync(int fd)
{
    char link[64], path[512];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    path[n > 0 ? n : 0] = 0;
    struct stat st;
    fstat(fd, &st);
    pthread_mutex_lock(&sync_mu);
    int fail = fail_path[0] && strcmp(path, fail_path) == 0 && ++path_calls >= fail_from;
    pthread_mutex_unlock(&sync_mu);
    int rc = fail ? -1 : fdatasync(fd);
    pthread_mutex_lock(&sync_mu);
    if (ncalls < 256) {
        sync_call *c = &calls[ncalls++];
        snprintf(c->path, sizeof c->path, "%s", path);
        c->size = st.st_size;
        c->ok = rc == 0;
    }
    pthread_mutex_unlock(&sync_mu);
    if (fail) errno = EIO;
    return rc;
}

/* ---- the spool's files, read back ---- */

typedef struct {
    uint32_t magic;
    uint32_t crc;
    uint64_t seq;
    uint32_t nrecords;
    uint32_t tag_len;
    uint64_t data_len;
} hdr;

#define MAGIC_CHUNK 0x31435053u
#define MAGIC_PIECE 0x31505053u

typedef struct {
    char path[512];
    uint64_t seq;
    uint64_t end; /* offset just past the entry */
} entry;

static entry entries[1024];
static int nentries;

static void scan_dir(const char *dir)
{
    nentries = 0;
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strstr(e->d_name, ".seg")) continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        hdr h;
        uint64_t off = 0;
        while (fread(&h, sizeof h, 1, f) == 1) {
            uint64_t len = sizeof h + h.tag_len + h.data_len + (h.magic == MAGIC_PIECE ? 8 : 0);
            if ((h.magic == MAGIC_CHUNK || h.magic == MAGIC_PIECE) && nentries < 1024) {
                entry *x = &entries[nentries++];
                snprintf(x->path, sizeof x->path, "%s", path);
                x->seq = h.seq;
                x->end = off + len;
            }
            off += len;
            fseek(f, (long)off, SEEK_SET);
        }
        fclose(f);
    }
    closedir(d);
}

/* Some copy of chunk `seq` was covered by a successful fsync of its file, with no failed fsync
 * of that file before it (after a failure the kernel may have dropped the pages, and a later
 * fsync of the same file can succeed without them). */
static int vouched(uint64_t seq)
{
    for (int i = 0; i < nentries; i++) {
        if (entries[i].seq != seq) continue;
        for (int k = 0; k < ncalls; k++) {
            if (strcmp(calls[k].path, entries[i].path)) continue;
            if (!calls[k].ok) break;
            if ((uint64_t)calls[k].size >= entries[i].end) return 1;
        }
    }
    return 0;
}

/* ---- the harness ---- */

typedef struct {
    sp_daemon d;
    sp_output out;
    sp_output *outp[1];
    fake_state fake;
    char dir[256], spool_dir[300];
} harness;

static harness *h_new(const char *dir, uint64_t chunk_size, uint64_t spool_limit)
{
    harness *h = calloc(1, sizeof *h);
    snprintf(h->dir, sizeof h->dir, "%s", dir);
    snprintf(h->spool_dir, sizeof h->spool_dir, "%s/spool", dir);
    uv_loop_init(&h->d.loop);
    h->d.loop.data = &h->d;
    h->d.open_components = 100;
    sp_router *r = &h->d.router;
    sp_router_init(r, &h->d.loop);
    r->chunk_size = chunk_size;
    r->memory_limit = 64 << 20;
    r->retry_min_ms = 1;
    sp_output *o = &h->out;
    o->type = &fake_type;
    o->name = "fake";
    o->match = "*";
    o->max_inflight = 1000;
    o->retry_max_ms = 1;
    o->loop = &h->d.loop;
    o->router = r;
    o->data = &h->fake;
    h->outp[0] = o;
    r->outputs = h->outp;
    r->noutputs = 1;
    sp_router_start(r);
    assert_int_equal(sp_router_spool_open(r, dir, spool_limit), 0);
    sp_spool_replay(r->spool);
    return h;
}

/* Answers every held delivery (or none), closes the spool and the router, frees the loop. */
static void h_free(harness *h, int answer)
{
    for (int i = 0; answer && i < h->fake.n; i++)
        sp_output_done(h->fake.d[i], SP_OUT_DONE, h->fake.d[i]->chunk->nrecords, 0);
    h->fake.n = 0;
    h->out.closed = 2;
    sp_router *r = &h->d.router;
    sp_router_flush(r, 1); /* as the daemon does at its last close */
    sp_spool_close(r->spool);
    r->spool = NULL;
    sp_router_close(r);
    uv_run(&h->d.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&h->d.loop), 0);
    free(h);
}

static sp_chunk *append(sp_router *r, const char *tag, int seq, size_t size)
{
    sp_chunk *c = sp_router_chunk(r, sp_slice_str(tag));
    size_t before = c->data.len;
    char msg[8192];
    assert_true(size < sizeof msg);
    memset(msg, 'x', size);
    int n = snprintf(msg, sizeof msg, "seq=%d ", seq);
    msg[n] = ' ';
    msg[size] = 0;
    sp_record rec = {0};
    rec.sec = 1;
    rec.message = sp_slice_make(msg, size);
    sp_record_write(&c->data, &rec);
    sp_router_commit(r, c, before, 1);
    return c;
}

/* Runs the loop until `n` deliveries are held, for at most 5 s. */
static int run_until_delivered(harness *h, int n)
{
    uint64_t start = uv_hrtime();
    while (h->fake.n < n && uv_hrtime() - start < 5000000000ULL)
        uv_run(&h->d.loop, UV_RUN_ONCE);
    return h->fake.n >= n;
}

static void mkstate(char *dir, size_t n)
{
    snprintf(dir, n, "/tmp/shipper-unit-spool.XXXXXX");
    assert_non_null(mkdtemp(dir));
}

static void rmstate(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void reset_sync(const char *fail)
{
    ncalls = 0;
    path_calls = 0;
    fail_from = 1;
    snprintf(fail_path, sizeof fail_path, "%s", fail ? fail : "");
    sp_spool_sync_fn = fake_sync;
}

/* ---- tests ---- */

/* Every fsync of the first segment fails. The chunk must not be handed on (acked durable) on
 * the strength of a later fsync of that same file: it is written again from memory into a new
 * segment, and delivered once that one's fsync succeeds. Inputs are paused meanwhile. */
static void test_fsync_failure_rewrites_into_new_segment(void **st)
{
    char dir[256], seg0[600];
    mkstate(dir, sizeof dir);
    snprintf(seg0, sizeof seg0, "%s/spool/0000000000000000.seg", dir);
    reset_sync(seg0);
    harness *h = h_new(dir, 64 << 10, 1 << 30);
    sp_router *r = &h->d.router;
    sp_chunk *c = append(r, "t", 1, 100);
    uint64_t seq = c->seq;
    sp_router_flush(r, 1);
    assert_true(run_until_delivered(h, 1));
    scan_dir(h->spool_dir);
    assert_true(vouched(seq));
    /* Inputs were paused from the failure until the rewritten copy was on disk. */
    assert_true(ncalls >= 2);
    assert_false(calls[0].ok);
    assert_true(r->pause_count >= 1);
    assert_false(r->paused);
    assert_false(sp_spool_blocked(r->spool));
    /* A restart before delivery replays the chunk once, though two copies may be on disk. */
    h_free(h, 0);
    reset_sync(NULL);
    h = h_new(dir, 64 << 10, 1 << 30);
    assert_true(run_until_delivered(h, 1));
    assert_int_equal(h->fake.n, 1);
    assert_int_equal(h->fake.d[0]->chunk->seq, seq);
    h_free(h, 1);
    rmstate(dir);
}

/* The fsync that leaves a full segment (on rotation) fails: the chunks written there since the
 * last good fsync are written again into the next segment before they count as durable. */
static void test_rotation_fsync_failure(void **st)
{
    char dir[256], seg0[600];
    mkstate(dir, sizeof dir);
    snprintf(seg0, sizeof seg0, "%s/spool/0000000000000000.seg", dir);
    reset_sync(seg0);
    /* chunk_size 1 KiB: a segment is left at 2 KiB, so the third chunk rotates. */
    harness *h = h_new(dir, 1024, 16 << 10);
    sp_router *r = &h->d.router;
    uint64_t seqs[4];
    for (int i = 0; i < 4; i++) {
        sp_chunk *c = append(r, "t", i, 1100); /* over chunk_size: closed at once */
        seqs[i] = c->seq;
    }
    assert_true(run_until_delivered(h, 4));
    scan_dir(h->spool_dir);
    for (int i = 0; i < 4; i++)
        assert_true(vouched(seqs[i]));
    h_free(h, 1);
    rmstate(dir);
}

/* ---- durable acks on open chunks ---- */

typedef struct {
    sp_chunk_watch w;
    int calls, delivered;
} watch;

static void watch_cb(sp_chunk_watch *w, sp_chunk *c, int delivered)
{
    watch *x = (watch *)w;
    x->calls++;
    x->delivered = delivered;
}

static void run_until_called(harness *h, watch *w)
{
    uint64_t start = uv_hrtime();
    while (!w->calls && uv_hrtime() - start < 5000000000ULL)
        uv_run(&h->d.loop, UV_RUN_ONCE);
}

/* A durable ack waiting on an open chunk is answered once what the chunk holds is fsynced; the
 * chunk stays open for more records, and goes to the outputs whole when it closes. */
static void test_durable_ack_keeps_chunk_open(void **st)
{
    char dir[256];
    mkstate(dir, sizeof dir);
    reset_sync(NULL);
    harness *h = h_new(dir, 64 << 10, 1 << 30);
    sp_router *r = &h->d.router;
    watch w[3];
    sp_chunk *c = NULL;
    for (int i = 0; i < 3; i++) {
        w[i] = (watch){{.cb = watch_cb, .durable = 1}};
        sp_chunk *x = append(r, "t", i, 100);
        assert_true(!c || x == c); /* the same open chunk */
        c = x;
        sp_chunk_watch_add(c, &w[i].w);
        sp_router_close_chunk(r, c); /* the frame's ack waits */
        run_until_called(h, &w[i]);
        assert_int_equal(w[i].calls, 1);
        assert_int_equal(w[i].delivered, 1);
        assert_non_null(c->tagent); /* still open */
        assert_int_equal(h->fake.n, 0);
        assert_int_equal(c->durable, c->data.len);
    }
    assert_true(ncalls >= 3); /* an fsync per ack here (one frame in flight) */
    sp_router_flush(r, 1);
    assert_true(run_until_delivered(h, 1));
    assert_int_equal(h->fake.d[0]->nrecords, 3);
    h_free(h, 1);
    rmstate(dir);
}

/* The pieces an open chunk was written in come back as that one chunk after a restart. */
static void test_pieces_replay_as_one_chunk(void **st)
{
    char dir[256];
    mkstate(dir, sizeof dir);
    reset_sync(NULL);
    harness *h = h_new(dir, 64 << 10, 1 << 30);
    sp_router *r = &h->d.router;
    sp_chunk *c = NULL;
    for (int i = 0; i < 5; i++) {
        watch w = {{.cb = watch_cb, .durable = 1}};
        c = append(r, "t", i, 100);
        sp_chunk_watch_add(c, &w.w);
        sp_router_close_chunk(r, c);
        run_until_called(h, &w);
        assert_int_equal(w.calls, 1);
    }
    uint64_t seq = c->seq;
    append(r, "t", 5, 100); /* not waited for: written by the stop below */
    h_free(h, 0);
    h = h_new(dir, 64 << 10, 1 << 30);
    assert_true(run_until_delivered(h, 1));
    assert_int_equal(h->fake.n, 1);
    assert_int_equal(h->fake.d[0]->chunk->seq, seq);
    assert_int_equal(h->fake.d[0]->nrecords, 6);
    /* In order, each once. */
    const sp_chunk *got = h->fake.d[0]->chunk;
    const uint8_t *p = SP_CHUNK_BEGIN(got), *end = SP_CHUNK_END(got);
    for (int i = 0; i < 6; i++) {
        sp_record rec;
        assert_int_equal(sp_record_read(&p, end, &rec), 0);
        char want[16];
        snprintf(want, sizeof want, "seq=%d ", i);
        assert_memory_equal(rec.message.base, want, strlen(want));
    }
    assert_true(p == end);
    h_free(h, 1);
    /* Done: nothing comes back a second time. */
    h = h_new(dir, 64 << 10, 1 << 30);
    for (int i = 0; i < 20; i++)
        uv_run(&h->d.loop, UV_RUN_NOWAIT);
    assert_int_equal(h->fake.n, 0);
    h_free(h, 1);
    rmstate(dir);
}

/* An fsync failure while acks wait on an open chunk: they are answered only once its records
 * are in a segment whose fsync succeeded with no failure before it. */
static void test_fsync_failure_with_open_chunk(void **st)
{
    char dir[256], seg0[600];
    mkstate(dir, sizeof dir);
    snprintf(seg0, sizeof seg0, "%s/spool/0000000000000000.seg", dir);
    reset_sync(seg0);
    harness *h = h_new(dir, 64 << 10, 1 << 30);
    sp_router *r = &h->d.router;
    watch w = {{.cb = watch_cb, .durable = 1}};
    sp_chunk *c = append(r, "t", 0, 100);
    sp_chunk_watch_add(c, &w.w);
    sp_router_close_chunk(r, c);
    run_until_called(h, &w);
    assert_int_equal(w.calls, 1);
    assert_false(calls[0].ok);
    int good = 0;
    for (int k = 1; k < ncalls; k++)
        good |= calls[k].ok && strcmp(calls[k].path, seg0) != 0;
    assert_true(good);
    h_free(h, 0);
    rmstate(dir);
}

/* ---- replay ---- */

/* After a restart only the chunks no output finished are delivered, each once, in order, and
 * once they are done nothing comes back. */
static void test_replay_only_undelivered(void **st)
{
    char dir[256];
    mkstate(dir, sizeof dir);
    reset_sync(NULL);
    harness *h = h_new(dir, 1024, 1 << 30);
    sp_router *r = &h->d.router;
    uint64_t seqs[6];
    for (int i = 0; i < 6; i++)
        seqs[i] = append(r, "t", i, 1100)->seq; /* over chunk_size: one chunk each */
    assert_true(run_until_delivered(h, 6));
    /* Chunks 1, 3 and 5 delivered, answered out of order; 0, 2 and 4 still in flight. */
    int nheld = 0;
    for (int i = 5; i >= 0; i--) {
        sp_delivery *d = h->fake.d[i];
        if (d->chunk->seq == seqs[1] || d->chunk->seq == seqs[3] || d->chunk->seq == seqs[5])
            sp_output_done(d, SP_OUT_DONE, 1, 0);
        else
            nheld++; /* the router frees them, undelivered, when it closes */
    }
    assert_int_equal(nheld, 3);
    h->fake.n = 0;
    h_free(h, 0); /* a stop with those three undelivered */
    h = h_new(dir, 1024, 1 << 30);
    assert_true(run_until_delivered(h, 3));
    for (int i = 0; i < 20; i++)
        uv_run(&h->d.loop, UV_RUN_NOWAIT);
    assert_int_equal(h->fake.n, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(h->fake.d[i]->chunk->seq, seqs[2 * i]);
        assert_int_equal(h->fake.d[i]->nrecords, 1);
    }
    h_free(h, 1);
    h = h_new(dir, 1024, 1 << 30);
    for (int i = 0; i < 20; i++)
        uv_run(&h->d.loop, UV_RUN_NOWAIT);
    assert_int_equal(h->fake.n, 0);
    h_free(h, 1);
    rmstate(dir);
}

/* ---- spool_limit ---- */

/* Over spool_limit the inputs pause; once delivered chunks free whole segments they resume. */
static void test_pause_resume_at_spool_limit(void **st)
{
    char dir[256];
    mkstate(dir, sizeof dir);
    reset_sync(NULL);
    harness *h = h_new(dir, 1024, 8 << 10); /* segments of 2 KiB */
    sp_router *r = &h->d.router;
    int i = 0;
    while (!r->paused && i < 100) {
        append(r, "t", i++, 1100); /* one chunk each */
        while (sp_spool_busy(r->spool))
            uv_run(&h->d.loop, UV_RUN_ONCE);
    }
    assert_int_equal(r->paused, 1);
    assert_true(sp_spool_bytes(r->spool) > 8 << 10);
    assert_true(i < 12);
    assert_true(r->bytes < r->memory_limit / 2); /* memory is not why */
    for (int k = 0; k < h->fake.n; k++)
        sp_output_done(h->fake.d[k], SP_OUT_DONE, 1, 0);
    h->fake.n = 0;
    assert_int_equal(r->paused, 0);
    assert_true(sp_spool_bytes(r->spool) <= 8 << 10);
    h_free(h, 1);
    rmstate(dir);
}

/* The first segment's first fsync succeeds; the one that leaves it when it is full fails. The
 * chunks written there after the good fsync are written again into the next segment. */
static void test_rotation_fsync_failure_after_good_sync(void **st)
{
    char dir[256], seg0[600];
    mkstate(dir, sizeof dir);
    snprintf(seg0, sizeof seg0, "%s/spool/0000000000000000.seg", dir);
    reset_sync(seg0);
    fail_from = 2;
    harness *h = h_new(dir, 1024, 16 << 10); /* segments of 2 KiB */
    sp_router *r = &h->d.router;
    uint64_t seqs[4];
    for (int i = 0; i < 4; i++)
        seqs[i] = append(r, "t", i, 1100)->seq;
    assert_true(run_until_delivered(h, 4));
    scan_dir(h->spool_dir);
    for (int i = 0; i < 4; i++)
        assert_true(vouched(seqs[i]));
    assert_true(path_calls >= 2); /* the rotation's fsync of the first segment ran, and failed */
    h_free(h, 1);
    rmstate(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fsync_failure_rewrites_into_new_segment),
        cmocka_unit_test(test_rotation_fsync_failure),
        cmocka_unit_test(test_rotation_fsync_failure_after_good_sync),
        cmocka_unit_test(test_durable_ack_keeps_chunk_open),
        cmocka_unit_test(test_pieces_replay_as_one_chunk),
        cmocka_unit_test(test_fsync_failure_with_open_chunk),
        cmocka_unit_test(test_replay_only_undelivered),
        cmocka_unit_test(test_pause_resume_at_spool_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
