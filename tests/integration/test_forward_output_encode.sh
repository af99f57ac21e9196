#!/usr/bin/env bash
# suite: asan (tests/run.sh also runs it against the ASan+UBSan build)
# The forward output encodes frames on libuv's thread pool, `encode_threads` at once
# (docs/forward_output.md, "Encoding"): a Forward client → edge (small chunks, so hundreds of
# frames are encoded side by side; plain and gzip) → aggregator (forward input, ack: accepted)
# → Elasticsearch emulator: every record exactly once, whatever order the encoders finish in.
# `encode_threads: 0` encodes on the event loop (as before). A bad value: exit 2 with file:line.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/es_lib.sh"
cd "$T"
FWD="python3 $ROOT/tests/integration/fwd_client.py"

start_emu es
A_PORT=$(free_port); A_HTTP=$(free_port); E_PORT=$(free_port); E_HTTP=$(free_port)

log "bad config: exit 2 with file:line"
bad_forward_out_conf "$E_PORT" "servers: [127.0.0.1:$A_PORT]" "encode_threads: 65"
check_rejected "encode_threads 65" "bad.yaml:7: encode_threads"

cat >agg.yaml <<EOF
service: {http_listen: 127.0.0.1:$A_HTTP, grace: 2s}
buffer: {flush_interval: 100ms}
inputs:
  - {type: forward, listen: 127.0.0.1:$A_PORT}
outputs:
  - {type: elasticsearch, url: "http://127.0.0.1:$EMU_PORT", index: enc}
EOF
start_shipper agg -c "$T/agg.yaml"
AGG_PID=$SHIPPER_PID
wait_ready "127.0.0.1:$A_HTTP"

# run COMPRESSION THREADS START: 20,000 records through an edge with that many encoders.
run() {
    cat >edge.yaml <<EOF
service: {http_listen: 127.0.0.1:$E_HTTP, grace: 2s}
buffer: {flush_interval: 100ms, chunk_size: 4KiB}
inputs:
  - {type: forward, listen: 127.0.0.1:$E_PORT}
outputs:
  - {type: forward, servers: [127.0.0.1:$A_PORT], compression: $1, encode_threads: $2}
EOF
    start_shipper edge -c "$T/edge.yaml"
    local pid=$SHIPPER_PID
    wait_ready "127.0.0.1:$E_HTTP"
    log "compression $1, encode_threads $2: 20000 records in 4 KiB chunks"
    $FWD send --addr "127.0.0.1:$E_PORT" --count 20000 --start "$3" --mode forward --batch 500 \
        >/dev/null || fail "client"
    wait_count $(($3 + 20000)) enc 90
    check_seqs enc 0 $(($3 + 20000)) || FAILS=$((FAILS + 1))
    local chunks
    chunks=$(metric "127.0.0.1:$E_HTTP" \
        "shipper_forward_output_server_chunks_total{output=\"forward\",server=\"127.0.0.1:$A_PORT\"}")
    check "...in many frames ($chunks)" test "${chunks:-0}" -ge 100
    stop_shipper "$pid"
    check_eq "the edge stops cleanly" 0 "$SHIPPER_RC"
}
run none 4 0
run gzip 4 20000
run none 0 40000
stop_shipper "$AGG_PID"
finish
