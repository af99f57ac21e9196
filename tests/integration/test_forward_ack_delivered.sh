#!/usr/bin/env bash
# suite: asan (tests/run.sh also runs it against the ASan+UBSan build)
# ack: delivered waits for every chunk a frame touched. A Forward-mode frame of 3 records of
# 600 B with chunk_size 1KiB spans two chunks (records 0-1, then record 2); the Elasticsearch
# emulator holds the bulk request that carries record 0 for a second and then answers 503, so
# the chunk with the frame's last record is delivered first and the other one only on retry.
# The moment the client sees the ack, shipper is SIGKILLed: every record of the acked frame must
# already be in Elasticsearch (nothing is spooled, so what was not delivered is gone).
# Then, with a new shipper: frames of 50 records over many chunks through whole-request and item
# failures (every record is indexed when the last ack arrives), and a client that goes away
# while its acks wait for chunks; SIGTERM must exit 0 (tests/run.sh runs this under ASan, so a
# leaked or twice-freed waiter fails it).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/es_lib.sh"

start_emu e
P=$(free_port); H=$(free_port); M="127.0.0.1:$H"
cat >"$T/s.yaml" <<YAML
service: {http_listen: "$M"}
buffer: {chunk_size: 1KiB, flush_interval: 30s, retry_min: 100ms}
inputs:
  - {type: forward, listen: "127.0.0.1:$P", ack: delivered}
outputs:
  - type: elasticsearch
    url: "http://127.0.0.1:$EMU_PORT"
    index: ackwait
    workers: 2
    retry_max: 300ms
YAML
start_shipper s -c "$T/s.yaml"
wait_ready "$M" || exit 1
# The request holding record 0 (its message starts "seq=0 ") waits 1 s, then fails whole.
emu POST /_emulator/faults '{"request_match": {"contains": "seq=0 ", "status": 503, "delay": 1}}' >/dev/null

log "one frame of 3 records over two chunks; SIGKILL as soon as it is acked"
acked=0
while read -r line; do
    if [ "$line" = "acked 3" ]; then
        kill -9 "$SHIPPER_PID"
        acked=1
    fi
done < <(timeout 30 python3 "$ROOT/tests/integration/fwd_client.py" send --addr "127.0.0.1:$P" \
    --mode forward --batch 3 --count 3 --size 600 --ack --progress --tag ack.test 2>"$T/client.err")
wait "$SHIPPER_PID" 2>/dev/null
check_eq "the frame was acked" 1 "$acked"
# The emulator counts a request when it answers it: let it answer the one it holds.
for _ in $(seq 50); do [ "$(emu_stat '["requests_by_status"].get("503", 0)')" -ge 1 ] && break; sleep 0.1; done
check_eq "the request holding record 0 failed once (503)" 1 \
    "$(emu_stat '["requests_by_status"].get("503", 0)')"
n=$(emu_stat '["bulk_requests"]')
check "the frame's records went in separate requests: one failed, two succeeded ($n)" [ "$n" -ge 3 ]
check_eq "every record of the acked frame is in Elasticsearch after the SIGKILL" 3 "$(emu_count ackwait)"
check_seqs ackwait 0 3 || FAILS=$((FAILS + 1))

log "frames of 50 records over many chunks, whole-request and item failures: every ack holds"
emu DELETE /_emulator/faults >/dev/null
start_shipper s2 -c "$T/s.yaml"
wait_ready "$M" || exit 1
need_fluent_client
emu POST /_emulator/faults '{"request_status": [503, 429, 503], "item_status_every": {"n": 13, "status": 429}}' >/dev/null
timeout 120 node "$CLIENT/send.js" --addr "127.0.0.1:$P" --mode packed --count 500 --start 3 \
    --batch 50 --pad 150 --ack --ack-timeout 60000 --timeout 100 --quiet >/dev/null ||
    fail "the Node client: every frame acked"
check_eq "every acked record is in Elasticsearch when the last ack arrives" 503 "$(emu_count ackwait)"
emu DELETE /_emulator/faults >/dev/null

log "a client that goes away while its acks wait for chunks"
emu POST /_emulator/down '{}' >/dev/null
before=$(metric "$M" 'shipper_input_records_total{input="forward"}')
python3 "$ROOT/tests/integration/fwd_client.py" send --addr "127.0.0.1:$P" --mode forward --batch 3 \
    --count 6 --start 503 --size 600 --ack >/dev/null 2>&1 &
GONE=$!
wait_metric "$M" 'shipper_input_records_total{input="forward"}' $((before + 3)) 10 ||
    fail "the frame was read"
kill "$GONE"; wait "$GONE" 2>/dev/null
for _ in $(seq 50); do
    [ "$(metric "$M" 'shipper_forward_connections{input="forward"}')" = 0 ] && break; sleep 0.1
done
check_eq "its connection is closed while the records wait for Elasticsearch" 0 \
    "$(metric "$M" 'shipper_forward_connections{input="forward"}')"
emu POST /_emulator/up >/dev/null
wait_count 506 ackwait 30 || fail "its records are delivered all the same"
stop_shipper
check_eq "shipper exit code (a sanitizer build also checks for leaks here)" 0 "$SHIPPER_RC"
check_eq "no sanitizer report" 0 "$(grep -c Sanitizer "$T/s2.err")"
check_seqs ackwait 0 506 || FAILS=$((FAILS + 1))
finish
