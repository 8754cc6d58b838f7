/* DNS resolution policy: server health, one lookup's state machine (hedged queries over the
 * DHCP servers then the fallbacks), the TTL cache. Contract in include/lade/dns.h; the policy,
 * its constants and their reasons in docs/dns.md. */
#include "lade/dns.h"

#include <stdio.h>
#include <string.h>

#include "lade/log.h"

#define MOD "dns"

/* ---------------------------------------------------------------- servers */

void lade_dns_servers_init(struct lade_dns_servers *t)
{
    memset(t, 0, sizeof *t);
}

static bool ep_valid(const struct lade_dns_endpoint *e)
{
    return (e->family == 4 || e->family == 6) && e->port != 0;
}

static bool ep_eq(const struct lade_dns_endpoint *a, const struct lade_dns_endpoint *b)
{
    size_t n = a->family == 4 ? 4 : 16;
    return a->family == b->family && a->port == b->port && memcmp(a->ip, b->ip, n) == 0;
}

static void fresh_server(struct lade_dns_server *s, const struct lade_dns_endpoint *ep,
                         bool fallback)
{
    memset(s, 0, sizeof *s);
    s->ep = *ep;
    if (s->ep.family == 4)
        memset(s->ep.ip + 4, 0, 12);
    s->fallback = fallback;
    s->last_rcode = -1;
}

bool lade_dns_servers_set(struct lade_dns_servers *t, const struct lade_dns_endpoint *dhcp,
                          size_t n_dhcp, const struct lade_dns_endpoint *fb, size_t n_fb)
{
    struct lade_dns_servers old = *t;
    struct lade_dns_server next[LADE_DNS_MAX_SERVERS];
    size_t n = 0, n_d = 0, n_f = 0;
    for (size_t g = 0; g < 2; g++) {
        const struct lade_dns_endpoint *list = g == 0 ? dhcp : fb;
        size_t count = g == 0 ? n_dhcp : n_fb;
        for (size_t i = 0; list && i < count; i++) {
            if (!ep_valid(&list[i]))
                continue;
            if (g == 0 ? n_d == LADE_DNS_MAX_DHCP : n_f == LADE_DNS_MAX_FALLBACK)
                break;
            bool dup = false;
            for (size_t j = 0; j < n && !dup; j++)
                dup = ep_eq(&next[j].ep, &list[i]);
            if (dup)
                continue;
            fresh_server(&next[n], &list[i], g == 1);
            for (size_t j = 0; j < old.n; j++)
                if (ep_eq(&old.s[j].ep, &next[n].ep) && old.s[j].fallback == next[n].fallback)
                    next[n] = old.s[j]; /* keeps its health */
            n++;
            if (g == 0)
                n_d++;
            else
                n_f++;
        }
    }
    bool changed = n != old.n;
    for (size_t i = 0; i < n && !changed; i++)
        changed = !ep_eq(&next[i].ep, &old.s[i].ep) || next[i].fallback != old.s[i].fallback;
    memcpy(t->s, next, n * sizeof next[0]);
    t->n = n;
    if (changed)
        t->generation++;
    return changed;
}

bool lade_dns_server_down(const struct lade_dns_server *s, uint64_t now_ms)
{
    return now_ms < s->down_until_ms;
}

uint32_t lade_dns_server_hedge_ms(const struct lade_dns_server *s)
{
    if (s->srtt_ms == 0)
        return LADE_DNS_HEDGE_MS;
    uint64_t h = 3u * (uint64_t)s->srtt_ms;
    if (h < LADE_DNS_HEDGE_MIN_MS)
        h = LADE_DNS_HEDGE_MIN_MS;
    if (h > LADE_DNS_HEDGE_MAX_MS)
        h = LADE_DNS_HEDGE_MAX_MS;
    return (uint32_t)h;
}

/* An answer (of any RCODE) proves the server is reachable; the RTT sample is exact because
 * every retransmission is a new query with its own id and socket (no Karn ambiguity). */
static void server_heard(struct lade_dns_server *s, uint32_t rtt_ms, int rcode, uint64_t now)
{
    if (rtt_ms == 0)
        rtt_ms = 1; /* 0 means "no sample" */
    s->srtt_ms = s->srtt_ms == 0 ? rtt_ms : (uint32_t)((7u * (uint64_t)s->srtt_ms + rtt_ms) / 8u);
    if (s->srtt_ms == 0)
        s->srtt_ms = 1;
    s->answered++;
    s->last_rcode = rcode;
    s->last_answer_ms = now;
}

static void server_ok(struct lade_dns_server *s)
{
    s->fails = 0;
    s->down_until_ms = 0;
}

static void server_failed(struct lade_dns_server *s, uint64_t now)
{
    if (s->fails < UINT32_MAX)
        s->fails++;
    uint32_t shift = s->fails - 1 > 6 ? 6 : s->fails - 1;
    uint64_t delay = (uint64_t)LADE_DNS_BACKOFF_MS << shift;
    if (delay > LADE_DNS_BACKOFF_MAX_MS)
        delay = LADE_DNS_BACKOFF_MAX_MS;
    s->down_until_ms = now + delay;
}

/* ---------------------------------------------------------------- lookup */

enum { AT_FREE = 0, AT_OPEN, AT_EXPIRED };

/* Per-server flags within one lookup. */
#define F_ASKED  0x1u /* a query went to it */
#define F_FAILED 0x2u /* it failed once: a query expired unanswered, or an error */
#define F_HARD   0x4u /* it answered with an error or is unreachable: not asked again */
#define F_TCP    0x8u /* it is being asked over TCP: no more UDP queries to it */

const char *lade_dns_lookup_state_name(enum lade_dns_lookup_state st)
{
    switch (st) {
    case LADE_DNS_LK_IDLE:
        return "IDLE";
    case LADE_DNS_LK_ASKING:
        return "ASKING";
    case LADE_DNS_LK_HOLDING:
        return "HOLDING";
    case LADE_DNS_LK_DONE:
        return "DONE";
    }
    return "?";
}

/* The only place the state changes. Entering DONE closes every open query. */
static void set_state(struct lade_dns_lookup *l, enum lade_dns_lookup_state to)
{
    if (l->state == to)
        return;
    LOG_T(MOD, "lookup %p: %s → %s", (void *)l, lade_dns_lookup_state_name(l->state),
          lade_dns_lookup_state_name(to));
    l->state = to;
    if (to == LADE_DNS_LK_DONE)
        for (size_t i = 0; i < LADE_DNS_MAX_ATTEMPTS; i++)
            if (l->at[i].state != AT_FREE) {
                l->at[i].state = AT_FREE;
                l->at[i].want_close = true;
                l->at[i].want_send = false;
            }
}

static void finish(struct lade_dns_lookup *l, lade_err err, uint64_t now)
{
    l->res.err = err;
    l->res.elapsed_ms = (uint32_t)(now - l->start_ms);
    if (err != LADE_OK && err != LADE_ERR_NOT_FOUND) {
        l->res.server = -1;
        l->res.fallback = false;
        l->res.tcp = false;
        l->res.rcode = -1;
        l->res.rtt_ms = 0;
        l->res.has_ttl = false;
        l->res.ttl_s = 0;
        l->res.n_addr = 0;
    }
    set_state(l, LADE_DNS_LK_DONE);
}

static void rank(struct lade_dns_lookup *l, uint64_t now)
{
    struct lade_dns_servers *t = l->srv;
    l->n_order = 0;
    /* DHCP servers before fallbacks (SPEC R5); within a group the healthy ones first, each
     * group in the order given (a DHCP server list is the site's preference). */
    for (int fb = 0; fb < 2; fb++)
        for (int down = 0; down < 2; down++)
            for (size_t i = 0; i < t->n; i++)
                if (t->s[i].fallback == (fb == 1) &&
                    lade_dns_server_down(&t->s[i], now) == (down == 1))
                    l->order[l->n_order++] = (uint8_t)i;
    l->pos = 0;
    l->round = 0;
    memset(l->flags, 0, sizeof l->flags);
    l->next_send_ms = now;
}

static void reset_result(struct lade_dns_result *r)
{
    memset(r, 0, sizeof *r);
    r->err = LADE_ERR_TIMEOUT;
    r->server = -1;
    r->rcode = -1;
}

void lade_dns_lookup_start(struct lade_dns_lookup *l, struct lade_dns_servers *srv,
                           const struct lade_dns_lookup_cfg *cfg, uint64_t now_ms)
{
    memset(l, 0, sizeof *l);
    l->srv = srv;
    if (cfg)
        l->cfg = *cfg;
    if (l->cfg.qtype != LADE_DNS_TYPE_AAAA)
        l->cfg.qtype = LADE_DNS_TYPE_A;
    if (l->cfg.deadline_ms == 0)
        l->cfg.deadline_ms = LADE_DNS_DEADLINE_MS;
    if (l->cfg.attempt_timeout_ms == 0)
        l->cfg.attempt_timeout_ms = LADE_DNS_ATTEMPT_MS;
    if (l->cfg.tcp_timeout_ms == 0)
        l->cfg.tcp_timeout_ms = LADE_DNS_TCP_MS;
    l->start_ms = now_ms;
    l->deadline_ms = now_ms + l->cfg.deadline_ms;
    reset_result(&l->res);
    rank(l, now_ms);
    set_state(l, LADE_DNS_LK_ASKING);
    if (l->n_order == 0)
        finish(l, LADE_ERR_RESOLVE, now_ms);
}

void lade_dns_lookup_restart(struct lade_dns_lookup *l, uint64_t now_ms)
{
    if (l->state == LADE_DNS_LK_DONE || l->state == LADE_DNS_LK_IDLE)
        return;
    memset(l->at, 0, sizeof l->at); /* the caller closed them */
    l->saw_error = false;
    unsigned queries = l->res.queries;
    reset_result(&l->res);
    l->res.queries = queries;
    rank(l, now_ms);
    set_state(l, LADE_DNS_LK_ASKING);
    if (l->n_order == 0)
        finish(l, LADE_ERR_RESOLVE, now_ms);
}

/* Every DHCP server has failed at least once in this lookup (vacuously true without any). */
static bool dhcp_failed(const struct lade_dns_lookup *l)
{
    for (size_t i = 0; i < l->srv->n; i++)
        if (!l->srv->s[i].fallback && !(l->flags[i] & F_FAILED))
            return false;
    return true;
}

static void close_attempt(struct lade_dns_lookup *l, unsigned k)
{
    l->at[k].state = AT_FREE;
    l->at[k].want_close = true;
    l->at[k].want_send = false;
}

/* Queues a new query to server s on slot k (a slot being closed first is fine). */
static void queue_send(struct lade_dns_lookup *l, unsigned k, unsigned s, bool tcp, uint64_t now)
{
    struct lade_dns_attempt *a = &l->at[k];
    struct lade_dns_server *sv = &l->srv->s[s];
    a->state = AT_OPEN;
    a->server = (uint8_t)s;
    a->tcp = tcp;
    a->use_0x20 = l->cfg.use_0x20 && !sv->no_0x20 && !tcp;
    a->want_send = true;
    a->sent_ms = now;
    uint64_t timeout = tcp ? l->cfg.tcp_timeout_ms : l->cfg.attempt_timeout_ms;
    if (!tcp && 2u * (uint64_t)sv->srtt_ms > timeout) /* a slow link is not a dead server */
        timeout = 2u * (uint64_t)sv->srtt_ms;
    a->expires_ms = now + timeout;
    l->flags[s] |= F_ASKED;
    l->res.queries++;
    sv->sent++;
}

/* A slot for a new query: a free one, else the oldest expired one (its late answer is given
 * up); -1 when every slot holds a query still in its time. */
static int free_slot(struct lade_dns_lookup *l)
{
    int oldest = -1;
    for (unsigned k = 0; k < LADE_DNS_MAX_ATTEMPTS; k++) {
        if (l->at[k].state == AT_FREE && !l->at[k].want_send)
            return (int)k;
        if (l->at[k].state == AT_EXPIRED &&
            (oldest < 0 || l->at[k].sent_ms < l->at[(unsigned)oldest].sent_ms))
            oldest = (int)k;
    }
    if (oldest >= 0)
        l->at[oldest].want_close = true;
    return oldest;
}

static bool any_open(const struct lade_dns_lookup *l)
{
    for (size_t k = 0; k < LADE_DNS_MAX_ATTEMPTS; k++)
        if (l->at[k].state == AT_OPEN)
            return true;
    return false;
}

static bool all_hard(const struct lade_dns_lookup *l)
{
    for (size_t i = 0; i < l->n_order; i++)
        if (!(l->flags[l->order[i]] & F_HARD))
            return false;
    return true;
}

/* Ends the lookup when nothing more can come: every server gave an error and no query is
 * still in its time. A held negative answer is then the result. */
static void check_exhausted(struct lade_dns_lookup *l, uint64_t now)
{
    if (l->state == LADE_DNS_LK_DONE || !all_hard(l) || any_open(l))
        return;
    finish(l, l->state == LADE_DNS_LK_HOLDING ? LADE_ERR_NOT_FOUND : LADE_ERR_RESOLVE, now);
}

static bool askable(const struct lade_dns_lookup *l, unsigned s)
{
    return !(l->flags[s] & (F_HARD | F_TCP));
}

/* The hedge and retransmission schedule: ask the next server in rank order every spacing;
 * after the last, start a new round over the servers that did not give an error, each round
 * waiting twice as long (capped at LADE_DNS_HEDGE_MAX_MS). */
static void maybe_send(struct lade_dns_lookup *l, uint64_t now)
{
    if (now < l->next_send_ms)
        return;
    bool any = false;
    for (size_t i = 0; i < l->n_order && !any; i++)
        any = askable(l, l->order[i]);
    if (!any) { /* nothing to ask until an event changes that */
        l->next_send_ms = UINT64_MAX;
        return;
    }
    for (size_t tries = 0; tries < 2 * l->n_order + 1; tries++) {
        if (l->pos >= l->n_order) {
            l->pos = 0;
            l->round++;
        }
        unsigned s = l->order[l->pos];
        if (!askable(l, s)) {
            l->pos++;
            continue;
        }
        int k = free_slot(l);
        if (k < 0) { /* every slot busy: wait for one to expire */
            uint64_t first = UINT64_MAX;
            for (size_t j = 0; j < LADE_DNS_MAX_ATTEMPTS; j++)
                if (l->at[j].state == AT_OPEN && l->at[j].expires_ms < first)
                    first = l->at[j].expires_ms;
            l->next_send_ms = first;
            return;
        }
        l->pos++;
        const struct lade_dns_server *sv = &l->srv->s[s];
        bool later = false; /* another server left in this round */
        for (size_t i = l->pos; i < l->n_order && !later; i++)
            later = askable(l, l->order[i]);
        uint64_t spacing;
        if (l->round == 0 && later && lade_dns_server_down(sv, now))
            spacing = 0; /* it failed lately: ask it, but ask the next one at once too */
        else {
            unsigned shift = l->round > 3 ? 3 : l->round;
            spacing = (uint64_t)lade_dns_server_hedge_ms(sv) << shift;
            if (spacing > LADE_DNS_HEDGE_MAX_MS)
                spacing = LADE_DNS_HEDGE_MAX_MS;
        }
        LOG_T(MOD, "lookup %p: round %u asks server %u (next in %llu ms)", (void *)l, l->round, s,
              (unsigned long long)spacing);
        queue_send(l, (unsigned)k, s, false, now);
        l->next_send_ms = now + spacing;
        if (spacing > 0)
            return;
    }
}

static void expire(struct lade_dns_lookup *l, uint64_t now)
{
    for (unsigned k = 0; k < LADE_DNS_MAX_ATTEMPTS; k++) {
        struct lade_dns_attempt *a = &l->at[k];
        if (a->state != AT_OPEN || now < a->expires_ms)
            continue;
        struct lade_dns_server *sv = &l->srv->s[a->server];
        sv->timeouts++;
        server_failed(sv, now);
        l->flags[a->server] |= F_FAILED;
        if (a->tcp) {
            l->flags[a->server] |= F_HARD; /* it told us to use TCP, and TCP did not work */
            close_attempt(l, k);
            l->next_send_ms = now;
        } else {
            a->state = AT_EXPIRED; /* keep listening: a late answer is still welcome */
        }
    }
}

/* Time-driven steps, in this order: the deadline, expired queries (which may complete the
 * "DHCP servers failed" condition a held negative answer waits for), exhaustion, sending. */
static void advance(struct lade_dns_lookup *l, uint64_t now)
{
    if (l->state == LADE_DNS_LK_DONE || l->state == LADE_DNS_LK_IDLE)
        return;
    if (now >= l->deadline_ms) {
        lade_err e = l->state == LADE_DNS_LK_HOLDING ? LADE_ERR_NOT_FOUND
                     : l->saw_error                  ? LADE_ERR_RESOLVE
                                                     : LADE_ERR_TIMEOUT;
        finish(l, e, now);
        return;
    }
    expire(l, now);
    if (l->state == LADE_DNS_LK_HOLDING && dhcp_failed(l)) {
        finish(l, LADE_ERR_NOT_FOUND, now);
        return;
    }
    check_exhausted(l, now);
    if (l->state != LADE_DNS_LK_DONE)
        maybe_send(l, now);
}

bool lade_dns_lookup_next_action(struct lade_dns_lookup *l, uint64_t now_ms,
                                 struct lade_dns_action *act)
{
    advance(l, now_ms);
    memset(act, 0, sizeof *act);
    for (unsigned k = 0; k < LADE_DNS_MAX_ATTEMPTS; k++)
        if (l->at[k].want_close) {
            l->at[k].want_close = false;
            act->kind = LADE_DNS_ACT_CLOSE;
            act->attempt = k;
            return true;
        }
    if (l->state == LADE_DNS_LK_DONE) {
        if (l->reported)
            return false;
        l->reported = true;
        act->kind = LADE_DNS_ACT_DONE;
        return true;
    }
    for (unsigned k = 0; k < LADE_DNS_MAX_ATTEMPTS; k++)
        if (l->at[k].want_send) {
            l->at[k].want_send = false;
            act->kind = LADE_DNS_ACT_SEND;
            act->attempt = k;
            act->server = l->at[k].server;
            act->tcp = l->at[k].tcp;
            act->use_0x20 = l->at[k].use_0x20;
            return true;
        }
    return false;
}

uint64_t lade_dns_lookup_next_deadline(const struct lade_dns_lookup *l)
{
    if (l->state == LADE_DNS_LK_DONE || l->state == LADE_DNS_LK_IDLE)
        return UINT64_MAX;
    uint64_t t = l->deadline_ms;
    bool any = false;
    for (size_t i = 0; i < l->n_order && !any; i++)
        any = askable(l, l->order[i]);
    if (any && l->next_send_ms < t)
        t = l->next_send_ms;
    for (size_t k = 0; k < LADE_DNS_MAX_ATTEMPTS; k++)
        if (l->at[k].state == AT_OPEN && l->at[k].expires_ms < t)
            t = l->at[k].expires_ms;
    return t;
}

static bool waiting(const struct lade_dns_lookup *l, unsigned k)
{
    return l->state != LADE_DNS_LK_DONE && l->state != LADE_DNS_LK_IDLE &&
           k < LADE_DNS_MAX_ATTEMPTS &&
           (l->at[k].state == AT_OPEN || l->at[k].state == AT_EXPIRED) && !l->at[k].want_send;
}

/* A server answered with an error RCODE, or could not be reached: count it, never ask it again
 * in this lookup, ask the next one now. */
static void hard_fail(struct lade_dns_lookup *l, unsigned k, uint64_t now)
{
    unsigned s = l->at[k].server;
    struct lade_dns_server *sv = &l->srv->s[s];
    sv->errors++;
    server_failed(sv, now);
    l->flags[s] |= F_FAILED | F_HARD;
    l->saw_error = true;
    close_attempt(l, k);
    l->next_send_ms = now;
    if (l->state == LADE_DNS_LK_HOLDING && dhcp_failed(l))
        finish(l, LADE_ERR_NOT_FOUND, now);
    else
        check_exhausted(l, now);
}

void lade_dns_lookup_on_answer(struct lade_dns_lookup *l, unsigned attempt,
                               const struct lade_dns_answer *a, const struct lade_dns_addr *addrs,
                               uint64_t now_ms)
{
    if (!waiting(l, attempt) || !a)
        return;
    struct lade_dns_attempt *at = &l->at[attempt];
    unsigned s = at->server;
    struct lade_dns_server *sv = &l->srv->s[s];
    uint32_t rtt = (uint32_t)(now_ms - at->sent_ms);
    server_heard(sv, rtt, a->rcode, now_ms);
    bool tcp = at->tcp;

    if (a->tc) {
        if (tcp) { /* TC over TCP makes no sense (RFC 7766 §8) */
            hard_fail(l, attempt, now_ms);
            return;
        }
        server_ok(sv);
        /* RFC 7766 §5: a truncated UDP answer → the same question to the same server over
         * TCP. Same slot: the UDP socket is closed first. */
        LOG_D(MOD, "lookup %p: server %u truncated, asking over TCP", (void *)l, s);
        close_attempt(l, attempt);
        queue_send(l, attempt, s, true, now_ms);
        l->flags[s] |= F_TCP;
        return;
    }

    bool negative = a->rcode == LADE_DNS_NXDOMAIN ||
                    (a->rcode == LADE_DNS_NOERROR && (a->n_addr == 0 || !addrs));
    if (a->rcode != LADE_DNS_NOERROR && !negative) { /* SERVFAIL, REFUSED, FORMERR, ... */
        LOG_D(MOD, "lookup %p: server %u answered %s", (void *)l, s, lade_dns_rcode_name(a->rcode));
        hard_fail(l, attempt, now_ms);
        return;
    }
    server_ok(sv);
    if (!negative) {
        l->res.server = (int)s;
        l->res.fallback = sv->fallback;
        l->res.tcp = tcp;
        l->res.rcode = a->rcode;
        l->res.rtt_ms = rtt;
        l->res.ttl_s = a->ttl_s;
        l->res.has_ttl = true;
        l->res.n_addr = a->n_addr > LADE_DNS_ADDR_MAX ? LADE_DNS_ADDR_MAX : a->n_addr;
        memcpy(l->res.addr, addrs, l->res.n_addr * sizeof addrs[0]);
        finish(l, LADE_OK, now_ms);
        return;
    }
    /* "No such name": final from a DHCP server (the site's own view, which may know local names
     * the public DNS does not), but from a fallback only once the DHCP servers failed — else a
     * fast public NXDOMAIN would beat the slower local answer (docs/dns.md). */
    close_attempt(l, attempt);
    if (l->state != LADE_DNS_LK_HOLDING) {
        l->res.server = (int)s;
        l->res.fallback = sv->fallback;
        l->res.tcp = tcp;
        l->res.rcode = a->rcode;
        l->res.rtt_ms = rtt;
        l->res.has_ttl = a->has_neg_ttl;
        l->res.ttl_s = a->has_neg_ttl ? a->neg_ttl_s : 0;
        l->res.n_addr = 0;
    }
    if (!sv->fallback || dhcp_failed(l)) {
        if (!sv->fallback && l->state == LADE_DNS_LK_HOLDING) {
            /* A DHCP server's own negative answer replaces the held public one. */
            l->res.server = (int)s;
            l->res.fallback = false;
            l->res.tcp = tcp;
            l->res.rcode = a->rcode;
            l->res.rtt_ms = rtt;
            l->res.has_ttl = a->has_neg_ttl;
            l->res.ttl_s = a->has_neg_ttl ? a->neg_ttl_s : 0;
        }
        finish(l, LADE_ERR_NOT_FOUND, now_ms);
        return;
    }
    LOG_D(MOD, "lookup %p: fallback %u says %s; waiting for the DHCP servers", (void *)l, s,
          a->rcode == LADE_DNS_NXDOMAIN ? "NXDOMAIN" : "no data");
    set_state(l, LADE_DNS_LK_HOLDING);
}

void lade_dns_lookup_on_case_mismatch(struct lade_dns_lookup *l, unsigned attempt, uint64_t now_ms)
{
    if (!waiting(l, attempt) || !l->at[attempt].use_0x20)
        return;
    unsigned s = l->at[attempt].server;
    struct lade_dns_server *sv = &l->srv->s[s];
    if (!sv->no_0x20)
        LOG_I(MOD, "server %u does not keep the question's case: asking it without 0x20", s);
    sv->no_0x20 = true;
    bool tcp = l->at[attempt].tcp;
    close_attempt(l, attempt);
    queue_send(l, attempt, s, tcp, now_ms);
}

void lade_dns_lookup_on_error(struct lade_dns_lookup *l, unsigned attempt, lade_err err,
                              uint64_t now_ms)
{
    if (!waiting(l, attempt))
        return;
    LOG_D(MOD, "lookup %p: query to server %u failed: %s", (void *)l, l->at[attempt].server,
          lade_strerror(err));
    hard_fail(l, attempt, now_ms);
}

const struct lade_dns_result *lade_dns_lookup_result(const struct lade_dns_lookup *l)
{
    return &l->res;
}

/* ---------------------------------------------------------------- cache */

void lade_dns_cache_clear(struct lade_dns_cache *c)
{
    memset(c, 0, sizeof *c);
}

static struct lade_dns_cache_entry *cache_find(struct lade_dns_cache *c, const char *canon,
                                               uint16_t qtype)
{
    for (size_t i = 0; i < LADE_DNS_CACHE_SLOTS; i++)
        if (c->e[i].used && c->e[i].qtype == qtype && strcmp(c->e[i].name, canon) == 0)
            return &c->e[i];
    return NULL;
}

void lade_dns_cache_put(struct lade_dns_cache *c, const char *name, uint16_t qtype,
                        const struct lade_dns_result *r, uint64_t now_ms)
{
    char canon[LADE_DNS_NAME_TEXT_MAX + 1];
    if (!c || !r || lade_dns_name_canonical(name, canon, sizeof canon) != LADE_OK)
        return;
    struct lade_dns_cache_entry *e = cache_find(c, canon, qtype);
    if (e)
        e->used = false; /* a new answer replaces the old one, or removes it */
    uint64_t ttl_s;
    bool negative = r->err == LADE_ERR_NOT_FOUND;
    if (r->err == LADE_OK && r->n_addr > 0 && r->has_ttl)
        ttl_s = r->ttl_s;
    else if (negative && r->has_ttl)
        ttl_s = r->ttl_s < LADE_DNS_NEG_TTL_MAX_S ? r->ttl_s : LADE_DNS_NEG_TTL_MAX_S;
    else
        return;
    if (ttl_s == 0)
        return;
    if (!e) {
        /* A free or expired entry, else the live one expiring first. */
        e = &c->e[0];
        for (size_t i = 0; i < LADE_DNS_CACHE_SLOTS; i++) {
            if (!c->e[i].used || c->e[i].expires_ms <= now_ms) {
                e = &c->e[i];
                break;
            }
            if (c->e[i].expires_ms < e->expires_ms)
                e = &c->e[i];
        }
    }
    memset(e, 0, sizeof *e);
    e->used = true;
    e->negative = negative;
    e->qtype = qtype;
    e->stored_ms = now_ms;
    e->expires_ms = now_ms + ttl_s * 1000u;
    snprintf(e->name, sizeof e->name, "%s", canon);
    e->n_addr = negative ? 0 : (r->n_addr > LADE_DNS_ADDR_MAX ? LADE_DNS_ADDR_MAX : r->n_addr);
    memcpy(e->addr, r->addr, e->n_addr * sizeof e->addr[0]);
}

bool lade_dns_cache_get(struct lade_dns_cache *c, const char *name, uint16_t qtype, uint64_t now_ms,
                        struct lade_dns_result *out)
{
    char canon[LADE_DNS_NAME_TEXT_MAX + 1];
    if (!c || !out || lade_dns_name_canonical(name, canon, sizeof canon) != LADE_OK)
        return false;
    struct lade_dns_cache_entry *e = cache_find(c, canon, qtype);
    if (!e)
        return false;
    if (now_ms >= e->expires_ms) {
        e->used = false;
        return false;
    }
    reset_result(out);
    out->err = e->negative ? LADE_ERR_NOT_FOUND : LADE_OK;
    out->has_ttl = true;
    out->ttl_s = (uint32_t)((e->expires_ms - now_ms + 999u) / 1000u);
    out->n_addr = e->n_addr;
    memcpy(out->addr, e->addr, e->n_addr * sizeof e->addr[0]);
    return true;
}
