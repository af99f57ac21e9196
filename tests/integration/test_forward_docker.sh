#!/usr/bin/env bash
# Real dockerd → --log-driver=fluentd → shipper (TCP and Unix socket) → stdout JSON lines.
# Checks: every line once and in order, stderr keeps its stream, a 40,000-byte line arrives
# joined, sub-second precision gives nanoseconds, request-ack works, labels/env kept.
. "$(dirname "$0")/lib.sh"
need_docker

P=$(free_port); H=$(free_port); SOCK="$T/fwd.sock"
start_shipper s --forward "127.0.0.1:$P" --forward "unix://$SOCK" --stdout --http "127.0.0.1:$H"
wait_ready "127.0.0.1:$H" || exit 1
check "unix socket mode is 0660" [ "$(stat -c %a "$SOCK")" = 660 ]

run() { # NAME ADDRESS EXTRA-LOG-OPTS... -- COMMAND
    local name=$1 addr=$2; shift 2
    local opts=()
    while [ "$1" != "--" ]; do opts+=(--log-opt "$1"); shift; done; shift
    track_container "$name"
    docker run -d --name "$name" --network none --read-only --log-driver=fluentd \
        --log-opt "fluentd-address=$addr" --log-opt "tag=test.{{.Name}}" "${opts[@]}" \
        --label app=web -e APP_ENV=prod "$IMAGE" sh -c "$*" >/dev/null
}
N=3000
run fwd-order-$$ "127.0.0.1:$P" cache-disabled=true -- \
    "i=0; while [ \$i -lt $N ]; do echo \"line \$i\"; if [ \$((i % 100)) = 0 ]; then echo \"err \$i\" >&2; fi; i=\$((i+1)); done"
run fwd-long-$$ "127.0.0.1:$P" fluentd-sub-second-precision=true labels=app env=APP_ENV -- \
    "echo before; head -c 40000 /dev/zero | tr '\\0' a; echo; echo after"
run fwd-ack-$$ "127.0.0.1:$P" fluentd-request-ack=true -- \
    "i=0; while [ \$i -lt 200 ]; do echo \"ack \$i\"; i=\$((i+1)); done"
run fwd-unix-$$ "unix://$SOCK" -- "i=0; while [ \$i -lt 500 ]; do echo \"unix \$i\"; i=\$((i+1)); done"

for c in fwd-order-$$ fwd-long-$$ fwd-ack-$$ fwd-unix-$$; do
    timeout 120 docker wait "$c" >/dev/null || fail "container $c did not finish"
done
want=$((N + N / 100 + 3 + 200 + 500))
wait_metric "127.0.0.1:$H" 'shipper_output_records_total{output="stdout",result="delivered"}' "$want" 30 || fail "not all records delivered"
stop_shipper
check_eq "shipper exit code on SIGTERM" 0 "$SHIPPER_RC"

python3 - "$T/s.out" "$$" "$N" <<'PY' || FAILS=$((FAILS + 1))
import json, sys
path, pid, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
docs = [json.loads(l) for l in open(path)]
by = {}
for d in docs:
    by.setdefault(d["container"]["name"], []).append(d)
bad = 0
def expect(cond, what):
    global bad
    print(("ok: " if cond else "FAIL: ") + what)
    bad += 0 if cond else 1
o = by.get("fwd-order-" + pid, [])
out = [d["message"] for d in o if d["stream"] == "stdout"]
err = [d["message"] for d in o if d["stream"] == "stderr"]
expect(out == ["line %d" % i for i in range(n)], "%d stdout lines once and in order (got %d)" % (n, len(out)))
expect(err == ["err %d" % i for i in range(0, n, 100)], "stderr lines keep their stream (got %d)" % len(err))
d0 = o[0]
expect(len(d0["container"]["id"]) == 64 and d0["tag"] == "test.fwd-order-" + pid, "container id and tag")
expect(d0["@timestamp"].endswith("Z") and "T" in d0["@timestamp"], "RFC 3339 timestamp")
l = by.get("fwd-long-" + pid, [])
msgs = [d["message"] for d in l]
expect(msgs == ["before", "a" * 40000, "after"], "40,000-byte line arrives joined (lengths %s)" % [len(m) for m in msgs])
frac = l[0]["@timestamp"].split(".")[1] if l and "." in l[0]["@timestamp"] else ""
expect(len(frac) == 10 and frac.endswith("Z"), "sub-second precision: nanoseconds (%s)" % (l[0]["@timestamp"] if l else None))
expect(l and l[0].get("app") == "web" and l[0].get("APP_ENV") == "prod", "--log-opt labels= and env= keys kept")
expect(all("partial_message" not in d for d in l), "partial_* fields are not in documents")
a = [d["message"] for d in by.get("fwd-ack-" + pid, [])]
expect(a == ["ack %d" % i for i in range(200)], "fluentd-request-ack=true: 200 lines in order (got %d)" % len(a))
u = [d["message"] for d in by.get("fwd-unix-" + pid, [])]
expect(u == ["unix %d" % i for i in range(500)], "unix socket: 500 lines in order (got %d)" % len(u))
sys.exit(1 if bad else 0)
PY
finish
