#!/usr/bin/env bash
# json-file record ids name (container, file, byte offset); the file is named by its first line.
# Two files of one container (the current one and its rotation .1, plain or .1.gz) whose first
# lines begin with the same 400 bytes — a long fixed-width or padded line — but differ further on
# (Docker's nanosecond time ends every line) must not share ids: with Elasticsearch the second
# file's records at the same offsets would be answered 409 and counted delivered, i.e. lost.
# The old code named a file by its first 256 bytes only: both files got the same ids, and the
# emulator (which dedupes by _id) kept half of the lines.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/es_lib.sh"
C=$T/containers
ID=$(printf 'a%.0s' $(seq 64))
mkdir -p "$C/$ID"
printf '{"Name":"/ids","Config":{"Image":"img","Labels":{}}}\n' >"$C/$ID/config.v2.json"
L=$C/$ID/$ID-json.log
pad=$(printf '%0400d' 0)
# file FILE FROM: 20 lines of equal length; the first begins with 400 equal bytes in every file.
file() {
    local i
    for ((i = $2; i < $2 + 20; i++)); do
        printf '{"log":"%s seq=%04d\\n","stream":"stdout","time":"2026-11-29T04:09:33.%09dZ"}\n' \
            "$pad" "$i" "$i"
    done >"$1"
}
file "$L" 0
start_emu es
HTTP=127.0.0.1:$(free_port)
cat >"$T/cfg.yaml" <<CFG
service: {http_listen: "$HTTP"}
buffer: {flush_interval: 100ms}
inputs:
  - {type: docker_logs, path: "$C", read_from: start, poll_interval: 50ms}
outputs:
  - {type: elasticsearch, url: "http://127.0.0.1:$EMU_PORT", index: ids}
CFG
start_shipper s -c "$T/cfg.yaml"
wait_ready "$HTTP" || { cat "$T/s.err"; exit 1; }
wait_metric "$HTTP" 'shipper_output_records_total{output="elasticsearch",result="delivered"}' 20 20
log "rotate as Docker does (the file becomes .1), a new file with the same first 400 bytes"
mv "$L" "$L.1"; file "$L" 20
wait_metric "$HTTP" 'shipper_output_records_total{output="elasticsearch",result="delivered"}' 40 20
log "again, and the rotation compressed (.2.gz)"
mv "$L.1" "$L.2"; gzip "$L.2"; mv "$L" "$L.1"; file "$L" 40
wait_metric "$HTTP" 'shipper_output_records_total{output="elasticsearch",result="delivered"}' 60 20
log "truncated under Docker's feet: Docker goes on writing at its offset, the file begins with NULs"
S=$(stat -c %s "$L")
# holed FILE FROM: 20 lines written at offset S of FILE (a hole of S NUL bytes before them).
holed() { file "$T/lines" "$2"; python3 -c 'import sys; f = open(sys.argv[1], "r+b" if sys.argv[3] == "keep" else "wb"); f.seek(int(sys.argv[2])); f.write(open(sys.argv[4], "rb").read())' "$1" "$S" "$3" "$T/lines"; }
truncate -s 0 "$L"; holed "$L" 60 keep
wait_metric "$HTTP" 'shipper_output_records_total{output="elasticsearch",result="delivered"}' 80 20
log "rotated, and the new file has a hole of the same size before its lines"
rm -f "$L.2.gz"; mv "$L.1" "$L.2"; mv "$L" "$L.1"; holed "$L" 80 new
wait_metric "$HTTP" 'shipper_output_records_total{output="elasticsearch",result="delivered"}' 100 20
stop_shipper
log "a restart reads the three files again from their start (no saved offsets): the same ids"
start_shipper s2 -c "$T/cfg.yaml"
wait_ready "$HTTP" || { cat "$T/s2.err"; exit 1; }
sleep 1
n=$(emu_count ids)
check_eq "every line of the files is its own document (distinct ids; after NULs too)" 100 "$n"
emu GET "/_emulator/docs?index=ids" | grep -o 'seq=00[68]0' | sort -u >"$T/first"
check_eq "the first line after the NULs is shipped (not taken for a corrupt line)" "seq=0060 seq=0080" "$(tr '\n' ' ' <"$T/first" | sed 's/ $//')"
finish
