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

extern char **environ;

enum { SP_UPG_READY = 1, SP_UPG_CONN, SP_UPG_START, SP_UPG_DONE };

#define SP_UPG_VERSION 1
#define SP_UPG_READY_MS 30000 /* the new process must be ready within this */
#define SP_UPG_TICK_MS 5      /* the old process checks the hand-over's progress this often */
#define SP_UPG_SEND_MS 10000  /* a write to the channel may wait this long for room */
#define SP_UPG_MAX_FDS 64     /* listening sockets passed */
#define SP_UPG_FDQ 64         /* connection fds received and not yet matched to a message */

typedef struct {
    uint32_t type;
    uint32_t len; /* payload bytes after the header */
} sp_upg_hdr;

/* A connection received before the inputs may start (new process). */
typedef struct sp_upg_conn {
    struct sp_upg_conn *next;
    int fd;
    char type[32];
    uint8_t *state;
    size_t len;
} sp_upg_conn;

enum {
    SP_UPG_IDLE,
    SP_UPG_SPAWNED, /* old: the new process is starting */
    SP_UPG_HANDING, /* old: handing over, then finishing its own work */
    SP_UPG_TAKING,  /* new: taking over from the old process */
};

static struct {
    char *exe;    /* the binary's path, or NULL: exec argv[0] through PATH */
    char **argv;  /* main's, unchanged */
    sp_daemon *d; /* set by sp_upgrade_start */
    int state;
    int fd;          /* the channel, or -1 */
    pid_t child;     /* old: the new process */
    pid_t parent;    /* new: the old process */
    int handles;     /* sig and timer are initialised */
    uv_signal_t sig; /* SIGUSR2: upgrade */
    uv_signal_t hup; /* SIGHUP: reload the config, by an upgrade to the same binary */
    uv_timer_t timer;
    uv_poll_t *poll;  /* watches the channel (allocated: a channel comes and goes) */
    int conns_done;   /* old: every connection-taking input has handed over and closed */
    int outputs_held; /* old, with the spool: no delivery starts any more */
    int start_sent, start_got;
    uint64_t reap_until;
    sp_buf rx;
    int fdq[SP_UPG_FDQ];
    int nfdq;
    sp_upg_conn *stash, **stash_tail;
    uint64_t sent, send_failed; /* old: connections */
    uint64_t failed, took_over, adopted, refused;
    int reloading;                                    /* the upgrade in progress is a reload */
    uint64_t reloads_ok, reloads_failed, reload_time; /* carried to the new process */
} U = {.fd = -1};

/* ---- the channel ---- */

static void sp_upgrade_channel_close(void)
{
    if (U.poll) uv_close((uv_handle_t *)U.poll, (uv_close_cb)free);
    U.poll = NULL;
    if (U.fd >= 0) close(U.fd);
    U.fd = -1;
    for (int i = 0; i < U.nfdq; i++)
        close(U.fdq[i]);
    U.nfdq = 0;
    sp_buf_free(&U.rx);
}

/* Writes one message (and at most one fd with its first byte), waiting for room if the other
 * side is slow to read: the messages are few and small, except a connection's unparsed bytes. */
static int sp_upgrade_write(uint32_t type, int fd, const void *a, size_t alen, const void *b,
                            size_t blen)
{
    if (U.fd < 0) return -EPIPE;
    if (alen + blen > UINT32_MAX) return -EMSGSIZE;
    sp_upg_hdr h = {type, (uint32_t)(alen + blen)};
    struct iovec iov[3] = {{&h, sizeof h}, {(void *)a, alen}, {(void *)b, blen}};
    int niov = 3, i = 0;
    char cbuf[CMSG_SPACE(sizeof(int))];
    uint64_t deadline = uv_hrtime() + (uint64_t)SP_UPG_SEND_MS * 1000000;
    while (i < niov) {
        if (iov[i].iov_len == 0) {
            i++;
            continue;
        }
        struct msghdr m = {.msg_iov = iov + i, .msg_iovlen = (size_t)(niov - i)};
        if (fd >= 0) {
            memset(cbuf, 0, sizeof cbuf);
            m.msg_control = cbuf;
            m.msg_controllen = sizeof cbuf;
            struct cmsghdr *c = CMSG_FIRSTHDR(&m);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(c), &fd, sizeof fd);
        }
        ssize_t w = sendmsg(U.fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN) return -errno;
            int64_t left = (int64_t)(deadline - uv_hrtime()) / 1000000;
            if (left <= 0) return -ETIMEDOUT;
            struct pollfd p = {U.fd, POLLOUT, 0};
            poll(&p, 1, (int)left);
            continue;
        }
        fd = -1; /* it went with the first byte */
        for (size_t n = (size_t)w; n > 0 && i < niov;) {
            size_t k = n < iov[i].iov_len ? n : iov[i].iov_len;
            iov[i].iov_base = (char *)iov[i].iov_base + k;
            iov[i].iov_len -= k;
            n -= k;
            if (iov[i].iov_len == 0) i++;
        }
    }
    return 0;
}

/* A message that could not be written whole leaves the stream unusable: the channel closes. */
static int sp_upgrade_send(uint32_t type, int fd, const void *a, size_t alen, const void *b,
                           size_t blen)
{
    int rc = sp_upgrade_write(type, fd, a, alen, b, blen);
    if (rc && U.fd >= 0) {
        sp_error("upgrade: cannot write to the other process: %s; the upgrade is abandoned",
                 strerror(-rc));
        sp_upgrade_channel_close();
        if (U.state == SP_UPG_HANDING) U.d->exit_code = 1; /* nobody may be serving now */
    }
    return rc;
}

int sp_upgrade_send_conn(const char *type, int fd, const void *state, size_t len)
{
    uint8_t head[33];
    size_t tl = strlen(type);
    if (tl > 31) return -EINVAL;
    head[0] = (uint8_t)tl;
    memcpy(head + 1, type, tl);
    int rc = U.state == SP_UPG_HANDING ? sp_upgrade_send(SP_UPG_CONN, fd, head, tl + 1, state, len)
                                       : -EPIPE;
    if (rc) {
        U.send_failed++;
        sp_log(SP_LOG_ERROR, "upgrade: cannot hand a %s connection over: %s; it is closed", type,
               strerror(-rc));
    } else {
        U.sent++;
    }
    return rc;
}

/* ---- the old process ---- */

static void sp_upgrade_handover(sp_daemon *d);
static void sp_upgrade_eof(sp_daemon *d, int err);
static void sp_upgrade_message(sp_daemon *d, uint32_t type, const uint8_t *p, size_t len);

static void sp_upgrade_poll_cb(uv_poll_t *h, int status, int events)
{
    sp_daemon *d = U.d;
    int eof = 0, err = 0;
    while (!eof) {
        char buf[65536];
        char cbuf[CMSG_SPACE(sizeof(int) * 16)];
        struct iovec iov = {buf, sizeof buf};
        struct msghdr m = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
        ssize_t r = recvmsg(U.fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && errno == EAGAIN) break;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); r > 0 && c; c = CMSG_NXTHDR(&m, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
            size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t k = 0; k < n; k++) {
                int fd;
                memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof fd);
                if (U.nfdq < SP_UPG_FDQ)
                    U.fdq[U.nfdq++] = fd;
                else
                    close(fd);
            }
        }
        if (r <= 0) {
            err = r < 0 ? errno : 0;
            eof = 1; /* after the messages that came before it */
            break;
        }
        sp_buf_append(&U.rx, buf, (size_t)r);
    }
    size_t off = 0;
    while (U.fd >= 0 && U.rx.len - off >= sizeof(sp_upg_hdr)) {
        sp_upg_hdr h;
        memcpy(&h, U.rx.base + off, sizeof h);
        if (U.rx.len - off - sizeof h < h.len) break;
        off += sizeof h + h.len;
        sp_upgrade_message(d, h.type, (const uint8_t *)U.rx.base + off - h.len, h.len);
    }
    if (U.fd < 0) return; /* closed while handling a message (and rx freed) */
    if (off) {
        memmove(U.rx.base, U.rx.base + off, U.rx.len - off);
        U.rx.len -= off;
    }
    if (eof) sp_upgrade_eof(d, err);
}

static int sp_upgrade_watch(sp_daemon *d)
{
    U.poll = sp_calloc(1, sizeof *U.poll);
    int rc = uv_poll_init(&d->loop, U.poll, U.fd);
    if (rc) {
        free(U.poll);
        U.poll = NULL;
        return rc;
    }
    return uv_poll_start(U.poll, UV_READABLE, sp_upgrade_poll_cb);
}

/* The new process is gone before it was ready: collect its exit status for the log. */
static void sp_upgrade_reap_cb(uv_timer_t *t)
{
    int st;
    pid_t got = waitpid(U.child, &st, WNOHANG);
    if (got == 0 && uv_now(t->loop) < U.reap_until) return;
    uv_timer_stop(t);
    if (got == U.child && WIFEXITED(st))
        sp_error("upgrade failed: the new process (pid %d) exited with status %d before it was "
                 "ready (its messages are above); this process goes on",
                 (int)U.child, WEXITSTATUS(st));
    else if (got == U.child && WIFSIGNALED(st))
        sp_error("upgrade failed: the new process (pid %d) was killed by signal %d before it was "
                 "ready; this process goes on",
                 (int)U.child, WTERMSIG(st));
    else
        sp_error("upgrade failed: the new process (pid %d) closed its channel before it was "
                 "ready; this process goes on",
                 (int)U.child);
    if (got == 0) kill(U.child, SIGKILL);
    U.child = 0;
    U.state = SP_UPG_IDLE;
}

static void sp_upgrade_failed(sp_daemon *d)
{
    U.failed++;
    U.reloads_failed += U.reloading;
    U.reloading = 0;
    sp_upgrade_channel_close();
    U.reap_until = uv_now(&d->loop) + 5000;
    uv_timer_start(&U.timer, sp_upgrade_reap_cb, 0, 20);
}

static void sp_upgrade_ready_timeout(uv_timer_t *t)
{
    sp_error("upgrade failed: the new process (pid %d) was not ready within %d s; killing it",
             (int)U.child, SP_UPG_READY_MS / 1000);
    kill(U.child, SIGKILL);
    sp_upgrade_failed(U.d);
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
    if (U.exe)
        execve(U.exe, U.argv, envp);
    else
        execvpe(U.argv[0], U.argv, envp);
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
             (unsigned long long)(U.reloads_ok + U.reloading), (unsigned long long)U.reloads_failed,
             (unsigned long long)(U.reloading ? (uint64_t)time(NULL) : U.reload_time));
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
    U.fd = sv[0];
    U.child = pid;
    U.state = SP_UPG_SPAWNED;
    if (sp_upgrade_watch(d)) {
        sp_error("upgrade failed: cannot watch the channel to the new process");
        kill(pid, SIGKILL);
        sp_upgrade_failed(d);
        return 0;
    }
    uv_timer_start(&U.timer, sp_upgrade_ready_timeout, SP_UPG_READY_MS, 0);
    sp_info("upgrade: started %s (pid %d) with %d listening socket(s); waiting for it to be ready",
            U.exe ? U.exe : U.argv[0], (int)pid, n);
    return 0;
}

static void sp_upgrade_sig_cb(uv_signal_t *h, int signum)
{
    sp_daemon *d = U.d;
    int reload = signum == SIGHUP;
    if (reload)
        sp_info("received SIGHUP: reloading the configuration (an upgrade in place to the same "
                "binary: connections, spool and offsets carry over)");
    else
        sp_info("received SIGUSR2");
    int busy = U.state != SP_UPG_IDLE;
    if (U.state == SP_UPG_TAKING)
        sp_warn("upgrade: not now: this process is still taking over from pid %d", (int)U.parent);
    else if (U.state != SP_UPG_IDLE)
        sp_warn("upgrade: already in progress (new process %d)", (int)U.child);
    else if (d->stopping)
        sp_warn("upgrade: not while stopping");
    else if (getpid() == 1)
        sp_warn("upgrade: not as pid 1 (a container's first process): the container would end "
                "with this process; replace the container instead");
    else {
        U.reloading = reload;
        if (sp_upgrade_spawn(d)) {
            U.failed++;
            U.reloads_failed += reload;
            U.reloading = 0;
        }
        return;
    }
    /* Refused: a reload that did not happen is a failed one. An upgrade already under way
     * reads the config file anyway. */
    if (reload && !busy) U.reloads_failed++;
}

/* The new process is ready: stop accepting, hand the connections over, then finish. */
static void sp_upgrade_tick_cb(uv_timer_t *t)
{
    sp_daemon *d = U.d;
    if (!U.conns_done) {
        for (size_t i = 0; i < d->ninputs; i++)
            if (d->inputs[i]->handover_ms && !d->inputs[i]->closed) return;
        U.conns_done = 1;
        sp_info("upgrade: %llu connection(s) handed over%s", (unsigned long long)U.sent,
                d->router.spool ? "; closing the spool for the new process" : "");
        if (!d->router.spool) {
            /* Nothing of ours is in the new process's way: it may start its inputs now, while
             * this process delivers what it holds. */
            U.start_sent = sp_upgrade_send(SP_UPG_START, -1, NULL, 0, NULL, 0) == 0;
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
    if (!U.outputs_held) {
        for (size_t i = 0; i < d->ninputs; i++)
            if (!d->inputs[i]->closed) return;
        if (!sp_list_empty(&d->router.open) || !sp_spool_settled(d->router.spool)) return;
        U.outputs_held = 1;
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
    uv_timer_stop(&U.timer);
    U.state = SP_UPG_HANDING;
    d->ready = 0;
    sp_info("upgrade: the new process (pid %d) is ready; handing over", (int)U.child);
    for (size_t i = 0; i < d->ninputs; i++) {
        sp_input *in = d->inputs[i];
        if (!in->started || in->closed || !in->type->adopt) continue;
        in->handover_ms = d->service.grace_ms ? d->service.grace_ms : 1;
        in->type->stop(in);
    }
    uv_timer_start(&U.timer, sp_upgrade_tick_cb, 0, SP_UPG_TICK_MS);
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
            U.adopted++;
            return;
        }
        if (rc == 1) { /* the input closed it, saying why */
            U.refused++;
            return;
        }
        if (rc != -ENOENT) {
            sp_warn("upgrade: a %s connection could not be taken over: %s; closed", c->type,
                    strerror(-rc));
            close(c->fd);
            U.refused++;
            return;
        }
    }
    sp_warn("upgrade: a %s connection matches no input of this configuration; closed", c->type);
    close(c->fd);
    U.refused++;
}

/* START (or the old process is gone): inputs that take connections start, and get theirs. */
static void sp_upgrade_take(sp_daemon *d)
{
    U.start_got = 1;
    int rc = sp_daemon_start_inputs(d, SP_START_CONNS);
    while (U.stash) {
        sp_upg_conn *c = U.stash;
        U.stash = c->next;
        if (rc == 0) {
            sp_upgrade_adopt(d, c);
        } else {
            close(c->fd);
            U.refused++;
        }
        free(c->state);
        free(c);
    }
    U.stash_tail = &U.stash;
    if (rc == 0) {
        U.took_over = 1;
        sp_info("upgrade: took over from pid %d: %llu connection(s)", (int)U.parent,
                (unsigned long long)U.adopted);
    }
}

/* DONE (or the old process is gone): the rest starts; the upgrade is over. */
static void sp_upgrade_done(sp_daemon *d)
{
    sp_upgrade_channel_close();
    U.state = SP_UPG_IDLE;
    if (d->stopping) return;
    sp_daemon_start_inputs(d, SP_START_REST);
    sp_info("upgrade: complete; the old process (pid %d) is done", (int)U.parent);
}

static void sp_upgrade_message(sp_daemon *d, uint32_t type, const uint8_t *p, size_t len)
{
    if (U.state == SP_UPG_SPAWNED && type == SP_UPG_READY) {
        sp_upgrade_handover(d);
        return;
    }
    if (U.state == SP_UPG_TAKING && type == SP_UPG_CONN && len >= 1 && p[0] < 32 &&
        (size_t)p[0] + 1 <= len && U.nfdq > 0) {
        sp_upg_conn *c = sp_calloc(1, sizeof *c);
        c->fd = U.fdq[0];
        memmove(U.fdq, U.fdq + 1, (size_t)--U.nfdq * sizeof *U.fdq);
        memcpy(c->type, p + 1, p[0]);
        c->len = len - 1 - p[0];
        c->state = sp_malloc(c->len ? c->len : 1);
        memcpy(c->state, p + 1 + p[0], c->len);
        *U.stash_tail = c;
        U.stash_tail = &c->next;
        return;
    }
    if (U.state == SP_UPG_TAKING && type == SP_UPG_START && !U.start_got) {
        sp_upgrade_take(d);
        return;
    }
    if (U.state == SP_UPG_TAKING && type == SP_UPG_DONE && U.start_got) {
        sp_upgrade_done(d);
        return;
    }
    sp_error("upgrade: unexpected message %u on the channel; closing it", type);
    sp_upgrade_eof(d, EPROTO);
}

static void sp_upgrade_eof(sp_daemon *d, int err)
{
    if (U.state == SP_UPG_SPAWNED) {
        uv_timer_stop(&U.timer);
        sp_upgrade_failed(d);
    } else if (U.state == SP_UPG_HANDING) {
        sp_error("upgrade: the new process (pid %d) is gone in the middle of the hand-over%s%s; "
                 "connections not handed over yet are closed",
                 (int)U.child, err ? ": " : "", err ? strerror(err) : "");
        sp_upgrade_channel_close();
        d->exit_code = 1;
    } else if (U.state == SP_UPG_TAKING) {
        if (U.start_got || getppid() != U.parent) {
            /* The old process died (a crash, SIGKILL): what it left is final. */
            sp_warn("upgrade: the old process (pid %d) went away; taking over what there is",
                    (int)U.parent);
            if (!U.start_got) sp_upgrade_take(d);
            sp_upgrade_done(d);
        } else {
            sp_error("upgrade: the old process (pid %d) gave the upgrade up; exiting",
                     (int)U.parent);
            sp_upgrade_channel_close();
            U.state = SP_UPG_IDLE;
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
    U.argv = argv;
    U.stash_tail = &U.stash;
    char path[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    if (n > 0) {
        path[n] = '\0';
        /* Already replaced on disk: the path is the place to start the new binary from. */
        const char *del = " (deleted)";
        size_t dl = strlen(del);
        if ((size_t)n > dl && strcmp(path + n - dl, del) == 0) path[n - dl] = '\0';
        U.exe = strdup(path);
    } else if (argc > 0 && strchr(argv[0], '/')) {
        char *r = realpath(argv[0], NULL);
        U.exe = r ? r : strdup(argv[0]);
    }
    const char *rl = getenv("SHIPPER_RELOADS");
    if (rl) {
        unsigned long long ok = 0, bad = 0, at = 0;
        if (sscanf(rl, "%llu,%llu,%llu", &ok, &bad, &at) == 3)
            U.reloads_ok = ok, U.reloads_failed = bad, U.reload_time = at;
        unsetenv("SHIPPER_RELOADS");
    }
    const char *v = getenv("SHIPPER_UPGRADE_FD");
    if (!v) return;
    char *end;
    long fd = strtol(v, &end, 10);
    struct stat st;
    if (!*end && fd > 2 && fd < INT_MAX && fstat((int)fd, &st) == 0 && S_ISSOCK(st.st_mode)) {
        fcntl((int)fd, F_SETFD, FD_CLOEXEC);
        U.fd = (int)fd;
        U.state = SP_UPG_TAKING;
        U.parent = getppid();
    }
    unsetenv("SHIPPER_UPGRADE_FD");
}

int sp_upgrade_start(sp_daemon *d)
{
    U.d = d;
    uv_signal_init(&d->loop, &U.sig);
    uv_timer_init(&d->loop, &U.timer);
    uv_signal_init(&d->loop, &U.hup);
    U.handles = 7;
    uv_signal_start(&U.sig, sp_upgrade_sig_cb, SIGUSR2);
    uv_signal_start(&U.hup, sp_upgrade_sig_cb, SIGHUP);
    if (U.state != SP_UPG_TAKING) return 0;
    uint32_t ready[2] = {SP_UPG_VERSION, (uint32_t)getpid()};
    int rc = sp_upgrade_send(SP_UPG_READY, -1, ready, sizeof ready, NULL, 0);
    if (rc == 0) rc = sp_upgrade_watch(d);
    if (rc) {
        sp_warn("upgrade: cannot reach the old process (pid %d): %s; starting on my own",
                (int)U.parent, strerror(rc < 0 ? -rc : rc));
        sp_upgrade_channel_close();
        U.state = SP_UPG_IDLE;
        return 0;
    }
    sp_info("upgrade: ready; waiting for pid %d to hand over", (int)U.parent);
    return 1;
}

void sp_upgrade_closed(sp_daemon *d)
{
    if (U.state == SP_UPG_SPAWNED) {
        sp_warn("upgrade: stopping: the new process (pid %d) is stopped too", (int)U.child);
        kill(U.child, SIGKILL);
        waitpid(U.child, NULL, 0);
    } else if (U.state == SP_UPG_HANDING && U.fd >= 0) {
        int rc = U.start_sent ? 0 : sp_upgrade_send(SP_UPG_START, -1, NULL, 0, NULL, 0);
        if (rc == 0) rc = sp_upgrade_send(SP_UPG_DONE, -1, NULL, 0, NULL, 0);
        if (rc == 0)
            sp_info("upgrade: done; pid %d has taken over", (int)U.child);
        else
            sp_error("upgrade: cannot tell the new process (pid %d) that this one is done: %s",
                     (int)U.child, strerror(-rc));
    }
    sp_upgrade_channel_close();
    while (U.stash) {
        sp_upg_conn *c = U.stash;
        U.stash = c->next;
        close(c->fd);
        free(c->state);
        free(c);
    }
    U.stash_tail = &U.stash;
    if (U.handles & 1) uv_close((uv_handle_t *)&U.sig, NULL);
    if (U.handles & 2) uv_close((uv_handle_t *)&U.timer, NULL);
    if (U.handles & 4) uv_close((uv_handle_t *)&U.hup, NULL);
    U.handles = 0;
    const char *pf = d->service.pid_file;
    if (pf && *pf && U.state != SP_UPG_HANDING) { /* handed over: the new process writes it */
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
                  (unsigned long long)U.failed, (unsigned long long)U.took_over,
                  (unsigned long long)U.sent, (unsigned long long)U.adopted,
                  (unsigned long long)(U.refused + U.send_failed), (unsigned long long)U.reloads_ok,
                  (unsigned long long)U.reloads_failed, (unsigned long long)U.reload_time);
}
