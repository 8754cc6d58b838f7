#!/usr/bin/env bash
# e2e: lade-factory — identities, factory files, tokens, and its refusals.
set -euo pipefail
: "${LADE_BUILD_DIR:?}" "${LADE_SOURCE_DIR:?}"
f="$LADE_BUILD_DIR/lade-factory"
dir=$(mktemp -d /tmp/lade-factory-XXXXXX)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
"$LADE_SOURCE_DIR/scripts/gen-certs.sh" ca "$dir" "factory test CA"
reg="$dir/registry.db"

# --count makes sequential ids LDE0000001.., each with a factory file of mode 0600.
out=$("$f" create --registry "$reg" --prefix LDE --count 3 --hub-host hub.lade.test \
      --ca "$dir/ca.pem" --out "$dir/chargers" --ntp-host ntp.lade.test)
[ "$(echo "$out" | wc -l)" -eq 3 ] || fail "expected 3 lines: $out"
for id in LDE0000001 LDE0000002 LDE0000003; do
  ff="$dir/chargers/$id/factory.conf"
  [ "$(stat -c %a "$ff")" = 600 ] || fail "$ff mode"
  grep -q "^device_id = $id$" "$ff" || fail "$id missing in $ff"
  grep -q "^ntp_host = ntp.lade.test$" "$ff" || fail "ntp host"
  grep -q "^ca_file = /" "$ff" || fail "CA path must be absolute"
done
# Keys: 32 random bytes, all different, never printed on stdout.
k1=$(sed -n 's/^device_key = //p' "$dir/chargers/LDE0000001/factory.conf")
k2=$(sed -n 's/^device_key = //p' "$dir/chargers/LDE0000002/factory.conf")
[ "$(printf %s "$k1" | base64 -d | wc -c)" -eq 32 ] || fail "key length"
[ "$k1" != "$k2" ] || fail "keys repeat"
echo "$out" | grep -q "$k1" && fail "key printed"
# The next --count continues after the existing ids.
"$f" create --registry "$reg" --count 1 --hub-host hub.lade.test --ca "$dir/ca.pem" \
  --out "$dir/chargers" | grep -q '^LDE0000004 ' || fail "next id"

# Refusals, each with a clear message and a non-zero exit.
expect_fail() { # expected-message command...
  local msg=$1; shift
  if "$@" >"$dir/o" 2>"$dir/e"; then fail "should fail: $*"; fi
  grep -q -e "$msg" "$dir/e" || { cat "$dir/e"; fail "message '$msg' for: $*"; }
}
expect_fail "already exists" "$f" create --registry "$reg" --id LDE0000001 --hub-host h \
  --ca "$dir/ca.pem" --out "$dir/chargers"
expect_fail "A-Za-z0-9-" "$f" create --registry "$reg" --id 'bad/id' --hub-host h \
  --ca "$dir/ca.pem" --out "$dir/chargers"
expect_fail "--ca" "$f" create --registry "$reg" --id LDE9 --hub-host h --out "$dir/chargers"
expect_fail "no device" "$f" token --registry "$reg" --device NOPE --hub-host h
expect_fail "--hub-port" "$f" create --registry "$reg" --id LDE9 --hub-host h --hub-port 70000 \
  --ca "$dir/ca.pem" --out "$dir/chargers"
expect_fail "unknown command" "$f" frobnicate --registry "$reg"
[ ! -e "$dir/chargers/LDE9" ] || fail "refused create left files"

# token: the SAS form of az iot hub generate-sas-token, with the requested lifetime.
now=$(date +%s)
tok=$("$f" token --registry "$reg" --device LDE0000002 --hub-host hub.lade.test --ttl 600)
case "$tok" in
  "SharedAccessSignature sr=hub.lade.test%2Fdevices%2FLDE0000002&sig="*"&se="*) ;;
  *) fail "token form: $tok" ;;
esac
se=${tok##*&se=}
[ $((se - now)) -ge 599 ] && [ $((se - now)) -le 602 ] || fail "expiry $se vs $now"
# Recompute the signature independently with openssl: HMAC-SHA256 over "sr\nse".
sig=$(printf '%s\n%s' "hub.lade.test%2Fdevices%2FLDE0000002" "$se" |
      openssl dgst -sha256 -mac HMAC -macopt "hexkey:$(printf %s "$k2" | base64 -d | od -An -tx1 | tr -d ' \n')" -binary |
      base64 | sed 's/+/%2B/g; s/\//%2F/g; s/=/%3D/g')
[ "$tok" = "SharedAccessSignature sr=hub.lade.test%2Fdevices%2FLDE0000002&sig=$sig&se=$se" ] ||
  fail "signature differs from openssl's"

# disable/enable and list.
"$f" disable --registry "$reg" --device LDE0000003
"$f" list --registry "$reg" | grep -q $'^LDE0000003\tdisabled' || fail "disable"
"$f" enable --registry "$reg" --device LDE0000003
"$f" list --registry "$reg" | grep -q $'^LDE0000003\tenabled' || fail "enable"

# Service identities: token with skn, secret file 0600, duplicate refused.
"$f" service --registry "$reg" --name portal --hub-host hub.lade.test --out "$dir/portal.conf" >/dev/null
[ "$(stat -c %a "$dir/portal.conf")" = 600 ] || fail "service file mode"
"$f" token --registry "$reg" --name portal --hub-host hub.lade.test | grep -q '&skn=portal$' ||
  fail "service token"
expect_fail "" "$f" service --registry "$reg" --name portal --hub-host h --out "$dir/p2.conf"
echo "lade-factory e2e: ok"
