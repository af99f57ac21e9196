#!/usr/bin/env bash
# Kafka settings: a property that changes what "delivered" means (acks, idempotence, a
# transactional producer, error-only delivery reports, LIFO queuing) is refused with file:line
# unless `unsafe_properties: true`; then it is accepted and logged as a warning at start.
# Typos and bad values of any property are errors too, and so are values an idempotent producer
# cannot take. Only --check and a start against a closed
# loopback port: no broker needed.
. "$(dirname "$0")/lib.sh"

conf() { # YAML-LINES: a kafka output with these extra lines
    printf 'inputs: [{type: forward, listen: "127.0.0.1:1"}]\noutputs:\n  - type: kafka\n    brokers: 127.0.0.1:1\n%s\n' "$1" >"$T/c.yaml"
}
bad() { # EXPECTED-MESSAGE-PART YAML-LINES
    conf "$2"
    "$SHIPPER" --check -c "$T/c.yaml" >/dev/null 2>"$T/c.err"
    local rc=$?
    if [ $rc = 2 ] && grep -qF "$1" "$T/c.err"; then ok "rejected: $(cat "$T/c.err")"; else fail "expected exit 2 with '$1', got $rc: $(cat "$T/c.err")"; fi
}
good() { # DESCRIPTION YAML-LINES
    conf "$2"
    "$SHIPPER" --check -c "$T/c.yaml" >"$T/c.out" 2>"$T/c.err"
    local rc=$?
    if [ $rc = 0 ]; then ok "accepted: $1"; else fail "$1: expected exit 0, got $rc: $(cat "$T/c.err")"; fi
}

log "properties that weaken delivery are refused"
bad 'c.yaml:6: properties.acks: "1" changes what delivered means (shipper needs acks=all)' $'    properties:\n      acks: 1'
bad 'c.yaml:6: properties.acks: "0" changes' $'    properties:\n      acks: 0'
bad 'c.yaml:7: properties.request.required.acks: "1" changes' $'    properties:\n      linger.ms: 10\n      request.required.acks: 1'
bad 'c.yaml:6: properties.enable.idempotence: "false" changes' $'    properties:\n      enable.idempotence: false'
bad 'c.yaml:6: properties.transactional.id: "t1" changes' $'    properties:\n      transactional.id: t1'
bad 'c.yaml:6: properties.delivery.report.only.error: "true" changes' $'    properties:\n      delivery.report.only.error: true'
bad 'c.yaml:6: properties.queuing.strategy: "lifo" changes' $'    properties:\n      queuing.strategy: lifo'
bad 'or set unsafe_properties: true' $'    properties:\n      acks: 1'
bad 'c.yaml:7: properties.acks: "1" changes' $'    unsafe_properties: false\n    properties:\n      acks: 1'
log "what an idempotent producer needs (librdkafka would only refuse it when the producer starts)"
bad 'c.yaml:6: properties.max.in.flight: "6": max.in.flight.requests.per.connection must be at most 5 with enable.idempotence=true' $'    properties:\n      max.in.flight: 6'
bad 'c.yaml:6: properties.retries: "0": message.send.max.retries must be at least 1' $'    properties:\n      retries: 0'
good "max.in.flight: 5, retries: 3" $'    properties: {max.in.flight: 5, retries: 3}'
log "other bad properties"
bad 'c.yaml:6: properties.bogus.x: No such configuration property' $'    properties:\n      bogus.x: 1'
bad 'c.yaml:6: properties.linger.ms: ' $'    properties:\n      linger.ms: forever'
bad 'c.yaml:5: outputs[0].unsafe_properties' $'    unsafe_properties: maybe'

log "the values shipper sets anyway, and harmless properties, are accepted"
good "acks: all, acks: -1, enable.idempotence: true" $'    properties:\n      acks: all\n      request.required.acks: -1\n      enable.idempotence: "true"\n      queuing.strategy: fifo\n      delivery.report.only.error: false'
good "compression, linger, message.timeout.ms" $'    properties: {compression.type: lz4, linger.ms: 50, message.timeout.ms: 5000}'
check "--check prints unsafe_properties: false by default" grep -q 'unsafe_properties: false' "$T/c.out"

log "unsafe_properties: true accepts them, and the start logs what they change"
good "acks: 1 with unsafe_properties" $'    unsafe_properties: true\n    properties:\n      acks: 1\n      enable.idempotence: false'
check "--check prints it" grep -q 'unsafe_properties: true' "$T/c.out"
H=$(free_port); DEAD=$(free_port)
cat >"$T/s.yaml" <<YAML
service: {http_listen: "127.0.0.1:$H"}
inputs: [{type: forward, listen: "127.0.0.1:$(free_port)"}]
outputs:
  - type: kafka
    brokers: 127.0.0.1:$DEAD
    unsafe_properties: true
    properties: {acks: 1, enable.idempotence: false}
YAML
start_shipper s -c "$T/s.yaml"
wait_ready "127.0.0.1:$H" || { cat "$T/s.err"; exit 1; }
stop_shipper
check "the start warns about acks" grep -q 'warn.*kafka.*unsafe_properties: acks=1' "$T/s.err"
check "the start warns about enable.idempotence" grep -q 'warn.*kafka.*enable.idempotence=false' "$T/s.err"
check_eq "shipper exit code" 0 "$SHIPPER_RC"
finish
