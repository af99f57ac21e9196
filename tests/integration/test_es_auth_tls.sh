#!/usr/bin/env bash
# Basic auth and API key (a wrong secret gets 401: retried, not lost — the records arrive once
# the server accepts the credentials); TLS with a self-signed CA given in tls_ca_file, and a
# shipper without that CA fails verification and delivers nothing.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/es_lib.sh"
OUT='{output="elasticsearch"'

run_shipper() { # NAME EXTRA-YAML...: starts shipper with P/H fresh; sets M and P
    local name=$1; shift
    P=$(free_port); H=$(free_port); M="127.0.0.1:$H"
    {
        echo "service: {http_listen: \"$M\", grace: 1s}"
        echo "buffer: {flush_interval: 200ms, retry_min: 100ms}"
        echo "inputs: [{type: forward, listen: \"127.0.0.1:$P\"}]"
        echo "outputs:"
        echo "  - type: elasticsearch"
        echo "    retry_max: 500ms"
        for l in "$@"; do echo "    $l"; done
    } >"$T/$name.yaml"
    start_shipper "$name" -c "$T/$name.yaml"
    wait_ready "$M" || exit 1
}

for mode in basic apikey; do
    log "$mode: wrong credentials first"
    EMU_FIXED_PORT=$(free_port)
    if [ $mode = basic ]; then
        start_emu a --user elastic --password other
        run_shipper s-$mode "url: http://127.0.0.1:$EMU_PORT" "user: elastic" "password: s3cret" "index: auth-$mode"
    else
        start_emu a --api-key other
        run_shipper s-$mode "url: http://127.0.0.1:$EMU_PORT" "api_key: a2V5OnNlY3JldA==" "index: auth-$mode"
    fi
    send_es --addr "127.0.0.1:$P" --count 1000 --tag $mode || fail "send $mode"
    wait_metric "$M" "shipper_es_requests_total${OUT},status=\"401\"}" 2 20 || fail "$mode: no 401 seen"
    check_eq "$mode: nothing stored with wrong credentials" 0 "$(emu_count)"
    check_eq "$mode: nothing counted delivered or rejected" 0 "$(( $(metric "$M" "shipper_output_records_total${OUT},result=\"delivered\"}") + $(metric "$M" "shipper_output_records_total${OUT},result=\"rejected\"}") ))"
    kill "$EMU_PID"; wait "$EMU_PID" 2>/dev/null
    log "$mode: the server now accepts the credentials (same port)"
    if [ $mode = basic ]; then start_emu b --user elastic --password s3cret; else start_emu b --api-key a2V5OnNlY3JldA==; fi
    wait_count 1000 "auth-$mode" 30 || fail "$mode: records after the fix"
    check_seqs "auth-$mode" 0 1000 || FAILS=$((FAILS + 1))
    stop_shipper
    kill "$EMU_PID"; wait "$EMU_PID" 2>/dev/null
done
unset EMU_FIXED_PORT

log "TLS with a self-signed certificate"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/key.pem" -out "$T/cert.pem" -days 2 \
    -subj /CN=localhost -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" >/dev/null 2>&1 ||
    { fail "openssl"; finish; }
start_emu t --cert "$T/cert.pem" --key "$T/key.pem"
run_shipper tls-ok "url: https://127.0.0.1:$EMU_PORT" "tls_ca_file: $T/cert.pem" "index: tls-ok" "compression: gzip"
send_es --addr "127.0.0.1:$P" --count 500 --tag tls || fail "send tls"
wait_count 500 tls-ok 20 || fail "TLS records"
check_seqs tls-ok 0 500 || FAILS=$((FAILS + 1))
stop_shipper
run_shipper tls-map "url: https://127.0.0.1:$EMU_PORT" "tls: {ca_file: $T/cert.pem, verify: true}" "index: tls-map"
send_es --addr "127.0.0.1:$P" --count 200 --tag tlsmap || fail "send tls-map"
wait_count 200 tls-map 20 || fail "TLS records (tls: map form)"
check_seqs tls-map 0 200 || FAILS=$((FAILS + 1))
stop_shipper
run_shipper tls-bad "url: https://127.0.0.1:$EMU_PORT" "index: tls-bad"
send_es --addr "127.0.0.1:$P" --count 100 --tag tlsbad || fail "send tls-bad"
wait_metric "$M" "shipper_es_requests_total${OUT},status=\"error\"}" 2 20 || fail "no TLS errors counted"
check_eq "no CA: verification fails, nothing stored" 0 "$(emu_count tls-bad)"
check "the verification failure is logged" grep -qi "certificate" "$T/tls-bad.err"
stop_shipper
finish
