#!/usr/bin/env bash
# Installs every Debian package lade's build, tests, demo, fuzzing and benchmarks need.
# Idempotent: packages already present are skipped; uses sudo when not root.
set -euo pipefail

PKGS=(
  build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev clang-format
  libssl-dev openssl libcurl4-openssl-dev libsqlite3-dev sqlite3 libcjson-dev
  libmicrohttpd-dev libmnl-dev libcmocka-dev
  mosquitto mosquitto-dev mosquitto-clients libmosquitto-dev
  iproute2 procps psmisc curl jq
  dnsmasq-base
  # the site-network test lab (tests/lab): NTP server, NAT and firewall, a standard DHCP client,
  # DNS and ping tools to check it with (dnsmasq-base above is its DHCP/DNS server). chrony's
  # package starts chronyd on a machine that runs systemd; the lab runs its own chronyd with -x,
  # which never sets the clock.
  chrony nftables busybox iputils-ping bind9-dnsutils
  # a charger whose clock reads 1970 (e2e.test_net_dhcp_lab): libfaketime, preloaded
  faketime
  # the firmware hosts in tests and the demo (HTTPS with Range/ETag; run by the tests with
  # their own config, never as a system service)
  nginx
  chromium
)

# The browser test (tests/web) also needs Node.js and npm. Debian's packages are nodejs and npm,
# but a machine may already have both from another Node.js packaging whose nodejs package
# provides npm and conflicts with Debian's npm: so each is installed only when its command is
# missing.
CMD_PKGS=(node:nodejs npm:npm)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
for cp in "${CMD_PKGS[@]}"; do
  if ! command -v "${cp%%:*}" >/dev/null 2>&1; then
    missing+=("${cp#*:}")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
