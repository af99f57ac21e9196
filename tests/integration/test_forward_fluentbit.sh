#!/usr/bin/env bash
# suite: asan (tests/run.sh also runs it against the ASan+UBSan build)
# Fluent Bit 2.1+ as a forwarder: tests/rigs/fluentbit_client.py writes what Fluent Bit's
# out_forward writes, byte for byte ([[time, metadata], record] entries, options with
# fluent_signal, header/entries/options in separate writes, the handshake with a str salt and
# the empty-user answer to HELO's auth, acks read in one read), in the six modes users run:
# plain, Require_ack_response, Compress gzip, Shared_Key + Self_Hostname, tls on, and all together.
# Every record arrives exactly once, acked where asked; metrics and traces frames are acked,
# dropped and counted (unsupported_signal) without closing the connection; non-empty metadata is
# kept under fluent_metadata. (test_forward_fluentbit_binary.sh drives a real Fluent Bit.)
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1
localhost_cert
fluentbit_target
fb() { timeout 60 python3 "$ROOT/tests/rigs/fluentbit_client.py" --chunks 20 --records 50 "$@"; }
TLSOPT=(--tls --ca "$T/cert.pem" --servername localhost)

log "plain: 2-element frames, [[EventTime, {}], record] entries"
fb --addr "127.0.0.1:$PLAIN" --start 0 >/dev/null || fail "plain"
log "Require_ack_response (ack: delivered), with metrics and traces frames on the same connection"
out=$(fb --addr "127.0.0.1:$PLAIN" --start 1000 --require-ack --signals --metadata) || fail "require_ack"
check_eq "every chunk acked" "acked 1001" "$out"
log "Compress gzip, and Time_as_Integer"
fb --addr "127.0.0.1:$PLAIN" --start 2000 --compress gzip >/dev/null || fail "gzip"
fb --addr "127.0.0.1:$PLAIN" --start 3000 --time-as-integer --require-ack >/dev/null || fail "time_as_integer"
log "Shared_Key + Self_Hostname"
fb --addr "127.0.0.1:$KEY" --start 4000 --shared-key fb-key --self-hostname edge-1 --require-ack \
    >/dev/null || fail "shared_key"
fb --addr "127.0.0.1:$KEY" --start 90000 --shared-key wrong --chunks 1 2>"$T/wrong" >/dev/null &&
    fail "a wrong key was accepted"
check "a wrong key is told why in the PONG" grep -q "shared key mismatch" "$T/wrong"
log "tls on"
fb --addr "127.0.0.1:$TLS" --start 5000 "${TLSOPT[@]}" --require-ack >/dev/null || fail "tls"
log "all together: tls, Shared_Key with a user, Require_ack_response, gzip, signals, metadata"
out=$(fb --addr "127.0.0.1:$ALL" --start 6000 "${TLSOPT[@]}" --shared-key fb-key --username fluent \
    --password bit --self-hostname edge-2 --require-ack --compress gzip --signals --metadata) || fail "all together"
check_eq "every chunk acked (all together)" "acked 1001" "$out"

wait_metric "$M" 'shipper_output_records_total{output="stdout",result="delivered"}' 7002 20 ||
    fail "7002 delivered"
sig=$(curl -sf "http://$M/metrics" | awk '/^shipper_input_errors_total/ && /unsupported_signal/ { n += $2 } END { print n + 0 }')
check_eq "metrics and traces frames counted as unsupported_signal" 4 "$sig"
bad=$(curl -sf "http://$M/metrics" | awk '/^shipper_input_errors_total/ && /bad_shape|malformed/ { n += $2 } END { print n + 0 }')
check_eq "no connection closed for its shape" 0 "$bad"
stop_shipper
check_eq "clean stop" 0 "$SHIPPER_RC"
python3 - "$T/s.out" <<'PY' || FAILS=$((FAILS + 1))
import json, sys
docs = [json.loads(l) for l in open(sys.argv[1])]
seqs = sorted(d["seq"] for d in docs)
want = sorted(list(range(0, 1000)) + list(range(1000, 2001)) + list(range(2000, 3000)) +
              list(range(3000, 4000)) + list(range(4000, 5000)) + list(range(5000, 6000)) +
              list(range(6000, 7001)))
ok = seqs == want
print(("ok: " if ok else "FAIL: ") + "every record exactly once (%d of %d)" % (len(seqs), len(want)))
meta = [d for d in docs if "fluent_metadata" in d]
good = all(d["fluent_metadata"] == {"otlp": {"severity": 9}} and d["seq"] % 7 == 0 for d in meta)
n_meta = sum(1 for s in list(range(1000, 2001)) + list(range(6000, 7001)) if s % 7 == 0)
ok2 = good and len(meta) == n_meta
print(("ok: " if ok2 else "FAIL: ") + "non-empty metadata kept as fluent_metadata (%d of %d)" % (len(meta), n_meta))
ts = all(d["@timestamp"].endswith("Z") and d["tag"] == "dummy.0" and d["message"].startswith("seq=") for d in docs)
print(("ok: " if ts else "FAIL: ") + "documents have @timestamp, tag and message")
sys.exit(0 if ok and ok2 and ts else 1)
PY
finish
