#!/usr/bin/env bash
# Shows why tests/chaos/chaos.py injects no retriable produce errors into the Kafka mock: with
# them, librdkafka 2.0.2's mock cluster acknowledges messages it never stores, whoever produces
# them. kcat alone (idempotent, acks=all) sends 4,000 messages of 300 bytes, 4 every 50 ms, to a
# 16-partition topic while `errors produce 19 ERR` is injected every 2 s; then the topic is read
# back. kcat reports no delivery failure, yet some messages are missing.
#   tests/chaos/mock_kafka_loss.sh [ERR]    (default NOT_LEADER_FOR_PARTITION; exit 1 = lost)
. "$(dirname "$0")/../integration/lib.sh"
. "$ROOT/tests/integration/kafka_lib.sh"
ERR=${1:-NOT_LEADER_FOR_PARTITION}
start_kafka 3 t:16
(for _ in $(seq 25); do sleep 2; echo "errors produce 19 $ERR" >"$T/kafka.ctl"; done) &
INJ=$!
python3 -c '
import sys, time
for i in range(4000):
    sys.stdout.write("m %d %s\n" % (i, "x" * 300))
    if i % 4 == 3:
        sys.stdout.flush(); time.sleep(0.05)' |
    kcat -P -b "$BOOTSTRAP" -t t -X enable.idempotence=true -X acks=all -X linger.ms=5 \
        -X partitioner=murmur2_random 2>"$T/kcat.err"
wait $INJ
timeout 60 kcat -C -b "$BOOTSTRAP" -t t -o beginning -e -q -f '%s\n' >"$T/got.txt"
echo "kcat delivery errors: $(grep -c 'Delivery failed' "$T/kcat.err")"
python3 - "$T/got.txt" <<'PY'
import sys
got = {line.split()[1] for line in open(sys.argv[1]) if len(line.split()) > 1}
miss = [i for i in range(4000) if str(i) not in got]
print("acknowledged 4000, in the topic %d, missing %d: %s" % (4000 - len(miss), len(miss), miss[:12]))
sys.exit(1 if miss else 0)
PY
