#!/usr/bin/env bash
# The concurrency-heavy tests under ThreadSanitizer, in build/tsan:
#   internals_tests  the handler inbox (MPSC ring, wake claim), handler registry, discovery
#   client_tests     dispatch, isolation, back-pressure, reconnects, embedding
#   lifecycle_tests  lifecycle events, restarts, the drain (runs examples/echo_bot)
#   isolation_tests  blocked handlers, supervision, client lifetimes (runs tests/isolation_bot)
# CAF is an instrumented build from scripts/tsan-deps.sh (cached); cnats too
# when Debian's mirror serves its source, else the system's libnats.
# Only those targets are built and only their tests run. Any TSan report, in a
# test or in a bot it starts, fails the run (exit code and a report file).
#
# Environment: KRYTEN_TSAN_JOBS (compile and ctest jobs, default 2),
#              KRYTEN_TSAN_REPEAT (ctest --repeat until-fail:N, default 1),
#              the ones of scripts/tsan-deps.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
build=$src/build/tsan
jobs=${KRYTEN_TSAN_JOBS:-2}
targets=(internals_tests client_tests lifecycle_tests isolation_tests)
helpers=(echo_bot isolation_bot)

log() { echo "tsan: $*" >&2; }
die() {
  echo "tsan: ERROR: $*" >&2
  exit 1
}
now() { date +%s; }
t_start=$(now)

bash scripts/deps.sh

# -- instrumented dependencies ---------------------------------------------------------
t0=$(now)
prefix=$(bash scripts/tsan-deps.sh) || die "scripts/tsan-deps.sh failed"
[ -d "$prefix" ] || die "scripts/tsan-deps.sh printed no prefix"
t_deps=$(($(now) - t0))

cmake_args=(
  -G "Unix Makefiles"
  -DCMAKE_BUILD_TYPE=RelWithDebInfo
  # -O1: TSan's own advice for speed with usable stacks; -g1: file:line in reports.
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG"
  -DKRYTEN_SANITIZE=thread
  -DKRYTEN_BUILD_BENCHMARKS=OFF
  -DCMAKE_PREFIX_PATH="$prefix"
  -DCAF_INCLUDE_DIR="$prefix/include"
  -DCAF_CORE_LIBRARY="$prefix/lib/libcaf_core.so"
)
if [ -f "$prefix/lib/pkgconfig/libnats.pc" ]; then
  export PKG_CONFIG_PATH="$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  nats_lib="$prefix/lib"
  log "cnats: instrumented, $prefix/lib"
else
  nats_lib=""
  log "cnats: the system's uninstrumented libnats (tsan-deps.sh said why)"
fi

# pkg_check_modules and find_path cache what they found: a different prefix
# (or cnats appearing in it) needs a fresh configuration.
key="$prefix|${PKG_CONFIG_PATH:-}|${cmake_args[*]}"
if [ -f "$build/CMakeCache.txt" ] && [ "$(cat "$build/.tsan-key" 2>/dev/null)" != "$key" ]; then
  log "dependencies or options changed: configuring build/tsan afresh"
  rm -f "$build/CMakeCache.txt"
fi

# -- configure and build only what the chosen tests need ------------------------------
t0=$(now)
mkdir -p "$build"
cmake -S "$src" -B "$build" "${cmake_args[@]}" >"$build/tsan-configure.log" 2>&1 || {
  cat "$build/tsan-configure.log" >&2
  die "configuring build/tsan failed"
}
echo "$key" >"$build/.tsan-key"
grep -q "^CAF_CORE_LIBRARY:FILEPATH=$prefix/lib/libcaf_core.so$" "$build/CMakeCache.txt" ||
  die "CMake did not pick the instrumented CAF in $prefix"
if [ -n "$nats_lib" ]; then
  grep -q "^NATS_LIBDIR:INTERNAL=$nats_lib$" "$build/CMakeCache.txt" ||
    die "CMake did not pick the instrumented cnats in $nats_lib"
fi
log "building ${targets[*]} ${helpers[*]} with -j$jobs"
cmake --build "$build" -j "$jobs" --target "${targets[@]}" "${helpers[@]}" >"$build/tsan-build.log" 2>&1 || {
  grep -E -A8 "error|Error" "$build/tsan-build.log" | head -80 >&2 || tail -60 "$build/tsan-build.log" >&2
  die "building in build/tsan failed (full log: $build/tsan-build.log)"
}
t_build=$(($(now) - t0))

# The instrumented .so files are the ones loaded (RUNPATH from CMake).
for exe in tests/internals_tests tests/client_tests examples/echo_bot tests/isolation_bot; do
  libs=$(ldd "$build/$exe") || die "ldd $exe failed"
  echo "$libs" | grep -q "libtsan.so" || die "$exe does not load libtsan"
  echo "$libs" | grep -q "libcaf_core.so.* => $prefix/lib/libcaf_core.so" ||
    die "$exe does not load $prefix/lib/libcaf_core.so: $(echo "$libs" | grep caf)"
  if [ -n "$nats_lib" ] && echo "$libs" | grep -q libnats; then
    echo "$libs" | grep -q "libnats.so.* => $nats_lib/libnats.so" ||
      die "$exe does not load $nats_lib/libnats.so: $(echo "$libs" | grep nats)"
  fi
done
log "ldd: libcaf_core from $prefix/lib${nats_lib:+, libnats from $nats_lib}"

# -- run: the tests of the four executables, selected by number -----------------------
# catch_discover_tests names tests after their TEST_CASE, not their executable:
# the tests to run are those whose command is one of the four executables.
# `ctest -N -V` prints "N: Test command: /path/to/executable args...".
numbers=$(cd "$build" && ctest -N -V | awk -v want="${targets[*]}" '
  BEGIN { n = split(want, w, " "); for (i = 1; i <= n; i++) pick[w[i]] = 1 }
  $2 == "Test" && $3 == "command:" && $4 != "" {
    exe = $4; sub(/.*\//, "", exe)
    if (exe in pick) { sub(/:$/, "", $1); out = out (out == "" ? "" : ",") $1 }
  }
  END { print out }') || die "cannot read the test list (ctest -N -V)"
[ -n "$numbers" ] || die "no tests found for ${targets[*]}"
count=$(echo "$numbers" | tr ',' '\n' | wc -l)

reports=$build/tsan-reports
rm -rf "$reports"
mkdir -p "$reports"
# log_path: every process (the bots a test starts too) writes its report to a file,
# so a report is seen even where a test does not check a child's exit code.
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$src/tests/tsan.supp:log_path=$reports/tsan:exitcode=66"
log "running $count tests (TSAN_OPTIONS=$TSAN_OPTIONS)"
t0=$(now)
rc=0
(cd "$build" && ctest --output-on-failure --timeout 300 -j"$jobs" -I "0,0,0,$numbers" \
  --repeat until-fail:"${KRYTEN_TSAN_REPEAT:-1}") || rc=$?
t_run=$(($(now) - t0))

shopt -s nullglob
files=("$reports"/tsan.*)
if [ ${#files[@]} -gt 0 ]; then
  for f in "${files[@]}"; do
    echo "==== $f" >&2
    cat "$f" >&2
  done
  echo "tsan: ${#files[@]} process(es) reported (above)" >&2
  [ $rc -ne 0 ] || rc=66
fi
log "time: deps ${t_deps} s, configure+build ${t_build} s, tests ${t_run} s, total $(($(now) - t_start)) s"
[ $rc -eq 0 ] || die "ThreadSanitizer stage failed (ctest or a TSan report, exit $rc)"
log "no ThreadSanitizer report; $count tests passed"
