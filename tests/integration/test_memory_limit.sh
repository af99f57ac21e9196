#!/usr/bin/env bash
# suite: slow (tests/run.sh starts it early: 76 s in the suite). Not alone: it asserts peak RSS
# (VmHWM) of its own shipper process and record counts, which CPU load from another test does
# not change; the idle RSS wait polls for 20 s
# buffer.memory_limit bounds everything shipper holds for records, on every output path: chunks,
# partial lines, encoded bulk bodies and their gzip copies, bulk responses, the Kafka output's
# encoded documents and librdkafka's queue, the spool's buffers. A flood from shipper-bench
# (Message frames, several connections, the limit many times over) meets an output that is slow
# on purpose, so the buffer stays full for the whole run:
#  1. Elasticsearch: build/es_sink answering every item in full (as a proxy or OpenSearch does)
#     and holding each answer MEM_ES_DELAY ms; with gzip, then uncompressed.
#  2. Kafka: the mock cluster with MEM_KAFKA_RTT ms added to every broker's responses.
#  3. null with the spool on.
#  0. First, Elasticsearch full items at 256 MiB (the default until 2026-12-01, now 64 MiB: a large
#     limit, so the idle trim below has something to give back) with a sink answering at once, as
#     bench/run-es.sh runs: the sink is stopped (SIGSTOP) until the inputs pause, so the buffer
#     fills to the limit whatever the machine's speed, then drains and fills again. There
#     the slack is MEM_DEFAULT_SLACK_MIB (16): what the process needs beside memory_limit (code,
#     libraries, stacks, allocator arenas: about 12 MiB). The job buffers were counted only once
#     grown, on top of a full buffer, and peaked 21-27 MiB past the limit. Then, idle, RSS must
#     fall to 64 MiB within 20 s (the kept chunk buffers are given back; main stayed at 274 MiB).
# The Elasticsearch floods from 4 connections run with buffer.fair off: the fair rule pauses
# the largest connections from half the limit, and the buffer sometimes never reached the limit
# (0 pauses). Each run asserts peak RSS (VmHWM) <= memory_limit + 24 MiB and that every record
# arrived (the sink's item count, the topic's high watermarks, the null output's count): backpressure
# held the senders back, it lost nothing.
# MEM_PATHS (default "es kafka null") picks floods; MEM_LIMIT_MIB, MEM_RECORDS, MEM_KAFKA_RTT and
# MEM_ES_DELAY change the scenario, e.g. the Kafka flood at the default limit:
#   MEM_PATHS=kafka MEM_LIMIT_MIB=256 MEM_RECORDS=1500000 BUILD=build tests/integration/test_memory_limit.sh
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kafka_lib.sh"
ES_SINK=${ES_SINK:-$BUILD/es_sink}
LIMIT_MIB=${MEM_LIMIT_MIB:-32}
SLACK_MIB=24
DEFAULT_SLACK_MIB=${MEM_DEFAULT_SLACK_MIB:-16}
N=${MEM_RECORDS:-600000} # ~200-byte logs: about 150 MiB of chunks, the limit several times over
CONNS=4
PATHS=" ${MEM_PATHS:-es kafka null} " # which floods to run (MEM_PATHS=kafka: that one only)
want() { case $PATHS in *" $1 "*) return 0 ;; esac; return 1; }
for bin in "$SHIPPER" "$SHIPPER_BENCH" "$ES_SINK" "$KAFKA_MOCK"; do
    [ -x "$bin" ] || { echo "$bin not built"; exit 1; }
done
P=$(free_port); H=$(free_port)

# run_flood NAME OUTPUT_YAML_FILE DONE_METRIC: starts shipper with the limit and that output,
# floods it with N records and waits until DONE_METRIC counts them all (no progress for 60 s is
# a failure). Sets HWM_KB.
run_flood() {
    local name=$1 outputs=$2 key=$3 extra=${4:-}
    cat >"$T/$name.yaml" <<YAML
service:
  http_listen: 127.0.0.1:$H
  log_level: info
  state_dir: $T/state-$name
buffer:
  memory_limit: ${LIMIT_MIB}MiB
  flush_interval: 200ms
$extra
inputs:
  - type: forward
    listen: 127.0.0.1:$P
YAML
    cat "$outputs" >>"$T/$name.yaml"
    start_shipper "$name" -c "$T/$name.yaml"
    wait_ready "127.0.0.1:$H" || { cat "$T/$name.err"; exit 1; }
    timeout 600 "$SHIPPER_BENCH" forward --addr "127.0.0.1:$P" --mode message --records "$N" \
        --conns "${GEN_CONNS:-$CONNS}" --containers 8 --size "${GEN_SIZE:-200}" --quiet >"$T/$name.gen" 2>&1 &
    local gen=$!
    bg_pid $gen
    local last=-1 since now v
    since=$(date +%s)
    while :; do
        v=$(metric "127.0.0.1:$H" "$key")
        [ "${v%.*}" -ge "$N" ] 2>/dev/null && break
        now=$(date +%s)
        if [ "$v" != "$last" ]; then last=$v; since=$now
        elif [ $((now - since)) -ge 60 ]; then
            fail "$name: $v of $N records delivered, no progress for 60 s"; tail -5 "$T/$name.err"; break
        fi
        sleep 0.2
    done
    wait $gen; check_eq "$name: the generator sent all $N records" 0 $?
    check "$name: inputs were paused (the buffer was full: $(metric "127.0.0.1:$H" shipper_pauses_total) pauses)" \
        [ "$(metric "127.0.0.1:$H" shipper_pauses_total)" -gt 0 ]
    HWM_KB=$(awk '/^VmHWM:/ { print $2 }' "/proc/$SHIPPER_PID/status")
    local max_kb=$(((LIMIT_MIB + SLACK_MIB) * 1024))
    check "$name: peak RSS $((HWM_KB / 1024)) MiB <= memory_limit ${LIMIT_MIB} MiB + ${SLACK_MIB} MiB" \
        [ "$HWM_KB" -le "$max_kb" ]
    if [ -n "${IDLE_MIB:-}" ]; then
        # Idle, the kept chunk buffers are given back (2 s without a taker, then malloc_trim).
        local rss_kb
        for _ in $(seq 200); do
            rss_kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$SHIPPER_PID/status")
            [ "$rss_kb" -le $((IDLE_MIB * 1024)) ] && break
            sleep 0.1
        done
        check "$name: idle, RSS fell to $((rss_kb / 1024)) MiB <= ${IDLE_MIB} MiB within 20 s" \
            [ "$rss_kb" -le $((IDLE_MIB * 1024)) ]
    fi
    stop_shipper; check_eq "$name: clean exit" 0 "$SHIPPER_RC"
}

if want es; then
log "0. Elasticsearch (full items) at memory_limit 256 MiB, the sink stopped until it is full"
"$ES_SINK" --port 0 --port-file "$T/sink0.port" --ignore-filter-path >/dev/null 2>&1 &
sink0=$!
bg_pid $sink0
for _ in $(seq 50); do [ -s "$T/sink0.port" ] && break; sleep 0.05; done
kill -STOP $sink0
(
    for _ in $(seq 1200); do
        [ "$(metric "127.0.0.1:$H" shipper_pauses_total)" -gt 0 ] 2>/dev/null && break
        sleep 0.1
    done
    kill -CONT $sink0
) &
bg_pid $!
cat >"$T/es0.out.yaml" <<YAML
outputs:
  - type: elasticsearch
    url: http://127.0.0.1:$(cat "$T/sink0.port")
YAML
# 1 KB logs: about 600 MiB of chunks, twice the limit and more; one connection, which the fair
# rule (buffer.fair_mark) never pauses alone
N=${MEM_DEFAULT_RECORDS:-500000} LIMIT_MIB=256 SLACK_MIB=$DEFAULT_SLACK_MIB GEN_SIZE=1000 GEN_CONNS=1 IDLE_MIB=64 run_flood es-default "$T/es0.out.yaml" 'shipper_output_records_total{output="elasticsearch",result="delivered"}'

log "1. Elasticsearch (full items, ${MEM_ES_DELAY:-200} ms per answer, gzip)"
"$ES_SINK" --port 0 --port-file "$T/sink.port" --ignore-filter-path \
    --delay-ms "${MEM_ES_DELAY:-200}" >/dev/null 2>&1 &
bg_pid $!
for _ in $(seq 50); do [ -s "$T/sink.port" ] && break; sleep 0.05; done
cat >"$T/es.out.yaml" <<YAML
outputs:
  - type: elasticsearch
    url: http://127.0.0.1:$(cat "$T/sink.port")
    compression: gzip
YAML
run_flood es "$T/es.out.yaml" 'shipper_output_records_total{output="elasticsearch",result="delivered"}' \
    "  fair: false"
check_eq "es: the sink acknowledged every record" "$N" \
    "$(curl -sf "http://127.0.0.1:$(cat "$T/sink.port")/_sink/count" | sed 's/[^0-9]//g')"

log "1b. Elasticsearch (full items, uncompressed: the largest responses per body)"
sink_count0=$(curl -sf "http://127.0.0.1:$(cat "$T/sink.port")/_sink/count" | sed 's/[^0-9]//g')
sed '/compression: gzip/d' "$T/es.out.yaml" >"$T/es-plain.out.yaml"
N_ALL=$N; N=$((N / 2)) # still the limit several times over; keeps the suite short
run_flood es-plain "$T/es-plain.out.yaml" 'shipper_output_records_total{output="elasticsearch",result="delivered"}' \
    "  fair: false"
check_eq "es-plain: the sink acknowledged every record" "$N" \
    "$(($(curl -sf "http://127.0.0.1:$(cat "$T/sink.port")/_sink/count" | sed 's/[^0-9]//g') - sink_count0))"
N=$N_ALL
fi

if want kafka; then
log "2. Kafka (${MEM_KAFKA_RTT:-100} ms broker latency)"
start_kafka 3 mem:6
for b in 1 2 3; do kctl rtt $b "${MEM_KAFKA_RTT:-100}" >/dev/null; done
cat >"$T/kafka.out.yaml" <<YAML
outputs:
  - type: kafka
    brokers: "$BOOTSTRAP"
    topic: mem
YAML
run_flood kafka "$T/kafka.out.yaml" 'shipper_output_records_total{output="kafka",result="delivered"}' \
    "  fair: false" # one flood holds the whole limit, as a lone source does
check_eq "kafka: the topic holds every record" "$N" "$(hwm_total mem)"
stop_kafka
fi

if want null; then
log "3. null output with the spool on"
cat >"$T/null.out.yaml" <<YAML
outputs:
  - type: "null"
YAML
run_flood null "$T/null.out.yaml" 'shipper_output_records_total{output="null",result="delivered"}' \
    "  spool: true"
fi

finish
