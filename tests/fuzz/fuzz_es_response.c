/* libFuzzer harness for the Elasticsearch bulk-response parser: whatever a server (or a broken
 * proxy) answers, parsing must neither crash nor report an item index out of range. */
#include <stdint.h>
#include <stdlib.h>

#include "outputs/elasticsearch/es.h"

static uint32_t nitems;

static void cb(void *ctx, uint32_t index, int status, const char *type, const char *reason,
               const char *error)
{
    if (index >= nitems) abort();
    (void)sp_es_item_class(status);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    nitems = data[0] % 64; /* the number of items the request had */
    (void)sp_es_parse_response((const char *)data + 1, size - 1, nitems, cb, NULL);
    return 0;
}
