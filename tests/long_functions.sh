#!/usr/bin/env bash
# Lists C functions longer than a limit (default 80 lines, from the line of the opening brace to
# the closing one), longest first: `tests/long_functions.sh [LIMIT] [DIR...]`. A check for review
# (docs/architecture.md, "Layers"); it reads the code as text and relies on the house style
# (clang-format: a function's braces stand alone at column 0). Exits 0 whatever it finds.
limit=${1:-80}
shift 2>/dev/null
dirs=("$@")
[ ${#dirs[@]} -gt 0 ] || dirs=(shipper inputs outputs filters)
cd "$(dirname "$0")/.." || exit 1
find "${dirs[@]}" -name '*.c' -print0 | sort -z | xargs -0 awk -v limit="$limit" '
    FNR == 1 { name = ""; start = 0 }
    /^[A-Za-z_].*\(/ && !/;[ \t]*$/ { sig = $0 }
    /^\{/ { start = FNR; name = sig; sub(/\(.*/, "", name); n = split(name, w, /[ *]+/); name = w[n] }
    /^\}/ && start { len = FNR - start + 1; if (len > limit) printf "%5d %s:%d %s\n", len, FILENAME, start, name; start = 0 }
' | sort -rn
