#!/usr/bin/env bash
# The demo: installs what is missing, builds, starts nats-server on
# 127.0.0.1, and runs the echo bot against it until Ctrl-C (or for
# DEMO_SECONDS seconds when set). Say "!ping" in the lounge with
#   build/release/benchmarks/kryten-load ... (see README)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh release -DKRYTEN_BUILD_TESTS=OFF
port=${DEMO_NATS_PORT:-4222}
health_port=${DEMO_HEALTH_PORT:-8080}
work=$(mktemp -d)
nats-server -a 127.0.0.1 -p "$port" >"$work/nats.log" 2>&1 &
nats_pid=$!
cleanup() { kill "$nats_pid" 2>/dev/null || true; wait "$nats_pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for _ in $(seq 100); do grep -q "Server is ready" "$work/nats.log" && break; sleep 0.05; done
grep -q "Server is ready" "$work/nats.log" || { cat "$work/nats.log"; exit 1; }
cat >"$work/bot.json" <<JSON
{"nats": {"servers": ["nats://127.0.0.1:$port"]},
 "channels": [{"domain": "cytu.be", "channel": "lounge"}],
 "service": {"name": "echo-bot", "version": "1.0.0", "heartbeat_interval": 5,
             "health_port": $health_port, "health_host": "127.0.0.1"},
 "log_level": "INFO"}
JSON
echo "nats-server on 127.0.0.1:$port; echo bot config: $work/bot.json"
if [ -n "${DEMO_SECONDS:-}" ]; then
  build/release/examples/echo_bot --config "$work/bot.json" &
  bot=$!
  sleep "$DEMO_SECONDS"
  kill -TERM "$bot"
  wait "$bot"
else
  build/release/examples/echo_bot --config "$work/bot.json"
fi
