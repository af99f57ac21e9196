/* The Forward shared-key handshake: HELO's shape, PING checks, PONG's digest. */
#include "unit.h"
#include "mp_pack.h"

#include "forward_auth.h"
#include "mp.h"

static sp_kvlist no_users;
static char *ukeys[] = {"alice"}, *uvals[] = {"wonderland"};
static sp_kvlist one_user = {ukeys, uvals, 1};

static sp_slice S(const char *s)
{
    return sp_slice_make(s, strlen(s));
}

/* A client's PING for `a`'s HELO, as the Forward spec builds it. */
static void ping(sp_buf *b, const sp_fwd_auth *a, const char *key, const char *user, const char *pw,
                 int users)
{
    char d[129], pd[129] = "";
    sp_slice parts[] = {S("saltsalt"), S("client-1"), sp_slice_make((const char *)a->nonce, 16),
                        S(key)};
    sp_sha512_hex(parts, 4, d);
    if (users) {
        sp_slice up[] = {sp_slice_make((const char *)a->salt, 16), S(user), S(pw)};
        sp_sha512_hex(up, 3, pd);
    }
    b->len = 0;
    tp_put_array(b, 6);
    tp_put_str(b, "PING", 4);
    tp_put_str(b, "client-1", 8);
    tp_put_str(b, "saltsalt", 8);
    tp_put_str(b, d, 128);
    tp_put_str(b, user, strlen(user));
    tp_put_str(b, pd, strlen(pd));
}

/* Reads the PONG: [PONG, ok, reason, host, digest]; returns ok, copies reason and digest. */
static int pong(const sp_buf *b, char *reason, char *digest)
{
    const uint8_t *p = (const uint8_t *)b->base, *end = p + b->len;
    sp_mp_obj o;
    assert_int_equal(sp_mp_read(&p, end, &o), 0);
    assert_int_equal(o.type, SP_MP_ARRAY);
    assert_int_equal(o.v.n, 5);
    assert_int_equal(sp_mp_read(&p, end, &o), 0);
    assert_true(SP_SLICE_IS(o.s, "PONG"));
    assert_int_equal(sp_mp_read(&p, end, &o), 0);
    assert_int_equal(o.type, SP_MP_BOOL);
    int ok = o.v.b;
    assert_int_equal(sp_mp_read(&p, end, &o), 0);
    snprintf(reason, 64, "%.*s", (int)o.s.len, o.s.base);
    assert_int_equal(sp_mp_read(&p, end, &o), 0);
    assert_true(SP_SLICE_IS(o.s, "shipper-host"));
    assert_int_equal(sp_mp_read(&p, end, &o), 0);
    snprintf(digest, 129, "%.*s", (int)o.s.len, o.s.base);
    assert_ptr_equal(p, end);
    return ok;
}

static void test_helo_shape(void **st)
{
    sp_fwd_auth a;
    sp_fwd_auth_conf c = {"key", "shipper-host", &one_user};
    sp_buf b = {0};
    assert_int_equal(sp_fwd_auth_helo(&a, &c, &b), 0);
    const uint8_t *p = (const uint8_t *)b.base, *end = p + b.len;
    sp_mp_obj o;
    sp_mp_read(&p, end, &o);
    assert_int_equal(o.v.n, 2);
    sp_mp_read(&p, end, &o);
    assert_true(SP_SLICE_IS(o.s, "HELO"));
    sp_mp_read(&p, end, &o);
    assert_int_equal(o.type, SP_MP_MAP);
    assert_int_equal(o.v.n, 3);
    sp_mp_read(&p, end, &o); /* nonce */
    sp_mp_read(&p, end, &o);
    assert_int_equal(o.type, SP_MP_BIN);
    assert_memory_equal(o.s.base, a.nonce, 16);
    sp_mp_read(&p, end, &o); /* auth: the salt, as users are configured */
    sp_mp_read(&p, end, &o);
    assert_int_equal(o.s.len, 16);
    assert_memory_equal(o.s.base, a.salt, 16);
    sp_fwd_auth a2;
    sp_buf b2 = {0};
    c.users = &no_users;
    sp_fwd_auth_helo(&a2, &c, &b2);
    assert_memory_not_equal(a.nonce, a2.nonce, 16); /* fresh per connection */
    assert_non_null(memmem(b2.base, b2.len,
                           "\xa4"
                           "auth\xa0",
                           6)); /* "auth": "" */
    sp_buf_free(&b);
    sp_buf_free(&b2);
}

static void test_ping_shared_key(void **st)
{
    sp_fwd_auth a;
    sp_fwd_auth_conf c = {"key", "shipper-host", &no_users};
    sp_buf helo = {0}, in = {0}, out = {0};
    sp_fwd_auth_helo(&a, &c, &helo);
    const char *why;
    char reason[64], digest[129], want[129];

    ping(&in, &a, "key", "", "", 0);
    assert_int_equal(sp_fwd_auth_ping(&a, &c, (uint8_t *)in.base, in.len, &out, &why), 0);
    assert_true(pong(&out, reason, digest));
    assert_string_equal(reason, "");
    sp_slice parts[] = {S("saltsalt"), S("shipper-host"), sp_slice_make((const char *)a.nonce, 16),
                        S("key")};
    sp_sha512_hex(parts, 4, want); /* the client checks the server knows the key */
    assert_string_equal(digest, want);

    out.len = 0;
    ping(&in, &a, "other", "", "", 0);
    assert_int_equal(sp_fwd_auth_ping(&a, &c, (uint8_t *)in.base, in.len, &out, &why), -1);
    assert_string_equal(why, "shared key mismatch");
    assert_false(pong(&out, reason, digest));
    assert_string_equal(reason, "shared key mismatch");
    assert_string_equal(digest, "");

    /* a PING for another connection's nonce fails */
    sp_fwd_auth other = a;
    other.nonce[0] ^= 1;
    out.len = 0;
    ping(&in, &other, "key", "", "", 0);
    assert_int_equal(sp_fwd_auth_ping(&a, &c, (uint8_t *)in.base, in.len, &out, &why), -1);
    sp_buf_free(&helo);
    sp_buf_free(&in);
    sp_buf_free(&out);
}

static void test_ping_users(void **st)
{
    sp_fwd_auth a;
    sp_fwd_auth_conf c = {"key", "shipper-host", &one_user};
    sp_buf helo = {0}, in = {0}, out = {0};
    sp_fwd_auth_helo(&a, &c, &helo);
    const char *why;
    char reason[64], digest[129];
    ping(&in, &a, "key", "alice", "wonderland", 1);
    assert_int_equal(sp_fwd_auth_ping(&a, &c, (uint8_t *)in.base, in.len, &out, &why), 0);
    assert_true(pong(&out, reason, digest));
    const char *bad[][2] = {{"alice", "wrong"}, {"bob", "wonderland"}, {"", ""}};
    for (int i = 0; i < 3; i++) {
        out.len = 0;
        ping(&in, &a, "key", bad[i][0], bad[i][1], 1);
        assert_int_equal(sp_fwd_auth_ping(&a, &c, (uint8_t *)in.base, in.len, &out, &why), -1);
        assert_string_equal(why, "username/password mismatch");
        assert_false(pong(&out, reason, digest));
    }
    sp_buf_free(&helo);
    sp_buf_free(&in);
    sp_buf_free(&out);
}

static void test_not_a_ping(void **st)
{
    sp_fwd_auth a;
    sp_fwd_auth_conf c = {"key", "shipper-host", &no_users};
    sp_buf helo = {0}, in = {0}, out = {0};
    sp_fwd_auth_helo(&a, &c, &helo);
    const char *why;
    /* a Message frame where the PING should be: no PONG, an error */
    tp_put_array(&in, 4);
    tp_put_str(&in, "tag", 3);
    tp_put_uint(&in, 1);
    tp_put_map(&in, 0);
    tp_put_map(&in, 0);
    assert_int_equal(sp_fwd_auth_ping(&a, &c, (uint8_t *)in.base, in.len, &out, &why), -1);
    assert_string_equal(why, "not a PING frame");
    assert_int_equal(out.len, 0);
    /* a PING with a number where the digest goes */
    in.len = 0;
    tp_put_array(&in, 6);
    tp_put_str(&in, "PING", 4);
    tp_put_str(&in, "h", 1);
    tp_put_str(&in, "s", 1);
    tp_put_uint(&in, 7);
    tp_put_str(&in, "", 0);
    tp_put_str(&in, "", 0);
    assert_int_equal(sp_fwd_auth_ping(&a, &c, (uint8_t *)in.base, in.len, &out, &why), -1);
    assert_int_equal(out.len, 0);
    sp_buf_free(&helo);
    sp_buf_free(&in);
    sp_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_helo_shape),
        cmocka_unit_test(test_ping_shared_key),
        cmocka_unit_test(test_ping_users),
        cmocka_unit_test(test_not_a_ping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
