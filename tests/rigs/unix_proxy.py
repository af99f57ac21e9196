#!/usr/bin/env python3
"""A Unix-socket proxy: listens on LISTEN and pipes each connection to TARGET, both ways.

Stands in for dockerd's socket in tests of a daemon going away and coming back without
restarting the shared dockerd: kill the proxy (its connections close, its socket refuses), start
it again on the same path (the stale socket file is replaced).

Usage: unix_proxy.py LISTEN TARGET
"""
import os
import socket
import sys
import threading


def pipe(src, dst):
    try:
        while True:
            b = src.recv(65536)
            if not b:
                break
            dst.sendall(b)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def main():
    listen, target = sys.argv[1], sys.argv[2]
    try:
        os.unlink(listen)
    except FileNotFoundError:
        pass
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(listen)
    srv.listen(64)
    while True:
        c, _ = srv.accept()
        u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            u.connect(target)
        except OSError:
            c.close()
            continue
        for a, b in ((c, u), (u, c)):
            threading.Thread(target=pipe, args=(a, b), daemon=True).start()


main()
