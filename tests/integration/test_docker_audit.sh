#!/usr/bin/env bash
# docker_audit input against a real dockerd (docs/audit.md), interval 1s, records on stdout:
# - a hardened container (--read-only --tmpfs /tmp --cap-drop ALL no-new-privileges, a user,
#   memory and pids limits, fluentd with cache-disabled=true) is compliant and shows no drift
#   while it writes /tmp;
# - a writable-root container writing /etc/app.conf after the baseline gives a drift record for
#   that path, and its writes under a --tmpfs mount and a volume give none;
# - a --privileged one and a json-file one get the matching findings;
# - `docker update` of the hardened one gives a second posture record, no scan between does.
# This sandbox cannot start privileged containers (runc: "unable to apply caps"), so that one is
# only created and the input runs with `all: true`, which audits created containers too.
. "$(dirname "$0")/lib.sh"
need_docker

# The shared test image's / was mode 0700 (a mktemp dir; fixed in dockerd.sh, but a machine may
# keep an image built before), which a non-root --user cannot enter: an image of its own.
AIMG=shipper-audit-busybox
if ! docker image inspect "$AIMG" >/dev/null 2>&1; then
    d="$T/img"; mkdir -p "$d/bin" "$d/etc" "$d/tmp"; chmod 755 "$d"; chmod 1777 "$d/tmp"
    cp "$(command -v busybox)" "$d/bin/busybox"
    for a in $("$d/bin/busybox" --list); do [ -e "$d/bin/$a" ] || ln -s busybox "$d/bin/$a"; done
    tar -C "$d" -c . | docker import - "$AIMG" >/dev/null || { echo "docker import failed"; exit 1; }
fi

P=$(free_port); H=$(free_port)
cat >"$T/audit.yaml" <<YAML
service:
  http_listen: 127.0.0.1:$H
buffer:
  flush_interval: 200ms
inputs:
  - type: forward
    listen: 127.0.0.1:$P
  - type: docker_audit
    docker_socket: /var/run/docker.sock
    interval: 1s
    drift: true
    all: true
outputs:
  - type: stdout
YAML
"$SHIPPER" --check -c "$T/audit.yaml" >/dev/null || { fail "config rejected"; finish; }
sed 's/    drift: true/    drift: true\n    advisory: [cpu-unlimted]/' "$T/audit.yaml" >"$T/bad.yaml"
"$SHIPPER" --check -c "$T/bad.yaml" >/dev/null 2>"$T/bad.err"
check_eq "an unknown rule id is a config error" 2 $?
check "the error names the key and the id" grep -q 'advisory.*unknown rule id "cpu-unlimted"' "$T/bad.err"
start_shipper s -c "$T/audit.yaml"
wait_ready "127.0.0.1:$H" || exit 1

GOOD=audit-good-$$ DRIFT=audit-drift-$$ PRIV=audit-priv-$$ JSON=audit-json-$$
for c in $GOOD $DRIFT $PRIV $JSON; do track_container "$c"; done
docker run -d --name $GOOD --network none --read-only --tmpfs /tmp --cap-drop ALL \
    --security-opt no-new-privileges --user 65532 --memory 64m --pids-limit 64 \
    --log-driver fluentd --log-opt fluentd-address=127.0.0.1:$P --log-opt fluentd-async=true \
    --log-opt cache-disabled=true "$AIMG" sh -c 'while true; do date > /tmp/now; sleep 0.2; done' >/dev/null ||
    fail "hardened container did not start"
docker run -d --name $DRIFT --network none --tmpfs /scratch -v /data --log-driver none "$AIMG" \
    sleep 600 >/dev/null || fail "drift container did not start"
docker create --name $PRIV --network none --privileged "$AIMG" sleep 600 >/dev/null ||
    fail "privileged container not created"
docker run -d --name $JSON --network none --log-driver json-file "$AIMG" sleep 600 >/dev/null ||
    fail "json-file container did not start"

gauge() { echo "shipper_container_drift_paths{input=\"docker_audit\",container_id=\"$(docker inspect -f '{{.Id}}' "$1" | cut -c1-12)\",container_name=\"$1\"}"; }
has_gauge() { curl -sf "http://127.0.0.1:$H/metrics" | grep -qF "$(gauge "$1")"; }
# The drift baseline of $DRIFT is taken once its gauge shows; only then does it change files.
for _ in $(seq 600); do has_gauge $DRIFT && has_gauge $GOOD && break; sleep 0.1; done
check "drift baseline taken" has_gauge $DRIFT
docker exec $DRIFT sh -c 'echo x > /etc/app.conf; echo y > /scratch/s; echo z > /data/v' ||
    fail "docker exec"
# Three more scans: the drift is seen, and the hardened container has been written to /tmp.
scans=$(metric "127.0.0.1:$H" 'shipper_audit_scans_total{input="docker_audit"}')
wait_metric "127.0.0.1:$H" 'shipper_audit_scans_total{input="docker_audit"}' $((scans + 3)) 60 ||
    fail "scans stalled"
wait_metric "127.0.0.1:$H" 'shipper_audit_records_total{input="docker_audit",kind="drift"}' 1 60 ||
    fail "no drift record"
# A posture change (docker update) gives a second posture record.
posture=$(metric "127.0.0.1:$H" 'shipper_audit_records_total{input="docker_audit",kind="posture"}')
docker update --pids-limit 32 $GOOD >/dev/null || fail "docker update"
wait_metric "127.0.0.1:$H" 'shipper_audit_records_total{input="docker_audit",kind="posture"}' $((posture + 1)) 60 ||
    fail "no posture record after docker update"
check_eq "drift gauge of the hardened container" 0 "$(metric "127.0.0.1:$H" "$(gauge $GOOD)")"
check "drift gauge of the writable container" [ "$(metric "127.0.0.1:$H" "$(gauge $DRIFT)")" -ge 2 ]
check "compliant containers counted" [ "$(metric "127.0.0.1:$H" 'shipper_containers{input="docker_audit",compliant="true"}')" -ge 1 ]
check "non-compliant containers counted" [ "$(metric "127.0.0.1:$H" 'shipper_containers{input="docker_audit",compliant="false"}')" -ge 3 ]
check "last scan's duration exported" curl -sf "http://127.0.0.1:$H/metrics" -o "$T/m.txt"
check "shipper_audit_scan_seconds set" grep -q '^shipper_audit_scan_seconds{input="docker_audit"} [0-9.]*[1-9]' "$T/m.txt"
stop_shipper
check_eq "shipper exit code on SIGTERM" 0 "$SHIPPER_RC"
docker rm -fv $DRIFT >/dev/null 2>&1 # with its anonymous volume

python3 - "$T/s.out" $GOOD $DRIFT $PRIV $JSON <<'PY' || FAILS=$((FAILS + 1))
import json, sys
path, good, drift, priv, js = sys.argv[1:]
docs = [json.loads(l) for l in open(path)]
by = {}
for d in docs:
    by.setdefault(d["container"]["name"], []).append(d)
bad = 0
def expect(cond, what):
    global bad
    print(("ok: " if cond else "FAIL: ") + what)
    bad += 0 if cond else 1
def posture(name):
    p = [d for d in by.get(name, []) if "audit" in d]
    return p[0]["audit"] if p else {}
def required(name):
    return [f["rule"] for f in posture(name).get("findings", []) if f["level"] == "required"]
g = posture(good)
expect(g.get("compliant") is True, "hardened container compliant (required findings: %s)" % required(good))
expect(g.get("read_only_rootfs") and g.get("user") == "65532" and g.get("tmpfs") == ["/tmp"]
       and g.get("log_driver") == "fluentd" and g.get("log_local_copy") is False, "its posture fields")
gp = [d["audit"] for d in by.get(good, []) if "audit" in d]
expect([p["pids_limit"] for p in gp] == [64, 32], "a posture record at first sight, one after docker update, none between (pids_limit %s)" % [p["pids_limit"] for p in gp])
expect(not [d for d in by.get(good, []) if "drift" in d], "no drift while it writes /tmp")
dr = [d["drift"] for d in by.get(drift, []) if "drift" in d]
expect({"path": "/etc/app.conf", "kind": "A"} in dr, "drift record for /etc/app.conf (got %s)" % dr)
expect({"path": "/etc", "kind": "C"} in dr, "drift record for /etc changed")
expect(not [x for x in dr if x["path"].startswith(("/scratch", "/data"))], "no drift under tmpfs or volume")
expect([d for d in by.get(drift, []) if "drift" in d][0]["tag"] == "audit." + drift, "tag audit.<name>")
expect("rootfs-writable" in required(drift) and "user-root" in required(drift), "writable root findings")
expect("privileged" in required(priv) and posture(priv).get("privileged") is True, "privileged finding")
expect("log-local-files" in required(js) and posture(js).get("log_driver") == "json-file", "json-file finding")
expect(posture(js).get("compliant") is False, "json-file container not compliant")
sys.exit(1 if bad else 0)
PY
finish
