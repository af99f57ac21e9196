#!/usr/bin/env bash
# suite: alone (tests/run.sh runs it with no other test beside it)
# docker_logs (json-file) against the real dockerd: fast logging under rotation (plain and
# compress=true), 20 containers at once, a restart of shipper mid-stream (state_dir offsets: no
# gap, no duplicate), `docker rm -f` while being read, metadata (name, image, labels), attrs from
# --log-opt labels=, and a 40,000-byte line joined from Docker's 16 KiB pieces.
. "$(dirname "$0")/lib.sh"
need_docker

P="dlt$$"
HTTP=127.0.0.1:$(free_port)
mkdir -p "$T/state"
cat >"$T/cfg.yaml" <<CFG
service: {http_listen: "$HTTP", state_dir: "$T/state", grace: 5s}
buffer: {flush_interval: 200ms}
inputs:
  - type: docker_logs
    path: /var/lib/docker/containers
    read_from: end
outputs:
  - type: stdout
    match: "docker.$P-*"
CFG

# run NAME LINES EVERY USLEEP [docker options]: prints "seq I <pad>" lines, sleeping every EVERY.
run() {
    local name=$1 n=$2 every=$3 us=$4
    shift 4
    track_container "$P-$name"
    docker run -d --name "$P-$name" --network none "$@" "$IMAGE" sh -c \
        "i=0; while [ \$i -lt $n ]; do echo \"seq \$i padding-padding-padding-padding\"; i=\$((i+1)); [ \$((i % $every)) = 0 ] && usleep $us; done" \
        >/dev/null || fail "docker run $name"
}
wait_exit() { for c in "$@"; do docker wait "$P-$c" >/dev/null 2>&1; done; }
lines_of() { cat "$T"/run*.out 2>/dev/null | grep -c "\"name\":\"$P-$1\""; }
wait_lines() { # NAME N SECONDS
    for _ in $(seq $(($3 * 10))); do
        [ "$(lines_of "$1")" -ge "$2" ] && return 0
        sleep 0.1
    done
    echo "$1: $(lines_of "$1") lines, wanted $2"
    return 1
}

log "run 1"
start_shipper run1 -c "$T/cfg.yaml"
wait_ready "$HTTP" || { cat "$T/run1.err"; exit 1; }

run rot 3000 50 10000 --log-opt max-size=10k --log-opt max-file=3
run rotz 3000 50 10000 --log-opt max-size=10k --log-opt max-file=3 --log-opt compress=true
for i in $(seq 1 20); do run "m$i" 300 100 1000; done
track_container "$P-meta"
docker run -d --name "$P-meta" --network none --label app=web --label tier=front \
    --log-opt labels=app "$IMAGE" sh -c 'echo hello-meta; echo to-stderr >&2' >/dev/null
track_container "$P-long"
docker run -d --name "$P-long" --network none "$IMAGE" sh -c \
    "head -c 40000 /dev/zero | tr '\\0' a; echo; echo after-long" >/dev/null
# The restart one: slower, and still logging while shipper is down.
run rs 6000 100 100000 --log-opt max-size=50k --log-opt max-file=5

wait_exit rot rotz meta long $(seq -f m%g 1 20)
check "rotating container shipped" wait_lines rot 3000 30
check "compressing container shipped" wait_lines rotz 3000 30
check "20 containers shipped" wait_lines m20 300 30
sleep 0.5

log "restart while $P-rs logs"
stop_shipper
check_eq "run 1 exit code" 0 "$SHIPPER_RC"
sleep 1
start_shipper run2 -c "$T/cfg.yaml"
wait_ready "$HTTP" || { cat "$T/run2.err"; exit 1; }

log "docker rm -f while being read"
run rm 500 500 10000000
for _ in $(seq 100); do
    [ "$(docker logs "$P-rm" 2>/dev/null | wc -l)" -ge 500 ] && break
    sleep 0.1
done
docker rm -f "$P-rm" >/dev/null
check "removed container's lines shipped" wait_lines rm 500 20

wait_exit rs
check "restarted container shipped" wait_lines rs 6000 60
sleep 0.5
curl -sf "http://$HTTP/metrics" >"$T/metrics.txt"
stop_shipper
check_eq "run 2 exit code" 0 "$SHIPPER_RC"

log "checking every record"
python3 - "$P" "$T"/run1.out "$T"/run2.out <<'PY' || fail "record checks (above)"
import json, sys, collections
p = sys.argv[1]
recs = collections.defaultdict(list)
bad = 0
for fn in sys.argv[2:]:
    for line in open(fn, encoding="utf-8"):
        d = json.loads(line)
        name = d["container"]["name"]
        if not name.startswith(p + "-"):
            continue
        if d["tag"] != "docker." + name:
            print("wrong tag", d["tag"]); bad += 1
        if len(d["container"]["id"]) != 64:
            print("bad id"); bad += 1
        if d["container"].get("image", {}).get("name") != "shipper-test-busybox":
            print("no image", name); bad += 1
        recs[name[len(p) + 1:]].append(d)
seqs = {"rot": 3000, "rotz": 3000, "rs": 6000, "rm": 500}
seqs.update({"m%d" % i: 300 for i in range(1, 21)})
for n, want in seqs.items():
    got = [int(d["message"].split()[1]) for d in recs[n] if d["stream"] == "stdout"]
    if got != list(range(want)):
        dup = len(got) - len(set(got))
        missing = sorted(set(range(want)) - set(got))[:5]
        print(f"{n}: {len(got)} lines, {dup} duplicates, first missing {missing}"); bad += 1
m = recs["meta"]
msgs = sorted((d["stream"], d["message"]) for d in m)
if msgs != [("stderr", "to-stderr"), ("stdout", "hello-meta")]:
    print("meta lines", msgs); bad += 1
for d in m:
    if d["container"].get("labels") != {"app": "web", "tier": "front"}:
        print("labels", d["container"]); bad += 1
    if d.get("app") != "web":
        print("attrs not kept", d); bad += 1
l = [d["message"] for d in recs["long"]]
if l != ["a" * 40000, "after-long"]:
    print("long line:", [len(x) for x in l]); bad += 1
print("records checked:", sum(len(v) for v in recs.values()), "problems:", bad)
sys.exit(1 if bad else 0)
PY
rot=$(awk '$1 ~ /^shipper_tail_rotations_total/ {print $2}' "$T/metrics.txt")
check "rotations counted (run 2: $rot)" [ "${rot:-0}" -ge 1 ]
check "no corrupt lines" [ "$(grep -c corrupt_line "$T/metrics.txt")" = 0 ]
finish
