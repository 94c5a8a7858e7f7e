#!/usr/bin/env bash
# What the browser tests (tests/browser) need, installed if missing:
#   Debian's chromium and chromium-driver (the system browser: Playwright's library
#   drives /usr/bin/chromium, it never downloads one), and axe-core from npm
#   (tests/browser/package-lock.json, `npm ci`). Idempotent; called by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "browser-deps.sh: missing ${need[*]} (run as root, or install them)" >&2
    exit 1
  fi
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends "${need[@]}"
fi

# Playwright must never fetch its own browser.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
if [ ! -f tests/browser/node_modules/axe-core/axe.min.js ] \
   || [ tests/browser/package-lock.json -nt tests/browser/node_modules/.package-lock.json ]; then
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "browser-deps.sh: $(chromium --version 2>/dev/null | head -1), axe-core $(node -p "require('./tests/browser/node_modules/axe-core/package.json').version")"
