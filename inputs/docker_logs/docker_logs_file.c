/*
 * The docker_logs input, files: opening, reading, rotation and truncation.
 *
 * Reading happens on the loop in bounded slices (1 MiB pread from the page cache, a few per loop
 * iteration) driven by an idle handle while data comes; a poll timer looks for growth, rotation
 * and truncation. Every complete line is parsed in the read buffer (jsonfile.c) and appended to
 * the open chunk of the container's tag without copying the message; only an unfinished last line
 * is carried to the next read, and only partial pieces (a log without its '\n') are copied to be
 * joined.
 *
 * A file's identity is (device, inode) plus a hash of its first bytes, so a reused inode is not
 * taken for the old file, and a rewritten file is noticed as a truncation.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "docker_logs_int.h"
#include "jsonfile.h"
#include "log.h"
#include "record.h"

/* ---- files ---- */

/* Reads up to SP_DL_FP_LEN bytes at 0; returns how many, with the hash of `want` of them. */
static uint32_t sp_dl_file_fp_hash(int fd, uint32_t want, uint64_t *hash, uint32_t *avail)
{
    uint8_t b[SP_DL_FP_LEN], h[16];
    ssize_t n = pread(fd, b, sizeof b, 0);
    if (n < 0) n = 0;
    *avail = (uint32_t)n;
    if (want > (uint32_t)n) want = (uint32_t)n;
    sp_hash128(b, want, 0x6a736f6e66696c65ULL, h);
    memcpy(hash, h, 8);
    return want;
}

static void sp_dl_file_fp(sp_dl_file *f)
{
    uint32_t avail;
    f->fp_len = sp_dl_file_fp_hash(f->fd, SP_DL_FP_LEN, &f->fp, &avail);
}

/*
 * A file first seen short (Docker had just created it) has a short fingerprint, which cannot
 * tell its compressed copy from another file (sp_dl_file_cand_is). Before the fingerprint is
 * compared or saved, it grows from the open descriptor, which still reads the file after Docker
 * renamed or deleted it. Returns -1 when the first bytes changed (truncated and rewritten).
 */
static int sp_dl_file_fp_grow(sp_dl_file *f)
{
    if (f->fd < 0 || f->gz || f->fp_len >= SP_DL_FP_LEN) return 0;
    uint64_t h;
    uint32_t avail;
    if (sp_dl_file_fp_hash(f->fd, f->fp_len, &h, &avail) != f->fp_len || h != f->fp) return -1;
    if (avail > f->fp_len) sp_dl_file_fp(f);
    return 0;
}

void sp_dl_files_fp_grow(sp_dl_cont *c)
{
    sp_list *it;
    sp_list_foreach(it, &c->files) sp_dl_file_fp_grow(sp_list_entry(it, sp_dl_file, link));
}

sp_dl_file *sp_dl_file_add(sp_dl *s, sp_dl_cont *c, int fd, const struct stat *st, uint64_t off)
{
    sp_dl_file *f = sp_calloc(1, sizeof *f);
    f->cont = c;
    f->fd = fd;
    f->dev = (uint64_t)st->st_dev;
    f->ino = (uint64_t)st->st_ino;
    f->off = f->line_off = f->committed = off;
    sp_list_init(&f->watches);
    sp_dl_file_fp(f);
    sp_list_insert_tail(&c->files, &f->link);
    s->nfiles++;
    return f;
}

int sp_dl_open(const char *path, struct stat *st)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    if (fstat(fd, st)) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

void sp_dl_log_path(sp_dl *s, const sp_dl_cont *c, int n, char *buf, size_t cap)
{
    if (n)
        snprintf(buf, cap, "%s/%s/%s-json.log.%d", s->conf->path, c->id, c->id, n);
    else
        snprintf(buf, cap, "%s/%s/%s-json.log", s->conf->path, c->id, c->id);
}

void sp_dl_file_close(sp_dl *s, sp_dl_file *f)
{
    if (f->fd < 0) return;
    if (f->gz)
        gzclose(f->gz); /* closes fd too */
    else
        close(f->fd);
    f->gz = NULL;
    f->fd = -1;
    f->done = 1;
    s->nfiles--;
    if (f->carry.len || f->skipping) sp_input_error(s->in, "truncated_line");
    f->line_off += f->carry.len;
    f->carry.len = 0;
    sp_buf_free(&f->carry);
}

/* A closed file whose records are all released is forgotten. */
void sp_dl_file_reap(sp_dl *s, sp_dl_file *f)
{
    if (f->fd >= 0 || !sp_list_empty(&f->watches) || sp_dl_held(f)) return;
    for (int i = 0; i < 3; i++)
        if (f->cont->join[i].file == f) f->cont->join[i].file = NULL;
    if (f->cont->cur == f) f->cont->cur = NULL;
    sp_list_remove(&f->link);
    free(f);
    s->state_dirty = 1;
}

static void sp_dl_file_truncated(sp_dl *s, sp_dl_file *f)
{
    s->truncations++;
    sp_in_log_limited(s->in, &s->rl, SP_LOG_WARN, "%.12s: log file shrank; reading it again",
                      f->cont->id);
    f->off = f->line_off = f->committed = 0;
    f->carry.len = 0;
    f->skipping = 0;
    f->gen++;
    f->idfp_set = 0;
    sp_dl_file_fp(f);
    s->state_dirty = 1;
}

/* ---- records ---- */

/*
 * The hash of a file's whole first line. The line ends with Docker's nanosecond time, so it
 * names the file's content: the same after a rename, after Docker compressed it, and after a
 * crash, and different for two files that begin alike (a prefix would not do: lines of a fixed
 * width or padding make two files' first bytes equal, and equal ids would make Elasticsearch
 * drop one file's records as duplicates). Reads plain files with pread, compressed ones from
 * their start (rewound after). Returns 0 with *idfp set, or -1 when the first line is not
 * complete yet (asked again later).
 */
static int sp_dl_file_idfp_read(int fd, gzFile gz, uint64_t *idfp)
{
    sp_buf b = {0};
    int rc = -1;
    const char *nl = NULL;
    /* The first line starts at the first byte that is not NUL: a file truncated while Docker
     * writes it begins with NULs (a hole), the same in every such file. */
    off_t at = gz ? 0 : lseek(fd, 0, SEEK_DATA);
    if (at < 0) at = 0;
    size_t skipped = 0;
    while (!nl && b.len < SP_DL_IDFP_MAX && skipped < ((size_t)1 << 30)) {
        sp_buf_reserve(&b, 4096);
        ssize_t n = gz ? gzread(gz, b.base + b.len, 4096) : pread(fd, b.base + b.len, 4096, at);
        if (n <= 0) break;
        at += n;
        if (b.len == 0) { /* still before the first line: drop leading NULs */
            size_t z = 0;
            while (z < (size_t)n && b.base[z] == '\0')
                z++;
            skipped += z;
            memmove(b.base, b.base + z, (size_t)n - z);
            n -= (ssize_t)z;
        }
        nl = memchr(b.base + b.len, '\n', (size_t)n);
        b.len += (size_t)n;
    }
    if (gz) gzrewind(gz);
    /* A first line longer than the bound is named by its first SP_DL_IDFP_MAX bytes. */
    if (nl || b.len >= SP_DL_IDFP_MAX) {
        uint8_t h[16];
        sp_hash128(b.base, nl ? (size_t)(nl - b.base) + 1 : b.len, 0x69647370ULL, h);
        memcpy(idfp, h, 8);
        rc = 0;
    }
    sp_buf_free(&b);
    return rc;
}

static uint64_t sp_dl_file_idfp(sp_dl_file *f)
{
    if (!f->idfp_set && !f->gz && f->fd >= 0 && sp_dl_file_idfp_read(f->fd, NULL, &f->idfp) == 0)
        f->idfp_set = 1;
    return f->idfp;
}

/* Record id: (container, file content, byte offset of the line), so a re-read names it alike. */
static void sp_dl_file_emit(sp_dl *s, sp_dl_cont *c, sp_dl_file *f, int idx, sp_record *r,
                            uint64_t idfp, uint64_t off)
{
    /* Hashing the container and file once per file keeps the per-record hash to 8 bytes. */
    if (c->idseed_fp != idfp || !c->idseed) {
        struct {
            char id[64];
            uint64_t fp;
        } key;
        uint8_t h[16];
        memcpy(key.id, c->id, 64);
        key.fp = idfp;
        sp_hash128(&key, sizeof key, 0, h);
        memcpy(&c->idseed, h, 8);
        c->idseed_fp = idfp;
    }
    sp_hash128(&off, sizeof off, c->idseed, r->id);
    r->container_id = sp_slice_make(c->id, 64);
    r->container_name = sp_slice_make(c->tag + c->prefix_len, c->tag_len - c->prefix_len);
    r->prec = 9;
    s->add_file = f; /* a filter holding the line keeps the offset before it (sp_dl_hold) */
    s->add_off = off;
    s->in->hold = &c->hold[idx].h;
    sp_input_batch_add(s->in, &s->batch, sp_slice_make(c->tag, c->tag_len), r);
    s->in->hold = NULL;
    s->add_file = NULL;
    if (sp_input_batch_full(s->in, &s->batch)) sp_dl_batch_end(s, c, f);
}

static const sp_slice sp_dl_file_streams[3] = {SP_SLICE_LIT("stdout"), SP_SLICE_LIT("stderr"),
                                               SP_SLICE_NULL};

/* Ships a joined line and resets its joiner. `f` is the file being read now. */
void sp_dl_join_emit(sp_dl *s, sp_dl_cont *c, sp_dl_file *f, int idx, uint32_t flags)
{
    sp_dl_join *j = &c->join[idx];
    sp_record r = {0};
    r.sec = j->sec;
    r.nsec = j->nsec;
    r.message = sp_buf_slice(&j->text);
    r.stream = sp_dl_file_streams[idx];
    r.flags = flags;
    r.nextras = j->nattrs;
    r.extras = sp_buf_slice(&j->attrs);
    j->active = 0; /* before emitting: the safe offset no longer waits for it */
    if (flags & SP_REC_SPLIT) s->splits++;
    if (flags & SP_REC_INCOMPLETE) s->incomplete++;
    sp_dl_file_emit(s, c, f ? f : j->file, idx, &r, j->idfp, j->off);
    sp_input_hold(s->in, -(int64_t)j->text.len);
    j->text.len = 0;
}

static void sp_dl_file_line(sp_dl *s, sp_dl_cont *c, sp_dl_file *f, const char *p, size_t len,
                            uint64_t off)
{
    sp_jsonfile_line l;
    s->lines++;
    if (sp_jsonfile_parse(p, len, &l, &s->scratch, &s->attrs)) {
        sp_input_error(s->in, "corrupt_line");
        return;
    }
    int idx = SP_SLICE_IS(l.stream, "stdout") ? 0 : SP_SLICE_IS(l.stream, "stderr") ? 1 : 2;
    sp_dl_join *j = &c->join[idx];
    if (l.partial || j->active) {
        if (!j->active) {
            j->active = 1;
            j->file = f;
            j->idfp = sp_dl_file_idfp(f);
            j->off = off;
            j->sec = l.sec;
            j->nsec = l.nsec;
            j->since_ms = uv_now(s->in->loop);
            j->text.len = j->attrs.len = 0;
            sp_buf_append(&j->attrs, s->attrs.base, s->attrs.len);
            j->nattrs = l.nattrs;
        }
        sp_buf_append(&j->text, l.log.base, l.log.len);
        sp_input_hold(s->in, (int64_t)l.log.len);
        if (!l.partial)
            sp_dl_join_emit(s, c, f, idx, 0);
        else if (j->text.len >= s->conf->max_line_size)
            sp_dl_join_emit(s, c, f, idx, SP_REC_SPLIT);
        return;
    }
    sp_record r = {0};
    r.sec = l.sec;
    r.nsec = l.nsec;
    r.message = l.log;
    r.stream = l.stream;
    r.nextras = l.nattrs;
    r.extras = sp_buf_slice(&s->attrs);
    sp_dl_file_emit(s, c, f, idx, &r, sp_dl_file_idfp(f), off);
}

/* Processes the complete lines of buf; the unfinished rest becomes the file's carry. */
static void sp_dl_file_lines(sp_dl *s, sp_dl_cont *c, sp_dl_file *f, const char *buf, size_t len)
{
    const char *p = buf, *end = buf + len;
    while (p < end) {
        /* A file truncated under Docker's feet has NUL bytes up to where Docker writes next:
         * they belong to no line (and must not make the next line look overlong). */
        if (*p == '\0' && !f->skipping) {
            const char *q = p;
            while (q < end && *q == '\0')
                q++;
            f->line_off += (uint64_t)(q - p);
            p = q;
            continue;
        }
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) break;
        uint64_t off = f->line_off;
        f->line_off += (uint64_t)(nl + 1 - p);
        if (f->skipping)
            f->skipping = 0;
        else
            sp_dl_file_line(s, c, f, p, (size_t)(nl - p), off);
        p = nl + 1;
    }
    size_t rest = (size_t)(end - p);
    f->carry.len = 0;
    if (rest >= SP_DL_MAX_RAW) {
        if (!f->skipping) sp_input_error(s->in, "corrupt_line");
        f->skipping = 1;
        f->line_off += rest;
    } else if (rest) {
        sp_buf_append(&f->carry, p, rest);
    }
    sp_dl_batch_end(s, c, f);
}

/* One slice of `f`: > 0 bytes read, 0 at its end, < 0 on error. */
ssize_t sp_dl_read_slice(sp_dl *s, sp_dl_cont *c, sp_dl_file *f)
{
    size_t carry = f->carry.len;
    if (carry) memcpy(s->rbuf, f->carry.base, carry);
    ssize_t n;
    do
        n = f->gz ? gzread(f->gz, s->rbuf + carry, SP_DL_SLICE)
                  : pread(f->fd, s->rbuf + carry, SP_DL_SLICE, (off_t)f->off);
    while (n < 0 && errno == EINTR && !f->gz);
    if (n < 0 && f->gz) n = -EIO, errno = EIO;
    if (n <= 0) return n < 0 ? -errno : 0;
    f->off += (uint64_t)n;
    s->bytes_read += (uint64_t)n;
    s->in->bytes += (uint64_t)n;
    sp_dl_file_lines(s, c, f, s->rbuf, carry + (size_t)n);
    return n;
}

/* ---- rotation ---- */

/* A rotated file as found on disk: `.i`, or `.i.gz` once Docker compressed it. */
typedef struct {
    int fd;
    gzFile gz;
    struct stat st;
    uint8_t head[SP_DL_FP_LEN]; /* its first bytes (decompressed): identity */
    uint32_t nhead;
} sp_dl_cand;

/*
 * Opens rotation i (0: the current file): the plain file if it exists — it still does while
 * Docker compresses it — else the .gz. Returns 0, or -1 when there is neither.
 */
static int sp_dl_file_cand_open(sp_dl *s, sp_dl_cont *c, int i, sp_dl_cand *k)
{
    char path[4096];
    memset(k, 0, sizeof *k);
    sp_dl_log_path(s, c, i, path, sizeof path);
    if ((k->fd = sp_dl_open(path, &k->st)) >= 0) {
        ssize_t n = pread(k->fd, k->head, sizeof k->head, 0);
        k->nhead = n > 0 ? (uint32_t)n : 0;
        return 0;
    }
    if (i == 0) return -1;
    strncat(path, ".gz", sizeof path - strlen(path) - 1);
    if ((k->fd = sp_dl_open(path, &k->st)) < 0) return -1;
    if (!(k->gz = gzdopen(k->fd, "rb"))) {
        close(k->fd);
        return -1;
    }
    int n = gzread(k->gz, k->head, sizeof k->head);
    k->nhead = n > 0 ? (uint32_t)n : 0;
    gzrewind(k->gz);
    return 0;
}

static void sp_dl_file_cand_close(sp_dl_cand *k)
{
    if (k->gz)
        gzclose(k->gz);
    else if (k->fd >= 0)
        close(k->fd);
    k->gz = NULL;
    k->fd = -1;
}

/* How a file found on disk compares with a file shipper knows (sp_dl_file_cand_is). */
enum { SP_DL_OTHER, SP_DL_SAME, SP_DL_ALIKE };

/*
 * Is the candidate the file with this identity? SP_DL_SAME: the same (device, inode) and first
 * bytes (a reused inode has other first bytes), or with `by_content` a compressed copy of it: a
 * new inode whose first bytes are the same and hold the file's whole first line, which its
 * nanosecond time makes unique. SP_DL_ALIKE: a compressed file with the same first bytes that
 * end inside the first line, so it may as well be another file that begins alike.
 */
static int sp_dl_file_cand_is(const sp_dl_cand *k, uint64_t dev, uint64_t ino, uint64_t fp,
                              uint32_t fp_len, int by_content)
{
    if (fp_len > k->nhead) return SP_DL_OTHER;
    uint8_t h[16];
    uint64_t x;
    sp_hash128(k->head, fp_len, 0x6a736f6e66696c65ULL, h);
    memcpy(&x, h, 8);
    if (x != fp) return SP_DL_OTHER;
    if ((uint64_t)k->st.st_dev == dev && (uint64_t)k->st.st_ino == ino) return SP_DL_SAME;
    if (!by_content || !k->gz || !fp_len) return SP_DL_OTHER;
    return memchr(k->head, '\n', fp_len) ? SP_DL_SAME : SP_DL_ALIKE;
}

static sp_dl_file *sp_dl_file_cand_add(sp_dl *s, sp_dl_cont *c, sp_dl_cand *k, uint64_t off)
{
    sp_dl_file *f = sp_dl_file_add(s, c, k->fd, &k->st, off);
    if (k->gz) {
        f->gz = k->gz;
        uint8_t h[16];
        sp_hash128(k->head, k->nhead, 0x6a736f6e66696c65ULL, h);
        memcpy(&f->fp, h, 8);
        f->fp_len = k->nhead;
        f->idfp_set = sp_dl_file_idfp_read(-1, f->gz, &f->idfp) == 0;
        if (off && gzseek(f->gz, (z_off_t)off, SEEK_SET) < 0) {
            f->off = f->line_off = f->committed = 0;
            gzrewind(f->gz);
        }
    }
    k->fd = -1;
    k->gz = NULL;
    return f;
}

/*
 * Startup with a saved position. It names the oldest file of the container with lines not yet
 * released: find it among the current file and its rotations (by identity; maybe compressed
 * since), read it from the offset and every newer file from its start. If it is not there,
 * Docker deleted it (more rotations than max-file, or max-file=1's truncation) while shipper was
 * down: Docker deletes the oldest file first, so every file still on disk is newer than it, and
 * all of them are read, oldest first. Only the lines of the deleted files are lost (counted).
 * Every candidate is opened in one pass and kept open, so a rotation while we look cannot make
 * us read a file twice or skip one. Returns 1 when the saved file was found.
 */
int sp_dl_resume_saved(sp_dl *s, sp_dl_cont *c, const sp_offset *o)
{
    sp_dl_cand *k = sp_calloc(SP_DL_MAX_ROTATED + 1, sizeof *k);
    int n = 0, at = -1, alike = 0, rotated = 0;
    while (n <= SP_DL_MAX_ROTATED) {
        int i = n++;
        if (sp_dl_file_cand_open(s, c, i, &k[i])) {
            k[i].fd = -1;
            k[i].gz = NULL;
            /* Docker renames .N-1 to .N from the oldest down, so while it rotates one name can
             * be missing: the rotations end at the second missing name in a row. */
            if (i > 1 && k[i - 1].fd < 0) {
                n -= 2;
                break;
            }
            continue;
        }
        rotated += i > 0;
        int m = sp_dl_file_cand_is(&k[i], o->dev, o->ino, o->fp, o->fp_len, 1);
        alike |= m == SP_DL_ALIKE;
        if (m == SP_DL_SAME) {
            at = i;
            break;
        }
    }
    uint64_t off = 0;
    if (at >= 0) {
        off = o->offset;
        if (!k[at].gz && (uint64_t)k[at].st.st_size < off) {
            s->truncations++;
            off = 0;
        }
    } else if (alike) {
        /* A compressed file begins like the saved one but may be another: read them all. */
        sp_in_warn(s->in,
                   "%.12s: the file of the saved offset is not certainly among the "
                   "%d rotated files; reading all of them from their start (lines may be shipped "
                   "twice)",
                   c->id, rotated);
    } else {
        s->lost_files++;
        sp_in_warn(
            s->in,
            "%.12s: the file of the saved offset was deleted before shipper "
            "read it all (rotated away while shipper was down): its unread lines are lost; "
            "reading the %d rotated files still on disk and the current one from their start",
            c->id, rotated);
    }
    for (int i = (at >= 0 ? at : n - 1); i >= 0; i--) {
        if (k[i].fd < 0) continue;
        int dup = 0;
        sp_list *it;
        sp_list_foreach(it, &c->files)
        {
            sp_dl_file *f = sp_list_entry(it, sp_dl_file, link);
            dup |= f->dev == (uint64_t)k[i].st.st_dev && f->ino == (uint64_t)k[i].st.st_ino;
        }
        if (dup) { /* renamed while we looked: it is in the list already */
            sp_dl_file_cand_close(&k[i]);
            continue;
        }
        sp_dl_file *f = sp_dl_file_cand_add(s, c, &k[i], i == at ? off : 0);
        if (i == 0)
            c->cur = f;
        else
            f->rotated = 1;
    }
    free(k);
    return at >= 0;
}

/* Growth, rotation and truncation of one container's current file. */
/*
 * `old` (the file we read as current) was rotated away. If Docker rotated more than once before
 * we looked, the files between it and the new current are `.k-1` ... `.1` where `old` is now `.k`
 * (all of them when `old` is already deleted): open them, oldest first, so none is skipped —
 * through zlib when Docker has compressed them already (compress=true).
 */
static void sp_dl_file_missed_rotations(sp_dl *s, sp_dl_cont *c, sp_dl_file *old)
{
    sp_dl_cand k;
    int at = 0, last = 0;
    sp_dl_files_fp_grow(c);
    for (int i = 1; i <= SP_DL_MAX_ROTATED; i++) {
        if (sp_dl_file_cand_open(s, c, i, &k)) break;
        last = i;
        int is_old =
            sp_dl_file_cand_is(&k, old->dev, old->ino, old->fp, old->fp_len, 1) == SP_DL_SAME;
        sp_dl_file_cand_close(&k);
        if (is_old) {
            at = i;
            break;
        }
    }
    for (int i = at ? at - 1 : last; i >= 1; i--) {
        if (sp_dl_file_cand_open(s, c, i, &k)) continue;
        int known = 0;
        sp_list *it;
        sp_list_foreach(it, &c->files)
        {
            sp_dl_file *f = sp_list_entry(it, sp_dl_file, link);
            known |= sp_dl_file_cand_is(&k, f->dev, f->ino, f->fp, f->fp_len, 1) == SP_DL_SAME;
        }
        if (known) {
            sp_dl_file_cand_close(&k);
            continue;
        }
        sp_dl_file *f = sp_dl_file_cand_add(s, c, &k, 0);
        f->rotated = 1;
        s->rotations++;
    }
}

void sp_dl_check(sp_dl *s, sp_dl_cont *c)
{
    char path[4096];
    struct stat st;
    sp_dl_log_path(s, c, 0, path, sizeof path);
    if (stat(path, &st) != 0) {
        if (c->cur) { /* renamed away, or the container is gone: finish it */
            c->cur->rotated = 1;
            if (!c->removed) sp_dl_file_missed_rotations(s, c, c->cur);
            c->cur = NULL;
            if (!c->removed) s->rotations++;
        }
        return;
    }
    sp_dl_file *f = c->cur;
    if (f && f->dev == (uint64_t)st.st_dev && f->ino == (uint64_t)st.st_ino) {
        if ((uint64_t)st.st_size < f->off || sp_dl_file_fp_grow(f)) sp_dl_file_truncated(s, f);
        return;
    }
    if (f) {
        f->rotated = 1;
        s->rotations++;
        sp_dl_file_missed_rotations(s, c, f);
    }
    c->cur = NULL;
    int fd = sp_dl_open(path, &st);
    if (fd >= 0) c->cur = sp_dl_file_add(s, c, fd, &st, 0);
}
