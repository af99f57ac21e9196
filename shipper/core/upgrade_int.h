/* Upgrade in place, shared by its files: the channel's messages, the state of both processes.
 * upgrade.c runs the old and the new process; upgrade_channel.c carries messages and fds. */
#ifndef SP_UPGRADE_INT_H
#define SP_UPGRADE_INT_H

#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "slice.h"

struct sp_daemon;

enum { SP_UPG_READY = 1, SP_UPG_CONN, SP_UPG_START, SP_UPG_DONE };

#define SP_UPG_VERSION 1
#define SP_UPG_READY_MS 30000 /* the new process must be ready within this */
#define SP_UPG_TICK_MS 5      /* the old process checks the hand-over's progress this often */
#define SP_UPG_SEND_MS 10000  /* a write to the channel may wait this long for room */
#define SP_UPG_MAX_FDS 64     /* listening sockets passed */
#define SP_UPG_FDQ 64         /* connection fds received and not yet matched to a message */

typedef struct {
    uint32_t type;
    uint32_t len; /* payload bytes after the header */
} sp_upg_hdr;

/* A connection received before the inputs may start (new process). */
typedef struct sp_upg_conn {
    struct sp_upg_conn *next;
    int fd;
    char type[32];
    uint8_t *state;
    size_t len;
} sp_upg_conn;

enum {
    SP_UPG_IDLE,
    SP_UPG_SPAWNED, /* old: the new process is starting */
    SP_UPG_HANDING, /* old: handing over, then finishing its own work */
    SP_UPG_TAKING,  /* new: taking over from the old process */
};

/* Both processes' side of an upgrade (one per process). */
typedef struct {
    char *exe;    /* the binary's path, or NULL: exec argv[0] through PATH */
    char **argv;  /* main's, unchanged */
    sp_daemon *d; /* set by sp_upgrade_start */
    int state;
    int fd;          /* the channel, or -1 */
    pid_t child;     /* old: the new process */
    pid_t parent;    /* new: the old process */
    int handles;     /* sig and timer are initialised */
    uv_signal_t sig; /* SIGUSR2: upgrade */
    uv_signal_t hup; /* SIGHUP: reload the config, by an upgrade to the same binary */
    uv_timer_t timer;
    uv_poll_t *poll;  /* watches the channel (allocated: a channel comes and goes) */
    int conns_done;   /* old: every connection-taking input has handed over and closed */
    int outputs_held; /* old, with the spool: no delivery starts any more */
    int start_sent, start_got;
    uint64_t reap_until;
    sp_buf rx;
    int fdq[SP_UPG_FDQ];
    int nfdq;
    sp_upg_conn *stash, **stash_tail;
    uint64_t sent, send_failed; /* old: connections */
    uint64_t failed, took_over, adopted, refused;
    int reloading;                                    /* the upgrade in progress is a reload */
    uint64_t reloads_ok, reloads_failed, reload_time; /* carried to the new process */
} sp_upgrade_state;

extern sp_upgrade_state sp_upg;

/* ---- upgrade_channel.c ---- */

/** Closes the channel, its watcher and the fds received and not yet matched to a message. */
void sp_upgrade_channel_close(void);
/** Sends one message (with at most one fd); 0 or a negative errno. */
int sp_upgrade_send(uint32_t type, int fd, const void *a, size_t alen, const void *b, size_t blen);
/** Watches the channel for messages (sp_upgrade_message) and its end (sp_upgrade_eof). */
int sp_upgrade_watch(struct sp_daemon *d);

/* ---- upgrade.c ---- */

/** One message from the other process. */
void sp_upgrade_message(struct sp_daemon *d, uint32_t type, const uint8_t *p, size_t len);
/** The other process closed the channel (err: an errno, or 0). */
void sp_upgrade_eof(struct sp_daemon *d, int err);

#endif
