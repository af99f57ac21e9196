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

#endif
