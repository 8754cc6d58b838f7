/* lade — the portal's authentication: password hashes, bearer tokens, rate limiting
 * (SPEC U2: OAuth password login and Bearer tokens as the reference API; see docs/store.md).
 *
 * Passwords are stored as a self-describing scrypt hash (RFC 7914, OpenSSL 3 EVP_KDF "SCRYPT"):
 *
 *     $scrypt$ln=15,r=8,p=1$<Base64 salt>$<Base64 hash>
 *
 * ln = log2(N); salt 16 random bytes, hash 32 bytes, Base64 with padding (RFC 4648 §4).
 * Verification reads the parameters from the string, so they can be raised later
 * (lade_auth_needs_rehash tells when to re-hash at the next successful login). The default
 * costs about 70 ms and 32 MiB per hash on the build machine (docs/store.md) — a login blocks
 * the caller that long, so the HTTP layer rate-limits logins (below) before verifying.
 * lade_auth_hash_password, lade_auth_verify_password and lade_auth_needs_rehash touch no store
 * and no global state: they may run on a worker thread while the loop goes on.
 *
 * Bearer tokens are 32 random bytes, Base64url without padding (43 characters), returned once;
 * the store keeps only SHA-256(token text) and the expiry. Anyone who reads the store cannot
 * use what they read.
 *
 * Never log a password, a token or a hash string.
 */
#ifndef LADE_AUTH_H
#define LADE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lade/err.h"
#include "lade/store.h"

/* ---- password hashes ---- */

#define LADE_AUTH_SALT_LEN      16
#define LADE_AUTH_HASH_LEN      32
#define LADE_AUTH_PASSWORD_MAX  1024 /* bytes; longer is INVAL (bounds the work per attempt) */
#define LADE_AUTH_HASH_STR_SIZE 128  /* room for any string lade_auth_hash_password writes */

struct lade_auth_kdf {
    uint8_t log2_n; /* N = 2^log2_n; 1..LADE_AUTH_KDF_LN_MAX */
    uint32_t r;     /* block size, 1..LADE_AUTH_KDF_R_MAX */
    uint32_t p;     /* parallelism, 1..LADE_AUTH_KDF_P_MAX */
};
#define LADE_AUTH_KDF_LN_MAX  20
#define LADE_AUTH_KDF_R_MAX   32
#define LADE_AUTH_KDF_P_MAX   16
#define LADE_AUTH_KDF_MEM_MAX (256u * 1024 * 1024) /* 128 * r * N bytes must fit in this */

/* The default: ln=15, r=8, p=1 — 32 MiB and about 70 ms per hash on the build machine. That is
 * below OWASP's current minimum for scrypt (N=2^17 r=8 p=1, or the same work as N=2^15 r=8
 * p=3); it was chosen to keep a login's stall of the portal's one event loop short. Raise it
 * here when logins move to a worker thread: stored hashes are upgraded at their next login
 * (docs/store.md, "Password hashes"). */
extern const struct lade_auth_kdf lade_auth_kdf_default;

/* Hashes password[0..len) with a fresh random salt into out (NUL-terminated).
 * kdf NULL: the default. A cheaper kdf is for tests only; the caller must ask for it.
 * Errors: INVAL (empty or longer than PASSWORD_MAX, parameters out of range), NOSPACE,
 * CRYPTO (RNG or KDF failure), NOMEM. */
lade_err lade_auth_hash_password(const char *password, size_t len, const struct lade_auth_kdf *kdf,
                                 char *out, size_t cap) LADE_MUST_CHECK;
/* Checks password against an encoded hash in constant time (for the comparison).
 * OK: matches. AUTH: does not match. INVAL: the string is not a well-formed hash of ours
 * (unknown scheme, bad or out-of-range parameters, bad Base64, wrong lengths) or the password
 * is empty/too long. CRYPTO, NOMEM. */
lade_err lade_auth_verify_password(const char *password, size_t len,
                                   const char *encoded) LADE_MUST_CHECK;
/* True if encoded is well-formed and its cost is below kdf's (NULL: default) in N, r or p,
 * or it is not well-formed at all. Call after a successful verify; re-hash if true. */
bool lade_auth_needs_rehash(const char *encoded, const struct lade_auth_kdf *kdf);

/* ---- bearer tokens ---- */

#define LADE_AUTH_TOKEN_BYTES         32
#define LADE_AUTH_TOKEN_CHARS         43    /* Base64url of 32 bytes, no padding */
#define LADE_AUTH_TOKEN_TTL_DEFAULT_S 86400 /* like the reference's expires_in 86399 */
#define LADE_AUTH_TOKEN_TTL_MAX_S     (90 * 86400)

/* SHA-256 of the token text: what the store keeps. Errors: INVAL, CRYPTO. */
lade_err lade_auth_token_hash(const char *token, size_t len,
                              uint8_t hash[LADE_STORE_TOKEN_HASH_LEN]) LADE_MUST_CHECK;

/* Creates a token for user_id valid from now_s for ttl_s (0: default; <= TTL_MAX_S) and
 * stores its hash. out gets the token text (NUL-terminated) — the only copy; *expires_s_out
 * (may be NULL) its expiry. Errors: INVAL, NOT_FOUND (no such user), CRYPTO, DB, NOMEM. */
lade_err lade_auth_token_issue(struct lade_store *st, int64_t user_id, int64_t now_s, int64_t ttl_s,
                               char out[LADE_AUTH_TOKEN_CHARS + 1],
                               int64_t *expires_s_out) LADE_MUST_CHECK;
/* Validates a presented token (the text after "Bearer "): OK with the user's id and global
 * roles (either out may be NULL). AUTH: malformed, unknown, revoked, or its user is gone.
 * EXPIRED: past its expiry. DB, NOMEM, CRYPTO. */
lade_err lade_auth_token_check(struct lade_store *st, const char *token, size_t len, int64_t now_s,
                               int64_t *user_id_out, uint32_t *roles_out) LADE_MUST_CHECK;
/* Revokes a presented token. AUTH if it is malformed or not stored. */
lade_err lade_auth_token_revoke(struct lade_store *st, const char *token,
                                size_t len) LADE_MUST_CHECK;

/* The OAuth password grant: checks username + password against the store and issues a token.
 * An unknown user costs the same KDF work as a wrong password (no user enumeration by time).
 * kdf (NULL: default) is the cost used for that dummy work. OK: token in out, user id in
 * *user_id_out (may be NULL). AUTH: unknown user or wrong password (one answer for both).
 * INVAL: empty or over-long username/password. DB, CRYPTO, NOMEM. */
lade_err lade_auth_login(struct lade_store *st, const char *username, const char *password,
                         size_t password_len, int64_t now_s, int64_t ttl_s,
                         const struct lade_auth_kdf *kdf, char out[LADE_AUTH_TOKEN_CHARS + 1],
                         int64_t *expires_s_out, int64_t *user_id_out) LADE_MUST_CHECK;

/* ---- rate limiter: token buckets keyed by client address or username ----
 *
 * Pure: the caller passes monotonic milliseconds; no I/O, no clock. Each key has a bucket of
 * `burst` requests refilled at one per `refill_ms` (the reference API: 10 requests/s with a
 * burst of 15 → refill_ms 100, burst 15). Memory is bounded: max_keys buckets in a fixed table;
 * a new key takes a free slot near its hash, else the least recently used of the few slots it
 * may use (a full bucket is evicted first — forgetting it loses nothing). Keys are hashed with
 * SHA-256, so crafted keys do not collide on purpose.
 * Use one limiter per kind of key (addresses, usernames); not thread-safe. */

struct lade_ratelimit_config {
    uint32_t burst;     /* 1..1000000 requests */
    uint32_t refill_ms; /* one request more per this many ms, 1..86400000 */
    uint32_t max_keys;  /* 1..(1 << 24) buckets kept */
};

struct lade_ratelimit_stats {
    uint32_t keys;          /* buckets in use */
    uint64_t allowed;       /* requests let through */
    uint64_t limited;       /* requests refused */
    uint64_t evicted;       /* buckets dropped to make room */
    uint64_t evicted_owing; /* of those, buckets that were not full (state lost) */
};

struct lade_ratelimit;

/* Errors: INVAL (config out of range), NOMEM. */
lade_err lade_ratelimit_new(const struct lade_ratelimit_config *cfg,
                            struct lade_ratelimit **out) LADE_MUST_CHECK;
void lade_ratelimit_free(struct lade_ratelimit *rl); /* NULL is fine */

/* Takes one request from key's bucket at now_ms. Returns 0 if allowed, else the seconds to
 * wait before the next request would be allowed (>= 1, for Retry-After); a refused request
 * takes nothing. A NULL or empty key is one bucket like any other. */
uint32_t lade_ratelimit_take(struct lade_ratelimit *rl, const void *key, size_t key_len,
                             uint64_t now_ms);
void lade_ratelimit_stats(const struct lade_ratelimit *rl, struct lade_ratelimit_stats *out);

#endif
