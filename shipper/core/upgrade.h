/*
 * Upgrade in place (SIGUSR2; docs/deploy.md, "Upgrades"). The running process (the old one)
 * starts the binary at the path it was started from, with the same arguments, passing it the
 * listening sockets the way systemd socket activation does (fds 3.., LISTEN_FDS, LISTEN_PID)
 * and one end of a Unix socket. Over that socket:
 *
 *   new -> old  READY  config loaded, outputs started: the hand-over may begin
 *   old -> new  CONN   one open connection: its fd (SCM_RIGHTS), its input type, and the state
 *                      that input needs to go on with it (unparsed bytes, handshake)
 *   old -> new  START  every connection is handed over and the spool is closed: inputs that
 *                      take connections may start (and the spool opens)
 *   old -> new  DONE   the old process has closed everything (json-file offsets are final):
 *                      the other inputs start; the old process exits 0
 *
 * A new process that fails before READY (a bad config exits 2) changes nothing: the old one logs
 * it and goes on serving.
 */
#ifndef SP_UPGRADE_H
#define SP_UPGRADE_H

#include <stddef.h>

#include "slice.h"

struct sp_daemon;

/**
 * At the start of main, after sp_listenfds_init: remembers the binary's path (resolved now,
 * before a package manager can replace the file) and the arguments; in a process started by an
 * upgrade, picks up the channel to the old process (SHIPPER_UPGRADE_FD).
 */
void sp_upgrade_init(int argc, char **argv);

/**
 * Called by the daemon once its outputs run: installs the SIGUSR2 handler. In a process
 * started by an upgrade, tells the old process it is ready and returns 1: its inputs start when
 * the old process says so (sp_daemon_start_inputs). Else returns 0.
 */
int sp_upgrade_start(struct sp_daemon *d);

/**
 * The daemon has closed everything: tells the new process (DONE), releases the upgrade's
 * handles, and removes the pid file if it still names this process.
 */
void sp_upgrade_closed(struct sp_daemon *d);

/**
 * For inputs that hand connections over (in their `stop`, when sp_input.handover_ms is set):
 * sends connection `fd` of input type `type` with the `state` the new process's `adopt` reads.
 * 0 or a negative errno; the caller closes its own handle either way (the connection stays open
 * in the new process, so the client sees nothing).
 */
int sp_upgrade_send_conn(const char *type, int fd, const void *state, size_t len);

/**
 * This process is running (after an upgrade: has taken over): writes service.pid_file (if set)
 * atomically, and tells systemd (NOTIFY_SOCKET, Type=notify) it is ready and the main process.
 */
void sp_upgrade_running(struct sp_daemon *d);

/** Appends the upgrade metrics. */
void sp_upgrade_metrics(sp_buf *out);

#endif
