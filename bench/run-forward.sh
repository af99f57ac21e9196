#!/usr/bin/env bash
# Forward-input throughput of shipper with the null output.
#
# Starts build/shipper on free loopback ports, sends records with shipper-bench, and waits until
# shipper's null output has counted every one of them, so the figure is records shipper fully
# took in (decoded, chunked, routed, "delivered"), not bytes the kernel buffered. Prints:
#   forward/<mode>: N records in T s = R rec/s; shipper CPU C s = X CPU-s per million; peak RSS Y MB
# T runs from the generator's first byte to the poll that saw the last record counted; with
# --ack, to the client's last ack (what a client waiting on acks sees; the last chunk's
# flush_interval on the way to the null output after that is no wait of the client's).
#
# Usage: bench/run-forward.sh [--mode message|forward|packed|compressed] [--records N]
#                             [--conns C] [--ack] [--batch B] [--window W] [--size BYTES]
#                             [-- more shipper-bench forward options]
# Env:   SHIPPER, SHIPPER_BENCH  binaries (default build/shipper, build/shipper-bench)
#        SHIPPER_ARGS            extra daemon flags, word-split (default none)
#        SHIPPER_CONFIG          run shipper -c FILE instead of quick flags; FILE reads its ports
#                                from ${FWD_PORT} and ${HTTP_PORT}, a scratch dir from ${STATE_DIR}
#                                and must have a null output (e.g. bench/durable.yaml)
#        STALL_TIMEOUT           seconds without progress before giving up (default 30)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHIPPER=${SHIPPER:-$root/build/shipper}
SHIPPER_BENCH=${SHIPPER_BENCH:-$root/build/shipper-bench}
STALL_TIMEOUT=${STALL_TIMEOUT:-30}

mode=message records=1000000 conns=1 ack=0
gen_args=()
usage() {
    sed -n '/^# Usage:/,/^#.*STALL_TIMEOUT/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}
while [ $# -gt 0 ]; do
    case $1 in
    --mode) mode=${2:?}; shift 2 ;;
    --records) records=${2:?}; shift 2 ;;
    --conns) conns=${2:?}; shift 2 ;;
    --ack) ack=1; shift ;;
    --batch | --window | --size) gen_args+=("$1" "${2:?}"); shift 2 ;;
    --) shift; gen_args+=("$@"); break ;;
    -h | --help) usage ;;
    *) echo "run-forward.sh: unknown option '$1'" >&2; usage ;;
    esac
done
case $mode in message | forward | packed | compressed) ;; *) usage ;; esac
# The generator accepts 1k/1m suffixes, but the completion check compares plain integers.
[[ $records =~ ^[0-9]+$ ]] || { echo "run-forward.sh: --records must be a plain integer" >&2; exit 2; }
for bin in "$SHIPPER" "$SHIPPER_BENCH"; do
    [ -x "$bin" ] || { echo "run-forward.sh: $bin not found; build first (see bench/README.md)" >&2; exit 2; }
done
command -v curl >/dev/null || { echo "run-forward.sh: curl is required" >&2; exit 2; }

tmp=$(mktemp -d)
pid=
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        { kill -KILL "$pid" && wait "$pid"; } 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT


start_shipper() {
    local _
    for _ in 1 2 3; do
        port=$(free_port)
        hport=$(free_port)
        [ "$port" != "$hport" ] || continue
        if [ -n "${SHIPPER_CONFIG:-}" ]; then
            # A config file that takes its ports (and a state dir) from the environment.
            FWD_PORT=$port HTTP_PORT=$hport STATE_DIR="$tmp/state" "$SHIPPER" -c "$SHIPPER_CONFIG" \
                >"$tmp/shipper.log" 2>&1 &
        else
            # shellcheck disable=SC2086 # SHIPPER_ARGS is a list of words on purpose
            "$SHIPPER" --forward "127.0.0.1:$port" --null --http "127.0.0.1:$hport" ${SHIPPER_ARGS:-} \
                >"$tmp/shipper.log" 2>&1 &
        fi
        pid=$!
        for _ in $(seq 100); do
            if curl -sf --max-time 1 "http://127.0.0.1:$hport/readyz" >/dev/null 2>&1; then
                return 0
            fi
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        { kill -KILL "$pid" && wait "$pid"; } 2>/dev/null || true
        pid=
    done
    echo "run-forward.sh: shipper did not become ready; its log:" >&2
    tail -n 20 "$tmp/shipper.log" >&2
    exit 1
}

# "<delivered> <accepted> <input errors>": records the null output delivered, records the
# inputs took in and input errors, from the Prometheus text (zeros when shipper does not answer).
counts() {
    local text
    text=$(curl -sf --max-time 2 "http://127.0.0.1:$hport/metrics") || { echo 0 0 0; return; }
    awk '/^shipper_output_records_total\{/ && /output="null"/ && /result="delivered"/ { d += $NF }
         /^shipper_input_records_total\{/ { a += $NF }
         /^shipper_input_errors_total\{/ { e += $NF }
         END { printf "%.0f %.0f %.0f\n", d + 0, a + 0, e + 0 }' <<<"$text"
}

show_state() {
    curl -sf "http://127.0.0.1:$hport/metrics" |
        grep -E '^shipper_(input_[a-z_]+|output_records_total)\{' >&2 || true
    tail -n 5 "$tmp/shipper.log" >&2
}


start_shipper
ticks0=$(cpu_ticks)

bench_cmd=("$SHIPPER_BENCH" forward --addr "127.0.0.1:$port" --mode "$mode" --records "$records"
    --conns "$conns" --quiet --stamp-file "$tmp/stamp")
[ "$ack" = 1 ] && bench_cmd+=(--ack)
bench_cmd+=(${gen_args[@]+"${gen_args[@]}"})
if ! "${bench_cmd[@]}" >"$tmp/gen.out" 2>"$tmp/gen.err"; then
    echo "run-forward.sh: shipper-bench failed:" >&2
    cat "$tmp/gen.err" >&2
    tail -n 20 "$tmp/shipper.log" >&2
    exit 1
fi
sed 's/^/# generator: /' "$tmp/gen.out" >&2

# Poll until every record is counted; give up only when the count stops moving. Also note when
# the input side had taken in everything: the difference is the last, partly filled chunk
# waiting for buffer.flush_interval, which weighs on short runs.
last=-1 last_change=$(date +%s) t_accepted=
while :; do
    read -r n accepted errors < <(counts)
    t_done=$(date +%s%N)
    if [ "$errors" -gt 0 ]; then
        # A run where shipper refused input measures nothing; say why instead of waiting.
        echo "run-forward.sh: shipper counted input errors; metrics and log:" >&2
        show_state
        exit 1
    fi
    [ -z "$t_accepted" ] && [ "$accepted" -ge "$records" ] && t_accepted=$t_done
    [ "$n" -ge "$records" ] && break
    if [ "$n" != "$last" ]; then
        last=$n
        last_change=$(date +%s)
    elif [ $(($(date +%s) - last_change)) -ge "$STALL_TIMEOUT" ]; then
        echo "run-forward.sh: shipper delivered $n of $records records and made no progress" \
            "for ${STALL_TIMEOUT}s; metrics and log:" >&2
        show_state
        exit 1
    fi
    kill -0 "$pid" 2>/dev/null || { echo "run-forward.sh: shipper exited" >&2; tail -n 20 "$tmp/shipper.log" >&2; exit 1; }
    sleep 0.01
done

ticks1=$(cpu_ticks)
hwm_kb=$(peak_rss_kb)
read -r t_first t_last_ack _ <"$tmp/stamp"
t_end=$t_done
[ "$ack" = 1 ] && t_end=$t_last_ack

kill -TERM "$pid"
for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then
    echo "run-forward.sh: warning: shipper still running 15 s after SIGTERM; killed" >&2
    kill -KILL "$pid" 2>/dev/null || true
fi
rc=0
wait "$pid" || rc=$?
pid=
[ "$rc" = 0 ] || echo "run-forward.sh: warning: shipper exited with status $rc" >&2

label=$mode
[ "$ack" = 1 ] && label="$mode+ack"
awk -v n="$records" -v t0="$t_first" -v t1="${t_accepted:-$t_done}" 'BEGIN {
        t = (t1 - t0) / 1e9
        printf "# shipper had accepted all %d records after %.3f s (%.0f rec/s)\n", n, t, n / t
    }' >&2
awk -v label="$label" -v n="$records" -v t0="$t_first" -v t1="$t_end" \
    -v ticks="$((ticks1 - ticks0))" -v hz="$(getconf CLK_TCK)" -v kb="$hwm_kb" 'BEGIN {
        t = (t1 - t0) / 1e9
        cpu = ticks / hz
        printf "forward/%s: %d records in %.3f s = %.0f rec/s; shipper CPU %.2f s = %.2f CPU-s per million; peak RSS %.1f MB\n",
            label, n, t, n / t, cpu, cpu / (n / 1e6), kb / 1024
    }'
