#!/usr/bin/env bash
# CTest: builds the Debian package from BUILD_DIR with cpack, unpacks it into
# a scratch root (dpkg -x, no installation) and runs the programs from there.
#   check_deb.sh BUILD_DIR
set -euo pipefail
build=$1
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
(cd "$build" && cpack -G DEB -B "$scratch/out" >"$scratch/cpack.log" 2>&1) || { cat "$scratch/cpack.log"; exit 1; }
deb=$(ls "$scratch"/out/*.deb)
echo "package: $(basename "$deb")"
dpkg-deb --field "$deb" Package Version Depends
dpkg -x "$deb" "$scratch/root"
root=$scratch/root
fail() { echo "FAIL: $*"; exit 1; }
for f in usr/bin/kryten-monitor usr/bin/kryten-ctl usr/include/kryten/kryten.hpp \
         usr/lib/systemd/system/kryten@.service; do
  [ -e "$root/$f" ] || fail "$f is not in the package"
done
lib=$(find "$root/usr" -name 'libkryten.so.0*' -type f | head -1)
[ -n "$lib" ] || fail "libkryten.so is not in the package"
grep -q '^Restart=on-failure' "$root/usr/lib/systemd/system/kryten@.service" || fail "unit: no Restart=on-failure"
grep -q '/etc/kryten/%i.json' "$root/usr/lib/systemd/system/kryten@.service" || fail "unit: no /etc/kryten/%i.json"
export LD_LIBRARY_PATH=$(dirname "$lib")
out=$("$root/usr/bin/kryten-ctl" --help) || fail "kryten-ctl --help exited $?"
grep -q "usage: kryten-ctl" <<<"$out" || fail "kryten-ctl --help printed: $out"
# The monitor refuses a missing configuration with exit 2.
set +e
"$root/usr/bin/kryten-monitor" >/dev/null 2>&1
rc=$?
set -e
[ "$rc" -eq 2 ] || fail "kryten-monitor without --config exited $rc, not 2"
echo "ok"
