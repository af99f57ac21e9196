/*
 * The docker_audit input's workers (docs/audit.md, "How a scan runs"): `concurrency` threads of
 * the input's own take jobs from a queue, make the blocking Engine API calls (docker_api.h),
 * run the rules and the drift comparison, and hand the answers back to the loop thread through
 * a uv_async. The loop never blocks on Docker; at most `concurrency` requests run at once.
 */
#define SP_AUDIT_INPUT
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "audit_int.h"

void sp_audit_job_free(sp_audit_job *j)
{
    if (!j) return;
    json_decref(j->ids);
    json_decref(j->posture);
    json_decref(j->fresh);
    free(j);
}

/* GET /containers/json: the ids of the running (or, with `all`, every) container. */
static void sp_audit_do_list(sp_audit *s, sp_audit_job *j)
{
    json_t *list = NULL;
    const char *path = s->conf->all ? "/containers/json?all=1" : "/containers/json";
    j->rc = sp_docker_get_json(s->api, path, s->conf->timeout, &list);
    if (j->rc || !json_is_array(list)) {
        j->rc = j->rc ? j->rc : -EBADMSG;
        j->reason = "list_failed";
        json_decref(list);
        return;
    }
    j->ids = json_array();
    size_t i;
    json_t *c;
    json_array_foreach(list, i, c)
    {
        json_t *id = json_object_get(c, "Id");
        if (json_is_string(id) && json_string_length(id) < sizeof j->c->id)
            json_array_append(j->ids, id);
    }
    json_decref(list);
}

/* GET /containers/{id}/changes and the comparison with the container's last run. */
static void sp_audit_do_drift(sp_audit *s, sp_audit_job *j, const json_t *inspect)
{
    char path[128];
    json_t *changes = NULL;
    snprintf(path, sizeof path, "/containers/%s/changes", j->c->id);
    /* The body is `null` when nothing changed: not an object or array, so read it here with
     * JSON_DECODE_ANY rather than through sp_docker_get_json. */
    sp_buf body = {0};
    int rc = sp_docker_get(s->api, path, s->conf->timeout, &body);
    if (rc == 200) {
        changes = json_loadb(body.base, body.len, JSON_DECODE_ANY, NULL);
        rc = changes ? 0 : -EBADMSG;
    }
    sp_buf_free(&body);
    if (rc == 404) return; /* removed meanwhile */
    if (rc) {
        j->rc = rc;
        j->reason = "changes_failed";
        return;
    }
    sp_audit_mounts(inspect, &j->c->mounts);
    j->fresh = json_array();
    if (sp_audit_drift_run(&j->c->drift, changes, &j->c->mounts, (size_t)s->conf->drift_max_paths,
                           j->fresh) < 0)
        j->reason = "changes_malformed";
    json_decref(changes);
}

/* GET /containers/{id}/json, the posture, and drift when on and the container runs. */
static void sp_audit_do_container(sp_audit *s, sp_audit_job *j)
{
    char path[128];
    json_t *inspect = NULL;
    snprintf(path, sizeof path, "/containers/%s/json", j->c->id);
    j->rc = sp_docker_get_json(s->api, path, s->conf->timeout, &inspect);
    if (j->rc == 404) return; /* removed between the list and now */
    if (j->rc || !json_is_object(inspect)) {
        j->reason = "inspect_failed";
        json_decref(inspect);
        return;
    }
    const char *name = json_string_value(json_object_get(inspect, "Name"));
    if (name) snprintf(j->name, sizeof j->name, "%s", name[0] == '/' ? name + 1 : name);
    j->posture = sp_audit_posture(inspect, &s->policy);
    if (j->posture) { /* serialised here, off the loop */
        uint64_t h = sp_audit_posture_hash(j->posture);
        j->posture_hash = h ? h : 1;
    }
    json_t *state = json_object_get(json_object_get(inspect, "State"), "Running");
    if (s->conf->drift && json_is_true(state)) sp_audit_do_drift(s, j, inspect);
    json_decref(inspect);
}

static void *sp_audit_worker(void *arg)
{
    sp_audit *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->todo && !s->stopping)
            pthread_cond_wait(&s->cv, &s->mu);
        if (s->stopping) break;
        sp_audit_job *j = s->todo;
        s->todo = j->next;
        if (!s->todo) s->todo_tail = &s->todo;
        pthread_mutex_unlock(&s->mu);
        j->next = NULL;
        if (j->kind == SP_AUDIT_LIST)
            sp_audit_do_list(s, j);
        else
            sp_audit_do_container(s, j);
        pthread_mutex_lock(&s->mu);
        *s->done_tail = j;
        s->done_tail = &j->next;
        uv_async_send(&s->async);
    }
    s->exited++;
    pthread_mutex_unlock(&s->mu);
    uv_async_send(&s->async);
    return NULL;
}

int sp_audit_workers_start(sp_audit *s)
{
    s->todo_tail = &s->todo;
    s->done_tail = &s->done;
    s->nthreads = (int)s->conf->concurrency;
    s->threads = calloc((size_t)s->nthreads, sizeof *s->threads);
    if (!s->threads) return -ENOMEM;
    for (int i = 0; i < s->nthreads; i++) {
        int rc = pthread_create(&s->threads[i], NULL, sp_audit_worker, s);
        if (rc) {
            s->nthreads = i;
            return -rc;
        }
    }
    return 0;
}

void sp_audit_post(sp_audit *s, sp_audit_job *j)
{
    pthread_mutex_lock(&s->mu);
    j->next = NULL;
    *s->todo_tail = j;
    s->todo_tail = &j->next;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

sp_audit_job *sp_audit_take_done(sp_audit *s)
{
    pthread_mutex_lock(&s->mu);
    sp_audit_job *j = s->done;
    s->done = NULL;
    s->done_tail = &s->done;
    pthread_mutex_unlock(&s->mu);
    return j;
}

void sp_audit_workers_stop(sp_audit *s)
{
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}
