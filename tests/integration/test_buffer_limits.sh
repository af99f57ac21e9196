#!/usr/bin/env bash
# Limits and routing that nothing else checks:
#  1. buffer.spool_limit: with Elasticsearch down the spool grows; once it holds more than
#     spool_limit the inputs pause (shipper_paused 1, the client is held back by TCP) and
#     shipper_spool_bytes shows the spool's size; when Elasticsearch is back the spool drains,
#     the inputs resume and every record is indexed.
#  2. match: records go to every output whose glob fits their tag; a record no output matches
#     is dropped and counted in shipper_unmatched_records_total (warned once).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/es_lib.sh"
FC="python3 $ROOT/tests/integration/fwd_client.py"

log "1. spool_limit pauses the inputs"
start_emu es
P=$(free_port); H=$(free_port)
cat >"$T/a.yaml" <<YAML
service:
  http_listen: 127.0.0.1:$H
  state_dir: $T/state
buffer:
  spool: true
  spool_limit: 2MiB
  chunk_size: 64KiB
  flush_interval: 100ms
  retry_min: 100ms
inputs:
  - type: forward
    listen: 127.0.0.1:$P
outputs:
  - type: elasticsearch
    url: http://127.0.0.1:$EMU_PORT
    index: limit
    retry_max: 300ms
YAML
start_shipper a -c "$T/a.yaml"; wait_ready "127.0.0.1:$H" || exit 1
emu POST /_emulator/down '{"seconds": 0}' >/dev/null
N=100000 # ~25 MB of records: far more than spool_limit plus what socket buffers hold
$FC send --addr "127.0.0.1:$P" --mode forward --batch 200 --count $N --size 150 --tag limit \
    >"$T/client.log" 2>&1 &
CLIENT=$!
wait_metric "127.0.0.1:$H" shipper_paused 1 30 && ok "inputs paused" || fail "inputs never paused"
spool=$(metric "127.0.0.1:$H" shipper_spool_bytes)
check "shipper_spool_bytes shows the spool over its limit ($spool bytes > 2 MiB)" [ "$spool" -gt 2097152 ]
check "memory is far from memory_limit: the spool is what paused them ($(metric "127.0.0.1:$H" shipper_buffer_bytes) bytes buffered)" \
    [ "$(metric "127.0.0.1:$H" shipper_buffer_bytes)" -lt 134217728 ]
check "the client is held back while paused" kill -0 $CLIENT
emu POST /_emulator/up >/dev/null
wait $CLIENT; check_eq "client finished once the spool drained" 0 $?
wait_count $N limit 60
check_eq "inputs resumed" 0 "$(metric "127.0.0.1:$H" shipper_paused)"
check "the spool shrank below its limit ($(metric "127.0.0.1:$H" shipper_spool_bytes) bytes)" \
    [ "$(metric "127.0.0.1:$H" shipper_spool_bytes)" -lt 2097152 ]
stop_shipper; check_eq "clean exit" 0 "$SHIPPER_RC"
check_seqs limit 0 $N || FAILS=$((FAILS + 1))

log "2. match routes by tag; unmatched records are counted"
cat >"$T/b.yaml" <<YAML
service:
  http_listen: 127.0.0.1:$H
buffer:
  flush_interval: 100ms
inputs:
  - type: forward
    listen: 127.0.0.1:$P
outputs:
  - type: "null"
    name: apps
    match: "app.*"
  - type: "null"
    name: every_web
    match: "*.web"
YAML
start_shipper b -c "$T/b.yaml"; wait_ready "127.0.0.1:$H" || exit 1
$FC send --addr "127.0.0.1:$P" --mode forward --count 300 --tag app.db >/dev/null   # apps
$FC send --addr "127.0.0.1:$P" --mode forward --count 200 --tag app.web >/dev/null  # both
$FC send --addr "127.0.0.1:$P" --mode forward --count 100 --tag sys.web >/dev/null  # every_web
$FC send --addr "127.0.0.1:$P" --mode forward --count 70 --tag sys.db >/dev/null    # none
$FC send --addr "127.0.0.1:$P" --mode forward --count 30 --tag other >/dev/null     # none
wait_metric "127.0.0.1:$H" 'shipper_input_records_total{input="forward"}' 700 10
wait_metric "127.0.0.1:$H" 'shipper_unmatched_records_total' 100 10
check_eq "app.* records (app.db, app.web)" 500 \
    "$(metric "127.0.0.1:$H" 'shipper_output_records_total{output="apps",result="delivered"}')"
check_eq "*.web records (app.web, sys.web)" 300 \
    "$(metric "127.0.0.1:$H" 'shipper_output_records_total{output="every_web",result="delivered"}')"
check_eq "records no output matches" 100 "$(metric "127.0.0.1:$H" shipper_unmatched_records_total)"
check_eq "the drop is warned once" 1 "$(grep -c "match no output" "$T/b.err")"
stop_shipper; check_eq "clean exit" 0 "$SHIPPER_RC"
finish
