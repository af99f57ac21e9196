/*
 * Bulk responses. With filter_path=errors,items.*.status,items.*.error a response is
 * {"errors":B,"items":[{"create":{"status":N[,"error":{...}]}},...]}. The common case,
 * errors:false, is checked by a scan (the body is complete and has one status per item) instead
 * of building a JSON tree of every item; a response with errors is parsed with jansson.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "es.h"

int sp_es_item_class(int status)
{
    if ((status >= 200 && status < 300) || status == 409) return SP_ES_ITEM_OK;
    if (status == 429 || status >= 500) return SP_ES_ITEM_RETRY;
    return SP_ES_ITEM_REJECT;
}

/* errors:false and the body ends the object, with exactly `nitems` statuses: all delivered. */
static int sp__all_ok(const char *b, size_t len, uint32_t nitems)
{
    static const char head[] = "{\"errors\":false";
    if (len < sizeof head - 1 || memcmp(b, head, sizeof head - 1) != 0) return 0;
    size_t e = len;
    while (e > 0 && (b[e - 1] == '\n' || b[e - 1] == ' ' || b[e - 1] == '\r'))
        e--;
    if (e < 2 || b[e - 1] != '}') return 0;
    /* errors:false means no item has an error; still count the items, so a body that lost a
     * part in the middle (a proxy, a bug) is not taken as a full answer. */
    uint32_t n = 0;
    const char *p = b, *end = b + e;
    while ((p = memmem(p, (size_t)(end - p), "\"status\":", 9))) {
        n++;
        p += 9;
    }
    return n == nitems && (nitems == 0 || memmem(b, e, "\"items\":[", 9) != NULL);
}

int64_t sp_es_parse_response(const char *body, size_t len, uint32_t nitems, sp_es_item_cb cb,
                             void *ctx)
{
    if (sp__all_ok(body, len, nitems)) return nitems;
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    if (!root) return -1;
    int64_t ok = -1;
    json_t *items = json_object_get(root, "items");
    if (!json_is_object(root) || !json_is_boolean(json_object_get(root, "errors")) ||
        !json_is_array(items) || json_array_size(items) != nitems)
        goto out;
    /* Validate every item before reporting any, so a malformed body reports nothing. */
    for (size_t i = 0; i < nitems; i++) {
        json_t *it = json_array_get(items, i);
        json_t *op = json_is_object(it) && json_object_size(it) == 1
                         ? json_object_iter_value(json_object_iter(it))
                         : NULL;
        if (!json_is_object(op) || !json_is_integer(json_object_get(op, "status"))) goto out;
    }
    ok = 0;
    for (size_t i = 0; i < nitems; i++) {
        json_t *op = json_object_iter_value(json_object_iter(json_array_get(items, i)));
        int status = (int)json_integer_value(json_object_get(op, "status"));
        if (sp_es_item_class(status) == SP_ES_ITEM_OK) {
            ok++;
            continue;
        }
        json_t *err = json_object_get(op, "error");
        char typebuf[32];
        const char *type = json_string_value(json_object_get(err, "type"));
        const char *reason = json_string_value(json_object_get(err, "reason"));
        if (!type) {
            snprintf(typebuf, sizeof typebuf, "status_%d", status);
            type = typebuf;
        }
        char *text =
            err ? json_dumps(err, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ENCODE_ANY) : NULL;
        cb(ctx, (uint32_t)i, status, type, reason ? reason : "", text ? text : "");
        free(text);
    }
out:
    json_decref(root);
    return ok;
}
