# Sourced by test scripts: npm_ci_once SRC WORK installs SRC's package.json and
# package-lock.json into WORK with `npm ci`, once per lock file (the packages
# stay cached in the build tree). npm's output goes to WORK/npm-ci.log, shown
# when the install fails: a failed install says why instead of ending a test
# in silence.
npm_ci_once() {
  local src=$1 work=$2
  command -v node >/dev/null && command -v npm >/dev/null || { echo "node and npm are required"; return 1; }
  mkdir -p "$work"
  if cmp -s "$src/package-lock.json" "$work/package-lock.json" && [ -d "$work/node_modules" ]; then
    return 0
  fi
  cp "$src/package.json" "$src/package-lock.json" "$work/"
  if ! (cd "$work" && npm ci --no-audit --no-fund --loglevel=error) >"$work/npm-ci.log" 2>&1; then
    echo "npm ci failed in $work (node $(node --version), npm $(npm --version)):"
    head -n 40 "$work/npm-ci.log"  # the reason comes first; the rest is usage text
    rm -rf "$work/node_modules"
    return 1
  fi
}
