/* Firmware signatures with OpenSSL 3 (include/lade/fwsig.h, docs/firmware.md "Keys").
 *
 * Ed25519 (RFC 8032) because it has no parameters to get wrong, deterministic signatures (no
 * per-signature randomness that a weak RNG could leak the key through), 32-byte public keys that
 * fit a settings line, and it is what MCUboot, TUF and signify use. Raw keys, not certificates:
 * nothing on this path has a validity period, so no clock can make a good image unverifiable
 * (reference/firmware.md: expired signing certificates left fleets unable to update). */
#include "lade/fwsig.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "lade/codec.h"

struct lade_fwsig_signer {
    EVP_PKEY *pkey;
};

lade_err lade_fwsig_key_id(const uint8_t pub[LADE_FWSIG_PUB_LEN], char id[LADE_FWM_KEY_ID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t d[EVP_MAX_MD_SIZE];
    unsigned int dn = 0;
    if (!pub || !id)
        return LADE_ERR_INVAL;
    if (EVP_Digest(pub, LADE_FWSIG_PUB_LEN, d, &dn, EVP_sha256(), NULL) != 1 || dn != 32) {
        ERR_clear_error();
        return LADE_ERR_CRYPTO;
    }
    for (size_t i = 0; i < LADE_FWM_KEY_ID_LEN / 2; i++) {
        id[2 * i] = hex[d[i] >> 4];
        id[2 * i + 1] = hex[d[i] & 15];
    }
    id[LADE_FWM_KEY_ID_LEN] = 0;
    return LADE_OK;
}

lade_err lade_fwsig_keys_add_b64(struct lade_fwsig_keys *ks, const char *b64, size_t n)
{
    if (!ks || !b64)
        return LADE_ERR_INVAL;
    struct lade_fwsig_key k;
    size_t got = 0;
    if (n != LADE_FWSIG_PUB_B64_LEN ||
        lade_base64_decode(b64, n, k.pub, sizeof k.pub, &got) != LADE_OK ||
        got != LADE_FWSIG_PUB_LEN)
        return LADE_ERR_CONFIG;
    lade_err err = lade_fwsig_key_id(k.pub, k.id);
    if (err)
        return err;
    for (size_t i = 0; i < ks->n; i++)
        if (strcmp(ks->k[i].id, k.id) == 0)
            return LADE_ERR_EXISTS;
    if (ks->n >= LADE_FWSIG_KEYS_MAX)
        return LADE_ERR_FULL;
    ks->k[ks->n++] = k;
    return LADE_OK;
}

lade_err lade_fwsig_keys_parse(const char *list, struct lade_fwsig_keys *ks)
{
    if (!list || !ks)
        return LADE_ERR_INVAL;
    memset(ks, 0, sizeof *ks);
    if (!*list)
        return LADE_ERR_CONFIG;
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        lade_err err = lade_fwsig_keys_add_b64(ks, p, n);
        if (err) {
            memset(ks, 0, sizeof *ks);
            return err;
        }
        if (!comma)
            return LADE_OK;
        p = comma + 1;
    }
}

static lade_err refuse(struct lade_fwm_diag *diag, lade_err err, enum lade_fwm_reason r)
{
    if (diag) {
        diag->reason = r;
        diag->line = 0;
    }
    return err;
}

lade_err lade_fwsig_verify(const struct lade_fwsig_keys *ks, const struct lade_fwm *m,
                           struct lade_fwm_diag *diag)
{
    if (diag)
        *diag = (struct lade_fwm_diag){0};
    if (!ks || !m || ks->n == 0 || ks->n > LADE_FWSIG_KEYS_MAX)
        return LADE_ERR_INVAL;
    struct lade_str msg = lade_fwm_signed_bytes(m);
    if (!msg.p || msg.n == 0)
        return LADE_ERR_INVAL;
    if (!m->has_sig)
        return refuse(diag, LADE_ERR_AUTH, LADE_FWM_R_UNSIGNED);
    const struct lade_fwsig_key *key = NULL;
    for (size_t i = 0; i < ks->n; i++)
        if (lade_str_eq_c(m->key_id, ks->k[i].id))
            key = &ks->k[i];
    if (!key)
        return refuse(diag, LADE_ERR_AUTH, LADE_FWM_R_KEY_UNKNOWN);

    lade_err err = LADE_ERR_CRYPTO;
    EVP_MD_CTX *ctx = NULL;
    EVP_PKEY *pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, key->pub, sizeof key->pub);
    if (!pkey || !(ctx = EVP_MD_CTX_new()) ||
        EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) != 1)
        goto out;
    /* 1: good; 0: does not verify; < 0: malformed signature or point (also a refusal). */
    if (EVP_DigestVerify(ctx, m->sig, sizeof m->sig, (const unsigned char *)msg.p, msg.n) == 1)
        err = LADE_OK;
    else
        err = refuse(diag, LADE_ERR_AUTH, LADE_FWM_R_BAD_SIGNATURE);
out:
    ERR_clear_error();
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    return err;
}

lade_err lade_fwsig_accept(const struct lade_fwsig_keys *ks, const char *buf, size_t len,
                           const char *hw_id, uint32_t installed_counter, struct lade_fwm *m,
                           struct lade_fwm_diag *diag)
{
    if (!ks || !m)
        return LADE_ERR_INVAL;
    lade_err err = lade_fwm_parse(buf, len, m, diag);
    if (err)
        return err;
    /* Nothing in the manifest is looked at before the signature holds: a forged manifest must
     * be reported as forged, not as "wrong hardware". */
    err = lade_fwsig_verify(ks, m, diag);
    if (!err && hw_id)
        err = lade_fwm_check(m, hw_id, installed_counter, diag);
    else if (!err && m->security_counter < installed_counter)
        err = refuse(diag, LADE_ERR_STATE, LADE_FWM_R_DOWNGRADE);
    if (err)
        memset(m, 0, sizeof *m);
    return err;
}

/* ------------------------------------------------------------ signing */

static lade_err signer_wrap(EVP_PKEY *pkey, struct lade_fwsig_signer **out)
{
    struct lade_fwsig_signer *s = OPENSSL_zalloc(sizeof *s);
    if (!s) {
        EVP_PKEY_free(pkey);
        return LADE_ERR_NOMEM;
    }
    s->pkey = pkey;
    *out = s;
    return LADE_OK;
}

static lade_err raw_public(EVP_PKEY *pkey, uint8_t pub[LADE_FWSIG_PUB_LEN])
{
    size_t n = LADE_FWSIG_PUB_LEN;
    if (EVP_PKEY_get_raw_public_key(pkey, pub, &n) != 1 || n != LADE_FWSIG_PUB_LEN) {
        ERR_clear_error();
        return LADE_ERR_CRYPTO;
    }
    return LADE_OK;
}

lade_err lade_fwsig_keygen(const char *path, uint8_t pub[LADE_FWSIG_PUB_LEN])
{
    if (!path || !*path || !pub)
        return LADE_ERR_INVAL;
    lade_err err = LADE_ERR_CRYPTO;
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (!pkey) {
        ERR_clear_error();
        return LADE_ERR_CRYPTO;
    }
    if ((err = raw_public(pkey, pub)) != LADE_OK)
        goto out_key;
    /* O_EXCL: never replace a key (an overwritten signing key is a fleet that can no longer be
     * updated); 0600 from the first byte, whatever the umask. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        err = errno == EEXIST ? LADE_ERR_EXISTS : LADE_ERR_IO;
        goto out_key;
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        err = LADE_ERR_IO;
        goto out_unlink;
    }
    err = LADE_OK;
    if (fchmod(fd, 0600) != 0 || PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) != 1 ||
        fflush(f) != 0 || fsync(fd) != 0)
        err = LADE_ERR_IO;
    if (fclose(f) != 0)
        err = LADE_ERR_IO;
    if (err == LADE_OK)
        goto out_key;
out_unlink:
    unlink(path);
out_key : {
    int saved = errno; /* callers report strerror(errno) for LADE_ERR_IO */
    ERR_clear_error();
    EVP_PKEY_free(pkey);
    errno = saved;
}
    return err;
}

/* No passphrase prompt ever (a tool in a pipeline must not hang on a terminal). */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

lade_err lade_fwsig_signer_load(const char *path, struct lade_fwsig_signer **out)
{
    if (!path || !out)
        return LADE_ERR_INVAL;
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? LADE_ERR_NOT_FOUND : LADE_ERR_IO;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return LADE_ERR_IO;
    }
    if (st.st_mode & 077) {
        close(fd);
        return LADE_ERR_AUTH;
    }
    FILE *f = fdopen(fd, "r");
    if (!f) {
        close(fd);
        return LADE_ERR_IO;
    }
    EVP_PKEY *pkey = PEM_read_PrivateKey(f, NULL, no_passphrase, NULL);
    fclose(f);
    ERR_clear_error();
    if (!pkey)
        return LADE_ERR_CONFIG;
    if (EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519) {
        EVP_PKEY_free(pkey);
        return LADE_ERR_CONFIG;
    }
    return signer_wrap(pkey, out);
}

lade_err lade_fwsig_signer_from_raw(const uint8_t priv[32], struct lade_fwsig_signer **out)
{
    if (!priv || !out)
        return LADE_ERR_INVAL;
    *out = NULL;
    EVP_PKEY *pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, priv, 32);
    if (!pkey) {
        ERR_clear_error();
        return LADE_ERR_CRYPTO;
    }
    return signer_wrap(pkey, out);
}

lade_err lade_fwsig_signer_public(const struct lade_fwsig_signer *s,
                                  uint8_t pub[LADE_FWSIG_PUB_LEN], char id[LADE_FWM_KEY_ID_LEN + 1])
{
    if (!s || !pub || !id)
        return LADE_ERR_INVAL;
    lade_err err = raw_public(s->pkey, pub);
    return err ? err : lade_fwsig_key_id(pub, id);
}

lade_err lade_fwsig_sign(const struct lade_fwsig_signer *s, const void *msg, size_t n,
                         uint8_t sig[LADE_FWM_SIG_LEN])
{
    if (!s || (!msg && n) || !sig)
        return LADE_ERR_INVAL;
    lade_err err = LADE_ERR_CRYPTO;
    size_t sn = LADE_FWM_SIG_LEN;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx && EVP_DigestSignInit(ctx, NULL, NULL, NULL, s->pkey) == 1 &&
        EVP_DigestSign(ctx, sig, &sn, msg ? msg : (const void *)"", n) == 1 &&
        sn == LADE_FWM_SIG_LEN)
        err = LADE_OK;
    ERR_clear_error();
    EVP_MD_CTX_free(ctx);
    return err;
}

void lade_fwsig_signer_free(struct lade_fwsig_signer *s)
{
    if (!s)
        return;
    EVP_PKEY_free(s->pkey);
    OPENSSL_free(s);
}

/* ------------------------------------------------------------ SHA-256 */

lade_err lade_fwsig_hash_init(struct lade_fwsig_hash *h)
{
    if (!h)
        return LADE_ERR_INVAL;
    h->len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return LADE_ERR_NOMEM;
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        ERR_clear_error();
        h->ctx = NULL;
        return LADE_ERR_CRYPTO;
    }
    h->ctx = ctx;
    return LADE_OK;
}

lade_err lade_fwsig_hash_update(struct lade_fwsig_hash *h, const void *p, size_t n)
{
    if (!h || !h->ctx || (!p && n))
        return LADE_ERR_INVAL;
    if (n == 0)
        return LADE_OK;
    if (EVP_DigestUpdate(h->ctx, p, n) != 1) {
        ERR_clear_error();
        return LADE_ERR_CRYPTO;
    }
    h->len += n;
    return LADE_OK;
}

lade_err lade_fwsig_hash_final(struct lade_fwsig_hash *h, uint8_t out[LADE_FWM_SHA256_LEN])
{
    if (!h || !h->ctx || !out)
        return LADE_ERR_INVAL;
    unsigned int n = 0;
    lade_err err = LADE_OK;
    if (EVP_DigestFinal_ex(h->ctx, out, &n) != 1 || n != LADE_FWM_SHA256_LEN) {
        ERR_clear_error();
        err = LADE_ERR_CRYPTO;
    }
    lade_fwsig_hash_free(h);
    return err;
}

void lade_fwsig_hash_free(struct lade_fwsig_hash *h)
{
    if (!h)
        return;
    EVP_MD_CTX_free(h->ctx);
    h->ctx = NULL;
}
