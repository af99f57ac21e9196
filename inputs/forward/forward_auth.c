/* The Forward protocol's shared-key handshake: HELO out, PING in, PONG out. */
#include "forward_auth.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>
#include <sys/random.h>

#include "digest.h"
#include "mp.h"

static int sp_fwd_auth_users(const sp_fwd_auth_conf *conf)
{
    return conf->users && conf->users->n > 0;
}

int sp_fwd_auth_helo(sp_fwd_auth *a, const sp_fwd_auth_conf *conf, sp_buf *out)
{
    if (getrandom(a, sizeof *a, 0) != (ssize_t)sizeof *a) return -errno;
    sp_mp_put_array(out, 2);
    sp_mp_put_str(out, "HELO", 4);
    sp_mp_put_map(out, 3);
    sp_mp_put_str(out, "nonce", 5);
    sp_mp_put_bin(out, a->nonce, sizeof a->nonce);
    sp_mp_put_str(out, "auth", 4);
    if (sp_fwd_auth_users(conf))
        sp_mp_put_bin(out, a->salt, sizeof a->salt);
    else
        sp_mp_put_str(out, "", 0);
    sp_mp_put_str(out, "keepalive", 9);
    sp_mp_put_bool(out, 1);
    return 0;
}

/* Reads a str or bin element; -1 for any other type. */
static int sp_fwd_auth_bytes(const uint8_t **p, const uint8_t *end, sp_slice *s)
{
    sp_mp_obj o;
    if (sp_mp_read(p, end, &o) || (o.type != SP_MP_STR && o.type != SP_MP_BIN)) return -1;
    *s = o.s;
    return 0;
}

static int sp_fwd_auth_digest_eq(const char want[129], sp_slice got)
{
    return got.len == 128 && CRYPTO_memcmp(want, got.base, 128) == 0;
}

static void sp_fwd_auth_pong(const sp_fwd_auth *a, const sp_fwd_auth_conf *conf, sp_slice salt,
                             int ok, const char *reason, sp_buf *out)
{
    sp_slice host = sp_slice_make(conf->self_hostname, strlen(conf->self_hostname));
    sp_mp_put_array(out, 5);
    sp_mp_put_str(out, "PONG", 4);
    sp_mp_put_bool(out, ok);
    sp_mp_put_str(out, reason, strlen(reason));
    sp_mp_put_str(out, host.base, host.len);
    if (!ok) {
        sp_mp_put_str(out, "", 0);
        return;
    }
    char digest[129];
    sp_slice parts[] = {salt, host, sp_slice_make((const char *)a->nonce, sizeof a->nonce),
                        sp_slice_make(conf->shared_key, strlen(conf->shared_key))};
    sp_sha512_hex(parts, 4, digest);
    sp_mp_put_str(out, digest, 128);
}

int sp_fwd_auth_ping(const sp_fwd_auth *a, const sp_fwd_auth_conf *conf, const uint8_t *frame,
                     size_t len, sp_buf *out, const char **reason)
{
    const uint8_t *p = frame, *end = frame + len;
    sp_mp_obj o;
    sp_slice kind, host, salt, digest, user, pwdigest;
    *reason = "not a PING frame";
    if (sp_mp_read(&p, end, &o) || o.type != SP_MP_ARRAY || o.v.n != 6) return -1;
    if (sp_fwd_auth_bytes(&p, end, &kind) || !SP_SLICE_IS(kind, "PING")) return -1;
    if (sp_fwd_auth_bytes(&p, end, &host) || sp_fwd_auth_bytes(&p, end, &salt) ||
        sp_fwd_auth_bytes(&p, end, &digest) || sp_fwd_auth_bytes(&p, end, &user) ||
        sp_fwd_auth_bytes(&p, end, &pwdigest))
        return -1;

    char want[129];
    sp_slice parts[] = {salt, host, sp_slice_make((const char *)a->nonce, sizeof a->nonce),
                        sp_slice_make(conf->shared_key, strlen(conf->shared_key))};
    sp_sha512_hex(parts, 4, want);
    int ok = sp_fwd_auth_digest_eq(want, digest);
    *reason = ok ? "" : "shared key mismatch";
    if (ok && sp_fwd_auth_users(conf)) {
        const char *pw = NULL;
        for (size_t i = 0; i < conf->users->n && !pw; i++)
            if (strlen(conf->users->k[i]) == user.len &&
                memcmp(conf->users->k[i], user.base, user.len) == 0)
                pw = conf->users->v[i];
        /* An unknown user is checked against a dummy password: the same work either way. */
        sp_slice up[] = {sp_slice_make((const char *)a->salt, sizeof a->salt), user,
                         sp_slice_make(pw ? pw : "", pw ? strlen(pw) : 0)};
        sp_sha512_hex(up, 3, want);
        ok = sp_fwd_auth_digest_eq(want, pwdigest) && pw;
        if (!ok) *reason = "username/password mismatch";
    }
    sp_fwd_auth_pong(a, conf, salt, ok, *reason, out);
    return ok ? 0 : -1;
}
