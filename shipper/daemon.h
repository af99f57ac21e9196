/* The daemon: the whole configuration, and the lifecycle of one event loop that runs it. */
#ifndef SP_DAEMON_H
#define SP_DAEMON_H

#include <uv.h>

#include "config.h"
#include "http.h"
#include "input.h"
#include "output.h"
#include "router.h"

typedef struct {
    int log_level;
    char *http_listen;
    char *state_dir;
    uint64_t grace_ms;
    char *pid_file;
} sp_service_conf;

typedef struct {
    uint64_t memory_limit;
    uint64_t chunk_size;
    uint64_t flush_interval;
    int spool;
    uint64_t spool_limit;
    uint64_t retry_min;
} sp_buffer_conf;

typedef struct sp_daemon {
    sp_service_conf service;
    sp_buffer_conf buffer;
    sp_input **inputs;
    size_t ninputs;
    sp_output **outputs;
    size_t noutputs;
    uv_loop_t loop;
    sp_router router;
    sp_http *http;
    uv_signal_t sigterm, sigint;
    uv_timer_t grace;
    int ready;
    int stopping;
    int finishing;
    int all_closed;
    int open_components; /* inputs and outputs not yet closed */
    int exit_code;
} sp_daemon;

/** Parses and validates a whole configuration. 0, or -1 with err set (exit code 2). */
int sp_daemon_load(sp_daemon *d, const char *text, size_t len, sp_conf_err *err);
/** Appends the resolved configuration as YAML (for --check). */
void sp_daemon_print(const sp_daemon *d, sp_buf *out);
/** Runs until stopped; returns the process exit code. */
int sp_daemon_run(sp_daemon *d);
void sp_daemon_free(sp_daemon *d);

/** Begins a graceful stop (what SIGTERM does). */
void sp_daemon_stop(sp_daemon *d);
/** Ends delivery now (what the end of `grace` does): outputs stop, then everything closes. */
void sp_daemon_finish(sp_daemon *d);

enum {
    SP_START_ALL,   /* a normal start */
    SP_START_CONNS, /* upgrade: the inputs that take connections (the old process stopped them) */
    SP_START_REST,  /* upgrade: the others (the old process has exited) */
};
/**
 * Opens the spool (once) and starts the inputs `which` names that have not started; the first
 * time, also the http listener, readiness and the pid file. On failure the daemon stops (exit
 * code 1) and a negative errno is returned.
 */
int sp_daemon_start_inputs(sp_daemon *d, int which);

/** Appends Prometheus text for every metric. */
void sp_metrics_render(const sp_daemon *d, sp_buf *out);

extern const sp_input_type *const sp_input_types[];
extern const sp_output_type *const sp_output_types[];

#endif
