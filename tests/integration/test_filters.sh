#!/usr/bin/env bash
# The filter stage against real Docker containers (fluentd driver into the forward input, and
# json-file read by docker_logs), documents on the stdout output (docs/filters.md):
# parse json (fields at the top level, a colliding key prefixed with "_", a line that is not JSON
# passes unchanged and is counted), parse logfmt from json-file under `into` without the original,
# parse regex (named groups), modify (add from ${ENV}, rename, remove), select drops a container by
# name glob, redact masks an e-mail address, a Luhn-valid card number and a bearer token (and
# leaves a number that fails Luhn alone), throttle drops a burst above rate (counted, and summary
# records say how many); parse's time_key and level_key (the record's @timestamp from the line,
# its level normalised; a time that does not read counted and kept); select by the container's
# image and labels (metadata from Docker's config.v2.json) through both inputs.
. "$(dirname "$0")/lib.sh"
need_docker

P="flt$$"
FP=$(free_port)
HTTP=127.0.0.1:$(free_port)
export FLT_ENV=prod-$$
cat >"$T/cfg.yaml" <<CFG
service: {http_listen: "$HTTP", grace: 5s}
buffer: {flush_interval: 200ms}
filters:
  - type: select
    name: quiet
    exclude: {container.name: "$P-noisy*"}
  - type: parse
    name: json
    match: "*.$P-json*"
    format: json
  - type: modify
    match: "*.$P-json*"
    add: {env: "\${FLT_ENV}"}
    rename: {lvl: level}
    remove: [secret]
  - type: select
    name: bylabel
    match: "*.$P-lab*"
    exclude: {container.labels.shipper.test: "drop-*"}
  - type: select
    name: byimage
    match: "*.$P-lab*"
    include: {container.image.name: "$IMAGE"}
  - type: parse
    name: tl
    match: "*.$P-tl*"
    time_key: time
    level_key: severity
  - type: parse
    name: kv
    match: "docker.$P-kv*"
    format: logfmt
    into: kv
    keep_original: false
  - type: parse
    name: rx
    match: "*.$P-rx*"
    format: regex
    pattern: '^(?<method>[A-Z]+) (?<path>\S+) (?<status>\d+)$'
  - type: redact
    match: "*.$P-pii*"
    builtins: [email, card, bearer]
  - type: throttle
    match: "*.$P-burst*"
    key: container.id
    rate: 1/s
    burst: 50
    action: drop
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

"$SHIPPER" --check -c "$T/cfg.yaml" >"$T/check.out" 2>&1
check "--check accepts the filters" [ $? = 0 ]
check "--check prints the filters" grep -q "type: throttle" "$T/check.out"

start_shipper s -c "$T/cfg.yaml"
wait_ready "$HTTP" || { cat "$T/s.err"; exit 1; }

fwd() { # NAME COMMAND: a container logging through the fluentd driver
    track_container "$P-$1"
    # shellcheck disable=SC2086 # EXTRA: more docker run flags, word-split
    docker run -d --name "$P-$1" --network none ${EXTRA:-} --log-driver=fluentd \
        --log-opt "fluentd-address=127.0.0.1:$FP" --log-opt "tag=fwd.{{.Name}}" \
        "$IMAGE" sh -c "$2" >/dev/null || fail "docker run $1"
}
jf() { # NAME COMMAND: a container logging to json-file
    track_container "$P-$1"
    # shellcheck disable=SC2086
    docker run -d --name "$P-$1" --network none ${EXTRA:-} "$IMAGE" sh -c "$2" >/dev/null ||
        fail "docker run $1"
}
fwd json "echo '{\"lvl\":\"info\",\"msg\":\"hello\",\"user\":{\"id\":7,\"roles\":[\"a\",\"b\"]},\"message\":\"inner\",\"secret\":\"s3\"}'; echo 'not json at all'; echo '{\"a\":1,\"a\":2}'"
jf kv "echo 'level=warn msg=\"disk full\" code=42 flag'"
fwd rx "echo 'GET /index.html 200'; echo 'nope'"
fwd noisy "i=0; while [ \$i -lt 100 ]; do echo noise \$i; i=\$((i+1)); done"
fwd pii "echo 'mail bob.smith@example.com card 4111 1111 1111 1111 other 1234 5678 9012 3456 auth: Bearer abc.DEF-123'"
fwd burst "i=0; while [ \$i -lt 500 ]; do echo burst \$i; i=\$((i+1)); done"
fwd after "echo after-all"
EXTRA="--label shipper.test=drop-me" fwd lab-drop "echo lab-drop-line"
EXTRA="--label shipper.test=keep-me" fwd lab-keep "echo lab-keep-line"
EXTRA="--label shipper.test=drop-too" jf labjf-drop "echo labjf-drop-line"
fwd tl "echo '{\"time\":\"2026-11-29T06:09:33.250+02:00\",\"severity\":\"WARNING\",\"msg\":\"t1\"}'; echo '{\"time\":\"soon\",\"severity\":50,\"msg\":\"t2\"}'"

for c in json kv rx noisy pii burst after tl lab-drop lab-keep labjf-drop; do
    timeout 120 docker wait "$P-$c" >/dev/null || fail "container $c did not finish"
done
wait_metric "$HTTP" 'shipper_filter_records_total{filter="quiet",result="dropped"}' 100 30 ||
    fail "select did not drop the noisy container"
wait_metric "$HTTP" 'shipper_filter_records_total{filter="throttle",result="dropped"}' 400 30 ||
    fail "throttle did not drop the burst"
wait_metric "$HTTP" 'shipper_filter_records_total{filter="bylabel",result="dropped"}' 2 30 ||
    fail "select did not drop the containers labelled drop-*"
wait_metric "$HTTP" 'shipper_filter_records_total{filter="json",result="unparsed"}' 1 30 ||
    fail "parse json did not count the line that is not JSON"
for _ in $(seq 100); do
    grep -q '"kv":' "$T/s.out" && grep -q after-all "$T/s.out" && grep -q '"t2"' "$T/s.out" &&
        grep -q lab-keep-line "$T/s.out" && break
    sleep 0.2
done
sleep 1.5 # one throttle window: its summary record
curl -sf "http://$HTTP/metrics" >"$T/metrics"
stop_shipper
check_eq "shipper exit code on SIGTERM" 0 "$SHIPPER_RC"
grep shipper_filter "$T/metrics"

python3 - "$T/s.out" "$P" "$FLT_ENV" "$T/metrics" <<'PY' || FAILS=$((FAILS + 1))
import json, sys
path, p, env, mpath = sys.argv[1:5]
docs = [json.loads(l) for l in open(path)]
metrics = {}
for l in open(mpath):
    if l.startswith("shipper_filter"):
        k, v = l.rsplit(" ", 1)
        metrics[k] = float(v)
by = {}
for d in docs:
    by.setdefault(d.get("container", {}).get("name"), []).append(d)
bad = 0
def expect(cond, what):
    global bad
    print(("ok: " if cond else "FAIL: ") + what)
    bad += 0 if cond else 1
j = by.get(p + "-json", [])
expect(len(j) == 3, "json container: 3 documents (got %d)" % len(j))
if len(j) == 3:
    d = j[0]
    expect(d.get("level") == "info" and d.get("msg") == "hello", "json fields at the top level, lvl renamed to level: %s" % d)
    expect(d.get("user") == {"id": 7, "roles": ["a", "b"]}, "nested object and array kept as such")
    expect(d.get("_message") == "inner" and d["message"].startswith('{"lvl"'), "colliding key message -> _message, original kept")
    expect("secret" not in d and d.get("env") == env, "modify: secret removed, env added from ${FLT_ENV}")
    expect(j[1]["message"] == "not json at all" and "msg" not in j[1], "a line that is not JSON passes unchanged")
    expect(j[2].get("a") == 2 and list(j[2]).count("a") == 1, "duplicate keys: the last one wins")
k = by.get(p + "-kv", [])
expect(len(k) == 1 and k[0].get("kv") == {"level": "warn", "msg": "disk full", "code": "42", "flag": True}
       and "message" not in k[0], "logfmt under kv, original dropped: %s" % k)
r = by.get(p + "-rx", [])
expect(len(r) == 2 and r[0].get("method") == "GET" and r[0].get("path") == "/index.html" and r[0].get("status") == "200",
       "regex named groups: %s" % r[:1])
expect(len(r) == 2 and "method" not in r[1] and r[1]["message"] == "nope", "regex: a line that does not match passes")
expect(p + "-noisy" not in by, "select: the noisy container is dropped")
pii = by.get(p + "-pii", [])
m = pii[0]["message"] if pii else ""
expect("bob.smith@example.com" not in m and "4111 1111 1111 1111" not in m and "abc.DEF-123" not in m
       and m.count("[REDACTED]") == 3 and "1234 5678 9012 3456" in m and "Bearer [REDACTED]" in m, "redact: %s" % m)
b = by.get(p + "-burst", [])
kept = [d for d in b if d.get("message", "").startswith("burst ")]
summ = [d for d in b if "throttle" in d]
dropped = metrics.get('shipper_filter_records_total{filter="throttle",result="dropped"}', 0)
expect(50 <= len(kept) <= 60 and len(kept) + dropped == 500, "throttle: burst 50 + 1/s kept (%d), the rest dropped (%d)" % (len(kept), dropped))
expect([d["message"] for d in kept[:50]] == ["burst %d" % i for i in range(50)], "throttle keeps the first burst in order")
expect(summ and sum(d["throttle"]["dropped"] for d in summ) == dropped, "summary records count the drops: %s" % [d.get("throttle") for d in summ])
expect(len(by.get(p + "-after", [])) == 1, "a container no filter matches passes")
tl = by.get(p + "-tl", [])
expect(len(tl) == 2 and tl[0].get("@timestamp") == "2026-11-29T04:09:33.250Z" and "time" not in tl[0]
       and tl[0].get("severity") == "warn", "time_key sets @timestamp (UTC, the digits that came), level_key normalises: %s" % tl[:1])
expect(len(tl) == 2 and tl[1].get("time") == "soon" and tl[1].get("severity") == "error"
       and tl[1]["@timestamp"].startswith(("2026-", "2027-", "2028-")) and tl[1]["@timestamp"] != "2026-11-29T04:09:33.250Z",
       "a time that does not read is kept, the record keeps Docker's time; pino's 50 is error: %s" % tl[1:])
expect(metrics.get('shipper_filter_records_total{filter="tl",result="time_unparsed"}') == 1, "time_unparsed counted")
lk = by.get(p + "-lab-keep", [])
expect(len(lk) == 1 and lk[0]["container"].get("labels", {}).get("shipper.test") == "keep-me"
       and p + "-lab-drop" not in by and p + "-labjf-drop" not in by,
       "select by label: drop-* dropped (forward and json-file), keep-me kept: %s" % lk)
expect(metrics.get('shipper_filter_records_total{filter="bylabel",result="dropped"}') == 2
       and metrics.get('shipper_filter_records_total{filter="byimage",result="kept"}') == 1
       and metrics.get('shipper_filter_records_total{filter="byimage",result="dropped"}') == 0,
       "select by image: the container's image matched")
sys.exit(1 if bad else 0)
PY
finish
