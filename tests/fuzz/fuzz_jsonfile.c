/* libFuzzer harness for the json-file line parser: every line of the input is parsed, and what
 * comes out must stay inside its buffers and be a valid record once written as JSON. */
#include <stdint.h>
#include <stdlib.h>

#include "json.h"
#include "jsonfile.h"
#include "record.h"

static sp_buf scratch, attrs, chunk, json;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        sp_jsonfile_line l;
        if (sp_jsonfile_parse(p, (size_t)(le - p), &l, &scratch, &attrs) == 0) {
            sp_record r = {0};
            r.sec = l.sec;
            r.nsec = l.nsec;
            r.prec = 9;
            r.message = l.log;
            r.stream = l.stream;
            r.nextras = l.nattrs;
            r.extras = sp_buf_slice(&attrs);
            chunk.len = 0;
            sp_record_write(&chunk, &r);
            const uint8_t *q = (const uint8_t *)chunk.base;
            sp_record back;
            if (sp_record_read(&q, q + chunk.len, &back)) abort();
            json.len = 0;
            sp_json_document(&json, &back, SP_SLICE_LIT("docker.fuzz"), NULL, NULL);
        }
        p = nl ? nl + 1 : end;
    }
    return 0;
}
