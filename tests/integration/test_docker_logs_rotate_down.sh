#!/usr/bin/env bash
# docker_logs against the real dockerd: containers rotate (max-size=10k, max-file=3; one with
# compress=true) past max-file while shipper is stopped. Forced, not timed: each container logs
# 50 lines, then waits for a file that the test creates (docker exec) only after shipper has
# stopped; it then logs ~190 KB, so Docker must delete the file shipper was reading (checked
# below on disk). After the restart every line still on disk is shipped exactly once, nothing is
# shipped twice, and the loss is counted (shipper_tail_lost_files_total) and logged.
# shipper watches a directory of links to these two containers' directories only, so that other
# containers on the shared dockerd do not change what it reads or counts.
. "$(dirname "$0")/lib.sh"
need_docker

P="dlrd$$"
HTTP=127.0.0.1:$(free_port)
mkdir -p "$T/state" "$T/containers"
cat >"$T/cfg.yaml" <<CFG
service: {http_listen: "$HTTP", state_dir: "$T/state", grace: 5s}
buffer: {flush_interval: 200ms}
inputs:
  - type: docker_logs
    path: $T/containers
    read_from: end
outputs:
  - type: stdout
    match: "docker.$P-*"
CFG
lines_of() { cat "$T/$2.out" 2>/dev/null | grep -c "\"name\":\"$P-$1\""; }
wait_lines() { # NAME N RUN SECONDS
    for _ in $(seq $(($4 * 10))); do
        [ "$(lines_of "$1" "$3")" -ge "$2" ] && return 0
        sleep 0.1
    done
    echo "$1: $(lines_of "$1" "$3") lines in $3, wanted $2"
    return 1
}

log "run 1: 50 lines of each container"
start_shipper run1 -c "$T/cfg.yaml"
wait_ready "$HTTP" || { cat "$T/run1.err"; exit 1; }
for n in plain gz; do
    opt=()
    [ $n = gz ] && opt=(--log-opt compress=true)
    track_container "$P-$n"
    docker run -d --name "$P-$n" --network none --log-opt max-size=10k --log-opt max-file=3 \
        "${opt[@]}" "$IMAGE" sh -c '
            i=0; while [ $i -lt 50 ]; do echo "seq $i padding-padding-padding-padding"; i=$((i+1)); done
            while [ ! -e /tmp/go ]; do usleep 20000; done
            while [ $i -lt 2000 ]; do echo "seq $i padding-padding-padding-padding"; i=$((i+1)); done' \
        >/dev/null || fail "docker run $n"
    id=$(docker inspect -f '{{.Id}}' "$P-$n")
    ln -s "/var/lib/docker/containers/$id" "$T/containers/$id"
done
check "plain: run 1 got 50 lines" wait_lines plain 50 run1 30
check "gz: run 1 got 50 lines" wait_lines gz 50 run1 30
stop_shipper
check_eq "run 1 exit code" 0 "$SHIPPER_RC"

log "while shipper is down: 1950 more lines each, rotated past max-file=3"
for n in plain gz; do
    docker exec "$P-$n" touch /tmp/go || fail "docker exec $n"
done
for n in plain gz; do docker wait "$P-$n" >/dev/null; done
ID_plain=$(docker inspect -f '{{.Id}}' "$P-plain")
ID_gz=$(docker inspect -f '{{.Id}}' "$P-gz")
# Docker compresses .1 after the rotation, in the background: wait until it is done.
for _ in $(seq 100); do
    ls /var/lib/docker/containers/"$ID_gz"/*-json.log.[0-9] >/dev/null 2>&1 || break
    sleep 0.1
done
# on_disk ID: the seq numbers in the container's log files, oldest file first.
on_disk() {
    local d=/var/lib/docker/containers/$1 f
    for f in $(ls "$d" | grep -E -- '-json\.log(\.[0-9]+(\.gz)?)?$' | sort -t. -k3,3nr); do
        case $f in *.gz) zcat "$d/$f" ;; *) cat "$d/$f" ;; esac
    done | python3 -c '
import json, sys
print(" ".join(json.loads(l)["log"].split()[1] for l in sys.stdin))'
}
for n in plain gz; do
    id_var=ID_$n
    disk=$(on_disk "${!id_var}")
    echo "$disk" >"$T/disk.$n"
    first=${disk%% *}
    # The forced condition: the file shipper saved its position in (lines 0..49 and more) is gone.
    check "$n: the saved file was deleted by Docker (oldest line on disk: seq $first)" [ "$first" -gt 49 ]
    check_eq "$n: the last line is on disk" 1999 "${disk##* }"
    ls /var/lib/docker/containers/"${!id_var}" | grep -- -json.log >"$T/files.$n"
done
check "gz: rotations compressed" grep -q '\.gz$' "$T/files.gz"

log "run 2: every line still on disk, once"
start_shipper run2 -c "$T/cfg.yaml"
wait_ready "$HTTP" || { cat "$T/run2.err"; exit 1; }
for n in plain gz; do
    check "$n: run 2 got the lines on disk" wait_lines $n "$(wc -w <"$T/disk.$n")" run2 30
done
# Every rotated file read to its end and closed (only the 2 current files open): a file read
# twice has been read by now and shows in the record checks.
for _ in $(seq 100); do
    [ "$(metric "$HTTP" 'shipper_tail_files{input="docker_logs"}')" = 2 ] && break
    sleep 0.1
done
check_eq "files open (rotated ones read and closed)" 2 "$(metric "$HTTP" 'shipper_tail_files{input="docker_logs"}')"
check_eq "lost files counted" 2 "$(metric "$HTTP" 'shipper_tail_lost_files_total{input="docker_logs"}')"
stop_shipper
check_eq "run 2 exit code" 0 "$SHIPPER_RC"
for n in plain gz; do
    id_var=ID_$n
    check "$n: the loss is logged" grep -q "${!id_var:0:12}: the file of the saved offset was deleted" "$T/run2.err"
    python3 - "$P-$n" "$T/disk.$n" "$T/run1.out" "$T/run2.out" <<'PY' || fail "$n: records (above)"
import json, sys
name, disk, r1, r2 = sys.argv[1], open(sys.argv[2]).read().split(), sys.argv[3], sys.argv[4]
def seqs(fn):
    return [int(json.loads(l)["message"].split()[1]) for l in open(fn)
            if json.loads(l)["container"]["name"] == name]
a, b, d = seqs(r1), seqs(r2), [int(x) for x in disk]
bad = 0
if a != list(range(50)):
    print("run 1:", len(a), "lines", a[:3], a[-3:]); bad += 1
if b != d:
    print("run 2: %d lines, on disk %d; first shipped %s, first on disk %s; missing %s, extra %s"
          % (len(b), len(d), b[:2], d[:2], sorted(set(d) - set(b))[:5], sorted(set(b) - set(d))[:5]))
    bad += 1
if len(set(a + b)) != len(a + b):
    print("duplicates:", len(a + b) - len(set(a + b))); bad += 1
print(name, "run 1:", len(a), "run 2:", len(b), "on disk:", len(d), "problems:", bad)
sys.exit(1 if bad else 0)
PY
done
finish
