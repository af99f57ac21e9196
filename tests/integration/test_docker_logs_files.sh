#!/usr/bin/env bash
# docker_logs on a fake containers directory (no Docker needed): read_from end for files present
# at startup, new containers read whole, corrupt lines counted and skipped, truncation detected,
# unlink-and-recreate (max-file=1), partial lines joined, and a restart that resumes exactly.
. "$(dirname "$0")/lib.sh"

C=$T/containers
X=$(printf 'a%.0s' $(seq 64)) Y=$(printf 'b%.0s' $(seq 64)) Z=$(printf 'c%.0s' $(seq 64))
mkctr() { # ID NAME
    mkdir -p "$C/$1"
    printf '{"Name":"/%s","Config":{"Image":"img:%s","Labels":{"n":"%s"},"Name":"nested"}}\n' \
        "$2" "$2" "$2" >"$C/$1/config.v2.json"
}
logf() { echo "$C/$1/$1-json.log"; }
# lines ID FROM TO [stream]: appends "seq I" lines in Docker's format.
lines() {
    python3 - "$(logf "$1")" "$2" "$3" "${4:-stdout}" <<'PY'
import json, sys
path, a, b, stream = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
with open(path, "a") as f:
    for i in range(a, b):
        f.write(json.dumps({"log": "seq %d\n" % i, "stream": stream,
                            "time": "2026-11-29T04:09:33.%09dZ" % i}) + "\n")
PY
}
raw() { printf '%s\n' "$2" >>"$(logf "$1")"; }
seqs() { # NAME: the seq numbers shipped for container NAME, space-separated
    cat "$T"/run*.out | python3 -c '
import json, sys
n = sys.argv[1]
print(" ".join(json.loads(l)["message"].split()[-1] for l in sys.stdin
               if json.loads(l)["container"]["name"] == n))' "$1"
}
wait_seqs() { # NAME EXPECTED (up to 30 s: tests run side by side on a loaded machine)
    for _ in $(seq 300); do [ "$(seqs "$1")" = "$2" ] && break; sleep 0.1; done
    check_eq "$1 lines" "$2" "$(seqs "$1")"
}

mkctr "$X" x
mkctr "$Y" y
lines "$X" 0 100
lines "$Y" 0 50
HTTP=127.0.0.1:$(free_port)
mkdir -p "$T/state"
cat >"$T/cfg.yaml" <<CFG
service: {http_listen: "$HTTP", state_dir: "$T/state"}
buffer: {flush_interval: 100ms}
inputs:
  - type: docker_logs
    path: $C
    poll_interval: 50ms
outputs:
  - type: stdout
CFG
start_shipper run1 -c "$T/cfg.yaml"
wait_ready "$HTTP" || { cat "$T/run1.err"; exit 1; }
sleep 0.3

log "read_from end: only new lines of files present at startup"
lines "$X" 100 103
wait_seqs x "100 101 102"
check_eq "y: nothing yet" "" "$(seqs y)"

log "a new container is read from its first byte; pieces are joined"
mkctr "$Z" z
lines "$Z" 0 3
raw "$Z" '{"log":"piece-","stream":"stdout","time":"2026-11-29T04:09:34Z"}'
raw "$Z" '{"log":"err\n","stream":"stderr","time":"2026-11-29T04:09:34Z"}'
raw "$Z" '{"log":"joined 3\n","stream":"stdout","time":"2026-11-29T04:09:35Z"}'
wait_seqs z "0 1 2 err 3"
check_eq "joined piece" 1 "$(grep -c '"message":"piece-joined 3"' "$T/run1.out")"

log "a corrupt line is counted and skipped"
raw "$X" '{"log":"broken'
raw "$X" 'not json at all'
lines "$X" 103 105
wait_seqs x "100 101 102 103 104"
check_eq "corrupt lines counted" 2 "$(metric "$HTTP" 'shipper_input_errors_total{input="docker_logs",reason="corrupt_line"}')"

log "truncation: read again from the start"
: >"$(logf "$X")"
lines "$X" 900 902
wait_seqs x "100 101 102 103 104 900 901"
check_eq "truncation counted" 1 "$(metric "$HTTP" 'shipper_tail_truncations_total{input="docker_logs"}')"

log "unlink and recreate (max-file=1)"
rm "$(logf "$Y")"
lines "$Y" 500 502
wait_seqs y "500 501"

log "rotations missed while shipper could not look (SIGSTOP), one already compressed"
W=$(printf 'd%.0s' $(seq 64))
mkctr "$W" w
lines "$W" 0 10
wait_seqs w "0 1 2 3 4 5 6 7 8 9"
kill -STOP "$SHIPPER_PID"
wl=$(logf "$W")
mv "$wl" "$wl.1" && lines "$W" 10 20 && gzip "$wl.1"
mv "$wl.1.gz" "$wl.2.gz" && mv "$wl" "$wl.1" && lines "$W" 20 30 && gzip "$wl.1"
kill -CONT "$SHIPPER_PID"
wait_seqs w "$(seq -s ' ' 0 29)"

# Docker with compress=true rotates a small file many times a second: the current file may
# still be empty when shipper opens it, and be renamed and compressed (the plain copy deleted)
# before shipper looks again. It is then known only by an empty fingerprint; it and the older
# rotation (already read and forgotten) were taken for unknown files and read again.
log "a file opened empty, rotated and compressed before shipper looked again"
V=$(printf 'e%.0s' $(seq 64))
mkctr "$V" v
lines "$V" 0 10
wait_seqs v "$(seq -s ' ' 0 9)"
vl=$(logf "$V")
rot0=$(metric "$HTTP" 'shipper_tail_rotations_total{input="docker_logs"}')
mv "$vl" "$vl.1" && : >"$vl"
check "empty current file opened" wait_metric "$HTTP" \
    'shipper_tail_rotations_total{input="docker_logs"}' $((rot0 + 1)) 30
kill -STOP "$SHIPPER_PID"
lines "$V" 10 20
gzip "$vl.1" && mv "$vl.1.gz" "$vl.2.gz"
mv "$vl" "$vl.1" && gzip "$vl.1" && lines "$V" 20 30
kill -CONT "$SHIPPER_PID"
wait_seqs v "$(seq -s ' ' 0 29)"
sleep 0.5
check_eq "nothing read twice" "$(seq -s ' ' 0 29)" "$(seqs v)"

log "restart resumes exactly"
stop_shipper
check_eq "run 1 exit code" 0 "$SHIPPER_RC"
lines "$X" 902 904
lines "$Y" 502 503
start_shipper run2 -c "$T/cfg.yaml"
wait_ready "$HTTP" || { cat "$T/run2.err"; exit 1; }
wait_seqs x "100 101 102 103 104 900 901 902 903"
wait_seqs y "500 501 502"
check_eq "z: nothing again" "0 1 2 err 3" "$(seqs z)"
check_eq "labels from config.v2.json" 1 \
    "$(grep -m1 '"name":"x"' "$T/run2.out" | grep -c '"image":{"name":"img:x"},"labels":{"n":"x"}')"
stop_shipper
check_eq "run 2 exit code" 0 "$SHIPPER_RC"

log "no state_dir and read_from start: every file from its start"
HTTP=127.0.0.1:$(free_port)
sed -e "s|state_dir: \"$T/state\"|log_level: info|" -e "s|127.0.0.1:[0-9]*|$HTTP|" \
    -e 's|poll_interval: 50ms|read_from: start|' "$T/cfg.yaml" >"$T/cfg3.yaml"
start_shipper run3 -c "$T/cfg3.yaml"
wait_ready "$HTTP" || { cat "$T/run3.err"; exit 1; }
wait_metric "$HTTP" 'shipper_output_records_total{output="stdout",result="delivered"}' 32 10
check_eq "run 3 records" 32 "$(wc -l <"$T/run3.out")"
stop_shipper
finish
