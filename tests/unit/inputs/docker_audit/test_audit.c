/* The docker_audit rules and drift from real inspect/changes JSON (fixtures/ were taken from
 * dockerd 20.10: see docs/audit.md). */
#include "unit.h"

#include <errno.h>
#include <libgen.h>

#include "audit_int.h"

/* The input's default policy: cpu-unlimited is advisory. */
static char *advisory[] = {"cpu-unlimited"};
static const sp_audit_policy pol = {NULL, 0, advisory, 1};

static json_t *fixture(const char *name)
{
    char dir[512], path[700];
    snprintf(dir, sizeof dir, "%s", __FILE__);
    snprintf(path, sizeof path, "%s/fixtures/%s", dirname(dir), name);
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);
    if (!j) fail_msg("%s: %s", path, e.text);
    return j;
}

/* The rule ids of a posture's required findings, as "a b c " (in order). */
static const char *rules(const json_t *p, char *buf, size_t cap)
{
    size_t i, n = 0;
    json_t *f;
    buf[0] = 0;
    json_array_foreach(json_object_get(p, "findings"), i, f)
    {
        const char *id = json_string_value(json_object_get(f, "rule"));
        const char *const *r = sp_audit_rule_ids; /* every id is a listed one */
        while (*r && strcmp(*r, id) != 0)
            r++;
        assert_non_null(*r);
        if (strcmp(json_string_value(json_object_get(f, "level")), "required") != 0) continue;
        n += (size_t)snprintf(buf + n, cap - n, "%s ",
                              json_string_value(json_object_get(f, "rule")));
    }
    return buf;
}

static void test_compliant(void **st)
{
    json_t *in = fixture("inspect_good.json");
    json_t *p = sp_audit_posture(in, &pol);
    char buf[512];
    assert_string_equal(rules(p, buf, sizeof buf), "");
    assert_true(json_is_true(json_object_get(p, "compliant")));
    /* no CPU limit: reported, advisory */
    json_t *f = json_array_get(json_object_get(p, "findings"), 0);
    assert_string_equal(json_string_value(json_object_get(f, "rule")), "cpu-unlimited");
    assert_string_equal(json_string_value(json_object_get(f, "level")), "advisory");
    assert_int_equal(json_array_size(json_object_get(p, "findings")), 1);
    assert_true(json_is_true(json_object_get(p, "read_only_rootfs")));
    assert_true(json_is_true(json_object_get(p, "no_new_privileges")));
    assert_false(json_is_true(json_object_get(p, "user_root")));
    assert_string_equal(json_string_value(json_object_get(p, "user")), "65532");
    assert_int_equal(json_integer_value(json_object_get(p, "memory_limit")), 64 << 20);
    assert_int_equal(json_integer_value(json_object_get(p, "pids_limit")), 64);
    assert_string_equal(json_string_value(json_array_get(json_object_get(p, "tmpfs"), 0)), "/tmp");
    assert_string_equal(json_string_value(json_object_get(p, "log_driver")), "fluentd");
    assert_false(json_is_true(json_object_get(p, "log_local_copy")));
    json_decref(p);
    json_decref(in);
}

static void test_bad(void **st)
{
    json_t *in = fixture("inspect_bad.json");
    json_t *p = sp_audit_posture(in, &pol);
    char buf[512];
    assert_string_equal(rules(p, buf, sizeof buf),
                        "rootfs-writable user-root cap-add cap-drop-not-all no-new-privileges-off "
                        "seccomp-unconfined apparmor-unconfined memory-unlimited pids-unlimited "
                        "bind-writable log-dual-logging ");
    assert_false(json_is_true(json_object_get(p, "compliant")));
    assert_int_equal(json_integer_value(json_object_get(p, "cpu_limit_millicpus")), 500);
    assert_string_equal(json_string_value(json_array_get(json_object_get(p, "writable_binds"), 0)),
                        "/data");
    assert_string_equal(json_string_value(json_object_get(p, "seccomp")), "unconfined");
    /* ignore leaves rules out of findings and compliance */
    char *ign[] = {"rootfs-writable",
                   "user-root",
                   "cap-add",
                   "cap-drop-not-all",
                   "no-new-privileges-off",
                   "seccomp-unconfined",
                   "apparmor-unconfined",
                   "memory-unlimited",
                   "pids-unlimited",
                   "bind-writable",
                   "log-dual-logging"};
    sp_audit_policy strict = {ign, sizeof ign / sizeof *ign, NULL, 0};
    json_t *q = sp_audit_posture(in, &strict);
    assert_true(json_is_true(json_object_get(q, "compliant")));
    assert_true(sp_audit_posture_hash(p) != sp_audit_posture_hash(q));
    json_decref(q);
    json_decref(p);
    json_decref(in);
}

static void test_privileged_ports(void **st)
{
    json_t *in = fixture("inspect_priv.json");
    json_t *p = sp_audit_posture(in, &pol);
    char buf[512];
    assert_string_equal(rules(p, buf, sizeof buf),
                        "rootfs-writable user-root privileged cap-drop-not-all "
                        "no-new-privileges-off memory-unlimited pids-unlimited "
                        "ports-published log-local-files ");
    assert_string_equal(json_string_value(json_array_get(json_object_get(p, "published_ports"), 0)),
                        "127.0.0.1:18080->80/tcp");
    assert_string_equal(json_string_value(json_object_get(p, "log_driver")), "json-file");
    json_decref(p);
    json_decref(in);
}

/* Variants of the compliant container, one setting changed each. */
static void test_variants(void **st)
{
    static const struct {
        const char *path, *json, *rule;
    } cases[] = {
        {"Config.User", "\"root\"", "user-root"},
        {"Config.User", "\"0:0\"", "user-root"},
        {"Config.User", "\"\"", "user-root"},
        {"HostConfig.SecurityOpt", "[\"no-new-privileges=false\"]", "no-new-privileges-off"},
        {"HostConfig.SecurityOpt", "[\"no-new-privileges:true\",\"seccomp:unconfined\"]",
         "seccomp-unconfined"},
        {"HostConfig.LogConfig", "{\"Type\":\"fluentd\",\"Config\":{}}", "log-dual-logging"},
        {"HostConfig.LogConfig", "{\"Type\":\"local\",\"Config\":{}}", "log-local-files"},
        {"HostConfig.LogConfig", "{\"Type\":\"none\",\"Config\":{}}", ""},
        {"HostConfig.PidsLimit", "-1", "pids-unlimited"},
        {"HostConfig.CpuQuota", "0", ""},
        {"AppArmorProfile", "\"unconfined\"", "apparmor-unconfined"},
    };
    char buf[512], want[64];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *in = fixture("inspect_good.json");
        char key[64];
        snprintf(key, sizeof key, "%s", cases[i].path);
        char *dot = strchr(key, '.');
        json_t *obj = in;
        if (dot) {
            *dot = 0;
            obj = json_object_get(in, key);
        }
        json_object_set_new(obj, dot ? dot + 1 : key,
                            json_loads(cases[i].json, JSON_DECODE_ANY, NULL));
        json_t *p = sp_audit_posture(in, &pol);
        snprintf(want, sizeof want, "%s%s", cases[i].rule, *cases[i].rule ? " " : "");
        assert_string_equal(rules(p, buf, sizeof buf), want);
        json_decref(p);
        json_decref(in);
    }
    /* CPU by quota, then by cpuset, is a limit */
    json_t *in = fixture("inspect_good.json");
    json_t *hc = json_object_get(in, "HostConfig");
    json_object_set_new(hc, "CpuQuota", json_integer(50000));
    json_object_set_new(hc, "CpuPeriod", json_integer(100000));
    json_t *p = sp_audit_posture(in, NULL);
    assert_int_equal(json_integer_value(json_object_get(p, "cpu_limit_millicpus")), 500);
    assert_int_equal(json_array_size(json_object_get(p, "findings")), 0);
    json_decref(p);
    json_object_set_new(hc, "CpuQuota", json_integer(0));
    json_object_set_new(hc, "CpusetCpus", json_string("0"));
    p = sp_audit_posture(in, NULL);
    assert_int_equal(json_array_size(json_object_get(p, "findings")), 0);
    json_decref(p);
    json_decref(in);
    assert_null(sp_audit_posture(NULL, NULL));
}

static void test_drift(void **st)
{
    json_t *in = fixture("inspect_bad.json"), *changes = fixture("changes_bad.json");
    sp_audit_set mounts = {0};
    sp_audit_mounts(in, &mounts);
    assert_int_equal(mounts.n, 3); /* /data, /scratch, /vol */
    assert_true(sp_audit_under_mount(&mounts, "/vol/x/y"));
    assert_false(sp_audit_under_mount(&mounts, "/volume"));
    sp_audit_drift d = {0};
    json_t *fresh = json_array();
    /* first run: the baseline, nothing new; mounts are not counted */
    assert_int_equal(sp_audit_drift_run(&d, changes, &mounts, 1000, fresh), 0);
    assert_int_equal(d.paths, 4);
    /* the same again: nothing; then /etc/app.conf deleted and /root/x added */
    assert_int_equal(sp_audit_drift_run(&d, changes, &mounts, 1000, fresh), 0);
    json_t *later = json_loads("[{\"Path\":\"/etc\",\"Kind\":0},{\"Path\":\"/etc/app.conf\","
                               "\"Kind\":2},{\"Path\":\"/root/x\",\"Kind\":1},{\"Path\":"
                               "\"/scratch/new\",\"Kind\":1}]",
                               0, NULL);
    assert_int_equal(sp_audit_drift_run(&d, later, &mounts, 1000, fresh), 2);
    assert_int_equal(d.paths, 3);
    char *s = json_dumps(fresh, JSON_COMPACT);
    assert_string_equal(s, "[{\"path\":\"/etc/app.conf\",\"kind\":\"D\"},{\"path\":\"/root/x\","
                           "\"kind\":\"A\"}]");
    free(s);
    /* null (no changes) empties the state; a wrong shape leaves it as it was */
    json_t *bad = json_loads("[{\"Path\":\"/x\",\"Kind\":7}]", 0, NULL);
    assert_int_equal(sp_audit_drift_run(&d, bad, &mounts, 1000, fresh), -EBADMSG);
    assert_int_equal(d.paths, 3);
    assert_int_equal(sp_audit_drift_run(&d, json_null(), &mounts, 1000, fresh), 0);
    assert_int_equal(d.paths, 0);
    /* max_paths bounds the state */
    assert_int_equal(sp_audit_drift_run(&d, later, &mounts, 2, fresh), 2);
    assert_int_equal(d.paths, 2);
    assert_int_equal(d.truncated, 1);
    json_decref(bad);
    json_decref(later);
    json_decref(fresh);
    sp_audit_drift_free(&d);
    sp_audit_set_free(&mounts);
    json_decref(changes);
    json_decref(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compliant),
        cmocka_unit_test(test_bad),
        cmocka_unit_test(test_privileged_ports),
        cmocka_unit_test(test_variants),
        cmocka_unit_test(test_drift),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
