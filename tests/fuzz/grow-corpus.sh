#!/usr/bin/env bash
# tests/fuzz/grow-corpus.sh [SECONDS] [HARNESS...]: fuzzes each harness (default: all) for
# SECONDS (90) from its checked-in corpus, then merges what found new coverage into
# tests/fuzz/corpus/<harness> (libFuzzer -merge=1: only inputs that add coverage are kept).
# tests/run.sh fuzzes each harness 10 s from that corpus, so a suite run starts where these
# longer runs left off (tests/fuzz/README.md). Needs the fuzz build:
#   cmake -G Ninja -S . -B build-fuzz -DFUZZ=ON -DCMAKE_C_COMPILER=clang && cmake --build build-fuzz --target fuzz
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=${BUILD_FUZZ:-$ROOT/build-fuzz}
secs=${1:-90}
[ $# -gt 0 ] && shift
names=("$@")
[ ${#names[@]} -gt 0 ] || for f in "$B"/fuzz_*; do names+=("$(basename "$f")"); done
for n in "${names[@]}"; do
    n=fuzz_${n#fuzz_}
    [ -x "$B/$n" ] || { echo "$B/$n not built" >&2; exit 1; }
    c=$ROOT/tests/fuzz/corpus/${n#fuzz_}
    w=$(mktemp -d "${TMPDIR:-/tmp}/$n.XXXXXX")
    mkdir -p "$c"
    "$B/$n" -max_total_time="$secs" -rss_limit_mb=2048 "$w" "$c" >"$w.log" 2>&1 ||
        { tail -30 "$w.log"; exit 1; }
    "$B/$n" -merge=1 -rss_limit_mb=2048 "$c" "$w" >>"$w.log" 2>&1 || { tail -30 "$w.log"; exit 1; }
    echo "$n: $(ls "$c" | wc -l) inputs, $(grep -o 'cov: [0-9]*' "$w.log" | tail -1)"
    rm -rf "$w" "$w.log"
done
