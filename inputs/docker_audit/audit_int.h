/*
 * The docker_audit input's shared types (docs/audit.md; docs/architecture.md, "How to add an
 * input"). audit_rules.c and audit_drift.c are pure functions of the Engine API's JSON, so unit
 * tests drive them with fixtures; docker_audit.c (the entry) and audit_scan.c (the worker
 * threads) call them.
 */
#ifndef SP_AUDIT_INT_H
#define SP_AUDIT_INT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* ---- posture rules (audit_rules.c) ---- */

/** Which rules count: `ignore`d ones are not checked, `advisory` ones are reported (level
 * "advisory") but leave `compliant` alone; the others are "required". */
typedef struct {
    char *const *ignore;
    size_t nignore;
    char *const *advisory;
    size_t nadvisory;
} sp_audit_policy;

/**
 * The posture of a container from its inspect JSON (GET /containers/{id}/json): a new object
 * with the posture fields, `findings` ([{rule, detail, level}], rule ids as in docs/audit.md)
 * and `compliant` (no required finding). `pol` may be NULL (every rule required). Never NULL
 * for an object; NULL when `inspect` is not one.
 */
json_t *sp_audit_posture(const json_t *inspect, const sp_audit_policy *pol);

/** The rule ids, NULL-terminated (docs/audit.md, "Rules"). */
extern const char *const sp_audit_rule_ids[];

/** A 64-bit hash of a posture object (its members sorted): a changed posture, a new record. */
uint64_t sp_audit_posture_hash(const json_t *posture);

/* ---- drift (audit_drift.c) ---- */

/** A sorted set of strings (paths, or "<kind><path>" entries). */
typedef struct {
    char **v;
    size_t n, cap;
} sp_audit_set;

void sp_audit_set_free(sp_audit_set *s);
/** 1 when `s` holds `str`. */
int sp_audit_set_has(const sp_audit_set *s, const char *str);

/**
 * The mount points of a container that are not drift: every entry of Mounts (tmpfs, volumes,
 * binds) and the keys of HostConfig.Tmpfs (`--tmpfs`). Replaces the contents of `out`.
 */
void sp_audit_mounts(const json_t *inspect, sp_audit_set *out);
/** 1 when `path` is one of `mounts` or under one. */
int sp_audit_under_mount(const sp_audit_set *mounts, const char *path);

/** One container's drift state: the changed paths seen at the last run. */
typedef struct {
    sp_audit_set seen;  /* "<kind><path>", kind A, C or D */
    int baselined;      /* the first run has been taken as the baseline */
    size_t paths;       /* changed paths outside mounts at the last run (the gauge) */
    uint64_t truncated; /* runs that had more than max_paths changes */
} sp_audit_drift;

/**
 * Compares `changes` (GET /containers/{id}/changes: [{Path, Kind}] or null) with the state:
 * appends {path, kind} to `fresh` (a JSON array) for every changed path outside `mounts` that
 * the last run did not have with that kind; none on the first run (the baseline). At most
 * `max_paths` paths are kept (the rest are ignored, d->truncated counts it). Returns the number
 * appended, or -EBADMSG when `changes` has the wrong shape (the state is unchanged then).
 */
int sp_audit_drift_run(sp_audit_drift *d, const json_t *changes, const sp_audit_set *mounts,
                       size_t max_paths, json_t *fresh);
void sp_audit_drift_free(sp_audit_drift *d);

/* ---- the input (docker_audit.c, audit_scan.c, audit_record.c) ---- */

#ifdef SP_AUDIT_INPUT
#include <pthread.h>
#include <uv.h>

#include "docker_api.h"
#include "input.h"

typedef struct {
    char *docker_socket;
    uint64_t interval;
    int drift;
    int64_t concurrency;
    uint64_t timeout;
    char *tag_prefix;
    int all;
    int64_t drift_max_paths;
    sp_strlist ignore, advisory;
} sp_audit_conf;

/* A container seen by the last scan. The loop thread owns it, except `drift` and `mounts` while
 * a job on it is in flight (`busy`): then only that job's worker touches them. */
typedef struct sp_audit_cont {
    struct sp_audit_cont *next;
    char id[72];
    char name[256];
    uint64_t posture_hash; /* 0: no posture record yet */
    int compliant, seen, busy;
    int drift_seen;     /* a drift run has answered: drift_paths is the gauge */
    size_t drift_paths; /* the loop's copy of drift.paths */
    sp_audit_drift drift;
    sp_audit_set mounts;
} sp_audit_cont;

enum { SP_AUDIT_LIST, SP_AUDIT_CONTAINER };

/* A request to a worker and, once done, its answer to the loop. */
typedef struct sp_audit_job {
    struct sp_audit_job *next;
    int kind;
    sp_audit_cont *c;
    int rc;                /* 0, an HTTP status or a negative errno */
    json_t *ids;           /* LIST: [id, ...] */
    json_t *posture;       /* CONTAINER: the audit object */
    uint64_t posture_hash; /* its hash, made by the worker (never 0 with a posture) */
    json_t *fresh;         /* CONTAINER: new drift, [{path, kind}] */
    char name[256];
    const char *reason; /* the error counted for rc (input errors, by reason) */
} sp_audit_job;

typedef struct {
    sp_input *in;
    const sp_audit_conf *conf;
    sp_audit_policy policy;
    sp_docker_api *api;
    pthread_t *threads;
    int nthreads, exited;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    sp_audit_job *todo, **todo_tail, *done, **done_tail;
    int stopping, paused, scanning, pending, closing, nclosed;
    uv_async_t async;
    uv_timer_t timer;
    sp_audit_cont *conts;
    uint64_t scan_start_ns, scan_ns; /* the last completed scan's duration */
    uint64_t scans, ncompliant, nnoncompliant, posture_records, drift_records;
    int ready; /* one scan has completed: the gauges are meaningful */
    sp_ratelimit rl;
} sp_audit;

/* audit_scan.c: the worker threads. */
int sp_audit_workers_start(sp_audit *s);
/** Queues a job for the workers. */
void sp_audit_post(sp_audit *s, sp_audit_job *j);
/** Takes the answered jobs (a list, oldest first). */
sp_audit_job *sp_audit_take_done(sp_audit *s);
/** Asks the workers to exit after their current job; the last one wakes the loop. */
void sp_audit_workers_stop(sp_audit *s);
void sp_audit_job_free(sp_audit_job *j);

/* audit_record.c: records on the loop thread. */
void sp_audit_emit_posture(sp_audit *s, sp_audit_cont *c, const json_t *posture, uint64_t hash);
void sp_audit_emit_drift(sp_audit *s, sp_audit_cont *c, const json_t *fresh);
#endif

#endif
