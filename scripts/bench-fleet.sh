#!/usr/bin/env bash
# bench-fleet.sh — the fleet figures of `make bench` (issue 8; called by scripts/bench.sh, which
# puts the section it writes into bench/RESULTS.md; LADE_BENCH_ONLY=fleet runs only this).
#
#   scripts/bench-fleet.sh BUILD_DIR BENCH_BUILD_DIR OUT_MD
#
#   LADE_BENCH_FLEET_N        chargers in the fleet                             default 10000
#   LADE_BENCH_FLEET_RATE     the hub's admission rate, new connections/s       default 150
#   LADE_BENCH_FLEET_BURST    its burst                                         default 150
#   LADE_BENCH_FLEET_START    lade-sim's start rate, chargers/s (under the hub's rate) default 140
#   LADE_BENCH_FLEET_STEADY_S steady-state window for CPU and memory            default 60
#   LADE_BENCH_FLEET_SETTLE_S wait after all are online before that window       default 30
#   LADE_BENCH_FLEET_STORMS   hub restarts (reconnect storms)                   default 3
#   LADE_BENCH_FLEET_CALLS    command round trips per concurrency               default 2000
#   LADE_BENCH_FLEET_PEAK_CARS cars plugged in during the evening peak          default N/5
#   LADE_BENCH_FLEET_PEAK_S   the window they plug in over, s                   default 120
#
# Everything runs on 127.0.0.1: Mosquitto + lade_hub.so (file descriptors raised, its own
# registry), the portal (lade-cloud with the fleet in installations of 1 000, circuits of 100),
# lade-sim with N chargers on one event loop (each its own identity, TLS connection,
# simulated EV and state directory), bench_fleet_cmd on a service connection. What is measured:
#   - provisioning N identities (lade-sim provision);
#   - start → all N online, at the sim's start rate and the hub's admission rate;
#   - steady state over a window: CPU seconds and resident memory of the hub and the sim, per
#     1 000 chargers, at the production report rate (telemetry, keep-alive, token defaults);
#   - command round trip (ping through the hub) p50/p90/p99 at N connected, 1 and 20 in flight;
#   - reconnect storm: the hub killed and started again, LADE_BENCH_FLEET_STORMS times: time from
#     the restart to all N online again, and the peak of new connections per second (the sim's
#     per-second stats), against the admission rate;
#   - evening peak: PEAK_CARS cars plugged in (the simulator's `sim` method, each charger once,
#     evenly over PEAK_S) while the portal balances every installation: plug-in → the portal's
#     setpoint on the pilot, per car, as each charger timed it (lade-sim's offer_ms).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
BENCH_NAME=bench-fleet
. scripts/bench-lib.sh
build=$(cd "${1:?BUILD_DIR}" && pwd)
bench_build=$(cd "${2:?BENCH_BUILD_DIR}" && pwd)
out=${3:?OUT_MD}
n=${LADE_BENCH_FLEET_N:-10000}
rate=${LADE_BENCH_FLEET_RATE:-150}
burst=${LADE_BENCH_FLEET_BURST:-150}
start_rate=${LADE_BENCH_FLEET_START:-140}
steady_s=${LADE_BENCH_FLEET_STEADY_S:-60}
settle_s=${LADE_BENCH_FLEET_SETTLE_S:-30}
storms=${LADE_BENCH_FLEET_STORMS:-3}
calls=${LADE_BENCH_FLEET_CALLS:-2000}
peak_cars=${LADE_BENCH_FLEET_PEAK_CARS:-$(( n / 5 ))}
peak_s=${LADE_BENCH_FLEET_PEAK_S:-120}
hub_host=hub.lade.test

for bin in "$build/lade-sim" "$build/lade-factory" "$build/lade-cloud" "$build/lade_hub.so" "$bench_build/bench_fleet_cmd"; do
  [ -e "$bin" ] || { echo "bench-fleet: $bin is missing" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/lade-fleet.XXXXXX")
hub_pid='' sim_pid='' portal_pid=''
cleanup() {
  local rc=$? p
  trap - EXIT INT TERM
  for p in $sim_pid $portal_pid $hub_pid; do kill -TERM "$p" 2>/dev/null || true; done
  # 10 s: the sim closes every charger's connection (DISCONNECT, TLS close) before it exits.
  for p in $sim_pid $portal_pid $hub_pid; do stop_pid "$p" 10000; done
  if [ "${LADE_KEEP_TMP:-0}" = 1 ] || [ "$rc" != 0 ]; then
    echo "bench-fleet: work directory kept: $work" >&2
  else
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The sim's last stats line (one JSON object a second).
stat_of() { grep '"type":"stats"' "$work/sim.stats" 2>/dev/null | tail -n 1 | jq -r ".$1 // 0" 2>/dev/null || echo 0; }
wait_online() { # COUNT TIMEOUT_S: until the sim reports COUNT online; prints the ms it took
  local t0 deadline
  t0=$(now_ms)
  deadline=$(( t0 + $2 * 1000 ))
  while [ "$(stat_of online)" -lt "$1" ]; do
    [ "$(now_ms)" -lt "$deadline" ] || { echo "bench-fleet: only $(stat_of online) of $1 online after $2 s" >&2; return 1; }
    kill -0 "$sim_pid" 2>/dev/null || { echo "bench-fleet: lade-sim died" >&2; tail -20 "$work/sim.log" >&2; return 1; }
    sleep 0.2
  done
  echo $(( $(now_ms) - t0 ))
}

# Every process here may open as many files as the hard limit allows (this machine: $(ulimit -Hn)).
ulimit -n "$(ulimit -Hn)"
mkdir -p "$work/hub"
"$root/scripts/gen-certs.sh" ca "$work/hub" "lade bench fleet CA" >/dev/null
"$root/scripts/gen-certs.sh" server "$work/hub" "$work/hub" "$hub_host" >/dev/null
echo "127.0.0.1 $hub_host" >"$work/hosts"
registry=$work/hub/registry.db

# ---- provisioning -------------------------------------------------------------------------
t=$(now_ms)
"$build/lade-sim" provision --registry "$registry" --hub-host "$hub_host" --ca "$work/hub/ca.pem" \
  --count "$n" --out "$work/fleet" >"$work/provision.log" 2>&1 ||
  { cat "$work/provision.log" >&2; exit 1; }
provision_ms=$(( $(now_ms) - t ))
"$build/lade-factory" service --registry "$registry" --name fleetbench --hub-host "$hub_host" \
  --out "$work/service.conf" >/dev/null
"$build/lade-factory" service --registry "$registry" --name portal --hub-host "$hub_host" \
  --out "$work/portal-service.conf" >/dev/null
"$build/lade-sim" ids --fleet "$work/fleet" >"$work/ids.txt"
# The portal's sites: installations of 1 000 chargers (a site file's limit), each in circuits of
# 100 chargers (250 A each) under a main fuse the sum of its circuits; chargers with no offline
# current (the sim's cars are not plugged in).
split -d -a 3 -l 1000 "$work/ids.txt" "$work/site-ids."
site_args=()
for f in "$work"/site-ids.*; do
  k=${f##*.}
  jq -R -s --argjson per 100 --arg name "Fleet $k" '
    split("\n") | map(select(length > 0)) | to_entries as $c |
    ((($c | length) + $per - 1) / $per | floor) as $k |
    {Name: $name, NetworkType: 4, Fuse: ($k * 250), Available: ($k * 250),
     Circuits: [range(0; $k) | {Name: "C\(.)", Fuse: 250}],
     Chargers: [$c[] | {DeviceId: .value, Circuit: "C\(.key / $per | floor)", Rotation: "L1L2L3",
                MaxCurrent: 32, MinCurrent: 6, MaxPhases: 3, OfflineCurrent: 0,
                OfflinePhases: 3, Priority: 0}]}' "$f" >"$work/site-$k.json"
  site_args+=(--site "$work/site-$k.json")
done

# ---- the hub --------------------------------------------------------------------------------
hub_port=$(( 20000 + RANDOM % 40000 ))
cat >"$work/hub/mosquitto.conf" <<CONF
user $(id -un)
per_listener_settings false
allow_anonymous false
persistence false
max_connections -1
set_tcp_nodelay true
log_dest file $work/hub.log
log_type error
log_type warning
listener $hub_port 127.0.0.1
certfile $work/hub/server.pem
keyfile $work/hub/server.key
tls_version tlsv1.2
plugin $build/lade_hub.so
plugin_opt_registry $registry
plugin_opt_hub_host $hub_host
plugin_opt_max_connect_rate $rate
plugin_opt_connect_burst $burst
CONF
start_hub() {
  /usr/sbin/mosquitto -c "$work/hub/mosquitto.conf" &
  hub_pid=$!
  for _ in $(seq 150); do listening "$hub_port" && return 0; sleep 0.1; done
  echo "bench-fleet: the hub did not start" >&2; cat "$work/hub.log" >&2; return 1
}
start_hub

# ---- the portal -----------------------------------------------------------------------------
portal_port=$(( 20000 + RANDOM % 40000 ))
t=$(now_ms)
portal_pw=$(openssl rand -hex 16)
LADE_ADMIN_PASSWORD=$portal_pw "$build/lade-cloud" --db "$work/portal.db" --port "$portal_port" \
  --service "$work/portal-service.conf" --admin bench \
  --ca "$work/hub/ca.pem" --hosts-file "$work/hosts" --hub-port "$hub_port" "${site_args[@]}" \
  --log-level warn >"$work/portal.log" 2>&1 &
portal_pid=$!
for _ in $(seq 1200); do grep -q '^lade-cloud: listening' "$work/portal.log" && break; sleep 0.1; done
grep -q '^lade-cloud: listening' "$work/portal.log" ||
  { echo "bench-fleet: the portal did not start" >&2; tail -20 "$work/portal.log" >&2; exit 1; }
portal_start_ms=$(( $(now_ms) - t ))
# (awk reads to the end: an early exit could end curl with SIGPIPE, and pipefail the bench)
metric() { curl -s "http://127.0.0.1:$portal_port/metrics" | awk -v m="$1" '$1 == m {v = $2} END {print v}'; }

# ---- the fleet ------------------------------------------------------------------------------
t=$(now_ms)
"$build/lade-sim" run --fleet "$work/fleet" --count "$n" \
  --port "$hub_port" --scenario steady --start-rate "$start_rate" --stats "$work/sim.stats" \
  --stats-interval 1 >"$work/sim.log" 2>&1 &
sim_pid=$!
start_ms=$(wait_online "$n" 600)
echo "bench-fleet: $n online after $start_ms ms" >&2

# ---- steady state ---------------------------------------------------------------------------
for _ in $(seq 600); do [ "$(metric lade_chargers_online)" = "$n" ] && break; sleep 0.2; done
portal_online=$(metric lade_chargers_online)
start_timeouts=$(grep -c 'timed out, status 504' "$work/portal.log" || true)
push_total=$(metric lade_settings_pushes_total) push_deferred=$(metric lade_settings_pushes_deferred_total)
push_failed=$(metric lade_settings_pushes_failed_total) push_max=$(metric lade_settings_pushes_inflight_max)
sleep "$settle_s" # the connect-time traffic (snapshots, twins, first reports) is over
h0=$(cpu_s "$hub_pid") s0=$(cpu_s "$sim_pid") p0=$(cpu_s "$portal_pid") m0=$(metric lade_messages_in_total)
sleep "$steady_s"
h1=$(cpu_s "$hub_pid") s1=$(cpu_s "$sim_pid") p1=$(cpu_s "$portal_pid") m1=$(metric lade_messages_in_total)
hub_rss=$(rss_kb "$hub_pid") sim_rss=$(rss_kb "$sim_pid") portal_rss=$(rss_kb "$portal_pid")
portal_cpu=$(awk -v a="$p0" -v b="$p1" -v s="$steady_s" 'BEGIN {printf "%.2f", (b - a) / s * 100}')
msg_rate=$(awk -v a="${m0:-0}" -v b="${m1:-0}" -v s="$steady_s" 'BEGIN {printf "%.1f", (b - a) / s}')
per_k() { awk -v v="$1" -v n="$n" -v d="$2" 'BEGIN {printf "%.*f", d, v * 1000 / n}'; }
hub_cpu=$(awk -v a="$h0" -v b="$h1" -v s="$steady_s" 'BEGIN {printf "%.2f", (b - a) / s * 100}')
sim_cpu=$(awk -v a="$s0" -v b="$s1" -v s="$steady_s" 'BEGIN {printf "%.2f", (b - a) / s * 100}')
online_steady=$(stat_of online)

# ---- command round trip ---------------------------------------------------------------------
cmd_rows=
for c in 1 20; do
  # to a file first: a pipe into head could end bench_fleet_cmd with SIGPIPE mid-write
  "$bench_build/bench_fleet_cmd" --service "$work/service.conf" --ca "$work/hub/ca.pem" \
    --hosts-file "$work/hosts" --port "$hub_port" --ids "$work/ids.txt" --calls "$calls" \
    --concurrency "$c" >"$work/cmd-$c.txt"
  cmd_rows+="$(head -1 "$work/cmd-$c.txt")"$'\n'
done

# Through the portal's REST API: POST /api/chargers/{id}/sendCommand/10001 (DeauthorizeAndStop;
# harmless without a car: the charger answers 409, "nothing to stop", after the same round trip
# as a 200) to chargers picked at random, one at a time; curl's time_total
# (loopback connect + request + the portal → hub → charger → hub → portal round trip + answer).
token=$(curl -s -d "grant_type=password&username=bench&password=$portal_pw" \
  "http://127.0.0.1:$portal_port/oauth/token" | jq -r .access_token)
curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:$portal_port/api/chargers" |
  jq -r '.Data[].Id' | shuf -n "$(( calls < 200 ? calls : 200 ))" >"$work/portal-ids.txt" || true
: >"$work/portal-rtt.txt"
portal_codes=()
while read -r cid; do
  r=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' -X POST -H "Authorization: Bearer $token" \
    "http://127.0.0.1:$portal_port/api/chargers/$cid/sendCommand/10001")
  portal_codes+=("${r%% *}")
  case ${r%% *} in 200 | 409) awk -v t="${r#* }" 'BEGIN {printf "%.3f\n", t * 1000}' >>"$work/portal-rtt.txt" ;; esac
  sleep 0.11 # the portal allows a user 10 API calls a second (docs/portal-api.md "Rate limits")
done <"$work/portal-ids.txt"
portal_calls=${#portal_codes[@]}
portal_ok=$(wc -l <"$work/portal-rtt.txt")
pq() { sort -n "$work/portal-rtt.txt" | awk -v p="$1" '{v[NR]=$1} END {if (NR == 0) {print "n/a"; exit} i = int(p / 100 * (NR - 1) + 0.5) + 1; print v[i]}'; }
portal_other=$(printf '%s\n' "${portal_codes[@]}" | sort | uniq -c | awk '{printf "%s%s× %s", s, $1, $2; s = ", "}')
portal_row="| portal API, 1 in flight, ≤ 10 calls/s | $portal_calls | $portal_ok ($portal_other) | $(pq 50) | $(pq 90) | $(pq 99) | $(pq 100) |"

# ---- reconnect storms -----------------------------------------------------------------------
storm_ms=() storm_peak=()
for i in $(seq "$storms"); do
  kill -KILL "$hub_pid"; wait "$hub_pid" 2>/dev/null || true
  for _ in $(seq 100); do [ "$(stat_of online)" -lt "$n" ] && break; sleep 0.1; done
  sleep 2
  mark=$(wc -l <"$work/sim.stats")
  start_hub
  ms=$(wait_online "$n" 600)
  # the sim's summary of the outage it saw: peak new connections in any one second
  for _ in $(seq 50); do
    tail -n +"$mark" "$work/sim.stats" | grep -q '"event":"recovered"' && break; sleep 0.2
  done
  peak=$(tail -n +"$mark" "$work/sim.stats" | grep '"event":"recovered"' | tail -1 |
    jq -r '.peak_connects_per_s // 0')
  storm_ms+=("$ms") storm_peak+=("$peak")
  echo "bench-fleet: storm $i: $n online again after $ms ms, peak $peak connects/s" >&2
  sleep 5
done
storm_med=$(printf '%s\n' "${storm_ms[@]}" | median)
peak_med=$(printf '%s\n' "${storm_peak[@]}" | median)

# ---- evening peak ---------------------------------------------------------------------------
# PEAK_CARS chargers picked at random get a car (3-phase 11 kW, 16 A), evenly over PEAK_S; the
# portal sees each mode change, rebalances the car's installation (lowering others first where
# the circuit is full) and sends setpoints; each charger times plug-in → first offer itself.
shuf -n "$peak_cars" "$work/ids.txt" >"$work/peak-ids.txt"
p0=$(cpu_s "$portal_pid") h0=$(cpu_s "$hub_pid") sp0=$(metric lade_setpoints_sent_total)
"$bench_build/bench_fleet_cmd" --service "$work/service.conf" --ca "$work/hub/ca.pem" \
  --hosts-file "$work/hosts" --port "$hub_port" --ids "$work/peak-ids.txt" --calls "$peak_cars" \
  --concurrency 100 --distinct --rate "$(awk -v c="$peak_cars" -v s="$peak_s" 'BEGIN {print c / s}')" \
  --method sim --payload '{"plug":"3p11kw","soc":20}' >"$work/peak-calls.txt"
# until every car has its offer (or 120 s more: a car a full circuit cannot take waits)
for _ in $(seq 600); do
  [ "$(stat_of cars)" -ge "$peak_cars" ] && [ "$(stat_of cars_offered)" -ge "$(stat_of cars)" ] && break
  sleep 0.2
done
sleep 2
p1=$(cpu_s "$portal_pid") h1=$(cpu_s "$hub_pid") sp1=$(metric lade_setpoints_sent_total)
peak_line=$(grep '"type":"stats"' "$work/sim.stats" | tail -n 1)
pk() { jq -r ".$1 // \"n/a\"" <<<"$peak_line"; }
peak_wall=$(awk -F'|' '{print $9; exit}' "$work/peak-calls.txt" | tr -d ' ')
peak_row="| $peak_cars cars over $peak_s s | $(pk cars) | $(pk cars_offered) | $(pk offer_ms.le100) | $(pk offer_ms.p50) | $(pk offer_ms.p90) | $(pk offer_ms.p99) | $(pk offer_ms.max) |"
peak_setpoints=$(( ${sp1:-0} - ${sp0:-0} ))
peak_portal_cpu=$(awk -v a="$p0" -v b="$p1" 'BEGIN {printf "%.1f", (b - a)}')
peak_hub_cpu=$(awk -v a="$h0" -v b="$h1" 'BEGIN {printf "%.1f", (b - a)}')
echo "bench-fleet: peak: $peak_row" >&2

cat >"$out" <<MD
Measured $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), everything on 127.0.0.1.

| what | value |
|---|---|
| provisioning $n identities (\`lade-sim provision\`: keys, one registry transaction, one fleet file) | $provision_ms ms |
| start → all $n online (sim start rate $start_rate/s, hub admission rate $rate/s, burst $burst) | $start_ms ms |
| chargers online during the steady window (the sim / the portal's lade_chargers_online) | $online_steady / ${portal_online:-?} of $n |
| portal start with the site of $n chargers (store, balancer check) | $portal_start_ms ms |
| the portal's settings pushes while the fleet came online (the site's offline current 0 against the chargers' factory 6 A): sent / put off at the in-flight limit / most in flight / not confirmed (of them timed out, 15 s) | ${push_total:-?} / ${push_deferred:-?} / ${push_max:-?} / ${push_failed:-?} ($start_timeouts) |
| messages into the portal during the steady window | $msg_rate /s |
| portal (lade-cloud: ingest, balancer, store): CPU, resident memory | $portal_cpu % of one core, $(( portal_rss / 1024 )) MiB |
| hub (Mosquitto + lade_hub.so): CPU, resident memory | $hub_cpu % of one core, $(( hub_rss / 1024 )) MiB |
| lade-sim ($n chargers): CPU, resident memory | $sim_cpu % of one core, $(( sim_rss / 1024 )) MiB |
| per 1 000 chargers: hub CPU / memory | $(per_k "$hub_cpu" 3) % / $(per_k "$(( hub_rss / 1024 ))" 1) MiB |
| per 1 000 chargers: sim CPU / memory | $(per_k "$sim_cpu" 3) % / $(per_k "$(( sim_rss / 1024 ))" 1) MiB |
| per 1 000 chargers: portal CPU / memory | $(per_k "$portal_cpu" 3) % / $(per_k "$(( portal_rss / 1024 ))" 1) MiB |
| reconnect storm: hub restart → all $n online again (median of $storms: ${storm_ms[*]} ms) | $storm_med ms |
| reconnect storm: peak new connections per second (median of $storms: ${storm_peak[*]}) | $peak_med /s (admission rate $rate/s) |

Command round trip at $n connected (\`ping\`, service → hub → charger → hub → service; ms):

| in flight | calls | answered | p50 | p90 | p99 | max | calls/s |
|---|---|---|---|---|---|---|---|
$cmd_rows
Through the portal's REST API (\`POST /api/chargers/{id}/sendCommand/10001\`, curl's time_total: the
request to the portal, portal → hub → charger → hub → portal, the answer; ms):

| path | calls | answered by the charger (200 or 409; all codes) | p50 | p90 | p99 | max |
|---|---|---|---|---|---|---|
$portal_row

Evening peak at $n connected: $peak_cars chargers picked at random get a car (3-phase 11 kW, 16 A;
the simulator's \`sim\` method through the hub, each charger once, evenly over $peak_s s —
${peak_wall:-?} plug-ins/s); circuits of 100 chargers on 250 A fit 15 such cars at full current, so
a circuit with more is shared and a new car's share is made by lowering the others first
(docs/balancer.md). Plug-in → offer: from the step that saw the car to the step that put the
portal's setpoint on the pilot (the mode change → hub → portal: ingest, balancer step over the
installation of 1 000, setpoints to the others lowered first and acknowledged, the new car's
setpoint → hub → charger), as each charger timed it (lade-sim \`offer_ms\`, ms):

| peak | cars plugged | cars given an offer | offer within 100 ms | p50 | p90 | p99 | max |
|---|---|---|---|---|---|---|---|
$peak_row

A car whose circuit has room gets its offer in milliseconds. Where the circuit is full, the new
car's share is what the others give up, and the balancer counts a lowered charger at what it was
last measured drawing for \`car_follow_ms\` = 5 s after the decrease is confirmed — the time IEC
61851-1 gives a car to follow a lower pilot — unless a newer measurement shows the car already
followed (the chargers report a current change at most every \`report_min_interval_s\` = 10 s).
So those cars wait ≈ 5 s, or ≈ 10 s where a second decrease was needed: the price of never
exceeding a fuse, whatever the cars do (docs/balancer.md).

During the peak (plug-ins and the wait for the last offer): the portal sent $peak_setpoints setpoints
and used ${peak_portal_cpu} CPU seconds, the hub ${peak_hub_cpu}.
MD
echo "bench-fleet: written to $out" >&2
