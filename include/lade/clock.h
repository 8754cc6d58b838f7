/* lade — clocks and randomness (implemented in src/port/linux; proto/ never calls these).
 *
 * Monotonic milliseconds are for timers, timeouts and leases; wall seconds only for tokens,
 * certificates and records (SAS expiry, session timestamps).
 */
#ifndef LADE_CLOCK_H
#define LADE_CLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "lade/err.h"

/* Milliseconds from an arbitrary origin; never goes backwards. */
uint64_t lade_mono_ms(void);
/* Seconds since the Unix epoch (UTC) from the system clock. */
int64_t lade_wall_s(void);
/* Fills buf from the OS CSPRNG (OpenSSL RAND_bytes). */
lade_err lade_random(void *buf, size_t len) LADE_MUST_CHECK;
/* Uniform 32-bit value for jitter; not for secrets. Falls back to a PRNG if the CSPRNG fails. */
uint32_t lade_random_u32(void);

#endif
