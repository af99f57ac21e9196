/* The input interface: a source of records (forward listener, json-file tailer). */
#ifndef SP_INPUT_H
#define SP_INPUT_H

#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "list.h"

typedef struct sp_input sp_input;
struct sp_router;

/** What an input type declares: its settings and its callbacks. */
typedef struct {
    const char *name;            /* the `type:` value */
    const sp_conf_field *fields; /* settings; the struct is `conf_size` bytes */
    size_t conf_size;
    const char *unsupported;    /* non-NULL: rejected at config time with this reason */
    const char *const *planned; /* keys rejected as "not supported yet (planned)" */
    /** Validates settings beyond their types (0, or -1 with err set). Optional. */
    int (*check)(sp_input *in, const sp_node *n, sp_conf_err *err);
    /** Binds, listens or starts watching; 0 or a negative errno. */
    int (*start)(sp_input *in);
    /** Stop reading (buffer full) / read again. Connections and files stay open. */
    void (*pause)(sp_input *in);
    void (*resume)(sp_input *in);
    /** Once a second: timeouts and housekeeping. Optional. */
    void (*tick)(sp_input *in, uint64_t now_ms);
    /** Stop accepting and reading, close every handle; call sp_input_closed when all are. */
    void (*stop)(sp_input *in);
    /** Appends input-specific Prometheus lines. Optional. */
    void (*metrics)(sp_input *in, sp_buf *out);
    /* Upgrade in place (docs/deploy.md, "Upgrades"). Inputs with `adopt` take connections from
     * the previous process and start as soon as it stops accepting; the others start once it
     * has exited (their state files are final then). All optional. */
    /** The listening socket the next process takes over, or -1. */
    int (*listen_fd)(sp_input *in);
    /** Takes connection `fd` that the previous process handed over with `state` (made by this
     * input type's hand-over): 0 when taken, 1 when refused (closed, the reason logged),
     * -ENOENT when it belongs to another listener, another negative errno when malformed. */
    int (*adopt)(sp_input *in, int fd, const uint8_t *state, size_t len);
} sp_input_type;

#define SP_INPUT_MAX_REASONS 16

struct sp_input {
    const sp_input_type *type;
    char *name; /* for metrics: the type, or type.N when there are several */
    int index;
    int line;   /* where it was configured */
    void *conf; /* the settings struct */
    void *data; /* the running instance */
    uv_loop_t *loop;
    struct sp_router *router;
    const char *state_dir; /* service.state_dir, or NULL: where inputs may keep state */
    int closed;
    int started;
    int needs_spool; /* set by `check` when a setting only works with buffer.spool */
    /* Nonzero: `stop` hands the connections over to the next process (sp_upgrade_send_conn)
     * instead of closing them, giving each up to this many ms to reach a point where it can. */
    uint64_t handover_ms;
    uint64_t records, bytes;
    struct {
        const char *reason;
        uint64_t n;
    } errors[SP_INPUT_MAX_REASONS];
};

/** Counts an error by reason (a string literal: "malformed", "too_large", ...). */
void sp_input_error(sp_input *in, const char *reason);
/** The input's handles are all closed (stop is complete). */
void sp_input_closed(sp_input *in);

#endif
