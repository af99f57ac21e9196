#!/usr/bin/env bash
# Record times past 9999-12-31T23:59:59Z (a Forward client's integer time can be any uint64; a
# float up to 1e12) are clamped to that second, counted as input error reason "time_clamped",
# and the record is kept: its @timestamp and its daily index name are those of 9999-12-31.
# Before, gmtime_r failed for such times and the index name came from an unset struct tm.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/es_lib.sh"

start_emu e
P=$(free_port); H=$(free_port); M="127.0.0.1:$H"
cat >"$T/s.yaml" <<YAML
service: {http_listen: "127.0.0.1:$H"}
buffer: {flush_interval: 200ms}
inputs:
  - {type: forward, listen: "127.0.0.1:$P"}
outputs:
  - type: elasticsearch
    url: ["http://127.0.0.1:$EMU_PORT"]
    index: "logs-%Y.%m.%d"
  - {type: stdout}
YAML
start_shipper s -c "$T/s.yaml"
wait_ready "$M" || exit 1

log "records with times 2^64-1, 2^63, 10^17, 9999-12-31T23:59:59 + 1, 9.9e11 (float) and a normal one"
ROOT=$ROOT python3 - "127.0.0.1:$P" <<'PY' || fail "send"
import os, struct, sys
sys.path.insert(0, os.environ["ROOT"] + "/tests/integration")
from fwd_client import connect, pack
s = connect(sys.argv[1])
times = [2**64 - 1, 2**63, 10**17, 253402300800, 1764390000]
entries = [[t, {"log": "t%d" % i}] for i, t in enumerate(times)]
frame = pack(["time.test", entries, {"chunk": "dGltZQ=="}])
# a float time (msgpack float64) past year 9999, in its own Message frame
frame += b"\x94" + pack("time.test") + b"\xcb" + struct.pack(">d", 9.9e11) + pack({"log": "t5"}) + pack({"chunk": "ZmxvYXQ="})
s.sendall(frame)
got = b""
while b"dGltZQ==" not in got or b"ZmxvYXQ=" not in got:  # both acks, maybe in one read
    d = s.recv(4096)
    if not d:
        raise SystemExit("connection closed before the acks")
    got += d
s.close()
PY
wait_metric "$M" 'shipper_output_records_total{output="elasticsearch",result="delivered"}' 6 20 ||
    fail "delivered"
check_eq "times clamped (counted)" 5 "$(metric "$M" 'shipper_input_errors_total{input="forward",reason="time_clamped"}')"
check_eq "clamped records in the 9999-12-31 index" 5 "$(emu_count logs-9999.12.31)"
check_eq "the normal record in its own index" 1 "$(emu_count logs-2025.11.29)"
check_eq "no other index" 6 "$(emu_count 'logs-*')"
emu GET "/_emulator/docs?index=logs-9999.12.31" >"$T/docs.json"
check "clamped @timestamp is 9999-12-31T23:59:59Z" python3 -c '
import json, sys
docs = json.load(open(sys.argv[1]))
ts = {d["_source"]["message"]: d["_source"]["@timestamp"] for d in docs}
print(ts)
sys.exit(0 if sorted(ts) == ["t0", "t1", "t2", "t3", "t5"] and
         set(ts.values()) <= {"9999-12-31T23:59:59Z", "9999-12-31T23:59:59.000000000Z"} else 1)' "$T/docs.json"
check "stdout has the same @timestamp" grep -q '"@timestamp":"9999-12-31T23:59:59Z","message":"t0"' "$T/s.out"
stop_shipper
check_eq "shipper exit code" 0 "$SHIPPER_RC"
finish
