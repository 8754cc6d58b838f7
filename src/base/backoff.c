#include "lade/backoff.h"

void lade_backoff_init(struct lade_backoff *b, uint32_t min_ms, uint32_t max_ms, uint32_t stable_ms)
{
    if (min_ms == 0)
        min_ms = 1;
    if (max_ms < min_ms)
        max_ms = min_ms;
    b->min_ms = min_ms;
    b->max_ms = max_ms;
    b->stable_ms = stable_ms;
    b->spread_ms = min_ms;
    b->failures = 0;
}

void lade_backoff_set_spread(struct lade_backoff *b, uint32_t spread_ms)
{
    b->spread_ms = spread_ms < b->min_ms   ? b->min_ms
                   : spread_ms > b->max_ms ? b->max_ms
                                           : spread_ms;
}

uint32_t lade_backoff_cap(const struct lade_backoff *b)
{
    uint64_t cap = b->min_ms;
    for (uint32_t i = 0; i < b->failures && cap < b->max_ms; i++)
        cap *= 2;
    if (cap < b->spread_ms)
        cap = b->spread_ms;
    return cap > b->max_ms ? b->max_ms : (uint32_t)cap;
}

uint32_t lade_backoff_fail(struct lade_backoff *b, uint32_t rnd)
{
    uint32_t cap = lade_backoff_cap(b);
    if (b->failures < UINT32_MAX)
        b->failures++;
    uint32_t span = cap - b->min_ms;
    return b->min_ms + (span ? (uint32_t)((uint64_t)rnd % ((uint64_t)span + 1)) : 0);
}

uint32_t lade_backoff_busy(const struct lade_backoff *b, uint32_t rnd)
{
    uint32_t span = b->spread_ms - b->min_ms;
    return b->min_ms + (span ? (uint32_t)((uint64_t)rnd % ((uint64_t)span + 1)) : 0);
}

int lade_backoff_stable(struct lade_backoff *b, uint64_t up_ms, uint64_t now_ms)
{
    if (b->failures && now_ms >= up_ms && now_ms - up_ms >= b->stable_ms) {
        b->failures = 0;
        return 1;
    }
    return 0;
}
