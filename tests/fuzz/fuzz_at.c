/* libFuzzer target: the AT command/response parser (src/proto/at/at.c).
 * Input: byte 0 = chunk size (1 + byte % 32) for the line splitter; the rest is what a modem
 * sends. Every line is classified (with "AT+CSQ" as the command in flight) and every information
 * line goes through the parameter splitter and every response parser.
 * Invariants: the lines do not depend on how the stream is chunked; a line is never longer than
 * LADE_AT_LINE_MAX and holds no CR or LF; views lie inside the line; parsed values are within
 * the ranges the header promises (stat 0..10, CSQ/RSRP dBm formulas, cid 0..255, ...). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lade/modem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

static void inside(struct lade_str v, struct lade_str line)
{
    if (v.n == 0)
        return;
    CHECK(v.p >= line.p && v.p + v.n <= line.p + line.n);
}

static void check_line(struct lade_str line)
{
    CHECK(line.n > 0 && line.n <= LADE_AT_LINE_MAX);
    CHECK(!memchr(line.p, '\r', line.n) && !memchr(line.p, '\n', line.n));
    struct lade_at_line l;
    lade_at_classify(line, "AT+CSQ", &l);
    CHECK(l.kind >= LADE_AT_INFO && l.kind <= LADE_AT_NOISE);
    if (l.kind == LADE_AT_NOISE)
        return;
    inside(l.prefix, line);
    inside(l.rest, line);
    CHECK(l.err >= -1);
    if (l.kind != LADE_AT_CME_ERROR && l.kind != LADE_AT_CMS_ERROR)
        CHECK(l.err == -1);
    if (l.kind != LADE_AT_INFO)
        return;

    struct lade_at_param p[LADE_AT_PARAMS_MAX];
    size_t k;
    lade_err err = lade_at_params(l.rest, p, LADE_AT_PARAMS_MAX, &k);
    CHECK(err == LADE_OK || err == LADE_ERR_PROTO || err == LADE_ERR_TOO_BIG);
    if (err == LADE_OK) {
        CHECK(k <= LADE_AT_PARAMS_MAX);
        for (size_t i = 0; i < k; i++) {
            inside(p[i].text, line);
            CHECK(!p[i].is_int || (p[i].value >= 0 && !p[i].quoted));
            CHECK(!p[i].empty || p[i].text.n == 0);
        }
    }

    struct lade_at_cereg cr;
    if (lade_at_parse_cereg(l.rest, &cr) == LADE_OK) {
        CHECK(cr.stat >= 0 && cr.stat <= 10 && cr.n >= -1 && cr.n <= 5);
        CHECK(cr.act >= -1 && cr.act <= 15 && cr.tac <= 0xFFFF);
        CHECK(cr.has_loc || (cr.tac == 0 && cr.ci == 0));
    } else {
        CHECK(cr.n == -1 && cr.stat == 0 && !cr.has_loc);
    }
    struct lade_at_csq cs;
    if (lade_at_parse_csq(l.rest, &cs) == LADE_OK) {
        CHECK((cs.rssi >= 0 && cs.rssi <= 31) || cs.rssi == 99);
        CHECK(cs.dbm == (cs.rssi == 99 ? LADE_BEARER_SIGNAL_UNKNOWN : -113 + 2 * cs.rssi));
        CHECK(cs.dbm == LADE_BEARER_SIGNAL_UNKNOWN || (cs.dbm >= -113 && cs.dbm <= -51));
    }
    struct lade_at_cesq ce;
    if (lade_at_parse_cesq(l.rest, &ce) == LADE_OK) {
        CHECK(ce.rsrp_dbm == LADE_BEARER_SIGNAL_UNKNOWN ||
              (ce.rsrp_dbm >= -141 && ce.rsrp_dbm <= -44));
        CHECK(ce.rsrq_db == LADE_BEARER_SIGNAL_UNKNOWN || (ce.rsrq_db >= -20 && ce.rsrq_db <= -3));
    }
    struct lade_at_cgact ca;
    if (lade_at_parse_cgact(l.rest, &ca) == LADE_OK)
        CHECK(ca.cid >= 0 && ca.cid <= 255 && (ca.state == 0 || ca.state == 1));
    struct lade_at_cgpaddr pa;
    if (lade_at_parse_cgpaddr(l.rest, &pa) == LADE_OK) {
        CHECK(pa.cid >= 0 && pa.cid <= 255);
        inside(pa.addr1, line);
        inside(pa.addr2, line);
    }
    struct lade_at_cops co;
    if (lade_at_parse_cops(l.rest, &co) == LADE_OK) {
        CHECK(co.mode >= 0 && co.mode <= 4 && co.format >= -1 && co.format <= 2);
        CHECK(co.act >= -1 && co.act <= 15);
        inside(co.oper, line);
    }
    struct lade_bearer_link_state ls;
    lade_at_to_link(cr.stat, true, ce.rsrp_dbm, cs.dbm, &ls);
    CHECK(!ls.up || lade_at_registered(cr.stat));
}

/* Splits the stream in chunks of `chunk`; returns a digest of the lines (and checks each). */
static uint64_t split(const char *in, size_t n, size_t chunk, size_t *lines, size_t *too_big)
{
    struct lade_at_lines lb;
    lade_at_lines_init(&lb);
    uint64_t h = 1469598103934665603ull;
    *lines = *too_big = 0;
    for (size_t off = 0; off < n; off += chunk) {
        const char *p = in + off;
        size_t left = n - off < chunk ? n - off : chunk;
        for (;;) {
            struct lade_str line;
            lade_err err = lade_at_lines_next(&lb, &p, &left, &line);
            if (err == LADE_ERR_AGAIN)
                break;
            if (err == LADE_ERR_TOO_BIG) {
                (*too_big)++;
                h = (h ^ 0xffu) * 1099511628211ull;
                continue;
            }
            CHECK(err == LADE_OK);
            (*lines)++;
            check_line(line);
            for (size_t i = 0; i < line.n; i++)
                h = (h ^ (uint8_t)line.p[i]) * 1099511628211ull;
            h = (h ^ 0x100u) * 1099511628211ull;
        }
        CHECK(left == 0);
    }
    return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t chunk = 1 + data[0] % 32;
    char *in = malloc(size - 1 ? size - 1 : 1);
    if (!in)
        return 0;
    memcpy(in, data + 1, size - 1);
    size_t l1, t1, l2, t2;
    uint64_t h1 = split(in, size - 1, chunk, &l1, &t1);
    uint64_t h2 = split(in, size - 1, size, &l2, &t2);
    CHECK(h1 == h2 && l1 == l2 && t1 == t2);
    free(in);
    return 0;
}
