#!/usr/bin/env bash
# suite: asan (tests/run.sh also runs it against the ASan+UBSan build)
# A multiline group that spans a json-file rotation survives a SIGKILL (issue #13; docs/filters.md,
# "multiline"; README "Delivery guarantees"). No Docker: a containers directory made by the test,
# rotated the way Docker's json-file driver does it (the file renamed to .1, a new one created).
# The first lines of a Java trace are in the old file, a continuation line and a stderr line (not
# held: its chunk is delivered, so the new file's offset moves) in the new one. Once the offsets
# store was written after the rotation (it must still name the rotated file, before the held
# lines), SIGKILL; the rest of the trace is written; a restart reads the held lines again from
# the rotated file: the trace arrives once and whole, no stdout line twice. (The stderr line is
# read again: a file has one offset, not one per stream; README "Delivery guarantees".)
# Passed on the code before the kafka input's holds too: a guard.
. "$(dirname "$0")/lib.sh"

P="mlr$$"
HTTP=127.0.0.1:$(free_port)
C=$T/containers
ID=$(printf 'f%.0s' $(seq 64))
mkdir -p "$C/$ID" "$T/state"
printf '{"Name":"/%s","Config":{"Image":"img","Labels":{}}}\n' "$P" >"$C/$ID/config.v2.json"
LOGF=$C/$ID/$ID-json.log
STORE=$T/state/docker_logs.offsets
: >"$LOGF"
jline() { # STREAM TEXT: one line in Docker's json-file format
    python3 -c 'import json, sys, time
print(json.dumps({"log": sys.argv[2] + "\n", "stream": sys.argv[1],
                  "time": time.strftime("%Y-%m-%dT%H:%M:%S.000000001Z", time.gmtime())}))' "$1" "$2" >>"$LOGF"
}
cat >"$T/cfg.yaml" <<CFG
service: {http_listen: "$HTTP", state_dir: "$T/state", grace: 5s}
buffer: {flush_interval: 100ms}
filters:
  - {type: multiline, name: ml, mode: java, flush_timeout: 1h}
inputs:
  - {type: docker_logs, path: $C, read_from: start, poll_interval: 50ms}
outputs:
  - type: stdout
CFG
HELD='shipper_filter_records_total{filter="ml",result="held"}'

jline stdout "before the trace"
jline stdout 'Exception in thread "main" java.lang.IllegalStateException: boom'
jline stdout "	at T.f(T.java:2)"
INO1=$(stat -c %i "$LOGF")
start_shipper run1 -c "$T/cfg.yaml"
wait_ready "$HTTP" || { cat "$T/run1.err"; exit 1; }
wait_metric "$HTTP" "$HELD" 2 60 || fail "the trace's first lines were not held"
for _ in $(seq 600); do grep -q "before the trace" "$T/run1.out" && break; sleep 0.1; done

log "rotation: the file renamed to .1, a new one with a continuation line and a stderr line"
touch "$T/mark"
mv "$LOGF" "$LOGF.1"
: >"$LOGF"
jline stdout "	at T.g(T.java:3)"
jline stderr "a stderr line"
wait_metric "$HTTP" "$HELD" 3 60 || fail "the continuation line in the new file was not held"
for _ in $(seq 600); do grep -q "a stderr line" "$T/run1.out" && break; sleep 0.1; done
check_eq "run 1 shipped the stderr line" 1 "$(grep -c "a stderr line" "$T/run1.out")"
# The offsets store written since the rotation (the new file makes it dirty; rewritten once a
# second at most while something moves, so usually after the stderr line's delivery too).
for _ in $(seq 300); do [ "$STORE" -nt "$T/mark" ] && break; sleep 0.1; done
check "the offsets store was written after the rotation" [ "$STORE" -nt "$T/mark" ]
saved=$(awk -v id="$ID" '$1 == id { print $3, $6 }' "$STORE")
check_eq "the saved offset stays in the rotated file, before the held trace" \
    "$INO1 $(head -1 "$LOGF.1" | wc -c)" "$saved"

log "SIGKILL while the group spans the rotation; the rest of the trace; restart"
kill -9 "$SHIPPER_PID"
wait "$SHIPPER_PID" 2>/dev/null
jline stdout "	at T.main(T.java:4)"
jline stdout "after the trace"
start_shipper run2 -c "$T/cfg.yaml"
wait_ready "$HTTP" || { cat "$T/run2.err"; exit 1; }
for _ in $(seq 600); do grep -q "after the trace" "$T/run2.out" && break; sleep 0.1; done
stop_shipper
check_eq "run 2 exit code" 0 "$SHIPPER_RC"

python3 - "$T" "$P" <<'PY' || FAILS=$((FAILS + 1))
import json, sys
t, p = sys.argv[1:3]
got = []
for run in ("run1", "run2"):
    for line in open("%s/%s.out" % (t, run)):
        d = json.loads(line)
        if d.get("container", {}).get("name") == p:
            got.append((d["stream"], d["message"]))
trace = ('Exception in thread "main" java.lang.IllegalStateException: boom\n\tat T.f(T.java:2)\n'
         '\tat T.g(T.java:3)\n\tat T.main(T.java:4)')
out = [m for s, m in got if s == "stdout"]
err = [m for s, m in got if s == "stderr"]
ok = out == ["before the trace", trace, "after the trace"]
print(("ok: " if ok else "FAIL: ") +
      "across the rotation and SIGKILL: the trace once and whole, no stdout line twice: %.400r" % out)
ok2 = len(err) >= 1 and set(err) == {"a stderr line"}
print(("ok: " if ok2 else "FAIL: ") + "the stderr line shipped (%d times)" % len(err))
sys.exit(0 if ok and ok2 else 1)
PY
finish
