#!/usr/bin/env bash
# deploy/: the hardened image under deploy/seccomp.json with the real network outputs — libcurl
# (Elasticsearch, to the bulk emulator, addressed by host name so the resolver runs) and
# librdkafka (Kafka, to the mock cluster) with all their threads. 1,000 lines each through a
# --read-only app container; counted at the far end; docker diff empty; docker stop exits 0.
. "$(dirname "$0")/lib.sh"

have() { # TYPE: this build accepts an output of TYPE (a failed check otherwise)
    printf 'inputs:\n  - type: forward\n    listen: 127.0.0.1:1\noutputs:\n  - type: %s\n%b' "$1" "$2" >"$T/$1.yaml"
    "$SHIPPER" --check -c "$T/$1.yaml" >"$T/$1.check" 2>&1 && return 0
    cat "$T/$1.check"; fail "shipper --check of a $1 config"
    return 1
}
ES=""; KAFKA=""
have elasticsearch '    url: http://127.0.0.1:9200\n' && ES=1
have kafka '    brokers: 127.0.0.1:9092\n    topic: t\n' && KAFKA=1

need_docker
NAME=shipper:deploy-outputs-$$
trap 'cleanup; docker rmi -f "$NAME" >/dev/null 2>&1' EXIT
shipper_image "$NAME" "$T/build.log" || { cat "$T/build.log"; fail "build-image.sh"; finish; }
head -1 "$T/build.log"
HARDEN=(--read-only --cap-drop ALL --security-opt no-new-privileges --user 65532 --memory 128m
    --pids-limit 64 --security-opt "seccomp=$ROOT/deploy/seccomp.json" --network host --no-healthcheck)
KEY() { echo "shipper_output_records_total{output=\"$1\",result=\"delivered\"}"; }

# run_through NAME OUTPUT-FLAGS...: a hardened shipper with those flags, 1,000 lines into it.
run_through() {
    local name=$1; shift
    P=$(free_port); H=$(free_port)
    track_container "$name"
    docker run -d --name "$name" "${HARDEN[@]}" "$NAME" --forward "127.0.0.1:$P" "$@" \
        --http "127.0.0.1:$H" >/dev/null || { fail "$name did not start"; return 1; }
    wait_ready "127.0.0.1:$H" 20 || { docker logs "$name"; fail "$name not ready"; return 1; }
    track_container "$name-app"
    docker run -d --name "$name-app" --network none --read-only --log-driver=fluentd \
        --log-opt "fluentd-address=127.0.0.1:$P" --log-opt cache-disabled=true "$IMAGE" \
        sh -c 'i=0; while [ $i -lt 1000 ]; do echo "deploy output line $i"; i=$((i+1)); done' >/dev/null
    timeout 60 docker wait "$name-app" >/dev/null || fail "$name-app did not finish"
}
stopped_clean() { # NAME
    check_eq "$1: docker diff is empty" "" "$(docker diff "$1")"
    docker stop -t 15 "$1" >/dev/null
    check_eq "$1: exit code after docker stop" 0 "$(docker inspect -f '{{.State.ExitCode}}' "$1")"
}

if [ -n "$ES" ]; then
    python3 "$ROOT/tests/rigs/es_emulator.py" --port 0 --port-file "$T/es.port" >"$T/es.log" 2>&1 &
    bg_pid $!
    for _ in $(seq 100); do [ -s "$T/es.port" ] && break; sleep 0.1; done
    E=$(cat "$T/es.port")
    if run_through "deploy-es-$$" --es "http://localhost:$E"; then
        wait_metric "127.0.0.1:$H" "$(KEY elasticsearch)" 1000 30 || fail "elasticsearch: not delivered"
        check_eq "elasticsearch: documents in the emulator" 1000 \
            "$(curl -s "http://127.0.0.1:$E/_emulator/count" | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])')"
        stopped_clean "deploy-es-$$"
    fi
fi

if [ -n "$KAFKA" ]; then
    FIFO="$T/kafka.ctl"
    "$BUILD/kafka_mock" --topic deploy:2 --bootstrap-file "$T/boot" --control "$FIFO" >"$T/kafka.log" 2>&1 &
    bg_pid $!
    for _ in $(seq 100); do [ -s "$T/boot" ] && break; sleep 0.1; done
    B=$(sed 's/^bootstrap //' "$T/boot")
    if run_through "deploy-kafka-$$" --kafka "$B" --topic deploy; then
        wait_metric "127.0.0.1:$H" "$(KEY kafka)" 1000 30 || fail "kafka: not delivered"
        check_eq "kafka: messages in the topic" 1000 \
            "$(timeout 20 kcat -C -b "$B" -t deploy -e -q 2>/dev/null | grep -c 'deploy output line')"
        stopped_clean "deploy-kafka-$$"
    fi
fi
finish
