#!/usr/bin/env bash
# ack_spin_us: after an ack shipper polls for the client's next frame instead of sleeping. A
# client that waits for each ack (one frame in flight) is caught by the spin; a slow one is not,
# and after 8 spins in a row that caught nothing shipper stops spinning except every 64th ack
# (shipper_forward_ack_spins_total{result="hit|miss|skipped"}). Every record is acked either way.
# The spin is 10 ms here (ack_spin_us: 10000, the maximum) so that what a spin catches does not
# depend on how fast the machine is: the slow client waits 50 ms (never caught), the fast one
# answers an ack in well under 10 ms even on a loaded machine (always caught).
. "$(dirname "$0")/lib.sh"
[ -x "$SHIPPER_BENCH" ] || { echo "needs $SHIPPER_BENCH"; exit 1; }
P=$(free_port); H=$(free_port); M="127.0.0.1:$H"; IN='{input="forward",result='
cat >"$T/s.yaml" <<YAML
service: {http_listen: "$M"}
inputs: [{type: forward, listen: "127.0.0.1:$P", ack_spin_us: 10000}]
outputs: [{type: "null"}]
YAML
start_shipper s -c "$T/s.yaml"
wait_ready "$M" || exit 1

log "a slow client: 40 frames with acks, 50 ms apart"
python3 "$ROOT/tests/integration/fwd_client.py" send --addr "127.0.0.1:$P" --count 40 --ack --gap 0.05 \
    >/dev/null || fail "slow client: every frame acked"
miss=$(metric "$M" "shipper_forward_ack_spins_total${IN}\"miss\"}")
skipped=$(metric "$M" "shipper_forward_ack_spins_total${IN}\"skipped\"}")
check "spins that caught nothing were counted ($miss)" [ "${miss:-0}" -ge 8 ]
check "then spinning backed off ($skipped acks without a spin)" [ "${skipped:-0}" -ge 20 ]

log "a client with one frame in flight: 20000 frames"
"$SHIPPER_BENCH" forward --addr "127.0.0.1:$P" --records 20000 --ack --quiet >/dev/null ||
    fail "fast client: every frame acked"
hit=$(metric "$M" "shipper_forward_ack_spins_total${IN}\"hit\"}")
check "a probe spin caught the fast client and spinning resumed ($hit spins caught frames)" [ "${hit:-0}" -ge 1 ]
skipped2=$(metric "$M" "shipper_forward_ack_spins_total${IN}\"skipped\"}")
check "with the fast client, at most one probe interval went without spinning ($((skipped2 - skipped)))" \
    [ $((skipped2 - skipped)) -le 64 ]
wait_metric "$M" 'shipper_output_records_total{output="null",result="delivered"}' 20040 10 ||
    fail "all records delivered"
stop_shipper
check_eq "shipper exit code" 0 "$SHIPPER_RC"
finish
