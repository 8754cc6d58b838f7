/* Address conflict detection (RFC 5227): probe, announce, defend one IPv4 address. Pure. */
#include <stdio.h>
#include <string.h>

#include "lade/ipv4ll.h"
#include "lade/log.h"

#define MOD   "acd"
#define NEVER UINT64_MAX

const char *lade_acd_state_name(enum lade_acd_state st)
{
    switch (st) {
    case LADE_ACD_STOPPED:
        return "STOPPED";
    case LADE_ACD_PROBING:
        return "PROBING";
    case LADE_ACD_ANNOUNCING:
        return "ANNOUNCING";
    case LADE_ACD_DEFENDING:
        return "DEFENDING";
    }
    return "?";
}

static const char *name_of(const struct lade_acd *a)
{
    return a->cfg.name ? a->cfg.name : "acd";
}

static void set_state(struct lade_acd *a, enum lade_acd_state to)
{
    if (a->state != to)
        LOG_D(MOD, "%s: %u.%u.%u.%u %s → %s", name_of(a), (unsigned)(a->addr >> 24),
              (unsigned)(a->addr >> 16) & 0xffu, (unsigned)(a->addr >> 8) & 0xffu,
              (unsigned)a->addr & 0xffu, lade_acd_state_name(a->state), lade_acd_state_name(to));
    a->state = to;
    a->sent = 0;
    a->timer_ms = NEVER;
}

/* Uniform in [lo, hi]. */
static uint64_t rnd_between(struct lade_acd *a, uint32_t lo, uint32_t hi)
{
    return lo + a->cfg.random(a->cfg.random_ud) % ((uint64_t)hi - lo + 1);
}

static void act_clear(struct lade_acd_actions *act)
{
    memset(act, 0, sizeof *act);
    act->next_ms = NEVER;
}

lade_err lade_acd_init(struct lade_acd *a, const struct lade_acd_cfg *cfg)
{
    if (!a || !cfg || !cfg->random)
        return LADE_ERR_CONFIG;
    memset(a, 0, sizeof *a);
    a->cfg = *cfg;
    a->state = LADE_ACD_STOPPED;
    a->timer_ms = NEVER;
    return LADE_OK;
}

lade_err lade_acd_start(struct lade_acd *a, uint32_t addr, uint64_t now_ms,
                        struct lade_acd_actions *act)
{
    act_clear(act);
    if (!lade_ipv4_unicast(addr))
        return LADE_ERR_INVAL;
    a->state = LADE_ACD_STOPPED;
    a->addr = addr;
    a->defended = false;
    set_state(a, LADE_ACD_PROBING);
    /* RFC 5227 §2.1.1: wait random 0..PROBE_WAIT before the first probe. */
    a->timer_ms = now_ms + rnd_between(a, 0, LADE_ACD_PROBE_WAIT_MS);
    act->next_ms = a->timer_ms;
    return LADE_OK;
}

lade_err lade_acd_announce(struct lade_acd *a, uint32_t addr, uint64_t now_ms,
                           struct lade_acd_actions *act)
{
    act_clear(act);
    if (!lade_ipv4_unicast(addr))
        return LADE_ERR_INVAL;
    a->state = LADE_ACD_STOPPED;
    a->addr = addr;
    a->defended = false;
    set_state(a, LADE_ACD_ANNOUNCING);
    lade_arp_announce(a->cfg.mac, a->addr, &act->arp);
    act->flags |= LADE_ACD_ACT_SEND;
    a->sent = 1;
    a->timer_ms = now_ms + LADE_ACD_ANNOUNCE_INTERVAL_MS;
    act->next_ms = a->timer_ms;
    return LADE_OK;
}

void lade_acd_stop(struct lade_acd *a)
{
    set_state(a, LADE_ACD_STOPPED);
}

void lade_acd_tick(struct lade_acd *a, uint64_t now_ms, struct lade_acd_actions *act)
{
    act_clear(act);
    if (a->timer_ms == NEVER || now_ms < a->timer_ms) {
        act->next_ms = a->timer_ms;
        return;
    }
    switch (a->state) {
    case LADE_ACD_STOPPED:
    case LADE_ACD_DEFENDING:
        a->timer_ms = NEVER;
        break;
    case LADE_ACD_PROBING:
        if (a->sent < LADE_ACD_PROBE_NUM) {
            lade_arp_probe(a->cfg.mac, a->addr, &act->arp);
            act->flags |= LADE_ACD_ACT_SEND;
            a->sent++;
            a->timer_ms =
                now_ms + (a->sent < LADE_ACD_PROBE_NUM
                              ? rnd_between(a, LADE_ACD_PROBE_MIN_MS, LADE_ACD_PROBE_MAX_MS)
                              : LADE_ACD_ANNOUNCE_WAIT_MS);
            break;
        }
        /* ANNOUNCE_WAIT after the last probe passed quietly: the address is ours (§2.1.1);
         * the first announcement goes out now (§2.3). */
        set_state(a, LADE_ACD_ANNOUNCING);
        act->flags |= LADE_ACD_ACT_READY;
        /* fall through */
    case LADE_ACD_ANNOUNCING:
        lade_arp_announce(a->cfg.mac, a->addr, &act->arp);
        act->flags |= LADE_ACD_ACT_SEND;
        a->sent++;
        if (a->sent >= LADE_ACD_ANNOUNCE_NUM) {
            set_state(a, LADE_ACD_DEFENDING);
        } else {
            a->timer_ms = now_ms + LADE_ACD_ANNOUNCE_INTERVAL_MS;
        }
        break;
    }
    act->next_ms = a->timer_ms;
}

void lade_acd_input(struct lade_acd *a, const struct lade_arp *m, uint64_t now_ms,
                    struct lade_acd_actions *act)
{
    act_clear(act);
    act->next_ms = a->timer_ms;
    if (a->state == LADE_ACD_STOPPED || memcmp(m->sha, a->cfg.mac, 6) == 0)
        return; /* our own packet (looped back or seen through a bridge) */
    bool claims = m->spa == a->addr;
    if (a->state == LADE_ACD_PROBING) {
        /* §2.1.1: anyone using it, or probing for it at the same time. */
        bool probe = m->op == LADE_ARP_REQUEST && m->spa == 0 && m->tpa == a->addr;
        if (!claims && !probe)
            return;
    } else if (!claims) {
        return;
    } else if (!a->defended || now_ms - a->defend_ms >= LADE_ACD_DEFEND_INTERVAL_MS) {
        /* §2.4 (b): defend once per DEFEND_INTERVAL with one announcement. */
        a->defended = true;
        a->defend_ms = now_ms;
        LOG_I(MOD, "%s: defending %u.%u.%u.%u", name_of(a), (unsigned)(a->addr >> 24),
              (unsigned)(a->addr >> 16) & 0xffu, (unsigned)(a->addr >> 8) & 0xffu,
              (unsigned)a->addr & 0xffu);
        lade_arp_announce(a->cfg.mac, a->addr, &act->arp);
        act->flags |= LADE_ACD_ACT_SEND;
        return;
    }
    a->conflict_mac_lo = ((uint32_t)m->sha[2] << 24) | ((uint32_t)m->sha[3] << 16) |
                         ((uint32_t)m->sha[4] << 8) | m->sha[5];
    LOG_W(MOD, "%s: %u.%u.%u.%u is used by %02x:%02x:%02x:%02x:%02x:%02x (%s)", name_of(a),
          (unsigned)(a->addr >> 24), (unsigned)(a->addr >> 16) & 0xffu,
          (unsigned)(a->addr >> 8) & 0xffu, (unsigned)a->addr & 0xffu, m->sha[0], m->sha[1],
          m->sha[2], m->sha[3], m->sha[4], m->sha[5], lade_acd_state_name(a->state));
    set_state(a, LADE_ACD_STOPPED);
    act->flags |= LADE_ACD_ACT_CONFLICT;
    act->next_ms = NEVER;
}

enum lade_acd_state lade_acd_state(const struct lade_acd *a)
{
    return a->state;
}
