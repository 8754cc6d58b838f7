/* Unit tests of the firmware download's pure core (include/lade/fwfetch.h, part 1): the check
 * of a response's head (every status class, HTML, encodings, lengths, Content-Range, ETags), the
 * redirect check, the plan (failover order, back-off, progress, the retry/byte/time budgets,
 * "404 forever" ends) and the partial-state codec (round trip, strictness). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lade/fwfetch.h"

#define LEN 1000u

static void head(struct lade_fwfetch_verdict *v, long status, const char *ctype, int64_t clen,
                 const char *crange, const char *etag, uint64_t offset, const char *if_range)
{
    struct lade_fwfetch_head h = {
        .status = status,
        .has_length = clen >= 0,
        .length = clen >= 0 ? (uint64_t)clen : 0,
        .content_type = ctype,
        .content_range = crange,
        .etag = etag,
    };
    lade_fwfetch_check_head(&h, offset, if_range, LEN, v);
}

static void test_head_200(void **state)
{
    (void)state;
    struct lade_fwfetch_verdict v;
    head(&v, 200, "application/octet-stream", LEN, NULL, "\"a\"", 0, NULL);
    assert_int_equal(v.kind, LADE_FWFETCH_V_BODY);
    assert_int_equal(v.offset, 0);
    assert_false(v.restart);
    assert_string_equal(v.reason, "");
    /* no Content-Length (chunked): taken, the length is enforced while streaming */
    head(&v, 200, NULL, -1, NULL, NULL, 0, NULL);
    assert_int_equal(v.kind, LADE_FWFETCH_V_BODY);
    /* too long: refused before reading */
    head(&v, 200, NULL, LEN + 1, NULL, NULL, 0, NULL);
    assert_int_equal(v.kind, LADE_FWFETCH_V_HOST_FAIL);
    assert_int_equal(v.err, LADE_ERR_TOO_BIG);
    assert_non_null(strstr(v.reason, "Content-Length 1001 is more than the manifest's 1000"));
    head(&v, 200, NULL, LEN - 1, NULL, NULL, 0, NULL);
    assert_int_equal(v.kind, LADE_FWFETCH_V_HOST_FAIL);
    assert_int_equal(v.err, LADE_ERR_PROTO);
    /* HTML, with parameters and odd case */
    head(&v, 200, " Text/HTML; charset=utf-8", LEN, NULL, NULL, 0, NULL);
    assert_int_equal(v.kind, LADE_FWFETCH_V_HOST_FAIL);
    assert_non_null(strstr(v.reason, "server returned an HTML page"));
    head(&v, 200, "application/xhtml+xml", LEN, NULL, NULL, 0, NULL);
    assert_int_equal(v.kind, LADE_FWFETCH_V_HOST_FAIL);
    head(&v, 200, "text/htmlx", LEN, NULL, NULL, 0, NULL);
    assert_int_equal(v.kind, LADE_FWFETCH_V_BODY);
    /* content encodings */
    struct lade_fwfetch_head h = {.status = 200, .content_encoding = "gzip"};
    lade_fwfetch_check_head(&h, 0, NULL, LEN, &v);
    assert_int_equal(v.kind, LADE_FWFETCH_V_HOST_FAIL);
    assert_non_null(strstr(v.reason, "Content-Encoding gzip"));
    h.content_encoding = "identity";
    lade_fwfetch_check_head(&h, 0, NULL, LEN, &v);
    assert_int_equal(v.kind, LADE_FWFETCH_V_BODY);
}

static void test_head_200_to_range(void **state)
{
    (void)state;
    struct lade_fwfetch_verdict v;
    head(&v, 200, NULL, LEN, NULL, "\"new\"", 500, "\"old\"");
    assert_int_equal(v.kind, LADE_FWFETCH_V_BODY);
    assert_int_equal(v.offset, 0);
    assert_true(v.restart);
    assert_non_null(strstr(v.reason, "image changed on the server (ETag \"new\", was \"old\")"));
    head(&v, 200, NULL, LEN, NULL, "\"old\"", 500, "\"old\"");
    assert_true(v.restart);
    assert_non_null(strstr(v.reason, "server sent the whole image to a range request"));
}

static void test_head_206(void **state)
{
    (void)state;
    struct lade_fwfetch_verdict v;
    head(&v, 206, NULL, 500, "bytes 500-999/1000", "\"a\"", 500, "\"a\"");
    assert_int_equal(v.kind, LADE_FWFETCH_V_BODY);
    assert_int_equal(v.offset, 500);
    assert_false(v.restart);
    head(&v, 206, NULL, -1, "bytes 500-999/1000", NULL, 500, "\"a\"");
    assert_int_equal(v.kind, LADE_FWFETCH_V_BODY);
    /* refusals */
    const char *bad_ranges[] = {
        "bytes 499-999/1000",  "bytes 500-998/1000",
        "bytes 500-1000/1001", "bytes 500-999/*",
        "bytes */1000",        "500-999/1000",
        "bytes 500-999/1000x", "bytes -500-999/1000",
        "bytes 999-500/1000",  "",
    };
    for (size_t i = 0; i < sizeof bad_ranges / sizeof bad_ranges[0]; i++) {
        head(&v, 206, NULL, -1, bad_ranges[i], NULL, 500, "\"a\"");
        assert_int_equal(v.kind, LADE_FWFETCH_V_HOST_FAIL);
        assert_int_equal(v.err, LADE_ERR_PROTO);
    }
    head(&v, 206, NULL, 500, NULL, NULL, 500, "\"a\"");
    assert_int_equal(v.kind, LADE_FWFETCH_V_HOST_FAIL);
    head(&v, 206, NULL, 499, "bytes 500-999/1000", NULL, 500, "\"a\"");
    assert_int_equal(v.kind, LADE_FWFETCH_V_HOST_FAIL);
    head(&v, 206, NULL, 500, "bytes 500-999/1000", "\"b\"", 500, "\"a\"");
    assert_int_equal(v.kind, LADE_FWFETCH_V_HOST_FAIL);
    head(&v, 206, NULL, 1000, "bytes 0-999/1000", NULL, 0, NULL); /* never asked for a range */
    assert_int_equal(v.kind, LADE_FWFETCH_V_HOST_FAIL);
    head(&v, 206, "text/html", 500, "bytes 500-999/1000", NULL, 500, "\"a\"");
    assert_int_equal(v.kind, LADE_FWFETCH_V_HOST_FAIL);
    assert_non_null(strstr(v.reason, "HTML"));
}

static void test_head_other(void **state)
{
    (void)state;
    struct lade_fwfetch_verdict v;
    const long redirects[] = {301, 302, 303, 307, 308};
    for (size_t i = 0; i < 5; i++) {
        head(&v, redirects[i], "text/html", 100, NULL, NULL, 0, NULL);
        assert_int_equal(v.kind, LADE_FWFETCH_V_REDIRECT);
    }
    head(&v, 404, "text/html", 100, NULL, NULL, 0, NULL);
    assert_int_equal(v.kind, LADE_FWFETCH_V_HOST_FAIL);
    assert_int_equal(v.err, LADE_ERR_NOT_FOUND);
    assert_string_equal(v.reason, "HTTP 404 Not Found");
    head(&v, 410, NULL, -1, NULL, NULL, 0, NULL);
    assert_int_equal(v.err, LADE_ERR_NOT_FOUND);
    head(&v, 403, NULL, -1, NULL, NULL, 0, NULL);
    assert_int_equal(v.kind, LADE_FWFETCH_V_HOST_FAIL);
    assert_int_equal(v.err, LADE_ERR_AUTH);
    head(&v, 416, NULL, -1, NULL, NULL, 500, "\"a\"");
    assert_int_equal(v.kind, LADE_FWFETCH_V_HOST_FAIL);
    assert_true(v.restart);
    const long transient[] = {408, 429, 500, 502, 503, 504, 599};
    for (size_t i = 0; i < 7; i++) {
        head(&v, transient[i], NULL, -1, NULL, NULL, 0, NULL);
        assert_int_equal(v.kind, LADE_FWFETCH_V_RETRY);
    }
    const long odd[] = {204, 300, 304, 400, 418, 0, 199};
    for (size_t i = 0; i < 7; i++) {
        head(&v, odd[i], NULL, -1, NULL, NULL, 0, NULL);
        assert_int_equal(v.kind, LADE_FWFETCH_V_HOST_FAIL);
        assert_int_equal(v.err, LADE_ERR_PROTO);
    }
}

static void test_small_parsers(void **state)
{
    (void)state;
    uint64_t f, l, c;
    assert_int_equal(lade_fwfetch_parse_content_range("bytes 0-0/1", &f, &l, &c), LADE_OK);
    assert_int_equal(f, 0);
    assert_int_equal(l, 0);
    assert_int_equal(c, 1);
    assert_int_equal(lade_fwfetch_parse_content_range(
                         "bytes 0-18446744073709551614/18446744073709551615", &f, &l, &c),
                     LADE_OK);
    assert_int_equal(lade_fwfetch_parse_content_range("bytes 0-1/18446744073709551616", &f, &l, &c),
                     LADE_ERR_INVAL);
    assert_int_equal(lade_fwfetch_parse_content_range(NULL, &f, &l, &c), LADE_ERR_INVAL);

    assert_true(lade_fwfetch_etag_strong("\"6651f0a2-a00000\""));
    assert_true(lade_fwfetch_etag_strong("\"\""));
    assert_false(lade_fwfetch_etag_strong("W/\"x\""));
    assert_false(lade_fwfetch_etag_strong("x"));
    assert_false(lade_fwfetch_etag_strong("\"a b\""));
    assert_false(lade_fwfetch_etag_strong("\"a\"b\""));
    assert_false(lade_fwfetch_etag_strong(NULL));
    char longtag[LADE_FWFETCH_ETAG_MAX + 2];
    memset(longtag, 'a', sizeof longtag);
    longtag[0] = '"';
    longtag[LADE_FWFETCH_ETAG_MAX] = '"';
    longtag[LADE_FWFETCH_ETAG_MAX + 1] = '\0';
    assert_false(lade_fwfetch_etag_strong(longtag)); /* one too long */
    longtag[LADE_FWFETCH_ETAG_MAX - 1] = '"';
    longtag[LADE_FWFETCH_ETAG_MAX] = '\0';
    assert_true(lade_fwfetch_etag_strong(longtag));

    assert_true(lade_fwfetch_host_valid("fw1.lade.test"));
    assert_true(lade_fwfetch_host_valid("a"));
    assert_true(lade_fwfetch_host_valid("api.zaptec.com"));
    const char *bad_hosts[] = {"",     "https://a.b", "a.b:443", "a..b",     ".a",    "a.", "-a.b",
                               "a-.b", "a b",         "a/b",     "a_b.test", "[::1]", NULL};
    for (size_t i = 0; i < sizeof bad_hosts / sizeof bad_hosts[0]; i++)
        assert_false(lade_fwfetch_host_valid(bad_hosts[i]));
    char label[70];
    memset(label, 'a', 64);
    label[64] = '\0';
    assert_false(lade_fwfetch_host_valid(label));
    label[63] = '\0';
    assert_true(lade_fwfetch_host_valid(label));

    assert_true(lade_fwfetch_path_valid("/fw/lade-2.1.0.bin"));
    assert_true(lade_fwfetch_path_valid("/"));
    assert_false(lade_fwfetch_path_valid("fw/x"));
    assert_false(lade_fwfetch_path_valid("/fw/x?y=1"));
    assert_false(lade_fwfetch_path_valid("/fw/x#y"));
    assert_false(lade_fwfetch_path_valid("/fw/a b"));
    assert_false(lade_fwfetch_path_valid("/fw/\x7f"));
    assert_false(lade_fwfetch_path_valid(NULL));
}

static void test_redirect_check(void **state)
{
    (void)state;
    const char *hosts[] = {"fw1.example", "fw2.example"};
    char why[LADE_FWFETCH_REASON_MAX];
    size_t idx = 9;
    assert_int_equal(lade_fwfetch_redirect_check("https", NULL, "FW2.example.", NULL, hosts, 2, 443,
                                                 &idx, why, sizeof why),
                     LADE_OK);
    assert_int_equal(idx, 1);
    assert_int_equal(lade_fwfetch_redirect_check("https", NULL, "fw1.example", "8443", hosts, 2,
                                                 8443, &idx, why, sizeof why),
                     LADE_OK);
    assert_int_equal(idx, 0);
    assert_int_equal(lade_fwfetch_redirect_check("http", NULL, "fw1.example", NULL, hosts, 2, 443,
                                                 &idx, why, sizeof why),
                     LADE_ERR_PROTO);
    assert_non_null(strstr(why, "https only"));
    assert_int_equal(lade_fwfetch_redirect_check("https", NULL, "evil.example", NULL, hosts, 2, 443,
                                                 &idx, why, sizeof why),
                     LADE_ERR_PROTO);
    assert_string_equal(why, "redirect to evil.example refused: not a firmware host");
    assert_int_equal(lade_fwfetch_redirect_check("https", NULL, "fw1.example.evil.example", NULL,
                                                 hosts, 2, 443, &idx, why, sizeof why),
                     LADE_ERR_PROTO);
    assert_int_equal(lade_fwfetch_redirect_check("https", NULL, "fw1.exampl", NULL, hosts, 2, 443,
                                                 &idx, why, sizeof why),
                     LADE_ERR_PROTO);
    assert_int_equal(lade_fwfetch_redirect_check("https", "user", "fw1.example", NULL, hosts, 2,
                                                 443, &idx, why, sizeof why),
                     LADE_ERR_PROTO);
    assert_int_equal(lade_fwfetch_redirect_check("https", NULL, "fw1.example", "444", hosts, 2, 443,
                                                 &idx, why, sizeof why),
                     LADE_ERR_PROTO);
    assert_non_null(strstr(why, "port 444 refused"));
    assert_int_equal(lade_fwfetch_redirect_check("https", NULL, "fw1.example", NULL, hosts, 2, 8443,
                                                 &idx, why, sizeof why),
                     LADE_ERR_PROTO);
    assert_int_equal(
        lade_fwfetch_redirect_check(NULL, NULL, "fw1.example", NULL, hosts, 2, 443, &idx, NULL, 0),
        LADE_ERR_PROTO);
}

/* ---- the plan ---- */

static const char *const NAMES[] = {"fw1", "fw2", "fw3"};

static struct lade_fwfetch_plan plan3(uint64_t now)
{
    struct lade_fwfetch_limits lim = {
        .retry_delay_ms = 1000,
        .retry_delay_max_ms = 8000,
        .max_bytes = 3 * LEN,
        .total_ms = 600000,
        .min_progress = 100,
    };
    struct lade_fwfetch_plan p;
    lade_fwfetch_plan_init(&p, &lim, NAMES, 3, 0, now);
    return p;
}

/* Asks what next and checks: a GO on host at (now + delay in [lo, hi]). */
static void expect_go(struct lade_fwfetch_plan *p, uint64_t now, uint32_t rnd, size_t host,
                      uint64_t lo, uint64_t hi)
{
    struct lade_fwfetch_step s;
    lade_fwfetch_plan_next(p, now, rnd, &s);
    assert_int_equal(s.kind, LADE_FWFETCH_S_GO);
    assert_int_equal(s.host, host);
    assert_true(s.at_ms >= now + lo && s.at_ms <= now + hi);
    lade_fwfetch_plan_begin(p);
}

static void test_plan_failover_and_backoff(void **state)
{
    (void)state;
    struct lade_fwfetch_plan p = plan3(0);
    expect_go(&p, 0, 0, 0, 0, 0);
    lade_fwfetch_plan_end(&p, LADE_FWFETCH_O_TRANSIENT, 0, LADE_ERR_IO, "refused");
    expect_go(&p, 10, 0, 1, 0, 0); /* failover at once */
    lade_fwfetch_plan_end(&p, LADE_FWFETCH_O_TRANSIENT, 0, LADE_ERR_IO, "refused");
    expect_go(&p, 20, 0, 2, 0, 0);
    lade_fwfetch_plan_end(&p, LADE_FWFETCH_O_TRANSIENT, 0, LADE_ERR_IO, "refused");
    /* round over: back-off 1 s (floor), from the first host again */
    expect_go(&p, 30, 0, 0, 1000, 1000);
    lade_fwfetch_plan_end(&p, LADE_FWFETCH_O_TRANSIENT, 0, LADE_ERR_IO, "refused");
    expect_go(&p, 40, 0, 1, 0, 0);
    lade_fwfetch_plan_end(&p, LADE_FWFETCH_O_TRANSIENT, 0, LADE_ERR_IO, "refused");
    expect_go(&p, 50, 0, 2, 0, 0);
    lade_fwfetch_plan_end(&p, LADE_FWFETCH_O_TRANSIENT, 0, LADE_ERR_IO, "refused");
    /* second round: drawn from [1 s, 2 s] */
    expect_go(&p, 60, UINT32_MAX, 0, 1000, 2000);
    lade_fwfetch_plan_end(&p, LADE_FWFETCH_O_TRANSIENT, 0, LADE_ERR_IO, "refused");
    expect_go(&p, 70, 0, 1, 0, 0);
    lade_fwfetch_plan_end(&p, LADE_FWFETCH_O_TRANSIENT, 0, LADE_ERR_IO, "refused");
    expect_go(&p, 80, 0, 2, 0, 0);
    lade_fwfetch_plan_end(&p, LADE_FWFETCH_O_TRANSIENT, 0, LADE_ERR_IO, "last");
    /* three failures each: every host dropped */
    struct lade_fwfetch_step s;
    lade_fwfetch_plan_next(&p, 90, 0, &s);
    assert_int_equal(s.kind, LADE_FWFETCH_S_GIVE_UP);
    assert_int_equal(s.err, LADE_ERR_IO);
    assert_string_equal(s.reason,
                        "every firmware host failed (fw1: refused; fw2: refused; fw3: last)");
    assert_int_equal(p.attempts, 9);
    /* and stays given up */
    lade_fwfetch_plan_next(&p, 100, 0, &s);
    assert_int_equal(s.kind, LADE_FWFETCH_S_GIVE_UP);
}

static void test_plan_404_forever_ends(void **state)
{
    (void)state;
    struct lade_fwfetch_plan p = plan3(0);
    for (size_t i = 0; i < 3; i++) {
        expect_go(&p, i, 0, i, 0, 0);
        lade_fwfetch_plan_end(&p, LADE_FWFETCH_O_HOST_FAIL, 0, LADE_ERR_NOT_FOUND,
                              "HTTP 404 Not Found");
    }
    struct lade_fwfetch_step s;
    lade_fwfetch_plan_next(&p, 10, 0, &s);
    assert_int_equal(s.kind, LADE_FWFETCH_S_GIVE_UP);
    assert_int_equal(s.err, LADE_ERR_NOT_FOUND);
    assert_int_equal(p.attempts, 3);
}

static void test_plan_progress_stays(void **state)
{
    (void)state;
    struct lade_fwfetch_plan p = plan3(0);
    expect_go(&p, 0, 0, 0, 0, 0);
    /* cut off after real progress: the same host after the floor, not a failure */
    lade_fwfetch_plan_end(&p, LADE_FWFETCH_O_TRANSIENT, 100, LADE_ERR_IO, "cut");
    assert_int_equal(p.failures, 0);
    expect_go(&p, 10, 0, 0, 1000, 1000);
    /* too little progress: a failure, next host */
    lade_fwfetch_plan_end(&p, LADE_FWFETCH_O_TRANSIENT, 99, LADE_ERR_IO, "cut");
    assert_int_equal(p.failures, 1);
    expect_go(&p, 20, 0, 1, 0, 0);
    lade_fwfetch_plan_end(&p, LADE_FWFETCH_O_DONE, 0, LADE_OK, NULL);
    struct lade_fwfetch_step s;
    lade_fwfetch_plan_next(&p, 30, 0, &s);
    assert_int_equal(s.kind, LADE_FWFETCH_S_DONE);
}

static void test_plan_first_host_and_fatal(void **state)
{
    (void)state;
    struct lade_fwfetch_limits lim = {.max_bytes = 10};
    struct lade_fwfetch_plan p;
    lade_fwfetch_plan_init(&p, &lim, NAMES, 3, 2, 0); /* resume at fw3 */
    assert_int_equal(p.lim.retries_per_host, LADE_FWFETCH_RETRIES);
    assert_int_equal(p.lim.max_attempts, LADE_FWFETCH_MAX_ATTEMPTS);
    assert_int_equal(p.lim.total_ms, LADE_FWFETCH_TOTAL_MS);
    expect_go(&p, 0, 0, 2, 0, 0);
    lade_fwfetch_plan_end(&p, LADE_FWFETCH_O_HOST_FAIL, 0, LADE_ERR_CERT, "bad cert");
    expect_go(&p, 0, 0, 0, 0, 0); /* wraps around */
    lade_fwfetch_plan_end(&p, LADE_FWFETCH_O_FATAL, 0, LADE_ERR_IO, "disk full");
    struct lade_fwfetch_step s;
    lade_fwfetch_plan_next(&p, 0, 0, &s);
    assert_int_equal(s.kind, LADE_FWFETCH_S_GIVE_UP);
    assert_int_equal(s.err, LADE_ERR_IO);
    assert_string_equal(s.reason, "disk full");
}

static void test_plan_budgets(void **state)
{
    (void)state;
    /* overall retries */
    struct lade_fwfetch_limits lim = {.max_bytes = 100, .max_attempts = 2, .retries_per_host = 5};
    struct lade_fwfetch_plan p;
    lade_fwfetch_plan_init(&p, &lim, NAMES, 3, 0, 0);
    struct lade_fwfetch_step s;
    expect_go(&p, 0, 0, 0, 0, 0);
    lade_fwfetch_plan_end(&p, LADE_FWFETCH_O_TRANSIENT, 0, LADE_ERR_TIMEOUT, "slow");
    expect_go(&p, 0, 0, 1, 0, 0);
    lade_fwfetch_plan_end(&p, LADE_FWFETCH_O_TRANSIENT, 0, LADE_ERR_TIMEOUT, "slow");
    lade_fwfetch_plan_next(&p, 0, 0, &s);
    assert_int_equal(s.kind, LADE_FWFETCH_S_GIVE_UP);
    assert_int_equal(s.err, LADE_ERR_TIMEOUT);
    assert_non_null(strstr(s.reason, "retry budget of 2 failed attempts used up"));

    /* bytes */
    lade_fwfetch_plan_init(&p, &lim, NAMES, 3, 0, 0);
    expect_go(&p, 0, 0, 0, 0, 0);
    assert_int_equal(lade_fwfetch_plan_bytes(&p, 100), LADE_OK);
    assert_int_equal(lade_fwfetch_plan_bytes(&p, 1), LADE_ERR_TOO_BIG);
    lade_fwfetch_plan_end(&p, LADE_FWFETCH_O_TRANSIENT, 101, LADE_ERR_TOO_BIG, "bytes");
    lade_fwfetch_plan_next(&p, 0, 0, &s);
    assert_int_equal(s.kind, LADE_FWFETCH_S_GIVE_UP);
    assert_int_equal(s.err, LADE_ERR_TOO_BIG);
    assert_non_null(strstr(s.reason, "byte budget of 100 bytes used up"));

    /* time: at the deadline, and a back-off that would pass it */
    lim.total_ms = 5000;
    lim.retry_delay_ms = 3000;
    lim.max_attempts = 0;
    lade_fwfetch_plan_init(&p, &lim, NAMES, 1, 0, 1000);
    expect_go(&p, 1000, 0, 0, 0, 0);
    lade_fwfetch_plan_end(&p, LADE_FWFETCH_O_TRANSIENT, 0, LADE_ERR_IO, "x");
    expect_go(&p, 1000, 0, 0, 3000, 3000);
    lade_fwfetch_plan_end(&p, LADE_FWFETCH_O_TRANSIENT, 0, LADE_ERR_IO, "x");
    lade_fwfetch_plan_next(&p, 4000, 0, &s); /* 4000 + >= 3000 > 6000 */
    assert_int_equal(s.kind, LADE_FWFETCH_S_GIVE_UP);
    assert_int_equal(s.err, LADE_ERR_TIMEOUT);
    assert_non_null(strstr(s.reason, "would be used up"));
    lade_fwfetch_plan_init(&p, &lim, NAMES, 1, 0, 1000);
    lade_fwfetch_plan_next(&p, 6000, 0, &s);
    assert_int_equal(s.kind, LADE_FWFETCH_S_GIVE_UP);
    assert_string_equal(s.reason, "time budget of 5.000 s used up");
}

/* ---- the state codec ---- */

static struct lade_fwfetch_state sample(void)
{
    struct lade_fwfetch_state st;
    memset(&st, 0, sizeof st);
    strcpy(st.path, "/fw/lade-2.1.0.bin");
    st.length = 10485760;
    st.has_sha256 = true;
    for (int i = 0; i < 32; i++)
        st.sha256[i] = (uint8_t)(i * 7 + 1);
    strcpy(st.host, "fw1.example.com");
    strcpy(st.etag, "\"6651f0a2-a00000\"");
    st.offset = 262144;
    return st;
}

static void test_state_codec(void **state)
{
    (void)state;
    struct lade_fwfetch_state st = sample(), back;
    char buf[LADE_FWFETCH_STATE_MAX];
    size_t n;
    assert_int_equal(lade_fwfetch_state_encode(&st, buf, sizeof buf, &n), LADE_OK);
    assert_int_equal(n, strlen(buf));
    assert_non_null(strstr(buf, "lade-fwfetch 1\npath /fw/lade-2.1.0.bin\nlength 10485760\n"
                                "sha256 0108"));
    assert_non_null(strstr(buf, "\nhost fw1.example.com\netag \"6651f0a2-a00000\"\n"
                                "offset 262144\n"));
    assert_int_equal(lade_fwfetch_state_decode(buf, n, &back), LADE_OK);
    assert_memory_equal(&st, &back, sizeof st);

    /* without hash and ETag */
    st.has_sha256 = false;
    memset(st.sha256, 0, sizeof st.sha256);
    memset(st.etag, 0, sizeof st.etag);
    assert_int_equal(lade_fwfetch_state_encode(&st, buf, sizeof buf, &n), LADE_OK);
    assert_non_null(strstr(buf, "sha256 -\n"));
    assert_non_null(strstr(buf, "etag -\n"));
    assert_int_equal(lade_fwfetch_state_decode(buf, n, &back), LADE_OK);
    assert_memory_equal(&st, &back, sizeof st);

    /* never truncated */
    assert_int_equal(lade_fwfetch_state_encode(&st, buf, n, &n), LADE_ERR_NOSPACE);

    /* encode refuses what decode would */
    st = sample();
    st.offset = st.length + 1;
    assert_int_equal(lade_fwfetch_state_encode(&st, buf, sizeof buf, &n), LADE_ERR_INVAL);
    st = sample();
    strcpy(st.etag, "W/\"x\"");
    assert_int_equal(lade_fwfetch_state_encode(&st, buf, sizeof buf, &n), LADE_ERR_INVAL);
    st = sample();
    st.length = 0;
    st.offset = 0;
    assert_int_equal(lade_fwfetch_state_encode(&st, buf, sizeof buf, &n), LADE_ERR_INVAL);
}

static void test_state_decode_strict(void **state)
{
    (void)state;
    struct lade_fwfetch_state st = sample(), back;
    char good[LADE_FWFETCH_STATE_MAX];
    size_t n;
    assert_int_equal(lade_fwfetch_state_encode(&st, good, sizeof good, &n), LADE_OK);
    /* every prefix (a torn write) is refused */
    for (size_t i = 0; i < n; i++)
        assert_int_equal(lade_fwfetch_state_decode(good, i, &back), LADE_ERR_INVAL);
    /* trailing data, edits */
    char buf[LADE_FWFETCH_STATE_MAX + 8];
    memcpy(buf, good, n);
    memcpy(buf + n, "x\n", 2);
    assert_int_equal(lade_fwfetch_state_decode(buf, n + 2, &back), LADE_ERR_INVAL);
    const char *edits[][2] = {
        {"lade-fwfetch 1", "lade-fwfetch 2"},
        {"length 10485760", "length 0"},
        {"length 10485760", "length -1"},
        {"length 10485760", "length 1e6"},
        {"offset 262144", "offset 99999999"},
        {"host fw1", "host f_1"},
        {"etag \"6651", "etag W/\"6651"},
        {"sha256 01", "sha256 0G"},
        {"sha256 01", "sha256 1"},
        {"path /fw", "path fw"},
        {"offset 262144", "offset  262144"},
        {"host fw1", "host  fw1"},
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        char *at = strstr(good, edits[i][0]);
        assert_non_null(at);
        size_t pre = (size_t)(at - good), on = strlen(edits[i][0]), nn = strlen(edits[i][1]);
        memcpy(buf, good, pre);
        memcpy(buf + pre, edits[i][1], nn);
        memcpy(buf + pre + nn, at + on, n - pre - on);
        assert_int_equal(lade_fwfetch_state_decode(buf, n - on + nn, &back), LADE_ERR_INVAL);
    }
    /* a NUL inside */
    memcpy(buf, good, n);
    buf[20] = '\0';
    assert_int_equal(lade_fwfetch_state_decode(buf, n, &back), LADE_ERR_INVAL);
    assert_int_equal(lade_fwfetch_state_decode(buf, LADE_FWFETCH_STATE_MAX + 1, &back),
                     LADE_ERR_TOO_BIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_head_200),
        cmocka_unit_test(test_head_200_to_range),
        cmocka_unit_test(test_head_206),
        cmocka_unit_test(test_head_other),
        cmocka_unit_test(test_small_parsers),
        cmocka_unit_test(test_redirect_check),
        cmocka_unit_test(test_plan_failover_and_backoff),
        cmocka_unit_test(test_plan_404_forever_ends),
        cmocka_unit_test(test_plan_progress_stays),
        cmocka_unit_test(test_plan_first_host_and_fatal),
        cmocka_unit_test(test_plan_budgets),
        cmocka_unit_test(test_state_codec),
        cmocka_unit_test(test_state_decode_strict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
