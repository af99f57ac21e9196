#!/usr/bin/env bash
# Lines cut at max_line_size into more than 128 pieces, from both inputs, reach Elasticsearch
# whole: every piece has its own _id (a duplicate id gets 409, which counts as delivered, and
# the piece would be lost without a trace), and the pieces put back together are the line.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/es_lib.sh"

start_emu e
P=$(free_port); H=$(free_port); M="127.0.0.1:$H"; OUT='{output="elasticsearch"'
C=$T/containers; X=$(printf 'a%.0s' $(seq 64))
mkdir -p "$C/$X"
printf '{"Name":"/long","Config":{"Image":"img:1","Labels":{}}}\n' >"$C/$X/config.v2.json"
cat >"$T/s.yaml" <<YAML
service: {http_listen: "127.0.0.1:$H"}
buffer: {flush_interval: 200ms}
inputs:
  - {type: forward, listen: "127.0.0.1:$P", max_line_size: 1KiB}
  - {type: docker_logs, path: "$C", poll_interval: 50ms, read_from: start, max_line_size: 1KiB}
outputs:
  - type: elasticsearch
    url: ["http://127.0.0.1:$EMU_PORT"]
    index: long
YAML
start_shipper s -c "$T/s.yaml"
wait_ready "$M" || exit 1

log "forward: one 300 KiB line (a whole record) and one Docker partial line of 3 x 100 KiB"
ROOT=$ROOT python3 - "127.0.0.1:$P" <<'PY' || fail "send"
import os, sys, time
sys.path.insert(0, os.environ["ROOT"] + "/tests/integration")
from fwd_client import connect, pack, read_ack
s = connect(sys.argv[1])
t = int(time.time())
cid = "f" * 64
whole = "".join("w%07d" % i for i in range(300 * 128))  # 300 KiB: 300 pieces of 1 KiB
s.sendall(pack(["fwd.whole", [[t, {"log": whole, "container_id": cid, "source": "stdout"}]],
                {"chunk": "d2hvbGU="}]))
read_ack(s, "d2hvbGU=")
part = "".join("p%07d" % i for i in range(300 * 128))
pieces = [part[i * 102400:(i + 1) * 102400] for i in range(3)]
entries = [[t, {"log": p, "container_id": cid, "source": "stdout", "partial_message": "true",
                "partial_id": "pid1", "partial_ordinal": str(k + 1),
                "partial_last": "true" if k == 2 else "false"}] for k, p in enumerate(pieces)]
s.sendall(pack(["fwd.partial", entries, {"chunk": "cGFydGlhbA=="}]))
read_ack(s, "cGFydGlhbA==")
s.close()
PY

log "json-file: one line Docker split into 300 partial lines of 1 KiB"
python3 - "$C/$X/$X-json.log" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(300):
        last = i == 299
        f.write(json.dumps({"log": "".join("j%07d" % (i * 128 + k) for k in range(128)) + ("\n" if last else ""),
                            "stream": "stdout", "time": "2026-11-29T04:09:33.%09dZ" % i}) + "\n")
PY

# a 409 counts as delivered: wait for the outputs' count, then look at what is stored
wait_metric "$M" "shipper_output_records_total${OUT},result=\"delivered\"}" 900 30 || fail "delivered"
check_eq "documents stored" 900 "$(emu_count long)"
emu GET "/_emulator/docs?index=long" >"$T/docs.json"
check_eq "409 conflicts (duplicate ids)" 0 "$(emu_stat '["conflicts"]')"
python3 - "$T/docs.json" <<'PY' || FAILS=$((FAILS + 1))
import json, sys
docs = json.load(open(sys.argv[1]))
ok = True
def line(prefix, n):
    return "".join("%s%07d" % (prefix, i) for i in range(n))
for name, prefix, want in (("forward whole record", "w", 300), ("forward partial line", "p", 300),
                           ("json-file partial line", "j", 300)):
    ds = [d for d in docs if d["_source"]["message"].startswith(prefix)]
    ids = {d["_id"] for d in ds}
    # each piece holds whole numbered 8-byte tokens, so sorted pieces put the line back together
    text = "".join(sorted(d["_source"]["message"] for d in ds))
    good = len(ds) == want and len(ids) == want and text == line(prefix, 300 * 128)
    print(("ok: " if good else "FAIL: ") + "%s: %d pieces, %d distinct ids, all the text" % (name, len(ds), len(ids)))
    ok = ok and good
sys.exit(0 if ok else 1)
PY
check_eq "json-file pieces flagged split" 299 "$(metric "$M" 'shipper_tail_split_lines_total{input="docker_logs"}')"
stop_shipper
check_eq "shipper exit code" 0 "$SHIPPER_RC"
finish
