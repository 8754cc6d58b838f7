#!/usr/bin/env bash
# make demo: a whole local lade system — Mosquitto with lade's hub plugin, the portal
# (lade-cloud: balancing, REST API, web page, firmware repository), nginx serving the firmware
# over HTTPS as fw1/fw2/fw3.lade.test, and a site of simulated chargers whose cars arrive and
# leave, on a 40 A main fuse with two circuits, so balancing is visible in the browser. A new
# firmware release, signed with the demo's release key, is uploaded to the portal; the story
# printed at the end shows how to roll it out and watch it in the web page.
#
#   LADE_DEMO_DIR      runtime files (configs, registry, store, logs, CA)  default build/demo
#   LADE_HUB_PORT      hub port on 127.0.0.1                               default 8883
#   LADE_PORTAL_PORT   portal (web page + API) port on 127.0.0.1           default 8080
#   LADE_FW_PORT       firmware hosts (nginx, HTTPS) port on 127.0.0.1     default 8443
#   LADE_DEMO_PASSWORD the portal's admin password                         default: random, printed
#   LADE_DEMO_CHARGERS number of chargers (more are provisioned if needed) default 8
#   LADE_BUILD         build directory with the binaries                   default build/release
#   LADE_HUB_ENV       extra environment for mosquitto (the tests preload sanitizer runtimes)
#   --check            exit 0 once the site is balanced and the API story passed (tests)
#
# The CA the chargers trust is $LADE_DEMO_DIR/ca.pem, so any MQTT client can talk to the hub,
# e.g. as the operator's service identity (see README.md, "Talk to the demo hub"):
#   TOKEN=$(build/release/lade-factory token --registry build/demo/registry.db \
#           --name operator --hub-host localhost --ttl 600)
#   mosquitto_sub --cafile build/demo/ca.pem -h localhost -p 8883 -V mqttv311 -i svc:operator \
#     -u svc:operator -P "$TOKEN" -t 'devices/+/messages/events/#' -t '$lade/svc/#' -v
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
dir=${LADE_DEMO_DIR:-build/demo}
port=${LADE_HUB_PORT:-8883}
count=${LADE_DEMO_CHARGERS:-8}
pport=${LADE_PORTAL_PORT:-8080}
fwport=${LADE_FW_PORT:-8443}
password=${LADE_DEMO_PASSWORD:-}
if [ -z "$password" ]; then
  password=$(openssl rand -base64 18 | tr -d '/+=' | cut -c1-16)
fi
build=${LADE_BUILD:-build/release}
check=0
[ "${1:-}" = "--check" ] && check=1
host=localhost

for bin in "$build/lade-factory" "$build/lade-charger" "$build/lade_hub.so" "$build/lade-cmd" \
  "$build/lade-cloud" "$build/lade-fw" /usr/sbin/nginx; do
  [ -e "$bin" ] || { echo "demo: $bin is missing; run 'make' first" >&2; exit 1; }
done
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
mkdir -p "$dir/hub" "$dir/chargers" "$dir/logs" "$dir/fw/repo" "$dir/fw/release" "$dir/nginx/tmp"

# PKI, made once: the CA and an ECDSA P-256 certificate for the hub.
scripts/gen-certs.sh ca "$dir" "lade demo CA"
scripts/gen-certs.sh server "$dir/hub" "$dir" "$host"
# The firmware hosts: one certificate per name, from the same CA.
fwhosts=fw1.lade.test,fw2.lade.test,fw3.lade.test
for h in ${fwhosts//,/ }; do
  scripts/gen-certs.sh server "$dir/nginx/$h" "$dir" "$h"
done

# The release key (made once; the private key never leaves $dir/fw/release, 0600) and its public
# half, which every charger pins (factory setting firmware_pubkey) and the portal checks uploads
# with (--firmware-keys).
if [ ! -s "$dir/fw/release/release.pub" ]; then
  rm -f "$dir/fw/release/release.pem"
  "$build/lade-fw" keygen --out "$dir/fw/release/release.pem" |
    sed -n 's/^public-key: //p' >"$dir/fw/release/release.pub"
fi
fwpub=$(cat "$dir/fw/release/release.pub")

# Names the chargers resolve (the DNS stub comes later; this is the factory hosts file).
printf '127.0.0.1 %s\n' "$host" fw1.lade.test fw2.lade.test fw3.lade.test >"$dir/hosts"

# Chargers, provisioned into the registry the hub reads (more when LADE_DEMO_CHARGERS grows).
have=$(ls "$dir/chargers" | wc -l)
if [ "$have" -lt "$count" ]; then
  "$build/lade-factory" create --registry "$dir/registry.db" --prefix LDE --count "$((count - have))" \
    --hub-host "$host" --hub-port "$port" --ca "$dir/ca.pem" --out "$dir/chargers" \
    --hosts-file "$dir/hosts" --ntp-host ntp.lade.local --fallback-dns 127.0.0.1 \
    --firmware-hosts "$fwhosts" --firmware-port "$fwport" --firmware-pubkey "$fwpub" --evse sim \
    --time-source host >/dev/null
fi
# Service identities: "portal" for the portal, "operator" for a person with MQTT tools.
for svc in portal operator; do
  if [ ! -f "$dir/$svc.conf" ]; then
    "$build/lade-factory" service --registry "$dir/registry.db" --name "$svc" \
      --hub-host "$host" --out "$dir/$svc.conf" >/dev/null
  fi
done
ids=$(ls "$dir/chargers" | head -n "$count")
cars=(3p22kw 3p11kw 1p16a 3p22kw 1p16a 3p11kw 3p22kw 1p16a)
n=0
for id in $ids; do
  # Hub port may change between runs (LADE_HUB_PORT): it is a factory setting, rewrite it.
  sed -i "s/^hub_port = .*/hub_port = $port/" "$dir/chargers/$id/factory.conf"
  # Likewise the firmware hosts, their port and the pinned release key (demo dirs made before
  # the firmware repository existed named other hosts and pinned nothing).
  f="$dir/chargers/$id/factory.conf"
  for kv in "firmware_hosts = $fwhosts" "firmware_port = $fwport" "firmware_pubkey = $fwpub"; do
    k=${kv%% = *}
    if grep -q "^$k = " "$f"; then
      sed -i "s|^$k = .*|$kv|" "$f"
    else
      echo "$kv" >>"$f"
    fi
  done
  # Demo dirs made before the simulator existed: give them the simulated board.
  grep -q '^evse = ' "$dir/chargers/$id/factory.conf" ||
    echo "evse = sim" >>"$dir/chargers/$id/factory.conf"
  # The demo runs on a developer machine whose clock is trusted as it is (a real charger takes
  # its time from NTP before it connects, R6; docs/time.md "host mode").
  grep -q '^time_source = ' "$dir/chargers/$id/factory.conf" ||
    echo "time_source = host" >>"$dir/chargers/$id/factory.conf"
  # Each charger gets a simulated car (mixed 1- and 3-phase) that stays plugged in for a while,
  # leaves, and comes back; the simulated clock runs 60x, and each car has its own rhythm, so
  # cars arrive and leave every minute or so and the balancer re-shares the 40 A.
  [ -f "$dir/chargers/$id/user.conf" ] || cat >"$dir/chargers/$id/user.conf" <<CONF
# Installer/user settings (factory settings cannot be changed here).
log_level = info
telemetry_interval_s = 30
report_min_interval_s = 2
keepalive_s = 60
token_ttl_s = 3600
state_dir = $dir/chargers/$id/state
max_current_a = 32
offline_current_a = 6
offline_phases = 1
free_mode = 1
sim_car = ${cars[$((n % 8))]}
sim_soc = $((15 + 9 * (n % 7)))
sim_plug_s = $((1800 + 600 * (n % 5)))
sim_unplug_s = $((1500 + 900 * (n % 4)))
sim_time_scale = 60
CONF
  n=$((n + 1))
done

# The site: a 40 A main fuse, circuit "Garage" (32 A) with the first half of the chargers and
# circuit "Street" (fuse 32 A, limited to 25 A) with the rest; phase rotation cycles
# L1L2L3 / L2L3L1 / L3L1L2 so the 1-phase cars spread over the supply phases. Written on every
# run; the portal commissions it once (an installation of that name is kept as it is).
rotations=(L1L2L3 L2L3L1 L3L1L2)
half=$(((count + 1) / 2))
{
  echo '{"Name":"Demo site","NetworkType":4,"Fuse":40,"Available":40,'
  echo ' "Circuits":[{"Name":"Garage","Fuse":32},{"Name":"Street","Fuse":32,"Limit":25}],'
  echo ' "Chargers":['
  n=0
  for id in $ids; do
    circuit=Garage
    [ "$n" -ge "$half" ] && circuit=Street
    sep=,
    [ "$n" -eq $((count - 1)) ] && sep=
    printf '  {"DeviceId":"%s","Name":"Bay %d","Circuit":"%s","Rotation":"%s","MaxCurrent":32,"OfflineCurrent":6,"OfflinePhases":1}%s\n' \
      "$id" $((n + 1)) "$circuit" "${rotations[$((n % 3))]}" "$sep"
    n=$((n + 1))
  done
  echo ' ]}'
} >"$dir/site.json"

cat >"$dir/hub/mosquitto.conf" <<CONF
# lade demo hub: Mosquitto + lade hub plugin (generated by scripts/demo.sh)
user $(id -un)
per_listener_settings false
allow_anonymous false
persistence false
set_tcp_nodelay true
log_dest stderr
log_type error
log_type warning
log_type notice
log_type information
listener $port 127.0.0.1
certfile $dir/hub/server.pem
keyfile $dir/hub/server.key
tls_version tlsv1.2
plugin $(cd "$build" && pwd)/lade_hub.so
plugin_opt_registry $dir/registry.db
plugin_opt_hub_host $host
CONF

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "demo: stopping"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then
  echo "demo: port $port is already in use; set LADE_HUB_PORT" >&2
  exit 1
fi
# shellcheck disable=SC2086
env ${LADE_HUB_ENV:-} /usr/sbin/mosquitto -c "$dir/hub/mosquitto.conf" >"$dir/logs/hub.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
  sleep 0.1
done
(exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null || { echo "demo: hub did not start:" >&2; cat "$dir/logs/hub.log" >&2; exit 1; }
echo "demo: hub listening on 127.0.0.1:$port (log $dir/logs/hub.log)"

# nginx: the firmware hosts, serving the portal's firmware directory as /fw/ over HTTPS. Its own
# config, prefix, pid file and logs in $dir/nginx; in the foreground under this script (never
# the system service).
if (exec 3<>/dev/tcp/127.0.0.1/"$fwport") 2>/dev/null; then
  echo "demo: port $fwport is already in use; set LADE_FW_PORT" >&2
  exit 1
fi
{
  [ "$(id -u)" = 0 ] && echo "user $(id -un);"
  cat <<CONF
# lade demo firmware hosts (generated by scripts/demo.sh)
worker_processes 1;
pid $dir/nginx/nginx.pid;
error_log $dir/logs/nginx-error.log notice;
events { worker_connections 256; }
http {
    access_log $dir/logs/nginx-access.log;
    client_body_temp_path $dir/nginx/tmp/body;
    proxy_temp_path $dir/nginx/tmp/proxy;
    fastcgi_temp_path $dir/nginx/tmp/fastcgi;
    uwsgi_temp_path $dir/nginx/tmp/uwsgi;
    scgi_temp_path $dir/nginx/tmp/scgi;
    default_type application/octet-stream;
    sendfile on;
    keepalive_timeout 5s;
CONF
  for h in ${fwhosts//,/ }; do
    cat <<CONF
    server {
        listen 127.0.0.1:$fwport ssl;
        server_name $h;
        ssl_certificate $dir/nginx/$h/server.pem;
        ssl_certificate_key $dir/nginx/$h/server.key;
        location /fw/ { alias $dir/fw/repo/; }
    }
CONF
  done
  echo "}"
} >"$dir/nginx/nginx.conf"
/usr/sbin/nginx -p "$dir/nginx" -c "$dir/nginx/nginx.conf" -e "$dir/logs/nginx-error.log" \
  -g 'daemon off;' >"$dir/logs/nginx.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  (exec 3<>/dev/tcp/127.0.0.1/"$fwport") 2>/dev/null && break
  sleep 0.1
done
(exec 3<>/dev/tcp/127.0.0.1/"$fwport") 2>/dev/null ||
  { echo "demo: nginx did not start:" >&2; cat "$dir/logs/nginx-error.log" "$dir/logs/nginx.log" >&2; exit 1; }
echo "demo: firmware hosts $fwhosts on 127.0.0.1:$fwport (nginx, serving $dir/fw/repo as /fw/)"

if (exec 3<>/dev/tcp/127.0.0.1/"$pport") 2>/dev/null; then
  echo "demo: port $pport is already in use; set LADE_PORTAL_PORT" >&2
  exit 1
fi
# The portal: the chargers' keep-alive is 60 s, so their link-loss deadline is 60 × 1.5 + 10 s.
LADE_ADMIN_PASSWORD=$password "$build/lade-cloud" --db "$dir/portal.db" --port "$pport" \
  --service "$dir/portal.conf" --ca "$dir/ca.pem" --hosts-file "$dir/hosts" --hub-port "$port" \
  --site "$dir/site.json" --admin admin --deadline-s 100 --firmware-dir "$dir/fw/repo" \
  --firmware-keys "$fwpub" >"$dir/logs/portal.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do
  grep -q '^lade-cloud: listening' "$dir/logs/portal.log" 2>/dev/null && break
  kill -0 "${pids[-1]}" 2>/dev/null || break
  sleep 0.1
done
grep -q '^lade-cloud: listening' "$dir/logs/portal.log" ||
  { echo "demo: the portal did not start:" >&2; cat "$dir/logs/portal.log" >&2; exit 1; }
url="http://127.0.0.1:$pport/"
echo "demo: portal listening on $url (log $dir/logs/portal.log)"

for id in $ids; do
  rm -f "$dir/chargers/$id/status.json"
  "$build/lade-charger" --factory "$dir/chargers/$id/factory.conf" \
    --user "$dir/chargers/$id/user.conf" --status "$dir/chargers/$id/status.json" \
    >"$dir/logs/$id.log" 2>&1 &
  pids+=($!)
done

# field FILE KEY: a value from the flat JSON status file the charger writes.
field() { sed -nE 's/.*"'"$2"'":"?([^",}]*)"?.*/\1/p' "$1"; }

show() {
  printf '%-12s %-8s %-12s %6s %6s %6s %9s %8s %9s %9s\n' CHARGER LINK STATE OFFER_A PHASES \
    CAR_SOC METER_WH SESSIONS BYTES_OUT BYTES_IN
  for id in $ids; do
    s="$dir/chargers/$id/status.json"
    if [ -s "$s" ]; then
      offer=$(field "$s" offer_ma)
      printf '%-12s %-8s %-12s %6s %6s %6s %9s %8s %9s %9s\n' "$id" "$(field "$s" link)" \
        "$(field "$s" state)" "$((${offer:-0} / 1000))" "$(field "$s" phases)" \
        "$(field "$s" soc)%" "$(field "$s" meter_wh)" "$(field "$s" sessions_acked)" \
        "$(field "$s" bytes_out)" "$(field "$s" bytes_in)"
    else
      printf '%-12s %s\n' "$id" "starting"
    fi
  done
}

# cmd ARGS...: lade-cmd as the operator's service identity.
cmd() {
  "$build/lade-cmd" --service "$dir/operator.conf" --ca "$dir/ca.pem" --port "$port" \
    --hosts-file "$dir/hosts" "$@"
}

# api METHOD PATH [JSON]: the portal's REST API as the admin (prints the body; fails on >= 400).
token=""
api() {
  local out code
  out=$(curl -sS --noproxy '*' -X "$1" -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' ${3:+--data "$3"} -w '\n%{http_code}' \
    "http://127.0.0.1:$pport$2") || return 1
  code=${out##*$'\n'}
  echo "${out%$'\n'*}"
  [ "$code" -lt 400 ] || { echo "demo: $1 $2: HTTP $code" >&2; return 1; }
}

# wait_state ID STATE: until the charger's status shows that charging state (20 s).
wait_state() {
  for _ in $(seq 200); do
    [ "$(field "$dir/chargers/$1/status.json" state)" = "$2" ] && return 0
    sleep 0.1
  done
  echo "demo: $1 did not reach '$2'" >&2
  return 1
}

# What a reference-API client does (README, "The portal's API"): log in, list installations
# and chargers, read state, pause and resume a charger.
story() {
  local inst charger dev
  token=$(curl -sS --noproxy '*' -X POST --data-urlencode grant_type=password \
    --data-urlencode username=admin --data-urlencode "password=$password" \
    "http://127.0.0.1:$pport/oauth/token" | jq -r .access_token) || return 1
  [ -n "$token" ] && [ "$token" != null ] || { echo "demo: login failed" >&2; return 1; }
  inst=$(api GET /api/installation | jq -r '.Data[0].Id') || return 1
  echo "demo: API: installation $(api GET "/api/installation/$inst" | jq -c '{Name,MaxCurrent,AvailableCurrent}')"
  # A charger whose car is charging now.
  for _ in $(seq 300); do
    charger=$(api GET /api/chargers | jq -r '[.Data[] | select(.OperatingMode == 3)][0].Id // empty')
    [ -n "$charger" ] && break
    sleep 0.2
  done
  [ -n "$charger" ] || { echo "demo: no charger is charging" >&2; return 1; }
  dev=$(api GET "/api/chargers/$charger" | jq -r .DeviceId)
  echo "demo: API: $dev state: $(api GET "/api/chargers/$charger/state" |
    jq -c '[.[] | select(.StateId == 710 or .StateId == 708 or .StateId == 507)] | map({(.StateId|tostring): .ValueAsString}) | add')"
  echo "demo: API: pause $dev (sendCommand 506)"
  api POST "/api/chargers/$charger/sendCommand/506" >/dev/null || return 1
  wait_state "$dev" finished || return 1
  echo "demo: API: resume $dev (sendCommand 507)"
  api POST "/api/chargers/$charger/sendCommand/507" >/dev/null || return 1
  # Resumed: it asks for current again; it charges as soon as the balancer gives it its share
  # (on a full site its share went to a waiting car meanwhile, so that may take a while).
  for _ in $(seq 200); do
    grep -q '"final_stop":false' "$dir/chargers/$dev/status.json" &&
      grep -Eq '"state":"(charging|paused)"' "$dir/chargers/$dev/status.json" && break
    sleep 0.1
  done
  grep -q '"final_stop":false' "$dir/chargers/$dev/status.json" ||
    { echo "demo: $dev was not resumed" >&2; return 1; }
  firmware || return 1
  echo "demo: API story done"
}

# A new release for the demo's chargers (hardware lade-linux-1, which runs 0.1.0), signed with
# the release key once, uploaded through the API: manifest first (verified against the pinned
# key), then the image (checked against the manifest, then published in $dir/fw/repo).
fwver=0.2.0
firmware() {
  local rel=$dir/fw/release out id
  if [ ! -s "$rel/lade-$fwver.manifest" ]; then
    head -c 262144 /dev/urandom >"$rel/lade-$fwver.img"
    printf 'Demo release %s\n\n- signed by scripts/demo.sh\n' "$fwver" >"$rel/notes.txt"
    "$build/lade-fw" sign --key "$rel/release.pem" --image "$rel/lade-$fwver.img" \
      --hw lade-linux-1 --version "$fwver" --counter 1 --notes "$rel/notes.txt" \
      --out "$rel/lade-$fwver.manifest" >/dev/null || return 1
  fi
  id=$(api GET /api/lade/firmware | jq -r --arg v "$fwver" '[.[] | select(.Version == $v)][0].Id // empty') || return 1
  if [ -z "$id" ]; then
    out=$(api POST /api/lade/firmware "$(jq -Rs '{manifest: .}' "$rel/lade-$fwver.manifest")") || return 1
    id=$(echo "$out" | jq -r .Id)
  fi
  if [ "$(api GET "/api/lade/firmware/$id" | jq -r .State)" != published ]; then
    curl -sS --noproxy '*' -f -X PUT -H "Authorization: Bearer $token" \
      -H 'Content-Type: application/octet-stream' --data-binary @"$rel/lade-$fwver.img" \
      "http://127.0.0.1:$pport/api/lade/firmware/$id/image" >/dev/null || return 1
  fi
  fwid=$id
  echo "demo: API: firmware $(api GET "/api/lade/firmware/$id" | jq -c '{Version,HardwareId,State,Path}')"
}
fwid=""

# --check: roll the release out to every charger and wait until each runs it (confirmed).
rollout_check() {
  local ro n=0
  ro=$(api POST "/api/lade/firmware/$fwid/rollout" '{"percent":100,"delayMaxS":0}' | jq -r .Id) || return 1
  echo "demo: API: rollout $ro of $fwver to 100%"
  # A charger restarts into the new firmware only when its car's session has ended (the
  # simulated cars leave after 30-70 s), so this can take a minute or two.
  for _ in $(seq 900); do
    n=$(api GET "/api/lade/rollouts/$ro" | jq -r .Counts.updated) || return 1
    [ "$n" = "$count" ] && break
    sleep 0.2
  done
  api GET "/api/lade/rollouts/$ro" | jq -c '.Counts'
  [ "$n" = "$count" ] || { echo "demo: the rollout did not reach every charger" >&2; return 1; }
  for id in $ids; do
    grep -q "\"version\":\"$fwver\"" "$dir/chargers/$id/status.json" ||
      { echo "demo: $id does not run $fwver" >&2; return 1; }
  done
  echo "demo: firmware $fwver runs on every charger"
}

online() {
  for id in $ids; do
    grep -q '"link":"online"' "$dir/chargers/$id/status.json" 2>/dev/null || return 1
  done
}

for _ in $(seq 300); do online && break; sleep 0.1; done
if online; then
  echo "demo: all chargers online"
else
  echo "demo: not every charger is online yet (see $dir/logs)"
fi
show
if online; then
  story || { echo "demo: the API story failed" >&2; [ "$check" = 1 ] && exit 1; }
fi
if [ "$check" = 1 ]; then
  # Balanced: every charger got a setpoint from the portal (before the rollout restarts them).
  for _ in $(seq 100); do
    bal=1
    for id in $ids; do grep -q '"commands_ok":[1-9]' "$dir/chargers/$id/status.json" || bal=0; done
    [ "$bal" = 1 ] && break
    sleep 0.1
  done
  [ "$bal" = 1 ] && echo "demo: balanced: every charger got a setpoint from the portal"
  rollout_check || exit 1
  for _ in $(seq 300); do online && break; sleep 0.1; done
  show
  online
  exit $?
fi
echo
echo "demo: open $url and log in as admin with password: $password"
echo "demo: CA for MQTT clients: $dir/ca.pem; Ctrl-C stops everything"
if [ -n "$fwid" ]; then
  cat <<STORY

demo: firmware $fwver is published (${fwid}). Roll it out (half the site first, then all of it)
demo: and watch the charger cards' firmware line in the web page:
  TOKEN=\$(curl -s -d grant_type=password -d username=admin -d 'password=$password' \\
          http://127.0.0.1:$pport/oauth/token | jq -r .access_token)
  curl -s -H "Authorization: Bearer \$TOKEN" -d '{"percent":50,"delayMaxS":10}' \\
       http://127.0.0.1:$pport/api/lade/firmware/$fwid/rollout | jq '{Id,Selected}'
  curl -s -H "Authorization: Bearer \$TOKEN" http://127.0.0.1:$pport/api/lade/rollouts/<Id> | jq .Counts
  curl -s -H "Authorization: Bearer \$TOKEN" -d '{"percent":100}' \\
       http://127.0.0.1:$pport/api/lade/rollouts/<Id> | jq .Counts
STORY
fi
while true; do
  sleep 10 &
  wait $! || true
  echo
  show
done
