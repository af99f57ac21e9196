#!/usr/bin/env bash
# Forward records get container.image and container.labels: from config.v2.json when Docker's
# containers directory is readable (metadata_path), else from the Engine API (docker_socket);
# with neither, documents carry only what Docker sent. A `--rm` container that is gone before its
# lines are encoded (flush_interval 3s) still gets them: the lookup starts when its first line
# arrives.
. "$(dirname "$0")/lib.sh"
need_docker
SOCK=${DOCKER_SOCK:-/var/run/docker.sock}
P=$(free_port); H=$(free_port)
run_case() { # NAME METADATA_PATH DOCKER_SOCKET [FLUSH_INTERVAL DOCKER_RUN_FLAG]
    cat >"$T/$1.yaml" <<YAML
service:
  http_listen: 127.0.0.1:$H
buffer:
  flush_interval: ${4:-1s}
inputs:
  - type: forward
    listen: 127.0.0.1:$P
    metadata_path: "$2"
    docker_socket: "$3"
outputs:
  - type: stdout
YAML
    start_shipper "$1" -c "$T/$1.yaml"; wait_ready "127.0.0.1:$H" || exit 1
    local name=meta-$1-$$
    track_container "$name"
    docker run ${5:-} --name "$name" --network none --read-only --label app=web --label team=logs \
        --log-driver=fluentd --log-opt "fluentd-address=127.0.0.1:$P" --log-opt tag=meta \
        "$IMAGE" sh -c 'echo one; echo two' >/dev/null 2>&1
    wait_metric "127.0.0.1:$H" 'shipper_output_records_total{output="stdout",result="delivered"}' 2 20
    stop_shipper
}
expect() { # NAME WANT-IMAGE(yes|no)
    python3 - "$T/$1.out" "$2" "$IMAGE" "$1" <<'PY' || FAILS=$((FAILS + 1))
import json, sys
docs = [json.loads(l) for l in open(sys.argv[1])]
want, image, case = sys.argv[2] == "yes", sys.argv[3], sys.argv[4]
ok = len(docs) == 2
for d in docs:
    c = d.get("container", {})
    has = c.get("image", {}).get("name", "").startswith(image) and c.get("labels", {}).get("app") == "web"
    ok = ok and has == want and c.get("name", "").startswith("meta-")
print(("ok: " if ok else "FAIL: ") + "%s: image and labels %s (%s)" % (case, "present" if want else "absent", docs[:1]))
sys.exit(0 if ok else 1)
PY
}
run_case dir /var/lib/docker/containers ""
expect dir yes
if [ -S "$SOCK" ]; then
    run_case socket "" "$SOCK"
    expect socket yes
else
    fail "no Docker API socket at $SOCK"
fi
run_case none "" ""
expect none no
run_case dir-rm /var/lib/docker/containers "" 3s --rm
expect dir-rm yes
if [ -S "$SOCK" ]; then
    run_case socket-rm "" "$SOCK" 3s --rm
    expect socket-rm yes
fi
finish
