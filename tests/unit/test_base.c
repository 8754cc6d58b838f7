/* Unit tests for src/base: errors, Base64, URL encoding, UTF-8, back-off. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lade/backoff.h"
#include "lade/codec.h"
#include "lade/err.h"
#include "lade/log.h"

static void test_strerror(void **state)
{
    (void)state;
    for (int e = 0; e < LADE_ERR__COUNT; e++) {
        const char *s = lade_strerror((lade_err)e);
        assert_non_null(s);
        assert_string_not_equal(s, "unknown error");
    }
    assert_string_equal(lade_strerror((lade_err)999), "unknown error");
}

static void b64_roundtrip(const char *plain, const char *enc)
{
    char out[128];
    size_t n;
    assert_int_equal(lade_base64_encode(plain, strlen(plain), out, sizeof out, &n), LADE_OK);
    assert_string_equal(out, enc);
    assert_int_equal(n, strlen(enc));
    uint8_t dec[128];
    assert_int_equal(lade_base64_decode(enc, strlen(enc), dec, sizeof dec, &n), LADE_OK);
    assert_int_equal(n, strlen(plain));
    assert_memory_equal(dec, plain, n);
}

static void test_base64_rfc4648(void **state)
{
    (void)state;
    b64_roundtrip("", "");
    b64_roundtrip("f", "Zg==");
    b64_roundtrip("fo", "Zm8=");
    b64_roundtrip("foo", "Zm9v");
    b64_roundtrip("foob", "Zm9vYg==");
    b64_roundtrip("fooba", "Zm9vYmE=");
    b64_roundtrip("foobar", "Zm9vYmFy");
}

static void test_base64_rejects(void **state)
{
    (void)state;
    uint8_t out[16];
    size_t n;
    assert_int_equal(lade_base64_decode("Zm9", 3, out, sizeof out, &n), LADE_ERR_INVAL);
    assert_int_equal(lade_base64_decode("Zm9$", 4, out, sizeof out, &n), LADE_ERR_INVAL);
    assert_int_equal(lade_base64_decode("Zh==", 4, out, sizeof out, &n), LADE_ERR_INVAL);
    assert_int_equal(lade_base64_decode("=m9v", 4, out, sizeof out, &n), LADE_ERR_INVAL);
    assert_int_equal(lade_base64_decode("Zg==Zg==", 8, out, sizeof out, &n), LADE_ERR_INVAL);
    assert_int_equal(lade_base64_decode("Zm9vYmFy", 8, out, 5, &n), LADE_ERR_NOSPACE);
    char enc[9];
    assert_int_equal(lade_base64_encode("foobar", 6, enc, 8, &n), LADE_ERR_NOSPACE);
    assert_int_equal(lade_base64_encode("foobar", 6, enc, 9, &n), LADE_OK);
}

static void test_url(void **state)
{
    (void)state;
    char out[128];
    size_t n;
    const char *in = "hub.example.net/devices/LDE-1 a+b=c&~";
    assert_int_equal(lade_url_encode(in, strlen(in), out, sizeof out, &n), LADE_OK);
    assert_string_equal(out, "hub.example.net%2Fdevices%2FLDE-1%20a%2Bb%3Dc%26~");
    assert_int_equal(n, lade_url_encoded_len(in, strlen(in)));
    char back[128];
    assert_int_equal(lade_url_decode(out, n, back, sizeof back, &n), LADE_OK);
    assert_string_equal(back, in);
    assert_int_equal(lade_url_decode("a%2fb", 5, back, sizeof back, &n), LADE_OK);
    assert_string_equal(back, "a/b");
    assert_int_equal(lade_url_decode("a%2", 3, back, sizeof back, &n), LADE_ERR_INVAL);
    assert_int_equal(lade_url_decode("a%", 2, back, sizeof back, &n), LADE_ERR_INVAL);
    assert_int_equal(lade_url_decode("a%zz", 4, back, sizeof back, &n), LADE_ERR_INVAL);
    assert_int_equal(lade_url_decode("a%00", 4, back, sizeof back, &n), LADE_ERR_INVAL);
    assert_int_equal(lade_url_decode("abcdef", 6, back, 6, &n), LADE_ERR_NOSPACE);
    assert_int_equal(lade_url_encode("a/b", 3, out, 5, &n), LADE_ERR_NOSPACE);
}

static void test_utf8(void **state)
{
    (void)state;
    assert_true(lade_utf8_valid((const uint8_t *)"h\xc3\xa9llo \xe2\x82\xac", 10, false));
    assert_true(lade_utf8_valid((const uint8_t *)"\xf0\x9f\x98\x80", 4, false));
    assert_false(lade_utf8_valid((const uint8_t *)"\xc0\xaf", 2, false));     /* overlong */
    assert_false(lade_utf8_valid((const uint8_t *)"\xed\xa0\x80", 3, false)); /* surrogate */
    assert_false(lade_utf8_valid((const uint8_t *)"\xf4\x90\x80\x80", 4, false));
    assert_false(lade_utf8_valid((const uint8_t *)"\xe2\x82", 2, false)); /* truncated */
    assert_false(lade_utf8_valid((const uint8_t *)"a\0b", 3, false));
    assert_true(lade_utf8_valid((const uint8_t *)"a\0b", 3, true));
    assert_false(lade_utf8_valid((const uint8_t *)"\x80", 1, true));
}

static void test_backoff(void **state)
{
    (void)state;
    struct lade_backoff b;
    lade_backoff_init(&b, 1000, 100000, 60000);
    /* Window doubles: [1000,1000], [1000,2000], [1000,4000], ... capped at 100000. */
    assert_int_equal(lade_backoff_fail(&b, 12345), 1000);
    assert_int_equal(lade_backoff_cap(&b), 2000);
    assert_int_equal(lade_backoff_fail(&b, 0), 1000);
    assert_int_equal(lade_backoff_fail(&b, UINT32_MAX), 1000 + UINT32_MAX % 3001);
    for (int i = 0; i < 40; i++) {
        uint32_t d = lade_backoff_fail(&b, (uint32_t)i * 2654435761u);
        assert_true(d >= 1000 && d <= 100000);
    }
    assert_int_equal(lade_backoff_cap(&b), 100000);
    /* The draw spreads over the whole window (no fixed delay a fleet would synchronise on). */
    uint32_t lo = UINT32_MAX, hi = 0;
    for (uint32_t r = 0; r < 1000; r++) {
        struct lade_backoff c = b;
        uint32_t d = lade_backoff_fail(&c, r * 4294967u);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    assert_true(lo < 5000 && hi > 95000);
    assert_int_equal(lade_backoff_stable(&b, 1000, 60999), 0);
    assert_int_equal(lade_backoff_stable(&b, 1000, 61000), 1);
    assert_int_equal(b.failures, 0);
}

static int g_sink_calls;
static void sink(void *ud, enum lade_log_level level, const char *module, const char *line)
{
    (void)ud;
    (void)level;
    assert_string_equal(module, "t");
    assert_string_equal(line, "x=42");
    g_sink_calls++;
}

static void test_log(void **state)
{
    (void)state;
    lade_log_set_sink(sink, NULL);
    lade_log_set_level(LADE_LOG_WARN);
    LOG_I("t", "x=%d", 42);
    assert_int_equal(g_sink_calls, 0);
    LOG_W("t", "x=%d", 42);
    assert_int_equal(g_sink_calls, 1);
    lade_log_set_sink(NULL, NULL);
    assert_int_equal(lade_log_level_parse("debug"), LADE_LOG_DEBUG);
    assert_int_equal(lade_log_level_parse("loud"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_base64_rfc4648),
        cmocka_unit_test(test_base64_rejects),
        cmocka_unit_test(test_url),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_log),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
