/*
 * The docker_logs input: tails Docker's json-file logs, `<path>/<id>/<id>-json.log`.
 *
 * Discovery: an fs event on the containers directory triggers a rescan, and a rescan also runs
 * every two seconds as a safety net. Each container has a list of open files, oldest first: a
 * file renamed by rotation (or unlinked with max-file=1, or left behind by `docker rm`) stays
 * open by fd and is read to its last byte before it is closed, then the next one is read.
 *
 * Reading, rotation and truncation are in docker_logs_file.c; offsets in docker_logs_offsets.c;
 * the shared state in docker_logs_int.h.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "docker_logs_int.h"
#include "log.h"
#include "meta.h"
#include "offsets.h"
#include "record.h"

static const char *const sp_dl_read_from_modes[] = {"end", "start", NULL};

static const sp_conf_field sp_dl_fields[] = {
    {"path", SP_CONF_STR, offsetof(sp_dl_conf, path), "/var/lib/docker/containers",
     "Docker's containers directory (<id>/<id>-json.log, <id>/config.v2.json)"},
    {"tag_prefix", SP_CONF_STR, offsetof(sp_dl_conf, tag_prefix), "docker.",
     "records are tagged <prefix><container name>"},
    {"read_from", SP_CONF_ENUM, offsetof(sp_dl_conf, read_from), "end",
     "end | start: where to begin a file that exists at startup with no saved offset",
     sp_dl_read_from_modes},
    {"max_line_size", SP_CONF_SIZE, offsetof(sp_dl_conf, max_line_size), "1MiB",
     "longest joined partial line; longer lines are split (flagged)"},
    {"partial_timeout", SP_CONF_DURATION, offsetof(sp_dl_conf, partial_timeout), "5s",
     "a partial line whose last piece has not come by then is shipped as it is (flagged)"},
    {"poll_interval", SP_CONF_DURATION, offsetof(sp_dl_conf, poll_interval), "200ms",
     "how often open files are checked for new data, rotation and truncation"},
    SP_CONF_END};

/* ---- containers ---- */

static int sp_dl_valid_id(const char *s)
{
    size_t i = 0;
    for (; s[i]; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return i == 64;
}

static void sp_dl_cont_name(sp_dl *s, sp_dl_cont *c)
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

static void sp_dl_pump_start(sp_dl *s);

/*
 * Rotation must be seen at once: a container that logs fast rotates a small file several times
 * a second, and a file never opened is deleted with its lines once max-file is reached. A
 * rename or create in the directory checks the container now; a write just wakes the reader.
 */
static void sp_dl_cont_ev_cb(uv_fs_event_t *h, const char *name, int events, int status)
{
    sp_dl_cont *c = h->data;
    sp_dl *s = c->s;
    if (s->stopping) return;
    if ((events & UV_RENAME) || !c->cur) sp_dl_check(s, c);
    sp_dl_pump_start(s);
}

/* Fair backpressure (docs/architecture.md, "Fair backpressure"): a paused container's files are
 * skipped by the pump (they stay open); resumed, the pump picks them up again. */
static void sp_dl_src_pause(sp_source *src) {}

static void sp_dl_src_resume(sp_source *src)
{
    sp_dl_pump_start(sp_list_entry(src, sp_dl_cont, src)->s);
}

static sp_dl_cont *sp_dl_cont_add(sp_dl *s, const char *id, int startup)
{
    sp_dl_cont *c = sp_calloc(1, sizeof *c);
    memcpy(c->id, id, 64);
    c->s = s;
    sp_source_add(s->in, &c->src, sp_dl_src_pause, sp_dl_src_resume);
    c->found_ms = uv_now(s->in->loop);
    sp_list_init(&c->files);
    sp_dl_hold_init(c);
    sp_list_insert_tail(&s->conts, &c->link);
    sp_dl_cont_name(s, c);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", s->conf->path, c->id);
    uv_fs_event_init(s->in->loop, &c->ev);
    c->ev.data = c;
    c->ev_on = 1;
    if (uv_fs_event_start(&c->ev, sp_dl_cont_ev_cb, dir, 0)) uv_fs_event_stop(&c->ev);
    const sp_offset *o = startup ? sp_dl_saved(s, id) : NULL;
    if (o) {
        if (!sp_dl_resume_saved(s, c, o)) s->state_dirty = 1;
        return c;
    }
    char path[4096];
    struct stat st;
    sp_dl_log_path(s, c, 0, path, sizeof path);
    int fd = sp_dl_open(path, &st);
    if (fd >= 0) {
        uint64_t off =
            startup && !o && s->conf->read_from == SP_FROM_END ? (uint64_t)st.st_size : 0;
        c->cur = sp_dl_file_add(s, c, fd, &st, off);
    }
    s->state_dirty = 1;
    return c;
}

static void sp_dl_cont_freed(uv_handle_t *h)
{
    free(h->data);
}

static void sp_dl_cont_free(sp_dl *s, sp_dl_cont *c)
{
    for (int i = 0; i < 3; i++) {
        if (c->join[i].active) sp_input_hold(s->in, -(int64_t)c->join[i].text.len);
        sp_buf_free(&c->join[i].text);
        sp_buf_free(&c->join[i].attrs);
    }
    sp_list_remove(&c->link);
    sp_source_remove(&c->src);
    free(c->tag);
    c->tag = NULL;
    if (c->ev_on) {
        c->ev_on = 0;
        uv_close((uv_handle_t *)&c->ev, sp_dl_cont_freed);
    } else {
        free(c);
    }
}

static void sp_dl_scan(sp_dl *s, int startup)
{
    s->last_scan_ms = uv_now(s->in->loop);
    s->rescan_soon = 0;
    DIR *d = opendir(s->conf->path);
    if (!d) {
        sp_in_log_limited(s->in, &s->rl, SP_LOG_WARN, "cannot read %s: %s", s->conf->path,
                          strerror(errno));
        return;
    }
    sp_list *it;
    sp_list_foreach(it, &s->conts) sp_list_entry(it, sp_dl_cont, link)->seen = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!sp_dl_valid_id(e->d_name)) continue;
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
            c = sp_dl_cont_add(s, e->d_name, startup);
        else
            sp_dl_cont_name(s, c);
        c->seen = 1;
    }
    closedir(d);
    sp_list_foreach(it, &s->conts)
    {
        sp_dl_cont *c = sp_list_entry(it, sp_dl_cont, link);
        if (!c->seen) c->removed = 1;
    }
}

/* ---- the loop side ---- */

static void sp_dl_pump_cb(uv_idle_t *h);

static void sp_dl_pump_start(sp_dl *s)
{
    if (s->pumping || s->paused || s->stopping) return;
    s->pumping = 1;
    uv_idle_start(&s->pump, sp_dl_pump_cb);
}

static void sp_dl_pump_stop(sp_dl *s)
{
    if (!s->pumping) return;
    s->pumping = 0;
    uv_idle_stop(&s->pump);
}

/* Reads one slice of the container's oldest unfinished file; returns bytes read. */
static size_t sp_dl_pump_cont(sp_dl *s, sp_dl_cont *c)
{
    if (c->src.paused) return 0; /* fair backpressure: its turn is skipped until resumed */
    /* Docker writes config.v2.json around the time it makes the directory: lines are not
     * tagged before the name is known, unless it stays unknown (unreadable config) for 2 s. */
    if (!c->named && uv_now(s->in->loop) - c->found_ms < SP_DL_RESCAN_MS) {
        sp_dl_cont_name(s, c);
        if (!c->named) return 0;
    }
    sp_list *it, *tmp;
    sp_list_foreach_safe(it, tmp, &c->files)
    {
        sp_dl_file *f = sp_list_entry(it, sp_dl_file, link);
        if (f->fd < 0) continue;
        ssize_t n = sp_dl_read_slice(s, c, f);
        if (n > 0) return (size_t)n;
        if (n < 0) { /* tried again at the next poll */
            sp_in_log_limited(s->in, &s->rl, SP_LOG_WARN, "%.12s: read: %s", c->id,
                              strerror((int)-n));
            return 0;
        }
        if (!f->rotated) return 0;
        /* A rotated file read to its end is finished; the next one comes now. */
        if (c->cur == f) c->cur = NULL;
        sp_dl_file_close(s, f);
        sp_dl_file_reap(s, f);
    }
    return 0;
}

static void sp_dl_pump_cb(uv_idle_t *h)
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
        s->in->source = &c->src; /* the filter stage's throttle `action: slow` */
        size_t got = sp_dl_pump_cont(s, c);
        s->in->source = NULL;
        sp_source_count(&c->src, got);
        sp_list_remove(&c->link);
        sp_list_insert_tail(&s->conts, &c->link);
        total += got;
        progress |= got > 0;
    }
    if (!progress || s->paused || s->stopping) sp_dl_pump_stop(s);
}

static void sp_dl_poll_cb(uv_timer_t *t)
{
    sp_dl *s = t->data;
    uint64_t now = uv_now(s->in->loop);
    if (s->rescan_soon || now - s->last_scan_ms >= SP_DL_RESCAN_MS) sp_dl_scan(s, 0);
    sp_list *it, *tmp;
    sp_list_foreach_safe(it, tmp, &s->conts)
    {
        sp_dl_cont *c = sp_list_entry(it, sp_dl_cont, link);
        sp_dl_check(s, c);
        for (int i = 0; i < 3; i++) {
            sp_dl_join *j = &c->join[i];
            if (j->active && now - j->since_ms >= s->conf->partial_timeout) {
                sp_dl_join_emit(s, c, NULL, i, SP_REC_INCOMPLETE);
                sp_dl_batch_end(s, c, j->file);
            }
        }
        sp_list *fi, *ftmp;
        sp_list_foreach_safe(fi, ftmp, &c->files)
            sp_dl_file_reap(s, sp_list_entry(fi, sp_dl_file, link));
        if (c->removed && sp_list_empty(&c->files)) {
            int busy = 0;
            for (int i = 0; i < 3; i++)
                busy |= c->join[i].active || c->hold[i].refs;
            if (!busy) {
                sp_dl_cont_free(s, c);
                s->state_dirty = 1;
            }
        }
    }
    if (s->state_dirty && now - s->last_save_ms >= SP_DL_SAVE_MS) sp_dl_save(s);
    sp_dl_pump_start(s);
}

static void sp_dl_fsev_cb(uv_fs_event_t *h, const char *name, int events, int status)
{
    sp_dl *s = h->data;
    /* A new container may log (and rotate) at once: scan now, but once per burst of events. */
    if (uv_now(s->in->loop) - s->last_scan_ms >= 20)
        sp_dl_scan(s, 0);
    else
        s->rescan_soon = 1;
    sp_dl_pump_start(s);
}

static int sp_dl_start(sp_input *in)
{
    sp_dl_conf *conf = in->conf;
    sp_dl *s = sp_calloc(1, sizeof *s);
    in->data = s;
    s->in = in;
    s->conf = conf;
    sp_list_init(&s->conts);
    s->rbuf = sp_malloc(SP_DL_SLICE + SP_DL_MAX_RAW);
    if (sp_meta_add_dir(conf->path))
        sp_in_warn(in, "%s is not readable: no container names or labels", conf->path);
    if (in->state_dir) {
        sp_buf p = {0};
        sp_buf_printf(&p, "%s/%s.offsets", in->state_dir, in->name);
        sp_buf_putc(&p, 0);
        s->offsets_path = p.base;
        int rc = sp_offsets_load(s->offsets_path, &s->saved, &s->nsaved);
        if (rc) {
            sp_in_error(in, "cannot read %s: %s", s->offsets_path, strerror(-rc));
            return rc;
        }
    }
    sp_dl_scan(s, 1);
    free(s->saved);
    s->saved = NULL;
    s->nsaved = 0;
    uv_timer_init(in->loop, &s->poll);
    uv_idle_init(in->loop, &s->pump);
    uv_fs_event_init(in->loop, &s->fsev);
    s->poll.data = s->pump.data = s->fsev.data = s;
    s->handles = 3;
    int rc = uv_fs_event_start(&s->fsev, sp_dl_fsev_cb, conf->path, 0);
    if (rc)
        sp_in_warn(in, "cannot watch %s (%s): new containers are found by rescans", conf->path,
                   uv_strerror(rc));
    uint64_t iv = conf->poll_interval ? conf->poll_interval : 1;
    uv_timer_start(&s->poll, sp_dl_poll_cb, iv, iv);
    sp_dl_pump_start(s);
    sp_in_info(in, "watching %s (%llu files open)", conf->path, (unsigned long long)s->nfiles);
    return 0;
}

static void sp_dl_pause(sp_input *in)
{
    sp_dl *s = in->data;
    if (!s) return; /* not started yet (an upgrade starts it late) */
    s->paused = 1;
    sp_dl_pump_stop(s);
}

static void sp_dl_resume(sp_input *in)
{
    sp_dl *s = in->data;
    if (!s) return;
    s->paused = 0;
    sp_dl_pump_start(s);
}

void sp_dl_free(sp_dl *s)
{
    while (!sp_list_empty(&s->conts)) {
        sp_dl_cont *c = sp_list_entry(s->conts.next, sp_dl_cont, link);
        while (!sp_list_empty(&c->files)) {
            sp_dl_file *f = sp_list_entry(c->files.next, sp_dl_file, link);
            sp_list_remove(&f->link);
            sp_buf_free(&f->carry);
            free(f);
        }
        sp_dl_cont_free(s, c);
    }
    sp_buf_free(&s->scratch);
    sp_buf_free(&s->attrs);
    free(s->rbuf);
    free(s->offsets_path);
    s->in->data = NULL;
    free(s);
}

static void sp_dl_closed_step(sp_dl *s)
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
    sp_dl_save(s);
    /* Freed here only if no chunk holds a watcher; else by the last watcher to fire. Before
     * sp_input_closed: that may close the router and fire watchers. */
    if (s->nwatch == 0) sp_dl_free(s);
    sp_input_closed(in);
}

static void sp_dl_handle_closed(uv_handle_t *h)
{
    sp_dl_closed_step(h->data);
}

static void sp_dl_cont_ev_closed(uv_handle_t *h)
{
    sp_dl_closed_step(((sp_dl_cont *)h->data)->s);
}

static void sp_dl_stop(sp_input *in)
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
            sp_dl_join_emit(s, c, NULL, i, SP_REC_INCOMPLETE);
            sp_dl_batch_end(s, c, c->join[i].file);
        }
    }
    s->stopping = 1;
    sp_dl_pump_stop(s);
    uv_close((uv_handle_t *)&s->poll, sp_dl_handle_closed);
    uv_close((uv_handle_t *)&s->pump, sp_dl_handle_closed);
    uv_close((uv_handle_t *)&s->fsev, sp_dl_handle_closed);
    sp_list_foreach(it, &s->conts)
    {
        sp_dl_cont *c = sp_list_entry(it, sp_dl_cont, link);
        if (!c->ev_on) continue;
        c->ev_on = 0;
        s->handles++;
        uv_close((uv_handle_t *)&c->ev, sp_dl_cont_ev_closed);
    }
}

static void sp_dl_metrics(sp_input *in, sp_buf *out)
{
    sp_dl *s = in->data;
    if (!s) return;
    const char *n = in->name;
    sp_buf_metric(out, "shipper_tail_files", "input", n, s->nfiles);
    sp_buf_metric(out, "shipper_tail_bytes_total", "input", n, s->bytes_read);
    sp_buf_metric(out, "shipper_tail_lines_total", "input", n, s->lines);
    sp_buf_metric(out, "shipper_tail_rotations_total", "input", n, s->rotations);
    sp_buf_metric(out, "shipper_tail_truncations_total", "input", n, s->truncations);
    sp_buf_metric(out, "shipper_tail_split_lines_total", "input", n, s->splits);
    sp_buf_metric(out, "shipper_tail_incomplete_lines_total", "input", n, s->incomplete);
    sp_buf_metric(out, "shipper_tail_lost_files_total", "input", n, s->lost_files);
}

const sp_input_type sp_input_docker_logs = {
    .name = "docker_logs",
    .fields = sp_dl_fields,
    .conf_size = sizeof(sp_dl_conf),
    .start = sp_dl_start,
    .pause = sp_dl_pause,
    .resume = sp_dl_resume,
    .stop = sp_dl_stop,
    .metrics = sp_dl_metrics,
};
