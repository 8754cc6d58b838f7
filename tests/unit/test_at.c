/* Unit tests of the AT command/response parser (include/lade/modem.h): line splitting, result
 * codes, echo, parameters, +CEREG (read response vs URC), +CSQ/+CESQ to dBm, +CGACT, +CGPADDR,
 * +COPS, the APN command and the bearer manager's view. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lade/modem.h"

static void assert_view(struct lade_str v, const char *expect)
{
    assert_int_equal(v.n, strlen(expect));
    assert_memory_equal(v.p, expect, v.n);
}

/* Feeds text in chunks of `chunk` bytes; collects lines joined with '|'. */
static int split(const char *text, size_t chunk, char *out, size_t cap)
{
    struct lade_at_lines lb;
    lade_at_lines_init(&lb);
    size_t len = strlen(text), used = 0;
    int too_big = 0;
    out[0] = '\0';
    for (size_t off = 0; off < len; off += chunk) {
        const char *p = text + off;
        size_t n = len - off < chunk ? len - off : chunk;
        for (;;) {
            struct lade_str line;
            lade_err err = lade_at_lines_next(&lb, &p, &n, &line);
            if (err == LADE_ERR_AGAIN)
                break;
            if (err == LADE_ERR_TOO_BIG) {
                too_big++;
                continue;
            }
            assert_int_equal(err, LADE_OK);
            assert_true(used + line.n + 2 < cap);
            memcpy(out + used, line.p, line.n);
            used += line.n;
            out[used++] = '|';
            out[used] = '\0';
        }
        assert_int_equal(n, 0);
    }
    return too_big;
}

static void test_lines(void **state)
{
    (void)state;
    char out[2048];
    static const char stream[] = "AT+CSQ\r\r\n+CSQ: 20,99\r\n\r\nOK\r\n\r\n+CEREG: 1\r\n";
    for (size_t chunk = 1; chunk <= sizeof stream; chunk++) {
        assert_int_equal(split(stream, chunk, out, sizeof out), 0);
        assert_string_equal(out, "AT+CSQ|+CSQ: 20,99|OK|+CEREG: 1|");
    }
    /* A line without its terminator stays pending. */
    assert_int_equal(split("OK\r\n+CS", 3, out, sizeof out), 0);
    assert_string_equal(out, "OK|");
    /* LF-only and CR-only endings. */
    assert_int_equal(split("a\nb\rc\r\n", 2, out, sizeof out), 0);
    assert_string_equal(out, "a|b|c|");

    /* Over-long lines are dropped and reported once each; the next line is intact. */
    static char longl[LADE_AT_LINE_MAX * 3 + 32];
    memset(longl, 'x', LADE_AT_LINE_MAX + 1);
    strcpy(longl + LADE_AT_LINE_MAX + 1, "\r\nOK\r\n");
    assert_int_equal(split(longl, 7, out, sizeof out), 1);
    assert_string_equal(out, "OK|");
    /* Exactly the maximum fits. */
    memset(longl, 'y', LADE_AT_LINE_MAX);
    strcpy(longl + LADE_AT_LINE_MAX, "\r\n");
    assert_int_equal(split(longl, 100, out, sizeof out), 0);
    assert_int_equal(strlen(out), LADE_AT_LINE_MAX + 1);

    struct lade_at_lines lb;
    lade_at_lines_init(&lb);
    const char *p = NULL;
    size_t n = 0;
    struct lade_str line;
    assert_int_equal(lade_at_lines_next(&lb, &p, &n, &line), LADE_ERR_AGAIN);
    n = 1;
    assert_int_equal(lade_at_lines_next(&lb, &p, &n, &line), LADE_ERR_INVAL);
}

static struct lade_at_line cls(const char *s, const char *echo)
{
    struct lade_at_line l;
    lade_at_classify(lade_str_c(s), echo, &l);
    return l;
}

static void test_classify(void **state)
{
    (void)state;
    struct lade_at_line l;
    assert_int_equal(cls("OK", NULL).kind, LADE_AT_OK);
    assert_int_equal(cls("OK  ", NULL).kind, LADE_AT_OK);
    assert_int_equal(cls("ERROR", NULL).kind, LADE_AT_ERROR);
    assert_int_equal(cls("NO CARRIER", NULL).kind, LADE_AT_FINAL_OTHER);
    assert_int_equal(cls("BUSY", NULL).kind, LADE_AT_FINAL_OTHER);
    assert_true(lade_at_is_final(LADE_AT_FINAL_OTHER));
    assert_false(lade_at_is_final(LADE_AT_INFO));
    assert_false(lade_at_is_final(LADE_AT_ECHO));

    l = cls("+CME ERROR: 10", NULL);
    assert_int_equal(l.kind, LADE_AT_CME_ERROR);
    assert_int_equal(l.err, 10);
    assert_view(l.prefix, "+CME ERROR");
    l = cls("+CME ERROR: SIM not inserted", NULL);
    assert_int_equal(l.kind, LADE_AT_CME_ERROR);
    assert_int_equal(l.err, -1);
    assert_view(l.rest, "SIM not inserted");
    l = cls("+CMS ERROR: 500", NULL);
    assert_int_equal(l.kind, LADE_AT_CMS_ERROR);
    assert_int_equal(l.err, 500);
    l = cls("+CME ERROR:", NULL);
    assert_int_equal(l.kind, LADE_AT_CME_ERROR);
    assert_int_equal(l.err, -1);
    assert_true(lade_at_is_final(l.kind));

    l = cls("+CSQ: 20,99", NULL);
    assert_int_equal(l.kind, LADE_AT_INFO);
    assert_view(l.prefix, "+CSQ");
    assert_view(l.rest, "20,99");
    l = cls("+CEREG:1", NULL);
    assert_view(l.prefix, "+CEREG");
    assert_view(l.rest, "1");
    l = cls("^SYSSTART", NULL);
    assert_int_equal(l.kind, LADE_AT_INFO);
    assert_int_equal(l.prefix.n, 0);
    assert_view(l.rest, "^SYSSTART");
    l = cls("RDY", NULL);
    assert_view(l.rest, "RDY");
    l = cls("+", NULL);
    assert_int_equal(l.kind, LADE_AT_INFO);
    assert_int_equal(l.prefix.n, 0);
    l = cls("+A B: 1", NULL); /* not a prefix: a space inside */
    assert_int_equal(l.prefix.n, 0);
    l = cls("867962040000000", NULL); /* a bare value (AT+CGSN) */
    assert_int_equal(l.kind, LADE_AT_INFO);

    /* Echo: the command in flight, ASCII case ignored; other AT text is information. */
    assert_int_equal(cls("AT+CSQ", "AT+CSQ").kind, LADE_AT_ECHO);
    assert_int_equal(cls("at+csq", "AT+CSQ").kind, LADE_AT_ECHO);
    assert_int_equal(cls("AT+CSQ", "AT+CESQ").kind, LADE_AT_INFO);
    assert_int_equal(cls("OK", "OK").kind, LADE_AT_ECHO); /* a command "OK" is echo first */

    /* Noise. */
    assert_int_equal(cls("", NULL).kind, LADE_AT_NOISE);
    assert_int_equal(cls("   ", NULL).kind, LADE_AT_NOISE);
    assert_int_equal(cls("\x01\x02", NULL).kind, LADE_AT_NOISE);
    lade_at_classify((struct lade_str){"O\0K", 3}, NULL, &l);
    assert_int_equal(l.kind, LADE_AT_NOISE);
    lade_at_classify((struct lade_str){NULL, 0}, NULL, &l);
    assert_int_equal(l.kind, LADE_AT_NOISE);
}

static void test_params(void **state)
{
    (void)state;
    struct lade_at_param p[LADE_AT_PARAMS_MAX];
    size_t k;
    assert_int_equal(lade_at_params(LADE_STR("2,1,\"00C3\",\"0A1B2C3D\",7"), p, 16, &k), LADE_OK);
    assert_int_equal(k, 5);
    assert_true(p[0].is_int);
    assert_int_equal(p[0].value, 2);
    assert_true(p[2].quoted);
    assert_false(p[2].is_int);
    assert_view(p[2].text, "00C3");
    assert_int_equal(p[4].value, 7);

    assert_int_equal(lade_at_params(LADE_STR(" 1 , \"a,b\" ,,"), p, 16, &k), LADE_OK);
    assert_int_equal(k, 4);
    assert_int_equal(p[0].value, 1);
    assert_view(p[1].text, "a,b");
    assert_true(p[2].empty);
    assert_true(p[3].empty);
    assert_int_equal(lade_at_params(LADE_STR(""), p, 16, &k), LADE_OK);
    assert_int_equal(k, 0);
    assert_int_equal(lade_at_params(LADE_STR(","), p, 16, &k), LADE_OK);
    assert_int_equal(k, 2);
    assert_int_equal(lade_at_params(LADE_STR("\"\""), p, 16, &k), LADE_OK);
    assert_int_equal(k, 1);
    assert_true(p[0].quoted);
    assert_int_equal(p[0].text.n, 0);
    /* Numbers: too big is text, not a number. */
    assert_int_equal(lade_at_params(LADE_STR("2147483647,2147483648,-1,1a"), p, 16, &k), LADE_OK);
    assert_true(p[0].is_int);
    assert_false(p[1].is_int);
    assert_false(p[2].is_int);
    assert_false(p[3].is_int);

    assert_int_equal(lade_at_params(LADE_STR("\"abc"), p, 16, &k), LADE_ERR_PROTO);
    assert_int_equal(lade_at_params(LADE_STR("\"abc\"x"), p, 16, &k), LADE_ERR_PROTO);
    assert_int_equal(lade_at_params(LADE_STR("1,2,3"), p, 2, &k), LADE_ERR_TOO_BIG);
    assert_int_equal(lade_at_params(LADE_STR("1,"), p, 1, &k), LADE_ERR_TOO_BIG);
    assert_int_equal(lade_at_params(LADE_STR("1"), NULL, 1, &k), LADE_ERR_INVAL);
}

static lade_err cereg(const char *s, struct lade_at_cereg *r)
{
    return lade_at_parse_cereg(lade_str_c(s), r);
}

static void test_cereg(void **state)
{
    (void)state;
    struct lade_at_cereg r;
    /* URCs (AT+CEREG=1 / =2). */
    assert_int_equal(cereg("2", &r), LADE_OK);
    assert_int_equal(r.n, -1);
    assert_int_equal(r.stat, 2);
    assert_false(r.has_loc);
    assert_int_equal(cereg("5,\"00C3\",\"0A1B2C3D\",7", &r), LADE_OK);
    assert_int_equal(r.n, -1);
    assert_int_equal(r.stat, 5);
    assert_true(r.has_loc);
    assert_int_equal(r.tac, 0xC3);
    assert_int_equal(r.ci, 0x0A1B2C3D);
    assert_int_equal(r.act, 7);
    assert_int_equal(cereg("4,,,,", &r), LADE_OK); /* out of coverage: empty location */
    assert_int_equal(r.stat, 4);
    assert_false(r.has_loc);
    assert_int_equal(r.act, -1);
    /* Read responses (AT+CEREG?). */
    assert_int_equal(cereg("2,1", &r), LADE_OK);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.stat, 1);
    assert_false(r.has_loc);
    assert_int_equal(cereg("2,1,\"1A2B\",\"01234567\",9", &r), LADE_OK);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.stat, 1);
    assert_int_equal(r.tac, 0x1A2B);
    assert_int_equal(r.ci, 0x01234567);
    assert_int_equal(r.act, 9);
    /* n=4/5 extras (cause, PSM timers) are ignored. */
    assert_int_equal(cereg("4,5,\"00C3\",\"1\",7,,,\"00100100\",\"01000111\"", &r), LADE_OK);
    assert_int_equal(r.n, 4);
    assert_int_equal(r.stat, 5);
    assert_int_equal(r.ci, 1);
    assert_int_equal(cereg("0,0", &r), LADE_OK);
    assert_int_equal(r.stat, 0);

    /* Malformed. */
    assert_int_equal(cereg("", &r), LADE_ERR_PROTO);
    assert_int_equal(cereg("11", &r), LADE_ERR_PROTO);
    assert_int_equal(cereg("x", &r), LADE_ERR_PROTO);
    assert_int_equal(cereg("6,1", &r), LADE_ERR_PROTO);        /* n is 0..5 */
    assert_int_equal(cereg("1,\"00C3\"", &r), LADE_ERR_PROTO); /* TAC without CI */
    assert_int_equal(cereg("1,\"00C3G\",\"1\"", &r), LADE_ERR_PROTO);
    assert_int_equal(cereg("1,\"00C3\",\"123456789\"", &r), LADE_ERR_PROTO);
    assert_int_equal(cereg("1,\"00C3\",\"zz\"", &r), LADE_ERR_PROTO);
    assert_int_equal(cereg("1,\"00C3\",\"1\",99", &r), LADE_ERR_PROTO);
    assert_int_equal(cereg("1,\"00C3", &r), LADE_ERR_PROTO);
    assert_int_equal(r.stat, 0);
    assert_int_equal(r.n, -1);

    assert_true(lade_at_registered(1));
    assert_true(lade_at_registered(5));
    assert_true(lade_at_registered(9));
    assert_true(lade_at_registered(10));
    for (int s = -1; s <= 8; s++)
        if (s != 1 && s != 5)
            assert_false(lade_at_registered(s));
    assert_string_equal(lade_at_stat_name(2), "searching");
    assert_string_equal(lade_at_stat_name(11), "?");
}

static void test_csq(void **state)
{
    (void)state;
    struct lade_at_csq r;
    assert_int_equal(lade_at_parse_csq(LADE_STR("20,99"), &r), LADE_OK);
    assert_int_equal(r.rssi, 20);
    assert_int_equal(r.ber, 99);
    assert_int_equal(r.dbm, -73);
    assert_int_equal(lade_at_parse_csq(LADE_STR("0,0"), &r), LADE_OK);
    assert_int_equal(r.dbm, -113);
    assert_int_equal(lade_at_parse_csq(LADE_STR("31,7"), &r), LADE_OK);
    assert_int_equal(r.dbm, -51);
    assert_int_equal(lade_at_parse_csq(LADE_STR("99,99"), &r), LADE_OK);
    assert_int_equal(r.dbm, LADE_BEARER_SIGNAL_UNKNOWN);
    assert_int_equal(lade_at_parse_csq(LADE_STR("32,99"), &r), LADE_ERR_PROTO);
    assert_int_equal(lade_at_parse_csq(LADE_STR("20,8"), &r), LADE_ERR_PROTO);
    assert_int_equal(lade_at_parse_csq(LADE_STR("20"), &r), LADE_ERR_PROTO);
    assert_int_equal(lade_at_parse_csq(LADE_STR("20,99,1"), &r), LADE_ERR_PROTO);
    assert_int_equal(lade_at_parse_csq(LADE_STR("\"20\",99"), &r), LADE_ERR_PROTO);
    assert_int_equal(r.dbm, LADE_BEARER_SIGNAL_UNKNOWN);
    for (int i = 0; i <= 31; i++)
        assert_int_equal(lade_at_csq_dbm(i), -113 + 2 * i);
    assert_int_equal(lade_at_csq_dbm(99), LADE_BEARER_SIGNAL_UNKNOWN);
}

static void test_cesq(void **state)
{
    (void)state;
    struct lade_at_cesq r;
    assert_int_equal(lade_at_parse_cesq(LADE_STR("99,99,255,255,20,41"), &r), LADE_OK);
    assert_int_equal(r.rsrp, 41);
    assert_int_equal(r.rsrp_dbm, -100);
    assert_int_equal(r.rsrq_db, -10);
    assert_int_equal(lade_at_parse_cesq(LADE_STR("99,99,255,255,0,0"), &r), LADE_OK);
    assert_int_equal(r.rsrp_dbm, -141);
    assert_int_equal(r.rsrq_db, -20);
    assert_int_equal(lade_at_parse_cesq(LADE_STR("99,99,255,255,34,97"), &r), LADE_OK);
    assert_int_equal(r.rsrp_dbm, -44);
    assert_int_equal(r.rsrq_db, -3);
    assert_int_equal(lade_at_parse_cesq(LADE_STR("99,99,255,255,255,255"), &r), LADE_OK);
    assert_int_equal(r.rsrp_dbm, LADE_BEARER_SIGNAL_UNKNOWN);
    assert_int_equal(r.rsrq_db, LADE_BEARER_SIGNAL_UNKNOWN);
    assert_int_equal(lade_at_parse_cesq(LADE_STR("99,99,255,255,20,98"), &r), LADE_ERR_PROTO);
    assert_int_equal(lade_at_parse_cesq(LADE_STR("99,99,255,255,35,41"), &r), LADE_ERR_PROTO);
    assert_int_equal(lade_at_parse_cesq(LADE_STR("99,99,255,255,20"), &r), LADE_ERR_PROTO);
    assert_int_equal(lade_at_parse_cesq(LADE_STR("99,99,255,255,20,41,1"), &r), LADE_ERR_PROTO);
    assert_int_equal(r.rsrp_dbm, LADE_BEARER_SIGNAL_UNKNOWN);
    assert_int_equal(lade_at_rsrp_dbm(1), -140);
    assert_int_equal(lade_at_rsrp_dbm(98), LADE_BEARER_SIGNAL_UNKNOWN);
}

static void test_cgact_cgpaddr_cops(void **state)
{
    (void)state;
    struct lade_at_cgact a;
    assert_int_equal(lade_at_parse_cgact(LADE_STR("1,1"), &a), LADE_OK);
    assert_int_equal(a.cid, 1);
    assert_int_equal(a.state, 1);
    assert_int_equal(lade_at_parse_cgact(LADE_STR("3,0"), &a), LADE_OK);
    assert_int_equal(a.cid, 3);
    assert_int_equal(a.state, 0);
    assert_int_equal(lade_at_parse_cgact(LADE_STR("1,2"), &a), LADE_ERR_PROTO);
    assert_int_equal(lade_at_parse_cgact(LADE_STR("256,1"), &a), LADE_ERR_PROTO);
    assert_int_equal(lade_at_parse_cgact(LADE_STR("1"), &a), LADE_ERR_PROTO);

    struct lade_at_cgpaddr pa;
    assert_int_equal(lade_at_parse_cgpaddr(LADE_STR("1,\"10.64.1.7\""), &pa), LADE_OK);
    assert_int_equal(pa.cid, 1);
    assert_view(pa.addr1, "10.64.1.7");
    assert_int_equal(pa.addr2.n, 0);
    assert_int_equal(lade_at_parse_cgpaddr(
                         LADE_STR("1,\"10.64.1.7\",\"254.128.0.0.0.0.0.0.0.0.0.0.0.0.0.1\""), &pa),
                     LADE_OK);
    assert_view(pa.addr2, "254.128.0.0.0.0.0.0.0.0.0.0.0.0.0.1");
    assert_int_equal(lade_at_parse_cgpaddr(LADE_STR("1"), &pa), LADE_OK);
    assert_int_equal(pa.addr1.n, 0);
    assert_int_equal(lade_at_parse_cgpaddr(LADE_STR("x,\"1\""), &pa), LADE_ERR_PROTO);
    assert_int_equal(lade_at_parse_cgpaddr(LADE_STR("1,2,3,4"), &pa), LADE_ERR_PROTO);

    struct lade_at_cops o;
    assert_int_equal(lade_at_parse_cops(LADE_STR("0,0,\"Telia N\",7"), &o), LADE_OK);
    assert_int_equal(o.mode, 0);
    assert_int_equal(o.format, 0);
    assert_view(o.oper, "Telia N");
    assert_int_equal(o.act, 7);
    assert_int_equal(lade_at_parse_cops(LADE_STR("0"), &o), LADE_OK);
    assert_int_equal(o.format, -1);
    assert_int_equal(o.oper.n, 0);
    assert_int_equal(o.act, -1);
    assert_int_equal(lade_at_parse_cops(LADE_STR("5"), &o), LADE_ERR_PROTO);
    assert_int_equal(lade_at_parse_cops(LADE_STR("0,3,\"x\""), &o), LADE_ERR_PROTO);
    assert_int_equal(lade_at_parse_cops(LADE_STR("0,0,\"x\",16"), &o), LADE_ERR_PROTO);
}

static void test_cgdcont(void **state)
{
    (void)state;
    char buf[128];
    size_t len;
    assert_int_equal(lade_at_format_cgdcont(buf, sizeof buf, 1, "IP", "iot.1nce.net", &len),
                     LADE_OK);
    assert_string_equal(buf, "AT+CGDCONT=1,\"IP\",\"iot.1nce.net\"");
    assert_int_equal(len, strlen(buf));
    assert_int_equal(lade_at_format_cgdcont(buf, sizeof buf, 15, "IPV4V6", "", &len), LADE_OK);
    assert_string_equal(buf, "AT+CGDCONT=15,\"IPV4V6\",\"\"");
    /* Quotes, commas, control characters would break the command line. */
    assert_int_equal(lade_at_format_cgdcont(buf, sizeof buf, 1, "IP", "a\"b", &len),
                     LADE_ERR_INVAL);
    assert_int_equal(lade_at_format_cgdcont(buf, sizeof buf, 1, "IP", "a,b", &len), LADE_ERR_INVAL);
    assert_int_equal(lade_at_format_cgdcont(buf, sizeof buf, 1, "IP", "a\rAT+CFUN=0", &len),
                     LADE_ERR_INVAL);
    assert_int_equal(lade_at_format_cgdcont(buf, sizeof buf, 0, "IP", "a", &len), LADE_ERR_INVAL);
    assert_int_equal(lade_at_format_cgdcont(buf, sizeof buf, 16, "IP", "a", &len), LADE_ERR_INVAL);
    assert_int_equal(lade_at_format_cgdcont(buf, sizeof buf, 1, "PPP", "a", &len), LADE_ERR_INVAL);
    char apn[102];
    memset(apn, 'a', 101);
    apn[101] = '\0';
    assert_int_equal(lade_at_format_cgdcont(buf, sizeof buf, 1, "IP", apn, &len), LADE_ERR_INVAL);
    apn[100] = '\0';
    assert_int_equal(lade_at_format_cgdcont(buf, sizeof buf, 1, "IP", apn, &len), LADE_OK);
    assert_int_equal(len, 120);
    assert_int_equal(lade_at_format_cgdcont(buf, 120, 1, "IP", apn, &len), LADE_ERR_NOSPACE);
}

static void test_to_link(void **state)
{
    (void)state;
    struct lade_bearer_link_state ls;
    lade_at_to_link(1, true, -100, -73, &ls);
    assert_true(ls.up);
    assert_int_equal(ls.signal, -100);
    assert_int_equal(ls.channel, 0);
    assert_int_equal(ls.freq_mhz, 0);
    lade_at_to_link(5, true, LADE_BEARER_SIGNAL_UNKNOWN, -73, &ls);
    assert_true(ls.up);
    assert_int_equal(ls.signal, -73);
    lade_at_to_link(1, false, -100, -73, &ls);
    assert_false(ls.up);
    assert_int_equal(ls.signal, -100);
    lade_at_to_link(2, true, -100, -73, &ls);
    assert_false(ls.up);
    lade_at_to_link(3, true, -100, -73, &ls);
    assert_false(ls.up);
    lade_at_to_link(-1, false, LADE_BEARER_SIGNAL_UNKNOWN, LADE_BEARER_SIGNAL_UNKNOWN, &ls);
    assert_false(ls.up);
    assert_int_equal(ls.signal, LADE_BEARER_SIGNAL_UNKNOWN);

    /* The bearer manager's LTE floor (-120 dBm RSRP). */
    struct lade_bearer_config c;
    lade_bearer_config_default(&c);
    c.present[LADE_BEARER_LTE] = true;
    struct lade_bearer b;
    assert_int_equal(lade_bearer_init(&b, &c, 1000), LADE_OK);
    struct lade_at_cesq q;
    assert_int_equal(lade_at_parse_cesq(LADE_STR("99,99,255,255,10,15"), &q), LADE_OK);
    lade_at_to_link(1, true, q.rsrp_dbm, -90, &ls);
    assert_int_equal(lade_bearer_link(&b, LADE_BEARER_LTE, &ls, 2000), LADE_OK);
    assert_int_equal(lade_bearer_usable(&b, LADE_BEARER_LTE, 2000), LADE_BEARER_WEAK);
    assert_int_equal(lade_at_parse_cesq(LADE_STR("99,99,255,255,10,40"), &q), LADE_OK);
    lade_at_to_link(1, true, q.rsrp_dbm, -90, &ls);
    assert_int_equal(lade_bearer_link(&b, LADE_BEARER_LTE, &ls, 2000), LADE_OK);
    assert_int_equal(lade_bearer_usable(&b, LADE_BEARER_LTE, 2000), LADE_BEARER_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines),
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_cereg),
        cmocka_unit_test(test_csq),
        cmocka_unit_test(test_cesq),
        cmocka_unit_test(test_cgact_cgpaddr_cops),
        cmocka_unit_test(test_cgdcont),
        cmocka_unit_test(test_to_link),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
