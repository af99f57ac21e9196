#!/usr/bin/env bash
# Never lose an accepted record, with Elasticsearch as the output:
#  1. SIGKILL mid-flood (spool on, ack: durable), restart: every acked record is indexed, and
#     exactly once (the spool replays; deterministic _ids turn repeats into 409s).
#  2. Docker containers with fluentd-request-ack=true through an Elasticsearch outage and a 429
#     storm: every container finishes while Elasticsearch is still down (acks come from the
#     spool; it comes back only after, on command), the first requests after it are the storm,
#     and every line is indexed exactly once.
# Reports sent / delivered / lost and asserts lost = 0.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/es_lib.sh"
FC="python3 $ROOT/tests/integration/fwd_client.py"
start_emu es
P=$(free_port); H=$(free_port)
cat >"$T/s.yaml" <<YAML
service:
  http_listen: 127.0.0.1:$H
  state_dir: $T/state
  grace: 3s
buffer:
  spool: true
  chunk_size: 128KiB
  flush_interval: 200ms
  retry_min: 100ms
inputs:
  - type: forward
    listen: 127.0.0.1:$P
    ack: durable
outputs:
  - type: elasticsearch
    url: http://127.0.0.1:$EMU_PORT
    index: faults
    retry_max: 1s
YAML

log "1. SIGKILL mid-flood with ack: durable, restart"
start_shipper a -c "$T/s.yaml"; wait_ready "127.0.0.1:$H" || exit 1
# Elasticsearch down during the flood: every acked record is in the spool only (forced, not
# timed: a slow emulator let shipper index everything before the kill on a quiet machine).
emu POST /_emulator/down '{"seconds": 600}' >/dev/null
$FC send --addr "127.0.0.1:$P" --mode forward --batch 100 --count 100000 --ack --progress \
    --tag fault >"$T/client.log" 2>&1 &
CLIENT=$!
for _ in $(seq 150); do [ "$(tail -1 "$T/client.log" | awk '{print $2}')" -ge 20000 ] 2>/dev/null && break; sleep 0.1; done
kill -9 "$SHIPPER_PID"; wait "$SHIPPER_PID" 2>/dev/null
wait $CLIENT 2>/dev/null
acked=$(grep acked "$T/client.log" | tail -1 | awk '{print $2}')
before=$(emu_count faults)
echo "killed with $acked records acked, $before indexed"
check "some acked records were not yet indexed at the kill (a real test)" [ "$before" -lt "$acked" ]
emu POST /_emulator/up >/dev/null
start_shipper b -c "$T/s.yaml"; wait_ready "127.0.0.1:$H" || exit 1
wait_count "$acked" faults 60
stop_shipper
emu GET "/_emulator/docs?index=faults" >"$T/docs.json"
python3 - "$T/docs.json" "$acked" <<'PY' || FAILS=$((FAILS + 1))
import json, sys
docs = json.load(open(sys.argv[1])); acked = int(sys.argv[2])
seqs = [d["_source"]["seq"] for d in docs]
have = set(seqs)
lost = [s for s in range(acked) if s not in have]
dup = len(seqs) - len(have)
print("sent/acked %d, indexed %d (unique %d), lost %d, duplicates %d" % (acked, len(seqs), len(have), len(lost), dup))
ok = not lost and dup == 0
print(("ok: " if ok else "FAIL: ") + "every acked record indexed exactly once after SIGKILL")
sys.exit(0 if ok else 1)
PY
c=$(emu_stat '["conflicts"]')
echo "replayed bulk items answered 409 (deduplicated by _id): $c"

log "2. Docker with fluentd-request-ack through an outage and a 429 storm"
need_docker
emu POST /_emulator/reset >/dev/null
start_shipper c -c "$T/s.yaml"; wait_ready "127.0.0.1:$H" || exit 1
emu POST /_emulator/down '{"seconds": 600}' >/dev/null # up again only on command, below
N=400
for i in 1 2 3; do
    name=fault-ack-$$-$i; track_container "$name"
    docker run -d --name "$name" --network none --read-only --log-driver=fluentd \
        --log-opt "fluentd-address=127.0.0.1:$P" --log-opt fluentd-request-ack=true \
        --log-opt tag=docker.fault --log-opt cache-disabled=true "$IMAGE" \
        sh -c "i=0; while [ \$i -lt $N ]; do echo \"$i-\$i\"; i=\$((i+1)); done" >/dev/null
done
for i in 1 2 3; do
    timeout 60 docker wait "fault-ack-$$-$i" >/dev/null && ok "container $i finished while Elasticsearch was down (acks from the spool)" ||
        fail "container $i blocked"
done
check_eq "nothing indexed while Elasticsearch was down" 0 "$(emu_count faults)"
emu POST /_emulator/faults '{"request_status": [429, 429, 429, 429, 503, 503], "item_status_every": {"n": 7, "status": 429}}' >/dev/null
emu POST /_emulator/up >/dev/null
wait_count $((3 * N)) faults 60
by=$(emu_stat '["requests_by_status"]')
check "the storm hit shipper: 4 requests answered 429 and 2 answered 503 ($by)" python3 -c '
import ast, sys; by = ast.literal_eval(sys.argv[1])
sys.exit(0 if by.get("429", by.get(429)) == 4 and by.get("503", by.get(503)) == 2 else 1)' "$by"
emu DELETE /_emulator/faults >/dev/null
sleep 1
stop_shipper
emu GET "/_emulator/docs?index=faults" >"$T/docs2.json"
python3 - "$T/docs2.json" "$N" <<'PY' || FAILS=$((FAILS + 1))
import json, sys
docs = json.load(open(sys.argv[1])); n = int(sys.argv[2])
msgs = [d["_source"]["message"] for d in docs]
want = {"%d-%d" % (c, i) for c in (1, 2, 3) for i in range(n)}
lost = want - set(msgs)
dup = len(msgs) - len(set(msgs))
print("sent %d, indexed %d, lost %d, duplicates %d" % (len(want), len(msgs), len(lost), dup))
ok = not lost and dup == 0
print(("ok: " if ok else "FAIL: ") + "every line through the outage indexed exactly once")
sys.exit(0 if ok else 1)
PY
finish
