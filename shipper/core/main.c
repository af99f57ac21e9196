/* Command line: a config file, or quick flags that become one. See `shipper --help`. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Long (about 150 lines): one flat pass over the flags, each an `else if` of a few lines,
 * then the config they make; it reads in order top to bottom and runs once. */
int main(int argc, char **argv)
{
    const char *file = NULL, *http = NULL, *log_level = NULL, *topic = NULL;
    int check = 0, outputs = 0, quick = 0;
    sp_buf in = {0}, out = {0};
    sp_listenfds_init(); /* first: fds 3.. may be sockets systemd passed */
    sp_upgrade_init(argc, argv);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDV()                                                                                    \
    do {                                                                                           \
        if (!v) return sp_main_bad_flags("missing value for", a);                                  \
        i++;                                                                                       \
    } while (0)
        if (!strcmp(a, "--version")) {
            printf("shipper %s\n", SHIPPER_VERSION);
            return 0;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(sp_main_usage, stdout);
            return 0;
        } else if (!strcmp(a, "--health")) {
            NEEDV();
            return sp_http_probe(v);
        } else if (!strcmp(a, "--reload")) {
            NEEDV();
            return sp_main_reload(v);
        } else if (!strcmp(a, "--man")) {
            NEEDV();
            return sp_man_print(v, stdout);
        } else if (!strcmp(a, "-c") || !strcmp(a, "--config")) {
            NEEDV();
            file = v;
        } else if (!strcmp(a, "--check")) {
            check = 1;
        } else if (!strcmp(a, "--forward")) {
            NEEDV();
            SP_BUF_LIT(&in, "  - type: forward\n    listen: ");
            sp_main_yq(&in, v);
            SP_BUF_LIT(&in, "\n");
            quick = 1;
        } else if (!strcmp(a, "--docker-logs")) {
            NEEDV();
            SP_BUF_LIT(&in, "  - type: docker_logs\n    path: ");
            sp_main_yq(&in, v);
            SP_BUF_LIT(&in, "\n");
            quick = 1;
        } else if (!strcmp(a, "--es")) {
            NEEDV();
            SP_BUF_LIT(&out, "  - type: elasticsearch\n    url: ");
            sp_main_yq(&out, v);
            SP_BUF_LIT(&out, "\n");
            outputs++, quick = 1;
        } else if (!strcmp(a, "--kafka")) {
            NEEDV();
            SP_BUF_LIT(&out, "  - type: kafka\n    brokers: ");
            sp_main_yq(&out, v);
            SP_BUF_LIT(&out, "\n");
            outputs++, quick = 1;
        } else if (!strcmp(a, "--topic")) {
            NEEDV();
            topic = v;
        } else if (!strcmp(a, "--stdout")) {
            SP_BUF_LIT(&out, "  - type: stdout\n");
            outputs++, quick = 1;
        } else if (!strcmp(a, "--null")) {
            SP_BUF_LIT(&out, "  - type: null\n");
            outputs++, quick = 1;
        } else if (!strcmp(a, "--http")) {
            NEEDV();
            http = v;
            quick = 1;
        } else if (!strcmp(a, "--log-level")) {
            NEEDV();
            log_level = v;
        } else {
            return sp_main_bad_flags("unknown argument", a);
        }
#undef NEEDV
    }
    if (file && quick)
        return sp_main_bad_flags("use either -c FILE or quick flags, not both", NULL);
    if (topic && !strstr(out.base ? out.base : "", "type: kafka"))
        return sp_main_bad_flags("--topic goes with --kafka", NULL);
    if (outputs > 1) return sp_main_bad_flags("quick flags take one output", NULL);

    char *text;
    size_t len;
    const char *name;
    if (file) {
        text = sp_main_read_file(file, &len);
        if (!text) {
            fprintf(stderr, "shipper: %s: %s\n", file, strerror(errno));
            return 2;
        }
        name = file;
    } else if (quick) {
        sp_buf y = {0};
        SP_BUF_LIT(&y, "service:\n  http_listen: ");
        sp_main_yq(&y, http ? http : "");
        if (log_level) {
            SP_BUF_LIT(&y, "\n  log_level: ");
            sp_main_yq(&y, log_level);
        }
        SP_BUF_LIT(&y, "\n");
        if (in.len) {
            SP_BUF_LIT(&y, "inputs:\n");
            sp_buf_append(&y, in.base, in.len);
        }
        SP_BUF_LIT(&y, "outputs:\n");
        if (out.len) {
            sp_buf_append(&y, out.base, out.len);
            if (topic) {
                SP_BUF_LIT(&y, "    topic: ");
                sp_main_yq(&y, topic);
                SP_BUF_LIT(&y, "\n");
            }
        } else {
            SP_BUF_LIT(&y, "  - type: stdout\n");
        }
        if (!in.len)
            return sp_main_bad_flags("quick flags need an input (--forward or --docker-logs)",
                                     NULL);
        sp_buf_putc(&y, '\0');
        text = y.base;
        len = y.len - 1;
        name = "<command line>";
    } else {
        text = strdup(sp_main_default_config);
        len = strlen(text);
        name = "<default config>";
    }
    sp_buf_free(&in);
    sp_buf_free(&out);

    sp_daemon d;
    sp_conf_err err = {.file = name};
    int rc = sp_daemon_load(&d, text, len, &err);
    free(text);
    if (rc) {
        fprintf(stderr, "shipper: %s\n", err.msg);
        sp_daemon_free(&d);
        return 2;
    }
    if (log_level && !quick) {
        int lv = sp_log_level_parse(log_level);
        if (lv < 0) return sp_main_bad_flags("bad --log-level", log_level);
        d.service.log_level = lv;
    }
    if (check) {
        sp_buf b = {0};
        sp_daemon_print(&d, &b);
        fwrite(b.base, 1, b.len, stdout);
        sp_buf_free(&b);
        printf("# %s: ok\n", name);
        sp_daemon_free(&d);
        return 0;
    }
    rc = sp_daemon_run(&d);
    sp_daemon_free(&d);
    return rc;
}
