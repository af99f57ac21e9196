#!/usr/bin/env bash
# Every Kafka message carries its own record's `shipper-id` header (docs/kafka.md, the contract
# with the kafka input), also when its first produce failed for good and it went to the
# dead-letter topic. A guard for any change to how header lists are made (a reuse of them was
# tried: git log outputs/kafka): a small memory_limit keeps librdkafka's queue at its 1 MiB floor
# so a flood of N records passes through it many times over, and the first produce requests are
# refused (TOPIC_AUTHORIZATION_FAILED), so some records are produced a second time, to the
# dead-letter topic. Asserts: the two topics hold N messages, each with the static header and a
# 32-hex-digit id, and the N ids are distinct (a list shared by two messages would repeat one).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kafka_lib.sh"
N=30000
command -v kcat >/dev/null || skip "kcat not installed"

start_kafka 3 ids:6 dlq:6
P=$(free_port); H=$(free_port); A="127.0.0.1:$H"
cat >"$T/s.yaml" <<YAML
service: {http_listen: "$A"}
buffer: {flush_interval: 100ms, memory_limit: 8MiB}
inputs: [{type: forward, listen: "127.0.0.1:$P"}]
outputs:
  - type: kafka
    brokers: "$BOOTSTRAP"
    topic: ids
    headers: {source: ids-test}
    dead_letter_topic: dlq
YAML
start_shipper s -c "$T/s.yaml"
wait_ready "$A" || exit 1
kctl errors produce 2 TOPIC_AUTHORIZATION_FAILED >/dev/null
timeout 120 "$SHIPPER_BENCH" forward --addr "127.0.0.1:$P" --mode message --records "$N" \
    --containers 8 --quiet >"$T/gen.out" 2>&1
check_eq "the generator sent all $N records" 0 $?
d=0 r=0
for _ in $(seq 1200); do
    d=$(metric "$A" 'shipper_output_records_total{output="kafka",result="delivered"}')
    r=$(metric "$A" 'shipper_output_records_total{output="kafka",result="rejected"}')
    [ $((${d%.*} + ${r%.*})) -ge "$N" ] && break
    sleep 0.1
done
check_eq "delivered + dead-lettered" "$N" "$((${d%.*} + ${r%.*}))"
dl=$(metric "$A" 'shipper_kafka_dead_lettered_total{output="kafka"}')
check "refused records were produced again, to the dead-letter topic ($dl)" [ "${dl%.*}" -gt 0 ]
stop_shipper
check_eq "clean exit" 0 "$SHIPPER_RC"
check_eq "the two topics hold every record once" "$N" "$(($(hwm_total ids) + $(hwm_total dlq)))"

for t in ids dlq; do
    timeout 60 kcat -C -b "$BOOTSTRAP" -t $t -o beginning -e -q -f '%h\n' 2>/dev/null
done >"$T/h.txt"
check_eq "messages read back" "$N" "$(wc -l <"$T/h.txt")"
check_eq "every message has the static header and a 32-digit id" "$N" \
    "$(grep -c '^source=ids-test,shipper-id=[0-9a-f]\{32\}$' "$T/h.txt")"
check_eq "the ids are distinct" "$N" "$(sed 's/.*shipper-id=//' "$T/h.txt" | sort -u | wc -l)"
stop_kafka
finish
