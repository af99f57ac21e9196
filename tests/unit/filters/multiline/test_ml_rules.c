/* multiline's start prefilter (ml_rules.c): the 32-bytes-a-step AVX2 scan answers as the
 * memchr scan does, for "Error", "Exception" and "Throwable" planted at every place of lines of
 * every length up to 100 (across the steps and the last, overlapping one), for random lines full
 * of 'E's and 'T's, and for the prefixes; without AVX2 only the memchr scan exists. */
#include "unit.h"

#include "ml_int.h"

static int may_start(sp_ml_rules *rs, int avx2, const char *s, size_t n)
{
    rs->avx2 = avx2;
    return sp_ml_rules_may_start(rs, sp_slice_make(s, n));
}

static void test_avx2_same_as_memchr(void **st)
{
    sp_ml_rules rs;
    char why[200];
    assert_int_equal(sp_ml_rules_init(&rs, SP_ML_AUTO, NULL, NULL, why, sizeof why), 0);
    int have = rs.avx2;
    assert_int_equal(have, __builtin_cpu_supports("avx2") ? 1 : 0);
    static const char *const words[] = {"Error",    "Exception", "Throwable", "Erro",
                                        "Exceptio", "Throwabl",  "ETrror",    "TE"};
    char line[160];
    for (size_t w = 0; w < sizeof words / sizeof *words; w++) {
        size_t wl = strlen(words[w]);
        for (size_t n = 0; n <= 100; n++) {
            for (size_t at = 0; at + wl <= n; at++) {
                memset(line, 'G', n); /* "GET"-like noise around it */
                for (size_t i = 2; i < n; i += 7)
                    line[i] = i % 2 ? 'E' : 'T';
                memcpy(line + at, words[w], wl);
                int want = may_start(&rs, 0, line, n);
                assert_int_equal(want, w < 3); /* the three words, not their prefixes */
                if (have && may_start(&rs, 1, line, n) != want)
                    fail_msg("%s at %zu of %zu: avx2 %d, memchr %d", words[w], at, n, !want, want);
            }
        }
    }
    uint64_t x = 88172645463325252ull;
    static const char alpha[] = "ETrorxcpthwablEETTn:  ";
    for (int k = 0; k < 200000; k++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t n = (size_t)(x % 140);
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            line[i] = alpha[x % (sizeof alpha - 1)];
        }
        int want = may_start(&rs, 0, line, n);
        if (have && may_start(&rs, 1, line, n) != want)
            fail_msg("random line %.*s: avx2 %d, memchr %d", (int)n, line, !want, want);
    }
    const char *prefixes[] = {"Traceback (most recent call last):", "panic: x", "fatal error: y"};
    for (int a = 0; a < 2; a++)
        for (size_t i = 0; i < 3; i++)
            assert_true(may_start(&rs, a && have, prefixes[i], strlen(prefixes[i])));
    assert_false(may_start(&rs, have, "GET /index.html 200 TE ET", 25));
    sp_ml_rules_free(&rs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_avx2_same_as_memchr)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
