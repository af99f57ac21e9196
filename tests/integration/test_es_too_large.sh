#!/usr/bin/env bash
# HTTP 413 (the server's http.max_content_length is below bulk_max_bytes): shipper halves its
# bodies and sends the same records again, so nothing is stuck or lost; a single document larger
# than the server accepts is rejected (dead-letter file), never retried forever.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/es_lib.sh"

start_emu e --max-content-length 20000
P=$(free_port); H=$(free_port); M="127.0.0.1:$H"; OUT='{output="elasticsearch"'
cat >"$T/s.yaml" <<YAML
service: {http_listen: "127.0.0.1:$H"}
buffer: {flush_interval: 200ms, retry_min: 100ms}
inputs:
  - {type: forward, listen: "127.0.0.1:$P"}
outputs:
  - type: elasticsearch
    url: "http://127.0.0.1:$EMU_PORT"
    index: big
    bulk_max_bytes: 1MiB
    dead_letter_file: "$T/dead.ndjson"
    retry_max: 1s
YAML
start_shipper s -c "$T/s.yaml"
wait_ready "$M" || exit 1

log "4000 records of ~300 bytes, every 1000th of 30000 bytes"
send_es --addr "127.0.0.1:$P" --count 4000 --pad 200 --big-every 1000 --big-size 30000 || fail "send"
wait_metric "$M" "shipper_output_records_total${OUT},result=\"delivered\"}" 3996 30 || fail "delivered"
wait_metric "$M" "shipper_output_records_total${OUT},result=\"rejected\"}" 4 10 || fail "rejected"
emu GET "/_emulator/docs?index=big" >"$T/docs.json"
python3 - "$T/docs.json" <<'PY' || FAILS=$((FAILS + 1))
import json, sys
docs = json.load(open(sys.argv[1]))
seqs = sorted(d["_source"]["seq"] for d in docs)
want = [i for i in range(4000) if i % 1000]
ok = seqs == want and len({d["_id"] for d in docs}) == len(docs)
print(("ok: " if ok else "FAIL: ") + "3996 small records stored once each (%d docs)" % len(docs))
sys.exit(0 if ok else 1)
PY
check_eq "the 4 large records are in the dead-letter file" "0 1000 2000 3000" "$(python3 -c '
import json, sys
print(" ".join(str(s) for s in sorted(json.loads(json.loads(l)["original"])["seq"] for l in open(sys.argv[1]))))' "$T/dead.ndjson")"
check "the dead-letter error names the cause" grep -q request_too_large "$T/dead.ndjson"
check "413s were seen and counted" [ "$(metric "$M" "shipper_es_requests_total${OUT},status=\"413\"}")" -ge 1 ]
check_eq "rejected by reason" 4 "$(metric "$M" "shipper_es_rejected_total${OUT},reason=\"request_too_large\"}")"
check "the split is logged" grep -q "HTTP 413 for a bulk of" "$T/s.err"
emu POST /_emulator/reset >/dev/null

log "the learned size stays: 2000 more records go through without a stuck buffer"
send_es --addr "127.0.0.1:$P" --count 2000 --start 4000 --pad 200 || fail "send 2"
wait_count 2000 big 30 || fail "second batch"
check_seqs big 4000 6000 || FAILS=$((FAILS + 1))
stop_shipper
check_eq "shipper exit code" 0 "$SHIPPER_RC"
finish
