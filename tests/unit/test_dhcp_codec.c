/* Unit tests for the DHCP codec (src/proto/dhcp/codec.c): every client message kind against the
 * RFC 2131 Table 5, and the reply decoder on every malformed edge. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lade/dhcp.h"
#include "test_dhcp_util.h"

#define XID    0x12345678u
#define YI     LADE_IPV4(192, 168, 7, 50)
#define SERVER LADE_IPV4(192, 168, 7, 1)

static const uint8_t CID[7] = {1, 0x02, 0x00, 0x5e, 0x10, 0x20, 0x30};

static struct lade_dhcp_msg base_msg(enum lade_dhcp_kind kind)
{
    struct lade_dhcp_msg m = {
        .kind = kind,
        .xid = XID,
        .secs = 3,
        .addr = YI,
        .server_id = SERVER,
        .client_id = CID,
        .client_id_len = sizeof CID,
        .hostname = "charger-1",
        .hostname_len = 9,
        .max_msg_size = 1500,
        .message = "in use",
        .message_len = 6,
    };
    memcpy(m.chaddr, MAC, 6);
    return m;
}

static void encode(const struct lade_dhcp_msg *m, struct cmsg *out, size_t *len)
{
    uint8_t buf[600];
    size_t size, n;
    assert_int_equal(lade_dhcp_msg_size(m, &size), LADE_OK);
    assert_int_equal(lade_dhcp_encode(m, buf, sizeof buf, &n), LADE_OK);
    assert_int_equal(n, size);
    assert_true(n >= LADE_DHCP_BOOTP_MIN);
    assert_true(parse_client(buf, n, out));
    assert_int_equal(out->op, 1);
    assert_int_equal(out->htype, 1);
    assert_int_equal(out->hlen, 6);
    assert_int_equal(out->xid, XID);
    assert_int_equal(out->secs, 3);
    assert_memory_equal(out->chaddr, MAC, 6);
    assert_true(out->has61);
    assert_int_equal(out->cid_len, sizeof CID);
    /* our own message is not a reply */
    struct lade_dhcp_reply r;
    assert_int_equal(lade_dhcp_decode_reply(buf, n, XID, MAC, &r), LADE_ERR_PROTO);
    if (len)
        *len = n;
}

static void test_encode_discover(void **state)
{
    (void)state;
    struct lade_dhcp_msg m = base_msg(LADE_DHCP_KIND_DISCOVER);
    m.addr = 0;
    struct cmsg c;
    size_t n;
    encode(&m, &c, &n);
    assert_int_equal(n, LADE_DHCP_BOOTP_MIN); /* padded */
    assert_int_equal(c.type, LADE_DHCP_DISCOVER);
    assert_int_equal(c.ciaddr, 0);
    assert_false(c.has50);
    assert_false(c.has54);
    assert_false(c.has56);
    assert_true(c.has55);
    static const uint8_t prl[] = {1, 3, 6, 42, 51, 54, 58, 59};
    assert_int_equal(c.prl_len, sizeof prl);
    assert_memory_equal(c.prl, prl, sizeof prl);
    assert_true(c.has57);
    assert_int_equal(c.max_msg, 1500);
    assert_true(c.has12);
    assert_string_equal(c.hostname, "charger-1");
    assert_int_equal(c.flags, 0);

    /* a previous address as a hint (option 50 MAY) and the broadcast flag */
    m.addr = YI;
    m.broadcast = true;
    encode(&m, &c, NULL);
    assert_true(c.has50);
    assert_int_equal(c.req, YI);
    assert_int_equal(c.flags, 0x8000);
}

static void test_encode_requests(void **state)
{
    (void)state;
    struct cmsg c;
    struct lade_dhcp_msg m = base_msg(LADE_DHCP_KIND_REQUEST_SELECTING);
    encode(&m, &c, NULL);
    assert_int_equal(c.type, LADE_DHCP_REQUEST);
    assert_int_equal(c.ciaddr, 0);
    assert_true(c.has50 && c.req == YI);
    assert_true(c.has54 && c.server == SERVER);
    assert_true(c.has55 && c.has57 && c.has12);
    assert_false(c.has56);

    m = base_msg(LADE_DHCP_KIND_REQUEST_INIT_REBOOT);
    encode(&m, &c, NULL);
    assert_int_equal(c.ciaddr, 0);
    assert_true(c.has50 && c.req == YI);
    assert_false(c.has54);

    m = base_msg(LADE_DHCP_KIND_REQUEST_RENEWING);
    m.broadcast = true; /* never with ciaddr */
    encode(&m, &c, NULL);
    assert_int_equal(c.ciaddr, YI);
    assert_false(c.has50);
    assert_false(c.has54);
    assert_int_equal(c.flags, 0);

    m = base_msg(LADE_DHCP_KIND_REQUEST_REBINDING);
    encode(&m, &c, NULL);
    assert_int_equal(c.ciaddr, YI);
    assert_false(c.has50);
    assert_false(c.has54);
    assert_true(c.has55);
}

static void test_encode_decline_release(void **state)
{
    (void)state;
    struct cmsg c;
    struct lade_dhcp_msg m = base_msg(LADE_DHCP_KIND_DECLINE);
    encode(&m, &c, NULL);
    assert_int_equal(c.type, LADE_DHCP_DECLINE);
    assert_int_equal(c.ciaddr, 0);
    assert_true(c.has50 && c.req == YI);
    assert_true(c.has54 && c.server == SERVER);
    assert_true(c.has56);
    assert_false(c.has55 || c.has57 || c.has12); /* MUST NOT */

    m = base_msg(LADE_DHCP_KIND_RELEASE);
    m.message = NULL;
    encode(&m, &c, NULL);
    assert_int_equal(c.type, LADE_DHCP_RELEASE);
    assert_int_equal(c.ciaddr, YI);
    assert_false(c.has50);
    assert_true(c.has54 && c.server == SERVER);
    assert_false(c.has55 || c.has57 || c.has12 || c.has56);
}

/* INFORM (RFC 2131 §4.4.3): ciaddr = our address, no 50/54, parameters asked for, no broadcast
 * flag (the ACK goes to ciaddr); an address is required. */
static void test_encode_inform(void **state)
{
    (void)state;
    struct cmsg c;
    size_t n, size;
    struct lade_dhcp_msg m = base_msg(LADE_DHCP_KIND_INFORM);
    m.broadcast = true;
    encode(&m, &c, &n);
    assert_int_equal(n, LADE_DHCP_BOOTP_MIN);
    assert_int_equal(c.type, LADE_DHCP_INFORM);
    assert_int_equal(c.ciaddr, YI);
    assert_false(c.has50); /* MUST NOT (Table 5) */
    assert_false(c.has54); /* MUST NOT */
    assert_false(c.has56);
    assert_true(c.has55 && c.has57 && c.has12);
    static const uint8_t prl[] = {1, 3, 6, 42, 51, 54, 58, 59};
    assert_int_equal(c.prl_len, sizeof prl);
    assert_memory_equal(c.prl, prl, sizeof prl);
    assert_int_equal(c.flags, 0);
    assert_true(c.ended);

    /* minimal: no client id, hostname or option 57 */
    m = base_msg(LADE_DHCP_KIND_INFORM);
    m.client_id = NULL;
    m.hostname = NULL;
    m.max_msg_size = 0;
    uint8_t buf[600];
    assert_int_equal(lade_dhcp_encode(&m, buf, sizeof buf, &n), LADE_OK);
    assert_true(parse_client(buf, n, &c));
    assert_int_equal(c.type, LADE_DHCP_INFORM);
    assert_int_equal(c.ciaddr, YI);
    assert_false(c.has61 || c.has57 || c.has12 || c.has50 || c.has54);
    assert_true(c.has55);

    /* the address is required and must be usable */
    static const uint32_t bad[] = {0, LADE_IPV4(127, 0, 0, 1), LADE_IPV4(224, 0, 0, 1),
                                   LADE_IPV4_BROADCAST};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        m.addr = bad[i];
        assert_int_equal(lade_dhcp_msg_size(&m, &size), LADE_ERR_INVAL);
    }
}

static void test_encode_invalid(void **state)
{
    (void)state;
    size_t size, n;
    uint8_t buf[600];
    struct lade_dhcp_msg m = base_msg(LADE_DHCP_KIND_REQUEST_SELECTING);

    assert_int_equal(lade_dhcp_msg_size(NULL, &size), LADE_ERR_INVAL);
    m.kind = (enum lade_dhcp_kind)99;
    assert_int_equal(lade_dhcp_msg_size(&m, &size), LADE_ERR_INVAL);

    m = base_msg(LADE_DHCP_KIND_REQUEST_SELECTING);
    m.server_id = 0;
    assert_int_equal(lade_dhcp_msg_size(&m, &size), LADE_ERR_INVAL);
    m = base_msg(LADE_DHCP_KIND_DECLINE);
    m.server_id = LADE_IPV4(224, 0, 0, 1);
    assert_int_equal(lade_dhcp_msg_size(&m, &size), LADE_ERR_INVAL);
    m = base_msg(LADE_DHCP_KIND_RELEASE);
    m.server_id = 0;
    assert_int_equal(lade_dhcp_msg_size(&m, &size), LADE_ERR_INVAL);

    static const enum lade_dhcp_kind need_addr[] = {
        LADE_DHCP_KIND_REQUEST_SELECTING, LADE_DHCP_KIND_REQUEST_INIT_REBOOT,
        LADE_DHCP_KIND_REQUEST_RENEWING,  LADE_DHCP_KIND_REQUEST_REBINDING,
        LADE_DHCP_KIND_DECLINE,           LADE_DHCP_KIND_RELEASE};
    for (size_t i = 0; i < sizeof need_addr / sizeof need_addr[0]; i++) {
        m = base_msg(need_addr[i]);
        m.addr = 0;
        assert_int_equal(lade_dhcp_msg_size(&m, &size), LADE_ERR_INVAL);
        m.addr = LADE_IPV4(127, 0, 0, 1);
        assert_int_equal(lade_dhcp_msg_size(&m, &size), LADE_ERR_INVAL);
        m.addr = LADE_IPV4_BROADCAST;
        assert_int_equal(lade_dhcp_msg_size(&m, &size), LADE_ERR_INVAL);
    }
    m = base_msg(LADE_DHCP_KIND_DISCOVER);
    m.addr = LADE_IPV4(240, 0, 0, 1); /* a bad hint */
    assert_int_equal(lade_dhcp_msg_size(&m, &size), LADE_ERR_INVAL);

    m = base_msg(LADE_DHCP_KIND_DISCOVER);
    m.client_id_len = 1;
    assert_int_equal(lade_dhcp_msg_size(&m, &size), LADE_ERR_INVAL);
    m.client_id_len = LADE_DHCP_CLIENT_ID_MAX + 1;
    assert_int_equal(lade_dhcp_msg_size(&m, &size), LADE_ERR_INVAL);

    m = base_msg(LADE_DHCP_KIND_DISCOVER);
    m.hostname = "a b";
    m.hostname_len = 3;
    assert_int_equal(lade_dhcp_msg_size(&m, &size), LADE_ERR_INVAL);
    m.hostname_len = 0;
    assert_int_equal(lade_dhcp_msg_size(&m, &size), LADE_ERR_INVAL);
    char longname[LADE_DHCP_HOSTNAME_MAX + 2];
    memset(longname, 'h', sizeof longname);
    m.hostname = longname;
    m.hostname_len = LADE_DHCP_HOSTNAME_MAX + 1;
    assert_int_equal(lade_dhcp_msg_size(&m, &size), LADE_ERR_INVAL);
    m.hostname_len = LADE_DHCP_HOSTNAME_MAX;
    assert_int_equal(lade_dhcp_msg_size(&m, &size), LADE_OK);

    m = base_msg(LADE_DHCP_KIND_DISCOVER);
    m.max_msg_size = 575;
    assert_int_equal(lade_dhcp_msg_size(&m, &size), LADE_ERR_INVAL);
    m.max_msg_size = 576;
    assert_int_equal(lade_dhcp_msg_size(&m, &size), LADE_OK);

    m = base_msg(LADE_DHCP_KIND_DECLINE);
    m.message_len = 0;
    assert_int_equal(lade_dhcp_msg_size(&m, &size), LADE_ERR_INVAL);
    char msg[300];
    memset(msg, 'x', sizeof msg);
    m.message = msg;
    m.message_len = 256;
    assert_int_equal(lade_dhcp_msg_size(&m, &size), LADE_ERR_INVAL);
    m.message_len = 255;
    assert_int_equal(lade_dhcp_msg_size(&m, &size), LADE_OK);
    assert_true(size > LADE_DHCP_BOOTP_MIN);
    /* two-step: one byte short is NOSPACE, exact fits */
    assert_int_equal(lade_dhcp_encode(&m, buf, size - 1, &n), LADE_ERR_NOSPACE);
    assert_int_equal(lade_dhcp_encode(&m, buf, size, &n), LADE_OK);
    assert_int_equal(n, size);
    assert_int_equal(lade_dhcp_encode(&m, NULL, size, &n), LADE_ERR_INVAL);
}

/* ---------------------------------------------------------------- decoder */

static uint8_t B[LADE_DHCP_MAX_REPLY + 16];

static lade_err dec(size_t n, struct lade_dhcp_reply *r)
{
    return lade_dhcp_decode_reply(B, n, XID, MAC, r);
}

static struct srv_reply full_offer(void)
{
    struct srv_reply s = {
        .type = LADE_DHCP_OFFER,
        .xid = XID,
        .yiaddr = YI,
        .server_id = SERVER,
        .mask = LADE_IPV4(255, 255, 255, 0),
        .lease_s = 3600,
        .t1_s = 1000,
        .t2_s = 3000,
        .routers = {SERVER},
        .n_routers = 1,
        .dns = {LADE_IPV4(192, 168, 7, 2), LADE_IPV4(192, 168, 7, 3)},
        .n_dns = 2,
        .ntp = {LADE_IPV4(192, 168, 7, 4)},
        .n_ntp = 1,
    };
    return s;
}

static void test_decode_offer_ack_nak(void **state)
{
    (void)state;
    struct lade_dhcp_reply r;
    struct srv_reply s = full_offer();
    size_t n = build_reply(B, &s);
    assert_int_equal(dec(n, &r), LADE_OK);
    assert_int_equal(r.type, LADE_DHCP_OFFER);
    assert_int_equal(r.xid, XID);
    assert_int_equal(r.yiaddr, YI);
    assert_true(r.has_server_id && r.server_id == SERVER);
    assert_true(r.has_subnet && r.subnet_mask == LADE_IPV4(255, 255, 255, 0));
    assert_true(r.has_lease && r.lease_s == 3600);
    assert_true(r.has_t1 && r.t1_s == 1000);
    assert_true(r.has_t2 && r.t2_s == 3000);
    assert_int_equal(r.n_routers, 1);
    assert_int_equal(r.routers[0], SERVER);
    assert_int_equal(r.n_dns, 2);
    assert_int_equal(r.dns[1], LADE_IPV4(192, 168, 7, 3));
    assert_int_equal(r.n_ntp, 1);
    assert_int_equal(r.overload, 0);
    assert_string_equal(r.message, "");

    s.type = LADE_DHCP_ACK;
    n = build_reply(B, &s);
    assert_int_equal(dec(n, &r), LADE_OK);
    assert_int_equal(r.type, LADE_DHCP_ACK);

    /* NAK: yiaddr 0 is fine, message kept */
    struct srv_reply k = {
        .type = LADE_DHCP_NAK, .xid = XID, .server_id = SERVER, .message = "wrong network"};
    n = build_reply(B, &k);
    assert_int_equal(dec(n, &r), LADE_OK);
    assert_int_equal(r.type, LADE_DHCP_NAK);
    assert_false(r.has_lease);
    assert_string_equal(r.message, "wrong network");

    /* message: trailing NULs dropped, control bytes shown as '?', long text cut */
    n = mk_header(B, XID, MAC, 0);
    n = add_opt8(B, n, 53, LADE_DHCP_NAK);
    n = add_opt(B, n, 56, "a\nb\0\0", 5);
    n = add_end(B, n);
    assert_int_equal(dec(n, &r), LADE_OK);
    assert_string_equal(r.message, "a?b");
    char big[200];
    memset(big, 'm', sizeof big);
    n = mk_header(B, XID, MAC, 0);
    n = add_opt8(B, n, 53, LADE_DHCP_NAK);
    n = add_opt(B, n, 56, big, 200);
    n = add_end(B, n);
    assert_int_equal(dec(n, &r), LADE_OK);
    assert_int_equal(strlen(r.message), LADE_DHCP_MESSAGE_MAX - 1);
}

static void test_decode_header_checks(void **state)
{
    (void)state;
    struct lade_dhcp_reply r;
    struct srv_reply s = full_offer();
    size_t n = build_reply(B, &s);

    assert_int_equal(lade_dhcp_decode_reply(NULL, n, XID, MAC, &r), LADE_ERR_INVAL);
    assert_int_equal(dec(239, &r), LADE_ERR_PROTO);
    assert_int_equal(dec(0, &r), LADE_ERR_PROTO);
    assert_int_equal(dec(LADE_DHCP_MAX_REPLY + 1, &r), LADE_ERR_TOO_BIG);

    B[0] = 1; /* BOOTREQUEST */
    assert_int_equal(dec(n, &r), LADE_ERR_PROTO);
    B[0] = 2;
    B[1] = 6; /* IEEE 802 */
    assert_int_equal(dec(n, &r), LADE_ERR_PROTO);
    B[1] = 1;
    B[2] = 16;
    assert_int_equal(dec(n, &r), LADE_ERR_PROTO);
    B[2] = 6;
    B[239] ^= 1; /* cookie */
    assert_int_equal(dec(n, &r), LADE_ERR_PROTO);
    B[239] ^= 1;
    assert_int_equal(dec(n, &r), LADE_OK);

    /* someone else's transaction or hardware address: not for us */
    assert_int_equal(lade_dhcp_decode_reply(B, n, XID + 1, MAC, &r), LADE_ERR_NOT_FOUND);
    assert_int_equal(lade_dhcp_decode_reply(B, n, XID, OTHER_MAC, &r), LADE_ERR_NOT_FOUND);
    /* ... even when its options are broken */
    B[n - 1] = 7;
    assert_int_equal(lade_dhcp_decode_reply(B, n, XID + 1, MAC, &r), LADE_ERR_NOT_FOUND);
    assert_int_equal(dec(n, &r), LADE_ERR_PROTO);
}

static void test_decode_option_framing(void **state)
{
    (void)state;
    struct lade_dhcp_reply r;
    size_t n;

    /* header only: no END */
    n = mk_header(B, XID, MAC, YI);
    assert_int_equal(dec(n, &r), LADE_ERR_PROTO);
    /* END only: no message type */
    n = add_end(B, n);
    assert_int_equal(dec(n, &r), LADE_ERR_PROTO);

    /* pads, an unknown option, a zero-length option, then the real ones */
    n = mk_header(B, XID, MAC, YI);
    B[n++] = 0;
    B[n++] = 0;
    n = add_opt(B, n, 200, "zz", 2);
    n = add_opt(B, n, 201, NULL, 0);
    n = add_opt8(B, n, 53, LADE_DHCP_OFFER);
    n = add_opt32(B, n, 54, SERVER);
    n = add_end(B, n);
    size_t good = n;
    assert_int_equal(dec(n, &r), LADE_OK);
    assert_int_equal(r.type, LADE_DHCP_OFFER);
    /* bytes after END are not inspected */
    memset(B + n, 0xee, 40);
    assert_int_equal(dec(n + 40, &r), LADE_OK);
    /* the buffer ends right after END */
    assert_int_equal(dec(good, &r), LADE_OK);

    /* an option running past the end */
    n = mk_header(B, XID, MAC, YI);
    n = add_opt8(B, n, 53, LADE_DHCP_OFFER);
    B[n++] = 3;
    B[n++] = 8;
    memset(B + n, 1, 4);
    n += 4;
    assert_int_equal(dec(n, &r), LADE_ERR_PROTO);
    /* a code without its length byte */
    n = mk_header(B, XID, MAC, YI);
    n = add_opt8(B, n, 53, LADE_DHCP_OFFER);
    B[n++] = 3;
    assert_int_equal(dec(n, &r), LADE_ERR_PROTO);
    /* last option exactly fills the buffer, no END */
    n = mk_header(B, XID, MAC, YI);
    n = add_opt8(B, n, 53, LADE_DHCP_OFFER);
    assert_int_equal(dec(n, &r), LADE_ERR_PROTO);
    /* only pads */
    n = mk_header(B, XID, MAC, YI);
    memset(B + n, 0, 60);
    assert_int_equal(dec(n + 60, &r), LADE_ERR_PROTO);
}

static void test_decode_message_type(void **state)
{
    (void)state;
    struct lade_dhcp_reply r;
    size_t n;
    for (int t = 0; t < 256; t++) {
        n = mk_header(B, XID, MAC, YI);
        n = add_opt8(B, n, 53, (uint8_t)t);
        n = add_end(B, n);
        lade_err want = (t == 2 || t == 5 || t == 6) ? LADE_OK : LADE_ERR_PROTO;
        assert_int_equal(dec(n, &r), want);
    }
    /* wrong length */
    n = mk_header(B, XID, MAC, YI);
    n = add_opt(B, n, 53, "\x02\x02", 2);
    n = add_end(B, n);
    assert_int_equal(dec(n, &r), LADE_ERR_PROTO);
    /* repeated whole value: concatenation is 2 bytes */
    n = mk_header(B, XID, MAC, YI);
    n = add_opt8(B, n, 53, 2);
    n = add_opt8(B, n, 53, 2);
    n = add_end(B, n);
    assert_int_equal(dec(n, &r), LADE_ERR_PROTO);
    /* RFC 3396: an empty instance and the value concatenate to one byte */
    n = mk_header(B, XID, MAC, YI);
    n = add_opt(B, n, 53, NULL, 0);
    n = add_opt8(B, n, 53, 5);
    n = add_end(B, n);
    assert_int_equal(dec(n, &r), LADE_OK);
    assert_int_equal(r.type, LADE_DHCP_ACK);
}

static size_t offer_with(uint8_t code, const void *data, uint8_t len)
{
    size_t n = mk_header(B, XID, MAC, YI);
    n = add_opt8(B, n, 53, LADE_DHCP_OFFER);
    n = add_opt(B, n, code, data, len);
    return add_end(B, n);
}

static void test_decode_fixed_options(void **state)
{
    (void)state;
    struct lade_dhcp_reply r;
    static const uint8_t fixed[] = {1, 51, 54, 58, 59};
    uint8_t v[8] = {192, 0, 0, 0, 192, 0, 0, 0}; /* a /2 mask and a unicast address */
    for (size_t i = 0; i < sizeof fixed; i++) {
        for (uint8_t len = 0; len <= 8; len++) {
            size_t n = offer_with(fixed[i], v, len);
            assert_int_equal(dec(n, &r), len == 4 ? LADE_OK : LADE_ERR_PROTO);
        }
    }
    /* a 4-byte option split 2 + 2 (RFC 3396) */
    size_t n = mk_header(B, XID, MAC, YI);
    n = add_opt8(B, n, 53, LADE_DHCP_ACK);
    n = add_opt(B, n, 51, "\x00\x01", 2);
    n = add_opt(B, n, 200, "x", 1);
    n = add_opt(B, n, 51, "\x51\x80", 2);
    n = add_end(B, n);
    assert_int_equal(dec(n, &r), LADE_OK);
    assert_int_equal(r.lease_s, 86400);
    /* the same lease twice is 8 bytes: rejected */
    n = mk_header(B, XID, MAC, YI);
    n = add_opt8(B, n, 53, LADE_DHCP_ACK);
    n = add_opt32(B, n, 51, 600);
    n = add_opt32(B, n, 51, 600);
    n = add_end(B, n);
    assert_int_equal(dec(n, &r), LADE_ERR_PROTO);

    /* subnet masks */
    uint8_t m[4];
    wr32(m, LADE_IPV4(255, 0, 255, 0));
    assert_int_equal(dec(offer_with(1, m, 4), &r), LADE_ERR_PROTO);
    wr32(m, 0);
    assert_int_equal(dec(offer_with(1, m, 4), &r), LADE_ERR_PROTO);
    wr32(m, 0xffffffffu);
    assert_int_equal(dec(offer_with(1, m, 4), &r), LADE_OK);
    wr32(m, 0x80000000u);
    assert_int_equal(dec(offer_with(1, m, 4), &r), LADE_OK);
    /* server ids that are not unicast */
    wr32(m, 0);
    assert_int_equal(dec(offer_with(54, m, 4), &r), LADE_ERR_PROTO);
    wr32(m, LADE_IPV4_BROADCAST);
    assert_int_equal(dec(offer_with(54, m, 4), &r), LADE_ERR_PROTO);
    wr32(m, LADE_IPV4(127, 0, 0, 1));
    assert_int_equal(dec(offer_with(54, m, 4), &r), LADE_ERR_PROTO);
    /* infinite lease passes through */
    wr32(m, LADE_DHCP_INFINITE);
    assert_int_equal(dec(offer_with(51, m, 4), &r), LADE_OK);
    assert_int_equal(r.lease_s, LADE_DHCP_INFINITE);
}

static void test_decode_address_lists(void **state)
{
    (void)state;
    struct lade_dhcp_reply r;
    static const uint8_t lists[] = {3, 6, 42};
    uint8_t v[64];
    for (size_t i = 0; i < sizeof v; i += 4)
        wr32(v + i, LADE_IPV4(10, 0, 0, (uint8_t)(i / 4 + 1)));
    for (size_t i = 0; i < sizeof lists; i++) {
        for (uint8_t len = 0; len <= 24; len++) {
            size_t n = offer_with(lists[i], v, len);
            lade_err want = (len > 0 && len % 4 == 0) ? LADE_OK : LADE_ERR_PROTO;
            assert_int_equal(dec(n, &r), want);
            if (want == LADE_OK) {
                uint8_t cnt = lists[i] == 3 ? r.n_routers : lists[i] == 6 ? r.n_dns : r.n_ntp;
                size_t expect = len / 4 < LADE_DHCP_MAX_ADDRS ? len / 4 : LADE_DHCP_MAX_ADDRS;
                assert_int_equal(cnt, expect);
            }
        }
    }
    /* unusable entries are skipped, not counted */
    wr32(v, 0);
    wr32(v + 4, LADE_IPV4(127, 0, 0, 53));
    wr32(v + 8, LADE_IPV4(9, 9, 9, 9));
    wr32(v + 12, LADE_IPV4_BROADCAST);
    wr32(v + 16, LADE_IPV4(1, 1, 1, 1));
    assert_int_equal(dec(offer_with(6, v, 20), &r), LADE_OK);
    assert_int_equal(r.n_dns, 2);
    assert_int_equal(r.dns[0], LADE_IPV4(9, 9, 9, 9));
    assert_int_equal(r.dns[1], LADE_IPV4(1, 1, 1, 1));
    /* a list split across two instances, in order */
    size_t n = mk_header(B, XID, MAC, YI);
    n = add_opt8(B, n, 53, LADE_DHCP_OFFER);
    n = add_opt32(B, n, 6, LADE_IPV4(10, 1, 1, 1));
    n = add_opt32(B, n, 6, LADE_IPV4(10, 1, 1, 2));
    n = add_end(B, n);
    assert_int_equal(dec(n, &r), LADE_OK);
    assert_int_equal(r.n_dns, 2);
    assert_int_equal(r.dns[0], LADE_IPV4(10, 1, 1, 1));
    assert_int_equal(r.dns[1], LADE_IPV4(10, 1, 1, 2));
    /* an address split over two instances (2 + 2 bytes) */
    n = mk_header(B, XID, MAC, YI);
    n = add_opt8(B, n, 53, LADE_DHCP_OFFER);
    n = add_opt(B, n, 3, "\x0a\x02", 2);
    n = add_opt(B, n, 3, "\x03\x04", 2);
    n = add_end(B, n);
    assert_int_equal(dec(n, &r), LADE_OK);
    assert_int_equal(r.n_routers, 1);
    assert_int_equal(r.routers[0], LADE_IPV4(10, 2, 3, 4));
    /* a long list (over 255 bytes, RFC 3396): only the first kept, all length-checked */
    uint8_t many[252];
    for (size_t i = 0; i < sizeof many; i += 4)
        wr32(many + i, LADE_IPV4(10, 9, 0, (uint8_t)(i / 4 + 1)));
    n = mk_header(B, XID, MAC, YI);
    n = add_opt8(B, n, 53, LADE_DHCP_OFFER);
    n = add_opt(B, n, 42, many, sizeof many);
    n = add_opt(B, n, 42, many, 8);
    n = add_end(B, n);
    assert_int_equal(dec(n, &r), LADE_OK);
    assert_int_equal(r.n_ntp, LADE_DHCP_MAX_ADDRS);
    n = mk_header(B, XID, MAC, YI);
    n = add_opt8(B, n, 53, LADE_DHCP_OFFER);
    n = add_opt(B, n, 42, many, sizeof many);
    n = add_opt(B, n, 42, many, 3);
    n = add_end(B, n);
    assert_int_equal(dec(n, &r), LADE_ERR_PROTO);
}

static void test_decode_yiaddr(void **state)
{
    (void)state;
    struct lade_dhcp_reply r;
    static const uint32_t bad[] = {0,
                                   LADE_IPV4(0, 1, 2, 3),
                                   LADE_IPV4(127, 0, 0, 1),
                                   LADE_IPV4(224, 0, 0, 1),
                                   LADE_IPV4(240, 0, 0, 1),
                                   LADE_IPV4_BROADCAST};
    struct srv_reply s = full_offer();
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s.yiaddr = bad[i];
        s.type = LADE_DHCP_OFFER;
        assert_int_equal(dec(build_reply(B, &s), &r), LADE_ERR_PROTO);
        s.type = LADE_DHCP_ACK;
        assert_int_equal(dec(build_reply(B, &s), &r), LADE_ERR_PROTO);
        s.type = LADE_DHCP_NAK;
        assert_int_equal(dec(build_reply(B, &s), &r), LADE_OK);
    }
    s.type = LADE_DHCP_OFFER;
    s.yiaddr = LADE_IPV4(223, 255, 255, 254);
    assert_int_equal(dec(build_reply(B, &s), &r), LADE_OK);
}

/* The ACK to an INFORM: yiaddr 0 (or whatever was sent), usually no lease time; only an ACK. */
static void test_decode_inform_ack(void **state)
{
    (void)state;
    struct lade_dhcp_reply r;
    struct srv_reply s = {
        .type = LADE_DHCP_ACK,
        .xid = XID,
        .yiaddr = 0,
        .server_id = SERVER,
        .mask = LADE_IPV4(255, 255, 255, 0),
        .routers = {SERVER},
        .n_routers = 1,
        .dns = {LADE_IPV4(192, 168, 7, 2)},
        .n_dns = 1,
        .ntp = {LADE_IPV4(192, 168, 7, 4)},
        .n_ntp = 1,
    };
    size_t n = build_reply(B, &s);
    /* the client machine's decoder refuses it (no usable yiaddr) ... */
    assert_int_equal(dec(n, &r), LADE_ERR_PROTO);
    /* ... the INFORM decoder takes it */
    assert_int_equal(lade_dhcp_decode_inform_ack(B, n, XID, MAC, &r), LADE_OK);
    assert_int_equal(r.type, LADE_DHCP_ACK);
    assert_int_equal(r.xid, XID);
    assert_int_equal(r.yiaddr, 0);
    assert_true(r.has_server_id && r.server_id == SERVER);
    assert_true(r.has_subnet && r.subnet_mask == LADE_IPV4(255, 255, 255, 0));
    assert_false(r.has_lease || r.has_t1 || r.has_t2);
    assert_int_equal(r.n_routers, 1);
    assert_int_equal(r.routers[0], SERVER);
    assert_int_equal(r.n_dns, 1);
    assert_int_equal(r.dns[0], LADE_IPV4(192, 168, 7, 2));
    assert_int_equal(r.n_ntp, 1);

    /* some servers fill yiaddr with ciaddr, or give a lease time anyway: reported as sent */
    s.yiaddr = YI;
    s.lease_s = 600;
    n = build_reply(B, &s);
    assert_int_equal(lade_dhcp_decode_inform_ack(B, n, XID, MAC, &r), LADE_OK);
    assert_int_equal(r.yiaddr, YI);
    assert_true(r.has_lease && r.lease_s == 600);
    s.yiaddr = LADE_IPV4_BROADCAST;
    n = build_reply(B, &s);
    assert_int_equal(lade_dhcp_decode_inform_ack(B, n, XID, MAC, &r), LADE_OK);
    assert_int_equal(r.yiaddr, LADE_IPV4_BROADCAST);

    /* no DNS option: n_dns 0 */
    s.n_dns = 0;
    n = build_reply(B, &s);
    assert_int_equal(lade_dhcp_decode_inform_ack(B, n, XID, MAC, &r), LADE_OK);
    assert_int_equal(r.n_dns, 0);

    /* only an ACK */
    s.yiaddr = YI;
    s.type = LADE_DHCP_OFFER;
    assert_int_equal(lade_dhcp_decode_inform_ack(B, build_reply(B, &s), XID, MAC, &r),
                     LADE_ERR_PROTO);
    s.type = LADE_DHCP_NAK;
    assert_int_equal(lade_dhcp_decode_inform_ack(B, build_reply(B, &s), XID, MAC, &r),
                     LADE_ERR_PROTO);
    s.type = LADE_DHCP_ACK;

    /* not ours: another xid or client */
    n = build_reply(B, &s);
    assert_int_equal(lade_dhcp_decode_inform_ack(B, n, XID + 1, MAC, &r), LADE_ERR_NOT_FOUND);
    assert_int_equal(lade_dhcp_decode_inform_ack(B, n, XID, OTHER_MAC, &r), LADE_ERR_NOT_FOUND);

    /* the same strictness as the reply decoder: framing, fixed sizes, server id, size, args */
    n = mk_header(B, XID, MAC, 0);
    n = add_opt8(B, n, 53, LADE_DHCP_ACK);
    n = add_opt(B, n, 54, "\xc0\xa8\x07", 3); /* server id of 3 bytes */
    n = add_end(B, n);
    assert_int_equal(lade_dhcp_decode_inform_ack(B, n, XID, MAC, &r), LADE_ERR_PROTO);
    n = mk_header(B, XID, MAC, 0);
    n = add_opt8(B, n, 53, LADE_DHCP_ACK);
    n = add_opt32(B, n, 54, LADE_IPV4(127, 0, 0, 1));
    n = add_end(B, n);
    assert_int_equal(lade_dhcp_decode_inform_ack(B, n, XID, MAC, &r), LADE_ERR_PROTO);
    n = mk_header(B, XID, MAC, 0);
    n = add_opt8(B, n, 53, LADE_DHCP_ACK); /* no END */
    assert_int_equal(lade_dhcp_decode_inform_ack(B, n, XID, MAC, &r), LADE_ERR_PROTO);
    n = mk_header(B, XID, MAC, 0);
    n = add_opt8(B, n, 53, LADE_DHCP_ACK);
    n = add_end(B, n);
    assert_int_equal(lade_dhcp_decode_inform_ack(B, n, XID, MAC, &r), LADE_OK);
    assert_false(r.has_server_id);
    assert_int_equal(lade_dhcp_decode_inform_ack(B, 239, XID, MAC, &r), LADE_ERR_PROTO);
    assert_int_equal(lade_dhcp_decode_inform_ack(B, LADE_DHCP_MAX_REPLY + 1, XID, MAC, &r),
                     LADE_ERR_TOO_BIG);
    assert_int_equal(lade_dhcp_decode_inform_ack(NULL, n, XID, MAC, &r), LADE_ERR_INVAL);
    B[0] = 1; /* a BOOTREQUEST (our own INFORM seen on the wire) */
    assert_int_equal(lade_dhcp_decode_inform_ack(B, n, XID, MAC, &r), LADE_ERR_PROTO);
}

/* Puts the options of the test into file (and/or sname) and option 52 in the options field. */
static void test_decode_overload(void **state)
{
    (void)state;
    struct lade_dhcp_reply r;
    size_t n, k;

    /* 1: file holds options */
    n = mk_header(B, XID, MAC, YI);
    n = add_opt8(B, n, 52, 1);
    n = add_opt8(B, n, 53, LADE_DHCP_ACK);
    n = add_opt32(B, n, 6, LADE_IPV4(10, 0, 0, 1));
    n = add_end(B, n);
    k = 108;
    k = add_opt32(B, k, 51, 7200);
    k = add_opt32(B, k, 6, LADE_IPV4(10, 0, 0, 2));
    k = add_end(B, k);
    assert_int_equal(dec(n, &r), LADE_OK);
    assert_int_equal(r.overload, 1);
    assert_int_equal(r.lease_s, 7200);
    assert_int_equal(r.n_dns, 2);
    assert_int_equal(r.dns[0], LADE_IPV4(10, 0, 0, 1)); /* options field first */
    assert_int_equal(r.dns[1], LADE_IPV4(10, 0, 0, 2));
    /* file without END */
    memset(B + 108, 0, 128);
    k = 108;
    k = add_opt32(B, k, 51, 7200);
    assert_int_equal(dec(n, &r), LADE_ERR_PROTO);
    /* file with an option running past its 128 bytes */
    memset(B + 108, 0, 128);
    B[108 + 120] = 6;
    B[108 + 121] = 8;
    assert_int_equal(dec(n, &r), LADE_ERR_PROTO);
    /* file holding option 52 */
    memset(B + 108, 0, 128);
    k = add_opt8(B, 108, 52, 1);
    k = add_end(B, k);
    assert_int_equal(dec(n, &r), LADE_ERR_PROTO);

    /* 3: options, file, sname in that order */
    memset(B, 0, sizeof B);
    n = mk_header(B, XID, MAC, YI);
    n = add_opt8(B, n, 52, 3);
    n = add_opt8(B, n, 53, LADE_DHCP_OFFER);
    n = add_opt32(B, n, 3, LADE_IPV4(10, 0, 0, 1));
    n = add_end(B, n);
    k = add_opt32(B, 108, 3, LADE_IPV4(10, 0, 0, 2));
    k = add_end(B, k);
    k = add_opt32(B, 44, 3, LADE_IPV4(10, 0, 0, 3));
    k = add_opt32(B, k, 54, SERVER);
    k = add_end(B, k);
    assert_int_equal(dec(n, &r), LADE_OK);
    assert_int_equal(r.overload, 3);
    assert_int_equal(r.n_routers, 3);
    assert_int_equal(r.routers[0], LADE_IPV4(10, 0, 0, 1));
    assert_int_equal(r.routers[1], LADE_IPV4(10, 0, 0, 2));
    assert_int_equal(r.routers[2], LADE_IPV4(10, 0, 0, 3));
    assert_int_equal(r.server_id, SERVER);
    /* sname without END (64 bytes of one long option) */
    memset(B + 44, 0, 64);
    B[44] = 200;
    B[45] = 62;
    assert_int_equal(dec(n, &r), LADE_ERR_PROTO);
    /* 2: only sname; file content is then ignored even if garbage */
    memset(B + 44, 0, 64);
    k = add_opt32(B, 44, 51, 60);
    k = add_end(B, k);
    memset(B + 108, 0xff, 128);
    B[108] = 7;
    n = mk_header(B, XID, MAC, YI);
    memset(B + 108, 0xff, 128);
    B[108] = 7;
    k = add_opt32(B, 44, 51, 60);
    k = add_end(B, k);
    n = add_opt8(B, n, 52, 2);
    n = add_opt8(B, n, 53, LADE_DHCP_OFFER);
    n = add_end(B, n);
    assert_int_equal(dec(n, &r), LADE_OK);
    assert_int_equal(r.lease_s, 60);
    /* the message type may live in an overloaded field */
    n = mk_header(B, XID, MAC, YI);
    n = add_opt8(B, n, 52, 1);
    n = add_end(B, n);
    k = add_opt8(B, 108, 53, LADE_DHCP_NAK);
    k = add_end(B, k);
    assert_int_equal(dec(n, &r), LADE_OK);
    assert_int_equal(r.type, LADE_DHCP_NAK);

    /* bad option 52 values and lengths, repeats */
    for (int v = 0; v < 8; v++) {
        n = mk_header(B, XID, MAC, YI);
        n = add_opt8(B, n, 52, (uint8_t)v);
        n = add_opt8(B, n, 53, LADE_DHCP_OFFER);
        n = add_end(B, n);
        add_end(B, 108);
        add_end(B, 44);
        assert_int_equal(dec(n, &r), (v >= 1 && v <= 3) ? LADE_OK : LADE_ERR_PROTO);
    }
    n = mk_header(B, XID, MAC, YI);
    n = add_opt(B, n, 52, "\x01\x01", 2);
    n = add_opt8(B, n, 53, LADE_DHCP_OFFER);
    n = add_end(B, n);
    assert_int_equal(dec(n, &r), LADE_ERR_PROTO);
    n = mk_header(B, XID, MAC, YI);
    n = add_opt(B, n, 52, NULL, 0);
    n = add_opt8(B, n, 53, LADE_DHCP_OFFER);
    n = add_end(B, n);
    assert_int_equal(dec(n, &r), LADE_ERR_PROTO);
    n = mk_header(B, XID, MAC, YI);
    n = add_opt8(B, n, 52, 1);
    n = add_opt8(B, n, 52, 1);
    n = add_opt8(B, n, 53, LADE_DHCP_OFFER);
    n = add_end(B, n);
    add_end(B, 108);
    assert_int_equal(dec(n, &r), LADE_ERR_PROTO);
    /* without option 52, file and sname are ignored whatever they hold */
    memset(B, 0xab, 240);
    n = mk_header(B, XID, MAC, YI);
    memset(B + 44, 0x35, 192);
    n = add_opt8(B, n, 53, LADE_DHCP_OFFER);
    n = add_end(B, n);
    assert_int_equal(dec(n, &r), LADE_OK);
    assert_int_equal(r.overload, 0);
}

static void test_ipv4_helpers(void **state)
{
    (void)state;
    assert_int_equal(lade_ipv4_prefix_len(0), 0);
    assert_int_equal(lade_ipv4_prefix_len(0xffffffffu), 32);
    assert_int_equal(lade_ipv4_prefix_len(LADE_IPV4(255, 255, 255, 0)), 24);
    assert_int_equal(lade_ipv4_prefix_len(LADE_IPV4(255, 255, 254, 0)), 23);
    assert_int_equal(lade_ipv4_prefix_len(LADE_IPV4(255, 255, 255, 252)), 30);
    assert_int_equal(lade_ipv4_prefix_len(LADE_IPV4(255, 0, 255, 0)), -1);
    assert_int_equal(lade_ipv4_prefix_len(1), -1);
    assert_false(lade_ipv4_unicast(0));
    assert_false(lade_ipv4_unicast(LADE_IPV4(0, 255, 255, 255)));
    assert_false(lade_ipv4_unicast(LADE_IPV4(127, 1, 2, 3)));
    assert_false(lade_ipv4_unicast(LADE_IPV4(224, 0, 0, 251)));
    assert_false(lade_ipv4_unicast(LADE_IPV4_BROADCAST));
    assert_true(lade_ipv4_unicast(LADE_IPV4(1, 0, 0, 0)));
    assert_true(lade_ipv4_unicast(LADE_IPV4(169, 254, 1, 1)));
    assert_true(lade_ipv4_unicast(LADE_IPV4(223, 255, 255, 255)));
    assert_string_equal(lade_dhcp_type_name(LADE_DHCP_ACK), "ACK");
    assert_string_equal(lade_dhcp_type_name(0), "?");
    assert_string_equal(lade_dhcp_type_name(9), "?");
}

static void test_ipv4_udp(void **state)
{
    (void)state;
    uint8_t pay[301], buf[400];
    for (size_t i = 0; i < sizeof pay; i++)
        pay[i] = (uint8_t)(i * 7);
    size_t n;
    struct lade_ipv4_udp u;
    /* odd payload length: the checksum pads with a zero byte */
    assert_int_equal(
        lade_ipv4_udp_encode(0, LADE_IPV4_BROADCAST, 68, 67, pay, sizeof pay, buf, sizeof buf, &n),
        LADE_OK);
    assert_int_equal(n, LADE_IPV4_UDP_HDR + sizeof pay);
    assert_int_equal(buf[0], 0x45);
    assert_int_equal(buf[9], 17);
    assert_int_equal(buf[8], 64);
    assert_int_equal(lade_ipv4_udp_decode(buf, n, true, &u), LADE_OK);
    assert_int_equal(u.src, 0);
    assert_int_equal(u.dst, LADE_IPV4_BROADCAST);
    assert_int_equal(u.sport, 68);
    assert_int_equal(u.dport, 67);
    assert_int_equal(u.len, sizeof pay);
    assert_ptr_equal(u.payload, buf + 28);
    assert_memory_equal(u.payload, pay, sizeof pay);
    /* Ethernet padding after the datagram is ignored */
    memset(buf + n, 0xee, 20);
    assert_int_equal(lade_ipv4_udp_decode(buf, n + 20, true, &u), LADE_OK);
    assert_int_equal(u.len, sizeof pay);
    /* every single-bit error in the headers or payload is caught by a checksum or a check */
    for (size_t i = 0; i < n; i++) {
        if (i == 1 || i == 8)
            continue; /* TOS and TTL are covered by the header checksum only ... */
        buf[i] ^= 0x01;
        struct lade_ipv4_udp v;
        assert_int_equal(lade_ipv4_udp_decode(buf, n, true, &v), LADE_ERR_PROTO);
        buf[i] ^= 0x01;
    }
    buf[1] ^= 1; /* ... which catches them */
    assert_int_equal(lade_ipv4_udp_decode(buf, n, true, &u), LADE_ERR_PROTO);
    buf[1] ^= 1;
    /* a payload error passes when the UDP checksum is not to be checked (offload) */
    buf[100] ^= 0x10;
    assert_int_equal(lade_ipv4_udp_decode(buf, n, true, &u), LADE_ERR_PROTO);
    assert_int_equal(lade_ipv4_udp_decode(buf, n, false, &u), LADE_OK);
    buf[100] ^= 0x10;
    /* checksum 0: not checked */
    uint8_t save6 = buf[26], save7 = buf[27];
    buf[26] = buf[27] = 0;
    buf[100] ^= 0x10;
    assert_int_equal(lade_ipv4_udp_decode(buf, n, true, &u), LADE_OK);
    buf[100] ^= 0x10;
    buf[26] = save6;
    buf[27] = save7;
    /* truncated, fragments, other protocols, options (IHL 6) */
    assert_int_equal(lade_ipv4_udp_decode(buf, n - 1, true, &u), LADE_ERR_PROTO);
    assert_int_equal(lade_ipv4_udp_decode(buf, 27, true, &u), LADE_ERR_PROTO);
    assert_int_equal(lade_ipv4_udp_decode(NULL, n, true, &u), LADE_ERR_INVAL);
    uint8_t small[64];
    static const uint8_t four[4] = {1, 2, 3, 4};
    assert_int_equal(lade_ipv4_udp_encode(LADE_IPV4(10, 0, 0, 1), LADE_IPV4(10, 0, 0, 2), 67, 68,
                                          four, 4, small, sizeof small, &n),
                     LADE_OK);
    assert_int_equal(lade_ipv4_udp_decode(small, n, true, &u), LADE_OK);
    assert_int_equal(lade_ipv4_udp_encode(0, 0, 1, 2, four, 4, small, 31, &n), LADE_ERR_NOSPACE);
    assert_int_equal(lade_ipv4_udp_encode(0, 0, 1, 2, pay, 70000, buf, sizeof buf, &n),
                     LADE_ERR_TOO_BIG);
    /* an IPv4 option (IHL 6): accepted, the UDP header follows the options */
    uint8_t opt[64] = {0};
    memcpy(opt, small, 20);
    opt[0] = 0x46;
    opt[3] = (uint8_t)(n + 4);
    opt[10] = opt[11] = 0;
    memcpy(opt + 24, small + 20, n - 20);
    uint32_t acc = 0;
    for (int i = 0; i < 24; i += 2)
        acc += (uint32_t)((opt[i] << 8) | opt[i + 1]);
    while (acc >> 16)
        acc = (acc & 0xffff) + (acc >> 16);
    opt[10] = (uint8_t)(~acc >> 8);
    opt[11] = (uint8_t)~acc;
    assert_int_equal(lade_ipv4_udp_decode(opt, n + 4, true, &u), LADE_OK);
    assert_int_equal(u.len, 4);
    assert_memory_equal(u.payload, four, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_discover),        cmocka_unit_test(test_encode_requests),
        cmocka_unit_test(test_encode_decline_release), cmocka_unit_test(test_encode_invalid),
        cmocka_unit_test(test_decode_offer_ack_nak),   cmocka_unit_test(test_decode_header_checks),
        cmocka_unit_test(test_decode_option_framing),  cmocka_unit_test(test_decode_message_type),
        cmocka_unit_test(test_decode_fixed_options),   cmocka_unit_test(test_decode_address_lists),
        cmocka_unit_test(test_decode_yiaddr),          cmocka_unit_test(test_decode_overload),
        cmocka_unit_test(test_ipv4_helpers),           cmocka_unit_test(test_ipv4_udp),
        cmocka_unit_test(test_encode_inform),          cmocka_unit_test(test_decode_inform_ack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
