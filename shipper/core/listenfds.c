/* Inherited listening sockets (systemd socket activation). */
#include "listenfds.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

#define SP_LISTENFDS_FIRST 3
#define SP_LISTENFDS_MAX 64

static int sp_listenfds_n;
static int sp_listenfds_taken[SP_LISTENFDS_MAX];

int sp_listenfds_init(void)
{
    const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
    if (!pid || !fds) return 0;
    char *end;
    long p = strtol(pid, &end, 10), n;
    if (*end || p != (long)getpid()) goto out; /* meant for another process */
    n = strtol(fds, &end, 10);
    if (*end || n <= 0) goto out;
    if (n > SP_LISTENFDS_MAX) {
        sp_warn("socket activation: %ld sockets passed, using the first %d", n, SP_LISTENFDS_MAX);
        n = SP_LISTENFDS_MAX;
    }
    for (int i = 0; i < n; i++)
        fcntl(SP_LISTENFDS_FIRST + i, F_SETFD, FD_CLOEXEC);
    sp_listenfds_n = (int)n;
out:
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return sp_listenfds_n;
}

/* The socket's own address matches `a`: same family, port and address (or unix path). */
static int sp_listenfds_match(int fd, const sp_addr *a)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int listening = 0;
    socklen_t ll = sizeof listening;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) ||
        getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ll) || !listening)
        return 0;
    if (a->is_unix) {
        const struct sockaddr_un *u = (const struct sockaddr_un *)&ss;
        return ss.ss_family == AF_UNIX && strncmp(u->sun_path, a->path, sizeof u->sun_path) == 0;
    }
    if (ss.ss_family != a->sa.ss_family) return 0;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)&ss, *y = (const void *)&a->sa;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)&ss, *y = (const void *)&a->sa;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
    }
    return 0;
}

int sp_listenfds_take(const sp_addr *a)
{
    for (int i = 0; i < sp_listenfds_n; i++) {
        if (sp_listenfds_taken[i]) continue;
        int fd = SP_LISTENFDS_FIRST + i;
        if (sp_listenfds_match(fd, a)) {
            sp_listenfds_taken[i] = 1;
            return fd;
        }
    }
    return -1;
}

int sp_listenfds_close_unused(void)
{
    int n = 0;
    for (int i = 0; i < sp_listenfds_n; i++) {
        if (sp_listenfds_taken[i]) continue;
        sp_warn("socket activation: fd %d matches no input's listen address; closed",
                SP_LISTENFDS_FIRST + i);
        close(SP_LISTENFDS_FIRST + i);
        sp_listenfds_taken[i] = 1;
        n++;
    }
    return n;
}
