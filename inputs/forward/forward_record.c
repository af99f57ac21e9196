/* Record maps from Forward clients: Docker's fluentd driver and any other Fluentd client. */
#include "forward_record.h"

#include "forward_proto.h"
#include "mp.h"

static uint32_t sp_fwd_record_atou(sp_slice s)
{
    uint32_t v = 0;
    for (size_t i = 0; i < s.len && i < 9; i++) {
        if (s.base[i] < '0' || s.base[i] > '9') return 0;
        v = v * 10 + (uint32_t)(s.base[i] - '0');
    }
    return v;
}

/* Long (about 100 lines): one pass over a record's map, a branch per key the record knows;
 * it runs for every record, so the keys are matched in line, not through a table of calls. */
int sp_fwd_record(const uint8_t *p, const uint8_t *end, sp_record *r, sp_buf *extras,
                  sp_docker_partial *part)
{
    sp_mp_obj m, k, v;
    const uint8_t *start = p;
    if (sp_mp_read(&p, end, &m) || m.type != SP_MP_MAP) return SP_FWD_EMALFORMED;
    r->message = r->stream = r->container_id = r->container_name = SP_SLICE_NULL;
    r->flags = 0;
    r->nextras = 0;
    extras->len = 0;
    memset(part, 0, sizeof *part);
    sp_slice message_key = SP_SLICE_NULL; /* "message" seen when "log" is also present */
    const uint8_t *message_kv = NULL, *message_kv_end = NULL;

    for (uint32_t i = 0; i < m.v.n; i++) {
        const uint8_t *kv = p;
        /* Keys may be any type, even containers: those are skipped whole. */
        if (sp_mp_read_fast(&p, end, &k)) return SP_FWD_EMALFORMED;
        if (k.type == SP_MP_ARRAY || k.type == SP_MP_MAP) {
            p = kv;
            if (sp_mp_skip(&p, end)) return SP_FWD_EMALFORMED;
        }
        const uint8_t *vp = p;
        if (sp_mp_read_fast(&p, end, &v)) return SP_FWD_EMALFORMED;
        if (v.type == SP_MP_ARRAY || v.type == SP_MP_MAP) {
            p = vp;
            if (sp_mp_skip(&p, end)) return SP_FWD_EMALFORMED;
        }
        int is_str = v.type == SP_MP_STR || v.type == SP_MP_BIN;
        int known = 0;
        if (k.type == SP_MP_STR && is_str) {
            sp_slice key = k.s;
            known = 1;
            switch (key.len) {
            case 3:
                if (SP_SLICE_IS(key, "log")) {
                    r->message = v.s; /* a "message" seen before becomes a field (below) */
                    message_key = SP_SLICE_LIT("log");
                } else
                    known = 0;
                break;
            case 6:
                if (SP_SLICE_IS(key, "source"))
                    r->stream = v.s;
                else
                    known = 0;
                break;
            case 7:
                if (SP_SLICE_IS(key, "message") && !SP_SLICE_IS(message_key, "log")) {
                    r->message = v.s;
                    message_key = SP_SLICE_LIT("message");
                    message_kv = kv;
                } else
                    known = 0;
                break;
            case 10:
                if (SP_SLICE_IS(key, "partial_id"))
                    part->id = v.s;
                else
                    known = 0;
                break;
            case 12:
                if (SP_SLICE_IS(key, "container_id"))
                    r->container_id = v.s;
                else if (SP_SLICE_IS(key, "partial_last"))
                    part->last = SP_SLICE_IS(v.s, "true");
                else
                    known = 0;
                break;
            case 14:
                if (SP_SLICE_IS(key, "container_name")) {
                    r->container_name = v.s;
                    if (v.s.len && v.s.base[0] == '/')
                        r->container_name = sp_slice_make(v.s.base + 1, v.s.len - 1);
                } else
                    known = 0;
                break;
            case 15:
                if (SP_SLICE_IS(key, "partial_message"))
                    part->is_partial = SP_SLICE_IS(v.s, "true");
                else if (SP_SLICE_IS(key, "partial_ordinal"))
                    part->ordinal = sp_fwd_record_atou(v.s);
                else
                    known = 0;
                break;
            default:
                known = 0;
            }
        }
        /* Keep unknown pairs as they came. */
        if (!known) {
            sp_buf_append(extras, kv, (size_t)(p - kv));
            r->nextras++;
        } else if (message_kv == kv) {
            message_kv_end = p;
        }
    }
    /* Both "log" and "message": "log" is the line (Docker), "message" is kept as a field. */
    if (SP_SLICE_IS(message_key, "log") && message_kv && message_kv_end) {
        sp_buf_append(extras, message_kv, (size_t)(message_kv_end - message_kv));
        r->nextras++;
    }
    r->extras = sp_buf_slice(extras);
    if (!part->is_partial) part->id = SP_SLICE_NULL;
    return (int)(p - start);
}

void sp_fwd_record_meta(sp_record *r, sp_buf *extras, sp_slice meta)
{
    static const char key[] = "_" SP_FWD_META_KEY;
    const char *k = key + 1;
    const uint8_t *p = (const uint8_t *)extras->base, *end = p + extras->len;
    for (uint32_t i = 0; i < r->nextras; i++) {
        sp_mp_obj o;
        const uint8_t *kp = p;
        if (sp_mp_read(&kp, end, &o) == 0 && o.type == SP_MP_STR &&
            SP_SLICE_IS(o.s, SP_FWD_META_KEY))
            k = key;
        if (sp_mp_skip(&p, end) || sp_mp_skip(&p, end)) break; /* validated when read */
    }
    sp_mp_put_str(extras, k, strlen(k));
    sp_buf_append(extras, meta.base, meta.len);
    r->nextras++;
    r->extras = sp_buf_slice(extras);
}
