/*
 * The docker_audit input's records (docs/audit.md, "Records"), made on the loop thread: a
 * posture record carries `audit` (the posture object), a drift record `drift: {path, kind}`;
 * both have the container's id and name, so documents get its image and labels like any other.
 */
#define SP_AUDIT_INPUT
#include <string.h>
#include <time.h>

#include "audit_int.h"
#include "mp.h"

/* A JSON value as MessagePack (the chunk layout's extras). */
static void sp_audit_mp(sp_buf *b, const json_t *v)
{
    const char *k;
    const json_t *e;
    size_t i;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        sp_mp_put_map(b, (uint32_t)json_object_size(v));
        json_object_foreach((json_t *)v, k, e)
        {
            sp_mp_put_str(b, k, strlen(k));
            sp_audit_mp(b, e);
        }
        break;
    case JSON_ARRAY:
        sp_mp_put_array(b, (uint32_t)json_array_size(v));
        json_array_foreach(v, i, e) sp_audit_mp(b, e);
        break;
    case JSON_STRING:
        sp_mp_put_str(b, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        sp_mp_put_int(b, json_integer_value(v));
        break;
    case JSON_REAL:
        sp_mp_put_double(b, json_real_value(v));
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        sp_mp_put_bool(b, json_is_true(v));
        break;
    default:
        sp_mp_put_nil(b);
    }
}

/* Appends one record of container `c` with message `msg` and the extra `key: v`; its id is a
 * hash of the container, `what` (what the record says) and the time. */
static void sp_audit_append(sp_audit *s, sp_audit_cont *c, const char *msg, const char *key,
                            const json_t *v, const char *what)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    sp_record r = {.sec = (uint64_t)ts.tv_sec, .nsec = (uint32_t)ts.tv_nsec, .prec = 9};
    sp_buf idsrc = {0}, extras = {0}, tag = {0};
    sp_buf_printf(&idsrc, "%s\n%s\n%lld.%09ld", c->id, what, (long long)ts.tv_sec, ts.tv_nsec);
    sp_hash128(idsrc.base, idsrc.len, 0x61756469ULL, r.id);
    r.message = sp_slice_str(msg);
    r.container_id = sp_slice_str(c->id);
    r.container_name = sp_slice_str(c->name);
    sp_mp_put_str(&extras, key, strlen(key));
    sp_audit_mp(&extras, v);
    r.nextras = 1;
    r.extras = sp_buf_slice(&extras);
    sp_buf_printf(&tag, "%s%s", s->conf->tag_prefix, c->name);
    sp_input_append(s->in, sp_buf_slice(&tag), &r, NULL, NULL);
    sp_buf_free(&idsrc);
    sp_buf_free(&extras);
    sp_buf_free(&tag);
}

void sp_audit_emit_posture(sp_audit *s, sp_audit_cont *c, const json_t *posture, uint64_t hash)
{
    sp_buf msg = {0}, what = {0};
    const json_t *findings = json_object_get(posture, "findings"), *f;
    int ok = json_is_true(json_object_get(posture, "compliant"));
    sp_buf_printf(&msg, "posture of %s: %s", c->name, ok ? "compliant" : "not compliant:");
    size_t i, n = 0;
    json_array_foreach(findings, i, f)
    {
        const char *lvl = json_string_value(json_object_get(f, "level"));
        if (ok || (lvl && strcmp(lvl, "required") != 0)) continue;
        sp_buf_printf(&msg, "%s %s", n++ ? "," : "", json_string_value(json_object_get(f, "rule")));
    }
    sp_buf_putc(&msg, 0);
    sp_buf_printf(&what, "posture %016llx", (unsigned long long)hash);
    sp_buf_putc(&what, 0);
    sp_audit_append(s, c, msg.base, "audit", posture, what.base);
    s->posture_records++;
    sp_buf_free(&msg);
    sp_buf_free(&what);
}

void sp_audit_emit_drift(sp_audit *s, sp_audit_cont *c, const json_t *fresh)
{
    size_t i;
    const json_t *d;
    json_array_foreach(fresh, i, d)
    {
        const char *path = json_string_value(json_object_get(d, "path"));
        const char *kind = json_string_value(json_object_get(d, "kind"));
        sp_buf msg = {0};
        sp_buf_printf(&msg, "drift in %s: %s %s", c->name, kind, path);
        sp_buf_putc(&msg, 0);
        sp_audit_append(s, c, msg.base, "drift", d, msg.base);
        s->drift_records++;
        sp_buf_free(&msg);
    }
}
