#!/usr/bin/env bash
# A fatal idempotent-producer error, raised by librdkafka itself when the (mock) broker answers
# OUT_OF_ORDER_SEQUENCE_NUMBER: shipper purges the dead producer, creates a new one and produces
# its messages again, in order. Every record is in Kafka exactly once (high watermark and
# consumed seqs), the restarts are counted and logged, and the traffic after them flows.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kafka_lib.sh"

start_kafka 1 t1:2
P=$(free_port); H=$(free_port); M="127.0.0.1:$H"; OUT='{output="kafka"'
cat >"$T/s.yaml" <<YAML
service: {http_listen: "127.0.0.1:$H", log_level: info}
buffer: {flush_interval: 200ms}
inputs:
  - {type: forward, listen: "127.0.0.1:$P"}
outputs:
  - {type: kafka, brokers: "$BOOTSTRAP", topic: t1, key: tag, retry_backoff: 100ms, retry_max: 1s}
YAML
start_shipper s -c "$T/s.yaml"
wait_ready "$M" || exit 1

send_es() { python3 "$ROOT/tests/integration/es_send.py" "$@" >/dev/null; }
send_es --addr "127.0.0.1:$P" --count 1000 || fail "send 1"
wait_metric "$M" "shipper_output_records_total${OUT},result=\"delivered\"}" 1000 20 || fail "first 1000"

log "the broker answers the next 2 produce requests with OUT_OF_ORDER_SEQUENCE_NUMBER"
kctl errors produce 2 OUT_OF_ORDER_SEQUENCE_NUMBER >/dev/null
send_es --addr "127.0.0.1:$P" --count 3000 --start 1000 --batch 100 || fail "send 2"
wait_metric "$M" "shipper_output_records_total${OUT},result=\"delivered\"}" 4000 30 || fail "all 4000"
check "the fatal error is logged with what shipper does" grep -q "failed for good: .*replacing it" "$T/s.err"
check "a new producer was started" grep -q "new kafka producer started" "$T/s.err"
r=$(metric "$M" "shipper_kafka_producer_restarts_total${OUT}}")
check "restarts counted ($r)" [ "${r:-0}" -ge 1 ]
check_eq "nothing rejected" 0 "$(metric "$M" "shipper_output_records_total${OUT},result=\"rejected\"}")"
check_eq "messages in Kafka (high watermarks): none lost, none twice" 4000 "$(hwm_total t1)"

log "after the restarts, traffic flows on the new producer"
send_es --addr "127.0.0.1:$P" --count 1000 --start 4000 || fail "send 3"
wait_metric "$M" "shipper_output_records_total${OUT},result=\"delivered\"}" 5000 20 || fail "last 1000"
stop_shipper
check_eq "shipper exit code" 0 "$SHIPPER_RC"
consume t1 "$T/t1.txt"
python3 - "$T/t1.txt" <<'PY' || FAILS=$((FAILS + 1))
import json, sys
seqs = [json.loads(l.split(" ", 1)[1])["seq"] for l in open(sys.argv[1])]
ok = seqs == list(range(5000))  # one key, one partition: Kafka's order is the sending order
print(("ok: " if ok else "FAIL: ") + "consumed seq 0..4999 each once, in order (%d messages, %d distinct)" % (len(seqs), len(set(seqs))))
sys.exit(0 if ok else 1)
PY
stop_kafka
finish
