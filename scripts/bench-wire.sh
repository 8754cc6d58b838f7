#!/usr/bin/env bash
# bench-wire.sh — figure 18 of `make bench` (issue 8): what an idle charger and a charge session
# cost ON THE WIRE, i.e. in IP packets (IPv4 + TCP headers, pure ACKs, handshakes, TLS: every
# packet of tcp 8883 to or from the hub), measured in the site-network lab (tests/lab, docs/lab.md),
# and the device-to-cloud messages a day as IoT Hub bills them (4 KB blocks).
#
#   scripts/bench-wire.sh BUILD_DIR OUT_MD
#
#   LADE_BENCH_WIRE_S   the idle sampling window in seconds (at least; it also lasts as long as
#                       the charge session, about 2 minutes)                       default 60
#   LADE_KEEP_TMP=1     keep the work directory (configs, logs, samples; the lab keeps its state
#                       directory too: `lab.sh gc` removes it)
#
# Four lade-charger (evse = sim), each in a charger namespace of one lab, each with nftables
# counters (netdev ingress + egress hooks) on its eth0, run at once:
#   ka     keep-alive only  (keepalive_s 5, no snapshots, no renewal in the window)
#   snap   snapshots only   (telemetry_interval_s 7 < keepalive_s 240: no PINGREQ)
#   renew  token renewals   (token_ttl_s 20: a renewal every 16–18 s)
#   sess   one charge session as figure 5 (sim_time_scale 30, a 3p11kw car for 3600 simulated s)
# The idle chargers are sampled (counters + status file) at every quiet moment after activity, so
# each difference of two samples is one event; medians over events. Segmentation offloads are
# limited (gso_max_segs 1 on the chargers' and the hub's interfaces) so the counters see the
# packets a real link carries (checked: no packet over 1500 B). Writes a Markdown fragment
# (no heading) to OUT_MD; progress on stderr. Needs root (the lab). The lab is torn down on exit.
set -euo pipefail

[ $# -eq 2 ] || { echo "usage: $0 BUILD_DIR OUT_MD" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
BENCH_NAME=bench-wire
. scripts/bench-lib.sh
build=$(cd "$1" && pwd) || { echo "bench-wire: no build directory $1" >&2; exit 1; }
out=$2
win_s=${LADE_BENCH_WIRE_S:-60}
if ! [[ $win_s =~ ^[0-9]+$ ]] || (( win_s < 20 )); then
  echo "bench-wire: LADE_BENCH_WIRE_S must be a number ≥ 20" >&2
  exit 1
fi
scale=30          # sim_time_scale of the charge session (figure 5)
sess_sim_s=3600   # the session: one simulated hour
plug_after_s=40   # real seconds from the start to the plug-in: after the first periodic snapshot
                  # (telemetry_interval_s 30), whose status-file write is the session's baseline
budget_b=3000000  # SPEC R12: the reference system uses ~3 MB/day per charger
hub_port=8883

log() { echo "bench-wire: $*" >&2; }
die() { log "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "the lab needs root"
for bin in lade-charger lade-factory lade_hub.so; do
  [ -e "$build/$bin" ] || die "$build/$bin is missing (make build)"
done
for tool in nft jq ip awk; do command -v "$tool" >/dev/null || die "$tool is missing"; done

# Production defaults, from the code (lade_settings_defaults in src/common/settings.c).
def_ka=$(setting_default keepalive_s)
def_ttl=$(setting_default token_ttl_s)
def_tel=$(setting_default telemetry_interval_s)

work=$(mktemp -d "${TMPDIR:-/tmp}/lade-wire.XXXXXX")
lab="lw$$"
lab_up=0
pids=()
cleanup() {
  local rc=$? p
  trap - EXIT INT TERM
  for p in "${pids[@]+"${pids[@]}"}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]+"${pids[@]}"}"; do stop_pid "$p"; done
  if (( lab_up )); then bash tests/lab/lab.sh -n "$lab" down >/dev/null 2>&1 || log "lab $lab: down failed"; fi
  if [ "${LADE_KEEP_TMP:-0}" = 1 ] || [ "$rc" != 0 ]; then
    log "work directory kept: $work"
  else
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the lab: 4 chargers with static addresses, the hub ------------------------------------------
roles=(ka snap renew sess)
n=${#roles[@]}
t_begin=$(now_ms)
log "lab $lab up ($n chargers, hub)"
mkdir -p "$work/logs"
lab_up=1
bash tests/lab/lab.sh -n "$lab" up --hub --chargers "$n" --addr static --build "$build" --owner $$ \
  >"$work/logs/lab-up.log" 2>&1 || { cat "$work/logs/lab-up.log" >&2; die "the lab did not come up"; }
info=$(bash tests/lab/lab.sh -n "$lab" info)
state=$(sed -n 's/^STATE_DIR=//p' <<<"$info")
ca=$(sed -n 's/^HUB_CA=//p' <<<"$info")
ns_inet=$(sed -n 's/^NS_INET=//p' <<<"$info")
reg=$state/hub/registry.db
if [ ! -f "$ca" ] || [ -z "$ns_inet" ]; then die "lab info incomplete: $info"; fi
ns=()
for ((i = 0; i < n; i++)); do ns+=("$(sed -n "s/^NS_CHARGER$i=//p" <<<"$info")"); done

# The real link's packets: one skb per segment at the counters (TSO/GSO off for TCP by
# gso_max_segs 1 on the sending side: the hub's uplink and each charger's eth0).
ip -n "$ns_inet" link set dev up0 gso_max_segs 1
for ((i = 0; i < n; i++)); do ip -n "${ns[i]}" link set dev eth0 gso_max_segs 1; done

# Counters on each charger's eth0, tcp 8883 only. Egress counts the frame (14 B Ethernet header
# included), ingress from the IP header: made equal (IP level) when read. data_*: segments with
# payload and the usual 20 B IPv4 + 32 B TCP header (timestamps): payload = IP length − 52.
# odd_*: non-SYN-sized segments without that header layout (their payload would be miscounted:
# must be 0); big_*: packets over 1500 B (offloads not disabled: must be 0).
cat >"$work/counters.nft" <<'NFT'
table netdev ladewire {
  counter hub_out {}
  counter hub_in {}
  counter data_out {}
  counter data_in {}
  counter odd_out {}
  counter odd_in {}
  counter big_out {}
  counter big_in {}
  chain in {
    type filter hook ingress device "eth0" priority 0; policy accept;
    tcp sport 8883 counter name hub_in
    tcp sport 8883 ip hdrlength 5 tcp doff 8 ip length > 52 counter name data_in
    tcp sport 8883 tcp doff != 8 ip length > 60 counter name odd_in
    tcp sport 8883 ip length > 1500 counter name big_in
  }
  chain out {
    type filter hook egress device "eth0" priority 0; policy accept;
    tcp dport 8883 counter name hub_out
    tcp dport 8883 ip hdrlength 5 tcp doff 8 ip length > 52 counter name data_out
    tcp dport 8883 tcp doff != 8 ip length > 60 counter name odd_out
    tcp dport 8883 ip length > 1500 counter name big_out
  }
}
NFT
for ((i = 0; i < n; i++)); do
  ip netns exec "${ns[i]}" nft -f "$work/counters.nft" 2>"$work/logs/nft-$i.log" ||
    { cat "$work/logs/nft-$i.log" >&2; die "nftables counters could not be set up in ${ns[i]}"; }
done
# counters I: "hub_out_p hub_out_B hub_in_p hub_in_B data_out_p data_out_PL data_in_p data_in_PL
# odd big" (B: IP bytes; PL: TCP payload bytes of the data segments)
counters() {
  ip netns exec "${ns[$1]}" nft list counters table netdev ladewire | awk '
    $1 == "counter" {c = $2}
    $1 == "packets" {p[c] = $2; b[c] = $4; if (c ~ /_out$/) b[c] -= 14 * $2}
    END {
      print p["hub_out"], b["hub_out"], p["hub_in"], b["hub_in"],
        p["data_out"], b["data_out"] - 52 * p["data_out"], p["data_in"], b["data_in"] - 52 * p["data_in"],
        p["odd_out"] + p["odd_in"], p["big_out"] + p["big_in"]
    }'
}
# status I: "bytes_out bytes_in telemetry_sent token_renewals connects sessions_acked
# sessions_started link" from charger I's status file ("" while it has none)
status() {
  jq -r '[.bytes_out, .bytes_in, .telemetry_sent, .token_renewals, .connects,
      ([.. | objects | .sessions_acked? | numbers] | first // 0),
      ([.. | objects | .sessions_started? | numbers] | first // 0), .link] | map(tostring) | join(" ")' \
    "$work/c$1/status.json" 2>/dev/null || true
}

# ---- the chargers ------------------------------------------------------------------------------
for ((i = 0; i < n; i++)); do
  id=LDEW$i
  "$build/lade-factory" create --registry "$reg" --id "$id" --hub-host hub.lade.test --hub-port "$hub_port" \
    --ca "$ca" --out "$work/dev" --hosts-file /dev/null --time-source host --ntp-host ntp.lade.test \
    --fallback-dns 198.51.100.53,198.51.100.54 --evse sim >/dev/null
  mkdir -p "$work/c$i/state"
  cp "$work/dev/$id/factory.conf" "$work/c$i/factory.conf"
  printf 'state_dir = %s\ndns_servers = 192.168.77.1\nlog_level = info\n' "$work/c$i/state" >"$work/c$i/user.conf"
done
long=86400
cat >>"$work/c0/user.conf" <<CONF
keepalive_s = 5
telemetry_interval_s = $long
token_ttl_s = $long
sim_car = none
CONF
cat >>"$work/c1/user.conf" <<CONF
keepalive_s = $def_ka
telemetry_interval_s = 7
token_ttl_s = $long
sim_car = none
CONF
cat >>"$work/c2/user.conf" <<CONF
keepalive_s = $def_ka
telemetry_interval_s = $long
token_ttl_s = 20
sim_car = none
CONF
# Figure 5's session: the simulator's saved state says "not plugged, plug in after N simulated
# ms"; sim_car then plugs a 3-phase 11 kW car at 20 % for sess_sim_s simulated seconds. No portal
# sends setpoints: the car charges at the offline current, 16 A on 3 phases.
sess_tel=$(( (def_tel + scale / 2) / scale ))
printf '{"energyWh":0,"plugged":false,"profile":"3p11kw","phaseLeftMs":%d}\n' \
  $(( plug_after_s * scale * 1000 )) >"$work/c3/state/sim.json"
cat >>"$work/c3/user.conf" <<CONF
telemetry_interval_s = $sess_tel
report_min_interval_s = 1
sim_car = 3p11kw
sim_soc = 20
sim_plug_s = $sess_sim_s
sim_unplug_s = 0
sim_time_scale = $scale
offline_current_a = 16
offline_phases = 3
CONF

sess_real_s=$(( sess_sim_s / scale ))
log "4 chargers: keep-alive, snapshots, token renewals (sampled ≥ $win_s s) and one charge session" \
  "(1 simulated hour at ×$scale: ~$(( plug_after_s + sess_real_s + 5 )) s)"
for ((i = 0; i < n; i++)); do
  ip netns exec "${ns[i]}" "$build/lade-charger" --factory "$work/c$i/factory.conf" --user "$work/c$i/user.conf" \
    --status "$work/c$i/status.json" >"$work/logs/charger-${roles[i]}.log" 2>&1 &
  pids+=($!)
  : >"$work/samples-${roles[i]}.txt"
done
t0=$(now_ms)

# ---- sampling ----------------------------------------------------------------------------------
# A sample line: "ms <counters> <status>". Idle chargers: a sample at every moment the counters
# have been still for quiet[i] ms after a change (and the charger is online).
quiet=(1500 1500 3000 1500)
declare -a last_tot last_chg dirty
for ((i = 0; i < n; i++)); do last_tot[i]=-1; last_chg[i]=0; dirty[i]=1; done
sample() { echo "$(now_ms) $(counters "$1") $(status "$1")" >>"$work/samples-${roles[$1]}.txt"; }
# The session's baseline: a quiet moment after the first periodic snapshot (the connect and its
# follow-ups are over). The charger's own byte count is not used there: it rewrites its status
# file when it queues a message, before the bytes are written, so the file lags by the last send.
sess_phase=0 # 0: no baseline yet, 1: plugged/charging, 2: record acked (end in 1 s), 3: done
sess_tel0=-1
sess_ack_ms=0
deadline=$(( t0 + (plug_after_s + sess_real_s + win_s + 90) * 1000 ))
first_idle=0
while :; do
  now=$(now_ms)
  (( now < deadline )) || die "timed out (session phase $sess_phase); logs in $work/logs"
  for ((i = 0; i < n; i++)); do
    kill -0 "${pids[i]}" 2>/dev/null || die "the ${roles[i]} charger died (logs/charger-${roles[i]}.log)"
  done
  for ((i = 0; i < 3; i++)); do
    read -r op _ ip _ <<<"$(counters "$i")"
    tot=$(( op + ip ))
    if (( tot != last_tot[i] )); then
      last_tot[i]=$tot; last_chg[i]=$now; dirty[i]=1
    elif (( dirty[i] && now - last_chg[i] >= quiet[i] )) &&
      grep -q '"link":"online"' "$work/c$i/status.json" 2>/dev/null; then
      sample "$i"
      dirty[i]=0
      (( first_idle )) || first_idle=$now
    fi
  done
  case $sess_phase in
    0)
      read -r op _ ip _ <<<"$(counters 3)"
      tot=$(( op + ip ))
      st=$(status 3)
      read -r _ _ tel _ _ _ started link <<<"${st:-x x -1 x x 0 0 none}"
      (( started == 0 )) || die "the car was plugged in before the session's baseline (raise plug_after_s)"
      if (( tot != last_tot[3] )); then
        last_tot[3]=$tot; last_chg[3]=$now
      elif [ "$link" = online ] && (( tot > 0 && now - last_chg[3] >= quiet[3] && sess_tel0 < 0 )); then
        sess_tel0=$tel # the connect is over
      elif [ "$link" = online ] && (( sess_tel0 >= 0 && tel > sess_tel0 && now - last_chg[3] >= quiet[3] )); then
        sample 3
        sess_phase=1
        log "session: baseline at $(( now - t0 )) ms (after a periodic snapshot), plug-in at ~$(( plug_after_s * 1000 )) ms"
      fi
      ;;
    1)
      st=$(status 3)
      read -r _ _ _ _ _ acked _ _ <<<"${st:-x x x x x 0 0 none}"
      if (( acked >= 1 )); then sess_ack_ms=$now; sess_phase=2; fi
      ;;
    2)
      if (( now - sess_ack_ms >= 1000 )); then
        sample 3
        sess_phase=3
        log "session: record acknowledged at $(( sess_ack_ms - t0 )) ms"
      fi
      ;;
  esac
  if (( sess_phase == 3 && first_idle && now - first_idle >= win_s * 1000 )); then
    break
  fi
  sleep 0.2
done
for p in "${pids[@]}"; do stop_pid "$p"; done
pids=()
bash tests/lab/lab.sh -n "$lab" down >/dev/null 2>&1 || log "lab $lab: down failed"
lab_up=0

# ---- analysis ----------------------------------------------------------------------------------
# Sample fields: 1 ms, 2 hub_out_p, 3 hub_out_B, 4 hub_in_p, 5 hub_in_B, 6 data_out_p,
# 7 data_out_PL, 8 data_in_p, 9 data_in_PL, 10 odd, 11 big, 12 bytes_out, 13 bytes_in,
# 14 telemetry_sent, 15 token_renewals, 16 connects, 17 sessions_acked, 18 sessions_started, 19 link
for r in ka snap renew sess; do
  f=$work/samples-$r.txt
  [ "$(wc -l <"$f")" -ge 2 ] || die "the $r charger gave fewer than 2 samples ($f)"
  awk 'NF != 19 {exit 1}' "$f" || die "a malformed sample in $f"
  awk '$10 != 0 || $11 != 0 {exit 1}' "$f" ||
    die "the $r charger's counters saw packets that are not plain segments (odd/big ≠ 0: offloads?) — $f"
done
# deltas FILE EVENT: per pair of consecutive samples: "events wire pk pk_out pk_in wire_out wire_in
# payload_ip payload_charger data_pk ms", EVENT: the column that counts the event (0: cycles,
# i.e. data segments out)
deltas() {
  awk -v ev="$2" 'NR > 1 {
    e = ev ? $ev - p[ev] : $6 - p[6]
    print e, ($3 - p[3]) + ($5 - p[5]), ($2 - p[2]) + ($4 - p[4]), $2 - p[2], $4 - p[4],
      $3 - p[3], $5 - p[5], ($7 - p[7]) + ($9 - p[9]), ($12 - p[12]) + ($13 - p[13]),
      ($6 - p[6]) + ($8 - p[8]), $1 - p[1]
  } {for (k = 1; k <= NF; k++) p[k] = $k}' "$1"
}
deltas "$work/samples-ka.txt" 0 >"$work/d-ka.txt"
deltas "$work/samples-snap.txt" 14 >"$work/d-snap.txt"
deltas "$work/samples-renew.txt" 15 >"$work/d-renew.txt"
deltas "$work/samples-sess.txt" 14 >"$work/d-sess.txt"
# one-event deltas only (ka: one PINGREQ and its PINGRESP, 24 + 24 B of payload)
awk '$1 == 1 && $8 == 48 && $10 == 2' "$work/d-ka.txt" >"$work/e-ka.txt"
awk '$1 == 1' "$work/d-snap.txt" >"$work/e-snap.txt"
awk '$1 == 1' "$work/d-renew.txt" >"$work/e-renew.txt"
for r in ka snap renew; do
  [ -s "$work/e-$r.txt" ] || die "no single-event sample for $r (see $work/d-$r.txt)"
done
col_med() { awk -v c="$2" '{print $c}' "$1" | median; }
nev() { wc -l <"$1" | tr -d ' '; }
# window totals (first to last sample) of a role: "events wire pk payload_ip payload_charger s"
window() {
  awk -v ev="$2" 'NR == 1 {for (k = 1; k <= NF; k++) f[k] = $k} {for (k = 1; k <= NF; k++) l[k] = $k}
    END {
      e = ev ? l[ev] - f[ev] : l[6] - f[6]
      printf "%d %d %d %d %d %.0f\n", e, (l[3] - f[3]) + (l[5] - f[5]), (l[2] - f[2]) + (l[4] - f[4]),
        (l[7] - f[7]) + (l[9] - f[9]), (l[12] - f[12]) + (l[13] - f[13]), (l[1] - f[1]) / 1000
    }' "$1"
}
read -r ka_cyc ka_wire_t ka_pk_t ka_pl_t _ ka_s <<<"$(window "$work/samples-ka.txt" 0)"
ka_cyc_pl=$(( ka_pl_t / 48 ))
read -r sn_n sn_wire_t _ sn_pl_t _ sn_s <<<"$(window "$work/samples-snap.txt" 14)"
read -r rn_n rn_wire_t _ rn_pl_t _ rn_s <<<"$(window "$work/samples-renew.txt" 15)"

# per-event medians: wire, packets out, packets in, wire out, wire in, payload (packets), payload (charger)
meds() { local f=$work/e-$1.txt; echo "$(col_med "$f" 2) $(col_med "$f" 4) $(col_med "$f" 5) $(col_med "$f" 6) $(col_med "$f" 7) $(col_med "$f" 8) $(col_med "$f" 9)"; }
read -r ka_w ka_po ka_pi ka_wo ka_wi ka_pl _ <<<"$(meds ka)"
read -r sn_w sn_po sn_pi sn_wo sn_wi sn_pl sn_plc <<<"$(meds snap)"
read -r rn_w rn_po rn_pi rn_wo rn_wi rn_pl rn_plc <<<"$(meds renew)"

# the session: baseline (quiet, before the plug-in) → 1 s after the record's PUBACK
read -r s_tel s_w s_pk s_po s_pi s_wo s_wi s_pl _ s_dpk s_ms <<<"$(cat "$work/d-sess.txt")"
# at the end (1 s after the PUBACK, whose receipt rewrote the status file) the charger's count of
# its whole connection against the packets' payload since the start: "out in out in"
read -r s_cho s_chi s_pko s_pki <<<"$(awk 'NR == 2 {print $12, $13, $7, $9}' "$work/samples-sess.txt")"
s_msgs=$(( s_tel + 1 ))
s_plugged=$(awk 'NR == 2 {print $18}' "$work/samples-sess.txt")
s_acked=$(awk 'NR == 2 {print $17}' "$work/samples-sess.txt")
(( s_plugged == 1 && s_acked == 1 )) || die "the session charger's end sample says started=$s_plugged acked=$s_acked"

# ---- the idle day on the wire (figure 4's model at the production defaults) ----------------------
# A connection lives 0.85 × token_ttl_s; it starts with a renewal (its snapshot included), then a
# snapshot every telemetry_interval_s and a PINGREQ whenever keepalive_s pass without a send.
read -r conn_s conns_day snaps_conn pings_conn <<<"$(awk -v ttl="$def_ttl" -v tel="$def_tel" -v ka="$def_ka" 'BEGIN {
  L = 0.85 * ttl; s = int(L / tel); per_gap = int((tel - 1) / ka); rest = L - s * tel
  printf "%.0f %.4f %d %d\n", L, 86400 / L, s, s * per_gap + int(rest / ka) }')"
day() { awk -v c="$conns_day" -v k="$pings_conn" -v s="$snaps_conn" -v a="$1" -v b="$2" -v r="$3" \
  'BEGIN {printf "%.0f\n", c * (k * a + s * b + r)}'; }
wire_day=$(day "$ka_w" "$sn_w" "$rn_w")
pl_day=$(day "$ka_pl" "$sn_pl" "$rn_pl")
pk_day=$(day "$(( ka_po + ka_pi ))" "$(( sn_po + sn_pi ))" "$(( rn_po + rn_pi ))")
# messages a day: the snapshots (periodic + one per connect) and one reported patch per connect
msgs_day=$(awk -v c="$conns_day" -v s="$snaps_conn" 'BEGIN {printf "%.0f", c * (s + 2)}')
snaps_day=$(awk -v c="$conns_day" -v s="$snaps_conn" 'BEGIN {printf "%.0f", c * (s + 1)}')
patches_day=$(awk -v c="$conns_day" 'BEGIN {printf "%.0f", c}')
fmt() { awk -v x="$1" 'BEGIN {printf "%.0f", x}'; }
rat() { awk -v a="$1" -v b="$2" 'BEGIN {if (b + 0 == 0) print "n/a"; else printf "%.2f", a / b}'; }
# blocks: Σ ceil(size / 4096) over the messages; every message is smaller than the TLS payload
# it was measured in (snapshot: one record; reported patch: part of the renewal's bytes out)
blocks() { awk -v s="$1" 'BEGIN {printf "%d", int((s + 4095) / 4096)}'; }
snap_blk=$(blocks "$sn_pl")
patch_bound=$(awk -v o="$(col_med "$work/e-renew.txt" 6)" -v p="$rn_po" 'BEGIN {printf "%d", o - 52 * p}')
patch_blk=$(blocks "$patch_bound")
blocks_day=$(awk -v c="$conns_day" -v s="$snaps_conn" -v a="$snap_blk" -v b="$patch_blk" \
  'BEGIN {printf "%.0f", c * ((s + 1) * a + b)}')

# figure 5's production estimate (report_min_interval_s 10 simulated s): from make bench's same
# run (LADE_BENCH_WIRE_FIG5="BYTES MESSAGES"), else from bench/RESULTS.md on disk
if [ -n "${LADE_BENCH_WIRE_FIG5:-}" ]; then
  prod=$LADE_BENCH_WIRE_FIG5 prod_from="figure 5 of this run"
else
  prod=$(sed -nE 's/.*\*\*([0-9]+) B and ([0-9]+) messages per one-hour session\*\*.*/\1 \2/p' bench/RESULTS.md 2>/dev/null | head -n 1) || true
  prod_from="figure 5 of the bench/RESULTS.md on disk"
fi
read -r prod_pl prod_msgs <<<"${prod:-n/a n/a}"
s_ovh=$(awk -v w="$s_w" -v p="$s_pl" -v m="$s_msgs" 'BEGIN {printf "%.1f", (w - p) / m}')
if [ "$prod_pl" != n/a ]; then
  prod_wire=$(awk -v p="$prod_pl" -v m="$prod_msgs" -v o="$s_ovh" 'BEGIN {printf "%.0f", p + m * o}')
  prod_wire_r=$(awk -v p="$prod_pl" -v w="$s_w" -v q="$s_pl" 'BEGIN {printf "%.0f", p * w / q}')
else
  prod_wire=n/a prod_wire_r=n/a
fi

runtime_s=$(( ($(now_ms) - t_begin) / 1000 ))
# ---- the fragment ------------------------------------------------------------------------------
{
  echo "The site-network lab (\`tests/lab\`, docs/lab.md): $n \`lade-charger\` (\`evse = sim\`), each in a"
  echo "charger namespace on the site LAN behind the NAT router, the hub (Mosquitto + lade_hub.so) at"
  echo "hub.lade.test in the lab's internet, all at once. nftables counters (netdev ingress and egress"
  echo "hooks) on each charger's eth0 count every IP packet of tcp $hub_port to and from the hub: packets"
  echo "and **IP bytes** (IPv4 + TCP headers and payload; the 14 B Ethernet header not counted), pure"
  echo "ACKs, SYN/FIN, TLS records, everything. TCP payload is counted twice: by the charger"
  echo "(\`bytes_in\`/\`bytes_out\` of its status file, TLS included — figures 4 and 5 count the same at a"
  echo "relay) and from the packets (IP length − 52 B over the segments that carry data)."
  echo
  echo "| recurring cost | setting that isolates it | n | payload, charger (B) | payload, packets (B) | packets out / in | IP bytes out / in | **on the wire (B)** | wire / payload |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
  echo "| keep-alive cycle | \`keepalive_s = 5\`, no snapshot or renewal due | $(nev "$work/e-ka.txt") | – | $ka_pl | $ka_po / $ka_pi | $ka_wo / $ka_wi | **$(fmt "$ka_w")** | $(rat "$ka_w" "$ka_pl") |"
  echo "| snapshot | \`telemetry_interval_s = 7\` (< keep-alive: no PINGREQ) | $(nev "$work/e-snap.txt") | $sn_plc | $sn_pl | $sn_po / $sn_pi | $sn_wo / $sn_wi | **$(fmt "$sn_w")** | $(rat "$sn_w" "$sn_pl") |"
  echo "| token renewal | \`token_ttl_s = 20\` (renewed at 80–90 %) | $(nev "$work/e-renew.txt") | $rn_plc | $rn_pl | $rn_po / $rn_pi | $rn_wo / $rn_wi | **$(fmt "$rn_w")** | $(rat "$rn_w" "$rn_pl") |"
  echo
  echo "- Medians over events. Each charger is sampled (counters and status file) at every moment its"
  echo "  counters have been still for 1.5 s (renewals: 3 s) after a change, from the first such moment"
  echo "  after it is online; consecutive samples bracket one event, and only samples with exactly one"
  echo "  are used: keep-alive $(nev "$work/e-ka.txt") of $(nev "$work/d-ka.txt") (one PINGREQ out, one PINGRESP in, 48 B of payload),"
  echo "  snapshots $(nev "$work/e-snap.txt") of $(nev "$work/d-snap.txt") (\`telemetry_sent\` +1), renewals $(nev "$work/e-renew.txt") of $(nev "$work/d-renew.txt") (\`token_renewals\` +1)."
  echo "- Keep-alive: the charger rewrites its status file only when it sends a message, not on a ping,"
  echo "  so its own payload count is not available per cycle; over the ${ka_s} s window the packets"
  echo "  carried $ka_pl_t B of payload = $ka_cyc_pl cycles of 48 B, and $ka_cyc PINGREQ segments: $ka_wire_t B and"
  echo "  $ka_pk_t packets on the wire, **$(awk -v a="$ka_wire_t" -v b="$ka_cyc" 'BEGIN {printf "%.0f", a / b}') B and $(awk -v a="$ka_pk_t" -v b="$ka_cyc" 'BEGIN {printf "%.1f", a / b}') packets per cycle** (PINGREQ, PINGRESP, the charger's ACK)."
  echo "- Whole windows: snapshots $sn_n in ${sn_s} s, $sn_wire_t B on the wire for $sn_pl_t B of payload"
  echo "  ($(awk -v a="$sn_wire_t" -v b="$sn_n" 'BEGIN {printf "%.0f", a / b}') B each); renewals $rn_n in ${rn_s} s, $rn_wire_t B for $rn_pl_t B ($(awk -v a="$rn_wire_t" -v b="$rn_n" 'BEGIN {printf "%.0f", a / b}') B each)."
  echo "  The charger's own count comes from its status file, which it rewrites when it queues a message,"
  echo "  before the bytes go out: it lags by what was sent since. The lag is the same at both ends of an"
  echo "  event, so per event the two counts agree but for what the charger does not count (a renewal's"
  echo "  old TLS close_notify records)."
  echo "- A renewal is the old connection's end (MQTT DISCONNECT, TLS close_notify both ways, FIN/ACK),"
  echo "  the new one's TCP handshake, resumed TLS 1.3 handshake, CONNECT, SUBSCRIBE, twin GET and reported"
  echo "  patch, and its connect snapshot. The packets' payload also has the old connection's TLS"
  echo "  close_notify records, which the charger does not count."
  echo "- Segments: \`gso_max_segs 1\` on the hub's uplink and on each charger's eth0, so the counters see"
  echo "  one packet per TCP segment as a real link carries them (checked: no packet over 1500 B, every"
  echo "  data segment with a 20 B IPv4 + 32 B TCP header). MTU 1500; TCP timestamps on (Linux default)."
  echo
  echo "### The idle day on the wire"
  echo
  echo "Figure 4's model at the production defaults (\`keepalive_s = $def_ka\`, \`telemetry_interval_s = $def_tel\`,"
  echo "\`token_ttl_s = $def_ttl\`): a connection lives 0.85 × $def_ttl = $conn_s s and holds $pings_conn keep-alive"
  echo "cycles, $snaps_conn snapshots and 1 renewal (its connect snapshot included); $(awk -v c="$conns_day" 'BEGIN {printf "%.2f", c}') connections a day"
  echo "(86400 / $conn_s). The per-event costs measured above are the same at the production periods: a"
  echo "ping, a snapshot and a renewal are the same packets whatever the time between them."
  echo
  echo "| | per connection | payload a day | packets a day | **on the wire a day** | wire / payload |"
  echo "|---|---|---:|---:|---:|---:|"
  echo "| keep-alive cycles | $pings_conn × $(fmt "$ka_w") B | $(day "$ka_pl" 0 0) B | $(day "$(( ka_po + ka_pi ))" 0 0) | $(day "$ka_w" 0 0) B | $(rat "$ka_w" "$ka_pl") |"
  echo "| snapshots | $snaps_conn × $(fmt "$sn_w") B | $(day 0 "$sn_pl" 0) B | $(day 0 "$(( sn_po + sn_pi ))" 0) | $(day 0 "$sn_w" 0) B | $(rat "$sn_w" "$sn_pl") |"
  echo "| token renewals | 1 × $(fmt "$rn_w") B | $(day 0 0 "$rn_pl") B | $(day 0 0 "$(( rn_po + rn_pi ))") | $(day 0 0 "$rn_w") B | $(rat "$rn_w" "$rn_pl") |"
  echo "| **idle charger** | $(awk -v k="$pings_conn" -v s="$snaps_conn" -v a="$ka_w" -v b="$sn_w" -v r="$rn_w" 'BEGIN {printf "%.0f", k * a + s * b + r}') B | $pl_day B | $pk_day | **$wire_day B** ($(awk -v x="$wire_day" 'BEGIN {printf "%.1f", x / 1000}') kB) | $(rat "$wire_day" "$pl_day") |"
  echo
  echo "- Against SPEC R12's ~3 MB a day for the reference charger: **$(awk -v b="$budget_b" -v x="$wire_day" 'BEGIN {printf "%.1f", b / x}')× less** on the wire"
  echo "  ($(awk -v b="$budget_b" -v x="$wire_day" 'BEGIN {printf "%.2f", 100 * x / b}') %). Figure 4's payload-only day is the same model over payload: $pl_day B here."
  echo "- Billed messages a day (IoT Hub: device-to-cloud messages in 4 KB blocks): $snaps_day snapshots"
  echo "  ($snaps_conn per connection + the connect's) and $patches_day reported patches (one per connect) = **$msgs_day messages**."
  echo "  Each is smaller than what it was measured in: a snapshot's TLS record is $sn_pl B (JSON, topic,"
  echo "  MQTT and TLS headers: $snap_blk block), a reported patch is part of the renewal's $patch_bound B of"
  echo "  payload out ($patch_blk block): Σ ceil(size / 4096) = **$blocks_day blocks a day**, as many as messages."
  echo "  Keep-alive pings are not messages; the twin GET at each connect is a twin read, metered apart."
  echo
  echo "### One charge session on the wire"
  echo
  echo "Figure 5's session in the lab: \`sim_time_scale = $scale\`, \`report_min_interval_s = 1\` (30 simulated s),"
  echo "\`telemetry_interval_s = $sess_tel\` ($def_tel simulated s), offline current 16 A on 3 phases, a \`3p11kw\` car"
  echo "at 20 % plugged in $plug_after_s s after the start and unplugged $sess_sim_s simulated s ($sess_real_s s) later. Counted"
  echo "from a quiet moment after the first periodic snapshot, before the plug-in, to 1 s after the session record's"
  echo "PUBACK (its ACK included): $(awk -v m="$s_ms" 'BEGIN {printf "%.1f", m / 1000}') s. The charger stays connected; its DISCONNECT is not counted."
  echo
  echo "| | |"
  echo "|---|---|"
  echo "| messages | **$s_msgs** ($s_tel state messages by \`telemetry_sent\` + the session record) |"
  echo "| payload | $s_pl B in the packets (the charger's own count of its whole connection at the end: $s_cho B out / $s_chi B in; the packets': $s_pko / $s_pki) |"
  echo "| packets | $s_pk ($s_po out, $s_pi in; $s_dpk carry data) |"
  echo "| **on the wire** | **$s_w B** ($s_wo out, $s_wi in): $(rat "$s_w" "$s_pl")× the payload, $s_ovh B of headers and ACKs per message |"
  if [ "$prod_wire" != n/a ]; then
    echo "| one hour at the production report interval | **$prod_wire B** on the wire, $prod_msgs messages |"
  fi
  echo
  if [ "$prod_wire" != n/a ]; then
    echo "- Production estimate: figure 5's $prod_pl B of payload and $prod_msgs messages per one-hour session"
    echo "  (\`report_min_interval_s = 10\` simulated s; $prod_from) plus $s_ovh B of packet headers and"
    echo "  ACKs per message as measured here (not measured directly: the report interval would have to be"
    echo "  1/3 s real at this scale). Applying the measured wire/payload ratio instead gives $prod_wire_r B."
    echo "  Against SPEC R12's ~5 MB per charge cycle: $(awk -v x="$prod_wire" 'BEGIN {printf "%.0f", 5000000 / x}')× less."
  fi
  echo "- Billed: $s_msgs messages, each one 4 KB block (the largest, the session record, is a 414 B TLS"
  echo "  record in figure 5; the average here is $(awk -v p="$s_pl" -v m="$s_msgs" 'BEGIN {printf "%.0f", p / m}') B of payload per message, both ways)."
  echo "- Run: ${runtime_s} s in all (lab up and down included)."
} >"$out"
log "done in ${runtime_s} s: $out"
