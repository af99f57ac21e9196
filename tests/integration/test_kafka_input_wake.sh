#!/usr/bin/env bash
# The kafka input catching up a backlog many times its prefetch queue, then under backpressure.
# 1. librdkafka 2.0.2 stops
# fetching a partition while the consumer queue holds queued.max.messages.kbytes and looks again
# only when its broker thread wakes, about a second later with nothing in flight; the input wakes
# the leaders itself (an end-offset request each) once it drained a queue that full
# (docs/kafka_input.md, "Throughput"). A 1 MiB queue and a topic of ~17 MB force that: the wake
# must fire, every record must be taken exactly once (no refetch of what was taken), and all
# must be delivered, and the queue counts twice against memory_limit (buffer bytes at rest).
# 2. Backpressure (a 4 MiB buffer before the Python Elasticsearch emulator): with the default
# pause_delay the input only stops taking messages, librdkafka's partitions are never paused
# (short pauses), with pause_delay 0 every pause pauses them (and librdkafka refetches from the
# last consumed offset on resume). Both: every record indexed exactly once by _id.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kafka_lib.sh"
. "$(dirname "$0")/es_lib.sh"
[ -x "$SHIPPER_BENCH" ] || { echo "needs $SHIPPER_BENCH"; exit 1; }

start_kafka 3 logs:12
N=40000
# The backlog: acked by the producer only once librdkafka confirmed it (ack: delivered).
P=$(free_port) PH=$(free_port)
cat >"$T/p.yaml" <<YAML
service: {http_listen: "127.0.0.1:$PH"}
buffer: {flush_interval: 100ms}
inputs: [{type: forward, listen: "127.0.0.1:$P"}]
outputs:
  - {type: kafka, brokers: "$BOOTSTRAP", topic: logs, key: none,
     properties: {sticky.partitioning.linger.ms: "0"}}  # spread evenly: the mock keeps ~5 MB a partition
YAML
start_shipper p -c "$T/p.yaml"
wait_ready "127.0.0.1:$PH" || exit 1
"$SHIPPER_BENCH" forward --addr "127.0.0.1:$P" --records $N --containers 8 --size 200 --quiet \
    >/dev/null || fail "generator failed"
wait_metric "127.0.0.1:$PH" 'shipper_output_records_total{output="kafka",result="delivered"}' $N 60 ||
    fail "the backlog did not reach Kafka"
stop_shipper
check_eq "the backlog in Kafka" $N "$(hwm_total logs)"

# The indexer, with a prefetch queue of 1 MiB (the backlog is ~17 of them).
H=$(free_port)
cat >"$T/i.yaml" <<YAML
service: {http_listen: "127.0.0.1:$H"}
buffer: {flush_interval: 100ms}
inputs:
  - type: kafka
    brokers: "$BOOTSTRAP"
    topics: [logs]
    group_id: wake
    properties: {queued.max.messages.kbytes: "1024"${WAKE_DEBUG:+, debug: fetch}}
outputs: [{type: "null"}]
YAML
start_shipper i -c "$T/i.yaml"
wait_ready "127.0.0.1:$H" || exit 1
wait_metric "127.0.0.1:$H" 'shipper_output_records_total{output="null",result="delivered"}' $N ${WAKE_WAIT:-120} ||
    fail "the indexer did not deliver the backlog"
A="127.0.0.1:$H"
check_eq "every record delivered" $N "$(metric "$A" 'shipper_output_records_total{output="null",result="delivered"}')"
check_eq "every record taken once (nothing fetched again)" $N \
    "$(metric "$A" 'shipper_kafka_input_consumed_total{input="kafka"}')"
w=$(metric "$A" 'shipper_kafka_input_wakes_total{input="kafka"}')
check "the input woke the fetchers after draining a full queue ($w times)" [ "${w%.*}" -gt 0 ]
check "no input pause (the queue, not backpressure, was what filled)" \
    [ "$(metric "$A" 'shipper_kafka_input_pauses_total{input="kafka"}')" = 0 ]
for _ in $(seq 50); do [ "$(metric "$A" shipper_buffer_bytes)" = 2097152 ] && break; sleep 0.1; done
check_eq "the prefetch queue counts against memory_limit: twice its 1 MiB at rest" 2097152 \
    "$(metric "$A" shipper_buffer_bytes)"
stop_shipper
check_eq "exit code" 0 "$SHIPPER_RC"

start_emu es
backpressure() { # NAME PAUSE_DELAY
    local h; h=$(free_port)
    cat >"$T/$1.yaml" <<YAML
service: {http_listen: "127.0.0.1:$h"}
buffer: {flush_interval: 100ms, memory_limit: 4MiB, chunk_size: 256KiB}
inputs:
  - {type: kafka, brokers: "$BOOTSTRAP", topics: [logs], group_id: "$1", pause_delay: $2}
outputs: [{type: elasticsearch, url: "http://127.0.0.1:$EMU_PORT", index: "$1"}]
YAML
    start_shipper "$1" -c "$T/$1.yaml"
    wait_ready "127.0.0.1:$h" || return 1
    wait_count $N "$1" 120 || fail "$1: not every record reached Elasticsearch"
    A="127.0.0.1:$h"
    wait_metric "$A" 'shipper_output_records_total{output="elasticsearch",result="delivered"}' $N 10
    check_eq "$1: every record taken once" $N "$(metric "$A" 'shipper_kafka_input_consumed_total{input="kafka"}')"
    check_eq "$1: documents (one per _id)" $N "$(emu_count "$1")"
    PAUSES=$(metric "$A" 'shipper_kafka_input_pauses_total{input="kafka"}')
    FETCH_PAUSES=$(metric "$A" 'shipper_kafka_input_fetch_pauses_total{input="kafka"}')
    check "$1: the input paused for backpressure ($PAUSES times)" [ "${PAUSES%.*}" -gt 0 ]
    stop_shipper
    check_eq "$1: exit code" 0 "$SHIPPER_RC"
}
backpressure soft 10s
check_eq "soft: librdkafka's partitions never paused (each pause shorter than pause_delay)" 0 "$FETCH_PAUSES"
backpressure hard 0
check_eq "hard: librdkafka's partitions paused at every pause (pause_delay 0)" "$PAUSES" "$FETCH_PAUSES"
check_eq "no document indexed twice (409s)" 0 "$(emu_stat '["conflicts"]')"
stop_kafka

printf 'inputs:\n  - {type: kafka, brokers: "127.0.0.1:1", topics: [t], group_id: g,\n     pause_delay: 11s}\noutputs: [{type: "null"}]\n' >"$T/bad.yaml"
"$SHIPPER" --check -c "$T/bad.yaml" >/dev/null 2>"$T/bad.err"
check_eq "pause_delay over 10s: a config error (exit 2)" 2 $?
check "... that names the key and the line" grep -q "bad.yaml:3: pause_delay: at most 10s" "$T/bad.err"
# librdkafka checks this pair only when a consumer is made: --check makes one (no broker reached).
printf 'inputs:\n  - {type: kafka, brokers: "127.0.0.1:1", topics: [t], group_id: g,\n     properties: {fetch.max.bytes: "524288"}}\noutputs: [{type: "null"}]\n' >"$T/bad2.yaml"
"$SHIPPER" --check -c "$T/bad2.yaml" >/dev/null 2>"$T/bad2.err"
check_eq "fetch.max.bytes under message.max.bytes: a config error (exit 2)" 2 $?
check "... with librdkafka's reason" grep -q "fetch.max.bytes. must be >= .message.max.bytes" "$T/bad2.err"
check "... and no librdkafka log line from the check's throwaway consumer" \
    bash -c "! grep -q '%[0-9]|' '$T/bad2.err'"
finish
