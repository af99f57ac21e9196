#!/usr/bin/env bash
# suite: docker-alone (tests/run.sh runs no other Docker test beside it: its json-file input reads
# every container directory; a test that never touches Docker may run beside it, the accounting
# has no rate or latency bound but the ack: accepted window of flush_interval + 1 s)
# The randomized fault campaign (tests/chaos/chaos.py): 2 minutes of traffic and random faults
# with a new seed every run (printed first; replay a failure with the printed command), then
# every record accounted for. run.sh gives each test 300 s: 120 s of faults, setup, the drain
# and the account fit in --budget 285.
#   CHAOS_SEED=N CHAOS_DURATION=S bash tests/integration/test_chaos.sh   replays / lengthens it
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
args=(--duration "${CHAOS_DURATION:-120}")
[ -n "${CHAOS_SEED:-}" ] && args+=(--seed "$CHAOS_SEED")
[ -z "${CHAOS_DURATION:-}" ] && args+=(--budget 285)
exec python3 "$ROOT/tests/chaos/chaos.py" "${args[@]}"
