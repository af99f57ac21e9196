/* libFuzzer harness for configuration parsing: YAML → typed settings. Any text must give a
 * clean result or a clean error, never a crash or a leak. */
#include <stdint.h>
#include <stdlib.h>

#include "daemon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sp_daemon d;
    sp_conf_err err = {.file = "fuzz.yaml"};
    if (sp_daemon_load(&d, (const char *)data, size, &err) == 0) {
        sp_buf out = {0};
        sp_daemon_print(&d, &out);
        sp_buf_free(&out);
    }
    sp_daemon_free(&d);
    return 0;
}
