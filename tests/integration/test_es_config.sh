#!/usr/bin/env bash
# Elasticsearch settings: bad values exit 2 naming file:line:key; a list of urls is used round
# robin and a node that refuses connections is skipped while the others take the load.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/es_lib.sh"

bad() { # EXPECTED-MESSAGE-PART YAML-LINES
    printf 'inputs: [{type: forward, listen: "127.0.0.1:1"}]\noutputs:\n  - type: elasticsearch\n%s\n' "$2" >"$T/c.yaml"
    "$SHIPPER" --check -c "$T/c.yaml" >/dev/null 2>"$T/c.err"
    local rc=$?
    if [ $rc = 2 ] && grep -qF "$1" "$T/c.err"; then ok "rejected: $(cat "$T/c.err")"; else fail "expected exit 2 with '$1', got $rc: $(cat "$T/c.err")"; fi
}
bad 'c.yaml:4: url: "ftp://h": must start with http:// or https://' '    url: ftp://h'
bad 'c.yaml:5: data_stream: set either `index` or `data_stream`' $'    index: a\n    data_stream: b'
bad 'c.yaml:4: user: user and password go together' '    user: u'
bad 'c.yaml:5: api_key: use either api_key or user/password' $'    user: u\n    api_key: k\n    password: p'
bad 'c.yaml:4: tls_ca_file: "/nonexistent/ca.pem"' '    tls_ca_file: /nonexistent/ca.pem'
bad 'c.yaml:4: tls_cert: tls_cert and tls_key go together' "    tls_cert: $0"
bad 'c.yaml:5: dead_letter_file: set either' $'    dead_letter_index: d\n    dead_letter_file: /tmp/x'
bad 'c.yaml:4: outputs[0].compression: "zstd" is not one of: none | gzip' '    compression: zstd'
bad 'c.yaml:4: bulk_max_bytes: must be between 1KiB and 1GiB' '    bulk_max_bytes: 100'
bad 'c.yaml:4: tls: bogus: expected ca_file, cert, key or verify' '    tls: {bogus: 1}'

log "two urls, the first refuses connections"
start_emu e
DEAD=$(free_port); P=$(free_port); H=$(free_port); M="127.0.0.1:$H"
cat >"$T/s.yaml" <<YAML
service: {http_listen: "$M"}
buffer: {chunk_size: 16KiB, flush_interval: 100ms, retry_min: 100ms}
inputs: [{type: forward, listen: "127.0.0.1:$P"}]
outputs:
  - type: elasticsearch
    url: ["http://127.0.0.1:$DEAD", "http://127.0.0.1:$EMU_PORT/"]
    node_cooldown: 60s
    retry_max: 500ms
YAML
start_shipper s -c "$T/s.yaml"
wait_ready "$M" || exit 1
# Ten rounds, each indexed before the next is sent: ten deliveries at least (queued chunks
# would otherwise go out together), so the round robin has requests to spread.
for i in $(seq 0 9); do
    send_es --addr "127.0.0.1:$P" --start $((i * 500)) --count 500 --batch 50 || fail "send"
    wait_count $(((i + 1) * 500)) || fail "records"
done
check_seqs "logs-*" 0 5000 || FAILS=$((FAILS + 1))
refused=$(metric "$M" 'shipper_es_requests_total{output="elasticsearch",status="connect_error"}')
check "the dead node was tried once and then skipped ($refused connect errors)" [ "$refused" -ge 1 -a "$refused" -le 2 ]
check "the live node took many requests" [ "$(metric "$M" 'shipper_es_requests_total{output="elasticsearch",status="200"}')" -ge 10 ]
stop_shipper
check_eq "shipper exit code" 0 "$SHIPPER_RC"
finish
