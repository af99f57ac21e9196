#!/usr/bin/env bash
# A real Fluent Bit (FLUENT_BIT=/path/to/fluent-bit, 2.1 or newer) forwarding to shipper in the six
# modes users run: plain, Require_ack_response, Compress gzip, Shared_Key + Self_Hostname, tls on,
# and all of them together (with a user). Fluent Bit tails a file of numbered lines and sends every
# line through six forward outputs, each with its own tag; every line arrives once per output.
# Fluent Bit's own metrics (fluent_signal 1) go to the plain listener too: acked, dropped and
# counted as unsupported_signal, and the connection stays open.
# Without FLUENT_BIT this test reports SKIP (exit 77).
. "$(dirname "$0")/lib.sh"
need_fluent_bit
cd "$T" || exit 1
localhost_cert
N=2000
seq 0 $((N - 1)) | sed 's/^/seq=/' >"$T/lines.log"
fluentbit_target
TLSOPT="tls on
    tls.verify on
    tls.ca_file $T/cert.pem
    tls.vhost localhost"
cat >"$T/fb.conf" <<CONF
[SERVICE]
    Flush 0.2
    Log_Level info
    Grace 1
[INPUT]
    Name tail
    Path $T/lines.log
    Read_from_Head true
    Tag lines
[INPUT]
    Name fluentbit_metrics
    Tag fbmetrics
    Scrape_Interval 1
[OUTPUT]
    Name forward
    Match lines
    Host 127.0.0.1
    Port $PLAIN
    Tag fb.plain
[OUTPUT]
    Name forward
    Match lines
    Host 127.0.0.1
    Port $PLAIN
    Tag fb.ack
    Require_ack_response true
[OUTPUT]
    Name forward
    Match lines
    Host 127.0.0.1
    Port $PLAIN
    Tag fb.gzip
    Compress gzip
[OUTPUT]
    Name forward
    Match lines
    Host 127.0.0.1
    Port $KEY
    Tag fb.key
    Shared_Key fb-key
    Self_Hostname edge-1
[OUTPUT]
    Name forward
    Match lines
    Host 127.0.0.1
    Port $TLS
    Tag fb.tls
    $TLSOPT
[OUTPUT]
    Name forward
    Match lines
    Host 127.0.0.1
    Port $ALL
    Tag fb.all
    $TLSOPT
    Shared_Key fb-key
    Self_Hostname edge-2
    Username fluent
    Password bit
    Require_ack_response true
    Compress gzip
[OUTPUT]
    Name forward
    Match fbmetrics
    Host 127.0.0.1
    Port $PLAIN
    Require_ack_response true
CONF
"$FB" -c "$T/fb.conf" >"$T/fb.log" 2>&1 &
FBPID=$!
bg_pid $FBPID
wait_metric "$M" 'shipper_output_records_total{output="stdout",result="delivered"}' $((6 * N)) 60 ||
    fail "$((6 * N)) delivered"
# Fluent Bit's metrics arrive every second: wait for two frames of them.
for _ in $(seq 100); do
    sig=$(curl -sf "http://$M/metrics" | awk '/^shipper_input_errors_total/ && /unsupported_signal/ { n += $2 } END { print n + 0 }')
    [ "$sig" -ge 2 ] && break
    sleep 0.1
done
check "Fluent Bit's metrics frames counted as unsupported_signal ($sig)" [ "$sig" -ge 2 ]
bad=$(curl -sf "http://$M/metrics" | awk '/^shipper_input_errors_total/ && !/unsupported_signal/ { n += $2 } END { print n + 0 }')
check_eq "no other input error (no connection closed)" 0 "$bad"
kill "$FBPID"; wait "$FBPID" 2>/dev/null
check "Fluent Bit logged no forward error" bash -c "! grep -E '\\[error\\].*(forward|handshake|ack)' '$T/fb.log'"
stop_shipper
python3 - "$T/s.out" "$N" <<'PY' || FAILS=$((FAILS + 1))
import collections, json, sys
n = int(sys.argv[2])
by_tag = collections.defaultdict(list)
for line in open(sys.argv[1]):
    d = json.loads(line)
    by_tag[d["tag"]].append(int(d["log"][4:]) if "log" in d else int(d["message"][4:]))
bad = 0
for tag in ["fb.plain", "fb.ack", "fb.gzip", "fb.key", "fb.tls", "fb.all"]:
    got = sorted(by_tag.get(tag, []))
    ok = got == list(range(n))
    bad += not ok
    print(("ok: " if ok else "FAIL: ") + "%s: every line exactly once (%d of %d)" % (tag, len(got), n))
sys.exit(1 if bad else 0)
PY
[ "$FAILS" -eq 0 ] || tail -20 "$T/fb.log"
finish
