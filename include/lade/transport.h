/* lade — the byte-stream transport a protocol session is given (injected).
 *
 * Implementations: TLS over TCP (src/port/linux/tls.c), and in-memory pipes in unit tests.
 * Both calls are non-blocking:
 *   LADE_OK         *done bytes (>= 1) were moved
 *   LADE_ERR_AGAIN  nothing can move now; wait for the fd to become readable/writable
 *   LADE_ERR_CLOSED the peer closed the stream in order
 *   other           the stream failed; the caller closes it
 */
#ifndef LADE_TRANSPORT_H
#define LADE_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "lade/err.h"

struct lade_transport {
    void *ctx;
    lade_err (*send)(void *ctx, const uint8_t *buf, size_t len, size_t *done);
    lade_err (*recv)(void *ctx, uint8_t *buf, size_t cap, size_t *done);
};

#endif
