#!/usr/bin/env bash
# bench/report.sh on fixture outputs of bench/run-*.sh (tests/integration/fixtures/bench/): the
# markdown table (rows in order first seen, min–max over the runs of a name, json-file's MB/s,
# a LABEL= row, noise lines skipped), the SVG chart drawn by gnuplot, and its errors.
. "$(dirname "$0")/lib.sh"
R="$ROOT/bench/report.sh"
F="$ROOT/tests/integration/fixtures/bench"
command -v gnuplot >/dev/null || skip "gnuplot not installed (tests/deps.sh installs gnuplot-nox)"

bash "$R" --svg "$T/chart.svg" --title "fixture runs" "$F/forward-1.txt" "$F/forward-2.txt" \
    "$F/mixed.txt" "forward ack=$F/ack.txt" >"$T/table.md" 2>"$T/err"
check_eq "exit code" 0 $?
cat "$T/table.md"
row() { grep -F "| $1 |" "$T/table.md"; }
check_eq "header" "| scenario | runs | records/s | CPU-s per M records | peak RSS |" "$(head -1 "$T/table.md")"
check_eq "rows (order first seen)" "forward/message forward/packed jsonfile kafka/lz4 forward ack" \
    "$(tail -n +3 "$T/table.md" | cut -d'|' -f2 | sed 's/^ //; s/ $//' | paste -sd' ')"
check_eq "three runs, min–max" "| forward/message | 3 | 3.91–4.24 M | 0.19–0.21 | 10 MB |" "$(row forward/message)"
check_eq "two runs" "| forward/packed | 2 | 6.10–6.41 M | 0.13–0.14 | 11 MB |" "$(row forward/packed)"
check_eq "json-file: MB/s and lines/s" \
    "| jsonfile | 2 | 639–677 MB/s (3.45–3.70 M lines/s) | 0.26–0.28 | 11 MB |" "$(row jsonfile)"
check_eq "one run: one figure" "| kafka/lz4 | 1 | 500.0 k | 1.20 | 60 MB |" "$(row kafka/lz4)"
check_eq "LABEL= row" "| forward ack | 2 | 41.0–41.7 k | 23.00–23.90 | 10 MB |" "$(row 'forward ack')"

check "the chart is an SVG document" grep -q '<svg' "$T/chart.svg"
check "the chart has its title" grep -q 'fixture runs' "$T/chart.svg"
for s in forward/message forward/packed jsonfile kafka/lz4 'forward ack'; do
    check "the chart labels $s" grep -qF "$s" "$T/chart.svg"
done
python3 -c 'import sys, xml.dom.minidom as m; m.parse(sys.argv[1])' "$T/chart.svg"
check_eq "the chart is well-formed XML" 0 $?

printf 'nothing here\n' >"$T/empty.txt"
bash "$R" "$T/empty.txt" >/dev/null 2>&1
check_eq "no result line: exit 1" 1 $?
bash "$R" >/dev/null 2>&1
check_eq "no file: usage, exit 2" 2 $?
finish
