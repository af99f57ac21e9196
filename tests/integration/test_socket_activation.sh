#!/usr/bin/env bash
# systemd-style socket activation: a launcher owns the listening socket (as shipper.socket does)
# and passes it as fd 3 with LISTEN_FDS=1 and LISTEN_PID set to shipper's pid. shipper takes it
# instead of binding, so across restarts the kernel keeps queueing connections: the test forces a
# client to connect and send while no shipper runs at all (between one process's exit and the
# next one's start); the connect succeeds, and once the next shipper starts, its records are
# acked and arrive. Five restarts. An inherited socket that matches no input is closed with a
# warning. (Without socket activation such a connect is refused; the old code did not start at
# all, its bind failing with the address in use.)
. "$(dirname "$0")/lib.sh"
P=$(free_port); H=$(free_port); M="127.0.0.1:$H"
cat >"$T/s.yaml" <<YAML
service: {http_listen: "$M", grace: 5s}
buffer: {flush_interval: 100ms}
inputs:
  - {type: forward, listen: "127.0.0.1:$P"}
outputs:
  - type: stdout
YAML
python3 - "$SHIPPER" "$T" "$P" "$M" <<'PY' || FAILS=$((FAILS + 1))
import os, signal, socket, subprocess, sys, time, urllib.request
sys.path.insert(0, os.path.join(os.environ.get("ROOT", "."), "tests", "integration"))
shipper, T, port, maddr = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
from fwd_client import pack

lsock = socket.socket()
lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lsock.bind(("127.0.0.1", port))
lsock.listen(1024)
extra = socket.socket()  # a second passed socket that no input listens on
extra.bind(("127.0.0.1", 0))
extra.listen(8)
out = open(os.path.join(T, "s.out"), "ab")
err = open(os.path.join(T, "s.err"), "ab")

def start(n):
    def child():
        os.dup2(lsock.fileno(), 3)
        os.dup2(extra.fileno(), 4)
        os.environ["LISTEN_FDS"] = "2"
        os.environ["LISTEN_PID"] = str(os.getpid())
    p = subprocess.Popen([shipper, "-c", os.path.join(T, "s.yaml")], stdout=out, stderr=err,
                         preexec_fn=child, pass_fds=(lsock.fileno(), extra.fileno()))
    return p

def ready():
    for _ in range(200):
        try:
            urllib.request.urlopen("http://%s/readyz" % maddr, timeout=1)
            return True
        except Exception:
            time.sleep(0.05)
    return False

def send_acked(s, first, n):
    buf = b""
    for i in range(first, first + n):
        chunk = "c%d" % i
        s.sendall(pack(["act.test", int(time.time()), {"log": "seq=%d" % i, "seq": i}, {"chunk": chunk}]))
        while chunk.encode() not in buf:
            d = s.recv(4096)
            if not d:
                raise SystemExit("closed while waiting for ack %d" % i)
            buf += d

fails = 0
p = start(0)
if not ready():
    print("FAIL: shipper did not start on the inherited socket"); sys.exit(1)
seq = 0
refused = 0
for r in range(5):
    c = socket.create_connection(("127.0.0.1", port), timeout=20)
    send_acked(c, seq, 50); seq += 50
    c.close()
    p.send_signal(signal.SIGTERM)
    rc = p.wait(timeout=30)
    if rc != 0:
        print("FAIL: shipper exited %d on SIGTERM" % rc); fails += 1
    # No shipper runs now. A client connects and sends: the kernel queues it.
    try:
        c = socket.create_connection(("127.0.0.1", port), timeout=5)
    except ConnectionRefusedError:
        refused += 1
        continue
    c.settimeout(20)
    for i in range(seq, seq + 20):
        c.sendall(pack(["act.test", int(time.time()), {"log": "seq=%d" % i, "seq": i}, {"chunk": "c%d" % i}]))
    p = start(r + 1)
    buf = b""
    while ("c%d" % (seq + 19)).encode() not in buf:
        d = c.recv(4096)
        if not d:
            print("FAIL: the queued connection was closed before its acks"); fails += 1; break
        buf += d
    seq += 20
    c.close()
    if not ready():
        print("FAIL: restart %d did not become ready" % (r + 1)); fails += 1
p.send_signal(signal.SIGTERM)
p.wait(timeout=30)
print(("ok: " if refused == 0 else "FAIL: ") + "no connection refused across 5 restarts (%d refused)" % refused)
fails += refused > 0
import json
seqs = sorted(json.loads(l)["seq"] for l in open(os.path.join(T, "s.out")))
ok = seqs == list(range(seq))
print(("ok: " if ok else "FAIL: ") + "every acked record arrived once (%d of %d)" % (len(seqs), seq))
fails += not ok
sys.exit(1 if fails else 0)
PY
check "an inherited socket no input uses is closed with a warning" grep -q "matches no input" "$T/s.err"
check "the forward input used the inherited socket" grep -q "using the inherited socket" "$T/s.err"
finish
