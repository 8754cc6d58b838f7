/* Unit tests for the SNTP client state machine (src/proto/sntp/client.c) on a fake clock with
 * fake servers: burst, agreement, floor, KoD RATE/DENY, a server an hour off alone or outvoted,
 * a clock starting in 1970, poll intervals (≥ 64 s per server, 1–4 h jittered), floor saves,
 * host mode, outages. Days of simulated time run in milliseconds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lade/log.h"
#include "lade/sntp.h"

#define REAL0     1764761234000ll /* real time at mono 0 (2025-12-03) */
#define MONO0     1000000ull      /* fake monotonic start */
#define HOUR      3600000ll
#define DAY       (24 * HOUR)
#define MAX_Q     4096
#define MAX_SENDS 512

struct fsrv {
    int64_t off_ms;    /* server time − real time */
    uint32_t delay_ms; /* round trip */
    bool silent;       /* never answers */
    bool refused;      /* ICMP port unreachable */
    const char *kiss;  /* answers with this KoD */
    bool wrong_origin; /* echoes something else */
    bool forge_first;  /* a forged DENY (wrong origin) arrives before the real answer */
    uint8_t stratum;   /* 0 → 2 */
    uint8_t leap;
    uint64_t sends[MAX_SENDS];
    size_t n_sends;
};

struct query {
    size_t server;
    uint64_t cookie;
    uint64_t sent_mono;
    uint64_t arrive_mono;
    bool forged; /* this delivery is the forged one */
    bool done;
};

struct fake {
    uint64_t mono;
    int64_t clock_err_ms; /* system clock − real time at start */
    int64_t correction;   /* sum of steps */
    uint64_t rnd;
    struct fsrv srv[LADE_SNTP_MAX_SERVERS];
    struct query q[MAX_Q];
    size_t nq;
    int trust_calls;
    bool trusted;
    int steps;
    int64_t steps_ms[64];
    int saves;
    int64_t last_save;
    uint64_t save_mono[256];
    struct lade_sntp_client c;
};

static struct fake *F;

static int64_t real_ms(const struct fake *f, uint64_t mono)
{
    (void)f;
    return REAL0 + (int64_t)(mono - MONO0);
}

/* The disciplined clock. */
static int64_t clock_ms(const struct fake *f)
{
    return real_ms(f, f->mono) + f->clock_err_ms + f->correction;
}

static struct lade_sntp_now now_of(const struct fake *f)
{
    struct lade_sntp_now n = {.mono_ms = f->mono, .wall_ms = clock_ms(f)};
    return n;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static lade_err op_send(void *ud, size_t i, const uint8_t *pkt, size_t len)
{
    struct fake *f = ud;
    assert_int_equal(len, 48);
    assert_int_equal(pkt[0], 0x23);
    struct fsrv *s = &f->srv[i];
    assert_true(s->n_sends < MAX_SENDS);
    s->sends[s->n_sends++] = f->mono;
    if (s->refused) {
        assert_true(f->nq < MAX_Q);
        f->q[f->nq++] = (struct query){.server = i,
                                       .cookie = 0,
                                       .sent_mono = f->mono,
                                       .arrive_mono = f->mono + 1,
                                       .forged = false};
        return LADE_OK;
    }
    if (s->silent)
        return LADE_OK;
    uint64_t cookie = get64(pkt + 40);
    uint32_t delay = s->delay_ms ? s->delay_ms : 20;
    if (s->forge_first) {
        assert_true(f->nq < MAX_Q);
        f->q[f->nq++] = (struct query){.server = i,
                                       .cookie = cookie,
                                       .sent_mono = f->mono,
                                       .arrive_mono = f->mono + 1,
                                       .forged = true};
    }
    assert_true(f->nq < MAX_Q);
    f->q[f->nq++] = (struct query){
        .server = i, .cookie = cookie, .sent_mono = f->mono, .arrive_mono = f->mono + delay};
    return LADE_OK;
}

static uint64_t op_random64(void *ud)
{
    struct fake *f = ud;
    /* splitmix64: deterministic per test seed */
    uint64_t z = (f->rnd += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void op_step(void *ud, int64_t corr)
{
    struct fake *f = ud;
    f->correction += corr;
    if (f->steps < 64)
        f->steps_ms[f->steps] = corr;
    f->steps++;
}

static void op_trust(void *ud, bool t)
{
    struct fake *f = ud;
    assert_true(f->trusted != t);
    f->trusted = t;
    f->trust_calls++;
}

static void op_save(void *ud, int64_t wall)
{
    struct fake *f = ud;
    if (f->saves < 256)
        f->save_mono[f->saves] = f->mono;
    f->saves++;
    f->last_save = wall;
}

static const struct lade_sntp_ops OPS = {.send = op_send,
                                         .random64 = op_random64,
                                         .step = op_step,
                                         .trust = op_trust,
                                         .save_floor = op_save};

static struct fake *fake_new(uint64_t seed)
{
    struct fake *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->mono = MONO0;
    f->rnd = seed;
    for (size_t i = 0; i < LADE_SNTP_MAX_SERVERS; i++)
        f->srv[i].stratum = 2;
    F = f;
    return f;
}

static void fake_init(struct fake *f, const struct lade_sntp_cfg *cfg_in)
{
    struct lade_sntp_cfg cfg;
    if (cfg_in)
        cfg = *cfg_in;
    else
        lade_sntp_cfg_default(&cfg);
    if (!cfg_in)
        cfg.floor_ms = REAL0 - 30 * DAY; /* build time: a month ago */
    assert_int_equal(lade_sntp_client_init(&f->c, &cfg, &OPS, f), LADE_OK);
}

static void build_reply(struct fake *f, const struct query *q, uint8_t *buf, size_t *len)
{
    struct fsrv *s = &f->srv[q->server];
    struct lade_sntp_packet p;
    memset(&p, 0, sizeof p);
    p.version = 4;
    p.mode = 4;
    p.leap = s->leap;
    p.stratum = s->stratum;
    p.root_delay = 0x100;
    p.root_disp = 0x100;
    p.orig_ts = s->wrong_origin || q->forged ? q->cookie ^ 0x10000 : q->cookie;
    int64_t server_ms = real_ms(f, q->sent_mono + (q->arrive_mono - q->sent_mono) / 2) + s->off_ms;
    p.rx_ts = lade_ntp_from_unix_ms(server_ms);
    p.tx_ts = p.rx_ts;
    p.ref_ts = p.rx_ts - (16ull << 32);
    const char *kiss = q->forged ? "DENY" : s->kiss;
    if (kiss) {
        p.stratum = 0;
        p.leap = 3;
        p.refid = (uint32_t)kiss[0] << 24 | (uint32_t)kiss[1] << 16 | (uint32_t)kiss[2] << 8 |
                  (uint32_t)kiss[3];
    }
    assert_int_equal(lade_sntp_encode(&p, buf, 48, len), LADE_OK);
}

/* Runs the fake world until mono reaches `until`. */
static void run_until(struct fake *f, uint64_t until)
{
    for (int guard = 0; guard < 1000000; guard++) {
        uint64_t next = lade_sntp_client_next_ms(&f->c);
        size_t qi = SIZE_MAX;
        for (size_t i = 0; i < f->nq; i++)
            if (!f->q[i].done && (qi == SIZE_MAX || f->q[i].arrive_mono < f->q[qi].arrive_mono))
                qi = i;
        uint64_t arrive = qi == SIZE_MAX ? UINT64_MAX : f->q[qi].arrive_mono;
        uint64_t t = next < arrive ? next : arrive;
        if (t > until) {
            f->mono = until;
            return;
        }
        if (t > f->mono)
            f->mono = t;
        if (arrive <= next) {
            struct query *q = &f->q[qi];
            q->done = true;
            if (f->srv[q->server].refused) {
                lade_sntp_client_on_error(&f->c, q->server, LADE_SNTP_E_REFUSED, now_of(f));
            } else {
                uint8_t buf[48];
                size_t len;
                build_reply(f, q, buf, &len);
                (void)lade_sntp_client_on_reply(&f->c, q->server, buf, len, now_of(f));
            }
        } else {
            lade_sntp_client_tick(&f->c, now_of(f));
        }
    }
    fail_msg("run_until: no progress");
}

static void run_for(struct fake *f, uint64_t ms)
{
    run_until(f, f->mono + ms);
}

static void start(struct fake *f, size_t n)
{
    assert_int_equal(lade_sntp_client_start(&f->c, n, now_of(f)), LADE_OK);
}

static struct lade_sntp_server_diag diag(struct fake *f, size_t i)
{
    struct lade_sntp_server_diag d;
    assert_int_equal(lade_sntp_client_server_diag(&f->c, i, &d), LADE_OK);
    return d;
}

static int64_t clock_error(const struct fake *f)
{
    return clock_ms(f) - real_ms(f, f->mono);
}

static int teardown(void **state)
{
    (void)state;
    free(F);
    F = NULL;
    return 0;
}

/* ---------------------------------------------------------------- tests */

static void test_init_validation(void **state)
{
    (void)state;
    struct lade_sntp_client c;
    struct lade_sntp_cfg cfg;
    lade_sntp_cfg_default(&cfg);
    assert_int_equal(lade_sntp_client_init(&c, &cfg, &OPS, NULL), LADE_OK);
    assert_int_equal(lade_sntp_client_state(&c), LADE_SNTP_IDLE);
    assert_false(lade_sntp_client_trusted(&c));
    assert_int_equal(lade_sntp_client_next_ms(&c), UINT64_MAX);
    struct lade_sntp_now now = {MONO0, REAL0};
    assert_int_equal(lade_sntp_client_start(&c, 0, now), LADE_ERR_INVAL);

    struct lade_sntp_ops ops = OPS;
    ops.step = NULL;
    assert_int_equal(lade_sntp_client_init(&c, &cfg, &ops, NULL), LADE_ERR_INVAL);
    cfg.host_mode = true; /* host mode never steps */
    assert_int_equal(lade_sntp_client_init(&c, &cfg, &ops, NULL), LADE_OK);
    ops = OPS;
    ops.random64 = NULL;
    assert_int_equal(lade_sntp_client_init(&c, &cfg, &ops, NULL), LADE_ERR_INVAL);

    struct lade_sntp_cfg bad[8];
    for (int i = 0; i < 8; i++)
        lade_sntp_cfg_default(&bad[i]);
    bad[0].quorum = 0;
    bad[1].burst_good = 5;
    bad[2].burst_queries = 0;
    bad[3].poll_min_ms = bad[3].poll_max_ms + 1;
    bad[4].retry_min_ms = bad[4].retry_max_ms + 1;
    bad[5].min_poll_ms = 0;
    bad[6].reply_timeout_ms = 0;
    bad[7].burst_queries = 256;
    for (int i = 0; i < 8; i++)
        assert_int_equal(lade_sntp_client_init(&c, &bad[i], &OPS, NULL), LADE_ERR_CONFIG);
}

/* The system clock is an hour behind; two servers agree: one step, trusted, saved. */
static void test_two_agree_step(void **state)
{
    (void)state;
    struct fake *f = fake_new(1);
    f->clock_err_ms = -HOUR;
    fake_init(f, NULL);
    start(f, 2);
    assert_int_equal(lade_sntp_client_state(&f->c), LADE_SNTP_BURST);
    assert_false(lade_sntp_client_trusted(&f->c));
    /* Both servers asked at once. */
    assert_int_equal(f->srv[0].n_sends, 1);
    assert_int_equal(f->srv[1].n_sends, 1);
    run_for(f, 30000);
    assert_int_equal(lade_sntp_client_state(&f->c), LADE_SNTP_SYNCED);
    assert_true(f->trusted);
    assert_int_equal(f->trust_calls, 1);
    assert_int_equal(f->steps, 1);
    assert_true(llabs(f->steps_ms[0] - HOUR) <= 2);
    assert_true(llabs(clock_error(f)) <= 2);
    /* The burst stopped after two good replies per server, 2 s apart. */
    assert_int_equal(f->srv[0].n_sends, 2);
    assert_int_equal(f->srv[0].sends[1] - f->srv[0].sends[0], 2000);
    struct lade_sntp_status st;
    lade_sntp_client_status(&f->c, &st);
    assert_true(st.trusted);
    assert_int_equal(st.agreeing, 2);
    assert_true(st.server == 0 || st.server == 1);
    assert_true(llabs(st.offset_ms - HOUR) <= 2);
    assert_int_equal(st.stratum, 2);
    assert_int_equal(st.delay_ms, 20);
    assert_int_equal(st.last_result, LADE_SNTP_OK);
    /* The trusted time is saved at once. */
    assert_int_equal(f->saves, 1);
    assert_true(llabs(f->last_save - real_ms(f, f->save_mono[0])) <= 5);
    assert_int_equal(diag(f, 0).last_result, LADE_SNTP_OK);
    assert_true(diag(f, 0).have_sample);
    assert_false(diag(f, 1).falseticker);
}

/* One server, an hour off, alone: not trusted, marked. */
static void test_hour_off_alone(void **state)
{
    (void)state;
    struct fake *f = fake_new(2);
    f->srv[0].off_ms = HOUR;
    fake_init(f, NULL);
    start(f, 1);
    run_for(f, 30000);
    assert_int_equal(lade_sntp_client_state(&f->c), LADE_SNTP_BACKOFF);
    assert_false(f->trusted);
    assert_int_equal(f->steps, 0);
    struct lade_sntp_server_diag d = diag(f, 0);
    assert_true(d.falseticker);
    assert_int_equal(d.last_result, LADE_SNTP_E_UNCONFIRMED);
    assert_true(llabs(d.offset_ms - HOUR) <= 2);
    struct lade_sntp_status st;
    lade_sntp_client_status(&f->c, &st);
    assert_int_equal(st.last_result, LADE_SNTP_E_UNCONFIRMED);
    assert_int_equal(st.server, -1);
    assert_int_equal(f->saves, 0); /* untrusted time is never saved */
    /* It keeps trying (R11), never trusting it. */
    run_for(f, 6 * HOUR);
    assert_false(f->trusted);
    assert_int_equal(f->steps, 0);
    assert_true(f->srv[0].n_sends > 4);
}

/* An hour-off server among two good ones: trusted with the good time, the bad one flagged. */
static void test_hour_off_outvoted(void **state)
{
    (void)state;
    struct fake *f = fake_new(3);
    f->srv[1].off_ms = HOUR;
    fake_init(f, NULL);
    start(f, 3);
    run_for(f, 30000);
    assert_true(f->trusted);
    assert_int_equal(f->steps, 0); /* the clock was right */
    assert_true(diag(f, 1).falseticker);
    assert_int_equal(diag(f, 1).last_result, LADE_SNTP_E_OUTVOTED);
    assert_false(diag(f, 0).falseticker);
    assert_false(diag(f, 2).falseticker);
    struct lade_sntp_status st;
    lade_sntp_client_status(&f->c, &st);
    assert_int_equal(st.agreeing, 2);
    assert_true(st.server == 0 || st.server == 2);

    /* Two of three an hour off while our clock is right: the majority wins (and we step). */
    struct fake *g = fake_new(4);
    free(f);
    g->srv[0].off_ms = HOUR;
    g->srv[1].off_ms = HOUR + 200;
    fake_init(g, NULL);
    start(g, 3);
    run_for(g, 30000);
    assert_true(g->trusted);
    assert_int_equal(g->steps, 1);
    assert_true(llabs(clock_error(g) - HOUR) <= 300);
    assert_int_equal(diag(g, 2).last_result, LADE_SNTP_E_OUTVOTED);
}

/* One good server and one an hour off: the one that needs no step wins the tie; two that both
 * want big, different steps: nobody. */
static void test_ties(void **state)
{
    (void)state;
    struct fake *f = fake_new(5);
    f->srv[1].off_ms = HOUR;
    fake_init(f, NULL);
    start(f, 2);
    run_for(f, 30000);
    assert_true(f->trusted);
    assert_int_equal(f->steps, 0);
    assert_int_equal(diag(f, 1).last_result, LADE_SNTP_E_OUTVOTED);

    struct fake *g = fake_new(6);
    free(f);
    g->srv[0].off_ms = HOUR;
    g->srv[1].off_ms = -HOUR;
    fake_init(g, NULL);
    start(g, 2);
    run_for(g, 30000);
    assert_false(g->trusted);
    assert_int_equal(g->steps, 0);
    assert_int_equal(diag(g, 0).last_result, LADE_SNTP_E_UNCONFIRMED);
    assert_int_equal(diag(g, 1).last_result, LADE_SNTP_E_UNCONFIRMED);
}

/* One server, small offsets: confirmed without a quorum (it agrees with our clock); 500 ms is
 * corrected, 50 ms is left alone. Agreement tolerance includes half the delays. */
static void test_single_small(void **state)
{
    (void)state;
    struct fake *f = fake_new(7);
    f->srv[0].off_ms = 500;
    fake_init(f, NULL);
    start(f, 1);
    run_for(f, 30000);
    assert_true(f->trusted);
    assert_int_equal(f->steps, 1);
    assert_true(llabs(f->steps_ms[0] - 500) <= 2);

    struct fake *g = fake_new(8);
    free(f);
    g->srv[0].off_ms = 50;
    fake_init(g, NULL);
    start(g, 1);
    run_for(g, 30000);
    assert_true(g->trusted);
    assert_int_equal(g->steps, 0);
    struct lade_sntp_status st;
    lade_sntp_client_status(&g->c, &st);
    assert_true(llabs(st.offset_ms - 50) <= 2);

    /* 1.2 s apart with 1 s delays each: agree (0.5 + (1 + 1)/2 = 1.5 s); clock 1 day off. */
    struct fake *h = fake_new(9);
    free(g);
    h->clock_err_ms = -DAY;
    h->srv[0].delay_ms = 1000;
    h->srv[1].delay_ms = 1000;
    h->srv[1].off_ms = 1200;
    fake_init(h, NULL);
    start(h, 2);
    run_for(h, 30000);
    assert_true(h->trusted);
    /* 1.6 s apart: they do not. */
    struct fake *k = fake_new(10);
    free(h);
    k->clock_err_ms = -DAY;
    k->srv[0].delay_ms = 1000;
    k->srv[1].delay_ms = 1000;
    k->srv[1].off_ms = 1600;
    fake_init(k, NULL);
    start(k, 2);
    run_for(k, 30000);
    assert_false(k->trusted);
}

/* The system clock starts in 1970: stepped to the floor at once (still untrusted), then to the
 * servers' time once two agree. */
static void test_1970_floor_then_sync(void **state)
{
    (void)state;
    struct fake *f = fake_new(11);
    f->clock_err_ms = -REAL0; /* reads 1970 */
    struct lade_sntp_cfg cfg;
    lade_sntp_cfg_default(&cfg);
    int64_t floor = REAL0 - 200 * DAY; /* build time */
    cfg.floor_ms = floor;
    fake_init(f, &cfg);
    /* Nothing is sent before the floor step. */
    start(f, 4);
    assert_true(f->steps >= 1);
    assert_int_equal(f->steps_ms[0], floor - (real_ms(f, MONO0) - REAL0));
    assert_false(f->trusted);
    run_for(f, 30000);
    assert_true(f->trusted);
    assert_int_equal(f->steps, 2);
    assert_true(llabs(clock_error(f)) <= 2);
    struct lade_sntp_status st;
    lade_sntp_client_status(&f->c, &st);
    assert_int_equal(st.steps, 2);
    assert_int_equal(st.agreeing, 4);
    assert_int_equal(st.floor_ms, floor);
}

/* Servers below the floor are refused; the clock never goes under it. */
static void test_floor_refuses(void **state)
{
    (void)state;
    struct fake *f = fake_new(12);
    struct lade_sntp_cfg cfg;
    lade_sntp_cfg_default(&cfg);
    cfg.floor_ms = REAL0 + DAY; /* e.g. a saved time from a clock that ran a day fast */
    fake_init(f, &cfg);
    start(f, 2);
    int64_t after_floor = clock_ms(f);
    assert_true(after_floor >= cfg.floor_ms);
    run_for(f, 30000);
    assert_false(f->trusted);
    assert_int_equal(f->steps, 1); /* only the floor step */
    assert_int_equal(diag(f, 0).last_result, LADE_SNTP_E_FLOOR);
    assert_false(diag(f, 0).have_sample);
    assert_true(clock_ms(f) >= cfg.floor_ms);
    /* Someone sets the clock back under the floor: it comes back up. */
    f->correction -= 2 * DAY;
    lade_sntp_client_tick(&f->c, now_of(f));
    assert_true(clock_ms(f) >= cfg.floor_ms);
}

/* KoD RATE: that server's burst ends at once, its interval doubles each time, and it is never
 * asked before its interval. */
static void test_kod_rate(void **state)
{
    (void)state;
    struct fake *f = fake_new(13);
    f->srv[0].kiss = "RATE";
    fake_init(f, NULL);
    start(f, 3);
    run_for(f, 30000);
    assert_true(f->trusted); /* the other two agree */
    assert_int_equal(f->srv[0].n_sends, 1);
    assert_int_equal(f->srv[1].n_sends, 2);
    struct lade_sntp_server_diag d = diag(f, 0);
    assert_int_equal(d.last_result, LADE_SNTP_E_RATE);
    assert_string_equal(d.kiss, "RATE");
    assert_int_equal(d.interval_ms, 128000);
    assert_false(d.denied);

    /* Alone and untrusted, every retry burst still respects the doubled interval. */
    struct fake *g = fake_new(14);
    free(f);
    g->srv[0].kiss = "RATE";
    fake_init(g, NULL);
    start(g, 1);
    run_for(g, 48 * HOUR);
    assert_false(g->trusted);
    struct fsrv *s = &g->srv[0];
    assert_true(s->n_sends >= 6);
    uint64_t interval = 64000;
    for (size_t i = 1; i < s->n_sends; i++) {
        interval = interval * 2 > 36 * 3600000ull ? 36 * 3600000ull : interval * 2;
        assert_true(s->sends[i] - s->sends[i - 1] >= interval);
    }
    interval = interval * 2 > 36 * 3600000ull ? 36 * 3600000ull : interval * 2; /* last RATE */
    assert_int_equal(diag(g, 0).interval_ms, interval);
}

/* KoD DENY / RSTR: that server is never asked again; a forged DENY changes nothing. */
static void test_kod_deny(void **state)
{
    (void)state;
    const char *codes[] = {"DENY", "RSTR"};
    for (int k = 0; k < 2; k++) {
        struct fake *f = fake_new(15 + (uint64_t)k);
        f->srv[2].kiss = codes[k];
        fake_init(f, NULL);
        start(f, 3);
        run_for(f, 30000);
        assert_true(f->trusted);
        assert_int_equal(f->srv[2].n_sends, 1);
        run_for(f, 3 * DAY);
        assert_int_equal(f->srv[2].n_sends, 1);
        assert_true(f->srv[0].n_sends > 10);
        assert_true(diag(f, 2).denied);
        assert_int_equal(diag(f, 2).last_result, LADE_SNTP_E_DENY);
        free(f);
        F = NULL;
    }
    /* Forged: the DENY arrives first but does not echo our cookie. */
    struct fake *g = fake_new(17);
    g->srv[0].forge_first = true;
    fake_init(g, NULL);
    start(g, 1);
    run_for(g, 30000);
    assert_true(g->trusted);
    assert_false(diag(g, 0).denied);
    assert_int_equal(diag(g, 0).good, 2);
    assert_int_equal(diag(g, 0).last_result, LADE_SNTP_OK);
    /* Every server denies: nothing is sent any more, untrusted. */
    struct fake *h = fake_new(18);
    free(g);
    h->srv[0].kiss = "DENY";
    fake_init(h, NULL);
    start(h, 1);
    run_for(h, DAY);
    assert_false(h->trusted);
    assert_int_equal(h->srv[0].n_sends, 1);
    struct lade_sntp_status st;
    lade_sntp_client_status(&h->c, &st);
    assert_int_equal(st.last_result, LADE_SNTP_E_DENY);
}

/* A reply with the wrong originate is ignored (the query stays outstanding and times out). */
static void test_wrong_origin(void **state)
{
    (void)state;
    struct fake *f = fake_new(19);
    f->srv[0].wrong_origin = true;
    fake_init(f, NULL);
    start(f, 1);
    run_for(f, 30000);
    assert_false(f->trusted);
    assert_int_equal(f->srv[0].n_sends, 4); /* the whole burst */
    struct lade_sntp_server_diag d = diag(f, 0);
    assert_false(d.have_sample);
    assert_int_equal(d.good, 0);
    assert_true(d.last_result == LADE_SNTP_E_TIMEOUT || d.last_result == LADE_SNTP_E_ORIGIN);

    /* A duplicate of a good reply is ignored too. */
    struct fake *g = fake_new(20);
    free(f);
    fake_init(g, NULL);
    start(g, 1);
    assert_int_equal(g->nq, 1);
    struct query q = g->q[0];
    g->mono += 20;
    uint8_t buf[48];
    size_t len;
    build_reply(g, &q, buf, &len);
    assert_int_equal(lade_sntp_client_on_reply(&g->c, 0, buf, len, now_of(g)), LADE_SNTP_OK);
    assert_int_equal(lade_sntp_client_on_reply(&g->c, 0, buf, len, now_of(g)), LADE_SNTP_E_ORIGIN);
    assert_int_equal(lade_sntp_client_on_reply(&g->c, 7, buf, len, now_of(g)), LADE_SNTP_E_ORIGIN);
    assert_int_equal(diag(g, 0).good, 1);
}

/* Unreachable servers: untrusted, retries back off from 64 s to ~17 min, nothing blocks. */
static void test_unreachable(void **state)
{
    (void)state;
    struct fake *f = fake_new(21);
    f->srv[0].refused = true;
    f->srv[1].silent = true;
    fake_init(f, NULL);
    start(f, 2);
    run_for(f, 20000);
    assert_int_equal(lade_sntp_client_state(&f->c), LADE_SNTP_BACKOFF);
    assert_false(f->trusted);
    assert_int_equal(diag(f, 0).last_result, LADE_SNTP_E_REFUSED);
    assert_int_equal(diag(f, 1).last_result, LADE_SNTP_E_TIMEOUT);
    /* Refused queries do not wait for the timeout; the silent one ends after ~12 s. */
    assert_int_equal(f->srv[1].n_sends, 4);
    assert_int_equal(f->srv[1].sends[1] - f->srv[1].sends[0], 3000);
    run_for(f, 12 * HOUR);
    struct fsrv *s = &f->srv[1];
    size_t bursts = 0;
    for (size_t i = 1; i < s->n_sends; i++) {
        uint64_t gap = s->sends[i] - s->sends[i - 1];
        if (gap > 10000) { /* between bursts */
            bursts++;
            assert_true(gap >= 64000);
            assert_true(gap <= 1024000 + 12000);
        }
    }
    assert_true(bursts >= 12);
    struct lade_sntp_status st;
    lade_sntp_client_status(&f->c, &st);
    assert_false(st.trusted);
    assert_true(st.next_mono_ms > f->mono && st.next_mono_ms <= f->mono + 1024000 + 12000);
}

/* Steady state: polls 1–4 h apart (jittered), no server more often than every 64 s, floor saved
 * every 5 min, drift corrected; trust survives an outage. */
static void test_steady_polls(void **state)
{
    (void)state;
    struct fake *f = fake_new(22);
    fake_init(f, NULL);
    start(f, 3);
    run_for(f, 30000);
    assert_true(f->trusted);
    size_t burst_sends = f->srv[0].n_sends;
    int saves0 = f->saves;
    /* A clock drifting 50 ppm fast: simulate by shifting the clock between runs. */
    for (int h = 0; h < 72; h++) {
        run_for(f, HOUR);
        f->clock_err_ms += 180; /* 50 ppm */
    }
    for (size_t i = 0; i < 3; i++) {
        struct fsrv *s = &f->srv[i];
        assert_true(s->n_sends >= burst_sends + 72 / 4);
        assert_true(s->n_sends <= burst_sends + 72 + 1);
        for (size_t k = burst_sends; k < s->n_sends; k++) {
            uint64_t gap = s->sends[k] - s->sends[k - 1];
            assert_true(gap >= HOUR - 5000);
            assert_true(gap <= 4 * HOUR + 5000);
        }
    }
    /* Saves every 5 minutes while trusted (and at once after a step). */
    assert_true(f->saves - saves0 >= 72 * 12 - 2);
    assert_true(f->saves - saves0 <= 72 * 12 + f->steps + 1);
    for (int i = saves0 + 1; i < f->saves && i < 256; i++)
        assert_true(f->save_mono[i] - f->save_mono[i - 1] <= 5 * 60000);
    /* The drift was corrected: never more than 4 h × 50 ppm + 128 ms off. */
    assert_true(llabs(clock_error(f)) <= 720 + 180 + 128);
    assert_true(f->steps >= 2);

    /* Outage: every server goes silent; still trusted, retries ≥ 64 s apart. */
    for (size_t i = 0; i < 3; i++)
        f->srv[i].silent = true;
    size_t before = f->srv[0].n_sends;
    run_for(f, 24 * HOUR);
    assert_true(f->trusted);
    assert_int_equal(lade_sntp_client_state(&f->c), LADE_SNTP_SYNCED);
    assert_true(f->srv[0].n_sends > before + 24);
    for (size_t k = before; k < f->srv[0].n_sends; k++)
        assert_true(f->srv[0].sends[k] - f->srv[0].sends[k - 1] >= 64000);
    struct lade_sntp_status st;
    lade_sntp_client_status(&f->c, &st);
    assert_int_equal(st.last_result, LADE_SNTP_E_TIMEOUT);
    /* Back again: synced, and nothing fell over. */
    for (size_t i = 0; i < 3; i++)
        f->srv[i].silent = false;
    run_for(f, 2 * 1024000);
    lade_sntp_client_status(&f->c, &st);
    assert_int_equal(st.last_result, LADE_SNTP_OK);
}

/* The poll interval is uniform in [1 h, 4 h] (spread over seeds). */
static void test_jitter_bounds(void **state)
{
    (void)state;
    uint64_t lo = UINT64_MAX, hi = 0;
    for (uint64_t seed = 100; seed < 300; seed++) {
        struct fake *f = fake_new(seed);
        fake_init(f, NULL);
        start(f, 1);
        run_for(f, 30000);
        assert_true(f->trusted);
        uint64_t synced_at = f->srv[0].sends[f->srv[0].n_sends - 1] + 20;
        /* Skip the immediate save; the next thing that is not a save is the poll. */
        size_t n = f->srv[0].n_sends;
        run_for(f, 5 * HOUR);
        assert_true(f->srv[0].n_sends > n);
        uint64_t gap = f->srv[0].sends[n] - synced_at;
        assert_true(gap >= HOUR);
        assert_true(gap <= 4 * HOUR);
        if (gap < lo)
            lo = gap;
        if (gap > hi)
            hi = gap;
        free(f);
        F = NULL;
    }
    assert_true(lo < HOUR + HOUR / 4);
    assert_true(hi > 4 * HOUR - HOUR / 4);
}

/* Trusted, then one server jumps an hour: no step without a second; with two it steps. */
static void test_synced_big_step_needs_quorum(void **state)
{
    (void)state;
    struct fake *f = fake_new(23);
    fake_init(f, NULL);
    start(f, 2);
    run_for(f, 30000);
    assert_true(f->trusted);
    f->srv[0].off_ms = HOUR;
    run_for(f, 5 * HOUR);
    assert_int_equal(f->steps, 0);
    assert_true(llabs(clock_error(f)) < 5);
    /* 1 vs 1: the one agreeing with the clock wins the tie. */
    assert_int_equal(diag(f, 0).last_result, LADE_SNTP_E_OUTVOTED);
    f->srv[1].off_ms = HOUR + 100;
    run_for(f, 5 * HOUR);
    assert_int_equal(f->steps, 1);
    assert_true(llabs(clock_error(f) - HOUR) <= 150);
    assert_true(f->trusted);
}

/* Host mode: trusted at once, nothing sent, never stepped (not even to the floor). */
static void test_host_mode(void **state)
{
    (void)state;
    struct fake *f = fake_new(24);
    f->clock_err_ms = -REAL0;
    struct lade_sntp_cfg cfg;
    lade_sntp_cfg_default(&cfg);
    cfg.host_mode = true;
    cfg.floor_ms = REAL0;
    fake_init(f, &cfg);
    assert_int_equal(lade_sntp_client_start(&f->c, 0, now_of(f)), LADE_OK);
    assert_int_equal(lade_sntp_client_state(&f->c), LADE_SNTP_HOST);
    assert_true(f->trusted);
    assert_int_equal(lade_sntp_client_next_ms(&f->c), UINT64_MAX);
    run_for(f, DAY);
    assert_int_equal(f->steps, 0);
    assert_int_equal(f->srv[0].n_sends, 0);
    assert_int_equal(f->saves, 0);
    lade_sntp_client_stop(&f->c);
    assert_false(f->trusted);
    assert_int_equal(f->trust_calls, 2);
}

/* A new server list keeps what is known per address: a denied one stays denied. */
static void test_set_servers(void **state)
{
    (void)state;
    struct fake *f = fake_new(25);
    f->srv[1].kiss = "DENY";
    fake_init(f, NULL);
    start(f, 2);
    run_for(f, 30000);
    assert_true(f->trusted); /* server 0 alone, within 1 s */
    assert_true(diag(f, 1).denied);
    /* New list: old 1 is now at index 0, old 0 went away, a new server at 1. The fake's server
     * table follows the new indices. */
    struct fsrv old0 = f->srv[0], old1 = f->srv[1];
    f->srv[0] = old1;
    f->srv[1] = old0;
    f->srv[1].n_sends = 0;
    f->srv[0].n_sends = 0;
    int prev[2] = {1, -1};
    assert_int_equal(lade_sntp_client_set_servers(&f->c, 2, prev, now_of(f)), LADE_OK);
    assert_true(f->trusted);
    run_for(f, 30000);
    assert_true(diag(f, 0).denied);
    assert_int_equal(f->srv[0].n_sends, 0);
    assert_int_equal(f->srv[1].n_sends, 1); /* trusted: a single poll, not a burst */
    assert_int_equal(lade_sntp_client_servers(&f->c), 2);
    struct lade_sntp_server_diag d;
    assert_int_equal(lade_sntp_client_server_diag(&f->c, 2, &d), LADE_ERR_NOT_FOUND);
    /* More than the maximum: the first four are used. */
    assert_int_equal(lade_sntp_client_set_servers(&f->c, 9, NULL, now_of(f)), LADE_OK);
    assert_int_equal(lade_sntp_client_servers(&f->c), LADE_SNTP_MAX_SERVERS);
}

/* A silent address does not hold the first trust back by a whole burst when a majority of the
 * others agree; with no majority the burst runs to its end. */
static void test_early_decision(void **state)
{
    (void)state;
    struct fake *f = fake_new(27);
    f->clock_err_ms = -DAY;
    f->srv[2].silent = true;
    fake_init(f, NULL);
    start(f, 3);
    run_for(f, 3100);
    assert_true(f->trusted); /* at the silent one's first time-out (3 s), not after 12 s */
    assert_true(llabs(clock_error(f)) <= 2);
    assert_int_equal(f->srv[2].n_sends, 1);
    run_for(f, 30000);
    assert_int_equal(f->srv[2].n_sends, 1); /* abandoned with the burst */

    struct fake *g = fake_new(28);
    free(f);
    g->srv[1].silent = true;
    fake_init(g, NULL);
    start(g, 2);
    run_for(g, 11000);
    assert_false(g->trusted); /* 1 of 2 is no majority: wait for the whole burst */
    run_for(g, 2000);
    assert_true(g->trusted); /* then the one that agrees with our clock is enough */
    assert_int_equal(g->srv[1].n_sends, 4);
}

/* Untrusted replies that fail later checks: unsynchronised (LI 3), stratum 16, a huge root
 * distance: no sample, the server is not trusted. */
static void test_bad_replies(void **state)
{
    (void)state;
    struct fake *f = fake_new(26);
    f->srv[0].leap = 3;
    f->srv[1].stratum = 16;
    fake_init(f, NULL);
    start(f, 2);
    run_for(f, 30000);
    assert_false(f->trusted);
    assert_int_equal(diag(f, 0).last_result, LADE_SNTP_E_UNSYNC);
    assert_int_equal(diag(f, 1).last_result, LADE_SNTP_E_STRATUM);
    assert_int_equal(f->srv[0].n_sends, 4);
    struct lade_sntp_status st;
    lade_sntp_client_status(&f->c, &st);
    assert_true(st.last_result == LADE_SNTP_E_UNSYNC || st.last_result == LADE_SNTP_E_STRATUM);
}

int main(void)
{
    lade_log_set_level(LADE_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_validation),
        cmocka_unit_test_teardown(test_two_agree_step, teardown),
        cmocka_unit_test_teardown(test_hour_off_alone, teardown),
        cmocka_unit_test_teardown(test_hour_off_outvoted, teardown),
        cmocka_unit_test_teardown(test_ties, teardown),
        cmocka_unit_test_teardown(test_single_small, teardown),
        cmocka_unit_test_teardown(test_1970_floor_then_sync, teardown),
        cmocka_unit_test_teardown(test_floor_refuses, teardown),
        cmocka_unit_test_teardown(test_kod_rate, teardown),
        cmocka_unit_test_teardown(test_kod_deny, teardown),
        cmocka_unit_test_teardown(test_wrong_origin, teardown),
        cmocka_unit_test_teardown(test_unreachable, teardown),
        cmocka_unit_test_teardown(test_steady_polls, teardown),
        cmocka_unit_test_teardown(test_jitter_bounds, teardown),
        cmocka_unit_test_teardown(test_synced_big_step_needs_quorum, teardown),
        cmocka_unit_test_teardown(test_host_mode, teardown),
        cmocka_unit_test_teardown(test_set_servers, teardown),
        cmocka_unit_test_teardown(test_early_decision, teardown),
        cmocka_unit_test_teardown(test_bad_replies, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
