/* Records to documents: json.c (pure) plus meta.c's container metadata (document.h). */
#include "document.h"

#include "json.h"
#include "meta.h"

static void sp_document_container(void *ctx, sp_slice id, sp_buf *out)
{
    sp_meta_append_json(id, out);
}

void sp_document_record(sp_buf *out, const sp_record *r, sp_slice tag)
{
    sp_json_document(out, r, tag, sp_document_container, NULL);
}

uint32_t sp_document_chunk_lines(sp_buf *out, const sp_chunk *c)
{
    sp_slice tag = sp_slice_make(c->tag, c->tag_len);
    const uint8_t *p = SP_CHUNK_BEGIN(c), *end = SP_CHUNK_END(c);
    uint32_t n = 0;
    while (p < end) {
        sp_record r;
        if (sp_record_read(&p, end, &r)) break; /* chunks are written by us: cannot happen */
        sp_document_record(out, &r, tag);
        sp_buf_putc(out, '\n');
        n++;
    }
    return n;
}
