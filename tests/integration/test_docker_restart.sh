#!/usr/bin/env bash
# suite: docker-alone (tests/run.sh runs no other Docker test beside it: dockerd's log and
# Docker's fluentd copier are its own; a test that never touches Docker may run beside it)
# Restarting shipper under real dockerd's fluentd log driver (Docker 20.10): what is lost, what
# blocks, and what Docker logs. tests/rigs/docker_restart.py runs each cell: a busybox container
# logs 3,000 numbered 1,000-byte lines at 300/s (--log-driver=fluentd, sub-second precision,
# cache-disabled) to shipper (forward -> stdout, spool on, state_dir); each time shipper's
# /metrics shows another quarter received, shipper is stopped (SIGTERM or SIGKILL), stays down
# 0.5 s, and a new process starts on the same state_dir. In the socket-activation cells the
# test holds the listening socket the way systemd does (fd 3, LISTEN_FDS/LISTEN_PID). During
# every down time a probe connects to the forward port.
#
# Asserted (what shipper controls and must hold):
#   - socket activation, fluentd-async=true, fluentd-request-ack=true, ack: durable, spool:
#     every line arrives (0 lost) across 3 SIGTERM restarts and across 3 SIGKILL restarts; no
#     probe refused; every shipper used the inherited socket
#   - plain SIGKILL restarts (no socket activation), request-ack, ack: durable, sync driver:
#     0 lost (Docker resends the unacked line after reconnecting; acked lines are on disk)
#   - the container exits 0, every shipper stops cleanly at the end
# Printed, not asserted (Docker's behaviour): duplicates, how long the container stalled, how
# late Docker's copier read, dockerd's error lines.
#
# FULL_MATRIX=1 also runs the whole matrix (43 cells, about 19 minutes) and prints the table
# that docs/deploy.md "Restarts and upgrades" shows: {SIGTERM, SIGKILL} x {plain, socket
# activation} x fluentd-request-ack x fluentd-async; ack: accepted vs durable; 3 s down times
# with fluentd-retry-wait and fluentd-max-retries; a container that stops while shipper is
# down; shipper down when a container starts; and a container that exits right after a burst
# (where Docker itself drops lines). Run it on a private dockerd (DOCKER_HOST=unix:///...sock,
# tests/rigs/dockerd.sh starts one) so that dockerd's log has no other test's lines.
# FULL_MATRIX_OUT=FILE keeps the JSON of every cell.
. "$(dirname "$0")/lib.sh"
need_docker
RIG="$ROOT/tests/rigs/docker_restart.py"

if [ -n "${FULL_MATRIX:-}" ]; then
    cells=()
    for kind in term term-sa kill kill-sa; do
        for ack in 0 1; do
            for async in 0 1; do cells+=("$kind,ack=$ack,async=$async,mode=durable"); done
        done
    done
    cells+=("term,ack=1,async=0,mode=accepted")
    for kind in kill kill-sa; do
        for async in 0 1; do cells+=("$kind,ack=1,async=$async,mode=accepted"); done
    done
    # Longer down times, and Docker's retry settings (fluentd-retry-wait, fluentd-max-retries);
    # the container idles 10 s after its last line so that it outlives the last down time.
    cells+=("kill,ack=1,async=0,mode=durable,rw=100ms")
    for async in 0 1; do
        cells+=("kill,ack=1,async=$async,mode=durable,down=3,tail=10"
            "kill,ack=1,async=$async,mode=durable,down=3,tail=10,rw=100ms"
            "kill-sa,ack=1,async=$async,mode=durable,down=3,tail=10")
    done
    cells+=("kill,ack=1,async=1,mode=durable,down=3,tail=10,mr=3")
    # The container stops while shipper is down (SIGKILL at 90 %, 3 s down, no idle time); and
    # down 12 s, beyond the 10 s Docker keeps sending after a container stopped.
    for kind in exitdown exitdown-sa; do
        for async in 0 1; do cells+=("$kind,ack=1,async=$async,mode=durable"); done
        cells+=("$kind,ack=1,async=0,mode=durable,down=12")
    done
    # No shipper when the container starts (it comes 0.5 s later).
    for kind in start start-sa; do
        for async in 0 1; do cells+=("$kind,ack=1,async=$async,mode=durable"); done
    done
    # No restart: a burst of 20,000 short lines, and the container exits at once.
    for ack in 0 1; do
        for async in 0 1; do cells+=("exit,ack=$ack,async=$async,mode=durable"); done
    done
    mkdir -p "$T/full"
    log "full matrix: ${#cells[@]} cells"
    timeout 2400 python3 "$RIG" --shipper "$SHIPPER" --tmp "$T/full" --json "$T/full.json" --table \
        "${cells[@]}" | tee "$T/full.out" || fail "full matrix did not complete"
    [ -n "${FULL_MATRIX_OUT:-}" ] && cp "$T/full.json" "$FULL_MATRIX_OUT"
fi

mkdir -p "$T/a"
timeout 240 python3 "$RIG" --shipper "$SHIPPER" --tmp "$T/a" --json "$T/a.json" --table \
    term-sa,ack=1,async=1,mode=durable kill-sa,ack=1,async=1,mode=durable \
    kill,ack=1,async=0,mode=durable || { fail "the cells did not run"; finish; }

python3 - "$T/a.json" <<'PY' || FAILS=$((FAILS + 1))
import json, sys
res = json.load(open(sys.argv[1]))
bad = 0
def expect(cond, what):
    global bad
    print(("ok: " if cond else "FAIL: ") + what)
    bad += 0 if cond else 1
for r in res:
    name = "%s request-ack=%d async=%d ack=%s" % (r["kind"], r["ack"], r["async"], r["mode"])
    if "error" in r:
        expect(False, "%s: %s" % (name, r["error"]))
        continue
    expect(r["probes"] == r["restarts"] == 3, "%s: 3 restarts forced (%d)" % (name, r["probes"]))
    expect(r["lost"] == 0, "%s: every line arrived (%d of %d lost, missing %s)"
           % (name, r["lost"], r["lines"], r["missing_ranges"]))
    expect(r["exit_code"] == 0 and r["final_rc"] == 0, "%s: container and last shipper exit 0" % name)
    if r["kind"].endswith("-sa"):
        expect(r["refused"] == 0, "%s: no connection refused while shipper was down (%d of %d)"
               % (name, r["refused"], r["probes"]))
        expect(r["sa_used"], "%s: every shipper took the inherited socket" % name)
    else:
        # The probe itself works: without socket activation a down shipper refuses.
        expect(r["refused"] == r["probes"], "%s: probes refused while down, as expected (%d of %d)"
               % (name, r["refused"], r["probes"]))
    print("   (%s: %d duplicates, container stalled %s s, Docker blocked %s s, dockerd: %s%s)"
          % (name, r["dup"], r["stall_s"], r["blocked_s"],
             {k: v for k, v in r["dockerd"].items() if v} or "nothing",
             " [other fluentd containers ran meanwhile]" if r["foreign_fluentd"] else ""))
sys.exit(1 if bad else 0)
PY
finish
