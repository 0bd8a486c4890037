#!/usr/bin/env bash
# CTest fixture: a runnable copy of the Node peer (PEER_SRC, read-only where it
# is mounted) in WORK_DIR, with `npm ci` run once per lock file.
#   prepare_node_peer.sh PEER_SRC WORK_DIR
set -euo pipefail
src=$1 work=$2
[ -f "$src/echo-bot.mjs" ] || { echo "no Node peer at $src"; exit 1; }
# shellcheck source=../support/npm_ci_once.sh
. "$(dirname "$0")/../support/npm_ci_once.sh"
npm_ci_once "$src" "$work"
cp "$src/echo-bot.mjs" "$work/"
