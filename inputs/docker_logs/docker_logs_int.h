/*
 * The docker_logs input's private header: the state shared by docker_logs.c (settings, discovery,
 * the loop side), docker_logs_file.c (opening, reading, rotation and truncation) and
 * docker_logs_offsets.c (chunk watchers that advance offsets, the offsets store).
 */
#ifndef SP_DOCKER_LOGS_INT_H
#define SP_DOCKER_LOGS_INT_H

#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <zlib.h>

#include "log.h"
#include "offsets.h"
#include "record.h"
#include "input.h"

enum { SP_FROM_END, SP_FROM_START };

typedef struct {
    char *path;
    char *tag_prefix;
    int read_from;
    uint64_t max_line_size;
    uint64_t partial_timeout;
    uint64_t poll_interval;
} sp_dl_conf;

#define SP_DL_SLICE (1 << 20)    /* one read */
#define SP_DL_MAX_RAW (1 << 20)  /* one json-file line; longer is skipped (corrupt) */
#define SP_DL_BUDGET (4 << 20)   /* bytes read per loop iteration, across files */
#define SP_DL_FP_LEN 256         /* identity fingerprint: hash of the first bytes */
#define SP_DL_IDFP_MAX (1 << 20) /* record ids: a file's first line is hashed up to this */
#define SP_DL_RESCAN_MS 2000     /* safety-net directory rescan */
#define SP_DL_SAVE_MS 1000       /* offsets written at most this often */
#define SP_DL_MAX_ROTATED 64     /* <id>-json.log.N looked at when resuming */

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
    uint64_t idfp; /* hash of its first line: names its records (sp_dl_file_idfp) */
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

/* Lines of one stream a filter holds (a multiline group): the offset may not pass the first one
 * (docs/docker_logs.md, "Offsets"). One per (container, stream), as the filter's groups are. */
typedef struct {
    sp_hold h;
    struct sp_dl_cont *c;
    sp_dl_file *file; /* where the first held line is, while refs */
    uint64_t off;     /* ...its offset */
    uint32_t refs;    /* held lines */
} sp_dl_hold;

typedef struct sp_dl_cont {
    sp_list link;
    struct sp_dl *s;
    sp_source src; /* fair backpressure: the router may pause this container's files alone */
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
    sp_dl_hold hold[3]; /* lines of each a filter holds */
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
    uint64_t nwatch; /* offset watchers and held lines: the state is freed when both are gone */
    sp_dl_file *add_file; /* the line being appended now (sp_dl_hold's take) */
    uint64_t add_off;
    /* the records appended while one file's lines are processed, committed together */
    sp_input_batch batch;
    /* metrics */
    uint64_t nfiles, lines, bytes_read, rotations, truncations, splits, incomplete;
    uint64_t lost_files; /* saved files deleted before they were read to the end */
    sp_ratelimit rl;
} sp_dl;

/* ---- docker_logs.c ---- */

/** Frees the input's state: every container and file, the buffers, `s` itself. */
void sp_dl_free(sp_dl *s);

/* ---- docker_logs_file.c ---- */

/** Opens `path` read-only and fstats it: returns the fd, or -errno. */
int sp_dl_open(const char *path, struct stat *st);
/** Writes the path of the container's log file: rotation n (`.n`), or with n = 0 the current. */
void sp_dl_log_path(sp_dl *s, const sp_dl_cont *c, int n, char *buf, size_t cap);
/** Appends an open file (read from `off`) to the container's files, newest last. */
sp_dl_file *sp_dl_file_add(sp_dl *s, sp_dl_cont *c, int fd, const struct stat *st, uint64_t off);
/** Closes a file read to its end (an unfinished last line is counted as truncated). */
void sp_dl_file_close(sp_dl *s, sp_dl_file *f);
/** Forgets a closed file whose records are all released; else does nothing. */
void sp_dl_file_reap(sp_dl *s, sp_dl_file *f);
/** Grows the short fingerprints of a container's open files (see docker_logs_file.c). */
void sp_dl_files_fp_grow(sp_dl_cont *c);
/** Ships stream idx's joined line (flagged) and resets its joiner; `f`: the file read now. */
void sp_dl_join_emit(sp_dl *s, sp_dl_cont *c, sp_dl_file *f, int idx, uint32_t flags);
/** Reads and processes one slice of `f`: > 0 bytes read, 0 at its end, -errno on error. */
ssize_t sp_dl_read_slice(sp_dl *s, sp_dl_cont *c, sp_dl_file *f);
/**
 * At startup, queues the file of a saved offset and every newer one; if it is gone, every file
 * still on disk (counted as lost). Returns 1 if it was found.
 */
int sp_dl_resume_saved(sp_dl *s, sp_dl_cont *c, const sp_offset *o);
/** Growth, rotation and truncation of one container's current file. */
void sp_dl_check(sp_dl *s, sp_dl_cont *c);

/* ---- docker_logs_offsets.c ---- */

/** Ends the current append: a watcher on the chunk carries the offset `f`'s records end at. */
void sp_dl_batch_end(sp_dl *s, sp_dl_cont *c, sp_dl_file *f);
/** Sets up c->hold (held lines of each stream). */
void sp_dl_hold_init(sp_dl_cont *c);
/** Whether a filter holds a line of `f` (its offset must stay before it). */
int sp_dl_held(const sp_dl_file *f);
/** Writes every container's committed offset to the offsets store (if there is one). */
void sp_dl_save(sp_dl *s);
/** The saved offset of container `id` loaded at startup, or NULL. */
const sp_offset *sp_dl_saved(sp_dl *s, const char *id);

#endif
