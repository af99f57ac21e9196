#!/usr/bin/env bash
# bench/report.sh: turns a set of benchmark runs into the README's table (markdown, on stdout)
# and, with --svg, a bar chart drawn by gnuplot (Debian's gnuplot-nox).
#
# Usage: bench/report.sh [--svg FILE] [--title TEXT] [LABEL=]RUN_OUTPUT...
#   RUN_OUTPUT  files holding what bench/run-*.sh printed (one run or several per file; `-` is
#               standard input). LABEL= names the row of that file's runs instead of the name
#               they print (e.g. "forward ack=forward-ack.txt": run-forward.sh --ack prints
#               forward/message too). Result lines are read, everything else is skipped:
#     NAME: N records in T s = R rec/s; shipper CPU C s = X CPU-s per million; peak RSS Y MB
#     jsonfile: N lines, B MB in T s = R MB/s (L lines/s); shipper CPU ... per million; peak RSS Y MB
#   Runs of the same NAME (forward/message, es/message/none, kafka/lz4, jsonfile ...) make one
#   row: its records/s, CPU-s per million records and peak RSS as min–max over the runs (one
#   figure when they agree to the digits shown), the run count, and for json-file MB/s too.
#   --svg FILE  the median records/s of each row as a bar, min–max as an error bar.
# Exit: 0, 1 when no result line was found, 2 on bad usage or when gnuplot is missing for --svg.
set -euo pipefail
svg="" title="shipper benchmarks"
usage() { sed -n '/^# Usage:/,/^# Exit:/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
    case $1 in
    --svg) svg=${2:?}; shift 2 ;;
    --title) title=${2:?}; shift 2 ;;
    -h | --help) usage ;;
    --) shift; break ;;
    -?*) usage ;;
    *) break ;;
    esac
done
[ $# -gt 0 ] || usage
if [ -n "$svg" ] && ! command -v gnuplot >/dev/null; then
    echo "report.sh: --svg needs gnuplot (apt-get install gnuplot-nox)" >&2
    exit 2
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench-report.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# 1. One line per run: name rec/s cpu-per-million rss-MB MB/s (0 when not json-file).
for arg in "$@"; do
    label="" file=$arg
    if [ ! -e "$arg" ] && [[ $arg == *=* ]]; then label=${arg%%=*} file=${arg#*=}; fi
    cat -- "$file" | awk -v label="$label" '
    /^[a-z][a-z0-9_\/.-]*: [0-9]+ records in [0-9.]+ s = [0-9.]+ rec\/s;/ {
        name = substr($1, 1, length($1) - 1)
        match($0, /= [0-9.]+ rec\/s/); rate = substr($0, RSTART + 2, RLENGTH - 8)
        mbs = 0
    }
    /^jsonfile: [0-9]+ lines, [0-9.]+ MB in [0-9.]+ s = [0-9.]+ MB\/s \([0-9.]+ lines\/s\);/ {
        name = "jsonfile"
        match($0, /= [0-9.]+ MB\/s/); mbs = substr($0, RSTART + 2, RLENGTH - 7)
        match($0, /\([0-9.]+ lines\/s/); rate = substr($0, RSTART + 1, RLENGTH - 8)
    }
    name != "" {
        cpu = rss = "-"
        if (match($0, /= [0-9.]+ CPU-s per million/)) cpu = substr($0, RSTART + 2, RLENGTH - 20)
        if (match($0, /peak RSS [0-9.]+ MB/)) rss = substr($0, RSTART + 9, RLENGTH - 12)
        if (label != "") name = label
        gsub(/ /, "\037", name)
        print name, rate + 0, cpu, rss, mbs + 0
        name = ""
    }'
done >"$tmp/runs"
[ -s "$tmp/runs" ] || { echo "report.sh: no benchmark result line in $*" >&2; exit 1; }

# 2. A row per name, in the order first seen: min, median, max of each figure.
awk '
    function fmt_rate(v) {
        if (v >= 1e6) return sprintf("%.2f M", v / 1e6)
        if (v >= 1e3) return sprintf("%.1f k", v / 1e3)
        return sprintf("%.0f", v)
    }
    function unit_of(v) { return v >= 1e6 ? " M" : v >= 1e3 ? " k" : "" }
    function num(v, u) { return u == " M" ? sprintf("%.2f", v / 1e6) : u == " k" ? sprintf("%.1f", v / 1e3) : sprintf("%.0f", v) }
    function range_rate(lo, hi,   u) {
        u = unit_of(hi)
        if (num(lo, u) == num(hi, u)) return fmt_rate(hi)
        return num(lo, u) "–" num(hi, u) u
    }
    function range(lo, hi, f) {
        if (lo == "-") return "-"
        return sprintf(f, lo) == sprintf(f, hi) ? sprintf(f, hi) : sprintf(f, lo) "–" sprintf(f, hi)
    }
    function sortn(a, n,   i, j, t) { for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t } }
    {
        if (!($1 in n)) order[++rows] = $1
        k = ++n[$1]
        rate[$1, k] = $2; cpu[$1, k] = $3; rss[$1, k] = $4; mbs[$1, k] = $5
    }
    END {
        print "| scenario | runs | records/s | CPU-s per M records | peak RSS |"
        print "|---|---|---|---|---|"
        for (r = 1; r <= rows; r++) {
            s = order[r]; m = n[s]
            delete R; delete C; delete S; delete B
            for (i = 1; i <= m; i++) { R[i] = rate[s, i]; C[i] = cpu[s, i]; S[i] = rss[s, i]; B[i] = mbs[s, i] }
            sortn(R, m); sortn(B, m)
            if (C[1] != "-") sortn(C, m)
            if (S[1] != "-") sortn(S, m)
            med = m % 2 ? R[(m + 1) / 2] : (R[m / 2] + R[m / 2 + 1]) / 2
            rates = range_rate(R[1], R[m])
            if (B[m] > 0) rates = range(B[1], B[m], "%.0f") " MB/s (" rates " lines/s)"
            rs = range(S[1], S[m], "%.0f"); if (rs != "-") rs = rs " MB"
            label = s; gsub(/\037/, " ", label)
            printf "| %s | %d | %s | %s | %s |\n", label, m, rates, range(C[1], C[m], "%.2f"), rs
            printf "%s %.0f %.0f %.0f\n", s, med, R[1], R[m] > "/dev/stderr"
        }
    }' "$tmp/runs" 2>"$tmp/chart"

# 3. The chart: a bar per row (median), an error bar from min to max.
if [ -n "$svg" ]; then
    awk '{ gsub(/\037/, " ", $1); printf "%d \"%s\" %.6f %.6f %.6f\n", NR - 1, $1, $2 / 1e6, $3 / 1e6, $4 / 1e6 }' \
        "$tmp/chart" >"$tmp/chart.dat"
    gnuplot <<GP
set terminal svg size 900,480 dynamic font "sans,11"
set output "$svg"
set title "$title"
set ylabel "million records/s (median; bar: min–max)"
set style fill solid 0.6 border -1
set boxwidth 0.6
set grid ytics
set yrange [0:*]
set xtics rotate by -30 nomirror
set key off
plot "$tmp/chart.dat" using 1:3:xtic(2) with boxes lc rgb "#4477aa", \
     "" using 1:3:4:5 with yerrorbars lc rgb "#222222" pt 0
GP
    echo "report.sh: chart in $svg" >&2
fi
