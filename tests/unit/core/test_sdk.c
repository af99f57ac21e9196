/* The SDK's small helpers: a config key's line, counters by reason, the instance log prefix,
 * the table hash. */
#include "unit.h"

#include <unistd.h>

#include "config.h"
#include "input.h"
#include "output.h"
#include "reasons.h"

static void test_node_line(void **st)
{
    const char *y = "a: 1\nb:\n  c: x\n  d: y\n";
    sp_conf_err err = {0};
    sp_node *root = sp_yaml_parse(y, strlen(y), &err);
    assert_non_null(root);
    sp_node *b = sp_node_get(root, "b");
    assert_int_equal(sp_node_line(root, "a", 99), 1);
    assert_int_equal(sp_node_line(b, "d", 99), 4);
    assert_int_equal(sp_node_line(b, "missing", 99), 99);
    assert_int_equal(sp_node_line(NULL, "d", 7), 7);
    sp_node_free(root);
}

static void test_reasons(void **st)
{
    sp_reasons t = {0};
    sp_reasons_add(&t, "too_large");
    sp_reasons_add(&t, "malformed");
    sp_reasons_add(&t, "too_large");
    sp_reasons_add(&t, "version_conflict_engine.exception"); /* a label: '.' becomes '_' */
    assert_int_equal(sp_reasons_get(&t, "too_large"), 2);
    assert_int_equal(sp_reasons_get(&t, "malformed"), 1);
    assert_int_equal(sp_reasons_get(&t, "version_conflict_engine.exception"), 1);
    assert_int_equal(sp_reasons_get(&t, "never"), 0);
    for (int i = 0; i < SP_REASONS_MAX + 3; i++) {
        char r[16];
        snprintf(r, sizeof r, "r%d", i);
        sp_reasons_add(&t, r);
    }
    /* 3 reasons were in the table: 13 more fit, the other 6 are "other". */
    assert_int_equal(t.other, 6);
    sp_buf out = {0};
    sp_reasons_render(&t, &out, "m_total", "input", "forward");
    sp_buf_putc(&out, 0);
    assert_non_null(strstr(out.base, "m_total{input=\"forward\",reason=\"too_large\"} 2\n"));
    assert_non_null(strstr(
        out.base, "m_total{input=\"forward\",reason=\"version_conflict_engine_exception\"} 1\n"));
    assert_non_null(strstr(out.base, "m_total{input=\"forward\",reason=\"other\"} 6\n"));
    assert_null(strstr(out.base, "reason=\"r15\""));
    sp_buf_free(&out);
}

/* Runs `fn` with stderr going to a file and returns what it wrote (static buffer). */
static const char *captured(void (*fn)(void))
{
    static char buf[4096];
    char path[] = "/tmp/sp_test_sdk_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    buf[n > 0 ? n : 0] = 0;
    return buf;
}

static void log_lines(void)
{
    sp_input in = {.name = "forward.1"};
    sp_output o = {.name = "es"};
    sp_ratelimit rl = {0};
    sp_in_warn(&in, "closing connection %d", 7);
    sp_in_error(&in, "no arguments");
    sp_out_error(&o, "cannot start: %s", "refused");
    sp_out_log_limited(&o, &rl, SP_LOG_WARN, "limited %d", 1);
    sp_out_log_limited(&o, &rl, SP_LOG_WARN, "limited %d", 2); /* suppressed */
}

static void test_log_prefix(void **st)
{
    const char *s = captured(log_lines);
    assert_non_null(strstr(s, "warn  input forward.1: closing connection 7\n"));
    assert_non_null(strstr(s, "error input forward.1: no arguments\n"));
    assert_non_null(strstr(s, "error output es: cannot start: refused\n"));
    assert_non_null(strstr(s, "warn  output es: limited 1\n"));
    assert_null(strstr(s, "limited 2"));
}

/* sp_hash_bytes gives the values the four copies it replaced gave (FNV-1a's loop with their
 * offset basis, not FNV's published one): the throttle filter's summary record ids are seeded
 * with it, so a change would change ids across versions. */
static void test_hash_bytes(void **st)
{
    assert_true(sp_hash_bytes("", 0) == 0x14650fb0739d0383ULL);
    assert_true(sp_hash_bytes("a", 1) == 0x44bd8ad473cd9906ULL);
    assert_true(sp_hash_bytes("foobar", 6) == 0x88fad7c0a8ff07f2ULL);
    assert_true(sp_hash_bytes("\xff\x80", 2) != sp_hash_bytes("\x7f\x80", 2)); /* bytes unsigned */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_node_line),
        cmocka_unit_test(test_reasons),
        cmocka_unit_test(test_log_prefix),
        cmocka_unit_test(test_hash_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
