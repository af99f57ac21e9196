#!/usr/bin/env bash
# Kafka permanent failures: a record over message.max.bytes and a produce request refused with
# TOPIC_AUTHORIZATION_FAILED are rejected (counted by reason, never retried forever) while every
# other record is delivered; with dead_letter_topic the refused records land there (the one too
# large for any topic is rejected after that). Also: a bad librdkafka property is a config
# error with file:line (exit 2), and topic_key picks the topic per record.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kafka_lib.sh"
FWD="python3 $ROOT/tests/integration/fwd_client.py"

start_kafka 1 logs:2 dlq:1 per-a:1
P=$(free_port); H=$(free_port); A="127.0.0.1:$H"

cat >"$T/bad.yaml" <<YAML
inputs: [{type: forward, listen: "127.0.0.1:$P"}]
outputs:
  - type: kafka
    brokers: "$BOOTSTRAP"
    properties:
      linger.ms: "5"
      no.such.property: "1"
YAML
"$SHIPPER" --check -c "$T/bad.yaml" >"$T/check.out" 2>&1; rc=$?
check_eq "unknown librdkafka property: exit code" 2 "$rc"
check "message names file:line and the property" grep -q "bad.yaml:7: properties.no.such.property" "$T/check.out"

cat >"$T/s.yaml" <<YAML
service: {http_listen: "$A"}
buffer: {flush_interval: 100ms}
inputs: [{type: forward, listen: "127.0.0.1:$P"}]
outputs:
  - type: kafka
    brokers: "$BOOTSTRAP"
    topic: logs
    topic_key: route
    dead_letter_topic: dlq
    headers: {source: shipper-test}
    retry_backoff: 100ms
    properties: {message.max.bytes: "10000"}
YAML
start_shipper s -c "$T/s.yaml"
wait_ready "$A" || exit 1

kctl errors produce 1 TOPIC_AUTHORIZATION_FAILED >/dev/null
$FWD send --addr "127.0.0.1:$P" --count 300 --mode forward --batch 50 >/dev/null
$FWD send --addr "127.0.0.1:$P" --count 1 --start 300 --size 20000 >/dev/null
$FWD send --addr "127.0.0.1:$P" --count 100 --start 301 --mode forward --batch 50 >/dev/null
wait_metric "$A" 'shipper_output_records_total{output="kafka",result="delivered"}' 1 30
for _ in $(seq 100); do
    d=$(metric "$A" 'shipper_output_records_total{output="kafka",result="delivered"}')
    r=$(metric "$A" 'shipper_output_records_total{output="kafka",result="rejected"}')
    [ $((d + r)) -ge 401 ] && break; sleep 0.1
done
logs=$(hwm_total logs); dlq=$(hwm_total dlq)
check_eq "delivered + rejected = records sent" 401 "$((d + r))"
check_eq "delivered records are in the topic" "$d" "$logs"
check "the authorization failure went to the dead-letter topic ($dlq)" [ "$dlq" -ge 1 ]
check_eq "rejected = dead-lettered + the oversized record" "$((dlq + 1))" "$r"
check_eq "dead-lettered metric" "$dlq" "$(metric "$A" 'shipper_kafka_dead_lettered_total{output="kafka"}')"
check_eq "failures by reason: MSG_SIZE_TOO_LARGE (topic, then dead-letter topic)" 2 \
    "$(metric "$A" 'shipper_kafka_failed_total{output="kafka",reason="MSG_SIZE_TOO_LARGE"}')"
check "failures by reason: TOPIC_AUTHORIZATION_FAILED" \
    [ "$(metric "$A" 'shipper_kafka_failed_total{output="kafka",reason="TOPIC_AUTHORIZATION_FAILED"}')" -ge 1 ]
check "the rejection was logged" grep -q "refused a record" "$T/s.err"

# topic_key: a record with a "route" field goes to that topic; the others to `topic`.
python3 -c "
import socket, sys, time
sys.path.insert(0, '$ROOT/tests/integration')
import fwd_client as f
s = socket.create_connection(('127.0.0.1', $P))
for i in range(5):
    s.sendall(f.pack(['test.route', int(time.time()), {'log': 'routed %d' % i, 'route': 'per-a'}]))
s.close()"
for _ in $(seq 50); do [ "$(hwm_total per-a)" = 5 ] && break; sleep 0.1; done
check_eq "topic_key: records with route=per-a are in topic per-a" 5 "$(hwm_total per-a)"
stop_shipper
check_eq "shipper exit code" 0 "$SHIPPER_RC"
timeout 20 kcat -C -b "$BOOTSTRAP" -t per-a -o beginning -e -q -f '%h|%s\n' >"$T/pera.txt" 2>/dev/null
check "static header, the record id header and document" grep -q '^source=shipper-test,shipper-id=[0-9a-f]\{32\}|{.*"message":"routed 0"' "$T/pera.txt"
stop_kafka
finish
