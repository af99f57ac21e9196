/* Upgrade in place: starting the new process, the channel between the two, the hand-over. */
#include "upgrade.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "spool.h"
#include "upgrade_int.h"

extern char **environ;

sp_upgrade_state sp_upg = {.fd = -1};

/* ---- the old process ---- */

static void sp_upgrade_handover(sp_daemon *d);

/* The new process is gone before it was ready: collect its exit status for the log. */
static void sp_upgrade_reap_cb(uv_timer_t *t)
{
    int st;
    pid_t got = waitpid(sp_upg.child, &st, WNOHANG);
    if (got == 0 && uv_now(t->loop) < sp_upg.reap_until) return;
    uv_timer_stop(t);
    if (got == sp_upg.child && WIFEXITED(st))
        sp_error("upgrade failed: the new process (pid %d) exited with status %d before it was "
                 "ready (its messages are above); this process goes on",
                 (int)sp_upg.child, WEXITSTATUS(st));
    else if (got == sp_upg.child && WIFSIGNALED(st))
        sp_error("upgrade failed: the new process (pid %d) was killed by signal %d before it was "
                 "ready; this process goes on",
                 (int)sp_upg.child, WTERMSIG(st));
    else
        sp_error("upgrade failed: the new process (pid %d) closed its channel before it was "
                 "ready; this process goes on",
                 (int)sp_upg.child);
    if (got == 0) kill(sp_upg.child, SIGKILL);
    sp_upg.child = 0;
    sp_upg.state = SP_UPG_IDLE;
}

static void sp_upgrade_failed(sp_daemon *d)
{
    sp_upg.failed++;
    sp_upg.reloads_failed += sp_upg.reloading;
    sp_upg.reloading = 0;
    sp_upgrade_channel_close();
    sp_upg.reap_until = uv_now(&d->loop) + 5000;
    uv_timer_start(&sp_upg.timer, sp_upgrade_reap_cb, 0, 20);
}

static void sp_upgrade_ready_timeout(uv_timer_t *t)
{
    sp_error("upgrade failed: the new process (pid %d) was not ready within %d s; killing it",
             (int)sp_upg.child, SP_UPG_READY_MS / 1000);
    kill(sp_upg.child, SIGKILL);
    sp_upgrade_failed(sp_upg.d);
}

/* In the child, between fork and exec: only async-signal-safe calls. */
static void sp_upgrade_exec(const int *fds, int n, char *pidval, char **envp)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    for (int i = 0; i <= n; i++) /* listening sockets at 3.., then the channel */
        if (dup2(fds[i], 3 + i) < 0) _exit(127);
#ifdef SYS_close_range
    syscall(SYS_close_range, 3 + n + 1, ~0U, 0);
#endif
    char digits[24];
    int k = 0;
    for (pid_t p = getpid(); p > 0; p /= 10)
        digits[k++] = (char)('0' + p % 10);
    while (k > 0)
        *pidval++ = digits[--k];
    *pidval = '\0';
    if (sp_upg.exe)
        execve(sp_upg.exe, sp_upg.argv, envp);
    else
        execvpe(sp_upg.argv[0], sp_upg.argv, envp);
    _exit(127);
}

static int sp_upgrade_spawn(sp_daemon *d)
{
    int src[SP_UPG_MAX_FDS], n = 0;
    for (size_t i = 0; i < d->ninputs; i++) {
        sp_input *in = d->inputs[i];
        if (!in->started || in->closed || !in->type->listen_fd) continue;
        int fd = in->type->listen_fd(in);
        if (fd >= 0 && n < SP_UPG_MAX_FDS - 1) src[n++] = fd;
    }
    int hfd = sp_http_fd(d->http);
    if (hfd >= 0) src[n++] = hfd;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
        sp_error("upgrade failed: socketpair: %s", strerror(errno));
        return -1;
    }
    /* The child moves these to 3..3+n: their copies must sit above that range first. */
    int fds[SP_UPG_MAX_FDS + 1], ok = 1;
    for (int i = 0; i <= n; i++) {
        fds[i] = fcntl(i < n ? src[i] : sv[1], F_DUPFD_CLOEXEC, 3 + n + 1);
        ok &= fds[i] >= 0;
    }
    close(sv[1]);
    size_t ne = 0;
    while (environ[ne])
        ne++;
    char **envp = sp_calloc(ne + 5, sizeof *envp);
    size_t k = 0;
    static const char *const drop[] = {"LISTEN_PID=",         "LISTEN_FDS=",      "LISTEN_FDNAMES=",
                                       "SHIPPER_UPGRADE_FD=", "SHIPPER_RELOADS=", NULL};
    for (size_t i = 0; i < ne; i++) {
        int skip = 0;
        for (const char *const *p = drop; *p; p++)
            skip |= strncmp(environ[i], *p, strlen(*p)) == 0;
        if (!skip) envp[k++] = environ[i];
    }
    char fdsvar[32], chanvar[48], pidvar[48] = "LISTEN_PID=";
    snprintf(fdsvar, sizeof fdsvar, "LISTEN_FDS=%d", n);
    snprintf(chanvar, sizeof chanvar, "SHIPPER_UPGRADE_FD=%d", 3 + n);
    if (n) {
        envp[k++] = fdsvar;
        envp[k++] = pidvar;
    }
    envp[k++] = chanvar;
    /* The reload counters go on in the new process: ok, failed, time of the last one. */
    char reloadvar[96];
    snprintf(reloadvar, sizeof reloadvar, "SHIPPER_RELOADS=%llu,%llu,%llu",
             (unsigned long long)(sp_upg.reloads_ok + sp_upg.reloading),
             (unsigned long long)sp_upg.reloads_failed,
             (unsigned long long)(sp_upg.reloading ? (uint64_t)time(NULL) : sp_upg.reload_time));
    envp[k++] = reloadvar;
    envp[k] = NULL;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = ok ? fork() : -1;
    if (pid == 0) sp_upgrade_exec(fds, n, pidvar + strlen("LISTEN_PID="), envp);
    int err = errno;
    for (int i = 0; i <= n; i++)
        if (fds[i] >= 0) close(fds[i]);
    free(envp);
    if (pid < 0) {
        sp_error("upgrade failed: cannot start a process: %s", strerror(err));
        close(sv[0]);
        return -1;
    }
    sp_upg.fd = sv[0];
    sp_upg.child = pid;
    sp_upg.state = SP_UPG_SPAWNED;
    if (sp_upgrade_watch(d)) {
        sp_error("upgrade failed: cannot watch the channel to the new process");
        kill(pid, SIGKILL);
        sp_upgrade_failed(d);
        return 0;
    }
    uv_timer_start(&sp_upg.timer, sp_upgrade_ready_timeout, SP_UPG_READY_MS, 0);
    sp_info("upgrade: started %s (pid %d) with %d listening socket(s); waiting for it to be ready",
            sp_upg.exe ? sp_upg.exe : sp_upg.argv[0], (int)pid, n);
    return 0;
}

static void sp_upgrade_sig_cb(uv_signal_t *h, int signum)
{
    sp_daemon *d = sp_upg.d;
    int reload = signum == SIGHUP;
    if (reload)
        sp_info("received SIGHUP: reloading the configuration (an upgrade in place to the same "
                "binary: connections, spool and offsets carry over)");
    else
        sp_info("received SIGUSR2");
    int busy = sp_upg.state != SP_UPG_IDLE;
    if (sp_upg.state == SP_UPG_TAKING)
        sp_warn("upgrade: not now: this process is still taking over from pid %d",
                (int)sp_upg.parent);
    else if (sp_upg.state != SP_UPG_IDLE)
        sp_warn("upgrade: already in progress (new process %d)", (int)sp_upg.child);
    else if (d->stopping)
        sp_warn("upgrade: not while stopping");
    else if (getpid() == 1)
        sp_warn("upgrade: not as pid 1 (a container's first process): the container would end "
                "with this process; replace the container instead");
    else {
        sp_upg.reloading = reload;
        if (sp_upgrade_spawn(d)) {
            sp_upg.failed++;
            sp_upg.reloads_failed += reload;
            sp_upg.reloading = 0;
        }
        return;
    }
    /* Refused: a reload that did not happen is a failed one. An upgrade already under way
     * reads the config file anyway. */
    if (reload && !busy) sp_upg.reloads_failed++;
}

/* The new process is ready: stop accepting, hand the connections over, then finish. */
static void sp_upgrade_tick_cb(uv_timer_t *t)
{
    sp_daemon *d = sp_upg.d;
    if (!sp_upg.conns_done) {
        for (size_t i = 0; i < d->ninputs; i++)
            if (d->inputs[i]->handover_ms && !d->inputs[i]->closed) return;
        sp_upg.conns_done = 1;
        sp_info("upgrade: %llu connection(s) handed over%s", (unsigned long long)sp_upg.sent,
                d->router.spool ? "; closing the spool for the new process" : "");
        if (!d->router.spool) {
            /* Nothing of ours is in the new process's way: it may start its inputs now, while
             * this process delivers what it holds. */
            sp_upg.start_sent = sp_upgrade_send(SP_UPG_START, -1, NULL, 0, NULL, 0) == 0;
            sp_http_stop(d->http);
            d->http = NULL;
        }
        if (!d->stopping) sp_daemon_stop(d);
        if (!d->router.spool) {
            uv_timer_stop(t);
            return;
        }
    }
    /* With the spool, finish as soon as everything read is in it: the new process opens it
     * and delivers what this one has not (instead of both writing to it). Deliveries in flight
     * finish first (a chunk abandoned while its output still writes it would be replayed and
     * reach the output twice); no new one starts. */
    if (!sp_upg.outputs_held) {
        for (size_t i = 0; i < d->ninputs; i++)
            if (!d->inputs[i]->closed) return;
        if (!sp_list_empty(&d->router.open) || !sp_spool_settled(d->router.spool)) return;
        sp_upg.outputs_held = 1;
        for (size_t i = 0; i < d->noutputs; i++) {
            d->outputs[i]->blocked = 1; /* what a retry backoff does: nothing new is sent */
            uv_timer_stop(&d->outputs[i]->retry_timer);
        }
    }
    for (size_t i = 0; i < d->noutputs; i++)
        if (d->outputs[i]->inflight) return;
    uv_timer_stop(t);
    sp_daemon_finish(d);
}

static void sp_upgrade_handover(sp_daemon *d)
{
    uv_timer_stop(&sp_upg.timer);
    sp_upg.state = SP_UPG_HANDING;
    d->ready = 0;
    sp_info("upgrade: the new process (pid %d) is ready; handing over", (int)sp_upg.child);
    for (size_t i = 0; i < d->ninputs; i++) {
        sp_input *in = d->inputs[i];
        if (!in->started || in->closed || !in->type->adopt) continue;
        in->handover_ms = d->service.grace_ms ? d->service.grace_ms : 1;
        in->type->stop(in);
    }
    uv_timer_start(&sp_upg.timer, sp_upgrade_tick_cb, 0, SP_UPG_TICK_MS);
}

/* ---- the new process ---- */

static void sp_upgrade_adopt(sp_daemon *d, sp_upg_conn *c)
{
    for (size_t i = 0; i < d->ninputs; i++) {
        sp_input *in = d->inputs[i];
        if (!in->started || in->closed || !in->type->adopt || strcmp(in->type->name, c->type))
            continue;
        int rc = in->type->adopt(in, c->fd, c->state, c->len);
        if (rc == 0) {
            sp_upg.adopted++;
            return;
        }
        if (rc == 1) { /* the input closed it, saying why */
            sp_upg.refused++;
            return;
        }
        if (rc != -ENOENT) {
            sp_warn("upgrade: a %s connection could not be taken over: %s; closed", c->type,
                    strerror(-rc));
            close(c->fd);
            sp_upg.refused++;
            return;
        }
    }
    sp_warn("upgrade: a %s connection matches no input of this configuration; closed", c->type);
    close(c->fd);
    sp_upg.refused++;
}

/* START (or the old process is gone): inputs that take connections start, and get theirs. */
static void sp_upgrade_take(sp_daemon *d)
{
    sp_upg.start_got = 1;
    int rc = sp_daemon_start_inputs(d, SP_START_CONNS);
    while (sp_upg.stash) {
        sp_upg_conn *c = sp_upg.stash;
        sp_upg.stash = c->next;
        if (rc == 0) {
            sp_upgrade_adopt(d, c);
        } else {
            close(c->fd);
            sp_upg.refused++;
        }
        free(c->state);
        free(c);
    }
    sp_upg.stash_tail = &sp_upg.stash;
    if (rc == 0) {
        sp_upg.took_over = 1;
        sp_info("upgrade: took over from pid %d: %llu connection(s)", (int)sp_upg.parent,
                (unsigned long long)sp_upg.adopted);
    }
}

/* DONE (or the old process is gone): the rest starts; the upgrade is over. */
static void sp_upgrade_done(sp_daemon *d)
{
    sp_upgrade_channel_close();
    sp_upg.state = SP_UPG_IDLE;
    if (d->stopping) return;
    sp_daemon_start_inputs(d, SP_START_REST);
    sp_info("upgrade: complete; the old process (pid %d) is done", (int)sp_upg.parent);
}

void sp_upgrade_message(sp_daemon *d, uint32_t type, const uint8_t *p, size_t len)
{
    if (sp_upg.state == SP_UPG_SPAWNED && type == SP_UPG_READY) {
        sp_upgrade_handover(d);
        return;
    }
    if (sp_upg.state == SP_UPG_TAKING && type == SP_UPG_CONN && len >= 1 && p[0] < 32 &&
        (size_t)p[0] + 1 <= len && sp_upg.nfdq > 0) {
        sp_upg_conn *c = sp_calloc(1, sizeof *c);
        c->fd = sp_upg.fdq[0];
        memmove(sp_upg.fdq, sp_upg.fdq + 1, (size_t)--sp_upg.nfdq * sizeof *sp_upg.fdq);
        memcpy(c->type, p + 1, p[0]);
        c->len = len - 1 - p[0];
        c->state = sp_malloc(c->len ? c->len : 1);
        memcpy(c->state, p + 1 + p[0], c->len);
        *sp_upg.stash_tail = c;
        sp_upg.stash_tail = &c->next;
        return;
    }
    if (sp_upg.state == SP_UPG_TAKING && type == SP_UPG_START && !sp_upg.start_got) {
        sp_upgrade_take(d);
        return;
    }
    if (sp_upg.state == SP_UPG_TAKING && type == SP_UPG_DONE && sp_upg.start_got) {
        sp_upgrade_done(d);
        return;
    }
    sp_error("upgrade: unexpected message %u on the channel; closing it", type);
    sp_upgrade_eof(d, EPROTO);
}

void sp_upgrade_eof(sp_daemon *d, int err)
{
    if (sp_upg.state == SP_UPG_SPAWNED) {
        uv_timer_stop(&sp_upg.timer);
        sp_upgrade_failed(d);
    } else if (sp_upg.state == SP_UPG_HANDING) {
        sp_error("upgrade: the new process (pid %d) is gone in the middle of the hand-over%s%s; "
                 "connections not handed over yet are closed",
                 (int)sp_upg.child, err ? ": " : "", err ? strerror(err) : "");
        sp_upgrade_channel_close();
        d->exit_code = 1;
    } else if (sp_upg.state == SP_UPG_TAKING) {
        if (sp_upg.start_got || getppid() != sp_upg.parent) {
            /* The old process died (a crash, SIGKILL): what it left is final. */
            sp_warn("upgrade: the old process (pid %d) went away; taking over what there is",
                    (int)sp_upg.parent);
            if (!sp_upg.start_got) sp_upgrade_take(d);
            sp_upgrade_done(d);
        } else {
            sp_error("upgrade: the old process (pid %d) gave the upgrade up; exiting",
                     (int)sp_upg.parent);
            sp_upgrade_channel_close();
            sp_upg.state = SP_UPG_IDLE;
            d->exit_code = 1;
            sp_daemon_stop(d);
        }
    } else {
        sp_upgrade_channel_close();
    }
}

/* ---- the interface ---- */

void sp_upgrade_init(int argc, char **argv)
{
    sp_upg.argv = argv;
    sp_upg.stash_tail = &sp_upg.stash;
    char path[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    if (n > 0) {
        path[n] = '\0';
        /* Already replaced on disk: the path is the place to start the new binary from. */
        const char *del = " (deleted)";
        size_t dl = strlen(del);
        if ((size_t)n > dl && strcmp(path + n - dl, del) == 0) path[n - dl] = '\0';
        sp_upg.exe = strdup(path);
    } else if (argc > 0 && strchr(argv[0], '/')) {
        char *r = realpath(argv[0], NULL);
        sp_upg.exe = r ? r : strdup(argv[0]);
    }
    const char *rl = getenv("SHIPPER_RELOADS");
    if (rl) {
        unsigned long long ok = 0, bad = 0, at = 0;
        if (sscanf(rl, "%llu,%llu,%llu", &ok, &bad, &at) == 3)
            sp_upg.reloads_ok = ok, sp_upg.reloads_failed = bad, sp_upg.reload_time = at;
        unsetenv("SHIPPER_RELOADS");
    }
    const char *v = getenv("SHIPPER_UPGRADE_FD");
    if (!v) return;
    char *end;
    long fd = strtol(v, &end, 10);
    struct stat st;
    if (!*end && fd > 2 && fd < INT_MAX && fstat((int)fd, &st) == 0 && S_ISSOCK(st.st_mode)) {
        fcntl((int)fd, F_SETFD, FD_CLOEXEC);
        sp_upg.fd = (int)fd;
        sp_upg.state = SP_UPG_TAKING;
        sp_upg.parent = getppid();
    }
    unsetenv("SHIPPER_UPGRADE_FD");
}

int sp_upgrade_start(sp_daemon *d)
{
    sp_upg.d = d;
    uv_signal_init(&d->loop, &sp_upg.sig);
    uv_timer_init(&d->loop, &sp_upg.timer);
    uv_signal_init(&d->loop, &sp_upg.hup);
    sp_upg.handles = 7;
    uv_signal_start(&sp_upg.sig, sp_upgrade_sig_cb, SIGUSR2);
    uv_signal_start(&sp_upg.hup, sp_upgrade_sig_cb, SIGHUP);
    if (sp_upg.state != SP_UPG_TAKING) return 0;
    uint32_t ready[2] = {SP_UPG_VERSION, (uint32_t)getpid()};
    int rc = sp_upgrade_send(SP_UPG_READY, -1, ready, sizeof ready, NULL, 0);
    if (rc == 0) rc = sp_upgrade_watch(d);
    if (rc) {
        sp_warn("upgrade: cannot reach the old process (pid %d): %s; starting on my own",
                (int)sp_upg.parent, strerror(rc < 0 ? -rc : rc));
        sp_upgrade_channel_close();
        sp_upg.state = SP_UPG_IDLE;
        return 0;
    }
    sp_info("upgrade: ready; waiting for pid %d to hand over", (int)sp_upg.parent);
    return 1;
}

void sp_upgrade_closed(sp_daemon *d)
{
    if (sp_upg.state == SP_UPG_SPAWNED) {
        sp_warn("upgrade: stopping: the new process (pid %d) is stopped too", (int)sp_upg.child);
        kill(sp_upg.child, SIGKILL);
        waitpid(sp_upg.child, NULL, 0);
    } else if (sp_upg.state == SP_UPG_HANDING && sp_upg.fd >= 0) {
        int rc = sp_upg.start_sent ? 0 : sp_upgrade_send(SP_UPG_START, -1, NULL, 0, NULL, 0);
        if (rc == 0) rc = sp_upgrade_send(SP_UPG_DONE, -1, NULL, 0, NULL, 0);
        if (rc == 0)
            sp_info("upgrade: done; pid %d has taken over", (int)sp_upg.child);
        else
            sp_error("upgrade: cannot tell the new process (pid %d) that this one is done: %s",
                     (int)sp_upg.child, strerror(-rc));
    }
    sp_upgrade_channel_close();
    while (sp_upg.stash) {
        sp_upg_conn *c = sp_upg.stash;
        sp_upg.stash = c->next;
        close(c->fd);
        free(c->state);
        free(c);
    }
    sp_upg.stash_tail = &sp_upg.stash;
    if (sp_upg.handles & 1) uv_close((uv_handle_t *)&sp_upg.sig, NULL);
    if (sp_upg.handles & 2) uv_close((uv_handle_t *)&sp_upg.timer, NULL);
    if (sp_upg.handles & 4) uv_close((uv_handle_t *)&sp_upg.hup, NULL);
    sp_upg.handles = 0;
    const char *pf = d->service.pid_file;
    if (pf && *pf && sp_upg.state != SP_UPG_HANDING) { /* handed over: the new process writes it */
        FILE *f = fopen(pf, "r");
        long pid = 0;
        if (f) {
            if (fscanf(f, "%ld", &pid) != 1) pid = 0;
            fclose(f);
        }
        if (pid == (long)getpid()) unlink(pf);
    }
}

/* systemd's notification socket (Type=notify): readiness, and which process is the main one
 * now. Nothing without NOTIFY_SOCKET. */
static void sp_upgrade_notify(const char *msg)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    size_t n = path ? strlen(path) : 0;
    if (n < 2 || n >= sizeof a.sun_path || (path[0] != '/' && path[0] != '@')) return;
    memcpy(a.sun_path, path, n);
    if (path[0] == '@') a.sun_path[0] = '\0'; /* an abstract socket */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return;
    if (sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&a,
               (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)) < 0)
        sp_warn("cannot notify systemd on %s: %s", path, strerror(errno));
    close(fd);
}

void sp_upgrade_running(sp_daemon *d)
{
    char msg[64];
    snprintf(msg, sizeof msg, "MAINPID=%d\nREADY=1", (int)getpid());
    sp_upgrade_notify(msg);
    const char *pf = d->service.pid_file;
    if (!pf || !*pf) return;
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.%d.tmp", pf, (int)getpid());
    FILE *f = fopen(tmp, "w");
    int ok = f && fprintf(f, "%d\n", (int)getpid()) > 0;
    if (f) ok &= fclose(f) == 0;
    if (ok && rename(tmp, pf) == 0) return;
    sp_error("cannot write pid_file %s: %s", pf, strerror(errno));
    unlink(tmp);
}

void sp_upgrade_metrics(sp_buf *out)
{
    sp_buf_printf(out,
                  "# TYPE shipper_upgrades_total counter\n"
                  "shipper_upgrades_total{result=\"failed\"} %llu\n"
                  "shipper_upgrades_total{result=\"taken_over\"} %llu\n"
                  "# TYPE shipper_upgrade_connections_total counter\n"
                  "shipper_upgrade_connections_total{result=\"handed_over\"} %llu\n"
                  "shipper_upgrade_connections_total{result=\"adopted\"} %llu\n"
                  "shipper_upgrade_connections_total{result=\"closed\"} %llu\n"
                  "# TYPE shipper_config_reloads_total counter\n"
                  "shipper_config_reloads_total{result=\"ok\"} %llu\n"
                  "shipper_config_reloads_total{result=\"failed\"} %llu\n"
                  "# TYPE shipper_config_last_reload_timestamp_seconds gauge\n"
                  "shipper_config_last_reload_timestamp_seconds %llu\n",
                  (unsigned long long)sp_upg.failed, (unsigned long long)sp_upg.took_over,
                  (unsigned long long)sp_upg.sent, (unsigned long long)sp_upg.adopted,
                  (unsigned long long)(sp_upg.refused + sp_upg.send_failed),
                  (unsigned long long)sp_upg.reloads_ok, (unsigned long long)sp_upg.reloads_failed,
                  (unsigned long long)sp_upg.reload_time);
}
