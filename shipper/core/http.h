/* A minimal HTTP/1.1 server for /metrics, /healthz, /readyz and POST /reload (Connection: close).
 */
#ifndef SP_HTTP_H
#define SP_HTTP_H

#include <uv.h>

#include "slice.h"

/** Fills `body` for `method` (GET, HEAD or POST) `path` and returns the status code; sets *ctype
 * (a static string). */
typedef int (*sp_http_handler)(void *ctx, const char *method, const char *path, sp_buf *body,
                               const char **ctype);

typedef struct sp_http sp_http;

/** Listens on `addr` (host:port); 0 or a negative errno. */
int sp_http_start(uv_loop_t *loop, const char *addr, sp_http_handler h, void *ctx, sp_http **out);
void sp_http_stop(sp_http *s);
/** The listening socket (for an upgrade to pass on), or -1 (NULL: not listening). */
int sp_http_fd(sp_http *s);

/**
 * Client side of the health check: GET `url` (http://host:port/path) with a 3 s timeout.
 * Returns 0 when the answer is 200, else 1 (message on stderr). Blocking; for `--health`.
 */
int sp_http_probe(const char *url);

#endif
