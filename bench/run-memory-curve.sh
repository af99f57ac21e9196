#!/usr/bin/env bash
# Throughput against buffer.memory_limit: runs bench/run-es.sh (full items, the sink answering as a
# proxy or OpenSearch does) and bench/run-kafka.sh at each limit and prints one line per run with
# the limit, rate, CPU per million records and peak RSS (and RSS minus the limit). The machine's
# other load moves the rates: alternate runs (--runs) and read ranges, not single figures.
#
# Usage: bench/run-memory-curve.sh [--limits "16 32 64 128 256"] [--records N] [--runs R]
#                                  [--outputs "es kafka"]
# Env:   SHIPPER, SHIPPER_BENCH, ES_SINK, KAFKA_MOCK as for run-es.sh and run-kafka.sh
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
limits="16 32 64 128 256" records=2000000 runs=1 outputs="es kafka"
while [ $# -gt 0 ]; do
    case $1 in
    --limits) limits=${2:?}; shift 2 ;;
    --records) records=${2:?}; shift 2 ;;
    --runs) runs=${2:?}; shift 2 ;;
    --outputs) outputs=${2:?}; shift 2 ;;
    *) sed -n '/^# Usage:/,/^# Env:/p' "$0" >&2; exit 2 ;;
    esac
done
for r in $(seq "$runs"); do
    for mib in $limits; do
        for out in $outputs; do
            case $out in
            es) line=$(MEMORY_LIMIT=${mib}MiB "$here/run-es.sh" --mode message --full-items \
                --records "$records" | grep '^es/' | tail -1) ;;
            # run-kafka.sh prints its CPU split by thread after the result line
            kafka) line=$(MEMORY_LIMIT=${mib}MiB "$here/run-kafka.sh" --records "$records" |
                grep '^kafka/' | tail -1) ;;
            *) echo "run-memory-curve.sh: unknown output $out" >&2; exit 2 ;;
            esac
            echo "$line" | awk -v l="$mib" -v o="$out" '{
                match($0, /= [0-9.]+ rec\/s/); rate = substr($0, RSTART + 2, RLENGTH - 8)
                match($0, /= [0-9.]+ CPU-s/); cpu = substr($0, RSTART + 2, RLENGTH - 8)
                match($0, /peak RSS [0-9.]+/); rss = substr($0, RSTART + 9, RLENGTH - 9)
                printf "%-5s memory_limit %4d MiB: %8.0f rec/s  %5.2f CPU-s/M  peak RSS %6.1f MiB (limit + %.1f)\n",
                    o, l, rate, cpu, rss, rss - l }'
        done
    done
done
