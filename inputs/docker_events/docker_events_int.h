/*
 * The docker_events input's shared parts (docs/architecture.md, "The docker_events input"): a
 * worker thread reads GET /events and queues parsed events; the loop appends them as records
 * and keeps, per batch, the resume point that becomes the state file once the batch is
 * delivered.
 */
#ifndef SP_DOCKER_EVENTS_INT_H
#define SP_DOCKER_EVENTS_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <uv.h>

#include "docker_api.h"
#include "input.h"

/* The actions shipped, in the order of the metric's labels. */
enum {
    SP_DE_CREATE,
    SP_DE_START,
    SP_DE_DIE,
    SP_DE_OOM,
    SP_DE_KILL,
    SP_DE_HEALTH,
    SP_DE_DESTROY,
    SP_DE_NACTIONS
};
extern const char *const sp_de_actions[SP_DE_NACTIONS];

/* Events at one nanosecond that resume must not ship again: at most this many are remembered
 * (Docker stamps each event with its own time; more at one nanosecond do not happen). */
#define SP_DE_BOUNDARY_KEYS 64

typedef struct {
    char *docker_socket;
    char *tag;
    uint64_t reconnect_max; /* ms */
    int64_t max_queue;
} sp_de_conf;

/* Where the stream resumes: the time of the last event and the keys ("<id> <action>", '\n'
 * after each) of the events at that very time already taken. */
typedef struct {
    uint64_t time_nano;
    sp_buf keys;
    int nkeys;
} sp_de_point;

typedef struct sp_de_event {
    struct sp_de_event *next;
    uint64_t time_nano;
    int action;
    int has_exit;
    int64_t exit_code;
    char id[65];
    char *name, *image, *detail; /* detail: kill's signal, health_status's status */
    char **labels;               /* key, value pairs */
    size_t nlabels;
    char *key;
} sp_de_event;

typedef struct {
    sp_chunk_watch w;
    struct sp_de *d;
    sp_list link;
    int fired, delivered;
    sp_de_point point;
} sp_de_watch;

typedef struct sp_de {
    sp_input *in;
    const sp_de_conf *conf;
    sp_docker_api *api;
    char *state_path;
    /* the worker thread and its queue, under `lock` */
    uv_thread_t thread;
    int thread_started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    sp_de_event *head, **tail;
    int64_t queued;
    atomic_int cancel;
    int worker_done;
    sp_de_point seen; /* the worker's own: what it has queued */
    uint64_t reconnects, queue_full;
    /* loop side */
    uv_async_t async;
    int paused, stopping, closing, frozen;
    sp_de_point appended, committed;
    int state_dirty;
    uint64_t last_save_ms;
    sp_list watches;
    int nwatch;
    sp_input_batch batch;
    sp_buf msg, extras;
    uint64_t counts[SP_DE_NACTIONS];
    sp_ratelimit rl;
} sp_de;

/* docker_events_stream.c */
void sp_de_worker(void *arg);
void sp_de_event_free(sp_de_event *e);
/* Takes an event key: 1 when it is new past `p` (and remembered in it), 0 when already there. */
int sp_de_point_take(sp_de_point *p, uint64_t time_nano, const char *key);
void sp_de_point_copy(sp_de_point *dst, const sp_de_point *src);

/* docker_events_state.c */
int sp_de_state_load(const char *path, sp_de_point *p);
int sp_de_state_save(const char *path, const sp_de_point *p);

#endif
