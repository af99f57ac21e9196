#!/usr/bin/env bash
# suite: slow (tests/run.sh starts it early: 30 s or more)
# suite: asan (tests/run.sh also runs it against the ASan+UBSan build)
# SIGTERM while the stdout output's write is still running on the thread pool (spool on,
# `ack: durable`, a flood buffered behind a stdout nobody reads). The grace period runs out with
# the write blocked; then the write either completes (the reader drains) or fails (the reader
# goes away: EPIPE). Either way shipper must exit 0 without touching freed memory (run under
# ASan by tests/run.sh), and no acked record may be lost: a chunk whose write failed after the
# stop began is not delivered, so it stays in the spool and the next start delivers it.
. "$(dirname "$0")/lib.sh"
FC="python3 $ROOT/tests/integration/fwd_client.py"
SOCK="python3 $ROOT/tests/integration/stdout_sock.py"
P=$(free_port); H=$(free_port)
conf() { durable_spool_conf "$1" 1s; } # STATE_DIR

run_case() { # NAME THEN(drain|close)
    local name=$1 then=$2
    conf "$T/$name.state" >"$T/$name.yaml"
    $SOCK --out "$T/$name.out" --err "$T/$name.err" --pid-file "$T/$name.pid" \
        --until "grace period over" --then "$then" -- "$SHIPPER" -c "$T/$name.yaml" &
    local launcher=$!
    bg_pid "$launcher"
    for _ in $(seq 100); do [ -s "$T/$name.pid" ] && break; sleep 0.05; done
    local pid; pid=$(cat "$T/$name.pid"); bg_pid "$pid"
    wait_ready "127.0.0.1:$H" || return 1
    timeout 60 $FC send --addr "127.0.0.1:$P" --mode forward --batch 100 --count 20000 --size 200 \
        --ack --progress --tag "$name" >"$T/$name.client" 2>&1
    local acked; acked=$(grep acked "$T/$name.client" | tail -1 | awk '{print $2}')
    check_eq "$name: every record acked (durable) while stdout is stuck" 20000 "${acked:-0}"
    kill -TERM "$pid"
    wait "$launcher"; local rc=$?
    check_eq "$name: exit code after the grace period" 0 "$rc"
    check "$name: the stop waited for the write on the thread pool (no use after free)" \
        bash -c "! grep -q 'AddressSanitizer\|runtime error' '$T/$name.err'"
    grep -A30 AddressSanitizer "$T/$name.err" | head -40
    # The next start replays what was not delivered.
    start_shipper "$name-2" -c "$T/$name.yaml"; wait_ready "127.0.0.1:$H" || return 1
    wait_metric "127.0.0.1:$H" 'shipper_spool_replayed_chunks_total' 1 10 ||
        fail "$name: nothing replayed"
    for _ in $(seq 100); do
        [ "$(count_lost 20000 "$T/$name.out" "$T/$name-2.out")" -eq 0 ] && break
        sleep 0.1
    done
    stop_shipper; check_eq "$name: clean exit of the second run" 0 "$SHIPPER_RC"
    check_eq "$name: acked records lost across the two runs" 0 \
        "$(count_lost 20000 "$T/$name.out" "$T/$name-2.out")"
}

log "1. the blocked write completes after the output's stop began"
run_case drain drain
log "2. the blocked write fails (EPIPE) after the output's stop began: RETRY after close"
run_case close close
finish
