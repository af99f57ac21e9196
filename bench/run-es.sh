#!/usr/bin/env bash
# Forward → shipper → elasticsearch output throughput, against build/es_sink (a C bulk sink that
# answers correct per-item responses without parsing documents, so the server is not the limit).
# The sink answers as Elasticsearch does: filtered items when the request has filter_path (shipper
# always asks for it); with --full-items it answers every item in full regardless, as a proxy,
# OpenSearch or an older cluster that drops the query would.
#
# Waits until shipper's elasticsearch output counts every record delivered (the sink acked each
# item). Prints:
#   es/<mode>/<compression>: N records in T s = R rec/s; shipper CPU C s = X CPU-s per million;
#   peak RSS Y MB; sent B MB (encoded E MB)
#
# Usage: bench/run-es.sh [--gzip] [--full-items] [--mode message|forward|packed] [--records N]
#                        [--workers W] [--conns C] [-- more shipper-bench forward options]
# Env:   SHIPPER, SHIPPER_BENCH, ES_SINK  binaries (default build/...); STALL_TIMEOUT (30);
#        MEMORY_LIMIT  buffer.memory_limit (e.g. 32MiB; default: shipper's)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHIPPER=${SHIPPER:-$root/build/shipper}
SHIPPER_BENCH=${SHIPPER_BENCH:-$root/build/shipper-bench}
ES_SINK=${ES_SINK:-$root/build/es_sink}
STALL_TIMEOUT=${STALL_TIMEOUT:-30}
mode=forward records=1000000 comp=none workers=2 conns=1 items=filtered
sink_args=()
gen_args=()
while [ $# -gt 0 ]; do
    case $1 in
    --gzip) comp=gzip; shift ;;
    --full-items) items=full; sink_args+=(--ignore-filter-path); shift ;;
    --mode) mode=${2:?}; shift 2 ;;
    --records) records=${2:?}; shift 2 ;;
    --workers) workers=${2:?}; shift 2 ;;
    --conns) conns=${2:?}; shift 2 ;;
    --) shift; gen_args+=("$@"); break ;;
    *) sed -n '/^# Usage:/,/^# Env:/p' "$0" >&2; exit 2 ;;
    esac
done
for bin in "$SHIPPER" "$SHIPPER_BENCH" "$ES_SINK"; do
    [ -x "$bin" ] || { echo "run-es.sh: $bin not found; build first" >&2; exit 2; }
done
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

"$ES_SINK" --port 0 --port-file "$tmp/sink.port" ${sink_args[@]+"${sink_args[@]}"} >/dev/null 2>&1 &
sink=$!; pids+=("$sink"); disown "$sink"
for _ in $(seq 50); do [ -s "$tmp/sink.port" ] && break; sleep 0.05; done
es_port=$(cat "$tmp/sink.port")
port=$(free_port); hport=$(free_port)
cat >"$tmp/shipper.yaml" <<YAML
service: {http_listen: "127.0.0.1:$hport", log_level: warn}
# flush 200 ms, as issue #11's runs set on both shippers (Fluent Bit -f 0.2): the last, partly
# filled chunk would wait 1 s otherwise, a fixed wait that is no throughput
buffer: {flush_interval: 200ms${MEMORY_LIMIT:+, memory_limit: $MEMORY_LIMIT}}
inputs: [{type: forward, listen: "127.0.0.1:$port"}]
outputs:
  - {type: elasticsearch, url: "http://127.0.0.1:$es_port", compression: $comp, workers: $workers}
YAML
"$SHIPPER" -c "$tmp/shipper.yaml" >"$tmp/shipper.log" 2>&1 &
pid=$!; pids+=("$pid"); disown "$pid"
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$hport/readyz" >/dev/null 2>&1 && break; sleep 0.1; done

metric() { curl -sf "http://127.0.0.1:$hport/metrics" | awk -v k="$1" '$1 == k { v = $2 } END { printf "%.0f\n", v + 0 }'; }

t0=$(cpu_ticks "$pid"); s0=$(cpu_ticks "$sink"); f0=$(minor_faults "$pid")
"$SHIPPER_BENCH" forward --addr "127.0.0.1:$port" --mode "$mode" --records "$records" \
    --conns "$conns" --quiet --stamp-file "$tmp/stamp" ${gen_args[@]+"${gen_args[@]}"} >/dev/null
key='shipper_output_records_total{output="elasticsearch",result="delivered"}'
last=-1 last_change=$(date +%s)
while :; do
    n=$(metric "$key"); t_done=$(date +%s%N)
    [ "$n" -ge "$records" ] && break
    if [ "$n" != "$last" ]; then last=$n; last_change=$(date +%s)
    elif [ $(($(date +%s) - last_change)) -ge "$STALL_TIMEOUT" ]; then
        echo "run-es.sh: delivered $n of $records, no progress for ${STALL_TIMEOUT}s" >&2
        tail -5 "$tmp/shipper.log" >&2; exit 1
    fi
    sleep 0.01
done
t1=$(cpu_ticks "$pid"); s1=$(cpu_ticks "$sink"); f1=$(minor_faults "$pid")
hwm=$(peak_rss_kb)
enc=$(metric 'shipper_es_bytes_total{output="elasticsearch",stage="encoded"}')
sent=$(metric 'shipper_es_bytes_total{output="elasticsearch",stage="sent"}')
read -r first _ <"$tmp/stamp"
awk -v m="$mode/$comp/$items" -v n="$records" -v a="$first" -v b="$t_done" -v tk=$((t1 - t0)) \
    -v sk=$((s1 - s0)) -v hz="$(getconf CLK_TCK)" -v kb="$hwm" -v enc="$enc" -v sent="$sent" -v pf=$((f1 - f0)) 'BEGIN {
    t = (b - a) / 1e9; c = tk / hz
    printf "es/%s: %d records in %.3f s = %.0f rec/s; shipper CPU %.2f s = %.2f CPU-s per million; peak RSS %.1f MB; page faults %.0f k; sent %.0f MB (encoded %.0f MB); sink CPU %.2f s\n",
        m, n, t, n / t, c, c / (n / 1e6), kb / 1024, pf / 1e3, sent / 1e6, enc / 1e6, sk / hz }'
