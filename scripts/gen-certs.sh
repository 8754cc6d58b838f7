#!/usr/bin/env bash
# Generates test/demo PKI with ECDSA P-256 keys. Used by `make demo` and the e2e tests.
#   gen-certs.sh ca DIR [CN]                       -> DIR/ca.pem DIR/ca.key (10 years)
#   gen-certs.sh server DIR CADIR HOST [DAYS]      -> DIR/server.pem DIR/server.key
#       SAN = DNS:HOST, DNS:localhost, IP:127.0.0.1; signed by CADIR/ca.{pem,key}
# Existing files are kept (idempotent), so the demo CA is made once.
set -euo pipefail
umask 077
cmd=${1:?usage: gen-certs.sh ca|server ...}
case "$cmd" in
ca)
  dir=${2:?DIR}; cn=${3:-lade demo CA}
  mkdir -p "$dir"
  if [ ! -s "$dir/ca.pem" ] || [ ! -s "$dir/ca.key" ]; then
    openssl ecparam -name prime256v1 -genkey -noout -out "$dir/ca.key"
    openssl req -x509 -new -key "$dir/ca.key" -sha256 -days 3650 -subj "/CN=$cn" \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$dir/ca.pem" 2>/dev/null
  fi
  chmod 644 "$dir/ca.pem"
  ;;
server)
  dir=${2:?DIR}; cadir=${3:?CADIR}; host=${4:?HOST}; days=${5:-825}
  mkdir -p "$dir"
  if [ ! -s "$dir/server.pem" ] || [ ! -s "$dir/server.key" ]; then
    openssl ecparam -name prime256v1 -genkey -noout -out "$dir/server.key"
    openssl req -new -key "$dir/server.key" -subj "/CN=$host" -out "$dir/server.csr" 2>/dev/null
    ext=$(mktemp)
    printf 'subjectAltName=DNS:%s,DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' "$host" >"$ext"
    openssl x509 -req -in "$dir/server.csr" -CA "$cadir/ca.pem" -CAkey "$cadir/ca.key" \
      -CAcreateserial -days "$days" -sha256 -extfile "$ext" -out "$dir/server.pem" 2>/dev/null
    rm -f "$ext" "$dir/server.csr"
  fi
  chmod 644 "$dir/server.pem"
  # mosquitto may drop privileges; the key must stay readable by the user running it.
  chmod 600 "$dir/server.key"
  ;;
*)
  echo "gen-certs.sh: unknown command '$cmd'" >&2; exit 2 ;;
esac
