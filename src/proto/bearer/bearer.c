/* The bearer manager (include/lade/bearer.h, docs/bearer.md). Pure: time is an argument. */
#include "lade/bearer.h"

#include <stdio.h>
#include <string.h>

#include "lade/log.h"

#define MOD          "bearer"
#define WIFI_HYST_DB 3 /* a WiFi that is not in use needs this much above the minimum (R13) */
#define STEP_MAX_MS  60000

static const char *const kind_names[LADE_BEARER_COUNT] = {"wired", "wifi", "lte"};

const char *lade_bearer_name(int kind)
{
    return kind >= 0 && kind < LADE_BEARER_COUNT ? kind_names[kind] : "none";
}

const char *lade_bearer_why_name(enum lade_bearer_why w)
{
    switch (w) {
    case LADE_BEARER_OK:
        return "ok";
    case LADE_BEARER_ABSENT:
        return "absent";
    case LADE_BEARER_LINK_DOWN:
        return "link down";
    case LADE_BEARER_WEAK:
        return "weak signal";
    case LADE_BEARER_BAD_CHANNEL:
        return "not a 2.4 GHz channel 1-11";
    case LADE_BEARER_PENALTY:
        return "failed recently";
    case LADE_BEARER_CLOUD_FAILED:
        return "cloud unreachable over it";
    }
    return "?";
}

void lade_bearer_config_default(struct lade_bearer_config *c)
{
    memset(c, 0, sizeof *c);
    c->order[0] = LADE_BEARER_WIRED;
    c->order[1] = LADE_BEARER_WIFI;
    c->order[2] = LADE_BEARER_LTE;
    c->wifi_min_dbm = -75;
    c->lte_min_dbm = -120;
    c->down_hold_ms = 10000;
    c->upgrade_hold_ms = 60000;
    c->min_dwell_ms = 300000;
    c->penalty_ms = 30000;
    c->penalty_max_ms = 1800000;
    c->flap_window_ms = 600000;
    c->wd_reconnect_ms = 120000;
    c->wd_reset_ms = 300000;
    c->wd_restart_ms = 1800000;
}

static bool config_ok(const struct lade_bearer_config *c)
{
    bool seen[LADE_BEARER_COUNT] = {false, false, false};
    bool ended = false;
    for (int i = 0; i < LADE_BEARER_COUNT; i++) {
        int k = c->order[i];
        if (k == LADE_BEARER_NONE) {
            ended = true;
            continue;
        }
        if (ended || k < 0 || k >= LADE_BEARER_COUNT || seen[k])
            return false;
        seen[k] = true;
    }
    const uint32_t hour = 3600000;
    return c->down_hold_ms <= hour && c->upgrade_hold_ms <= hour && c->min_dwell_ms <= 24 * hour &&
           c->penalty_ms >= 1000 && c->penalty_ms <= c->penalty_max_ms &&
           c->penalty_max_ms <= 24 * hour && c->flap_window_ms <= 24 * hour &&
           c->wd_reconnect_ms >= 1000 && c->wd_reconnect_ms < c->wd_reset_ms &&
           (c->wd_restart_ms == 0 || c->wd_reset_ms < c->wd_restart_ms);
}

static int rank(const struct lade_bearer *b, int kind)
{
    for (int i = 0; i < LADE_BEARER_COUNT; i++)
        if (b->cfg.order[i] == kind)
            return i;
    return LADE_BEARER_COUNT;
}

lade_err lade_bearer_init(struct lade_bearer *b, const struct lade_bearer_config *cfg,
                          uint64_t now_ms)
{
    if (!b || !cfg)
        return LADE_ERR_INVAL;
    if (!config_ok(cfg))
        return LADE_ERR_CONFIG;
    memset(b, 0, sizeof *b);
    b->cfg = *cfg;
    b->active = LADE_BEARER_NONE;
    b->cloud_down_since_ms = now_ms;
    for (int k = 0; k < LADE_BEARER_COUNT; k++) {
        b->slot[k].link.signal = LADE_BEARER_SIGNAL_UNKNOWN;
        b->slot[k].penalty_ms = cfg->penalty_ms;
        b->slot[k].link_since_ms = now_ms;
    }
    snprintf(b->last_reason, sizeof b->last_reason, "starting");
    return LADE_OK;
}

/* The link-level verdict: present, up, signal and channel (what the active bearer is held to). */
static enum lade_bearer_why link_ok(const struct lade_bearer *b, int k)
{
    const struct lade_bearer_slot *s = &b->slot[k];
    if (!b->cfg.present[k] || rank(b, k) == LADE_BEARER_COUNT)
        return LADE_BEARER_ABSENT;
    if (!s->link.up)
        return LADE_BEARER_LINK_DOWN;
    if (k == LADE_BEARER_WIFI) {
        /* R1: 2.4 GHz, channels 1-11 only. */
        if (s->link.freq_mhz && (s->link.freq_mhz < 2400 || s->link.freq_mhz > 2500))
            return LADE_BEARER_BAD_CHANNEL;
        if (s->link.channel && (s->link.channel < 1 || s->link.channel > 11))
            return LADE_BEARER_BAD_CHANNEL;
        if (s->link.signal != LADE_BEARER_SIGNAL_UNKNOWN) {
            /* Hysteresis: a WiFi not in use must clear the minimum by a margin. */
            int min = b->cfg.wifi_min_dbm + (b->active == k ? 0 : WIFI_HYST_DB);
            if (s->link.signal < min)
                return LADE_BEARER_WEAK;
        }
    }
    if (k == LADE_BEARER_LTE && s->link.signal != LADE_BEARER_SIGNAL_UNKNOWN &&
        s->link.signal < b->cfg.lte_min_dbm)
        return LADE_BEARER_WEAK;
    return LADE_BEARER_OK;
}

enum lade_bearer_why lade_bearer_usable(const struct lade_bearer *b, int kind, uint64_t now_ms)
{
    if (!b || kind < 0 || kind >= LADE_BEARER_COUNT)
        return LADE_BEARER_ABSENT;
    enum lade_bearer_why w = link_ok(b, kind);
    if (w != LADE_BEARER_OK || kind == b->active)
        return w;
    if (b->slot[kind].cloud_failed)
        return LADE_BEARER_CLOUD_FAILED;
    if (now_ms < b->slot[kind].penalty_until_ms)
        return LADE_BEARER_PENALTY;
    return LADE_BEARER_OK;
}

lade_err lade_bearer_link(struct lade_bearer *b, int kind, const struct lade_bearer_link_state *ls,
                          uint64_t now_ms)
{
    if (!b || !ls || kind < 0 || kind >= LADE_BEARER_COUNT)
        return LADE_ERR_INVAL;
    struct lade_bearer_slot *s = &b->slot[kind];
    if (ls->up != s->link.up) {
        s->link_since_ms = now_ms;
        if (ls->up)
            s->cloud_failed = false; /* a new link: the cloud may well be reachable over it */
        LOG_I(MOD, "%s: link %s (signal %d dBm)", lade_bearer_name(kind), ls->up ? "up" : "down",
              (int)ls->signal);
    }
    s->link = *ls;
    return LADE_OK;
}

void lade_bearer_cloud(struct lade_bearer *b, bool up, uint64_t now_ms)
{
    if (!b || up == b->cloud_up)
        return;
    b->cloud_up = up;
    if (up) {
        b->wd_stage = 0;
        b->restart_asked = false;
    } else {
        b->cloud_down_since_ms = now_ms;
    }
}

static void act(struct lade_bearer_out *out, enum lade_bearer_action_kind k, int bearer)
{
    if (out->n_actions < LADE_BEARER_ACTIONS_MAX)
        out->actions[out->n_actions++] = (struct lade_bearer_action){k, bearer};
}

/* The one place the active bearer changes (DESIGN.md: one set_state per machine). */
static void set_active(struct lade_bearer *b, int to, uint64_t now, const char *why,
                       struct lade_bearer_out *out)
{
    if (to == b->active)
        return;
    LOG_I(MOD, "%s -> %s (%s)", lade_bearer_name(b->active), lade_bearer_name(to), why);
    snprintf(b->last_reason, sizeof b->last_reason, "%s -> %s: %s", lade_bearer_name(b->active),
             lade_bearer_name(to), why);
    if (b->active != LADE_BEARER_NONE)
        act(out, LADE_BEARER_ACT_TAKE_DOWN, b->active);
    b->active = to;
    b->active_since_ms = now;
    b->unusable_since_ms = 0;
    b->wd_stage = 0;
    b->switches++;
    if (to != LADE_BEARER_NONE) {
        b->slot[to].chosen_ms = now;
        act(out, LADE_BEARER_ACT_BRING_UP, to);
    }
}

/* The active bearer failed: it gets a penalty, doubled if it failed soon after being chosen. */
static void fail_active(struct lade_bearer *b, uint64_t now, const char *why,
                        struct lade_bearer_out *out)
{
    struct lade_bearer_slot *s = &b->slot[b->active];
    s->failures++;
    if (s->chosen_ms && now - s->chosen_ms < b->cfg.flap_window_ms) {
        s->penalty_until_ms = now + s->penalty_ms;
        uint64_t next = (uint64_t)s->penalty_ms * 2;
        s->penalty_ms = next > b->cfg.penalty_max_ms ? b->cfg.penalty_max_ms : (uint32_t)next;
    } else {
        s->penalty_ms = b->cfg.penalty_ms;
        s->penalty_until_ms = now + s->penalty_ms;
    }
    set_active(b, LADE_BEARER_NONE, now, why, out);
}

static int best_usable(const struct lade_bearer *b, uint64_t now, int better_than_rank)
{
    for (int i = 0; i < LADE_BEARER_COUNT && i < better_than_rank; i++) {
        int k = b->cfg.order[i];
        if (k == LADE_BEARER_NONE)
            break;
        if (lade_bearer_usable(b, k, now) == LADE_BEARER_OK)
            return k;
    }
    return LADE_BEARER_NONE;
}

static void next_at(uint64_t *next, uint64_t at, uint64_t now)
{
    if (at > now && at < *next)
        *next = at;
}

void lade_bearer_step(struct lade_bearer *b, uint64_t now, struct lade_bearer_out *out)
{
    memset(out, 0, sizeof *out);
    uint64_t next = now + STEP_MAX_MS;
    /* When each bearer became usable (for the upgrade hold). */
    for (int k = 0; k < LADE_BEARER_COUNT; k++) {
        struct lade_bearer_slot *s = &b->slot[k];
        bool u = lade_bearer_usable(b, k, now) == LADE_BEARER_OK;
        if (u && !s->usable_since_ms)
            s->usable_since_ms = now;
        else if (!u)
            s->usable_since_ms = 0;
        if (s->penalty_until_ms > now)
            next_at(&next, s->penalty_until_ms, now);
    }
    /* A bearer that has carried the cloud for a whole flap window is stable again: its next
     * failure starts from the first penalty. (Not at once when the cloud comes up: a PLC
     * network that works for a minute and drops again must keep its growing penalty, R13.) */
    if (b->active != LADE_BEARER_NONE && b->cloud_up &&
        now - b->slot[b->active].chosen_ms >= b->cfg.flap_window_ms)
        b->slot[b->active].penalty_ms = b->cfg.penalty_ms;
    /* The active bearer: left when its link has been bad for down_hold_ms. */
    if (b->active != LADE_BEARER_NONE) {
        enum lade_bearer_why w = link_ok(b, b->active);
        if (w != LADE_BEARER_OK) {
            if (!b->unusable_since_ms)
                b->unusable_since_ms = now;
            if (now - b->unusable_since_ms >= b->cfg.down_hold_ms)
                fail_active(b, now, lade_bearer_why_name(w), out);
            else
                next_at(&next, b->unusable_since_ms + b->cfg.down_hold_ms, now);
        } else {
            b->unusable_since_ms = 0;
        }
    }
    /* Watchdog: the cloud unreachable over a usable active bearer. */
    if (b->active != LADE_BEARER_NONE && !b->cloud_up) {
        uint64_t since = b->cloud_down_since_ms > b->active_since_ms ? b->cloud_down_since_ms
                                                                     : b->active_since_ms;
        uint64_t down = now - since;
        if (b->wd_stage == 0 && down >= b->cfg.wd_reconnect_ms) {
            b->wd_stage = 1;
            act(out, LADE_BEARER_ACT_RECONNECT, LADE_BEARER_NONE);
            LOG_W(MOD, "cloud unreachable over %s for %llu s: reconnecting",
                  lade_bearer_name(b->active), (unsigned long long)(down / 1000));
        }
        if (b->wd_stage <= 1 && down >= b->cfg.wd_reset_ms) {
            int was = b->active;
            b->slot[was].cloud_failed = true;
            act(out, LADE_BEARER_ACT_RESET, was);
            fail_active(b, now, "cloud unreachable over it", out);
        } else if (b->active != LADE_BEARER_NONE) {
            next_at(&next, since + (b->wd_stage == 0 ? b->cfg.wd_reconnect_ms : b->cfg.wd_reset_ms),
                    now);
        }
    }
    /* Restart: the cloud unreachable this long whatever the bearer. */
    if (!b->cloud_up && b->cfg.wd_restart_ms) {
        uint64_t down = now - b->cloud_down_since_ms;
        if (down >= b->cfg.wd_restart_ms) {
            if (!b->restart_asked) {
                b->restart_asked = true;
                act(out, LADE_BEARER_ACT_RESTART, LADE_BEARER_NONE);
                LOG_W(MOD, "cloud unreachable for %llu s on every bearer: restart requested",
                      (unsigned long long)(down / 1000));
            }
        } else {
            next_at(&next, b->cloud_down_since_ms + b->cfg.wd_restart_ms, now);
        }
    }
    /* Every bearer failed the cloud: give them all another chance rather than none. */
    if (b->active == LADE_BEARER_NONE &&
        best_usable(b, now, LADE_BEARER_COUNT) == LADE_BEARER_NONE) {
        bool any_failed = false;
        for (int k = 0; k < LADE_BEARER_COUNT; k++)
            any_failed |= b->slot[k].cloud_failed;
        if (any_failed)
            for (int k = 0; k < LADE_BEARER_COUNT; k++)
                b->slot[k].cloud_failed = false;
    }
    /* Choose: none active → the best usable; else an upgrade after its holds. */
    if (b->active == LADE_BEARER_NONE) {
        int k = best_usable(b, now, LADE_BEARER_COUNT);
        if (k != LADE_BEARER_NONE)
            set_active(b, k, now, "best usable bearer", out);
    } else {
        int k = best_usable(b, now, rank(b, b->active));
        if (k != LADE_BEARER_NONE) {
            uint64_t ready = b->slot[k].usable_since_ms + b->cfg.upgrade_hold_ms;
            uint64_t dwell = b->active_since_ms + b->cfg.min_dwell_ms;
            if (now >= ready && now >= dwell)
                set_active(b, k, now, "preferred bearer usable again", out);
            else
                next_at(&next, ready > dwell ? ready : dwell, now);
        }
    }
    out->active = b->active;
    out->next_step_ms = next > now ? next : now + 1;
}
