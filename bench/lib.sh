# Shared helpers of the benchmark scripts; source it. Figures are whole-process: CPU from
# /proc/PID/stat, peak RSS from VmHWM.

# A free TCP port on 127.0.0.1.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# cpu_ticks [PID]: utime + stime in clock ticks (fields 14 and 15, counted after the ")" of
# comm, which may itself contain spaces). PID defaults to $pid.
cpu_ticks() {
    local stat rest
    if ! read -r stat 2>/dev/null <"/proc/${1:-$pid}/stat"; then
        echo "bench: process ${1:-$pid} is gone (shipper exited?); its log:" >&2
        tail -n 20 "${tmp:-.}/shipper.log" >&2 2>/dev/null
        exit 1
    fi
    rest=${stat##*) }
    # shellcheck disable=SC2086 # split into fields on purpose
    set -- $rest
    echo $((${12} + ${13}))
}

# minor_faults [PID]: page faults served without I/O (field 10 of /proc/PID/stat): a process that
# keeps reusing its buffers takes few; one that frees and maps them again takes 256 per MiB.
minor_faults() {
    local stat rest
    read -r stat 2>/dev/null <"/proc/${1:-$pid}/stat" || { echo 0; return; }
    rest=${stat##*) }
    # shellcheck disable=SC2086 # split into fields on purpose
    set -- $rest
    echo "${8}"
}

# peak_rss_kb [PID]: VmHWM in kB.
peak_rss_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/${1:-$pid}/status"; }

# records_done OUTPUT: delivered + rejected records of that output, from shipper's /metrics on
# $hport (0 when it does not answer). Always exactly one line: a failed curl is not the
# pipeline's status (under pipefail an `|| echo 0` after awk added a second line, and a caller's
# `| head -1` then died of SIGPIPE, exit 141 with set -e, silently).
records_done() {
    { curl -sf --max-time 2 "http://127.0.0.1:$hport/metrics" || true; } |
        awk -v o="output=\"$1\"" 'index($0, "shipper_output_records_total{") == 1 && index($0, o) &&
             /result="(delivered|rejected)"/ { d += $NF } END { printf "%.0f\n", d + 0 }'
}
