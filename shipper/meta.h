/*
 * Container metadata (name, image, labels) by container id. json.c asks it for every document
 * with a container id; inputs may feed it. Lookups are thread-safe: encoders run on worker
 * threads.
 */
#ifndef SP_META_H
#define SP_META_H

#include <uv.h>

#include "slice.h"

/**
 * Appends the known metadata members of container `id` to a JSON object being written —
 * `,"image":{"name":"nginx:1.25"},"labels":{"app":"web"}` — and returns 1; returns 0 and
 * appends nothing when the container is unknown.
 */
int sp_meta_append_json(sp_slice id, sp_buf *out);

/**
 * Adds a Docker containers directory (`<dir>/<id>/config.v2.json`) where metadata is looked up.
 * Returns 0, or a negative errno when the directory is not readable (then it is not used).
 * Call from the loop thread at start, before records flow.
 */
int sp_meta_add_dir(const char *dir);

/**
 * Also asks Docker's Engine API on this Unix socket (GET /containers/{id}/json) for containers
 * not found in a directory; from encoder threads only, never the loop. 0 or a negative errno.
 */
int sp_meta_set_socket(const char *path);

/**
 * Copies the container's name (without Docker's leading '/') to `buf` (NUL-terminated) and
 * returns its length; returns 0 when the container is unknown. Unlike the JSON lookup, an
 * unknown container is looked for again on every call (a new container's config may appear a
 * moment after its directory): call it at discovery, not per record.
 */
size_t sp_meta_name(sp_slice id, char *buf, size_t cap);

/**
 * Appends the image name of container `id` (label NULL) or the value of its label `label`
 * (label_len bytes) to `out`; returns 1, or 0 when the container, its image or the label is not
 * known. Never asks the Engine API (loop thread: a filter): a container found only there is
 * known once the prefetch or an encoder has asked for it.
 */
int sp_meta_get(sp_slice id, const char *label, size_t label_len, sp_buf *out);

/**
 * Starts loading container `id` on the thread pool when the table does not know it yet, so a
 * container removed right after its last line (`docker run --rm`) is still known when its
 * records are encoded. Loop thread only; a read lock and no I/O when the container is known or
 * no source is configured. At most two loads run at once (a Docker API call may block for a
 * second); up to 256 more wait, beyond that the encoders' own lookup is the fallback.
 */
void sp_meta_prefetch(uv_loop_t *loop, sp_slice id);

/**
 * Tells the table what an input learned of container `id` elsewhere (docker_events: the event's
 * Actor.Attributes): its name, image (or NULL) and `nlabels` labels as key, value pairs in
 * `labels`. Ignored when the table already knows the container from its config or the API, so a
 * destroyed container's last event still carries its image and labels. Any thread.
 */
void sp_meta_learn(sp_slice id, const char *name, const char *image, const char *const *labels,
                   size_t nlabels);

/** Drops what is cached about a container (it was removed). */
void sp_meta_forget(sp_slice id);

/** Drops every cached entry and directory (tests, shutdown). */
void sp_meta_reset(void);

#endif
