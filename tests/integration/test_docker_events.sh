#!/usr/bin/env bash
# suite: asan (tests/run.sh also runs it against the ASan+UBSan build)
# docker_events against the real dockerd: a container's create, start, die (with its exit code)
# and destroy become records with the container's name, image and labels and the event's
# nanosecond time. Then shipper is stopped, a second container lives and dies while it is down,
# and on restart (resuming from the time in state_dir) each event of both containers has been
# shipped exactly once. Last, the daemon goes away while shipper runs (a proxy in front of its
# socket is killed: the stream breaks, reconnects are refused), a container lives and dies
# meanwhile, the daemon comes back: its events are shipped once, after reconnecting. And shipper
# started before the daemon (its socket missing) warns, runs, and ships once the socket appears.
# Other containers on the same daemon (other tests) are ignored by name.
. "$(dirname "$0")/lib.sh"
need_docker
SOCK=${DOCKER_SOCK:-/var/run/docker.sock}
[ -S "$SOCK" ] || skip "no Docker API socket at $SOCK"
HTTP=127.0.0.1:$(free_port)
A=ev-a-$$ B=ev-b-$$ C=ev-c-$$ D=ev-d-$$ E=ev-e-$$
mkdir -p "$T/state"
cat >"$T/cfg.yaml" <<CFG
service: {http_listen: "$HTTP", state_dir: "$T/state"}
buffer: {flush_interval: 100ms}
inputs:
  - type: docker_events
    docker_socket: $SOCK
outputs:
  - type: stdout
CFG
# life NAME CODE: a container that exits with CODE, then is removed.
life() {
    track_container "$1"
    docker run --name "$1" --network none --label app=events --label "case=$1" "$IMAGE" \
        sh -c "exit $2" >/dev/null 2>&1
    docker rm "$1" >/dev/null
}
# wait_doc NAME ACTION: until a record of that container and action is in the outputs (60 s).
wait_doc() {
    for _ in $(seq 600); do
        grep -h "\"name\":\"$1\"" "$T"/run*.out 2>/dev/null | grep -q "\"action\":\"$2\"" && return 0
        sleep 0.1
    done
    fail "no $2 event of $1"; return 1
}

log "run 1: a container's life as it happens"
start_shipper run1 -c "$T/cfg.yaml"
wait_ready "$HTTP" || { cat "$T/run1.err"; exit 1; }
life "$A" 3
wait_doc "$A" destroy
stop_shipper
check_eq "run 1 exit code" 0 "$SHIPPER_RC"
check "the resume point is saved" test -s "$T/state/docker_events.events"

log "while shipper is down: another container's life"
life "$B" 0

log "run 2: resumes from the saved time (max_queue 1: the replayed burst overflows the queue, so
the stream is closed and opened again from the last event taken, and must still ship each once)"
sed 's/^    docker_socket: .*/&\n    max_queue: 1/' "$T/cfg.yaml" >"$T/cfg2.yaml"
start_shipper run2 -c "$T/cfg2.yaml"
wait_ready "$HTTP" || { cat "$T/run2.err"; exit 1; }
wait_doc "$B" destroy
# Events arrive in time order: B's destroy is the last of everything replayed, so a repeat of
# an A or B event would be in the output by now.
check "shipper_docker_events_total counts destroys" \
    [ "$(metric "$HTTP" 'shipper_docker_events_total{input="docker_events",action="destroy"}')" -ge 1 ]
log "queue-full reopenings in run 2: $(metric "$HTTP" 'shipper_docker_events_queue_full_total{input="docker_events"}')"
stop_shipper
check_eq "run 2 exit code" 0 "$SHIPPER_RC"

log "run 3: the daemon goes away and comes back while shipper runs"
PROXY=$T/docker-proxy.sock
start_proxy() {
    python3 "$ROOT/tests/rigs/unix_proxy.py" "$PROXY" "$SOCK" &
    PROXY_PID=$!
    bg_pid "$PROXY_PID"
    for _ in $(seq 100); do [ -S "$PROXY" ] && return 0; sleep 0.1; done
    fail "proxy did not start"
}
start_proxy
sed "s|^    docker_socket: .*|    docker_socket: $PROXY\n    reconnect_max: 2s|" "$T/cfg.yaml" >"$T/cfg3.yaml"
start_shipper run3 -c "$T/cfg3.yaml"
wait_ready "$HTTP" || { cat "$T/run3.err"; exit 1; }
life "$C" 1
wait_doc "$C" destroy
kill "$PROXY_PID"; wait "$PROXY_PID" 2>/dev/null
wait_metric "$HTTP" 'shipper_docker_events_reconnects_total{input="docker_events"}' 1 60
life "$D" 2
start_proxy
wait_doc "$D" destroy
check "reconnects counted" \
    [ "$(metric "$HTTP" 'shipper_docker_events_reconnects_total{input="docker_events"}')" -ge 1 ]
stop_shipper
check_eq "run 3 exit code" 0 "$SHIPPER_RC"
kill "$PROXY_PID" 2>/dev/null
wait "$PROXY_PID" 2>/dev/null

log "run 4: shipper starts before the daemon's socket exists (dockerd started after it)"
rm -f "$PROXY"
start_shipper run4 -c "$T/cfg3.yaml"
wait_ready "$HTTP" || { cat "$T/run4.err"; fail "shipper did not start while the socket was missing"; finish; }
check "the missing socket is a warning" grep -q "connecting with backoff until it appears" "$T/run4.err"
start_proxy
life "$E" 4
wait_doc "$E" destroy
stop_shipper
check_eq "run 4 exit code" 0 "$SHIPPER_RC"
kill "$PROXY_PID" 2>/dev/null

python3 - "$A" "$B" "$C" "$D" "$E" "$IMAGE" "$T"/run1.out "$T"/run2.out "$T"/run3.out "$T"/run4.out <<'PY' || FAILS=$((FAILS + 1))
import json, re, sys, collections
a, b, c, d, e, image, files = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7:]
docs = [json.loads(l) for f in files for l in open(f) if l.strip()]
bad = []
for name, code in ((a, 3), (b, 0), (c, 1), (d, 2), (e, 4)):
    mine = [d for d in docs if d.get("container", {}).get("name") == name]
    seen = collections.Counter(d["event"]["action"] for d in mine)
    for act in ("create", "start", "die", "destroy"):
        if seen[act] != 1:
            bad.append("%s: %d %s events, wanted 1" % (name, seen[act], act))
    for d in mine:
        c, ev = d["container"], d["event"]
        if not re.fullmatch(r"[0-9a-f]{64}", c.get("id", "")):
            bad.append("%s: bad container.id %r" % (name, c.get("id")))
        if not c.get("image", {}).get("name", "").startswith(image):
            bad.append("%s %s: image %r" % (name, ev["action"], c.get("image")))
        if c.get("labels", {}).get("app") != "events" or c["labels"].get("case") != name:
            bad.append("%s %s: labels %r" % (name, ev["action"], c.get("labels")))
        if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", d["@timestamp"]):
            bad.append("%s: @timestamp %r" % (name, d["@timestamp"]))
        if ev["action"] == "die" and ev.get("exit_code") != code:
            bad.append("%s: die exit_code %r, wanted %d" % (name, ev.get("exit_code"), code))
        if name not in d.get("message", "") or d.get("tag") != "docker.events":
            bad.append("%s: message %r tag %r" % (name, d.get("message"), d.get("tag")))
    print("%s: %s" % (name, dict(seen)))
print(next(json.dumps(d) for d in docs if d.get("container", {}).get("name") == a
           and d["event"]["action"] == "die"))
for x in bad:
    print("FAIL: " + x)
if not bad:
    print("ok: each event of the five containers once, with its fields")
sys.exit(1 if bad else 0)
PY
finish
