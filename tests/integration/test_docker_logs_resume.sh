#!/usr/bin/env bash
# docker_logs restart with rotations made while shipper was down (no Docker: the test makes
# the containers directory and rotates the files itself, as Docker's json-file driver does:
# <id>-json.log -> .1 -> .2 ..., with compress=true .N.gz, the oldest deleted at max-file).
# Run 1 reads every file and stops cleanly (offsets saved exactly); the files are then rotated,
# appended to, compressed and deleted; run 2 must ship every line still on disk exactly once,
# ship nothing twice (but for h, below), and count in shipper_tail_lost_files_total each saved
# file that Docker deleted before shipper could finish it.
#   a: the saved file is now .1                  b: the saved file is now .2
#   c: the saved file was deleted (max-file=3)   d: the saved file is now .2.gz (compress=true)
#   e: the saved file was deleted and its inode now belongs to .1 (fingerprint differs)
#   f: the oldest file was deleted, but shipper had read it all (nothing lost)
#   g: shipper starts in the middle of a rotation: the saved file is .3, and .1 is missing for
#      the moment (.1 was renamed to .2, the current file is not yet renamed to .1)
#   h: the saved file is now .1.gz, but its first line is longer than the 256 bytes that identify
#      it: it cannot be told from another file that begins alike, so every file is read again
#      from its start (duplicates, not counted as lost)
. "$(dirname "$0")/lib.sh"

C=$T/containers
id_of() { printf "$1%.0s" $(seq 64); }
A=$(id_of a) B=$(id_of b) CC=$(id_of c) D=$(id_of d) E=$(id_of e) F=$(id_of f) G=$(id_of 9) H=$(id_of 8)
logf() { echo "$C/$1/$1-json.log"; }
# lines ID FROM TO: appends "seq I" lines in Docker's format to the current file.
lines() {
    local i
    for ((i = $2; i < $3; i++)); do
        printf '{"log":"seq %d\\n","stream":"stdout","time":"2026-11-29T04:09:33.%09dZ"}\n' $i $i
    done >>"$(logf "$1")"
}
long_line() { # ID: one 400-byte line
    printf '{"log":"%0400d L\\n","stream":"stdout","time":"2026-11-29T04:09:34.000000001Z"}\n' 0 \
        >>"$(logf "$1")"
}
# rotate ID MAXFILE [gz]: Docker's rotation: delete .MAXFILE-1, shift .N -> .N+1, the current file
# becomes .1 (compressed when gz), and a new empty current file is made.
rotate() {
    local l ext="" i
    l=$(logf "$1")
    [ "${3:-}" = gz ] && ext=.gz
    rm -f "$l.$(($2 - 1))$ext"
    for ((i = $2 - 1; i > 1; i--)); do [ -e "$l.$((i - 1))$ext" ] && mv "$l.$((i - 1))$ext" "$l.$i$ext"; done
    mv "$l" "$l.1"
    [ -n "$ext" ] && gzip "$l.1"
    : >"$l"
}
seqs() { # NAME: the seq numbers shipped for container NAME, in order, space-separated
    cat "$T"/run*.out | python3 -c '
import json, sys
n = sys.argv[1]
print(" ".join(json.loads(l)["message"].split()[-1] for l in sys.stdin
               if json.loads(l)["container"]["name"] == n))' "$1"
}
delivered() { metric "$HTTP" 'shipper_output_records_total{output="stdout",result="delivered"}'; }
# wait_read N: N records delivered and every rotated file read to its end and closed (only the
# 8 current files open), so a file read twice has been read by then and shows in the checks.
wait_read() {
    for _ in $(seq 100); do
        [ "$(delivered)" -ge "$1" ] &&
            [ "$(metric "$HTTP" 'shipper_tail_files{input="docker_logs"}')" = 8 ] && return 0
        sleep 0.1
    done
    fail "wanted $1 records delivered and 8 files open"
}

for x in "$A a" "$B b" "$CC c" "$D d" "$E e" "$F f" "$G g" "$H h"; do
    set -- $x
    fake_container "$C" "$1" "$2"
    [ "$2" = h ] && long_line "$1"
    lines "$1" 0 10
done
HTTP=127.0.0.1:$(free_port)
docker_logs_conf "$C" "$HTTP" >"$T/cfg.yaml"

log "run 1: every file read, then f rotates once while shipper runs"
start_shipper run1 -c "$T/cfg.yaml"
wait_ready "$HTTP" || { cat "$T/run1.err"; exit 1; }
wait_metric "$HTTP" 'shipper_output_records_total{output="stdout",result="delivered"}' 81 10
rotate "$F" 3
lines "$F" 10 15
wait_metric "$HTTP" 'shipper_output_records_total{output="stdout",result="delivered"}' 86 10
stop_shipper
check_eq "run 1 exit code" 0 "$SHIPPER_RC"
check_eq "run 1 records" 86 "$(wc -l <"$T/run1.out")"
cp "$T/state/docker_logs.offsets" "$T/offsets.run1"

log "while shipper is down: rotations, compression, deletions"
# a: saved file -> .1
lines "$A" 10 15; rotate "$A" 5; lines "$A" 15 20
# b: saved file -> .2
lines "$B" 10 15; rotate "$B" 5; lines "$B" 15 20; rotate "$B" 5; lines "$B" 20 25
# c: max-file=3: the saved file (0..14) is deleted by the third rotation
lines "$CC" 10 15; rotate "$CC" 3; lines "$CC" 15 20; rotate "$CC" 3; lines "$CC" 20 25
rotate "$CC" 3; lines "$CC" 25 30
check "c: the saved file is gone" [ ! -e "$(logf "$CC").3" ]
# d: compress=true: the saved file is now .2.gz (a new inode), read from the saved offset
lines "$D" 10 15; rotate "$D" 5 gz; lines "$D" 15 20; rotate "$D" 5 gz; lines "$D" 20 25
check "d: the saved file is .2.gz" [ -e "$(logf "$D").2.gz" ] && [ ! -e "$(logf "$D").2" ]
# e: the saved file (0..14) is deleted; its inode number now belongs to .1 (forced in the offsets
# file, as the file system may or may not reuse it on its own): the fingerprint tells them apart.
lines "$E" 10 15; rotate "$E" 3; lines "$E" 15 20; rotate "$E" 3; lines "$E" 20 25
rm "$(logf "$E").2"
ino=$(stat -c %i "$(logf "$E").1")
awk -v id="$E" -v ino="$ino" '$1 == id { $3 = ino } { print }' "$T/offsets.run1" \
    >"$T/state/docker_logs.offsets"
check "e: the saved inode is now .1's" grep -q "^$E [0-9]* $ino " "$T/state/docker_logs.offsets"
# f: the saved file (10..19) becomes .1, then .2; the older .2 (0..9, all shipped in run 1) is
# deleted: nothing is lost
lines "$F" 15 20; rotate "$F" 3; lines "$F" 20 25
rm "$(logf "$F").2"
rotate "$F" 3; lines "$F" 25 30
check "f: the saved file is .2" [ -e "$(logf "$F").2" ]
# g: max-file=5; two rotations, then the third stopped half-way: .2 -> .3, .1 -> .2, and no .1
lines "$G" 10 15; rotate "$G" 5; lines "$G" 15 20; rotate "$G" 5; lines "$G" 20 25
mv "$(logf "$G").2" "$(logf "$G").3" && mv "$(logf "$G").1" "$(logf "$G").2"
check "g: .1 is missing" [ ! -e "$(logf "$G").1" ]
# h: compress=true, the saved file (a 400-byte line, then 0..9) is now .1.gz
lines "$H" 10 15; rotate "$H" 5 gz; lines "$H" 15 20

log "run 2: every line still on disk, once"
start_shipper run2 -c "$T/cfg.yaml"
wait_ready "$HTTP" || { cat "$T/run2.err"; exit 1; }
# a 10 + b 15 + c 15 + d 15 + e 10 + f 15 + g 15 lines are on disk and not yet shipped, and h's
# 21 are read again
want=116
wait_read $want
lost=$(metric "$HTTP" 'shipper_tail_lost_files_total{input="docker_logs"}')
stop_shipper
check_eq "run 2 exit code" 0 "$SHIPPER_RC"
check_eq "run 2 records" $want "$(wc -l <"$T/run2.out")"
check_eq "a: saved file rotated to .1" "$(seq -s ' ' 0 19)" "$(seqs a)"
check_eq "b: saved file rotated to .2" "$(seq -s ' ' 0 24)" "$(seqs b)"
check_eq "c: saved file deleted; its unread lines (10-14) are the only loss" \
    "$(seq -s ' ' 0 9) $(seq -s ' ' 15 29)" "$(seqs c)"
check_eq "d: saved file compressed to .2.gz" "$(seq -s ' ' 0 24)" "$(seqs d)"
check_eq "e: saved inode reused by another file" "$(seq -s ' ' 0 9) $(seq -s ' ' 15 24)" "$(seqs e)"
check_eq "f: an already shipped file deleted" "$(seq -s ' ' 0 29)" "$(seqs f)"
check_eq "g: a rotation half done" "$(seq -s ' ' 0 24)" "$(seqs g)"
check_eq "h: a compressed saved file not told apart: read again" \
    "L $(seq -s ' ' 0 9) L $(seq -s ' ' 0 19)" "$(seqs h)"
check "h: logged" grep -q "${H:0:12}: the file of the saved offset is not certainly among" "$T/run2.err"
check_eq "lost files counted (c and e)" 2 "$lost"
check "the loss is logged" grep -q "deleted before" "$T/run2.err"

log "run 3: a restart after that resumes exactly (nothing again)"
lines "$CC" 30 32
start_shipper run3 -c "$T/cfg.yaml"
wait_ready "$HTTP" || { cat "$T/run3.err"; exit 1; }
wait_read 2
check_eq "run 3 lost files" 0 "$(metric "$HTTP" 'shipper_tail_lost_files_total{input="docker_logs"}')"
stop_shipper
check_eq "run 3 records" 2 "$(wc -l <"$T/run3.out")"
finish
