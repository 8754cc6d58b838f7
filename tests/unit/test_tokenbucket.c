/* Unit tests for the connection-storm pieces: the token bucket the hub admits connections with
 * (src/base/tokenbucket.c) and the back-off's spread and busy windows (src/base/backoff.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lade/backoff.h"
#include "lade/tokenbucket.h"

static void test_unlimited(void **state)
{
    (void)state;
    struct lade_tokenbucket r;
    lade_tokenbucket_init(&r, 0, 0, 1000);
    for (int i = 0; i < 100000; i++)
        assert_true(lade_tokenbucket_take(&r, 1000));
    assert_int_equal(lade_tokenbucket_avail(&r, 1000), UINT32_MAX);
}

static void test_burst_then_rate(void **state)
{
    (void)state;
    struct lade_tokenbucket r;
    lade_tokenbucket_init(&r, 5, 5, 1000);
    /* Starts full: the burst at once, then nothing in the same millisecond. */
    for (int i = 0; i < 5; i++)
        assert_true(lade_tokenbucket_take(&r, 1000));
    assert_false(lade_tokenbucket_take(&r, 1000));
    /* One token per 200 ms. */
    assert_false(lade_tokenbucket_take(&r, 1199));
    assert_true(lade_tokenbucket_take(&r, 1200));
    assert_false(lade_tokenbucket_take(&r, 1200));
    assert_false(lade_tokenbucket_take(&r, 1399));
    assert_true(lade_tokenbucket_take(&r, 1400));
    /* Idle for long: full again, never more than the burst. */
    assert_int_equal(lade_tokenbucket_avail(&r, 1000000), 5);
    assert_int_equal(lade_tokenbucket_avail(&r, UINT64_MAX), 5);
}

static void test_fractions_add_up(void **state)
{
    (void)state;
    /* 3/s polled every millisecond for 10 s: exactly 30 after the burst, no drift (a bucket
     * that is never full keeps every thousandth). */
    struct lade_tokenbucket r;
    lade_tokenbucket_init(&r, 3, 2, 0);
    int got = 0;
    for (uint64_t t = 0; t <= 10000; t++)
        got += lade_tokenbucket_take(&r, t);
    assert_int_equal(got, 2 + 30);
    /* A high rate: 100 000/s over 1 s polled every 10 ms. */
    lade_tokenbucket_init(&r, 100000, 1000, 0);
    got = 0;
    for (uint64_t t = 0; t <= 1000; t += 10)
        while (lade_tokenbucket_take(&r, t))
            got++;
    assert_int_equal(got, 1000 + 100000);
}

static void test_defaults_and_clamps(void **state)
{
    (void)state;
    struct lade_tokenbucket r;
    lade_tokenbucket_init(&r, 100, 0, 0); /* burst 0 = one second's worth */
    assert_int_equal(r.burst, 100);
    assert_int_equal(lade_tokenbucket_avail(&r, 0), 100);
    lade_tokenbucket_init(&r, UINT32_MAX, UINT32_MAX, 0);
    assert_int_equal(r.rate_per_s, LADE_TOKENBUCKET_MAX);
    assert_int_equal(r.burst, LADE_TOKENBUCKET_MAX);
    assert_int_equal(lade_tokenbucket_avail(&r, UINT64_MAX), LADE_TOKENBUCKET_MAX);
}

static void test_clock_backwards(void **state)
{
    (void)state;
    struct lade_tokenbucket r;
    lade_tokenbucket_init(&r, 10, 1, 5000);
    assert_true(lade_tokenbucket_take(&r, 5000));
    /* The clock goes back: nothing is added, and the next refill counts from the later time. */
    assert_false(lade_tokenbucket_take(&r, 100));
    assert_false(lade_tokenbucket_take(&r, 5099));
    assert_true(lade_tokenbucket_take(&r, 5100));
}

/* The smallest observed and the largest observed delay over many draws. */
static void draws(struct lade_backoff *b, bool busy, uint32_t *lo, uint32_t *hi)
{
    *lo = UINT32_MAX;
    *hi = 0;
    for (uint32_t i = 0; i < 2000; i++) {
        struct lade_backoff c = *b;
        uint32_t d =
            busy ? lade_backoff_busy(&c, i * 2147483u) : lade_backoff_fail(&c, i * 2147483u);
        *lo = d < *lo ? d : *lo;
        *hi = d > *hi ? d : *hi;
    }
}

static void test_backoff_spread(void **state)
{
    (void)state;
    struct lade_backoff b;
    uint32_t lo, hi;
    lade_backoff_init(&b, 1000, 100000, 60000);
    /* Without a spread the first retry of every device is the same instant. */
    draws(&b, false, &lo, &hi);
    assert_int_equal(lo, 1000);
    assert_int_equal(hi, 1000);
    /* With it, the first retry covers [1 s, 30 s]. */
    lade_backoff_set_spread(&b, 30000);
    assert_int_equal(lade_backoff_cap(&b), 30000);
    draws(&b, false, &lo, &hi);
    assert_true(lo < 1100 && hi > 29900 && hi <= 30000 && lo >= 1000);
    /* The windows stay at the spread until the doubling passes it, then grow to the maximum. */
    uint32_t caps[8];
    for (int i = 0; i < 8; i++) {
        caps[i] = lade_backoff_cap(&b);
        (void)lade_backoff_fail(&b, 0);
    }
    const uint32_t want[8] = {30000, 30000, 30000, 30000, 30000, 32000, 64000, 100000};
    assert_memory_equal(caps, want, sizeof want);
    /* A busy refusal draws from the spread window and does not grow the count. */
    uint32_t n = b.failures;
    draws(&b, true, &lo, &hi);
    assert_true(lo >= 1000 && lo < 1100 && hi > 29900 && hi <= 30000);
    assert_int_equal(lade_backoff_busy(&b, 0), 1000);
    assert_int_equal(b.failures, n);
    /* A stable link resets to the spread window. */
    assert_int_equal(lade_backoff_stable(&b, 0, 60000), 1);
    assert_int_equal(lade_backoff_cap(&b), 30000);
}

static void test_backoff_spread_clamped(void **state)
{
    (void)state;
    struct lade_backoff b;
    lade_backoff_init(&b, 100, 400, 1000); /* the e2e tests' fast settings */
    lade_backoff_set_spread(&b, 30000);
    assert_int_equal(b.spread_ms, 400);
    assert_int_equal(lade_backoff_cap(&b), 400);
    lade_backoff_set_spread(&b, 10);
    assert_int_equal(b.spread_ms, 100);
    assert_int_equal(lade_backoff_busy(&b, 12345), 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unlimited),
        cmocka_unit_test(test_burst_then_rate),
        cmocka_unit_test(test_fractions_add_up),
        cmocka_unit_test(test_defaults_and_clamps),
        cmocka_unit_test(test_clock_backwards),
        cmocka_unit_test(test_backoff_spread),
        cmocka_unit_test(test_backoff_spread_clamped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
