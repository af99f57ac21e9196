/*
 * The posture rules (docs/audit.md): a container's inspect JSON in, its posture fields and
 * findings out. Pure functions: no I/O, no state, so each rule is unit-tested from fixtures.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "audit_int.h"
#include "record.h"

const char *const sp_audit_rule_ids[] = {"rootfs-writable",    "user-root",
                                         "privileged",         "cap-add",
                                         "cap-drop-not-all",   "no-new-privileges-off",
                                         "seccomp-unconfined", "apparmor-unconfined",
                                         "memory-unlimited",   "pids-unlimited",
                                         "cpu-unlimited",      "bind-writable",
                                         "ports-published",    "log-local-files",
                                         "log-dual-logging",   NULL};

typedef struct {
    json_t *posture, *findings;
    const sp_audit_policy *pol;
    int required; /* required findings */
} sp_audit_ctx;

static int sp_audit_listed(char *const *v, size_t n, const char *rule)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], rule) == 0) return 1;
    return 0;
}

static const json_t *sp_audit_at(const json_t *o, const char *a, const char *b)
{
    const json_t *v = json_object_get(o, a);
    return b ? json_object_get(v, b) : v;
}

static const char *sp_audit_str(const json_t *o, const char *a, const char *b)
{
    const char *s = json_string_value(sp_audit_at(o, a, b));
    return s ? s : "";
}

static int sp_audit_true(const json_t *o, const char *a, const char *b)
{
    return json_is_true(sp_audit_at(o, a, b));
}

static json_int_t sp_audit_int(const json_t *o, const char *a, const char *b)
{
    const json_t *v = sp_audit_at(o, a, b);
    return json_is_integer(v) ? json_integer_value(v) : 0;
}

static void sp_audit_finding(sp_audit_ctx *c, const char *rule, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void sp_audit_finding(sp_audit_ctx *c, const char *rule, const char *fmt, ...)
{
    const sp_audit_policy *p = c->pol;
    if (p && sp_audit_listed(p->ignore, p->nignore, rule)) return;
    int advisory = p && sp_audit_listed(p->advisory, p->nadvisory, rule);
    c->required += !advisory;
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    json_array_append_new(c->findings, json_pack("{s:s,s:s,s:s}", "rule", rule, "detail", detail,
                                                 "level", advisory ? "advisory" : "required"));
}

/* "a, b, c" of a string array, into buf. */
static const char *sp_audit_join(const json_t *arr, char *buf, size_t cap)
{
    size_t i, n = 0;
    const json_t *v;
    buf[0] = 0;
    json_array_foreach(arr, i, v)
    {
        if (!json_is_string(v) || n + 3 >= cap) continue;
        int w = snprintf(buf + n, cap - n, "%s%s", n ? ", " : "", json_string_value(v));
        if (w > 0) n += (size_t)w < cap - n ? (size_t)w : cap - n - 1;
    }
    return buf;
}

/* A security option `name=value` or `name:value` (Docker accepts both); NULL when absent. A bare
 * `name` (no-new-privileges) reads as "true". */
static const char *sp_audit_secopt(const json_t *inspect, const char *name)
{
    const json_t *opts = sp_audit_at(inspect, "HostConfig", "SecurityOpt"), *v;
    size_t i, n = strlen(name);
    const char *found = NULL;
    json_array_foreach(opts, i, v)
    {
        const char *s = json_string_value(v);
        if (!s || strncmp(s, name, n) != 0) continue;
        if (s[n] == 0)
            found = "true";
        else if (s[n] == '=' || s[n] == ':')
            found = s + n + 1;
    }
    return found;
}

/* Root unless the user names another uid: "", "root", "0", "root:grp", "0:grp". */
static int sp_audit_user_root(const char *u)
{
    size_t n = strcspn(u, ":");
    return n == 0 || (n == 4 && strncmp(u, "root", 4) == 0) || (n == 1 && u[0] == '0');
}

/* Identity and privileges: rootfs, user, privileged, capabilities, no-new-privileges. */
static void sp_audit_privileges(sp_audit_ctx *c, const json_t *in)
{
    char buf[256];
    int ro = sp_audit_true(in, "HostConfig", "ReadonlyRootfs");
    json_object_set_new(c->posture, "read_only_rootfs", json_boolean(ro));
    if (!ro) sp_audit_finding(c, "rootfs-writable", "the root filesystem is writable");
    const char *user = sp_audit_str(in, "Config", "User");
    int root = sp_audit_user_root(user);
    json_object_set_new(c->posture, "user", json_string(*user ? user : "root"));
    json_object_set_new(c->posture, "user_root", json_boolean(root));
    if (root) sp_audit_finding(c, "user-root", "runs as %s", *user ? user : "root (no user set)");
    int priv = sp_audit_true(in, "HostConfig", "Privileged");
    json_object_set_new(c->posture, "privileged", json_boolean(priv));
    if (priv) sp_audit_finding(c, "privileged", "privileged: all capabilities and devices");
    const json_t *add = sp_audit_at(in, "HostConfig", "CapAdd");
    const json_t *drop = sp_audit_at(in, "HostConfig", "CapDrop");
    json_object_set_new(c->posture, "cap_add",
                        json_is_array(add) ? json_deep_copy(add) : json_array());
    json_object_set_new(c->posture, "cap_drop",
                        json_is_array(drop) ? json_deep_copy(drop) : json_array());
    if (json_array_size(add))
        sp_audit_finding(c, "cap-add", "adds %s", sp_audit_join(add, buf, sizeof buf));
    int all = 0;
    size_t i;
    const json_t *v;
    json_array_foreach(drop, i, v)
    {
        const char *s = json_string_value(v);
        if (s && (strcasecmp(s, "ALL") == 0 || strcasecmp(s, "CAP_ALL") == 0)) all = 1;
    }
    if (!all) sp_audit_finding(c, "cap-drop-not-all", "capabilities are not dropped with ALL");
    const char *nnp = sp_audit_secopt(in, "no-new-privileges");
    int on = nnp && strcmp(nnp, "false") != 0;
    json_object_set_new(c->posture, "no_new_privileges", json_boolean(on));
    if (!on) sp_audit_finding(c, "no-new-privileges-off", "no-new-privileges is not set");
}

/* Kernel confinement: seccomp and AppArmor profiles. */
static void sp_audit_confinement(sp_audit_ctx *c, const json_t *in)
{
    const char *sc = sp_audit_secopt(in, "seccomp");
    const char *seccomp = !sc ? "default" : strcmp(sc, "unconfined") == 0 ? "unconfined" : "custom";
    json_object_set_new(c->posture, "seccomp", json_string(seccomp));
    if (strcmp(seccomp, "unconfined") == 0)
        sp_audit_finding(c, "seccomp-unconfined", "seccomp=unconfined: no system call filter");
    const char *aa = sp_audit_secopt(in, "apparmor");
    if (!aa) aa = sp_audit_str(in, "AppArmorProfile", NULL);
    json_object_set_new(c->posture, "apparmor", json_string(*aa ? aa : "none"));
    if (strcmp(aa, "unconfined") == 0)
        sp_audit_finding(c, "apparmor-unconfined", "apparmor=unconfined: no AppArmor profile");
}

/* Resource limits: memory, pids, CPU. */
static void sp_audit_limits(sp_audit_ctx *c, const json_t *in)
{
    json_int_t mem = sp_audit_int(in, "HostConfig", "Memory");
    json_object_set_new(c->posture, "memory_limit", json_integer(mem > 0 ? mem : 0));
    if (mem <= 0) sp_audit_finding(c, "memory-unlimited", "no memory limit (--memory)");
    json_int_t pids = sp_audit_int(in, "HostConfig", "PidsLimit");
    json_object_set_new(c->posture, "pids_limit", json_integer(pids > 0 ? pids : 0));
    if (pids <= 0) sp_audit_finding(c, "pids-unlimited", "no pids limit (--pids-limit)");
    double cpus = (double)sp_audit_int(in, "HostConfig", "NanoCpus") / 1e9;
    json_int_t quota = sp_audit_int(in, "HostConfig", "CpuQuota");
    json_int_t period = sp_audit_int(in, "HostConfig", "CpuPeriod");
    if (cpus <= 0 && quota > 0) cpus = (double)quota / (double)(period > 0 ? period : 100000);
    const char *set = sp_audit_str(in, "HostConfig", "CpusetCpus");
    /* An integer (thousandths of a CPU): a JSON 0 and a later 0.5 would map to long in ES. */
    json_object_set_new(c->posture, "cpu_limit_millicpus",
                        json_integer(cpus > 0 ? (json_int_t)(cpus * 1000 + 0.5) : 0));
    if (*set) json_object_set_new(c->posture, "cpuset", json_string(set));
    if (cpus <= 0 && !*set) sp_audit_finding(c, "cpu-unlimited", "no CPU limit (--cpus)");
}

/* Mounts: tmpfs (posture only) and writable binds (a finding each). */
static void sp_audit_mount_rules(sp_audit_ctx *c, const json_t *in)
{
    json_t *tmpfs = json_array(), *binds = json_array();
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)sp_audit_at(in, "HostConfig", "Tmpfs"), k, v)
        json_array_append_new(tmpfs, json_string(k));
    size_t i;
    json_array_foreach(sp_audit_at(in, "Mounts", NULL), i, v)
    {
        const char *type = sp_audit_str(v, "Type", NULL),
                   *dst = sp_audit_str(v, "Destination", NULL);
        if (strcmp(type, "tmpfs") == 0) json_array_append_new(tmpfs, json_string(dst));
        if (strcmp(type, "bind") != 0 || !sp_audit_true(v, "RW", NULL)) continue;
        json_array_append_new(binds, json_string(dst));
        sp_audit_finding(c, "bind-writable", "%s is a writable bind mount of the host's %s", dst,
                         sp_audit_str(v, "Source", NULL));
    }
    json_object_set_new(c->posture, "tmpfs", tmpfs);
    json_object_set_new(c->posture, "writable_binds", binds);
}

/* Published ports: the live bindings (NetworkSettings.Ports) or, before a start, the configured
 * ones (HostConfig.PortBindings). */
static void sp_audit_ports(sp_audit_ctx *c, const json_t *in)
{
    json_t *out = json_array();
    const json_t *ports = sp_audit_at(in, "NetworkSettings", "Ports");
    if (!json_object_size(ports)) ports = sp_audit_at(in, "HostConfig", "PortBindings");
    const char *k;
    const json_t *v, *b;
    size_t i;
    json_object_foreach((json_t *)ports, k, v) json_array_foreach(v, i, b)
    {
        char s[160];
        const char *ip = sp_audit_str(b, "HostIp", NULL);
        snprintf(s, sizeof s, "%s:%s->%s", *ip ? ip : "0.0.0.0", sp_audit_str(b, "HostPort", NULL),
                 k);
        json_array_append_new(out, json_string(s));
    }
    if (json_array_size(out)) {
        char buf[256];
        sp_audit_finding(c, "ports-published", "publishes %s", sp_audit_join(out, buf, sizeof buf));
    }
    json_object_set_new(c->posture, "published_ports", out);
}

/* Logging: a driver that keeps the lines on the host (json-file, local, journald), or Docker's
 * dual-logging cache for any other driver unless cache-disabled=true. */
static void sp_audit_logging(sp_audit_ctx *c, const json_t *in)
{
    const json_t *lc = sp_audit_at(in, "HostConfig", "LogConfig");
    const char *driver = sp_audit_str(lc, "Type", NULL);
    const char *cache = sp_audit_str(lc, "Config", "cache-disabled");
    int files = strcmp(driver, "json-file") == 0 || strcmp(driver, "local") == 0 ||
                strcmp(driver, "journald") == 0;
    int dual = !files && *driver && strcmp(driver, "none") != 0 && strcmp(cache, "true") != 0;
    json_object_set_new(c->posture, "log_driver", json_string(driver));
    json_object_set_new(c->posture, "log_local_copy", json_boolean(files || dual));
    if (files)
        sp_audit_finding(c, "log-local-files", "the %s log driver keeps the lines on the host",
                         driver);
    if (dual)
        sp_audit_finding(c, "log-dual-logging",
                         "the %s driver keeps a local copy (dual logging): set cache-disabled=true",
                         driver);
}

json_t *sp_audit_posture(const json_t *inspect, const sp_audit_policy *pol)
{
    if (!json_is_object(inspect)) return NULL;
    sp_audit_ctx c = {json_object(), json_array(), pol, 0};
    sp_audit_privileges(&c, inspect);
    sp_audit_confinement(&c, inspect);
    sp_audit_limits(&c, inspect);
    sp_audit_mount_rules(&c, inspect);
    sp_audit_ports(&c, inspect);
    sp_audit_logging(&c, inspect);
    json_object_set_new(c.posture, "compliant", json_boolean(c.required == 0));
    json_object_set_new(c.posture, "findings", c.findings);
    return c.posture;
}

uint64_t sp_audit_posture_hash(const json_t *posture)
{
    char *s = json_dumps(posture, JSON_SORT_KEYS | JSON_COMPACT);
    uint8_t h[16] = {0};
    if (s) sp_hash128(s, strlen(s), 0x6175646974ULL, h);
    free(s);
    uint64_t v;
    memcpy(&v, h, sizeof v);
    return v;
}
