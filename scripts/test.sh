#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, and runs every test
# twice: a normal build, then one under AddressSanitizer and
# UndefinedBehaviorSanitizer (any sanitizer report fails the run).
# Each test starts its own nats-server on a free 127.0.0.1 port.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0
run_suite() {
  local name=$1; shift
  echo "== build/$name"
  bash scripts/build.sh "$name" "$@"
  (cd "build/$name" && ctest --output-on-failure --timeout 300 -j"${KRYTEN_TEST_JOBS:-1}")
}
# Line tables only (-g1): file:line in backtraces and sanitizer reports, at
# two thirds of the compile time of full debug info (measured: 26 s vs 38 s for
# a CAF-heavy file).
lines_only=(-DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG")
run_suite release "${lines_only[@]}"
run_suite sanitize -DKRYTEN_SANITIZE=address,undefined -DKRYTEN_BUILD_BENCHMARKS=OFF "${lines_only[@]}"
