#!/usr/bin/env bash
# The kafka input: an indexer tier in one consumer group (docs/topologies.md).
# Two producer shippers (forward input -> kafka output; the first also indexes directly into
# Elasticsearch) -> mock cluster (topic of 12 partitions) -> three indexers (kafka input, one
# group_id) -> Elasticsearch emulator. Forced, not waited for:
#  - indexer 1 never commits (commit_interval: 1h) and is SIGKILLed after it indexed records:
#    its partitions are consumed again from the last commit by the others, so the same records
#    reach Elasticsearch twice more and must collapse by _id; a fourth indexer joins.
#  - the records the first producer indexes directly and through Kafka must be the same
#    document under the same _id (409s, and none with a different source).
#  - a message that is not JSON (kcat) is shipped raw with a flag, counted; the rest goes on.
# Then: exactly N documents, every seq once, rebalances counted, every partition's committed
# offset equals its high watermark (lag 0), and the input's lag metric is 0.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kafka_lib.sh"
. "$(dirname "$0")/es_lib.sh"
command -v kcat >/dev/null || { echo "kcat missing (tests/deps.sh)"; exit 1; }

start_kafka 3 logs:12
start_emu es
ES="http://127.0.0.1:$EMU_PORT"

producer() { # NAME PORT HTTP DIRECT_ES(0|1)
    local es=""
    [ "$4" = 1 ] && es="  - {type: elasticsearch, url: \"$ES\", index: logs}"
    cat >"$T/$1.yaml" <<YAML
service: {http_listen: "127.0.0.1:$3", log_level: info}
buffer: {flush_interval: 100ms}
inputs: [{type: forward, listen: "127.0.0.1:$2"}]
outputs:
  - {type: kafka, brokers: "$BOOTSTRAP", topic: logs, key: none,
     properties: {sticky.partitioning.linger.ms: "0"}}   # no key: a random partition each
$es
YAML
    start_shipper "$1" -c "$T/$1.yaml"
}
indexer() { # NAME HTTP [EXTRA INPUT SETTING]
    cat >"$T/$1.yaml" <<YAML
service: {http_listen: "127.0.0.1:$2", log_level: info, grace: 5s}
buffer: {flush_interval: 100ms}
inputs:
  - type: kafka
    brokers: "$BOOTSTRAP"
    topics: [logs]
    group_id: shipper-indexers
    format: json
    commit_interval: ${3:-100ms}
    properties: {session.timeout.ms: "3000", heartbeat.interval.ms: "300"}
outputs: [{type: elasticsearch, url: "$ES", index: logs}]
YAML
    start_shipper "$1" -c "$T/$1.yaml"
}

P1=$(free_port); H1=$(free_port); P2=$(free_port); H2=$(free_port)
producer p1 "$P1" "$H1" 1; PP1=$SHIPPER_PID
producer p2 "$P2" "$H2" 0; PP2=$SHIPPER_PID
wait_ready "127.0.0.1:$H1" || exit 1
wait_ready "127.0.0.1:$H2" || exit 1

declare -A IH IPID
for i in 1 2 3; do
    IH[$i]=$(free_port)
    if [ $i = 1 ]; then indexer i$i "${IH[$i]}" 1h; else indexer i$i "${IH[$i]}"; fi
    IPID[$i]=$SHIPPER_PID
done
for i in 1 2 3; do wait_ready "127.0.0.1:${IH[$i]}" || { cat "$T/i$i.err"; exit 1; }; done
# every indexer has its share of the 12 partitions before records flow
for i in 1 2 3; do
    wait_metric "127.0.0.1:${IH[$i]}" "shipper_kafka_input_assigned_partitions{input=\"kafka\"}" 1 30 ||
        { fail "indexer $i got no partition"; cat "$T/i$i.err"; }
done

# Phase 1: 2000 records from each producer.
N1=2000
python3 "$ROOT/tests/integration/fwd_client.py" send --addr "127.0.0.1:$P1" --count $N1 --tag app.a --start 0 ||
    fail "producer 1 send"
python3 "$ROOT/tests/integration/fwd_client.py" send --addr "127.0.0.1:$P2" --count $N1 --tag app.b --start $N1 ||
    fail "producer 2 send"
wait_metric "127.0.0.1:${IH[1]}" 'shipper_output_records_total{output="elasticsearch",result="delivered"}' 1 30 ||
    fail "indexer 1 indexed nothing"
check_eq "indexer 1 committed nothing (commit_interval 1h)" 0 \
    "$(metric "127.0.0.1:${IH[1]}" 'shipper_kafka_input_committed_total{input="kafka"}')"
r2=$(metric "127.0.0.1:${IH[2]}" 'shipper_kafka_input_rebalances_total{input="kafka"}')
log "SIGKILL indexer 1 (it indexed $(metric "127.0.0.1:${IH[1]}" 'shipper_output_records_total{output="elasticsearch",result="delivered"}') records); indexer 4 joins"
kill -9 "${IPID[1]}"
IH[4]=$(free_port); indexer i4 "${IH[4]}"; IPID[4]=$SHIPPER_PID
wait_ready "127.0.0.1:${IH[4]}" || exit 1

# A message that is not JSON, among the records.
printf 'this is {not json\n' | timeout 20 kcat -P -b "$BOOTSTRAP" -t logs -p 5 || fail "kcat produce"

# Phase 2: 2000 more from each producer while the group rebalances.
python3 "$ROOT/tests/integration/fwd_client.py" send --addr "127.0.0.1:$P1" --count $N1 --tag app.a --start $((2 * N1)) ||
    fail "producer 1 send 2"
python3 "$ROOT/tests/integration/fwd_client.py" send --addr "127.0.0.1:$P2" --count $N1 --tag app.b --start $((3 * N1)) ||
    fail "producer 2 send 2"
N=$((4 * N1))
wait_metric "127.0.0.1:$H1" 'shipper_output_records_total{output="kafka",result="delivered"}' $((2 * N1)) 60 || fail "producer 1 to kafka"
wait_metric "127.0.0.1:$H2" 'shipper_output_records_total{output="kafka",result="delivered"}' $((2 * N1)) 60 || fail "producer 2 to kafka"
check_eq "messages in Kafka (high watermarks)" $((N + 1)) "$(hwm_total logs)"
wait_count $((N + 1)) logs 90 || fail "documents in Elasticsearch"
wait_metric "127.0.0.1:${IH[2]}" 'shipper_kafka_input_rebalances_total{input="kafka"}' $((r2 + 1)) 30 ||
    fail "indexer 2 counted no rebalance after the kill"

emu GET "/_emulator/docs?index=logs" >"$T/docs.json"
python3 - "$T/docs.json" "$N" <<'PY' || FAILS=$((FAILS + 1))
import json, sys
docs = json.load(open(sys.argv[1])); n = int(sys.argv[2])
seqs = sorted(d["_source"]["seq"] for d in docs if "seq" in d["_source"])
ids = {d["_id"] for d in docs}
raw = [d["_source"] for d in docs if "seq" not in d["_source"]]
ok = seqs == list(range(n)) and len(ids) == len(docs) == n + 1
print(("ok: " if ok else "FAIL: ") + "seq 0..%d each indexed once by _id (%d docs, %d distinct ids)" % (n - 1, len(docs), len(ids)))
ok2 = len(raw) == 1 and raw[0].get("message") == "this is {not json" and raw[0].get("kafka_invalid_json") is True
print(("ok: " if ok2 else "FAIL: ") + "the invalid message shipped raw with the flag: %r" % raw)
sys.exit(0 if ok and ok2 else 1)
PY
st() { emu_stat "[\"$1\"]"; }
c409=$(st conflicts); other=$(st conflicts_other_source)
check "409s: records indexed directly and through Kafka (and re-consumed) collapsed ($c409 >= $N1 * 2)" [ "$c409" -ge $((2 * N1)) ]
check_eq "409s whose source differs from the stored document" 0 "$other"

sum_metric() { local s=0 v; for i in 2 3 4; do v=$(metric "127.0.0.1:${IH[$i]}" "$1"); s=$((s + ${v%.*})); done; echo $s; }
# at least once: a member that took it may lose the partition to a rebalance before its commit
inv=$(sum_metric 'shipper_kafka_input_invalid_total{input="kafka"}')
check "invalid JSON message counted ($inv; re-read after a rebalance counts again)" [ "$inv" -ge 1 ]

# Lag 0: every partition's committed offset (reported by its owner) equals its high watermark.
ok_lag=0
for _ in $(seq 100); do
    kctl hwm logs >"$T/hwm.txt"
    for i in 2 3 4; do curl -sf "http://127.0.0.1:${IH[$i]}/metrics"; done >"$T/m.txt"
    if python3 - "$T/hwm.txt" "$T/m.txt" <<'PY'; then ok_lag=1; break; fi
import re, sys
hwm = dict((int(p), int(v)) for p, v in re.findall(r"p(\d+)=(\d+)", open(sys.argv[1]).read()))
com = {}
for m in re.finditer(r'^shipper_kafka_input_committed_offset\{[^}]*topic="logs",partition="(\d+)"\} (\d+)', open(sys.argv[2]).read(), re.M):
    com[int(m.group(1))] = int(m.group(2))
lag = sum(max(0, hwm[p] - com.get(p, 0)) for p in hwm)
used = [p for p in hwm if hwm[p] > 0]
print("partitions %d (%d written), committed %d, lag %d" % (len(hwm), len(used), len(com), lag))
sys.exit(0 if len(hwm) == 12 and len(used) >= 10 and all(p in com for p in used) and lag == 0 else 1)
PY
    sleep 0.2
done
check "every partition committed up to its high watermark (lag 0)" [ $ok_lag = 1 ]
check_eq "lag metric of the indexers" 0 "$(sum_metric 'shipper_kafka_input_lag{input="kafka"}')"

for i in 2 3 4; do
    stop_shipper "${IPID[$i]}"
    check_eq "indexer $i exit code on SIGTERM" 0 "$SHIPPER_RC"
done
stop_shipper "$PP1"; stop_shipper "$PP2"
finish
