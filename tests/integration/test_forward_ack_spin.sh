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
spins() { metric "$M" "shipper_forward_ack_spins_total${IN}\"$1\"}"; }

log "a slow client: 30 frames with acks, 50 ms apart"
python3 "$ROOT/tests/integration/fwd_client.py" send --addr "127.0.0.1:$P" --count 30 --ack --gap 0.05 \
    >/dev/null || fail "slow client: every frame acked"
miss=$(spins miss); skipped=$(spins skipped); hit=$(spins hit)
check "spins that caught nothing were counted ($miss)" [ "${miss:-0}" -ge 8 ]
check "then spinning backed off ($skipped acks without a spin)" [ "${skipped:-0}" -ge 20 ]
check_eq "no spin caught the slow client" 0 "$hit"

# Backed off, only every 64th ack spins (a probe). A client with one frame in flight answers
# each ack at once, so a probe catches it and spinning resumes: within 10 probes' worth of acks.
N=640
log "a client with one frame in flight starts: the hit counter must rise within $N acks"
"$SHIPPER_BENCH" forward --addr "127.0.0.1:$P" --records $N --ack --quiet >/dev/null ||
    fail "fast client: every frame acked"
hit=$(spins hit); skipped2=$(spins skipped)
check "a probe caught the fast client within $N acks ($hit spins caught frames)" [ "${hit:-0}" -ge 1 ]
check "...and spinning resumed: not every ack of the fast client skipped it ($((skipped2 - skipped)) of $N skipped)" \
    [ $((skipped2 - skipped)) -lt $((N - 64)) ]
# Resumed means the back-off is forgotten: the next acks spin again even for a slow client,
# until 8 of them in a row catch nothing.
log "after it, 4 slow frames: each ack spins again (and misses)"
miss=$(spins miss); skipped=$(spins skipped)
python3 "$ROOT/tests/integration/fwd_client.py" send --addr "127.0.0.1:$P" --count 4 --start 30 --ack \
    --gap 0.05 >/dev/null || fail "slow client again: every frame acked"
check_eq "4 spins, each missed" 4 "$(( $(spins miss) - miss ))"
check_eq "no ack skipped the spin" 0 "$(( $(spins skipped) - skipped ))"
wait_metric "$M" 'shipper_output_records_total{output="null",result="delivered"}' $((34 + N)) 10 ||
    fail "all records delivered"
stop_shipper
check_eq "shipper exit code" 0 "$SHIPPER_RC"
finish
