/* multiline: real Java, Python, Node.js and Go traces joined into one record each, interleaved
 * containers and streams, timeout flush, max_lines / max_bytes cuts, drain, custom rules, config.
 * sp_filter_emit_held is wrapped (CMakeLists.txt): what the filter emits is collected here. */
#include "../filter_unit.h"

static char *emitted[64];
static char emitted_stream[64][16];
static char emitted_id[64][80];
static int emitted_cut[64];
static int nemitted;

void __wrap_sp_filter_emit_held(sp_filter *f, sp_slice tag, const sp_record *r, sp_holds *h)
{
    (void)f;
    h->n = 0; /* no router here: nothing was taken (filters.c moves them to a chunk) */
    assert_true(tag.len > 0);
    assert_true(nemitted < 64);
    emitted[nemitted] = strndup(r->message.base, r->message.len);
    snprintf(emitted_stream[nemitted], 16, "%.*s", (int)r->stream.len, r->stream.base);
    snprintf(emitted_id[nemitted], 80, "%.*s", (int)r->container_id.len, r->container_id.base);
    emitted_cut[nemitted] = (r->flags & SP_REC_SPLIT) != 0;
    nemitted++;
}

static void reset(void)
{
    for (int i = 0; i < nemitted; i++)
        free(emitted[i]);
    nemitted = 0;
}

/* One line to filter 0 from container `c...c`, `stream`; the verdict. */
static int feed_line(const char *line, size_t len, char c, const char *stream, sp_buf *passed)
{
    static char id[65];
    memset(id, c, 64);
    sp_record r = flt_rec(line, len, NULL, 0);
    r.container_id = sp_slice_make(id, 64);
    r.stream = sp_slice_str(stream);
    int v = flt_run(0, &r);
    if (v == SP_FILTER_KEEP && passed) {
        sp_buf_append(passed, r.message.base, r.message.len);
        sp_buf_putc(passed, '|');
    }
    assert_true(v == SP_FILTER_KEEP || v == SP_FILTER_HOLD);
    return v;
}

/* Feeds text line by line to filter 0 (container id's first char `c`, `stream`); the lines that
 * passed straight through, joined with '|', in `passed`. */
static void feed(const char *text, char c, const char *stream, sp_buf *passed)
{
    for (const char *p = text;;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        feed_line(p, len, c, stream, passed);
        if (!nl) break;
        p = nl + 1;
    }
}

static const char java_trace[] =
    "java.lang.RuntimeException: outer\n"
    "\tat T.main(T.java:2)\n"
    "\tat java.base/jdk.internal.reflect.NativeMethodAccessorImpl.invoke0(Native Method)\n"
    "\tat java.base/java.lang.reflect.Method.invoke(Method.java:569)\n"
    "\tat jdk.compiler/com.sun.tools.javac.launcher.Main.main(Main.java:132)\n"
    "Caused by: java.lang.IllegalStateException: inner\n"
    "\tat T.f(T.java:1)\n"
    "\t... 8 more";

static const char python_trace[] =
    "Traceback (most recent call last):\n"
    "  File \"<string>\", line 4, in <module>\n"
    "  File \"<string>\", line 2, in f\n"
    "ValueError: bad value\n"
    "\n"
    "The above exception was the direct cause of the following exception:\n"
    "\n"
    "Traceback (most recent call last):\n"
    "  File \"<string>\", line 6, in <module>\n"
    "KeyError: 'k'";

static const char node_trace[] = "TypeError: boom\n"
                                 "    at a ([eval]:1:20)\n"
                                 "    at [eval]:1:47\n"
                                 "    at runScriptInThisContext (node:internal/vm:209:10)\n"
                                 "    at node:internal/main/eval_string:51:3";

static const char go_trace[] = "panic: runtime error: index out of range [5] with length 3\n"
                               "\n"
                               "goroutine 1 [running]:\n"
                               "main.lookup(...)\n"
                               "\t/app/main.go:8\n"
                               "main.main()\n"
                               "\t/app/main.go:12 +0x1d\n"
                               "exit status 2";

/* Each trace between two plain lines: one record with every line in order. */
static void check_trace(const char *mode, const char *trace)
{
    char y[128];
    snprintf(y, sizeof y, "  - type: multiline\n    mode: %s\n", mode);
    assert_int_equal(flt_load(y), 0);
    reset();
    sp_buf text = {0}, passed = {0};
    sp_buf_printf(&text, "starting up\n%s\nrequest done", trace);
    sp_buf_putc(&text, 0);
    feed(text.base, 'a', "stderr", &passed);
    sp_buf_putc(&passed, 0);
    assert_string_equal(passed.base, "starting up|request done|");
    assert_int_equal(nemitted, 1);
    assert_string_equal(emitted[0], trace);
    assert_string_equal(emitted_stream[0], "stderr");
    sp_buf_free(&text);
    sp_buf_free(&passed);
    flt_unload();
    reset();
}

static void test_languages(void **st)
{
    check_trace("java", java_trace);
    check_trace("python", python_trace);
    check_trace("nodejs", node_trace);
    check_trace("go", go_trace);
    check_trace("auto", java_trace);
    check_trace("auto", python_trace);
    check_trace("auto", node_trace);
    check_trace("auto", go_trace);
}

/* Two containers and two streams of one container interleave line by line: four groups. */
static void test_interleave(void **st)
{
    assert_int_equal(flt_load("  - type: multiline\n"), 0);
    reset();
    const char *a = java_trace, *b = python_trace;
    const char *pa = a, *pb = b;
    while (*pa || *pb) {
        for (int k = 0; k < 2; k++) {
            const char **pp = k ? &pb : &pa;
            if (!**pp) continue;
            const char *nl = strchr(*pp, '\n');
            size_t len = nl ? (size_t)(nl - *pp) : strlen(*pp);
            feed_line(*pp, len, k ? 'b' : 'a', "stdout", NULL);
            feed_line(*pp, len, k ? 'b' : 'a', "stderr", NULL);
            *pp = nl ? nl + 1 : *pp + len;
        }
    }
    assert_int_equal(nemitted, 0); /* all four still pending */
    flt_d.filters[0]->type->drain(flt_d.filters[0]);
    assert_int_equal(nemitted, 4);
    int seen[4] = {0};
    for (int i = 0; i < 4; i++) {
        int py = emitted_id[i][0] == 'b', err = strcmp(emitted_stream[i], "stderr") == 0;
        assert_string_equal(emitted[i], py ? python_trace : java_trace);
        seen[py * 2 + err]++;
    }
    for (int i = 0; i < 4; i++)
        assert_int_equal(seen[i], 1);
    /* after drain (shutdown) nothing is held any more: no tick would emit it */
    const char *late = "java.lang.IllegalStateException: late";
    assert_int_equal(feed_line(late, strlen(late), 'a', "stdout", NULL), SP_FILTER_KEEP);
    flt_unload();
    reset();
}

/* A group no line ends is emitted after flush_timeout by tick, not before. */
static void test_timeout(void **st)
{
    assert_int_equal(flt_load("  - type: multiline\n    flush_timeout: 1h\n"), 0);
    reset();
    feed(java_trace, 'a', "stdout", NULL);
    sp_filter *f = flt_d.filters[0];
    f->type->tick(f, 0);
    assert_int_equal(nemitted, 0);
    flt_unload();
    assert_int_equal(flt_load("  - type: multiline\n    flush_timeout: 20ms\n"), 0);
    f = flt_d.filters[0];
    feed(java_trace, 'a', "stdout", NULL);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do { /* poll: the coarse clock must pass 20 ms */
        f->type->tick(f, 0);
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while (!nemitted && t.tv_sec - t0.tv_sec < 10);
    assert_int_equal(nemitted, 1);
    assert_string_equal(emitted[0], java_trace);
    sp_buf m = {0};
    f->type->metrics(f, &m);
    sp_buf_putc(&m, 0);
    assert_has(m.base, "shipper_filter_multiline_groups_total{filter=\"multiline\","
                       "reason=\"timeout\"} 1\n");
    assert_has(m.base, "shipper_filter_multiline_pending{filter=\"multiline\"} 0\n");
    sp_buf_free(&m);
    flt_unload();
    reset();
}

/* max_lines and max_bytes cut a group (flagged); the rest of the trace is the next group. */
static void test_limits(void **st)
{
    assert_int_equal(flt_load("  - type: multiline\n    max_lines: 3\n"), 0);
    reset();
    feed(java_trace, 'a', "stdout", NULL);
    flt_d.filters[0]->type->drain(flt_d.filters[0]);
    assert_int_equal(nemitted, 3); /* 8 lines: 3 + 3 + 2 */
    assert_true(emitted_cut[0] && emitted_cut[1] && !emitted_cut[2]);
    sp_buf all = {0};
    for (int i = 0; i < 3; i++)
        sp_buf_printf(&all, "%s%s", i ? "\n" : "", emitted[i]);
    sp_buf_putc(&all, 0);
    assert_string_equal(all.base, java_trace); /* nothing lost, in order */
    sp_buf_free(&all);
    flt_unload();
    assert_int_equal(flt_load("  - type: multiline\n    max_bytes: 100\n"), 0);
    reset();
    feed(java_trace, 'a', "stdout", NULL);
    flt_d.filters[0]->type->drain(flt_d.filters[0]);
    assert_true(nemitted >= 3);
    for (int i = 0; i < nemitted; i++)
        assert_true(strlen(emitted[i]) <= 100);
    flt_unload();
    reset();
}

/* custom rules; lines without a start pass; a record without a message passes. */
static void test_custom(void **st)
{
    assert_int_equal(flt_load("  - type: multiline\n    mode: custom\n    start: '^\\d{4}-'\n"
                              "    continue: '^\\s'\n"),
                     0);
    reset();
    sp_buf passed = {0};
    feed("noise\n2024-01-01 one\n  two\n  three\n2024-01-02 four\nafter", 'a', "stdout", &passed);
    sp_buf_putc(&passed, 0);
    assert_string_equal(passed.base, "noise|after|");
    assert_int_equal(nemitted, 2);
    assert_string_equal(emitted[0], "2024-01-01 one\n  two\n  three");
    assert_string_equal(emitted[1], "2024-01-02 four");
    sp_record r = flt_rec(NULL, 0, NULL, 0);
    assert_int_equal(flt_run(0, &r), SP_FILTER_KEEP);
    sp_buf_free(&passed);
    flt_unload();
    reset();
}

static void test_config(void **st)
{
    assert_int_equal(flt_load("  - type: multiline\n    mode: custom\n    start: x\n"), -1);
    assert_has(flt_err.msg, "continue");
    assert_int_equal(flt_load("  - type: multiline\n    start: x\n"), -1);
    assert_int_equal(flt_load("  - type: multiline\n    mode: custom\n    start: '('\n"
                              "    continue: x\n"),
                     -1);
    assert_int_equal(flt_load("  - type: multiline\n    mode: cobol\n"), -1);
    assert_int_equal(flt_load("  - type: multiline\n    max_lines: 0\n"), -1);
    assert_int_equal(flt_load("  - type: multiline\n    flush_timeout: 500ms\n"), 0);
    sp_buf out = {0};
    sp_daemon_print(&flt_d, &out);
    sp_buf_putc(&out, 0);
    assert_has(out.base, "  - type: multiline\n");
    assert_has(out.base, "    flush_timeout: 500ms\n");
    sp_buf_free(&out);
    flt_unload();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_languages), cmocka_unit_test(test_interleave),
        cmocka_unit_test(test_timeout),   cmocka_unit_test(test_limits),
        cmocka_unit_test(test_custom),    cmocka_unit_test(test_config)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
