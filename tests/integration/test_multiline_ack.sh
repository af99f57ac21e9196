#!/usr/bin/env bash
# suite: asan (tests/run.sh also runs it against the ASan+UBSan build)
# A line the multiline filter holds is acked only when its group is (issue #13; docs/filters.md,
# "multiline"; README "Delivery guarantees").
#   Forward: a client sends the first lines of a Java trace, one frame each, with require_ack
#   (chunk ids) to an input with ack: delivered and to one with ack: accepted; flush_timeout is an
#   hour. While the lines are held no ack comes (checked once the filter counted them held: the
#   old code had acked them by then); the line that ends the trace releases the acks of every
#   frame, and the trace arrives as one record.
#   The same with the spool and flush_interval 1h, ack: durable and delivered, the trace in one
#   frame ended by flush_timeout: the ack comes (the group's chunk is closed for it).
#   json-file (no Docker: a containers directory made by the test): shipper reads a line and the
#   first lines of a trace, holds them, saves its offsets, and is SIGKILLed; the rest of the trace
#   is written; a restart reads the held lines again: the trace arrives once and whole, the line
#   before it is not shipped twice.
. "$(dirname "$0")/lib.sh"

P="mla$$"
FP1=$(free_port)
FP2=$(free_port)
HTTP=127.0.0.1:$(free_port)
C=$T/containers
ID=$(printf 'e%.0s' $(seq 64))
fake_container "$C" "$ID" "$P-jf" img
LOGF=$C/$ID/$ID-json.log
: >"$LOGF"
jline() { # TEXT: one stdout line in Docker's json-file format
    python3 -c 'import json, sys, time
print(json.dumps({"log": sys.argv[1] + "\n", "stream": "stdout",
                  "time": time.strftime("%Y-%m-%dT%H:%M:%S.000000001Z", time.gmtime())}))' "$1" >>"$LOGF"
}
docker_logs_conf "$C" "$HTTP" ", grace: 5s" "filters:
  - type: multiline
    name: ml
    mode: java
    flush_timeout: 1h" "  - type: forward
    listen: 127.0.0.1:$FP1
    ack: delivered
  - type: forward
    listen: 127.0.0.1:$FP2
    ack: accepted" >"$T/cfg.yaml"

held() { metric "$HTTP" 'shipper_filter_records_total{filter="ml",result="held"}'; }

jline "before the trace"
jline 'Exception in thread "main" java.lang.IllegalStateException: boom'
jline "	at T.f(T.java:2)"
start_shipper run1 -c "$T/cfg.yaml"
wait_ready "$HTTP" || { cat "$T/run1.err"; exit 1; }

# The client: frames are sent one at a time; "expect none" checks that no ack is there once the
# held counter reached a value (the acks of frames before it would have been written by then).
cat >"$T/client.py" <<'PY'
import base64, json, os, socket, sys, time, urllib.request
sys.path.insert(0, sys.argv[1])
from msgpack_lite import pack
port, http, tag, want_held = int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
s = socket.create_connection(("127.0.0.1", port))
def held():
    for l in urllib.request.urlopen("http://%s/metrics" % http, timeout=10).read().decode().splitlines():
        if l.startswith('shipper_filter_records_total{filter="ml",result="held"}'):
            return int(float(l.split()[1]))
    return 0
def frame(line):
    cid = base64.b64encode(os.urandom(12)).decode()
    rec = {"log": line, "source": "stdout", "container_id": "d" * 64, "container_name": "/" + tag}
    s.sendall(pack([tag, int(time.time()), rec, {"chunk": cid}]))
    return cid
got = b""
def read_for(seconds):
    global got
    s.settimeout(seconds)
    try:
        while True:
            d = s.recv(4096)
            if not d:
                raise SystemExit("closed")
            got += d
    except socket.timeout:
        pass
trace = ['Exception in thread "main" java.lang.IllegalStateException: boom',
         "\tat T.f(T.java:2)", "\tat T.main(T.java:4)"]
if len(sys.argv) > 6 and sys.argv[6] == "timeout":  # one frame, the group ends by flush_timeout
    cid = base64.b64encode(os.urandom(12)).decode()
    recs = [[int(time.time()), {"log": l, "source": "stdout", "container_id": "d" * 64,
                                "container_name": "/" + tag}] for l in trace]
    s.sendall(pack([tag, recs, {"chunk": cid}]))
    deadline = time.time() + 60
    while cid.encode() not in got and time.time() < deadline:
        read_for(0.2)
    print(("ok: " if cid.encode() in got else "FAIL: ") + "%s: the frame is acked once its group timed out" % tag)
    sys.exit(0)
ids = []
for i, line in enumerate(trace):
    ids.append(frame(line))
    deadline = time.time() + 60
    while held() < want_held + i + 1:  # the filter has the line
        if time.time() > deadline:
            raise SystemExit("the line was not held")
        time.sleep(0.05)
    read_for(0.3)
    early = [x for x in ids if x.encode() in got]
    print(("FAIL: " if early else "ok: ") + "%s: no ack while %d line(s) held (%d early)" % (tag, i + 1, len(early)))
ids.append(frame("after the trace"))
deadline = time.time() + 60
while not all(x.encode() in got for x in ids) and time.time() < deadline:
    read_for(0.2)
missing = [x for x in ids if x.encode() not in got]
print(("FAIL: " if missing else "ok: ") + "%s: every frame acked once the group ended (%d missing)" % (tag, len(missing)))
PY

log "json-file: a line and the first lines of a trace (held), read in one slice"
wait_metric "$HTTP" 'shipper_filter_records_total{filter="ml",result="held"}' 2 60 ||
    fail "json-file: the trace's lines were not held"
# The offsets store, once written with the container's first line delivered: its offset (the old
# code saved the end of the file here, past the held lines).
saved=0
for _ in $(seq 600); do
    saved=$(awk -v id="$ID" '$1 == id { print $6 }' "$T/state/docker_logs.offsets" 2>/dev/null)
    [ "${saved:-0}" -gt 0 ] && break
    sleep 0.1
done
check_eq "json-file: the saved offset stops at the held trace" "$(head -1 "$LOGF" | wc -c)" "$saved"
check_eq "json-file: run 1 shipped the line before the trace" 1 "$(grep -c "before the trace" "$T/run1.out")"

log "forward: ack delivered, then ack accepted"
H0=$(held)
python3 "$T/client.py" "$ROOT/tests/rigs" "$FP1" "$HTTP" "$P-dl" "$H0" >"$T/fwd1.txt" 2>&1
cat "$T/fwd1.txt"
H0=$(held)
python3 "$T/client.py" "$ROOT/tests/rigs" "$FP2" "$HTTP" "$P-ac" "$H0" >"$T/fwd2.txt" 2>&1
cat "$T/fwd2.txt"
for f in fwd1 fwd2; do
    check "$f: client checks passed" [ "$(grep -c '^ok:' "$T/$f.txt")" = 4 ]
done

log "json-file: SIGKILL while the group is held, the rest of the trace, restart"
kill -9 "$SHIPPER_PID"
wait "$SHIPPER_PID" 2>/dev/null
jline "	at T.main(T.java:4)"
jline "after the trace"
start_shipper run2 -c "$T/cfg.yaml"
wait_ready "$HTTP" || { cat "$T/run2.err"; exit 1; }
for _ in $(seq 600); do grep -q "after the trace" "$T/run2.out" && break; sleep 0.1; done
stop_shipper
check_eq "run 2 exit code" 0 "$SHIPPER_RC"

log "forward with the spool, flush_interval 1h: ack durable and delivered, the group ends by flush_timeout"
HTTP3=127.0.0.1:$(free_port)
FP3=$(free_port)
FP4=$(free_port)
mkdir -p "$T/state3"
cat >"$T/cfg3.yaml" <<CFG
service: {http_listen: "$HTTP3", state_dir: "$T/state3", grace: 5s}
buffer: {spool: true, flush_interval: 1h}
filters:
  - type: multiline
    name: ml
    mode: java
    flush_timeout: 1s
inputs:
  - type: forward
    listen: 127.0.0.1:$FP3
    ack: durable
  - type: forward
    listen: 127.0.0.1:$FP4
    ack: delivered
outputs:
  - type: stdout
CFG
start_shipper run3 -c "$T/cfg3.yaml"
wait_ready "$HTTP3" || { cat "$T/run3.err"; exit 1; }
# (the chunk the group goes to is closed for the ack: with flush_interval 1h nothing else would)
python3 "$T/client.py" "$ROOT/tests/rigs" "$FP3" "$HTTP3" "$P-du" 0 timeout >"$T/fwd3.txt" 2>&1
python3 "$T/client.py" "$ROOT/tests/rigs" "$FP4" "$HTTP3" "$P-de" 0 timeout >"$T/fwd4.txt" 2>&1
cat "$T/fwd3.txt" "$T/fwd4.txt"
for f in fwd3 fwd4; do
    check "$f: client checks passed" [ "$(grep -c '^ok:' "$T/$f.txt")" = 1 ]
done
stop_shipper
check_eq "run 3 exit code" 0 "$SHIPPER_RC"

python3 - "$T" "$P" <<'PY' || FAILS=$((FAILS + 1))
import json, sys
t, p = sys.argv[1:3]
def msgs(run, name):
    out = []
    for line in open("%s/%s.out" % (t, run)):
        d = json.loads(line)
        if d.get("container", {}).get("name") == name:
            out.append(d["message"])
    return out
trace = 'Exception in thread "main" java.lang.IllegalStateException: boom\n\tat T.f(T.java:2)\n\tat T.main(T.java:4)'
bad = 0
def expect(cond, what):
    global bad
    print(("ok: " if cond else "FAIL: ") + what)
    bad += 0 if cond else 1
for tag in ("dl", "ac"):
    got = msgs("run1", "%s-%s" % (p, tag))
    expect(got == [trace, "after the trace"], "forward %s: the trace is one record: %.120r" % (tag, got))
for tag in ("du", "de"):
    got = msgs("run3", "%s-%s" % (p, tag))
    expect(got == [trace], "forward %s (spool): the trace is one record: %.120r" % (tag, got))
jf = msgs("run1", p + "-jf") + msgs("run2", p + "-jf")
expect(jf == ["before the trace", trace, "after the trace"],
       "json-file across SIGKILL: the trace once and whole, nothing twice: %.200r" % jf)
sys.exit(1 if bad else 0)
PY
finish
