/*
 * The docker_events input, its state file `<state_dir>/<input name>.events`: the resume point
 * (docs/architecture.md, "The docker_events input") as text, the time in nanoseconds on the
 * first line, then the keys of the events at that time already delivered, one a line. Written
 * to a temporary file, fsynced and renamed, so a crash leaves the old point or the new one.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "docker_events_int.h"

#define SP_DE_STATE_MAX (64 << 10)

int sp_de_state_load(const char *path, sp_de_point *p)
{
    FILE *f = fopen(path, "r");
    if (!f) return -errno;
    char buf[SP_DE_STATE_MAX];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *end;
    unsigned long long t = strtoull(buf, &end, 10);
    if (end == buf || *end != '\n') return -EINVAL;
    p->time_nano = 0;
    p->keys.len = 0;
    p->nkeys = 0;
    for (char *line = end + 1; *line;) {
        char *nl = strchr(line, '\n');
        if (!nl) break; /* a cut line: ignored */
        *nl = 0;
        if (*line) sp_de_point_take(p, t, line);
        line = nl + 1;
    }
    p->time_nano = t;
    return 0;
}

int sp_de_state_save(const char *path, const sp_de_point *p)
{
    sp_buf tmp = {0}, body = {0};
    sp_buf_printf(&tmp, "%s.tmp", path);
    sp_buf_putc(&tmp, 0);
    sp_buf_printf(&body, "%" PRIu64 "\n", p->time_nano);
    if (p->keys.len) sp_buf_append(&body, p->keys.base, p->keys.len);
    int rc = 0;
    int fd = open(tmp.base, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) rc = -errno;
    if (!rc && write(fd, body.base, body.len) != (ssize_t)body.len) rc = errno ? -errno : -EIO;
    if (!rc && fsync(fd)) rc = -errno;
    if (fd >= 0) close(fd);
    if (!rc && rename(tmp.base, path)) rc = -errno;
    if (rc && fd >= 0) unlink(tmp.base);
    sp_buf_free(&tmp);
    sp_buf_free(&body);
    return rc;
}
