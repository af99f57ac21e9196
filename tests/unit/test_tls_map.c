/* sp_conf_tls_map: the `tls:` map of an output onto its flat tls_* settings (shipper/config.c),
 * shared by the Elasticsearch and forward outputs. */
#include "unit.h"

#include "config.h"

typedef struct {
    char *ca_file, *cert, *key, *server_name;
    int verify;
    sp_kvlist tls;
} conf;

static const sp_conf_field fields[] = {
    {"tls_ca_file", SP_CONF_STR, offsetof(conf, ca_file), NULL, "CA"},
    {"tls_cert", SP_CONF_STR, offsetof(conf, cert), NULL, "cert"},
    {"tls_key", SP_CONF_STR, offsetof(conf, key), NULL, "key"},
    {"tls_server_name", SP_CONF_STR, offsetof(conf, server_name), NULL, "SNI"},
    {"tls_verify", SP_CONF_BOOL, offsetof(conf, verify), "true", "verify"},
    {"tls", SP_CONF_MAP, offsetof(conf, tls), NULL, "the map"},
    SP_CONF_END};

/* Parses `yaml` into `c`, then applies its tls map (with server_name when `sni`); the return of
 * whichever step failed, the error in `err`. */
static int tls_load(const char *yaml, conf *c, int sni, sp_conf_err *err)
{
    memset(c, 0, sizeof *c);
    memset(err, 0, sizeof *err);
    err->file = "t.yaml";
    sp_node *n = sp_yaml_parse(yaml, strlen(yaml), err);
    assert_non_null(n);
    int rc = sp_conf_apply(c, fields, n, "outputs[0]", NULL, err);
    if (rc == 0) {
        sp_conf_tls t = {&c->ca_file, &c->cert, &c->key, sni ? &c->server_name : NULL, &c->verify};
        rc = sp_conf_tls_map(&c->tls, &t, n, 1, err);
    }
    sp_node_free(n);
    return rc;
}

static void test_every_key(void **st)
{
    conf c;
    sp_conf_err err;
    assert_int_equal(tls_load("tls_ca_file: old.pem\n"
                              "tls:\n  ca_file: ca.pem\n  cert: c.pem\n  key: k.pem\n"
                              "  server_name: es.example\n  verify: false\n",
                              &c, 1, &err),
                     0);
    assert_string_equal(c.ca_file, "ca.pem"); /* the map wins over the flat key */
    assert_string_equal(c.cert, "c.pem");
    assert_string_equal(c.key, "k.pem");
    assert_string_equal(c.server_name, "es.example");
    assert_int_equal(c.verify, 0);
    sp_conf_free(&c, fields);
    /* Flat keys alone stay as they are. */
    assert_int_equal(tls_load("tls_cert: c.pem\ntls_verify: false\n", &c, 1, &err), 0);
    assert_string_equal(c.cert, "c.pem");
    assert_int_equal(c.verify, 0);
    sp_conf_free(&c, fields);
}

static void test_wrong_type(void **st)
{
    conf c;
    sp_conf_err err;
    /* verify is true or false */
    assert_int_equal(tls_load("tls_key: x\ntls:\n  cert: c.pem\n  verify: maybe\n", &c, 1, &err),
                     -1);
    assert_string_equal(err.msg, "t.yaml:4: tls: verify: expected ca_file, cert, key, "
                                 "server_name or verify (true|false)");
    sp_conf_free(&c, fields);
    /* tls is a map, and its values are plain */
    assert_int_equal(tls_load("tls: [a, b]\n", &c, 1, &err), -1);
    assert_string_equal(err.msg, "t.yaml:1: outputs[0].tls: must be a map");
    sp_conf_free(&c, fields);
    assert_int_equal(tls_load("tls:\n  cert: [a]\n", &c, 1, &err), -1);
    assert_string_equal(err.msg, "t.yaml:2: outputs[0].tls: cert: values must be plain");
    sp_conf_free(&c, fields);
}

static void test_unknown_key(void **st)
{
    conf c;
    sp_conf_err err;
    assert_int_equal(tls_load("tls: {bogus: 1}\n", &c, 1, &err), -1);
    assert_string_equal(err.msg, "t.yaml:1: tls: bogus: expected ca_file, cert, key, "
                                 "server_name or verify (true|false)");
    sp_conf_free(&c, fields);
    /* An output without server_name (Elasticsearch) refuses it and does not list it. */
    assert_int_equal(tls_load("tls_key: x\n\ntls:\n  key: k.pem\n  server_name: es\n", &c, 0, &err),
                     -1);
    assert_string_equal(err.msg,
                        "t.yaml:5: tls: server_name: expected ca_file, cert, key or verify "
                        "(true|false)");
    sp_conf_free(&c, fields);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_key),
        cmocka_unit_test(test_wrong_type),
        cmocka_unit_test(test_unknown_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
