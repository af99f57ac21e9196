#!/usr/bin/env python3
"""A small Forward-protocol client for tests (standard library only).

  send --addr HOST:PORT|unix:///p --count N [--tag T] [--start S] [--size B] [--mode message|forward]
       [--batch K] [--ack] [--rate R]       numbered records {"log": "seq=<i> ...", "seq": i}
       [--gap SECONDS]                      (with --ack: a pause after each ack)
  bad  --addr A --kind KIND                 sends one kind of bad input and exits 0 if the
                                            server closed the connection (as it must)
  hold --addr A --count N --seconds S       opens N idle connections and holds them
"""
import argparse, base64, os, socket, struct, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "rigs"))
from msgpack_lite import pack  # noqa: E402  (the shared MessagePack writer)


def connect(addr):
    if addr.startswith("unix://"):
        s = socket.socket(socket.AF_UNIX)
        s.connect(addr[7:])
    else:
        host, port = addr.rsplit(":", 1)
        s = socket.create_connection((host.strip("[]"), int(port)))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_ack(s, want):
    buf = b""
    while True:
        d = s.recv(4096)
        if not d:
            raise SystemExit("connection closed while waiting for ack")
        buf += d
        if want.encode() in buf:
            return


def send(a):
    s = connect(a.addr)
    pad = "x" * max(0, a.size)
    t = int(time.time())
    i = a.start
    end = a.start + a.count
    out = bytearray()
    while i < end:
        if a.mode == "message":
            rec = {"log": "seq=%d %s" % (i, pad), "seq": i, "source": "stdout",
                   "container_id": "c" * 64, "container_name": "/fwd-test"}
            opt = {}
            chunk = None
            if a.ack:
                chunk = base64.b64encode(os.urandom(12)).decode()
                opt = {"chunk": chunk}
            out += pack([a.tag, t, rec, opt])
            i += 1
        else:
            n = min(a.batch, end - i)
            entries = [[t, {"log": "seq=%d %s" % (j, pad), "seq": j}] for j in range(i, i + n)]
            chunk = base64.b64encode(os.urandom(12)).decode() if a.ack else None
            out += pack([a.tag, entries, {"chunk": chunk} if chunk else {}])
            i += n
        if a.ack:
            s.sendall(out)
            out.clear()
            read_ack(s, chunk)
            if a.progress:  # everything below i is acked: the test's record of promises
                print("acked %d" % i, flush=True)
            if a.gap:
                time.sleep(a.gap)
        elif len(out) > 65536 or i >= end:
            s.sendall(out)
            out.clear()
            if a.rate:
                time.sleep(65536 / a.rate)
    s.close()
    print("sent %d" % a.count)


def closed_by_server(s, timeout):
    s.settimeout(timeout)
    try:
        while True:
            d = s.recv(65536)
            if not d:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def bad(a):
    s = connect(a.addr)
    k = a.kind
    try:
        if k == "malformed":
            s.sendall(b"\xc1\xc1\xc1garbage")
        elif k == "shape":
            s.sendall(pack({"not": "a frame"}))
        elif k == "record_not_map":
            s.sendall(pack(["tag", 1, "string record"]))
        elif k == "oversize":  # a 2 MiB string against max_message_size 1MiB
            s.sendall(pack(["tag", 1, {"log": "y" * (2 << 20)}]))
        elif k == "deep":
            frame = b"\x93" + pack("tag") + pack(1) + b"\x81\xa1k" * 200 + b"\xc0"
            s.sendall(frame)
        elif k == "bad_gzip":
            s.sendall(pack(["tag", b"not gzip at all", {"compressed": "gzip"}]))
        elif k == "bigpartial":  # the first 1.5 MiB of a 10 MiB frame, then nothing
            head = b"\x93" + pack("tag") + pack(1) + b"\x81" + pack("log") + b"\xdb" + struct.pack(">I", 10 << 20)
            s.sendall(head + b"z" * (3 << 19))
        elif k in ("idle", "slow"):
            if k == "slow":  # half a frame, then silence
                s.sendall(pack(["tag", 1, {"log": "z" * 100}])[:20])
        else:
            raise SystemExit("unknown kind " + k)
    except (BrokenPipeError, ConnectionResetError):
        print("closed (during send)")
        return 0
    if closed_by_server(s, a.timeout):
        print("closed")
        return 0
    print("NOT closed within %ss" % a.timeout)
    return 1


def hold(a):
    socks = [connect(a.addr) for _ in range(a.count)]
    time.sleep(a.seconds)
    alive = 0
    for s in socks:
        s.setblocking(False)
        try:
            d = s.recv(1)
            alive += 0 if d == b"" else 1
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    print("alive %d" % alive)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("cmd")
    p.add_argument("--addr", required=True)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--size", type=int, default=0)
    p.add_argument("--tag", default="test.fwd")
    p.add_argument("--mode", default="message")
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--ack", action="store_true")
    p.add_argument("--rate", type=float, default=0)
    p.add_argument("--gap", type=float, default=0)  # seconds between acked frames
    p.add_argument("--progress", action="store_true", help="print 'acked N' after each ack")
    p.add_argument("--kind", default="")
    p.add_argument("--timeout", type=float, default=10)
    p.add_argument("--seconds", type=float, default=1)
    a = p.parse_args()
    if a.cmd == "send":
        send(a)
    elif a.cmd == "bad":
        sys.exit(bad(a))
    elif a.cmd == "hold":
        hold(a)


if __name__ == "__main__":
    main()
