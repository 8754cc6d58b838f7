#!/usr/bin/env bash
# e2e: lade-fw — keygen, sign, verify, inspect with the real binary; exit codes (0 good,
# 1 refused, 2 usage) and messages; signatures checked independently with the openssl CLI;
# key rotation; a clock set far wrong (libfaketime) changes nothing; the private key never
# appears in any output.
set -euo pipefail
: "${LADE_BUILD_DIR:?}" "${LADE_SOURCE_DIR:?}"
fw="$LADE_BUILD_DIR/lade-fw"
dir=$(mktemp -d /tmp/lade-fw-XXXXXX)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$dir"
out="$dir/all-output" # every stdout/stderr of lade-fw, searched for the private key at the end
: >"$out"

# run EXPECTED-STATUS EXPECTED-MESSAGE(grep -e, may be empty) lade-fw-args...
run() {
  local want=$1 msg=$2; shift 2
  set +e
  "$fw" "$@" >"$dir/o" 2>"$dir/e"
  local rc=$?
  set -e
  cat "$dir/o" "$dir/e" >>"$out"
  if [ "$rc" -ne "$want" ]; then
    cat "$dir/o" "$dir/e" >&2
    fail "exit $rc, want $want: lade-fw $*"
  fi
  if [ -n "$msg" ] && ! grep -q -e "$msg" "$dir/o" "$dir/e"; then
    cat "$dir/o" "$dir/e" >&2
    fail "message '$msg' missing for: lade-fw $*"
  fi
}
field() { sed -n "s/^$1: //p" "$2"; }

# ---------------------------------------------------------------- keygen
run 0 '^public-key: ' keygen --out k1.pem
cp "$dir/o" k1.out
[ "$(stat -c %a k1.pem)" = 600 ] || fail "key mode $(stat -c %a k1.pem)"
pub1=$(field public-key k1.out)
id1=$(field key-id k1.out)
[ "$(printf %s "$pub1" | base64 -d | wc -c)" -eq 32 ] || fail "public key length"
[[ "$id1" =~ ^[0-9a-f]{16}$ ]] || fail "key id '$id1'"
# key id = first 8 bytes of SHA-256 of the raw public key
[ "$(printf %s "$pub1" | base64 -d | sha256sum | cut -c1-16)" = "$id1" ] || fail "key id rule"
# the printed public key is the PEM key's (openssl's view: the last 32 bytes of the SPKI DER)
[ "$(openssl pkey -in k1.pem -pubout -outform DER | tail -c 32 | base64)" = "$pub1" ] ||
  fail "public key differs from openssl's"
openssl pkey -in k1.pem -noout -text 2>/dev/null | grep -q ED25519 || fail "not an Ed25519 key"
sum=$(sha256sum k1.pem)
run 1 'refusing to overwrite' keygen --out k1.pem
[ "$(sha256sum k1.pem)" = "$sum" ] || fail "keygen changed an existing key"
run 1 '' keygen --out "$dir/no/such/dir/k.pem"
run 0 '' keygen --out k2.pem
pub2=$(field public-key "$dir/o")
id2=$(field key-id "$dir/o")
run 0 '' keygen --out k3.pem # the attacker's
pub3=$(field public-key "$dir/o")
if [ "$pub1" = "$pub2" ] || [ "$pub2" = "$pub3" ] || [ "$pub1" = "$pub3" ]; then fail "keys repeat"; fi

# ---------------------------------------------------------------- sign
head -c 1048576 /dev/urandom >img
printf 'Release 2.1.0\r\n\r\n- charging: fix\tphase rotation\r\n- C:\\path stays\r\n\r\n' >notes
run 0 "^signed m1: hardware lade-sim-1 version 2.1.0 security-counter 5 image-length 1048576 key-id $id1" \
  sign --key k1.pem --image img --hw lade-sim-1 --version 2.1.0 --counter 5 --notes notes --out m1
[ "$(cut -d: -f1 m1 | tr '\n' ' ')" = \
  "lade-fw-manifest hardware version security-counter image-length image-sha256 notes key-id signature " ] ||
  fail "line order: $(cat m1)"
[ "$(field image-sha256 m1)" = "$(sha256sum img | cut -c1-64)" ] || fail "image hash"
[ "$(field image-length m1)" = 1048576 ] || fail "image length"
[ "$(field key-id m1)" = "$id1" ] || fail "key id in manifest"
[ "$(field notes m1)" = 'Release 2.1.0\n\n- charging: fix\tphase rotation\n- C:\\path stays' ] ||
  fail "notes: $(field notes m1)"
grep -q $'\r' m1 && fail "CR in manifest"
# Independent check of the signature with openssl: Ed25519 over every line but the last.
head -n -1 m1 >signed.bin
field signature m1 | base64 -d >sig.bin
openssl pkey -in k1.pem -pubout -out pub1.pem
openssl pkeyutl -verify -pubin -inkey pub1.pem -rawin -in signed.bin -sigfile sig.bin >/dev/null ||
  fail "openssl does not verify the signature"
# never overwrites a manifest; other refusals
run 1 'refusing to overwrite' sign --key k1.pem --image img --hw lade-sim-1 --version 2.1.0 \
  --counter 5 --out m1
cp k1.pem k1-open.pem && chmod 644 k1-open.pem
run 1 'chmod 600' sign --key k1-open.pem --image img --hw h --version 1 --counter 1 --out x
[ ! -e x ] || fail "refused sign left a file"
echo 'not a key' >junk.pem && chmod 600 junk.pem
run 1 'not an unencrypted Ed25519' sign --key junk.pem --image img --hw h --version 1 --counter 1 --out x
run 1 'no such file' sign --key nope.pem --image img --hw h --version 1 --counter 1 --out x
: >empty
run 1 'is empty' sign --key k1.pem --image empty --hw h --version 1 --counter 1 --out x
head -c 5000 /dev/zero | tr '\0' 'n' >long-notes
run 1 'longer than 1024' sign --key k1.pem --image img --hw h --version 1 --counter 1 \
  --notes long-notes --out x
printf 'bell \a\n' >ctl-notes
run 1 'control characters' sign --key k1.pem --image img --hw h --version 1 --counter 1 \
  --notes ctl-notes --out x
[ ! -e x ] || fail "refused sign left a file"
run 2 '--counter is required' sign --key k1.pem --image img --hw h --version 1 --out x
run 2 '--counter must be' sign --key k1.pem --image img --hw h --version 1 --counter -1 --out x
run 2 '--counter must be' sign --key k1.pem --image img --hw h --version 1 --counter 4294967296 --out x
run 2 '--hw must be' sign --key k1.pem --image img --hw 'lade sim' --version 1 --counter 1 --out x
run 2 '--version must be' sign --key k1.pem --image img --hw h --version v1 --counter 1 --out x
run 2 '--out is required' sign --key k1.pem --image img --hw h --version 1 --counter 1

# ---------------------------------------------------------------- verify
run 0 "^ok m1: hardware lade-sim-1 version 2.1.0 security-counter 5 image-length 1048576 key-id $id1 image verified" \
  verify --pubkey "$pub1" --manifest m1 --image img --hw lade-sim-1 --counter 5
run 0 '^ok m1' verify --pubkey "$pub1" --manifest m1 --counter 4
run 0 '^ok m1' verify --pubkey "$pub1" --manifest m1
# tampered image / longer image (endless data) / shorter image
cp img img-t && printf 'X' | dd of=img-t bs=1 seek=1000 conv=notrunc status=none
run 1 'image SHA-256 differs' verify --pubkey "$pub1" --manifest m1 --image img-t
cp img img-long && printf 'more' >>img-long
run 1 'image length differs' verify --pubkey "$pub1" --manifest m1 --image img-long
run 1 'manifest says 1048576' verify --pubkey "$pub1" --manifest m1 --image img-long
# tampered fields
sed 's/^security-counter: 5$/security-counter: 9/' m1 >m-counter
run 1 'signature does not verify' verify --pubkey "$pub1" --manifest m-counter
sed -E 's/^image-sha256: 0/image-sha256: X/; s/^image-sha256: [1-9a-f]/image-sha256: 0/;
        s/^image-sha256: X/image-sha256: 1/' m1 >m-hash
cmp -s m1 m-hash && fail "hash not changed"
run 1 'signature does not verify' verify --pubkey "$pub1" --manifest m-hash
sed 's/^hardware: .*/hardware: lade-pro-2/' m1 >m-hw
run 1 'signature does not verify' verify --pubkey "$pub1" --manifest m-hw --hw lade-pro-2
# wrong key
run 1 'not pinned' verify --pubkey "$pub2" --manifest m1
# unsigned
head -n -1 m1 >m-unsigned
run 1 'line 9: manifest not signed' verify --pubkey "$pub1" --manifest m-unsigned
# re-signed with another key: same image, higher counter, the attacker's key
run 0 '' sign --key k3.pem --image img --hw lade-sim-1 --version 9.9.9 --counter 99 --out m-evil
run 1 'not pinned' verify --pubkey "$pub1,$pub2" --manifest m-evil --image img
# the attacker's manifest claiming key 1's id
sed "s/^key-id: .*/key-id: $id1/" m-evil | head -n -1 >m-claim.signed
cp m-claim.signed m-claim
openssl pkeyutl -sign -inkey k3.pem -rawin -in m-claim.signed | base64 -w0 |
  sed 's/^/signature: /' >>m-claim
echo >>m-claim
run 1 'signature does not verify' verify --pubkey "$pub1,$pub2" --manifest m-claim
# downgrade and wrong hardware (after the signature holds)
run 1 'downgrade' verify --pubkey "$pub1" --manifest m1 --hw lade-sim-1 --counter 6
run 1 'security-counter 5 < installed 6' verify --pubkey "$pub1" --manifest m1 --counter 6
run 1 'wrong hardware id' verify --pubkey "$pub1" --manifest m1 --hw lade-pro-2
run 1 "is for 'lade-sim-1', not 'lade-pro-2'" verify --pubkey "$pub1" --manifest m1 --hw lade-pro-2
# malformed
sed 's/$/\r/' m1 >m-crlf
run 1 'line 1: CR in manifest' verify --pubkey "$pub1" --manifest m-crlf
{ cat m1; echo 'extra: 1'; } >m-trailing
run 1 'line 10: data after the signature' verify --pubkey "$pub1" --manifest m-trailing
sed '2a hardware: lade-pro-2' m1 >m-dup
run 1 'line 3: duplicate key' verify --pubkey "$pub1" --manifest m-dup
head -c 5000 /dev/zero | tr '\0' 'a' >m-big
run 1 'manifest too big' verify --pubkey "$pub1" --manifest m-big
printf '<html><body>200 OK from a captive portal</body></html>\n' >m-html
run 1 'not a lade firmware manifest' verify --pubkey "$pub1" --manifest m-html
run 1 'No such file' verify --pubkey "$pub1" --manifest nope
# usage
run 2 '--pubkey is required' verify --manifest m1
run 2 '--manifest is required' verify --pubkey "$pub1"
run 2 'Base64 of a 32-byte' verify --pubkey abc --manifest m1
run 2 'Base64 of a 32-byte' verify --pubkey "$pub1," --manifest m1
run 2 'at most 2' verify --pubkey "$pub1,$pub2,$pub3" --manifest m1
run 2 'same key given twice' verify --pubkey "$pub1,$pub1" --manifest m1
run 2 'unknown command' frobnicate
run 2 '' verify --pubkey "$pub1" --manifest m1 --bogus
run 2 'usage' ""
"$fw" >/dev/null 2>&1 && fail "no arguments must fail"
[ "$("$fw" >/dev/null 2>&1; echo $?)" = 2 ] || fail "no arguments: exit 2"
"$fw" --help | grep -q 'lade-fw keygen' || fail "--help"

# ---------------------------------------------------------------- rotation
# Phase 1: the fleet pins key 1 and key 2 (key 2 rolled out by a release signed with key 1).
run 0 '' sign --key k2.pem --image img --hw lade-sim-1 --version 2.2.0 --counter 6 --out m2
run 0 "key-id $id1" verify --pubkey "$pub1,$pub2" --manifest m1 --image img --hw lade-sim-1
run 0 "key-id $id2" verify --pubkey "$pub1,$pub2" --manifest m2 --image img --hw lade-sim-1
run 0 "key-id $id2" verify --pubkey "$pub2" --pubkey "$pub1" --manifest m2
# Phase 2: key 1 retired: only key 2 pinned; key 1's manifests are refused.
run 1 'not pinned' verify --pubkey "$pub2" --manifest m1
run 0 '' verify --pubkey "$pub2" --manifest m2 --counter 6

# ---------------------------------------------------------------- inspect
run 0 '^hardware: lade-sim-1$' inspect m1
grep -q '^security-counter: 5$' "$dir/o" || fail "inspect counter"
grep -q "^key-id: $id1$" "$dir/o" || fail "inspect key id"
grep -q 'NOT verified' "$dir/o" || fail "inspect must say the signature is not verified"
grep -q "^signed-bytes: $(wc -c <signed.bin)$" "$dir/o" || fail "inspect signed bytes"
grep -q $'^  - charging: fix\tphase rotation$' "$dir/o" || fail "inspect notes"
grep -q '^  - C:\\path stays$' "$dir/o" || fail "inspect notes backslash"
run 1 'line 1: CR in manifest' inspect m-crlf
run 1 'manifest not signed' inspect m-unsigned
run 2 'one manifest file' inspect
run 2 'one manifest file' inspect m1 m2

# ---------------------------------------------------------------- the clock does not matter
# By construction: no clock function is referenced by the manifest code, the signature code or
# the tool (object files, before linking) ...
for o in "$LADE_BUILD_DIR/CMakeFiles/lade.dir/src/proto/fwmanifest/manifest.c.o" \
         "$LADE_BUILD_DIR/CMakeFiles/lade.dir/src/port/linux/fwsig.c.o" \
         "$LADE_BUILD_DIR/CMakeFiles/lade-fw.dir/src/tools/lade-fw.c.o"; do
  [ -f "$o" ] || fail "object $o not found"
  if nm -u "$o" | grep -E -w 'time|clock_gettime|gettimeofday|localtime|gmtime|lade_wall_s|lade_mono_ms|X509_.*'; then
    fail "$o references a clock or certificates"
  fi
done
# ... and with the clock set far wrong, verification gives the same answers.
if command -v faketime >/dev/null; then
  export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0
  for t in '1970-01-01 00:00:00' '2150-06-01 00:00:00'; do
    [ "$(faketime "$t" date -u +%Y)" = "${t%%-*}" ] || fail "faketime did not set $t"
    faketime "$t" "$fw" verify --pubkey "$pub1,$pub2" --manifest m1 --image img --hw lade-sim-1 \
      --counter 5 >"$dir/o" 2>&1 || { cat "$dir/o"; fail "verify at $t"; }
    grep -q '^ok m1' "$dir/o" || fail "verify at $t: $(cat "$dir/o")"
    if faketime "$t" "$fw" verify --pubkey "$pub1" --manifest m-counter >/dev/null 2>&1; then
      fail "tampered manifest accepted at $t"
    fi
  done
else
  echo "note: faketime not installed; the far-wrong clock run is skipped (nm check done)"
fi

# ---------------------------------------------------------------- the private key stays put
for k in k1.pem k2.pem k3.pem; do
  grep -v -e '-----' "$k" | while read -r line; do
    if grep -q -F -e "$line" "$out"; then fail "private key $k printed"; fi
  done
  # ... nor its raw 32 bytes in Base64
  raw=$(openssl pkey -in "$k" -outform DER | tail -c 32 | base64)
  if grep -q -F -e "$raw" "$out"; then fail "raw private key $k printed"; fi
done
echo "lade-fw e2e: ok"
