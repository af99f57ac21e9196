#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds (Release and ASan+UBSan), runs unit
# tests under both, the fuzz harnesses briefly, and every integration test against real
# components (dockerd, the Kafka mock cluster, the Elasticsearch emulator).
#   tests/run.sh                 everything
#   tests/run.sh unit            unit tests only (both builds)
#   tests/run.sh integration [PATTERN]   integration tests whose file name contains PATTERN
# An integration test exits 0 (pass), 77 (SKIP: it could not run here; its last "SKIP: reason"
# line says why) or anything else (fail). A skip is not a pass: it is listed and counted apart.
# The exit status is 0 when nothing failed, skips included.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
what=${1:-all}
pattern=${2:-}
JOBS=$(nproc 2>/dev/null || echo 2)

"$ROOT/tests/deps.sh" || { echo "dependency install failed"; exit 1; }

passed=0; failed=0; skipped=0; failed_names=(); skipped_names=()
result() { # NAME RC [LOG]: with a LOG, exit code 77 is a skip whose reason is the log's SKIP line
    if [ "$2" -eq 0 ]; then passed=$((passed + 1)); echo "PASS $1";
    elif [ "$2" -eq 77 ] && [ -n "${3:-}" ]; then
        local why
        why=$(grep '^SKIP: ' "$3" 2>/dev/null | tail -1); why=${why#SKIP: }
        skipped=$((skipped + 1)); skipped_names+=("$1 (${why:-no reason given})")
        echo "SKIP $1 (${why:-no reason given})"
    else failed=$((failed + 1)); failed_names+=("$1"); echo "FAIL $1"; fi
}

build() { # DIR EXTRA-CMAKE-ARGS...
    local dir=$1; shift
    mkdir -p "$dir"
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@" >"$dir/cmake.log" 2>&1 &&
        cmake --build "$dir" -j"$JOBS" >"$dir/build.log" 2>&1 ||
        { echo "build $dir failed:"; tail -30 "$dir/build.log" "$dir/cmake.log" 2>/dev/null; return 1; }
}

echo "== build (Release)"
mkdir -p build
build build || exit 1

if [ "$what" = all ] || [ "$what" = unit ]; then
    echo "== unit tests (Release)"
    (cd build && ctest --output-on-failure -j"$JOBS") ; result "unit (Release)" $?
    echo "== build (ASan+UBSan) and unit tests under sanitizers"
    mkdir -p build-asan
    if build build-asan -DSANITIZE=ON; then
        (cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
            ctest --output-on-failure -j"$JOBS"); result "unit (ASan+UBSan)" $?
        # The protocol tests, the spool and shutdown: the daemon built with sanitizers, driven
        # by real clients.
        for t in tests/integration/test_forward_protocol.sh tests/integration/test_forward_auth.sh \
            tests/integration/test_forward_tls.sh tests/integration/test_forward_fluentbit.sh \
            tests/integration/test_forward_ack_delivered.sh \
            tests/integration/test_forward_output.sh \
            tests/integration/test_bad_input.sh \
            tests/integration/test_spool.sh tests/integration/test_shutdown.sh \
            tests/integration/test_upgrade.sh; do
            [ -f "$t" ] || continue
            BUILD="$ROOT/build-asan" ASAN_OPTIONS=detect_leaks=1 timeout 300 bash "$t" \
                >"build-asan/$(basename "$t").log" 2>&1
            rc=$?; result "$(basename "$t" .sh) (ASan+UBSan)" $rc "build-asan/$(basename "$t").log"
            [ $rc -eq 0 ] || [ $rc -eq 77 ] || tail -40 "build-asan/$(basename "$t").log"
        done
    else
        result "build (ASan+UBSan)" 1
    fi
    if command -v clang >/dev/null; then
        echo "== fuzz (bounded)"
        mkdir -p build-fuzz
        if build build-fuzz -DFUZZ=ON -DCMAKE_C_COMPILER=clang; then
            for f in build-fuzz/fuzz_*; do
                [ -x "$f" ] || continue
                name=$(basename "$f")
                corpus="tests/fuzz/corpus/${name#fuzz_}"
                mkdir -p "build-fuzz/corpus-$name"
                "$f" -max_total_time=20 -rss_limit_mb=2048 "build-fuzz/corpus-$name" \
                    $( [ -d "$corpus" ] && echo "$corpus" ) >"build-fuzz/$name.log" 2>&1
                rc=$?; result "$name (20 s)" $rc
                [ $rc -eq 0 ] || tail -30 "build-fuzz/$name.log"
            done
        else
            result "build (fuzz)" 1
        fi
    fi
fi

if [ "$what" = all ] || [ "$what" = integration ]; then
    echo "== integration tests"
    (cd tests/rigs/fluent_client && [ -d node_modules ] || npm ci --silent --no-audit --no-fund >/dev/null 2>&1) ||
        echo "warning: npm ci failed in tests/rigs/fluent_client"
    "$ROOT/tests/rigs/dockerd.sh" >/dev/null || echo "warning: dockerd could not be started"
    for t in tests/integration/test_*.sh; do
        case "$(basename "$t")" in *"$pattern"*) ;; *) continue ;; esac
        start=$(date +%s)
        timeout 300 bash "$t" >"build/$(basename "$t").log" 2>&1
        rc=$?
        echo "   ($(( $(date +%s) - start )) s)"
        result "$(basename "$t" .sh)" $rc "build/$(basename "$t").log"
        [ $rc -eq 0 ] || [ $rc -eq 77 ] || tail -40 "build/$(basename "$t").log"
    done
fi

echo
[ ${#skipped_names[@]} -eq 0 ] || printf 'skipped: %s\n' "${skipped_names[@]}"
[ ${#failed_names[@]} -eq 0 ] || printf 'failed: %s\n' "${failed_names[@]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
