#!/usr/bin/env bash
# Installs what the browser tests (tests/e2e/demo_e2e.mjs) and the browser benchmark
# (bench/browser_bench.mjs) need: Debian's chromium when /usr/bin/chromium is missing, and the npm
# package playwright-core into build/npm (git-ignored) to drive it. Only playwright-core: it never
# downloads a browser of its own (never run `npx playwright install`). Idempotent.
#   scripts/install_web_test_deps.sh
set -euo pipefail
repo_root=$(cd "$(dirname "$0")/.." && pwd)
playwright_version=1.65.1
prefix=$repo_root/build/npm

if [ ! -x /usr/bin/chromium ]; then
  echo "install_web_test_deps: installing Debian's chromium"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends chromium
fi

installed=$(node -p "require('$prefix/node_modules/playwright-core/package.json').version" 2>/dev/null || true)
if [ "$installed" = "$playwright_version" ]; then
  echo "install_web_test_deps: playwright-core $playwright_version already in $prefix"
else
  command -v npm >/dev/null || { echo "install_web_test_deps: error: npm is needed (install nodejs/npm)" >&2; exit 1; }
  echo "install_web_test_deps: installing playwright-core@$playwright_version into $prefix"
  mkdir -p "$prefix"
  # A package.json of its own keeps npm from walking up to a parent folder's one.
  [ -f "$prefix/package.json" ] || echo '{"private": true}' > "$prefix/package.json"
  npm install --prefix "$prefix" --no-audit --no-fund --silent "playwright-core@$playwright_version"
fi
echo "install_web_test_deps: chromium $(/usr/bin/chromium --version 2>/dev/null | grep -oE '[0-9]+(\.[0-9]+)+' | head -1), playwright-core $playwright_version"
