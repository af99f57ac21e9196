#!/usr/bin/env bash
# deploy/: the json-file variant. The image, with Docker's containers directory mounted
# read-only, tails a json-file container's log and ships its lines with container metadata.
# It runs as uid 0 holding only CAP_DAC_READ_SEARCH (the logs are root:root 0640 and
# config.v2.json is 0600), on a read-only root, no-new-privileges, seccomp.json; its one
# writable path is the state_dir (a root-owned host directory), where offsets survive a
# container's replacement.
. "$(dirname "$0")/lib.sh"

printf 'inputs:\n  - type: docker_logs\n    path: /var/lib/docker/containers\noutputs:\n  - type: stdout\n' >"$T/dl.yaml"
if ! "$SHIPPER" --check -c "$T/dl.yaml" >"$T/check.out" 2>&1; then
    cat "$T/check.out"; fail "shipper --check of a docker_logs config"; finish
fi

need_docker
NAME=shipper:deploy-jsonfile-$$
trap 'cleanup; docker rmi -f "$NAME" >/dev/null 2>&1' EXIT
shipper_image "$NAME" "$T/build.log" || { cat "$T/build.log"; fail "build-image.sh"; finish; }
CONTAINERS=$(docker info -f '{{.DockerRootDir}}')/containers

H=$(free_port); S=shipper-jsonfile-$$
# state_dir on a root-owned 0700 host directory: the only writable path (tail offsets).
mkdir -m 0700 "$T/state"
printf 'service:\n  http_listen: 127.0.0.1:%s\n  state_dir: /var/lib/shipper\ninputs:\n  - type: docker_logs\n    path: /var/lib/docker/containers\noutputs:\n  - type: stdout\n' "$H" >"$T/shipper.yaml"
run_shipper() { # NAME
    track_container "$1"
    docker run -d --name "$1" --read-only --user 0:0 --cap-drop ALL --cap-add DAC_READ_SEARCH \
        --security-opt no-new-privileges --security-opt "seccomp=$ROOT/deploy/seccomp.json" \
        --memory 128m --pids-limit 64 --network host --log-driver local \
        -v "$CONTAINERS:/var/lib/docker/containers:ro" -v "$T/state:/var/lib/shipper" \
        -v "$T/shipper.yaml:/etc/shipper/shipper.yaml:ro" "$NAME" >/dev/null
}
run_shipper "$S" || { fail "shipper container did not start"; finish; }
wait_ready "127.0.0.1:$H" 20 || { docker logs "$S"; fail "shipper not ready"; finish; }

# Started after shipper: a file that appears later is read whole (read_from: end). The app
# writes N lines, pauses, then N more: the second batch is written while shipper is stopped
# and must come from the replacement container, via the offsets in the state volume (with
# read_from: end and no offsets it would ship none; from zero, duplicates).
A=app-jsonfile-$$
N=500
track_container "$A"
docker run -d --name "$A" --network none --read-only --log-driver json-file --label app=deploy \
    "$IMAGE" sh -c "i=0; while [ \$i -lt $((2 * N)) ]; do [ \$i = $N ] && sleep 6; echo \"json line \$i\"; i=\$((i+1)); done" >/dev/null ||
    fail "application container did not start"
count() { docker logs "$1" 2>/dev/null | grep -c "\"name\":\"$A\""; }
wait_count() { # CONTAINER WANT
    local got=0
    for _ in $(seq 300); do
        got=$(count "$1")
        [ "$got" -ge "$2" ] && break
        sleep 0.1
    done
    echo "$got"
}
check_eq "json-file lines shipped (first batch)" "$N" "$(wait_count "$S" "$N")"
check_eq "docker diff of the tailing shipper is empty" "" "$(docker diff "$S")"
check_eq "its own log is not tailed (no feedback loop)" 0 \
    "$(docker logs "$S" 2>/dev/null | grep -c "\"name\":\"$S\"")"
docker stop -t 15 "$S" >/dev/null
check_eq "exit code after docker stop" 0 "$(docker inspect -f '{{.State.ExitCode}}' "$S")"
check "offsets were written to the state volume" [ -n "$(ls -A "$T/state")" ]
timeout 60 docker wait "$A" >/dev/null || fail "application container did not finish"

S2=shipper-jsonfile2-$$
run_shipper "$S2" || fail "second shipper container did not start"
wait_ready "127.0.0.1:$H" 20 || fail "second shipper not ready"
check_eq "the replacement ships the lines written while shipper was down" "$N" "$(wait_count "$S2" "$N")"
sleep 1
{ docker logs "$S" 2>/dev/null; docker logs "$S2" 2>/dev/null; } | grep "\"name\":\"$A\"" >"$T/docs.json"
python3 - "$T/docs.json" "$A" "$IMAGE" "$((2 * N))" <<'PY' || FAILS=$((FAILS + 1))
import json, sys
path, name, image, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
docs = [json.loads(l) for l in open(path)]
bad = 0
def expect(cond, what):
    global bad
    print(("ok: " if cond else "FAIL: ") + what)
    bad += 0 if cond else 1
expect([d["message"] for d in docs] == ["json line %d" % i for i in range(n)],
       "%d lines once and in order across the restart (got %d)" % (n, len(docs)))
d = docs[0] if docs else {}
c = d.get("container", {})
expect(len(c.get("id", "")) == 64, "container.id")
expect(c.get("name") == name, "container.name from config.v2.json")
expect(c.get("image", {}).get("name", "").startswith(image), "container.image.name")
expect(c.get("labels", {}).get("app") == "deploy", "container.labels")
expect(d.get("stream") == "stdout", "stream")
sys.exit(1 if bad else 0)
PY
docker stop -t 15 "$S2" >/dev/null
finish
