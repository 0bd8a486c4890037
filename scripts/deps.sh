#!/usr/bin/env bash
# Installs the Debian packages kryten-cpp needs, only those missing, and any
# further packages named as arguments (scripts/fuzz.sh: clang-15 ...).
# Idempotent; needs root (or sudo) when something is missing.
set -euo pipefail
packages=(
  build-essential cmake pkg-config ccache git procps openssl
  libcaf-dev libnats-dev nats-server nlohmann-json3-dev libsimdjson-dev
  libcpp-httplib-dev libssl-dev zlib1g-dev libbrotli-dev
  libspdlog-dev libfmt-dev catch2 prometheus-cpp-dev prometheus
  libbenchmark-dev  # kryten-micro, the in-process micro-benchmarks
  chromium  # headless, for the kryten-monitor dashboard test
  "$@"
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node and npm run the JS micro-client test and the Node peer of the benchmarks;
# any node on PATH will do (Debian's, or one the machine came with).
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
