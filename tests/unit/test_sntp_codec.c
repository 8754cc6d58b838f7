/* Unit tests for the SNTP codec (src/proto/sntp/codec.c): request bytes, every reply check in
 * its order, Kiss-o'-Death codes, NTP timestamps across the 2036 era change, offset/delay. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lade/sntp.h"

/* 2036-02-07T06:28:16Z: NTP seconds wrap to 0 (era 1). */
#define ERA1_UNIX_MS (2085978496ll * 1000)
#define COOKIE       0x0123456789abcdefull

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

/* A good reply, written byte by byte (not with the encoder under test). */
static void good_reply(uint8_t b[68])
{
    memset(b, 0, 68);
    b[0] = 0 << 6 | 4 << 3 | 4; /* LI 0, VN 4, mode 4 */
    b[1] = 2;                   /* stratum */
    b[2] = 6;                   /* poll */
    b[3] = (uint8_t)-20;        /* precision */
    put32(b + 4, 0x00000800);   /* root delay ~31 ms */
    put32(b + 8, 0x00000400);   /* root dispersion ~16 ms */
    memcpy(b + 12, "GPS\0", 4);
    uint64_t t = lade_ntp_from_unix_ms(1764761234000ll);
    put64(b + 16, t - (1ull << 32));
    put64(b + 24, COOKIE);
    put64(b + 32, t);
    put64(b + 40, t + (1ull << 22)); /* ~1 ms later */
}

static void test_request(void **state)
{
    (void)state;
    uint8_t buf[64];
    memset(buf, 0xaa, sizeof buf);
    size_t len = 0;
    assert_int_equal(lade_sntp_encode_request(COOKIE, buf, 47, &len), LADE_ERR_NOSPACE);
    assert_int_equal(buf[0], 0xaa); /* nothing written */
    assert_int_equal(lade_sntp_encode_request(COOKIE, buf, sizeof buf, &len), LADE_OK);
    assert_int_equal(len, 48);
    assert_int_equal(buf[0], 0x23); /* LI 0, VN 4, mode 3 */
    for (size_t i = 1; i < 40; i++)
        assert_int_equal(buf[i], 0);
    const uint8_t tx[8] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};
    assert_memory_equal(buf + 40, tx, 8);
    assert_int_equal(buf[48], 0xaa);
    assert_int_equal(lade_sntp_packet_size(NULL), 48);
    assert_int_equal(lade_sntp_encode_request(1, NULL, 48, &len), LADE_ERR_INVAL);
}

static void test_encode_parse_roundtrip(void **state)
{
    (void)state;
    struct lade_sntp_packet p;
    memset(&p, 0, sizeof p); /* padding too: the structs are compared as memory */
    p = (struct lade_sntp_packet){.leap = 3,
                                  .version = 4,
                                  .mode = 4,
                                  .stratum = 16,
                                  .poll = -3,
                                  .precision = -29,
                                  .root_delay = 0x12345678,
                                  .root_disp = 0x9abcdef0,
                                  .refid = 0x52415445,
                                  .ref_ts = 1,
                                  .orig_ts = 0xffffffffffffffffull,
                                  .rx_ts = 0x8000000000000000ull,
                                  .tx_ts = 42};
    uint8_t buf[48];
    size_t len;
    assert_int_equal(lade_sntp_encode(&p, buf, sizeof buf, &len), LADE_OK);
    struct lade_sntp_packet q;
    memset(&q, 0, sizeof q);
    assert_int_equal(lade_sntp_parse(buf, 47, &q), LADE_ERR_PROTO);
    assert_int_equal(lade_sntp_parse(buf, 48, &q), LADE_OK);
    assert_int_equal(q.leap, 3);
    assert_int_equal(q.version, 4);
    assert_int_equal(q.mode, 4);
    assert_int_equal(q.stratum, 16);
    assert_int_equal(q.poll, -3);
    assert_int_equal(q.precision, -29);
    assert_int_equal(q.root_delay, 0x12345678);
    assert_int_equal(q.root_disp, 0x9abcdef0);
    assert_int_equal(q.refid, 0x52415445);
    assert_int_equal(q.ref_ts, 1);
    assert_int_equal(q.orig_ts, 0xffffffffffffffffull);
    assert_int_equal(q.rx_ts, 0x8000000000000000ull);
    assert_int_equal(q.tx_ts, 42);
    /* Fields wider than their bits are masked, not spilled into the neighbours. */
    p.leap = 0xff;
    p.version = 0;
    p.mode = 0;
    assert_int_equal(lade_sntp_encode(&p, buf, sizeof buf, &len), LADE_OK);
    assert_int_equal(buf[0], 0xc0);
}

static enum lade_sntp_result decode(const uint8_t *b, size_t len, struct lade_sntp_reply *r)
{
    return lade_sntp_decode_reply(b, len, COOKIE, r);
}

static void test_decode_good(void **state)
{
    (void)state;
    uint8_t b[68];
    good_reply(b);
    struct lade_sntp_reply r;
    assert_int_equal(decode(b, 48, &r), LADE_SNTP_OK);
    assert_int_equal(r.pkt.stratum, 2);
    assert_int_equal(r.pkt.poll, 6);
    assert_int_equal(r.pkt.precision, -20);
    assert_string_equal(r.kiss, "");
    assert_int_equal(r.root_delay_us, 31250);
    assert_int_equal(r.root_disp_us, 15625);
    /* A MAC or extension fields after the header are ignored. */
    assert_int_equal(decode(b, 68, &r), LADE_SNTP_OK);
    /* Version 3 servers are fine. */
    b[0] = 3 << 3 | 4;
    assert_int_equal(decode(b, 48, NULL), LADE_SNTP_OK);
}

static void test_decode_checks(void **state)
{
    (void)state;
    uint8_t b[68];
    struct lade_sntp_reply r;

    good_reply(b);
    assert_int_equal(decode(b, 47, &r), LADE_SNTP_E_SHORT);
    assert_int_equal(decode(b, 0, &r), LADE_SNTP_E_SHORT);
    assert_int_equal(lade_sntp_decode_reply(NULL, 48, COOKIE, &r), LADE_SNTP_E_SHORT);

    const uint8_t modes[] = {0, 1, 2, 3, 5, 6, 7};
    for (size_t i = 0; i < sizeof modes; i++) {
        good_reply(b);
        b[0] = (uint8_t)(4 << 3 | modes[i]);
        assert_int_equal(decode(b, 48, &r), LADE_SNTP_E_MODE);
    }
    const uint8_t versions[] = {0, 1, 2, 5, 6, 7};
    for (size_t i = 0; i < sizeof versions; i++) {
        good_reply(b);
        b[0] = (uint8_t)(versions[i] << 3 | 4);
        assert_int_equal(decode(b, 48, &r), LADE_SNTP_E_VERSION);
    }

    good_reply(b);
    b[31] ^= 1; /* originate one bit off */
    assert_int_equal(decode(b, 48, &r), LADE_SNTP_E_ORIGIN);
    good_reply(b);
    put64(b + 24, 0);
    assert_int_equal(decode(b, 48, &r), LADE_SNTP_E_ORIGIN);

    good_reply(b);
    b[0] = 3 << 6 | 4 << 3 | 4;
    assert_int_equal(decode(b, 48, &r), LADE_SNTP_E_UNSYNC);
    good_reply(b);
    b[0] = 1 << 6 | 4 << 3 | 4; /* leap second announced: fine */
    assert_int_equal(decode(b, 48, &r), LADE_SNTP_OK);

    good_reply(b);
    b[1] = 15;
    assert_int_equal(decode(b, 48, &r), LADE_SNTP_OK);
    b[1] = 16;
    assert_int_equal(decode(b, 48, &r), LADE_SNTP_E_STRATUM);
    b[1] = 255;
    assert_int_equal(decode(b, 48, &r), LADE_SNTP_E_STRATUM);

    good_reply(b);
    put64(b + 40, 0);
    assert_int_equal(decode(b, 48, &r), LADE_SNTP_E_TX_ZERO);

    good_reply(b);
    put32(b + 4, 0x000fffff); /* 15.99 s */
    assert_int_equal(decode(b, 48, &r), LADE_SNTP_OK);
    put32(b + 4, 0x00100000); /* 16 s */
    assert_int_equal(decode(b, 48, &r), LADE_SNTP_E_ROOT);
    good_reply(b);
    put32(b + 8, 0x80000000); /* "negative" */
    assert_int_equal(decode(b, 48, &r), LADE_SNTP_E_ROOT);

    good_reply(b);
    uint64_t t = lade_ntp_from_unix_ms(1764761234000ll);
    put64(b + 32, t + 1); /* receive after transmit */
    put64(b + 40, t);
    assert_int_equal(decode(b, 48, &r), LADE_SNTP_E_ORDER);
    put64(b + 32, t);
    assert_int_equal(decode(b, 48, &r), LADE_SNTP_OK); /* equal is fine */
    put64(b + 32, 0);
    assert_int_equal(decode(b, 48, &r), LADE_SNTP_E_ORDER);
    put64(b + 32, t);
    put64(b + 40, t + (16ull << 32));
    assert_int_equal(decode(b, 48, &r), LADE_SNTP_E_ORDER);
}

static void test_kod(void **state)
{
    (void)state;
    uint8_t b[68];
    struct lade_sntp_reply r;
    const char *codes[] = {"RATE", "DENY", "RSTR", "INIT", "STEP"};
    for (size_t i = 0; i < 5; i++) {
        good_reply(b);
        b[0] = 3 << 6 | 4 << 3 | 4; /* KoD usually carries LI 3: the kiss wins */
        b[1] = 0;
        memcpy(b + 12, codes[i], 4);
        put64(b + 40, 0); /* and a zero transmit */
        assert_int_equal(decode(b, 48, &r), LADE_SNTP_KOD);
        assert_string_equal(r.kiss, codes[i]);
    }
    /* Non-printable bytes never reach a log line raw. */
    good_reply(b);
    b[1] = 0;
    memcpy(b + 12, "R\nT\0", 4);
    assert_int_equal(decode(b, 48, &r), LADE_SNTP_KOD);
    assert_string_equal(r.kiss, "R?T?");
    /* A KoD that does not echo our cookie is ignored: anyone could have sent it. */
    good_reply(b);
    b[1] = 0;
    memcpy(b + 12, "DENY", 4);
    b[24] ^= 0x80;
    assert_int_equal(decode(b, 48, &r), LADE_SNTP_E_ORIGIN);
    assert_string_equal(r.kiss, "");
}

static void test_timestamps(void **state)
{
    (void)state;
    assert_int_equal(lade_ntp_from_unix_ms(0), (uint64_t)LADE_NTP_UNIX_DELTA_S << 32);
    assert_int_equal(lade_ntp_from_unix_ms(1500),
                     ((uint64_t)(LADE_NTP_UNIX_DELTA_S + 1) << 32) | 0x80000000u);
    /* Before 1970: floor division. */
    uint64_t m1 = lade_ntp_from_unix_ms(-1);
    assert_int_equal(m1 >> 32, LADE_NTP_UNIX_DELTA_S - 1);
    assert_int_equal(lade_ntp_to_unix_ms(m1, 0), -1);
    /* The era boundary. */
    assert_int_equal(lade_ntp_from_unix_ms(ERA1_UNIX_MS), 0);
    assert_int_equal(lade_ntp_from_unix_ms(ERA1_UNIX_MS - 1000) >> 32, 0xffffffffu);
    const int64_t samples[] = {0,
                               1,
                               999,
                               1764761234567ll,
                               ERA1_UNIX_MS - 1,
                               ERA1_UNIX_MS,
                               ERA1_UNIX_MS + 1,
                               ERA1_UNIX_MS + 86400000ll * 365 * 30,
                               -86400000ll * 365 * 60};
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        uint64_t ts = lade_ntp_from_unix_ms(samples[i]);
        /* Any pivot within decades picks the right era. */
        assert_int_equal(lade_ntp_to_unix_ms(ts, samples[i]), samples[i]);
        assert_int_equal(lade_ntp_to_unix_ms(ts, samples[i] + 86400000ll * 365 * 50), samples[i]);
        assert_int_equal(lade_ntp_to_unix_ms(ts, samples[i] - 86400000ll * 365 * 50), samples[i]);
    }
    /* Differences across the boundary. */
    uint64_t a = lade_ntp_from_unix_ms(ERA1_UNIX_MS + 1000);
    uint64_t b = lade_ntp_from_unix_ms(ERA1_UNIX_MS - 1000);
    assert_true(a < b); /* raw values wrapped */
    assert_int_equal(lade_ntp_diff_us(a, b), 2000000);
    assert_int_equal(lade_ntp_diff_us(b, a), -2000000);
    /* Extremes: ±68 years stay exact in µs. */
    assert_int_equal(lade_ntp_diff_us(0x7fffffff00000000ull, 0), 2147483647ll * 1000000);
    assert_int_equal(lade_ntp_diff_us(0, 0x7fffffff00000000ull), -2147483647ll * 1000000);
    assert_int_equal(lade_ntp_diff_us(0x8000000000000000ull, 0), -2147483648ll * 1000000);
    /* Rounding of fractions: 2^-32 s rounds to 0 µs, half a µs away from zero. */
    assert_int_equal(lade_ntp_diff_us(1, 0), 0);
    assert_int_equal(lade_ntp_diff_us(2148, 0), 1); /* 2148 * 2^-32 s = 0.50012 µs */
    assert_int_equal(lade_ntp_diff_us(0, 2148), -1);

    assert_int_equal(lade_ntp_short_to_us(0x00010000), 1000000);
    assert_int_equal(lade_ntp_short_to_us(0x00008000), 500000);
    assert_int_equal(lade_ntp_short_to_us(0xffffffff), 65535999984ull);
}

static void check_offset_delay(int64_t t1_ms)
{
    /* Client 10 s behind the server, 200 ms round trip, 10 ms in the server. */
    uint64_t t1 = lade_ntp_from_unix_ms(t1_ms);
    uint64_t t2 = lade_ntp_from_unix_ms(t1_ms + 10000 + 95);
    uint64_t t3 = lade_ntp_from_unix_ms(t1_ms + 10000 + 105);
    uint64_t t4 = lade_ntp_from_unix_ms(t1_ms + 200);
    int64_t off, del;
    lade_sntp_offset_delay(t1, t2, t3, t4, &off, &del);
    assert_int_equal(off, 10000000);
    assert_int_equal(del, 190000);
    /* And ahead: the sign flips, the delay does not. */
    lade_sntp_offset_delay(lade_ntp_from_unix_ms(t1_ms + 20000), t2, t3,
                           lade_ntp_from_unix_ms(t1_ms + 20200), &off, &del);
    assert_int_equal(off, -10000000);
    assert_int_equal(del, 190000);
}

static void test_offset_delay(void **state)
{
    (void)state;
    check_offset_delay(1764761234000ll);
    check_offset_delay(ERA1_UNIX_MS - 10050); /* server in era 1, client in era 0 */
    check_offset_delay(ERA1_UNIX_MS - 100);   /* both sides straddle it */
    /* A client clock in 1970 against a server in 2025: still right (55 years < 68). */
    int64_t off, del;
    int64_t server_ms = 1764761234000ll;
    lade_sntp_offset_delay(lade_ntp_from_unix_ms(0), lade_ntp_from_unix_ms(server_ms),
                           lade_ntp_from_unix_ms(server_ms), lade_ntp_from_unix_ms(0), &off, &del);
    assert_int_equal(off, server_ms * 1000);
    assert_int_equal(del, 0);
    lade_sntp_offset_delay(1, 2, 3, 4, NULL, NULL); /* both outputs optional */
}

static void test_names(void **state)
{
    (void)state;
    for (int r = 0; r < LADE_SNTP_RESULT__COUNT; r++)
        assert_string_not_equal(lade_sntp_result_name((enum lade_sntp_result)r), "unknown");
    assert_string_equal(lade_sntp_result_name(LADE_SNTP_RESULT__COUNT), "unknown");
    assert_string_equal(lade_sntp_result_name(LADE_SNTP_E_DENY), "kod-deny");
    assert_string_equal(lade_sntp_state_name(LADE_SNTP_SYNCED), "synced");
    assert_string_equal(lade_sntp_state_name((enum lade_sntp_state)99), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request),      cmocka_unit_test(test_encode_parse_roundtrip),
        cmocka_unit_test(test_decode_good),  cmocka_unit_test(test_decode_checks),
        cmocka_unit_test(test_kod),          cmocka_unit_test(test_timestamps),
        cmocka_unit_test(test_offset_delay), cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
