/* lade — one error enum for the whole project.
 *
 * Values are stable (they appear in logs and diagnostics): append, never renumber.
 * Protocol result codes (CONNACK codes, HTTP statuses, method statuses) are data, not errors.
 */
#ifndef LADE_ERR_H
#define LADE_ERR_H

#define LADE_MUST_CHECK __attribute__((warn_unused_result))

typedef enum lade_err {
    LADE_OK = 0,
    LADE_ERR_INVAL = 1,      /* bad argument or malformed input from a caller/file */
    LADE_ERR_NOMEM = 2,      /* allocation failed */
    LADE_ERR_NOSPACE = 3,    /* caller's buffer too small; nothing was truncated */
    LADE_ERR_PROTO = 4,      /* malformed data from the network */
    LADE_ERR_TOO_BIG = 5,    /* exceeds a configured maximum size */
    LADE_ERR_AGAIN = 6,      /* would block / incomplete: call again later */
    LADE_ERR_IO = 7,         /* operating-system I/O error */
    LADE_ERR_TIMEOUT = 8,    /* a deadline passed */
    LADE_ERR_CLOSED = 9,     /* peer closed the connection */
    LADE_ERR_TLS = 10,       /* TLS handshake or record failure */
    LADE_ERR_CERT = 11,      /* certificate chain or host name not trusted */
    LADE_ERR_AUTH = 12,      /* authentication refused or credential invalid */
    LADE_ERR_NOT_FOUND = 13, /* no such item */
    LADE_ERR_STATE = 14,     /* call not valid in the current state */
    LADE_ERR_CONFIG = 15,    /* invalid configuration */
    LADE_ERR_CRYPTO = 16,    /* cryptographic primitive failed */
    LADE_ERR_UTF8 = 17,      /* string is not valid UTF-8 (or contains U+0000) */
    LADE_ERR_EXISTS = 18,    /* item already exists */
    LADE_ERR_DB = 19,        /* storage error */
    LADE_ERR_EXPIRED = 20,   /* credential or item past its expiry */
    LADE_ERR_FULL = 21,      /* a bounded queue/table is full */
    LADE_ERR_RESOLVE = 22,   /* name could not be resolved */
    LADE_ERR__COUNT
} lade_err;

/* Human-readable, static string for an error; never NULL (unknown values give "unknown error"). */
const char *lade_strerror(lade_err err);

#endif
