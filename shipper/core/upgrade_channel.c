/* Upgrade in place: the channel between the two processes (messages, fds passed along). */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "upgrade.h"
#include "upgrade_int.h"

/* ---- the channel ---- */

void sp_upgrade_channel_close(void)
{
    if (sp_upg.poll) uv_close((uv_handle_t *)sp_upg.poll, (uv_close_cb)free);
    sp_upg.poll = NULL;
    if (sp_upg.fd >= 0) close(sp_upg.fd);
    sp_upg.fd = -1;
    for (int i = 0; i < sp_upg.nfdq; i++)
        close(sp_upg.fdq[i]);
    sp_upg.nfdq = 0;
    sp_buf_free(&sp_upg.rx);
}

/* Writes one message (and at most one fd with its first byte), waiting for room if the other
 * side is slow to read: the messages are few and small, except a connection's unparsed bytes. */
static int sp_upgrade_write(uint32_t type, int fd, const void *a, size_t alen, const void *b,
                            size_t blen)
{
    if (sp_upg.fd < 0) return -EPIPE;
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
        ssize_t w = sendmsg(sp_upg.fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN) return -errno;
            int64_t left = (int64_t)(deadline - uv_hrtime()) / 1000000;
            if (left <= 0) return -ETIMEDOUT;
            struct pollfd p = {sp_upg.fd, POLLOUT, 0};
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
int sp_upgrade_send(uint32_t type, int fd, const void *a, size_t alen, const void *b, size_t blen)
{
    int rc = sp_upgrade_write(type, fd, a, alen, b, blen);
    if (rc && sp_upg.fd >= 0) {
        sp_error("upgrade: cannot write to the other process: %s; the upgrade is abandoned",
                 strerror(-rc));
        sp_upgrade_channel_close();
        if (sp_upg.state == SP_UPG_HANDING) sp_upg.d->exit_code = 1; /* nobody may be serving now */
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
    int rc = sp_upg.state == SP_UPG_HANDING
                 ? sp_upgrade_send(SP_UPG_CONN, fd, head, tl + 1, state, len)
                 : -EPIPE;
    if (rc) {
        sp_upg.send_failed++;
        sp_log(SP_LOG_ERROR, "upgrade: cannot hand a %s connection over: %s; it is closed", type,
               strerror(-rc));
    } else {
        sp_upg.sent++;
    }
    return rc;
}

static void sp_upgrade_poll_cb(uv_poll_t *h, int status, int events)
{
    sp_daemon *d = sp_upg.d;
    int eof = 0, err = 0;
    while (!eof) {
        char buf[65536];
        char cbuf[CMSG_SPACE(sizeof(int) * 16)];
        struct iovec iov = {buf, sizeof buf};
        struct msghdr m = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
        ssize_t r = recvmsg(sp_upg.fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && errno == EAGAIN) break;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); r > 0 && c; c = CMSG_NXTHDR(&m, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
            size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t k = 0; k < n; k++) {
                int fd;
                memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof fd);
                if (sp_upg.nfdq < SP_UPG_FDQ)
                    sp_upg.fdq[sp_upg.nfdq++] = fd;
                else
                    close(fd);
            }
        }
        if (r <= 0) {
            err = r < 0 ? errno : 0;
            eof = 1; /* after the messages that came before it */
            break;
        }
        sp_buf_append(&sp_upg.rx, buf, (size_t)r);
    }
    size_t off = 0;
    while (sp_upg.fd >= 0 && sp_upg.rx.len - off >= sizeof(sp_upg_hdr)) {
        sp_upg_hdr h;
        memcpy(&h, sp_upg.rx.base + off, sizeof h);
        if (sp_upg.rx.len - off - sizeof h < h.len) break;
        off += sizeof h + h.len;
        sp_upgrade_message(d, h.type, (const uint8_t *)sp_upg.rx.base + off - h.len, h.len);
    }
    if (sp_upg.fd < 0) return; /* closed while handling a message (and rx freed) */
    if (off) {
        memmove(sp_upg.rx.base, sp_upg.rx.base + off, sp_upg.rx.len - off);
        sp_upg.rx.len -= off;
    }
    if (eof) sp_upgrade_eof(d, err);
}

int sp_upgrade_watch(sp_daemon *d)
{
    sp_upg.poll = sp_calloc(1, sizeof *sp_upg.poll);
    int rc = uv_poll_init(&d->loop, sp_upg.poll, sp_upg.fd);
    if (rc) {
        free(sp_upg.poll);
        sp_upg.poll = NULL;
        return rc;
    }
    return uv_poll_start(sp_upg.poll, UV_READABLE, sp_upgrade_poll_cb);
}
