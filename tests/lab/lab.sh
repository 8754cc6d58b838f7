#!/usr/bin/env bash
# lab.sh — lade's site-network test lab: chargers on a site LAN behind a NAT router, and an
# "internet" with the hub, NTP servers, firmware hosts and public resolvers, all in network
# namespaces of this
# machine, with no route off it. See docs/lab.md for the topology, every knob and examples.
#
#   lab.sh [-n NAME] COMMAND [ARGS...]      (NAME: $LADE_LAB, default "lab")
#
# Commands (`lab.sh help` adds up's options; docs/lab.md has the details):
#   up [options]          create the lab (see `lab.sh help`)
#   down                  kill everything in the lab's namespaces, delete them (idempotent)
#   gc                    tear down labs named lade<PID>... whose process is gone
#   list | info | status  labs on this machine | KEY=VALUE facts | processes and knobs
#   exec NODE CMD...      run CMD in NODE (router, inet, charger<I>)
#   ns NODE               the namespace's name (for ip -n, ip netns exec)
#   dhcp on|off|restart|forget | dhcp set KEY VALUE... | leases | dhcp-client I [ARGS...]
#   addr I static|flush   configure charger I statically / remove its addresses
#   dns forward|refuse|nxdomain|off|silent|slow MS      the router's DNS
#   dns spoof-id|spoof-question|spoof-addr [MS]   forged answers first, then the real one
#   firewall block|allow 8883|443|dns|ntp|wan|all|tcp/P|udp/P [drop|reject] | firewall clear
#   names add NAME ADDR | names del NAME | names reset      the resolvers' lab names
#   host NAME up|down     an internet host answers / is silent (hub ntp1-3 resolver1-2 fw1-3)
#   start|stop SERVICE    hub ntp1-3 resolver1-2 fw1-3 fw (all three) dhcp dns: the process
#                         itself (refused connections)
#   intercept on|off      the router as a TLS-inspecting firewall: LAN -> internet TCP 8883
#                         and 443 end at its own TLS server (certificates from its own CA)
#   link I up|down | link I flap COUNT PERIOD_MS | loss I PERCENT | delay I MS

# SC2015: `test && test || die` is the idiom here (die exits); SC2153: the state file defines
# the upper-case variables.
# shellcheck disable=SC2015,SC2153
set -euo pipefail

LAB_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC_DIR=$(cd "$LAB_SRC/../.." && pwd)
RUN_BASE=${LADE_LAB_RUN:-/run/lade-lab}
NAME=${LADE_LAB:-lab}

# --- fixed addresses (docs/lab.md) --------------------------------------------------------
LAN_PFX=192.168.77
LAN_ROUTER=$LAN_PFX.1
STATIC_BASE=10 # charger I static: .(10+I)
POOL_BASE=100  # DHCP pool: .100 ...
WAN_INET=203.0.113.1
WAN_ROUTER=203.0.113.2
declare -A HOST_ADDR=(
  [hub]=198.51.100.10
  [ntp1]=198.51.100.21 [ntp2]=198.51.100.22 [ntp3]=198.51.100.23
  [fw1]=198.51.100.31 [fw2]=198.51.100.32 [fw3]=198.51.100.33
  [resolver1]=198.51.100.53 [resolver2]=198.51.100.54
)
HOST_ORDER=(hub ntp1 ntp2 ntp3 fw1 fw2 fw3 resolver1 resolver2)
DOMAIN=lade.test
MAX_CHARGERS=16
# dns spoof-*: the address forged answers give (nothing in the lab has or answers on it), and
# the forgers' sources for spoof-addr: another LAN address (not configured anywhere: not the
# router's, below the static and pool ranges), the router's WAN side, the router's LAN address
# from another port than 53 (0: an ephemeral one)
SPOOF_ANSWER=198.51.100.99
SPOOF_FROM="$LAN_PFX.2:53,$WAN_ROUTER:53,$LAN_ROUTER:0"
SPOOF_DELAY_MS=100 # the real answer this long after the forgeries (unless MS is given)
# intercept on: LAN -> internet TCP PORT is redirected to the router's own TLS server on
# 192.168.77.1:INTERCEPT_PORT[PORT]
declare -A INTERCEPT_PORT=([8883]=18883 [443]=10443)
NGINX=${LADE_LAB_NGINX:-/usr/sbin/nginx}

die() {
  echo "lab: $*" >&2
  exit 1
}
log() { echo "lab: $*" >&2; }

usage() {
  sed -n '2,/^$/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
  cat <<'EOF'

up options:
  --chargers N          charger namespaces (default 1, at most 16)
  --addr none|static|udhcpc
                        chargers' eth0 left unconfigured (default), 192.168.77.(10+I)/24, or
                        configured once by busybox udhcpc from the lab's DHCP server
  --no-dhcp             start without a DHCP server
  --pool N              DHCP pool size (default 50: .100 ...)
  --lease S             lease time in seconds (default 3600; dnsmasq's minimum is 120)
  --t1 S --t2 S         DHCP options 58/59 (default: dnsmasq's, lease/2 and 7/8)
  --dhcp-dns router|none|public|A,B   DHCP option 6 (default router)
  --dhcp-router on|off  DHCP option 3 (default on)
  --dhcp-ntp on|off|A,B DHCP option 42 (on: the lab's NTP servers; default off)
  --dns MODE [--dns-delay MS]   router DNS mode (default forward): forward refuse nxdomain off
                        silent slow spoof-id spoof-question spoof-addr (MS: slow's delay; for
                        spoof-*, the real answer's, default 100)
  --ntp N               NTP servers ntp1..N (0-3, default 1), all named ntp.lade.test
  --ntp-offset I:S      server I answers S seconds off (a scripted SNTP responder, not chrony)
  --hub                 start Mosquitto + lade_hub.so on hub.lade.test:8883 (needs --build)
  --fw                  start the firmware hosts: nginx serving HTTPS on fw1..3.lade.test:443
                        (<state>/fw/www/, a certificate from the lab CA)
  --intercept           start with the router as a TLS-inspecting firewall (intercept on)
  --build DIR           lade build directory (default $LADE_BUILD_DIR)
  --hub-extra FILE      lines appended to the hub's mosquitto.conf
  --owner PID           the process the lab belongs to (gc removes it when that one is gone)
EOF
}

# --- names and state ----------------------------------------------------------------------
check_name() {
  [[ $NAME =~ ^[A-Za-z][A-Za-z0-9_-]{0,23}$ ]] || die "bad lab name '$NAME' (letters, digits, _ -)"
}
S() { echo "$RUN_BASE/$NAME"; }
ns_of() {
  case "$1" in
  router | inet) echo "$NAME-$1" ;;
  charger[0-9]* | c[0-9]*) echo "$NAME-c${1//[!0-9]/}" ;;
  *) die "unknown node '$1' (router, inet, charger<I>)" ;;
  esac
}
lab_namespaces() {
  ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${NAME}-(router|inet|c[0-9]+)\$" || true
}
need_lab() {
  [ -f "$(S)/state" ] || die "no lab '$NAME' (lab.sh -n $NAME up)"
  # shellcheck disable=SC1091
  source "$(S)/state"
}
st_set() { # KEY VALUE
  local f
  f="$(S)/state"
  { grep -v "^$1=" "$f" 2>/dev/null || true; printf '%s=%q\n' "$1" "$2"; } >"$f.new"
  mv "$f.new" "$f"
  # shellcheck disable=SC1090
  source "$f"
}
in_ns() { # NODE CMD...
  local ns
  ns=$(ns_of "$1")
  shift
  ip netns exec "$ns" "$@"
}

# --- processes ----------------------------------------------------------------------------
# Services run in the background, detached from lab.sh, with their own log; the pid is kept in
# $S/pids/<svc>. Teardown also kills whatever else runs in the lab's namespaces.
svc_pid() { cat "$(S)/pids/$1" 2>/dev/null || true; }
svc_alive() {
  local p
  p=$(svc_pid "$1")
  [ -n "$p" ] && kill -0 "$p" 2>/dev/null
}
svc_start() { # SVC NODE CMD...
  local svc=$1 node=$2 ns
  shift 2
  ns=$(ns_of "$node")
  echo "--- $(date +%T) start: $*" >>"$(S)/log/$svc.log"
  ip netns exec "$ns" setsid "$@" >>"$(S)/log/$svc.log" 2>&1 </dev/null &
  echo $! >"$(S)/pids/$svc"
}
kill_wait() { # SIG TIMEOUT_S PIDS...
  local sig=$1 t=$2 p alive deadline
  shift 2
  [ $# -gt 0 ] || return 0
  kill "-$sig" "$@" 2>/dev/null || true
  deadline=$((SECONDS + t))
  while :; do
    alive=()
    for p in "$@"; do
      if kill -0 "$p" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" != Z ]; then
        alive+=("$p")
      fi
    done
    [ ${#alive[@]} -gt 0 ] || return 0
    [ $SECONDS -lt $deadline ] || break
    sleep 0.05
  done
  kill -KILL "${alive[@]}" 2>/dev/null || true
}
svc_stop() {
  local p
  p=$(svc_pid "$1")
  rm -f "$(S)/pids/$1"
  [ -n "$p" ] || return 0
  kill_wait TERM 5 "$p"
}
# Polls until NODE has a PROTO (tcp|udp) socket listening on ADDR:PORT; fails with the
# service's log if it died or did not come up within 10 s.
wait_listen() { # SVC NODE PROTO ADDR PORT
  local svc=$1 node=$2 proto=$3 addr=$4 port=$5 flag=t i
  [ "$proto" = udp ] && flag=u
  for ((i = 0; i < 200; i++)); do
    if in_ns "$node" ss -Hln$flag "sport = :$port" 2>/dev/null |
      awk -v want="$addr:$port" '{ a = $4; sub(/%[^:]*/, "", a); if (a == want) f = 1 } END { exit !f }'; then
      return 0
    fi
    if ! svc_alive "$svc"; then
      tail -n 20 "$(S)/log/$svc.log" >&2 || true
      die "$svc exited while starting (log: $(S)/log/$svc.log)"
    fi
    sleep 0.05
  done
  tail -n 20 "$(S)/log/$svc.log" >&2 || true
  die "$svc did not listen on $addr:$port ($proto) within 10 s"
}

# Small C helpers (tests/lab/*.c) are compiled on first use into the lab's state dir.
helper() { # NAME -> prints the binary's path
  local bin src
  src="$LAB_SRC/$1.c"
  bin="$(S)/bin/$1"
  if [ ! -x "$bin" ] || [ "$src" -nt "$bin" ]; then
    mkdir -p "$(S)/bin"
    "${CC:-cc}" -std=c11 -D_GNU_SOURCE -O1 -Wall -Wextra -Werror -o "$bin" "$src" ||
      die "cannot compile $src"
  fi
  echo "$bin"
}

# --- nftables -----------------------------------------------------------------------------
fw_rules_for() { # KNOB -> proto/port tokens
  case "$1" in
  8883) echo tcp/8883 ;;
  443) echo tcp/443 ;;
  dns | 53) echo "udp/53 tcp/53" ;;
  ntp | 123) echo udp/123 ;;
  tcp/[0-9]* | udp/[0-9]*) echo "$1" ;;
  *) die "unknown firewall knob '$1' (8883 443 dns ntp wan all tcp/PORT udp/PORT)" ;;
  esac
}
verdict() { # drop|reject PROTO
  if [ "$1" = reject ]; then
    if [ "$2" = tcp ]; then echo "reject with tcp reset"; else echo reject; fi
  else
    echo drop
  fi
}
loss_rule() { # iifname|oifname PORT PERCENT
  if [ "$3" -ge 100 ]; then
    echo "$1 \"$2\" drop"
  elif [ "$3" -gt 0 ]; then
    echo "$1 \"$2\" numgen random mod 100 < $3 drop"
  fi
}
# intercept on: the ports the router redirects to its TLS server. A port the firewall blocks
# (or the whole WAN) is not intercepted: the block comes first, as in a real firewall.
intercept_ports() {
  local port t skip
  [ "${INTERCEPT:-off}" = on ] && [ "$FW_WAN" = off ] || return 0
  for port in 8883 443; do
    skip=0
    for t in $FW_RULES; do [ "${t%%:*}" != "tcp/$port" ] || skip=1; done
    [ $skip = 1 ] || echo "$port"
  done
}
apply_router_nft() {
  local f tok proto port mode i p
  f="$(S)/router.nft"
  {
    echo "table ip labnat"
    echo "delete table ip labnat"
    echo "table ip labnat {"
    # only what arrives from the LAN: the router's own connections (output hook) are untouched
    echo "  chain pre { type nat hook prerouting priority dstnat; policy accept;"
    for port in $(intercept_ports); do
      echo "    iifname \"br0\" ip daddr != $LAN_PFX.0/24 tcp dport $port redirect to :${INTERCEPT_PORT[$port]}"
    done
    echo "  }"
    echo "  chain post { type nat hook postrouting priority srcnat; policy accept;"
    echo "    oifname \"wan0\" masquerade; }"
    echo "}"
    echo "table inet labfw"
    echo "delete table inet labfw"
    echo "table inet labfw {"
    echo "  chain input { type filter hook input priority filter; policy accept;"
    if [ "$DNS_MODE" = silent ]; then
      echo "    iifname \"br0\" meta l4proto { udp, tcp } th dport 53 drop"
    fi
    echo "  }"
    echo "  chain forward { type filter hook forward priority filter; policy accept;"
    for tok in $FW_RULES; do
      proto=${tok%%/*}
      port=${tok#*/}
      mode=${port#*:}
      port=${port%%:*}
      echo "    iifname \"br0\" $proto dport $port $(verdict "$mode" "$proto")"
    done
    if [ "$FW_WAN" != off ]; then
      echo "    iifname \"br0\" oifname \"wan0\" $(verdict "$FW_WAN" any)"
    fi
    echo "  }"
    echo "}"
    echo "table bridge lablink"
    echo "delete table bridge lablink"
    echo "table bridge lablink {"
    echo "  chain pre { type filter hook prerouting priority filter; policy accept;"
    [ "$FW_ALL" = off ] || echo "    iifname \"lan*\" drop"
    for ((i = 0; i < CHARGERS; i++)); do
      p=LOSS_$i
      echo "    $(loss_rule iifname "lan$i" "${!p:-0}")"
    done
    echo "  }"
    echo "  chain post { type filter hook postrouting priority filter; policy accept;"
    [ "$FW_ALL" = off ] || echo "    oifname \"lan*\" drop"
    for ((i = 0; i < CHARGERS; i++)); do
      p=LOSS_$i
      echo "    $(loss_rule oifname "lan$i" "${!p:-0}")"
    done
    echo "  }"
    echo "}"
  } >"$f"
  in_ns router nft -f "$f" || die "nft rejected $f"
}
apply_inet_nft() {
  local f h
  f="$(S)/inet.nft"
  {
    echo "table inet labinet"
    echo "delete table inet labinet"
    echo "table inet labinet {"
    echo "  chain input { type filter hook input priority filter; policy accept;"
    for h in $HOSTS_DOWN; do
      echo "    ip daddr ${HOST_ADDR[$h]} drop"
    done
    echo "  }"
    echo "}"
  } >"$f"
  in_ns inet nft -f "$f" || die "nft rejected $f"
}

# --- services -----------------------------------------------------------------------------
write_hosts() {
  local i f
  f="$(S)/hosts"
  {
    # shellcheck disable=SC2086
    echo "${HOST_ADDR[hub]} hub.$DOMAIN"
    for ((i = 1; i <= NTP_N; i++)); do
      echo "${HOST_ADDR[ntp$i]} ntp.$DOMAIN"
      echo "${HOST_ADDR[ntp$i]} ntp$i.$DOMAIN"
    done
    for i in 1 2 3; do echo "${HOST_ADDR[fw$i]} fw$i.$DOMAIN"; done
    echo "${HOST_ADDR[resolver1]} resolver1.$DOMAIN"
    echo "${HOST_ADDR[resolver2]} resolver2.$DOMAIN"
    if [ -f "$(S)/hosts.extra" ]; then cat "$(S)/hosts.extra"; fi
  } | awk -v del=" ${NAMES_DEL:-} " 'index(del, " " $2 " ") == 0' >"$f"
}
# The two "public" resolvers: answer the lab's names from $S/hosts, NXDOMAIN for the rest.
start_resolver() { # I
  local a=${HOST_ADDR[resolver$1]}
  svc_start "resolver$1" inet dnsmasq --keep-in-foreground --conf-file=/dev/null --user=root \
    --group=root --pid-file= --no-resolv --no-hosts --addn-hosts="$(S)/hosts" --local=/#/ \
    --listen-address="$a" --bind-interfaces --cache-size=0 --log-queries --log-facility=-
  wait_listen "resolver$1" inet udp "$a" 53
}
start_ntp() { # I
  local a=${HOST_ADDR[ntp$1]} off v
  v=NTP_OFFSET_$1
  off=${!v:-0}
  if [ "$off" = 0 ]; then
    cat >"$(S)/chrony-ntp$1.conf" <<EOF
# lab NTP server ntp$1: serves its own clock (chronyd -x never sets the machine's clock)
local stratum 3
allow all
bindaddress $a
port 123
cmdport 0
bindcmdaddress /
pidfile $(S)/chrony-ntp$1.pid
EOF
    svc_start "ntp$1" inet chronyd -x -d -u root -f "$(S)/chrony-ntp$1.conf"
  else
    svc_start "ntp$1" inet "$(helper lab_sntpd)" --listen "$a" --offset-s "$off"
  fi
  wait_listen "ntp$1" inet udp "$a" 123
}
dhcp_conf() {
  local last opt i
  last=$((POOL_BASE + POOL - 1))
  [ $last -le 254 ] || die "pool too large (at most $((255 - POOL_BASE)))"
  {
    echo "# lab DHCP server (dnsmasq, DHCP only)"
    echo "port=0"
    echo "interface=br0"
    echo "bind-interfaces"
    echo "dhcp-authoritative"
    echo "no-ping"
    echo "log-dhcp"
    echo "dhcp-leasefile=$(S)/dhcp.leases"
    echo "dhcp-range=$LAN_PFX.$POOL_BASE,$LAN_PFX.$last,255.255.255.0,${LEASE}s"
    if [ "$OPT_ROUTER" = on ]; then echo "dhcp-option=3,$LAN_ROUTER"; else echo "dhcp-option=3"; fi
    case "$OPT_DNS" in
    router) echo "dhcp-option=6,$LAN_ROUTER" ;;
    none) echo "dhcp-option=6" ;;
    public) echo "dhcp-option=6,${HOST_ADDR[resolver1]},${HOST_ADDR[resolver2]}" ;;
    *) echo "dhcp-option=6,$OPT_DNS" ;;
    esac
    case "$OPT_NTP" in
    off) ;;
    on)
      opt=""
      for ((i = 1; i <= NTP_N; i++)); do opt+=",${HOST_ADDR[ntp$i]}"; done
      [ -z "$opt" ] || echo "dhcp-option=42$opt"
      ;;
    *) echo "dhcp-option=42,$OPT_NTP" ;;
    esac
    [ "$T1" = 0 ] || echo "dhcp-option=58,$T1"
    [ "$T2" = 0 ] || echo "dhcp-option=59,$T2"
  } >"$(S)/dhcp.conf"
}
start_dhcp() {
  dhcp_conf
  svc_start dhcp router dnsmasq --keep-in-foreground --conf-file="$(S)/dhcp.conf" --user=root \
    --group=root --pid-file= --log-facility=-
  wait_listen dhcp router udp 0.0.0.0 67
}
# The router's DNS on 192.168.77.1:53, per DNS_MODE.
start_router_dns() {
  local common=(--keep-in-foreground --conf-file=/dev/null --user=root --group=root --pid-file=
    --no-hosts --no-resolv --listen-address="$LAN_ROUTER" --bind-interfaces --cache-size=0
    --log-queries --log-facility=-)
  case "$DNS_MODE" in
  forward)
    svc_start dns router dnsmasq "${common[@]}" --all-servers \
      --server="${HOST_ADDR[resolver1]}" --server="${HOST_ADDR[resolver2]}"
    ;;
  refuse) svc_start dns router dnsmasq "${common[@]}" ;;
  nxdomain) svc_start dns router dnsmasq "${common[@]}" --address=/#/ ;;
  slow)
    svc_start dns router "$(helper lab_dnsdelay)" --listen "$LAN_ROUTER" \
      --upstream "${HOST_ADDR[resolver1]}" --delay-ms "$DNS_DELAY_MS"
    ;;
  spoof-id | spoof-question | spoof-addr)
    # lab_dnsdelay forges answers (logged as "forged ..."), then relays resolver1's real one
    local delay=${DNS_DELAY_MS:-0} from=()
    [ "$delay" -gt 0 ] || delay=$SPOOF_DELAY_MS
    [ "$DNS_MODE" != spoof-addr ] || from=(--spoof-from "$SPOOF_FROM")
    svc_start dns router "$(helper lab_dnsdelay)" --listen "$LAN_ROUTER" \
      --upstream "${HOST_ADDR[resolver1]}" --delay-ms "$delay" --spoof "${DNS_MODE#spoof-}" \
      --spoof-answer "$SPOOF_ANSWER" ${from[@]+"${from[@]}"}
    ;;
  off | silent) return 0 ;;
  *) die "unknown DNS mode '$DNS_MODE'" ;;
  esac
  wait_listen dns router udp "$LAN_ROUTER" 53
}
hub_preload() {
  # An ASan build's plugin needs the sanitizer runtimes preloaded into (uninstrumented)
  # mosquitto, like harness.c's h_sanitizer_preload_env.
  local cache="$BUILD/CMakeCache.txt" cc asan ubsan
  grep -q '^LADE_SANITIZE:BOOL=ON' "$cache" 2>/dev/null || return 0
  cc=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$cache")
  asan=$("${cc:-cc}" -print-file-name=libasan.so)
  ubsan=$("${cc:-cc}" -print-file-name=libubsan.so)
  echo "LD_PRELOAD=$asan $ubsan"
}
start_hub() {
  local d a=${HOST_ADDR[hub]} pre
  [ -n "$BUILD" ] && [ -f "$BUILD/lade_hub.so" ] ||
    die "the hub needs lade_hub.so: pass --build DIR or set LADE_BUILD_DIR"
  d="$(S)/hub"
  mkdir -p "$d"
  "$SRC_DIR/scripts/gen-certs.sh" server "$d" "$(S)/pki" "hub.$DOMAIN" >/dev/null
  cat >"$d/mosquitto.conf" <<EOF
# lab hub: Mosquitto + lade_hub.so on hub.$DOMAIN ($a)
user root
per_listener_settings false
allow_anonymous false
persistence false
set_tcp_nodelay true
log_dest stderr
log_type error
log_type warning
log_type notice
log_type information
connection_messages true
listener 8883 $a
certfile $d/server.pem
keyfile $d/server.key
tls_version tlsv1.2
plugin $BUILD/lade_hub.so
plugin_opt_registry $d/registry.db
plugin_opt_hub_host hub.$DOMAIN
EOF
  if [ -f "$d/extra.conf" ]; then cat "$d/extra.conf" >>"$d/mosquitto.conf"; fi
  pre=$(hub_preload)
  if [ -n "$pre" ]; then
    svc_start hub inet env "$pre" \
      ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:verify_asan_link_order=0 \
      UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 /usr/sbin/mosquitto -c "$d/mosquitto.conf"
  else
    svc_start hub inet /usr/sbin/mosquitto -c "$d/mosquitto.conf"
  fi
  wait_listen hub inet tcp "$a" 8883
}
# --- certificates and nginx (firmware hosts, the inspecting firewall) ----------------------
# The lab CA (<state>/pki/ca.pem): the hub's and the firmware hosts' certificates; what the
# chargers trust.
ensure_lab_ca() {
  "$SRC_DIR/scripts/gen-certs.sh" ca "$(S)/pki" "lade lab CA" >/dev/null
}
# DIR/server.{pem,key} for several names (gen-certs.sh makes one name per certificate), signed
# by CADIR/ca.{pem,key}; kept when it exists. SANS as openssl wants them: DNS:a,DNS:b,IP:c
make_server_cert() { # DIR CADIR CN SANS
  local d=$1 ca=$2 cn=$3 sans=$4
  mkdir -p "$d"
  [ ! -s "$d/server.pem" ] || [ ! -s "$d/server.key" ] || return 0
  (umask 077 && openssl ecparam -name prime256v1 -genkey -noout -out "$d/server.key") ||
    die "cannot make a key in $d"
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' \
    "$sans" >"$d/server.ext"
  openssl req -new -key "$d/server.key" -subj "/CN=$cn" 2>/dev/null |
    openssl x509 -req -CA "$ca/ca.pem" -CAkey "$ca/ca.key" -CAcreateserial -days 825 -sha256 \
      -extfile "$d/server.ext" -out "$d/server.pem" 2>/dev/null ||
    die "cannot make the certificate for $cn in $d"
  rm -f "$d/server.ext"
}
# An nginx of the lab's own (not the system's): foreground (daemon off: the pid lab.sh keeps is
# the master's), its own pid file, temp paths and logs; `user root` so that its worker reads
# the state dir. The error log is the service's log.
nginx_conf() { # SVC DIR SERVERS (http-level text)
  local svc=$1 d=$2
  mkdir -p "$d/tmp/$svc"
  cat >"$d/$svc.conf" <<EOF
# lab.sh: $svc (nginx)
user root;
daemon off;
master_process on;
worker_processes 1;
pid $d/$svc.pid;
error_log $(S)/log/$svc.log notice;
events { worker_connections 256; }
http {
  access_log $(S)/log/$svc-access.log;
  client_body_temp_path $d/tmp/$svc/body;
  proxy_temp_path $d/tmp/$svc/proxy;
  fastcgi_temp_path $d/tmp/$svc/fastcgi;
  uwsgi_temp_path $d/tmp/$svc/uwsgi;
  scgi_temp_path $d/tmp/$svc/scgi;
  types { text/plain txt; text/html html; application/json json; }
  default_type application/octet-stream;
  sendfile on;
  keepalive_timeout 5s;
$3
}
EOF
}
nginx_start() { # SVC NODE DIR
  [ -x "$NGINX" ] || die "nginx is missing ($NGINX): scripts/install-deps.sh"
  svc_start "$1" "$2" "$NGINX" -p "$3/" -c "$3/$1.conf" -e "$(S)/log/$1.log"
}
# Firmware hosts fw1..3: one nginx each (so each can be stopped alone) on its address, port
# 443, all serving <state>/fw/www/ with one certificate for the three names (lab CA).
fw_prepare() {
  local d h sans=""
  d="$(S)/fw"
  ensure_lab_ca
  for h in fw1 fw2 fw3; do sans+=",DNS:$h.$DOMAIN"; done
  for h in fw1 fw2 fw3; do sans+=",IP:${HOST_ADDR[$h]}"; done
  make_server_cert "$d" "$(S)/pki" "fw1.$DOMAIN" "${sans#,}"
  mkdir -p "$d/www"
  [ -f "$d/www/lab-fw.txt" ] || echo "lade lab firmware host" >"$d/www/lab-fw.txt"
}
start_fw() { # I [nowait]
  local n=fw$1 d a=${HOST_ADDR[fw$1]}
  d="$(S)/fw"
  fw_prepare
  nginx_conf "$n" "$d" "  server {
    listen $a:443 ssl;
    server_name $n.$DOMAIN;
    ssl_certificate $d/server.pem;
    ssl_certificate_key $d/server.key;
    root $d/www;
    add_header X-Lade-Lab-Host $n always;
  }"
  nginx_start "$n" inet "$d"
  [ "${2:-}" = nowait ] || wait_listen "$n" inet tcp "$a" 443
}
start_fw_all() { # the ones that do not run, in parallel
  local i todo=()
  for i in 1 2 3; do svc_alive "fw$i" || todo+=("$i"); done
  for i in ${todo[@]+"${todo[@]}"}; do start_fw "$i" nowait; done
  for i in ${todo[@]+"${todo[@]}"}; do wait_listen "fw$i" inet tcp "${HOST_ADDR[fw$i]}" 443; done
}
# The inspecting firewall's CA (<state>/pki-intercept/ca.pem, never the lab CA) and the
# certificate its TLS server presents: every lab name the chargers connect to, and their
# addresses (a client without SNI gets a matching certificate too: only the issuer is wrong).
intercept_prepare() {
  local d p h sans="DNS:*.$DOMAIN"
  d="$(S)/intercept"
  p="$(S)/pki-intercept"
  "$SRC_DIR/scripts/gen-certs.sh" ca "$p" "lade lab inspection CA" >/dev/null
  for h in hub fw1 fw2 fw3; do sans+=",DNS:$h.$DOMAIN"; done
  for h in hub fw1 fw2 fw3; do sans+=",IP:${HOST_ADDR[$h]}"; done
  make_server_cert "$d" "$p" "*.$DOMAIN" "$sans"
}
# Its TLS server, in the router, on 192.168.77.1:10443 (what LAN -> internet 443 is redirected
# to) and :18883 (8883). On 443 it is a re-signing proxy, as a corporate one is: it fetches
# https://<SNI name>/... itself (the router's own traffic, verified against the lab CA) and
# relays the answer. On 8883 the handshake completes, then the first bytes (MQTT, not HTTP)
# get "400 Bad Request" and the connection is closed.
start_intercept() {
  local d
  d="$(S)/intercept"
  intercept_prepare
  nginx_conf intercept "$d" "  resolver ${HOST_ADDR[resolver1]} ${HOST_ADDR[resolver2]} valid=1s ipv6=off;
  resolver_timeout 2s;
  ssl_certificate $d/server.pem;
  ssl_certificate_key $d/server.key;
  add_header X-Lade-Lab-Intercepted 1 always;
  server {
    listen $LAN_ROUTER:${INTERCEPT_PORT[443]} ssl;
    location / {
      proxy_pass https://\$ssl_server_name:443;
      proxy_ssl_server_name on;
      proxy_ssl_name \$ssl_server_name;
      proxy_ssl_verify on;
      proxy_ssl_trusted_certificate $(S)/pki/ca.pem;
      proxy_connect_timeout 3s;
    }
  }
  server {
    listen $LAN_ROUTER:${INTERCEPT_PORT[8883]} ssl;
    location / { return 400; }
  }"
  nginx_start intercept router "$d"
  wait_listen intercept router tcp "$LAN_ROUTER" "${INTERCEPT_PORT[443]}"
  wait_listen intercept router tcp "$LAN_ROUTER" "${INTERCEPT_PORT[8883]}"
}
start_service() {
  case "$1" in
  hub) start_hub ;;
  fw) start_fw_all ;;
  fw[1-3]) start_fw "${1#fw}" ;;
  intercept) start_intercept ;;
  ntp[1-3])
    [ "${1#ntp}" -le "$NTP_N" ] || die "$1 is not part of this lab (--ntp $NTP_N)"
    start_ntp "${1#ntp}"
    ;;
  resolver[12]) start_resolver "${1#resolver}" ;;
  dhcp) start_dhcp ;;
  dns) start_router_dns ;;
  *) die "unknown service '$1' (hub ntp1-3 resolver1-2 fw1-3 fw dhcp dns intercept)" ;;
  esac
}

# --- chargers' addresses ------------------------------------------------------------------
addr_static() { # I
  local i=$1
  in_ns "charger$i" ip addr flush dev eth0
  in_ns "charger$i" ip addr add "$LAN_PFX.$((STATIC_BASE + i))/24" dev eth0
  in_ns "charger$i" ip route replace default via "$LAN_ROUTER"
}
dhcp_client() { # I [udhcpc args...]: once, configures eth0, prints the lease
  local i=$1
  shift
  command -v busybox >/dev/null || die "busybox (udhcpc) is not installed"
  in_ns "charger$i" busybox udhcpc -i eth0 -f -q -n -t 3 -T 1 -A 1 \
    -s "$LAB_SRC/udhcpc.script" "$@"
}

# --- commands -----------------------------------------------------------------------------
up_failed() {
  local rc=$?
  if [ $rc -ne 0 ]; then
    log "up failed; tearing down"
    cmd_down >/dev/null 2>&1 || true
  fi
}
cmd_up() {
  local chargers=1 addr=none owner="" i ns
  local dhcp=on pool=50 lease=3600 t1=0 t2=0 odns=router orouter=on ontp=off
  local dns=forward delay=0 ntp=1 hub=off build=${LADE_BUILD_DIR:-} fw=off intercept=off hub_extra=
  local -a offsets=(0 0 0 0)
  while [ $# -gt 0 ]; do
    case "$1" in
    --chargers) chargers=$2; shift ;;
    --addr) addr=$2; shift ;;
    --no-dhcp) dhcp=off ;;
    --pool) pool=$2; shift ;;
    --lease) lease=$2; shift ;;
    --t1) t1=$2; shift ;;
    --t2) t2=$2; shift ;;
    --dhcp-dns) odns=$2; shift ;;
    --dhcp-router) orouter=$2; shift ;;
    --dhcp-ntp) ontp=$2; shift ;;
    --dns) dns=$2; shift ;;
    --dns-delay) delay=$2; shift ;;
    --ntp) ntp=$2; shift ;;
    --ntp-offset) offsets[${2%%:*}]=${2#*:}; shift ;;
    --hub) hub=on ;;
    --fw) fw=on ;;
    --intercept) intercept=on ;;
    --build) build=$2; shift ;;
    --owner) owner=$2; shift ;;
    --hub-extra) hub_extra=$2; shift ;;
    *) die "up: unknown option '$1' (lab.sh help)" ;;
    esac
    shift
  done
  [[ $chargers =~ ^[0-9]+$ ]] && [ "$chargers" -ge 1 ] && [ "$chargers" -le $MAX_CHARGERS ] ||
    die "--chargers must be 1..$MAX_CHARGERS"
  [[ $pool =~ ^[0-9]+$ ]] && [ "$pool" -ge 1 ] || die "--pool must be >= 1"
  [[ $ntp =~ ^[0-3]$ ]] || die "--ntp must be 0..3"
  [[ $lease =~ ^[0-9]+$ ]] || die "--lease must be seconds"
  if [ "$lease" -lt 120 ]; then
    log "lease $lease s raised to 120 s (dnsmasq's minimum; use --t1/--t2 for early renewals)"
    lease=120
  fi
  case "$addr" in none | static | udhcpc) ;; *) die "--addr none|static|udhcpc" ;; esac
  [ "$(id -u)" = 0 ] || die "the lab needs root (network namespaces, nftables)"
  local t
  for t in ip nft dnsmasq ss setsid; do
    command -v "$t" >/dev/null || die "'$t' is missing: run scripts/install-deps.sh"
  done
  [ "$ntp" = 0 ] || command -v chronyd >/dev/null || die "chronyd is missing: scripts/install-deps.sh"
  [ -z "$(lab_namespaces)" ] && [ ! -d "$(S)/pids" ] ||
    die "lab '$NAME' exists (lab.sh -n $NAME down)"
  rm -rf "$(S)" # logs kept by LADE_KEEP_TMP=1 from an earlier lab of this name
  [ -z "$build" ] || build=$(cd "$build" && pwd)

  mkdir -p "$(S)/pids" "$(S)/log" || die "cannot create $(S)"
  : >"$(S)/state"
  # Any failure from here on (set -e, die, a signal) tears down what was built.
  trap 'exit 1' INT TERM
  trap up_failed EXIT
  st_set CHARGERS "$chargers"
  st_set ADDR "$addr"
  st_set OWNER "$owner"
  st_set BUILD "$build"
  st_set DHCP "$dhcp"
  st_set POOL "$pool"
  st_set LEASE "$lease"
  st_set T1 "$t1"
  st_set T2 "$t2"
  st_set OPT_DNS "$odns"
  st_set OPT_ROUTER "$orouter"
  st_set OPT_NTP "$ontp"
  st_set DNS_MODE "$dns"
  st_set DNS_DELAY_MS "$delay"
  st_set NTP_N "$ntp"
  for i in 1 2 3; do st_set "NTP_OFFSET_$i" "${offsets[$i]}"; done
  st_set HUB "$hub"
  st_set FWHOSTS "$fw"
  st_set INTERCEPT "$intercept"
  st_set FW_RULES ""
  st_set FW_WAN off
  st_set FW_ALL off
  st_set HOSTS_DOWN ""
  st_set NAMES_DEL ""

  # namespaces
  for ns in "$NAME-router" "$NAME-inet"; do
    ip netns add "$ns" || die "cannot create network namespace $ns (root and CAP_SYS_ADMIN needed)"
  done
  for ((i = 0; i < chargers; i++)); do
    ip netns add "$NAME-c$i" || die "cannot create network namespace $NAME-c$i"
  done
  for ns in $(lab_namespaces); do
    ip -n "$ns" link set lo up
    mkdir -p "/etc/netns/$ns"
  done
  echo "nameserver $LAN_ROUTER" >"/etc/netns/$NAME-c0/resolv.conf"
  for ((i = 1; i < chargers; i++)); do cp "/etc/netns/$NAME-c0/resolv.conf" "/etc/netns/$NAME-c$i/"; done
  echo "nameserver ${HOST_ADDR[resolver1]}" >"/etc/netns/$NAME-router/resolv.conf"
  cp "/etc/netns/$NAME-router/resolv.conf" "/etc/netns/$NAME-inet/resolv.conf"

  # WAN: router wan0 <-> inet up0; the internet's hosts are addresses on its loopback
  ip link add wan0 netns "$NAME-router" type veth peer name up0 netns "$NAME-inet"
  ip -n "$NAME-inet" addr add "$WAN_INET/24" dev up0
  ip -n "$NAME-inet" link set up0 up
  for h in "${HOST_ORDER[@]}"; do ip -n "$NAME-inet" addr add "${HOST_ADDR[$h]}/32" dev lo; done
  # no route beyond the lab: with forwarding on, a packet for any other address gets an ICMP
  # "network unreachable" at once instead of vanishing
  ip netns exec "$NAME-inet" sysctl -qw net.ipv4.ip_forward=1
  ip -n "$NAME-router" addr add "$WAN_ROUTER/24" dev wan0
  ip -n "$NAME-router" link set wan0 up
  ip -n "$NAME-router" route add default via "$WAN_INET"
  ip netns exec "$NAME-router" sysctl -qw net.ipv4.ip_forward=1

  # LAN: bridge br0 in the router, one veth per charger (charger eth0 <-> router lanI)
  ip -n "$NAME-router" link add br0 type bridge
  ip -n "$NAME-router" addr add "$LAN_ROUTER/24" dev br0
  ip -n "$NAME-router" link set br0 up
  for ((i = 0; i < chargers; i++)); do
    ip link add eth0 netns "$NAME-c$i" address "$(printf '02:1a:de:00:00:%02x' "$i")" \
      type veth peer name "lan$i" netns "$NAME-router"
    ip -n "$NAME-router" link set "lan$i" master br0
    ip -n "$NAME-router" link set "lan$i" up
    ip -n "$NAME-c$i" link set eth0 up
  done

  # firewall/NAT, then the internet's services, then the router's
  apply_router_nft
  apply_inet_nft
  write_hosts
  start_resolver 1
  start_resolver 2
  for ((i = 1; i <= ntp; i++)); do start_ntp "$i"; done
  # both CAs and the firmware hosts' files always (a few ms): their paths are facts of every
  # lab (info, harness_lab.h), whether or not the servers run
  ensure_lab_ca
  intercept_prepare
  fw_prepare
  [ "$fw" = off ] || start_fw_all
  if [ "$hub" = on ]; then
    mkdir -p "$(S)/hub"
    [ -z "$hub_extra" ] || cp "$hub_extra" "$(S)/hub/extra.conf"
    # the lab's names as a hosts file, for a charger's --hosts-file (harness_charger's
    # h_charger_provision uses <hub dir>/hosts): static resolution, without DNS
    cp "$(S)/hosts" "$(S)/hub/hosts"
    start_hub
  fi
  start_router_dns
  [ "$dhcp" = off ] || start_dhcp
  # --intercept: the redirect is in place (apply_router_nft above); its server starts before
  # any charger has an address
  [ "$intercept" = off ] || start_intercept

  case "$addr" in
  static) for ((i = 0; i < chargers; i++)); do addr_static "$i"; done ;;
  udhcpc)
    [ "$dhcp" = on ] || die "--addr udhcpc needs the DHCP server"
    for ((i = 0; i < chargers; i++)); do
      dhcp_client "$i" >"$(S)/log/udhcpc-c$i.log" 2>&1 || {
        cat "$(S)/log/udhcpc-c$i.log" >&2
        die "charger$i got no DHCP lease"
      }
    done
    ;;
  esac
  trap - INT TERM EXIT
  log "lab '$NAME' is up: $chargers charger(s); state in $(S)"
}

cmd_down() {
  local nss ns pids=() p
  nss=$(lab_namespaces)
  for ns in $nss; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do pids+=("$p"); done
  done
  for p in "$(S)"/pids/*; do
    [ -f "$p" ] && pids+=("$(cat "$p")")
  done
  kill_wait TERM 3 "${pids[@]}"
  for ns in $nss; do
    ip netns del "$ns" 2>/dev/null || log "could not delete namespace $ns"
    rm -rf "/etc/netns/$ns"
  done
  if [ -d "$(S)" ]; then
    if [ "${LADE_KEEP_TMP:-0}" = 1 ]; then
      rm -rf "$(S)/pids"
      log "kept $(S) (LADE_KEEP_TMP=1)"
    else
      rm -rf "$(S)"
    fi
  fi
  return 0
}

cmd_gc() {
  local ns pid name done=" "
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
    [[ $ns =~ ^(lade([0-9]+)(-[0-9]+)?)-(router|inet|c[0-9]+)$ ]] || continue
    name=${BASH_REMATCH[1]}
    pid=${BASH_REMATCH[2]}
    [[ $done == *" $name "* ]] && continue
    done+="$name "
    if ! kill -0 "$pid" 2>/dev/null; then
      log "removing stale lab $name (process $pid is gone)"
      NAME=$name cmd_down
    fi
  done
  for name in "$RUN_BASE"/*; do
    [ -f "$name/state" ] || continue
    pid=$(sed -n 's/^OWNER=//p' "$name/state")
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      NAME=$(basename "$name") cmd_down
    fi
  done
}

cmd_list() {
  local d
  {
    for d in "$RUN_BASE"/*; do if [ -f "$d/state" ]; then basename "$d"; fi; done
    ip netns list 2>/dev/null | awk '{print $1}' | sed -nE 's/^(.*)-(router|inet|c[0-9]+)$/\1/p'
  } | sort -u
}

cmd_info() {
  need_lab
  local i h
  echo "NAME=$NAME"
  echo "STATE_DIR=$(S)"
  echo "NS_ROUTER=$NAME-router"
  echo "NS_INET=$NAME-inet"
  echo "CHARGERS=$CHARGERS"
  for ((i = 0; i < CHARGERS; i++)); do
    echo "NS_CHARGER$i=$NAME-c$i"
    echo "MAC_CHARGER$i=$(printf '02:1a:de:00:00:%02x' "$i")"
  done
  echo "LAN_ROUTER=$LAN_ROUTER"
  echo "WAN_ROUTER=$WAN_ROUTER"
  echo "WAN_INET=$WAN_INET"
  for h in "${HOST_ORDER[@]}"; do echo "ADDR_${h^^}=${HOST_ADDR[$h]}"; done
  echo "HUB_HOST=hub.$DOMAIN"
  echo "HUB_PORT=8883"
  echo "HUB_CA=$(S)/pki/ca.pem"
  echo "LAB_CA=$(S)/pki/ca.pem"
  echo "FW_HOSTS=fw1.$DOMAIN,fw2.$DOMAIN,fw3.$DOMAIN"
  echo "FW_PORT=443"
  echo "FW_WWW=$(S)/fw/www"
  echo "FW_URL=https://fw1.$DOMAIN/lab-fw.txt"
  echo "INTERCEPT=${INTERCEPT:-off}"
  echo "INTERCEPT_CA=$(S)/pki-intercept/ca.pem"
  echo "NTP_HOST=ntp.$DOMAIN"
  echo "LEASES=$(S)/dhcp.leases"
  echo "SPOOF_ANSWER=$SPOOF_ANSWER"
}

cmd_status() {
  need_lab
  local f svc
  echo "lab $NAME: $CHARGERS charger(s), addr=$ADDR, state $(S)"
  echo "dhcp=$DHCP pool=$POOL lease=${LEASE}s t1=$T1 t2=$T2 opt3=$OPT_ROUTER opt6=$OPT_DNS opt42=$OPT_NTP"
  if [ "$DNS_MODE" = slow ]; then
    echo "router dns=slow ($DNS_DELAY_MS ms)"
  elif [[ $DNS_MODE == spoof-* ]]; then
    echo "router dns=$DNS_MODE (forged answers for $SPOOF_ANSWER, the real one after" \
      "$((${DNS_DELAY_MS:-0} > 0 ? DNS_DELAY_MS : SPOOF_DELAY_MS)) ms)"
  else
    echo "router dns=$DNS_MODE"
  fi
  echo "firewall: rules='$FW_RULES' wan=$FW_WAN all=$FW_ALL; hosts down: '$HOSTS_DOWN'"
  if [ "${INTERCEPT:-off}" = on ]; then
    local ports
    ports=$(intercept_ports | tr '\n' ' ')
    echo "intercept=on: LAN -> internet tcp ${ports:-(none: blocked)}-> the router's TLS server" \
      "(CA $(S)/pki-intercept/ca.pem)"
  else
    echo "intercept=off"
  fi
  echo "firmware hosts (https :443, $(S)/fw/www):$(for i in 1 2 3; do
    if svc_alive "fw$i"; then printf ' fw%s' "$i"; fi
  done)"
  for f in "$(S)"/pids/*; do
    [ -f "$f" ] || continue
    svc=$(basename "$f")
    if svc_alive "$svc"; then echo "  $svc: pid $(cat "$f")"; else echo "  $svc: DEAD"; fi
  done
}

cmd_exec() {
  [ $# -ge 2 ] || die "exec NODE CMD..."
  need_lab
  local ns
  ns=$(ns_of "$1")
  shift
  exec ip netns exec "$ns" "$@"
}

cmd_dhcp() {
  need_lab
  case "${1:-}" in
  on)
    st_set DHCP on
    svc_alive dhcp || start_dhcp
    ;;
  off)
    st_set DHCP off
    svc_stop dhcp
    ;;
  restart)
    svc_stop dhcp
    st_set DHCP on
    start_dhcp
    ;;
  set)
    shift
    while [ $# -ge 2 ]; do
      case "$1" in
      pool) st_set POOL "$2" ;;
      lease) st_set LEASE "$(($2 < 120 ? 120 : $2))" ;;
      t1) st_set T1 "$2" ;;
      t2) st_set T2 "$2" ;;
      dns) st_set OPT_DNS "$2" ;;
      router) st_set OPT_ROUTER "$2" ;;
      ntp) st_set OPT_NTP "$2" ;;
      *) die "dhcp set: unknown key '$1' (pool lease t1 t2 dns router ntp)" ;;
      esac
      shift 2
    done
    [ $# -eq 0 ] || die "dhcp set KEY VALUE..."
    if [ "$DHCP" = on ]; then
      svc_stop dhcp
      start_dhcp
    fi
    ;;
  forget) # drop all leases (the server forgets who had which address)
    svc_stop dhcp
    rm -f "$(S)/dhcp.leases"
    [ "$DHCP" = off ] || start_dhcp
    ;;
  *) die "dhcp on|off|restart|forget|set KEY VALUE..." ;;
  esac
}

cmd_dns() {
  need_lab
  local mode=${1:-}
  case "$mode" in
  forward | refuse | nxdomain | off | silent) st_set DNS_MODE "$mode" ;;
  slow)
    [[ ${2:-} =~ ^[0-9]+$ ]] || die "dns slow MS"
    st_set DNS_MODE slow
    st_set DNS_DELAY_MS "$2"
    ;;
  spoof-id | spoof-question | spoof-addr)
    [[ ${2:-$SPOOF_DELAY_MS} =~ ^[0-9]+$ ]] || die "dns $mode [MS]"
    st_set DNS_MODE "$mode"
    st_set DNS_DELAY_MS "${2:-$SPOOF_DELAY_MS}"
    ;;
  *) die "dns forward|refuse|nxdomain|off|silent|slow MS|spoof-id|spoof-question|spoof-addr [MS]" ;;
  esac
  svc_stop dns
  apply_router_nft
  start_router_dns
}

cmd_firewall() {
  need_lab
  local op=${1:-} knob=${2:-} mode=${3:-drop} tok t rules
  case "$op" in
  clear)
    st_set FW_RULES ""
    st_set FW_WAN off
    st_set FW_ALL off
    apply_router_nft
    return 0
    ;;
  block | allow) ;;
  *) die "firewall block|allow KNOB [drop|reject] | firewall clear" ;;
  esac
  [ -n "$knob" ] || die "firewall $op KNOB"
  case "$mode" in drop | reject) ;; *) die "mode drop|reject" ;; esac
  case "$knob" in
  wan) if [ "$op" = block ]; then st_set FW_WAN "$mode"; else st_set FW_WAN off; fi ;;
  all) if [ "$op" = block ]; then st_set FW_ALL drop; else st_set FW_ALL off; fi ;;
  *)
    rules=""
    for t in $FW_RULES; do
      local keep=1
      for tok in $(fw_rules_for "$knob"); do [ "${t%%:*}" = "$tok" ] && keep=0; done
      [ $keep = 0 ] || rules+=" $t"
    done
    if [ "$op" = block ]; then
      for tok in $(fw_rules_for "$knob"); do rules+=" $tok:$mode"; done
    fi
    st_set FW_RULES "${rules# }"
    ;;
  esac
  apply_router_nft
}

cmd_host() {
  need_lab
  local h=${1:-} op=${2:-} rest="" x
  [ -n "$h" ] && [ -n "${HOST_ADDR[$h]:-}" ] || die "host NAME up|down (${HOST_ORDER[*]})"
  for x in $HOSTS_DOWN; do [ "$x" = "$h" ] || rest+=" $x"; done
  case "$op" in
  down) rest+=" $h" ;;
  up) ;;
  *) die "host NAME up|down" ;;
  esac
  st_set HOSTS_DOWN "${rest# }"
  apply_inet_nft
}

# The router as a TLS-inspecting firewall: on starts its TLS server, then redirects; off
# removes the redirect, then stops the server.
cmd_intercept() {
  need_lab
  case "${1:-}" in
  on)
    st_set INTERCEPT on
    svc_alive intercept || start_intercept
    apply_router_nft
    ;;
  off)
    st_set INTERCEPT off
    apply_router_nft
    svc_stop intercept
    ;;
  *) die "intercept on|off" ;;
  esac
}

cmd_stop() {
  need_lab
  case "${1:?stop SERVICE}" in
  fw) svc_stop fw1 && svc_stop fw2 && svc_stop fw3 ;;
  *) svc_stop "$1" ;;
  esac
}

cmd_link() {
  need_lab
  local i=${1:-} op=${2:-} n p k
  [[ $i =~ ^[0-9]+$ ]] && [ "$i" -lt "$CHARGERS" ] || die "link I up|down|flap COUNT PERIOD_MS"
  case "$op" in
  up | down) in_ns router ip link set "lan$i" "$op" ;;
  flap)
    n=${3:-3}
    p=${4:-1000}
    for ((k = 0; k < n; k++)); do
      in_ns router ip link set "lan$i" down
      sleep "$(printf '%d.%03d' $((p / 2000)) $((p / 2 % 1000)))"
      in_ns router ip link set "lan$i" up
      sleep "$(printf '%d.%03d' $((p / 2000)) $((p / 2 % 1000)))"
    done
    ;;
  *) die "link I up|down|flap COUNT PERIOD_MS" ;;
  esac
}

cmd_loss() {
  need_lab
  local i=${1:-} pct=${2:-}
  [[ $i =~ ^[0-9]+$ ]] && [ "$i" -lt "$CHARGERS" ] && [[ $pct =~ ^[0-9]+$ ]] &&
    [ "$pct" -le 100 ] || die "loss I PERCENT (0-100)"
  st_set "LOSS_$i" "$pct"
  apply_router_nft
}

cmd_delay() {
  need_lab
  local i=${1:-} ms=${2:-}
  [[ $i =~ ^[0-9]+$ ]] && [ "$i" -lt "$CHARGERS" ] && [[ $ms =~ ^[0-9]+$ ]] || die "delay I MS"
  in_ns router tc qdisc del dev "lan$i" root 2>/dev/null || true
  [ "$ms" = 0 ] && return 0
  in_ns router tc qdisc add dev "lan$i" root netem delay "${ms}ms" ||
    die "tc netem is not available (this kernel lacks sch_netem)"
}

# The resolvers' names: add NAME ADDR (another A record), del NAME (NXDOMAIN from now on),
# reset (the built-in names only). dnsmasq re-reads its hosts file on SIGHUP.
cmd_names() {
  need_lab
  local op=${1:-} n=${2:-} a=${3:-} rest="" x
  case "$op" in
  add)
    [[ $n =~ ^[A-Za-z0-9.-]+$ ]] && [[ $a =~ ^[0-9.]+$ ]] || die "names add NAME ADDR"
    echo "$a $n" >>"$(S)/hosts.extra"
    for x in $NAMES_DEL; do [ "$x" = "$n" ] || rest+=" $x"; done
    st_set NAMES_DEL "${rest# }"
    ;;
  del)
    [[ $n =~ ^[A-Za-z0-9.-]+$ ]] || die "names del NAME"
    st_set NAMES_DEL "$NAMES_DEL $n"
    ;;
  reset)
    rm -f "$(S)/hosts.extra"
    st_set NAMES_DEL ""
    ;;
  *) die "names add NAME ADDR | del NAME | reset" ;;
  esac
  write_hosts
  for x in resolver1 resolver2; do
    if svc_alive "$x"; then kill -HUP "$(svc_pid "$x")"; fi
  done
}

cmd_addr() {
  need_lab
  local i=${1:-} op=${2:-}
  [[ $i =~ ^[0-9]+$ ]] && [ "$i" -lt "$CHARGERS" ] || die "addr I static|flush"
  case "$op" in
  static) addr_static "$i" ;;
  flush) in_ns "charger$i" ip addr flush dev eth0 ;;
  *) die "addr I static|flush" ;;
  esac
}

cmd_leases() {
  need_lab
  cat "$(S)/dhcp.leases" 2>/dev/null || true
}

main() {
  while [ $# -gt 0 ]; do
    case "$1" in
    -n | --name) NAME=$2; shift 2 ;;
    *) break ;;
    esac
  done
  local cmd=${1:-help}
  [ $# -eq 0 ] || shift
  [ "$cmd" = help ] || [ "$cmd" = -h ] || [ "$cmd" = --help ] || check_name
  case "$cmd" in
  up) cmd_up "$@" ;;
  down) cmd_down ;;
  gc) cmd_gc ;;
  list) cmd_list ;;
  info) cmd_info ;;
  status) cmd_status ;;
  exec) cmd_exec "$@" ;;
  ns) need_lab; ns_of "${1:?ns NODE}" ;;
  dhcp) cmd_dhcp "$@" ;;
  leases) cmd_leases ;;
  dhcp-client) need_lab; dhcp_client "${1:?dhcp-client I}" "${@:2}" ;;
  addr) cmd_addr "$@" ;;
  names) cmd_names "$@" ;;
  dns) cmd_dns "$@" ;;
  firewall) cmd_firewall "$@" ;;
  host) cmd_host "$@" ;;
  start) need_lab; svc_alive "${1:?start SERVICE}" || start_service "$1" ;;
  stop) cmd_stop "$@" ;;
  intercept) cmd_intercept "$@" ;;
  link) cmd_link "$@" ;;
  loss) cmd_loss "$@" ;;
  delay) cmd_delay "$@" ;;
  help | -h | --help) usage ;;
  *) die "unknown command '$cmd' (lab.sh help)" ;;
  esac
}

main "$@"
