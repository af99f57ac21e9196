# Kafka mock cluster helpers for the test_kafka_* tests. Source after lib.sh.
KAFKA_MOCK=${KAFKA_MOCK:-$BUILD/kafka_mock}

# start_kafka BROKERS TOPIC:PARTITIONS...: starts build/kafka_mock; sets BOOTSTRAP, KAFKA_PID.
start_kafka() {
    local n=$1; shift
    local args=()
    for t in "$@"; do args+=(--topic "$t"); done
    "$KAFKA_MOCK" --brokers "$n" "${args[@]}" --bootstrap-file "$T/kafka.bs" \
        --control "$T/kafka.ctl" --reply "$T/kafka.reply" >"$T/kafka.out" 2>&1 &
    KAFKA_PID=$!
    bg_pid "$KAFKA_PID"
    for _ in $(seq 100); do [ -s "$T/kafka.bs" ] && break; sleep 0.1; done
    BOOTSTRAP=$(cat "$T/kafka.bs" 2>/dev/null)
    [ -n "$BOOTSTRAP" ] || { echo "kafka_mock did not start"; cat "$T/kafka.out"; exit 1; }
}

# kctl COMMAND...: one control command; prints the mock's reply line.
kctl() {
    rm -f "$T/kafka.reply"
    echo "$*" >"$T/kafka.ctl"
    for _ in $(seq 200); do [ -s "$T/kafka.reply" ] && break; sleep 0.05; done
    cat "$T/kafka.reply" 2>/dev/null; echo
}

# hwm_total TOPIC: every message ever written to TOPIC (exact, from the high watermarks).
hwm_total() { kctl hwm "$1" | sed -n 's/.*total=\([0-9]*\).*/\1/p'; }

# consume TOPIC FILE: what the mock still keeps of TOPIC, one "key value" line per message.
consume() { timeout 30 kcat -C -b "$BOOTSTRAP" -t "$1" -o beginning -e -q -f '%k %s\n' >"$2" 2>/dev/null; }

# stop_kafka: asks the mock to quit and waits for it (the EXIT trap is the fallback).
stop_kafka() {
    echo quit >"$T/kafka.ctl" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$KAFKA_PID" 2>/dev/null || return 0; sleep 0.1; done
}
