/* sp_extras_next, the pair walker filters read fields with (shipper/fields.c): on keys and
 * values of every MessagePack form it finds the same pairs as sp_mp_read + sp_mp_skip, and on
 * every truncation of the bytes it fails where they fail, never reading past the end. The index
 * shared down the chain (sp_extras_pairs) finds the same pairs, and is never reused for a record
 * whose bytes changed under the same slice in a later pass; a filter that wrote the pairs can
 * list them itself (sp_extras_known). sp_field_match answers as sp_field_get + a pattern. */
#include "unit.h"

#include "filter.h"
#include "mp.h"
#include "mp_pack.h"

/* The reference: key by sp_mp_read, value by sp_mp_skip. */
static int ref_next(const uint8_t **p, const uint8_t *end, sp_slice *key, sp_slice *val)
{
    sp_mp_obj k;
    if (sp_mp_read(p, end, &k)) return -1;
    *key = k.type == SP_MP_STR || k.type == SP_MP_BIN ? k.s : SP_SLICE_NULL;
    const uint8_t *v = *p;
    if (sp_mp_skip(p, end)) return -1;
    *val = sp_slice_make(v, (size_t)(*p - v));
    return 0;
}

static void put_value(sp_buf *b, int kind, sp_buf *big)
{
    switch (kind) {
    case 0:
        tp_put_nil(b);
        break;
    case 1:
        tp_put_bool(b, 1);
        break;
    case 2:
        tp_put_uint(b, 5);
        break;
    case 3:
        tp_put_uint(b, 200);
        break;
    case 4:
        tp_put_uint(b, 60000);
        break;
    case 5:
        tp_put_uint(b, 4000000000u);
        break;
    case 6:
        tp_put_uint(b, 1ull << 40);
        break;
    case 7:
        tp_put_int(b, -3);
        break;
    case 8:
        tp_put_int(b, -100);
        break;
    case 9:
        tp_put_int(b, -30000);
        break;
    case 10:
        tp_put_int(b, -2000000000);
        break;
    case 11:
        tp_put_int(b, -(1ll << 40));
        break;
    case 12:
        tp_raw(b, "\xca\x3f\x80\x00\x00", 5);
        break; /* float32 */
    case 13:
        tp_put_double(b, 1.5);
        break;
    case 14:
        tp_put_str(b, "", 0);
        break;
    case 15:
        tp_put_str(b, big->base, 31);
        break;
    case 16:
        tp_put_str(b, big->base, 32);
        break;
    case 17:
        tp_put_str(b, big->base, 300);
        break;
    case 18:
        tp_put_str(b, big->base, 70000);
        break;
    case 19:
        tp_put_bin(b, big->base, 3);
        break;
    case 20:
        tp_put_bin(b, big->base, 300);
        break;
    case 21:
        tp_put_bin(b, big->base, 70000);
        break;
    case 22:
        tp_put_array(b, 2);
        tp_put_uint(b, 1);
        tp_put_str(b, "x", 1);
        break;
    case 23:
        tp_put_map(b, 1);
        tp_put_str(b, "k", 1);
        tp_put_map(b, 0);
        break;
    case 24:
        tp_put_ext(b, 3, "abcd", 4);
        break;
    case 25:
        tp_raw(b, "\xc1", 1);
        break; /* never used: not MessagePack */
    }
}
#define KINDS 26

static void put_key(sp_buf *b, int kind, sp_buf *big)
{
    switch (kind % 6) {
    case 0:
        tp_put_str(b, "key", 3);
        break;
    case 1:
        tp_put_str(b, big->base, 40);
        break; /* str8 */
    case 2:
        tp_put_str(b, big->base, 300);
        break; /* str16 */
    case 3:
        tp_put_bin(b, "bk", 2);
        break;
    case 4:
        tp_put_uint(b, 7);
        break; /* not a string */
    case 5:
        tp_raw(b, "\xd9\x02k2", 4);
        break; /* str8 where fixstr would do */
    }
}

static void test_next_same_as_reference(void **st)
{
    sp_buf big = {0}, b = {0};
    for (int i = 0; i < 70000; i++)
        sp_buf_putc(&big, (char)('a' + i % 26));
    for (int key = 0; key < 6; key++) {
        for (int kind = 0; kind < KINDS; kind++) {
            b.len = 0;
            put_key(&b, key, &big);
            put_value(&b, kind, &big);
            put_key(&b, 0, &big);
            tp_put_uint(&b, 1);
            const uint8_t *base = (const uint8_t *)b.base;
            /* every length up to the whole, around the first pair; sampled past 600 */
            for (size_t len = 0; len <= b.len; len += len < 600 || b.len - len < 600 ? 1 : 97) {
                const uint8_t *p = base, *q = base, *end = base + len;
                sp_slice k1 = {0}, v1 = {0}, k2 = {0}, v2 = {0};
                for (int pair = 0; pair < 2; pair++) {
                    int r1 = sp_extras_next(&p, end, &k1, &v1);
                    int r2 = ref_next(&q, end, &k2, &v2);
                    if (r1 != r2)
                        fail_msg("key %d kind %d len %zu pair %d: %d, reference %d", key, kind, len,
                                 pair, r1, r2);
                    if (r1) break;
                    assert_true(p == q && p <= end);
                    assert_true(k1.base == k2.base && k1.len == k2.len);
                    assert_true(v1.base == v2.base && v1.len == v2.len);
                }
            }
        }
    }
    sp_buf_free(&big);
    sp_buf_free(&b);
}

/* sp_extras_pairs on extras of every key and value form, whole and truncated: the pairs
 * sp_extras_next walks, and their count stops at the first one that does not parse. */
static void test_index_same_as_walk(void **st)
{
    sp_buf big = {0}, b = {0};
    for (int i = 0; i < 70000; i++)
        sp_buf_putc(&big, (char)('a' + i % 26));
    for (int key = 0; key < 6; key++) {
        for (int kind = 0; kind < KINDS; kind++) {
            b.len = 0;
            put_key(&b, 0, &big);
            tp_put_uint(&b, 1);
            put_key(&b, key, &big);
            put_value(&b, kind, &big);
            put_key(&b, 5, &big);
            tp_put_str(&b, "v", 1);
            for (size_t len = 0; len <= b.len; len += len < 600 || b.len - len < 600 ? 1 : 97) {
                sp_record r = {.extras = sp_slice_make(b.base, len), .nextras = 3};
                sp_extras_pass(1);
                const sp_extra *x;
                uint32_t n = sp_extras_pairs(&r, &x);
                const uint8_t *p = (const uint8_t *)b.base, *end = p + len;
                uint32_t want = 0;
                for (; want < 3; want++) {
                    sp_slice k, v;
                    if (sp_extras_next(&p, end, &k, &v)) break;
                    assert_true(k.base == x[want].key.base && k.len == x[want].key.len);
                    assert_true(v.base == x[want].val.base && v.len == x[want].val.len);
                }
                if (n != want)
                    fail_msg("key %d kind %d len %zu: %u pairs, walk %u", key, kind, len, n, want);
                const sp_extra *again;
                assert_int_equal(sp_extras_pairs(&r, &again), n); /* the same, from the index */
                assert_ptr_equal(again, x);
                sp_extras_pass(0);
            }
        }
    }
    sp_buf_free(&big);
    sp_buf_free(&b);
}

/* Extras {k1: v1, k2: v2}, in place in b (its storage reused, as a filter's buffer is). */
static void put_pairs(sp_buf *b, const char *k1, const char *v1, const char *k2, const char *v2)
{
    b->len = 0;
    tp_put_str(b, k1, strlen(k1));
    tp_put_str(b, v1, strlen(v1));
    tp_put_str(b, k2, strlen(k2));
    tp_put_str(b, v2, strlen(v2));
}

/* A filter reuses its buffer for the next record: same base, length and count, pairs in other
 * places. The index of the earlier pass must not answer for it; nor for the record being
 * filtered after a record emitted inside its filter (a nested pass) ran the chain; nor outside
 * any pass. */
static void test_index_not_stale(void **st)
{
    sp_buf b = {0};
    sp_slice v;
    put_pairs(&b, "a", "1", "b", "22");
    const char *base = b.base;
    sp_record r = {.extras = sp_buf_slice(&b), .nextras = 2};
    sp_extras_pass(1);
    assert_true(sp_extras_find(&r, SP_SLICE_LIT("a"), &v));
    assert_int_equal(v.len, 2);
    sp_extras_pass(0);

    put_pairs(&b, "aa", "1", "b", "2"); /* the next record, in place: "a" is not a key */
    assert_ptr_equal(b.base, base);
    assert_int_equal(b.len, r.extras.len);
    sp_extras_pass(1);
    assert_false(sp_extras_find(&r, SP_SLICE_LIT("a"), &v));
    assert_true(sp_extras_find(&r, SP_SLICE_LIT("aa"), &v));
    sp_extras_pass(1); /* a record emitted meanwhile runs the chain */
    sp_extras_pass(0);
    put_pairs(&b, "a", "11", "b", "2"); /* and the outer record's filter rewrote it in place */
    assert_false(sp_extras_find(&r, SP_SLICE_LIT("aa"), &v));
    assert_true(sp_extras_find(&r, SP_SLICE_LIT("a"), &v));
    assert_int_equal(v.len, 3);
    sp_extras_pass(0);

    put_pairs(&b, "aa", "1", "b", "2"); /* outside the chain: read every time */
    assert_true(sp_extras_find(&r, SP_SLICE_LIT("aa"), &v));
    put_pairs(&b, "a", "1", "b", "22");
    assert_false(sp_extras_find(&r, SP_SLICE_LIT("aa"), &v));
    assert_true(sp_extras_find(&r, SP_SLICE_LIT("a"), &v));
    sp_buf_free(&b);
}

/* sp_field_match (the shared index, strings compared where they lie) answers as sp_field_get
 * followed by sp_pattern_match, for every key and value form, literal, prefix, glob and regex
 * patterns, the record's own fields, a dotted path and a repeated key, in a pass and outside. */
static void test_match_same_as_get(void **st)
{
    sp_buf big = {0}, b = {0};
    for (int i = 0; i < 70000; i++)
        sp_buf_putc(&big, (char)('a' + i % 26));
    const char *pats[] = {"*",
                          "5",
                          "5*",
                          "-3",
                          "true",
                          "abc*",
                          "1.5",
                          "",
                          "?",
                          "[0-9]*",
                          "/^[a-z]+$/",
                          "/5/",
                          "k*",
                          "web-1",
                          "web*",
                          "v",
                          "fwd.*",
                          "stdout",
                          "abcdefghijklmnopqrstuvwxyzabcdefghijklmn"};
    sp_pattern *pat[sizeof pats / sizeof *pats];
    for (size_t i = 0; i < sizeof pats / sizeof *pats; i++) {
        char why[200];
        assert_non_null(pat[i] = sp_pattern_new(pats[i], why, sizeof why));
    }
    char name40[41], name300[301];
    memcpy(name40, big.base, 40);
    name40[40] = 0;
    memcpy(name300, big.base, 300);
    name300[300] = 0;
    const char *names[] = {
        "key",     name40,   name300,          "bk",           "k2", "z", "missing", "key.k",
        "message", "stream", "container.name", "container.id", "tag"};
    for (int key = 0; key < 6; key++) {
        for (int kind = 0; kind < KINDS; kind++) {
            for (int rep = 0; rep < 2; rep++) {
                b.len = 0;
                if (rep) { /* the key twice: the last one wins */
                    put_key(&b, key, &big);
                    tp_put_str(&b, "5", 1);
                }
                put_key(&b, key, &big);
                put_value(&b, kind, &big);
                tp_put_str(&b, "z", 1);
                tp_put_str(&b, "v", 1);
                sp_record r = {.extras = sp_buf_slice(&b), .nextras = 2u + (uint32_t)rep};
                r.message = SP_SLICE_LIT("5");
                r.stream = SP_SLICE_LIT("stdout");
                r.container_name = SP_SLICE_LIT("web-1");
                for (int pass = 0; pass < 2; pass++) {
                    if (pass) sp_extras_pass(1);
                    for (size_t n = 0; n < sizeof names / sizeof *names; n++) {
                        sp_field f = sp_field_make(sp_slice_str(names[n]));
                        for (size_t i = 0; i < sizeof pats / sizeof *pats; i++) {
                            char tmp[64];
                            sp_slice v;
                            int want = sp_field_get(&f, &r, SP_SLICE_LIT("fwd.web-1"), &v, tmp,
                                                    sizeof tmp) &&
                                       sp_pattern_match(pat[i], v);
                            int got = sp_field_match(&f, &r, SP_SLICE_LIT("fwd.web-1"), pat[i]);
                            if (got != want)
                                fail_msg("key %d kind %d rep %d field %.20s pattern %.20s: %d, "
                                         "get + match %d",
                                         key, kind, rep, names[n], pats[i], got, want);
                        }
                    }
                    if (pass) sp_extras_pass(0);
                }
            }
        }
    }
    for (size_t i = 0; i < sizeof pats / sizeof *pats; i++)
        sp_pattern_free(pat[i]);
    sp_buf_free(&big);
    sp_buf_free(&b);
}

/* What sp_extras_known's fill writes: the pairs of extras {a: 1, bb: "x"} where fill_ok says. */
static int fills;
static int fill_ok = 1;
static int known_fill(void *arg, sp_extra *x, uint32_t n)
{
    const sp_buf *b = arg;
    fills++;
    if (!fill_ok) {
        x[0].key = SP_SLICE_LIT("wrong"); /* what a failed fill leaves is not used */
        return -1;
    }
    assert_int_equal(n, 2);
    x[0] = (sp_extra){sp_slice_make(b->base + 1, 1), sp_slice_make(b->base + 2, 1)};
    x[1] = (sp_extra){sp_slice_make(b->base + 4, 2), sp_slice_make(b->base + 6, 2)};
    return 0;
}

/* sp_extras_known: the filter's fill lists the pairs on the first lookup of the pass, once; not
 * at all when nothing looks; a fill that cannot is walked over; another record, or the next
 * pass, does not use it. */
static void test_index_known(void **st)
{
    sp_buf b = {0};
    sp_slice v;
    tp_put_str(&b, "a", 1);
    tp_put_uint(&b, 1);
    tp_put_str(&b, "bb", 2);
    tp_put_str(&b, "x", 1);
    sp_record r = {.extras = sp_buf_slice(&b), .nextras = 2};
    fills = 0;
    sp_extras_pass(1);
    sp_extras_known(&r, known_fill, &b);
    assert_int_equal(fills, 0);
    assert_true(sp_extras_find(&r, SP_SLICE_LIT("bb"), &v));
    assert_int_equal(fills, 1);
    assert_ptr_equal(v.base, b.base + 6);
    assert_true(sp_extras_find(&r, SP_SLICE_LIT("a"), &v));
    assert_int_equal(fills, 1); /* listed once */
    sp_extras_pass(0);

    sp_extras_pass(1); /* a fill that cannot: the pairs are walked */
    fill_ok = 0;
    sp_extras_known(&r, known_fill, &b);
    assert_false(sp_extras_find(&r, SP_SLICE_LIT("wrong"), &v));
    assert_true(sp_extras_find(&r, SP_SLICE_LIT("bb"), &v));
    assert_int_equal(fills, 2);
    fill_ok = 1;
    sp_extras_pass(0);

    sp_extras_pass(1); /* known for another record: not used for r */
    sp_record other = {.extras = sp_slice_make(b.base, 4), .nextras = 1};
    sp_extras_known(&other, known_fill, &b);
    assert_true(sp_extras_find(&r, SP_SLICE_LIT("bb"), &v));
    assert_int_equal(fills, 2);
    sp_extras_pass(0);

    sp_extras_pass(1); /* known in an earlier pass: not used in this one */
    sp_extras_known(&r, known_fill, &b);
    sp_extras_pass(0);
    sp_extras_pass(1);
    assert_true(sp_extras_find(&r, SP_SLICE_LIT("a"), &v));
    assert_int_equal(fills, 2);
    sp_extras_pass(0);
    sp_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_next_same_as_reference),
        cmocka_unit_test(test_index_same_as_walk),
        cmocka_unit_test(test_index_not_stale),
        cmocka_unit_test(test_match_same_as_get),
        cmocka_unit_test(test_index_known),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
