#!/usr/bin/env bash
# deploy/: the json-file variant. The image, with Docker's containers directory mounted
# read-only, tails a json-file container's log and ships its lines with container metadata.
# It runs as uid 0 holding only CAP_DAC_READ_SEARCH (the logs are root:root 0640 and
# config.v2.json is 0600), on a read-only root, no-new-privileges, seccomp.json.
# Skipped (exit 0, with the reason) while the build has no docker_logs input.
. "$(dirname "$0")/lib.sh"

printf 'inputs:\n  - type: docker_logs\n    path: /var/lib/docker/containers\noutputs:\n  - type: stdout\n' >"$T/dl.yaml"
if ! "$SHIPPER" --check -c "$T/dl.yaml" >"$T/check.out" 2>&1; then
    if grep -q "not supported" "$T/check.out"; then
        echo "SKIP: the docker_logs input is not in this build: $(tail -1 "$T/check.out")"
        exit 0
    fi
    cat "$T/check.out"; fail "shipper --check of a docker_logs config"; finish
fi

need_docker
NAME=shipper:deploy-jsonfile-$$
trap 'cleanup; docker rmi -f "$NAME" >/dev/null 2>&1' EXIT
"$ROOT/deploy/build-image.sh" "$NAME" >"$T/build.log" 2>&1 || { cat "$T/build.log"; fail "build-image.sh"; finish; }
CONTAINERS=$(docker info -f '{{.DockerRootDir}}')/containers

H=$(free_port); S=shipper-jsonfile-$$
track_container "$S"
docker run -d --name "$S" --read-only --user 0:0 --cap-drop ALL --cap-add DAC_READ_SEARCH \
    --security-opt no-new-privileges --security-opt "seccomp=$ROOT/deploy/seccomp.json" \
    --memory 128m --pids-limit 64 --network host \
    -v "$CONTAINERS:/var/lib/docker/containers:ro" \
    "$NAME" --docker-logs /var/lib/docker/containers --stdout --http "127.0.0.1:$H" >/dev/null ||
    { fail "shipper container did not start"; finish; }
wait_ready "127.0.0.1:$H" 20 || { docker logs "$S"; fail "shipper not ready"; finish; }

# Started after shipper: a file that appears later is read whole (read_from: end).
A=app-jsonfile-$$
N=500
track_container "$A"
docker run -d --name "$A" --network none --read-only --log-driver json-file --label app=deploy \
    "$IMAGE" sh -c "i=0; while [ \$i -lt $N ]; do echo \"json line \$i\"; i=\$((i+1)); done" >/dev/null ||
    fail "application container did not start"
timeout 60 docker wait "$A" >/dev/null || fail "application container did not finish"

got=0
for _ in $(seq 300); do
    got=$(docker logs "$S" 2>/dev/null | grep -c "\"name\":\"$A\"")
    [ "$got" -ge "$N" ] && break
    sleep 0.1
done
check_eq "json-file lines shipped" "$N" "$got"
docker logs "$S" 2>/dev/null | grep "\"name\":\"$A\"" >"$T/docs.json"
python3 - "$T/docs.json" "$A" "$IMAGE" "$N" <<'PY' || FAILS=$((FAILS + 1))
import json, sys
path, name, image, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
docs = [json.loads(l) for l in open(path)]
bad = 0
def expect(cond, what):
    global bad
    print(("ok: " if cond else "FAIL: ") + what)
    bad += 0 if cond else 1
expect([d["message"] for d in docs] == ["json line %d" % i for i in range(n)], "lines once and in order")
d = docs[0] if docs else {}
c = d.get("container", {})
expect(len(c.get("id", "")) == 64, "container.id")
expect(c.get("name") == name, "container.name from config.v2.json")
expect(c.get("image", {}).get("name", "").startswith(image), "container.image.name")
expect(c.get("labels", {}).get("app") == "deploy", "container.labels")
expect(d.get("stream") == "stdout", "stream")
sys.exit(1 if bad else 0)
PY
check_eq "docker diff of the tailing shipper is empty" "" "$(docker diff "$S")"
docker stop -t 15 "$S" >/dev/null
check_eq "exit code after docker stop" 0 "$(docker inspect -f '{{.State.ExitCode}}' "$S")"
finish
