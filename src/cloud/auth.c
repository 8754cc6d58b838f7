/* Portal authentication: scrypt password hashes, hashed bearer tokens, token-bucket rate
 * limiting (see auth.h, docs/store.md).
 *
 * Why scrypt (RFC 7914) through OpenSSL's EVP_KDF: it is memory-hard (an attacker with a copy
 * of the users table pays 32 MiB per guess in parallel hardware), OpenSSL 3 is already our one
 * crypto library, and the encoded string carries its parameters so they can be raised.
 *
 * Why tokens are stored as SHA-256 and not with a slow KDF: a token is 256 random bits, so
 * nobody can guess it from its hash however fast the hash is; a slow KDF would only cost the
 * server on every request.
 */
#include "lade/auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/sha.h>

#include "lade/clock.h"
#include "lade/codec.h"
#include "lade/log.h"

#define MOD "auth"

const struct lade_auth_kdf lade_auth_kdf_default = {.log2_n = 15, .r = 8, .p = 1};

#define SCHEME        "$scrypt$"
#define SALT_MIN      LADE_AUTH_SALT_LEN /* a longer salt is accepted, a shorter one is not */
#define SALT_MAX      64
#define HASH_MIN      LADE_AUTH_HASH_LEN /* exactly: a shorter one is a prefix that verifies */
#define HASH_MAX      LADE_AUTH_HASH_LEN
#define B64_MAX(n)    ((((n) + 2) / 3) * 4)
#define KDF_MEM(k, N) (128ull * (k)->r * ((N) + 2 + (k)->p))

/* ---- scrypt ---- */

static bool kdf_ok(const struct lade_auth_kdf *k)
{
    if (k->log2_n < 1 || k->log2_n > LADE_AUTH_KDF_LN_MAX || k->r < 1 ||
        k->r > LADE_AUTH_KDF_R_MAX || k->p < 1 || k->p > LADE_AUTH_KDF_P_MAX)
        return false;
    return 128ull * k->r * (1ull << k->log2_n) <= LADE_AUTH_KDF_MEM_MAX;
}

static bool password_ok(const char *pw, size_t len)
{
    return pw && len > 0 && len <= LADE_AUTH_PASSWORD_MAX;
}

static lade_err scrypt(const char *pw, size_t len, const uint8_t *salt, size_t salt_len,
                       const struct lade_auth_kdf *k, uint8_t *out, size_t out_len)
{
    lade_err err = LADE_ERR_CRYPTO;
    uint64_t n = 1ull << k->log2_n;
    uint32_t r = k->r, p = k->p;
    uint64_t maxmem = KDF_MEM(k, n) + 4096;
    EVP_KDF_CTX *ctx = NULL;
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
    if (!kdf)
        goto out;
    if (!(ctx = EVP_KDF_CTX_new(kdf)))
        goto out;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)pw, len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_KDF_derive(ctx, out, out_len, params) == 1)
        err = LADE_OK;
    else
        LOG_E(MOD, "scrypt (ln=%u r=%u p=%u) failed", k->log2_n, k->r, k->p);
out:
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    return err;
}

/* ---- encoded hash strings ---- */

struct parsed {
    struct lade_auth_kdf kdf;
    uint8_t salt[SALT_MAX];
    size_t salt_len;
    uint8_t hash[HASH_MAX];
    size_t hash_len;
};

/* "<name>=<decimal>" at *p: no sign, no leading zero, at most 10 digits. */
static bool take_param(const char **p, const char *name, uint64_t *v)
{
    size_t n = strlen(name);
    if (strncmp(*p, name, n) != 0 || (*p)[n] != '=')
        return false;
    const char *d = *p + n + 1;
    size_t digits = 0;
    *v = 0;
    while (d[digits] >= '0' && d[digits] <= '9') {
        if (digits == 10)
            return false;
        *v = *v * 10 + (uint64_t)(d[digits] - '0');
        digits++;
    }
    if (digits == 0 || (digits > 1 && d[0] == '0'))
        return false;
    *p = d + digits;
    return true;
}

/* Base64 field up to the next '$' or the end; decoded into out (strict decoder). */
static bool take_b64(const char **p, uint8_t *out, size_t min, size_t max, size_t *len)
{
    size_t n = strcspn(*p, "$");
    uint8_t tmp[HASH_MAX > SALT_MAX ? HASH_MAX + 3 : SALT_MAX + 3];
    if (n == 0 || n > B64_MAX(max))
        return false;
    if (lade_base64_decode(*p, n, tmp, sizeof tmp, len) != LADE_OK || *len < min || *len > max)
        return false;
    memcpy(out, tmp, *len);
    *p += n;
    return true;
}

static bool parse(const char *s, struct parsed *out)
{
    uint64_t ln, r, p;
    if (!s || strnlen(s, LADE_STORE_HASH_MAX + 1) > LADE_STORE_HASH_MAX)
        return false;
    if (strncmp(s, SCHEME, strlen(SCHEME)) != 0)
        return false;
    s += strlen(SCHEME);
    if (!take_param(&s, "ln", &ln) || *s++ != ',' || !take_param(&s, "r", &r) || *s++ != ',' ||
        !take_param(&s, "p", &p) || *s++ != '$')
        return false;
    if (ln > LADE_AUTH_KDF_LN_MAX || r > LADE_AUTH_KDF_R_MAX || p > LADE_AUTH_KDF_P_MAX)
        return false;
    out->kdf.log2_n = (uint8_t)ln;
    out->kdf.r = (uint32_t)r;
    out->kdf.p = (uint32_t)p;
    if (!kdf_ok(&out->kdf))
        return false;
    if (!take_b64(&s, out->salt, SALT_MIN, SALT_MAX, &out->salt_len) || *s++ != '$' ||
        !take_b64(&s, out->hash, HASH_MIN, HASH_MAX, &out->hash_len))
        return false;
    return *s == '\0';
}

lade_err lade_auth_hash_password(const char *password, size_t len, const struct lade_auth_kdf *kdf,
                                 char *out, size_t cap)
{
    uint8_t salt[LADE_AUTH_SALT_LEN], hash[LADE_AUTH_HASH_LEN];
    char salt_b64[B64_MAX(LADE_AUTH_SALT_LEN) + 1], hash_b64[B64_MAX(LADE_AUTH_HASH_LEN) + 1];
    size_t n;
    lade_err err;
    if (!kdf)
        kdf = &lade_auth_kdf_default;
    if (!password_ok(password, len) || !out || !kdf_ok(kdf))
        return LADE_ERR_INVAL;
    if (cap > 0)
        out[0] = '\0';
    if (lade_random(salt, sizeof salt) != LADE_OK)
        return LADE_ERR_CRYPTO;
    if ((err = scrypt(password, len, salt, sizeof salt, kdf, hash, sizeof hash)) != LADE_OK)
        goto out;
    if ((err = lade_base64_encode(salt, sizeof salt, salt_b64, sizeof salt_b64, &n)) != LADE_OK ||
        (err = lade_base64_encode(hash, sizeof hash, hash_b64, sizeof hash_b64, &n)) != LADE_OK)
        goto out;
    int w = snprintf(out, cap, SCHEME "ln=%u,r=%u,p=%u$%s$%s", kdf->log2_n, kdf->r, kdf->p,
                     salt_b64, hash_b64);
    if (w < 0 || (size_t)w >= cap) {
        if (cap > 0)
            out[0] = '\0';
        err = LADE_ERR_NOSPACE;
    }
out:
    OPENSSL_cleanse(hash, sizeof hash);
    OPENSSL_cleanse(hash_b64, sizeof hash_b64);
    return err;
}

lade_err lade_auth_verify_password(const char *password, size_t len, const char *encoded)
{
    struct parsed p;
    uint8_t hash[HASH_MAX];
    if (!password_ok(password, len) || !parse(encoded, &p))
        return LADE_ERR_INVAL;
    lade_err err = scrypt(password, len, p.salt, p.salt_len, &p.kdf, hash, p.hash_len);
    if (err == LADE_OK)
        err = lade_ct_equal(hash, p.hash, p.hash_len) ? LADE_OK : LADE_ERR_AUTH;
    OPENSSL_cleanse(hash, sizeof hash);
    OPENSSL_cleanse(&p, sizeof p);
    return err;
}

bool lade_auth_needs_rehash(const char *encoded, const struct lade_auth_kdf *kdf)
{
    struct parsed p;
    if (!kdf)
        kdf = &lade_auth_kdf_default;
    if (!parse(encoded, &p))
        return true;
    return p.kdf.log2_n < kdf->log2_n || p.kdf.r < kdf->r || p.kdf.p < kdf->p;
}

/* ---- tokens ---- */

static bool token_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

static bool token_form_ok(const char *t, size_t len)
{
    if (!t || len != LADE_AUTH_TOKEN_CHARS)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!token_char(t[i]))
            return false;
    return true;
}

lade_err lade_auth_token_hash(const char *token, size_t len,
                              uint8_t hash[LADE_STORE_TOKEN_HASH_LEN])
{
    unsigned int n = 0;
    if (!token || !hash)
        return LADE_ERR_INVAL;
    if (EVP_Digest(token, len, hash, &n, EVP_sha256(), NULL) != 1 || n != LADE_STORE_TOKEN_HASH_LEN)
        return LADE_ERR_CRYPTO;
    return LADE_OK;
}

/* Base64url without padding (RFC 4648 §5) of 32 bytes: 43 characters. */
static lade_err token_text(const uint8_t raw[LADE_AUTH_TOKEN_BYTES],
                           char out[LADE_AUTH_TOKEN_CHARS + 1])
{
    char b64[B64_MAX(LADE_AUTH_TOKEN_BYTES) + 1];
    size_t n = 0;
    lade_err err = lade_base64_encode(raw, LADE_AUTH_TOKEN_BYTES, b64, sizeof b64, &n);
    if (err != LADE_OK)
        return err;
    for (size_t i = 0; i < LADE_AUTH_TOKEN_CHARS; i++)
        out[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
    out[LADE_AUTH_TOKEN_CHARS] = '\0';
    OPENSSL_cleanse(b64, sizeof b64);
    return LADE_OK;
}

lade_err lade_auth_token_issue(struct lade_store *st, int64_t user_id, int64_t now_s, int64_t ttl_s,
                               char out[LADE_AUTH_TOKEN_CHARS + 1], int64_t *expires_s_out)
{
    uint8_t raw[LADE_AUTH_TOKEN_BYTES], hash[LADE_STORE_TOKEN_HASH_LEN];
    lade_err err;
    if (expires_s_out)
        *expires_s_out = 0;
    if (!st || !out || user_id <= 0 || ttl_s < 0 || ttl_s > LADE_AUTH_TOKEN_TTL_MAX_S ||
        now_s < 0 || now_s > INT64_MAX - LADE_AUTH_TOKEN_TTL_MAX_S)
        return LADE_ERR_INVAL;
    out[0] = '\0';
    if (ttl_s == 0)
        ttl_s = LADE_AUTH_TOKEN_TTL_DEFAULT_S;
    if (lade_random(raw, sizeof raw) != LADE_OK) {
        err = LADE_ERR_CRYPTO;
        goto out;
    }
    if ((err = token_text(raw, out)) != LADE_OK ||
        (err = lade_auth_token_hash(out, LADE_AUTH_TOKEN_CHARS, hash)) != LADE_OK ||
        (err = lade_store_token_add(st, hash, user_id, now_s, now_s + ttl_s)) != LADE_OK)
        goto out;
    if (expires_s_out)
        *expires_s_out = now_s + ttl_s;
out:
    if (err != LADE_OK)
        OPENSSL_cleanse(out, LADE_AUTH_TOKEN_CHARS + 1);
    OPENSSL_cleanse(raw, sizeof raw);
    return err;
}

lade_err lade_auth_token_check(struct lade_store *st, const char *token, size_t len, int64_t now_s,
                               int64_t *user_id_out, uint32_t *roles_out)
{
    uint8_t hash[LADE_STORE_TOKEN_HASH_LEN];
    struct lade_store_user u;
    int64_t uid = 0, exp = 0;
    lade_err err;
    if (user_id_out)
        *user_id_out = 0;
    if (roles_out)
        *roles_out = 0;
    if (!st)
        return LADE_ERR_INVAL;
    if (!token_form_ok(token, len))
        return LADE_ERR_AUTH;
    if ((err = lade_auth_token_hash(token, len, hash)) != LADE_OK)
        return err;
    err = lade_store_token_get(st, hash, now_s, &uid, &exp);
    if (err == LADE_ERR_NOT_FOUND)
        return LADE_ERR_AUTH;
    if (err != LADE_OK)
        return err;
    err = lade_store_user_get(st, uid, &u);
    if (err == LADE_ERR_NOT_FOUND)
        return LADE_ERR_AUTH;
    if (err != LADE_OK)
        return err;
    if (user_id_out)
        *user_id_out = uid;
    if (roles_out)
        *roles_out = u.roles;
    OPENSSL_cleanse(u.password_hash, sizeof u.password_hash);
    return LADE_OK;
}

lade_err lade_auth_token_revoke(struct lade_store *st, const char *token, size_t len)
{
    uint8_t hash[LADE_STORE_TOKEN_HASH_LEN];
    lade_err err;
    if (!st)
        return LADE_ERR_INVAL;
    if (!token_form_ok(token, len))
        return LADE_ERR_AUTH;
    if ((err = lade_auth_token_hash(token, len, hash)) != LADE_OK)
        return err;
    err = lade_store_token_revoke(st, hash);
    return err == LADE_ERR_NOT_FOUND ? LADE_ERR_AUTH : err;
}

lade_err lade_auth_login(struct lade_store *st, const char *username, const char *password,
                         size_t password_len, int64_t now_s, int64_t ttl_s,
                         const struct lade_auth_kdf *kdf, char out[LADE_AUTH_TOKEN_CHARS + 1],
                         int64_t *expires_s_out, int64_t *user_id_out)
{
    struct lade_store_user u;
    char rehash[LADE_AUTH_HASH_STR_SIZE];
    lade_err err;
    if (user_id_out)
        *user_id_out = 0;
    if (expires_s_out)
        *expires_s_out = 0;
    if (!st || !out || !username || !password_ok(password, password_len) || (kdf && !kdf_ok(kdf)))
        return LADE_ERR_INVAL;
    out[0] = '\0';
    err = lade_store_user_get_by_name(st, username, &u);
    if (err == LADE_ERR_NOT_FOUND) {
        /* The same work as a real check, so the answer's timing does not tell that the user
         * does not exist. */
        if (lade_auth_hash_password(password, password_len, kdf, rehash, sizeof rehash) ==
            LADE_ERR_CRYPTO)
            return LADE_ERR_CRYPTO;
        OPENSSL_cleanse(rehash, sizeof rehash);
        return LADE_ERR_AUTH;
    }
    if (err != LADE_OK)
        return err;
    err = lade_auth_verify_password(password, password_len, u.password_hash);
    if (err == LADE_ERR_INVAL) {
        LOG_E(MOD, "user %lld: stored password hash is malformed; login refused", (long long)u.id);
        err = LADE_ERR_AUTH;
    }
    if (err != LADE_OK)
        goto out;
    /* Parameters raised since this hash was made: store a new one (best effort). */
    if (lade_auth_needs_rehash(u.password_hash, kdf) &&
        lade_auth_hash_password(password, password_len, kdf, rehash, sizeof rehash) == LADE_OK) {
        snprintf(u.password_hash, sizeof u.password_hash, "%s", rehash);
        if (lade_store_user_update(st, &u) == LADE_OK)
            LOG_I(MOD, "user %lld: password hash upgraded", (long long)u.id);
        OPENSSL_cleanse(rehash, sizeof rehash);
    }
    if ((err = lade_auth_token_issue(st, u.id, now_s, ttl_s, out, expires_s_out)) != LADE_OK)
        goto out;
    if (user_id_out)
        *user_id_out = u.id;
out:
    OPENSSL_cleanse(u.password_hash, sizeof u.password_hash);
    return err;
}

/* ---- rate limiter ---- */

#define RL_KEY_LEN 16 /* bytes of SHA-256(key) kept per bucket */
#define RL_WINDOW  8  /* slots a key may live in: bounds the work per call */

struct rl_slot {
    uint8_t key[RL_KEY_LEN];
    bool used;
    uint64_t last_ms;   /* last refill */
    uint64_t credit_ms; /* 0..burst * refill_ms; a request costs refill_ms */
};

struct lade_ratelimit {
    struct lade_ratelimit_config cfg;
    uint64_t full_ms; /* burst * refill_ms */
    struct rl_slot *slots;
    struct lade_ratelimit_stats st;
};

lade_err lade_ratelimit_new(const struct lade_ratelimit_config *cfg, struct lade_ratelimit **out)
{
    if (!out)
        return LADE_ERR_INVAL;
    *out = NULL;
    if (!cfg || cfg->burst < 1 || cfg->burst > 1000000 || cfg->refill_ms < 1 ||
        cfg->refill_ms > 86400000u || cfg->max_keys < 1 || cfg->max_keys > (1u << 24))
        return LADE_ERR_INVAL;
    struct lade_ratelimit *rl = calloc(1, sizeof *rl);
    if (!rl)
        return LADE_ERR_NOMEM;
    rl->slots = calloc(cfg->max_keys, sizeof *rl->slots);
    if (!rl->slots) {
        free(rl);
        return LADE_ERR_NOMEM;
    }
    rl->cfg = *cfg;
    rl->full_ms = (uint64_t)cfg->burst * cfg->refill_ms;
    *out = rl;
    return LADE_OK;
}

void lade_ratelimit_free(struct lade_ratelimit *rl)
{
    if (!rl)
        return;
    free(rl->slots);
    free(rl);
}

/* Credit after refilling up to now (never more than a full bucket). */
static uint64_t rl_credit(const struct lade_ratelimit *rl, const struct rl_slot *s, uint64_t now_ms)
{
    uint64_t elapsed = now_ms > s->last_ms ? now_ms - s->last_ms : 0;
    uint64_t c = s->credit_ms + elapsed;
    return c < s->credit_ms || c > rl->full_ms ? rl->full_ms : c;
}

/* The slot for key: its own, a free one, a full one, or the least recently used. */
static struct rl_slot *rl_find(struct lade_ratelimit *rl, const uint8_t key[RL_KEY_LEN],
                               uint64_t now_ms)
{
    uint32_t n = rl->cfg.max_keys, window = n < RL_WINDOW ? n : RL_WINDOW;
    uint64_t h = 0;
    memcpy(&h, key, sizeof h);
    uint32_t start = (uint32_t)(h % n);
    struct rl_slot *free_slot = NULL, *full = NULL, *oldest = NULL;
    for (uint32_t i = 0; i < window; i++) {
        struct rl_slot *s = &rl->slots[(start + i) % n];
        if (!s->used) {
            if (!free_slot)
                free_slot = s;
            continue;
        }
        if (memcmp(s->key, key, RL_KEY_LEN) == 0)
            return s;
        if (!full && rl_credit(rl, s, now_ms) >= rl->full_ms)
            full = s;
        if (!oldest || s->last_ms < oldest->last_ms)
            oldest = s;
    }
    struct rl_slot *s = free_slot ? free_slot : full ? full : oldest;
    if (s->used) {
        rl->st.evicted++;
        if (s != full)
            rl->st.evicted_owing++;
    } else {
        rl->st.keys++;
    }
    memcpy(s->key, key, RL_KEY_LEN);
    s->used = true;
    s->last_ms = now_ms;
    s->credit_ms = rl->full_ms; /* a new key starts with a full bucket */
    return s;
}

uint32_t lade_ratelimit_take(struct lade_ratelimit *rl, const void *key, size_t key_len,
                             uint64_t now_ms)
{
    uint8_t digest[SHA256_DIGEST_LENGTH];
    if (!rl)
        return 1;
    if (!key)
        key_len = 0;
    if (!SHA256(key ? key : (const void *)"", key_len, digest))
        memset(digest, 0, sizeof digest); /* fail closed: one shared bucket */
    struct rl_slot *s = rl_find(rl, digest, now_ms);
    s->credit_ms = rl_credit(rl, s, now_ms);
    if (now_ms > s->last_ms)
        s->last_ms = now_ms;
    if (s->credit_ms >= rl->cfg.refill_ms) {
        s->credit_ms -= rl->cfg.refill_ms;
        rl->st.allowed++;
        return 0;
    }
    rl->st.limited++;
    uint64_t wait_ms = rl->cfg.refill_ms - s->credit_ms;
    uint64_t wait_s = (wait_ms + 999) / 1000;
    return wait_s < 1 ? 1 : wait_s > UINT32_MAX ? UINT32_MAX : (uint32_t)wait_s;
}

void lade_ratelimit_stats(const struct lade_ratelimit *rl, struct lade_ratelimit_stats *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (rl)
        *out = rl->st;
}
