/* SAS tokens (reference/iothub.md "SAS token"). Pure: no I/O, no clock, no malloc. */
#include "lade/sas.h"

#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

static lade_err hmac_sha256(const uint8_t *key, size_t key_len, const void *msg, size_t msg_len,
                            uint8_t out[LADE_SAS_SIG_LEN])
{
    unsigned int n = 0;
    if (!key || key_len == 0 || key_len > LADE_SAS_KEY_MAX || (!msg && msg_len))
        return LADE_ERR_INVAL;
    /* HMAC() with a NULL message pointer is fine for 0 bytes, but keep it non-NULL anyway. */
    if (!HMAC(EVP_sha256(), key, (int)key_len, msg ? msg : (const void *)"", msg_len, out, &n) ||
        n != LADE_SAS_SIG_LEN)
        return LADE_ERR_CRYPTO;
    return LADE_OK;
}

lade_err lade_sas_sign(const uint8_t *key, size_t key_len, const void *msg, size_t msg_len,
                       char *out_b64, size_t cap, size_t *len)
{
    uint8_t mac[LADE_SAS_SIG_LEN];
    if (!out_b64 || !len)
        return LADE_ERR_INVAL;
    lade_err err = hmac_sha256(key, key_len, msg, msg_len, mac);
    if (err == LADE_OK)
        err = lade_base64_encode(mac, sizeof mac, out_b64, cap, len);
    memset(mac, 0, sizeof mac);
    return err;
}

/* Decimal text of v (v >= 0) into buf (>= 21 bytes); returns the length. */
static size_t fmt_u64(uint64_t v, char *buf)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    buf[n] = 0;
    return n;
}

size_t lade_sas_token_max_len(const char *hub_host, const char *device_id, const char *skn)
{
    size_t n = strlen(LADE_SAS_PREFIX) + strlen("sr=") + strlen("&sig=") + strlen("&se=");
    n += hub_host ? lade_url_encoded_len(hub_host, strlen(hub_host)) : 0;
    if (device_id)
        n += strlen("%2Fdevices%2F") + lade_url_encoded_len(device_id, strlen(device_id));
    n += 3 * LADE_SAS_SIG_B64_LEN; /* every Base64 character percent-encoded, worst case */
    n += 20;                       /* INT64_MAX has 19 digits */
    if (skn)
        n += strlen("&skn=") + lade_url_encoded_len(skn, strlen(skn));
    return n;
}

/* Appends the n bytes at s to out at *pos, or fails without writing past cap - 1. */
static lade_err put(char *out, size_t cap, size_t *pos, const char *s, size_t n)
{
    if (n >= cap - *pos)
        return LADE_ERR_NOSPACE;
    memcpy(out + *pos, s, n);
    *pos += n;
    out[*pos] = 0;
    return LADE_OK;
}

static lade_err put_urlenc(char *out, size_t cap, size_t *pos, const char *s, size_t n)
{
    size_t w = 0;
    lade_err err = lade_url_encode(s, n, out + *pos, cap - *pos, &w);
    if (err == LADE_OK)
        *pos += w;
    return err;
}

lade_err lade_sas_token_build(const char *hub_host, const char *device_id, const uint8_t *key,
                              size_t key_len, int64_t expiry_s, const char *skn, char *out,
                              size_t cap, size_t *len)
{
    char resource[LADE_SAS_RESOURCE_MAX + 1];
    char se[24];
    char sig[LADE_SAS_SIG_B64_LEN + 1];
    lade_err err;

    if (!hub_host || !*hub_host || (device_id && !*device_id) || (skn && !*skn) || !out ||
        cap == 0 || !len || expiry_s < 0)
        return LADE_ERR_INVAL;
    *len = 0;
    out[0] = 0;

    /* The resource is URL-encoded once; the signature covers that encoded text. */
    size_t rn = 0;
    size_t hub_len = strlen(hub_host);
    if ((err = put_urlenc(resource, sizeof resource, &rn, hub_host, hub_len)) != LADE_OK)
        return err == LADE_ERR_NOSPACE ? LADE_ERR_INVAL : err;
    if (device_id) {
        if ((err = put(resource, sizeof resource, &rn, "%2Fdevices%2F", 13)) != LADE_OK ||
            (err = put_urlenc(resource, sizeof resource, &rn, device_id, strlen(device_id))) !=
                LADE_OK)
            return err == LADE_ERR_NOSPACE ? LADE_ERR_INVAL : err;
    }
    size_t sen = fmt_u64((uint64_t)expiry_s, se);

    /* message = resource + "\n" + expiry; bounded by the sizes above. */
    char msg[LADE_SAS_RESOURCE_MAX + 32];
    memcpy(msg, resource, rn);
    msg[rn] = '\n';
    memcpy(msg + rn + 1, se, sen);
    size_t sig_len = 0;
    if ((err = lade_sas_sign(key, key_len, msg, rn + 1 + sen, sig, sizeof sig, &sig_len)) !=
        LADE_OK)
        return err;

    size_t pos = 0;
    if ((err = put(out, cap, &pos, LADE_SAS_PREFIX "sr=", strlen(LADE_SAS_PREFIX "sr="))) ||
        (err = put(out, cap, &pos, resource, rn)) || (err = put(out, cap, &pos, "&sig=", 5)) ||
        (err = put_urlenc(out, cap, &pos, sig, sig_len)) ||
        (err = put(out, cap, &pos, "&se=", 4)) || (err = put(out, cap, &pos, se, sen)))
        goto out;
    if (skn && ((err = put(out, cap, &pos, "&skn=", 5)) ||
                (err = put_urlenc(out, cap, &pos, skn, strlen(skn)))))
        goto out;
    *len = pos;
out:
    if (err != LADE_OK) {
        out[0] = 0;
        *len = 0;
    }
    memset(sig, 0, sizeof sig);
    return err;
}

/* A value may not be empty nor contain control characters, space, DEL or '&' (already split). */
static bool value_ok(const char *p, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c <= 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

static bool parse_decimal(const char *p, size_t n, int64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 19 || (p[0] == '0' && n > 1))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(p[i] - '0'); /* 19 digits cannot overflow uint64 */
    }
    if (v > (uint64_t)INT64_MAX)
        return false;
    *out = (int64_t)v;
    return true;
}

static bool parse_sig(const char *p, size_t n, uint8_t out[LADE_SAS_SIG_LEN])
{
    char dec[3 * LADE_SAS_SIG_B64_LEN + 1];
    uint8_t raw[LADE_SAS_SIG_LEN + 3];
    size_t dn = 0, rn = 0;
    if (n > 3 * LADE_SAS_SIG_B64_LEN)
        return false;
    if (lade_url_decode(p, n, dec, sizeof dec, &dn) != LADE_OK || dn != LADE_SAS_SIG_B64_LEN)
        return false;
    if (lade_base64_decode(dec, dn, raw, sizeof raw, &rn) != LADE_OK || rn != LADE_SAS_SIG_LEN)
        return false;
    memcpy(out, raw, LADE_SAS_SIG_LEN);
    return true;
}

lade_err lade_sas_parse(const char *token, size_t len, struct lade_sas *out)
{
    static const char prefix[] = LADE_SAS_PREFIX;
    const size_t plen = sizeof prefix - 1;
    bool have_sr = false, have_sig = false, have_se = false, have_skn = false;

    if (!out)
        return LADE_ERR_INVAL;
    memset(out, 0, sizeof *out);
    if (!token || len > LADE_SAS_TOKEN_MAX || len <= plen || memcmp(token, prefix, plen) != 0)
        return LADE_ERR_INVAL;

    const char *p = token + plen;
    const char *end = token + len;
    while (p <= end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        if (!eq)
            goto bad;
        struct lade_str k = {p, (size_t)(eq - p)};
        struct lade_str v = {eq + 1, (size_t)(pe - eq - 1)};
        if (!value_ok(v.p, v.n))
            goto bad;
        if (lade_str_eq_c(k, "sr")) {
            if (have_sr || v.n > LADE_SAS_RESOURCE_MAX)
                goto bad;
            have_sr = true;
            out->sr = v;
        } else if (lade_str_eq_c(k, "sig")) {
            if (have_sig || !parse_sig(v.p, v.n, out->sig))
                goto bad;
            have_sig = true;
        } else if (lade_str_eq_c(k, "se")) {
            if (have_se || !parse_decimal(v.p, v.n, &out->expiry_s))
                goto bad;
            have_se = true;
            out->se = v;
        } else if (lade_str_eq_c(k, "skn")) {
            if (have_skn)
                goto bad;
            have_skn = true;
            out->skn = v;
        } else {
            goto bad;
        }
        if (!amp)
            break;
        p = amp + 1;
    }
    if (have_sr && have_sig && have_se)
        return LADE_OK;
bad:
    memset(out, 0, sizeof *out);
    return LADE_ERR_INVAL;
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* decoded == expected, with the host part (up to the first '/') compared case-insensitively. */
static bool resource_matches(const char *decoded, size_t dn, const char *expected)
{
    size_t en = strlen(expected);
    if (dn != en)
        return false;
    const char *slash = memchr(expected, '/', en);
    size_t host_n = slash ? (size_t)(slash - expected) : en;
    for (size_t i = 0; i < host_n; i++)
        if (lower(decoded[i]) != lower(expected[i]))
            return false;
    return memcmp(decoded + host_n, expected + host_n, en - host_n) == 0;
}

lade_err lade_sas_verify(const struct lade_sas *tok, const uint8_t *key, size_t key_len,
                         int64_t now_s, int64_t max_ttl_s, const char *expected_resource)
{
    char msg[LADE_SAS_RESOURCE_MAX + 32];
    uint8_t mac[LADE_SAS_SIG_LEN];
    char decoded[LADE_SAS_RESOURCE_MAX + 1];
    size_t dn = 0;
    lade_err err;

    if (!tok || !tok->sr.p || !tok->se.p || tok->sr.n > LADE_SAS_RESOURCE_MAX || tok->se.n > 20 ||
        !expected_resource)
        return LADE_ERR_INVAL;

    /* 1. Signature over sr exactly as received (clients differ in how they encode '/'). */
    memcpy(msg, tok->sr.p, tok->sr.n);
    msg[tok->sr.n] = '\n';
    memcpy(msg + tok->sr.n + 1, tok->se.p, tok->se.n);
    if ((err = hmac_sha256(key, key_len, msg, tok->sr.n + 1 + tok->se.n, mac)) != LADE_OK)
        return err;
    bool sig_ok = lade_ct_equal(mac, tok->sig, sizeof mac);
    memset(mac, 0, sizeof mac);
    if (!sig_ok)
        return LADE_ERR_AUTH;

    /* 2./3. Expiry and the hub's lifetime policy. */
    if (tok->expiry_s <= now_s)
        return LADE_ERR_EXPIRED;
    if (max_ttl_s > 0 && tok->expiry_s - now_s > max_ttl_s)
        return LADE_ERR_AUTH;

    /* 4. Which identity the token names. */
    if (lade_url_decode(tok->sr.p, tok->sr.n, decoded, sizeof decoded, &dn) != LADE_OK)
        return LADE_ERR_AUTH;
    if (!resource_matches(decoded, dn, expected_resource))
        return LADE_ERR_AUTH;
    return LADE_OK;
}

lade_err lade_sas_derive_key(const uint8_t *group_key, size_t group_key_len, const char *device_id,
                             uint8_t out[LADE_SAS_SIG_LEN])
{
    if (!device_id || !*device_id || !out)
        return LADE_ERR_INVAL;
    return hmac_sha256(group_key, group_key_len, device_id, strlen(device_id), out);
}
