/* libFuzzer target: the SNTP reply decoder (lade_sntp_decode_reply, lade_sntp_parse) and the
 * client state machine fed with the same bytes as a server's answer.
 *
 * Input: byte 0 flags (bit 0: patch the originate with the cookie the machine really sent, so
 * the checks after it are reached; bit 1: the clock starts in 1970, below the floor), bytes
 * 1..8 the cookie the decoder is told about, then one datagram (copied to an exact-size
 * buffer, so an over-read is an ASan report). Invariants:
 *   - a reply shorter than 48 bytes is E_SHORT; the header re-encodes to the same 48 bytes;
 *   - OK means: mode 4, version 3/4, originate == cookie, stratum 1..15, LI ≠ 3, transmit ≠ 0,
 *     root delay/dispersion < 16 s; KOD means stratum 0 and a kiss of 4 printable characters;
 *   - offsets/delays of any four timestamps and era conversions do not overflow (UBSan);
 *   - the machine stays in a valid state, never trusts time from one reply with an offset above
 *     1 s, never moves the clock below the floor, and its diagnostics stay consistent. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lade/log.h"
#include "lade/sntp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

#define FLOOR_MS 1700000000000ll
#define NOW_MS   1764761234000ll

static void discard(void *ud, enum lade_log_level level, const char *module, const char *line)
{
    (void)ud;
    (void)level;
    (void)module;
    (void)line;
}

struct ctx {
    uint64_t sent_cookie;
    int sends;
    int64_t clock_ms;
    bool trusted;
};

static lade_err op_send(void *ud, size_t i, const uint8_t *pkt, size_t len)
{
    struct ctx *c = ud;
    CHECK(i == 0 && len == LADE_SNTP_PACKET_LEN && pkt[0] == 0x23);
    uint64_t v = 0;
    for (int k = 0; k < 8; k++)
        v = v << 8 | pkt[40 + k];
    c->sent_cookie = v;
    c->sends++;
    return LADE_OK;
}

static uint64_t op_random64(void *ud)
{
    (void)ud;
    return 0x0123456789abcdefull;
}

static void op_step(void *ud, int64_t corr)
{
    struct ctx *c = ud;
    c->clock_ms += corr;
}

static void op_trust(void *ud, bool t)
{
    struct ctx *c = ud;
    c->trusted = t;
}

static void check_decoder(const uint8_t *buf, size_t len, uint64_t cookie)
{
    struct lade_sntp_reply r;
    memset(&r, 0x5a, sizeof r);
    enum lade_sntp_result res = lade_sntp_decode_reply(buf, len, cookie, &r);
    CHECK((unsigned)res < LADE_SNTP_RESULT__COUNT);
    if (len < LADE_SNTP_PACKET_LEN) {
        CHECK(res == LADE_SNTP_E_SHORT);
        return;
    }
    uint8_t again[LADE_SNTP_PACKET_LEN];
    size_t n = 0;
    CHECK(lade_sntp_encode(&r.pkt, again, sizeof again, &n) == LADE_OK && n == sizeof again);
    CHECK(memcmp(again, buf, sizeof again) == 0);
    if (res == LADE_SNTP_OK) {
        CHECK(r.pkt.mode == 4 && (r.pkt.version == 3 || r.pkt.version == 4));
        CHECK(r.pkt.orig_ts == cookie && r.pkt.stratum >= 1 && r.pkt.stratum <= 15);
        CHECK(r.pkt.leap != 3 && r.pkt.tx_ts != 0);
        CHECK(r.root_delay_us < 16000000u && r.root_disp_us < 16000000u);
        CHECK(r.kiss[0] == '\0');
    } else if (res == LADE_SNTP_KOD) {
        CHECK(r.pkt.stratum == 0 && r.pkt.orig_ts == cookie && strlen(r.kiss) == 4);
        for (int i = 0; i < 4; i++)
            CHECK(r.kiss[i] >= 0x21 && r.kiss[i] <= 0x7e);
    }
    /* Arithmetic on whatever stamps came in: no overflow anywhere. */
    int64_t off, del;
    lade_sntp_offset_delay(r.pkt.ref_ts, r.pkt.rx_ts, r.pkt.tx_ts, r.pkt.orig_ts, &off, &del);
    int64_t ms = lade_ntp_to_unix_ms(r.pkt.tx_ts, NOW_MS);
    CHECK(ms >= NOW_MS - 2147483648ll * 1000 && ms <= NOW_MS + 2147483648ll * 1000);
    /* Round trip, except exactly half an era away (ambiguous by nature). */
    if (ms > NOW_MS - 2147483647ll * 1000 && ms < NOW_MS + 2147483647ll * 1000)
        CHECK(lade_ntp_to_unix_ms(lade_ntp_from_unix_ms(ms), NOW_MS) == ms);
}

static void check_machine(const uint8_t *buf, size_t len, uint8_t flags)
{
    struct lade_sntp_cfg cfg;
    lade_sntp_cfg_default(&cfg);
    cfg.floor_ms = FLOOR_MS;
    struct lade_sntp_ops ops = {
        .send = op_send, .random64 = op_random64, .step = op_step, .trust = op_trust};
    struct ctx cx = {.clock_ms = (flags & 2) ? 0 : NOW_MS};
    struct lade_sntp_client c;
    CHECK(lade_sntp_client_init(&c, &cfg, &ops, &cx) == LADE_OK);
    uint64_t mono = 5000;
    struct lade_sntp_now now = {mono, cx.clock_ms};
    CHECK(lade_sntp_client_start(&c, 1, now) == LADE_OK);
    CHECK(cx.clock_ms >= FLOOR_MS);
    CHECK(cx.sends == 1);

    uint8_t *pkt = malloc(len ? len : 1);
    if (!pkt)
        return;
    memcpy(pkt, buf, len);
    if ((flags & 1) && len >= LADE_SNTP_PACKET_LEN)
        for (int k = 0; k < 8; k++)
            pkt[24 + k] = (uint8_t)(cx.sent_cookie >> (56 - 8 * k));
    mono += 30;
    now.mono_ms = mono;
    now.wall_ms = cx.clock_ms + 30;
    int64_t before = now.wall_ms;
    enum lade_sntp_result res = lade_sntp_client_on_reply(&c, 0, pkt, len, now);
    CHECK((unsigned)res < LADE_SNTP_RESULT__COUNT);
    CHECK(res != LADE_SNTP_KOD); /* the machine maps kiss codes to RATE/DENY/KISS */
    int64_t moved = cx.clock_ms + 30 - before;
    if (cx.trusted) {
        /* One server may only confirm a clock within 1 s (a bigger step needs two). */
        CHECK(res == LADE_SNTP_OK);
        CHECK(moved >= -1000 && moved <= 1000);
    }
    CHECK(cx.clock_ms + 30 >= FLOOR_MS);
    struct lade_sntp_server_diag d;
    CHECK(lade_sntp_client_server_diag(&c, 0, &d) == LADE_OK);
    CHECK(d.sent >= 1 && d.good <= d.sent);
    CHECK(d.kiss[0] == '\0' || strlen(d.kiss) == 4);
    /* Run the rest of the burst with nothing more arriving: nothing breaks. */
    for (int i = 0; i < 64; i++) {
        uint64_t next = lade_sntp_client_next_ms(&c);
        if (next == UINT64_MAX || next > mono + 3600000)
            break;
        if (next > mono)
            mono = next;
        now.mono_ms = mono;
        now.wall_ms = cx.clock_ms + (int64_t)(mono - 5000);
        lade_sntp_client_tick(&c, now);
        CHECK(cx.clock_ms + (int64_t)(mono - 5000) >= FLOOR_MS);
    }
    enum lade_sntp_state st = lade_sntp_client_state(&c);
    CHECK(st == LADE_SNTP_BURST || st == LADE_SNTP_BACKOFF || st == LADE_SNTP_SYNCED);
    free(pkt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool once;
    if (!once) {
        once = true;
        lade_log_set_sink(discard, NULL);
        lade_log_set_level(LADE_LOG_TRACE); /* format every log line the paths reach */
    }
    if (size < 9 || size > 4096)
        return 0;
    uint8_t flags = data[0];
    uint64_t cookie = 0;
    for (int i = 1; i <= 8; i++)
        cookie = cookie << 8 | data[i];
    size_t len = size - 9;
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return 0;
    memcpy(buf, data + 9, len);
    check_decoder(buf, len, cookie);
    check_machine(buf, len, flags);
    free(buf);
    return 0;
}
