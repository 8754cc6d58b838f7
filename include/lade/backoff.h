/* lade — exponential back-off with jitter (pure: the caller passes randomness and time).
 *
 * After the n-th consecutive failure (n = 0, 1, ...) the delay is drawn uniformly from
 * [min_ms, cap] with cap = min(max_ms, max(spread_ms, min_ms * 2^n)) ("full jitter" with a
 * floor, so a fleet that lost its hub at the same moment spreads its reconnects over the whole
 * window instead of stampeding, while no device retries in a tight loop). spread_ms (default
 * min_ms, i.e. none) widens the first windows: without it the very first retry of every device
 * would fall in [min_ms, min_ms], the same instant for all of them. A success that lasted at
 * least stable_ms resets the count (lade_backoff_stable).
 */
#ifndef LADE_BACKOFF_H
#define LADE_BACKOFF_H

#include <stdint.h>

struct lade_backoff {
    uint32_t min_ms;
    uint32_t max_ms;
    uint32_t stable_ms;
    uint32_t spread_ms; /* the smallest window's upper end, in [min_ms, max_ms] */
    uint32_t failures;  /* consecutive failures so far */
};

void lade_backoff_init(struct lade_backoff *b, uint32_t min_ms, uint32_t max_ms,
                       uint32_t stable_ms);
/* Sets the smallest window to [min_ms, spread_ms] (clamped to [min_ms, max_ms]): the first
 * retries of a fleet that failed together spread over spread_ms instead of landing at min_ms. */
void lade_backoff_set_spread(struct lade_backoff *b, uint32_t spread_ms);
/* Records a failure and returns the delay before the next attempt. rnd: any uniform 32-bit. */
uint32_t lade_backoff_fail(struct lade_backoff *b, uint32_t rnd);
/* A refusal that says "come back later" (a hub throttling a connection storm): the delay is
 * drawn from the smallest window, [min_ms, spread_ms], and the failure count does not grow. A
 * busy hub admits at its own rate; growing windows would only stretch the tail of the storm
 * (docs/charger.md "Back-off"). rnd: any uniform 32-bit. */
uint32_t lade_backoff_busy(const struct lade_backoff *b, uint32_t rnd);
/* Upper bound of the window the next failure would draw from. */
uint32_t lade_backoff_cap(const struct lade_backoff *b);
/* Call when a connection that came up at up_ms is still fine (or ends) at now_ms: resets the
 * failure count once it has been up for stable_ms. Returns 1 if it reset. */
int lade_backoff_stable(struct lade_backoff *b, uint64_t up_ms, uint64_t now_ms);

#endif
