#!/usr/bin/env bash
# suite: docker-alone (tests/run.sh runs no other Docker test beside it, so that no other
# fluentd-driver container runs and dockerd's fluentd lines are attributed and asserted; a test
# that never touches Docker may run beside it)
# Upgrades under real Docker: a container logs 20,000 lines through --log-driver=fluentd with
# fluentd-request-ack=true (Docker waits for each line's ack) while shipper (spool, ack: durable,
# Elasticsearch emulator) is upgraded five times through SIGUSR2. Docker's connection is handed
# from process to process: every line arrives exactly once (one document per line: by _id and
# by content), the container is never blocked for good, and dockerd logs no fluentd error (on the
# old code, a restart of the endpoint made dockerd give up on the container: issue 18).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/es_lib.sh"
need_docker
# dockerd's log: where its standard output goes (tests/rigs/dockerd.sh starts it with the log
# under the TMPDIR of whoever started it, which need not be this test's)
DLOG=$(readlink "/proc/$(cat /var/run/docker.pid 2>/dev/null)/fd/1" 2>/dev/null)
[ -f "$DLOG" ] || DLOG=${TMPDIR:-/tmp}/shipper-dockerd.log
[ -f "$DLOG" ] || { echo "FAIL: dockerd's log $DLOG not found (tests/rigs/dockerd.sh starts dockerd with it)"; exit 1; }
start_emu e
P=$(free_port); H=$(free_port); N=20000; name=upg-$$
cat >"$T/s.yaml" <<YAML
service: {http_listen: "127.0.0.1:$H", grace: 10s, pid_file: "$T/shipper.pid", state_dir: "$T/state"}
buffer: {flush_interval: 200ms, spool: true}
inputs:
  - {type: forward, listen: "127.0.0.1:$P", ack: durable}
outputs:
  - {type: elasticsearch, url: "http://127.0.0.1:$EMU_PORT", index: upg}
YAML
python3 "$ROOT/tests/integration/upgrade_rig.py" docker --shipper "$SHIPPER" --dir "$T" --conf "$T/s.yaml" \
    --pidfile "$T/shipper.pid" --every 1.5 --count 5 --until "$T/rig.done" >"$T/rig.log" 2>&1 &
RIG=$!
bg_pid "$RIG"
for _ in $(seq 300); do [ -f "$T/rig.ready" ] && break; sleep 0.05; done
[ -f "$T/rig.ready" ] || { cat "$T/rig.log"; echo "FAIL: shipper did not start"; exit 1; }
dlog_from=$(stat -c %s "$DLOG")
# Every client socket connected to the forward port, as long as the test runs: Docker's
# connection must be one and the same from the first line to the last (a reconnect means the
# old one was closed under it). /proc/net/tcp: local, remote (hex), state 01 = established.
python3 - "$P" "$T/conns" "$T/rig.done" <<'PY' &
import os, sys, time
port, out, done = int(sys.argv[1]), sys.argv[2], sys.argv[3]
seen = {}
while not os.path.exists(done):
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in open(f).readlines()[1:]:
            p = line.split()
            if int(p[2].split(":")[1], 16) == port and p[3] == "01":
                seen[p[9]] = int(p[1].split(":")[1], 16)  # inode -> client port
    time.sleep(0.01)
open(out, "w").write("".join("%s %d\n" % kv for kv in seen.items()))
PY
CW=$!
bg_pid $CW
others() { # running containers of others that log through a fluentd driver
    for c in $(docker ps -q); do
        [ "$(docker inspect -f '{{.HostConfig.LogConfig.Type}} {{.Name}}' "$c")" = "fluentd /$name" ] && continue
        [ "$(docker inspect -f '{{.HostConfig.LogConfig.Type}}' "$c" 2>/dev/null)" = fluentd ] && echo "$c"
    done
}
others >"$T/others"
track_container "$name"
# ~10 s of logging: 50 ms pauses every 100 lines, so the five upgrades (every 1.5 s) fall inside.
# Then the container waits until every line is in Elasticsearch: Docker buffers ~170 KB between
# the container and the log driver, and once the container exits it gives the driver only 10 s
# to send that before dropping the rest ("Logger didn't exit in time") — on a loaded machine
# that is a cut the test would otherwise take for the upgrades'.
mkdir -p "$T/flag"
docker run -d --name "$name" --network none --log-driver=fluentd \
    --log-opt "fluentd-address=127.0.0.1:$P" --log-opt fluentd-request-ack=true \
    --log-opt tag=upg --log-opt cache-disabled=true -v "$T/flag:/flag:ro" "$IMAGE" sh -c \
    "i=0; while [ \$i -lt $N ]; do echo \"line \$i\"; i=\$((i+1)); [ \$((i % 100)) = 0 ] && usleep 50000; done;
     while [ ! -e /flag/done ]; do sleep 0.2; done" >/dev/null || fail "docker run"
touch "$T/rig.go"
wait_count "$N" upg 180 || fail "not every line reached Elasticsearch"
touch "$T/flag/done"
timeout 60 docker wait "$name" >"$T/wait.out" || fail "the container did not finish"
check_eq "the container exited 0" 0 "$(cat "$T/wait.out")"
check "the five upgrades ran while the container logged" [ -f "$T/rig.upgraded" ]
touch "$T/rig.done"
wait "$RIG"; rc=$?
cat "$T/rig.log"
check_eq "the rig's checks (upgrades, exit codes)" 0 "$rc"
emu GET "/_emulator/docs?index=upg" >"$T/docs.json"
python3 - "$T/docs.json" "$N" <<'PY' || FAILS=$((FAILS + 1))
import json, sys
docs = json.load(open(sys.argv[1]))
n = int(sys.argv[2])
msgs = sorted(int(d["_source"]["message"].split()[1]) for d in docs)
ids = {d["_id"] for d in docs}
ok = msgs == list(range(n)) and len(ids) == len(docs) == n
print(("ok: " if ok else "FAIL: ") + "%d lines, each stored once (%d documents, %d distinct ids, %d distinct lines)"
      % (n, len(docs), len(ids), len(set(msgs))))
sys.exit(0 if ok else 1)
PY
wait $CW
check_eq "Docker's connection to shipper: one, never closed or reopened across the upgrades" 1 \
    "$(wc -l <"$T/conns")"
# Errors and warnings only: info lines such as "enabling local file cache" come from any
# fluentd-driver container on the shared dockerd (other tests run beside this one).
tail -c +"$((dlog_from + 1))" "$DLOG" | grep -i -e fluent -e "failed to log" |
    grep -v -e 'level=info' -e 'level=debug' >"$T/dockerd.errors"
others >>"$T/others"
if [ -s "$T/others" ]; then
    # dockerd's fluentd errors name no container: with other people's fluentd containers
    # running, they cannot be told apart; the connection check above is the proof then.
    echo "note: $(sort -u "$T/others" | wc -l) other fluentd-driver container(s) ran meanwhile;" \
        "dockerd's log ($(wc -l <"$T/dockerd.errors") fluentd lines) cannot be attributed"
else
    check "dockerd logged no fluentd error while shipper was upgraded ($(wc -l <"$T/dockerd.errors") lines)" \
        [ ! -s "$T/dockerd.errors" ]
    [ -s "$T/dockerd.errors" ] && head -5 "$T/dockerd.errors"
fi
n=$(grep -c "is ready; handing over" "$T/s.err")
check "five hand-overs in the log ($n)" [ "$n" -eq 5 ]
finish
