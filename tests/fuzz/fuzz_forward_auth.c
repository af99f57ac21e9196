/* libFuzzer harness for the Forward handshake: whatever a client sends as its PING, checking it
 * must neither crash nor authenticate it (the fuzzer cannot know the nonce's digest). */
#include <stdint.h>
#include <stdlib.h>

#include "forward_auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char *k[] = {"alice"}, *v[] = {"pw"};
    static sp_kvlist users = {k, v, 1};
    sp_fwd_auth_conf c = {"key", "host", size % 2 ? &users : NULL};
    sp_fwd_auth a = {{0}, {0}};
    sp_buf out = {0};
    const char *why;
    if (sp_fwd_auth_ping(&a, &c, data, size, &out, &why) == 0) abort();
    sp_buf_free(&out);
    return 0;
}
