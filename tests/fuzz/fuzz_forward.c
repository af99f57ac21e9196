/* libFuzzer harness for the Forward decoder: scan (fed in two pieces, to exercise resuming),
 * decode, turn each record into the internal layout and encode it as JSON. */
#include <stdint.h>
#include <stdlib.h>

#include "forward_proto.h"
#include "forward_record.h"
#include "json.h"
#include "record.h"

static sp_buf extras, chunk, json, inflate;

static int entry(void *ctx, const sp_fwd_entry *e)
{
    sp_record r;
    sp_docker_partial part;
    int len = sp_fwd_record(e->rec, e->rec_end, &r, &extras, &part);
    if (len < 0) return len;
    if (e->meta.len) sp_fwd_record_meta(&r, &extras, e->meta);
    r.sec = e->sec;
    r.nsec = e->nsec;
    r.prec = e->prec;
    memset(r.id, 0, 16);
    chunk.len = 0;
    sp_record_write(&chunk, &r);
    const uint8_t *p = (const uint8_t *)chunk.base;
    sp_record back;
    if (sp_record_read(&p, p + chunk.len, &back)) abort(); /* our own layout must round-trip */
    json.len = 0;
    sp_json_document(&json, &back, e->tag, NULL, NULL);
    return len;
}

static void ack(void *ctx, sp_slice chunk_id) {}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sp_fwd_handler h = {NULL, entry, ack, &inflate, 1 << 20};
    size_t off = 0;
    while (off < size) {
        size_t n;
        int fast = sp_fwd_try_message(data + off, size - off, 1 << 20, &h, &n);
        if (fast < 0) break;
        if (fast == 1) {
            off += n;
            continue;
        }
        sp_mp_scan s;
        sp_mp_scan_reset(&s);
        size_t avail = size - off, first = avail / 2;
        int rc = sp_fwd_scan(&s, data + off, first, 1 << 20);
        if (rc == 0) rc = sp_fwd_scan(&s, data + off, avail, 1 << 20);
        if (rc != 1) break;
        if (sp_fwd_decode(data + off, s.off, &h) < 0) break;
        off += s.off;
    }
    return 0;
}
