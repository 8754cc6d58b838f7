#!/usr/bin/env bash
# e2e: `make demo`'s script brings up the hub and its chargers, all online, and stops cleanly.
# Runs against the build under test (ASan build in `make check`), on a free loopback port.
set -euo pipefail
: "${LADE_BUILD_DIR:?}" "${LADE_SOURCE_DIR:?}"
dir=$(mktemp -d /tmp/lade-demo-XXXXXX)
trap 'rm -rf "$dir"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
       shuf -i 20000-60000 -n 1)
hub_env=""
if [ "${LADE_SANITIZE:-0}" = 1 ]; then
  cc=${LADE_CC:-cc}
  hub_env="LD_PRELOAD=$($cc -print-file-name=libasan.so):$($cc -print-file-name=libubsan.so) ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0"
fi
cd "$LADE_SOURCE_DIR"
LADE_DEMO_DIR=$dir LADE_HUB_PORT=$port LADE_BUILD=$LADE_BUILD_DIR LADE_DEMO_CHARGERS=3 \
  LADE_HUB_ENV="$hub_env" scripts/demo.sh --check >"$dir/out.txt" 2>&1 || {
  cat "$dir/out.txt"; tail -20 "$dir"/logs/*.log; exit 1; }
cat "$dir/out.txt"
# Three chargers provisioned, all online, the CA where the README says, a service identity.
[ "$(ls "$dir/chargers" | wc -l)" -eq 3 ]
[ "$(grep -c '^demo: all chargers online' "$dir/out.txt")" -eq 1 ]
# The operator's story ran: every car charging, one paused (finished) and resumed, and the
# second resume refused with 409 while the charger kept charging.
grep -q '^demo: operator pauses' "$dir/out.txt"
grep -Eq ' online +finished ' "$dir/out.txt"
grep -q '^status 409' "$dir/out.txt"
[ "$(sed -n '/a second resume is refused/,$p' "$dir/out.txt" | grep -c ' online  *charging  *16 ')" -eq 3 ]
[ -s "$dir/ca.pem" ] && [ -s "$dir/portal.conf" ]
# Factory files hold the device key: owner-only.
for f in "$dir"/chargers/*/factory.conf; do [ "$(stat -c %a "$f")" = 600 ]; done
# Everything stopped: no process still uses the demo's files.
for _ in $(seq 50); do pgrep -f "$dir" >/dev/null || break; sleep 0.1; done
if pgrep -f "$dir" >/dev/null; then echo "processes left running" >&2; pgrep -af "$dir"; exit 1; fi
# A second run reuses the CA and identities (made once) and comes up again.
LADE_DEMO_DIR=$dir LADE_HUB_PORT=$port LADE_BUILD=$LADE_BUILD_DIR \
  LADE_HUB_ENV="$hub_env" scripts/demo.sh --check >"$dir/out2.txt" 2>&1 || { cat "$dir/out2.txt"; exit 1; }
[ "$(ls "$dir/chargers" | wc -l)" -eq 3 ]
echo "demo e2e: ok"
