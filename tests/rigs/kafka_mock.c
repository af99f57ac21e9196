/*
 * kafka_mock — a standalone Kafka cluster for tests, built on librdkafka's
 * mock cluster (rdkafka_mock.h). It speaks the real Kafka protocol on
 * loopback, so shipper's Kafka output and kcat can talk to it unchanged,
 * while a test script drives failures (brokers down, injected error codes,
 * leader moves) through a line-oriented control channel.
 *
 * Usage:
 *   kafka_mock [--brokers N] [--topic NAME:PARTITIONS]... [--bootstrap-file F]
 *              [--control FIFO] [--reply FILE] [--verbose]
 *
 * Startup: topics are created, the control FIFO (if any) is created, and only
 * then is "bootstrap HOST:PORT,..." printed on stdout and written (atomically)
 * to --bootstrap-file. So once a script sees the bootstrap, the rig is ready
 * for clients and commands.
 *
 * Commands (one per line; blank lines and lines starting with '#' ignored):
 *   down BROKER_ID | up BROKER_ID         broker ids are 1..N; -1 means all. A down broker
 *                                         refuses connections but stays leader of its
 *                                         partitions: add "leader" for a failover.
 *   errors API COUNT ERR                  next COUNT requests of API fail with ERR
 *   broker_errors BROKER API COUNT ERR [RTT_MS]   same, only on one broker
 *   clear API                             drop pending injected errors for API
 *   leader TOPIC PARTITION BROKER_ID      move partition leadership (-1: none)
 *   rtt BROKER_ID MS                      add latency to a broker's responses
 *   create TOPIC PARTITIONS
 *   hwm TOPIC                             -> "hwm TOPIC total=N p0=.. p1=.."
 *   ping                                  -> "ok ping" (synchronisation aid)
 *   quit
 * API is a number or an alias (produce, fetch, listoffsets, metadata, ...).
 * ERR is a number or a librdkafka error name, with or without the
 * RD_KAFKA_RESP_ERR_ prefix (NOT_LEADER_FOR_PARTITION, REQUEST_TIMED_OUT,
 * _TRANSPORT = disconnect the client, ...).
 *
 * Replies: every command produces exactly one reply line. Successful commands
 * answer "ok <command as given>" (hwm answers with its own line), failures
 * answer "error <command>: <reason>". The line goes to stdout and, with
 * --reply FILE, replaces FILE atomically (tmp + rename). Scripts therefore do:
 *     rm -f reply; echo "hwm t1" > fifo; until [ -s reply ]; do sleep 0.05; done
 *
 * Control channel: with --control the FIFO is created (if missing) and held
 * open read-write, so every "echo cmd > fifo" from a script is delivered and
 * the rig never sees EOF between writers. Without --control, commands come
 * from stdin and EOF on stdin ends the rig. SIGTERM/SIGINT end it cleanly.
 *
 * Note: the mock cluster only retains recent messages per partition (older
 * segments are dropped), so consume-everything checks only work for modest
 * volumes; high watermarks are exact counts of everything ever produced.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define QUERY_TIMEOUT_MS 5000
#define MAX_TOPICS 64

static rd_kafka_mock_cluster_t *g_mcluster;
static rd_kafka_t *g_mock_rk;  /* owner of the mock cluster */
static rd_kafka_t *g_query_rk; /* consumer used only to read watermarks */
static char g_bootstrap[1024];
static int g_brokers = 3;
static const char *g_reply_path;
static int g_verbose;
static int g_sigpipe[2] = {-1, -1};

/* Self-pipe: the signal handler only writes a byte, the poll loop notices. */
static void on_signal(int sig)
{
    int saved = errno;
    char c = (char)sig;
    if (write(g_sigpipe[1], &c, 1) < 0) {
        /* nothing useful to do in a handler */
    }
    errno = saved;
}

/* librdkafka chatters about brokers we deliberately took down; only show that when asked. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    if (g_verbose) fprintf(stderr, "kafka_mock: rdkafka %d %s: %s\n", level, fac, buf);
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("kafka_mock: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

/* Write a whole file under a temp name then rename, so readers never see a partial file. */
static int write_atomic(const char *path, const char *text)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) return -1;
    int ok = fputs(text, f) >= 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

static void reply(const char *fmt, ...)
{
    char line[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    strcat(line, "\n");
    fputs(line, stdout);
    fflush(stdout);
    if (g_reply_path && write_atomic(g_reply_path, line) != 0)
        fprintf(stderr, "kafka_mock: cannot write reply file %s: %s\n", g_reply_path,
                strerror(errno));
}

static int parse_long(const char *s, long *out)
{
    char *end;
    if (!s || !*s) return -1;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

/* Kafka protocol ApiKeys for the requests a producer/consumer actually sends. */
static const struct {
    const char *name;
    int key;
} api_aliases[] = {
    {"produce", 0},
    {"fetch", 1},
    {"listoffsets", 2},
    {"offsets", 2},
    {"metadata", 3},
    {"offsetcommit", 8},
    {"offsetfetch", 9},
    {"findcoordinator", 10},
    {"joingroup", 11},
    {"heartbeat", 12},
    {"leavegroup", 13},
    {"syncgroup", 14},
    {"saslhandshake", 17},
    {"apiversions", 18},
    {"createtopics", 19},
    {"initproducerid", 22},
    {"addpartitionstotxn", 24},
    {"endtxn", 26},
    {"saslauthenticate", 36},
};

static int parse_api(const char *s, int *out)
{
    long v;
    if (parse_long(s, &v) == 0) {
        if (v < 0 || v > 32767) return -1;
        *out = (int)v;
        return 0;
    }
    for (size_t i = 0; i < sizeof(api_aliases) / sizeof(api_aliases[0]); i++) {
        if (!strcasecmp(s, api_aliases[i].name)) {
            *out = api_aliases[i].key;
            return 0;
        }
    }
    return -1;
}

/* Accept numbers or librdkafka's own error names so test scripts stay readable. */
static int parse_err(const char *s, rd_kafka_resp_err_t *out)
{
    long v;
    if (parse_long(s, &v) == 0) {
        *out = (rd_kafka_resp_err_t)v;
        return 0;
    }
    if (!strncasecmp(s, "RD_KAFKA_RESP_ERR_", 18)) s += 18;
    const struct rd_kafka_err_desc *descs;
    size_t n;
    rd_kafka_get_err_descs(&descs, &n);
    for (size_t i = 0; i < n; i++) {
        if (descs[i].name && !strcasecmp(s, descs[i].name)) {
            *out = descs[i].code;
            return 0;
        }
    }
    return -1;
}

static int create_topic(const char *topic, long partitions, char *why, size_t whylen)
{
    if (partitions < 1 || partitions > 10000) {
        snprintf(why, whylen, "bad partition count");
        return -1;
    }
    /* Replicas only show up in metadata (the mock never fails over by itself), but a
     * realistic replica list keeps clients' metadata handling on its normal path. */
    int rf = g_brokers < 3 ? g_brokers : 3;
    rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(g_mcluster, topic, (int)partitions, rf);
    if (err) {
        snprintf(why, whylen, "%s", rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

/* The consumer handle is only created on first use: most tests never ask for watermarks. */
static rd_kafka_t *query_handle(void)
{
    if (g_query_rk) return g_query_rk;
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", g_bootstrap, errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "group.id", "kafka-mock-rig", errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "allow.auto.create.topics", "false", errstr, sizeof(errstr)) ||
        /* Reconnect quickly after "up" so hwm right after a broker restart works. */
        rd_kafka_conf_set(conf, "reconnect.backoff.max.ms", "500", errstr, sizeof(errstr))) {
        fprintf(stderr, "kafka_mock: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, log_cb);
    g_query_rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!g_query_rk) {
        fprintf(stderr, "kafka_mock: consumer: %s\n", errstr);
        return NULL;
    }
    return g_query_rk;
}

static void cmd_hwm(const char *topic, const char *cmdline)
{
    rd_kafka_t *rk = query_handle();
    if (!rk) {
        reply("error %s: cannot create query consumer", cmdline);
        return;
    }
    /* Ask the brokers (not the mock's internals) so we see what a client would see. A
     * full-cluster metadata request is used because asking for one topic by name makes the
     * mock auto-create it, and "hwm" must not change the cluster it observes. */
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, NULL, &md, QUERY_TIMEOUT_MS);
    if (err) {
        reply("error %s: metadata: %s", cmdline, rd_kafka_err2str(err));
        return;
    }
    int pcnt = -1;
    for (int i = 0; i < md->topic_cnt; i++) {
        if (!strcmp(md->topics[i].topic, topic)) {
            pcnt = md->topics[i].err ? -2 : md->topics[i].partition_cnt;
            err = md->topics[i].err;
        }
    }
    rd_kafka_metadata_destroy(md);
    if (pcnt < 0) {
        reply("error %s: metadata: %s", cmdline,
              rd_kafka_err2str(pcnt == -1 ? RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART : err));
        return;
    }

    char parts[7000] = "";
    size_t off = 0;
    long long total = 0;
    for (int p = 0; p < pcnt; p++) {
        int64_t lo = 0, hi = 0;
        err = rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, QUERY_TIMEOUT_MS);
        if (err) {
            reply("error %s: partition %d: %s", cmdline, p, rd_kafka_err2str(err));
            return;
        }
        total += hi;
        if (off < sizeof(parts))
            off += snprintf(parts + off, sizeof(parts) - off, " p%d=%lld", p, (long long)hi);
    }
    reply("hwm %s total=%lld%s", topic, total, parts);
}

/* Returns 1 when the rig should exit. */
static int handle_command(char *line)
{
    /* Trim whitespace so CRLF and stray spaces from scripts do not matter. */
    while (*line && isspace((unsigned char)*line))
        line++;
    size_t len = strlen(line);
    while (len && isspace((unsigned char)line[len - 1]))
        line[--len] = '\0';
    if (!*line || *line == '#') return 0;

    char cmdline[1024];
    snprintf(cmdline, sizeof(cmdline), "%s", line);

    char *argv[8];
    int argc = 0;
    for (char *save = NULL, *tok = strtok_r(line, " \t", &save); tok && argc < 8;
         tok = strtok_r(NULL, " \t", &save))
        argv[argc++] = tok;
    const char *cmd = argv[0];
    long a, b;
    int api;
    rd_kafka_resp_err_t kerr, err;
    char why[256];

    if (!strcmp(cmd, "quit") || !strcmp(cmd, "exit")) {
        reply("ok %s", cmdline);
        return 1;
    } else if (!strcmp(cmd, "ping")) {
        reply("ok %s", cmdline);
    } else if ((!strcmp(cmd, "down") || !strcmp(cmd, "up")) && argc == 2 &&
               parse_long(argv[1], &a) == 0) {
        err = !strcmp(cmd, "down") ? rd_kafka_mock_broker_set_down(g_mcluster, (int32_t)a)
                                   : rd_kafka_mock_broker_set_up(g_mcluster, (int32_t)a);
        if (err)
            reply("error %s: %s", cmdline, rd_kafka_err2str(err));
        else
            reply("ok %s", cmdline);
    } else if (!strcmp(cmd, "errors") && argc == 4) {
        if (parse_api(argv[1], &api) || parse_long(argv[2], &a) || a < 0 ||
            parse_err(argv[3], &kerr)) {
            reply("error %s: usage: errors API COUNT ERRCODE", cmdline);
            return 0;
        }
        rd_kafka_resp_err_t *errs = calloc(a ? a : 1, sizeof(*errs));
        for (long i = 0; i < a; i++)
            errs[i] = kerr;
        rd_kafka_mock_push_request_errors_array(g_mcluster, (int16_t)api, (size_t)a, errs);
        free(errs);
        reply("ok %s", cmdline);
    } else if (!strcmp(cmd, "broker_errors") && (argc == 5 || argc == 6)) {
        long rtt = 0;
        if (parse_long(argv[1], &b) || parse_api(argv[2], &api) || parse_long(argv[3], &a) ||
            a < 0 || parse_err(argv[4], &kerr) || (argc == 6 && parse_long(argv[5], &rtt))) {
            reply("error %s: usage: broker_errors BROKER API COUNT ERRCODE [RTT_MS]", cmdline);
            return 0;
        }
        /* The API is variadic in (err, rtt) pairs; one push per error keeps it simple. */
        for (long i = 0; i < a; i++) {
            err = rd_kafka_mock_broker_push_request_error_rtts(g_mcluster, (int32_t)b, (int16_t)api,
                                                               1, kerr, (int)rtt);
            if (err) {
                reply("error %s: %s", cmdline, rd_kafka_err2str(err));
                return 0;
            }
        }
        reply("ok %s", cmdline);
    } else if (!strcmp(cmd, "clear") && argc == 2 && parse_api(argv[1], &api) == 0) {
        rd_kafka_mock_clear_request_errors(g_mcluster, (int16_t)api);
        reply("ok %s", cmdline);
    } else if (!strcmp(cmd, "leader") && argc == 4 && parse_long(argv[2], &a) == 0 &&
               parse_long(argv[3], &b) == 0) {
        err = rd_kafka_mock_partition_set_leader(g_mcluster, argv[1], (int32_t)a, (int32_t)b);
        if (err)
            reply("error %s: %s", cmdline, rd_kafka_err2str(err));
        else
            reply("ok %s", cmdline);
    } else if (!strcmp(cmd, "rtt") && argc == 3 && parse_long(argv[1], &a) == 0 &&
               parse_long(argv[2], &b) == 0) {
        err = rd_kafka_mock_broker_set_rtt(g_mcluster, (int32_t)a, (int)b);
        if (err)
            reply("error %s: %s", cmdline, rd_kafka_err2str(err));
        else
            reply("ok %s", cmdline);
    } else if (!strcmp(cmd, "create") && argc == 3 && parse_long(argv[2], &a) == 0) {
        if (create_topic(argv[1], a, why, sizeof(why)))
            reply("error %s: %s", cmdline, why);
        else
            reply("ok %s", cmdline);
    } else if (!strcmp(cmd, "hwm") && argc == 2) {
        cmd_hwm(argv[1], cmdline);
    } else {
        reply("error %s: unknown command or bad arguments", cmdline);
    }
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: kafka_mock [--brokers N] [--topic NAME:PARTITIONS]... "
                    "[--bootstrap-file F] [--control FIFO] [--reply FILE] [--verbose]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    long brokers = g_brokers;
    const char *bootstrap_file = NULL, *control = NULL;
    char *topics[MAX_TOPICS];
    int ntopics = 0;

    static const struct option opts[] = {
        {"brokers", required_argument, 0, 'b'},
        {"topic", required_argument, 0, 't'},
        {"bootstrap-file", required_argument, 0, 'f'},
        {"control", required_argument, 0, 'c'},
        {"reply", required_argument, 0, 'r'},
        {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "b:t:f:c:r:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'b':
            if (parse_long(optarg, &brokers) || brokers < 1 || brokers > 100)
                die("bad --brokers %s", optarg);
            break;
        case 't':
            if (ntopics == MAX_TOPICS) die("too many --topic");
            topics[ntopics++] = optarg;
            break;
        case 'f':
            bootstrap_file = optarg;
            break;
        case 'c':
            control = optarg;
            break;
        case 'r':
            g_reply_path = optarg;
            break;
        case 'v':
            g_verbose = 1;
            break;
        default:
            usage();
        }
    }
    if (optind != argc) usage();

    if (pipe2(g_sigpipe, O_CLOEXEC | O_NONBLOCK) != 0) die("pipe: %s", strerror(errno));
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* The mock cluster needs a host handle for bookkeeping; a producer is the lightest. */
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, log_cb);
    g_mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!g_mock_rk) die("rd_kafka_new: %s", errstr);
    g_brokers = (int)brokers;
    g_mcluster = rd_kafka_mock_cluster_new(g_mock_rk, g_brokers);
    if (!g_mcluster) die("rd_kafka_mock_cluster_new failed");
    snprintf(g_bootstrap, sizeof(g_bootstrap), "%s", rd_kafka_mock_cluster_bootstraps(g_mcluster));

    for (int i = 0; i < ntopics; i++) {
        char name[512];
        long parts = 1;
        snprintf(name, sizeof(name), "%s", topics[i]);
        char *colon = strrchr(name, ':');
        if (colon) {
            *colon = '\0';
            if (parse_long(colon + 1, &parts))
                die("bad --topic %s (want NAME:PARTITIONS)", topics[i]);
        }
        char why[256];
        if (!*name || create_topic(name, parts, why, sizeof(why)))
            die("cannot create topic %s: %s", topics[i], *name ? why : "empty name");
    }

    int in_fd = STDIN_FILENO;
    if (control) {
        struct stat st;
        if (stat(control, &st) == 0 && !S_ISFIFO(st.st_mode))
            die("%s exists and is not a FIFO", control);
        if (stat(control, &st) != 0 && mkfifo(control, 0600) != 0)
            die("mkfifo %s: %s", control, strerror(errno));
        /* O_RDWR: we count as a writer ourselves, so the FIFO never reports EOF between
         * successive "echo cmd > fifo" and opening it never blocks. */
        in_fd = open(control, O_RDWR | O_CLOEXEC);
        if (in_fd < 0) die("open %s: %s", control, strerror(errno));
    }

    /* Publish the bootstrap last: seeing it means topics and the control channel exist. */
    char line[1200];
    snprintf(line, sizeof(line), "bootstrap %s\n", g_bootstrap);
    if (bootstrap_file && write_atomic(bootstrap_file, line + strlen("bootstrap ")) != 0)
        die("cannot write %s: %s", bootstrap_file, strerror(errno));
    fputs(line, stdout);
    fflush(stdout);

    char buf[65536];
    size_t used = 0;
    int done = 0, skipping = 0;
    while (!done) {
        struct pollfd pfd[2] = {{g_sigpipe[0], POLLIN, 0}, {in_fd, POLLIN, 0}};
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR) continue;
            die("poll: %s", strerror(errno));
        }
        if (pfd[0].revents) break;
        if (!pfd[1].revents) continue;
        ssize_t n = read(in_fd, buf + used, sizeof(buf) - used - 1);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            die("read: %s", strerror(errno));
        }
        if (n == 0) {
            /* Only stdin can reach EOF; run the last unterminated command too. */
            if (used && !skipping) {
                buf[used] = '\0';
                handle_command(buf);
            }
            break;
        }
        used += (size_t)n;
        buf[used] = '\0';
        char *start = buf, *nl;
        while (!done && (nl = memchr(start, '\n', used - (size_t)(start - buf)))) {
            *nl = '\0';
            if (skipping)
                skipping = 0; /* tail of an over-long line: drop it, resume after it */
            else
                done = handle_command(start);
            start = nl + 1;
        }
        used -= (size_t)(start - buf);
        memmove(buf, start, used);
        if (used == sizeof(buf) - 1) {
            /* No sane command is this long; discard up to the next newline. */
            if (!skipping) reply("error <line too long>: dropped");
            skipping = 1;
            used = 0;
        }
    }

    if (g_query_rk) rd_kafka_destroy(g_query_rk);
    rd_kafka_mock_cluster_destroy(g_mcluster);
    rd_kafka_destroy(g_mock_rk);
    /* The control FIFO is left in place on purpose: the script that named it owns it. */
    return 0;
}
