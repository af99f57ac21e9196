/* redact: e-mail, Luhn-checked card numbers, bearer tokens, custom patterns; counted. */
#include "../filter_unit.h"

int sp_redact_luhn(const char *s, size_t n);

static void test_redact(void **st)
{
    assert_int_equal(flt_load("  - type: redact\n    builtins: [email, card, bearer]\n"
                              "    patterns: ['pw=\\S+']\n"),
                     0);
    const char *d = flt_run_msg(0, "a@b.io and x.y+z@mail.example.org, 4111-1111-1111-1111 "
                                   "5500 0000 0000 0004 1234567890123 authorization: bearer "
                                   "eyJ.abc_DEF== pw=hunter2 done");
    assert_has(d, "\"message\":\"[REDACTED] and [REDACTED], [REDACTED] [REDACTED] 1234567890123 "
                  "authorization: bearer [REDACTED] [REDACTED] done\"");
    assert_int_equal(sp_reasons_get(&flt_d.filters[0]->results, "redacted"), 1);
    d = flt_run_msg(0, "nothing here 12 34");
    assert_has(d, "\"message\":\"nothing here 12 34\"");
    d = flt_run_msg(0, "");
    assert_has(d, "\"message\":\"\"");
    d = flt_run_msg(0, "\xff a@b.io \xfe"); /* invalid UTF-8 around a match */
    assert_has(d, "[REDACTED]");
    assert_lacks(d, "a@b.io");
    assert_int_equal(sp_reasons_get(&flt_d.filters[0]->results, "redacted"), 2);
    assert_true(sp_redact_luhn("4111 1111 1111 1111", 19));
    assert_false(sp_redact_luhn("4111 1111 1111 1112", 19));
    assert_false(sp_redact_luhn("0000", 4)); /* too short */
    flt_unload();
    assert_int_equal(flt_load("  - type: redact\n    builtins: [ssn]\n"), -1);
    assert_has(flt_err.msg, "unknown \"ssn\"");
    assert_int_equal(flt_load("  - type: redact\n"), -1);
    flt_unload();
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_redact)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
