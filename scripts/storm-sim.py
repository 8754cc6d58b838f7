#!/usr/bin/env python3
"""storm-sim.py — how long a fleet takes to reconnect after a hub restart (docs/hub.md
"Connection storms"). A discrete-event model of the chargers' back-off (include/lade/backoff.h
with the agent's 30 s spread, busy refusals retried within the spread window) against the hub's
token bucket (plugin_opt_max_connect_rate / connect_burst). Not a measurement: the fleet bench
(scripts/bench-fleet.sh) measures the real thing.

  scripts/storm-sim.py [--n 10000] [--rate 100] [--burst RATE] [--down 5] [--min 1] [--max 100]
                       [--spread 30] [--seeds 3]
"""
import argparse
import heapq
import random
import statistics


def storm(n, rate, burst, down_s, min_s, max_s, spread_s, seed):
    rnd = random.Random(seed)
    spread_s = min(max(spread_s, min_s), max_s)
    events, fails = [], [0] * n
    for i in range(n):  # every charger lost its link at t = 0: first retry in the spread window
        heapq.heappush(events, (rnd.uniform(min_s, spread_s), i))
        fails[i] = 1
    tokens, last, done_s, attempts, per_s = burst, down_s, 0.0, 0, {}
    while events:
        t, i = heapq.heappop(events)
        attempts += 1
        if t < down_s:  # hub not listening yet: an ordinary failure, the window grows
            w = min(max_s, max(spread_s, min_s * 2 ** fails[i]))
            fails[i] += 1
            heapq.heappush(events, (t + rnd.uniform(min_s, w), i))
            continue
        per_s[int(t)] = per_s.get(int(t), 0) + 1
        if rate:
            tokens = min(burst, tokens + (t - last) * rate)
            last = t
        if not rate or tokens >= 1:
            tokens -= 1 if rate else 0
            done_s = t
            continue
        # throttled (closed before CONNACK): busy, retried within the spread window
        heapq.heappush(events, (t + rnd.uniform(min_s, spread_s), i))
    return done_s, attempts, max(per_s.values())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--rate", type=float, default=100, help="0 = unlimited")
    ap.add_argument("--burst", type=float, default=None)
    ap.add_argument("--down", type=float, default=5.0, help="seconds the hub is down")
    ap.add_argument("--min", type=float, default=1.0, help="backoff_min_ms / 1000")
    ap.add_argument("--max", type=float, default=100.0, help="backoff_max_ms / 1000")
    ap.add_argument("--spread", type=float, default=30.0)
    ap.add_argument("--seeds", type=int, default=3)
    a = ap.parse_args()
    burst = a.burst if a.burst is not None else a.rate
    runs = [storm(a.n, a.rate, burst, a.down, a.min, a.max, a.spread, s) for s in range(a.seeds)]
    print(f"n {a.n} rate {a.rate or 'unlimited'} burst {burst} spread {a.spread} s: "
          f"all online after {statistics.median(r[0] for r in runs):.1f} s (median of {a.seeds}), "
          f"{statistics.median(r[1] for r in runs):.0f} attempts, "
          f"peak {statistics.median(r[2] for r in runs):.0f} attempts/s")


if __name__ == "__main__":
    main()
