/*
 * Container metadata (name, image, labels) by container id. json.c asks it for every document
 * with a container id; inputs may feed it. Lookups are thread-safe: encoders run on worker
 * threads.
 */
#ifndef SP_META_H
#define SP_META_H

#include "slice.h"

/**
 * Appends the known metadata members of container `id` to a JSON object being written —
 * `,"image":{"name":"nginx:1.25"},"labels":{"app":"web"}` — and returns 1; returns 0 and
 * appends nothing when the container is unknown.
 */
int sp_meta_append_json(sp_slice id, sp_buf *out);

#endif
