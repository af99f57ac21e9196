#!/usr/bin/env bash
# suite: asan (tests/run.sh also runs it against the ASan+UBSan build)
# A second, independent Forward client (npm @fluent-org/logger) in every mode with acks, plus our
# own client for EventTime and Forward mode: every record arrives once, acks come back.
. "$(dirname "$0")/lib.sh"
need_fluent_client

P=$(free_port); H=$(free_port); P6=$(free_port)
start_shipper s --forward "127.0.0.1:$P" --forward "[::1]:$P6" --stdout --http "127.0.0.1:$H"
wait_ready "127.0.0.1:$H" || exit 1
timeout 30 python3 "$ROOT/tests/integration/fwd_client.py" send --addr "[::1]:$P6" --count 500 \
    --ack --tag own.ipv6 >/dev/null && ok "IPv6 listener with acks" || fail "IPv6 listener"

total=0
for mode in message forward packed compressed; do
    if timeout 60 node "$CLIENT/send.js" --addr "127.0.0.1:$P" --mode "$mode" --count 1000 \
        --batch 100 --ack --tag "fluent.$mode" --event-time --quiet; then
        ok "@fluent-org/logger $mode mode with acks: 1000 records acked"
    else
        fail "@fluent-org/logger $mode mode"
    fi
    total=$((total + 1000))
done
timeout 60 python3 "$ROOT/tests/integration/fwd_client.py" send --addr "127.0.0.1:$P" \
    --mode forward --batch 250 --count 2000 --ack --tag own.forward >/dev/null &&
    ok "forward mode with acks (own client)" || fail "forward mode with acks (own client)"
total=$((total + 2000 + 500))
wait_metric "127.0.0.1:$H" 'shipper_output_records_total{output="stdout",result="delivered"}' "$total" 30 ||
    fail "not all delivered"
stop_shipper
check_eq "clean exit" 0 "$SHIPPER_RC"

python3 - "$T/s.out" <<'PY' || FAILS=$((FAILS + 1))
import json, sys
docs = [json.loads(l) for l in open(sys.argv[1])]
bad = 0
for mode in ["message", "forward", "packed", "compressed"]:
    seqs = [d["seq"] for d in docs if d["tag"] == "fluent." + mode]
    good = sorted(seqs) == list(range(1000))
    print(("ok" if good else "FAIL") + ": %s: %d records, each once" % (mode, len(seqs)))
    bad += not good
    ts = [d["@timestamp"] for d in docs if d["tag"] == "fluent." + mode][:1]
    ns = bool(ts) and len(ts[0].split(".")[-1]) == 10
    print(("ok" if ns else "FAIL") + ": %s: EventTime kept nanoseconds %s" % (mode, ts))
    bad += not ns
v6 = [d["seq"] for d in docs if d["tag"] == "own.ipv6"]
good = v6 == list(range(500))
print(("ok" if good else "FAIL") + ": IPv6: 500 in order")
bad += not good
own = [d["seq"] for d in docs if d["tag"] == "own.forward"]
good = own == list(range(2000))
print(("ok" if good else "FAIL") + ": own forward mode: 2000 in order")
bad += not good
m = [d for d in docs if d["tag"] == "fluent.message"][:1]
good = bool(m) and m[0].get("message") == "line 0" and m[0].get("client") == "fluent-org"
print(("ok" if good else "FAIL") + ": record fields kept: %s" % (m[0] if m else None))
bad += not good
sys.exit(1 if bad else 0)
PY
finish
