/* libFuzzer target: the DNS response decoder (lade_dns_decode_response), the TCP framing
 * (lade_dns_tcp_frame) and the lookup policy fed with whatever the decoder accepts.
 *
 * Input: byte 0 selects the mode — bit 0: AAAA instead of A; bit 1: the query used 0x20 (fixed
 * case bits 0x55...); bit 2: the rest is a TCP stream (length prefix first); bits 3-5: the
 * address capacity 0..7. The question is always "hub.lade.test" with id 0x1234 (the seeds in
 * corpus/fuzz_dns carry it; the fuzzer finds variants from there). The message is copied to a
 * buffer of its exact size, so an over-read is an ASan report. Invariants:
 *   - only LADE_OK or LADE_ERR_PROTO; PROTO always names a reason and stores no address;
 *   - rcode 0..15; addresses only for NOERROR without TC, of the asked type's size, distinct,
 *     at most the capacity and never more than were seen; TTLs at most one day; CNAME hops at
 *     most LADE_DNS_CNAME_MAX;
 *   - a larger capacity gives the same answer with the small one's addresses as a prefix;
 *   - max_len: the message's own length accepts it like 65535 does, one less refuses it;
 *   - an answer accepted with the exact 0x20 case is accepted without it, identically;
 *   - the lookup policy given the answer on its first query ends (or goes on) consistently:
 *     OK only with addresses, the server that answered, nothing sent to a closed slot. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lade/dns.h"
#include "lade/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

static void discard(void *ud, enum lade_log_level level, const char *module, const char *line)
{
    (void)ud;
    (void)level;
    (void)module;
    (void)line;
}

static bool same_answer(const struct lade_dns_answer *a, const struct lade_dns_answer *b)
{
    return a->rcode == b->rcode && a->tc == b->tc && a->aa == b->aa && a->ra == b->ra &&
           a->reject == b->reject && a->n_addr_seen == b->n_addr_seen &&
           a->cname_hops == b->cname_hops && a->ttl_s == b->ttl_s &&
           a->has_neg_ttl == b->has_neg_ttl && a->neg_ttl_s == b->neg_ttl_s;
}

static void check_answer(lade_err err, const struct lade_dns_answer *a,
                         const struct lade_dns_addr *addrs, size_t cap, uint16_t qtype)
{
    CHECK(err == LADE_OK || err == LADE_ERR_PROTO);
    if (err != LADE_OK) {
        CHECK(a->reject != LADE_DNS_REJ_NONE && a->n_addr == 0);
        return;
    }
    CHECK(a->reject == LADE_DNS_REJ_NONE);
    CHECK(a->rcode <= 15);
    CHECK(a->n_addr <= cap && a->n_addr <= a->n_addr_seen);
    CHECK(a->ttl_s <= LADE_DNS_TTL_MAX_S && a->neg_ttl_s <= LADE_DNS_TTL_MAX_S);
    CHECK(a->cname_hops <= LADE_DNS_CNAME_MAX);
    if (a->rcode != LADE_DNS_NOERROR || a->tc)
        CHECK(a->n_addr_seen == 0);
    if (a->n_addr_seen == 0)
        CHECK(a->ttl_s == 0);
    if (!a->has_neg_ttl)
        CHECK(a->neg_ttl_s == 0);
    for (size_t i = 0; i < a->n_addr; i++) {
        CHECK(addrs[i].len == (qtype == LADE_DNS_TYPE_A ? 4 : 16));
        for (size_t j = 0; j < i; j++)
            CHECK(addrs[j].len != addrs[i].len || memcmp(addrs[j].b, addrs[i].b, 16) != 0);
    }
}

/* The policy with one DHCP server and one fallback, the answer arriving on the first query. */
static void drive_policy(const struct lade_dns_answer *a, const struct lade_dns_addr *addrs,
                         uint16_t qtype)
{
    static struct lade_dns_servers srv;
    static struct lade_dns_lookup lk;
    struct lade_dns_endpoint d = {.family = 4, .ip = {127, 0, 0, 1}, .port = 53};
    struct lade_dns_endpoint f = {.family = 4, .ip = {127, 0, 0, 2}, .port = 53};
    lade_dns_servers_init(&srv);
    lade_dns_servers_set(&srv, &d, 1, &f, 1);
    struct lade_dns_lookup_cfg cfg = {.qtype = qtype, .use_0x20 = true};
    uint64_t now = 1000;
    lade_dns_lookup_start(&lk, &srv, &cfg, now);
    bool open[LADE_DNS_MAX_ATTEMPTS] = {0};
    struct lade_dns_action act;
    int first = -1, done = 0;
    for (int round = 0; round < 3; round++) {
        while (lade_dns_lookup_next_action(&lk, now, &act)) {
            if (act.kind == LADE_DNS_ACT_CLOSE) {
                CHECK(open[act.attempt]);
                open[act.attempt] = false;
            } else if (act.kind == LADE_DNS_ACT_SEND) {
                CHECK(!open[act.attempt] && act.server < srv.n);
                open[act.attempt] = true;
                if (first < 0)
                    first = (int)act.attempt;
            } else {
                done++;
            }
        }
        if (round == 0) {
            CHECK(first >= 0);
            lade_dns_lookup_on_answer(&lk, (unsigned)first, a, addrs, now + 3);
        } else {
            now = lade_dns_lookup_next_deadline(&lk);
            if (now == UINT64_MAX)
                break;
        }
    }
    CHECK(done <= 1);
    if (lade_dns_lookup_done(&lk)) {
        const struct lade_dns_result *r = lade_dns_lookup_result(&lk);
        for (size_t k = 0; k < LADE_DNS_MAX_ATTEMPTS; k++)
            CHECK(!open[k]);
        if (r->err == LADE_OK)
            CHECK(r->n_addr >= 1 && r->n_addr == a->n_addr && r->server == 0);
        else
            CHECK(r->n_addr == 0);
        CHECK(r->err == LADE_OK || r->err == LADE_ERR_NOT_FOUND || r->err == LADE_ERR_RESOLVE ||
              r->err == LADE_ERR_TIMEOUT);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool once;
    if (!once) {
        once = true;
        lade_log_set_sink(discard, NULL);
        lade_log_set_level(LADE_LOG_TRACE); /* the log statements run too */
    }
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    data++;
    size--;
    uint16_t qtype = (mode & 1) ? LADE_DNS_TYPE_AAAA : LADE_DNS_TYPE_A;
    size_t cap = (mode >> 3) & 7u;

    uint8_t bits[LADE_DNS_CASE_BITS_LEN];
    memset(bits, 0x55, sizeof bits);
    struct lade_dns_query q, q_nocase;
    CHECK(lade_dns_query_init(&q, "hub.lade.test", qtype, 0x1234, (mode & 2) ? bits : NULL) ==
          LADE_OK);
    CHECK(lade_dns_query_init(&q_nocase, "hub.lade.test", qtype, 0x1234, NULL) == LADE_OK);

    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    const uint8_t *msg = copy;
    size_t len = size;
    if (mode & 4) {
        lade_err fe = lade_dns_tcp_frame(copy, size, &msg, &len);
        CHECK(fe == LADE_OK || fe == LADE_ERR_AGAIN || fe == LADE_ERR_PROTO);
        if (fe != LADE_OK)
            goto out;
        CHECK(msg == copy + 2 && len >= LADE_DNS_HEADER_LEN && len + 2 <= size);
    }

    struct lade_dns_answer a, big_a, alt;
    struct lade_dns_addr addrs[8], big[LADE_DNS_ADDR_MAX], alt_addrs[LADE_DNS_ADDR_MAX];
    lade_err err = lade_dns_decode_response(&q, msg, len, LADE_DNS_TCP_MAX, &a, addrs, cap);
    check_answer(err, &a, addrs, cap, qtype);

    /* Capacity: same answer, prefix property. */
    lade_err err_big =
        lade_dns_decode_response(&q, msg, len, LADE_DNS_TCP_MAX, &big_a, big, LADE_DNS_ADDR_MAX);
    check_answer(err_big, &big_a, big, LADE_DNS_ADDR_MAX, qtype);
    CHECK(err == err_big && same_answer(&a, &big_a));
    CHECK(a.n_addr == (big_a.n_addr < cap ? big_a.n_addr : cap));
    for (size_t i = 0; i < a.n_addr; i++)
        CHECK(memcmp(&addrs[i], &big[i], sizeof addrs[i]) == 0);

    /* max_len is exact. */
    lade_err e2 = lade_dns_decode_response(&q, msg, len, len, &alt, alt_addrs, LADE_DNS_ADDR_MAX);
    CHECK(e2 == err_big && same_answer(&alt, &big_a));
    if (len > 0) {
        e2 = lade_dns_decode_response(&q, msg, len, len - 1, &alt, alt_addrs, LADE_DNS_ADDR_MAX);
        CHECK(e2 == LADE_ERR_PROTO && alt.reject == LADE_DNS_REJ_TOO_LONG);
    }

    /* 0x20: exact acceptance implies case-insensitive acceptance, with the same answer. */
    if ((mode & 2) && err == LADE_OK) {
        e2 = lade_dns_decode_response(&q_nocase, msg, len, LADE_DNS_TCP_MAX, &alt, alt_addrs,
                                      LADE_DNS_ADDR_MAX);
        CHECK(e2 == LADE_OK && same_answer(&alt, &big_a) && alt.n_addr == big_a.n_addr);
        CHECK(memcmp(alt_addrs, big, big_a.n_addr * sizeof big[0]) == 0);
    }
    if (err_big == LADE_OK)
        drive_policy(&big_a, big, qtype);
out:
    free(copy);
    return 0;
}
