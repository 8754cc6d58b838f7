/* IPv4 link-local addresses (RFC 3927): candidates from a MAC-seeded PRNG, claimed with
 * lade_acd, conflict counting and rate limiting. Pure. */
#include <string.h>

#include "lade/ipv4ll.h"
#include "lade/log.h"

#define MOD   "ipv4ll"
#define NEVER UINT64_MAX
#define RANGE ((uint32_t)(LADE_IPV4LL_LAST - LADE_IPV4LL_FIRST + 1)) /* 65024 addresses */

const char *lade_ipv4ll_state_name(enum lade_ipv4ll_state st)
{
    switch (st) {
    case LADE_IPV4LL_STOPPED:
        return "STOPPED";
    case LADE_IPV4LL_WAITING:
        return "WAITING";
    case LADE_IPV4LL_CLAIMING:
        return "CLAIMING";
    case LADE_IPV4LL_BOUND:
        return "BOUND";
    }
    return "?";
}

bool lade_ipv4ll_in_range(uint32_t a)
{
    return a >= LADE_IPV4LL_FIRST && a <= LADE_IPV4LL_LAST;
}

static const char *name_of(const struct lade_ipv4ll *ll)
{
    return ll->cfg.name ? ll->cfg.name : "ipv4ll";
}

static void set_state(struct lade_ipv4ll *ll, enum lade_ipv4ll_state to)
{
    if (ll->state != to)
        LOG_I(MOD, "%s: %s → %s (%u.%u.%u.%u)", name_of(ll), lade_ipv4ll_state_name(ll->state),
              lade_ipv4ll_state_name(to), (unsigned)(ll->candidate >> 24),
              (unsigned)(ll->candidate >> 16) & 0xffu, (unsigned)(ll->candidate >> 8) & 0xffu,
              (unsigned)ll->candidate & 0xffu);
    ll->state = to;
    ll->timer_ms = NEVER;
}

/* splitmix64: small, good enough to spread candidates, identical on every platform. */
static uint64_t prng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint32_t next_candidate(struct lade_ipv4ll *ll)
{
    uint32_t a;
    do {
        a = LADE_IPV4LL_FIRST + (uint32_t)(prng_next(&ll->prng) % RANGE);
    } while (a == ll->candidate);
    return a;
}

static void act_clear(struct lade_ipv4ll_actions *act)
{
    memset(act, 0, sizeof *act);
    act->next_ms = NEVER;
}

static void finish(struct lade_ipv4ll *ll, struct lade_ipv4ll_actions *act)
{
    uint64_t acd_next = ll->acd.timer_ms;
    act->next_ms = ll->timer_ms < acd_next ? ll->timer_ms : acd_next;
}

static void claim(struct lade_ipv4ll *ll, uint64_t now_ms)
{
    struct lade_acd_actions a;
    set_state(ll, LADE_IPV4LL_CLAIMING);
    /* Only link-local candidates reach here, which are unicast: start cannot fail. */
    if (lade_acd_start(&ll->acd, ll->candidate, now_ms, &a) != LADE_OK)
        lade_acd_stop(&ll->acd);
}

/* The candidate (or the bound address) is taken: next one, rate-limited after MAX_CONFLICTS
 * (RFC 3927 §2.2.1, §2.5). */
static void on_conflict(struct lade_ipv4ll *ll, uint64_t now_ms, struct lade_ipv4ll_actions *act)
{
    if (ll->state == LADE_IPV4LL_BOUND) {
        act->flags |= LADE_IPV4LL_ACT_DROP;
        act->drop_addr = ll->candidate;
    }
    ll->conflicts++;
    ll->diag.conflicts_total++;
    ll->candidate = next_candidate(ll);
    if (ll->conflicts >= LADE_IPV4LL_MAX_CONFLICTS) {
        set_state(ll, LADE_IPV4LL_WAITING);
        ll->timer_ms = now_ms + LADE_IPV4LL_RATE_LIMIT_INTERVAL_MS;
    } else {
        claim(ll, now_ms);
    }
}

/* Passes an ACD result on. */
static void from_acd(struct lade_ipv4ll *ll, const struct lade_acd_actions *a, uint64_t now_ms,
                     struct lade_ipv4ll_actions *act)
{
    if (a->flags & LADE_ACD_ACT_SEND) {
        act->flags |= LADE_IPV4LL_ACT_SEND;
        act->arp = a->arp;
    }
    if (a->flags & LADE_ACD_ACT_READY) {
        set_state(ll, LADE_IPV4LL_BOUND);
        ll->claimed = ll->candidate;
        ll->conflicts = 0;
        ll->diag.claims++;
        act->flags |= LADE_IPV4LL_ACT_CONFIGURE;
        act->addr = ll->candidate;
    }
    if (a->flags & LADE_ACD_ACT_CONFLICT)
        on_conflict(ll, now_ms, act);
}

lade_err lade_ipv4ll_init(struct lade_ipv4ll *ll, const struct lade_ipv4ll_cfg *cfg)
{
    if (!ll || !cfg || !cfg->random)
        return LADE_ERR_CONFIG;
    memset(ll, 0, sizeof *ll);
    ll->cfg = *cfg;
    struct lade_acd_cfg ac = {
        .random = cfg->random, .random_ud = cfg->random_ud, .name = cfg->name};
    memcpy(ac.mac, cfg->mac, 6);
    lade_err e = lade_acd_init(&ll->acd, &ac);
    if (e != LADE_OK)
        return e;
    /* RFC 3927 §2.1: seed from the MAC so a device tends to pick the same address (FNV-1a). */
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < 6; i++) {
        h ^= cfg->mac[i];
        h *= 0x100000001b3ull;
    }
    ll->prng = h;
    ll->state = LADE_IPV4LL_STOPPED;
    ll->timer_ms = NEVER;
    if (lade_ipv4ll_in_range(cfg->last_addr))
        ll->claimed = cfg->last_addr;
    return LADE_OK;
}

void lade_ipv4ll_start(struct lade_ipv4ll *ll, uint64_t now_ms, struct lade_ipv4ll_actions *act)
{
    act_clear(act);
    if (ll->state == LADE_IPV4LL_STOPPED) {
        ll->conflicts = 0;
        ll->candidate = ll->claimed ? ll->claimed : next_candidate(ll);
        claim(ll, now_ms);
    }
    finish(ll, act);
}

void lade_ipv4ll_stop(struct lade_ipv4ll *ll, uint64_t now_ms, struct lade_ipv4ll_actions *act)
{
    (void)now_ms;
    act_clear(act);
    if (ll->state == LADE_IPV4LL_BOUND) {
        act->flags |= LADE_IPV4LL_ACT_DROP;
        act->drop_addr = ll->candidate;
    }
    lade_acd_stop(&ll->acd);
    set_state(ll, LADE_IPV4LL_STOPPED);
    finish(ll, act);
}

void lade_ipv4ll_tick(struct lade_ipv4ll *ll, uint64_t now_ms, struct lade_ipv4ll_actions *act)
{
    act_clear(act);
    if (ll->state == LADE_IPV4LL_WAITING && now_ms >= ll->timer_ms) {
        claim(ll, now_ms);
    } else if (ll->state == LADE_IPV4LL_CLAIMING || ll->state == LADE_IPV4LL_BOUND) {
        struct lade_acd_actions a;
        lade_acd_tick(&ll->acd, now_ms, &a);
        from_acd(ll, &a, now_ms, act);
    }
    finish(ll, act);
}

void lade_ipv4ll_input(struct lade_ipv4ll *ll, const struct lade_arp *m, uint64_t now_ms,
                       struct lade_ipv4ll_actions *act)
{
    act_clear(act);
    if (ll->state == LADE_IPV4LL_CLAIMING || ll->state == LADE_IPV4LL_BOUND) {
        struct lade_acd_actions a;
        lade_acd_input(&ll->acd, m, now_ms, &a);
        from_acd(ll, &a, now_ms, act);
    }
    finish(ll, act);
}

enum lade_ipv4ll_state lade_ipv4ll_state(const struct lade_ipv4ll *ll)
{
    return ll->state;
}

uint32_t lade_ipv4ll_addr(const struct lade_ipv4ll *ll)
{
    return ll->state == LADE_IPV4LL_BOUND ? ll->candidate : 0;
}

uint32_t lade_ipv4ll_claimed(const struct lade_ipv4ll *ll)
{
    return ll->claimed;
}

void lade_ipv4ll_diag(const struct lade_ipv4ll *ll, struct lade_ipv4ll_diag *out)
{
    *out = ll->diag;
    out->state = ll->state;
    out->addr = lade_ipv4ll_addr(ll);
    out->candidate = ll->state == LADE_IPV4LL_STOPPED ? 0 : ll->candidate;
    out->conflicts = ll->conflicts;
}
