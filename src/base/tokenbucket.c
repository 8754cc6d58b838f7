#include "lade/tokenbucket.h"

void lade_tokenbucket_init(struct lade_tokenbucket *r, uint32_t rate_per_s, uint32_t burst,
                           uint64_t now_ms)
{
    if (rate_per_s > LADE_TOKENBUCKET_MAX)
        rate_per_s = LADE_TOKENBUCKET_MAX;
    if (burst > LADE_TOKENBUCKET_MAX)
        burst = LADE_TOKENBUCKET_MAX;
    if (burst == 0)
        burst = rate_per_s;
    r->rate_per_s = rate_per_s;
    r->burst = burst;
    r->milli = (uint64_t)burst * 1000u;
    r->last_ms = now_ms;
}

static void refill(struct lade_tokenbucket *r, uint64_t now_ms)
{
    if (now_ms <= r->last_ms)
        return; /* same millisecond, or the clock stepped back: nothing to add */
    uint64_t cap = (uint64_t)r->burst * 1000u;
    uint64_t dt = now_ms - r->last_ms;
    r->last_ms = now_ms;
    /* rate tokens/s = rate thousandths/ms. Once dt * rate exceeds the bucket, it is full. */
    if (dt >= cap || r->milli + dt * r->rate_per_s >= cap)
        r->milli = cap;
    else
        r->milli += dt * r->rate_per_s;
}

bool lade_tokenbucket_take(struct lade_tokenbucket *r, uint64_t now_ms)
{
    if (r->rate_per_s == 0)
        return true;
    refill(r, now_ms);
    if (r->milli < 1000u)
        return false;
    r->milli -= 1000u;
    return true;
}

uint32_t lade_tokenbucket_avail(struct lade_tokenbucket *r, uint64_t now_ms)
{
    if (r->rate_per_s == 0)
        return UINT32_MAX;
    refill(r, now_ms);
    return (uint32_t)(r->milli / 1000u);
}
