/* The parse filter's logfmt state machine on arbitrary bytes: no crash, and what it writes is
 * well-formed MessagePack pairs, as many as it says. */
#include <stdlib.h>

#include "mp.h"
#include "parse_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sp_buf out;
    static sp_parse_scratch sc;
    uint32_t n = 0;
    out.len = 0;
    if (sp_parse_logfmt((const char *)data, size, &out, &n, &sc) == 0) {
        const uint8_t *p = (const uint8_t *)out.base, *end = p + out.len;
        for (uint32_t i = 0; i < 2 * n; i++)
            if (sp_mp_skip(&p, end)) abort();
        if (p != end) abort();
    } else if (out.len) {
        abort(); /* a failure leaves nothing behind */
    }
    return 0;
}
