#!/usr/bin/env bash
# suite: asan (tests/run.sh also runs it against the ASan+UBSan build)
# Bad input closes only the connection that sent it, is counted by reason, and a concurrent good
# client loses nothing. Also: idle and slow connections time out; max_connections is enforced.
. "$(dirname "$0")/lib.sh"
P=$(free_port); H=$(free_port); P2=$(free_port)
cat >"$T/shipper.yaml" <<YAML
service:
  http_listen: 127.0.0.1:$H
inputs:
  - type: forward
    name: forward
    listen: 127.0.0.1:$P
    max_message_size: 1MiB
    idle_timeout: 2s
    max_connections: 8
  - type: forward
    name: bigframes
    listen: 127.0.0.1:$P2
    max_message_size: 16MiB
    pending_frames_limit: 2MiB
outputs:
  - type: stdout
YAML
"$SHIPPER" --check -c "$T/shipper.yaml" >/dev/null || { echo "config rejected"; exit 1; }
start_shipper s -c "$T/shipper.yaml"
wait_ready "127.0.0.1:$H" || exit 1
FC="python3 $ROOT/tests/integration/fwd_client.py"
N=30000
$FC send --addr "127.0.0.1:$P" --count $N --tag good --size 100 --rate 1500000 >"$T/good.log" 2>&1 &
GOOD=$!

for kind in malformed shape record_not_map oversize deep bad_gzip; do
    if $FC bad --addr "127.0.0.1:$P" --kind $kind --timeout 5 >/dev/null; then
        ok "$kind: connection closed"
    else
        fail "$kind: connection not closed"
    fi
done
for kind in slow idle; do
    if $FC bad --addr "127.0.0.1:$P" --kind $kind --timeout 6 >/dev/null; then
        ok "$kind: connection closed after idle_timeout"
    else
        fail "$kind connection not closed"
    fi
done
# Three clients each holding 1.5 MiB of an incomplete 10 MiB frame against a 2 MiB budget.
BIG=()
for i in 1 2 3; do
    $FC bad --addr "127.0.0.1:$P2" --kind bigpartial --timeout 4 >"$T/big$i.log" 2>&1 &
    BIG+=($!)
done
wait "${BIG[@]}"
closed=$(grep -lc "^closed" "$T"/big*.log | wc -l)
check "pending_frames_limit: clients over the budget are closed ($closed of 3)" [ "$closed" -ge 1 -a "$closed" -le 2 ]
v=$(metric "127.0.0.1:$H" 'shipper_input_errors_total{input="bigframes",reason="frame_memory"}')
check "frame_memory counted ($v)" [ "$v" -ge 1 ]
alive=$($FC hold --addr "127.0.0.1:$P" --count 12 --seconds 1 | awk '{print $2}')
check "max_connections: at most 8 connections stay open (alive: $alive)" [ "$alive" -le 8 ]

wait $GOOD; check_eq "good client finished" 0 $?
wait_metric "127.0.0.1:$H" 'shipper_output_records_total{output="stdout",result="delivered"}' $N 30 ||
    fail "good records not all delivered"
for r in malformed bad_shape too_large too_deep bad_gzip idle_timeout slow_frame too_many_connections; do
    v=$(metric "127.0.0.1:$H" "shipper_input_errors_total{input=\"forward\",reason=\"$r\"}")
    check "errors counted: $r = $v" [ "$v" -ge 1 ]
done
stop_shipper
check_eq "clean exit" 0 "$SHIPPER_RC"
n=$(grep -c '"tag":"good"' "$T/s.out")
u=$(grep -o '"seq":[0-9]*' "$T/s.out" | sort -u | wc -l)
check_eq "good client: every record delivered" $N "$n"
check_eq "good client: no duplicates" $N "$u"
check "warnings are rate-limited (few log lines)" [ "$(grep -c closing "$T/s.err")" -lt 20 ]
finish
