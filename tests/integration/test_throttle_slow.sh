#!/usr/bin/env bash
# throttle `action: slow` (docs/filters.md, README "Backpressure"): a Forward client floods a key
# (its tag) far above the rate while another sends well under it. Nothing is dropped: the flood's
# connection alone is paused while its key is over the rate (slowed records and source pauses
# counted), its client is held back by TCP for at least most of N / rate, and the quiet client
# delivers everything it sends.
. "$(dirname "$0")/lib.sh"
P=$(free_port); H=$(free_port)
N=100000 RATE=20000 NQ=300
cat >"$T/shipper.yaml" <<YAML
service:
  http_listen: 127.0.0.1:$H
buffer:
  flush_interval: 200ms
filters:
  - type: throttle
    key: tag
    rate: $RATE/s
    burst: 2000
    action: slow
inputs:
  - type: forward
    listen: 127.0.0.1:$P
outputs:
  - type: stdout
YAML
start_shipper s -c "$T/shipper.yaml"
wait_ready "127.0.0.1:$H" || exit 1
FC="python3 $ROOT/tests/integration/fwd_client.py"
$FC send --addr "127.0.0.1:$P" --count $NQ --tag quiet --size 50 --rate 20000 >"$T/quiet.log" 2>&1 &
QUIET=$!
t0=$(date +%s.%N)
$FC send --addr "127.0.0.1:$P" --count $N --tag flood --size 100 >"$T/flood.log" 2>&1 ||
    fail "flood client failed: $(cat "$T/flood.log")"
t1=$(date +%s.%N)
wait $QUIET || fail "quiet client failed"
want=$((N + NQ))
wait_metric "127.0.0.1:$H" 'shipper_output_records_total{output="stdout",result="delivered"}' $want 60 ||
    fail "not every record delivered"
slowed=$(metric "127.0.0.1:$H" 'shipper_filter_records_total{filter="throttle",result="slowed"}')
dropped=$(metric "127.0.0.1:$H" 'shipper_filter_records_total{filter="throttle",result="dropped"}')
pauses=$(metric "127.0.0.1:$H" 'shipper_source_pauses_total{input="forward"}')
check_eq "nothing dropped" 0 "$dropped"
check "records over the rate were slowed ($slowed)" [ "${slowed%.*}" -gt 0 ]
check "the flood's connection was paused ($pauses pauses)" [ "${pauses%.*}" -ge 1 ]
# A lower bound only (load makes it longer, never shorter): without `slow` the client is done
# in well under a second here; at the rate it cannot send N records in less than (N - burst -
# what the kernel's buffers hold) / rate. Half of (N - burst) / rate leaves room for the buffers.
el=$(python3 -c "print(int(($t1 - $t0) * 1000))")
min=$(( (N - 2000) * 1000 / RATE / 2 ))
check "the flood client was held back: ${el} ms >= ${min} ms" [ "$el" -ge "$min" ]
stop_shipper
check_eq "exit code" 0 "$SHIPPER_RC"
python3 - "$T/s.out" "$N" "$NQ" <<'PY' || FAILS=$((FAILS + 1))
import json, sys
n, nq = int(sys.argv[2]), int(sys.argv[3])
seqs = {"flood": [], "quiet": []}
for line in open(sys.argv[1]):
    d = json.loads(line)
    seqs.setdefault(d["tag"], []).append(d.get("seq"))
ok = sorted(seqs["flood"]) == list(range(n)) and sorted(seqs["quiet"]) == list(range(nq))
print(("ok: " if ok else "FAIL: ") + "every record once: flood %d/%d, quiet %d/%d" % (len(seqs["flood"]), n, len(seqs["quiet"]), nq))
sys.exit(0 if ok else 1)
PY
finish
