#!/usr/bin/env bash
# suite: slow (tests/run.sh starts it early: 30 s or more)
# deploy/kafka-topology.yml end to end (issue #14, docs/topologies.md): the compose file as a
# user runs it, with the shipper image and the mock Kafka cluster on the host network.
#   two edges (forward input, ack: delivered -> kafka output) -> mock cluster (logs, 12
#   partitions) -> three indexers (kafka input, group `indexers`) -> Elasticsearch emulator.
# Checks: every service turns healthy (its health check probes its own HTTP_PORT); 1000 records
# acked by each edge arrive once each by _id; one indexer is SIGKILLed (docker kill) and 1000
# more per edge still arrive, duplicates from the re-consumed partitions collapsing by _id.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kafka_lib.sh"
. "$(dirname "$0")/es_lib.sh"
command -v docker-compose >/dev/null || { fail "docker-compose not installed (tests/deps.sh)"; finish; }
BENCH=${BENCH:-$BUILD/shipper-bench}
[ -x "$BENCH" ] || { fail "shipper-bench not built ($BENCH)"; finish; }
need_docker

start_kafka 3 logs:12
start_emu es
NAME=shipper:ktopo-$$
PROJECT=shipperktopo$$
export SHIPPER_IMAGE=$NAME KAFKA_BROKERS=$BOOTSTRAP ES_URL="http://127.0.0.1:$EMU_PORT"
export SHIPPER_HEALTH_INTERVAL=1s
# librdkafka's mock cluster holds every rebalance open for the members' session.timeout.ms less
# 1 s (a member that does not rejoin may still be alive): at librdkafka's 45 s the staggered
# first joins cost 44 s and the SIGKILL 45 + 44 s (the test took 120-160 s). 6 s, Kafka's
# smallest by default (group.min.session.timeout.ms), keeps the same steps: the killed indexer's
# partitions still move only when its session expires.
export KAFKA_SESSION_TIMEOUT_MS=6000
for v in EDGE_A_PORT EDGE_B_PORT EDGE_A_HTTP EDGE_B_HTTP INDEXER_1_HTTP INDEXER_2_HTTP INDEXER_3_HTTP; do
    export "$v=$(free_port)"
done
compose() { timeout 90 docker-compose -f "$ROOT/deploy/kafka-topology.yml" -p "$PROJECT" "$@"; }
trap 'compose down -t 5 >/dev/null 2>&1; cleanup; docker rmi -f "$NAME" >/dev/null 2>&1' EXIT
shipper_image "$NAME" "$T/build.log" || { cat "$T/build.log"; fail "build-image.sh"; finish; }
compose up -d >"$T/up.log" 2>&1 || { cat "$T/up.log"; fail "docker-compose up"; finish; }

SERVICES="edge-a edge-b indexer-1 indexer-2 indexer-3"
# The containers' ids, once (each docker-compose run is a Python start: seconds on a busy machine).
ids=()
for s in $SERVICES; do ids+=("$(compose ps -q "$s")"); done
healthy=0
for _ in $(seq 240); do # up to 2 minutes
    healthy=$(docker inspect -f '{{.State.Health.Status}}' "${ids[@]}" 2>/dev/null | grep -c '^healthy$')
    [ "$healthy" = 5 ] && break
    sleep 0.5
done
check_eq "every service healthy" 5 "$healthy"

# send EDGE_PORT N: N records in Forward frames of 100, each frame acked once Kafka has it.
send() { "$BENCH" forward --addr "127.0.0.1:$1" --records "$2" --mode forward --batch 100 --ack \
    --ack-timeout 60 --quiet >>"$T/bench.log" 2>&1; }
distinct_ids() {
    emu GET "/_emulator/docs?index=logs-*" |
        python3 -c 'import json,sys; d=json.load(sys.stdin); print(len({x["_id"] for x in d}), len(d))'
}
check "edge a acks 1000 records" send "$EDGE_A_PORT" 1000
check "edge b acks 1000 records" send "$EDGE_B_PORT" 1000
wait_count 2000 'logs-*' 90 || fail "2000 documents not indexed"
check_eq "2000 records, once each by _id" "2000 2000" "$(distinct_ids)"

docker kill -s KILL "${ids[3]}" >/dev/null || fail "docker kill indexer-2"
check "edge a acks 1000 more" send "$EDGE_A_PORT" 1000
check "edge b acks 1000 more" send "$EDGE_B_PORT" 1000
wait_count 4000 'logs-*' 120 || fail "4000 documents not indexed after the SIGKILL"
check_eq "4000 records, once each by _id" "4000 4000" "$(distinct_ids)"
check_eq "Kafka holds every acked record" 4000 "$(hwm_total logs)"
[ "$FAILS" = 0 ] || { compose logs --tail 20 >"$T/compose.log" 2>&1; tail -60 "$T/compose.log"; cat "$T/bench.log"; }
finish
