#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ (clang-15, ASan + UBSan) in build/fuzz
# and runs each for a bounded time, two at a time.
#
#   bash scripts/fuzz.sh [SECONDS] [-- LIBFUZZER_ARGS...]
#
# SECONDS per target defaults to ${KRYTEN_FUZZ_SECONDS:-60}. Also read:
#   KRYTEN_FUZZ_TARGETS  targets to run (default: all, see `targets` below)
#   KRYTEN_FUZZ_JOBS     targets run at the same time (default 2)
# Each target starts from a copy of fuzz/corpus/<target> in
# build/fuzz/corpus-<target> (new inputs go there, the repository's seeds are
# never changed) and keeps what it found for the next run. Exits 1 when any
# target crashed, leaked, timed out or ran out of memory, naming the input
# (build/fuzz/artifacts/<target>/...) and how to replay it.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
build="$root/build/fuzz"
seconds="${KRYTEN_FUZZ_SECONDS:-60}"
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
  seconds="$1"
  shift
fi
[ "${1:-}" = "--" ] && shift
extra_args=("$@")
jobs="${KRYTEN_FUZZ_JOBS:-2}"
case "$seconds" in '' | *[!0-9]*) echo "fuzz.sh: SECONDS must be a whole number (got '$seconds')" >&2; exit 2 ;; esac

# target:max_len. The limits are well above real messages (a chat event is a
# few hundred bytes) and leave room for nesting past simdjson's depth limit.
targets=(event_decoder:4096 config_loader:4096 restart_notice:1024 command_request:2048 http_request:9216)
if [ -n "${KRYTEN_FUZZ_TARGETS:-}" ]; then
  selected=()
  for want in $KRYTEN_FUZZ_TARGETS; do
    found=""
    for t in "${targets[@]}"; do [ "${t%%:*}" = "$want" ] && selected+=("$t") && found=1; done
    [ -n "$found" ] || { echo "fuzz.sh: unknown target '$want'" >&2; exit 2; }
  done
  targets=("${selected[@]}")
fi

# -- tools ------------------------------------------------------------------------
# What the project's CMake configuration needs, and the fuzzing toolchain.
bash "$root/scripts/deps.sh" clang-15 libfuzzer-15-dev

# -- build ------------------------------------------------------------------------
start=$(date +%s)
generator=()
[ -f "$build/CMakeCache.txt" ] || { command -v ninja >/dev/null && generator=(-G Ninja); }
cmake -S "$root" -B "$build" "${generator[@]}" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++-15 \
  -DKRYTEN_BUILD_FUZZERS=ON -DKRYTEN_BUILD_TESTS=OFF -DKRYTEN_BUILD_EXAMPLES=OFF \
  -DKRYTEN_BUILD_BENCHMARKS=OFF -DKRYTEN_SANITIZE= >/dev/null
cmake --build "$build" --target kryten_fuzzers -j2
built=$(date +%s)
echo "fuzz.sh: built in $((built - start)) s; ${#targets[@]} targets x ${seconds} s, $jobs at a time"

# -- run --------------------------------------------------------------------------
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
logs="$build/logs"
mkdir -p "$logs"

run_target() {  # name max_len
  local name="$1" max_len="$2"
  local corpus="$build/corpus-$name" artifacts="$build/artifacts/$name/"
  mkdir -p "$corpus" "$artifacts"
  cp "$root/fuzz/corpus/$name/"* "$corpus/"
  # stdin from /dev/null: config_loader opens file names it is given
  # (tls_*), which must not be able to block on a terminal.
  "$build/fuzz/fuzz_$name" "$corpus" \
    -max_total_time="$seconds" -max_len="$max_len" -timeout=5 -rss_limit_mb=2048 \
    -dict="$root/fuzz/dict/$name.dict" -artifact_prefix="$artifacts" \
    -print_final_stats=1 "${extra_args[@]}" \
    </dev/null >"$logs/$name.log" 2>&1
}

pids=()
names=()
for t in "${targets[@]}"; do
  name="${t%%:*}"
  max_len="${t##*:}"
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  echo "fuzz.sh: running $name (max_len $max_len) -> $logs/$name.log"
  rm -f "$logs/$name.rc"
  (set +e; run_target "$name" "$max_len"; echo $? >"$logs/$name.rc") &
  pids+=($!)
  names+=("$name")
done
for pid in "${pids[@]}"; do wait "$pid" || true; done
finished=$(date +%s)

# -- report -----------------------------------------------------------------------
failed=()
printf '\n%-16s %12s %9s %8s %8s %6s %8s  %s\n' target execs exec/s cov ft corp rss_mb result
for name in "${names[@]}"; do
  log="$logs/$name.log"
  rc=$(cat "$logs/$name.rc" 2>/dev/null || echo 99)
  final_stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -n1; }
  # The last status line, e.g. "#123456 DONE cov: 812 ft: 2904 corp: 301/24Kb ..."
  status=$(grep -E '^#[0-9]+' "$log" | tail -n1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$status")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$status")
  corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$status")
  result=ok
  [ "$rc" = 0 ] || result="FAILED (exit $rc)"
  printf '%-16s %12s %9s %8s %8s %6s %8s  %s\n' "$name" "$(final_stat number_of_executed_units)" \
    "$(final_stat average_exec_per_sec)" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$(final_stat peak_rss_mb)" "$result"
  [ "$rc" = 0 ] || failed+=("$name")
done
echo "fuzz.sh: total $((finished - start)) s (build $((built - start)) s, fuzzing $((finished - built)) s)"

if [ ${#failed[@]} -gt 0 ]; then
  for name in "${failed[@]}"; do
    log="$logs/$name.log"
    echo
    echo "================================================================================"
    echo "FUZZ FAILURE: $name (log: $log)"
    grep -E '^==[0-9]+==ERROR|runtime error:|invariant failed|threw|^SUMMARY|deadly signal|ALARM|out-of-memory' \
      "$log" | head -n 20 || true
    while read -r input; do
      echo "crashing input: $input"
      echo "replay:         $build/fuzz/fuzz_$name $input"
      echo "minimise:       $build/fuzz/fuzz_$name -minimize_crash=1 -runs=100000 $input"
    done < <(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log")
    echo "--- last lines of the log ---"
    tail -n 40 "$log"
    echo "================================================================================"
  done
  exit 1
fi
