#!/usr/bin/env bash
# The forward output → a real Fluent Bit's forward input (FLUENT_BIT=/path/to/fluent-bit; SKIP
# without it): four outputs of one shipper, each to its own Fluent Bit listener: plain, gzip,
# shared_key, shared_key + gzip (require_ack on in all: Fluent Bit answers the chunk option).
# Fluent Bit prints what it gets as JSON lines; every record arrives once per output, and the
# shipper's per-server ack counters match the chunks it sent.
. "$(dirname "$0")/lib.sh"
need_fluent_bit
cd "$T" || exit 1
N=3000
P1=$(free_port); P2=$(free_port); P3=$(free_port); P4=$(free_port)
IN=$(free_port); H=$(free_port); FBH=$(free_port)
cat >fb.conf <<CONF
[SERVICE]
    Flush 0.2
    Log_Level info
    Grace 1
    HTTP_Server Off
[INPUT]
    Name forward
    Listen 127.0.0.1
    Port $P1
    Tag_Prefix plain.
[INPUT]
    Name forward
    Listen 127.0.0.1
    Port $P2
    Tag_Prefix gzip.
[INPUT]
    Name forward
    Listen 127.0.0.1
    Port $P3
    Tag_Prefix key.
    Shared_Key fb-key
    Self_Hostname fluent-bit-test
[INPUT]
    Name forward
    Listen 127.0.0.1
    Port $P4
    Tag_Prefix keygz.
    Shared_Key fb-key
    Self_Hostname fluent-bit-test
[OUTPUT]
    Name stdout
    Match *
    Format json_lines
CONF
"$FB" -c fb.conf >fb.out 2>fb.err &
FB_PID=$!
bg_pid $FB_PID
# Ready once it says so for all four (a probe connection would fail its handshake: logged).
for _ in $(seq 100); do [ "$(grep -c 'listening on 127.0.0.1' fb.err)" -ge 4 ] && break; sleep 0.1; done
cat >s.yaml <<YAML
service: {http_listen: "127.0.0.1:$H"}
buffer: {flush_interval: 200ms, chunk_size: 16KiB}
inputs:
  - {type: forward, listen: "127.0.0.1:$IN"}
outputs:
  - {type: forward, name: plain, servers: ["127.0.0.1:$P1"]}
  - {type: forward, name: gzip, servers: ["127.0.0.1:$P2"], compression: gzip}
  - {type: forward, name: key, servers: ["127.0.0.1:$P3"], shared_key: fb-key}
  - {type: forward, name: keygz, servers: ["127.0.0.1:$P4"], shared_key: fb-key, compression: gzip}
YAML
start_shipper s -c s.yaml
wait_ready "127.0.0.1:$H" || exit 1
python3 "$ROOT/tests/integration/fwd_client.py" send --addr "127.0.0.1:$IN" --count $N --mode message \
    >/dev/null || fail "client"
for o in plain gzip key keygz; do
    wait_metric "127.0.0.1:$H" "shipper_output_records_total{output=\"$o\",result=\"delivered\"}" $N 30 ||
        fail "$o: not every record acked by Fluent Bit"
done
sleep 1
# Fluent Bit's json_lines has no tag: count by what each listener got from its own log line.
python3 - fb.out "$N" <<'PY' || FAILS=$((FAILS + 1))
import json, sys, collections
n = int(sys.argv[2])
c = collections.Counter()
bad = 0
for line in open(sys.argv[1], errors="replace"):
    line = line.strip()
    if not line.startswith("{"):
        continue
    d = json.loads(line)
    if not d.get("log", "").startswith("seq="):
        continue
    if d.get("source") != "stdout" or d.get("container_name") != "fwd-test" or len(d.get("container_id", "")) != 64:
        bad += 1
    c[d["seq"]] += 1
ok = len(c) == n and all(v == 4 for v in c.values()) and bad == 0
print(("ok" if ok else "FAIL") + ": every record reached Fluent Bit once per output (%d distinct, counts %s, %d without their fields)"
      % (len(c), sorted(set(c.values())), bad))
sys.exit(0 if ok else 1)
PY
for o in plain gzip key keygz; do
    s=$(curl -sf "http://127.0.0.1:$H/metrics")
    chunks=$(echo "$s" | awk -v o="$o" '$1 ~ "^shipper_forward_output_server_chunks_total\\{output=\""o"\"" {print $2}')
    acks=$(echo "$s" | awk -v o="$o" '$1 ~ "^shipper_forward_output_server_acks_total\\{output=\""o"\"" {print $2}')
    check "$o: Fluent Bit acked every chunk ($acks of $chunks)" test "${acks:-0}" -ge 1 -a "${acks:-0}" = "${chunks:--1}"
done
check "Fluent Bit logged no error" bash -c "! grep -i '\[error\]' '$T/fb.err' '$T/fb.out'"
check "shipper logged no warning" bash -c "! grep -E ' (warn|error) ' '$T/s.err'"
stop_shipper
finish
