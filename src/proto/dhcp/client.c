/* DHCPv4 client state machine (RFC 2131 §4.4). Pure: time comes in as now_ms, randomness from
 * cfg.random, and everything the caller must do comes out as struct lade_dhcp_actions.
 * docs/dhcp.md has the diagram and the reasons for the constants. */
#include <stdio.h>
#include <string.h>

#include "lade/dhcp.h"
#include "lade/log.h"

#define MOD   "dhcp"
#define NEVER UINT64_MAX

const char *lade_dhcp_state_name(enum lade_dhcp_state st)
{
    switch (st) {
    case LADE_DHCP_STOPPED:
        return "STOPPED";
    case LADE_DHCP_LINK_DOWN:
        return "LINK_DOWN";
    case LADE_DHCP_INIT:
        return "INIT";
    case LADE_DHCP_SELECTING:
        return "SELECTING";
    case LADE_DHCP_REQUESTING:
        return "REQUESTING";
    case LADE_DHCP_PROBING:
        return "PROBING";
    case LADE_DHCP_BOUND:
        return "BOUND";
    case LADE_DHCP_RENEWING:
        return "RENEWING";
    case LADE_DHCP_REBINDING:
        return "REBINDING";
    case LADE_DHCP_REBOOTING:
        return "REBOOTING";
    }
    return "?";
}

const char *lade_addr_source_name(enum lade_addr_source s)
{
    switch (s) {
    case LADE_ADDR_NONE:
        return "none";
    case LADE_ADDR_DHCP:
        return "dhcp";
    case LADE_ADDR_LINK_LOCAL:
        return "link-local";
    }
    return "?";
}

static const char *ip_str(uint32_t a, char buf[16])
{
    snprintf(buf, 16, "%u.%u.%u.%u", (unsigned)(a >> 24), (unsigned)(a >> 16) & 0xffu,
             (unsigned)(a >> 8) & 0xffu, (unsigned)a & 0xffu);
    return buf;
}

static const char *name_of(const struct lade_dhcp *c)
{
    return c->cfg.name ? c->cfg.name : "dhcp";
}

/* The one place the state changes (DESIGN convention 3). */
static void set_state(struct lade_dhcp *c, enum lade_dhcp_state to, uint64_t now_ms)
{
    if (c->state != to)
        LOG_I(MOD, "%s: %s → %s", name_of(c), lade_dhcp_state_name(c->state),
              lade_dhcp_state_name(to));
    c->state = to;
    c->phase_start_ms = now_ms;
    c->tries = 0;
    c->timer_ms = NEVER;
}

static void note_error(struct lade_dhcp *c, lade_err err, const char *event, uint64_t now_ms)
{
    c->diag.last_error = err;
    c->diag.last_event = event;
    c->diag.last_error_ms = now_ms;
    LOG_W(MOD, "%s: %s (%s)", name_of(c), event, lade_strerror(err));
}

static uint32_t rnd(struct lade_dhcp *c)
{
    return c->cfg.random(c->cfg.random_ud);
}

/* Uniform in [0, span_ms]. */
static uint64_t rnd_upto(struct lade_dhcp *c, uint32_t span_ms)
{
    return rnd(c) % ((uint64_t)span_ms + 1);
}

/* Retransmission interval after the n-th message (n >= 1): 4, 8, 16, 32, 64, 64 ... s, each
 * ± 1 s (RFC 2131 §4.1). */
static uint64_t retrans_ms(struct lade_dhcp *c, unsigned n)
{
    uint64_t base = LADE_DHCP_RETRANS_FIRST_MS;
    for (unsigned i = 1; i < n && base < LADE_DHCP_RETRANS_MAX_MS; i++)
        base *= 2;
    if (base > LADE_DHCP_RETRANS_MAX_MS)
        base = LADE_DHCP_RETRANS_MAX_MS;
    return base - LADE_DHCP_RETRANS_JITTER_MS + rnd_upto(c, 2 * LADE_DHCP_RETRANS_JITTER_MS);
}

static uint64_t min64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static void act_clear(struct lade_dhcp_actions *act)
{
    memset(act, 0, sizeof *act);
    act->next_ms = NEVER;
}

/* Link-local and ACD are wanted or not; the START/STOP actions are their edges. */
static void finish(struct lade_dhcp *c, bool ll_want, bool acd_want, struct lade_dhcp_actions *act)
{
    if (c->cfg.no_link_local)
        ll_want = false;
    if (ll_want && !c->ll_on)
        act->flags |= LADE_DHCP_ACT_LL_START;
    if (!ll_want && c->ll_on)
        act->flags |= LADE_DHCP_ACT_LL_STOP;
    c->ll_on = ll_want;
    if (!acd_want && c->acd_on)
        act->flags |= LADE_DHCP_ACT_ACD_STOP;
    c->acd_on = acd_want;
    uint64_t next = c->timer_ms;
    if (c->have_lease)
        next = min64(next, c->lease.expiry_ms);
    act->next_ms = next;
}

static uint16_t secs_since(uint64_t start_ms, uint64_t now_ms)
{
    uint64_t s = now_ms > start_ms ? (now_ms - start_ms) / 1000 : 0;
    return s > 0xffff ? 0xffff : (uint16_t)s;
}

/* Builds and queues one message. Encoding cannot fail for what the machine builds (init checked
 * the client id and hostname); if it ever did, nothing is sent and the error is recorded. */
static void send_msg(struct lade_dhcp *c, enum lade_dhcp_kind kind, uint32_t addr, uint32_t server,
                     uint32_t src, uint32_t dst, uint64_t now_ms, struct lade_dhcp_actions *act)
{
    struct lade_dhcp_msg m = {
        .kind = kind,
        .xid = c->xid,
        .secs = secs_since(c->exch_start_ms, now_ms),
        .broadcast = c->cfg.broadcast_flag,
        .addr = addr,
        .server_id = server,
        .client_id = c->client_id,
        .client_id_len = c->client_id_len,
        .hostname = c->hostname_len ? c->hostname : NULL,
        .hostname_len = c->hostname_len,
        .max_msg_size = c->cfg.max_msg_size,
    };
    if (kind == LADE_DHCP_KIND_DECLINE) {
        m.message = "address in use";
        m.message_len = strlen(m.message);
    }
    memcpy(m.chaddr, c->cfg.mac, 6);
    size_t n;
    lade_err e = lade_dhcp_encode(&m, c->tx, sizeof c->tx, &n);
    if (e != LADE_OK) {
        note_error(c, e, "cannot encode a message", now_ms);
        return;
    }
    act->flags |= LADE_DHCP_ACT_SEND;
    act->pkt = c->tx;
    act->pkt_len = n;
    act->src = src;
    act->dst = dst;
    act->type = c->tx[240 + 2];
    c->tries++;
    switch (kind) {
    case LADE_DHCP_KIND_DISCOVER:
        c->diag.discovers++;
        break;
    case LADE_DHCP_KIND_DECLINE:
        c->diag.declines++;
        break;
    case LADE_DHCP_KIND_RELEASE:
        break;
    default:
        c->diag.requests++;
        break;
    }
    LOG_D(MOD, "%s: %s xid %08x (%u)", name_of(c), lade_dhcp_type_name(act->type), c->xid,
          c->tries);
}

static void drop_lease(struct lade_dhcp *c, struct lade_dhcp_actions *act)
{
    if (!c->have_lease)
        return;
    char a[16];
    LOG_I(MOD, "%s: dropping %s/%u", name_of(c), ip_str(c->lease.addr, a), c->lease.prefix_len);
    act->flags |= LADE_DHCP_ACT_DROP;
    act->drop_addr = c->lease.addr;
    act->drop_prefix_len = c->lease.prefix_len;
    c->have_lease = false;
}

/* INIT: the first DISCOVER goes out after delay_ms. */
static void enter_init(struct lade_dhcp *c, uint64_t delay_ms, uint64_t now_ms)
{
    set_state(c, LADE_DHCP_INIT, now_ms);
    c->timer_ms = now_ms + delay_ms;
}

static uint64_t nak_delay_ms(struct lade_dhcp *c)
{
    /* A server that NAKs every REQUEST must not make us loop at full speed. */
    uint64_t d = rnd_upto(c, LADE_DHCP_START_DELAY_MS);
    if (c->naks_run > 1) {
        uint64_t extra = 1000;
        for (unsigned i = 1; i < c->naks_run && extra < LADE_DHCP_NAK_DELAY_MAX_MS; i++)
            extra *= 2;
        d += min64(extra, LADE_DHCP_NAK_DELAY_MAX_MS);
    }
    return d;
}

static void send_discover(struct lade_dhcp *c, uint64_t now_ms, struct lade_dhcp_actions *act)
{
    send_msg(c, LADE_DHCP_KIND_DISCOVER, c->reboot_addr, 0, 0, LADE_IPV4_BROADCAST, now_ms, act);
    c->discovers_run++;
    c->timer_ms = now_ms + retrans_ms(c, c->tries);
}

static bool ll_due(const struct lade_dhcp *c)
{
    return c->cfg.ll_after_discovers != 0 && c->discovers_run >= c->cfg.ll_after_discovers &&
           !c->have_lease;
}

static void enter_rebooting(struct lade_dhcp *c, bool held, uint64_t now_ms,
                            struct lade_dhcp_actions *act)
{
    set_state(c, LADE_DHCP_REBOOTING, now_ms);
    c->reboot_held = held;
    c->xid = rnd(c);
    c->exch_start_ms = c->req_first_ms = now_ms;
    uint32_t addr = held ? c->lease.addr : c->reboot_addr;
    send_msg(c, LADE_DHCP_KIND_REQUEST_INIT_REBOOT, addr, 0, 0, LADE_IPV4_BROADCAST, now_ms, act);
    c->timer_ms = min64(now_ms + retrans_ms(c, c->tries), now_ms + LADE_DHCP_REBOOT_TIMEOUT_MS);
}

/* Lease times from a reply (RFC 2131 §4.4.5): T1 0.5, T2 0.875 of the lease unless the server
 * gave consistent T1 < T2 < lease; all measured from when the first REQUEST was sent. */
static void make_lease(struct lade_dhcp *c, const struct lade_dhcp_reply *r,
                       struct lade_dhcp_lease *l)
{
    memset(l, 0, sizeof *l);
    l->addr = r->yiaddr;
    if (r->has_subnet) {
        l->prefix_len = (uint8_t)lade_ipv4_prefix_len(r->subnet_mask);
    } else {
        uint8_t top = (uint8_t)(r->yiaddr >> 24); /* classful default, as most clients do */
        l->prefix_len = top < 128 ? 8 : top < 192 ? 16 : 24;
    }
    l->server_id = r->has_server_id ? r->server_id : c->offer_server;
    memcpy(l->routers, r->routers, sizeof l->routers);
    memcpy(l->dns, r->dns, sizeof l->dns);
    memcpy(l->ntp, r->ntp, sizeof l->ntp);
    l->n_routers = r->n_routers;
    l->n_dns = r->n_dns;
    l->n_ntp = r->n_ntp;
    l->start_ms = c->req_first_ms;
    if (r->lease_s == LADE_DHCP_INFINITE) {
        l->lease_s = l->t1_s = l->t2_s = LADE_DHCP_INFINITE;
        l->t1_ms = l->t2_ms = l->expiry_ms = NEVER;
        return;
    }
    uint32_t lease_s = r->lease_s < LADE_DHCP_MIN_LEASE_S ? LADE_DHCP_MIN_LEASE_S : r->lease_s;
    uint64_t lease_ms = (uint64_t)lease_s * 1000;
    uint64_t t2 = (r->has_t2 && r->t2_s < lease_s) ? (uint64_t)r->t2_s * 1000 : lease_ms * 7 / 8;
    uint64_t t1 =
        (r->has_t1 && (uint64_t)r->t1_s * 1000 < t2) ? (uint64_t)r->t1_s * 1000 : lease_ms / 2;
    if (t1 >= t2)
        t1 = t2 * 4 / 7; /* the default ratio 0.5 : 0.875 below the server's T2 */
    l->lease_s = lease_s;
    l->t1_s = (uint32_t)(t1 / 1000);
    l->t2_s = (uint32_t)(t2 / 1000);
    l->t1_ms = l->start_ms + t1;
    l->t2_ms = l->start_ms + t2;
    l->expiry_ms = l->start_ms + lease_ms;
}

static void bind(struct lade_dhcp *c, const struct lade_dhcp_lease *l, uint64_t now_ms,
                 struct lade_dhcp_actions *act)
{
    char a[16], s[16];
    bool renewed = c->have_lease;
    c->lease = *l;
    c->have_lease = true;
    c->reboot_addr = l->addr;
    c->discovers_run = 0;
    c->naks_run = 0;
    act->flags |= LADE_DHCP_ACT_CONFIGURE;
    act->lease = &c->lease;
    set_state(c, LADE_DHCP_BOUND, now_ms);
    c->timer_ms = l->t1_ms;
    LOG_I(MOD, "%s: %s %s/%u from %s, lease %u s", name_of(c), renewed ? "renewed" : "bound",
          ip_str(l->addr, a), l->prefix_len, ip_str(l->server_id, s), l->lease_s);
}

/* Renewing/rebinding retries (RFC 2131 §4.4.5): half the time left to `until`, at least 60 s,
 * never past `until`. */
static uint64_t half_left(uint64_t now_ms, uint64_t until_ms)
{
    uint64_t left = until_ms > now_ms ? until_ms - now_ms : 0;
    uint64_t wait = left / 2 > LADE_DHCP_RENEW_MIN_MS ? left / 2 : LADE_DHCP_RENEW_MIN_MS;
    return min64(now_ms + wait, until_ms);
}

static void send_renew(struct lade_dhcp *c, uint64_t now_ms, struct lade_dhcp_actions *act)
{
    if (c->state == LADE_DHCP_RENEWING) {
        send_msg(c, LADE_DHCP_KIND_REQUEST_RENEWING, c->lease.addr, 0, c->lease.addr,
                 c->lease.server_id, now_ms, act);
        c->timer_ms = half_left(now_ms, c->lease.t2_ms);
    } else {
        send_msg(c, LADE_DHCP_KIND_REQUEST_REBINDING, c->lease.addr, 0, c->lease.addr,
                 LADE_IPV4_BROADCAST, now_ms, act);
        c->timer_ms = half_left(now_ms, c->lease.expiry_ms);
    }
}

static void enter_renewal(struct lade_dhcp *c, enum lade_dhcp_state st, uint64_t now_ms,
                          struct lade_dhcp_actions *act)
{
    set_state(c, st, now_ms);
    c->xid = rnd(c);
    c->exch_start_ms = c->req_first_ms = now_ms;
    send_renew(c, now_ms, act);
}

/* A held lease is used again (REBOOTING timed out after a link flap, RFC 2131 §3.2 step 4):
 * pick the state its times say. */
static void resume_lease(struct lade_dhcp *c, uint64_t now_ms, struct lade_dhcp_actions *act)
{
    if (now_ms >= c->lease.t2_ms) {
        enter_renewal(c, LADE_DHCP_REBINDING, now_ms, act);
    } else if (now_ms >= c->lease.t1_ms) {
        enter_renewal(c, LADE_DHCP_RENEWING, now_ms, act);
    } else {
        set_state(c, LADE_DHCP_BOUND, now_ms);
        c->timer_ms = c->lease.t1_ms;
    }
}

static void want_defend(struct lade_dhcp *c, struct lade_dhcp_actions *act, bool *acd);

static void begin_init(struct lade_dhcp *c, uint64_t now_ms)
{
    enter_init(c, rnd_upto(c, LADE_DHCP_START_DELAY_MS), now_ms);
}

/* ---------------------------------------------------------------- entry points */

void lade_dhcp_cfg_default(struct lade_dhcp_cfg *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->max_msg_size = 1500;
    cfg->probe = true;
    cfg->ll_after_discovers = LADE_DHCP_LL_AFTER_DISCOVERS;
}

lade_err lade_dhcp_init(struct lade_dhcp *c, const struct lade_dhcp_cfg *cfg)
{
    if (!c || !cfg || !cfg->random)
        return LADE_ERR_CONFIG;
    memset(c, 0, sizeof *c);
    if (cfg->client_id) {
        if (cfg->client_id_len < 2 || cfg->client_id_len > LADE_DHCP_CLIENT_ID_MAX)
            return LADE_ERR_CONFIG;
        memcpy(c->client_id, cfg->client_id, cfg->client_id_len);
        c->client_id_len = cfg->client_id_len;
    } else {
        c->client_id[0] = 1; /* Ethernet (RFC 2132 §9.14) */
        memcpy(c->client_id + 1, cfg->mac, 6);
        c->client_id_len = 7;
    }
    if (cfg->hostname) {
        size_t n = strlen(cfg->hostname);
        if (n < 1 || n > LADE_DHCP_HOSTNAME_MAX)
            return LADE_ERR_CONFIG;
        for (size_t i = 0; i < n; i++)
            if (cfg->hostname[i] <= ' ' || cfg->hostname[i] > '~')
                return LADE_ERR_CONFIG;
        memcpy(c->hostname, cfg->hostname, n + 1);
        c->hostname_len = n;
    }
    c->cfg = *cfg;
    c->cfg.client_id = NULL; /* our copies are used from now on */
    c->cfg.hostname = NULL;
    if (c->cfg.max_msg_size == 0)
        c->cfg.max_msg_size = 1500;
    if (c->cfg.max_msg_size < LADE_DHCP_MAX_MSG_MIN)
        return LADE_ERR_CONFIG;
    c->state = LADE_DHCP_STOPPED;
    c->timer_ms = NEVER;
    c->diag.last_event = "";
    return LADE_OK;
}

lade_err lade_dhcp_start(struct lade_dhcp *c, uint32_t reboot_addr, uint64_t now_ms,
                         struct lade_dhcp_actions *act)
{
    act_clear(act);
    if (c->state != LADE_DHCP_STOPPED && c->state != LADE_DHCP_LINK_DOWN) {
        act->next_ms = c->timer_ms;
        return LADE_ERR_STATE;
    }
    if (c->state == LADE_DHCP_LINK_DOWN)
        return lade_dhcp_link_up(c, now_ms, act);
    c->discovers_run = 0;
    c->naks_run = 0;
    c->reboot_addr = lade_ipv4_unicast(reboot_addr) ? reboot_addr : 0;
    if (c->reboot_addr)
        enter_rebooting(c, false, now_ms, act);
    else
        begin_init(c, now_ms);
    finish(c, false, false, act);
    return LADE_OK;
}

lade_err lade_dhcp_link_up(struct lade_dhcp *c, uint64_t now_ms, struct lade_dhcp_actions *act)
{
    act_clear(act);
    if (c->state != LADE_DHCP_LINK_DOWN) {
        finish(c, c->ll_on, c->acd_on, act);
        return LADE_OK;
    }
    c->discovers_run = 0;
    c->naks_run = 0;
    if (c->have_lease)
        enter_rebooting(c, true, now_ms, act);
    else
        begin_init(c, now_ms);
    finish(c, false, false, act);
    return LADE_OK;
}

void lade_dhcp_link_down(struct lade_dhcp *c, uint64_t now_ms, struct lade_dhcp_actions *act)
{
    act_clear(act);
    if (c->state == LADE_DHCP_STOPPED || c->state == LADE_DHCP_LINK_DOWN) {
        finish(c, c->ll_on, c->acd_on, act);
        return;
    }
    set_state(c, LADE_DHCP_LINK_DOWN, now_ms);
    finish(c, false, false, act);
}

void lade_dhcp_stop(struct lade_dhcp *c, bool release, uint64_t now_ms,
                    struct lade_dhcp_actions *act)
{
    act_clear(act);
    if (c->have_lease && release && c->state != LADE_DHCP_LINK_DOWN) {
        c->xid = rnd(c);
        c->exch_start_ms = now_ms;
        send_msg(c, LADE_DHCP_KIND_RELEASE, c->lease.addr, c->lease.server_id, c->lease.addr,
                 c->lease.server_id, now_ms, act);
    }
    drop_lease(c, act);
    set_state(c, LADE_DHCP_STOPPED, now_ms);
    finish(c, false, false, act);
}

/* Lease over (RFC 2131 §4.4.5): stop using the address; R4: link-local at once. */
static void expire(struct lade_dhcp *c, uint64_t now_ms, struct lade_dhcp_actions *act)
{
    c->diag.expiries++;
    note_error(c, LADE_ERR_EXPIRED, "lease expired", now_ms);
    drop_lease(c, act);
    if (c->state == LADE_DHCP_LINK_DOWN) {
        finish(c, false, false, act);
        return;
    }
    begin_init(c, now_ms);
    finish(c, true, false, act);
}

void lade_dhcp_tick(struct lade_dhcp *c, uint64_t now_ms, struct lade_dhcp_actions *act)
{
    act_clear(act);
    bool ll = c->ll_on, acd = c->acd_on;
    if (c->have_lease && now_ms >= c->lease.expiry_ms) {
        expire(c, now_ms, act);
        return;
    }
    if (now_ms < c->timer_ms) {
        finish(c, ll, acd, act);
        return;
    }
    switch (c->state) {
    case LADE_DHCP_STOPPED:
    case LADE_DHCP_LINK_DOWN:
        c->timer_ms = NEVER;
        break;
    case LADE_DHCP_INIT:
        set_state(c, LADE_DHCP_SELECTING, now_ms);
        c->xid = rnd(c);
        c->exch_start_ms = now_ms;
        send_discover(c, now_ms, act);
        ll = ll || ll_due(c);
        break;
    case LADE_DHCP_SELECTING:
        send_discover(c, now_ms, act); /* never give up (R11) */
        ll = ll || ll_due(c);
        break;
    case LADE_DHCP_REQUESTING:
        if (now_ms >= c->phase_start_ms + LADE_DHCP_REQUEST_TIMEOUT_MS) {
            note_error(c, LADE_ERR_TIMEOUT, "no ACK to REQUEST", now_ms);
            begin_init(c, now_ms);
            break;
        }
        send_msg(c, LADE_DHCP_KIND_REQUEST_SELECTING, c->offer_addr, c->offer_server, 0,
                 LADE_IPV4_BROADCAST, now_ms, act);
        c->timer_ms = min64(now_ms + retrans_ms(c, c->tries),
                            c->phase_start_ms + LADE_DHCP_REQUEST_TIMEOUT_MS);
        break;
    case LADE_DHCP_PROBING:
        note_error(c, LADE_ERR_TIMEOUT, "no ARP probe result", now_ms);
        acd = false;
        begin_init(c, now_ms);
        break;
    case LADE_DHCP_BOUND:
        if (now_ms >= c->lease.t2_ms)
            enter_renewal(c, LADE_DHCP_REBINDING, now_ms, act);
        else
            enter_renewal(c, LADE_DHCP_RENEWING, now_ms, act);
        break;
    case LADE_DHCP_RENEWING:
        if (now_ms >= c->lease.t2_ms)
            enter_renewal(c, LADE_DHCP_REBINDING, now_ms, act);
        else
            send_renew(c, now_ms, act);
        break;
    case LADE_DHCP_REBINDING:
        send_renew(c, now_ms, act);
        break;
    case LADE_DHCP_REBOOTING:
        if (now_ms >= c->phase_start_ms + LADE_DHCP_REBOOT_TIMEOUT_MS) {
            if (c->reboot_held) {
                resume_lease(c, now_ms, act);
                want_defend(c, act, &acd);
            } else {
                note_error(c, LADE_ERR_TIMEOUT, "no answer to INIT-REBOOT", now_ms);
                begin_init(c, now_ms);
            }
            break;
        }
        send_msg(c, LADE_DHCP_KIND_REQUEST_INIT_REBOOT,
                 c->reboot_held ? c->lease.addr : c->reboot_addr, 0, 0, LADE_IPV4_BROADCAST, now_ms,
                 act);
        c->timer_ms = min64(now_ms + retrans_ms(c, c->tries),
                            c->phase_start_ms + LADE_DHCP_REBOOT_TIMEOUT_MS);
        break;
    }
    finish(c, ll, acd, act);
}

static void on_nak(struct lade_dhcp *c, const struct lade_dhcp_reply *r, uint64_t now_ms,
                   struct lade_dhcp_actions *act)
{
    c->diag.naks++;
    c->naks_run++;
    if (r->message[0])
        LOG_W(MOD, "%s: NAK: %s", name_of(c), r->message);
    note_error(c, LADE_ERR_PROTO, "NAK from server", now_ms);
    drop_lease(c, act);
    c->reboot_addr = 0; /* the server said no: stop hinting at that address */
    enter_init(c, nak_delay_ms(c), now_ms);
}

/* A lease in use that was not probed in this run of the link (a held lease confirmed or resumed
 * after the link came back): announce and defend it (RFC 5227 §2.3, §2.4). */
static void want_defend(struct lade_dhcp *c, struct lade_dhcp_actions *act, bool *acd)
{
    if (!c->cfg.probe || !c->have_lease)
        return;
    if (!c->acd_on) {
        act->flags |= LADE_DHCP_ACT_ACD_DEFEND;
        act->acd_addr = c->lease.addr;
    }
    *acd = true;
}

/* An ACK for an address we asked for: check it (PROBING) or use it. */
static void on_ack(struct lade_dhcp *c, const struct lade_dhcp_reply *r, bool probe,
                   uint64_t now_ms, struct lade_dhcp_actions *act, bool *acd)
{
    c->diag.acks++;
    make_lease(c, r, &c->pending);
    if (probe && c->cfg.probe) {
        set_state(c, LADE_DHCP_PROBING, now_ms);
        c->timer_ms = now_ms + LADE_DHCP_PROBE_TIMEOUT_MS;
        act->flags |= LADE_DHCP_ACT_ACD_START;
        act->acd_addr = c->pending.addr;
        *acd = true;
        return;
    }
    bind(c, &c->pending, now_ms, act);
    want_defend(c, act, acd);
}

lade_err lade_dhcp_input(struct lade_dhcp *c, const uint8_t *buf, size_t len, uint64_t now_ms,
                         struct lade_dhcp_actions *act)
{
    act_clear(act);
    bool ll = c->ll_on, acd = c->acd_on;
    switch (c->state) {
    case LADE_DHCP_SELECTING:
    case LADE_DHCP_REQUESTING:
    case LADE_DHCP_RENEWING:
    case LADE_DHCP_REBINDING:
    case LADE_DHCP_REBOOTING:
        break;
    default:
        finish(c, ll, acd, act);
        return LADE_ERR_STATE;
    }
    struct lade_dhcp_reply r;
    lade_err e = lade_dhcp_decode_reply(buf, len, c->xid, c->cfg.mac, &r);
    if (e != LADE_OK) {
        if (e != LADE_ERR_NOT_FOUND) {
            c->diag.malformed++;
            c->diag.last_error = e;
            c->diag.last_event = "malformed reply";
            c->diag.last_error_ms = now_ms;
            LOG_D(MOD, "%s: malformed reply ignored: %s", name_of(c), lade_strerror(e));
        }
        finish(c, ll, acd, act);
        return e;
    }
    /* Only what fits the state; everything else is ignored (RFC 2131 §4.4, Figure 5). */
    uint32_t asked;
    switch (c->state) {
    case LADE_DHCP_SELECTING:
        if (r.type != LADE_DHCP_OFFER)
            break;
        if (!r.has_server_id || !r.has_lease) {
            note_error(c, LADE_ERR_PROTO, "OFFER without server id or lease time", now_ms);
            break;
        }
        c->diag.offers++;
        c->offer_addr = r.yiaddr;
        c->offer_server = r.server_id;
        set_state(c, LADE_DHCP_REQUESTING, now_ms);
        c->req_first_ms = now_ms; /* the xid of the DISCOVER is kept (RFC 2131 §4.4.1) */
        send_msg(c, LADE_DHCP_KIND_REQUEST_SELECTING, c->offer_addr, c->offer_server, 0,
                 LADE_IPV4_BROADCAST, now_ms, act);
        c->timer_ms = now_ms + retrans_ms(c, c->tries);
        break;
    case LADE_DHCP_REQUESTING:
        if (r.has_server_id && r.server_id != c->offer_server)
            break; /* another server's answer (to our REQUEST's broadcast) */
        if (r.type == LADE_DHCP_NAK) {
            on_nak(c, &r, now_ms, act);
        } else if (r.type == LADE_DHCP_ACK) {
            if (r.yiaddr != c->offer_addr || !r.has_lease) {
                note_error(c, LADE_ERR_PROTO, "ACK for another address or without lease time",
                           now_ms);
                break;
            }
            on_ack(c, &r, true, now_ms, act, &acd);
        }
        break;
    case LADE_DHCP_REBOOTING:
        asked = c->reboot_held ? c->lease.addr : c->reboot_addr;
        if (r.type == LADE_DHCP_NAK) {
            on_nak(c, &r, now_ms, act);
        } else if (r.type == LADE_DHCP_ACK) {
            if (r.yiaddr != asked || !r.has_lease || (!r.has_server_id && !c->reboot_held)) {
                note_error(c, LADE_ERR_PROTO, "ACK for another address or incomplete", now_ms);
                break;
            }
            c->offer_server = c->reboot_held ? c->lease.server_id : 0;
            on_ack(c, &r, !c->reboot_held, now_ms, act, &acd);
        }
        break;
    case LADE_DHCP_RENEWING:
    case LADE_DHCP_REBINDING:
        /* RENEWING talks to our server only; in REBINDING any server may answer. */
        if (c->state == LADE_DHCP_RENEWING && r.has_server_id && r.server_id != c->lease.server_id)
            break;
        if (r.type == LADE_DHCP_NAK) {
            acd = false;
            on_nak(c, &r, now_ms, act);
        } else if (r.type == LADE_DHCP_ACK) {
            if (r.yiaddr != c->lease.addr || !r.has_lease) {
                note_error(c, LADE_ERR_PROTO, "ACK for another address or without lease time",
                           now_ms);
                break;
            }
            c->offer_server = c->lease.server_id;
            on_ack(c, &r, false, now_ms, act, &acd);
        }
        break;
    default:
        break;
    }
    if (!c->have_lease && c->state != LADE_DHCP_PROBING)
        acd = false;
    if (c->have_lease)
        ll = false;
    finish(c, ll, acd, act);
    return LADE_OK;
}

lade_err lade_dhcp_probe_done(struct lade_dhcp *c, bool conflict, uint64_t now_ms,
                              struct lade_dhcp_actions *act)
{
    act_clear(act);
    if (c->state != LADE_DHCP_PROBING) {
        finish(c, c->ll_on, c->acd_on, act);
        return LADE_ERR_STATE;
    }
    if (conflict) {
        char a[16];
        LOG_W(MOD, "%s: %s is in use by another host", name_of(c), ip_str(c->pending.addr, a));
        c->xid = rnd(c);
        c->exch_start_ms = now_ms;
        send_msg(c, LADE_DHCP_KIND_DECLINE, c->pending.addr, c->pending.server_id, 0,
                 LADE_IPV4_BROADCAST, now_ms, act);
        note_error(c, LADE_ERR_EXISTS, "address conflict", now_ms);
        c->reboot_addr = 0;
        enter_init(c, LADE_DHCP_DECLINE_WAIT_MS, now_ms); /* RFC 2131 §3.1.5 */
        finish(c, c->ll_on, false, act);
        return LADE_OK;
    }
    bind(c, &c->pending, now_ms, act);
    finish(c, false, true, act);
    return LADE_OK;
}

lade_err lade_dhcp_conflict(struct lade_dhcp *c, uint64_t now_ms, struct lade_dhcp_actions *act)
{
    act_clear(act);
    if (!c->have_lease || c->state == LADE_DHCP_LINK_DOWN) {
        finish(c, c->ll_on, c->acd_on, act);
        return LADE_ERR_STATE;
    }
    c->xid = rnd(c);
    c->exch_start_ms = now_ms;
    send_msg(c, LADE_DHCP_KIND_DECLINE, c->lease.addr, c->lease.server_id, 0, LADE_IPV4_BROADCAST,
             now_ms, act);
    note_error(c, LADE_ERR_EXISTS, "address conflict after binding", now_ms);
    drop_lease(c, act);
    c->reboot_addr = 0;
    enter_init(c, LADE_DHCP_DECLINE_WAIT_MS, now_ms);
    finish(c, false, false, act);
    return LADE_OK;
}

enum lade_dhcp_state lade_dhcp_state(const struct lade_dhcp *c)
{
    return c->state;
}

const struct lade_dhcp_lease *lade_dhcp_lease(const struct lade_dhcp *c)
{
    return c->have_lease ? &c->lease : NULL;
}

void lade_dhcp_diag(const struct lade_dhcp *c, uint64_t now_ms, struct lade_dhcp_diag *out)
{
    *out = c->diag;
    out->state = c->state;
    out->ll_wanted = c->ll_on;
    if (c->have_lease) {
        out->addr = c->lease.addr;
        out->prefix_len = c->lease.prefix_len;
        out->server_id = c->lease.server_id;
        out->lease_s = c->lease.lease_s;
        out->lease_left_ms = c->lease.expiry_ms == NEVER   ? NEVER
                             : c->lease.expiry_ms > now_ms ? c->lease.expiry_ms - now_ms
                                                           : 0;
    } else {
        out->addr = 0;
        out->prefix_len = 0;
        out->server_id = (c->state == LADE_DHCP_REQUESTING || c->state == LADE_DHCP_PROBING)
                             ? c->offer_server
                             : 0;
        out->lease_s = 0;
        out->lease_left_ms = 0;
    }
}
