#!/usr/bin/env bash
# Small chunks still make full bulk requests:
#  1. A spool of 10,000 one-record chunks (durable-acked frames of 1.1 KB against a 1 KiB
#     chunk_size, Elasticsearch down), SIGKILL, restart with Elasticsearch back and rejecting
#     2% of the items with 429: every record indexed exactly once, in a small number of bulk
#     requests (a delivery carries many queued chunks), not one request per chunk.
#  2. `ack: durable` with one frame in flight (what Docker does with fluentd-request-ack): a
#     durable ack does not close the chunk, so Elasticsearch gets a few full bulks, not one
#     request per line.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/es_lib.sh"
FC="python3 $ROOT/tests/integration/fwd_client.py"
start_emu es
P=$(free_port); H=$(free_port)
conf() { # STATE_DIR CHUNK_SIZE
    cat <<YAML
service:
  http_listen: 127.0.0.1:$H
  state_dir: $1
  grace: 1s
buffer:
  spool: true
  chunk_size: $2
  retry_min: 100ms
inputs:
  - type: forward
    listen: 127.0.0.1:$P
    ack: durable
outputs:
  - type: elasticsearch
    url: http://127.0.0.1:$EMU_PORT
    index: batch
    retry_max: 500ms
YAML
}

log "1. replay of 10,000 one-record chunks"
N=10000
conf "$T/state" 1KiB >"$T/a.yaml"
emu POST /_emulator/down '{"seconds": 0}' >/dev/null
start_shipper a -c "$T/a.yaml"; wait_ready "127.0.0.1:$H" || exit 1
timeout 240 $FC send --addr "127.0.0.1:$P" --mode message --count $N --size 1100 --ack --tag batch \
    >"$T/client.log" 2>&1
check_eq "every frame acked as durable while Elasticsearch is down" 0 $?
check "one chunk per record: $N chunks spooled" \
    [ "$(metric "127.0.0.1:$H" 'shipper_output_queued_chunks{output="elasticsearch"}')" -ge $N ]
kill -9 "$SHIPPER_PID"; wait "$SHIPPER_PID" 2>/dev/null
emu POST /_emulator/reset >/dev/null
emu POST /_emulator/faults '{"item_status_every": {"n": 50, "status": 429}}' >/dev/null
emu POST /_emulator/up >/dev/null
t0=$(date +%s%N)
start_shipper b -c "$T/a.yaml"; wait_ready "127.0.0.1:$H" || exit 1
wait_count $N batch 120
ms=$((($(date +%s%N) - t0) / 1000000))
reqs=$(emu_stat '["bulk_requests"]')
echo "replayed $N one-record chunks in $ms ms with $reqs bulk requests ($(emu_stat '["retryable_errors"]') items rejected with 429 and retried)"
check "a few full bulk requests, not one per chunk ($reqs <= 100)" [ "$reqs" -le 100 ]
stop_shipper; check_eq "clean exit" 0 "$SHIPPER_RC"
check_seqs batch 0 $N || FAILS=$((FAILS + 1))

log "2. ack: durable, one frame in flight: durable acks do not close the chunk"
M=3000
emu DELETE /_emulator/faults >/dev/null
emu POST /_emulator/reset >/dev/null
conf "$T/state2" 1MiB >"$T/c.yaml"
start_shipper c -c "$T/c.yaml"; wait_ready "127.0.0.1:$H" || exit 1
t0=$(date +%s%N)
timeout 120 $FC send --addr "127.0.0.1:$P" --mode message --count $M --size 100 --ack --tag one \
    >"$T/client2.log" 2>&1
check_eq "every frame acked" 0 $?
ms=$((($(date +%s%N) - t0) / 1000000))
wait_count $M batch 30
reqs=$(emu_stat '["bulk_requests"]')
echo "$M acks one at a time in $ms ms; Elasticsearch saw $reqs bulk requests"
check "a few bulk requests for $M one-line frames ($reqs <= 100)" [ "$reqs" -le 100 ]
stop_shipper; check_eq "clean exit" 0 "$SHIPPER_RC"
check_seqs batch 0 $M || FAILS=$((FAILS + 1))
finish
