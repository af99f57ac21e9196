#!/usr/bin/env bash
# multiline against real Docker containers (docs/filters.md, "multiline"): Java, Python and Node.js
# traces captured from java, python3 and node on this host, replayed through containers' stdout
# with the fluentd driver (forward input) and json-file (docker_logs input); each trace arrives
# as one document with its lines in order, the lines around it as documents of their own. A trace
# nothing follows is emitted after flush_timeout; one whose filter waits an hour is emitted at
# SIGTERM (drain).
. "$(dirname "$0")/lib.sh"
need_docker
command -v java >/dev/null || skip "no java on this host to capture a Java trace"
command -v node >/dev/null || skip "no node on this host to capture a Node.js trace"

P="ml$$"
mkdir -p "$T/t"
cat >"$T/T.java" <<'JAVA'
public class T {
    static void f() { throw new IllegalStateException("inner"); }
    public static void main(String[] a) {
        try { f(); } catch (Exception e) { new RuntimeException("outer", e).printStackTrace(); }
    }
}
JAVA
timeout 120 java "$T/T.java" 2>"$T/t/java.txt"
python3 -c '
def f(): raise ValueError("bad value")
try:
    f()
except Exception as e:
    raise KeyError("k") from e' 2>"$T/t/python.txt"
node -e 'function a(){throw new TypeError("boom")} try{a()}catch(e){console.log(e.stack)}' >"$T/t/node.txt"
for l in java python node; do
    check "$l trace captured" grep -q . "$T/t/$l.txt"
done
check "java trace has a cause" grep -q "^Caused by:" "$T/t/java.txt"
check "python trace is chained" grep -q "^The above exception" "$T/t/python.txt"

FP=$(free_port)
HTTP=127.0.0.1:$(free_port)
cat >"$T/cfg.yaml" <<CFG
service: {http_listen: "$HTTP", grace: 5s}
buffer: {flush_interval: 200ms}
filters:
  - type: multiline
    name: ml
    match: "*.$P-x-*"
    mode: auto
    flush_timeout: 1s
  - type: multiline
    name: held
    match: "*.$P-d-*"
    flush_timeout: 1h
inputs:
  - type: forward
    listen: 127.0.0.1:$FP
  - type: docker_logs
    path: /var/lib/docker/containers
    read_from: end
outputs:
  - type: stdout
    match: "*.$P-*"
CFG

start_shipper s -c "$T/cfg.yaml"
wait_ready "$HTTP" || { cat "$T/s.err"; exit 1; }

run() { # NAME DRIVER COMMAND
    track_container "$P-$1"
    local opts=()
    [ "$2" = fluentd ] && opts=(--log-driver=fluentd --log-opt "fluentd-address=127.0.0.1:$FP"
        --log-opt "tag=fwd.{{.Name}}")
    docker run -d --name "$P-$1" --network none -v "$T/t:/t:ro" "${opts[@]}" "$IMAGE" \
        sh -c "$3" >/dev/null || fail "docker run $1"
}
for l in java python node; do
    run "x-$l-fwd" fluentd "echo before-$l; cat /t/$l.txt; echo after-$l"
    run "x-$l-jf" json-file "echo before-$l; cat /t/$l.txt; echo after-$l"
done
run x-late fluentd "echo before-late; cat /t/java.txt"  # nothing follows: flush_timeout
run d-tail json-file "echo before-tail; cat /t/python.txt" # held for an hour: SIGTERM drains it
for c in x-java-fwd x-java-jf x-python-fwd x-python-jf x-node-fwd x-node-jf x-late d-tail; do
    timeout 120 docker wait "$P-$c" >/dev/null || fail "container $c did not finish"
done
wait_metric "$HTTP" 'shipper_filter_multiline_groups_total{filter="ml",reason="ended"}' 6 60 ||
    fail "the six traces followed by a line were not all joined"
wait_metric "$HTTP" 'shipper_filter_multiline_groups_total{filter="ml",reason="timeout"}' 1 60 ||
    fail "the trace nothing follows was not emitted after flush_timeout"
wait_metric "$HTTP" 'shipper_filter_records_total{filter="held",result="held"}' 2 60 ||
    fail "the python trace of d-tail is not held"
for _ in $(seq 300); do [ "$(grep -c "after-\|Caused by" "$T/s.out")" -ge 7 ] && break; sleep 0.2; done
curl -sf "http://$HTTP/metrics" | grep multiline
check_eq "nothing of d-tail's trace emitted before SIGTERM" 0 \
    "$(grep -c "$P-d-tail.*Traceback" "$T/s.out")"
stop_shipper
check_eq "shipper exit code on SIGTERM" 0 "$SHIPPER_RC"

python3 - "$T/s.out" "$P" "$T/t" <<'PY' || FAILS=$((FAILS + 1))
import json, sys
path, p, tdir = sys.argv[1:4]
traces = {l: open("%s/%s.txt" % (tdir, l)).read().rstrip("\n") for l in ("java", "python", "node")}
by = {}
for line in open(path):
    d = json.loads(line)
    by.setdefault(d.get("container", {}).get("name"), []).append(d["message"])
bad = 0
def expect(cond, what):
    global bad
    print(("ok: " if cond else "FAIL: ") + what)
    bad += 0 if cond else 1
for l in ("java", "python", "node"):
    for drv in ("fwd", "jf"):
        got = by.get("%s-x-%s-%s" % (p, l, drv), [])
        expect(got == ["before-" + l, traces[l], "after-" + l],
               "%s via %s: the trace is one document between its neighbours: %.100r" % (l, drv, got))
got = by.get(p + "-x-late", [])
expect(got == ["before-late", traces["java"]], "flush_timeout emits the trace nothing follows: %.100r" % got)
got = by.get(p + "-d-tail", [])
expect(got == ["before-tail", traces["python"]], "SIGTERM emits the held trace: %.100r" % got)
sys.exit(1 if bad else 0)
PY
finish
