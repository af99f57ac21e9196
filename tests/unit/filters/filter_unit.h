/* Helpers for filter unit tests: a configuration with `filters:` loaded through the daemon's
 * loader, a record run through one filter, and the document it becomes. */
#ifndef SP_FILTER_UNIT_H
#define SP_FILTER_UNIT_H
#include "unit.h"

#include "daemon.h"
#include "json.h"
#include "mp.h"

static sp_daemon flt_d;
static sp_conf_err flt_err;

/* Loads `filters_yaml` (the items of `filters:`, indented by 2); 0 or -1 (flt_err.msg). */
static void flt_unload(void);
static int flt_load(const char *filters_yaml)
{
    flt_unload(); /* what a failed load left */
    sp_buf y = {0};
    sp_buf_printf(&y, "filters:\n%s\ninputs:\n  - type: forward\noutputs:\n  - type: null\n",
                  filters_yaml);
    memset(&flt_err, 0, sizeof flt_err);
    flt_err.file = "t.yaml";
    int rc = sp_daemon_load(&flt_d, y.base, y.len, &flt_err);
    sp_buf_free(&y);
    return rc;
}

static void flt_unload(void)
{
    sp_daemon_free(&flt_d);
    memset(&flt_d, 0, sizeof flt_d);
}

/* A record with `message` (NULL: none) and extras given as MessagePack pairs. */
static sp_record flt_rec(const char *message, size_t len, const sp_buf *extras, uint32_t n)
{
    sp_record r = {0};
    r.sec = 1700000000;
    if (message) r.message = sp_slice_make(message, len);
    r.stream = SP_SLICE_LIT("stdout");
    r.container_id =
        SP_SLICE_LIT("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    r.container_name = SP_SLICE_LIT("web-1");
    r.extras = extras ? sp_buf_slice(extras) : sp_slice_make("", 0);
    r.nextras = n;
    return r;
}

/* Runs filter i on r; the result, and the document in a static buffer (NUL-terminated). */
static const char *flt_doc;
static int flt_run(size_t i, sp_record *r)
{
    static sp_buf doc;
    sp_filter *f = flt_d.filters[i];
    int rc = f->type->apply(f, r, SP_SLICE_LIT("fwd.web-1"));
    doc.len = 0;
    sp_json_document(&doc, r, SP_SLICE_LIT("fwd.web-1"), NULL, NULL);
    sp_buf_putc(&doc, 0);
    flt_doc = doc.base;
    return rc;
}

__attribute__((unused)) static const char *flt_run_msg(size_t i, const char *msg)
{
    sp_record r = flt_rec(msg, strlen(msg), NULL, 0);
    flt_run(i, &r);
    return flt_doc;
}

#define assert_has(s, sub)                                                                         \
    do {                                                                                           \
        if (!strstr((s), (sub))) fail_msg("%s\n  does not contain %s", (s), (sub));                \
    } while (0)
#define assert_lacks(s, sub)                                                                       \
    do {                                                                                           \
        if (strstr((s), (sub))) fail_msg("%s\n  contains %s", (s), (sub));                         \
    } while (0)

#endif
