#!/usr/bin/env bash
# The two other ways to ask for a SIGHUP reload (README, "Reload"): `shipper --reload PIDFILE`
# sends SIGHUP to the process the pid file names; `POST /reload` on the metrics listener does
# the same when service.http_reload is true, and is refused (403) when it is false, the default.
# Both go through the SIGHUP path: shipper_config_reloads_total{result="ok"} counts them, and the
# reloaded config is the one in force (http_reload turned off by the second reload).
. "$(dirname "$0")/lib.sh"
H=$(free_port); P=$(free_port)
PF="$T/shipper.pid"
conf() {
    cat >"$T/r.yaml" <<YAML
service: {http_listen: "127.0.0.1:$H", pid_file: "$PF", http_reload: $1}
inputs:
  - {type: forward, listen: "127.0.0.1:$P"}
outputs:
  - type: null
YAML
}
# The process now in the pid file: killed at exit (a reload replaces the process).
kill_current() { [ -s "$PF" ] && kill "$(cat "$PF")" 2>/dev/null; }
trap 'kill_current; cleanup' EXIT
OK='shipper_config_reloads_total{result="ok"}'
# wait_replaced OLD_PID: the reload's new process is in the pid file and the old one has exited
# (so the next request is answered by the new process, with the new config).
wait_replaced() {
    for _ in $(seq 600); do
        [ "$(cat "$PF" 2>/dev/null)" != "$1" ] && ! kill -0 "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

conf true
start_shipper r -c "$T/r.yaml"
wait_ready "127.0.0.1:$H" 30 || { cat "$T/r.err"; fail "not ready"; finish; }
for _ in $(seq 100); do [ -s "$PF" ] && break; sleep 0.1; done

log "shipper --reload PIDFILE"
"$SHIPPER" --reload "$PF"
check_eq "--reload exit code" 0 $?
wait_metric "127.0.0.1:$H" "$OK" 1 60 || fail "--reload did not reload"
check "the old process handed over and exited" wait_replaced "$SHIPPER_PID"
check_eq "reloads ok after --reload" 1 "$(metric "127.0.0.1:$H" "$OK")"

log "POST /reload (http_reload: true), with the config turning it off"
conf false
OLD=$(cat "$PF")
code=$(curl -s -o "$T/post.body" -w '%{http_code}' -X POST "http://127.0.0.1:$H/reload")
check_eq "POST /reload status" 202 "$code"
wait_metric "127.0.0.1:$H" "$OK" 2 60 || fail "POST /reload did not reload"
check "the old process handed over and exited" wait_replaced "$OLD"
check_eq "reloads ok after POST /reload" 2 "$(metric "127.0.0.1:$H" "$OK")"

log "POST /reload after the reload turned http_reload off"
code=$(curl -s -o "$T/post.body" -w '%{http_code}' -X POST "http://127.0.0.1:$H/reload")
check_eq "POST /reload refused" 403 "$code"
check_eq "GET /reload is not a reload" 405 \
    "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$H/reload")"
check_eq "reloads still 2" 2 "$(metric "127.0.0.1:$H" "$OK")"

log "--reload with a pid file that names no process"
echo 999999999 >"$T/bad.pid"
"$SHIPPER" --reload "$T/bad.pid" 2>"$T/bad.err"
check_eq "--reload to no process: exit code" 1 $?
"$SHIPPER" --reload "$T/missing.pid" 2>/dev/null
check_eq "--reload with no pid file: exit code" 1 $?
finish
