/* parse's time_key formats (filters/parse/parse_time.c) and level names on arbitrary text: no
 * crash, a time read is in range, and an RFC 3339 time read, written as the document writes
 * @timestamp and read again, is the same time. The first byte picks the format. */
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "parse_int.h"
#include "record.h"

static const char *const formats[] = {"rfc3339",
                                      "epoch",
                                      "epoch_ms",
                                      "epoch_us",
                                      "epoch_ns",
                                      "%d/%b/%Y:%H:%M:%S %z",
                                      "%Y-%m-%d %H:%M:%S.%L",
                                      "%s %L %z"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sp_parse_time_fmt fmt[sizeof formats / sizeof *formats];
    static int ready;
    static sp_buf out;
    if (!ready) {
        char why[200];
        for (size_t i = 0; i < sizeof formats / sizeof *formats; i++)
            if (sp_parse_time_compile(&fmt[i], formats[i], why, sizeof why)) abort();
        ready = 1;
    }
    if (!size) return 0;
    const sp_parse_time_fmt *t = &fmt[data[0] % (sizeof formats / sizeof *formats)];
    const char *s = (const char *)data + 1;
    size_t len = size - 1;
    (void)sp_parse_level_text(s, len);
    uint64_t sec;
    uint32_t nsec;
    uint8_t prec;
    if (sp_parse_time_text(t, s, len, &sec, &nsec, &prec)) return 0;
    if (sec > SP_TIME_MAX_SEC || nsec >= 1000000000u || prec > 9) abort();
    if (t->kind != SP_PTIME_RFC3339) return 0;
    out.len = 0;
    sp_json_timestamp(&out, sec, nsec, prec);
    uint64_t sec2;
    uint32_t nsec2;
    uint8_t prec2;
    if (sp_parse_time_text(t, out.base + 1, out.len - 2, &sec2, &nsec2, &prec2)) abort();
    if (sec2 != sec || prec2 != prec) abort();
    uint32_t keep = 1;
    for (int i = prec; i < 9; i++)
        keep *= 10;
    if (nsec2 != nsec / keep * keep) abort(); /* the digits that came, no more */
    return 0;
}
