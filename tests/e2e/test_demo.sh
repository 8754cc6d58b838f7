#!/usr/bin/env bash
# e2e: `make demo`'s script brings up the hub, the portal and its chargers, all online and
# balanced, runs a reference-API client's story against the portal, and stops cleanly.
# Runs against the build under test (ASan build in `make check`), on a free loopback port.
set -euo pipefail
: "${LADE_BUILD_DIR:?}" "${LADE_SOURCE_DIR:?}"
dir=$(mktemp -d /tmp/lade-demo-XXXXXX)
trap 'rm -rf "$dir"' EXIT
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
    shuf -i 20000-60000 -n 1
}
port=$(free_port)
pport=$(free_port)
fwport=$(free_port)
hub_env=""
if [ "${LADE_SANITIZE:-0}" = 1 ]; then
  cc=${LADE_CC:-cc}
  hub_env="LD_PRELOAD=$($cc -print-file-name=libasan.so):$($cc -print-file-name=libubsan.so) ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0"
fi
cd "$LADE_SOURCE_DIR"
LADE_DEMO_DIR=$dir LADE_HUB_PORT=$port LADE_PORTAL_PORT=$pport LADE_FW_PORT=$fwport LADE_BUILD=$LADE_BUILD_DIR \
  LADE_DEMO_CHARGERS=4 LADE_DEMO_PASSWORD=demo-test-pw LADE_HUB_ENV="$hub_env" scripts/demo.sh --check >"$dir/out.txt" 2>&1 || {
  cat "$dir/out.txt"; tail -20 "$dir"/logs/*.log; exit 1; }
cat "$dir/out.txt"
# Four chargers provisioned, all online, the portal up with the site commissioned from the
# site file, the reference-API story done (login, installation, chargers, state, pause, resume).
[ "$(ls "$dir/chargers" | wc -l)" -eq 4 ]
[ "$(grep -c '^demo: all chargers online' "$dir/out.txt")" -eq 1 ]
grep -q "^demo: portal listening on http://127.0.0.1:$pport/" "$dir/out.txt"
grep -q '^demo: API: installation {"Name":"Demo site","MaxCurrent":40' "$dir/out.txt"
grep -q '^demo: API: pause ' "$dir/out.txt"
grep -q '^demo: API: resume ' "$dir/out.txt"
grep -q '^demo: API story done' "$dir/out.txt"
# Firmware: nginx up as the firmware hosts, the release uploaded and published through the API,
# rolled out to every charger, each running it (downloaded from nginx, confirmed).
grep -q "^demo: firmware hosts fw1.lade.test,fw2.lade.test,fw3.lade.test on 127.0.0.1:$fwport" "$dir/out.txt"
grep -q '^demo: API: firmware {"Version":"0.2.0","HardwareId":"lade-linux-1","State":"published"' "$dir/out.txt"
grep -q '^demo: firmware 0.2.0 runs on every charger' "$dir/out.txt"
[ "$(grep -c 'GET /fw/.*-0.2.0.img' "$dir/logs/nginx-access.log")" -ge 4 ]
[ "$(stat -c %a "$dir/fw/release/release.pem")" = 600 ]
grep -q 'installation "Demo site" created from' "$dir/logs/portal.log"
# The portal balanced: every charger got a setpoint from it.
grep -q '^demo: balanced: every charger got a setpoint from the portal' "$dir/out.txt"
[ -s "$dir/ca.pem" ] && [ -s "$dir/portal.conf" ]
# Factory files hold the device key: owner-only.
for f in "$dir"/chargers/*/factory.conf; do [ "$(stat -c %a "$f")" = 600 ]; done
# Everything stopped: no process still uses the demo's files.
for _ in $(seq 50); do pgrep -f "$dir" >/dev/null || break; sleep 0.1; done
if pgrep -f "$dir" >/dev/null; then echo "processes left running" >&2; pgrep -af "$dir"; exit 1; fi
# A second run reuses the CA and identities (made once) and comes up again.
LADE_DEMO_DIR=$dir LADE_HUB_PORT=$port LADE_PORTAL_PORT=$pport LADE_FW_PORT=$fwport LADE_BUILD=$LADE_BUILD_DIR \
  LADE_DEMO_CHARGERS=4 LADE_DEMO_PASSWORD=demo-test-pw LADE_HUB_ENV="$hub_env" \
  scripts/demo.sh --check >"$dir/out2.txt" 2>&1 || { cat "$dir/out2.txt"; tail -20 "$dir"/logs/*.log; exit 1; }
[ "$(ls "$dir/chargers" | wc -l)" -eq 4 ]
grep -q 'installation "Demo site" exists' "$dir/logs/portal.log"
echo "demo e2e: ok"
