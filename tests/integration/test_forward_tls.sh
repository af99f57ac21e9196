#!/usr/bin/env bash
# suite: asan (tests/run.sh also runs it against the ASan+UBSan build)
# tls: {cert, key} on the forward input, with shared_key on top, driven by an independent client
# (@fluent-org/logger through tests/rigs/fluent_client/send.js) that verifies the server's
# certificate against the test CA. Every mode gets its records in and acked; a record larger
# than a TLS record (and than one read) comes through whole; a plaintext client and a client
# that does not trust the certificate get nothing in, and the first is counted as tls_error.
# Config errors (a missing key, a key that does not match the certificate) exit 2 with the line.
. "$(dirname "$0")/lib.sh"
need_fluent_client
cd "$T" || exit 1
openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 2 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null || { echo "openssl failed"; exit 1; }
openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.pem -days 2 -subj "/CN=other" \
    2>/dev/null
P=$(free_port); H=$(free_port); M="127.0.0.1:$H"
cat >"$T/s.yaml" <<YAML
service: {http_listen: "$M"}
buffer: {flush_interval: 200ms}
inputs:
  - type: forward
    listen: 127.0.0.1:$P
    tls: {cert: $T/cert.pem, key: $T/key.pem}
    shared_key: tls-test
outputs:
  - type: stdout
YAML
start_shipper s -c "$T/s.yaml"
wait_ready "$M" || exit 1
send() { timeout 30 node "$CLIENT/send.js" --addr "127.0.0.1:$P" --ack --ack-timeout 5000 --timeout 20 "$@"; }
TLS=(--tls --ca "$T/cert.pem" --servername localhost --shared-key tls-test)

start=0
for mode in message forward packed compressed; do
    send "${TLS[@]}" --mode "$mode" --count 1000 --start $start >/dev/null || fail "$mode over TLS"
    start=$((start + 1000))
done
log "records of 300 KB: larger than a TLS record and than one read"
send "${TLS[@]}" --mode message --count 5 --start 4000 --pad 300000 >/dev/null || fail "large records over TLS"
log "a plaintext client and a client that does not trust the certificate"
send --count 5 --start 5000 --timeout 5 2>/dev/null && fail "a plaintext client was answered"
send --tls --ca "$T/other.pem" --servername localhost --shared-key tls-test --count 5 --start 6000 \
    2>"$T/untrusted.err" && fail "a client that does not trust the certificate sent records"
wait_metric "$M" 'shipper_output_records_total{output="stdout",result="delivered"}' 4005 15 || fail "4005 delivered"
sleep 0.5
n=$(metric "$M" 'shipper_input_errors_total{input="forward",reason="tls_error"}')
check "the plaintext client was counted as tls_error ($n)" [ "${n:-0}" -ge 1 ]
stop_shipper
check_eq "shipper exit code" 0 "$SHIPPER_RC"
python3 - "$T/s.out" <<'PY' || FAILS=$((FAILS + 1))
import json, sys
docs = [json.loads(l) for l in open(sys.argv[1])]
seqs = sorted(d["seq"] for d in docs)
big = [d for d in docs if d["seq"] >= 4000]
ok = seqs == list(range(4005)) and len(big) == 5 and all(len(d["pad"]) == 300000 for d in big)
print(("ok: " if ok else "FAIL: ") + "every record over TLS once, large ones whole, none from the refused clients (%d)" % len(seqs))
sys.exit(0 if ok else 1)
PY

log "config errors"
sed "s|key: $T/key.pem|key: $T/other.key|" "$T/s.yaml" >"$T/mismatch.yaml"
"$SHIPPER" --check -c "$T/mismatch.yaml" >"$T/mismatch.out" 2>&1
check_eq "a key that does not match the certificate: exit 2" 2 "$?"
check "...naming the line and the file" grep -q "mismatch.yaml:6: tls: .*other.key: .*key values mismatch" "$T/mismatch.out"
sed "s|, key: $T/key.pem||" "$T/s.yaml" >"$T/nokey.yaml"
"$SHIPPER" --check -c "$T/nokey.yaml" >"$T/nokey.out" 2>&1
check_eq "tls without a key: exit 2" 2 "$?"
check "...saying what is missing" grep -q "tls: needs both cert and key" "$T/nokey.out"
finish
