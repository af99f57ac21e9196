/*
 * A small client for Docker's Engine API over its Unix socket (`docker_socket`), for the core
 * (container metadata, meta.c) and for inputs (docker_events, docker_audit). Part of the plugin
 * SDK: a leaf, it needs only libcurl and jansson underneath (docs/architecture.md, "The Docker
 * API client").
 *
 * Every call BLOCKS: call it only off the event-loop thread (a worker thread of the input's own,
 * or uv_queue_work). A client bounds how many plain requests run at once (`max_requests`); a
 * caller beyond that waits, at most its own timeout. Streams (GET /events) do not count against
 * the bound: each has its thread. A client is shared by threads; open and close it on one.
 */
#ifndef SP_DOCKER_API_H
#define SP_DOCKER_API_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdint.h>

#include "slice.h"

typedef struct sp_docker_api sp_docker_api;

/** The default bound on the size of one response body (a container's JSON is a few KiB). */
#define SP_DOCKER_MAX_BODY (4 << 20)
/** The default bound on one line of a stream (an event is well under 4 KiB). */
#define SP_DOCKER_MAX_LINE (1 << 20)

/**
 * Opens a client for the Engine API at Unix socket `socket_path`: 0, or a negative errno when
 * the socket is not readable and writable (EACCES, ENOENT). `max_requests` (>= 1) bounds the
 * concurrent blocking GETs; `max_body` bounds a response body (0: SP_DOCKER_MAX_BODY).
 */
int sp_docker_api_open(sp_docker_api **out, const char *socket_path, int max_requests,
                       size_t max_body);

/** As sp_docker_api_open without the access check: for a socket that may appear later (dockerd
 * not started yet); requests fail until it does. */
int sp_docker_api_new(sp_docker_api **out, const char *socket_path, int max_requests,
                      size_t max_body);
/** Closes a client; no call may be running on it. NULL is fine. */
void sp_docker_api_close(sp_docker_api *a);
/** The socket path the client was opened with. */
const char *sp_docker_api_socket(const sp_docker_api *a);

/**
 * GET `path` (e.g. "/containers/<id>/json"; the query part already escaped, see
 * sp_docker_escape), waiting at most `timeout_ms` in all. Appends the body (Content-Length or
 * chunked, decoded) to `body` and returns the HTTP status (200, 404, ...); or a negative errno:
 * -ECONNREFUSED/-ENOENT (daemon not there), -ETIMEDOUT (also when all `max_requests` slots stayed
 * busy), -EMSGSIZE (body over max_body), -EPROTO (not HTTP).
 */
int sp_docker_get(sp_docker_api *a, const char *path, uint64_t timeout_ms, sp_buf *body);

/**
 * sp_docker_get, and the body parsed as JSON: returns 0 with *out set (json_decref it) when the
 * status is 200 and the body is JSON; the HTTP status (e.g. 404) with *out NULL otherwise, or a
 * negative errno (-EBADMSG: a 200 whose body is not JSON).
 */
int sp_docker_get_json(sp_docker_api *a, const char *path, uint64_t timeout_ms, json_t **out);

/** Called by sp_docker_stream with each line of the body, without its '\n' (empty lines are
 * skipped). Returns 0 to go on, nonzero to stop the stream (sp_docker_stream returns it). */
typedef int (*sp_docker_line_fn)(void *ctx, const char *line, size_t len);

/**
 * A streaming GET (GET /events): calls `fn` for every line as it arrives, until the daemon ends
 * the response (returns 0) or closes the connection (-ECONNRESET), `fn` returns nonzero (that
 * value), `*cancel` becomes nonzero (-ECANCELED, noticed within a second), or an error: the
 * negative errnos of sp_docker_get, -EMSGSIZE for a line over SP_DOCKER_MAX_LINE, and the HTTP
 * status (> 0) when it is not 200. `connect_timeout_ms` bounds connecting and the response
 * header; the body may then be idle for as long as the daemon has nothing to say.
 */
int sp_docker_stream(sp_docker_api *a, const char *path, uint64_t connect_timeout_ms,
                     const atomic_int *cancel, sp_docker_line_fn fn, void *ctx);

/** Appends `s` percent-encoded for a query value (`filters={"type":["container"]}`). */
void sp_docker_escape(sp_buf *out, const char *s);

#endif
