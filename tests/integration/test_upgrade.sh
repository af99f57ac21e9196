#!/usr/bin/env bash
# suite: asan (tests/run.sh also runs it against the ASan+UBSan build)
# In-place upgrade (SIGUSR2): the running process starts the binary at the same path with the
# same arguments and hands it the listening sockets and the open Forward connections (with the
# bytes of a frame they were in the middle of), the spool and the json-file offsets; it exits 0
# once its own work is done, and service.pid_file then names the new process.
# Driven by upgrade_rig.py, which starts shipper itself and signals it; every check forces its
# condition (a signal, a half-sent frame, a bad config file) and waits for its outcome.
#   basic: forward (TCP and unix) + json-file, no spool; three upgrades while connections send
#          acked records (none closed, none refused, every record once), a frame cut in half by
#          an upgrade, a bad config (the new process exits 2, the old goes on), json-file lines
#          written throughout arrive once.
#   spool: the same with the spool and ack: durable.
#   auth:  shared_key connections keep their handshake; one mid-handshake finishes it with the
#          new process.
#   tls:   a TLS connection is finished to its frame's end, acked, closed with close_notify;
#          the client reconnects to the new process.
. "$(dirname "$0")/lib.sh"
RIG="python3 $ROOT/tests/integration/upgrade_rig.py"

forward_conf() { # FILE PORT HTTP EXTRA-SERVICE EXTRA-BUFFER ACK
    cat >"$1" <<YAML
service: {http_listen: "$3", grace: 5s, pid_file: "$T/shipper.pid", state_dir: "$T/state"$4}
buffer: {flush_interval: 100ms$5}
inputs:
  - {type: forward, listen: "127.0.0.1:$2", ack: $6, metadata_path: ""}
  - {type: forward, listen: "unix://$T/fwd.sock", ack: $6, metadata_path: ""}
  - {type: docker_logs, path: "$T/containers", read_from: start, poll_interval: 50ms}
outputs:
  - type: stdout
YAML
}

for scenario in basic spool; do
    log "scenario $scenario"
    rm -rf "$T/state" "$T/containers" "$T/s.out" "$T/s.err" "$T/shipper.pid"
    mkdir -p "$T/state"
    P=$(free_port); H=$(free_port)
    if [ $scenario = basic ]; then
        forward_conf "$T/s.yaml" "$P" "127.0.0.1:$H" "" "" accepted
    else
        forward_conf "$T/s.yaml" "$P" "127.0.0.1:$H" "" ", spool: true" durable
    fi
    $RIG $scenario --shipper "$SHIPPER" --dir "$T" --conf "$T/s.yaml" --pidfile "$T/shipper.pid" \
        --port "$P" --http "127.0.0.1:$H" || fail "scenario $scenario"
    check "$scenario: the old process logged the hand-over" grep -q "is ready; handing over" "$T/s.err"
    cp "$T/s.err" "$T/$scenario.err"
done

log "scenario auth"
P=$(free_port); H=$(free_port)
cat >"$T/a.yaml" <<YAML
service: {http_listen: "127.0.0.1:$H", grace: 5s, pid_file: "$T/auth.pid"}
buffer: {flush_interval: 100ms}
inputs:
  - {type: forward, listen: "127.0.0.1:$P", shared_key: upgrade-key, metadata_path: ""}
outputs:
  - type: stdout
YAML
$RIG auth --shipper "$SHIPPER" --dir "$T" --conf "$T/a.yaml" --pidfile "$T/auth.pid" --port "$P" ||
    fail "scenario auth"

log "scenario tls"
(cd "$T" && openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 2 \
    -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null) ||
    { echo "openssl failed"; exit 1; }
P=$(free_port); H=$(free_port)
cat >"$T/t.yaml" <<YAML
service: {http_listen: "127.0.0.1:$H", grace: 5s, pid_file: "$T/tls.pid"}
buffer: {flush_interval: 100ms}
inputs:
  - {type: forward, listen: "127.0.0.1:$P", tls: {cert: $T/cert.pem, key: $T/key.pem}, metadata_path: ""}
outputs:
  - type: stdout
YAML
$RIG tls --shipper "$SHIPPER" --dir "$T" --conf "$T/t.yaml" --pidfile "$T/tls.pid" --port "$P" \
    --ca "$T/cert.pem" || fail "scenario tls"
finish
