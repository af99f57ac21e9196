#!/usr/bin/env bash
# Self-test of tests/rigs/es_emulator.py with curl. Starts emulators on free ports, checks the
# bulk API, fault injection, auth, TLS and down/up. Last line: "N passed, N failed";
# exits non-zero if anything failed.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
EMU="$HERE/es_emulator.py"
TMP=$(mktemp -d)
PIDS=()
pass=0
fail=0

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$TMP"
}
trap cleanup EXIT

ok() { pass=$((pass + 1)); echo "ok   - $1"; }
bad() { fail=$((fail + 1)); echo "FAIL - $1: $2"; }
# expect_eq NAME WANT GOT
expect_eq() { if [[ "$3" == "$2" ]]; then ok "$1"; else bad "$1" "want [$2] got [$3]"; fi; }
# expect_has NAME NEEDLE HAYSTACK
expect_has() { if [[ "$3" == *"$2"* ]]; then ok "$1"; else bad "$1" "[$2] not in [$3]"; fi; }
# jget EXPR: evaluate a Python expression on the JSON from stdin (bound to d)
jget() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1" 2>&1; }

# start NAME ARGS...: start an emulator; sets ${NAME}_PORT, ${NAME}_CPORT and ${NAME}_PID
start() {
  local name=$1; shift
  rm -f "$TMP/$name.port" "$TMP/$name.cport"
  python3 "$EMU" --port 0 --control-port 0 --port-file "$TMP/$name.port" \
    --control-port-file "$TMP/$name.cport" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 50); do [[ -s "$TMP/$name.port" ]] && break; sleep 0.1; done
  if [[ ! -s "$TMP/$name.port" ]]; then
    echo "emulator $name did not start:"; cat "$TMP/$name.err"; exit 1
  fi
  printf -v "${name}_PORT" %s "$(cat "$TMP/$name.port")"
  printf -v "${name}_CPORT" %s "$(cat "$TMP/$name.cport")"
  printf -v "${name}_PID" %s "$pid"
}

start E
ES="http://127.0.0.1:$E_PORT"
CTL="http://127.0.0.1:$E_CPORT/_emulator"
NDJSON=(-H 'Content-Type: application/x-ndjson')
bulk() { curl -s "${NDJSON[@]}" --data-binary @- "$@"; }      # body on stdin
fault() { curl -s -XPOST "$CTL/faults" -d "$1" >/dev/null; }
count() { curl -s "$CTL/count?index=$1" | jget 'd["count"]'; }

expect_has "startup line" "listening on $E_PORT" "$(head -1 "$TMP/E.out")"

# --- cluster info
expect_eq "GET / version" "8.11.0" "$(curl -s "$ES/" | jget 'd["version"]["number"]')"
expect_eq "HEAD / 200" "200" "$(curl -s -I -o /dev/null -w '%{http_code}' "$ES/")"

# --- bulk create, duplicate create
r=$(printf '%s\n' '{"create":{"_index":"logs-a","_id":"1"}}' '{"message":"one"}' \
  '{"create":{"_id":"2"}}' '{"message":"two","n":{"x":1}}' | bulk "$ES/logs-a/_bulk")
expect_eq "bulk create errors=false" "False [201, 201]" \
  "$(jget 'd["errors"], [i["create"]["status"] for i in d["items"]]' <<<"$r" | tr -d '()' | sed 's/, \[/ [/')"
expect_eq "URL index used" "logs-a" "$(jget 'd["items"][1]["create"]["_index"]' <<<"$r")"
expect_eq "stored source" '{"message": "two", "n": {"x": 1}}' \
  "$(curl -s "$CTL/docs?index=logs-*" | jget 'json.dumps([x for x in d if x["_id"]=="2"][0]["_source"])')"
r=$(printf '%s\n' '{"create":{"_index":"logs-a","_id":"1"}}' '{"message":"again"}' | bulk "$ES/_bulk")
expect_eq "duplicate create 409" "True 409 version_conflict_engine_exception" \
  "$(jget '" ".join(map(str,[d["errors"], d["items"][0]["create"]["status"], d["items"][0]["create"]["error"]["type"]]))' <<<"$r")"
r=$(printf '%s\n' '{"index":{"_index":"logs-b"}}' '{"m":1}' | bulk "$ES/_bulk")
expect_eq "auto id (20 chars)" "20" "$(jget 'len(d["items"][0]["index"]["_id"])' <<<"$r")"
expect_eq "count" "3" "$(count 'logs-*')"

# --- gzip, chunked, Expect: 100-continue, keep-alive
printf '%s\n' '{"create":{"_index":"gz","_id":"g1"}}' '{"m":"zipped"}' | gzip >"$TMP/body.gz"
r=$(curl -s "${NDJSON[@]}" -H 'Content-Encoding: gzip' --data-binary @"$TMP/body.gz" "$ES/_bulk")
expect_eq "gzip body" "201" "$(jget 'd["items"][0]["create"]["status"]' <<<"$r")"
expect_eq "gzip counted" "1" "$(curl -s "$CTL/stats" | jget 'd["gzip_requests"]')"
r=$(printf '%s\n' '{"create":{"_index":"ch","_id":"c1"}}' '{"m":"chunked"}' |
  curl -s "${NDJSON[@]}" -H 'Transfer-Encoding: chunked' -H 'Expect: 100-continue' \
    --data-binary @- "$ES/_bulk")
expect_eq "chunked + 100-continue" "201" "$(jget 'd["items"][0]["create"]["status"]' <<<"$r")"
expect_eq "keep-alive reuses connection" "1 0" \
  "$(curl -s -o /dev/null -o /dev/null -w '%{num_connects} ' "$ES/" "$ES/" | xargs)"

# --- filter_path
r=$(printf '%s\n' '{"create":{"_index":"fp","_id":"f1"}}' '{"m":1}' |
  bulk "$ES/_bulk?filter_path=errors,items.*.status,items.*.error")
expect_eq "filter_path status/error" '{"errors":false,"items":[{"create":{"status":201}}]}' "$r"
r=$(printf '%s\n' '{"create":{"_index":"fp","_id":"f2"}}' '{"m":1}' | bulk "$ES/_bulk?filter_path=items.*._id")
expect_eq "filter_path _id" '{"items":[{"create":{"_id":"f2"}}]}' "$r"

# --- malformed action line, content type
r=$(printf '%s\n' '{"create":{"_index":"x"' '{"m":1}' | bulk -w ' %{http_code}' "$ES/_bulk")
expect_has "bad action line 400" "x_content_parse_exception" "$r"
expect_has "bad action line status" " 400" "$r"
expect_eq "wrong content type 406" "406" "$(curl -s -o /dev/null -w '%{http_code}' -d '{}' "$ES/_bulk")"

# --- mapping error
fault '{"mapping_error_field":"bad"}'
r=$(printf '%s\n' '{"create":{"_index":"map","_id":"m1"}}' '{"bad":"x"}' \
  '{"create":{"_index":"map","_id":"m2"}}' '{"good":1}' \
  '{"create":{"_index":"map","_id":"m3"}}' '{"nested":{"bad":1},"x":{"y":2}}' | bulk "$ES/_bulk")
expect_eq "mapping error item (only the top-level field matches)" "400 mapper_parsing_exception 201 201" \
  "$(jget '" ".join(map(str,[d["items"][0]["create"]["status"], d["items"][0]["create"]["error"]["type"], d["items"][1]["create"]["status"], d["items"][2]["create"]["status"]]))' <<<"$r")"
expect_eq "mapping error not stored" "2" "$(count map)"
fault '{"mapping_error_field":"x.y"}'
r=$(printf '%s\n' '{"create":{"_index":"map","_id":"m4"}}' '{"x":{"y":2}}' | bulk "$ES/_bulk")
expect_eq "dotted mapping field" "400" "$(jget 'd["items"][0]["create"]["status"]' <<<"$r")"
curl -s -XDELETE "$CTL/faults" >/dev/null

# --- whole-request status queue
fault '{"request_status":[429,503]}'
body=$(printf '%s\n' '{"create":{"_index":"rq","_id":"r1"}}' '{"m":1}')
codes=""
for _ in 1 2 3; do
  codes+="$(curl -s -o "$TMP/rq" -w '%{http_code}' "${NDJSON[@]}" --data-binary "$body"$'\n' "$ES/_bulk") "
done
expect_eq "request_status queue" "429 503 200 " "$codes"
expect_eq "429 body like ES" "es_rejected_execution_exception" \
  "$(curl -s -XPOST "$CTL/faults" -d '{"request_status":[429]}' >/dev/null
     printf '%s\n' '{"create":{"_index":"rq"}}' '{}' | bulk "$ES/_bulk" | jget 'd["error"]["type"]')"
expect_eq "rejected request not stored" "1" "$(count rq)"

# --- per-item faults
fault '{"item_status_every":{"n":2,"status":429}}'
r=$(for i in 1 2 3 4; do printf '%s\n' "{\"create\":{\"_index\":\"it\",\"_id\":\"$i\"}}" '{}'; done | bulk "$ES/_bulk")
expect_eq "item_status_every" "True [201, 429, 201, 429]" \
  "$(jget 'str(d["errors"]) + " " + str([i["create"]["status"] for i in d["items"]])' <<<"$r")"
curl -s -XDELETE "$CTL/faults" >/dev/null
fault '{"item_status_count":{"count":2,"status":503}}'
r=$(for i in 5 6 7; do printf '%s\n' "{\"create\":{\"_index\":\"it\",\"_id\":\"$i\"}}" '{}'; done | bulk "$ES/_bulk")
expect_eq "item_status_count" "[503, 503, 201]" "$(jget '[i["create"]["status"] for i in d["items"]]' <<<"$r")"
expect_eq "failed items not stored" "3" "$(count it)"
expect_eq "retryable_errors counted" "4" "$(curl -s "$CTL/stats" | jget 'd["retryable_errors"]')"

# --- delay
fault '{"delay":0.5}'
t=$(printf '%s\n' '{"create":{"_index":"dl"}}' '{}' | bulk -o /dev/null -w '%{time_total}' "$ES/_bulk")
expect_eq "delay >= 0.5s" "True" "$(python3 -c "print($t >= 0.5)")"
curl -s -XDELETE "$CTL/faults" >/dev/null

# --- request_match: only a request holding the text fails, after its delay; once
fault '{"request_match":{"contains":"needle","status":503,"delay":0.3}}'
codes=""
for m in hay needle needle; do
  codes+="$(printf '%s\n' '{"create":{"_index":"rm"}}' "{\"m\":\"$m\"}" | bulk -o /dev/null -w '%{http_code}' "$ES/_bulk") "
done
expect_eq "request_match fails only the matching request, count times" "200 503 200 " "$codes"
expect_eq "request_match: the failed request is not stored" "2" "$(count rm)"
curl -s -XDELETE "$CTL/faults" >/dev/null

# --- truncated response: curl must fail, the bulk is applied anyway
fault '{"truncate_next":1}'
printf '%s\n' '{"create":{"_index":"tr","_id":"t1"}}' '{"m":1}' | bulk -o /dev/null "$ES/_bulk"
rc=$?
if [[ $rc -ne 0 ]]; then ok "truncated response fails in curl (rc=$rc)"; else bad "truncated response" "curl rc 0"; fi
expect_eq "truncated bulk applied" "1" "$(count tr)"
r=$(printf '%s\n' '{"create":{"_index":"tr","_id":"t1"}}' '{"m":1}' | bulk "$ES/_bulk")
expect_eq "after truncation: normal, retry is 409" "409" "$(jget 'd["items"][0]["create"]["status"]' <<<"$r")"

# --- refuse
fault '{"refuse":true}'
curl -s -m 5 -o /dev/null "$ES/"
rc=$?
if [[ $rc -ne 0 ]]; then ok "refuse closes connection (rc=$rc)"; else bad "refuse" "curl rc 0"; fi
fault '{"refuse":false}'
expect_eq "refuse off" "200" "$(curl -s -o /dev/null -w '%{http_code}' "$ES/")"

# --- down / up via the control port
t0=$(date +%s.%N)
curl -s -XPOST "$CTL/down" -d '{"seconds":1}' >/dev/null
curl -s -m 2 -o /dev/null "$ES/"
rc=$?
expect_eq "down: connection refused (curl rc 7)" "7" "$rc"
expect_eq "control port up while main down" "200" "$(curl -s -o /dev/null -w '%{http_code}' "$CTL/stats")"
code=000
for _ in $(seq 40); do
  code=$(curl -s -o /dev/null -w '%{http_code}' "$ES/")
  [[ $code == 200 ]] && break
  sleep 0.1
done
expect_eq "back up on same port" "200" "$code"
expect_eq "down lasted about 1s" "True" "$(python3 -c "import time; print(0.9 <= time.time() - $t0 < 3)")"
curl -s -XPOST "$CTL/down" -d '{}' >/dev/null
curl -s -m 2 -o /dev/null "$ES/"
expect_eq "down until /up" "7" "$?"
curl -s -XPOST "$CTL/up" >/dev/null
expect_eq "up" "200" "$(curl -s -o /dev/null -w '%{http_code}' "$ES/")"

# --- stats and reset
s=$(curl -s "$CTL/stats")
expect_eq "stats shape" "True" "$(jget 'all(k in d for k in ["bulk_requests","items","created","conflicts","rejected","retryable_errors","docs","requests_by_status","gzip_requests"]) and d["requests_by_status"]["429"] >= 2' <<<"$s")"
curl -s -XPOST "$CTL/reset" >/dev/null
expect_eq "reset" "0 0" "$(curl -s "$CTL/stats" | jget '"%d %d" % (d["docs"], d["items"])')"

# --- auth + TLS on a second emulator
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
  -days 2 -keyout "$TMP/key.pem" -out "$TMP/cert.pem" >/dev/null 2>&1
start S --user elastic --password s3cret --api-key abc123 --cert "$TMP/cert.pem" --key "$TMP/key.pem"
SES="https://127.0.0.1:$S_PORT"
TLS=(--cacert "$TMP/cert.pem")
r=$(curl -s "${TLS[@]}" -w ' %{http_code}' "$SES/")
expect_has "TLS + no auth -> 401" "security_exception" "$r"
expect_has "401 status" " 401" "$r"
expect_eq "wrong password 401" "401" "$(curl -s "${TLS[@]}" -o /dev/null -w '%{http_code}' -u elastic:nope "$SES/")"
expect_eq "basic auth ok" "8.11.0" "$(curl -s "${TLS[@]}" -u elastic:s3cret "$SES/" | jget 'd["version"]["number"]')"
expect_eq "api key ok" "201" "$(printf '%s\n' '{"create":{"_index":"s"}}' '{}' |
  bulk "${TLS[@]}" -H 'Authorization: ApiKey abc123' "$SES/_bulk" | jget 'd["items"][0]["create"]["status"]')"
expect_eq "bad api key 401" "401" "$(curl -s "${TLS[@]}" -o /dev/null -w '%{http_code}' -H 'Authorization: ApiKey zzz' "$SES/")"
expect_eq "plain HTTP to TLS port fails" "000" "$(curl -s -m 3 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$S_PORT/")"

# --- fast mode
start F --fast
r=$(for i in 1 2 3; do printf '%s\n' '{"create":{"_index":"fast"}}' 'not even json'; done |
  bulk "http://127.0.0.1:$F_PORT/_bulk?filter_path=errors,items.*.status")
expect_eq "fast mode answers 201s" '{"errors":false,"items":[{"create":{"status":201}},{"create":{"status":201}},{"create":{"status":201}}]}' "$r"
expect_eq "fast mode counts" "3" "$(curl -s "http://127.0.0.1:$F_CPORT/_emulator/count?index=fast" | jget 'd["count"]')"

# --- clean exit on SIGTERM
kill -TERM "$E_PID"
wait "$E_PID"
expect_eq "SIGTERM exits 0" "0" "$?"

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
