/* lade — SNTP client state machine: when to ask which server, and when time may be trusted.
 * Contract in include/lade/sntp.h; policy and reasons in docs/time.md.
 *
 * Pure: time, randomness and I/O come in through arguments and ops. The policy in short:
 *   - a burst at start (≤ 4 queries per server, 2 s apart, ending after 2 good replies): the
 *     NTP pool's "a handful at boot" (chrony's iburst does 4);
 *   - trust: the largest group of servers whose offsets agree (within 500 ms plus half their
 *     delays) wins; an offset above 1 s needs 2 of them (one lying or broken server cannot move
 *     the clock far); never below the floor;
 *   - KoD RATE doubles that server's interval, DENY/RSTR drops it (RFC 5905 §7.4);
 *   - steady polls every 1–4 h jittered, never one server more often than every 64 s.
 */
#include "lade/sntp.h"

#include <string.h>

#include "lade/log.h"

#define MOD "sntp"

/* Our t1/t4 come from millisecond clocks while the server's t2/t3 have µs or better: on a fast
 * network the computed delay can come out slightly negative. More than this is a bad server. */
#define DELAY_SLACK_US 2000

static const char *const state_names[] = {
    [LADE_SNTP_IDLE] = "idle",     [LADE_SNTP_BURST] = "burst", [LADE_SNTP_BACKOFF] = "backoff",
    [LADE_SNTP_SYNCED] = "synced", [LADE_SNTP_HOST] = "host",
};

const char *lade_sntp_state_name(enum lade_sntp_state s)
{
    if ((unsigned)s < sizeof state_names / sizeof state_names[0] && state_names[s])
        return state_names[s];
    return "unknown";
}

void lade_sntp_cfg_default(struct lade_sntp_cfg *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->host_mode = false;
    cfg->floor_ms = 0;
    cfg->quorum = 2;
    cfg->confirm_ms = 1000;
    cfg->agree_ms = 500;
    cfg->min_correction_ms = 128; /* RFC 5905 STEPT */
    cfg->max_root_distance_ms = 1500;
    cfg->burst_queries = 4;
    cfg->burst_good = 2;
    cfg->burst_spacing_ms = 2000;
    cfg->reply_timeout_ms = 3000;
    cfg->min_poll_ms = 64u * 1000u;         /* RFC 5905 MINPOLL 6 */
    cfg->max_poll_ms = 36u * 3600u * 1000u; /* RFC 5905 MAXPOLL 17 */
    cfg->poll_min_ms = 3600u * 1000u;       /* 1 h */
    cfg->poll_max_ms = 4u * 3600u * 1000u;  /* 4 h */
    cfg->retry_min_ms = 64u * 1000u;
    cfg->retry_max_ms = 1024u * 1000u;
    cfg->save_interval_ms = 5u * 60u * 1000u;
    cfg->sample_max_age_ms = 10u * 60u * 1000u;
}

static bool trusted_state(enum lade_sntp_state s)
{
    return s == LADE_SNTP_SYNCED || s == LADE_SNTP_HOST;
}

/* The only place the state changes. */
static void set_state(struct lade_sntp_client *c, enum lade_sntp_state to)
{
    if (c->state == to)
        return;
    bool was = trusted_state(c->state), is = trusted_state(to);
    LOG_I(MOD, "%s → %s%s", lade_sntp_state_name(c->state), lade_sntp_state_name(to),
          was == is ? "" : (is ? " (time trusted)" : " (time not trusted)"));
    c->state = to;
    c->st.state = to;
    c->st.trusted = is;
    if (was != is && c->ops.trust)
        c->ops.trust(c->ud, is);
}

lade_err lade_sntp_client_init(struct lade_sntp_client *c, const struct lade_sntp_cfg *cfg,
                               const struct lade_sntp_ops *ops, void *ud)
{
    if (!c || !cfg || !ops)
        return LADE_ERR_INVAL;
    memset(c, 0, sizeof *c);
    if (!ops->send || !ops->random64 || (!cfg->host_mode && !ops->step))
        return LADE_ERR_INVAL;
    if (cfg->quorum == 0 || cfg->burst_queries == 0 || cfg->burst_queries > 255 ||
        cfg->burst_good == 0 || cfg->burst_good > cfg->burst_queries ||
        cfg->reply_timeout_ms == 0 || cfg->min_poll_ms == 0 ||
        cfg->min_poll_ms > cfg->max_poll_ms || cfg->poll_min_ms == 0 ||
        cfg->poll_min_ms > cfg->poll_max_ms || cfg->retry_min_ms == 0 ||
        cfg->retry_min_ms > cfg->retry_max_ms || cfg->save_interval_ms == 0 ||
        cfg->sample_max_age_ms == 0)
        return LADE_ERR_CONFIG;
    c->cfg = *cfg;
    c->ops = *ops;
    c->ud = ud;
    c->state = LADE_SNTP_IDLE;
    c->st.state = LADE_SNTP_IDLE;
    c->st.server = -1;
    c->st.floor_ms = cfg->floor_ms;
    c->st.next_mono_ms = UINT64_MAX;
    return LADE_OK;
}

/* ---------------------------------------------------------------- helpers */

static uint32_t srv_interval(const struct lade_sntp_client *c, const struct lade_sntp_srv *s)
{
    uint64_t v = c->cfg.min_poll_ms;
    for (unsigned i = 0; i < s->rate_level && v < c->cfg.max_poll_ms; i++)
        v *= 2;
    return v > c->cfg.max_poll_ms ? c->cfg.max_poll_ms : (uint32_t)v;
}

/* Uniform in [lo, hi]. */
static uint64_t jitter(struct lade_sntp_client *c, uint64_t lo, uint64_t hi)
{
    if (hi <= lo)
        return lo;
    return lo + c->ops.random64(c->ud) % (hi - lo + 1);
}

/* Full jitter with a floor, doubling per consecutive failure (as lade_backoff). */
static uint64_t retry_delay(struct lade_sntp_client *c)
{
    uint64_t cap = c->cfg.retry_min_ms;
    for (uint32_t i = 1; i < c->failures && cap < c->cfg.retry_max_ms; i++)
        cap *= 2;
    if (cap > c->cfg.retry_max_ms)
        cap = c->cfg.retry_max_ms;
    return jitter(c, c->cfg.retry_min_ms, cap);
}

static void note(struct lade_sntp_srv *s, enum lade_sntp_result r)
{
    s->diag.last_result = r;
    if (r != LADE_SNTP_OK)
        s->diag.errors++;
}

static int64_t us_to_ms(int64_t us)
{
    return us >= 0 ? (us + 500) / 1000 : -((-us + 500) / 1000);
}

static void apply_step(struct lade_sntp_client *c, struct lade_sntp_now *now, int64_t corr_ms)
{
    c->ops.step(c->ud, corr_ms);
    now->wall_ms += corr_ms;
    c->st.last_step_ms = corr_ms;
    c->st.steps++;
}

/* Never below the floor (docs/time.md "Floor"): at start, and whenever something set the clock
 * back under it. Stepping up to the floor does not make the time trusted. */
static void enforce_floor(struct lade_sntp_client *c, struct lade_sntp_now *now)
{
    if (c->cfg.host_mode || c->state == LADE_SNTP_IDLE || now->wall_ms >= c->st.floor_ms)
        return;
    LOG_W(MOD, "clock %lld ms below the floor: stepped up to it",
          (long long)(c->st.floor_ms - now->wall_ms));
    apply_step(c, now, c->st.floor_ms - now->wall_ms);
}

/* Queries a member may get this round: a burst gives several, unless the server asked us to
 * slow down (RATE); a steady poll gives one (never more often than min_poll_ms). */
static unsigned max_queries(const struct lade_sntp_client *c, const struct lade_sntp_srv *s)
{
    return (c->round_burst && s->rate_level == 0) ? c->cfg.burst_queries : 1;
}

static unsigned good_target(const struct lade_sntp_client *c)
{
    return c->round_burst ? c->cfg.burst_good : 1;
}

static bool member_done(const struct lade_sntp_client *c, const struct lade_sntp_srv *s)
{
    if (!s->member)
        return true;
    if (s->pending)
        return false;
    return s->round_over || s->denied || s->round_good >= good_target(c) ||
           s->round_sent >= max_queries(c, s);
}

/* ---------------------------------------------------------------- sending */

static void send_query(struct lade_sntp_client *c, size_t i, const struct lade_sntp_now *now)
{
    struct lade_sntp_srv *s = &c->srv[i];
    uint64_t cookie = c->ops.random64(c->ud);
    if (cookie == 0) /* 0 means "not set": a reply echoing 0 proves nothing */
        cookie = 1;
    uint8_t pkt[LADE_SNTP_PACKET_LEN];
    size_t len = 0;
    if (lade_sntp_encode_request(cookie, pkt, sizeof pkt, &len) != LADE_OK)
        return; /* cannot happen: the buffer is the packet size */
    s->cookie = cookie;
    s->sent_wall_ms = now->wall_ms;
    s->sent_mono_ms = now->mono_ms;
    s->ever_sent = true;
    s->round_sent++;
    s->next_send_mono_ms = now->mono_ms + c->cfg.burst_spacing_ms;
    s->timeout_mono_ms = now->mono_ms + c->cfg.reply_timeout_ms;
    s->pending = true;
    s->diag.sent++;
    s->diag.last_sent_mono_ms = now->mono_ms;
    lade_err err = c->ops.send(c->ud, i, pkt, len);
    if (err != LADE_OK) {
        LOG_D(MOD, "server %zu: send failed: %s", i, lade_strerror(err));
        s->pending = false;
        note(s, LADE_SNTP_E_SEND);
    } else {
        LOG_T(MOD, "server %zu: query %u sent", i, s->round_sent);
    }
}

static void send_due(struct lade_sntp_client *c, const struct lade_sntp_now *now)
{
    if (!c->round_active)
        return;
    for (size_t i = 0; i < c->n; i++) {
        struct lade_sntp_srv *s = &c->srv[i];
        if (member_done(c, s) || s->pending || now->mono_ms < s->next_send_mono_ms)
            continue;
        send_query(c, i, now);
    }
}

/* Starts a burst (untrusted) or a poll (trusted). Members: every server not denied; outside a
 * burst, and for a server that sent RATE, only those whose interval has passed. Returns false
 * when nobody can be asked now; then *retry_at is when someone can (UINT64_MAX: nobody ever). */
static bool start_round(struct lade_sntp_client *c, bool burst, const struct lade_sntp_now *now,
                        uint64_t *retry_at)
{
    *retry_at = UINT64_MAX;
    c->round_burst = burst;
    size_t members = 0;
    for (size_t i = 0; i < c->n; i++) {
        struct lade_sntp_srv *s = &c->srv[i];
        s->member = s->round_over = s->pending = s->round_heard = false;
        s->round_sent = s->round_good = 0;
        if (s->denied)
            continue;
        if ((!burst || s->rate_level > 0) && s->ever_sent) {
            uint64_t earliest = s->sent_mono_ms + srv_interval(c, s);
            if (now->mono_ms < earliest) {
                if (earliest < *retry_at)
                    *retry_at = earliest;
                continue;
            }
        }
        s->member = true;
        s->next_send_mono_ms = now->mono_ms;
        members++;
    }
    c->round_active = members > 0;
    if (members)
        LOG_D(MOD, "%s to %zu of %zu servers", burst ? "burst" : "poll", members, c->n);
    return members > 0;
}

/* ---------------------------------------------------------------- deciding */

static unsigned popcount4(unsigned m)
{
    unsigned n = 0;
    for (; m; m &= m - 1)
        n++;
    return n;
}

struct cand {
    size_t idx;
    int64_t theta_us; /* offset relative to the clock now */
    uint32_t delay_us;
    uint8_t stratum;
};

static bool agree(const struct lade_sntp_client *c, const struct cand *a, const struct cand *b)
{
    int64_t d = a->theta_us - b->theta_us;
    if (d < 0)
        d = -d;
    /* Each sample's true offset lies within θ ± δ/2 (RFC 5905 §8): allow for both. */
    return d <= (int64_t)c->cfg.agree_ms * 1000 + ((int64_t)a->delay_us + b->delay_us) / 2;
}

static bool clique(const struct lade_sntp_client *c, const struct cand *cd, size_t k, unsigned m)
{
    for (size_t a = 0; a < k; a++)
        for (size_t b = a + 1; b < k; b++)
            if ((m >> a & 1u) && (m >> b & 1u) && !agree(c, &cd[a], &cd[b]))
                return false;
    return true;
}

/* The member a group's time is taken from: lowest delay, then lowest stratum. */
static size_t pick(const struct cand *cd, size_t k, unsigned m)
{
    size_t best = SIZE_MAX;
    for (size_t a = 0; a < k; a++) {
        if (!(m >> a & 1u))
            continue;
        if (best == SIZE_MAX || cd[a].delay_us < cd[best].delay_us ||
            (cd[a].delay_us == cd[best].delay_us && cd[a].stratum < cd[best].stratum))
            best = a;
    }
    return best;
}

static uint64_t group_delay(const struct cand *cd, size_t k, unsigned m)
{
    uint64_t sum = 0;
    for (size_t a = 0; a < k; a++)
        if (m >> a & 1u)
            sum += cd[a].delay_us;
    return sum;
}

static bool within(const struct lade_sntp_client *c, int64_t theta_us)
{
    int64_t lim = (int64_t)c->cfg.confirm_ms * 1000;
    return theta_us >= -lim && theta_us <= lim;
}

/* The winning group among the largest agreeing ones, 0 when none. Groups of the same size that
 * overlap describe nearly the same time: the one with the least total delay wins. Two disjoint
 * ones cannot be told apart; then only groups that need no step (|θ| ≤ confirm_ms: they agree
 * with our own clock, a witness of its own) are considered, under the same rule. */
static unsigned choose_group(const struct lade_sntp_client *c, const struct cand *cd, size_t k)
{
    unsigned groups[1u << LADE_SNTP_MAX_SERVERS];
    size_t ng = 0;
    unsigned best = 0;
    for (unsigned m = 1; m < (1u << k); m++) {
        if (!clique(c, cd, k, m))
            continue;
        unsigned sz = popcount4(m);
        if (sz > best) {
            best = sz;
            ng = 0;
        }
        if (sz == best)
            groups[ng++] = m;
    }
    for (int pass = 0; pass < 2; pass++) {
        unsigned cand[1u << LADE_SNTP_MAX_SERVERS];
        size_t nc = 0;
        for (size_t g = 0; g < ng; g++)
            if (pass == 0 || within(c, cd[pick(cd, k, groups[g])].theta_us))
                cand[nc++] = groups[g];
        bool ambiguous = nc == 0;
        unsigned win = 0;
        for (size_t g = 0; g < nc && !ambiguous; g++) {
            for (size_t h = g + 1; h < nc; h++)
                if (!(cand[g] & cand[h]))
                    ambiguous = true;
            if (!win || group_delay(cd, k, cand[g]) < group_delay(cd, k, win))
                win = cand[g];
        }
        if (!ambiguous)
            return win;
    }
    return 0;
}

/* Decides from the fresh samples; returns true when the time is (still) trusted and the clock
 * was corrected if needed. */
/* The fresh samples, as offsets relative to the clock now. */
static size_t collect(const struct lade_sntp_client *c, const struct lade_sntp_now *now,
                      struct cand *cd)
{
    size_t k = 0;
    for (size_t i = 0; i < c->n; i++) {
        const struct lade_sntp_srv *s = &c->srv[i];
        if (!s->have || s->denied || now->mono_ms - s->sample_mono_ms > c->cfg.sample_max_age_ms)
            continue;
        cd[k].idx = i;
        cd[k].theta_us = s->sample_base_us - (now->wall_ms - (int64_t)now->mono_ms) * 1000;
        cd[k].delay_us = s->sample_delay_us;
        cd[k].stratum = s->sample_stratum;
        k++;
    }
    return k;
}

/* During a burst: can the answer already be given? Yes when every server that answers at all
 * has finished, the others have let at least one query go unanswered, and the winning group is
 * big enough and holds a strict majority of all usable servers (nothing still to come can
 * outvote it). So one silent address does not hold the first trust back by a whole burst. */
static bool early_decision(const struct lade_sntp_client *c, const struct lade_sntp_now *now)
{
    for (size_t i = 0; i < c->n; i++) {
        const struct lade_sntp_srv *s = &c->srv[i];
        if (member_done(c, s))
            continue;
        unsigned failed = s->round_sent - (s->pending ? 1u : 0u);
        if (s->round_heard || failed == 0)
            return false;
    }
    struct cand cd[LADE_SNTP_MAX_SERVERS];
    size_t k = collect(c, now, cd);
    if (k == 0)
        return false;
    size_t usable = 0;
    for (size_t i = 0; i < c->n; i++)
        usable += !c->srv[i].denied;
    unsigned win = choose_group(c, cd, k);
    if (!win)
        return false;
    unsigned w = popcount4(win);
    unsigned need = within(c, cd[pick(cd, k, win)].theta_us) ? 1 : c->cfg.quorum;
    return w >= need && 2 * w > usable;
}

/* Decides from the fresh samples; returns true when the time is (still) trusted and the clock
 * was corrected if needed. */
static bool decide(struct lade_sntp_client *c, struct lade_sntp_now *now)
{
    struct cand cd[LADE_SNTP_MAX_SERVERS];
    size_t k = collect(c, now, cd);
    enum lade_sntp_result why = LADE_SNTP_E_TIMEOUT;
    for (size_t i = 0; i < c->n; i++) {
        const struct lade_sntp_srv *s = &c->srv[i];
        if (s->member && s->diag.last_result != LADE_SNTP_OK) {
            why = s->diag.last_result;
            break;
        }
    }
    if (k == 0) {
        c->st.last_result = why;
        LOG_W(MOD, "no usable reply (%s)", lade_sntp_result_name(why));
        return false;
    }

    unsigned win = choose_group(c, cd, k);
    size_t sel = win ? pick(cd, k, win) : 0;
    int64_t theta = win ? cd[sel].theta_us : 0;
    unsigned need = within(c, theta) ? 1 : c->cfg.quorum;
    enum lade_sntp_result verdict = LADE_SNTP_OK;
    if (!win || popcount4(win) < need)
        verdict = LADE_SNTP_E_UNCONFIRMED;
    else if (now->wall_ms + us_to_ms(theta) < c->st.floor_ms)
        verdict = LADE_SNTP_E_FLOOR;

    for (size_t a = 0; a < k; a++) {
        struct lade_sntp_srv *s = &c->srv[cd[a].idx];
        bool in = win >> a & 1u;
        if (verdict == LADE_SNTP_OK) {
            s->diag.falseticker = !in;
            if (!in)
                note(s, LADE_SNTP_E_OUTVOTED);
        } else {
            s->diag.falseticker = true;
            note(s, (!win || in || verdict == LADE_SNTP_E_FLOOR) ? verdict : LADE_SNTP_E_OUTVOTED);
        }
    }
    c->st.last_result = verdict;
    if (verdict != LADE_SNTP_OK) {
        LOG_W(MOD, "not trusted: %s (best offset %lld ms, %u of %zu agree, %u needed)",
              lade_sntp_result_name(verdict), (long long)us_to_ms(theta), win ? popcount4(win) : 0u,
              k, need);
        return false;
    }

    int64_t theta_ms = us_to_ms(theta);
    c->st.server = (int)cd[sel].idx;
    c->st.offset_ms = theta_ms;
    c->st.delay_ms = (cd[sel].delay_us + 500) / 1000;
    c->st.stratum = cd[sel].stratum;
    c->st.agreeing = popcount4(win);
    c->st.last_sync_mono_ms = now->mono_ms;
    if (theta >= (int64_t)c->cfg.min_correction_ms * 1000 ||
        theta <= -(int64_t)c->cfg.min_correction_ms * 1000) {
        LOG_I(MOD, "clock corrected by %lld ms (server %zu, %u agree)", (long long)theta_ms,
              cd[sel].idx, popcount4(win));
        apply_step(c, now, theta_ms);
    } else {
        LOG_D(MOD, "offset %lld ms: within %u ms, left alone", (long long)theta_ms,
              c->cfg.min_correction_ms);
    }
    c->st.last_sync_wall_ms = now->wall_ms;
    return true;
}

static void finish_round(struct lade_sntp_client *c, struct lade_sntp_now *now)
{
    c->round_active = false;
    bool was_synced = c->state == LADE_SNTP_SYNCED;
    uint32_t steps = c->st.steps;
    bool ok = decide(c, now);
    for (size_t i = 0; i < c->n; i++) {
        /* A round decided early abandons what is still outstanding (the shell closes those
         * sockets, so late answers never arrive). */
        c->srv[i].member = false;
        c->srv[i].pending = false;
    }
    if (ok) {
        c->failures = 0;
        set_state(c, LADE_SNTP_SYNCED);
        c->round_at_ms = now->mono_ms + jitter(c, c->cfg.poll_min_ms, c->cfg.poll_max_ms);
        if (!was_synced || c->st.steps != steps)
            c->save_at_ms = now->mono_ms; /* newly trusted or stepped: save at once */
    } else {
        if (c->failures < UINT32_MAX)
            c->failures++;
        if (c->state == LADE_SNTP_BURST)
            set_state(c, LADE_SNTP_BACKOFF);
        c->round_at_ms = now->mono_ms + retry_delay(c);
    }
}

static void maybe_finish_round(struct lade_sntp_client *c, struct lade_sntp_now *now)
{
    if (!c->round_active)
        return;
    bool all_done = true;
    for (size_t i = 0; i < c->n && all_done; i++)
        all_done = member_done(c, &c->srv[i]);
    if (all_done || (c->round_burst && early_decision(c, now)))
        finish_round(c, now);
}

/* Starts the round the state calls for now, or schedules it. */
static void begin_round(struct lade_sntp_client *c, struct lade_sntp_now *now)
{
    uint64_t retry_at;
    bool burst = c->state == LADE_SNTP_BURST;
    if (start_round(c, burst, now, &retry_at)) {
        send_due(c, now);
        maybe_finish_round(c, now); /* every send may have failed at once */
        return;
    }
    if (retry_at != UINT64_MAX) {
        c->round_at_ms = retry_at; /* rate-limited servers: ask when allowed */
        if (burst)
            set_state(c, LADE_SNTP_BACKOFF);
        return;
    }
    /* Every server denied us: nothing to ask until the list is replaced (re-resolution). */
    c->st.last_result = LADE_SNTP_E_DENY;
    if (c->failures < UINT32_MAX)
        c->failures++;
    if (burst)
        set_state(c, LADE_SNTP_BACKOFF);
    c->round_at_ms = now->mono_ms + retry_delay(c);
}

/* ---------------------------------------------------------------- inputs */

static void reset_servers(struct lade_sntp_client *c, size_t n)
{
    memset(c->srv, 0, sizeof c->srv);
    c->n = n;
    for (size_t i = 0; i < n; i++)
        c->srv[i].diag.interval_ms = c->cfg.min_poll_ms;
}

/* After a new server list: untrusted → burst now; trusted → poll soon. */
static void restart(struct lade_sntp_client *c, struct lade_sntp_now now)
{
    c->round_active = false;
    c->st.server = -1; /* indices changed */
    if (c->state != LADE_SNTP_SYNCED) {
        c->failures = 0;
        set_state(c, LADE_SNTP_BURST);
    }
    enforce_floor(c, &now);
    if (c->state == LADE_SNTP_SYNCED) {
        c->round_at_ms = now.mono_ms;
        lade_sntp_client_tick(c, now);
        return;
    }
    begin_round(c, &now);
}

lade_err lade_sntp_client_start(struct lade_sntp_client *c, size_t n, struct lade_sntp_now now)
{
    if (!c || (n == 0 && !c->cfg.host_mode))
        return LADE_ERR_INVAL;
    if (n > LADE_SNTP_MAX_SERVERS)
        n = LADE_SNTP_MAX_SERVERS;
    reset_servers(c, n);
    if (c->cfg.host_mode) {
        /* The machine's own clock is trusted (a developer machine keeps its time with its own
         * NTP): nothing to ask, nothing to step. */
        c->round_active = false;
        set_state(c, LADE_SNTP_HOST);
        return LADE_OK;
    }
    restart(c, now);
    return LADE_OK;
}

lade_err lade_sntp_client_set_servers(struct lade_sntp_client *c, size_t n, const int *prev,
                                      struct lade_sntp_now now)
{
    if (!c || (n == 0 && !c->cfg.host_mode))
        return LADE_ERR_INVAL;
    if (c->state == LADE_SNTP_IDLE || c->cfg.host_mode)
        return lade_sntp_client_start(c, n, now);
    if (n > LADE_SNTP_MAX_SERVERS)
        n = LADE_SNTP_MAX_SERVERS;
    struct lade_sntp_srv old[LADE_SNTP_MAX_SERVERS];
    size_t old_n = c->n;
    memcpy(old, c->srv, sizeof old);
    reset_servers(c, n);
    for (size_t i = 0; i < n; i++) {
        if (!prev || prev[i] < 0 || (size_t)prev[i] >= old_n)
            continue;
        struct lade_sntp_srv *s = &c->srv[i];
        *s = old[prev[i]];
        s->member = s->round_over = s->pending = s->round_heard = false;
        s->round_sent = s->round_good = 0;
    }
    restart(c, now);
    return LADE_OK;
}

void lade_sntp_client_stop(struct lade_sntp_client *c)
{
    if (!c)
        return;
    c->round_active = false;
    for (size_t i = 0; i < c->n; i++)
        c->srv[i].member = c->srv[i].pending = false;
    set_state(c, LADE_SNTP_IDLE);
}

static bool kiss_is(const char *k, const char *code)
{
    return memcmp(k, code, 4) == 0;
}

enum lade_sntp_result lade_sntp_client_on_reply(struct lade_sntp_client *c, size_t server,
                                                const uint8_t *buf, size_t len,
                                                struct lade_sntp_now now)
{
    if (!c || server >= c->n || c->state == LADE_SNTP_IDLE || c->state == LADE_SNTP_HOST)
        return LADE_SNTP_E_ORIGIN;
    enforce_floor(c, &now);
    struct lade_sntp_srv *s = &c->srv[server];
    if (!s->pending) {
        /* Late, duplicated, or unsolicited: nothing to match it against (RFC 5905 §8). */
        LOG_D(MOD, "server %zu: reply with no query outstanding ignored", server);
        note(s, LADE_SNTP_E_ORIGIN);
        return LADE_SNTP_E_ORIGIN;
    }
    struct lade_sntp_reply r;
    enum lade_sntp_result res = lade_sntp_decode_reply(buf, len, s->cookie, &r);
    if (res == LADE_SNTP_E_SHORT || res == LADE_SNTP_E_MODE || res == LADE_SNTP_E_VERSION ||
        res == LADE_SNTP_E_ORIGIN) {
        /* Not (provably) the answer to our query: anyone can send such a packet, so it must not
         * end the exchange — the real reply may still come. */
        LOG_D(MOD, "server %zu: packet ignored (%s)", server, lade_sntp_result_name(res));
        note(s, res);
        return res;
    }
    s->pending = false;
    s->round_heard = true;
    uint64_t elapsed = now.mono_ms - s->sent_mono_ms;
    s->diag.last_reply_mono_ms = now.mono_ms;

    if (res == LADE_SNTP_KOD) {
        memcpy(s->diag.kiss, r.kiss, sizeof s->diag.kiss);
        if (kiss_is(r.kiss, "RATE")) {
            s->round_over = true;
            /* RFC 5905 §7.4: reduce the rate; never past MAXPOLL. */
            if (srv_interval(c, s) < c->cfg.max_poll_ms && s->rate_level < 31)
                s->rate_level++;
            s->diag.interval_ms = srv_interval(c, s);
            res = LADE_SNTP_E_RATE;
            LOG_W(MOD, "server %zu: KoD RATE, interval now %u s", server,
                  s->diag.interval_ms / 1000);
        } else if (kiss_is(r.kiss, "DENY") || kiss_is(r.kiss, "RSTR")) {
            s->round_over = true;
            s->denied = true;
            s->have = false;
            s->diag.denied = true;
            res = LADE_SNTP_E_DENY;
            LOG_W(MOD, "server %zu: KoD %s, not asked again", server, r.kiss);
        } else {
            /* Other codes (INIT, STEP, ...) carry no time; the burst goes on (RFC 5905 §7.4). */
            res = LADE_SNTP_E_KISS;
            LOG_D(MOD, "server %zu: KoD %s", server, r.kiss);
        }
        note(s, res);
        maybe_finish_round(c, &now);
        return res;
    }
    if (res == LADE_SNTP_OK) {
        uint64_t t1 = lade_ntp_from_unix_ms(s->sent_wall_ms);
        /* t4 from the monotonic clock: a step of the wall clock in flight cannot spoil δ. */
        uint64_t t4 = lade_ntp_from_unix_ms(s->sent_wall_ms + (int64_t)elapsed);
        int64_t off_us, del_us;
        lade_sntp_offset_delay(t1, r.pkt.rx_ts, r.pkt.tx_ts, t4, &off_us, &del_us);
        int64_t base_us = (s->sent_wall_ms - (int64_t)s->sent_mono_ms) * 1000 + off_us;
        if (del_us < -DELAY_SLACK_US) {
            res = LADE_SNTP_E_ORDER;
        } else if ((uint64_t)r.root_delay_us / 2 + r.root_disp_us >
                   (uint64_t)c->cfg.max_root_distance_ms * 1000) {
            res = LADE_SNTP_E_ROOT;
        } else if (base_us / 1000 + (int64_t)now.mono_ms < c->st.floor_ms) {
            res = LADE_SNTP_E_FLOOR;
        } else {
            if (del_us < 0)
                del_us = 0;
            if (s->round_good == 0 || !s->have || (uint64_t)del_us <= s->sample_delay_us) {
                s->have = true;
                s->sample_base_us = base_us;
                s->sample_mono_ms = now.mono_ms;
                s->sample_delay_us = del_us > UINT32_MAX ? UINT32_MAX : (uint32_t)del_us;
                s->sample_stratum = r.pkt.stratum;
                s->diag.have_sample = true;
                s->diag.offset_ms = us_to_ms(off_us);
                s->diag.delay_ms = (s->sample_delay_us + 500) / 1000;
                s->diag.stratum = r.pkt.stratum;
            }
            if (s->round_good < 255)
                s->round_good++;
            s->diag.good++;
            LOG_D(MOD, "server %zu: offset %lld µs delay %lld µs stratum %u", server,
                  (long long)off_us, (long long)del_us, r.pkt.stratum);
        }
    }
    if (res == LADE_SNTP_OK)
        s->diag.last_result = LADE_SNTP_OK;
    else
        note(s, res);
    if (res != LADE_SNTP_OK)
        LOG_D(MOD, "server %zu: reply rejected (%s)", server, lade_sntp_result_name(res));
    maybe_finish_round(c, &now);
    return res;
}

void lade_sntp_client_on_error(struct lade_sntp_client *c, size_t server, enum lade_sntp_result why,
                               struct lade_sntp_now now)
{
    if (!c || server >= c->n || !c->srv[server].pending)
        return;
    enforce_floor(c, &now);
    c->srv[server].pending = false;
    note(&c->srv[server], why);
    LOG_D(MOD, "server %zu: %s", server, lade_sntp_result_name(why));
    maybe_finish_round(c, &now);
}

void lade_sntp_client_tick(struct lade_sntp_client *c, struct lade_sntp_now now)
{
    if (!c || c->state == LADE_SNTP_IDLE || c->state == LADE_SNTP_HOST)
        return;
    enforce_floor(c, &now);
    for (size_t i = 0; i < c->n; i++) {
        struct lade_sntp_srv *s = &c->srv[i];
        if (s->pending && now.mono_ms >= s->timeout_mono_ms) {
            s->pending = false;
            note(s, LADE_SNTP_E_TIMEOUT);
            LOG_D(MOD, "server %zu: no reply", i);
        }
    }
    maybe_finish_round(c, &now); /* a time-out may allow the decision: before sending more */
    send_due(c, &now);
    maybe_finish_round(c, &now);
    if (!c->round_active && (c->state == LADE_SNTP_BACKOFF || c->state == LADE_SNTP_SYNCED) &&
        now.mono_ms >= c->round_at_ms) {
        if (c->state == LADE_SNTP_BACKOFF)
            set_state(c, LADE_SNTP_BURST);
        begin_round(c, &now);
    }
    if (c->state == LADE_SNTP_SYNCED && now.mono_ms >= c->save_at_ms) {
        /* Only trusted time is saved: an untrusted clock set far ahead must never become a floor
         * that no server can get under. The floor in force stays the one from the start: a save
         * from a clock that drifted a little fast must not refuse the next small backward
         * correction; the saved value is the next boot's floor. */
        c->st.last_save_wall_ms = now.wall_ms;
        c->save_at_ms = now.mono_ms + c->cfg.save_interval_ms;
        if (c->ops.save_floor)
            c->ops.save_floor(c->ud, now.wall_ms);
    }
}

uint64_t lade_sntp_client_next_ms(const struct lade_sntp_client *c)
{
    if (!c || c->state == LADE_SNTP_IDLE || c->state == LADE_SNTP_HOST)
        return UINT64_MAX;
    uint64_t next = UINT64_MAX;
    if (c->round_active) {
        for (size_t i = 0; i < c->n; i++) {
            const struct lade_sntp_srv *s = &c->srv[i];
            uint64_t t = UINT64_MAX;
            if (s->pending)
                t = s->timeout_mono_ms;
            else if (!member_done(c, s))
                t = s->next_send_mono_ms;
            if (t < next)
                next = t;
        }
    } else if (c->state == LADE_SNTP_BACKOFF || c->state == LADE_SNTP_SYNCED) {
        next = c->round_at_ms;
    }
    if (c->state == LADE_SNTP_SYNCED && c->save_at_ms < next)
        next = c->save_at_ms;
    return next;
}

enum lade_sntp_state lade_sntp_client_state(const struct lade_sntp_client *c)
{
    return c ? c->state : LADE_SNTP_IDLE;
}

bool lade_sntp_client_trusted(const struct lade_sntp_client *c)
{
    return c && trusted_state(c->state);
}

bool lade_sntp_client_pending(const struct lade_sntp_client *c, size_t server)
{
    return c && server < c->n && c->srv[server].pending;
}

size_t lade_sntp_client_servers(const struct lade_sntp_client *c)
{
    return c ? c->n : 0;
}

void lade_sntp_client_status(const struct lade_sntp_client *c, struct lade_sntp_status *out)
{
    if (!c || !out)
        return;
    *out = c->st;
    out->state = c->state;
    out->trusted = trusted_state(c->state);
    out->next_mono_ms = lade_sntp_client_next_ms(c);
}

lade_err lade_sntp_client_server_diag(const struct lade_sntp_client *c, size_t i,
                                      struct lade_sntp_server_diag *out)
{
    if (!c || !out)
        return LADE_ERR_INVAL;
    if (i >= c->n)
        return LADE_ERR_NOT_FOUND;
    *out = c->srv[i].diag;
    out->interval_ms = srv_interval(c, &c->srv[i]);
    return LADE_OK;
}
