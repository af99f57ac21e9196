#!/usr/bin/env bash
# Forward → shipper → Elasticsearch emulator under injected faults: ES down at start then up,
# whole-request 429/503, per-item 429/503, truncated responses, ES down mid-stream then up.
# Every record must be stored exactly once; bodies are gzip and bulks are split
# (bulk_max_bytes smaller than a chunk).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/es_lib.sh"

start_emu e
P=$(free_port); H=$(free_port)
emu POST /_emulator/down '{}' >/dev/null # down at start, until /_emulator/up
cat >"$T/s.yaml" <<YAML
service: {http_listen: "127.0.0.1:$H", log_level: info}
buffer: {chunk_size: 128KiB, flush_interval: 200ms, retry_min: 100ms}
inputs:
  - {type: forward, listen: "127.0.0.1:$P"}
outputs:
  - type: elasticsearch
    url: "http://127.0.0.1:$EMU_PORT"
    index: "faults-%Y.%m"
    compression: gzip
    bulk_max_bytes: 32KiB
    retry_max: 1s
    connect_timeout: 1s
    timeout: 5s
YAML
start_shipper s -c "$T/s.yaml"
wait_ready "127.0.0.1:$H" || exit 1
M="127.0.0.1:$H"
OUT='{output="elasticsearch"'

log "phase 1: ES down at start"
send_es --addr "127.0.0.1:$P" --count 3000 --start 0 || fail "send 1"
wait_metric "$M" "shipper_es_requests_total${OUT},status=\"connect_error\"}" 2 20 || fail "no connect errors while down"
check_eq "nothing stored while down" 0 "$(emu_count)"
emu POST /_emulator/up >/dev/null
wait_count 3000 || fail "phase 1 records"

log "phase 2: whole-request 429/503, per-item 429/503, truncated responses"
emu POST /_emulator/faults '{"request_status": [429, 503, 503, 429], "item_status_every": {"n": 7, "status": 429}, "item_status_count": {"count": 50, "status": 503}}' >/dev/null
send_es --addr "127.0.0.1:$P" --count 17000 --start 3000 || fail "send 2"
wait_count 20000 || fail "phase 2 records"
emu DELETE /_emulator/faults >/dev/null
emu POST /_emulator/faults '{"truncate_next": 3}' >/dev/null
send_es --addr "127.0.0.1:$P" --count 3000 --start 20000 || fail "send 2b"
wait_count 23000 || fail "phase 2b records"
check_eq "the emulator truncated 3 responses" 3 "$(emu_stat '["truncated"]')"

log "phase 3: ES down mid-stream for 3 s"
send_es --addr "127.0.0.1:$P" --count 5000 --start 23000 --batch 100 &
SENDER=$!
sleep 0.3
emu POST /_emulator/down '{"seconds": 3}' >/dev/null
wait "$SENDER" || fail "send 3"
wait_count 28000 "*" 60 || fail "phase 3 records"
wait_metric "$M" "shipper_output_records_total${OUT},result=\"delivered\"}" 28000 20 || fail "delivered metric"

check_seqs "faults-*" 0 28000 || FAILS=$((FAILS + 1))
check_eq "shipper counts every record delivered" 28000 "$(metric "$M" "shipper_output_records_total${OUT},result=\"delivered\"}")"
check_eq "nothing rejected" 0 "$(metric "$M" "shipper_output_records_total${OUT},result=\"rejected\"}")"
check "whole requests were retried (429 and 503 seen)" [ "$(metric "$M" "shipper_es_requests_total${OUT},status=\"429\"}")" -ge 2 ]
bad=$(( $(metric "$M" "shipper_es_requests_total${OUT},status=\"bad_response\"}") + $(metric "$M" "shipper_es_requests_total${OUT},status=\"error\"}") ))
check "truncated responses were counted as failed requests ($bad)" [ "$bad" -ge 3 ]
check "items were retried alone" [ "$(metric "$M" "shipper_es_items_retried_total${OUT}}")" -ge 2000 ]
check_eq "every request was gzip" "$(emu_stat '["bulk_requests"]')" "$(emu_stat '["gzip_requests"]')"
enc=$(metric "$M" "shipper_es_bytes_total${OUT},stage=\"encoded\"}"); sent=$(metric "$M" "shipper_es_bytes_total${OUT},stage=\"sent\"}")
check "gzip shrinks the bodies ($enc -> $sent bytes)" [ "$sent" -lt $((enc / 3)) ]
check "bulks were split (more requests than chunks)" [ "$(emu_stat '["bulk_requests"]')" -gt 30 ]
stop_shipper
check_eq "shipper exit code" 0 "$SHIPPER_RC"
finish
