#!/usr/bin/env bash
# suite: slow (tests/run.sh starts it early: 30 s or more)
# suite: asan (tests/run.sh also runs it against the ASan+UBSan build)
# The spool: records acked with `ack: durable` survive SIGKILL (and a torn tail written by the
# crash); a clean stop with an output that cannot deliver leaves chunks in the spool for the
# next start; a full disk pauses inputs with a clear error and recovers when space returns.
# Reports sent / delivered / lost and asserts lost = 0.
. "$(dirname "$0")/lib.sh"
FC="python3 $ROOT/tests/integration/fwd_client.py"
P=$(free_port); H=$(free_port)
conf() { durable_spool_conf "$1" 2s; } # STATE_DIR

log "1. SIGKILL mid-flood with ack: durable, then restart"
conf "$T/state" >"$T/a.yaml"
start_shipper a -c "$T/a.yaml"; wait_ready "127.0.0.1:$H" || exit 1
$FC send --addr "127.0.0.1:$P" --mode forward --batch 50 --count 200000 --ack --progress \
    --tag spool >"$T/client.log" 2>&1 &
CLIENT=$!
for _ in $(seq 100); do [ "$(tail -1 "$T/client.log" | awk '{print $2}')" -ge 3000 ] 2>/dev/null && break; sleep 0.1; done
kill -9 "$SHIPPER_PID"; wait "$SHIPPER_PID" 2>/dev/null
wait $CLIENT 2>/dev/null
acked=$(grep acked "$T/client.log" | tail -1 | awk '{print $2}')
check "client got durable acks before the kill ($acked)" [ "${acked:-0}" -gt 0 ]
start_shipper b -c "$T/a.yaml"; wait_ready "127.0.0.1:$H" || exit 1
sleep 1
stop_shipper; check_eq "clean exit" 0 "$SHIPPER_RC"
lost=$(count_lost "$acked" "$T/a.out" "$T/b.out")
delivered=$(cat "$T/a.out" "$T/b.out" | grep -o '"seq":[0-9]*' | sort -u | wc -l)
echo "sent/acked $acked, delivered (unique) $delivered, lost $lost"
check_eq "lost after SIGKILL" 0 "$lost"

log "2. SIGTERM with an output that cannot deliver: chunks stay spooled, delivered next start"
rm -rf "$T/state2"; conf "$T/state2" >"$T/c.yaml"
mkfifo "$T/fifo"; exec 3<>"$T/fifo" # stdout nobody reads: the output is stuck
"$SHIPPER" -c "$T/c.yaml" >"$T/fifo" 2>"$T/c.err" 3>&- &
SHIPPER_PID=$!; bg_pid $SHIPPER_PID
wait_ready "127.0.0.1:$H" || exit 1
$FC send --addr "127.0.0.1:$P" --mode forward --batch 100 --count 5000 --size 300 --ack \
    --tag stuck >/dev/null 2>&1 || true
stop_shipper
# What the stuck output did manage to write sits in the pipe: collect it before closing it.
python3 -c '
import fcntl, os, sys
fcntl.fcntl(3, fcntl.F_SETFL, os.O_NONBLOCK)
try:
    while True:
        d = os.read(3, 65536)
        if not d: break
        sys.stdout.buffer.write(d)
except BlockingIOError:
    pass' >"$T/c.out"
exec 3>&-
check_eq "SIGTERM with a stuck output still exits 0 after grace" 0 "$SHIPPER_RC"
seg=$(ls "$T/state2/spool/"*.seg 2>/dev/null | tail -1)
check "undelivered chunks are in the spool after SIGTERM" [ -n "$seg" ]
[ -n "$seg" ] && head -c 777 /dev/urandom >>"$seg" # what a crash in the middle of a write leaves
start_shipper d -c "$T/c.yaml"; wait_ready "127.0.0.1:$H" || exit 1
wait_metric "127.0.0.1:$H" 'shipper_spool_replayed_chunks_total' 1 10 && ok "the spool was replayed" || fail "no replay"
sleep 1
check "the torn tail was detected and reported" [ "$(metric "127.0.0.1:$H" shipper_spool_corrupt_entries_total)" -ge 1 ]
stop_shipper
n=$(cat "$T/c.out" "$T/d.out" | grep -o '"seq":[0-9]*' | sort -u | wc -l)
check_eq "every acked record delivered across the two runs (torn tail cut, good prefix kept)" 5000 "$n"

log "3. a full disk: pause, clear error, recovery"
mkdir -p "$T/small"
if mount -t tmpfs -o size=4m tmpfs "$T/small" 2>/dev/null; then
    trap 'umount "$T/small" 2>/dev/null; cleanup' EXIT
    conf "$T/small/state" >"$T/e.yaml"
    start_shipper e -c "$T/e.yaml"; wait_ready "127.0.0.1:$H" || exit 1
    dd if=/dev/zero of="$T/small/filler" bs=64k 2>/dev/null # fill the disk
    $FC send --addr "127.0.0.1:$P" --mode forward --batch 100 --count 20000 --size 200 \
        --tag full >"$T/full.log" 2>&1 &
    CLIENT=$!
    wait_metric "127.0.0.1:$H" shipper_spool_failing 1 20 && ok "spool write failure detected" || fail "no failure seen"
    check_eq "inputs paused" 1 "$(metric "127.0.0.1:$H" shipper_paused)"
    check "a clear error is logged" grep -q "spool: cannot write to .*No space left on device" "$T/e.err"
    check "shipper still runs" kill -0 "$SHIPPER_PID"
    rm -f "$T/small/filler"
    wait $CLIENT; check_eq "client finished after space returned" 0 $?
    wait_metric "127.0.0.1:$H" 'shipper_output_records_total{output="stdout",result="delivered"}' 20000 30
    check_eq "spool recovered" 0 "$(metric "127.0.0.1:$H" shipper_spool_failing)"
    stop_shipper
    n=$(grep -o '"seq":[0-9]*' "$T/e.out" | sort -u | wc -l)
    check_eq "all records delivered after the disk had room again" 20000 "$n"
    umount "$T/small"
else
    fail "cannot mount a tmpfs for the full-disk test (needs root)"
fi
log "3b. a corrupt chunk in the middle of a segment: only that chunk is lost, the rest is kept"
rm -rf "$T/state5"; conf "$T/state5" >"$T/g.yaml"
exec 4<>"$T/fifo" # stuck stdout again
"$SHIPPER" -c "$T/g.yaml" >"$T/fifo" 2>"$T/g.err" 3>&- 4>&- &
SHIPPER_PID=$!; bg_pid $SHIPPER_PID
wait_ready "127.0.0.1:$H" || exit 1
$FC send --addr "127.0.0.1:$P" --mode forward --batch 100 --count 3000 --size 300 --ack \
    --tag corrupt >/dev/null 2>&1 || true
stop_shipper
python3 -c '
import fcntl, os, sys
fcntl.fcntl(4, fcntl.F_SETFL, os.O_NONBLOCK)
try:
    while True:
        d = os.read(4, 65536)
        if not d: break
        sys.stdout.buffer.write(d)
except BlockingIOError:
    pass' >"$T/g.out"
exec 4>&-
seg=$(ls "$T/state5/spool/"*.seg 2>/dev/null | head -1)
size=$(stat -c %s "$seg" 2>/dev/null || echo 0)
check "a spool segment holds the undelivered chunks ($size bytes)" [ "$size" -gt 100000 ]
# Flip one byte two thirds of the way in: that entry's CRC no longer matches.
printf '\xff' | dd of="$seg" bs=1 seek=$((size * 2 / 3)) conv=notrunc 2>/dev/null
start_shipper h -c "$T/g.yaml"; wait_ready "127.0.0.1:$H" || exit 1
sleep 2
check "the corrupt entry is reported" [ "$(metric "127.0.0.1:$H" shipper_spool_corrupt_entries_total)" -ge 1 ]
check "the corrupt bytes are counted" [ "$(metric "127.0.0.1:$H" shipper_spool_corrupt_bytes_total)" -gt 0 ]
timeout 30 $FC send --addr "127.0.0.1:$P" --count 100 --ack --tag after >/dev/null
check_eq "shipper takes new input after the recovery" 0 $?
stop_shipper
n=$(cat "$T/g.out" "$T/h.out" | grep '"tag":"corrupt"' | grep -o '"seq":[0-9]*' | sort -u | wc -l)
echo "acked 3000, delivered $n, lost $((3000 - n)) (one chunk holds one 100-record frame here)"
check "only the corrupt chunk is lost (delivered $n of 3000)" [ "$n" -ge 2900 -a "$n" -lt 3000 ]
check "the log says where the spool was cut" grep -q "torn or corrupt data at offset" "$T/h.err"

log "4. ack: delivered (no spool): acks come once the output has written the records"
cat >"$T/f.yaml" <<YAML
service:
  http_listen: 127.0.0.1:$H
buffer:
  flush_interval: 5s
inputs:
  - type: forward
    listen: 127.0.0.1:$P
    ack: delivered
outputs:
  - type: stdout
YAML
start_shipper f -c "$T/f.yaml"; wait_ready "127.0.0.1:$H" || exit 1
start=$(date +%s%N)
timeout 60 $FC send --addr "127.0.0.1:$P" --count 300 --ack --tag delivered >/dev/null
check_eq "300 single-record frames acked" 0 $?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
check "acks do not wait for flush_interval (300 acks in ${ms} ms)" [ "$ms" -lt 20000 ]
check_eq "acked records were delivered before their ack" 300 "$(grep -c '"tag":"delivered"' "$T/f.out")"
stop_shipper
finish
