#!/usr/bin/env bash
# Durable-ack latency while an Elasticsearch flood keeps shipper's thread pool busy.
#
# One shipper, spool on, two forward inputs: the flood (no acks) on one, and a Docker-like
# client on the other (`ack: durable`, one frame in flight: each ack waits for an fsync). Both go
# to the elasticsearch output, against build/es_sink. The flood's encoders (and everything else
# that uses libuv's thread pool) run while the acked client measures each ack's latency; the
# figures are the acked client's (shipper-bench: median, p99, max). Prints:
#   durable-ack latency under an ES flood: acked N frames: median A ms, p99 B ms, max C ms;
#   flood R rec/s
# Then the same acked run without the flood, for comparison.
#
# Usage: bench/run-durable-latency.sh [--acked N] [--flood N] [--workers W] [--memory-limit SIZE]
# Env:   SHIPPER, SHIPPER_BENCH, ES_SINK  binaries (default build/...)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHIPPER=${SHIPPER:-$root/build/shipper}
SHIPPER_BENCH=${SHIPPER_BENCH:-$root/build/shipper-bench}
ES_SINK=${ES_SINK:-$root/build/es_sink}
acked=5000 flood=20000000 workers=2 mem=256MiB
while [ $# -gt 0 ]; do
    case $1 in
    --acked) acked=${2:?}; shift 2 ;;
    --flood) flood=${2:?}; shift 2 ;;
    --workers) workers=${2:?}; shift 2 ;;
    --memory-limit) mem=${2:?}; shift 2 ;;
    *) sed -n '/^# Usage:/,/^# Env:/p' "$0" >&2; exit 2 ;;
    esac
done
for bin in "$SHIPPER" "$SHIPPER_BENCH" "$ES_SINK"; do
    [ -x "$bin" ] || { echo "run-durable-latency.sh: $bin not found; build first" >&2; exit 2; }
done
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

"$ES_SINK" --port 0 --port-file "$tmp/sink.port" >/dev/null 2>&1 &
sink=$!; pids+=("$sink"); disown "$sink"
for _ in $(seq 50); do [ -s "$tmp/sink.port" ] && break; sleep 0.05; done
es_port=$(cat "$tmp/sink.port")
fport=$(free_port); aport=$(free_port); hport=$(free_port)
cat >"$tmp/shipper.yaml" <<YAML
service: {http_listen: "127.0.0.1:$hport", log_level: warn, state_dir: "$tmp/state"}
buffer: {spool: true, memory_limit: $mem}
inputs:
  - {type: forward, listen: "127.0.0.1:$fport", name: flood}
  - {type: forward, listen: "127.0.0.1:$aport", name: acked, ack: durable}
outputs:
  - {type: elasticsearch, url: "http://127.0.0.1:$es_port", workers: $workers}
YAML
"$SHIPPER" -c "$tmp/shipper.yaml" >"$tmp/shipper.log" 2>&1 &
pid=$!; pids+=("$pid"); disown "$pid"
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$hport/readyz" >/dev/null 2>&1 && break; sleep 0.1; done

acked_run() { # TAG
    "$SHIPPER_BENCH" forward --addr "127.0.0.1:$aport" --mode message --records "$acked" --ack \
        --window 1 --tag "$1" --quiet | awk '/ack latency/ { sub(/.*over /, ""); print }'
}

# Without the flood first: the floor.
quiet=$(acked_run quiet)
# With it: start the flood, wait until the output is busy, then measure.
"$SHIPPER_BENCH" forward --addr "127.0.0.1:$fport" --mode forward --records "$flood" --quiet \
    --stamp-file "$tmp/flood.stamp" >/dev/null 2>&1 &
gen=$!; pids+=("$gen")
key='shipper_output_records_total{output="elasticsearch",result="delivered"}'
metric() { curl -sf "http://127.0.0.1:$hport/metrics" | awk -v k="$1" '$1 == k { v = $2 } END { printf "%.0f\n", v + 0 }'; }
for _ in $(seq 100); do [ "$(metric "$key")" -gt 1000000 ] && break; sleep 0.1; done
n0=$(metric "$key"); t0=$(date +%s%N); p0=$(metric shipper_pauses_total)
f0=$(metric shipper_spool_fsyncs_total)
busy=$(acked_run busy)
n1=$(metric "$key"); t1=$(date +%s%N); p1=$(metric shipper_pauses_total)
f1=$(metric shipper_spool_fsyncs_total)
kill "$gen" 2>/dev/null || true
rate=$(awk -v a="$n0" -v b="$n1" -v s="$t0" -v e="$t1" 'BEGIN { printf "%.0f", (b - a) / ((e - s) / 1e9) }')
echo "durable-ack latency, one frame in flight, no flood:  $quiet"
echo "durable-ack latency, one frame in flight, ES flood:  $busy; flood delivered $rate rec/s meanwhile; inputs paused $((p1 - p0)) times (memory_limit $mem); $((f1 - f0)) fsyncs"
