#!/usr/bin/env bash
# Side by side: the same scenario against shipper and against another Forward endpoint given as
# a command line (a Fluent Bit, Fluentd or Vector binary you have), in alternating runs, with the
# ratio of each figure. The scenario is Forward in → Elasticsearch bulk out: shipper-bench sends
# Docker-style frames, build/es_sink answers bulk requests (as Elasticsearch does: filtered items
# when the request has filter_path, full items otherwise; --full-items: always full), and a run
# ends when the sink has acknowledged every record — the same finish line for both, observed
# outside either program.
#
# Usage: bench/compare.sh --against 'COMMAND' [--records N] [--mode message|forward|packed]
#                         [--conns C] [--runs R] [--full-items] [--gzip] [--ack]
#                         [--ours 'COMMAND']
#   COMMAND is word-split and may use {FORWARD_PORT}, {ES_PORT} and {TMP} (a scratch dir); it
#   must listen for Forward on 127.0.0.1:{FORWARD_PORT} and send to http://127.0.0.1:{ES_PORT}.
#   --ours defaults to build/shipper with a config of one forward input and one elasticsearch
#   output (compression per --gzip; flush_interval 200ms, as -f 0.2 below). Example, Fluent Bit 2.1+:
#     bench/compare.sh --against '/opt/fluent-bit/bin/fluent-bit -q -f 0.2
#         -i forward -p listen=127.0.0.1 -p port={FORWARD_PORT}
#         -o es -p host=127.0.0.1 -p port={ES_PORT} -p suppress_type_name=on -p buffer_size=false
#         -m "*"'
# --ack: the client asks for an ack of every frame and waits for it (one frame in flight per
# connection, as Docker's fluentd-request-ack); the rate is then the client's own, from its first
# write to its last ack (the endpoint's flush interval after that is not the client's wait).
# Prints, per run: records/s end to end, CPU-s per million records (the endpoint process, all
# threads), peak RSS; then medians and the ratio ours/theirs. The generator's own CPU is shown:
# when it used nearly a whole core per connection it may have been the limit (said so).
# Env: SHIPPER, SHIPPER_BENCH, ES_SINK (default build/...); STALL_TIMEOUT (seconds, 60)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHIPPER=${SHIPPER:-$root/build/shipper}
SHIPPER_BENCH=${SHIPPER_BENCH:-$root/build/shipper-bench}
ES_SINK=${ES_SINK:-$root/build/es_sink}
STALL_TIMEOUT=${STALL_TIMEOUT:-60}
against="" ours="" records=1000000 mode=message conns=1 runs=3 comp=none ack=0
sink_args=()
gen_args=()
usage() { sed -n '/^# Usage:/,/^# Env:/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
    case $1 in
    --against) against=${2:?}; shift 2 ;;
    --ours) ours=${2:?}; shift 2 ;;
    --records) records=${2:?}; shift 2 ;;
    --mode) mode=${2:?}; shift 2 ;;
    --conns) conns=${2:?}; shift 2 ;;
    --runs) runs=${2:?}; shift 2 ;;
    --full-items) sink_args+=(--ignore-filter-path); shift ;;
    --gzip) comp=gzip; shift ;;
    --ack) ack=1; gen_args+=(--ack); shift ;;
    *) usage ;;
    esac
done
[ -n "$against" ] || usage
[[ $records =~ ^[0-9]+$ ]] || { echo "compare.sh: --records must be a plain integer" >&2; exit 2; }
for bin in "$SHIPPER" "$SHIPPER_BENCH" "$ES_SINK"; do
    [ -x "$bin" ] || { echo "compare.sh: $bin not found; build first" >&2; exit 2; }
done
if [ -z "$ours" ]; then
    ours="$SHIPPER -c {TMP}/shipper.yaml"
fi

tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
hz=$(getconf CLK_TCK)

# run NAME COMMAND: one run; prints "rate cpu_per_m rss_mb gen_cpu_s wall_s" to $tmp/NAME.runs
run() {
    local name=$1 cmd=$2 run_dir="$tmp/run"
    rm -rf "$run_dir"; mkdir -p "$run_dir"
    "$ES_SINK" --port 0 --port-file "$run_dir/sink.port" ${sink_args[@]+"${sink_args[@]}"} \
        >/dev/null 2>&1 &
    local sink=$!; pids+=("$sink")
    for _ in $(seq 100); do [ -s "$run_dir/sink.port" ] && break; sleep 0.05; done
    local es_port fwd_port
    es_port=$(cat "$run_dir/sink.port"); fwd_port=$(free_port)
    cat >"$run_dir/shipper.yaml" <<YAML
service: {http_listen: "", log_level: warn}
buffer: {flush_interval: 200ms} # as the Fluent Bit example's -f 0.2
inputs: [{type: forward, listen: "127.0.0.1:$fwd_port"}]
outputs: [{type: elasticsearch, url: "http://127.0.0.1:$es_port", compression: $comp}]
YAML
    cmd=${cmd//\{FORWARD_PORT\}/$fwd_port}; cmd=${cmd//\{ES_PORT\}/$es_port}; cmd=${cmd//\{TMP\}/$run_dir}
    # shellcheck disable=SC2086 # the command line is word-split on purpose
    eval "set -- $cmd"
    "$@" >"$run_dir/endpoint.log" 2>&1 &
    local pid=$!; pids+=("$pid")
    for _ in $(seq 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$fwd_port") 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || { echo "compare.sh: $name exited; its log:" >&2; tail "$run_dir/endpoint.log" >&2; exit 1; }
        sleep 0.05
    done
    local t0 g0 g1
    t0=$(cpu_ticks "$pid")
    g0=$(awk '{print $14 + $15 + $16 + $17}' /proc/self/stat)
    /usr/bin/time -f "%e %U %S" -o "$run_dir/gen.time" "$SHIPPER_BENCH" forward \
        --addr "127.0.0.1:$fwd_port" --mode "$mode" --records "$records" --conns "$conns" \
        --quiet --stamp-file "$run_dir/stamp" ${gen_args[@]+"${gen_args[@]}"} >/dev/null
    local n=0 last=-1 last_change t_done
    last_change=$(date +%s)
    while :; do
        n=$(curl -sf "http://127.0.0.1:$es_port/_sink/count" | tr -dc 0-9); n=${n:-0}
        t_done=$(date +%s%N)
        [ "$n" -ge "$records" ] && break
        if [ "$n" != "$last" ]; then last=$n; last_change=$(date +%s)
        elif [ $(($(date +%s) - last_change)) -ge "$STALL_TIMEOUT" ]; then
            echo "compare.sh: $name: the sink has $n of $records records, no progress for ${STALL_TIMEOUT}s" >&2
            tail -5 "$run_dir/endpoint.log" >&2; exit 1
        fi
        sleep 0.01
    done
    local t1 rss first gen
    t1=$(cpu_ticks "$pid"); rss=$(peak_rss_kb "$pid")
    local last_ack
    read -r first last_ack _ <"$run_dir/stamp"
    [ "$ack" = 1 ] && t_done=$last_ack # --ack: the client's rate, first write to last ack
    read -r gen_wall gen_u gen_s <"$run_dir/gen.time"
    kill -KILL "$pid" "$sink" 2>/dev/null || true
    wait "$pid" "$sink" 2>/dev/null || true
    awk -v n="$records" -v a="$first" -v b="$t_done" -v tk=$((t1 - t0)) -v hz="$hz" -v kb="$rss" \
        -v gu="$gen_u" -v gs="$gen_s" -v gw="$gen_wall" -v c="$conns" -v name="$name" 'BEGIN {
        t = (b - a) / 1e9; cpu = tk / hz; g = gu + gs
        printf "%s: %d records in %.3f s = %.0f rec/s; CPU %.2f s = %.2f CPU-s per million; peak RSS %.1f MB; generator CPU %.2f s%s\n",
            name, n, t, n / t, cpu, cpu / (n / 1e6), kb / 1024, g,
            (gw > 0 && g / gw > 0.9 * c) ? " (generator-bound: it used ~a core per connection)" : ""
        printf "%.0f %.4f %.1f\n", n / t, cpu / (n / 1e6), kb / 1024 >> ENVIRON["tmp"] "/" name ".runs" }'
}
export tmp
for i in $(seq "$runs"); do
    run ours "$ours"
    run theirs "$against"
done
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
printf '\nmedians over %d alternating runs (%s frames%s, %d records, %d connection(s)):\n' "$runs" "$mode" \
    "$([ "$ack" = 1 ] && echo ", each acked before the next")" "$records" "$conns"
printf '%-8s %12s %14s %10s\n' "" "rec/s" "CPU-s per M" "peak MB"
for who in ours theirs; do
    r=$(cut -d' ' -f1 "$tmp/$who.runs" | median); c=$(cut -d' ' -f2 "$tmp/$who.runs" | median)
    m=$(cut -d' ' -f3 "$tmp/$who.runs" | median)
    printf '%-8s %12.0f %14.2f %10.1f\n' "$who" "$r" "$c" "$m"
    eval "${who}_r=$r ${who}_c=$c ${who}_m=$m"
done
awk -v a="$ours_r" -v b="$theirs_r" -v c="$ours_c" -v d="$theirs_c" -v e="$ours_m" -v f="$theirs_m" \
    'BEGIN { printf "%-8s %11.2fx %13.2fx %9.2fx\n", "ratio", a / b, c / d, e / f }'
