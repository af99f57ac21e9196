#!/usr/bin/env bash
# docker_logs (json-file) input throughput of shipper with the null output.
#
# Writes one log in Docker's exact json-file format (shipper-bench jsonfile) into a fake
# containers directory (<id>/<id>-json.log plus a minimal config.v2.json), starts build/shipper
# on it with `read_from: start` and the null output, and waits until the null output has counted
# every line. Prints:
#   jsonfile: N lines, B MB in T s = R MB/s (L lines/s); shipper CPU C s = X CPU-s per million;
#   peak RSS Y MB
# T runs from shipper's start to the poll that saw the last line delivered (the file is in the
# page cache: it was just written).
#
# Usage: bench/run-jsonfile.sh [--records N] [--size BYTES] [-- more shipper-bench jsonfile options]
# Env:   SHIPPER, SHIPPER_BENCH  binaries (default build/shipper, build/shipper-bench)
#        STALL_TIMEOUT           seconds without progress before giving up (default 30)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHIPPER=${SHIPPER:-$root/build/shipper}
SHIPPER_BENCH=${SHIPPER_BENCH:-$root/build/shipper-bench}
STALL_TIMEOUT=${STALL_TIMEOUT:-30}

records=2000000 size=
gen_args=()
while [ $# -gt 0 ]; do
    case $1 in
    --records) records=${2:?}; shift 2 ;;
    --size) size=${2:?}; shift 2 ;;
    --) shift; gen_args+=("$@"); break ;;
    -h | --help) sed -n '/^# Usage:/,/^#.*STALL_TIMEOUT/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run-jsonfile.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
done
[[ $records =~ ^[0-9]+$ ]] || { echo "run-jsonfile.sh: --records must be a plain integer" >&2; exit 2; }
for bin in "$SHIPPER" "$SHIPPER_BENCH"; do
    [ -x "$bin" ] || { echo "run-jsonfile.sh: $bin not found; build first" >&2; exit 2; }
done

tmp=$(mktemp -d)
pid=
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

id=$(printf 'b%.0s' $(seq 64))
mkdir -p "$tmp/containers/$id"
printf '{"ID":"%s","Name":"/bench","Config":{"Image":"bench:1","Labels":{"app":"bench"}}}\n' \
    "$id" >"$tmp/containers/$id/config.v2.json"
log=$tmp/containers/$id/$id-json.log
gen=("$SHIPPER_BENCH" jsonfile --out "$log" --records "$records")
[ -n "$size" ] && gen+=(--size "$size")
gen+=(${gen_args[@]+"${gen_args[@]}"})
"${gen[@]}" >"$tmp/gen.out"
lines=$(wc -l <"$log")
bytes=$(stat -c %s "$log")

hport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$tmp/shipper.yaml" <<CFG
service: {http_listen: "127.0.0.1:$hport"}
buffer: {flush_interval: 100ms}  # the last, partly filled chunk would wait 1 s otherwise
inputs:
  - type: docker_logs
    path: $tmp/containers
    read_from: start
outputs:
  - type: "null"
CFG


t0=$(date +%s%N)
"$SHIPPER" -c "$tmp/shipper.yaml" >"$tmp/shipper.log" 2>&1 &
pid=$!
last=-1 last_change=$(date +%s)
while :; do
    n=$(records_done null)
    t1=$(date +%s%N)
    [ "$n" -ge "$lines" ] && break
    if [ "$n" != "$last" ]; then
        last=$n last_change=$(date +%s)
    elif [ $(($(date +%s) - last_change)) -ge "$STALL_TIMEOUT" ]; then
        echo "run-jsonfile.sh: $n of $lines lines delivered, no progress for ${STALL_TIMEOUT}s" >&2
        tail -n 20 "$tmp/shipper.log" >&2
        exit 1
    fi
    kill -0 "$pid" 2>/dev/null || { echo "run-jsonfile.sh: shipper exited" >&2; tail "$tmp/shipper.log" >&2; exit 1; }
    sleep 0.01
done
ticks=$(cpu_ticks)
hwm_kb=$(peak_rss_kb)
kill -TERM "$pid"
wait "$pid" || true
pid=
awk -v n="$lines" -v b="$bytes" -v t0="$t0" -v t1="$t1" -v ticks="$ticks" \
    -v hz="$(getconf CLK_TCK)" -v kb="$hwm_kb" 'BEGIN {
        t = (t1 - t0) / 1e9
        cpu = ticks / hz
        printf "jsonfile: %d lines, %.0f MB in %.3f s = %.0f MB/s (%.0f lines/s); shipper CPU %.2f s = %.2f CPU-s per million; peak RSS %.1f MB\n",
            n, b / 1e6, t, b / 1e6 / t, n / t, cpu, cpu / (n / 1e6), kb / 1024
    }'
