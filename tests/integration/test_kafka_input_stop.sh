#!/usr/bin/env bash
# The kafka input stopped while a pool job still uses the consumer: SIGTERM right after an
# assignment, while the committed-offsets lookup (OffsetFetch) of that assignment is held up by
# the mock broker. The close job destroys the consumer, so it must wait for that lookup; on the
# old code the two ran at once and the process died with SIGSEGV now and then (a shutdown
# crash seen once in 7 runs of test_kafka_input.sh). Repeated, each round forcing the overlap.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kafka_lib.sh"

start_kafka 1 logs:4
ROUNDS=${ROUNDS:-2}
for round in $(seq "$ROUNDS"); do
    H=$(free_port)
    cat >"$T/i$round.yaml" <<YAML
service: {http_listen: "127.0.0.1:$H", log_level: info, grace: 5s}
inputs:
  - type: kafka
    brokers: "$BOOTSTRAP"
    topics: [logs]
    group_id: stop-$round
    properties: {session.timeout.ms: "3000", heartbeat.interval.ms: "300"}
outputs: [{type: "null"}]
YAML
    # Every OffsetFetch answers after 3 s: the lookup the assignment starts is still running
    # when SIGTERM arrives.
    kctl broker_errors 1 offsetfetch 20 NO_ERROR 3000 >/dev/null
    start_shipper "i$round" -c "$T/i$round.yaml"
    for _ in $(seq 300); do grep -q "partition(s) assigned" "$T/i$round.err" && break; sleep 0.1; done
    grep -q "partition(s) assigned" "$T/i$round.err" || { fail "round $round: no assignment"; cat "$T/i$round.err"; continue; }
    stop_shipper "$SHIPPER_PID"
    check_eq "round $round: exit status after SIGTERM during a committed-offsets lookup" 0 "$SHIPPER_RC"
    kctl clear offsetfetch >/dev/null
done
stop_kafka
finish
