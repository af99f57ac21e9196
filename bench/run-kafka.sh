#!/usr/bin/env bash
# Forward → shipper → kafka output → Kafka mock cluster throughput.
#
# Starts build/kafka_mock (3 brokers, one topic), build/shipper with the forward input and the
# kafka output on free loopback ports, sends Docker-shaped records with shipper-bench, and waits
# until the kafka output has counted every record delivered, i.e. acknowledged by the brokers
# (acks=all, idempotent). Then checks the topic's high watermarks equal the records sent. Prints:
#   kafka/<compression>: N records in T s = R rec/s; shipper CPU C s = X CPU-s per million; peak RSS Y MB
# CPU is shipper's own (utime+stime from /proc/PID/stat, all its threads including librdkafka's);
# the mock cluster runs on the same machine and its CPU is not counted. A second line splits it by
# thread: the event loop, libuv's pool (encoding) and librdkafka's threads (rdk:*), in CPU-s/M. A
# third counts their context switches (wake-ups) per 1000 records, the output's QUEUE_FULL
# returns, and the mock cluster's own CPU (a separate process), for reference.
#
# Usage: bench/run-kafka.sh [--records N] [--compression none|lz4|zstd|gzip|snappy]
#                           [--conns C] [--containers K] [--partitions P]
#                           [--property KEY=VALUE]...  (more librdkafka properties)
#                           [--perf FILE]  (perf record the run into FILE, print the event loop's
#                                           split; perf's sampling costs CPU: not for figures)
#                           [-- more shipper-bench forward options]
# Env:   SHIPPER, SHIPPER_BENCH, KAFKA_MOCK  binaries (default build/...)
#        SHIPPER_ARGS   extra daemon flags (default none)
#        STALL_TIMEOUT  seconds without progress before giving up (default 30)
#        MEMORY_LIMIT   buffer.memory_limit (e.g. 32MiB; default: shipper's)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHIPPER=${SHIPPER:-$root/build/shipper}
SHIPPER_BENCH=${SHIPPER_BENCH:-$root/build/shipper-bench}
KAFKA_MOCK=${KAFKA_MOCK:-$root/build/kafka_mock}
STALL_TIMEOUT=${STALL_TIMEOUT:-30}

records=1000000 compression=none conns=1 containers=16 partitions=6 perf_out=
gen_args=()
props=""
usage() {
    sed -n '/^# Usage:/,/^#.*STALL_TIMEOUT/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}
while [ $# -gt 0 ]; do
    case $1 in
    --records) records=${2:?}; shift 2 ;;
    --compression) compression=${2:?}; shift 2 ;;
    --conns) conns=${2:?}; shift 2 ;;
    --containers) containers=${2:?}; shift 2 ;;
    --partitions) partitions=${2:?}; shift 2 ;;
    --property) props="$props, ${2%%=*}: \"${2#*=}\""; shift 2 ;;
    --perf) perf_out=${2:?}; shift 2 ;;
    --) shift; gen_args+=("$@"); break ;;
    -h | --help) usage ;;
    *) echo "run-kafka.sh: unknown option '$1'" >&2; usage ;;
    esac
done
[[ $records =~ ^[0-9]+$ ]] || { echo "run-kafka.sh: --records must be a plain integer" >&2; exit 2; }
for bin in "$SHIPPER" "$SHIPPER_BENCH" "$KAFKA_MOCK"; do
    [ -x "$bin" ] || { echo "run-kafka.sh: $bin not found; build first" >&2; exit 2; }
done

# thread_ticks: "LOOP POOL RDK" clock ticks of shipper's threads (see the header), then
# "LOOP_CS POOL_CS RDK_CS": their context switches (voluntary + involuntary), i.e. wake-ups.
thread_ticks() {
    local f stat rest tid comm cs loop=0 pool=0 rdk=0 lcs=0 pcs=0 rcs=0
    for f in /proc/"$pid"/task/*/stat; do
        read -r stat 2>/dev/null <"$f" || continue
        cs=$(awk '/ctxt_switches/ { n += $2 } END { print n + 0 }' "${f%stat}status" 2>/dev/null)
        tid=${stat%% *} comm=${stat#*(} comm=${comm%%)*} rest=${stat##*) }
        # shellcheck disable=SC2086 # split into fields on purpose
        set -- $rest
        if [ "$tid" = "$pid" ]; then loop=$((loop + ${12} + ${13})) lcs=$((lcs + ${cs:-0}))
        elif [[ $comm == rdk:* ]]; then rdk=$((rdk + ${12} + ${13})) rcs=$((rcs + ${cs:-0}))
        else pool=$((pool + ${12} + ${13})) pcs=$((pcs + ${cs:-0})); fi
    done
    echo "$loop $pool $rdk $lcs $pcs $rcs"
}

# metric NAME: the value of one kafka output counter from /metrics (0 when absent).
metric() {
    curl -sf --max-time 2 "http://127.0.0.1:$hport/metrics" |
        awk -v m="$1{" 'index($0, m) == 1 { v += $NF } END { printf "%.0f\n", v + 0 }' || echo 0
}

tmp=$(mktemp -d)
pid='' mpid='' perfpid=''
cleanup() {
    for p in $perfpid $pid $mpid; do
        kill -0 "$p" 2>/dev/null && { kill -KILL "$p"; wait "$p" || true; } 2>/dev/null
    done
    rm -rf "$tmp"
}
trap cleanup EXIT


"$KAFKA_MOCK" --brokers 3 --topic "bench:$partitions" --bootstrap-file "$tmp/bs" \
    --control "$tmp/ctl" --reply "$tmp/reply" >"$tmp/mock.log" 2>&1 &
mpid=$!
for _ in $(seq 100); do [ -s "$tmp/bs" ] && break; sleep 0.1; done
bootstrap=$(cat "$tmp/bs")

port=$(free_port) hport=$(free_port)
cat >"$tmp/shipper.yaml" <<YAML
service: {http_listen: "127.0.0.1:$hport", log_level: warn}
buffer: {flush_interval: 100ms${MEMORY_LIMIT:+, memory_limit: $MEMORY_LIMIT}}   # the last, partly filled chunk must not wait a second
inputs: [{type: forward, listen: "127.0.0.1:$port"}]
outputs:
  - type: kafka
    brokers: "$bootstrap"
    topic: bench
    properties: {compression.type: $compression$props}
YAML
# shellcheck disable=SC2086 # SHIPPER_ARGS is a list of words on purpose
"$SHIPPER" -c "$tmp/shipper.yaml" ${SHIPPER_ARGS:-} >"$tmp/shipper.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
    curl -sf --max-time 1 "http://127.0.0.1:$hport/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done


if [ -n "$perf_out" ]; then
    perf record -q -F 199 --call-graph dwarf,16384 -p "$pid" -o "$perf_out" >/dev/null 2>&1 &
    perfpid=$!
    sleep 1 # perf attaches
fi
ticks0=$(cpu_ticks); mticks0=$(cpu_ticks "$mpid"); faults0=$(minor_faults); read -r l0 p0 r0 lc0 pc0 rc0 <<<"$(thread_ticks)"
"$SHIPPER_BENCH" forward --addr "127.0.0.1:$port" --mode message --records "$records" \
    --conns "$conns" --containers "$containers" --quiet --stamp-file "$tmp/stamp" \
    ${gen_args[@]+"${gen_args[@]}"} >"$tmp/gen.out" 2>"$tmp/gen.err" ||
    { echo "run-kafka.sh: shipper-bench failed:" >&2; cat "$tmp/gen.err" >&2; exit 1; }

last=-1 last_change=$(date +%s)
while :; do
    n=$(records_done kafka)
    t_done=$(date +%s%N)
    [ "$n" -ge "$records" ] && break
    if [ "$n" != "$last" ]; then
        last=$n last_change=$(date +%s)
    elif [ $(($(date +%s) - last_change)) -ge "$STALL_TIMEOUT" ]; then
        echo "run-kafka.sh: $n of $records delivered, no progress for ${STALL_TIMEOUT}s" >&2
        tail -n 20 "$tmp/shipper.log" >&2
        exit 1
    fi
    sleep 0.01
done
ticks1=$(cpu_ticks); mticks1=$(cpu_ticks "$mpid"); faults1=$(minor_faults); read -r l1 p1 r1 lc1 pc1 rc1 <<<"$(thread_ticks)"
qfull=$(metric shipper_kafka_queue_full_total)
hwm_kb=$(peak_rss_kb)
read -r t_first _ <"$tmp/stamp"
[ -n "$perfpid" ] && { kill -INT "$perfpid"; wait "$perfpid" || true; perfpid=; }
kill -TERM "$pid"; wait "$pid" || true; loop_tid=$pid pid=

rm -f "$tmp/reply"; echo "hwm bench" >"$tmp/ctl"
for _ in $(seq 100); do [ -s "$tmp/reply" ] && break; sleep 0.05; done
total=$(sed -n 's/.*total=\([0-9]*\).*/\1/p' "$tmp/reply")
[ "$total" = "$records" ] || echo "run-kafka.sh: WARNING: the topic holds $total messages, sent $records" >&2
echo quit >"$tmp/ctl"

awk -v label="$compression" -v n="$records" -v t0="$t_first" -v t1="$t_done" \
    -v ticks="$((ticks1 - ticks0))" -v hz="$(getconf CLK_TCK)" -v kb="$hwm_kb" -v pf=$((faults1 - faults0)) 'BEGIN {
        t = (t1 - t0) / 1e9
        cpu = ticks / hz
        printf "kafka/%s: %d records in %.3f s = %.0f rec/s; shipper CPU %.2f s = %.2f CPU-s per million; peak RSS %.1f MB; page faults %.0f k\n",
            label, n, t, n / t, cpu, cpu / (n / 1e6), kb / 1024, pf / 1e3
    }'
awk -v n="$records" -v hz="$(getconf CLK_TCK)" -v l=$((l1 - l0)) -v p=$((p1 - p0)) -v r=$((r1 - r0)) \
    'BEGIN { m = n / 1e6 * hz; printf "  CPU-s per million by thread: event loop %.2f, thread pool %.2f, librdkafka %.2f\n", l / m, p / m, r / m }'
awk -v n="$records" -v l=$((lc1 - lc0)) -v p=$((pc1 - pc0)) -v r=$((rc1 - rc0)) -v q="$qfull" \
    -v mock=$((mticks1 - mticks0)) -v hz="$(getconf CLK_TCK)" \
    'BEGIN { m = n / 1e3; printf "  context switches per 1000 records: event loop %.1f, thread pool %.1f, librdkafka %.1f; queue full %d times; the mock cluster (not counted above) %.2f CPU-s per million\n", l / m, p / m, r / m, q, mock / hz / (n / 1e6) }'
# The event loop's samples by what it was doing (children included, so librdkafka's malloc and
# free count under the librdkafka call that made them).
if [ -n "$perf_out" ]; then
    perf report -i "$perf_out" --tid "$loop_tid" --children --percentage relative --sort sym \
        --stdio -g none 2>/dev/null | awk '
        / rd_kafka_poll$/ { poll = $1 } / rd_kafka_producev$/ { prod = $1 }
        / sp_fwd_conn_read_cb$/ { fwd = $1 } / sp_kafka_finish$/ { fin = $1 }
        END { printf "  perf, event loop samples: forward input %s, rd_kafka_producev %s, rd_kafka_poll (delivery reports) %s, of it answering deliveries %s\n", fwd, prod, poll, fin }'
fi
