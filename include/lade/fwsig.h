/* lade — firmware signatures: Ed25519 over the manifest's signed bytes, pinned raw public keys,
 * key ids, signing keys for lade-fw, and streaming SHA-256 for images. OpenSSL 3 (EVP);
 * implemented in src/port/linux/fwsig.c. docs/firmware.md "Keys".
 *
 * No X.509, no certificate, no date anywhere on this path: a key is 32 raw bytes pinned in the
 * charger's factory settings, and nothing here reads a clock, so an expired certificate or a
 * clock set to 1970 or 2100 cannot stop (or enable) an update.
 *
 * Key id: the first 8 bytes of SHA-256(raw public key), 16 lower-case hex digits. It only
 * selects which pinned key must verify a manifest; it is part of the signed bytes, so it cannot
 * be changed without breaking the signature.
 */
#ifndef LADE_FWSIG_H
#define LADE_FWSIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lade/err.h"
#include "lade/fwmanifest.h"

#define LADE_FWSIG_PUB_LEN     32 /* raw Ed25519 public key */
#define LADE_FWSIG_PUB_B64_LEN 44
#define LADE_FWSIG_KEYS_MAX    2 /* current + next (rotation) */

struct lade_fwsig_key {
    uint8_t pub[LADE_FWSIG_PUB_LEN];
    char id[LADE_FWM_KEY_ID_LEN + 1]; /* NUL-terminated */
};

/* The pinned keys of a device (at most two). Zero-initialise, then add. */
struct lade_fwsig_keys {
    size_t n;
    struct lade_fwsig_key k[LADE_FWSIG_KEYS_MAX];
};

/* id = hex(SHA-256(pub)[0..8)), NUL-terminated. Errors: INVAL, CRYPTO. */
lade_err lade_fwsig_key_id(const uint8_t pub[LADE_FWSIG_PUB_LEN],
                           char id[LADE_FWM_KEY_ID_LEN + 1]) LADE_MUST_CHECK;

/* Adds one key given as strict Base64 of 32 bytes (b64 of n bytes, no spaces).
 * Errors: LADE_ERR_CONFIG (not Base64 of 32 bytes), LADE_ERR_EXISTS (same key id already
 * pinned), LADE_ERR_FULL (already two keys), LADE_ERR_INVAL (NULL), LADE_ERR_CRYPTO. */
lade_err lade_fwsig_keys_add_b64(struct lade_fwsig_keys *ks, const char *b64,
                                 size_t n) LADE_MUST_CHECK;
/* Parses "B64" or "B64,B64" (the settings / --pubkey form) into a fresh *ks; an empty list is
 * LADE_ERR_CONFIG. Errors as lade_fwsig_keys_add_b64. */
lade_err lade_fwsig_keys_parse(const char *list, struct lade_fwsig_keys *ks) LADE_MUST_CHECK;

/* Verifies a parsed manifest: the pinned key whose id equals m->key_id must verify m->sig over
 * lade_fwm_signed_bytes(m). Only that key is tried.
 *   LADE_OK
 *   LADE_ERR_AUTH    KEY_UNKNOWN (no pinned key has that id) or BAD_SIGNATURE
 *   LADE_ERR_INVAL   NULL, no keys, or a manifest that was not parsed (no signed bytes)
 *   LADE_ERR_CRYPTO  OpenSSL failed (not a verdict on the manifest) */
lade_err lade_fwsig_verify(const struct lade_fwsig_keys *ks, const struct lade_fwm *m,
                           struct lade_fwm_diag *diag) LADE_MUST_CHECK;

/* The whole acceptance of a manifest, in the only safe order: parse, verify the signature, then
 * check the (now trusted) fields: lade_fwm_check(m, hw_id, installed_counter). hw_id NULL skips
 * the hardware comparison only (tools; a charger always passes its own id); the downgrade check
 * is always made. On success *m views buf; on error it is zeroed. Errors: those of the three
 * steps; diag says which reason and, for parse errors, which line. */
lade_err lade_fwsig_accept(const struct lade_fwsig_keys *ks, const char *buf, size_t len,
                           const char *hw_id, uint32_t installed_counter, struct lade_fwm *m,
                           struct lade_fwm_diag *diag) LADE_MUST_CHECK;

/* ------------------------------------------------------------ signing (lade-fw) */

/* A private signing key in memory (opaque; owns an OpenSSL key). */
struct lade_fwsig_signer;

/* Generates a new Ed25519 key and writes it to path as unencrypted PKCS#8 PEM, created with
 * O_EXCL and mode 0600 (an existing file is never overwritten). pub receives the public key.
 * Errors: LADE_ERR_EXISTS (path exists), LADE_ERR_IO, LADE_ERR_CRYPTO, LADE_ERR_INVAL. */
lade_err lade_fwsig_keygen(const char *path, uint8_t pub[LADE_FWSIG_PUB_LEN]) LADE_MUST_CHECK;
/* Loads a PEM private key written by lade_fwsig_keygen. A key file readable or writable by
 * group or others is refused (LADE_ERR_AUTH), like ssh does; an encrypted or non-Ed25519 key is
 * LADE_ERR_CONFIG; a missing file LADE_ERR_NOT_FOUND; other read errors LADE_ERR_IO. */
lade_err lade_fwsig_signer_load(const char *path, struct lade_fwsig_signer **out) LADE_MUST_CHECK;
/* A signer from a raw 32-byte Ed25519 private key (tests, fixed vectors). */
lade_err lade_fwsig_signer_from_raw(const uint8_t priv[32],
                                    struct lade_fwsig_signer **out) LADE_MUST_CHECK;
/* The signer's public key and its key id (NUL-terminated). */
lade_err lade_fwsig_signer_public(const struct lade_fwsig_signer *s,
                                  uint8_t pub[LADE_FWSIG_PUB_LEN],
                                  char id[LADE_FWM_KEY_ID_LEN + 1]) LADE_MUST_CHECK;
/* sig = Ed25519(private key, msg[0..n)). Errors: INVAL, CRYPTO. */
lade_err lade_fwsig_sign(const struct lade_fwsig_signer *s, const void *msg, size_t n,
                         uint8_t sig[LADE_FWM_SIG_LEN]) LADE_MUST_CHECK;
/* Frees the key (OpenSSL clears it); NULL is fine. */
void lade_fwsig_signer_free(struct lade_fwsig_signer *s);

/* ------------------------------------------------------------ SHA-256, streaming */

/* Hash an image as it arrives (the downloader) or from a file (lade-fw). len counts the bytes
 * fed. init allocates an OpenSSL context: every successful init needs a final or a free. */
struct lade_fwsig_hash {
    void *ctx; /* EVP_MD_CTX */
    uint64_t len;
};
lade_err lade_fwsig_hash_init(struct lade_fwsig_hash *h) LADE_MUST_CHECK;
lade_err lade_fwsig_hash_update(struct lade_fwsig_hash *h, const void *p, size_t n) LADE_MUST_CHECK;
/* Writes the digest and frees the context (also on error). */
lade_err lade_fwsig_hash_final(struct lade_fwsig_hash *h,
                               uint8_t out[LADE_FWM_SHA256_LEN]) LADE_MUST_CHECK;
/* Frees the context without a digest (abandoned download); safe after final or twice. */
void lade_fwsig_hash_free(struct lade_fwsig_hash *h);

#endif
