#include "lade/clock.h"

#include <openssl/rand.h>
#include <time.h>

uint64_t lade_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int64_t lade_wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

lade_err lade_random(void *buf, size_t len)
{
    if (len > (size_t)INT32_MAX)
        return LADE_ERR_INVAL;
    if (RAND_bytes(buf, (int)len) != 1)
        return LADE_ERR_CRYPTO;
    return LADE_OK;
}

uint32_t lade_random_u32(void)
{
    uint32_t v;
    if (lade_random(&v, sizeof v) != LADE_OK) {
        /* Jitter only: a weak fallback beats no jitter at all. */
        static uint32_t x = 2463534242u;
        x ^= (uint32_t)lade_mono_ms();
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        v = x;
    }
    return v;
}
