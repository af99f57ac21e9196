/*
 * Listening sockets handed to shipper instead of bound by it: systemd socket activation
 * (LISTEN_PID, LISTEN_FDS: fds 3, 4, ... already listening), which lets the kernel queue new
 * connections while shipper restarts. An input that would bind an address takes the inherited
 * socket bound to that address instead (docs/deploy.md, "Socket activation").
 */
#ifndef SP_LISTENFDS_H
#define SP_LISTENFDS_H

#include "addr.h"

/**
 * Reads LISTEN_PID and LISTEN_FDS once, at start: when LISTEN_PID is this process, fds 3 ..
 * 3 + LISTEN_FDS - 1 are kept (close-on-exec) for sp_listenfds_take. The variables are removed
 * from the environment, so children do not see them. Returns the number of fds kept.
 */
int sp_listenfds_init(void);

/** The inherited listening socket bound to `a` (TCP address and port, or unix path), or -1. */
int sp_listenfds_take(const sp_addr *a);

/** Closes the inherited sockets no input took, logging each; returns how many there were. */
int sp_listenfds_close_unused(void);

#endif
