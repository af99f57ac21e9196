/* Configuration: values, environment expansion, errors with file:line, unsupported values. */
#include "unit.h"

#include "daemon.h"

static int load(const char *yaml, sp_daemon *d, sp_conf_err *err)
{
    memset(err, 0, sizeof *err);
    err->file = "t.yaml";
    return sp_daemon_load(d, yaml, strlen(yaml), err);
}

static void test_sizes_durations(void **st)
{
    uint64_t v;
    assert_int_equal(sp_parse_size("256MiB", &v), 0);
    assert_int_equal(v, 256ull << 20);
    assert_int_equal(sp_parse_size("1.5KiB", &v), 0);
    assert_int_equal(v, 1536);
    assert_int_equal(sp_parse_size("4GiB", &v), 0);
    assert_int_equal(v, 4ull << 30);
    assert_int_equal(sp_parse_size("10MB", &v), 0);
    assert_int_equal(v, 10000000);
    assert_int_equal(sp_parse_size("12 parsecs", &v), -1);
    assert_int_equal(sp_parse_duration("10s", &v), 0);
    assert_int_equal(v, 10000);
    assert_int_equal(sp_parse_duration("250ms", &v), 0);
    assert_int_equal(v, 250);
    assert_int_equal(sp_parse_duration("2m", &v), 0);
    assert_int_equal(v, 120000);
    assert_int_equal(sp_parse_duration("soon", &v), -1);
}

static void test_full_config_and_env(void **st)
{
    setenv("SP_TEST_PORT", "24299", 1);
    unsetenv("SP_TEST_UNSET");
    sp_daemon d;
    sp_conf_err err;
    int rc = load("service:\n  grace: 3s\n  http_listen: \"\"\n"
                  "buffer:\n  memory_limit: 64MiB\n  chunk_size: 256KiB\n"
                  "inputs:\n  - type: forward\n    listen: 127.0.0.1:${SP_TEST_PORT}\n"
                  "    max_line_size: ${SP_TEST_UNSET:-2MiB}\n"
                  "outputs:\n  - type: null\n    match: \"docker.*\"\n",
                  &d, &err);
    assert_int_equal(rc, 0);
    assert_int_equal(d.service.grace_ms, 3000);
    assert_int_equal(d.buffer.memory_limit, 64ull << 20);
    assert_int_equal(d.buffer.chunk_size, 256ull << 10);
    assert_int_equal(d.ninputs, 1);
    assert_int_equal(d.noutputs, 1);
    assert_string_equal(d.outputs[0]->match, "docker.*");
    sp_buf b = {0};
    sp_daemon_print(&d, &b);
    sp_buf_putc(&b, '\0');
    assert_non_null(strstr(b.base, "listen: 127.0.0.1:24299"));
    assert_non_null(strstr(b.base, "max_line_size: 2MiB"));
    sp_buf_free(&b);
    sp_daemon_free(&d);
}

/* The buffer's defaults (README "Memory": 64 MiB since 2026-12-01, chosen from the
 * throughput/limit curve; a flood peaks at about 75 MB, so a 128 MiB sidecar fits). */
static void test_buffer_defaults(void **st)
{
    sp_daemon d;
    sp_conf_err err;
    int rc = load("inputs:\n  - type: forward\n    listen: 127.0.0.1:24299\n"
                  "outputs:\n  - type: null\n",
                  &d, &err);
    assert_int_equal(rc, 0);
    assert_int_equal(d.buffer.memory_limit, 64ull << 20);
    assert_int_equal(d.buffer.chunk_size, 1ull << 20);
    sp_daemon_free(&d);
}

static void expect_error(const char *yaml, const char *want)
{
    sp_daemon d;
    sp_conf_err err;
    assert_int_equal(load(yaml, &d, &err), -1);
    if (!strstr(err.msg, want)) fail_msg("error \"%s\" lacks \"%s\"", err.msg, want);
    sp_daemon_free(&d);
}

static void test_errors(void **st)
{
    const char *outs = "outputs:\n  - type: null\n";
    char y[512];
    snprintf(y, sizeof y, "inputs:\n  - type: forward\n    bogus: 1\n%s", outs);
    expect_error(y, "t.yaml:3: inputs[0].bogus: unknown key");
    snprintf(y, sizeof y, "inputs:\n  - type: forward\n    max_message_size: huge\n%s", outs);
    expect_error(y, "t.yaml:3: inputs[0].max_message_size: \"huge\" is not a size");
    snprintf(y, sizeof y, "inputs:\n  - type: forward\n    ack: sometimes\n%s", outs);
    expect_error(y, "is not one of: accepted | durable | delivered");
    snprintf(y, sizeof y, "inputs:\n  - type: forward\n    ack: durable\n%s", outs);
    expect_error(y, "t.yaml:2: forward: ack: durable needs buffer.spool");
    snprintf(y, sizeof y, "buffer:\n  spool: true\ninputs:\n  - type: forward\n%s", outs);
    expect_error(y, "t.yaml:2: buffer.spool: needs service.state_dir");
    snprintf(y, sizeof y, "inputs:\n  - type: forward\n    tls: {cert: /c.pem}\n%s", outs);
    expect_error(y, "t.yaml:3: tls: needs both cert and key");
    snprintf(y, sizeof y, "inputs:\n  - type: forward\n    tls: {cert: /c, key: /k, ca: /a}\n%s",
             outs);
    expect_error(y, "t.yaml:3: tls: unknown key \"ca\"");
    snprintf(y, sizeof y,
             "inputs:\n  - type: forward\n    tls: {cert: /nonexistent.pem, key: /k}\n%s", outs);
    expect_error(y, "t.yaml:3: tls: /nonexistent.pem:");
    snprintf(y, sizeof y, "inputs:\n  - type: forward\n    shared_key: \"\"\n%s", outs);
    expect_error(y, "t.yaml:3: shared_key: must not be empty");
    snprintf(y, sizeof y, "inputs:\n  - type: forward\n    listen: nowhere\n%s", outs);
    expect_error(y, "t.yaml:3: listen:");
    snprintf(y, sizeof y, "inputs:\n  - type: forwardx\n%s", outs);
    expect_error(y, "unknown input type \"forwardx\"");
    expect_error("inputs:\n  - type: forward\n", "outputs: at least one output");
    expect_error("inputs: [\n", "YAML syntax");
    expect_error("servce:\n  grace: 1s\n", "t.yaml:1: servce: unknown key");
    expect_error("service:\n  grace: ${SP_TEST_NOPE}\n", "SP_TEST_NOPE is not set");
    expect_error("service:\n  grace: 1s\n  grace: 2s\n", "duplicate key");
}

/* The one loader of inputs and outputs: each kind keeps its own rules and messages. */
static void test_component_lists(void **st)
{
    const char *ins = "inputs:\n  - type: forward\n";
    char y[8192];
    snprintf(y, sizeof y, "%soutputs:\n  - type: nul\n", ins);
    expect_error(
        y, "t.yaml:4: type: unknown output type \"nul\" (elasticsearch, kafka, forward, stdout, null)");
    snprintf(y, sizeof y, "%soutputs:\n  - match: \"*\"\n", ins);
    expect_error(y, "t.yaml:4: outputs[0]: needs a `type`");
    snprintf(y, sizeof y, "%soutputs:\n  - type: null\n    workers: 300\n", ins);
    expect_error(y, "t.yaml:4: workers: must be between 0 and 256");
    snprintf(y, sizeof y, "%soutputs:\n  - type: null\n    bogus: 1\n", ins);
    expect_error(y, "t.yaml:5: outputs[0].bogus: unknown key");
    snprintf(y, sizeof y, "inputs:\n  - type: forward\n    match: x\noutputs:\n  - type: null\n");
    expect_error(y, "t.yaml:3: inputs[0].match: unknown key");
    expect_error("inputs: {}\noutputs:\n  - type: null\n",
                 "t.yaml:1: inputs: must be a list of inputs");
    expect_error("outputs:\n  - type: null\n", "t.yaml:1: inputs: at least one input is required");
    int n = snprintf(y, sizeof y, "%soutputs:\n", ins);
    for (int i = 0; i < 65; i++)
        n += snprintf(y + n, sizeof y - (size_t)n, "  - type: null\n");
    expect_error(y, "t.yaml:68: outputs[64]: at most 64 outputs");

    /* Names: the type, type.N when a type repeats, or `name`; common settings apply. */
    snprintf(y, sizeof y,
             "inputs:\n  - type: forward\n  - type: forward\n    listen: 127.0.0.1:0\n"
             "outputs:\n  - type: null\n    match: \"app.*\"\n    workers: 3\n"
             "  - type: stdout\n    name: out\n");
    sp_daemon d;
    sp_conf_err err;
    assert_int_equal(load(y, &d, &err), 0);
    assert_int_equal(d.ninputs, 2);
    assert_string_equal(d.inputs[0]->name, "forward.0");
    assert_string_equal(d.inputs[1]->name, "forward.1");
    assert_int_equal(d.inputs[1]->line, 3);
    assert_int_equal(d.noutputs, 2);
    assert_string_equal(d.outputs[0]->name, "null");
    assert_string_equal(d.outputs[0]->match, "app.*");
    assert_int_equal(d.outputs[0]->max_inflight, 3);
    assert_string_equal(d.outputs[1]->name, "out");
    assert_string_equal(d.outputs[1]->match, "*");
    assert_int_equal(d.outputs[1]->index, 1);
    sp_daemon_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes_durations),
        cmocka_unit_test(test_full_config_and_env),
        cmocka_unit_test(test_buffer_defaults),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_component_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
