/* libFuzzer harness for the json-file line parser: every line of the input is parsed, and what
 * comes out must stay inside its buffers and be a valid record once written as JSON. Each line is
 * parsed from an allocation of its exact size (a read past its end is caught by ASan), and also
 * by the frozen scalar parser in jsonfile_ref.inc: both must accept the same lines and return
 * the same log, stream, time and attrs (a check on the 16-byte block unescaper and the
 * same-second time cache). */
#include <stdint.h>
#include <stdlib.h>

#include "json.h"
#include "jsonfile.h"
#include "record.h"

#define sp_jsonfile_parse sp_jsonfile_parse_ref
#define sp_rfc3339_parse sp_rfc3339_parse_ref
int sp_jsonfile_parse_ref(const char *line, size_t len, sp_jsonfile_line *out, sp_buf *scratch,
                          sp_buf *attrs);
int sp_rfc3339_parse_ref(const char *s, size_t len, uint64_t *sec, uint32_t *nsec);
#include "jsonfile_ref.inc"
#undef sp_jsonfile_parse
#undef sp_rfc3339_parse

static sp_buf scratch, attrs, chunk, json, ref_scratch, ref_attrs;

static int fuzz_same(sp_slice a, sp_slice b)
{
    return (a.base == NULL) == (b.base == NULL) && a.len == b.len &&
           (a.len == 0 || memcmp(a.base, b.base, a.len) == 0);
}

static void fuzz_ref(const char *line, size_t len, int rc, const sp_jsonfile_line *l)
{
    sp_jsonfile_line b;
    if (sp_jsonfile_parse_ref(line, len, &b, &ref_scratch, &ref_attrs) != rc) abort();
    if (rc == 0 &&
        (!fuzz_same(l->log, b.log) || l->partial != b.partial || !fuzz_same(l->stream, b.stream) ||
         l->sec != b.sec || l->nsec != b.nsec || l->nattrs != b.nattrs ||
         !fuzz_same(sp_buf_slice(&attrs), sp_buf_slice(&ref_attrs))))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((nl ? nl : end) - p);
        char *line = malloc(len ? len : 1);
        memcpy(line, p, len);
        sp_jsonfile_line l;
        int rc = sp_jsonfile_parse(line, len, &l, &scratch, &attrs);
        fuzz_ref(line, len, rc, &l);
        if (rc == 0) {
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
        free(line);
        p = nl ? nl + 1 : end;
    }
    return 0;
}
