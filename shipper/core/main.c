/* Command line: a config file, or quick flags that become one. See `shipper --help`. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crash.h"
#include "daemon.h"
#include "listenfds.h"
#include "http.h"
#include "log.h"
#include "upgrade.h"

static const char sp_main_usage[] =
    "usage: shipper -c shipper.yaml          run with a config file\n"
    "       shipper --check -c shipper.yaml  validate, print the resolved config\n"
    "       shipper --version\n"
    "       shipper --reload PIDFILE         SIGHUP to the pid in PIDFILE (reload its config)\n"
    "       shipper --man 1|5                print the manual page shipper(1) or shipper.yaml(5)\n"
    "       shipper --health URL             exit 0 if URL answers 200 (container health check)\n"
    "       shipper [quick flags]            no file needed:\n"
    "   --forward ADDR        forward input (repeatable): host:port, [v6]:port, unix:///path\n"
    "   --docker-logs DIR     json-file input\n"
    "   --es URL | --kafka BROKERS --topic T | --stdout | --null     one output\n"
    "   --http ADDR           metrics/health listener (default: off with quick flags)\n"
    "   --log-level LEVEL     error | warn | info | debug\n"
    "With no file and no flags: forward on 127.0.0.1:24224 to stdout, metrics on 127.0.0.1:2020.\n"
    "Exit codes: 0 clean stop, 1 runtime failure, 2 bad config or flags.\n"
    "Signals: TERM/INT stop after delivering (service.grace); HUP reloads the config file; USR2\n"
    "upgrades in place: the binary at the same path takes over sockets, connections and spool\n"
    "(docs/deploy.md, Upgrades).\n";

static const char sp_main_default_config[] = "service:\n"
                                             "  http_listen: 127.0.0.1:2020\n"
                                             "inputs:\n"
                                             "  - type: forward\n"
                                             "    listen: 127.0.0.1:24224\n"
                                             "outputs:\n"
                                             "  - type: stdout\n";

/* Quotes a command-line value as a YAML double-quoted scalar. */
static void sp_main_yq(sp_buf *b, const char *v)
{
    sp_buf_putc(b, '"');
    for (; *v; v++) {
        if (*v == '"' || *v == '\\') sp_buf_putc(b, '\\');
        sp_buf_putc(b, *v);
    }
    sp_buf_putc(b, '"');
}

static int sp_main_bad_flags(const char *msg, const char *arg)
{
    fprintf(stderr, "shipper: %s%s%s\n%s", msg, arg ? ": " : "", arg ? arg : "", sp_main_usage);
    return 2;
}

static char *sp_main_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    sp_buf b = {0};
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        sp_buf_append(&b, tmp, n);
    fclose(f);
    sp_buf_putc(&b, '\0');
    *len = b.len - 1;
    return b.base;
}

/* What the command line asked for: a file, or quick flags that become a config. */
typedef struct {
    const char *file, *http, *log_level, *topic;
    int check, outputs, quick;
    sp_buf in, out; /* the quick flags' inputs and outputs, as YAML list items */
} sp_main_args;

/* The quick flags that add an input or an output: the YAML they add, then the value quoted. */
static const struct {
    const char *flag, *yaml;
    int value, output;
} sp_main_quick[] = {
    {"--forward", "  - type: forward\n    listen: ", 1, 0},
    {"--docker-logs", "  - type: docker_logs\n    path: ", 1, 0},
    {"--es", "  - type: elasticsearch\n    url: ", 1, 1},
    {"--kafka", "  - type: kafka\n    brokers: ", 1, 1},
    {"--stdout", "  - type: stdout\n", 0, 1},
    {"--null", "  - type: null\n", 0, 1},
};

/* One quick flag of the table at argv[*i]: 1 when it was one (its value taken), 0 when not, -1
 * (after the message) when its value is missing. */
static int sp_main_quick_flag(sp_main_args *g, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    for (size_t k = 0; k < sizeof sp_main_quick / sizeof *sp_main_quick; k++) {
        if (strcmp(a, sp_main_quick[k].flag)) continue;
        sp_buf *b = sp_main_quick[k].output ? &g->out : &g->in;
        sp_buf_append(b, sp_main_quick[k].yaml, strlen(sp_main_quick[k].yaml));
        if (sp_main_quick[k].value) {
            if (*i + 1 >= argc) {
                sp_main_bad_flags("missing value for", a);
                return -1;
            }
            sp_main_yq(b, argv[++*i]);
            SP_BUF_LIT(b, "\n");
        }
        g->outputs += sp_main_quick[k].output;
        g->quick = 1;
        return 1;
    }
    return 0;
}

/* --reload PIDFILE: the same SIGHUP an operator would send (README, "Reload"). */
static int sp_main_reload(const char *pidfile)
{
    FILE *f = fopen(pidfile, "r");
    long pid = 0;
    if (!f || fscanf(f, "%ld", &pid) != 1 || pid <= 1) {
        fprintf(stderr, "shipper: %s: %s\n", pidfile, f ? "no process id in it" : strerror(errno));
        if (f) fclose(f);
        return 1;
    }
    fclose(f);
    if (kill((pid_t)pid, SIGHUP)) {
        fprintf(stderr, "shipper: pid %ld (%s): %s\n", pid, pidfile, strerror(errno));
        return 1;
    }
    return 0;
}

/* Reads the flags into `g`: -1 to go on, else the exit code (--version, --help, --health, a bad
 * flag). */
static int sp_main_parse(sp_main_args *g, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int q = sp_main_quick_flag(g, argc, argv, &i);
        if (q < 0) return 2;
        if (q) continue;
        if (!strcmp(a, "--version")) {
            printf("shipper %s\n", SHIPPER_VERSION);
            return 0;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(sp_main_usage, stdout);
            return 0;
        }
        if (!strcmp(a, "--check")) {
            g->check = 1;
            continue;
        }
        if (!strcmp(a, "--health")) {
            if (!v) return sp_main_bad_flags("missing value for", a);
            return sp_http_probe(v);
        }
        if (!strcmp(a, "--reload") || !strcmp(a, "--man")) {
            if (!v) return sp_main_bad_flags("missing value for", a);
            return !strcmp(a, "--reload") ? sp_main_reload(v) : sp_man_print(v, stdout);
        }
        const char **dst = !strcmp(a, "-c") || !strcmp(a, "--config") ? &g->file
                           : !strcmp(a, "--topic")                    ? &g->topic
                           : !strcmp(a, "--http")                     ? &g->http
                           : !strcmp(a, "--log-level")                ? &g->log_level
                                                                      : NULL;
        if (!dst) return sp_main_bad_flags("unknown argument", a);
        if (!v) return sp_main_bad_flags("missing value for", a);
        i++;
        *dst = v;
        if (dst == &g->http) g->quick = 1;
    }
    if (g->file && g->quick)
        return sp_main_bad_flags("use either -c FILE or quick flags, not both", NULL);
    if (g->topic && !strstr(g->out.base ? g->out.base : "", "type: kafka"))
        return sp_main_bad_flags("--topic goes with --kafka", NULL);
    if (g->outputs > 1) return sp_main_bad_flags("quick flags take one output", NULL);
    return -1;
}

/* The config the quick flags make, NUL-terminated; NULL (after the message) without an input. */
static char *sp_main_quick_config(const sp_main_args *g, size_t *len)
{
    sp_buf y = {0};
    SP_BUF_LIT(&y, "service:\n  http_listen: ");
    sp_main_yq(&y, g->http ? g->http : "");
    if (g->log_level) {
        SP_BUF_LIT(&y, "\n  log_level: ");
        sp_main_yq(&y, g->log_level);
    }
    SP_BUF_LIT(&y, "\n");
    if (g->in.len) {
        SP_BUF_LIT(&y, "inputs:\n");
        sp_buf_append(&y, g->in.base, g->in.len);
    }
    SP_BUF_LIT(&y, "outputs:\n");
    if (g->out.len) {
        sp_buf_append(&y, g->out.base, g->out.len);
        if (g->topic) {
            SP_BUF_LIT(&y, "    topic: ");
            sp_main_yq(&y, g->topic);
            SP_BUF_LIT(&y, "\n");
        }
    } else {
        SP_BUF_LIT(&y, "  - type: stdout\n");
    }
    if (!g->in.len) {
        sp_buf_free(&y);
        sp_main_bad_flags("quick flags need an input (--forward or --docker-logs)", NULL);
        return NULL;
    }
    sp_buf_putc(&y, '\0');
    *len = y.len - 1;
    return y.base;
}

/* The config text and the name errors give it: the file, the quick flags' or the default. NULL
 * (after the message) when there is none. */
static char *sp_main_config_text(const sp_main_args *g, size_t *len, const char **name)
{
    if (g->file) {
        *name = g->file;
        char *text = sp_main_read_file(g->file, len);
        if (!text) fprintf(stderr, "shipper: %s: %s\n", g->file, strerror(errno));
        return text;
    }
    if (g->quick) {
        *name = "<command line>";
        return sp_main_quick_config(g, len);
    }
    *name = "<default config>";
    *len = strlen(sp_main_default_config);
    return strdup(sp_main_default_config);
}

int main(int argc, char **argv)
{
    sp_main_args g = {0};
    sp_listenfds_init(); /* first: fds 3.. may be sockets systemd passed */
    sp_upgrade_init(argc, argv);
    int rc = sp_main_parse(&g, argc, argv);
    if (rc >= 0) return rc;
    size_t len;
    const char *name;
    char *text = sp_main_config_text(&g, &len, &name);
    sp_buf_free(&g.in);
    sp_buf_free(&g.out);
    if (!text) return 2;

    sp_daemon d;
    sp_conf_err err = {.file = name};
    rc = sp_daemon_load(&d, text, len, &err);
    free(text);
    if (rc) {
        fprintf(stderr, "shipper: %s\n", err.msg);
        sp_daemon_free(&d);
        return 2;
    }
    if (g.log_level && !g.quick) {
        int lv = sp_log_level_parse(g.log_level);
        if (lv < 0) return sp_main_bad_flags("bad --log-level", g.log_level);
        d.service.log_level = lv;
    }
    if (g.check) {
        sp_buf b = {0};
        sp_daemon_print(&d, &b);
        fwrite(b.base, 1, b.len, stdout);
        sp_buf_free(&b);
        printf("# %s: ok\n", name);
        sp_daemon_free(&d);
        return 0;
    }
    sp_crash_install(); /* a fault prints a backtrace (crash.h) */
    rc = sp_daemon_run(&d);
    sp_daemon_free(&d);
    return rc;
}
