#!/usr/bin/env bash
# Runs every libFuzzer target in $1 for $2 seconds each; corpora persist in fuzz-corpus/.
set -euo pipefail
dir=${1:-build/fuzz}
secs=${2:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
status=0
for t in "$dir"/fuzz_*; do
  [ -x "$t" ] || continue
  name=$(basename "$t")
  corpus="$root/fuzz-corpus/$name"
  mkdir -p "$corpus"
  seeds="$root/tests/fuzz/corpus/$name"
  echo "== $name ($secs s)"
  args=("$corpus")
  [ -d "$seeds" ] && args+=("$seeds")
  if ! "$t" -max_total_time="$secs" -print_final_stats=1 "${args[@]}"; then
    echo "FUZZ FAILURE in $name" >&2
    status=1
  fi
done
exit $status
