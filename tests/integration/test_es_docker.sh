#!/usr/bin/env bash
# End to end: real dockerd → --log-driver=fluentd → shipper (quick flags) → Elasticsearch
# emulator with injected faults. Every line is indexed exactly once, in the document shape.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/es_lib.sh"
need_docker

start_emu e
emu POST /_emulator/faults '{"request_status": [503, 429], "item_status_every": {"n": 9, "status": 429}}' >/dev/null
P=$(free_port); H=$(free_port); M="127.0.0.1:$H"
start_shipper s --forward "127.0.0.1:$P" --es "http://127.0.0.1:$EMU_PORT" --http "$M"
wait_ready "$M" || exit 1
NAME=es-e2e-$$
track_container "$NAME"
timeout 120 docker run --rm --name "$NAME" --network none --read-only --log-driver=fluentd \
    --log-opt "fluentd-address=127.0.0.1:$P" --log-opt cache-disabled=true "$IMAGE" \
    sh -c 'i=0; while [ $i -lt 2000 ]; do echo line $i; i=$((i+1)); done' >/dev/null || fail "docker run"
wait_count 2000 "logs-*" 60 || fail "records"
emu POST /_emulator/faults '{"truncate_next": 1}' >/dev/null
timeout 60 docker run --rm --name "$NAME-b" --network none --read-only --log-driver=fluentd \
    --log-opt "fluentd-address=127.0.0.1:$P" --log-opt cache-disabled=true "$IMAGE" \
    sh -c 'echo after truncation' >/dev/null || fail "docker run 2"
wait_count 2001 "logs-*" 30 || fail "record after truncation"
sleep 1
emu GET "/_emulator/docs?index=logs-*" >"$T/docs.json"
python3 - "$T/docs.json" "$NAME" <<'PY' || FAILS=$((FAILS + 1))
import json, sys, re
docs = json.load(open(sys.argv[1]))
name = sys.argv[2]
mine = [d for d in docs if d["_source"].get("container", {}).get("name") == name]
msgs = sorted(d["_source"]["message"] for d in mine)
ok = msgs == sorted("line %d" % i for i in range(2000))
print(("ok: " if ok else "FAIL: ") + "2000 lines indexed exactly once (%d docs, %d distinct)" % (len(mine), len(set(msgs))))
s = mine[0]["_source"]
shape = (s["stream"] == "stdout" and len(s["container"]["id"]) == 64 and
         re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$", s["@timestamp"]) and
         re.match(r"^[A-Za-z0-9_-]{22}$", mine[0]["_id"]) and
         mine[0]["_index"] == "logs-" + s["@timestamp"][:10].replace("-", "."))
print(("ok: " if shape else "FAIL: ") + "document shape: " + json.dumps(mine[0])[:300])
sys.exit(0 if ok and shape else 1)
PY
check "whole-request 503 was retried" [ "$(metric "$M" 'shipper_es_requests_total{output="elasticsearch",status="503"}')" -ge 1 ]
check "items were retried" [ "$(metric "$M" 'shipper_es_items_retried_total{output="elasticsearch"}')" -ge 100 ]
stop_shipper
check_eq "shipper exit code" 0 "$SHIPPER_RC"
finish
