#!/usr/bin/env bash
# CTest: the echo bot against a real nats-server on 127.0.0.1, checked with the
# official JS micro client (tests/micro/check.mjs).
#   check_micro.sh ECHO_BOT NATS_SERVER WORK_DIR
set -euo pipefail
echo_bot=$1 nats_server=$2 work=$3
src=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../support/npm_ci_once.sh
. "$src/../support/npm_ci_once.sh"
npm_ci_once "$src" "$work"
cp "$src/check.mjs" "$work/"
run=$(mktemp -d)
cleanup() {
  for pid in ${bot:-} ${nats:-}; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -rf "$run"
}
trap cleanup EXIT
"$nats_server" -a 127.0.0.1 -p -1 >"$run/nats.log" 2>&1 &
nats=$!
for _ in $(seq 200); do grep -q "Server is ready" "$run/nats.log" && break; sleep 0.05; done
port=$(sed -n 's/.*Listening for client connections on 127.0.0.1:\([0-9]*\).*/\1/p' "$run/nats.log" | head -1)
[ -n "$port" ] || { cat "$run/nats.log"; exit 1; }
cat >"$run/bot.json" <<JSON
{"nats": {"servers": ["nats://127.0.0.1:$port"]},
 "channels": [{"domain": "cytu.be", "channel": "lounge"}],
 "service": {"name": "micro-test", "version": "1.2.3"}}
JSON
"$echo_bot" --config "$run/bot.json" 2>"$run/bot.log" &
bot=$!
# Wait (bounded) until the bot says it is serving; check.mjs also retries.
for _ in $(seq 300); do grep -q "running until stopped" "$run/bot.log" && break; kill -0 "$bot" 2>/dev/null || break; sleep 0.1; done
if ! timeout 60 node "$work/check.mjs" "nats://127.0.0.1:$port" micro-test; then
  echo "--- echo bot log"; cat "$run/bot.log"
  exit 1
fi
exit 0
