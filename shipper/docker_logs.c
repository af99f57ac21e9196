/*
 * The docker_logs input: tails Docker's json-file logs, `<path>/<id>/<id>-json.log`.
 *
 * Discovery: an fs event on the containers directory triggers a rescan, and a rescan also runs
 * every two seconds as a safety net. Each container has a list of open files, oldest first: a
 * file renamed by rotation (or unlinked with max-file=1, or left behind by `docker rm`) stays
 * open by fd and is read to its last byte before it is closed, then the next one is read.
 *
 * Reading happens on the loop in bounded slices (1 MiB pread from the page cache, a few per loop
 * iteration) driven by an idle handle while data comes; a poll timer looks for growth, rotation
 * and truncation. Every complete line is parsed in the read buffer (jsonfile.c) and appended to
 * the open chunk of the container's tag without copying the message; only an unfinished last line
 * is carried to the next read, and only partial pieces (a log without its '\n') are copied to be
 * joined.
 *
 * Offsets: after appending a file's records to a chunk, a watcher on that chunk carries the
 * file offset they end at; when every output has released the chunk the file's committed offset
 * moves there (in order), and the store (offsets.c) is rewritten at most once a second. A file's
 * identity is (device, inode) plus a hash of its first bytes, so a reused inode is not taken for
 * the old file, and a rewritten file is noticed as a truncation.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "jsonfile.h"
#include "log.h"
#include "meta.h"
#include "offsets.h"
#include "record.h"
#include "router.h"

enum { SP_FROM_END, SP_FROM_START };

typedef struct {
    char *path;
    char *tag_prefix;
    int read_from;
    uint64_t max_line_size;
    uint64_t partial_timeout;
    uint64_t poll_interval;
} sp_dl_conf;

static const char *const sp__read_from[] = {"end", "start", NULL};

static const sp_conf_field sp__dl_fields[] = {
    {"path", SP_CONF_STR, offsetof(sp_dl_conf, path), "/var/lib/docker/containers",
     "Docker's containers directory (<id>/<id>-json.log, <id>/config.v2.json)"},
    {"tag_prefix", SP_CONF_STR, offsetof(sp_dl_conf, tag_prefix), "docker.",
     "records are tagged <prefix><container name>"},
    {"read_from", SP_CONF_ENUM, offsetof(sp_dl_conf, read_from), "end",
     "end | start: where to begin a file that exists at startup with no saved offset",
     sp__read_from},
    {"max_line_size", SP_CONF_SIZE, offsetof(sp_dl_conf, max_line_size), "1MiB",
     "longest joined partial line; longer lines are split (flagged)"},
    {"partial_timeout", SP_CONF_DURATION, offsetof(sp_dl_conf, partial_timeout), "5s",
     "a partial line whose last piece has not come by then is shipped as it is (flagged)"},
    {"poll_interval", SP_CONF_DURATION, offsetof(sp_dl_conf, poll_interval), "200ms",
     "how often open files are checked for new data, rotation and truncation"},
    SP_CONF_END};

#define SP_DL_SLICE (1 << 20)   /* one read */
#define SP_DL_MAX_RAW (1 << 20) /* one json-file line; longer is skipped (corrupt) */
#define SP_DL_BUDGET (4 << 20)  /* bytes read per loop iteration, across files */
#define SP_DL_FP_LEN 256        /* identity fingerprint: hash of the first bytes */
#define SP_DL_RESCAN_MS 2000    /* safety-net directory rescan */
#define SP_DL_SAVE_MS 1000      /* offsets written at most this often */
#define SP_DL_MAX_ROTATED 64    /* <id>-json.log.N looked at when resuming */

struct sp_dl;
struct sp_dl_cont;

typedef struct sp_dl_file {
    sp_list link; /* in the container's files, oldest first */
    struct sp_dl_cont *cont;
    int fd; /* -1 once read to the end and closed */
    uint64_t dev, ino, fp;
    uint32_t fp_len;
    uint64_t off;      /* next byte to read */
    uint64_t line_off; /* start of the carried, unfinished line */
    sp_buf carry;
    int rotated;   /* renamed or unlinked: read to the end, then close */
    int skipping;  /* inside an overlong line: drop bytes up to the next '\n' */
    int done;      /* rotated away and read to its end */
    gzFile gz;     /* a rotation Docker compressed before we opened it: read through zlib */
    uint64_t idfp; /* hash of its first line: names its records (sp__file_idfp) */
    int idfp_set;
    uint32_t gen; /* bumped on truncation: older watchers no longer move `committed` */
    uint64_t committed;
    sp_list watches; /* sp_dl_watch, oldest first */
} sp_dl_file;

typedef struct {
    sp_chunk_watch w;
    sp_list link;
    sp_dl_file *f;
    uint64_t end;
    uint64_t chunk_seq;
    uint32_t gen;
    int fired, delivered;
} sp_dl_watch;

/* A line being joined from partial pieces, per stream. */
typedef struct {
    int active;
    sp_dl_file *file;
    uint64_t idfp, off; /* where its first piece is: its id */
    uint64_t sec;
    uint32_t nsec;
    uint64_t since_ms;
    sp_buf text, attrs;
    uint32_t nattrs;
} sp_dl_join;

typedef struct sp_dl_cont {
    sp_list link;
    struct sp_dl *s;
    char id[65];
    char *tag;
    size_t tag_len, prefix_len;
    sp_list files;
    sp_dl_file *cur;  /* the file now at <id>-json.log, if open */
    uv_fs_event_t ev; /* on the container's directory: writes, rotation */
    int ev_on;
    uint64_t idseed, idseed_fp; /* record ids: hash of the container and idfp */
    int seen, removed;
    int named;          /* the name came from config.v2.json (else: the short id) */
    uint64_t found_ms;  /* when the container was discovered */
    sp_dl_join join[3]; /* stdout, stderr, anything else */
} sp_dl_cont;

typedef struct sp_dl {
    sp_input *in;
    sp_dl_conf *conf;
    uv_fs_event_t fsev;
    uv_timer_t poll;
    uv_idle_t pump;
    int handles, pumping, paused, stopping;
    sp_list conts;
    char *rbuf;
    sp_buf scratch, attrs, name;
    char *offsets_path;
    sp_offset *saved;
    size_t nsaved;
    int state_dirty, rescan_soon;
    uint64_t last_scan_ms, last_save_ms;
    uint64_t nwatch;
    /* the chunk being appended to while one file's lines are processed */
    sp_chunk *chunk;
    size_t chunk_before;
    uint32_t chunk_n;
    /* metrics */
    uint64_t nfiles, lines, bytes_read, rotations, truncations, splits, incomplete;
    sp_ratelimit rl;
} sp_dl;

/* ---- files ---- */

static int sp__valid_id(const char *s)
{
    size_t i = 0;
    for (; s[i]; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return i == 64;
}

/* Reads up to SP_DL_FP_LEN bytes at 0; returns how many, with the hash of `want` of them. */
static uint32_t sp__fp(int fd, uint32_t want, uint64_t *hash, uint32_t *avail)
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

static void sp__file_fp(sp_dl_file *f)
{
    uint32_t avail;
    f->fp_len = sp__fp(f->fd, SP_DL_FP_LEN, &f->fp, &avail);
}

static sp_dl_file *sp__file_add(sp_dl *s, sp_dl_cont *c, int fd, const struct stat *st,
                                uint64_t off)
{
    sp_dl_file *f = sp_calloc(1, sizeof *f);
    f->cont = c;
    f->fd = fd;
    f->dev = (uint64_t)st->st_dev;
    f->ino = (uint64_t)st->st_ino;
    f->off = f->line_off = f->committed = off;
    sp_list_init(&f->watches);
    sp__file_fp(f);
    sp_list_insert_tail(&c->files, &f->link);
    s->nfiles++;
    return f;
}

static int sp__open(const char *path, struct stat *st)
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

static void sp__log_path(sp_dl *s, const sp_dl_cont *c, int n, char *buf, size_t cap)
{
    if (n)
        snprintf(buf, cap, "%s/%s/%s-json.log.%d", s->conf->path, c->id, c->id, n);
    else
        snprintf(buf, cap, "%s/%s/%s-json.log", s->conf->path, c->id, c->id);
}

static void sp__file_close(sp_dl *s, sp_dl_file *f)
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
static void sp__file_reap(sp_dl *s, sp_dl_file *f)
{
    if (f->fd >= 0 || !sp_list_empty(&f->watches)) return;
    for (int i = 0; i < 3; i++)
        if (f->cont->join[i].file == f) f->cont->join[i].file = NULL;
    if (f->cont->cur == f) f->cont->cur = NULL;
    sp_list_remove(&f->link);
    free(f);
    s->state_dirty = 1;
}

static void sp__truncated(sp_dl *s, sp_dl_file *f)
{
    s->truncations++;
    sp_log_limited(&s->rl, SP_LOG_WARN, "docker_logs: %.12s: log file shrank; reading it again",
                   f->cont->id);
    f->off = f->line_off = f->committed = 0;
    f->carry.len = 0;
    f->skipping = 0;
    f->gen++;
    f->idfp_set = 0;
    sp__file_fp(f);
    s->state_dirty = 1;
}

/* ---- records ---- */

static void sp__watch_cb(sp_chunk_watch *cw, sp_chunk *ch, int delivered);

static uint64_t sp__safe_offset(sp_dl_cont *c, sp_dl_file *f)
{
    uint64_t off = f->line_off;
    for (int i = 0; i < 3; i++)
        if (c->join[i].active && c->join[i].file == f && c->join[i].off < off) off = c->join[i].off;
    return off;
}

/* Ends the current append: a watcher carries the file offset the appended records end at. */
static void sp__batch_end(sp_dl *s, sp_dl_cont *c, sp_dl_file *f)
{
    sp_chunk *ch = s->chunk;
    if (!ch) return;
    s->chunk = NULL;
    if (!f) { /* a joined line whose file is gone: there is no offset to move */
        sp_router_commit(s->in->router, ch, s->chunk_before, s->chunk_n);
        return;
    }
    uint64_t end = sp__safe_offset(c, f);
    sp_dl_watch *last =
        sp_list_empty(&f->watches) ? NULL : sp_list_entry(f->watches.prev, sp_dl_watch, link);
    if (last && !last->fired && last->chunk_seq == ch->seq && last->gen == f->gen) {
        last->end = end;
    } else {
        sp_dl_watch *w = sp_calloc(1, sizeof *w);
        w->w.cb = sp__watch_cb;
        /* With the spool, a line is safe once its chunk is on disk (the spool replays it), so
         * the offset may move then; without it, only once every output has it. */
        w->w.durable = s->in->router->spool != NULL;
        w->f = f;
        w->end = end;
        w->chunk_seq = ch->seq;
        w->gen = f->gen;
        sp_list_insert_tail(&f->watches, &w->link);
        sp_chunk_watch_add(ch, &w->w);
        s->nwatch++;
    }
    /* The watcher goes on first: committing may close and release the chunk at once. */
    sp_router_commit(s->in->router, ch, s->chunk_before, s->chunk_n);
}

/* The hash of a file's first line (its first 256 bytes at most). The line carries a
 * nanosecond time, so it names the file's content: the same after a rename, after Docker
 * compressed it, and after a crash; a file with that content is complete up to there once any of
 * its lines is read. */
static uint64_t sp__idfp_of(const uint8_t *b, size_t n)
{
    const uint8_t *nl = memchr(b, '\n', n);
    uint8_t h[16];
    uint64_t x;
    sp_hash128(b, nl ? (size_t)(nl - b) + 1 : n, 0x69647370ULL, h);
    memcpy(&x, h, 8);
    return x;
}

static uint64_t sp__file_idfp(sp_dl_file *f)
{
    if (!f->idfp_set && !f->gz && f->fd >= 0) {
        uint8_t b[SP_DL_FP_LEN];
        ssize_t n = pread(f->fd, b, sizeof b, 0);
        f->idfp = sp__idfp_of(b, n > 0 ? (size_t)n : 0);
        f->idfp_set = 1;
    }
    return f->idfp;
}

/* Record id: (container, file content, byte offset of the line), so a re-read names it alike. */
static void sp__emit(sp_dl *s, sp_dl_cont *c, sp_dl_file *f, sp_record *r, uint64_t idfp,
                     uint64_t off)
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
    if (!s->chunk) {
        s->chunk = sp_router_chunk(s->in->router, sp_slice_make(c->tag, c->tag_len));
        s->chunk_before = s->chunk->data.len;
        s->chunk_n = 0;
    }
    sp_record_write(&s->chunk->data, r);
    s->chunk_n++;
    s->in->records++;
    if (s->chunk->data.len >= s->in->router->chunk_size) sp__batch_end(s, c, f);
}

static const sp_slice sp__streams[3] = {SP_SLICE_LIT("stdout"), SP_SLICE_LIT("stderr"),
                                        SP_SLICE_NULL};

/* Ships a joined line and resets its joiner. `f` is the file being read now. */
static void sp__join_emit(sp_dl *s, sp_dl_cont *c, sp_dl_file *f, int idx, uint32_t flags)
{
    sp_dl_join *j = &c->join[idx];
    sp_record r = {0};
    r.sec = j->sec;
    r.nsec = j->nsec;
    r.message = sp_buf_slice(&j->text);
    r.stream = sp__streams[idx];
    r.flags = flags;
    r.nextras = j->nattrs;
    r.extras = sp_buf_slice(&j->attrs);
    j->active = 0; /* before emitting: the safe offset no longer waits for it */
    if (flags & SP_REC_SPLIT) s->splits++;
    if (flags & SP_REC_INCOMPLETE) s->incomplete++;
    sp__emit(s, c, f ? f : j->file, &r, j->idfp, j->off);
    sp_router_hold(s->in->router, -(int64_t)j->text.len);
    j->text.len = 0;
}

static void sp__line(sp_dl *s, sp_dl_cont *c, sp_dl_file *f, const char *p, size_t len,
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
            j->idfp = sp__file_idfp(f);
            j->off = off;
            j->sec = l.sec;
            j->nsec = l.nsec;
            j->since_ms = uv_now(s->in->loop);
            j->text.len = j->attrs.len = 0;
            sp_buf_append(&j->attrs, s->attrs.base, s->attrs.len);
            j->nattrs = l.nattrs;
        }
        sp_buf_append(&j->text, l.log.base, l.log.len);
        sp_router_hold(s->in->router, (int64_t)l.log.len);
        if (!l.partial)
            sp__join_emit(s, c, f, idx, 0);
        else if (j->text.len >= s->conf->max_line_size)
            sp__join_emit(s, c, f, idx, SP_REC_SPLIT);
        return;
    }
    sp_record r = {0};
    r.sec = l.sec;
    r.nsec = l.nsec;
    r.message = l.log;
    r.stream = l.stream;
    r.nextras = l.nattrs;
    r.extras = sp_buf_slice(&s->attrs);
    sp__emit(s, c, f, &r, sp__file_idfp(f), off);
}

/* Processes the complete lines of buf; the unfinished rest becomes the file's carry. */
static void sp__lines(sp_dl *s, sp_dl_cont *c, sp_dl_file *f, const char *buf, size_t len)
{
    const char *p = buf, *end = buf + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) break;
        uint64_t off = f->line_off;
        f->line_off += (uint64_t)(nl + 1 - p);
        if (f->skipping)
            f->skipping = 0;
        else
            sp__line(s, c, f, p, (size_t)(nl - p), off);
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
    sp__batch_end(s, c, f);
}

/* One slice of `f`: > 0 bytes read, 0 at its end, < 0 on error. */
static ssize_t sp__read_slice(sp_dl *s, sp_dl_cont *c, sp_dl_file *f)
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
    sp__lines(s, c, f, s->rbuf, carry + (size_t)n);
    return n;
}

/* ---- containers ---- */

static void sp__cont_name(sp_dl *s, sp_dl_cont *c)
{
    char name[256];
    size_t n = sp_meta_name(sp_slice_make(c->id, 64), name, sizeof name);
    c->named = n > 0;
    if (!n) n = (size_t)snprintf(name, sizeof name, "%.12s", c->id);
    size_t plen = strlen(s->conf->tag_prefix);
    if (c->tag && c->tag_len == plen + n && memcmp(c->tag + plen, name, n) == 0) return;
    free(c->tag);
    c->tag = sp_malloc(plen + n + 1);
    memcpy(c->tag, s->conf->tag_prefix, plen);
    memcpy(c->tag + plen, name, n);
    c->tag[plen + n] = 0;
    c->tag_len = plen + n;
    c->prefix_len = plen;
}

static const sp_offset *sp__saved(sp_dl *s, const char *id)
{
    for (size_t i = 0; i < s->nsaved; i++)
        if (strcmp(s->saved[i].id, id) == 0) return &s->saved[i];
    return NULL;
}

/* Startup with a saved position: find the file it names (maybe rotated since) and queue it
 * and every newer one. Returns 1 when found. */
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
static int sp__cand_open(sp_dl *s, sp_dl_cont *c, int i, sp_dl_cand *k)
{
    char path[4096];
    memset(k, 0, sizeof *k);
    sp__log_path(s, c, i, path, sizeof path);
    if ((k->fd = sp__open(path, &k->st)) >= 0) {
        ssize_t n = pread(k->fd, k->head, sizeof k->head, 0);
        k->nhead = n > 0 ? (uint32_t)n : 0;
        return 0;
    }
    if (i == 0) return -1;
    strncat(path, ".gz", sizeof path - strlen(path) - 1);
    if ((k->fd = sp__open(path, &k->st)) < 0) return -1;
    if (!(k->gz = gzdopen(k->fd, "rb"))) {
        close(k->fd);
        return -1;
    }
    int n = gzread(k->gz, k->head, sizeof k->head);
    k->nhead = n > 0 ? (uint32_t)n : 0;
    gzrewind(k->gz);
    return 0;
}

static void sp__cand_close(sp_dl_cand *k)
{
    if (k->gz)
        gzclose(k->gz);
    else if (k->fd >= 0)
        close(k->fd);
    k->gz = NULL;
    k->fd = -1;
}

/* Is the candidate the file with this identity? (dev, ino) and the fingerprint, or for a
 * compressed copy of a file we know, the fingerprint alone. */
static int sp__cand_is(const sp_dl_cand *k, uint64_t dev, uint64_t ino, uint64_t fp,
                       uint32_t fp_len, int by_content)
{
    if (fp_len > k->nhead) return 0;
    uint8_t h[16];
    uint64_t x;
    sp_hash128(k->head, fp_len, 0x6a736f6e66696c65ULL, h);
    memcpy(&x, h, 8);
    if (x != fp) return 0;
    if ((uint64_t)k->st.st_dev == dev && (uint64_t)k->st.st_ino == ino) return 1;
    return by_content && fp_len > 0;
}

static sp_dl_file *sp__cand_add(sp_dl *s, sp_dl_cont *c, sp_dl_cand *k, uint64_t off)
{
    sp_dl_file *f = sp__file_add(s, c, k->fd, &k->st, off);
    if (k->gz) {
        f->gz = k->gz;
        uint8_t h[16];
        sp_hash128(k->head, k->nhead, 0x6a736f6e66696c65ULL, h);
        memcpy(&f->fp, h, 8);
        f->fp_len = k->nhead;
        f->idfp = sp__idfp_of(k->head, k->nhead);
        f->idfp_set = 1;
        if (off && gzseek(f->gz, (z_off_t)off, SEEK_SET) < 0) {
            f->off = f->line_off = f->committed = 0;
            gzrewind(f->gz);
        }
    }
    k->fd = -1;
    k->gz = NULL;
    return f;
}

/* Startup with a saved position: find the file it names (maybe rotated, even compressed, since)
 * and queue it and every newer one. Returns 1 when found. */
static int sp__resume_saved(sp_dl *s, sp_dl_cont *c, const sp_offset *o)
{
    sp_dl_cand k;
    int at = -1;
    for (int i = 0; i <= SP_DL_MAX_ROTATED && at < 0; i++) {
        if (sp__cand_open(s, c, i, &k)) {
            if (i > 0) break;
            continue;
        }
        if (sp__cand_is(&k, o->dev, o->ino, o->fp, o->fp_len, 0))
            at = i;
        else
            sp__cand_close(&k);
    }
    if (at < 0) return 0;
    uint64_t off = o->offset;
    if (!k.gz && (uint64_t)k.st.st_size < off) {
        s->truncations++;
        off = 0;
    }
    sp_dl_file *f = sp__cand_add(s, c, &k, off);
    if (at == 0) {
        c->cur = f;
        return 1;
    }
    f->rotated = 1;
    for (int i = at - 1; i >= 0; i--) {
        if (sp__cand_open(s, c, i, &k)) continue;
        f = sp__cand_add(s, c, &k, 0);
        if (i == 0)
            c->cur = f;
        else
            f->rotated = 1;
    }
    return 1;
}

static void sp__check(sp_dl *s, sp_dl_cont *c);
static void sp__pump_start(sp_dl *s);

/*
 * Rotation must be seen at once: a container that logs fast rotates a small file several times
 * a second, and a file never opened is deleted with its lines once max-file is reached. A
 * rename or create in the directory checks the container now; a write just wakes the reader.
 */
static void sp__cont_ev_cb(uv_fs_event_t *h, const char *name, int events, int status)
{
    sp_dl_cont *c = h->data;
    sp_dl *s = c->s;
    if (s->stopping) return;
    if ((events & UV_RENAME) || !c->cur) sp__check(s, c);
    sp__pump_start(s);
}

static sp_dl_cont *sp__cont_add(sp_dl *s, const char *id, int startup)
{
    sp_dl_cont *c = sp_calloc(1, sizeof *c);
    memcpy(c->id, id, 64);
    c->s = s;
    c->found_ms = uv_now(s->in->loop);
    sp_list_init(&c->files);
    sp_list_insert_tail(&s->conts, &c->link);
    sp__cont_name(s, c);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", s->conf->path, c->id);
    uv_fs_event_init(s->in->loop, &c->ev);
    c->ev.data = c;
    c->ev_on = 1;
    if (uv_fs_event_start(&c->ev, sp__cont_ev_cb, dir, 0)) uv_fs_event_stop(&c->ev);
    const sp_offset *o = startup ? sp__saved(s, id) : NULL;
    if (o && sp__resume_saved(s, c, o)) return c;
    if (o)
        sp_warn("docker_logs: %.12s: the file of the saved offset is gone; reading the log "
                "from its start",
                id);
    char path[4096];
    struct stat st;
    sp__log_path(s, c, 0, path, sizeof path);
    int fd = sp__open(path, &st);
    if (fd >= 0) {
        uint64_t off =
            startup && !o && s->conf->read_from == SP_FROM_END ? (uint64_t)st.st_size : 0;
        c->cur = sp__file_add(s, c, fd, &st, off);
    }
    s->state_dirty = 1;
    return c;
}

static void sp__cont_freed(uv_handle_t *h)
{
    free(h->data);
}

static void sp__cont_free(sp_dl *s, sp_dl_cont *c)
{
    for (int i = 0; i < 3; i++) {
        if (c->join[i].active) sp_router_hold(s->in->router, -(int64_t)c->join[i].text.len);
        sp_buf_free(&c->join[i].text);
        sp_buf_free(&c->join[i].attrs);
    }
    sp_list_remove(&c->link);
    free(c->tag);
    c->tag = NULL;
    if (c->ev_on) {
        c->ev_on = 0;
        uv_close((uv_handle_t *)&c->ev, sp__cont_freed);
    } else {
        free(c);
    }
}

static void sp__scan(sp_dl *s, int startup)
{
    s->last_scan_ms = uv_now(s->in->loop);
    s->rescan_soon = 0;
    DIR *d = opendir(s->conf->path);
    if (!d) {
        sp_log_limited(&s->rl, SP_LOG_WARN, "docker_logs: cannot read %s: %s", s->conf->path,
                       strerror(errno));
        return;
    }
    sp_list *it;
    sp_list_foreach(it, &s->conts) sp_list_entry(it, sp_dl_cont, link)->seen = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!sp__valid_id(e->d_name)) continue;
        sp_dl_cont *c = NULL;
        sp_list_foreach(it, &s->conts)
        {
            sp_dl_cont *x = sp_list_entry(it, sp_dl_cont, link);
            if (memcmp(x->id, e->d_name, 64) == 0) {
                c = x;
                break;
            }
        }
        if (!c)
            c = sp__cont_add(s, e->d_name, startup);
        else
            sp__cont_name(s, c);
        c->seen = 1;
    }
    closedir(d);
    sp_list_foreach(it, &s->conts)
    {
        sp_dl_cont *c = sp_list_entry(it, sp_dl_cont, link);
        if (!c->seen) c->removed = 1;
    }
}

/* Growth, rotation and truncation of one container's current file. */
/*
 * `old` (the file we read as current) was rotated away. If Docker rotated more than once before
 * we looked, the files between it and the new current are `.k-1` ... `.1` where `old` is now `.k`
 * (all of them when `old` is already deleted): open them, oldest first, so none is skipped —
 * through zlib when Docker has compressed them already (compress=true).
 */
static void sp__missed_rotations(sp_dl *s, sp_dl_cont *c, sp_dl_file *old)
{
    sp_dl_cand k;
    int at = 0, last = 0;
    for (int i = 1; i <= SP_DL_MAX_ROTATED; i++) {
        if (sp__cand_open(s, c, i, &k)) break;
        last = i;
        int is_old = sp__cand_is(&k, old->dev, old->ino, old->fp, old->fp_len, 1);
        sp__cand_close(&k);
        if (is_old) {
            at = i;
            break;
        }
    }
    for (int i = at ? at - 1 : last; i >= 1; i--) {
        if (sp__cand_open(s, c, i, &k)) continue;
        int known = 0;
        sp_list *it;
        sp_list_foreach(it, &c->files)
        {
            sp_dl_file *f = sp_list_entry(it, sp_dl_file, link);
            known |= sp__cand_is(&k, f->dev, f->ino, f->fp, f->fp_len, 1);
        }
        if (known) {
            sp__cand_close(&k);
            continue;
        }
        sp_dl_file *f = sp__cand_add(s, c, &k, 0);
        f->rotated = 1;
        s->rotations++;
    }
}

static void sp__check(sp_dl *s, sp_dl_cont *c)
{
    char path[4096];
    struct stat st;
    sp__log_path(s, c, 0, path, sizeof path);
    if (stat(path, &st) != 0) {
        if (c->cur) { /* renamed away, or the container is gone: finish it */
            c->cur->rotated = 1;
            if (!c->removed) sp__missed_rotations(s, c, c->cur);
            c->cur = NULL;
            if (!c->removed) s->rotations++;
        }
        return;
    }
    sp_dl_file *f = c->cur;
    if (f && f->dev == (uint64_t)st.st_dev && f->ino == (uint64_t)st.st_ino) {
        uint64_t h;
        uint32_t avail;
        if ((uint64_t)st.st_size < f->off || sp__fp(f->fd, f->fp_len, &h, &avail) != f->fp_len ||
            h != f->fp)
            sp__truncated(s, f);
        else if (f->fp_len < SP_DL_FP_LEN && avail > f->fp_len)
            sp__file_fp(f);
        return;
    }
    if (f) {
        f->rotated = 1;
        s->rotations++;
        sp__missed_rotations(s, c, f);
    }
    c->cur = NULL;
    int fd = sp__open(path, &st);
    if (fd >= 0) c->cur = sp__file_add(s, c, fd, &st, 0);
}

/* ---- offsets ---- */

static void sp__save(sp_dl *s)
{
    if (!s->offsets_path) return;
    sp_offset *v = NULL;
    size_t n = 0, cap = 0;
    sp_list *it;
    sp_list_foreach(it, &s->conts)
    {
        sp_dl_cont *c = sp_list_entry(it, sp_dl_cont, link);
        if (sp_list_empty(&c->files)) continue;
        /* The oldest file with records not yet released; if there is none, the newest. A
         * restart resumes there and reads every newer file from its start. */
        sp_dl_file *f = NULL;
        sp_list *fi;
        sp_list_foreach(fi, &c->files)
        {
            f = sp_list_entry(fi, sp_dl_file, link);
            if (!f->done || !sp_list_empty(&f->watches)) break;
        }
        if (n == cap) v = sp_realloc(v, (cap = cap ? cap * 2 : 16) * sizeof *v);
        sp_offset *o = &v[n++];
        memcpy(o->id, c->id, 65);
        o->dev = f->dev;
        o->ino = f->ino;
        o->fp = f->fp;
        o->fp_len = f->fp_len;
        o->offset = f->committed;
    }
    int rc = sp_offsets_save(s->offsets_path, v, n);
    if (rc)
        sp_log_limited(&s->rl, SP_LOG_ERROR, "docker_logs: cannot write %s: %s", s->offsets_path,
                       strerror(-rc));
    free(v);
    s->state_dirty = 0;
    s->last_save_ms = uv_now(s->in->loop);
}

static void sp__free(sp_dl *s);

static void sp__watch_cb(sp_chunk_watch *cw, sp_chunk *ch, int delivered)
{
    sp_dl_watch *w = sp_list_entry(cw, sp_dl_watch, w);
    sp_dl_file *f = w->f;
    sp_dl *s = f->cont->s;
    w->fired = 1;
    w->delivered = delivered;
    /* Offsets move in order: a chunk released early waits for the ones before it. An
     * undelivered chunk (dropped at shutdown) holds the offset where it is for good. */
    while (!sp_list_empty(&f->watches)) {
        sp_dl_watch *h = sp_list_entry(f->watches.next, sp_dl_watch, link);
        if (!h->fired || !h->delivered) break;
        if (h->gen == f->gen && h->end > f->committed) f->committed = h->end;
        sp_list_remove(&h->link);
        free(h);
        s->nwatch--;
        s->state_dirty = 1;
    }
    if (!s->stopping) return;
    /* Stopping: the poll timer is gone, and every release may be the last one. */
    if (s->state_dirty) sp__save(s);
    if (s->nwatch == 0 && s->in->closed) sp__free(s);
}

/* ---- the loop side ---- */

static void sp__pump_cb(uv_idle_t *h);

static void sp__pump_start(sp_dl *s)
{
    if (s->pumping || s->paused || s->stopping) return;
    s->pumping = 1;
    uv_idle_start(&s->pump, sp__pump_cb);
}

static void sp__pump_stop(sp_dl *s)
{
    if (!s->pumping) return;
    s->pumping = 0;
    uv_idle_stop(&s->pump);
}

/* Reads one slice of the container's oldest unfinished file; returns bytes read. */
static size_t sp__pump_cont(sp_dl *s, sp_dl_cont *c)
{
    /* Docker writes config.v2.json around the time it makes the directory: lines are not
     * tagged before the name is known, unless it stays unknown (unreadable config) for 2 s. */
    if (!c->named && uv_now(s->in->loop) - c->found_ms < SP_DL_RESCAN_MS) {
        sp__cont_name(s, c);
        if (!c->named) return 0;
    }
    sp_list *it, *tmp;
    sp_list_foreach_safe(it, tmp, &c->files)
    {
        sp_dl_file *f = sp_list_entry(it, sp_dl_file, link);
        if (f->fd < 0) continue;
        ssize_t n = sp__read_slice(s, c, f);
        if (n > 0) return (size_t)n;
        if (n < 0) { /* tried again at the next poll */
            sp_log_limited(&s->rl, SP_LOG_WARN, "docker_logs: %.12s: read: %s", c->id,
                           strerror((int)-n));
            return 0;
        }
        if (!f->rotated) return 0;
        /* A rotated file read to its end is finished; the next one comes now. */
        if (c->cur == f) c->cur = NULL;
        sp__file_close(s, f);
        sp__file_reap(s, f);
    }
    return 0;
}

static void sp__pump_cb(uv_idle_t *h)
{
    sp_dl *s = h->data;
    size_t total = 0;
    int progress = 0;
    /* Round robin: containers read this time go to the back of the list. */
    size_t n = 0;
    sp_list *it;
    sp_list_foreach(it, &s->conts) n++;
    for (size_t i = 0; i < n && !s->paused && !s->stopping && total < SP_DL_BUDGET; i++) {
        sp_dl_cont *c = sp_list_entry(s->conts.next, sp_dl_cont, link);
        size_t got = sp__pump_cont(s, c);
        sp_list_remove(&c->link);
        sp_list_insert_tail(&s->conts, &c->link);
        total += got;
        progress |= got > 0;
    }
    if (!progress || s->paused || s->stopping) sp__pump_stop(s);
}

static void sp__poll_cb(uv_timer_t *t)
{
    sp_dl *s = t->data;
    uint64_t now = uv_now(s->in->loop);
    if (s->rescan_soon || now - s->last_scan_ms >= SP_DL_RESCAN_MS) sp__scan(s, 0);
    sp_list *it, *tmp;
    sp_list_foreach_safe(it, tmp, &s->conts)
    {
        sp_dl_cont *c = sp_list_entry(it, sp_dl_cont, link);
        sp__check(s, c);
        for (int i = 0; i < 3; i++) {
            sp_dl_join *j = &c->join[i];
            if (j->active && now - j->since_ms >= s->conf->partial_timeout) {
                sp__join_emit(s, c, NULL, i, SP_REC_INCOMPLETE);
                sp__batch_end(s, c, j->file);
            }
        }
        sp_list *fi, *ftmp;
        sp_list_foreach_safe(fi, ftmp, &c->files)
            sp__file_reap(s, sp_list_entry(fi, sp_dl_file, link));
        if (c->removed && sp_list_empty(&c->files)) {
            int busy = 0;
            for (int i = 0; i < 3; i++)
                busy |= c->join[i].active;
            if (!busy) {
                sp__cont_free(s, c);
                s->state_dirty = 1;
            }
        }
    }
    if (s->state_dirty && now - s->last_save_ms >= SP_DL_SAVE_MS) sp__save(s);
    sp__pump_start(s);
}

static void sp__fsev_cb(uv_fs_event_t *h, const char *name, int events, int status)
{
    sp_dl *s = h->data;
    /* A new container may log (and rotate) at once: scan now, but once per burst of events. */
    if (uv_now(s->in->loop) - s->last_scan_ms >= 20)
        sp__scan(s, 0);
    else
        s->rescan_soon = 1;
    sp__pump_start(s);
}

static int sp__start(sp_input *in)
{
    sp_dl_conf *conf = in->conf;
    sp_dl *s = sp_calloc(1, sizeof *s);
    in->data = s;
    s->in = in;
    s->conf = conf;
    sp_list_init(&s->conts);
    s->rbuf = sp_malloc(SP_DL_SLICE + SP_DL_MAX_RAW);
    if (sp_meta_add_dir(conf->path))
        sp_warn("docker_logs: %s is not readable: no container names or labels", conf->path);
    if (in->state_dir) {
        sp_buf p = {0};
        sp_buf_printf(&p, "%s/%s.offsets", in->state_dir, in->name);
        sp_buf_putc(&p, 0);
        s->offsets_path = p.base;
        int rc = sp_offsets_load(s->offsets_path, &s->saved, &s->nsaved);
        if (rc) {
            sp_error("docker_logs: cannot read %s: %s", s->offsets_path, strerror(-rc));
            return rc;
        }
    }
    sp__scan(s, 1);
    free(s->saved);
    s->saved = NULL;
    s->nsaved = 0;
    uv_timer_init(in->loop, &s->poll);
    uv_idle_init(in->loop, &s->pump);
    uv_fs_event_init(in->loop, &s->fsev);
    s->poll.data = s->pump.data = s->fsev.data = s;
    s->handles = 3;
    int rc = uv_fs_event_start(&s->fsev, sp__fsev_cb, conf->path, 0);
    if (rc)
        sp_warn("docker_logs: cannot watch %s (%s): new containers are found by rescans",
                conf->path, uv_strerror(rc));
    uint64_t iv = conf->poll_interval ? conf->poll_interval : 1;
    uv_timer_start(&s->poll, sp__poll_cb, iv, iv);
    sp__pump_start(s);
    sp_info("docker_logs: watching %s (%llu files open)", conf->path,
            (unsigned long long)s->nfiles);
    return 0;
}

static void sp__pause(sp_input *in)
{
    sp_dl *s = in->data;
    s->paused = 1;
    sp__pump_stop(s);
}

static void sp__resume(sp_input *in)
{
    sp_dl *s = in->data;
    s->paused = 0;
    sp__pump_start(s);
}

static void sp__free(sp_dl *s)
{
    while (!sp_list_empty(&s->conts)) {
        sp_dl_cont *c = sp_list_entry(s->conts.next, sp_dl_cont, link);
        while (!sp_list_empty(&c->files)) {
            sp_dl_file *f = sp_list_entry(c->files.next, sp_dl_file, link);
            sp_list_remove(&f->link);
            sp_buf_free(&f->carry);
            free(f);
        }
        sp__cont_free(s, c);
    }
    sp_buf_free(&s->scratch);
    sp_buf_free(&s->attrs);
    free(s->rbuf);
    free(s->offsets_path);
    s->in->data = NULL;
    free(s);
}

static void sp__closed_step(sp_dl *s)
{
    if (--s->handles > 0) return;
    sp_list *it;
    sp_list_foreach(it, &s->conts)
    {
        sp_dl_cont *c = sp_list_entry(it, sp_dl_cont, link);
        sp_list *fi;
        sp_list_foreach(fi, &c->files)
        {
            sp_dl_file *f = sp_list_entry(fi, sp_dl_file, link);
            if (f->fd < 0) continue;
            if (f->gz)
                gzclose(f->gz);
            else
                close(f->fd);
            f->gz = NULL;
            f->fd = -1;
            s->nfiles--;
        }
    }
    sp_input *in = s->in;
    sp__save(s);
    /* Freed here only if no chunk holds a watcher; else by the last watcher to fire. Before
     * sp_input_closed: that may close the router and fire watchers. */
    if (s->nwatch == 0) sp__free(s);
    sp_input_closed(in);
}

static void sp__handle_closed(uv_handle_t *h)
{
    sp__closed_step(h->data);
}

static void sp__cont_ev_closed(uv_handle_t *h)
{
    sp__closed_step(((sp_dl_cont *)h->data)->s);
}

static void sp__stop(sp_input *in)
{
    sp_dl *s = in->data;
    if (!s) {
        sp_input_closed(in);
        return;
    }
    /* Lines still being joined are shipped as they are (flagged): nothing read is lost. */
    sp_list *it;
    sp_list_foreach(it, &s->conts)
    {
        sp_dl_cont *c = sp_list_entry(it, sp_dl_cont, link);
        for (int i = 0; i < 3; i++) {
            if (!c->join[i].active) continue;
            sp__join_emit(s, c, NULL, i, SP_REC_INCOMPLETE);
            sp__batch_end(s, c, c->join[i].file);
        }
    }
    s->stopping = 1;
    sp__pump_stop(s);
    uv_close((uv_handle_t *)&s->poll, sp__handle_closed);
    uv_close((uv_handle_t *)&s->pump, sp__handle_closed);
    uv_close((uv_handle_t *)&s->fsev, sp__handle_closed);
    sp_list_foreach(it, &s->conts)
    {
        sp_dl_cont *c = sp_list_entry(it, sp_dl_cont, link);
        if (!c->ev_on) continue;
        c->ev_on = 0;
        s->handles++;
        uv_close((uv_handle_t *)&c->ev, sp__cont_ev_closed);
    }
}

static void sp__metrics(sp_input *in, sp_buf *out)
{
    sp_dl *s = in->data;
    if (!s) return;
    const char *n = in->name;
    sp_buf_printf(out, "shipper_tail_files{input=\"%s\"} %llu\n", n, (unsigned long long)s->nfiles);
    sp_buf_printf(out, "shipper_tail_bytes_total{input=\"%s\"} %llu\n", n,
                  (unsigned long long)s->bytes_read);
    sp_buf_printf(out, "shipper_tail_lines_total{input=\"%s\"} %llu\n", n,
                  (unsigned long long)s->lines);
    sp_buf_printf(out, "shipper_tail_rotations_total{input=\"%s\"} %llu\n", n,
                  (unsigned long long)s->rotations);
    sp_buf_printf(out, "shipper_tail_truncations_total{input=\"%s\"} %llu\n", n,
                  (unsigned long long)s->truncations);
    sp_buf_printf(out, "shipper_tail_split_lines_total{input=\"%s\"} %llu\n", n,
                  (unsigned long long)s->splits);
    sp_buf_printf(out, "shipper_tail_incomplete_lines_total{input=\"%s\"} %llu\n", n,
                  (unsigned long long)s->incomplete);
}

const sp_input_type sp_input_docker_logs = {
    .name = "docker_logs",
    .fields = sp__dl_fields,
    .conf_size = sizeof(sp_dl_conf),
    .start = sp__start,
    .pause = sp__pause,
    .resume = sp__resume,
    .stop = sp__stop,
    .metrics = sp__metrics,
};
