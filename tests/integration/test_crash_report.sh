#!/usr/bin/env bash
# A fatal signal prints a crash report on stderr (shipper/core/crash.c): the signal, who sent
# it or where it faulted, and a backtrace whose offsets addr2line turns into our functions; the
# process still dies by that signal (exit 128+N, a core where enabled). Forced with kill(1):
# SIGSEGV and SIGABRT. A sanitizer build reports faults itself, so this runs on Release only.
. "$(dirname "$0")/lib.sh"

crash() { # SIGNAL NUMBER ABBREV
    local name=c$2 http
    http=$(free_port)
    start_shipper "$name" --forward "127.0.0.1:$(free_port)" --null --http "127.0.0.1:$http"
    wait_ready "127.0.0.1:$http" || { cat "$T/$name.err"; exit 1; }
    kill "-$1" "$SHIPPER_PID"
    wait "$SHIPPER_PID"; local rc=$?
    check_eq "SIG$1: dies by it (exit 128+$2)" $((128 + $2)) "$rc"
    check "SIG$1: the report names the signal and its sender" \
        grep -q "^shipper: fatal signal $2 ($3) sent by pid $$ in pid $SHIPPER_PID" "$T/$name.err"
    # the event loop's frame: an offset in our binary that addr2line names
    local off fn
    off=$(grep -o "shipper(+0x[0-9a-f]*)" "$T/$name.err" | sed 's/.*(+\(0x[0-9a-f]*\))/\1/' | tail -n 2 | head -n 1)
    fn=$(addr2line -e "$SHIPPER" -f "$off" 2>/dev/null | head -n 1)
    check "SIG$1: a backtrace frame in shipper resolves to a function ($off -> $fn)" \
        [ -n "$off" ] && [ -n "$fn" ] && [ "$fn" != "??" ]
    check "SIG$1: libuv's loop is on the stack" grep -q "uv_run" "$T/$name.err"
}
crash SEGV 11 SEGV
crash ABRT 6 ABRT
finish
