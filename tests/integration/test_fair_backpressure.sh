#!/usr/bin/env bash
# Fair backpressure (README "Backpressure", docs/architecture.md "Fair backpressure"): real
# dockerd, fluentd driver. One container floods (`yes`), another writes a line every 10 ms with
# its own timestamp (/proc/uptime, the host's boot clock). The flood goes to an Elasticsearch
# emulator that first refuses connections (stalled: the buffer fills) and then answers slowly;
# the quiet container's lines go to stdout. With buffer.fair on, the flood's connection alone is
# paused above fair_mark: the quiet container loses nothing and its lines' latency p99 (its
# timestamp → arrival at the stdout reader) stays under 200 ms. With buffer.fair: false the
# same run pauses every input at memory_limit and the quiet lines wait: the same assertion fails.
# suite: alone
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/integration/es_lib.sh"
need_docker

NQ=400 # quiet lines: 4 s or more
cat >"$T/stamp.py" <<'PY'
import sys, time
# Each line shipper writes, with its arrival time on the boot clock the containers read.
out = open(sys.argv[1], "w")
for line in sys.stdin:
    out.write("%.3f %s" % (time.clock_gettime(time.CLOCK_BOOTTIME), line))
    out.flush()
PY

run_case() { # NAME FAIR(true|false): leaves "$T/NAME.stamped"
    local name=$1 fair=$2 P H
    P=$(free_port); H=$(free_port)
    start_emu "$name" --fast
    emu POST /_emulator/faults '{"refuse": true}' >/dev/null || { fail "$name: emulator faults"; return; }
    cat >"$T/$name.yaml" <<YAML
service:
  http_listen: 127.0.0.1:$H
buffer:
  memory_limit: 8MiB
  chunk_size: 64KiB
  flush_interval: 20ms
  fair: $fair
inputs:
  - type: forward
    listen: 127.0.0.1:$P
outputs:
  - type: stdout
    match: "quiet*"
  - type: elasticsearch
    match: "flood*"
    url: http://127.0.0.1:$EMU_PORT
    bulk_max_bytes: 512KiB
    retry_max: 500ms
YAML
    mkfifo "$T/$name.fifo"
    python3 "$T/stamp.py" "$T/$name.stamped" <"$T/$name.fifo" &
    bg_pid $!
    "$SHIPPER" -c "$T/$name.yaml" >"$T/$name.fifo" 2>"$T/$name.err" &
    local spid=$!
    bg_pid $spid
    wait_ready "127.0.0.1:$H" || { fail "$name: shipper not ready"; return; }
    local flood=fair-flood-$name-$$ quiet=fair-quiet-$name-$$
    track_container "$flood"; track_container "$quiet"
    # The quiet one first, then the flood. Docker's fluentd driver connects at the first line, so
    # the flood waits until a quiet line has arrived: the quiet connection is a source by then.
    # (A container that connects while the buffer is at memory_limit waits for the inputs'
    # resume like everything else: the hard limit stops all.)
    docker run -d --name "$quiet" --network none --log-driver=fluentd \
        --log-opt "fluentd-address=127.0.0.1:$P" --log-opt tag=quiet \
        "$IMAGE" sh -c "i=0; while [ \$i -lt $NQ ]; do read up x </proc/uptime; echo \"q \$i \$up\"; usleep 10000; i=\$((i+1)); done" >/dev/null
    for _ in $(seq 300); do grep -q '"q ' "$T/$name.stamped" 2>/dev/null && break; sleep 0.1; done
    grep -q '"q ' "$T/$name.stamped" || fail "$name: no quiet line arrived"
    docker run -d --name "$flood" --network none --log-driver=fluentd \
        --log-opt "fluentd-address=127.0.0.1:$P" --log-opt tag=flood \
        "$IMAGE" sh -c 'yes "flood flood flood flood flood flood flood flood flood flood"' >/dev/null
    # Forced: the flood fills the buffer (output stalled) before the output moves again.
    if [ "$fair" = true ]; then
        wait_metric "127.0.0.1:$H" 'shipper_source_pauses_total{input="forward"}' 1 60 &&
            ok "$name: the flood filled the buffer to fair_mark (its connection alone paused)" ||
            fail "$name: the flood never filled the buffer"
    else
        wait_metric "127.0.0.1:$H" shipper_pauses_total 1 60 &&
            ok "$name: the flood filled the buffer to memory_limit (inputs paused)" ||
            fail "$name: the flood never filled the buffer"
    fi
    sleep 1 # stalled a while with the quiet one running, then slow
    emu POST /_emulator/faults '{"refuse": null, "delay": 0.3}' >/dev/null
    timeout 120 docker wait "$quiet" >/dev/null || fail "$name: the quiet container did not finish"
    docker rm -f "$flood" >/dev/null 2>&1
    emu POST /_emulator/faults '{"delay": null}' >/dev/null
    local n=0
    for _ in $(seq 300); do
        n=$(grep -c '"q ' "$T/$name.stamped" 2>/dev/null); [ "${n:-0}" -ge $NQ ] && break
        sleep 0.2
    done
    echo "$name: flood records delivered: $(metric "127.0.0.1:$H" 'shipper_output_records_total{output="elasticsearch",result="delivered"}'), source pauses: $(metric "127.0.0.1:$H" 'shipper_source_pauses_total{input="forward"}'), global pauses: $(metric "127.0.0.1:$H" shipper_pauses_total)"
    kill -TERM $spid; wait $spid
    check_eq "$name: shipper exit code on SIGTERM" 0 "$?"
    kill "$EMU_PID" 2>/dev/null
}

# p99 NAME: prints "lost p99_ms" for the quiet container's lines.
p99() {
    python3 - "$T/$1.stamped" "$NQ" <<'PY'
import json, sys
path, n = sys.argv[1], int(sys.argv[2])
seen, lat = set(), []
for line in open(path):
    t, doc = line.split(" ", 1)
    m = json.loads(doc).get("message", "")
    if not m.startswith("q "):
        continue
    _, i, up = m.split()
    seen.add(int(i))
    lat.append(float(t) - float(up))
worst = sorted(zip(lat, range(len(lat))))[-5:]
sys.stderr.write("%s: worst latencies (s, line): %s\n" % (path, [(round(l, 3), i) for l, i in worst]))
lat.sort()
p = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else 1e9
print(n - len(seen & set(range(n))), int(p * 1000))
PY
}

run_case on true
read -r lost_on p99_on < <(p99 on)
run_case off false
read -r lost_off p99_off < <(p99 off)
echo "fair on: lost $lost_on, p99 ${p99_on} ms; fair off: lost $lost_off, p99 ${p99_off} ms"
check_eq "fair on: the quiet container loses nothing" 0 "$lost_on"
if [ "$p99_on" -lt 200 ]; then
    ok "fair on: quiet p99 latency ${p99_on} ms < 200 ms"
else
    fail "fair on: quiet p99 latency ${p99_on} ms < 200 ms"
    echo "shipper's pause lines (fair on):"; grep -h "buffer" "$T/on.err"; uptime
fi
check "fair off: the same assertion fails (quiet p99 ${p99_off} ms >= 200 ms)" [ "$p99_off" -ge 200 ]
finish
