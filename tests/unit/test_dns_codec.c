/* Unit tests for the DNS codec (src/proto/dns/codec.c): query encoding, names, 0x20, and every
 * check of the response decoder — header, question, RCODE/TC as data, CNAME chains, TTLs,
 * compression pointers, bounds, negative-answer TTLs, TCP framing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lade/dns.h"
#include "test_dns_msg.h"

#define NAME "hub.lade.test"

static struct tmsg m; /* the message under test */

static struct lade_dns_query query(const char *name, uint16_t type, uint16_t id)
{
    struct lade_dns_query q;
    assert_int_equal(lade_dns_query_init(&q, name, type, id, NULL), LADE_OK);
    return q;
}

/* Header + the question for NAME/A with the given id and flags. */
static void start(unsigned id, unsigned flags, unsigned an, unsigned ns, unsigned ar)
{
    tm_header(&m, id, flags, 1, an, ns, ar);
    tm_question(&m, NAME, LADE_DNS_TYPE_A, LADE_DNS_CLASS_IN);
}

static lade_err decode(const struct lade_dns_query *q, struct lade_dns_answer *a,
                       struct lade_dns_addr *addrs, size_t cap)
{
    return lade_dns_decode_response(q, m.b, m.n, LADE_DNS_TCP_MAX, a, addrs, cap);
}

static enum lade_dns_reject rejected(const struct lade_dns_query *q)
{
    struct lade_dns_answer a;
    struct lade_dns_addr addrs[4];
    assert_int_equal(decode(q, &a, addrs, 4), LADE_ERR_PROTO);
    assert_int_equal(a.n_addr, 0);
    return a.reject;
}

static void assert_ip4(const struct lade_dns_addr *a, uint8_t x, uint8_t y, uint8_t z, uint8_t w)
{
    assert_int_equal(a->len, 4);
    uint8_t want[4] = {x, y, z, w};
    assert_memory_equal(a->b, want, 4);
}

/* ---------------------------------------------------------------- names and queries */

static void test_name_canonical(void **state)
{
    (void)state;
    char out[LADE_DNS_NAME_TEXT_MAX + 1];
    assert_int_equal(lade_dns_name_canonical("Hub.LADE.test.", out, sizeof out), LADE_OK);
    assert_string_equal(out, "hub.lade.test");
    assert_int_equal(lade_dns_name_canonical("a_b-1", out, sizeof out), LADE_OK);
    assert_string_equal(out, "a_b-1");
    assert_int_equal(lade_dns_name_canonical("hub.lade.test", out, 5), LADE_ERR_NOSPACE);

    char l63[64], l64[65];
    memset(l63, 'a', 63);
    l63[63] = 0;
    memset(l64, 'a', 64);
    l64[64] = 0;
    assert_int_equal(lade_dns_name_canonical(l63, out, sizeof out), LADE_OK);
    assert_int_equal(lade_dns_name_canonical(l64, out, sizeof out), LADE_ERR_INVAL);

    /* 253 characters is the longest; 253 plus a trailing dot too; 254 is not. */
    char long_name[260];
    memset(long_name, 0, sizeof long_name);
    for (size_t i = 0; i < 253; i++)
        long_name[i] = (i % 4 == 3) ? '.' : 'x';
    long_name[252] = 'x';
    assert_int_equal(lade_dns_name_canonical(long_name, out, sizeof out), LADE_OK);
    long_name[253] = '.';
    assert_int_equal(lade_dns_name_canonical(long_name, out, sizeof out), LADE_OK);
    long_name[253] = 'x';
    assert_int_equal(lade_dns_name_canonical(long_name, out, sizeof out), LADE_ERR_INVAL);

    const char *bad[] = {"",    ".",     "..",           "a..b",  ".a",          "a b",
                         "a/b", "a\\.b", "h\xc3\xa4.de", "a.b..", "*.lade.test", "a\tb"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(lade_dns_name_canonical(bad[i], out, sizeof out), LADE_ERR_INVAL);
    assert_int_equal(lade_dns_name_canonical(NULL, out, sizeof out), LADE_ERR_INVAL);
}

static void test_query_encode(void **state)
{
    (void)state;
    struct lade_dns_query q = query("Hub.lade.test.", LADE_DNS_TYPE_A, 0xBEEF);
    static const uint8_t want[] = {0xBE, 0xEF, 0x01, 0x00, 0,   1, 0,   0,   0,   0,   0,
                                   0,    3,    'H',  'u',  'b', 4, 'l', 'a', 'd', 'e', 4,
                                   't',  'e',  's',  't',  0,   0, 1,   0,   1};
    uint8_t buf[600];
    size_t len;
    assert_int_equal(lade_dns_query_size(&q, false), sizeof want);
    assert_int_equal(lade_dns_query_encode(&q, false, buf, sizeof buf, &len), LADE_OK);
    assert_int_equal(len, sizeof want);
    assert_memory_equal(buf, want, sizeof want);
    assert_false(q.exact_case);

    /* TCP: the same message behind its two-byte length. */
    assert_int_equal(lade_dns_query_size(&q, true), sizeof want + 2);
    assert_int_equal(lade_dns_query_encode(&q, true, buf, sizeof buf, &len), LADE_OK);
    assert_int_equal(len, sizeof want + 2);
    assert_int_equal(buf[0], 0);
    assert_int_equal(buf[1], sizeof want);
    assert_memory_equal(buf + 2, want, sizeof want);

    /* Never truncated. */
    assert_int_equal(lade_dns_query_encode(&q, false, buf, sizeof want - 1, &len),
                     LADE_ERR_NOSPACE);
    assert_int_equal(lade_dns_query_encode(&q, true, buf, sizeof want + 1, &len), LADE_ERR_NOSPACE);

    /* AAAA. */
    q = query("x", LADE_DNS_TYPE_AAAA, 1);
    assert_int_equal(lade_dns_query_encode(&q, false, buf, sizeof buf, &len), LADE_OK);
    assert_int_equal(len, 12 + 3 + 4);
    assert_int_equal(buf[len - 3], 28);

    /* Only A and AAAA, only host names. */
    assert_int_equal(lade_dns_query_init(&q, "x", 15, 1, NULL), LADE_ERR_INVAL);
    assert_int_equal(lade_dns_query_init(&q, "a..b", 1, 1, NULL), LADE_ERR_INVAL);
    assert_int_equal(lade_dns_query_init(&q, NULL, 1, 1, NULL), LADE_ERR_INVAL);

    /* Longest name: 253 characters → 255 bytes on the wire. */
    char long_name[254];
    for (size_t i = 0; i < 253; i++)
        long_name[i] = (i % 64 == 63) ? '.' : 'y';
    long_name[253] = 0;
    q = query(long_name, LADE_DNS_TYPE_A, 7);
    assert_int_equal(q.qname_len, 255);
    assert_int_equal(lade_dns_query_size(&q, true), 2 + 12 + 255 + 4);
}

static void test_query_0x20(void **state)
{
    (void)state;
    uint8_t bits[LADE_DNS_CASE_BITS_LEN];
    memset(bits, 0, sizeof bits);
    bits[0] = 0x05; /* characters 0 and 2 */
    bits[1] = 0x01; /* character 8 */
    struct lade_dns_query q;
    assert_int_equal(lade_dns_query_init(&q, "hub.l-de.test", LADE_DNS_TYPE_A, 9, bits), LADE_OK);
    assert_true(q.exact_case);
    /* "hub.l-de.test": H u B . l - d e . T e s t  (index 8 is '.', not a letter: unchanged;
     * index 3 is '.', index 5 '-') */
    static const uint8_t want[] = {3,   'H', 'u', 'B', 4,   'l', '-', 'd',
                                   'e', 4,   't', 'e', 's', 't', 0};
    assert_int_equal(q.qname_len, sizeof want);
    assert_memory_equal(q.qname, want, sizeof want);

    /* All bits set: every letter flips, whatever its case was. */
    memset(bits, 0xFF, sizeof bits);
    assert_int_equal(lade_dns_query_init(&q, "aB9.c", LADE_DNS_TYPE_A, 9, bits), LADE_OK);
    static const uint8_t want2[] = {3, 'A', 'b', '9', 1, 'C', 0};
    assert_memory_equal(q.qname, want2, sizeof want2);
}

/* ---------------------------------------------------------------- answers */

static void test_decode_basic(void **state)
{
    (void)state;
    struct lade_dns_query q = query(NAME, LADE_DNS_TYPE_A, 0x1234);
    start(0x1234, 0x8580, 2, 0, 0); /* QR AA RD RA */
    tm_ptr(&m, 12);
    tm_addr_rr(&m, "10.9.8.7", 300);
    tm_name(&m, "HUB.lade.TEST"); /* owner names compare without regard to case */
    tm_addr_rr(&m, "10.9.8.6", 100);
    struct lade_dns_answer a;
    struct lade_dns_addr addrs[4];
    assert_int_equal(decode(&q, &a, addrs, 4), LADE_OK);
    assert_int_equal(a.rcode, LADE_DNS_NOERROR);
    assert_false(a.tc);
    assert_true(a.aa);
    assert_true(a.ra);
    assert_int_equal(a.n_addr, 2);
    assert_int_equal(a.n_addr_seen, 2);
    assert_int_equal(a.cname_hops, 0);
    assert_ip4(&addrs[0], 10, 9, 8, 7);
    assert_ip4(&addrs[1], 10, 9, 8, 6);
    assert_int_equal(a.ttl_s, 100); /* smallest of the records used */

    /* The same over UDP limits. */
    assert_int_equal(lade_dns_decode_response(&q, m.b, m.n, LADE_DNS_UDP_MAX, &a, addrs, 4),
                     LADE_OK);
    /* cap 0: counted, not stored. */
    assert_int_equal(lade_dns_decode_response(&q, m.b, m.n, LADE_DNS_UDP_MAX, &a, NULL, 0),
                     LADE_OK);
    assert_int_equal(a.n_addr, 0);
    assert_int_equal(a.n_addr_seen, 2);
}

static void test_decode_aaaa(void **state)
{
    (void)state;
    struct lade_dns_query q = query(NAME, LADE_DNS_TYPE_AAAA, 1);
    tm_header(&m, 1, 0x8180, 1, 3, 0, 0);
    tm_question(&m, NAME, LADE_DNS_TYPE_AAAA, 1);
    tm_ptr(&m, 12);
    tm_addr_rr(&m, "10.0.0.1", 60); /* an A record in an AAAA answer: not ours */
    tm_ptr(&m, 12);
    tm_addr_rr(&m, "fd00::7", 60);
    tm_ptr(&m, 12);
    tm_addr_rr(&m, "fd00::7", 60); /* duplicates collapse */
    struct lade_dns_answer a;
    struct lade_dns_addr addrs[4];
    assert_int_equal(decode(&q, &a, addrs, 4), LADE_OK);
    assert_int_equal(a.n_addr, 1);
    assert_int_equal(a.n_addr_seen, 2);
    assert_int_equal(addrs[0].len, 16);
    assert_int_equal(addrs[0].b[0], 0xfd);
    assert_int_equal(addrs[0].b[15], 7);

    /* An A question does not take AAAA records. */
    struct lade_dns_query q4 = query(NAME, LADE_DNS_TYPE_A, 1);
    start(1, 0x8180, 1, 0, 0);
    tm_ptr(&m, 12);
    tm_addr_rr(&m, "fd00::7", 60);
    assert_int_equal(decode(&q4, &a, addrs, 4), LADE_OK);
    assert_int_equal(a.n_addr, 0);
}

static void test_decode_cap_and_unrelated(void **state)
{
    (void)state;
    struct lade_dns_query q = query(NAME, LADE_DNS_TYPE_A, 5);
    start(5, 0x8180, 24, 1, 1);
    /* An MX for the name, an A for another name, an A of class CH: all ignored. */
    tm_ptr(&m, 12);
    tm_rr_head(&m, 15, 1, 60, 4);
    tm_u16(&m, 10);
    tm_ptr(&m, 12);
    tm_name(&m, "evil.lade.test");
    tm_addr_rr(&m, "6.6.6.6", 60);
    tm_ptr(&m, 12);
    tm_rr_head(&m, 1, 3, 60, 4);
    tm_u32(&m, 0x06060606);
    for (unsigned i = 0; i < 21; i++) {
        tm_ptr(&m, 12);
        char ip[32];
        snprintf(ip, sizeof ip, "10.0.0.%u", i + 1);
        tm_addr_rr(&m, ip, 60);
    }
    /* Authority: an NS; additional: an A for the NS. Both ignored. */
    tm_ptr(&m, 16); /* "lade.test" inside the question */
    tm_rr_head(&m, 2, 1, 60, 2);
    tm_ptr(&m, 12);
    tm_name(&m, "ns.lade.test");
    tm_addr_rr(&m, "7.7.7.7", 60);
    struct lade_dns_answer a;
    struct lade_dns_addr addrs[LADE_DNS_ADDR_MAX];
    assert_int_equal(decode(&q, &a, addrs, LADE_DNS_ADDR_MAX), LADE_OK);
    assert_int_equal(a.n_addr_seen, 21);
    assert_int_equal(a.n_addr, LADE_DNS_ADDR_MAX);
    for (size_t i = 0; i < a.n_addr; i++)
        assert_ip4(&addrs[i], 10, 0, 0, (uint8_t)(i + 1));
}

static void test_decode_ttl(void **state)
{
    (void)state;
    struct lade_dns_query q = query(NAME, LADE_DNS_TYPE_A, 5);
    struct lade_dns_answer a;
    struct lade_dns_addr addrs[4];
    /* Capped at one day. */
    start(5, 0x8180, 1, 0, 0);
    tm_ptr(&m, 12);
    tm_addr_rr(&m, "10.0.0.1", 1000000);
    assert_int_equal(decode(&q, &a, addrs, 4), LADE_OK);
    assert_int_equal(a.ttl_s, LADE_DNS_TTL_MAX_S);
    /* Top bit set counts as 0 (RFC 2181 §8). */
    start(5, 0x8180, 2, 0, 0);
    tm_ptr(&m, 12);
    tm_addr_rr(&m, "10.0.0.1", 0x80000001u);
    tm_ptr(&m, 12);
    tm_addr_rr(&m, "10.0.0.2", 50);
    assert_int_equal(decode(&q, &a, addrs, 4), LADE_OK);
    assert_int_equal(a.ttl_s, 0);
    assert_int_equal(a.n_addr, 2);
}

/* name[i] -> name[i+1] CNAMEs, then the addresses of the last. */
static void chain(struct lade_dns_query *q, unsigned links, bool addr_at_end)
{
    static char names[12][32];
    for (unsigned i = 0; i <= links; i++)
        snprintf(names[i], sizeof names[i], i == 0 ? NAME : "c%u.lade.test", i);
    start(q->id, 0x8180, links + (addr_at_end ? 1 : 0), 0, 0);
    /* Records in reverse order: order in the section does not matter. */
    if (addr_at_end) {
        tm_name(&m, names[links]);
        tm_addr_rr(&m, "10.1.1.1", 40);
    }
    for (unsigned i = links; i-- > 0;) {
        if (i == 0)
            tm_ptr(&m, 12);
        else
            tm_name(&m, names[i]);
        tm_cname_rr(&m, names[i + 1], 100 + i);
    }
}

static void test_decode_cname(void **state)
{
    (void)state;
    struct lade_dns_query q = query(NAME, LADE_DNS_TYPE_A, 77);
    struct lade_dns_answer a;
    struct lade_dns_addr addrs[4];

    chain(&q, 2, true);
    assert_int_equal(decode(&q, &a, addrs, 4), LADE_OK);
    assert_int_equal(a.cname_hops, 2);
    assert_int_equal(a.n_addr, 1);
    assert_ip4(&addrs[0], 10, 1, 1, 1);
    assert_int_equal(a.ttl_s, 40);

    /* The chain's TTL counts when it is the smallest. */
    start(77, 0x8180, 2, 0, 0);
    tm_ptr(&m, 12);
    tm_cname_rr(&m, "target.lade.test", 7);
    tm_name(&m, "TARGET.lade.test");
    tm_addr_rr(&m, "10.2.2.2", 500);
    assert_int_equal(decode(&q, &a, addrs, 4), LADE_OK);
    assert_int_equal(a.ttl_s, 7);
    assert_ip4(&addrs[0], 10, 2, 2, 2);

    /* Longest chain accepted, one more refused. */
    chain(&q, LADE_DNS_CNAME_MAX, true);
    assert_int_equal(decode(&q, &a, addrs, 4), LADE_OK);
    assert_int_equal(a.cname_hops, LADE_DNS_CNAME_MAX);
    chain(&q, LADE_DNS_CNAME_MAX + 1, true);
    assert_int_equal(rejected(&q), LADE_DNS_REJ_CHAIN);

    /* A chain whose end is not in the message: no address (NODATA for us). */
    chain(&q, 3, false);
    assert_int_equal(decode(&q, &a, addrs, 4), LADE_OK);
    assert_int_equal(a.n_addr, 0);
    assert_int_equal(a.cname_hops, 3);

    /* A loop a -> b -> a is refused, in bounded time. */
    start(77, 0x8180, 2, 0, 0);
    tm_ptr(&m, 12);
    tm_cname_rr(&m, "loop.lade.test", 60);
    tm_name(&m, "loop.lade.test");
    tm_cname_rr(&m, NAME, 60);
    assert_int_equal(rejected(&q), LADE_DNS_REJ_CHAIN);

    /* A self-loop too. */
    start(77, 0x8180, 1, 0, 0);
    tm_ptr(&m, 12);
    tm_cname_rr(&m, NAME, 60);
    assert_int_equal(rejected(&q), LADE_DNS_REJ_CHAIN);

    /* Addresses for the name win over a CNAME for it. */
    start(77, 0x8180, 2, 0, 0);
    tm_ptr(&m, 12);
    tm_cname_rr(&m, "other.lade.test", 60);
    tm_ptr(&m, 12);
    tm_addr_rr(&m, "10.3.3.3", 60);
    assert_int_equal(decode(&q, &a, addrs, 4), LADE_OK);
    assert_int_equal(a.cname_hops, 0);
    assert_ip4(&addrs[0], 10, 3, 3, 3);

    /* Two CNAMEs for one name: the first is followed. */
    start(77, 0x8180, 4, 0, 0);
    tm_ptr(&m, 12);
    tm_cname_rr(&m, "first.lade.test", 60);
    tm_ptr(&m, 12);
    tm_cname_rr(&m, "second.lade.test", 60);
    tm_name(&m, "second.lade.test");
    tm_addr_rr(&m, "6.6.6.6", 60);
    tm_name(&m, "first.lade.test");
    tm_addr_rr(&m, "10.4.4.4", 60);
    assert_int_equal(decode(&q, &a, addrs, 4), LADE_OK);
    assert_int_equal(a.n_addr, 1);
    assert_ip4(&addrs[0], 10, 4, 4, 4);

    /* A CNAME whose target runs past its RDATA, or leaves bytes in it, is malformed. */
    start(77, 0x8180, 1, 0, 0);
    tm_ptr(&m, 12);
    tm_rr_head(&m, 5, 1, 60, 3);
    tm_name(&m, "abc");
    assert_int_equal(rejected(&q), LADE_DNS_REJ_MALFORMED);
    start(77, 0x8180, 1, 0, 0);
    tm_ptr(&m, 12);
    tm_rr_head(&m, 5, 1, 60, 6);
    tm_name(&m, "abc");
    tm_u8(&m, 0);
    assert_int_equal(rejected(&q), LADE_DNS_REJ_MALFORMED);
    /* A compressed target is fine. */
    start(77, 0x8180, 2, 0, 0);
    tm_ptr(&m, 12);
    tm_rr_head(&m, 5, 1, 60, 5);
    tm_u8(&m, 2);
    tm_bytes(&m, "zz", 2);
    tm_ptr(&m, 16); /* zz.lade.test */
    tm_name(&m, "zz.lade.test");
    tm_addr_rr(&m, "10.5.5.5", 60);
    assert_int_equal(decode(&q, &a, addrs, 4), LADE_OK);
    assert_ip4(&addrs[0], 10, 5, 5, 5);
}

static void test_decode_rcodes(void **state)
{
    (void)state;
    struct lade_dns_query q = query(NAME, LADE_DNS_TYPE_A, 3);
    struct lade_dns_answer a;
    struct lade_dns_addr addrs[4];
    /* SERVFAIL with a (bogus) address: the code is data, the address is not used. */
    for (unsigned rc = 1; rc < 16; rc++) {
        start(3, 0x8180 | rc, 1, 0, 0);
        tm_ptr(&m, 12);
        tm_addr_rr(&m, "6.6.6.6", 60);
        assert_int_equal(decode(&q, &a, addrs, 4), LADE_OK);
        assert_int_equal(a.rcode, rc);
        assert_int_equal(a.n_addr, 0);
    }
    assert_string_equal(lade_dns_rcode_name(LADE_DNS_REFUSED), "REFUSED");
    assert_string_equal(lade_dns_rcode_name(LADE_DNS_NXDOMAIN), "NXDOMAIN");
    assert_string_equal(lade_dns_rcode_name(11), "RCODE?");

    /* NXDOMAIN with an SOA: negative TTL = min(SOA TTL, MINIMUM) (RFC 2308 §5). */
    start(3, 0x8183, 0, 1, 0);
    tm_ptr(&m, 16);
    tm_soa_rr(&m, 900, 60);
    assert_int_equal(decode(&q, &a, addrs, 4), LADE_OK);
    assert_int_equal(a.rcode, LADE_DNS_NXDOMAIN);
    assert_true(a.has_neg_ttl);
    assert_int_equal(a.neg_ttl_s, 60);
    start(3, 0x8183, 0, 1, 0);
    tm_ptr(&m, 16);
    tm_soa_rr(&m, 20, 3600);
    assert_int_equal(decode(&q, &a, addrs, 4), LADE_OK);
    assert_int_equal(a.neg_ttl_s, 20);
    /* Without SOA: no negative TTL. */
    start(3, 0x8183, 0, 0, 0);
    assert_int_equal(decode(&q, &a, addrs, 4), LADE_OK);
    assert_false(a.has_neg_ttl);
    /* NODATA (NOERROR, no address) with SOA. */
    start(3, 0x8180, 0, 1, 0);
    tm_ptr(&m, 16);
    tm_soa_rr(&m, 300, 30);
    assert_int_equal(decode(&q, &a, addrs, 4), LADE_OK);
    assert_int_equal(a.rcode, LADE_DNS_NOERROR);
    assert_int_equal(a.n_addr, 0);
    assert_true(a.has_neg_ttl);
    assert_int_equal(a.neg_ttl_s, 30);
    /* A malformed SOA (RDATA too short) is only not used. */
    start(3, 0x8183, 0, 1, 0);
    tm_ptr(&m, 16);
    tm_rr_head(&m, 6, 1, 60, 2);
    tm_u16(&m, 0);
    assert_int_equal(decode(&q, &a, addrs, 4), LADE_OK);
    assert_false(a.has_neg_ttl);
}

static void test_decode_truncated(void **state)
{
    (void)state;
    struct lade_dns_query q = query(NAME, LADE_DNS_TYPE_A, 3);
    struct lade_dns_answer a;
    struct lade_dns_addr addrs[4];
    /* TC=1: the answer section may be cut anywhere; only header and question count. */
    start(3, 0x8380, 5, 0, 0);
    tm_ptr(&m, 12);
    tm_u16(&m, 1);
    assert_int_equal(decode(&q, &a, addrs, 4), LADE_OK);
    assert_true(a.tc);
    assert_int_equal(a.n_addr, 0);
    /* But the question must still be ours. */
    tm_header(&m, 3, 0x8380, 1, 0, 0, 0);
    tm_question(&m, "evil.lade.test", 1, 1);
    assert_int_equal(rejected(&q), LADE_DNS_REJ_QUESTION);
}

static void test_decode_header_checks(void **state)
{
    (void)state;
    struct lade_dns_query q = query(NAME, LADE_DNS_TYPE_A, 0x4242);
    struct lade_dns_answer a;
    struct lade_dns_addr addrs[4];

    /* Shorter than a header, at every length. */
    start(0x4242, 0x8180, 0, 0, 0);
    for (size_t n = 0; n < 12; n++)
        assert_int_equal(lade_dns_decode_response(&q, m.b, n, 512, &a, addrs, 4), LADE_ERR_PROTO);
    /* Every cut of a good message is refused (the counts promise more). */
    start(0x4242, 0x8180, 1, 0, 0);
    tm_ptr(&m, 12);
    tm_addr_rr(&m, "10.0.0.1", 60);
    for (size_t n = 12; n < m.n; n++) {
        assert_int_equal(lade_dns_decode_response(&q, m.b, n, 512, &a, addrs, 4), LADE_ERR_PROTO);
        assert_int_equal(a.reject, LADE_DNS_REJ_MALFORMED);
    }
    assert_int_equal(lade_dns_decode_response(&q, m.b, m.n, 512, &a, addrs, 4), LADE_OK);
    /* Longer than max_len. */
    assert_int_equal(lade_dns_decode_response(&q, m.b, m.n, m.n - 1, &a, addrs, 4), LADE_ERR_PROTO);
    assert_int_equal(a.reject, LADE_DNS_REJ_TOO_LONG);
    /* Trailing bytes. */
    tm_u8(&m, 0);
    assert_int_equal(rejected(&q), LADE_DNS_REJ_MALFORMED);

    start(0x4242, 0x0180, 0, 0, 0); /* QR=0: a query, not a response */
    assert_int_equal(rejected(&q), LADE_DNS_REJ_NOT_RESPONSE);
    start(0x4242, 0x8180 | (2u << 11), 0, 0, 0); /* opcode STATUS */
    assert_int_equal(rejected(&q), LADE_DNS_REJ_OPCODE);
    start(0x4243, 0x8180, 0, 0, 0);
    assert_int_equal(rejected(&q), LADE_DNS_REJ_ID);
    tm_header(&m, 0x4242, 0x8185, 0, 0, 0, 0); /* REFUSED without the question */
    assert_int_equal(rejected(&q), LADE_DNS_REJ_QDCOUNT);
    tm_header(&m, 0x4242, 0x8180, 2, 0, 0, 0);
    tm_question(&m, NAME, 1, 1);
    tm_question(&m, NAME, 1, 1);
    assert_int_equal(rejected(&q), LADE_DNS_REJ_QDCOUNT);

    /* Another name, type, class; a name that is a prefix or suffix of ours. */
    const char *names[] = {"hub.lade.tesT.evil", "ub.lade.test", "hub.lade", "hub-lade.test",
                           "hub.lade.tes"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        tm_header(&m, 0x4242, 0x8180, 1, 0, 0, 0);
        tm_question(&m, names[i], 1, 1);
        assert_int_equal(rejected(&q), LADE_DNS_REJ_QUESTION);
    }
    tm_header(&m, 0x4242, 0x8180, 1, 0, 0, 0);
    tm_question(&m, NAME, 28, 1);
    assert_int_equal(rejected(&q), LADE_DNS_REJ_QUESTION);
    tm_header(&m, 0x4242, 0x8180, 1, 0, 0, 0);
    tm_question(&m, NAME, 1, 3);
    assert_int_equal(rejected(&q), LADE_DNS_REJ_QUESTION);
    /* Question cut short. */
    tm_header(&m, 0x4242, 0x8180, 1, 0, 0, 0);
    tm_name(&m, NAME);
    tm_u16(&m, 1);
    assert_int_equal(rejected(&q), LADE_DNS_REJ_MALFORMED);

    /* Case: ignored without 0x20, exact with it. */
    tm_header(&m, 0x4242, 0x8180, 1, 0, 0, 0);
    tm_question(&m, "HUB.Lade.test", 1, 1);
    assert_int_equal(decode(&q, &a, addrs, 4), LADE_OK);
    uint8_t bits[LADE_DNS_CASE_BITS_LEN] = {0x01}; /* "Hub.lade.test" */
    struct lade_dns_query qx;
    assert_int_equal(lade_dns_query_init(&qx, NAME, LADE_DNS_TYPE_A, 0x4242, bits), LADE_OK);
    assert_int_equal(rejected(&qx), LADE_DNS_REJ_CASE);
    tm_header(&m, 0x4242, 0x8180, 1, 0, 0, 0);
    tm_question(&m, "hub.lade.test", 1, 1); /* case folded by the server */
    assert_int_equal(rejected(&qx), LADE_DNS_REJ_CASE);
    tm_header(&m, 0x4242, 0x8180, 1, 0, 0, 0);
    tm_question(&m, "Hub.lade.test", 1, 1);
    assert_int_equal(decode(&qx, &a, addrs, 4), LADE_OK);
    tm_header(&m, 0x4242, 0x8180, 1, 0, 0, 0);
    tm_question(&m, "Hub.lade.tesx", 1, 1); /* another name stays "other question" */
    assert_int_equal(rejected(&qx), LADE_DNS_REJ_QUESTION);

    assert_string_equal(lade_dns_reject_name(LADE_DNS_REJ_ID), "wrong id");
    assert_int_equal(lade_dns_decode_response(NULL, m.b, m.n, 512, &a, addrs, 4), LADE_ERR_INVAL);
    assert_int_equal(lade_dns_decode_response(&q, m.b, m.n, 512, &a, NULL, 4), LADE_ERR_INVAL);
}

static void test_decode_records_malformed(void **state)
{
    (void)state;
    struct lade_dns_query q = query(NAME, LADE_DNS_TYPE_A, 8);
    /* A record with 5 bytes of data for our name. */
    start(8, 0x8180, 1, 0, 0);
    tm_ptr(&m, 12);
    tm_rr_head(&m, 1, 1, 60, 5);
    tm_u32(&m, 0x0a000001);
    tm_u8(&m, 0);
    assert_int_equal(rejected(&q), LADE_DNS_REJ_MALFORMED);
    /* AAAA with 4 bytes. */
    start(8, 0x8180, 1, 0, 0);
    tm_ptr(&m, 12);
    tm_rr_head(&m, 28, 1, 60, 4);
    tm_u32(&m, 0x0a000001);
    assert_int_equal(rejected(&q), LADE_DNS_REJ_MALFORMED);
    /* RDLENGTH past the end. */
    start(8, 0x8180, 1, 0, 0);
    tm_ptr(&m, 12);
    tm_rr_head(&m, 1, 1, 60, 4);
    tm_u16(&m, 0x0a00);
    assert_int_equal(rejected(&q), LADE_DNS_REJ_MALFORMED);
    /* More records announced than present, in each section. */
    for (int sec = 0; sec < 3; sec++) {
        start(8, 0x8180, sec == 0 ? 2 : 1, sec == 1, sec == 2);
        tm_ptr(&m, 12);
        tm_addr_rr(&m, "10.0.0.1", 60);
        assert_int_equal(rejected(&q), LADE_DNS_REJ_MALFORMED);
    }
    /* A malformed record in the additional section spoils the message too. */
    start(8, 0x8180, 1, 0, 1);
    tm_ptr(&m, 12);
    tm_addr_rr(&m, "10.0.0.1", 60);
    tm_u8(&m, 0x40); /* extended label type */
    tm_rr_head(&m, 1, 1, 60, 0);
    assert_int_equal(rejected(&q), LADE_DNS_REJ_MALFORMED);
}

static void test_decode_compression(void **state)
{
    (void)state;
    struct lade_dns_query q = query(NAME, LADE_DNS_TYPE_A, 9);
    struct lade_dns_answer a;
    struct lade_dns_addr addrs[4];
    size_t qend;

    /* A pointer chain: "x" + ptr -> "hub" + ptr -> "lade.test" (within the question): legal,
     * points backwards each time. */
    start(9, 0x8180, 2, 0, 0);
    qend = m.n;
    tm_ptr(&m, 12);
    tm_cname_rr(&m, "w.hub.lade.test", 60);
    tm_u8(&m, 1); /* owner: "w" + pointer into the CNAME target's "hub.lade.test" */
    tm_u8(&m, 'w');
    tm_ptr(&m, 12);
    tm_addr_rr(&m, "10.6.6.6", 60);
    assert_int_equal(decode(&q, &a, addrs, 4), LADE_OK);
    assert_int_equal(a.n_addr, 1);
    (void)qend;

    /* Forward pointer, pointer to itself, pointer into the header, pointer past the end. */
    const unsigned bad_targets[] = {0xFFF, 0, 5, 11};
    for (size_t i = 0; i < 4; i++) {
        start(9, 0x8180, 1, 0, 0);
        unsigned here = (unsigned)m.n;
        tm_ptr(&m, bad_targets[i] == 0 ? here : bad_targets[i]);
        tm_addr_rr(&m, "10.0.0.1", 60);
        assert_int_equal(rejected(&q), LADE_DNS_REJ_MALFORMED);
    }
    /* A pointer to the next byte (forward by one). */
    start(9, 0x8180, 1, 0, 0);
    tm_ptr(&m, (unsigned)m.n + 2);
    tm_addr_rr(&m, "10.0.0.1", 60);
    assert_int_equal(rejected(&q), LADE_DNS_REJ_MALFORMED);
    /* Pointer cut in half at the end of the message. */
    start(9, 0x8180, 0, 0, 1);
    tm_u8(&m, 0xC0);
    assert_int_equal(rejected(&q), LADE_DNS_REJ_MALFORMED);

    /* A loop made of labels and a backward pointer: "a" at X, then pointer -> X. It only ever
     * points backwards, and the 255-byte limit stops it. */
    start(9, 0x8180, 1, 0, 0);
    unsigned x = (unsigned)m.n;
    tm_u8(&m, 1);
    tm_u8(&m, 'a');
    tm_ptr(&m, x);
    tm_addr_rr(&m, "10.0.0.1", 60);
    assert_int_equal(rejected(&q), LADE_DNS_REJ_MALFORMED);

    /* Label types 0x40 and 0x80 are refused. */
    for (unsigned t = 0x40; t <= 0x80; t += 0x40) {
        start(9, 0x8180, 1, 0, 0);
        tm_u8(&m, t | 1);
        tm_u8(&m, 'a');
        tm_u8(&m, 0);
        tm_addr_rr(&m, "10.0.0.1", 60);
        assert_int_equal(rejected(&q), LADE_DNS_REJ_MALFORMED);
    }

    /* A name of exactly 255 bytes is fine; 256 is not (built by pointer-extending). */
    struct tmsg *mm = &m;
    start(9, 0x8180, 1, 0, 0);
    /* owner: 4 labels of 63 = 256 bytes + root = 257 > 255 */
    for (int i = 0; i < 4; i++) {
        tm_u8(mm, 63);
        for (int j = 0; j < 63; j++)
            tm_u8(mm, 'q');
    }
    tm_u8(mm, 0);
    tm_addr_rr(mm, "10.0.0.1", 60);
    assert_int_equal(rejected(&q), LADE_DNS_REJ_MALFORMED);
    start(9, 0x8180, 1, 0, 0);
    for (int i = 0; i < 3; i++) {
        tm_u8(mm, 63);
        for (int j = 0; j < 63; j++)
            tm_u8(mm, 'q');
    }
    tm_u8(mm, 61);
    for (int j = 0; j < 61; j++)
        tm_u8(mm, 'q');
    tm_u8(mm, 0); /* 3*64 + 62 + 1 = 255 */
    tm_addr_rr(mm, "10.0.0.1", 60);
    assert_int_equal(decode(&q, &a, addrs, 4), LADE_OK);
    assert_int_equal(a.n_addr, 0); /* not our name */
}

/* A worst-case message decodes in bounded time: thousands of records, each scanned once per
 * CNAME hop. (A timing limit belongs to benchmarks; this only proves termination.) */
static void test_decode_many_records(void **state)
{
    (void)state;
    struct lade_dns_query q = query(NAME, LADE_DNS_TYPE_A, 10);
    struct lade_dns_answer a;
    struct lade_dns_addr addrs[4];
    unsigned n = 5000;
    start(10, 0x8180, n + LADE_DNS_CNAME_MAX, 0, 0);
    for (unsigned i = 0; i < n; i++) {
        tm_ptr(&m, 16);
        tm_rr_head(&m, 99, 1, 60, 0);
    }
    for (unsigned i = 0; i < LADE_DNS_CNAME_MAX; i++) {
        if (i == 0)
            tm_ptr(&m, 12);
        else {
            tm_u8(&m, 1);
            tm_u8(&m, 'a' + i);
            tm_u8(&m, 0);
        }
        char t[4] = {'a', (char)('a' + i + 1), 0, 0};
        tm_cname_rr(&m, t + 1, 60);
    }
    assert_true(m.n <= LADE_DNS_TCP_MAX);
    assert_int_equal(decode(&q, &a, addrs, 4), LADE_OK);
    assert_int_equal(a.cname_hops, LADE_DNS_CNAME_MAX);
    assert_int_equal(a.n_addr, 0);
}

static void test_tcp_frame(void **state)
{
    (void)state;
    uint8_t buf[64] = {0, 12};
    const uint8_t *msg;
    size_t len;
    assert_int_equal(lade_dns_tcp_frame(buf, 0, &msg, &len), LADE_ERR_AGAIN);
    assert_int_equal(lade_dns_tcp_frame(buf, 1, &msg, &len), LADE_ERR_AGAIN);
    assert_int_equal(lade_dns_tcp_frame(buf, 13, &msg, &len), LADE_ERR_AGAIN);
    assert_int_equal(lade_dns_tcp_frame(buf, 14, &msg, &len), LADE_OK);
    assert_ptr_equal(msg, buf + 2);
    assert_int_equal(len, 12);
    assert_int_equal(lade_dns_tcp_frame(buf, 64, &msg, &len), LADE_OK);
    assert_int_equal(len, 12);
    buf[1] = 11;
    assert_int_equal(lade_dns_tcp_frame(buf, 64, &msg, &len), LADE_ERR_PROTO);
    buf[0] = 0xFF;
    buf[1] = 0xFF;
    assert_int_equal(lade_dns_tcp_frame(buf, 64, &msg, &len), LADE_ERR_AGAIN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_canonical),
        cmocka_unit_test(test_query_encode),
        cmocka_unit_test(test_query_0x20),
        cmocka_unit_test(test_decode_basic),
        cmocka_unit_test(test_decode_aaaa),
        cmocka_unit_test(test_decode_cap_and_unrelated),
        cmocka_unit_test(test_decode_ttl),
        cmocka_unit_test(test_decode_cname),
        cmocka_unit_test(test_decode_rcodes),
        cmocka_unit_test(test_decode_truncated),
        cmocka_unit_test(test_decode_header_checks),
        cmocka_unit_test(test_decode_records_malformed),
        cmocka_unit_test(test_decode_compression),
        cmocka_unit_test(test_decode_many_records),
        cmocka_unit_test(test_tcp_frame),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
