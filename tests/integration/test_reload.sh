#!/usr/bin/env bash
# SIGHUP reloads the config file: the running process starts the same binary with the same
# arguments and hands it the listening sockets, the open Forward connections, the spool and the
# json-file offsets (the in-place upgrade of test_upgrade.sh). Driven by upgrade_rig.py's
# `reload` scenario, once per ack mode, with acked traffic running: an output added by the new
# config runs in the new process, a bad config is refused with its file and line logged while
# the old process goes on, shipper_config_reloads_total counts both, every acked record
# arrives once.
. "$(dirname "$0")/lib.sh"
RIG="python3 $ROOT/tests/integration/upgrade_rig.py"

for mode in accepted durable delivered; do
    log "reload with ack: $mode"
    rm -rf "$T/state" "$T/r.out" "$T/r.err" "$T/shipper.pid"
    mkdir -p "$T/state"
    P=$(free_port); H=$(free_port)
    spool=""
    [ $mode = durable ] && spool=", spool: true"
    cat >"$T/r.yaml" <<YAML
service: {http_listen: "127.0.0.1:$H", grace: 5s, pid_file: "$T/shipper.pid", state_dir: "$T/state"}
buffer: {flush_interval: 100ms$spool}
inputs:
  - {type: forward, listen: "127.0.0.1:$P", ack: $mode, metadata_path: ""}
outputs:
  - type: stdout
YAML
    $RIG reload --shipper "$SHIPPER" --dir "$T" --conf "$T/r.yaml" --pidfile "$T/shipper.pid" \
        --port "$P" --http "127.0.0.1:$H" || fail "reload with ack: $mode"
    cp "$T/r.err" "$T/reload-$mode.err"
done
finish
