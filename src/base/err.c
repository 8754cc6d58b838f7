#include "lade/err.h"

const char *lade_strerror(lade_err err)
{
    switch (err) {
    case LADE_OK:
        return "ok";
    case LADE_ERR_INVAL:
        return "invalid argument";
    case LADE_ERR_NOMEM:
        return "out of memory";
    case LADE_ERR_NOSPACE:
        return "buffer too small";
    case LADE_ERR_PROTO:
        return "protocol error";
    case LADE_ERR_TOO_BIG:
        return "too big";
    case LADE_ERR_AGAIN:
        return "try again";
    case LADE_ERR_IO:
        return "I/O error";
    case LADE_ERR_TIMEOUT:
        return "timed out";
    case LADE_ERR_CLOSED:
        return "connection closed";
    case LADE_ERR_TLS:
        return "TLS error";
    case LADE_ERR_CERT:
        return "certificate not trusted";
    case LADE_ERR_AUTH:
        return "not authorized";
    case LADE_ERR_NOT_FOUND:
        return "not found";
    case LADE_ERR_STATE:
        return "invalid state";
    case LADE_ERR_CONFIG:
        return "invalid configuration";
    case LADE_ERR_CRYPTO:
        return "cryptographic error";
    case LADE_ERR_UTF8:
        return "invalid UTF-8";
    case LADE_ERR_EXISTS:
        return "already exists";
    case LADE_ERR_DB:
        return "storage error";
    case LADE_ERR_EXPIRED:
        return "expired";
    case LADE_ERR_FULL:
        return "full";
    case LADE_ERR_RESOLVE:
        return "name not resolved";
    case LADE_ERR__COUNT:
        break;
    }
    return "unknown error";
}
