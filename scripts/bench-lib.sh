# shellcheck shell=bash
# Helpers shared by scripts/bench.sh, bench-fleet.sh and bench-wire.sh (sourced, not run).
# Expects: the caller's working directory is the project root, BENCH_NAME (the prefix of its
# messages) and, for stop_pid, may keep an array `pids` of the children it stops on exit.

# now_ms: wall-clock milliseconds, without forking.
now_ms() { local t=$EPOCHREALTIME; echo $(( ${t%.*} * 1000 + 10#${t#*.} / 1000 )); }

# median: of the numbers on stdin, one a line ("n/a" for none; the mean of the middle two).
median() { sort -n | awk '{v[NR]=$1} END {if (NR==0) {print "n/a"; exit} if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }

# listening PORT: something accepts TCP connections on 127.0.0.1:PORT.
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# cpu_s PID: user + system CPU seconds of a process so far; rss_kb PID: its VmRSS in kB.
bench_hz=$(getconf CLK_TCK)
cpu_s() { awk -v hz="$bench_hz" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# setting_default NAME: a production default from the code (lade_settings_defaults in
# src/common/settings.c), so the composed figures cannot drift from it.
setting_default() {
  local v
  v=$(sed -nE "/^void lade_settings_defaults/,/^\}/ s/^ *s->$1 = ([0-9]+);.*/\1/p" src/common/settings.c)
  [ -n "$v" ] || { echo "$BENCH_NAME: cannot read the default of $1 from src/common/settings.c" >&2; exit 1; }
  echo "$v"
}

# stop_pid PID [GRACE_MS]: SIGTERM, wait up to GRACE_MS (5000), then SIGKILL; the PID leaves
# `pids`. Only for children.
stop_pid() {
  local p=$1 end=$(( $(now_ms) + ${2:-5000} ))
  kill -TERM "$p" 2>/dev/null || true
  while kill -0 "$p" 2>/dev/null; do
    if (( $(now_ms) >= end )); then kill -KILL "$p" 2>/dev/null || true; break; fi
    sleep 0.05
  done
  wait "$p" 2>/dev/null || true
  local q rest=()
  for q in "${pids[@]+"${pids[@]}"}"; do [ "$q" = "$p" ] || rest+=("$q"); done
  pids=("${rest[@]+"${rest[@]}"}")
}
