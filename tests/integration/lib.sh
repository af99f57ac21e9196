# Shared helpers for integration tests. Source it: `. "$(dirname "$0")/lib.sh"`.
# Every test is a bash script that exits 0 (pass), 77 (skip: `skip REASON`, when it cannot run
# here; tests/run.sh counts it apart, never as a pass) or anything else (fail), prints what it
# checked, and cleans up what it started (the EXIT trap below kills everything registered with
# `bg_pid`).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
SHIPPER=${SHIPPER:-$BUILD/shipper}
SHIPPER_BENCH=${SHIPPER_BENCH:-$BUILD/shipper-bench}
T=$(mktemp -d "${TMPDIR:-/tmp}/shipper-test.XXXXXX")
_PIDS=()
declare -A _SHIPPER_NAME # pid -> name given to start_shipper
_CONTAINERS=()
FAILS=0

bg_pid() { _PIDS+=("$1"); }
track_container() { _CONTAINERS+=("$1"); }

cleanup() {
    for c in "${_CONTAINERS[@]:-}"; do [ -n "$c" ] && docker rm -f "$c" >/dev/null 2>&1; done
    for p in "${_PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done
    sleep 0.2
    for p in "${_PIDS[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null; done
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT

log() { echo "[$(date +%H:%M:%S)] $*"; }
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
ok() { echo "ok: $*"; }
# check DESCRIPTION EXPECTED ACTUAL
check_eq() { if [ "$2" == "$3" ]; then ok "$1 ($3)"; else fail "$1: expected '$2', got '$3'"; fi; }
check() { local d=$1; shift; if "$@"; then ok "$d"; else fail "$d"; fi; }
# skip REASON: this test cannot run here; prints "SKIP: REASON" and exits 77. After a failed
# check it is a failure instead (what ran was wrong, whatever could not run).
skip() {
    if [ "$FAILS" -gt 0 ]; then echo "$FAILS check(s) failed, then: $*"; exit 1; fi
    echo "SKIP: $*"; exit 77
}
finish() { if [ "$FAILS" -gt 0 ]; then echo "$FAILS check(s) failed"; exit 1; fi; echo "all checks passed"; exit 0; }

# A free TCP port on 127.0.0.1.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_shipper NAME ARGS...: runs shipper in the background; sets SHIPPER_PID, logs in $T/NAME.{out,err}.
start_shipper() {
    local name=$1; shift
    "$SHIPPER" "$@" >"$T/$name.out" 2>"$T/$name.err" &
    SHIPPER_PID=$!
    _SHIPPER_NAME[$SHIPPER_PID]=$name
    bg_pid "$SHIPPER_PID"
}

# wait_ready HTTP_ADDR [SECONDS]: waits for /readyz.
wait_ready() {
    local addr=$1 n=${2:-20}
    for _ in $(seq $((n * 10))); do
        curl -sf "http://$addr/readyz" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "shipper not ready on $addr"; return 1
}

# metric HTTP_ADDR 'name{labels}': prints the value (0 when absent).
metric() {
    curl -sf "http://$1/metrics" | awk -v k="$2" '$1 == k { v = $2 } END { print v + 0 }'
}

# wait_metric HTTP_ADDR 'name{labels}' VALUE [SECONDS]: waits until the metric is >= VALUE.
wait_metric() {
    local addr=$1 key=$2 want=$3 n=${4:-30} v=0
    for _ in $(seq $((n * 10))); do
        v=$(metric "$addr" "$key")
        [ "${v%.*}" -ge "$want" ] 2>/dev/null && return 0
        sleep 0.1
    done
    echo "metric $key = $v, wanted >= $want"; return 1
}

# stop_shipper [PID]: SIGTERM and wait; sets SHIPPER_RC to its exit code (not in a subshell!).
# A shipper that died by a signal (a crash) gets the end of its stderr printed: the crash
# report's backtrace (shipper/core/crash.h).
stop_shipper() {
    local pid=${1:-$SHIPPER_PID}
    kill -TERM "$pid" 2>/dev/null
    wait "$pid"; SHIPPER_RC=$?
    local name=${_SHIPPER_NAME[$pid]:-}
    if [ "$SHIPPER_RC" -gt 128 ] && [ -n "$name" ]; then
        echo "shipper $name (pid $pid) died by signal $((SHIPPER_RC - 128)); the end of its stderr:"
        tail -n 40 "$T/$name.err"
    fi
}

# shipper_image NAME LOG: the shipper image (deploy/build-image.sh, from $SHIPPER) under the tag
# NAME, the script's output in LOG. Run alone, a test builds its own. In the suite, tests/run.sh
# names one image for the whole run (SHIPPER_SUITE_IMAGE): the first test to get here builds it
# under a lock, the others tag the same image (its output is in $SUITE_IMAGE_LOG), and run.sh
# removes it at the end. A test's `docker rmi -f NAME` then removes only its tag.
shipper_image() {
    local name=$1 out=$2 img=${SHIPPER_SUITE_IMAGE:-}
    if [ -z "$img" ] || [ "$SHIPPER" != "${SUITE_IMAGE_SHIPPER:-}" ]; then
        "$ROOT/deploy/build-image.sh" "$name" >"$out" 2>&1
        return
    fi
    (
        flock 9
        docker image inspect "$img" >/dev/null 2>&1 ||
            SHIPPER=$SHIPPER "$ROOT/deploy/build-image.sh" "$img" >"$SUITE_IMAGE_LOG" 2>&1
    ) 9>"$SUITE_IMAGE_LOG.lock" || { cp "$SUITE_IMAGE_LOG" "$out"; return 1; }
    cp "$SUITE_IMAGE_LOG" "$out" && docker tag "$img" "$name"
}

# Docker: dockerd running and the busybox image present.
need_docker() { "$ROOT/tests/rigs/dockerd.sh" >/dev/null || { echo "docker unavailable"; exit 1; }; IMAGE=shipper-test-busybox; }
# need_fluent_bit: a real Fluent Bit (2.1+) in $FB, from FLUENT_BIT; the test skips without it.
need_fluent_bit() {
    FB=${FLUENT_BIT:-}
    if [ -z "$FB" ] || [ ! -x "$FB" ]; then
        skip "set FLUENT_BIT=/path/to/fluent-bit (2.1+) to run this test"
    fi
    "$FB" --version | head -1
}
# need_fluent_client: the independent Forward client (@fluent-org/logger) in $CLIENT, installed.
need_fluent_client() {
    CLIENT="$ROOT/tests/rigs/fluent_client"
    # Under a lock, and "installed" only once the module is there: tests run side by side, and a
    # second one must not start while the first one's npm ci is still filling node_modules.
    (cd "$CLIENT" && flock .npm.lock sh -c \
        '[ -f node_modules/@fluent-org/logger/package.json ] || npm ci --silent --no-audit --no-fund >/dev/null 2>&1') &&
        [ -f "$CLIENT/node_modules/@fluent-org/logger/package.json" ] ||
        { echo "npm ci failed in $CLIENT"; exit 1; }
}

# localhost_cert: a self-signed certificate for localhost and 127.0.0.1 in $T/cert.pem, its key in
# $T/key.pem; exits the test when openssl fails.
localhost_cert() {
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/key.pem" -out "$T/cert.pem" -days 2 \
        -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null ||
        { echo "openssl failed"; exit 1; }
}

# fluentbit_target: shipper as Fluent Bit's forward target, with the four listeners the six
# Fluent Bit modes use (test_forward_fluentbit*.sh): PLAIN (ack: delivered), KEY (shared_key
# fb-key, self_hostname shipper-test), TLS ($T/cert.pem), ALL (tls, shared key, user fluent:bit,
# ack: delivered); stdout output, metrics on $M. Sets those ports and M; needs localhost_cert.
fluentbit_target() {
    PLAIN=$(free_port); KEY=$(free_port); TLS=$(free_port); ALL=$(free_port); H=$(free_port)
    M="127.0.0.1:$H"
    cat >"$T/s.yaml" <<YAML
service: {http_listen: "$M"}
buffer: {flush_interval: 200ms}
inputs:
  - {type: forward, listen: "127.0.0.1:$PLAIN", ack: delivered}
  - {type: forward, listen: "127.0.0.1:$KEY", shared_key: fb-key, self_hostname: shipper-test}
  - type: forward
    listen: 127.0.0.1:$TLS
    tls: {cert: $T/cert.pem, key: $T/key.pem}
  - type: forward
    listen: 127.0.0.1:$ALL
    tls: {cert: $T/cert.pem, key: $T/key.pem}
    shared_key: fb-key
    users: {fluent: bit}
    ack: delivered
outputs:
  - type: stdout
YAML
    start_shipper s -c "$T/s.yaml"
    wait_ready "$M" || exit 1
}

# durable_spool_conf STATE_DIR GRACE: prints a config with a forward input on 127.0.0.1:$P
# (ack: durable), the spool on in STATE_DIR, 64KiB chunks, a stdout output and metrics on
# 127.0.0.1:$H (test_spool.sh, test_shutdown.sh).
durable_spool_conf() {
    cat <<YAML
service:
  http_listen: 127.0.0.1:$H
  state_dir: $1
  grace: $2
buffer:
  spool: true
  chunk_size: 64KiB
  flush_interval: 200ms
inputs:
  - type: forward
    listen: 127.0.0.1:$P
    ack: durable
outputs:
  - type: stdout
YAML
}

# bad_forward_out_conf PORT LINE...: writes $T/bad.yaml, a forward input on 127.0.0.1:PORT and a
# forward output with LINEs as its keys (the first on line 6), for check_rejected
# (test_forward_output*.sh).
bad_forward_out_conf() {
    local port=$1 l
    shift
    {
        printf 'inputs:\n  - type: forward\n    listen: 127.0.0.1:%s\n' "$port"
        printf 'outputs:\n  - type: forward\n'
        for l in "$@"; do printf '    %s\n' "$l"; done
    } >"$T/bad.yaml"
}

# check_rejected DESC [PATTERN [PATTERN_DESC]]: `shipper --check -c bad.yaml` in $T exits 2, and
# its output has PATTERN (fixed string grep, e.g. "bad.yaml:7: key"); output in $T/bad.out.
check_rejected() {
    (cd "$T" && "$SHIPPER" --check -c bad.yaml >bad.out 2>&1)
    check_eq "$1: exit 2" 2 "$?"
    [ -z "${2:-}" ] || check "${3:-...naming file:line and the key}" grep -qF -- "$2" "$T/bad.out"
}

# fake_container DIR ID NAME [IMAGE]: a container as Docker's json-file driver leaves it, without
# Docker: DIR/ID/config.v2.json with that name and image (default img:NAME), no labels. Its log
# file is DIR/ID/ID-json.log.
fake_container() {
    mkdir -p "$1/$2"
    printf '{"Name":"/%s","Config":{"Image":"%s","Labels":{}}}\n' "$3" "${4:-img:$3}" \
        >"$1/$2/config.v2.json"
}

# docker_logs_conf DIR HTTP [SERVICE_KEYS [FILTERS [INPUTS]]]: prints a config that reads the
# containers under DIR from their start (poll_interval 50ms) into a stdout output; metrics on
# HTTP, state in $T/state (made here), flush_interval 100ms. SERVICE_KEYS are more flow-style
# service keys (", grace: 5s"); FILTERS a filters: block; INPUTS more input items, listed first.
docker_logs_conf() {
    mkdir -p "$T/state"
    echo "service: {http_listen: \"$2\", state_dir: \"$T/state\"${3:-}}"
    echo "buffer: {flush_interval: 100ms}"
    [ -z "${4:-}" ] || printf '%s\n' "$4"
    echo "inputs:"
    [ -z "${5:-}" ] || printf '%s\n' "$5"
    cat <<YAML
  - type: docker_logs
    path: $1
    read_from: start
    poll_interval: 50ms
outputs:
  - type: stdout
YAML
}

# count_lost ACKED FILES...: how many of the seqs 0..ACKED-1 appear in none of FILES (the outputs).
count_lost() {
    local acked=$1; shift
    cat "$@" | grep -o '"seq":[0-9]*' | cut -d: -f2 | sort -un |
        awk -v n="$acked" '$1 < n { seen++ } END { print n - seen }'
}
