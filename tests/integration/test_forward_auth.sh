#!/usr/bin/env bash
# suite: asan (tests/run.sh also runs it against the ASan+UBSan build)
# shared_key (and users): the Forward handshake, driven by an independent client
# (@fluent-org/logger through tests/rigs/fluent_client/send.js). The right key and password get
# their records in and acked; a wrong key, a wrong password or no handshake at all is told why
# in the PONG (the client reports it), counted as auth_failed, and gets nothing in; other
# connections go on. Without shared_key the same client is refused nothing.
. "$(dirname "$0")/lib.sh"
need_fluent_client
P=$(free_port); H=$(free_port); M="127.0.0.1:$H"
cat >"$T/s.yaml" <<YAML
service: {http_listen: "$M"}
buffer: {flush_interval: 200ms}
inputs:
  - type: forward
    listen: 127.0.0.1:$P
    shared_key: \${FORWARD_KEY}
    self_hostname: shipper-test
    users: {alice: wonderland}
outputs:
  - type: stdout
YAML
FORWARD_KEY=s3cret start_shipper s -c "$T/s.yaml"
wait_ready "$M" || exit 1
send() { timeout 30 node "$CLIENT/send.js" --addr "127.0.0.1:$P" --ack --ack-timeout 3000 --timeout 10 "$@"; }

log "the right key and user"
send --count 100 --shared-key s3cret --hostname client-1 --username alice --password wonderland \
    >/dev/null || fail "authenticated client"
log "a wrong key, a wrong password, no handshake"
send --count 5 --start 1000 --shared-key nope --username alice --password wonderland 2>"$T/e1"
check "a wrong key is refused, and the client is told why" grep -q "shared key mismatch" "$T/e1"
send --count 5 --start 2000 --shared-key s3cret --username alice --password nope 2>"$T/e2"
check "a wrong password is refused, and the client is told why" grep -q "username/password mismatch" "$T/e2"
send --count 5 --start 3000 2>"$T/e3"
check "a client that skips the handshake is refused" grep -qi "authentication" "$T/e3"
python3 "$ROOT/tests/integration/fwd_client.py" send --addr "127.0.0.1:$P" --count 5 --start 4000 \
    >/dev/null 2>&1
log "the right client again, after the refusals"
send --count 100 --start 100 --shared-key s3cret --username alice --password wonderland \
    >/dev/null || fail "authenticated client after refusals"
wait_metric "$M" 'shipper_output_records_total{output="stdout",result="delivered"}' 200 10 || fail "200 delivered"
sleep 0.5
n=$(metric "$M" 'shipper_input_errors_total{input="forward",reason="auth_failed"}')
check "refusals counted as auth_failed ($n)" [ "${n:-0}" -ge 4 ]
stop_shipper
python3 - "$T/s.out" <<'PY' || FAILS=$((FAILS + 1))
import json, sys
seqs = sorted(json.loads(l)["seq"] for l in open(sys.argv[1]))
ok = seqs == list(range(200))
print(("ok: " if ok else "FAIL: ") + "exactly the authenticated records got in (%d, max seq %s)" % (len(seqs), seqs[-1:] ))
sys.exit(0 if ok else 1)
PY
check "the log names the refusal" grep -q "auth_failed: shared key mismatch" "$T/s.err"

log "--check keeps the key and the passwords out of its output"
FORWARD_KEY=s3cret "$SHIPPER" --check -c "$T/s.yaml" >"$T/check.out" 2>&1
check "--check redacts shared_key and users" \
    bash -c "! grep -q -e s3cret -e wonderland '$T/check.out' && grep -q 'users: {alice: \"<redacted>\"}' '$T/check.out'"
printf 'inputs:\n  - {type: forward, users: {bob: x}}\noutputs: [{type: stdout}]\n' >"$T/bad.yaml"
"$SHIPPER" --check -c "$T/bad.yaml" >"$T/bad.out" 2>&1
check_eq "users without shared_key is a config error" 2 "$?"
check "the error names the key" grep -q "users: needs shared_key" "$T/bad.out"
finish
