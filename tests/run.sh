#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds (Release and ASan+UBSan), runs unit
# tests under both, the fuzz harnesses briefly, and every integration test against real
# components (dockerd, the Kafka mock cluster, the Elasticsearch emulator).
#   tests/run.sh                 everything
#   tests/run.sh unit            unit tests only (both builds)
#   tests/run.sh integration [PATTERN]   integration tests whose file name contains PATTERN
# An integration test exits 0 (pass), 77 (SKIP: it could not run here; its last "SKIP: reason"
# line says why) or anything else (fail). A skip is not a pass: it is listed and counted apart.
# The exit status is 0 when nothing failed, skips included. Tests run three at a time, the fuzzers
# two (SUITE_LANES=N: N at a time, 1: one by one); a test marked `# suite: alone` runs by itself,
# one marked `# suite: docker-alone` beside no other Docker test, and one marked
# `# suite: asan` also runs against the ASan+UBSan build.
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

# A pool of background jobs, at most N at a time (two cores: most integration tests wait on
# sockets and timers, so two at a time nearly halves the wall time). Results are reported as
# jobs finish, each with its log.
#   pool_run MAX NAME LOG CMD...   starts CMD (output to LOG) once fewer than MAX jobs run
#   pool_drain                     waits for every job
# A job started with MAX=1 runs alone: nothing else starts until it has finished.
declare -A pool_name=() pool_log=() pool_start=()
pool_reap() {
    local pid rc
    wait -n -p pid "${!pool_name[@]}"; rc=$?
    echo "   ($(( $(date +%s) - ${pool_start[$pid]} )) s)"
    result "${pool_name[$pid]}" $rc "${pool_log[$pid]}"
    [ $rc -eq 0 ] || [ $rc -eq 77 ] || tail -40 "${pool_log[$pid]}"
    unset "pool_name[$pid]" "pool_log[$pid]" "pool_start[$pid]" "pool_class[$pid]"
}
pool_run() {
    local max=$1 name=$2 log=$3; shift 3
    while [ ${#pool_name[@]} -ge "$max" ]; do pool_reap; done
    "$@" >"$log" 2>&1 &
    pool_name[$!]=$name; pool_log[$!]=$log; pool_start[$!]=$(date +%s)
    if [ "$max" -eq 1 ]; then pool_reap; fi
}
pool_drain() { while [ ${#pool_name[@]} -gt 0 ]; do pool_reap; done; }

# The integration tests' scheduler: a queue of tests, each of a class that says what may run
# beside it, started in queue order into at most LANES lanes.
#   alone        nothing beside it (CPU- or timing-sensitive: a latency percentile, a flood that
#                must not outrun rotation)
#   docker-alone no other test that uses dockerd beside it (dockerd's log, Docker's copier, the
#                json-file directory); a test that never touches Docker may run beside it
#   docker       uses dockerd (its file, or a script it names, mentions docker)
#   plain        neither
# A test starts when a lane is free, nothing running conflicts with it, and no test queued
# before it conflicts with it (so a waiting alone or docker-alone test is not starved by the
# tests behind it: only tests it may run beside overtake it).
#   sched_add CLASS NAME LOG CMD...   queues a test
#   sched_drain                       runs the queue to the end
declare -a q_class=() q_name=() q_log=() q_cmd=()
declare -A pool_class=()
sched_class() { # FILE: the class of an integration test from its header and body
    local f=$1 p q
    grep -q '^# suite: alone' "$f" && { echo alone; return; }
    grep -q '^# suite: docker-alone' "$f" && { echo docker-alone; return; }
    if grep -qiE 'docker|shipper_image|track_container' "$f"; then echo docker; return; fi
    for p in $(grep -oE '[A-Za-z0-9_]+\.py' "$f" | sort -u); do
        for q in tests/integration tests/rigs tests/chaos; do
            [ -f "$q/$p" ] && grep -qi docker "$q/$p" && { echo docker; return; }
        done
    done
    echo plain
}
sched_conflict() { # CLASS CLASS
    case "$1/$2" in
    alone/* | */alone | docker-alone/docker | docker-alone/docker-alone | docker/docker-alone) return 0 ;;
    esac
    return 1
}
sched_add() {
    local i=${#q_class[@]}
    q_class[i]=$1 q_name[i]=$2 q_log[i]=$3
    shift 3
    q_cmd[i]=$(printf '%q ' "$@")
}
sched_startable() { # INDEX: 0 when the queued test may start now
    local i=$1 c=${q_class[$1]} pid j
    [ ${#pool_name[@]} -lt "$LANES" ] || return 1
    for pid in "${!pool_class[@]}"; do sched_conflict "$c" "${pool_class[$pid]}" && return 1; done
    for j in "${!q_class[@]}"; do
        [ "$j" -lt "$i" ] || break
        sched_conflict "$c" "${q_class[$j]}" && return 1
    done
    return 0
}
sched_drain() {
    local i started
    while [ ${#q_class[@]} -gt 0 ] || [ ${#pool_name[@]} -gt 0 ]; do
        started=
        for i in "${!q_class[@]}"; do
            sched_startable "$i" || continue
            eval "${q_cmd[$i]}" >"${q_log[$i]}" 2>&1 &
            pool_name[$!]=${q_name[$i]} pool_log[$!]=${q_log[$i]} pool_start[$!]=$(date +%s)
            pool_class[$!]=${q_class[$i]}
            unset "q_class[$i]" "q_name[$i]" "q_log[$i]" "q_cmd[$i]"
            started=1
            break
        done
        [ -n "$started" ] && continue
        pool_reap
    done
}
# Three lanes for the tests (they mostly wait on sockets, timers and dockerd: the integration
# phase passed twice at 3 lanes, 67 passed each time, at load 6-8 from other work on the 2-core
# machine); the fuzzers, CPU-bound, two at most.
LANES=${SUITE_LANES:-3}
FUZZ_LANES=$((LANES < 2 ? LANES : 2))

# build DIR TARGET EXTRA-CMAKE-ARGS...: configures DIR and builds TARGET (all, or fuzz: the
# harnesses alone). Ninja when installed (tests/deps.sh installs it): less work per step than
# make's recursive makefiles and better use of -j2 (3 paired fresh builds on the loaded 2-core
# machine: ASan 103/88/78 s with make, 68/74/75 s with Ninja, 105-109 against 88-94 CPU-s; the
# fuzz build, all targets with make against the harnesses with Ninja: 92/110/139 s against
# 30/50/45 s). A directory an earlier run configured keeps its generator (cmake cannot switch).
build() {
    local dir=$1 target=$2 gen=()
    shift 2
    mkdir -p "$dir"
    [ -f "$dir/CMakeCache.txt" ] || ! command -v ninja >/dev/null || gen=(-G Ninja)
    cmake "${gen[@]}" -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@" >"$dir/cmake.log" 2>&1 &&
        cmake --build "$dir" -j"$JOBS" --target "$target" >"$dir/build.log" 2>&1 ||
        { echo "build $dir failed:"; tail -30 "$dir/build.log" "$dir/cmake.log" 2>/dev/null; return 1; }
}

echo "== build (Release)"
mkdir -p build
build build all || exit 1
# The Node Forward client, before any test can use it (tests run side by side).
(cd tests/rigs/fluent_client && flock .npm.lock sh -c \
    '[ -f node_modules/@fluent-org/logger/package.json ] || npm ci --silent --no-audit --no-fund >/dev/null 2>&1') ||
    echo "warning: npm ci failed in tests/rigs/fluent_client"

if [ "$what" = all ] || [ "$what" = unit ]; then
    echo "== unit tests (Release)"
    (cd build && ctest --output-on-failure -j"$JOBS") ; result "unit (Release)" $?
    echo "== build (ASan+UBSan) and unit tests under sanitizers"
    mkdir -p build-asan
    if build build-asan all -DSANITIZE=ON; then
        (cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
            ctest --output-on-failure -j"$JOBS"); result "unit (ASan+UBSan)" $?
        # The daemon built with sanitizers, driven by real clients: every integration test whose
        # header says `# suite: asan` (the protocol tests, the spool, shutdown, upgrades).
        # The `# suite: slow` ones first, as in the integration phase below.
        slow=() rest=()
        for t in tests/integration/test_*.sh; do
            grep -q '^# suite: asan' "$t" || continue
            if grep -q '^# suite: slow' "$t"; then slow+=("$t"); else rest+=("$t"); fi
        done
        for t in "${slow[@]}" "${rest[@]}"; do
            pool_run "$LANES" "$(basename "$t" .sh) (ASan+UBSan)" "build-asan/$(basename "$t").log" \
                env BUILD="$ROOT/build-asan" ASAN_OPTIONS=detect_leaks=1 timeout 300 bash "$t"
        done
        pool_drain
    else
        result "build (ASan+UBSan)" 1
    fi
    if command -v clang >/dev/null; then
        echo "== fuzz (bounded)"
        mkdir -p build-fuzz
        if build build-fuzz fuzz -DFUZZ=ON -DCMAKE_C_COMPILER=clang; then
            # Each harness starts from its checked-in corpus (tests/fuzz/corpus/: the inputs of
            # 90 s runs merged, `-merge=1`, so a run starts where those left off) and fuzzes
            # SUITE_FUZZ_SECONDS (10) more; tests/fuzz/README.md.
            fuzz_s=${SUITE_FUZZ_SECONDS:-10}
            for f in build-fuzz/fuzz_*; do
                [ -x "$f" ] || continue
                name=$(basename "$f")
                corpus="tests/fuzz/corpus/${name#fuzz_}"
                mkdir -p "build-fuzz/corpus-$name"
                pool_run "$FUZZ_LANES" "$name ($fuzz_s s)" "build-fuzz/$name.log" \
                    "$f" -max_total_time="$fuzz_s" -rss_limit_mb=2048 "build-fuzz/corpus-$name" \
                    $( [ -d "$corpus" ] && echo "$corpus" )
            done
            pool_drain
        else
            result "build (fuzz)" 1
        fi
    fi
fi

if [ "$what" = all ] || [ "$what" = integration ]; then
    echo "== integration tests"
    "$ROOT/tests/rigs/dockerd.sh" >/dev/null || echo "warning: dockerd could not be started"
    # One shipper image for the deploy tests, built by the first that needs it and tagged by the
    # others (tests/integration/lib.sh, shipper_image); removed at the end.
    export SHIPPER_SUITE_IMAGE=shipper:suite-$$ SUITE_IMAGE_SHIPPER=$ROOT/build/shipper
    export SUITE_IMAGE_LOG=$ROOT/build/suite-image.log
    docker rmi -f "$SHIPPER_SUITE_IMAGE" >/dev/null 2>&1
    rm -f "$SUITE_IMAGE_LOG"
    # Queue order: the `# suite: alone` tests first (nothing else starts while one waits), then
    # the `# suite: docker-alone` ones (tests that never touch Docker run beside them), then the
    # tests whose header says `# suite: slow` (30 s or more), so that none of them is left
    # running alone at the end (a 159 s test draining once left the other lane idle 98 s).
    # Classes and the overtaking rule: sched_class, sched_startable above.
    alone=() dalone=() slow=() rest=()
    for t in tests/integration/test_*.sh; do
        case "$(basename "$t")" in *"$pattern"*) ;; *) continue ;; esac
        if grep -q '^# suite: alone' "$t"; then alone+=("$t")
        elif grep -q '^# suite: docker-alone' "$t"; then dalone+=("$t")
        elif grep -q '^# suite: slow' "$t"; then slow+=("$t")
        else rest+=("$t"); fi
    done
    for t in "${alone[@]}" "${dalone[@]}" "${slow[@]}" "${rest[@]}"; do
        sched_add "$(sched_class "$t")" "$(basename "$t" .sh)" "build/$(basename "$t").log" \
            timeout 300 bash "$t"
    done
    sched_drain
    docker rmi -f "$SHIPPER_SUITE_IMAGE" >/dev/null 2>&1
fi

echo
[ ${#skipped_names[@]} -eq 0 ] || printf 'skipped: %s\n' "${skipped_names[@]}"
[ ${#failed_names[@]} -eq 0 ] || printf 'failed: %s\n' "${failed_names[@]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
