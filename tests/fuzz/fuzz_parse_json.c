/* The parse filter's JSON-to-MessagePack scanner on arbitrary bytes: no crash, and what it writes
 * is well-formed MessagePack pairs, as many as it says, that json.c can encode back. Differential
 * against jansson: an object jansson reads (nested at most 30 deep) must be read, and to the same
 * members and values (the last of a repeated key; numbers compared by value, one too long for a
 * double as its text). Where the two may differ by design (invalid UTF-8, lone surrogates, integers
 * past 64 bits) jansson refuses the text, and only the first check applies. The places the
 * scanner lists for the filters after it (sp_parse_json_places) are where a walk finds the
 * pairs, or it declines (a repeated key). */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>

#include "filter.h"
#include "json.h"
#include "mp.h"
#include "parse_int.h"

/* The places sp_parse_json_places lists for n pairs in out: those a walk finds. */
static void fz_places(const sp_parse_scratch *sc, const sp_buf *out, uint32_t n)
{
    static sp_extra *x;
    static uint32_t cap;
    if (!n) return;
    if (n > cap) {
        free(x);
        x = calloc(cap = n, sizeof *x);
    }
    sp_parse_json_at at = {sc, out};
    if (sp_parse_json_places(&at, x, n)) return; /* declined: the filters walk */
    const uint8_t *p = (const uint8_t *)out->base, *end = p + out->len;
    for (uint32_t i = 0; i < n; i++) {
        sp_slice k, v;
        if (sp_extras_next(&p, end, &k, &v)) abort();
        if (k.base != x[i].key.base || k.len != x[i].key.len || v.base != x[i].val.base ||
            v.len != x[i].val.len)
            abort();
    }
    if (p != end) abort();
}

static int fz_depth(const json_t *v)
{
    int d = 0;
    if (json_is_object(v)) {
        const char *k;
        json_t *m;
        json_object_foreach((json_t *)v, k, m)
        {
            int c = fz_depth(m);
            if (c > d) d = c;
        }
        return d + 1;
    }
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            int c = fz_depth(json_array_get(v, i));
            if (c > d) d = c;
        }
        return d + 1;
    }
    return 0;
}

static int fz_same(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b)) {
        if (json_is_integer(a) && json_is_integer(b))
            return json_integer_value(a) == json_integer_value(b);
        return json_number_value(a) == json_number_value(b);
    }
    if (json_is_string(a) && json_is_number(b)) /* a number too long for a double: its text */
        return json_string_length(a) >= 64 &&
               strtod(json_string_value(a), NULL) == json_number_value(b);
    if (json_typeof(a) != json_typeof(b)) return 0;
    if (json_is_string(a))
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b)) return 0;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!fz_same(json_array_get(a, i), json_array_get(b, i))) return 0;
        return 1;
    }
    if (json_is_object(a)) {
        if (json_object_size(a) != json_object_size(b)) return 0;
        const char *k;
        json_t *m;
        json_object_foreach((json_t *)a, k, m)
        {
            json_t *o = json_object_get(b, k);
            if (!o || !fz_same(m, o)) return 0;
        }
        return 1;
    }
    return 1; /* true, false, null */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sp_buf out, doc;
    static sp_parse_scratch sc;
    uint32_t n = 0;
    out.len = 0;
    int rc = sp_parse_json((const char *)data, size, &out, &n, &sc);
    if (rc == 0) {
        const uint8_t *p = (const uint8_t *)(out.base ? out.base : ""), *end = p + out.len;
        doc.len = 0;
        sp_buf_putc(&doc, '{');
        for (uint32_t i = 0; i < 2 * n; i++) {
            if (i) sp_buf_putc(&doc, i % 2 ? ':' : ',');
            if (sp_json_mp(&doc, &p, end)) abort();
        }
        sp_buf_putc(&doc, '}');
        if (p != end) abort();
        fz_places(&sc, &out, n);
    } else if (out.len) {
        abort();
    }
    if (memchr(data, 0, size)) return 0; /* jansson reads a raw NUL byte in places as the end */
    json_error_t err;
    json_t *want = json_loadb((const char *)data, size, JSON_ALLOW_NUL, &err);
    if (!want) return 0;
    if (json_is_object(want) && fz_depth(want) <= 30) {
        if (rc) abort(); /* valid JSON refused */
        json_t *got = json_loadb(doc.base, doc.len, JSON_ALLOW_NUL, &err);
        if (!got || !fz_same(got, want)) abort();
        json_decref(got);
    }
    json_decref(want);
    return 0;
}
