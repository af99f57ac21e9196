#!/usr/bin/env bash
# shipper → shipper over the forward output (PackedForward on loopback, require_ack on), end to
# end: shipper-bench → edge (forward input) → forward output → aggregator (forward input) → null.
# The figure counts records the aggregator's null output delivered, from the generator's first
# byte to the poll that saw the last one. Both shippers run with `buffer.flush_interval` FLUSH
# (--flush, default 100ms): the last, partly filled chunk waits for it on each hop (up to 1.25x
# it: the flush timer ticks at a quarter of it), and with the 1 s default that tail was 1.5-2.5 s
# of a 3-4 s run. `--flush 1s` measures with the default. Prints:
#   forward-out/<compression>: N records in T s = R rec/s; edge CPU C1 s (its loop thread L s),
#   aggregator CPU C2 s; edge page faults. L is the edge's critical path: its event loop (inputs,
#   router, writes) runs on one core; on a quiet machine throughput is about N / L.
#
# Usage: bench/run-forward-out.sh [--records N] [--gzip] [--conns C] [--no-ack] [--flush D]
#                                [--encode-threads N]  (the forward output's encode_threads)
# Env:   SHIPPER, SHIPPER_BENCH  binaries (default build/shipper, build/shipper-bench)
#        STALL_TIMEOUT           seconds without progress before giving up (default 30)
#        PERF_EDGE               a file: `perf record -g` the edge shipper into it for the run
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHIPPER=${SHIPPER:-$root/build/shipper}
SHIPPER_BENCH=${SHIPPER_BENCH:-$root/build/shipper-bench}
STALL_TIMEOUT=${STALL_TIMEOUT:-30}
records=2000000 comp=none conns=2 ack=true flush=100ms enc=
while [ $# -gt 0 ]; do
    case $1 in
    --records) records=${2:?}; shift 2 ;;
    --conns) conns=${2:?}; shift 2 ;;
    --gzip) comp=gzip; shift ;;
    --no-ack) ack=false; shift ;;
    --flush) flush=${2:?}; shift 2 ;;
    --encode-threads) enc=", encode_threads: ${2:?}"; shift 2 ;;
    *) sed -n '/^# Usage:/,/^#.*STALL_TIMEOUT/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    esac
done
[[ $records =~ ^[0-9]+$ ]] || { echo "run-forward-out.sh: --records must be a plain integer" >&2; exit 2; }
for bin in "$SHIPPER" "$SHIPPER_BENCH"; do
    [ -x "$bin" ] || { echo "run-forward-out.sh: $bin not found; build first" >&2; exit 2; }
done

tmp=$(mktemp -d)
epid= apid=
cleanup() {
    for p in $epid $apid; do kill -KILL "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -n "${KEEP_TMP:-}" ] && echo "kept $tmp" >&2 || rm -rf "$tmp"
}
trap cleanup EXIT

in_port=$(free_port) agg_port=$(free_port) ehttp=$(free_port) ahttp=$(free_port)
cat >"$tmp/agg.yaml" <<EOF
service: {http_listen: 127.0.0.1:$ahttp}
buffer: {flush_interval: $flush}
inputs:
  - {type: forward, listen: "127.0.0.1:$agg_port"}
outputs:
  - {type: "null", name: "null"}
EOF
"$SHIPPER" -c "$tmp/agg.yaml" >"$tmp/agg.log" 2>&1 &
apid=$!
cat >"$tmp/edge.yaml" <<EOF
service: {http_listen: 127.0.0.1:$ehttp}
buffer: {flush_interval: $flush}
inputs:
  - {type: forward, listen: "127.0.0.1:$in_port"}
outputs:
  - {type: forward, servers: ["127.0.0.1:$agg_port"], compression: $comp, require_ack: $ack$enc}
EOF
"$SHIPPER" -c "$tmp/edge.yaml" >"$tmp/edge.log" 2>&1 &
epid=$!
for h in $ehttp $ahttp; do
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$h/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
done
# sample_cpu: "E F L A", the edge's CPU ticks, its minor faults, its loop thread's CPU ticks and
# the aggregator's CPU ticks; fails when a process is gone (cpu_ticks says which), which ends
# the run at the caller's assignment (set -e).
sample_cpu() {
    local e f l a
    e=$(cpu_ticks "$epid") || return 1
    f=$(minor_faults "$epid")
    l=$(cpu_ticks "$epid/task/$epid") || return 1
    a=$(cpu_ticks "$apid") || return 1
    echo "$e $f $l $a"
}
perfpid=
if [ -n "${PERF_EDGE:-}" ]; then
    perf record ${PERF_ARGS:--g} -o "$PERF_EDGE" -p "$epid" >/dev/null 2>&1 &
    perfpid=$!
fi
s=$(sample_cpu)
read -r e0 f0 l0 a0 <<<"$s"
hport=$ahttp
"$SHIPPER_BENCH" forward --addr "127.0.0.1:$in_port" --mode packed --records "$records" \
    --conns "$conns" --quiet --stamp-file "$tmp/stamp" >/dev/null
last=-1 last_change=$(date +%s)
while :; do
    n=$(records_done null)
    t_done=$(date +%s%N)
    [ "$n" -ge "$records" ] && break
    if [ "$n" != "$last" ]; then
        last=$n last_change=$(date +%s)
    elif [ $(($(date +%s) - last_change)) -ge "$STALL_TIMEOUT" ]; then
        echo "run-forward-out.sh: $n of $records records arrived, no progress for ${STALL_TIMEOUT}s" >&2
        tail -5 "$tmp/edge.log" "$tmp/agg.log" >&2
        exit 1
    fi
    sleep 0.01
done
s=$(sample_cpu)
read -r e1 f1 l1 a1 <<<"$s"
[ -z "$perfpid" ] || { kill -INT "$perfpid"; wait "$perfpid" || true; }
read -r t_first _ <"$tmp/stamp"
awk -v c="$comp" -v ack="$ack" -v n="$records" -v t0="$t_first" -v t1="$t_done" -v e="$((e1 - e0))" \
    -v a="$((a1 - a0))" -v l="$((l1 - l0))" -v hz="$(getconf CLK_TCK)" -v pf="$((f1 - f0))" 'BEGIN {
        t = (t1 - t0) / 1e9
        printf "forward-out/%s%s: %d records in %.3f s = %.0f rec/s; edge CPU %.2f s (its loop thread %.2f s), aggregator CPU %.2f s; edge page faults %.0f k\n",
            c, ack == "true" ? "" : "/no-ack", n, t, n / t, e / hz, l / hz, a / hz, pf / 1e3
    }'
