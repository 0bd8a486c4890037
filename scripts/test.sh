#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, and runs every stage:
#   release   every test, normal build (build/release)
#   sanitize  every test under AddressSanitizer + UndefinedBehaviorSanitizer (build/sanitize)
#   tsan      the concurrency-heavy tests under ThreadSanitizer (scripts/tsan.sh, build/tsan)
#   fuzz      every libFuzzer target for KRYTEN_FUZZ_SECONDS (60) each (scripts/fuzz.sh, build/fuzz)
# Any failing test or sanitizer report fails the run, naming the stage.
# Each test starts its own nats-server on a free 127.0.0.1 port.
#
# KRYTEN_STAGES picks stages (default: "release sanitize tsan fuzz");
# KRYTEN_TEST_JOBS runs ctest in parallel (default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
stages_wanted=${KRYTEN_STAGES:-release sanitize tsan fuzz}
for s in $stages_wanted; do
  case "$s" in release | sanitize | tsan | fuzz) ;; *) echo "test.sh: unknown stage '$s' in KRYTEN_STAGES" >&2; exit 2 ;; esac
done
wants() { [[ " $stages_wanted " == *" $1 "* ]]; }

bash scripts/deps.sh
# ccache keys on paths relative to the checkout, so a second clone (CI's)
# reuses what the first compiled.
export CCACHE_BASEDIR=$root
export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=suppressions=$root/tests/lsan.supp:print_suppressions=0

costs=()     # "stage: N s"
passed=0     # tests, summed over the stages
failed=0
start=$(date +%s)

summary() {
  echo "== stage costs: ${costs[*]:-none}; total $(($(date +%s) - start)) s"
  echo "all stages: $passed passed, $failed failed"
}

# stage NAME COMMAND...: runs one stage, timed; a failure ends the run, loudly.
# (The stage runs in a condition, where `set -e` is off: stages check each step.)
stage() {
  local name=$1 t0 rc=0
  shift
  echo "== stage $name"
  t0=$(date +%s)
  "$@" || rc=$?
  costs+=("$name: $(($(date +%s) - t0)) s")
  if [ $rc -ne 0 ]; then
    [ $failed -gt 0 ] || failed=1
    summary
    echo "test.sh: stage $name FAILED (exit $rc)" >&2
    exit "$rc"
  fi
}

# ctest's closing line: "100% tests passed, 0 tests failed out of 230".
count_ctest() {
  local line
  line=$(grep -E "tests passed, [0-9]+ tests? failed out of [0-9]+" "$1" | tail -1 || true)
  [ -n "$line" ] || return 0
  local total bad
  total=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$line")
  bad=$(sed -E 's/.*tests passed, ([0-9]+) tests? failed.*/\1/' <<<"$line")
  passed=$((passed + total - bad))
  failed=$((failed + bad))
}

ctest_suite() {
  local name=$1; shift
  bash scripts/build.sh "$name" "$@" || return
  local rc=0
  (cd "build/$name" && ctest --output-on-failure --timeout 300 -j"${KRYTEN_TEST_JOBS:-1}") 2>&1 |
    tee "build/$name/ctest.log" || rc=$?
  count_ctest "build/$name/ctest.log"
  return "$rc"
}

tsan_stage() {
  local rc=0
  bash scripts/tsan.sh 2>&1 | tee build/tsan-stage.log || rc=$?
  count_ctest build/tsan-stage.log
  return "$rc"
}

fuzz_stage() {
  local rc=0
  bash scripts/fuzz.sh "${KRYTEN_FUZZ_SECONDS:-60}" 2>&1 | tee build/fuzz-stage.log || rc=$?
  # One row per target: "name execs exec/s cov ft corp rss_mb result".
  passed=$((passed + $(grep -cE '^[a-z_]+ +[0-9]+ .* ok$' build/fuzz-stage.log || true)))
  failed=$((failed + $(grep -cE '^[a-z_]+ +.* FAILED \(exit' build/fuzz-stage.log || true)))
  return "$rc"
}

mkdir -p build
# Line tables only (-g1): file:line in backtraces and sanitizer reports, at
# two thirds of the compile time of full debug info (measured: 26 s vs 38 s for
# a CAF-heavy file).
lines_only=(-DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG")
if wants release; then stage release ctest_suite release "${lines_only[@]}"; fi
# The sanitizer build at -Og: ASan+UBSan instrumentation at -O2 compiles 2-3
# times slower (measured: 59 s vs 22 s for a CAF-heavy actor, 122 s vs 39 s for
# the client tests; the whole build 20 min vs 10 min cold), while the tests run
# as fast (270 s vs 279 s) and catch the same errors.
sanitize_flags=(-DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-Og -g1 -DNDEBUG")
if wants sanitize; then
  stage sanitize ctest_suite sanitize -DKRYTEN_SANITIZE=address,undefined -DKRYTEN_BUILD_BENCHMARKS=OFF \
    -DKRYTEN_LAYER_CHECK=OFF "${sanitize_flags[@]}"
fi
if wants tsan; then stage tsan tsan_stage; fi
if wants fuzz; then stage fuzz fuzz_stage; fi

summary
