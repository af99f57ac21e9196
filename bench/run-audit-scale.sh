#!/usr/bin/env bash
# docker_audit at scale (issue #15): N idle containers, shipper with docker_audit (interval 30s,
# drift on) and docker_events into the null output. Measures, after the first scan:
#   cpu       shipper's utime+stime from /proc/PID/stat over --window seconds (default three
#             intervals), as a percentage of one core
#   loop lag  shipper_loop_lag_seconds_max (the worst lag of the event loop since start, from a
#             100 ms timer: shipper/core/looplag.c)
#   scan time shipper_audit_scan_seconds (the last completed scan: list, inspect each container,
#             fetch its changes) and the first scan's
# Prints: "containers N, cpu X% of one core, loop lag max Y ms, scan time Z s (first F s)",
# then removes the containers (also on Ctrl-C or failure).
#
# Usage: bench/run-audit-scale.sh [--containers N] [--interval S] [--window S] [--concurrency C]
# Env:   SHIPPER (default build/shipper). Needs dockerd (tests/rigs/dockerd.sh starts one) and
#        the busybox image the tests use. Containers: `sleep` with --network none and no logging.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHIPPER=${SHIPPER:-$root/build/shipper}
n=200 interval=30 window= conc=4
while [ $# -gt 0 ]; do
    case $1 in
    --containers) n=$2; shift 2 ;;
    --interval) interval=$2; shift 2 ;;
    --window) window=$2; shift 2 ;;
    --concurrency) conc=$2; shift 2 ;;
    *) echo "usage: $0 [--containers N] [--interval S] [--window S] [--concurrency C]" >&2; exit 2 ;;
    esac
done
window=${window:-$((3 * interval))}
"$root/tests/rigs/dockerd.sh" >/dev/null || { echo "bench: docker unavailable" >&2; exit 1; }
img=shipper-test-busybox
label=shipper-bench-audit=$$
tmp=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    docker ps -aq --filter "label=$label" | xargs -r -n 50 docker rm -f >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

echo "bench: starting $n containers ($img sleep, --network none)" >&2
seq "$n" | xargs -P 4 -I{} docker run -d --label "$label" --name "audscale-$$-{}" --network none \
    --log-driver none "$img" sleep 86400 >/dev/null 2>"$tmp/run.err" || true
up=$(docker ps -q --filter "label=$label" | wc -l)
if [ "$up" -lt "$n" ]; then
    echo "bench: only $up of $n containers started: $(tail -n 1 "$tmp/run.err")" >&2
fi

hport=$(free_port)
cat >"$tmp/audit.yaml" <<YAML
service:
  http_listen: 127.0.0.1:$hport
  state_dir: $tmp/state
inputs:
  - type: docker_audit
    interval: ${interval}s
    drift: true
    concurrency: $conc
  - type: docker_events
outputs:
  - type: null
YAML
mkdir -p "$tmp/state"
"$SHIPPER" -c "$tmp/audit.yaml" >"$tmp/shipper.log" 2>&1 &
pid=$!
t0=$(date +%s.%N)
metric_of() {
    curl -sf --max-time 2 "http://127.0.0.1:$hport/metrics" |
        awk -v m="$1" '!f && index($0, m) == 1 { print $NF; f = 1 }'
}
scans() { local v; v=$(metric_of 'shipper_audit_scans_total{'); echo "${v:-0}"; }
for _ in $(seq 1200); do [ "$(scans)" -ge 1 ] && break; sleep 0.1; cpu_ticks >/dev/null; done
[ "$(scans)" -ge 1 ] || { echo "bench: no scan completed in 120 s" >&2; tail "$tmp/shipper.log" >&2; exit 1; }
first=$(metric_of 'shipper_audit_scan_seconds{')
echo "bench: first scan $first s ($(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s after exec); measuring CPU over $window s" >&2
hz=$(getconf CLK_TCK)
c0=$(cpu_ticks) w0=$(date +%s.%N)
sleep "$window"
c1=$(cpu_ticks) w1=$(date +%s.%N)
lag=$(metric_of 'shipper_loop_lag_seconds_max ')
scan=$(metric_of 'shipper_audit_scan_seconds{')
nscans=$(scans)
echo "bench: load average $(cut -d" " -f1-3 /proc/loadavg) on $(nproc) cores (other work on the machine counts in the figures)" >&2
awk -v n="$up" -v c0="$c0" -v c1="$c1" -v w0="$w0" -v w1="$w1" -v hz="$hz" -v lag="$lag" \
    -v scan="$scan" -v first="$first" -v k="$nscans" 'BEGIN {
    printf "containers %d, cpu %.2f%% of one core, loop lag max %.1f ms, scan time %.2f s (first %.2f s, %d scans)\n",
        n, 100 * (c1 - c0) / hz / (w1 - w0), lag * 1000, scan, first, k }'
