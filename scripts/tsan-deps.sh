#!/usr/bin/env bash
# Builds ThreadSanitizer-instrumented CAF 0.17.6 (libcaf_core only: kryten uses
# neither CAF's io nor openssl module) and cnats 3.4.1 from Debian bookworm's
# source packages, and installs them into a cache prefix:
#
#   ${KRYTEN_TSAN_PREFIX:-$HOME/.cache/kryten-tsan}/caf-0.17.6_nats-3.4.1_gcc-<ver>_<flags hash>
#
# A stamp file per library makes a second run instant ("using cached ...").
# Progress goes to stderr; the prefix alone is printed on stdout, so
#   prefix=$(bash scripts/tsan-deps.sh)
# hands it to a caller (scripts/tsan.sh does that).
#
# The prefix holds
#   include/caf, lib/libcaf_core.so*          -> find_package(CAF) with CMAKE_PREFIX_PATH=<prefix>
#   include/nats, lib/libnats.so*, lib/pkgconfig/libnats.pc
#                                             -> pkg-config libnats with PKG_CONFIG_PATH=<prefix>/lib/pkgconfig
#   nats-source-unavailable (instead of cnats) when Debian's mirror does not serve
#                                             nats.c's source: callers then use the system libnats
#
# Environment:
#   KRYTEN_TSAN_PREFIX       cache root (default $HOME/.cache/kryten-tsan)
#   KRYTEN_TSAN_JOBS         parallel compile jobs (default 2)
#   KRYTEN_TSAN_NATS=auto    auto: build cnats when its source can be had, else say so loudly
#                            and leave the system libnats (uninstrumented) in use;
#                            required: no source for cnats is an error; system: do not build cnats
#   KRYTEN_TSAN_NATS_TARBALL a nats.c 3.4.1 source tarball to use instead of apt-get source
#   KRYTEN_TSAN_RETRY_NATS=1 try to fetch cnats' source again after an earlier "unavailable"
set -euo pipefail

CAF_VERSION=0.17.6
NATS_VERSION=3.4.1
TSAN_FLAGS="-fsanitize=thread -O1 -g1"
jobs=${KRYTEN_TSAN_JOBS:-2}
nats_mode=${KRYTEN_TSAN_NATS:-auto}

log() { echo "tsan-deps: $*" >&2; }
die() {
  echo "tsan-deps: ERROR: $*" >&2
  exit 1
}

case "$nats_mode" in auto | required | system) ;; *) die "KRYTEN_TSAN_NATS must be auto, required or system, not '$nats_mode'" ;; esac

sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive

# -- build tools, only those missing (stdout is the prefix: its output goes to stderr)
bash "$(dirname "$0")/deps.sh" ninja-build dpkg-dev >&2 || die "installing the build tools failed"
[ -e /usr/lib/x86_64-linux-gnu/libtsan.so.2 ] || [ -n "$(gcc -print-file-name=libtsan.so | grep /)" ] ||
  die "gcc has no libtsan (install libtsan2 / gcc's sanitizer runtime)"

# -- the cache prefix: keyed on versions, compiler and flags ----------------------
gcc_version=$(gcc -dumpfullversion)
flags_hash=$(printf '%s|%s|%s' "$TSAN_FLAGS" "$(g++ --version | head -1)" "caf-core-only,nats-tls" |
  sha1sum | cut -c1-10)
root=${KRYTEN_TSAN_PREFIX:-$HOME/.cache/kryten-tsan}
prefix="$root/caf-${CAF_VERSION}_nats-${NATS_VERSION}_gcc-${gcc_version}_${flags_hash}"
caf_stamp="$prefix/.caf-${CAF_VERSION}.stamp"
nats_stamp="$prefix/.nats-${NATS_VERSION}.stamp"
nats_unavailable="$prefix/nats-source-unavailable"
mkdir -p "$prefix" || die "cannot create $prefix"

# Timing of each part, printed at the end.
timings=()
timed_start() { t0=$(date +%s); }
timed_end() { timings+=("$1: $(($(date +%s) - t0)) s"); }

src_ready=0
scratch=""
cleanup() { if [ -n "$scratch" ]; then rm -rf "$scratch"; fi; }
trap 'rc=$?; cleanup; [ $rc -eq 0 ] || echo "tsan-deps: FAILED (exit $rc)" >&2' EXIT

# Adds a deb-src entry for bookworm (same mirror as the binary entries) once,
# then refreshes the lists.
ensure_deb_src() {
  [ $src_ready -eq 1 ] && return 0
  local list=/etc/apt/sources.list.d/kryten-tsan-src.sources
  if ! apt-get indextargets --format '$(CREATED_BY)' 2>/dev/null | grep -c '^Sources$' >/dev/null; then
    local mirror
    mirror=$(grep -rhoE '^(URIs:|deb) +(\[[^]]*\] +)?https?://[^ ]+/debian/?( |$)' \
      /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null |
      grep -oE 'https?://[^ ]+' | grep -v security | head -1 || true)
    [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
    log "adding deb-src for bookworm from $mirror ($list)"
    printf 'Types: deb-src\nURIs: %s\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$mirror" | $sudo tee "$list" >/dev/null
  fi
  timed_start
  $sudo apt-get update -qq || die "apt-get update (with deb-src) failed"
  timed_end "apt-get update (deb-src)"
  src_ready=1
}

# fetch_source PACKAGE VERSION DIR: unpacks Debian's source of PACKAGE into DIR/src.
# With the .debian.tar.xz the Debian patches are applied; without it the
# .orig.tar.gz alone is unpacked. Returns 1 when there is no orig tarball.
fetch_source() {
  local pkg=$1 version=$2 dir=$3
  mkdir -p "$dir"
  (cd "$dir" && apt-get source --download-only -qq "$pkg" >"$dir/apt-source.log" 2>&1) || true
  local orig
  orig=$(ls "$dir"/"${pkg}"_"${version}".orig.tar.* 2>/dev/null | head -1 || true)
  if [ -z "$orig" ]; then
    sed 's/^/    /' "$dir/apt-source.log" >&2
    return 1
  fi
  local dsc
  dsc=$(ls "$dir"/"${pkg}"_"${version}"-*.dsc 2>/dev/null | head -1 || true)
  if [ -n "$dsc" ] && ls "$dir"/"${pkg}"_"${version}"-*.debian.tar.* >/dev/null 2>&1; then
    log "$pkg: unpacking $(basename "$dsc") with Debian's patches"
    (cd "$dir" && dpkg-source --no-check -x "$(basename "$dsc")" src >/dev/null) ||
      die "dpkg-source -x $dsc failed"
  else
    log "$pkg: Debian's .debian.tar.* is not on the mirror; unpacking $(basename "$orig") alone"
    mkdir -p "$dir/src"
    tar -xf "$orig" -C "$dir/src" --strip-components=1 || die "cannot unpack $orig"
  fi
}

# A library built with -fsanitize=thread calls __tsan_* (read whole: no grep -q under pipefail).
is_instrumented() {
  local n
  n=$(nm -D "$1" 2>/dev/null | grep -c __tsan_ || true)
  [ "${n:-0}" -gt 0 ]
}

# -- CAF 0.17.6, libcaf_core --------------------------------------------------------
build_caf() {
  local work=$scratch/caf
  timed_start
  ensure_deb_src
  fetch_source actor-framework "$CAF_VERSION" "$work" ||
    die "apt-get source actor-framework gave no actor-framework_${CAF_VERSION}.orig.tar.* (see above)"
  grep -q "#define CAF_VERSION 1706" "$work/src/libcaf_core/caf/config.hpp" ||
    die "the actor-framework source is not CAF $CAF_VERSION"
  timed_end "CAF source"
  timed_start
  log "CAF $CAF_VERSION: configuring (core only, $TSAN_FLAGS)"
  # CMAKE_BUILD_TYPE=None: no flags of CAF's own build types on top of ours.
  # -std=c++11 is what CAF 0.17 (and Debian's build) compiles with.
  cmake -S "$work/src" -B "$work/build" -G Ninja \
    -DCMAKE_BUILD_TYPE=None \
    -DCMAKE_INSTALL_PREFIX="$prefix" -DCMAKE_INSTALL_LIBDIR=lib \
    -DCMAKE_CXX_FLAGS="-std=c++11 $TSAN_FLAGS -fno-omit-frame-pointer" \
    -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=thread" \
    -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=thread" \
    -DCAF_NO_IO=ON -DCAF_NO_OPENSSL=ON -DCAF_NO_TOOLS=ON -DCAF_NO_EXAMPLES=ON \
    -DCAF_NO_UNIT_TESTS=ON -DCAF_NO_PYTHON=ON -DCAF_NO_OPENCL=ON -DCAF_NO_SUMMARY=ON \
    -DCAF_BUILD_STATIC=OFF -DCAF_BUILD_STATIC_ONLY=OFF \
    >"$work/configure.log" 2>&1 || {
    tail -40 "$work/configure.log" >&2
    die "configuring CAF failed (log above)"
  }
  log "CAF $CAF_VERSION: building libcaf_core with -j$jobs"
  cmake --build "$work/build" -j "$jobs" >"$work/build.log" 2>&1 || {
    grep -B2 -A12 -m3 "error" "$work/build.log" >&2 || tail -40 "$work/build.log" >&2
    die "building CAF failed (log above)"
  }
  cmake --install "$work/build" >"$work/install.log" 2>&1 || {
    tail -20 "$work/install.log" >&2
    die "installing CAF into $prefix failed"
  }
  [ -e "$prefix/lib/libcaf_core.so" ] && [ -e "$prefix/include/caf/all.hpp" ] ||
    die "CAF installed no lib/libcaf_core.so or include/caf/all.hpp under $prefix"
  is_instrumented "$prefix/lib/libcaf_core.so" ||
    die "$prefix/lib/libcaf_core.so is not instrumented (no __tsan_ symbols)"
  timed_end "CAF build+install"
  date -u +%FT%TZ >"$caf_stamp"
}

# -- cnats 3.4.1 ---------------------------------------------------------------------
build_nats() {
  local work=$scratch/nats
  timed_start
  if [ -n "${KRYTEN_TSAN_NATS_TARBALL:-}" ]; then
    [ -f "$KRYTEN_TSAN_NATS_TARBALL" ] || die "KRYTEN_TSAN_NATS_TARBALL=$KRYTEN_TSAN_NATS_TARBALL is not a file"
    mkdir -p "$work/src"
    tar -xf "$KRYTEN_TSAN_NATS_TARBALL" -C "$work/src" --strip-components=1 ||
      die "cannot unpack $KRYTEN_TSAN_NATS_TARBALL"
  else
    ensure_deb_src
    if ! fetch_source nats.c "$NATS_VERSION" "$work"; then
      timed_end "cnats source (unavailable)"
      [ "$nats_mode" = required ] &&
        die "apt-get source nats.c gave no nats.c_${NATS_VERSION}.orig.tar.* (see above), and KRYTEN_TSAN_NATS=required"
      {
        echo "tsan-deps: ################################################################"
        echo "tsan-deps: WARNING: Debian's mirror does not serve nats.c ${NATS_VERSION}'s source"
        echo "tsan-deps: (apt-get source nats.c, see above). cnats stays the system's"
        echo "tsan-deps: uninstrumented libnats: races inside cnats go unseen; its locks"
        echo "tsan-deps: (pthread) are still seen by TSan. Give a tarball with"
        echo "tsan-deps: KRYTEN_TSAN_NATS_TARBALL=..., or retry with KRYTEN_TSAN_RETRY_NATS=1."
        echo "tsan-deps: ################################################################"
      } >&2
      date -u +%FT%TZ >"$nats_unavailable"
      return 0
    fi
  fi
  [ -f "$work/src/src/nats.h" ] || die "the nats.c source has no src/nats.h"
  grep -qE "NATS_VERSION_MINOR +4\b" "$work/src/CMakeLists.txt" ||
    die "the nats.c source is not cnats $NATS_VERSION"
  timed_end "cnats source"
  timed_start
  log "cnats $NATS_VERSION: configuring (shared, TLS, no streaming, $TSAN_FLAGS)"
  cmake -S "$work/src" -B "$work/build" -G Ninja \
    -DCMAKE_BUILD_TYPE=None \
    -DCMAKE_INSTALL_PREFIX="$prefix" -DCMAKE_INSTALL_LIBDIR=lib \
    -DCMAKE_C_FLAGS="$TSAN_FLAGS -fno-omit-frame-pointer" \
    -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=thread" \
    -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=thread" \
    -DNATS_BUILD_WITH_TLS=ON -DNATS_BUILD_STREAMING=OFF -DNATS_BUILD_USE_SODIUM=OFF \
    -DNATS_BUILD_EXAMPLES=OFF -DNATS_BUILD_LIB_STATIC=OFF -DNATS_BUILD_LIB_SHARED=ON \
    -DBUILD_TESTING=OFF \
    >"$work/configure.log" 2>&1 || {
    tail -40 "$work/configure.log" >&2
    die "configuring cnats failed (log above)"
  }
  log "cnats $NATS_VERSION: building with -j$jobs"
  cmake --build "$work/build" -j "$jobs" >"$work/build.log" 2>&1 || {
    grep -B2 -A12 -m3 "error" "$work/build.log" >&2 || tail -40 "$work/build.log" >&2
    die "building cnats failed (log above)"
  }
  cmake --install "$work/build" >"$work/install.log" 2>&1 || {
    tail -20 "$work/install.log" >&2
    die "installing cnats into $prefix failed"
  }
  [ -f "$prefix/lib/pkgconfig/libnats.pc" ] || die "cnats installed no lib/pkgconfig/libnats.pc"
  case "$(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --libs libnats)" in *"-L$prefix/lib"*) ;; *) false ;; esac ||
    die "$prefix/lib/pkgconfig/libnats.pc does not point at $prefix/lib"
  is_instrumented "$prefix/lib/libnats.so" ||
    die "$prefix/lib/libnats.so is not instrumented (no __tsan_ symbols)"
  rm -f "$nats_unavailable"
  timed_end "cnats build+install"
  date -u +%FT%TZ >"$nats_stamp"
}

need_caf=1 need_nats=1
if [ -f "$caf_stamp" ] && [ -e "$prefix/lib/libcaf_core.so" ]; then
  log "using cached CAF $CAF_VERSION (TSan) in $prefix (built $(cat "$caf_stamp"))"
  need_caf=0
fi
if [ "$nats_mode" = system ]; then
  log "KRYTEN_TSAN_NATS=system: cnats stays the system's uninstrumented libnats"
  need_nats=0
elif [ -f "$nats_stamp" ] && [ -e "$prefix/lib/libnats.so" ]; then
  log "using cached cnats $NATS_VERSION (TSan) in $prefix (built $(cat "$nats_stamp"))"
  need_nats=0
elif [ -f "$nats_unavailable" ] && [ "${KRYTEN_TSAN_RETRY_NATS:-0}" != 1 ] && [ -z "${KRYTEN_TSAN_NATS_TARBALL:-}" ] &&
  [ "$nats_mode" = auto ]; then
  log "using cached result: nats.c's source was unavailable ($(cat "$nats_unavailable")); cnats is the system's uninstrumented libnats (KRYTEN_TSAN_RETRY_NATS=1 tries again)"
  need_nats=0
fi

if [ $need_caf -eq 1 ] || [ $need_nats -eq 1 ]; then
  scratch=$(mktemp -d "${TMPDIR:-/tmp}/kryten-tsan-deps.XXXXXX")
  total0=$(date +%s)
  if [ $need_caf -eq 1 ]; then build_caf; fi
  if [ $need_nats -eq 1 ]; then build_nats; fi
  for t in "${timings[@]}"; do log "time: $t"; done
  log "time: total $(($(date +%s) - total0)) s"
fi

echo "$prefix"
