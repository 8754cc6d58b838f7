/* lade — token bucket (pure: the caller passes the time).
 *
 * rate_per_s tokens are added per second, up to burst; each admitted event takes one. The
 * bucket starts full, so a quiet hub admits a burst at once and then the steady rate. Integer
 * arithmetic in thousandths of a token, so rates of 1/s up to 10^6/s are exact to the
 * millisecond and nothing drifts however long it runs. rate_per_s == 0 means unlimited.
 *
 * The hub uses it to admit new device connections (docs/hub.md "Connection storms").
 */
#ifndef LADE_TOKENBUCKET_H
#define LADE_TOKENBUCKET_H

#include <stdbool.h>
#include <stdint.h>

#define LADE_TOKENBUCKET_MAX 1000000u /* largest rate and burst accepted */

struct lade_tokenbucket {
    uint32_t rate_per_s; /* 0 = unlimited */
    uint32_t burst;      /* bucket size in tokens, >= 1 when rate_per_s > 0 */
    uint64_t milli;      /* tokens now, in thousandths */
    uint64_t last_ms;    /* time of the last refill */
};

/* rate_per_s and burst are clamped to LADE_TOKENBUCKET_MAX; burst 0 means burst = rate (one
 * second's worth). The bucket is full at now_ms. */
void lade_tokenbucket_init(struct lade_tokenbucket *r, uint32_t rate_per_s, uint32_t burst,
                           uint64_t now_ms);
/* Takes one token if there is one at now_ms. true = admitted. A clock that goes backwards
 * (now_ms < the last call) adds nothing and is not an error. */
bool lade_tokenbucket_take(struct lade_tokenbucket *r, uint64_t now_ms);
/* Whole tokens available at now_ms (refills, takes nothing); UINT32_MAX when unlimited. */
uint32_t lade_tokenbucket_avail(struct lade_tokenbucket *r, uint64_t now_ms);

#endif
