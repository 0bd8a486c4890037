#!/bin/sh
# Latency percentiles against offered rate for the three systems, from a
# kryten-bench results file, as a PNG (or SVG when OUT ends in .svg):
#
#   benchmarks/plot.sh [RESULTS.json [OUT.png]]
#
# Defaults: bench-results.json -> bench-latency.png. Installs gnuplot from
# Debian (gnuplot-nox) when it is missing and this runs as root. Finds
# kryten-bench through $KRYTEN_BENCH, then PATH, then the usual build folders.
set -eu

results=${1:-bench-results.json}
out=${2:-bench-latency.png}

if ! command -v gnuplot >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "plot.sh: installing gnuplot-nox" >&2
    apt-get install -y --no-install-recommends gnuplot-nox >/dev/null ||
      { apt-get update >/dev/null && apt-get install -y --no-install-recommends gnuplot-nox >/dev/null; }
  else
    echo "plot.sh: gnuplot is missing: sudo apt-get install -y --no-install-recommends gnuplot-nox" >&2
    exit 1
  fi
fi

here=$(cd "$(dirname "$0")" && pwd)
bench=${KRYTEN_BENCH:-}
if [ -z "$bench" ]; then
  if command -v kryten-bench >/dev/null 2>&1; then
    bench=$(command -v kryten-bench)
  else
    for b in "$here/../build/benchmarks/kryten-bench" /tmp/build-bench/benchmarks/kryten-bench; do
      if [ -x "$b" ]; then bench=$b; break; fi
    done
  fi
fi
if [ -z "$bench" ]; then
  echo "plot.sh: kryten-bench not found (build it, or set KRYTEN_BENCH=/path/to/kryten-bench)" >&2
  exit 1
fi

exec "$bench" --plot "$out" --from "$results"
