/* The parse filter's JSON-to-MessagePack scanner on arbitrary bytes: no crash, and what it writes
 * is well-formed MessagePack pairs, as many as it says, that json.c can encode back. */
#include <stdlib.h>

#include "json.h"
#include "mp.h"
#include "parse_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sp_buf out, doc;
    static sp_parse_scratch sc;
    uint32_t n = 0;
    out.len = 0;
    if (sp_parse_json((const char *)data, size, &out, &n, &sc) == 0) {
        const uint8_t *p = (const uint8_t *)out.base, *end = p + out.len;
        for (uint32_t i = 0; i < 2 * n; i++) {
            doc.len = 0;
            if (sp_json_mp(&doc, &p, end)) abort();
        }
        if (p != end) abort();
    } else if (out.len) {
        abort();
    }
    return 0;
}
