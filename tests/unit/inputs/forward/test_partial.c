/* Docker partial-message joining. */
#include "unit.h"

#include "partial.h"

typedef struct {
    int n;
    char msg[8][128];
    uint64_t sec[8];
    uint32_t flags[8];
    uint8_t id[8][16];
} out;

static void emit(void *ctx, sp_slice tag, const sp_record *r)
{
    out *o = ctx;
    int i = o->n++;
    snprintf(o->msg[i], 128, "%.*s", (int)r->message.len, r->message.base);
    o->sec[i] = r->sec;
    o->flags[i] = r->flags;
    memcpy(o->id[i], r->id, 16);
    assert_true(SP_SLICE_IS(tag, "docker.web"));
    assert_true(SP_SLICE_IS(r->container_id, "cid"));
}

static sp_record piece(const char *msg, uint64_t sec, uint8_t idbyte)
{
    sp_record r;
    memset(&r, 0, sizeof r);
    r.message = sp_slice_str(msg);
    r.container_id = SP_SLICE_LIT("cid");
    r.stream = SP_SLICE_LIT("stdout");
    r.sec = sec;
    r.id[0] = idbyte;
    r.extras = SP_SLICE_LIT("");
    return r;
}

static void test_join_in_order(void **st)
{
    out o = {0};
    sp_joiner j;
    sp_joiner_init(&j, 1 << 20, 5000, emit, &o);
    sp_slice tag = SP_SLICE_LIT("docker.web");
    sp_record a = piece("aaa", 10, 1), b = piece("bbb", 11, 2), c = piece("cc", 12, 3);
    sp_joiner_add(&j, tag, &a, SP_SLICE_LIT("p1"), 1, 0, 0);
    sp_joiner_add(&j, tag, &b, SP_SLICE_LIT("p1"), 2, 0, 0);
    assert_int_equal(o.n, 0);
    assert_int_equal(j.held, 6);
    sp_joiner_add(&j, tag, &c, SP_SLICE_LIT("p1"), 3, 1, 0);
    assert_int_equal(o.n, 1);
    assert_string_equal(o.msg[0], "aaabbbcc");
    assert_int_equal(o.sec[0], 10); /* the first piece's time */
    assert_int_equal(o.flags[0], 0);
    assert_int_equal(j.held, 0);
    sp_joiner_free(&j);
}

static void test_resent_piece_is_dropped(void **st)
{
    out o = {0};
    sp_joiner j;
    sp_joiner_init(&j, 1 << 20, 5000, emit, &o);
    sp_slice tag = SP_SLICE_LIT("docker.web");
    sp_record a = piece("aaa", 10, 1), b = piece("bbb", 11, 2);
    sp_joiner_add(&j, tag, &a, SP_SLICE_LIT("p1"), 1, 0, 0);
    sp_joiner_add(&j, tag, &b, SP_SLICE_LIT("p1"), 2, 0, 0);
    sp_joiner_add(&j, tag, &b, SP_SLICE_LIT("p1"), 2, 0, 0); /* resend after a lost ack */
    sp_record c = piece("c", 12, 3);
    sp_joiner_add(&j, tag, &c, SP_SLICE_LIT("p1"), 3, 1, 0);
    assert_string_equal(o.msg[0], "aaabbbc");
    assert_int_equal(j.duplicates, 1);
    sp_joiner_free(&j);
}

static void test_max_line_splits(void **st)
{
    out o = {0};
    sp_joiner j;
    sp_joiner_init(&j, 4, 5000, emit, &o);
    sp_slice tag = SP_SLICE_LIT("docker.web");
    sp_record a = piece("abcdef", 10, 1), b = piece("ghij", 11, 2);
    sp_joiner_add(&j, tag, &a, SP_SLICE_LIT("p1"), 1, 0, 0);
    assert_int_equal(o.n, 1);
    assert_string_equal(o.msg[0], "abcd");
    assert_int_equal(o.flags[0], SP_REC_SPLIT);
    sp_joiner_add(&j, tag, &b, SP_SLICE_LIT("p1"), 2, 1, 0);
    assert_int_equal(o.n, 3);
    assert_string_equal(o.msg[1], "efgh");
    assert_string_equal(o.msg[2], "ij");
    assert_int_equal(j.splits, 2);
    /* every piece has its own id, so none overwrites another in Elasticsearch */
    assert_memory_not_equal(o.id[0], o.id[1], 16);
    assert_memory_not_equal(o.id[1], o.id[2], 16);
    sp_joiner_free(&j);
}

static void test_timeout_emits_incomplete(void **st)
{
    out o = {0};
    sp_joiner j;
    sp_joiner_init(&j, 1 << 20, 5000, emit, &o);
    sp_slice tag = SP_SLICE_LIT("docker.web");
    sp_record a = piece("lost tail", 10, 1);
    sp_joiner_add(&j, tag, &a, SP_SLICE_LIT("p9"), 1, 0, 1000);
    sp_joiner_expire(&j, 4000, 0);
    assert_int_equal(o.n, 0);
    sp_joiner_expire(&j, 6001, 0);
    assert_int_equal(o.n, 1);
    assert_string_equal(o.msg[0], "lost tail");
    assert_int_equal(o.flags[0], SP_REC_INCOMPLETE);
    assert_int_equal(j.held, 0);
    sp_joiner_free(&j);
}

static void test_interleaved_streams(void **st)
{
    out o = {0};
    sp_joiner j;
    sp_joiner_init(&j, 1 << 20, 5000, emit, &o);
    sp_slice tag = SP_SLICE_LIT("docker.web");
    sp_record a = piece("out1-", 10, 1), e = piece("err1-", 10, 2);
    e.stream = SP_SLICE_LIT("stderr");
    sp_joiner_add(&j, tag, &a, SP_SLICE_LIT("x"), 1, 0, 0);
    sp_joiner_add(&j, tag, &e, SP_SLICE_LIT("x"), 1, 0, 0);
    sp_record a2 = piece("out2", 10, 3), e2 = piece("err2", 10, 4);
    e2.stream = SP_SLICE_LIT("stderr");
    sp_joiner_add(&j, tag, &e2, SP_SLICE_LIT("x"), 2, 1, 0);
    sp_joiner_add(&j, tag, &a2, SP_SLICE_LIT("x"), 2, 1, 0);
    assert_int_equal(o.n, 2);
    assert_string_equal(o.msg[0], "err1-err2");
    assert_string_equal(o.msg[1], "out1-out2");
    sp_joiner_free(&j);
}

/* Collects every emitted id, for lines cut into many pieces. */
typedef struct {
    size_t n, cap;
    uint8_t (*id)[16];
    uint32_t *flags;
} ids;

static void emit_id(void *ctx, sp_slice tag, const sp_record *r)
{
    ids *o = ctx;
    (void)tag;
    if (o->n == o->cap) {
        o->cap = o->cap ? o->cap * 2 : 256;
        o->id = realloc(o->id, o->cap * sizeof *o->id);
        o->flags = realloc(o->flags, o->cap * sizeof *o->flags);
        assert_non_null(o->id);
        assert_non_null(o->flags);
    }
    memcpy(o->id[o->n], r->id, 16);
    o->flags[o->n++] = r->flags;
}

static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

/* Sorts a copy of the ids (plus `extra`) and fails on the first duplicate. */
static void assert_ids_unique(const ids *o, const uint8_t (*extra)[16], size_t nextra)
{
    size_t n = o->n + nextra;
    uint8_t(*all)[16] = malloc(n * sizeof *all);
    assert_non_null(all);
    memcpy(all, o->id, o->n * sizeof *all);
    if (nextra) memcpy(all + o->n, extra, nextra * sizeof *all);
    qsort(all, n, sizeof *all, cmp_id);
    for (size_t i = 1; i < n; i++)
        if (memcmp(all[i - 1], all[i], 16) == 0) fail_msg("duplicate id among %zu ids", n);
    free(all);
}

/* The forward input's ids of a frame with a chunk id: one hash, the entry index XORed in. */
static void frame_id(uint8_t out[16], uint32_t index)
{
    static const char chunk[] = "c2hpcHBlci1jaHVuay1pZA==";
    sp_hash128(chunk, sizeof chunk - 1, 0, out);
    uint32_t ix;
    memcpy(&ix, out + 12, 4);
    ix ^= index;
    memcpy(out + 12, &ix, 4);
}

/* A line of many times max_line_size (one huge record, as a whole line or as one piece) is cut
 * into more pieces than a byte can count: each piece still gets its own id, and none equals the
 * id of another record of the frame (Elasticsearch would answer 409 and drop it). */
static void test_many_cuts_unique_ids(void **st)
{
    (void)st;
    enum { MAX_LINE = 4, PIECES = 1000 };
    static char big[MAX_LINE * PIECES + 1];
    memset(big, 'x', sizeof big - 1);
    sp_slice tag = SP_SLICE_LIT("docker.web");

    /* one whole record over the limit: every cut comes from the same record id */
    ids o = {0};
    sp_joiner j;
    sp_joiner_init(&j, MAX_LINE, 5000, emit_id, &o);
    sp_record r = piece(big, 10, 0);
    frame_id(r.id, 0);
    sp_joiner_add(&j, tag, &r, SP_SLICE_LIT("whole"), 0, 1, 0);
    assert_int_equal(o.n, PIECES);
    assert_int_equal(j.splits, PIECES - 1);
    uint8_t others[2 * PIECES][16]; /* the records that follow it in the same frame */
    for (uint32_t i = 0; i < 2 * PIECES; i++)
        frame_id(others[i], i + 1);
    assert_ids_unique(&o, others, 2 * PIECES);
    sp_joiner_free(&j);

    /* a partial line of several big pieces, each cut many times, then its timeout */
    o.n = 0;
    sp_joiner_init(&j, MAX_LINE, 5000, emit_id, &o);
    for (uint32_t k = 0; k < 3; k++) {
        sp_record p = piece(big, 10, 0);
        frame_id(p.id, k);
        sp_joiner_add(&j, tag, &p, SP_SLICE_LIT("p1"), k + 1, 0, 0);
    }
    sp_record tail = piece("ab", 10, 0);
    frame_id(tail.id, 3);
    sp_joiner_add(&j, tag, &tail, SP_SLICE_LIT("p1"), 4, 0, 0);
    sp_joiner_expire(&j, 0, 1);
    assert_int_equal(o.n, 3 * PIECES + 1);
    assert_int_equal(o.flags[o.n - 1], SP_REC_INCOMPLETE);
    for (uint32_t i = 0; i < 2 * PIECES; i++)
        frame_id(others[i], i + 4);
    assert_ids_unique(&o, others, 2 * PIECES);
    sp_joiner_free(&j);

    /* the ids are stable: the same input (a resend) gives the same ids */
    ids again = {0};
    sp_joiner_init(&j, MAX_LINE, 5000, emit_id, &again);
    sp_joiner_add(&j, tag, &r, SP_SLICE_LIT("whole"), 0, 1, 0);
    sp_joiner_free(&j);
    ids first = {0};
    sp_joiner_init(&j, MAX_LINE, 5000, emit_id, &first);
    sp_joiner_add(&j, tag, &r, SP_SLICE_LIT("whole"), 0, 1, 0);
    sp_joiner_free(&j);
    assert_int_equal(again.n, first.n);
    assert_memory_equal(again.id, first.id, first.n * 16);
    free(o.id);
    free(o.flags);
    free(again.id);
    free(again.flags);
    free(first.id);
    free(first.flags);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_join_in_order),       cmocka_unit_test(test_resent_piece_is_dropped),
        cmocka_unit_test(test_max_line_splits),     cmocka_unit_test(test_timeout_emits_incomplete),
        cmocka_unit_test(test_interleaved_streams), cmocka_unit_test(test_many_cuts_unique_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
