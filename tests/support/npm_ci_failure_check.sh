#!/usr/bin/env bash
# CTest: a failed `npm ci` in a test fixture ends with npm's reason on the
# output and a non-zero status, not in silence. The package here lists a
# dependency its lock file lacks, which npm ci refuses without a download.
#   npm_ci_failure_check.sh WORK_DIR
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$1
rm -rf "$work"
out=$(bash -c '. "$1/npm_ci_once.sh" && npm_ci_once "$1/npm_ci_out_of_sync" "$2"' sh "$here" "$work" 2>&1)
rc=$?
echo "$out"
[ "$rc" -ne 0 ] || { echo "FAIL: npm_ci_once succeeded"; exit 1; }
grep -q "npm ci failed in $work" <<<"$out" || { echo "FAIL: no 'npm ci failed' line"; exit 1; }
grep -qi "sync\|lock" <<<"$out" || { echo "FAIL: npm's reason is not shown"; exit 1; }
echo "ok: exit $rc with npm's reason shown"
