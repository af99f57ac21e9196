#!/usr/bin/env bash
# ctest man_pages: shipper(1) and shipper.yaml(5), as `shipper --man` writes them (and CMake
# installs them), document every config key. The oracle is independent of the generator: every
# key of every field table in the sources ({"key", SP_CONF_...}) must appear as a `.B key` entry
# in shipper.yaml(5); both pages render with `man -l` without a single troff warning.
# usage: test_man_pages.sh SHIPPER SOURCE_DIR
set -uo pipefail
SHIPPER=$1 SRC=$2
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
"$SHIPPER" --man 1 >"$T/shipper.1" || fail "--man 1 exit code"
"$SHIPPER" --man 5 >"$T/shipper.yaml.5" || fail "--man 5 exit code"
"$SHIPPER" --man 3 >/dev/null 2>&1 && fail "--man 3 accepted"

keys=$(cat $(grep -rl SP_CONF_ "$SRC"/shipper "$SRC"/inputs "$SRC"/outputs "$SRC"/filters --include='*.c') |
    tr -s ' \n' ' ' | grep -oE '\{ ?"[a-z_0-9.]+", SP_CONF_[A-Z]+' | sed -E 's/\{ ?"([^"]+)".*/\1/' | sort -u)
n=0
for k in $keys; do
    n=$((n + 1))
    grep -qxF ".B $k" "$T/shipper.yaml.5" || fail "key $k is not in shipper.yaml(5)"
done
[ "$n" -ge 50 ] || fail "only $n keys found in the sources (the scan is broken)"
echo "ok: $n config keys, each in shipper.yaml(5)"
for t in $("$SHIPPER" --man 1 | sed -n 's/^\(Inputs\|Filters\|Outputs\): //p' | tr -d '.' | tr ',' ' '); do
    grep -qxF ".SS type: $t" "$T/shipper.yaml.5" || fail "type $t has no section in shipper.yaml(5)"
done
for p in shipper.1 shipper.yaml.5; do
    w=$(MANWIDTH=80 man --warnings -l "$T/$p" 2>&1 >"$T/$p.txt")
    [ -z "$w" ] || fail "man -l $p warns: $w"
    [ "$(wc -l <"$T/$p.txt")" -gt 40 ] || fail "man -l $p rendered $(wc -l <"$T/$p.txt") lines"
done
grep -q 'http_reload' "$T/shipper.yaml.5.txt" || fail "rendered page lacks http_reload"
[ "$fails" -eq 0 ] && echo "all checks passed" || { echo "$fails check(s) failed"; exit 1; }
