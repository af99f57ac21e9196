/* The tail offset store: one line per container, "id dev ino fp fp_len offset". */
#include "offsets.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "slice.h"

#define SP_OFFSETS_MAGIC "shipper-offsets 1\n"

int sp_offsets_load(const char *path, sp_offset **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    FILE *f = fopen(path, "r");
    if (!f) return errno == ENOENT ? 0 : -errno;
    char line[256];
    size_t cap = 0;
    if (!fgets(line, sizeof line, f) || strcmp(line, SP_OFFSETS_MAGIC) != 0) {
        fclose(f);
        return -EINVAL;
    }
    while (fgets(line, sizeof line, f)) {
        sp_offset o = {0};
        unsigned long long dev, ino, fp, off;
        unsigned fpl;
        if (sscanf(line, "%64s %llu %llu %llx %u %llu", o.id, &dev, &ino, &fp, &fpl, &off) != 6 ||
            strlen(o.id) != 64)
            continue;
        o.dev = dev;
        o.ino = ino;
        o.fp = fp;
        o.fp_len = fpl;
        o.offset = off;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *out = sp_realloc(*out, cap * sizeof **out);
        }
        (*out)[(*n)++] = o;
    }
    fclose(f);
    return 0;
}

int sp_offsets_save(const char *path, const sp_offset *v, size_t n)
{
    sp_buf b = {0}, tmp = {0};
    SP_BUF_LIT(&b, SP_OFFSETS_MAGIC);
    for (size_t i = 0; i < n; i++)
        sp_buf_printf(&b, "%s %llu %llu %llx %u %llu\n", v[i].id, (unsigned long long)v[i].dev,
                      (unsigned long long)v[i].ino, (unsigned long long)v[i].fp, v[i].fp_len,
                      (unsigned long long)v[i].offset);
    sp_buf_printf(&tmp, "%s.tmp", path);
    sp_buf_putc(&tmp, 0);
    int rc = 0;
    int fd = open(tmp.base, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) rc = -errno;
    for (size_t done = 0; !rc && done < b.len;) {
        ssize_t w = write(fd, b.base + done, b.len - done);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0)
            rc = -errno;
        else
            done += (size_t)w;
    }
    if (!rc && fsync(fd)) rc = -errno;
    if (fd >= 0) close(fd);
    if (!rc && rename(tmp.base, path)) rc = -errno;
    if (!rc) {
        /* The rename itself must reach the disk, or a crash may bring back the old file. */
        char *slash = strrchr(path, '/');
        sp_buf dir = {0};
        if (slash)
            sp_buf_append(&dir, path, (size_t)(slash - path) + 1);
        else
            SP_BUF_LIT(&dir, ".");
        sp_buf_putc(&dir, 0);
        int dfd = open(dir.base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        sp_buf_free(&dir);
    } else if (fd >= 0) {
        unlink(tmp.base);
    }
    sp_buf_free(&b);
    sp_buf_free(&tmp);
    return rc;
}
