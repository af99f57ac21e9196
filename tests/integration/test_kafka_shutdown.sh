#!/usr/bin/env bash
# Kafka output at shutdown. SIGTERM right after a burst twenty times the buffer (a 4 MiB
# memory_limit forces the pause): the drain phase waits for every delivery report, so every
# acked record is in Kafka exactly once and shipper exits 0 (the last report's answer stops
# the output from inside librdkafka's poll: that path must be safe). The client asks for acks:
# a record still in the kernel's socket buffer at SIGTERM was never accepted (and the stop does
# not read it), so only acked records are promised.
# Then with every broker down: shipper still exits within service.grace plus a little, says
# how many messages it abandoned, and exits 0.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kafka_lib.sh"
[ -x "$SHIPPER_BENCH" ] || { echo "needs $SHIPPER_BENCH"; exit 1; }

start_kafka 3 logs:4
P=$(free_port)
cat >"$T/s.yaml" <<YAML
service: {grace: 20s, http_listen: ""}
buffer: {memory_limit: 4MiB}
inputs: [{type: forward, listen: "127.0.0.1:$P"}]
outputs: [{type: kafka, brokers: "$BOOTSTRAP", topic: logs}]
YAML
start_shipper s -c "$T/s.yaml"
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$P") 2>/dev/null && break; sleep 0.1; done
N=200000
"$SHIPPER_BENCH" forward --addr "127.0.0.1:$P" --records $N --containers 8 --ack --window 1000 \
    --ack-timeout 60 --quiet >/dev/null || fail "generator failed"
stop_shipper
check_eq "exit code after draining" 0 "$SHIPPER_RC"
check "the burst filled the buffer" grep -q "buffer full" "$T/s.err"
check "drained before stopping" grep -q "all records delivered" "$T/s.err"
check_eq "every record in Kafka exactly once" "$N" "$(hwm_total logs)"

# All brokers down: nothing can be confirmed; stop is bounded by the grace period.
P2=$(free_port)
cat >"$T/s2.yaml" <<YAML
service: {grace: 2s, http_listen: ""}
inputs: [{type: forward, listen: "127.0.0.1:$P2"}]
outputs: [{type: kafka, brokers: "$BOOTSTRAP", topic: logs}]
YAML
start_shipper s2 -c "$T/s2.yaml"
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$P2") 2>/dev/null && break; sleep 0.1; done
kctl down -1 >/dev/null
"$SHIPPER_BENCH" forward --addr "127.0.0.1:$P2" --records 1000 --quiet >/dev/null
sleep 1.5
t0=$(date +%s%N)
stop_shipper
ms=$((($(date +%s%N) - t0) / 1000000))
check_eq "exit code with brokers down" 0 "$SHIPPER_RC"
check "stopped within grace + 3 s ($ms ms)" [ "$ms" -lt 5000 ]
check "the abandoned messages were reported" grep -q "not confirmed at stop are abandoned" "$T/s2.err"
kctl up -1 >/dev/null
stop_kafka
finish
