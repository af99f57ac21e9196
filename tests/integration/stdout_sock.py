#!/usr/bin/env python3
"""Runs shipper with its stdout on a Unix socket that nobody reads until a line appears in its
log, then either drains it or closes it, so a test controls exactly when the stdout output's
write can finish or fail.

  stdout_sock.py --out FILE --err FILE --pid-file FILE --until TEXT --then drain|close -- CMD...

- Until TEXT appears in the log (--err, shipper's stderr), nothing is read: a write larger than
  the socket buffer blocks inside shipper's stdout output.
- drain: reads everything until shipper exits (the blocked write completes).
- close: takes everything shipper has written so far without consuming it (MSG_PEEK), then
  closes the socket: the blocked write fails with EPIPE. Every byte a write() reported as written
  is in --out, so no record a successful write carried is missing from it.
Exits with shipper's exit code (or 99 when TEXT never came and shipper exited).
"""
import argparse, os, socket, subprocess, sys, time

ap = argparse.ArgumentParser()
ap.add_argument("--out", required=True)
ap.add_argument("--err", required=True)
ap.add_argument("--pid-file", required=True)
ap.add_argument("--until", required=True)
ap.add_argument("--then", choices=["drain", "close"], required=True)
ap.add_argument("cmd", nargs=argparse.REMAINDER)
a = ap.parse_args()
cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd

mine, theirs = socket.socketpair()
err = open(a.err, "wb")
p = subprocess.Popen(cmd, stdout=theirs.fileno(), stderr=err, close_fds=True)
theirs.close()
with open(a.pid_file + ".tmp", "w") as f:
    f.write(str(p.pid))
os.rename(a.pid_file + ".tmp", a.pid_file)

seen = False
while not seen:
    with open(a.err, "rb") as f:
        seen = a.until.encode() in f.read()
    if not seen:
        if p.poll() is not None:
            sys.exit(99)
        time.sleep(0.02)

out = open(a.out, "wb")
if a.then == "drain":
    while True:
        d = mine.recv(1 << 20)
        if not d:
            break
        out.write(d)
else:
    mine.setblocking(False)
    try:
        out.write(mine.recv(64 << 20, socket.MSG_PEEK))
    except BlockingIOError:
        pass
    out.flush()
    mine.close()
out.close()
sys.exit(p.wait())
