#!/usr/bin/env bash
# Installs what the browser test needs: Debian's `chromium` (through apt-get, when this runs as
# root) and the pinned npm packages of tests/browser (`npm ci`, from the committed lock file).
# Fails with instructions when it cannot; the browser test never skips.
set -euo pipefail
cd "$(dirname "$0")/.."

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

if [ ! -x "$CHROMIUM" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup-browser: installing chromium with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium >/dev/null
  fi
fi
if [ ! -x "$CHROMIUM" ]; then
  cat >&2 <<TXT
setup-browser: $CHROMIUM is missing and could not be installed here.
  Install Debian's chromium package as root:  apt-get install chromium
  (or set CHROMIUM=/path/to/chromium), then run make test again.
TXT
  exit 1
fi

if ! command -v npm >/dev/null 2>&1; then
  cat >&2 <<TXT
setup-browser: npm is missing. Install Node.js 18 or newer with npm
  (on Debian, as root: apt-get install nodejs npm), then run make test again.
TXT
  exit 1
fi

if [ ! -f tests/browser/node_modules/.package-lock.json ] ||
   [ tests/browser/package-lock.json -nt tests/browser/node_modules/.package-lock.json ]; then
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "setup-browser: chromium $("$CHROMIUM" --version 2>/dev/null | awk '{print $2}') and playwright-core ready"
