#!/usr/bin/env bash
# CTest fixture: a runnable copy of the Node peer (PEER_SRC, read-only where it
# is mounted) in WORK_DIR, with `npm ci` run once per lock file.
#   prepare_node_peer.sh PEER_SRC WORK_DIR
set -euo pipefail
src=$1 work=$2
command -v node >/dev/null && command -v npm >/dev/null || { echo "node and npm are required"; exit 1; }
[ -f "$src/echo-bot.mjs" ] || { echo "no Node peer at $src"; exit 1; }
mkdir -p "$work"
if ! cmp -s "$src/package-lock.json" "$work/package-lock.json" || [ ! -d "$work/node_modules" ]; then
  cp "$src/package.json" "$src/package-lock.json" "$work/"
  (cd "$work" && npm ci --silent --no-audit --no-fund)
fi
cp "$src/echo-bot.mjs" "$work/"
