#!/usr/bin/env bash
# deploy/: the example files are accepted by the tools that read them, and the compose setup
# really works end to end on the local dockerd.
#   - shipper --check accepts deploy/image.yaml, deploy/shipper.yaml, deploy/sidecar.yaml and the
#     Kafka topology's deploy/kafka-edge.yaml, deploy/kafka-indexer.yaml
#   - systemd-analyze verify accepts deploy/shipper.service (ExecStart pointed at the build),
#     with no warning at all (it exits 0 on ignored lines, so its output must be empty)
#   - docker-compose config accepts deploy/docker-compose.yml and deploy/kafka-topology.yml (two
#     edges, three indexers of one group, all on the host network, read-only)
#   - docker-compose up shipper app: the read-only app's 1,000 lines arrive through the
#     hardened sidecar (free ports, the image's default config), which turns healthy,
#     runs under seccomp.json with no capabilities and writes nothing (docker diff)
#   - deploy/daemon.json has the restart settings that lose least (request-ack, no async, retry
#     wait 100ms, no max-retries), and its log-opts, given to `docker run`, deliver to shipper too
. "$(dirname "$0")/lib.sh"

for f in image shipper sidecar kafka-edge kafka-indexer; do
    if "$SHIPPER" --check -c "$ROOT/deploy/$f.yaml" >"$T/$f.check" 2>&1; then
        ok "shipper --check deploy/$f.yaml"
    else
        cat "$T/$f.check"; fail "shipper --check deploy/$f.yaml"
    fi
done
"$SHIPPER" --check -c "$ROOT/deploy/image.yaml" >/dev/null 2>&1 || fail "the image's default config must always pass"

if command -v systemd-analyze >/dev/null; then
    mkdir -p "$T/unit"
    sed "s|/usr/local/bin/shipper|$SHIPPER|g" "$ROOT/deploy/shipper.service" >"$T/unit/shipper.service"
    out=$(systemd-analyze verify "$T/unit/shipper.service" 2>&1); rc=$?
    check_eq "systemd-analyze verify deploy/shipper.service (exit)" 0 "$rc"
    check_eq "systemd-analyze verify deploy/shipper.service (warnings)" "" "$out"
    cp "$ROOT/deploy/shipper.socket" "$T/unit/"
    out=$(systemd-analyze verify "$T/unit/shipper.socket" 2>&1); rc=$?
    check_eq "systemd-analyze verify deploy/shipper.socket (exit)" 0 "$rc"
    check_eq "systemd-analyze verify deploy/shipper.socket (warnings)" "" "$out"
    listen=$(awk '$1 == "listen:" { print $2; exit }' "$ROOT/deploy/shipper.yaml")
    check "shipper.socket listens where deploy/shipper.yaml's forward input does ($listen)" \
        grep -qx "ListenStream=$listen" "$ROOT/deploy/shipper.socket"
    for k in 'ProtectSystem=strict' 'StateDirectory=shipper' 'ReadWritePaths=/var/lib/shipper' \
        'NoNewPrivileges=yes' 'AmbientCapabilities=CAP_DAC_READ_SEARCH' \
        'CapabilityBoundingSet=CAP_DAC_READ_SEARCH' 'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' \
        'SystemCallFilter=@system-service' 'DynamicUser=yes' 'Type=notify' 'NotifyAccess=all' \
        'ExecReload=/bin/kill -USR2 $MAINPID'; do
        check "unit sets $k" grep -qx "$k" "$ROOT/deploy/shipper.service"
    done
else
    fail "systemd-analyze not installed (apt-get install -y systemd)"
fi

# The settings that lose least across shipper restarts (docs/deploy.md "Restarts and upgrades",
# measured by test_docker_restart.sh FULL_MATRIX=1): acks, no async queue (Docker discards it when
# a container stops), a short retry wait, and no finite retry count (it drops lines).
python3 - "$ROOT/deploy/daemon.json" <<'PY' && ok "daemon.json keys" || fail "daemon.json keys"
import json, sys
d = json.load(open(sys.argv[1]))
o = d["log-opts"]
assert d["log-driver"] == "fluentd"
assert o["cache-disabled"] == "true"
assert o["fluentd-request-ack"] == "true" and o["fluentd-async"] == "false"
assert o["fluentd-retry-wait"] == "100ms" and "fluentd-max-retries" not in o
assert "fluentd-async-connect" not in o
assert o["fluentd-sub-second-precision"] == "true" and "fluentd-address" in o and "tag" in o
PY

command -v docker-compose >/dev/null || { fail "docker-compose not installed (tests/deps.sh)"; finish; }
docker-compose -f "$ROOT/deploy/docker-compose.yml" config >"$T/compose.out" 2>&1
check_eq "docker-compose config accepts deploy/docker-compose.yml" 0 "$?"
grep -q "read_only: true" "$T/compose.out" || fail "compose: read_only"
KAFKA_BROKERS=127.0.0.1:1 docker-compose -f "$ROOT/deploy/kafka-topology.yml" config >"$T/kcompose.out" 2>&1
check_eq "docker-compose config accepts deploy/kafka-topology.yml" 0 "$?"
check_eq "kafka topology: services" "edge-a edge-b indexer-1 indexer-2 indexer-3" \
    "$(KAFKA_BROKERS=127.0.0.1:1 docker-compose -f "$ROOT/deploy/kafka-topology.yml" config --services | sort | tr '\n' ' ' | sed 's/ $//')"
check_eq "kafka topology: every service on the host network, read-only" "5 5" \
    "$(grep -c 'network_mode: host' "$T/kcompose.out") $(grep -c 'read_only: true' "$T/kcompose.out")"
check "kafka topology: the brokers reach every service" [ "$(grep -c 'KAFKA_BROKERS: 127.0.0.1:1' "$T/kcompose.out")" = 5 ]

need_docker
NAME=shipper:deploy-compose-$$
PROJECT=shipperdeploy$$
export SHIPPER_IMAGE=$NAME SHIPPER_CONFIG=./image.yaml SHIPPER_SECCOMP=$ROOT/deploy/seccomp.json
SHIPPER_FORWARD_PORT=$(free_port); SHIPPER_HTTP_PORT=$(free_port)
export SHIPPER_FORWARD_PORT SHIPPER_HTTP_PORT SHIPPER_HEALTH_INTERVAL=1s
export APP_IMAGE=$IMAGE APP_LINES=1000
compose() { timeout 90 docker-compose -f "$ROOT/deploy/docker-compose.yml" -p "$PROJECT" "$@"; }
trap 'compose down -t 5 >/dev/null 2>&1; cleanup; docker rmi -f "$NAME" >/dev/null 2>&1' EXIT
shipper_image "$NAME" "$T/build.log" || { cat "$T/build.log"; fail "build-image.sh"; finish; }

# depends_on: service_healthy — `up` returns once the app is created, after shipper is healthy.
compose up -d shipper app >"$T/up.log" 2>&1 || { cat "$T/up.log"; fail "docker-compose up"; finish; }
H=127.0.0.1:$SHIPPER_HTTP_PORT
S=$(compose ps -q shipper); A=$(compose ps -q app)
check_eq "compose: shipper healthy" healthy "$(docker inspect -f '{{.State.Health.Status}}' "$S")"
timeout 60 docker wait "$A" >/dev/null || fail "compose app did not finish"
KEY='shipper_output_records_total{output="stdout",result="delivered"}'
wait_metric "$H" "$KEY" 1000 30 || fail "compose: 1000 records not delivered"
check_eq "compose: records delivered" 1000 "$(metric "$H" "$KEY")"
PID=$(docker inspect -f '{{.State.Pid}}' "$S")
check_eq "compose: shipper under seccomp filter" 2 "$(awk '$1 == "Seccomp:" { print $2 }' "/proc/$PID/status")"
check_eq "compose: shipper capabilities" 0000000000000000 "$(awk '$1 == "CapEff:" { print $2 }' "/proc/$PID/status")"
check_eq "compose: shipper uid" 65532 "$(awk '$1 == "Uid:" { print $2 }' "/proc/$PID/status")"
check_eq "compose: app root is read-only" true "$(docker inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$A")"
check_eq "compose: docker diff of shipper is empty" "" "$(docker diff "$S")"

# daemon.json's log-opts as --log-opt flags (address pointed at the free port).
opts=$(python3 - "$ROOT/deploy/daemon.json" "127.0.0.1:$SHIPPER_FORWARD_PORT" <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))["log-opts"]
o["fluentd-address"] = sys.argv[2]
print(" ".join("--log-opt %s=%s" % kv for kv in o.items()))
PY
)
D=daemonjson-$$
track_container "$D"
# shellcheck disable=SC2086
docker run -d --name "$D" --network none --read-only --log-driver fluentd $opts "$IMAGE" \
    sh -c 'i=0; while [ $i -lt 100 ]; do echo "daemon.json line $i"; i=$((i+1)); done' >/dev/null ||
    fail "container with daemon.json's log-opts did not start"
timeout 60 docker wait "$D" >/dev/null
wait_metric "$H" "$KEY" 1100 30 || fail "daemon.json: 100 records not delivered"
check_eq "daemon.json tag reaches the document" 100 "$(docker logs "$S" 2>/dev/null | grep -c "\"tag\":\"docker.$D\"")"

finish
