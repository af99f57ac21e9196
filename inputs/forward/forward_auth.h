/*
 * The Forward protocol's shared-key handshake (HELO, PING, PONG), free of I/O so it can be
 * unit-tested and fuzzed. With a shared_key the server speaks first:
 *   HELO ["HELO", {"nonce": bin16, "auth": bin16 | "", "keepalive": true}]
 *   PING ["PING", client_hostname, salt, sha512_hex(salt + client_hostname + nonce + key),
 *         username, sha512_hex(auth_salt + username + password)]
 *   PONG ["PONG", ok, reason, self_hostname, sha512_hex(salt + self_hostname + nonce + key)]
 * `auth` is empty unless users are configured; then the PING must name one of them.
 */
#ifndef SP_FORWARD_AUTH_H
#define SP_FORWARD_AUTH_H

#include <stdint.h>

#include "config.h"
#include "digest.h"
#include "slice.h"

/** What the server checks against; strings owned by the config. */
typedef struct {
    const char *shared_key;
    const char *self_hostname;
    const sp_kvlist *users; /* username -> password; NULL or empty: no user authentication */
} sp_fwd_auth_conf;

/** One connection's handshake: the random values its HELO sent. */
typedef struct {
    uint8_t nonce[16];
    uint8_t salt[16]; /* user-authentication salt, sent only when users are configured */
} sp_fwd_auth;

/** Fills `a` with fresh random values and appends the HELO frame to `out`. 0 or -errno. */
int sp_fwd_auth_helo(sp_fwd_auth *a, const sp_fwd_auth_conf *conf, sp_buf *out);

/**
 * Checks the PING frame frame[0..len) (one complete MessagePack object) and appends the PONG to
 * `out` when the frame is a well-formed PING. Returns 0 when the client is authenticated, or -1
 * with *reason set ("shared key mismatch", "username/password mismatch", "not a PING frame");
 * a PONG saying why has been appended unless the frame was not a PING at all.
 */
int sp_fwd_auth_ping(const sp_fwd_auth *a, const sp_fwd_auth_conf *conf, const uint8_t *frame,
                     size_t len, sp_buf *out, const char **reason);

#endif
