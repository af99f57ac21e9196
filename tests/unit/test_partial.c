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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_join_in_order),
        cmocka_unit_test(test_resent_piece_is_dropped),
        cmocka_unit_test(test_max_line_splits),
        cmocka_unit_test(test_timeout_emits_incomplete),
        cmocka_unit_test(test_interleaved_streams),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
