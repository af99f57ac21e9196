#!/usr/bin/env bash
# Kafka mock cluster → shipper kafka input → elasticsearch output (build/es_sink) throughput, one
# indexer instance (docs/topologies.md sizes the indexer tier with it).
#
# Fills a topic of the mock cluster (3 brokers) first, the way an edge tier would: shipper-bench →
# shipper (forward input → kafka output, the documents and `shipper-id` headers the kafka input
# reads), unkeyed and spread evenly over the partitions: librdkafka's mock keeps only the last
# ~5 MB of a partition, so --records N needs about N * 330 B / 5 MB partitions (a record lost to
# that shows as "no progress"). Then starts the indexer (kafka input in group `bench` → elasticsearch output, or null
# with --sink null) and waits until its output has counted every record delivered. The figure
# runs from the first record the indexer delivered (the group join is not counted) to the last:
#   kafka-in/<sink>: N records in T s = R rec/s; indexer CPU C s = X CPU-s per million; peak RSS Y MB;
#   mock cluster CPU M s (run-queue wait W s); pauses P; wakes K; load L
# CPU is the indexer's own over the same span (all its threads, librdkafka's included); the mock
# cluster and the sink run on the same machine and are not counted. The mock's run-queue wait
# (schedstat) is how long its threads were ready but another process had the CPU: on a loaded
# machine the mock (one thread serving the 3 brokers) is what waits. P: the input's backpressure
# pauses (shipper_kafka_input_pauses_total); K: how often it woke librdkafka's fetchers after
# draining a full prefetch queue (shipper_kafka_input_wakes_total; "-" for a build without them);
# L: the 1-minute load average.
#
# --floor kcat consumes the same topic from the same mock with `kcat -C` (no group, every
# partition to its end, only offsets written) instead of the indexer: what the mock cluster serves
# to a bare librdkafka consumer, the floor the indexer's figure is compared with (timed from
# kcat's start, its metadata and offset lookups included; --property applies to it as -X):
#   kcat-floor: N records in T s = R rec/s; kcat CPU C s (run-queue wait); mock cluster CPU M s (wait W s); load L
#
# Usage: bench/run-kafka-in.sh [--records N] [--partitions P] [--sink es|null] [--floor kcat]
#                              [--property KEY=VALUE]...  (librdkafka consumer properties)
# Env:   SHIPPER, SHIPPER_BENCH, KAFKA_MOCK, ES_SINK  binaries (default build/...); KCAT (kcat)
#        STALL_TIMEOUT  seconds without progress before giving up (default 60)
#        POLL_INTERVAL  seconds between /metrics polls (default 0.05; each poll costs the indexer
#                       CPU: at 0.01 about 0.2 CPU-s per million more, paired runs)
#        PERF_INDEXER   a file: `perf record ${PERF_ARGS:--g}` the indexer into it for the run
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHIPPER=${SHIPPER:-$root/build/shipper}
SHIPPER_BENCH=${SHIPPER_BENCH:-$root/build/shipper-bench}
KAFKA_MOCK=${KAFKA_MOCK:-$root/build/kafka_mock}
ES_SINK=${ES_SINK:-$root/build/es_sink}
STALL_TIMEOUT=${STALL_TIMEOUT:-60}

records=1000000 partitions=128 sink=es props="" floor="" kx=()
while [ $# -gt 0 ]; do
    case $1 in
    --records) records=${2:?}; shift 2 ;;
    --partitions) partitions=${2:?}; shift 2 ;;
    --sink) sink=${2:?}; shift 2 ;;
    --floor) floor=${2:?}; shift 2 ;;
    --property) props="$props, ${2%%=*}: \"${2#*=}\"" kx+=(-X "$2"); shift 2 ;;
    *) sed -n '/^# Usage:/,/^#.*STALL_TIMEOUT/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    esac
done
[[ $records =~ ^[0-9]+$ ]] || { echo "run-kafka-in.sh: --records must be a plain integer" >&2; exit 2; }
case $sink in es | null) ;; *) echo "run-kafka-in.sh: --sink es|null" >&2; exit 2 ;; esac
case $floor in "" | kcat) ;; *) echo "run-kafka-in.sh: --floor kcat" >&2; exit 2 ;; esac
for bin in "$SHIPPER" "$SHIPPER_BENCH" "$KAFKA_MOCK" "$ES_SINK"; do
    [ -x "$bin" ] || { echo "run-kafka-in.sh: $bin not found; build first" >&2; exit 2; }
done

# sched_ns PID: on-CPU and run-queue-wait nanoseconds summed over its threads (schedstat); the
# wait shows how much of a run went to other processes on a loaded machine.
sched_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ r += $1; w += $2 } END { printf "%.0f %.0f\n", r, w }'; }

tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -n "${KEEP_TMP:-}" ] && echo "kept $tmp" >&2 || rm -rf "$tmp"
}
trap cleanup EXIT

"$KAFKA_MOCK" --brokers 3 --topic "bench:$partitions" --bootstrap-file "$tmp/bs" \
    --control "$tmp/ctl" --reply "$tmp/reply" >"$tmp/mock.log" 2>&1 &
mpid=$!; pids+=("$mpid")
for _ in $(seq 100); do [ -s "$tmp/bs" ] && break; sleep 0.1; done
bootstrap=$(cat "$tmp/bs")

# wait_done OUTPUT: polls until that output counted $records delivered; t_first/n_first/c_first
# (indexer CPU ticks) at the first poll that saw a record, t_done and c_done at the last.
wait_done() {
    local last=-1 last_change n
    last_change=$(date +%s)
    t_first= n_first=0 c_first=0
    while :; do
        n=$(records_done "$1")
        if [ -z "$t_first" ] && [ "$n" -gt 0 ]; then
            t_first=$(date +%s%N) n_first=$n c_first=$(cpu_ticks) m_first=$(cpu_ticks "$mpid")
            s_first=$(sched_ns "$mpid")
        fi
        [ "$n" -ge "$records" ] && break
        if [ "$n" != "$last" ]; then
            last=$n last_change=$(date +%s)
        elif [ $(($(date +%s) - last_change)) -ge "$STALL_TIMEOUT" ]; then
            echo "run-kafka-in.sh: $1: $n of $records delivered, no progress for ${STALL_TIMEOUT}s" >&2
            curl -sf "http://127.0.0.1:$hport/metrics" >"$tmp/stall.metrics" || true
            tail -n 5 "$tmp"/*.log >&2
            exit 1
        fi
        sleep "${POLL_INTERVAL:-0.05}"
    done
    t_done=$(date +%s%N) c_done=$(cpu_ticks) m_done=$(cpu_ticks "$mpid") s_done=$(sched_ns "$mpid")
}

# 1. The edge: fills the topic.
port=$(free_port) hport=$(free_port)
cat >"$tmp/edge.yaml" <<YAML
service: {http_listen: "127.0.0.1:$hport", log_level: warn}
buffer: {flush_interval: 100ms}
inputs: [{type: forward, listen: "127.0.0.1:$port"}]
outputs:
  - {type: kafka, brokers: "$bootstrap", topic: bench, key: none,
     properties: {linger.ms: "20", sticky.partitioning.linger.ms: "0"}}
YAML
"$SHIPPER" -c "$tmp/edge.yaml" >"$tmp/edge.log" 2>&1 &
pid=$!; pids+=("$pid")
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$hport/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
"$SHIPPER_BENCH" forward --addr "127.0.0.1:$port" --mode packed --records "$records" --quiet \
    >/dev/null 2>"$tmp/gen.err" || { cat "$tmp/gen.err" >&2; exit 1; }
wait_done kafka
kill -TERM "$pid"; wait "$pid" || true

# 2. The floor: kcat reads every partition to its end (-e), the same librdkafka underneath.
if [ "$floor" = kcat ]; then
    m0=$(cpu_ticks "$mpid") t0=$(date +%s%N) ms0=$(sched_ns "$mpid")
    ${KCAT:-kcat} -C -b "$bootstrap" -t bench -o beginning -e -q -f '%o\n' "${kx[@]}" >"$tmp/kcat.out" 2>"$tmp/kcat.err" &
    kpid=$!; pids+=("$kpid")
    kc=0 ks="0 0"
    while kill -0 "$kpid" 2>/dev/null; do
        v=$(cpu_ticks "$kpid" 2>/dev/null) && kc=$v
        v=$(sched_ns "$kpid") && [ "${v% *}" != 0 ] && ks=$v
        sleep 0.05
    done
    wait "$kpid" || { cat "$tmp/kcat.err" >&2; exit 1; }
    t1=$(date +%s%N) m1=$(cpu_ticks "$mpid") n=$(wc -l <"$tmp/kcat.out") ms1=$(sched_ns "$mpid")
    awk -v n="$n" -v t0="$t0" -v t1="$t1" -v kc="$kc" -v mt="$((m1 - m0))" -v hz="$(getconf CLK_TCK)" \
        -v ks="$ks" -v ms0="$ms0" -v ms1="$ms1" -v load="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN {
        t = (t1 - t0) / 1e9; split(ks, k); split(ms0, a); split(ms1, b)
        printf "kcat-floor: %d records in %.3f s = %.0f rec/s; kcat CPU %.2f s (run-queue wait %.2f s); mock cluster CPU %.2f s (wait %.2f s); load %s\n",
            n, t, n / t, kc / hz, k[2] / 1e9, mt / hz, (b[2] - a[2]) / 1e9, load }'
    exit 0
fi

# 3. The indexer.
hport=$(free_port)
if [ "$sink" = es ]; then
    "$ES_SINK" --port 0 --port-file "$tmp/sink.port" >/dev/null 2>&1 &
    pids+=($!)
    for _ in $(seq 50); do [ -s "$tmp/sink.port" ] && break; sleep 0.05; done
    out="{type: elasticsearch, url: \"http://127.0.0.1:$(cat "$tmp/sink.port")\"}" oname=elasticsearch
else
    out="{type: null}" oname=null
fi
cat >"$tmp/indexer.yaml" <<YAML
service: {http_listen: "127.0.0.1:$hport", log_level: warn}
buffer: {flush_interval: 100ms}  # as the edge's: the last, partly filled chunk would wait 1 s
inputs:
  - {type: kafka, brokers: "$bootstrap", topics: [bench], group_id: bench,
     properties: {auto.offset.reset: earliest$props}}
outputs: [$out]
YAML
"$SHIPPER" -c "$tmp/indexer.yaml" >"$tmp/indexer.log" 2>&1 &
pid=$!; pids+=("$pid")
perfpid=
if [ -n "${PERF_INDEXER:-}" ]; then
    perf record ${PERF_ARGS:--g} -o "$PERF_INDEXER" -p "$pid" >/dev/null 2>&1 &
    perfpid=$!
fi
wait_done "$oname"
[ -z "$perfpid" ] || { kill -INT "$perfpid"; wait "$perfpid" || true; }
hwm_kb=$(peak_rss_kb)
metrics=$(curl -sf --max-time 5 "http://127.0.0.1:$hport/metrics" || true)
pauses=$(awk '/^shipper_kafka_input_pauses_total/ { p += $NF } END { print p + 0 }' <<<"$metrics")
wakes=$(awk '/^shipper_kafka_input_wakes_total/ { w += $NF; n++ } END { print n ? w : "-" }' <<<"$metrics")
awk -v label="$sink" -v n="$records" -v n0="$n_first" -v t0="$t_first" -v t1="$t_done" \
    -v ticks="$((c_done - c_first))" -v mticks="$((m_done - m_first))" -v hz="$(getconf CLK_TCK)" -v kb="$hwm_kb" \
    -v s0="$s_first" -v s1="$s_done" -v load="$(cut -d' ' -f1 /proc/loadavg)" -v pauses="$pauses" -v wakes="$wakes" 'BEGIN {
        t = (t1 - t0) / 1e9; m = n - n0; cpu = ticks / hz; split(s0, a); split(s1, b)
        printf "kafka-in/%s: %d records in %.3f s = %.0f rec/s; indexer CPU %.2f s = %.2f CPU-s per million; peak RSS %.1f MB; mock cluster CPU %.2f s (run-queue wait %.2f s); pauses %s; wakes %s; load %s\n",
            label, m, t, m / t, cpu, cpu / (m / 1e6), kb / 1024, mticks / hz, (b[2] - a[2]) / 1e9, pauses, wakes, load
    }'
