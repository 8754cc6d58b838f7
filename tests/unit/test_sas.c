/* Unit tests for SAS tokens: every vector of reference/iothub.md byte-exact, parse and verify
 * negatives. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lade/codec.h"
#include "lade/sas.h"

#define HUB      "iot-hub-for-test.azure-devices.net"
#define DEV      "iot-device-for-test"
#define KEY1     "+XLy+MVZ+aTeOnVzN2kLeB16O+kSxmz6g3rS6fAf6rw="
#define EXP1     1471940363
#define TOKEN1   "SharedAccessSignature sr=" HUB "%2Fdevices%2F" DEV "&sig=" SIG1_URL "&se=1471940363"
#define SIG1_URL "SIumZ1ACqqPJZ2okHDlW9MSYKykEpqsQY3z6FMOICd4%3D"

static size_t key_from_b64(const char *b64, uint8_t *key, size_t cap)
{
    size_t n = 0;
    assert_int_equal(lade_base64_decode(b64, strlen(b64), key, cap, &n), LADE_OK);
    return n;
}

static void check_sign(const char *key_b64, const char *msg, const char *want)
{
    uint8_t key[128];
    size_t kn = key_from_b64(key_b64, key, sizeof key);
    char out[64];
    size_t n = 0;
    assert_int_equal(lade_sas_sign(key, kn, msg, strlen(msg), out, sizeof out, &n), LADE_OK);
    assert_string_equal(out, want);
    assert_int_equal(n, strlen(want));
}

static void test_sign_vectors(void **state)
{
    (void)state;
    check_sign(KEY1, HUB "%2Fdevices%2F" DEV "\n1471940363",
               "SIumZ1ACqqPJZ2okHDlW9MSYKykEpqsQY3z6FMOICd4=");
    check_sign(KEY1, HUB "\n1471940363", "770sPjjYxRYpNz8/hEN7XR5XU5KDGYGTinSP8YyeTXw=");
    check_sign("q+DKVojmMz014RjAwpNGZbAkdOocSVWMKPOccLfUmLE=",
               "sdktesthub.private.azure-devices-int.net/devices/test8\n1462333672",
               "ZrTYgp6uRmbDl4lzzewxFD9FoaNKIK7G2bdivDbtc9A=");
}

static void test_sign_rejects(void **state)
{
    (void)state;
    uint8_t key[LADE_SAS_KEY_MAX + 1] = {1};
    char out[64];
    size_t n;
    assert_int_equal(lade_sas_sign(key, 0, "m", 1, out, sizeof out, &n), LADE_ERR_INVAL);
    assert_int_equal(lade_sas_sign(key, sizeof key, "m", 1, out, sizeof out, &n), LADE_ERR_INVAL);
    assert_int_equal(lade_sas_sign(key, 16, "m", 1, out, 44, &n), LADE_ERR_NOSPACE);
    assert_int_equal(lade_sas_sign(key, 16, "m", 1, out, 45, &n), LADE_OK);
}

static void test_build_vector(void **state)
{
    (void)state;
    uint8_t key[64];
    size_t kn = key_from_b64(KEY1, key, sizeof key);
    char tok[512];
    size_t n = 0;
    assert_int_equal(lade_sas_token_build(HUB, DEV, key, kn, EXP1, NULL, tok, sizeof tok, &n),
                     LADE_OK);
    assert_string_equal(tok, TOKEN1);
    assert_int_equal(n, strlen(TOKEN1));
    assert_true(n <= lade_sas_token_max_len(HUB, DEV, NULL));

    /* Exactly-sized buffer works, one byte less is NOSPACE and leaves an empty string. */
    assert_int_equal(lade_sas_token_build(HUB, DEV, key, kn, EXP1, NULL, tok, n + 1, &n), LADE_OK);
    assert_int_equal(lade_sas_token_build(HUB, DEV, key, kn, EXP1, NULL, tok, n, &n),
                     LADE_ERR_NOSPACE);
    assert_string_equal(tok, "");
    assert_int_equal(n, 0);

    /* Service token: sr = hub, skn appended. */
    assert_int_equal(lade_sas_token_build(HUB, NULL, key, kn, EXP1, "portal", tok, sizeof tok, &n),
                     LADE_OK);
    assert_string_equal(tok, "SharedAccessSignature sr=" HUB
                             "&sig=770sPjjYxRYpNz8%2FhEN7XR5XU5KDGYGTinSP8YyeTXw%3D"
                             "&se=1471940363&skn=portal");
    assert_true(n <= lade_sas_token_max_len(HUB, NULL, "portal"));
}

static void test_build_password_vector(void **state)
{
    (void)state;
    /* Key Base64("password"), resource "uri": that is a bare resource, i.e. device_id NULL. */
    uint8_t key[16];
    size_t kn = key_from_b64("cGFzc3dvcmQ=", key, sizeof key);
    char tok[256];
    size_t n;
    assert_int_equal(lade_sas_token_build("uri", NULL, key, kn, 12345, NULL, tok, sizeof tok, &n),
                     LADE_OK);
    assert_string_equal(
        tok,
        "SharedAccessSignature sr=uri&sig=kcWxXAK2OAaAoq2oCkaGzX2NMqDB8nCyNuq2fPYCDhk%3D&se=12345");
}

static void test_build_rejects(void **state)
{
    (void)state;
    uint8_t key[32] = {0};
    char tok[512];
    size_t n;
    assert_int_equal(lade_sas_token_build("", DEV, key, 32, 1, NULL, tok, sizeof tok, &n),
                     LADE_ERR_INVAL);
    assert_int_equal(lade_sas_token_build(HUB, "", key, 32, 1, NULL, tok, sizeof tok, &n),
                     LADE_ERR_INVAL);
    assert_int_equal(lade_sas_token_build(HUB, DEV, key, 32, -1, NULL, tok, sizeof tok, &n),
                     LADE_ERR_INVAL);
    assert_int_equal(lade_sas_token_build(HUB, DEV, key, 0, 1, NULL, tok, sizeof tok, &n),
                     LADE_ERR_INVAL);
    char big[600];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    assert_int_equal(lade_sas_token_build(big, DEV, key, 32, 1, NULL, tok, sizeof tok, &n),
                     LADE_ERR_INVAL);
}

static void test_derive_key(void **state)
{
    (void)state;
    uint8_t gk[128];
    size_t gn = key_from_b64(
        "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw==",
        gk, sizeof gk);
    uint8_t dk[LADE_SAS_SIG_LEN];
    assert_int_equal(lade_sas_derive_key(gk, gn, "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6", dk),
                     LADE_OK);
    char b64[64];
    size_t n;
    assert_int_equal(lade_base64_encode(dk, sizeof dk, b64, sizeof b64, &n), LADE_OK);
    assert_string_equal(b64, "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=");
    assert_int_equal(lade_sas_derive_key(gk, gn, "", dk), LADE_ERR_INVAL);
}

static lade_err parse_c(const char *s, struct lade_sas *t)
{
    return lade_sas_parse(s, strlen(s), t);
}

static void test_parse_ok(void **state)
{
    (void)state;
    struct lade_sas t;
    assert_int_equal(parse_c(TOKEN1, &t), LADE_OK);
    assert_true(lade_str_eq_c(t.sr, HUB "%2Fdevices%2F" DEV));
    assert_true(lade_str_eq_c(t.se, "1471940363"));
    assert_int_equal(t.expiry_s, EXP1);
    assert_null(t.skn.p);
    uint8_t want[40];
    size_t n;
    assert_int_equal(lade_base64_decode("SIumZ1ACqqPJZ2okHDlW9MSYKykEpqsQY3z6FMOICd4=", 44, want,
                                        sizeof want, &n),
                     LADE_OK);
    assert_memory_equal(t.sig, want, 32);

    /* Any order, skn, lower-case percent-escapes in sig. */
    assert_int_equal(
        parse_c("SharedAccessSignature skn=svc&se=5&sig=SIumZ1ACqqPJZ2okHDlW9MSYKykEpqsQY3z6FMOICd4"
                "%3d&sr=a",
                &t),
        LADE_OK);
    assert_true(lade_str_eq_c(t.skn, "svc"));
    assert_true(lade_str_eq_c(t.sr, "a"));
    assert_int_equal(t.expiry_s, 5);
    assert_memory_equal(t.sig, want, 32);

    /* Not NUL-terminated: only len bytes are read. */
    char buf[sizeof TOKEN1 + 8];
    memcpy(buf, TOKEN1, strlen(TOKEN1));
    memcpy(buf + strlen(TOKEN1), "&xx=1", 6);
    assert_int_equal(lade_sas_parse(buf, strlen(TOKEN1), &t), LADE_OK);
}

static void test_parse_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "SharedAccessSignature",
        "SharedAccessSignature ",
        "sharedaccesssignature sr=a&sig=" SIG1_URL "&se=1",
        "SharedAccessSignature  sr=a&sig=" SIG1_URL "&se=1",
        "SharedAccessSignature sr=a&sig=" SIG1_URL,                     /* no se */
        "SharedAccessSignature sig=" SIG1_URL "&se=1",                  /* no sr */
        "SharedAccessSignature sr=a&se=1",                              /* no sig */
        "SharedAccessSignature sr=a&sig=" SIG1_URL "&se=1&",            /* trailing & */
        "SharedAccessSignature &sr=a&sig=" SIG1_URL "&se=1",            /* empty param */
        "SharedAccessSignature sr=a&sig=" SIG1_URL "&se=1&sr=a",        /* duplicate */
        "SharedAccessSignature sr=a&sig=" SIG1_URL "&se=1&se=1",        /* duplicate */
        "SharedAccessSignature sr=a&sig=" SIG1_URL "&se=1&skn=x&skn=x", /* duplicate */
        "SharedAccessSignature sr=a&sig=" SIG1_URL "&sig=" SIG1_URL "&se=1",
        "SharedAccessSignature sr=a&sig=" SIG1_URL "&se=1&foo=1",             /* unknown */
        "SharedAccessSignature sr=a&sig=" SIG1_URL "&se=1&SR=a",              /* unknown (case) */
        "SharedAccessSignature sr=&sig=" SIG1_URL "&se=1",                    /* empty */
        "SharedAccessSignature sr=a&sig=" SIG1_URL "&se=",                    /* empty */
        "SharedAccessSignature sr=a&sig=" SIG1_URL "&se=1&skn=",              /* empty */
        "SharedAccessSignature sr&sig=" SIG1_URL "&se=1",                     /* no = */
        "SharedAccessSignature sr=a b&sig=" SIG1_URL "&se=1",                 /* space */
        "SharedAccessSignature sr=a\tb&sig=" SIG1_URL "&se=1",                /* control */
        "SharedAccessSignature sr=a&sig=" SIG1_URL "&se=01",                  /* leading zero */
        "SharedAccessSignature sr=a&sig=" SIG1_URL "&se=+1",                  /* sign */
        "SharedAccessSignature sr=a&sig=" SIG1_URL "&se=-1",                  /* sign */
        "SharedAccessSignature sr=a&sig=" SIG1_URL "&se=1x",                  /* not decimal */
        "SharedAccessSignature sr=a&sig=" SIG1_URL "&se=9223372036854775808", /* > INT64_MAX */
        "SharedAccessSignature sr=a&sig=" SIG1_URL "&se=99999999999999999999",
        "SharedAccessSignature sr=a&sig=SIumZ1ACqqPJZ2okHDlW9MSYKykEpqsQY3z6FMOICd4&se=1", /* pad */
        "SharedAccessSignature sr=a&sig=SIumZ1ACqqPJZ2okHDlW9MSYKykEpqsQY3z6FMOICd4%3&se=1",
        "SharedAccessSignature sr=a&sig=SIumZ1ACqqPJZ2okHDlW9MSYKykEpqsQY3z6FMOICd5%3D&se=1",
        "SharedAccessSignature sr=a&sig=Zm9v&se=1",            /* 3 bytes */
        "SharedAccessSignature sr=a&sig=" SIG1_URL "%3D&se=1", /* too long */
        "SharedAccessSignature sr=a&sig=" SIG1_URL "&se=1 ",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct lade_sas t;
        memset(&t, 0xa5, sizeof t);
        if (parse_c(bad[i], &t) != LADE_ERR_INVAL)
            fail_msg("accepted: %s", bad[i]);
        assert_null(t.sr.p); /* zeroed on error */
    }
    /* NUL inside the token. */
    struct lade_sas t;
    const char nul[] = "SharedAccessSignature sr=a\0b&sig=" SIG1_URL "&se=1";
    assert_int_equal(lade_sas_parse(nul, sizeof nul - 1, &t), LADE_ERR_INVAL);
    /* Longest value accepted, one more refused; token length cap. */
    char tok[LADE_SAS_TOKEN_MAX + 64];
    char sr[LADE_SAS_RESOURCE_MAX + 2];
    memset(sr, 'r', sizeof sr);
    sr[LADE_SAS_RESOURCE_MAX] = 0;
    snprintf(tok, sizeof tok, "SharedAccessSignature sr=%s&sig=%s&se=1", sr, SIG1_URL);
    assert_int_equal(parse_c(tok, &t), LADE_OK);
    sr[LADE_SAS_RESOURCE_MAX] = 'r';
    sr[LADE_SAS_RESOURCE_MAX + 1] = 0;
    snprintf(tok, sizeof tok, "SharedAccessSignature sr=%s&sig=%s&se=1", sr, SIG1_URL);
    assert_int_equal(parse_c(tok, &t), LADE_ERR_INVAL);
    memset(tok, 'x', sizeof tok);
    memcpy(tok, "SharedAccessSignature ", 22);
    assert_int_equal(lade_sas_parse(tok, LADE_SAS_TOKEN_MAX + 1, &t), LADE_ERR_INVAL);
    assert_int_equal(lade_sas_parse(NULL, 0, &t), LADE_ERR_INVAL);
}

static void build(const char *hub, const char *dev, const uint8_t *key, size_t kn, int64_t exp,
                  const char *skn, char *tok, size_t cap)
{
    size_t n;
    assert_int_equal(lade_sas_token_build(hub, dev, key, kn, exp, skn, tok, cap, &n), LADE_OK);
}

static lade_err verify_c(const char *tok, const uint8_t *key, size_t kn, int64_t now, int64_t ttl,
                         const char *res)
{
    struct lade_sas t;
    lade_err err = parse_c(tok, &t);
    if (err != LADE_OK)
        return err;
    return lade_sas_verify(&t, key, kn, now, ttl, res);
}

static void test_verify(void **state)
{
    (void)state;
    uint8_t key[64];
    size_t kn = key_from_b64(KEY1, key, sizeof key);
    const char *res = HUB "/devices/" DEV;
    int64_t now = EXP1 - 3600;

    assert_int_equal(verify_c(TOKEN1, key, kn, now, 0, res), LADE_OK);
    assert_int_equal(verify_c(TOKEN1, key, kn, now, 3600, res), LADE_OK);
    /* Expired at and after se. */
    assert_int_equal(verify_c(TOKEN1, key, kn, EXP1, 0, res), LADE_ERR_EXPIRED);
    assert_int_equal(verify_c(TOKEN1, key, kn, EXP1 + 1, 0, res), LADE_ERR_EXPIRED);
    assert_int_equal(verify_c(TOKEN1, key, kn, EXP1 - 1, 0, res), LADE_OK);
    /* Lifetime beyond the policy. */
    assert_int_equal(verify_c(TOKEN1, key, kn, now, 3599, res), LADE_ERR_AUTH);
    /* Wrong key. */
    uint8_t other[32];
    memcpy(other, key, 32);
    other[0] ^= 1;
    assert_int_equal(verify_c(TOKEN1, other, 32, now, 0, res), LADE_ERR_AUTH);
    /* Another device / hub; host case-insensitive, device id exact. */
    assert_int_equal(verify_c(TOKEN1, key, kn, now, 0, HUB "/devices/other"), LADE_ERR_AUTH);
    assert_int_equal(verify_c(TOKEN1, key, kn, now, 0, HUB "/devices/IOT-DEVICE-FOR-TEST"),
                     LADE_ERR_AUTH);
    assert_int_equal(
        verify_c(TOKEN1, key, kn, now, 0, "IOT-hub-for-test.azure-devices.NET/devices/" DEV),
        LADE_OK);
    assert_int_equal(verify_c(TOKEN1, key, kn, now, 0, "other-hub/devices/" DEV), LADE_ERR_AUTH);
    assert_int_equal(verify_c(TOKEN1, key, kn, now, 0, HUB "/devices/" DEV "x"), LADE_ERR_AUTH);
    assert_int_equal(verify_c(TOKEN1, key, kn, now, 0, HUB), LADE_ERR_AUTH);

    /* Tampered se or sr: signature fails. */
    char tok[512];
    snprintf(tok, sizeof tok, "%s",
             "SharedAccessSignature sr=" HUB "%2Fdevices%2F" DEV "&sig=" SIG1_URL "&se=1471940364");
    assert_int_equal(verify_c(tok, key, kn, now, 0, res), LADE_ERR_AUTH);
    snprintf(tok, sizeof tok, "%s",
             "SharedAccessSignature sr=" HUB "%2Fdevices%2Fother&sig=" SIG1_URL "&se=1471940363");
    assert_int_equal(verify_c(tok, key, kn, now, 0, HUB "/devices/other"), LADE_ERR_AUTH);
}

/* sr spelled with raw '/', "%2F" and "%2f": each signed as sent verifies; each names the same
 * device. */
static void test_verify_sr_spellings(void **state)
{
    (void)state;
    uint8_t key[32];
    for (size_t i = 0; i < sizeof key; i++)
        key[i] = (uint8_t)(i * 7 + 1);
    static const char *const spell[] = {
        "hub.example/devices/dev-1", "hub.example%2Fdevices%2Fdev-1",
        "hub.example%2fdevices%2fdev-1", "HUB.example%2Fdevices%2Fdev-1"};
    for (size_t i = 0; i < 4; i++) {
        char msg[128], sig[64], sig_url[160], tok[400];
        size_t n;
        snprintf(msg, sizeof msg, "%s\n%d", spell[i], 2000);
        assert_int_equal(lade_sas_sign(key, sizeof key, msg, strlen(msg), sig, sizeof sig, &n),
                         LADE_OK);
        assert_int_equal(lade_url_encode(sig, n, sig_url, sizeof sig_url, &n), LADE_OK);
        snprintf(tok, sizeof tok, "SharedAccessSignature sig=%s&se=2000&sr=%s", sig_url, spell[i]);
        assert_int_equal(verify_c(tok, key, sizeof key, 1000, 0, "hub.example/devices/dev-1"),
                         LADE_OK);
        assert_int_equal(verify_c(tok, key, sizeof key, 1000, 0, "hub.example/devices/dev-2"),
                         LADE_ERR_AUTH);
    }
    /* A '%' escape that does not decode names nothing. */
    char msg[64], sig[64], sig_url[160], tok[400];
    size_t n;
    snprintf(msg, sizeof msg, "hub.example%%2Gdevices\n2000");
    assert_int_equal(lade_sas_sign(key, sizeof key, msg, strlen(msg), sig, sizeof sig, &n),
                     LADE_OK);
    assert_int_equal(lade_url_encode(sig, n, sig_url, sizeof sig_url, &n), LADE_OK);
    snprintf(tok, sizeof tok, "SharedAccessSignature sr=hub.example%%2Gdevices&sig=%s&se=2000",
             sig_url);
    assert_int_equal(verify_c(tok, key, sizeof key, 1000, 0, "hub.example/devices"), LADE_ERR_AUTH);
}

static void test_service_token_roundtrip(void **state)
{
    (void)state;
    uint8_t key[32] = {9, 8, 7};
    char tok[512];
    build("Hub.Local", NULL, key, sizeof key, 5000, "portal", tok, sizeof tok);
    struct lade_sas t;
    assert_int_equal(parse_c(tok, &t), LADE_OK);
    assert_true(lade_str_eq_c(t.skn, "portal"));
    assert_int_equal(lade_sas_verify(&t, key, sizeof key, 4000, 7200, "hub.local"), LADE_OK);
    assert_int_equal(lade_sas_verify(&t, key, sizeof key, 4000, 7200, "hub.local/devices/x"),
                     LADE_ERR_AUTH);
    build("hub.local", "dev", key, sizeof key, 5000, NULL, tok, sizeof tok);
    assert_int_equal(verify_c(tok, key, sizeof key, 4000, 7200, "hub.local"), LADE_ERR_AUTH);
    assert_int_equal(verify_c(tok, key, sizeof key, 4000, 7200, "hub.local/devices/dev"), LADE_OK);
    assert_int_equal(verify_c(tok, key, 0, 4000, 7200, "hub.local/devices/dev"), LADE_ERR_INVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_vectors),
        cmocka_unit_test(test_sign_rejects),
        cmocka_unit_test(test_build_vector),
        cmocka_unit_test(test_build_password_vector),
        cmocka_unit_test(test_build_rejects),
        cmocka_unit_test(test_derive_key),
        cmocka_unit_test(test_parse_ok),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_verify),
        cmocka_unit_test(test_verify_sr_spellings),
        cmocka_unit_test(test_service_token_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
