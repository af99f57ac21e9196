/*
 * Container metadata from Docker's own files: `<containers dir>/<id>/config.v2.json`, parsed with
 * jansson (its nested objects have `Name` keys too, so it is parsed, never grepped). Entries are
 * loaded on first use and revalidated at most every two seconds by stat: Docker rewrites the
 * file by rename, so a new inode, mtime or size means reload. Unknown containers are cached as
 * such for the same time, so a record stream from a container without a readable directory costs
 * one stat per two seconds, not one per record.
 *
 * Lookups come from encoder worker threads: a rwlock guards the table, and the file I/O happens
 * outside it.
 */
#include "meta.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "docker_api.h"
#include "json.h"

#define SP_META_BUCKETS 1024
#define SP_META_MAX_ENTRIES 65536
#define SP_META_MAX_DIRS 8
#define SP_META_RECHECK_NS (2ULL * 1000 * 1000 * 1000)
#define SP_META_MAX_FILE (4 << 20) /* a config.v2.json is a few KiB; refuse absurd ones */
#define SP_META_API_REQUESTS 4     /* Engine API calls at once (prefetch runs two) */

typedef struct sp_meta_ent {
    struct sp_meta_ent *next;
    char id[65];
    int found;
    char *name;
    char *json; /* the members appended to a container object */
    size_t json_len;
    char *image;       /* Config.Image, or NULL */
    char *labels;      /* Config.Labels as key NUL value NUL ..., nlabels pairs */
    size_t nlabels;
    ino_t ino;
    int64_t mtime_ns;
    off_t size;
    uint64_t checked_ns;
} sp_meta_ent;

static pthread_rwlock_t sp_meta_lock = PTHREAD_RWLOCK_INITIALIZER;
static sp_meta_ent *sp_meta_buckets[SP_META_BUCKETS];
static size_t sp_meta_nentries;
static char *sp_meta_dirs[SP_META_MAX_DIRS];
static int sp_meta_ndirs;

/* Bumped by every change, so per-thread caches of lookups know when to look again. */
static _Atomic uint64_t sp_meta_gen;

static void sp_meta_wrlock(void)
{
    pthread_rwlock_wrlock(&sp_meta_lock);
    sp_meta_gen++;
}

static int sp_meta_valid_id(sp_slice id)
{
    if (id.len != 64) return 0;
    for (size_t i = 0; i < 64; i++) {
        char c = id.base[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return 0;
    }
    return 1;
}

/* A hash of the 64 id bytes, a word at a time: it runs for every record whose container differs
 * from the previous one, so a byte loop of dependent multiplies is too slow. */
static uint64_t sp_meta_hash(const char *id)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < 8; i++) {
        uint64_t w;
        memcpy(&w, id + i * 8, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        h ^= h >> 29;
    }
    return h;
}

static size_t sp_meta_bucket(sp_slice id)
{
    return (size_t)(sp_meta_hash(id.base) % SP_META_BUCKETS);
}

static sp_meta_ent *sp_meta_find(sp_slice id)
{
    for (sp_meta_ent *e = sp_meta_buckets[sp_meta_bucket(id)]; e; e = e->next)
        if (memcmp(e->id, id.base, 64) == 0) return e;
    return NULL;
}

static void sp_meta_ent_free(sp_meta_ent *e)
{
    free(e->name);
    free(e->json);
    free(e->image);
    free(e->labels);
    free(e);
}

static void sp_meta_clear(void)
{
    for (size_t i = 0; i < SP_META_BUCKETS; i++) {
        while (sp_meta_buckets[i]) {
            sp_meta_ent *e = sp_meta_buckets[i];
            sp_meta_buckets[i] = e->next;
            sp_meta_ent_free(e);
        }
    }
    sp_meta_nentries = 0;
}

int sp_meta_add_dir(const char *dir)
{
    if (access(dir, R_OK | X_OK) != 0) return -errno;
    sp_meta_wrlock();
    int dup = 0;
    for (int i = 0; i < sp_meta_ndirs; i++)
        dup |= strcmp(sp_meta_dirs[i], dir) == 0;
    if (!dup && sp_meta_ndirs < SP_META_MAX_DIRS)
        sp_meta_dirs[sp_meta_ndirs++] = sp_strndup(dir, strlen(dir));
    pthread_rwlock_unlock(&sp_meta_lock);
    return 0;
}

void sp_meta_reset(void)
{
    sp_meta_wrlock();
    sp_meta_clear();
    for (int i = 0; i < sp_meta_ndirs; i++)
        free(sp_meta_dirs[i]);
    sp_meta_ndirs = 0;
    pthread_rwlock_unlock(&sp_meta_lock);
}

/* Fills `e` from config.v2.json; e->found stays 0 when the file is missing or unusable. */
/* Fills `e` from a container's JSON: config.v2.json and the Engine API's
 * GET /containers/{id}/json share the members we read (Name, Config.Image, Config.Labels). */
static void sp_meta_load_json(sp_meta_ent *e, json_t *root)
{
    if (!json_is_object(root)) {
        json_decref(root);
        return;
    }
    const char *name = json_string_value(json_object_get(root, "Name"));
    json_t *cfg = json_object_get(root, "Config");
    const char *image = json_string_value(json_object_get(cfg, "Image"));
    json_t *labels = json_object_get(cfg, "Labels");
    if (name && name[0] == '/') name++;
    e->name = name ? sp_strndup(name, strlen(name)) : NULL;
    e->image = image ? sp_strndup(image, strlen(image)) : NULL;
    sp_buf b = {0}, lb = {0};
    if (image) {
        SP_BUF_LIT(&b, ",\"image\":{\"name\":");
        sp_json_str(&b, image, strlen(image));
        sp_buf_putc(&b, '}');
    }
    if (json_is_object(labels) && json_object_size(labels)) {
        SP_BUF_LIT(&b, ",\"labels\":{");
        const char *k;
        json_t *v;
        int first = 1;
        json_object_foreach(labels, k, v)
        {
            if (!json_is_string(v)) continue;
            if (!first) sp_buf_putc(&b, ',');
            first = 0;
            sp_json_str(&b, k, strlen(k));
            sp_buf_putc(&b, ':');
            sp_json_str(&b, json_string_value(v), json_string_length(v));
            sp_buf_append(&lb, k, strlen(k) + 1); /* for sp_meta_get: key NUL value NUL */
            sp_buf_append(&lb, json_string_value(v), strlen(json_string_value(v)) + 1);
            e->nlabels++;
        }
        sp_buf_putc(&b, '}');
    }
    e->labels = lb.base;
    e->json = b.base;
    e->json_len = b.len;
    e->found = 1;
    json_decref(root);
}

static void sp_meta_load(sp_meta_ent *e, const char *path, const struct stat *st)
{
    e->ino = st->st_ino;
    e->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
    e->size = st->st_size;
    if (st->st_size > SP_META_MAX_FILE) return;
    sp_meta_load_json(e, json_load_file(path, JSON_DECODE_ANY, NULL));
}

/* ---- the Engine API on a Unix socket, for hosts where the directory is not readable ---- */

static sp_docker_api *sp_meta_api;

int sp_meta_set_socket(const char *path)
{
    if (sp_meta_api && strcmp(sp_docker_api_socket(sp_meta_api), path) == 0) return 0;
    sp_docker_api *a;
    int rc = sp_docker_api_open(&a, path, SP_META_API_REQUESTS, SP_META_MAX_FILE);
    if (rc == -ENOENT) /* dockerd not started yet: lookups fail until the socket appears */
        rc = sp_docker_api_new(&a, path, SP_META_API_REQUESTS, SP_META_MAX_FILE);
    if (rc) return rc;
    /* A reload may name another socket while a lookup still uses the old client: that one is
     * kept (a few bytes), never freed under it. */
    sp_meta_api = a;
    return 0;
}

/* Puts `e` in the table in place of `old` (NULL: none). The write lock is held. */
static void sp_meta_replace(sp_slice id, sp_meta_ent *old, sp_meta_ent *e)
{
    sp_meta_ent **pp = &sp_meta_buckets[sp_meta_bucket(id)];
    if (old) {
        while (*pp != old)
            pp = &(*pp)->next;
        *pp = old->next;
        sp_meta_ent_free(old);
        sp_meta_nentries--;
        pp = &sp_meta_buckets[sp_meta_bucket(id)];
    }
    e->next = *pp;
    *pp = e;
    sp_meta_nentries++;
}

/* GET /containers/{id}/json. Blocking (1 s at most): called only from worker threads. */
static void sp_meta_load_socket(sp_meta_ent *e, sp_slice id)
{
    char path[96];
    snprintf(path, sizeof path, "/containers/%.64s/json", id.base);
    json_t *root;
    if (sp_docker_get_json(sp_meta_api, path, 1000, &root) == 0) sp_meta_load_json(e, root);
}

/* Makes sure the table has a fresh entry for `id`; called without the lock held. */
static void sp_meta_refresh(sp_slice id, uint64_t now, int may_block)
{
    char path[4096];
    struct stat st;
    int have = 0;
    pthread_rwlock_rdlock(&sp_meta_lock);
    for (int i = 0; i < sp_meta_ndirs && !have; i++) {
        snprintf(path, sizeof path, "%s/%.64s/config.v2.json", sp_meta_dirs[i], id.base);
        have = stat(path, &st) == 0;
    }
    sp_meta_ent *old = sp_meta_find(id);
    /* A removed container keeps what was known: its last lines are still being shipped. */
    int same =
        old && old->found &&
        (!have || (old->ino == st.st_ino && old->size == st.st_size &&
                   old->mtime_ns == (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec));
    pthread_rwlock_unlock(&sp_meta_lock);

    sp_meta_ent *e = NULL;
    /* A caller that may not block (the loop) does not note as unknown a container that only the
     * Engine API may know: the encoders and the prefetch ask the API for it. */
    if (!same && !have && !may_block && sp_meta_api) return;
    if (!same) {
        e = sp_calloc(1, sizeof *e);
        memcpy(e->id, id.base, 64);
        if (have)
            sp_meta_load(e, path, &st);
        else if (may_block && sp_meta_api)
            sp_meta_load_socket(e, id);
        e->checked_ns = now;
    }
    sp_meta_wrlock();
    old = sp_meta_find(id);
    if (e) {
        if (!old && sp_meta_nentries >= SP_META_MAX_ENTRIES) sp_meta_clear(); /* bounded, crudely */
        sp_meta_replace(id, old, e);
    } else if (old) {
        old->checked_ns = now;
    }
    pthread_rwlock_unlock(&sp_meta_lock);
}

/* Runs `fn` on the fresh entry of `id` under the read lock; returns its result or 0. */
static size_t sp_meta_with(sp_slice id, size_t (*fn)(const sp_meta_ent *, void *, size_t), void *a,
                           size_t n, int recheck_missing, int may_block)
{
    if (!sp_meta_valid_id(id)) return 0;
    uint64_t now = uv_hrtime();
    for (int pass = 0; pass < 2; pass++) {
        pthread_rwlock_rdlock(&sp_meta_lock);
        if (sp_meta_ndirs == 0 && !sp_meta_api) {
            pthread_rwlock_unlock(&sp_meta_lock);
            return 0;
        }
        sp_meta_ent *e = sp_meta_find(id);
        if (e && (pass == 1 ||
                  (now - e->checked_ns < SP_META_RECHECK_NS && (e->found || !recheck_missing)))) {
            size_t r = e->found ? fn(e, a, n) : 0;
            pthread_rwlock_unlock(&sp_meta_lock);
            return r;
        }
        pthread_rwlock_unlock(&sp_meta_lock);
        if (pass == 0) sp_meta_refresh(id, now, may_block);
    }
    return 0;
}

static size_t sp_meta_append(const sp_meta_ent *e, void *out, size_t n)
{
    if (!e->json_len) return 0;
    sp_buf_append(out, e->json, e->json_len);
    return 1;
}

/* Encoders call sp_meta_append_json for every record, and a chunk's records come from few
 * containers, often interleaved: each thread keeps the last answers for a few containers in a
 * direct-mapped cache and asks the table again only when a slot holds another container, the
 * table changed, or every 64th use (so stale entries are still rechecked). */
#define SP_META_TL_SLOTS 64

typedef struct {
    char id[64];
    uint64_t gen;
    uint32_t uses;
    int valid, known;
    sp_buf json;
} sp_meta_tl;

int sp_meta_append_json(sp_slice id, sp_buf *out)
{
    static __thread sp_meta_tl tl[SP_META_TL_SLOTS];
    if (id.len != 64) return (int)sp_meta_with(id, sp_meta_append, out, 0, 0, 1);
    sp_meta_tl *t = &tl[sp_meta_hash(id.base) % SP_META_TL_SLOTS];
    if (t->valid && memcmp(t->id, id.base, 64) == 0 && t->gen == sp_meta_gen &&
        (++t->uses & 63) != 0) {
        if (t->known) sp_buf_append(out, t->json.base, t->json.len);
        return t->known;
    }
    uint64_t gen = sp_meta_gen;
    t->json.len = 0;
    t->known = (int)sp_meta_with(id, sp_meta_append, &t->json, 0, 0, 1);
    t->valid = 1;
    memcpy(t->id, id.base, 64);
    t->gen = gen;
    t->uses = 0;
    if (t->known) sp_buf_append(out, t->json.base, t->json.len);
    return t->known;
}

/* ---- prefetch: loop thread state ---- */

#define SP_META_PREFETCH_JOBS 2
#define SP_META_PREFETCH_QUEUE 256
#define SP_META_PREFETCH_SEEN 256

typedef struct {
    uv_work_t work;
    char id[64];
} sp_meta_job;

static struct {
    char ids[SP_META_PREFETCH_QUEUE][64];
    unsigned head, n;
    int running;
    char seen[SP_META_PREFETCH_SEEN][64]; /* ids already asked for, direct-mapped */
} sp_meta_pf;

static void sp_meta_pf_next(uv_loop_t *loop);

static void sp_meta_pf_work(uv_work_t *w)
{
    sp_meta_job *j = (sp_meta_job *)w;
    sp_meta_refresh(sp_slice_make(j->id, 64), uv_hrtime(), 1);
}

static void sp_meta_pf_done(uv_work_t *w, int status)
{
    (void)status;
    uv_loop_t *loop = w->loop;
    free(w);
    sp_meta_pf.running--;
    sp_meta_pf_next(loop);
}

static void sp_meta_pf_next(uv_loop_t *loop)
{
    while (sp_meta_pf.n && sp_meta_pf.running < SP_META_PREFETCH_JOBS) {
        sp_meta_job *j = sp_malloc(sizeof *j);
        memcpy(j->id, sp_meta_pf.ids[sp_meta_pf.head], 64);
        sp_meta_pf.head = (sp_meta_pf.head + 1) % SP_META_PREFETCH_QUEUE;
        sp_meta_pf.n--;
        sp_meta_pf.running++;
        uv_queue_work(loop, &j->work, sp_meta_pf_work, sp_meta_pf_done);
    }
}

void sp_meta_prefetch(uv_loop_t *loop, sp_slice id)
{
    if (id.len != 64) return;
    /* A client that multiplexes containers (a Fluentd forwarder) changes container on most
     * records: containers already asked for are skipped without the lock. */
    char *seen = sp_meta_pf.seen[sp_meta_hash(id.base) % SP_META_PREFETCH_SEEN];
    if (memcmp(seen, id.base, 64) == 0) return;
    if (!sp_meta_valid_id(id) || sp_meta_pf.n == SP_META_PREFETCH_QUEUE) return;
    memcpy(seen, id.base, 64);
    pthread_rwlock_rdlock(&sp_meta_lock);
    const sp_meta_ent *e = sp_meta_find(id);
    int skip = (sp_meta_ndirs == 0 && !sp_meta_api) || (e && e->found);
    pthread_rwlock_unlock(&sp_meta_lock);
    if (skip) return;
    memcpy(sp_meta_pf.ids[(sp_meta_pf.head + sp_meta_pf.n) % SP_META_PREFETCH_QUEUE], id.base, 64);
    sp_meta_pf.n++;
    sp_meta_pf_next(loop);
}

static size_t sp_meta_copy_name(const sp_meta_ent *e, void *buf, size_t cap)
{
    if (!e->name || !cap) return 0;
    size_t n = strlen(e->name);
    if (n >= cap) n = cap - 1;
    memcpy(buf, e->name, n);
    ((char *)buf)[n] = 0;
    return n;
}

size_t sp_meta_name(sp_slice id, char *buf, size_t cap)
{
    return sp_meta_with(id, sp_meta_copy_name, buf, cap, 1, 0);
}

typedef struct {
    const char *label; /* NULL: the image */
    size_t label_len;
    sp_buf *out;
} sp_meta_get_arg;

/* The image, or label a->label's value, appended to a->out; 1, or 0 when the entry has none. */
static size_t sp_meta_copy_field(const sp_meta_ent *e, void *arg, size_t n)
{
    (void)n;
    sp_meta_get_arg *a = arg;
    if (!a->label) {
        if (!e->image) return 0;
        sp_buf_append(a->out, e->image, strlen(e->image));
        return 1;
    }
    const char *p = e->labels;
    for (size_t i = 0; i < e->nlabels; i++) {
        size_t kl = strlen(p);
        const char *v = p + kl + 1;
        if (kl == a->label_len && memcmp(p, a->label, kl) == 0) {
            sp_buf_append(a->out, v, strlen(v));
            return 1;
        }
        p = v + strlen(v) + 1;
    }
    return 0;
}

int sp_meta_get(sp_slice id, const char *label, size_t label_len, sp_buf *out)
{
    sp_meta_get_arg a = {label, label_len, out};
    return (int)sp_meta_with(id, sp_meta_copy_field, &a, 0, 0, 0);
}

void sp_meta_learn(sp_slice id, const char *name, const char *image, const char *const *labels,
                   size_t nlabels)
{
    if (!sp_meta_valid_id(id)) return;
    sp_meta_ent *e = sp_calloc(1, sizeof *e);
    memcpy(e->id, id.base, 64);
    json_t *root = json_object(), *cfg = json_object(), *lab = json_object();
    if (name) json_object_set_new(root, "Name", json_string(name));
    if (image) json_object_set_new(cfg, "Image", json_string(image));
    for (size_t i = 0; i + 1 < 2 * nlabels; i += 2)
        json_object_set_new(lab, labels[i], json_string(labels[i + 1]));
    json_object_set_new(cfg, "Labels", lab);
    json_object_set_new(root, "Config", cfg);
    sp_meta_load_json(e, root);
    e->checked_ns = uv_hrtime();
    sp_meta_wrlock();
    sp_meta_ent *old = sp_meta_find(id);
    if ((old && old->found) || sp_meta_nentries >= SP_META_MAX_ENTRIES) {
        sp_meta_ent_free(e);
    } else {
        sp_meta_replace(id, old, e); /* known as unknown: what was learned is better */
    }
    pthread_rwlock_unlock(&sp_meta_lock);
}

void sp_meta_forget(sp_slice id)
{
    if (!sp_meta_valid_id(id)) return;
    sp_meta_wrlock();
    sp_meta_ent **pp = &sp_meta_buckets[sp_meta_bucket(id)];
    while (*pp && memcmp((*pp)->id, id.base, 64) != 0)
        pp = &(*pp)->next;
    if (*pp) {
        sp_meta_ent *e = *pp;
        *pp = e->next;
        sp_meta_ent_free(e);
        sp_meta_nentries--;
    }
    pthread_rwlock_unlock(&sp_meta_lock);
}
