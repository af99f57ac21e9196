#!/usr/bin/env bash
# Per-item outcomes: mapping errors go to the dead-letter index (or file) and never block or
# change the rest; replaying the same records (same Forward chunk ids → same _ids) gets 409s,
# which count as delivered and store nothing twice.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/es_lib.sh"

start_emu e
emu POST /_emulator/faults '{"mapping_error_field": "bad"}' >/dev/null
P=$(free_port); H=$(free_port); M="127.0.0.1:$H"; OUT='{output="elasticsearch"'
cat >"$T/s.yaml" <<YAML
service: {http_listen: "127.0.0.1:$H"}
buffer: {flush_interval: 200ms, retry_min: 100ms}
inputs:
  - {type: forward, listen: "127.0.0.1:$P"}
outputs:
  - type: elasticsearch
    url: ["http://127.0.0.1:$EMU_PORT"]
    data_stream: logs-items-default
    dead_letter_index: dead-letters
    retry_max: 1s
YAML
start_shipper s -c "$T/s.yaml"
wait_ready "$M" || exit 1

log "5000 records, every 100th with a field that fails mapping"
send_es --addr "127.0.0.1:$P" --count 5000 --bad-every 100 || fail "send"
wait_metric "$M" "shipper_output_records_total${OUT},result=\"delivered\"}" 4950 30 || fail "delivered"
wait_count 50 dead-letters 20 || fail "dead letters"
check_eq "good documents stored" 4950 "$(emu_count logs-items-default)"
check_eq "rejected counted" 50 "$(metric "$M" "shipper_output_records_total${OUT},result=\"rejected\"}")"
check_eq "rejected by reason" 50 "$(metric "$M" "shipper_es_rejected_total${OUT},reason=\"mapper_parsing_exception\"}")"
check_eq "dead letters written" 50 "$(metric "$M" "shipper_es_dead_letter_total${OUT},result=\"written\"}")"
check "the rejection is logged with its reason" grep -q "document rejected (400 mapper_parsing_exception" "$T/s.err"
emu GET "/_emulator/docs?index=dead-letters" >"$T/dl.json"
python3 - "$T/dl.json" <<'PY' || FAILS=$((FAILS + 1))
import json, sys
docs = json.load(open(sys.argv[1]))
d = docs[0]["_source"]
orig = json.loads(d["original"])
seqs = sorted(json.loads(x["_source"]["original"])["seq"] for x in docs)
ok = (seqs == list(range(0, 5000, 100)) and d["error"]["type"] == "mapper_parsing_exception"
      and d["index"] == "logs-items-default" and "@timestamp" in d and orig["bad"] == {"x": 1})
print(("ok: " if ok else "FAIL: ") + "dead-letter documents: original as a string, error, index (%s)" % json.dumps(d)[:200])
sys.exit(0 if ok else 1)
PY

log "replay the same 5000 records: 409s count as delivered"
c0=$(emu_stat '["conflicts"]')
send_es --addr "127.0.0.1:$P" --count 5000 --bad-every 100 || fail "replay"
wait_metric "$M" "shipper_output_records_total${OUT},result=\"delivered\"}" 9900 30 || fail "replay delivered"
# 4950 good documents and the 50 dead letters (same _ids) conflict; the 50 bad ones fail again
check_eq "409 conflicts on the replay" 5000 $(( $(emu_stat '["conflicts"]') - c0 ))
check_eq "still one copy of each good document" 4950 "$(emu_count logs-items-default)"
sleep 0.5
check_eq "dead letters also not duplicated" 50 "$(emu_count dead-letters)"
stop_shipper

log "dead_letter_file"
emu POST /_emulator/reset >/dev/null
sed -e 's/dead_letter_index: dead-letters/dead_letter_file: "DLF"/' -e "s|DLF|$T/dead.ndjson|" "$T/s.yaml" >"$T/s2.yaml"
start_shipper s2 -c "$T/s2.yaml"
wait_ready "$M" || exit 1
send_es --addr "127.0.0.1:$P" --count 1000 --start 10000 --bad-every 10 || fail "send file"
wait_metric "$M" "shipper_output_records_total${OUT},result=\"rejected\"}" 100 20 || fail "rejected (file)"
wait_metric "$M" "shipper_output_records_total${OUT},result=\"delivered\"}" 900 20 || fail "delivered (file)"
check_eq "dead-letter file lines" 100 "$(wc -l <"$T/dead.ndjson")"
check "dead-letter lines are JSON with the original" python3 -c '
import json, sys
for l in open(sys.argv[1]):
    d = json.loads(l); assert json.loads(d["original"])["seq"] % 10 == 0 and d["error"]["type"]' "$T/dead.ndjson"
stop_shipper
check_eq "shipper exit code" 0 "$SHIPPER_RC"
finish
