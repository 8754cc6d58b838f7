#!/usr/bin/env bash
# Runs every libFuzzer target in DIR for SECONDS each (docs/fuzzing.md).
#
#   scripts/fuzz.sh [DIR [SECONDS [TARGET...]]]     defaults: build/fuzz 60 (all fuzz_* in DIR)
#
# Corpora persist in fuzz-corpus/<target>/ (git-ignored) and are seeded from
# tests/fuzz/corpus/<target>/ (read-only to the fuzzer: new inputs go to fuzz-corpus/ only).
# Crashes, leaks, timeouts and OOMs are written to fuzz-corpus/artifacts/<target>/; the first
# failing target stops the run with exit status 1 and the path of the input that failed.
# Logs: fuzz-corpus/logs/<target>.log. A summary (executions, exec/s, coverage) ends the run.
# Environment: FUZZ_JOBS=N runs N fuzzer processes per target (default 1);
#              FUZZ_ARGS adds libFuzzer flags to every run.
set -euo pipefail
dir=${1:-build/fuzz}
secs=${2:-60}
shift $(($# < 2 ? $# : 2))
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=${FUZZ_JOBS:-1}
# UBSan findings must stop the fuzzer like ASan's (the default is to print and go on).
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

# Longest input per target: enough for every structure the target can exercise, no more (long
# inputs only slow the fuzzer down).
max_len_for() {
  case "$1" in
    fuzz_mqtt_decode) echo 8192 ;;      # several frames, 2-byte lengths, the 1 KiB session buffer
    fuzz_obs) echo 4200 ;;              # one observation message is at most 4096 bytes
    fuzz_sas_parse) echo 1024 ;;        # tokens and topics are a few hundred bytes
    fuzz_iothub_topic) echo 1024 ;;     # id (<=128) + topic; rid <= 64, method <= 128
    fuzz_svc_topic) echo 1024 ;;        # service reply/event topics: id <= 128 + query
    fuzz_settings) echo 4096 ;;         # must pass the 1024-byte line limit
    fuzz_hosts) echo 4096 ;;            # name (<=253) + a hosts file of many lines
    fuzz_charger_messages) echo 8192 ;; # several records with JSON payloads
    fuzz_ingest) echo 4400 ;;           # property bag + one observation message
    fuzz_dns) echo 2048 ;;              # mode byte + one response (512 B over UDP; TCP seeds ~700 B)
    fuzz_wpa) echo 4200 ;;              # selector + one control datagram (<= 4096: TOO_BIG path)
    fuzz_fwmanifest) echo 4200 ;;       # one manifest (<= 4096 bytes; longer: the TOO_BIG path)
    fuzz_fwslot) echo 1024 ;;           # one boot-state record copy (387 bytes) or two
    fuzz_at) echo 2048 ;;               # several modem lines, over the 512-byte line limit
    fuzz_dhcp) echo 1600 ;;             # one reply up to an Ethernet MTU + IPv4/UDP + selector
    fuzz_sntp) echo 512 ;;              # flags + cookie + one datagram (48-byte header, MAC/extensions)
    fuzz_wifiscan) echo 16384 ;;        # two recorded scans (<= 9.8 KB); 513 wpa rows; a line > 4000
    *) echo 4096 ;;
  esac
}

if [ ! -d "$dir" ]; then
  echo "fuzz.sh: no build directory $dir (run: make fuzz)" >&2
  exit 2
fi
dir=$(cd "$dir" && pwd) # the fuzzers run from their artifact directory
case "$secs" in
  '' | *[!0-9]*) echo "fuzz.sh: SECONDS must be a whole number, got '$secs'" >&2; exit 2 ;;
esac

targets=()
if [ $# -gt 0 ]; then
  for name in "$@"; do
    if [ ! -f "$dir/$name" ] || [ ! -x "$dir/$name" ]; then
      echo "fuzz.sh: $dir/$name is not an executable fuzz target" >&2
      exit 2
    fi
    targets+=("$dir/$name")
  done
else
  for t in "$dir"/fuzz_*; do
    [ -f "$t" ] && [ -x "$t" ] && targets+=("$t")
  done
fi
if [ ${#targets[@]} -eq 0 ]; then
  echo "fuzz.sh: no fuzz_* executables in $dir" >&2
  exit 2
fi

mkdir -p "$root/fuzz-corpus/logs" "$root/fuzz-corpus/artifacts"
summary=()
for t in "${targets[@]}"; do
  name=$(basename "$t")
  corpus="$root/fuzz-corpus/$name"
  artifacts="$root/fuzz-corpus/artifacts/$name"
  log="$root/fuzz-corpus/logs/$name.log"
  seeds="$root/tests/fuzz/corpus/$name"
  mkdir -p "$corpus" "$artifacts"
  max_len=$(max_len_for "$name")
  args=(-max_total_time="$secs" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048
        -print_final_stats=1 -artifact_prefix="$artifacts/")
  if [ "$jobs" -gt 1 ]; then
    args+=(-fork="$jobs" -ignore_crashes=0)
  fi
  # shellcheck disable=SC2206 # FUZZ_ARGS is a list of flags on purpose
  args+=(${FUZZ_ARGS:-})
  args+=("$corpus")
  [ -d "$seeds" ] && args+=("$seeds")
  echo "== $name: ${secs}s, max_len $max_len, corpus $corpus"
  before=$(ls -1 "$artifacts" | wc -l)
  set +e
  (cd "$artifacts" && "$t" "${args[@]}") >"$log" 2>&1
  rc=$?
  set -e
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)
  if [ $rc -ne 0 ]; then
    tail -n 60 "$log" >&2
    echo >&2
    echo "FUZZ FAILURE in $name (exit $rc); full log: $log" >&2
    # libFuzzer names the input it wrote: "Test unit written to <path>".
    unit=$(grep -o 'Test unit written to .*' "$log" | tail -1 | sed 's/^Test unit written to //' || true)
    if [ -z "$unit" ] && [ "$(ls -1 "$artifacts" | wc -l)" -gt "$before" ]; then
      unit="$artifacts/$(ls -1t "$artifacts" | head -1)"
    fi
    if [ -n "$unit" ]; then
      echo "crashing input: $unit" >&2
      echo "reproduce:      $t $unit" >&2
    fi
    exit 1
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\) ft: \([0-9]*\) corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1 \2 \3/p' \
        <<<"$done_line")
  read -r c f k <<<"${cov:-? ? ?}"
  summary+=("$(printf '%-24s %12s %10s %6s %7s %14s' "$name" "${execs:-?}" "${rate:-?}" "$c" "$f" "$k")")
  echo "   ok: ${execs:-?} runs, ${rate:-?} exec/s, cov ${c} ft ${f} corpus ${k}"
done

echo
echo "fuzz summary (${secs}s per target, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs):"
printf '%-24s %12s %10s %6s %7s %14s\n' target runs exec/s cov ft corpus
printf '%s\n' "${summary[@]}"
