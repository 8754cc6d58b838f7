/* Unit tests for observations (include/lade/obs.h): deadbands per type, timing rules, batching
 * and splitting at the 4 KB billing block, round trips through the decoder, malformed input,
 * and the measured message sizes quoted in docs/observations.md. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lade/obs.h"

#define T0   1000000u   /* monotonic ms at init */
#define WALL 1795455600 /* wall seconds */

static struct lade_obs_reporter rep;
static char buf[LADE_OBS_MSG_MAX + 1];

static void init(const struct lade_obs_config *cfg)
{
    assert_int_equal(lade_obs_init(&rep, cfg, T0), LADE_OK);
}

static void seti(int32_t id, int64_t v, uint64_t now)
{
    assert_int_equal(lade_obs_set_int(&rep, id, v, now), LADE_OK);
}

static void sets(int32_t id, const char *s, uint64_t now)
{
    assert_int_equal(lade_obs_set_str(&rep, id, s, strlen(s), now), LADE_OK);
}

/* Encodes one message at now; returns its length (0 = nothing due). */
static size_t enc(uint64_t now, bool *more)
{
    size_t len = 99;
    bool m = true;
    assert_int_equal(lade_obs_encode(&rep, now, WALL, buf, sizeof buf, &len, &m), LADE_OK);
    if (more)
        *more = m;
    else
        assert_false(m);
    assert_int_equal(strlen(buf) * (len > 0), len);
    return len;
}

static struct lade_obs_item items[64];
static struct lade_obs_msg msg;

static void dec(const char *s)
{
    assert_int_equal(lade_obs_decode(s, strlen(s), &msg, items, 64), LADE_OK);
}

static const struct lade_obs_item *item(int32_t id)
{
    for (size_t k = 0; k < msg.count; k++)
        if (items[k].id == id)
            return &items[k];
    return NULL;
}

#define SESSION_ID "0b5b1d5e-3f6c-4c1e-9a47-2d7f1c2e8a10"
#define COMPLETED                                                                                  \
    "{\"SessionId\":\"7d1f4c2a-9b3e-4e58-a1c6-5f0e2d3b4a71\",\"Energy\":10.52,"                    \
    "\"StartDateTime\":\"2026-11-23T06:10:00Z\",\"EndDateTime\":\"2026-11-23T08:40:00Z\","         \
    "\"ReliableClock\":true}"

/* A three-phase car charging at 16 A (11 kW), every id of the table set. */
static void set_charging(uint64_t now, bool with_completed)
{
    seti(710, 3, now);
    seti(718, 0, now);
    if (with_completed)
        sets(723, COMPLETED, now);
    sets(721, SESSION_ID, now);
    seti(513, 11040, now);
    seti(507, 160, now);
    seti(508, 160, now);
    seti(509, 159, now);
    seti(501, 2304, now);
    seti(502, 2311, now);
    seti(503, 2298, now);
    seti(553, 12345, now);
    seti(708, 160, now);
    seti(519, 4, now);
    seti(804, 0, now);
    seti(810, 1, now);
    seti(809, -67, now);
    sets(150, "LTE", now);
    sets(911, "1.4.2", now);
    seti(510, 320, now);
    seti(511, 60, now);
    seti(520, 3, now);
    seti(522, 1, now);
    seti(523, 80, now);
}

static void test_table(void **state)
{
    (void)state;
    size_t n = 0;
    const struct lade_obs_def *t = lade_obs_table(&n);
    assert_int_equal(n, LADE_OBS_IDS);
    size_t strs = 0;
    for (size_t i = 0; i < n; i++) {
        assert_ptr_equal(lade_obs_find(t[i].id), &t[i]);
        strs += t[i].type == LADE_OBS_STR;
        assert_true(t[i].decimals <= 6);
    }
    assert_int_equal(strs, LADE_OBS_STR_SLOTS);
    assert_null(lade_obs_find(-2));
    assert_true(lade_obs_find(710)->immediate);
    assert_true(lade_obs_find(718)->immediate);
    assert_true(lade_obs_find(723)->immediate);
    assert_false(lade_obs_find(513)->immediate);
    assert_int_equal(lade_obs_find(507)->decimals, 1);
    assert_int_equal(lade_obs_find(553)->decimals, 3);
}

static void test_set_errors(void **state)
{
    (void)state;
    init(NULL);
    assert_int_equal(lade_obs_set_int(&rep, 999, 1, T0), LADE_ERR_NOT_FOUND);
    assert_int_equal(lade_obs_set_int(&rep, 911, 1, T0), LADE_ERR_INVAL);
    assert_int_equal(lade_obs_set_int(&rep, 513, LADE_OBS_VALUE_MAX + 1, T0), LADE_ERR_INVAL);
    assert_int_equal(lade_obs_set_str(&rep, 710, "x", 1, T0), LADE_ERR_INVAL);
    assert_int_equal(lade_obs_set_str(&rep, 12345, "x", 1, T0), LADE_ERR_NOT_FOUND);
    assert_int_equal(lade_obs_set_str(&rep, 911, "\xff", 1, T0), LADE_ERR_UTF8);
    assert_int_equal(lade_obs_set_str(&rep, 911, "a\0b", 3, T0), LADE_ERR_UTF8);
    char big[LADE_OBS_STR_MAX + 1];
    memset(big, 'a', sizeof big);
    assert_int_equal(lade_obs_set_str(&rep, 911, big, sizeof big, T0), LADE_ERR_INVAL);
    assert_int_equal(lade_obs_set_str(&rep, 911, big, sizeof big - 1, T0), LADE_OK);
    struct lade_obs_config bad = {.max_msg_bytes = LADE_OBS_MSG_MAX + 1};
    assert_int_equal(lade_obs_init(&rep, &bad, T0), LADE_ERR_INVAL);
    bad.max_msg_bytes = LADE_OBS_MSG_MIN - 1;
    assert_int_equal(lade_obs_init(&rep, &bad, T0), LADE_ERR_INVAL);
    /* Nothing set: nothing to send, ever. */
    init(NULL);
    assert_int_equal(lade_obs_next_due_ms(&rep), UINT64_MAX);
    assert_int_equal(enc(T0 + 10000000, NULL), 0);
}

static void test_first_is_snapshot_and_round_trip(void **state)
{
    (void)state;
    init(NULL);
    set_charging(T0, true);
    assert_true(lade_obs_due(&rep, T0));
    size_t len = enc(T0, NULL);
    assert_true(len > 0);
    dec(buf);
    assert_true(msg.snapshot);
    assert_int_equal(msg.wall_s, WALL);
    assert_int_equal(msg.count, LADE_OBS_IDS);
    assert_int_equal(item(710)->value, 3);
    assert_int_equal(item(507)->value, 160);
    assert_int_equal(item(509)->value, 159);
    assert_int_equal(item(553)->value, 12345);
    assert_int_equal(item(809)->value, -67);
    assert_true(item(911)->is_str);
    char s[LADE_OBS_STR_MAX + 1];
    size_t sn;
    assert_int_equal(lade_obs_unescape(item(723)->raw, s, sizeof s, &sn), LADE_OK);
    assert_string_equal(s, COMPLETED);
    assert_int_equal(lade_obs_unescape(item(721)->raw, s, sizeof s, &sn), LADE_OK);
    assert_string_equal(s, SESSION_ID);
    /* Shortest decimal forms on the wire: 16.0 A → 16, 15.9 A → 15.9, 12.345 kWh. */
    assert_non_null(strstr(buf, "\"507\":16,"));
    assert_non_null(strstr(buf, "\"509\":15.9,"));
    assert_non_null(strstr(buf, "\"553\":12.345,"));
    assert_non_null(strstr(buf, "\"809\":-67,"));
    /* Sent: nothing more until something changes or the next snapshot. */
    assert_false(lade_obs_due(&rep, T0 + 1));
    assert_int_equal(lade_obs_next_due_ms(&rep), T0 + 900000);
}

/* Deadbands: current 0.5 A, voltage 2 V, energy 0.01 kWh, power max(100 W, 2 %), signal 3 dB,
 * enums and strings any change. Compared with the last *sent* value, so a slow drift adds up. */
static void test_deadbands(void **state)
{
    (void)state;
    struct lade_obs_config cfg = {.min_interval_ms = 10000, .max_delay_ms = 300000};
    init(&cfg);
    set_charging(T0, false);
    enc(T0, NULL);
    uint64_t t = T0 + 60000;
    seti(507, 164, t);                                        /* +0.4 A */
    seti(501, 2323, t);                                       /* +1.9 V */
    seti(553, 12354, t);                                      /* +0.009 kWh */
    seti(513, 11250, t);                                      /* +210 W < 2 % of 11040 = 220 W */
    seti(809, -65, t);                                        /* +2 dB */
    assert_int_equal(lade_obs_next_due_ms(&rep), t + 300000); /* only the max-delay rule */
    assert_false(lade_obs_due(&rep, t + 299999));
    /* Drift: each step small, the sum beyond the band. */
    seti(507, 165, t + 1000); /* +0.5 A from sent 16.0 */
    assert_true(lade_obs_due(&rep, t + 1000));
    assert_true(enc(t + 1000, NULL) > 0);
    dec(buf);
    assert_false(msg.snapshot);
    assert_int_equal(msg.count, 1);
    assert_int_equal(item(507)->value, 165);
    /* Each of the others crosses its band alone. */
    const struct {
        int32_t id;
        int64_t below, at;
    } cases[] = {
        {501, 2304 + 19, 2304 + 20},
        {553, 12345 + 9, 12345 + 10},
        {513, 11040 + 220 - 1, 11040 + 220},
        {809, -67 + 2, -67 - 3},
        {519, 4, 1},
        {708, 160, 161},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        t += 20000;
        seti(cases[k].id, cases[k].below, t);
        uint64_t due = lade_obs_next_due_ms(&rep);
        assert_true(due > t + 10000); /* not beyond the band: held for max delay */
        seti(cases[k].id, cases[k].at, t);
        assert_true(lade_obs_due(&rep, t));
        enc(t, NULL);
        dec(buf);
        assert_non_null(item(cases[k].id));
        assert_int_equal(item(cases[k].id)->value, cases[k].at);
    }
    /* Power at a low level: the absolute 100 W band applies. */
    t += 20000;
    seti(513, 1000, t);
    enc(t, NULL);
    t += 20000;
    seti(513, 1099, t);
    assert_false(lade_obs_due(&rep, t + 10000));
    seti(513, 1100, t);
    assert_true(lade_obs_due(&rep, t));
    enc(t, NULL);
    /* Same string again: no change. Different string: due. */
    t += 20000;
    sets(911, "1.4.2", t);
    sets(150, "LTE", t);
    assert_false(lade_obs_due(&rep, t + 200000));
    sets(150, "Wifi", t);
    assert_true(lade_obs_due(&rep, t));
    enc(t, NULL);
    dec(buf);
    assert_non_null(item(150));
    /* A small difference that returns to the sent value is no longer pending. */
    t += 20000;
    seti(503, 2299, t);
    seti(503, 2298, t + 1);
    assert_false(lade_obs_due(&rep, t + 400000));
}

static void test_max_delay(void **state)
{
    (void)state;
    struct lade_obs_config cfg = {.max_delay_ms = 60000, .snapshot_interval_ms = 3600000};
    init(&cfg);
    set_charging(T0, false);
    enc(T0, NULL);
    seti(502, 2315, T0 + 5000); /* +0.4 V: within band */
    seti(502, 2317, T0 + 9000); /* still within; the clock started at the first difference */
    assert_int_equal(lade_obs_next_due_ms(&rep), T0 + 65000);
    assert_int_equal(enc(T0 + 64999, NULL), 0);
    enc(T0 + 65000, NULL);
    dec(buf);
    assert_int_equal(msg.count, 1);
    assert_int_equal(item(502)->value, 2317);
}

static void test_immediate_and_rate_limit(void **state)
{
    (void)state;
    struct lade_obs_config cfg = {.min_interval_ms = 10000};
    init(&cfg);
    set_charging(T0, false);
    enc(T0, NULL);
    /* Analog change beyond band right after a message: waits for the min interval. */
    seti(513, 7360, T0 + 1000);
    assert_int_equal(lade_obs_next_due_ms(&rep), T0 + 10000);
    assert_int_equal(enc(T0 + 9999, NULL), 0);
    /* The mode changes: due at once, and the power rides along. */
    seti(710, 5, T0 + 2000);
    seti(718, 1, T0 + 2000);
    assert_true(lade_obs_due(&rep, T0 + 2000));
    enc(T0 + 2000, NULL);
    dec(buf);
    assert_int_equal(msg.count, 3);
    assert_int_equal(item(710)->value, 5);
    assert_int_equal(item(718)->value, 1);
    assert_int_equal(item(513)->value, 7360);
    /* Completed session, immediately, even 1 ms after the last message. */
    sets(723, COMPLETED, T0 + 2001);
    assert_true(lade_obs_due(&rep, T0 + 2001));
    enc(T0 + 2001, NULL);
    dec(buf);
    assert_int_equal(msg.count, 1);
    assert_true(item(723)->is_str);
    /* Noise does not produce messages faster than min interval. */
    uint64_t t = T0 + 2001;
    int msgs = 0;
    for (int k = 0; k < 600; k++) { /* 10 minutes of a value jumping 1 A every second */
        t += 1000;
        seti(507, k % 2 ? 170 : 150, t);
        if (enc(t, NULL) > 0)
            msgs++;
    }
    assert_true(msgs <= 60);
    assert_true(msgs >= 50);
}

static void test_snapshot_timing(void **state)
{
    (void)state;
    struct lade_obs_config cfg = {.snapshot_interval_ms = 60000};
    init(&cfg);
    set_charging(T0, false);
    enc(T0, NULL);
    assert_int_equal(lade_obs_next_due_ms(&rep), T0 + 60000);
    assert_int_equal(enc(T0 + 59999, NULL), 0);
    enc(T0 + 60000, NULL);
    dec(buf);
    assert_true(msg.snapshot);
    assert_int_equal(msg.count, LADE_OBS_IDS - 1); /* 723 never set */
    assert_int_equal(lade_obs_next_due_ms(&rep), T0 + 120000);
    /* A requested snapshot (reconnect) goes at once and restarts the period. */
    lade_obs_request_snapshot(&rep);
    assert_true(lade_obs_due(&rep, T0 + 70000));
    enc(T0 + 70000, NULL);
    dec(buf);
    assert_true(msg.snapshot);
    assert_int_equal(lade_obs_next_due_ms(&rep), T0 + 130000);
    /* A phase: the next periodic snapshot earlier, then the period again from it; a due time
     * later than the period's is ignored. */
    lade_obs_set_snapshot_due(&rep, T0 + 200000);
    assert_int_equal(lade_obs_next_due_ms(&rep), T0 + 130000);
    lade_obs_set_snapshot_due(&rep, T0 + 75000);
    assert_int_equal(lade_obs_next_due_ms(&rep), T0 + 75000);
    assert_int_equal(enc(T0 + 74999, NULL), 0);
    enc(T0 + 75000, NULL);
    dec(buf);
    assert_true(msg.snapshot);
    assert_int_equal(lade_obs_next_due_ms(&rep), T0 + 135000);
}

/* Union of several messages; checks each is ≤ limit and no id appears twice. */
static void drain(uint64_t now, size_t limit, bool *seen, int *messages, bool want_snapshot)
{
    bool more = true;
    *messages = 0;
    while (more) {
        size_t len = enc(now, &more);
        assert_true(len > 0);
        assert_true(len <= limit);
        (*messages)++;
        dec(buf);
        assert_int_equal(msg.snapshot, want_snapshot);
        for (size_t k = 0; k < msg.count; k++) {
            const struct lade_obs_def *d = lade_obs_find(items[k].id);
            assert_non_null(d);
            size_t row = (size_t)(d - lade_obs_table(NULL));
            assert_false(seen[row]);
            seen[row] = true;
        }
        assert_true(*messages < 100);
    }
}

static void test_batch_split_small_limit(void **state)
{
    (void)state;
    struct lade_obs_config cfg = {.max_msg_bytes = LADE_OBS_MSG_MIN};
    init(&cfg);
    set_charging(T0, true);
    /* Three long strings of 255 '"': 512 bytes each escaped. */
    char s[LADE_OBS_STR_MAX];
    memset(s, '"', sizeof s);
    assert_int_equal(lade_obs_set_str(&rep, 723, s, sizeof s, T0), LADE_OK);
    assert_int_equal(lade_obs_set_str(&rep, 721, s, sizeof s, T0), LADE_OK);
    assert_int_equal(lade_obs_set_str(&rep, 911, s, sizeof s, T0), LADE_OK);
    bool seen[LADE_OBS_IDS] = {0};
    int messages;
    drain(T0, LADE_OBS_MSG_MIN, seen, &messages, true);
    for (int i = 0; i < LADE_OBS_IDS; i++)
        assert_true(seen[i]);
    assert_int_equal(messages, 2);
    assert_false(lade_obs_due(&rep, T0));
    /* A small caller buffer: NOSPACE, nothing marked sent, never truncated. */
    init(NULL);
    seti(710, 3, T0);
    size_t len;
    bool more;
    assert_int_equal(lade_obs_encode(&rep, T0, WALL, buf, 20, &len, &more), LADE_ERR_NOSPACE);
    assert_int_equal(lade_obs_encode(&rep, T0, WALL, buf, 36, &len, &more), LADE_ERR_NOSPACE);
    assert_int_equal(lade_obs_encode(&rep, T0, WALL, buf, 37, &len, &more), LADE_OK);
    assert_string_equal(buf, "{\"t\":1795455600,\"s\":1,\"o\":{\"710\":3}}");
    assert_int_equal(len, 36);
    assert_false(more);
}

static void test_batch_split_4096_long_strings(void **state)
{
    (void)state;
    init(NULL);
    /* Four strings of 255 control characters: 6 bytes each escaped, 6.1 KB in all. Any single
     * one fits LADE_OBS_MSG_MIN; they cannot all fit 4096. */
    char s[LADE_OBS_STR_MAX];
    for (size_t k = 0; k < sizeof s; k++)
        s[k] = (char)(1 + k % 31);
    int32_t sid[] = {723, 721, 150, 911};
    for (int k = 0; k < 4; k++)
        assert_int_equal(lade_obs_set_str(&rep, sid[k], s, sizeof s, T0), LADE_OK);
    seti(710, 3, T0);
    seti(513, 22080, T0);
    bool seen[LADE_OBS_IDS] = {0};
    int messages;
    drain(T0, LADE_OBS_MSG_MAX, seen, &messages, true);
    assert_int_equal(messages, 2);
    /* The strings of the last message came back whole. */
    size_t strs = 0;
    for (size_t k = 0; k < msg.count; k++) {
        if (!items[k].is_str)
            continue;
        char out[LADE_OBS_STR_MAX + 1];
        size_t on;
        assert_int_equal(lade_obs_unescape(items[k].raw, out, sizeof out, &on), LADE_OK);
        assert_int_equal(on, sizeof s);
        assert_memory_equal(out, s, sizeof s);
        strs++;
    }
    assert_true(strs >= 1);
    /* Change all four at once (immediate 723 among them): again split, not a snapshot. */
    for (int k = 0; k < 4; k++) {
        s[0] = (char)(20 + k);
        assert_int_equal(lade_obs_set_str(&rep, sid[k], s, sizeof s, T0 + 1), LADE_OK);
    }
    memset(seen, 0, sizeof seen);
    drain(T0 + 1, LADE_OBS_MSG_MAX, seen, &messages, false);
    assert_int_equal(messages, 2);
}

static void test_many_values_round_trip(void **state)
{
    (void)state;
    init(NULL);
    size_t n;
    const struct lade_obs_def *t = lade_obs_table(&n);
    for (size_t i = 0; i < n; i++) {
        if (t[i].type == LADE_OBS_STR)
            sets(t[i].id, "\"q\\\t\xc3\xa9\x01/", T0);
        else
            seti(t[i].id, i % 2 ? -LADE_OBS_VALUE_MAX : LADE_OBS_VALUE_MAX - (int64_t)i, T0);
    }
    enc(T0, NULL);
    dec(buf);
    assert_int_equal(msg.count, n);
    for (size_t i = 0; i < n; i++) {
        const struct lade_obs_item *it = item(t[i].id);
        assert_non_null(it);
        assert_ptr_equal(it->def, &t[i]);
        if (t[i].type == LADE_OBS_STR) {
            char out[32];
            size_t on;
            assert_int_equal(lade_obs_unescape(it->raw, out, sizeof out, &on), LADE_OK);
            assert_string_equal(out, "\"q\\\t\xc3\xa9\x01/");
        } else {
            assert_int_equal(it->value,
                             i % 2 ? -LADE_OBS_VALUE_MAX : LADE_OBS_VALUE_MAX - (int64_t)i);
        }
    }
}

static void test_decode_accepts(void **state)
{
    (void)state;
    dec("{\"t\":0,\"o\":{}}");
    assert_int_equal(msg.count, 0);
    assert_false(msg.snapshot);
    dec(" { \"t\" : 5 , \"s\" : 0 , \"o\" : { \"507\" : 16.50 , \"-2\" : \"1\" , \"9999\" : -1.25 "
        "} } ");
    assert_int_equal(msg.wall_s, 5);
    assert_int_equal(msg.count, 3);
    assert_int_equal(item(507)->value, 165);
    /* Unknown ids are kept, def NULL, value as text (docs/observations.md). */
    assert_null(item(-2)->def);
    assert_true(item(-2)->is_str);
    assert_null(item(9999)->def);
    assert_int_equal(item(9999)->raw.n, 5);
    assert_memory_equal(item(9999)->raw.p, "-1.25", 5);
    dec("{\"t\":1,\"o\":{\"553\":0.001,\"511\":-0.5,\"911\":\"\\u00e9\\u20ac\\/\"}}");
    assert_int_equal(item(553)->value, 1);
    assert_int_equal(item(511)->value, -5);
    char out[16];
    size_t on;
    assert_int_equal(lade_obs_unescape(item(911)->raw, out, sizeof out, &on), LADE_OK);
    assert_string_equal(out, "\xc3\xa9\xe2\x82\xac/");
    assert_int_equal(lade_obs_unescape(item(911)->raw, out, 6, &on), LADE_ERR_NOSPACE);
}

static void test_decode_rejects(void **state)
{
    (void)state;
    static const char *bad[] = {
        "",
        "{}",
        "{\"t\":1}",
        "{\"o\":{},\"t\":1}",
        "{\"t\":1,\"o\":{}",
        "{\"t\":1,\"o\":{}}x",
        "{\"t\":1,\"o\":{},}",
        "{\"t\":-1,\"o\":{}}",
        "{\"t\":1.5,\"o\":{}}",
        "{\"t\":1e3,\"o\":{}}",
        "{\"t\":999999999999,\"o\":{}}",
        "{\"t\":01,\"o\":{}}",
        "{\"t\":1,\"s\":2,\"o\":{}}",
        "{\"t\":1,\"s\":1}",
        "{\"t\":1,\"o\":{,}}",
        "{\"t\":1,\"o\":{\"710\":3,}}",
        "{\"t\":1,\"o\":{\"710\":3 \"513\":1}}",
        "{\"t\":1,\"o\":{\"710\":3,\"710\":4}}", /* duplicate */
        "{\"t\":1,\"o\":{\"710\":3.5}}",         /* int id with a fraction */
        "{\"t\":1,\"o\":{\"507\":16.25}}",       /* more decimals than the table */
        "{\"t\":1,\"o\":{\"507\":1e1}}",         /* exponent */
        "{\"t\":1,\"o\":{\"507\":\"16\"}}",      /* string for a number */
        "{\"t\":1,\"o\":{\"911\":1}}",           /* number for a string */
        "{\"t\":1,\"o\":{\"507\":.5}}",
        "{\"t\":1,\"o\":{\"507\":5.}}",
        "{\"t\":1,\"o\":{\"507\":-}}",
        "{\"t\":1,\"o\":{\"507\":+5}}",
        "{\"t\":1,\"o\":{\"513\":1000000000000000}}", /* beyond LADE_OBS_VALUE_MAX */
        "{\"t\":1,\"o\":{\"513\":1234567890123456789}}",
        "{\"t\":1,\"o\":{\"0710\":3}}",
        "{\"t\":1,\"o\":{\"-0\":3}}",
        "{\"t\":1,\"o\":{\"\":3}}",
        "{\"t\":1,\"o\":{\"1000000\":3}}",
        "{\"t\":1,\"o\":{\"7a\":3}}",
        "{\"t\":1,\"o\":{710:3}}",
        "{\"t\":1,\"o\":{\"911\":\"a\\x\"}}",
        "{\"t\":1,\"o\":{\"911\":\"a\\u00\"}}",
        "{\"t\":1,\"o\":{\"911\":\"a\\u0000\"}}",
        "{\"t\":1,\"o\":{\"911\":\"a\\ud800\"}}",
        "{\"t\":1,\"o\":{\"911\":\"a\nb\"}}", /* raw control character */
        "{\"t\":1,\"o\":{\"911\":\"\xc3\"}}", /* bad UTF-8 */
        "{\"t\":1,\"o\":{\"911\":\"abc}}",
        "{\"t\":1,\"o\":{\"911\":\"abc\\",
        "{\"t\":1,\"o\":{\"710\":true}}",
        "{\"t\":1,\"o\":{\"710\":null}}",
        "{\"t\":1,\"o\":[]}",
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        lade_err e = lade_obs_decode(bad[k], strlen(bad[k]), &msg, items, 64);
        if (e != LADE_ERR_PROTO)
            fail_msg("accepted or wrong error %d: %s", e, bad[k]);
    }
    /* A string longer than LADE_OBS_STR_MAX once unescaped. */
    char s[LADE_OBS_STR_MAX + 64];
    int n = snprintf(s, sizeof s, "{\"t\":1,\"o\":{\"911\":\"");
    memset(s + n, 'a', LADE_OBS_STR_MAX + 1);
    n += LADE_OBS_STR_MAX + 1;
    memcpy(s + n, "\"}}", 4);
    assert_int_equal(lade_obs_decode(s, strlen(s), &msg, items, 64), LADE_ERR_PROTO);
    /* Size limits. */
    static char huge[LADE_OBS_MSG_MAX + 2];
    memset(huge, ' ', sizeof huge - 1);
    assert_int_equal(lade_obs_decode(huge, LADE_OBS_MSG_MAX + 1, &msg, items, 64),
                     LADE_ERR_TOO_BIG);
    const char *two = "{\"t\":1,\"o\":{\"710\":3,\"718\":0}}";
    assert_int_equal(lade_obs_decode(two, strlen(two), &msg, items, 1), LADE_ERR_TOO_BIG);
    assert_int_equal(lade_obs_decode(two, strlen(two), &msg, items, 2), LADE_OK);
}

/* Measured sizes quoted in docs/observations.md: a 3-phase car charging at 16 A. */
static void test_sizes(void **state)
{
    (void)state;
    struct lade_obs_config cfg = {.min_interval_ms = 10000};
    init(&cfg);
    set_charging(T0, false);
    size_t snap = enc(T0, NULL);
    printf("full snapshot, charging, no 723: %zu bytes\n%s\n", snap, buf);
    assert_true(snap <= 300);
    init(&cfg);
    set_charging(T0, true);
    size_t snap723 = enc(T0, NULL);
    printf("full snapshot with last completed session 723: %zu bytes\n", snap723);
    assert_true(snap723 <= 480);
    /* Typical change 10 s later: currents +0.6 A, power +400 W, energy +0.03 kWh. */
    seti(507, 166, T0 + 10000);
    seti(508, 166, T0 + 10000);
    seti(509, 165, T0 + 10000);
    seti(513, 11440, T0 + 10000);
    seti(553, 12375, T0 + 10000);
    size_t change = enc(T0 + 10000, NULL);
    printf("typical change message: %zu bytes\n%s\n", change, buf);
    assert_true(change <= 90);
    /* Mode change alone (car paused). */
    seti(710, 5, T0 + 10001);
    size_t mode = enc(T0 + 10001, NULL);
    printf("mode change: %zu bytes\n%s\n", mode, buf);
    assert_true(mode <= 32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_set_errors),
        cmocka_unit_test(test_first_is_snapshot_and_round_trip),
        cmocka_unit_test(test_deadbands),
        cmocka_unit_test(test_max_delay),
        cmocka_unit_test(test_immediate_and_rate_limit),
        cmocka_unit_test(test_snapshot_timing),
        cmocka_unit_test(test_batch_split_small_limit),
        cmocka_unit_test(test_batch_split_4096_long_strings),
        cmocka_unit_test(test_many_values_round_trip),
        cmocka_unit_test(test_decode_accepts),
        cmocka_unit_test(test_decode_rejects),
        cmocka_unit_test(test_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
