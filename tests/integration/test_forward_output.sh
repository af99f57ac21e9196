#!/usr/bin/env bash
# suite: slow (tests/run.sh starts it early: 30 s or more)
# suite: asan (tests/run.sh also runs it against the ASan+UBSan build)
# The forward output, edge → aggregator, real components on both sides: a Forward client →
# edge shipper (forward input, ack: delivered) → forward output (TLS with the test CA +
# shared_key) → aggregator shipper (forward input with the same key and certificate, spool on,
# ack: durable) → Elasticsearch emulator. Every record exactly once by seq and by _id, and:
#  - a lost ack (the aggregator's ack held past the edge's ack_timeout by a slow bulk): the
#    chunk is resent and the documents keep their _id (409 on create, no second document);
#  - the aggregator SIGKILLed and restarted mid-run: nothing lost, no duplicate documents;
#  - two aggregators, one killed: failover, then balance again once it returns (per-server
#    metrics of the edge);
#  - a wrong shared_key: the handshake fails, counted and logged clearly, nothing delivered;
#  - bad config: exit 2 with file:line.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/es_lib.sh"
cd "$T"
FWD="python3 $ROOT/tests/integration/fwd_client.py"

localhost_cert
openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.pem -days 2 -subj "/CN=other" \
    2>/dev/null || { echo "openssl failed"; exit 1; }

start_emu es
log "emulator on $EMU_PORT"

# aggregator NAME PORT HTTP [extra forward-input lines]: TLS + shared_key, spool, ack durable.
aggregator() {
    local name=$1 port=$2 http=$3
    mkdir -p "$T/$name.state"
    cat >"$T/$name.yaml" <<EOF
service: {http_listen: 127.0.0.1:$http, state_dir: $T/$name.state, grace: 2s}
buffer: {flush_interval: 100ms, spool: true}
inputs:
  - type: forward
    listen: 127.0.0.1:$port
    shared_key: agg-key
    tls: {cert: $T/cert.pem, key: $T/key.pem}
    ack: ${AGG_ACK:-durable}
outputs:
  - type: elasticsearch
    url: http://127.0.0.1:$EMU_PORT
    index: fwdout
EOF
    start_shipper "$name" -c "$T/$name.yaml"
    eval "${name}_PID=$SHIPPER_PID"
    wait_ready "127.0.0.1:$http"
}

# edge NAME PORT HTTP KEY SERVERS [extra output lines]
edge() {
    local name=$1 port=$2 http=$3 key=$4 servers=$5 extra=${6:-}
    cat >"$T/$name.yaml" <<EOF
service: {http_listen: 127.0.0.1:$http, grace: 2s}
buffer: {flush_interval: 100ms, chunk_size: 8KiB}
inputs:
  - type: forward
    listen: 127.0.0.1:$port
    ack: delivered
outputs:
  - type: forward
    servers: [$servers]
    shared_key: $key
    tls: {ca_file: $T/cert.pem}
    reconnect_min: 100ms
    retry_max: 1s
$extra
EOF
    start_shipper "$name" -c "$T/$name.yaml"
    eval "${name}_PID=$SHIPPER_PID"
    wait_ready "127.0.0.1:$http"
}

A_PORT=$(free_port); A_HTTP=$(free_port); B_PORT=$(free_port); B_HTTP=$(free_port)
E_PORT=$(free_port); E_HTTP=$(free_port)

log "bad config: exit 2 with file:line"
bad_forward_out_conf "$E_PORT" "servers: [127.0.0.1:99999]"
check_rejected "a bad server port" 'bad.yaml:6: servers: "127.0.0.1:99999": bad port'
bad_forward_out_conf "$E_PORT" "servers: [127.0.0.1:1]" "tls: {ca_file: /nonexistent.pem}"
check_rejected "a missing ca_file" 'bad.yaml:7: tls: ca_file "/nonexistent.pem": No such file' \
    "...saying which file"
bad_forward_out_conf "$E_PORT" "servers: [127.0.0.1:1]" "compression: zstd"
check_rejected "an unknown compression"

# ---- 1. edge → aggregator (TLS + shared_key) → ES: every record once ----
AGG_ACK=delivered aggregator aggA "$A_PORT" "$A_HTTP"
edge edge "$E_PORT" "$E_HTTP" agg-key "127.0.0.1:$A_PORT" "    ack_timeout: 1s"
log "1000 records (Docker's message frames) through edge → aggregator"
$FWD send --addr "127.0.0.1:$E_PORT" --count 1000 --mode message >/dev/null || fail "client"
wait_count 1000 fwdout 30
check_seqs fwdout 0 1000 || FAILS=$((FAILS + 1))
emu GET "/_emulator/docs?index=fwdout" >docs1.json
python3 - docs1.json <<'PY' || FAILS=$((FAILS + 1))
import json, sys
d = [x["_source"] for x in json.load(open(sys.argv[1]))]
bad = [x for x in d if x.get("tag") != "test.fwd" or x.get("stream") != "stdout"
       or not x.get("message", "").startswith("seq=") or x.get("container", {}).get("name") != "fwd-test"
       or len(x.get("container", {}).get("id", "")) != 64]
print(("FAIL" if bad else "ok") + ": documents keep tag, message, stream, container and extras (%d bad)" % len(bad))
sys.exit(1 if bad else 0)
PY
check "the edge's connection is TLS with the handshake done (server up)" \
    test "$(metric "127.0.0.1:$E_HTTP" "shipper_forward_output_server_up{output=\"forward\",server=\"127.0.0.1:$A_PORT\"}")" = 1

log "a lost ack: the aggregator's bulk held 3 s, the edge's ack_timeout is 1 s"
emu POST /_emulator/faults '{"delay": 3}' >/dev/null
$FWD send --addr "127.0.0.1:$E_PORT" --count 100 --start 1000 --mode forward --batch 100 --ack \
    --timeout 60 >client1.out 2>&1 &
CPID=$!
bg_pid $CPID
wait_metric "127.0.0.1:$E_HTTP" "shipper_forward_output_server_errors_total{output=\"forward\",server=\"127.0.0.1:$A_PORT\",reason=\"ack_timeout\"}" 1 10
emu DELETE /_emulator/faults >/dev/null
wait "$CPID" || fail "the client did not get every ack from the edge: $(tail -2 client1.out)"
wait_count 1100 fwdout 30
sleep 3 # the resends' bulks, still sleeping in the emulator, land
check_seqs fwdout 0 1100 || FAILS=$((FAILS + 1))
timeouts=$(metric "127.0.0.1:$E_HTTP" "shipper_forward_output_server_errors_total{output=\"forward\",server=\"127.0.0.1:$A_PORT\",reason=\"ack_timeout\"}")
check "the edge timed out waiting for the ack ($timeouts)" test "$timeouts" -ge 1
check "the resent chunk was created again under the same _id (409s: $(emu_stat '["conflicts"]'))" \
    test "$(emu_stat '["conflicts"]')" -ge 100
check_eq "no 409 with a different source (ids collided)" 0 "$(emu_stat '["conflicts_other_source"]')"
stop_shipper "$edge_PID"; check_eq "the edge stops cleanly" 0 "$SHIPPER_RC"
stop_shipper "$aggA_PID"

# ---- 2. aggregator SIGKILLed mid-run (spool, ack: durable) ----
aggregator aggA "$A_PORT" "$A_HTTP"
edge edge "$E_PORT" "$E_HTTP" agg-key "127.0.0.1:$A_PORT"
log "1500 records, the aggregator SIGKILLed right after them, 1500 more while it is down, then restarted"
$FWD send --addr "127.0.0.1:$E_PORT" --count 1500 --start 1100 --mode forward --batch 50 --ack \
    --rate 200000 --timeout 60 >client2.out 2>&1 || fail "the client did not get every ack: $(tail -2 client2.out)"
kill -9 "$aggA_PID"; wait "$aggA_PID" 2>/dev/null
$FWD send --addr "127.0.0.1:$E_PORT" --count 1500 --start 2600 --mode forward --batch 50 --ack \
    --rate 200000 --timeout 60 >client3.out 2>&1 &
CPID=$!
bg_pid $CPID
sleep 1
aggregator aggA "$A_PORT" "$A_HTTP"
wait "$CPID" || fail "the client did not get every ack from the edge: $(tail -2 client3.out)"
wait_count 4100 fwdout 60
sleep 1
check_seqs fwdout 0 4100 || FAILS=$((FAILS + 1))
check "the edge saw the aggregator go away" test "$(metric "127.0.0.1:$E_HTTP" \
    "shipper_forward_output_server_connects_total{output=\"forward\",server=\"127.0.0.1:$A_PORT\"}")" -ge 2
stop_shipper "$edge_PID"

# ---- 3. two aggregators: failover, then balance ----
aggregator aggB "$B_PORT" "$B_HTTP"
edge edge "$E_PORT" "$E_HTTP" agg-key "127.0.0.1:$A_PORT, 127.0.0.1:$B_PORT"
M='shipper_forward_output_server_chunks_total{output="forward",server="127.0.0.1:'
up='shipper_forward_output_server_up{output="forward",server="127.0.0.1:'
wait_metric "127.0.0.1:$E_HTTP" "$up$B_PORT\"}" 1 10
log "both up: 2000 records"
$FWD send --addr "127.0.0.1:$E_PORT" --count 2000 --start 4100 --mode forward --batch 100 --ack \
    --timeout 60 >/dev/null || fail "client (both up)"
a1=$(metric "127.0.0.1:$E_HTTP" "$M$A_PORT\"}"); b1=$(metric "127.0.0.1:$E_HTTP" "$M$B_PORT\"}")
check "both servers got chunks (A $a1, B $b1)" test "$a1" -ge 3 -a "$b1" -ge 3
log "B killed: 2000 more"
kill -9 "$aggB_PID"; wait "$aggB_PID" 2>/dev/null
$FWD send --addr "127.0.0.1:$E_PORT" --count 2000 --start 6100 --mode forward --batch 100 --ack \
    --timeout 60 >/dev/null || fail "client (B down)"
a2=$(metric "127.0.0.1:$E_HTTP" "$M$A_PORT\"}"); b2=$(metric "127.0.0.1:$E_HTTP" "$M$B_PORT\"}")
check_eq "B is down for the edge" 0 "$(metric "127.0.0.1:$E_HTTP" "$up$B_PORT\"}")"
check "A took the traffic (A +$((a2 - a1)), B +$((b2 - b1)))" test $((a2 - a1)) -ge 5 -a $((b2 - b1)) -le 1
log "B back: 2000 more"
aggregator aggB "$B_PORT" "$B_HTTP"
wait_metric "127.0.0.1:$E_HTTP" "$up$B_PORT\"}" 1 15 || fail "B is not up again for the edge"
$FWD send --addr "127.0.0.1:$E_PORT" --count 2000 --start 8100 --mode forward --batch 100 --ack \
    --timeout 60 >/dev/null || fail "client (B back)"
a3=$(metric "127.0.0.1:$E_HTTP" "$M$A_PORT\"}"); b3=$(metric "127.0.0.1:$E_HTTP" "$M$B_PORT\"}")
check "balanced again (A +$((a3 - a2)), B +$((b3 - b2)))" test $((a3 - a2)) -ge 3 -a $((b3 - b2)) -ge 3
wait_count 10100 fwdout 60
sleep 1
check_seqs fwdout 0 10100 || FAILS=$((FAILS + 1))
stop_shipper "$edge_PID"

# ---- 4. a wrong shared_key ----
edge edge "$E_PORT" "$E_HTTP" wrong-key "127.0.0.1:$A_PORT"
$FWD send --addr "127.0.0.1:$E_PORT" --count 10 --start 10100 --mode forward --batch 10 >/dev/null
wait_metric "127.0.0.1:$E_HTTP" \
    "shipper_forward_output_server_errors_total{output=\"forward\",server=\"127.0.0.1:$A_PORT\",reason=\"auth\"}" 1 10 ||
    fail "the failed handshake is not counted"
check "...and logged clearly" grep -q "handshake failed: the server refused us: shared key mismatch" "$T/edge.err"
sleep 1
check_eq "nothing delivered with a wrong key" 10100 "$(emu_count fwdout)"
stop_shipper "$edge_PID"
stop_shipper "$aggA_PID"
stop_shipper "$aggB_PID"
finish
