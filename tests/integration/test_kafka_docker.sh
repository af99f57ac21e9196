#!/usr/bin/env bash
# Real dockerd → --log-driver=fluentd → shipper → kafka output → Kafka mock cluster (3 brokers).
# Several containers at once; checks: every line exactly once (high watermarks), the key is the
# container id, each container's lines are in order, the value is the README's document, and
# delivered/in-flight metrics agree.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kafka_lib.sh"
need_docker

start_kafka 3 logs:6
P=$(free_port); H=$(free_port)
start_shipper s --forward "127.0.0.1:$P" --kafka "$BOOTSTRAP" --topic logs --http "127.0.0.1:$H"
wait_ready "127.0.0.1:$H" || exit 1

N=2000; C=3
ids=()
for i in $(seq $C); do
    name=kafka-e2e-$$-$i
    track_container "$name"
    id=$(docker run -d --name "$name" --network none --read-only --log-driver=fluentd \
        --log-opt "fluentd-address=127.0.0.1:$P" --log-opt cache-disabled=true "$IMAGE" \
        sh -c "i=0; while [ \$i -lt $N ]; do echo line \$i; i=\$((i+1)); done")
    ids+=("$id")
done
for i in $(seq $C); do timeout 120 docker wait "kafka-e2e-$$-$i" >/dev/null || fail "container $i did not finish"; done
want=$((N * C))
wait_metric "127.0.0.1:$H" 'shipper_output_records_total{output="kafka",result="delivered"}' "$want" 30 ||
    fail "not all records delivered"
check_eq "messages in flight after delivery" 0 "$(metric "127.0.0.1:$H" 'shipper_kafka_messages_in_flight{output="kafka"}')"
check_eq "messages in Kafka (high watermarks)" "$want" "$(hwm_total logs)"
stop_shipper
check_eq "shipper exit code on SIGTERM" 0 "$SHIPPER_RC"

consume logs "$T/logs.txt"
python3 - "$T/logs.txt" "$N" "${ids[@]}" <<'PY' || FAILS=$((FAILS + 1))
import json, sys
path, n, ids = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
by = {}
for line in open(path):
    key, _, val = line.rstrip("\n").partition(" ")
    d = json.loads(val)
    by.setdefault(key, []).append(d)
bad = 0
def expect(cond, what):
    global bad
    print(("ok: " if cond else "FAIL: ") + what)
    bad += 0 if cond else 1
for cid in ids:
    docs = by.get(cid, [])
    msgs = [d["message"] for d in docs]
    # The mock may keep only the most recent messages of a partition: what it kept must be a
    # contiguous, ordered tail ending with the last line.
    first = int(msgs[0].split()[1]) if msgs else n
    expect(msgs == ["line %d" % i for i in range(first, n)],
           "container %s: key is its id, %d kept lines in order, none twice" % (cid[:12], len(msgs)))
    expect(all(d["container"]["id"] == cid for d in docs), "document container.id equals the key")
expect(set(by) == set(ids), "no other keys (%d keys)" % len(by))
sys.exit(1 if bad else 0)
PY
stop_kafka
finish
