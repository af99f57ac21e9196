/* The multiline filter's state machine on arbitrary lines: no crash, and nothing lost, doubled or
 * reordered. The first byte picks the settings (mode, max_lines, max_bytes); the rest is lines,
 * each led by a byte that picks one of three (container, stream) keys. Per key, the lines kept
 * and the groups emitted (sp_filter_emit is wrapped, CMakeLists.txt), joined with "\n", are the
 * key's input lines joined with "\n". And sp_ml_rules_may_start, the prefilter, says yes to every
 * line a built-in start pattern matches. */
#include <stdio.h>
#include <stdlib.h>

#include "daemon.h"
#include "ml_int.h"

static sp_buf got[3];

static int fuzz_key(const sp_record *r)
{
    if (r->container_id.base[0] == 'b') return 2;
    return r->stream.base[3] == 'e'; /* stderr */
}

static void fuzz_add(const sp_record *r)
{
    sp_buf *b = &got[fuzz_key(r)];
    if (b->len) sp_buf_putc(b, '\n');
    sp_buf_append(b, r->message.base, r->message.len);
}

void __wrap_sp_filter_emit_held(sp_filter *f, sp_slice tag, const sp_record *r, sp_holds *h)
{
    (void)f;
    h->n = 0; /* no router here: nothing was taken (filters.c moves them to a chunk) */
    (void)tag;
    fuzz_add(r);
}

/* The prefilter is a superset of the built-in start patterns. */
static void fuzz_prefilter(sp_slice line)
{
    static sp_ml_rules rs;
    static int ready;
    char why[256];
    if (!ready && sp_ml_rules_init(&rs, SP_ML_AUTO, NULL, NULL, why, sizeof why)) abort();
    ready = 1;
    if (sp_ml_rules_may_start(&rs, line)) return;
    for (size_t i = 0; i < rs.nstart; i++)
        if (sp_pattern_match(rs.start[i].re, line)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const modes[] = {"auto", "java", "python", "go", "nodejs", "custom"};
    if (size < 1) return 0;
    char yaml[512];
    int mode = data[0] % 6;
    snprintf(yaml, sizeof yaml,
             "filters:\n  - type: multiline\n    mode: %s\n    max_lines: %d\n"
             "    max_bytes: %d\n%s"
             "inputs:\n  - type: forward\noutputs:\n  - type: null\n",
             modes[mode], 1 + (data[0] >> 3 & 3) * 3, 16 + (data[0] >> 5) * 40,
             mode == 5 ? "    start: '^[A-Z]'\n    continue: '^\\s'\n" : "");
    static sp_daemon d;
    sp_conf_err err = {.file = "fuzz"};
    if (sp_daemon_load(&d, yaml, strlen(yaml), &err)) abort();
    sp_filter *f = d.filters[0];
    sp_buf want[3] = {{0}};
    for (int k = 0; k < 3; k++)
        got[k].len = 0;
    const char *p = (const char *)data + 1, *end = (const char *)data + size;
    while (p < end) {
        int k = (uint8_t)*p++ % 3;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        fuzz_prefilter(sp_slice_make(p, len));
        sp_record r = {0};
        r.message = sp_slice_make(p, len);
        r.container_id = sp_slice_make(k == 2 ? "b" : "a", 1);
        r.stream = k == 1 ? SP_SLICE_LIT("stderr") : SP_SLICE_LIT("stdout");
        r.extras = sp_slice_make("", 0);
        if (want[k].len) sp_buf_putc(&want[k], '\n');
        sp_buf_append(&want[k], p, len);
        if (f->type->apply(f, &r, SP_SLICE_LIT("t")) == SP_FILTER_KEEP) fuzz_add(&r);
        p = nl ? nl + 1 : end;
    }
    f->type->drain(f);
    for (int k = 0; k < 3; k++) {
        if (want[k].len != got[k].len || memcmp(want[k].base, got[k].base, want[k].len)) abort();
        sp_buf_free(&want[k]);
    }
    sp_daemon_free(&d);
    memset(&d, 0, sizeof d);
    return 0;
}
