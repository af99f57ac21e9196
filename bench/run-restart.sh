#!/usr/bin/env bash
# Restart time after a crash with a large spool to replay: time from exec to accepting.
#
# 1. Fill: shipper (forward with `ack: durable`, spool on, elasticsearch output) takes records from
#    shipper-bench (PackedForward, an ack per 1000-record frame) while the Elasticsearch emulator
#    is down (/_emulator/down: nothing is delivered), until the spool holds --spool-mb;
#    then SIGKILL. The fill process gets memory_limit = spool + 256 MiB so it never pauses.
# 2. Restart --runs times on that state_dir with memory_limit --memory-limit (default 256MiB, the
#    default of shipper; replay brings back up to half of it before the inputs start), Elasticsearch
#    still down (so the spool stays as it is), and measure from exec:
#      listening  the first TCP connect to the forward port that is not refused
#      ready      the first /readyz 200
#      first ack  a Forward message with a chunk id sent on that connection is acked
#                 (that is what Docker with fluentd-request-ack waits for)
#    then SIGKILL again. With --socket-activation this script holds the listening socket and
#    passes it as fd 3 (LISTEN_FDS), as systemd's shipper.socket does: connects then succeed at
#    once (the kernel queues them) and "first ack" is the figure that matters.
#    With --cold the spool files are dropped from the page cache (posix_fadvise DONTNEED on those
#    files only) before each start, as after a reboot or under memory pressure.
# Prints one line per run and a summary:
#   restart/<spool MB>/<memory_limit>/<warm|cold>/<plain|sa>: listening L s, ready R s, first ack A s (min-max)
#
# Usage: bench/run-restart.sh [--spool-mb M] [--runs R] [--socket-activation] [--cold]
#                             [--memory-limit SIZE] [--state DIR]   reuse (or keep) the filled state dir
# Env:   SHIPPER, SHIPPER_BENCH  binaries (default build/shipper, build/shipper-bench)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHIPPER=${SHIPPER:-$root/build/shipper}
SHIPPER_BENCH=${SHIPPER_BENCH:-$root/build/shipper-bench}
spool_mb=1024 runs=3 sa=0 cold=0 state='' mem=256MiB
usage() { sed -n '/^# Usage:/,/^# Env:/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
    case $1 in
    --spool-mb) spool_mb=${2:?}; shift 2 ;;
    --runs) runs=${2:?}; shift 2 ;;
    --socket-activation) sa=1; shift ;;
    --cold) cold=1; shift ;;
    --state) state=${2:?}; shift 2 ;;
    --memory-limit) mem=${2:?}; shift 2 ;;
    -h | --help) usage ;;
    *) echo "run-restart.sh: unknown option '$1'" >&2; usage ;;
    esac
done
for bin in "$SHIPPER" "$SHIPPER_BENCH"; do
    [ -x "$bin" ] || { echo "run-restart.sh: $bin not found; build first (see bench/README.md)" >&2; exit 2; }
done
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
[ -n "$state" ] || state=$tmp/state
mkdir -p "$state"

# Elasticsearch emulator, taken down: shipper's bulk requests are refused and retried.
python3 "$root/tests/rigs/es_emulator.py" --port 0 --port-file "$tmp/es.port" --control-port 0 \
    --control-port-file "$tmp/es.ctl" --fast >"$tmp/es.log" 2>&1 &
pids+=($!); disown $!
for _ in $(seq 100); do [ -s "$tmp/es.ctl" ] && break; sleep 0.05; done
es_port=$(cat "$tmp/es.port"); es_ctl=$(cat "$tmp/es.ctl")
curl -sf -X POST "http://127.0.0.1:$es_ctl/_emulator/down" >/dev/null

port=$(free_port); hport=$(free_port)
config() { # MEMORY_LIMIT
    cat <<YAML
service: {http_listen: "127.0.0.1:$hport", state_dir: "$state", log_level: warn}
buffer: {spool: true, spool_limit: 64GiB, memory_limit: $1}
inputs: [{type: forward, listen: "127.0.0.1:$port", ack: durable, metadata_path: ""}]
outputs: [{type: elasticsearch, url: "http://127.0.0.1:$es_port"}]
YAML
}
# From the files: the shipper_spool_bytes gauge reads 0 in this version.
# One line always: du exits 1 with its total printed when a file goes while it reads, and an
# `|| echo 0` after the pipeline then added a second line.
spool_bytes() { { du -sb "$state/spool" 2>/dev/null || true; } | awk '{ n = $1 } END { print n + 0 }'; }

have=$(spool_bytes)
want=$((spool_mb * 1024 * 1024))
if [ "${have:-0}" -lt "$want" ]; then
    config "$((spool_mb + 256))MiB" >"$tmp/fill.yaml"
    "$SHIPPER" -c "$tmp/fill.yaml" >"$tmp/fill.log" 2>&1 &
    fill=$!; pids+=("$fill"); disown "$fill"
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$hport/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
    "$SHIPPER_BENCH" forward --addr "127.0.0.1:$port" --mode packed --ack --records 1g --quiet \
        --ack-timeout 60 >"$tmp/gen.log" 2>&1 &
    gen=$!; pids+=("$gen"); disown "$gen"
    t0=$(date +%s)
    while :; do
        b=$(spool_bytes)
        [ "${b:-0}" -ge "$want" ] && break
        kill -0 "$fill" 2>/dev/null || { echo "run-restart.sh: shipper exited while filling" >&2; tail "$tmp/fill.log" >&2; exit 1; }
        sleep 0.5
    done
    kill -KILL "$fill" "$gen" 2>/dev/null || true
    while kill -0 "$fill" 2>/dev/null; do sleep 0.05; done
    echo "filled: $((b / 1048576)) MiB spooled in $(($(date +%s) - t0)) s, shipper SIGKILLed"
fi
mkdir -p "$state/spool"
segs=$(find "$state/spool" -name '*.seg' | wc -l)
echo "spool: $(du -sm "$state/spool" | cut -f1) MB in $segs segment files"

config "$mem" >"$tmp/run.yaml"
python3 - "$SHIPPER" "$tmp/run.yaml" "$state/spool" "$port" "$hport" "$runs" "$sa" "$cold" "$spool_mb/$mem" <<'PY'
import glob, os, signal, socket, subprocess, sys, threading, time, urllib.request
shipper, cfg, spool, port, hport, runs, sa, cold, mb = sys.argv[1:]
port, hport, runs, sa, cold = int(port), int(hport), int(runs), int(sa), int(cold)

def msg(chunk):  # ["bench.restart", 0, {"log": "probe"}, {"chunk": chunk}] in MessagePack
    s = lambda b: bytes([0xa0 | len(b)]) + b
    return (b"\x94" + s(b"bench.restart") + b"\x00" + b"\x81" + s(b"log") + s(b"probe") +
            b"\x81" + s(b"chunk") + s(chunk.encode()))

lsock = None
if sa:
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", port))
    lsock.listen(1024)
res = []
for run in range(runs):
    if cold:
        for p in glob.glob(os.path.join(spool, "*.seg")):
            fd = os.open(p, os.O_RDONLY)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            os.close(fd)
    kw = {}
    if sa:
        def child():
            os.dup2(lsock.fileno(), 3)
            os.environ["LISTEN_FDS"] = "1"
            os.environ["LISTEN_PID"] = str(os.getpid())
        kw = {"preexec_fn": child, "pass_fds": (lsock.fileno(),)}
    ready = []

    def poll_ready():
        while not ready and p.poll() is None:
            try:
                urllib.request.urlopen("http://127.0.0.1:%d/readyz" % hport, timeout=1)
                ready.append(time.monotonic() - t0)
            except Exception:
                time.sleep(0.001)
    t0 = time.monotonic()
    p = subprocess.Popen([shipper, "-c", cfg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
    poller = threading.Thread(target=poll_ready)
    poller.start()
    c = None
    while c is None:
        try:
            c = socket.create_connection(("127.0.0.1", port), timeout=120)
        except ConnectionRefusedError:
            if p.poll() is not None:
                sys.exit("shipper exited (%d)" % p.returncode)
            time.sleep(0.001)
    t_listen = time.monotonic() - t0
    chunk = "restart-probe-%d" % run
    c.sendall(msg(chunk))
    buf = b""
    while chunk.encode() not in buf:
        d = c.recv(4096)
        if not d:
            sys.exit("connection closed before the ack")
        buf += d
    t_ack = time.monotonic() - t0
    poller.join()
    if not ready:
        sys.exit("shipper exited before /readyz answered")
    t_ready = ready[0]
    c.close()
    p.send_signal(signal.SIGKILL)
    p.wait()
    print("run %d: listening %.3f s, ready %.3f s, first ack %.3f s" % (run + 1, t_listen, t_ready, t_ack))
    res.append((t_listen, t_ready, t_ack))
rng = lambda i: "%.2f-%.2f" % (min(r[i] for r in res), max(r[i] for r in res))
print("restart/%s/%s/%s: listening %s s, ready %s s, first ack %s s" % (
    mb, "cold" if cold else "warm", "sa" if sa else "plain", rng(0), rng(1), rng(2)))
PY
