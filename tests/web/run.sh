#!/usr/bin/env bash
# Runs the browser test of lade-cloud's page against a running portal:
#   LADE_PORTAL_URL=http://127.0.0.1:PORT LADE_PORTAL_USER=… LADE_PORTAL_PASSWORD=… tests/web/run.sh
# Installs the test's npm packages (package-lock.json) on first use; Chromium and Node come from
# Debian (scripts/install-deps.sh). Other settings: see test_page.mjs and docs/web.md.
set -euo pipefail
cd "$(dirname "$0")"

for cmd in node npm; do
  command -v "$cmd" >/dev/null || { echo "run.sh: $cmd not found; run scripts/install-deps.sh" >&2; exit 2; }
done
chromium_bin="${LADE_CHROMIUM:-/usr/bin/chromium}"
[ -x "$chromium_bin" ] || { echo "run.sh: no browser at $chromium_bin; run scripts/install-deps.sh" >&2; exit 2; }

# Install when missing, or when package-lock.json changed since the last install.
if [ ! -f node_modules/playwright-core/package.json ] ||
   [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error >&2
fi

exec node test_page.mjs "$@"
