#!/usr/bin/env bash
# shipper-bench's progress line (bench/README.md "Output"): once a second on stderr; with stderr
# not a terminal only when asked (--progress), as plain lines; on a terminal rewritten in place.
# The receiver accepts and never reads, so the runs last as long as the test needs (no timing).
. "$(dirname "$0")/lib.sh"
[ -x "$SHIPPER_BENCH" ] || skip "no $SHIPPER_BENCH (needs libmsgpack-dev)"

python3 - "$T/port" "$T/accepted" <<'PY' &
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(16)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1]))
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
conns = []
deadline = time.time() + 150
s.settimeout(1)
while time.time() < deadline:
    try:
        c, _ = s.accept()
    except socket.timeout:
        continue
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    conns.append(c)  # never read
    open(sys.argv[2], "a").write("x\n")
PY
bg_pid $!
for _ in $(seq 600); do [ -s "$T/port" ] && break; sleep 0.1; done
port=$(cat "$T/port")
# 200k records of ~250 bytes: far more than the socket buffers hold, so each sender blocks.
args=(forward --addr "127.0.0.1:$port" --records 200k)

"$SHIPPER_BENCH" "${args[@]}" --progress >"$T/forced.out" 2>"$T/forced.err" &
forced=$!
bg_pid $forced
"$SHIPPER_BENCH" "${args[@]}" >"$T/piped.out" 2>"$T/piped.err" &
bg_pid $!

lines() { grep -c 'records sent' "$1" 2>/dev/null || true; }
for _ in $(seq 1200); do [ "$(lines "$T/forced.err")" -ge 3 ] && break; sleep 0.1; done
log "forced lines seen"; check "--progress with stderr not a terminal: a line a second (3 seen)" \
    test "$(lines "$T/forced.err")" -ge 3
check "those are plain lines (no terminal escapes)" \
    bash -c "! grep -q \$'\\r\\|\\e' '$T/forced.err'"
check "line shape: N / 200000 records sent (P%), R/s, S s" \
    grep -Eq '^shipper-bench: [0-9]+ / 200000 records sent \([0-9]+%\), [0-9]+/s, [0-9]+ s$' \
    "$T/forced.err"
check "both generators connected" test "$(wc -l <"$T/accepted")" -ge 2
check "without --progress, stderr not a terminal: no progress at all" test ! -s "$T/piped.err"

log "tty case"; if command -v script >/dev/null 2>&1; then
    # The generator writes its pid where the test can end it (script(1) does not pass on TERM).
    script -q -f -e -c "echo \$\$ >$T/tty.pid; exec $SHIPPER_BENCH ${args[*]}" "$T/tty.out" \
        >/dev/null 2>&1 </dev/null &
    bg_pid $!
    for _ in $(seq 1200); do [ "$(lines "$T/tty.out")" -ge 1 ] && break; sleep 0.1; done
    check "on a terminal the line is rewritten in place (\\r, erase line)" \
        grep -q $'\r\e\[Kshipper-bench: [0-9]* / 200000 records sent' "$T/tty.out"
    [ -s "$T/tty.pid" ] && bg_pid "$(cat "$T/tty.pid")"
else
    log "no script(1): terminal case not checked"
fi
finish
