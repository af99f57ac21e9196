#!/usr/bin/env bash
# The kafka input's committed offset does not pass a line the multiline filter holds (issue #13;
# docs/filters.md, "multiline"; README "Delivery guarantees").
# Mock cluster (topic of 2 partitions) -> kafka input (format json) -> multiline (java,
# flush_timeout 1h) -> Elasticsearch emulator. On partition 0: a line of container A (committed:
# offset 1), then the first lines of a Java trace of A (held) and a line of container B
# (delivered). A line on partition 1, produced once B's line is indexed, is committed by a later
# commit round, which also sees partition 0: its committed offset must still be 1 (the old code
# committed 4, past the held lines). SIGKILL; the rest of the trace is produced; a restart
# consumes from offset 1 again: the trace arrives once and whole, and B's line, consumed twice,
# is one document (same _id). Then SIGTERM while another group is held: it is emitted.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kafka_lib.sh"
. "$(dirname "$0")/es_lib.sh"
command -v kcat >/dev/null || { echo "kcat missing (tests/deps.sh)"; exit 1; }

start_kafka 1 logs:2
start_emu es
ES="http://127.0.0.1:$EMU_PORT"
H=127.0.0.1:$(free_port)
cat >"$T/cfg.yaml" <<YAML
service: {http_listen: "$H", log_level: info, grace: 5s}
buffer: {flush_interval: 100ms}
filters:
  - {type: multiline, name: ml, mode: java, flush_timeout: 1h}
inputs:
  - type: kafka
    brokers: "$BOOTSTRAP"
    topics: [logs]
    group_id: mlk
    format: json
    commit_interval: 100ms
    properties: {session.timeout.ms: "3000", heartbeat.interval.ms: "300"}
outputs: [{type: elasticsearch, url: "$ES", index: ml}]
YAML

doc() { # CONTAINER TEXT: one document as the kafka output writes it
    python3 -c 'import json, sys, time
print(json.dumps({"@timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                  "message": sys.argv[2], "stream": "stdout",
                  "container": {"id": sys.argv[1] * 64, "name": "c" + sys.argv[1]}}))' "$@"
}
produce() { # PARTITION: the documents on stdin, one message each
    timeout 20 kcat -P -b "$BOOTSTRAP" -t logs -p "$1" || fail "kcat produce"
}
committed() { metric "$H" "shipper_kafka_input_committed_offset{input=\"kafka\",topic=\"logs\",partition=\"$1\"}"; }
held() { metric "$H" 'shipper_filter_records_total{filter="ml",result="held"}'; }

start_shipper run1 -c "$T/cfg.yaml"
wait_ready "$H" || { cat "$T/run1.err"; exit 1; }
wait_metric "$H" 'shipper_kafka_input_assigned_partitions{input="kafka"}' 2 60 ||
    { fail "no assignment"; cat "$T/run1.err"; exit 1; }

doc a "before the trace" | produce 0
wait_metric "$H" 'shipper_kafka_input_committed_offset{input="kafka",topic="logs",partition="0"}' 1 60 ||
    fail "the first line was not committed"
{
    doc a 'Exception in thread "main" java.lang.IllegalStateException: boom'
    doc a $'\tat T.f(T.java:2)'
    doc b "b: another container"
} | produce 0
wait_metric "$H" 'shipper_filter_records_total{filter="ml",result="held"}' 2 60 || fail "the trace was not held"
wait_count 2 ml 60 || fail "B's line was not indexed"
doc c "tick" | produce 1
wait_metric "$H" 'shipper_kafka_input_committed_offset{input="kafka",topic="logs",partition="1"}' 1 60 ||
    fail "partition 1 was not committed"
check_eq "held lines" 2 "$(held)"
check_eq "partition 0's committed offset stops at the first held line" 1 "$(committed 0)"

log "SIGKILL while the group is held; the rest of the trace; restart"
kill -9 "$SHIPPER_PID"
wait "$SHIPPER_PID" 2>/dev/null
{
    doc a $'\tat T.main(T.java:4)'
    doc a "after the trace"
} | produce 0
start_shipper run2 -c "$T/cfg.yaml"
wait_ready "$H" || { cat "$T/run2.err"; exit 1; }
wait_count 5 ml 90 || fail "documents after the restart"
# everything consumed again is indexed (partition 0 read to its end) before the check
wait_metric "$H" 'shipper_kafka_input_committed_offset{input="kafka",topic="logs",partition="0"}' 6 60 ||
    fail "partition 0 not committed to its end after the restart"
log "SIGTERM while a group is held: it is emitted (drain) and the input stops"
h=$(held)
doc a 'Exception in thread "main" java.lang.RuntimeException: at shutdown' | produce 0
wait_metric "$H" 'shipper_filter_records_total{filter="ml",result="held"}' $((h + 1)) 60 ||
    fail "the last trace was not held"
stop_shipper
log "stopped"
check_eq "run 2 exit code" 0 "$SHIPPER_RC"

emu GET "/_emulator/docs?index=ml" >"$T/docs.json"
python3 - "$T/docs.json" <<'PY' || FAILS=$((FAILS + 1))
import json, sys
docs = json.load(open(sys.argv[1]))
def msgs(name):
    return sorted(d["_source"]["message"] for d in docs
                  if d["_source"].get("container", {}).get("name") == name)
trace = 'Exception in thread "main" java.lang.IllegalStateException: boom\n\tat T.f(T.java:2)\n\tat T.main(T.java:4)'
bad = 0
def expect(cond, what):
    global bad
    print(("ok: " if cond else "FAIL: ") + what)
    bad += 0 if cond else 1
last = 'Exception in thread "main" java.lang.RuntimeException: at shutdown'
expect(msgs("ca") == sorted(["before the trace", trace, "after the trace", last]),
       "A: the trace once and whole, nothing twice: %.300r" % msgs("ca"))
expect(msgs("cb") == ["b: another container"], "B: one document: %r" % msgs("cb"))
expect(msgs("cc") == ["tick"], "C: one document: %r" % msgs("cc"))
expect(len(docs) == 6, "6 documents (%d)" % len(docs))
sys.exit(1 if bad else 0)
PY
stop_kafka
finish
