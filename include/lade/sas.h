/* lade — Azure IoT Hub shared access signature (SAS) tokens: build, parse, verify.
 *
 * Pure: no I/O, no clock (the caller passes now_s), no allocation. HMAC-SHA256 comes from
 * OpenSSL. See reference/iothub.md ("SAS token") and docs/hub.md.
 *
 * Token form: "SharedAccessSignature sr={resource}&sig={signature}&se={expiry}[&skn={name}]"
 *   resource  = URL-encoded "{hub}/devices/{id}" (device key) or "{hub}" (service key, skn set)
 *   signature = URL-encoded Base64(HMAC-SHA256(key, sr-as-sent + "\n" + se-as-sent))
 *   expiry    = seconds since the Unix epoch (UTC), decimal
 * Keys are raw bytes (the Base64 "primary key" of the portal, already decoded).
 */
#ifndef LADE_SAS_H
#define LADE_SAS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lade/codec.h"
#include "lade/err.h"

#define LADE_SAS_PREFIX       "SharedAccessSignature "
#define LADE_SAS_SIG_LEN      32   /* HMAC-SHA256 output bytes */
#define LADE_SAS_SIG_B64_LEN  44   /* Base64 of 32 bytes, without NUL */
#define LADE_SAS_KEY_MAX      128  /* largest key accepted (bytes) */
#define LADE_SAS_TOKEN_MAX    1024 /* longest token the parser accepts (characters) */
#define LADE_SAS_RESOURCE_MAX 512  /* longest sr value accepted (characters, as sent) */

/* A parsed token. Views point into the token passed to lade_sas_parse (the caller keeps it
 * alive while the struct is used); sig is decoded. */
struct lade_sas {
    struct lade_str sr;  /* resource exactly as sent (still URL-encoded) */
    struct lade_str se;  /* expiry text exactly as sent */
    struct lade_str skn; /* key name as sent; {NULL, 0} when absent */
    int64_t expiry_s;    /* se as a number */
    uint8_t sig[LADE_SAS_SIG_LEN];
};

/* out_b64 = Base64(HMAC-SHA256(key, msg)), NUL-terminated; needs cap > 44.
 * Errors: INVAL (key_len 0 or > LADE_SAS_KEY_MAX, NULL args), NOSPACE, CRYPTO. */
lade_err lade_sas_sign(const uint8_t *key, size_t key_len, const void *msg, size_t msg_len,
                       char *out_b64, size_t cap, size_t *len) LADE_MUST_CHECK;

/* Upper bound of the token length (without NUL) lade_sas_token_build produces for these
 * arguments; a buffer of this + 1 bytes always suffices. */
size_t lade_sas_token_max_len(const char *hub_host, const char *device_id, const char *skn);

/* Builds a token. device_id non-NULL: sr = urlencode("{hub}/devices/{id}"); device_id NULL:
 * sr = urlencode("{hub}") (service tokens). skn non-NULL appends "&skn={urlencode(skn)}".
 * Output is NUL-terminated; *len excludes the NUL. Byte-exact with Azure's SDKs.
 * Errors: INVAL (empty host/id, expiry_s < 0, bad key), NOSPACE (nothing truncated), CRYPTO. */
lade_err lade_sas_token_build(const char *hub_host, const char *device_id, const uint8_t *key,
                              size_t key_len, int64_t expiry_s, const char *skn, char *out,
                              size_t cap, size_t *len) LADE_MUST_CHECK;

/* Parses a token of len bytes (need not be NUL-terminated). Parameters may come in any order.
 * LADE_ERR_INVAL for: missing prefix, len > LADE_SAS_TOKEN_MAX, a parameter without '=',
 * an empty value, unknown or duplicate keys, missing sr/sig/se, a NUL or control character or
 * space in a value, sr longer than LADE_SAS_RESOURCE_MAX, sig that is not URL-encoded strict
 * Base64 of exactly 32 bytes, se that is not a strict decimal (digits only, no sign, no leading
 * zero, fits int64). On error *out is zeroed. */
lade_err lade_sas_parse(const char *token, size_t len, struct lade_sas *out) LADE_MUST_CHECK;

/* Verifies a parsed token:
 *   1. signature: HMAC(key, sr-as-sent "\n" se-as-sent) compared in constant time → AUTH
 *   2. expiry: expiry_s <= now_s → EXPIRED
 *   3. policy: max_ttl_s > 0 and expiry_s - now_s > max_ttl_s → AUTH (a token valid for longer
 *      than the hub allows is refused, so a leaked token cannot live for years)
 *   4. resource: sr URL-decoded (raw '/', "%2F" and "%2f" all accepted) must equal
 *      expected_resource ("{hub}/devices/{id}" or "{hub}"); the host part (up to the first '/')
 *      is compared case-insensitively, the rest exactly → AUTH
 * Returns LADE_OK, LADE_ERR_AUTH, LADE_ERR_EXPIRED, LADE_ERR_INVAL (bad arguments) or
 * LADE_ERR_CRYPTO. */
lade_err lade_sas_verify(const struct lade_sas *tok, const uint8_t *key, size_t key_len,
                         int64_t now_s, int64_t max_ttl_s,
                         const char *expected_resource) LADE_MUST_CHECK;

/* Group enrollment (DPS symmetric-key groups): device key = HMAC-SHA256(group_key, device_id).
 * out receives LADE_SAS_SIG_LEN raw bytes. */
lade_err lade_sas_derive_key(const uint8_t *group_key, size_t group_key_len, const char *device_id,
                             uint8_t out[LADE_SAS_SIG_LEN]) LADE_MUST_CHECK;

#endif
