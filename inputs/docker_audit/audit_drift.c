/*
 * Drift (docs/audit.md, "Drift"): what `docker diff` shows, GET /containers/{id}/changes, kept
 * per container as a sorted set of "<kind><path>"; a path is new drift when the last run did
 * not have it with that kind. Mount points (tmpfs, volumes, binds) and what is under them are
 * not the container's root filesystem and never drift. Pure functions, unit-tested.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "audit_int.h"

static int sp_audit_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void sp_audit_set_free(sp_audit_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    *s = (sp_audit_set){0};
}

int sp_audit_set_has(const sp_audit_set *s, const char *str)
{
    return s->n && bsearch(&str, s->v, s->n, sizeof *s->v, sp_audit_cmp) != NULL;
}

static void sp_audit_set_add(sp_audit_set *s, char *owned)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        if (!s->v) abort();
    }
    s->v[s->n++] = owned;
}

/* Sorted, duplicates dropped. */
static void sp_audit_set_sort(sp_audit_set *s)
{
    if (!s->n) return;
    qsort(s->v, s->n, sizeof *s->v, sp_audit_cmp);
    size_t w = 1;
    for (size_t i = 1; i < s->n; i++) {
        if (strcmp(s->v[i], s->v[w - 1]) == 0)
            free(s->v[i]);
        else
            s->v[w++] = s->v[i];
    }
    s->n = w;
}

/* A mount point without its trailing slashes ("/" stays "/"). */
static void sp_audit_mount_add(sp_audit_set *s, const char *p)
{
    if (!p || p[0] != '/') return;
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/')
        n--;
    sp_audit_set_add(s, strndup(p, n));
}

void sp_audit_mounts(const json_t *inspect, sp_audit_set *out)
{
    sp_audit_set_free(out);
    const char *k;
    const json_t *v;
    size_t i;
    json_object_foreach(json_object_get(json_object_get(inspect, "HostConfig"), "Tmpfs"), k, v)
        sp_audit_mount_add(out, k);
    json_array_foreach(json_object_get(inspect, "Mounts"), i, v)
        sp_audit_mount_add(out, json_string_value(json_object_get(v, "Destination")));
    sp_audit_set_sort(out);
}

int sp_audit_under_mount(const sp_audit_set *mounts, const char *path)
{
    for (size_t i = 0; i < mounts->n; i++) {
        const char *m = mounts->v[i];
        size_t n = strlen(m);
        if (n == 1) return 1; /* a mount on / covers everything */
        if (strncmp(path, m, n) == 0 && (path[n] == 0 || path[n] == '/')) return 1;
    }
    return 0;
}

/* Docker's change kinds: 0 modified, 1 added, 2 deleted (`docker diff` prints C, A, D). */
static char sp_audit_kind(const json_t *k)
{
    static const char kinds[] = {'C', 'A', 'D'};
    json_int_t v = json_is_integer(k) ? json_integer_value(k) : -1;
    return v >= 0 && v <= 2 ? kinds[v] : 0;
}

static int sp_audit_drift_check(const json_t *changes)
{
    if (json_is_null(changes)) return 0;
    if (!json_is_array(changes)) return -EBADMSG;
    size_t i;
    const json_t *c;
    json_array_foreach(changes, i, c)
    {
        const char *p = json_string_value(json_object_get(c, "Path"));
        if (!p || !sp_audit_kind(json_object_get(c, "Kind"))) return -EBADMSG;
    }
    return 0;
}

int sp_audit_drift_run(sp_audit_drift *d, const json_t *changes, const sp_audit_set *mounts,
                       size_t max_paths, json_t *fresh)
{
    if (sp_audit_drift_check(changes)) return -EBADMSG;
    sp_audit_set now = {0};
    size_t i;
    const json_t *c;
    int added = 0, over = 0;
    json_array_foreach(changes, i, c)
    {
        const char *p = json_string_value(json_object_get(c, "Path"));
        if (sp_audit_under_mount(mounts, p)) continue;
        if (now.n >= max_paths) {
            over = 1;
            break;
        }
        char kind = sp_audit_kind(json_object_get(c, "Kind"));
        size_t n = strlen(p);
        char *e = malloc(n + 2);
        if (!e) abort();
        e[0] = kind;
        memcpy(e + 1, p, n + 1);
        sp_audit_set_add(&now, e);
        if (d->baselined && !sp_audit_set_has(&d->seen, e)) {
            json_array_append_new(fresh, json_pack("{s:s,s:s#}", "path", p, "kind", e, (size_t)1));
            added++;
        }
    }
    d->truncated += over;
    sp_audit_set_sort(&now);
    sp_audit_set_free(&d->seen);
    d->seen = now;
    d->paths = now.n;
    d->baselined = 1;
    return added;
}

void sp_audit_drift_free(sp_audit_drift *d)
{
    sp_audit_set_free(&d->seen);
}
