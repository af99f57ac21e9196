#!/usr/bin/env bash
# The operator's kit (deploy/grafana-dashboard.json, deploy/prometheus-rules.yml):
#  1. `promtool check rules` accepts the rules;
#  2. every metric name the dashboard's queries and the rules use is one shipper exports: a
#     shipper with every output type that runs here (stdout, null, elasticsearch against the
#     emulator, kafka against the mock cluster), the spool, a forward and a docker_logs input is
#     scraped and compared (kit_names.py; a selector's labels too). The checker is shown to fail
#     on copies of the rules and of the dashboard with one name misspelled, and on a misspelled
#     label;
#  3. `promtool test rules tests/integration/prometheus_rules_test.yml`: alerts fire when and
#     only when they should (series fed by the test file, no timing of our own).
# promtool comes from Debian's `prometheus` package (tests/deps.sh).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/es_lib.sh"
. "$(dirname "$0")/kafka_lib.sh"

DASH=$ROOT/deploy/grafana-dashboard.json
RULES=$ROOT/deploy/prometheus-rules.yml
RULES_TEST=$ROOT/tests/integration/prometheus_rules_test.yml
NAMES="python3 $ROOT/tests/integration/kit_names.py"

for f in "$DASH" "$RULES" "$RULES_TEST"; do
    check "$(basename "$f") exists" test -s "$f"
done
[ "$FAILS" = 0 ] || finish
check "the dashboard is valid JSON" python3 -m json.tool "$DASH" /dev/null

log "1. promtool check rules"
command -v promtool >/dev/null || skip "promtool not installed (Debian's prometheus package; tests/deps.sh installs it)"
if promtool check rules "$RULES" >"$T/check.out" 2>&1; then ok "promtool check rules: $(tr '\n' ' ' <"$T/check.out")"
else fail "promtool check rules:"; cat "$T/check.out"; fi

log "2. every metric the dashboard and the rules use is exported"
start_emu e
start_kafka 1 logs:1
C=$T/containers ID=$(printf 'd%.0s' $(seq 64))
mkdir -p "$C/$ID" "$T/state"
printf '{"Name":"/kit","Config":{"Image":"img:kit","Labels":{}}}\n' >"$C/$ID/config.v2.json"
HTTP=127.0.0.1:$(free_port) FWD=$(free_port) FWD2=$(free_port)
# Two instances of an input, an output and a filter: each writes its own metrics block, and the
# body must still have one TYPE line per family (promtool check metrics, below).
cat >"$T/s.yaml" <<YAML
service: {http_listen: "$HTTP", state_dir: "$T/state"}
buffer: {spool: true, flush_interval: 100ms}
filters:
  - type: throttle
    match: "kit*"
    key: tag
    rate: 100000/s
  - type: throttle
    match: "other*"
    key: tag
    rate: 100000/s
inputs:
  - type: forward
    listen: 127.0.0.1:$FWD
  - type: forward
    listen: 127.0.0.1:$FWD2
  - type: docker_logs
    path: $C
    poll_interval: 50ms
outputs:
  - type: stdout
  - type: "null"
  - type: "null"
  - type: elasticsearch
    url: ["http://127.0.0.1:$EMU_PORT"]
  - type: kafka
    brokers: "$BOOTSTRAP"
    topic: logs
YAML
start_shipper s -c "$T/s.yaml"
wait_ready "$HTTP" || { cat "$T/s.err"; exit 1; }
# Traffic through both inputs to every output, so the labelled series (per input, per output,
# the latency histogram) exist; a malformed frame for an input error series.
python3 "$ROOT/tests/integration/fwd_client.py" send --addr "127.0.0.1:$FWD" --count 20 --tag kit --ack >/dev/null ||
    fail "forward client"
python3 "$ROOT/tests/integration/fwd_client.py" bad --addr "127.0.0.1:$FWD" --kind malformed >/dev/null ||
    fail "malformed frame not closed"
echo '{"log":"kit line\n","stream":"stdout","time":"2026-11-29T04:09:33.000000001Z"}' >>"$C/$ID/$ID-json.log"
for o in stdout null.1 null.2 elasticsearch kafka; do
    wait_metric "$HTTP" "shipper_output_records_total{output=\"$o\",result=\"delivered\"}" 21 30 ||
        fail "$o did not deliver the 21 records"
done
curl -sf "http://$HTTP/metrics" >"$T/metrics.txt" || fail "scrape /metrics"
# Lint findings (no HELP text) are not errors here; a format error is.
promtool check metrics <"$T/metrics.txt" >"$T/promtool-metrics.out" 2>&1
if grep -q "error while linting\|parsing error" "$T/promtool-metrics.out"; then
    fail "promtool check metrics: $(grep -m1 error "$T/promtool-metrics.out")"
else
    ok "promtool parses /metrics (two forward inputs, two null outputs, two throttle filters)"
fi
# The loop-lag timer (shipper/core/looplag.c) has fired by now: the gauge and the histogram.
check "loop lag gauge exported" grep -q '^shipper_loop_lag_seconds_max [0-9.]*$' "$T/metrics.txt"
check "loop lag histogram counted" grep -q '^shipper_loop_lag_seconds_count [1-9]' "$T/metrics.txt"
if $NAMES check "$T/metrics.txt" "$DASH" "$RULES" >"$T/names.out" 2>&1; then
    ok "names: $(head -1 "$T/names.out")"
else
    fail "names:"; cat "$T/names.out"
fi
stop_shipper
stop_kafka

log "   ... and the check fails on a misspelled name"
sed 's/shipper_paused\b/shipper_pasued/' "$RULES" >"$T/misspelled.yml"
check "the copy differs" grep -q shipper_pasued "$T/misspelled.yml"
$NAMES check "$T/metrics.txt" "$DASH" "$T/misspelled.yml" >"$T/bad.out" 2>&1; rc=$?
check_eq "checker exit status with shipper_pasued" 1 "$rc"
check "it names shipper_pasued" grep -q 'PROBLEM: .*shipper_pasued is not exported' "$T/bad.out"
sed 's/shipper_forward_connections/shipper_forward_connection/' "$DASH" >"$T/misspelled.json"
$NAMES check "$T/metrics.txt" "$T/misspelled.json" "$RULES" >"$T/bad2.out" 2>&1; rc=$?
check_eq "checker exit status with shipper_forward_connection in the dashboard" 1 "$rc"
check "it names shipper_forward_connection" grep -q 'PROBLEM: .*shipper_forward_connection is not exported' "$T/bad2.out"
sed 's/result="retried"/resutl="retried"/' "$RULES" >"$T/badlabel.yml"
$NAMES check "$T/metrics.txt" "$DASH" "$T/badlabel.yml" >"$T/badlabel.out" 2>&1; rc=$?
check_eq "checker exit status with a misspelled label" 1 "$rc"
check "it names the label" grep -q "PROBLEM: .*has no label 'resutl'" "$T/badlabel.out"

log "3. promtool test rules"
if promtool test rules "$RULES_TEST" >"$T/test.out" 2>&1; then ok "promtool test rules: $(tr '\n' ' ' <"$T/test.out")"
else fail "promtool test rules:"; cat "$T/test.out"; fi
finish
