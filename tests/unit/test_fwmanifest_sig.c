/* Unit tests for firmware signatures (src/port/linux/fwsig.c) with the manifest codec: RFC 8032
 * vectors, key ids and pinned-key lists, verify (good, tampered fields, tampered signature,
 * wrong key, unsigned, re-signed, mix-and-match, rotation with two pinned keys), acceptance order
 * (signature before downgrade / hardware), the clock (never read, and a far-wrong one changes
 * nothing), signing keys on disk, streaming SHA-256.
 *
 * The clock: this executable defines clock_gettime, gettimeofday and time itself, so every call
 * from the library (and from libcrypto where the linker resolves to them) lands here. They answer
 * with a clock set far wrong (1970, 2150) and count calls; the manifest path must make none. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "lade/codec.h"
#include "lade/fwmanifest.h"
#include "lade/fwsig.h"

/* ------------------------------------------------------------ a clock set far wrong */

static int64_t fake_now_s = 0; /* 1970-01-01 */
static bool counting;
static int clock_reads;

int clock_gettime(clockid_t id, struct timespec *ts)
{
    (void)id;
    if (counting)
        clock_reads++;
    ts->tv_sec = (time_t)fake_now_s;
    ts->tv_nsec = 0;
    return 0;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
    (void)tz;
    if (counting)
        clock_reads++;
    tv->tv_sec = (time_t)fake_now_s; /* declared nonnull by glibc */
    tv->tv_usec = 0;
    return 0;
}

time_t time(time_t *t)
{
    if (counting)
        clock_reads++;
    if (t)
        *t = (time_t)fake_now_s;
    return (time_t)fake_now_s;
}

/* ------------------------------------------------------------ keys and helpers */

static void unhex(const char *h, uint8_t *out, size_t n)
{
    assert_int_equal(strlen(h), 2 * n);
    for (size_t i = 0; i < n; i++)
        out[i] = (uint8_t)(lade_hex_digit(h[2 * i]) << 4 | lade_hex_digit(h[2 * i + 1]));
}

/* RFC 8032 §7.1, tests 1 and 2. */
#define T1_SECRET "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
#define T1_PUBLIC "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
#define T1_SIG                                                                                     \
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"                             \
    "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
#define T1_PUB_B64 "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
#define T1_KEY_ID  "21fe31dfa154a261" /* sha256(pub)[0..8), computed with sha256sum */
#define T2_SECRET  "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"
#define T2_PUBLIC  "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"
#define T2_SIG                                                                                     \
    "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"                             \
    "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
#define T2_PUB_B64 "PUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw="
#define T2_KEY_ID  "39f713d0a644253f"

struct fx {
    struct lade_fwsig_signer *a, *b, *c; /* a: current key, b: next key, c: an attacker's */
    struct lade_fwsig_key ka, kb, kc;
};

static struct lade_fwsig_signer *signer_from_hex(const char *hex, struct lade_fwsig_key *k)
{
    uint8_t priv[32];
    unhex(hex, priv, 32);
    struct lade_fwsig_signer *s = NULL;
    assert_int_equal(lade_fwsig_signer_from_raw(priv, &s), LADE_OK);
    assert_int_equal(lade_fwsig_signer_public(s, k->pub, k->id), LADE_OK);
    return s;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    f->a = signer_from_hex(T1_SECRET, &f->ka);
    f->b = signer_from_hex(T2_SECRET, &f->kb);
    f->c =
        signer_from_hex("0101010101010101010101010101010101010101010101010101010101010101", &f->kc);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    lade_fwsig_signer_free(f->a);
    lade_fwsig_signer_free(f->b);
    lade_fwsig_signer_free(f->c);
    free(f);
    return 0;
}

static struct lade_fwsig_keys pinned(const struct lade_fwsig_key *k1,
                                     const struct lade_fwsig_key *k2)
{
    struct lade_fwsig_keys ks;
    memset(&ks, 0, sizeof ks);
    ks.k[ks.n++] = *k1;
    if (k2)
        ks.k[ks.n++] = *k2;
    return ks;
}

/* A manifest signed by s for lade-sim-1, image "firmware image" (14 bytes), with counter. */
static size_t make(const struct lade_fwsig_signer *s, const char *claimed_key_id, uint32_t counter,
                   char *out, size_t cap)
{
    struct lade_fwsig_hash h;
    uint8_t pub[32];
    char id[LADE_FWM_KEY_ID_LEN + 1];
    assert_int_equal(lade_fwsig_signer_public(s, pub, id), LADE_OK);
    struct lade_fwm m = {.format = 1,
                         .hw_id = LADE_STR("lade-sim-1"),
                         .version = LADE_STR("2.1.0"),
                         .security_counter = counter,
                         .image_len = 14,
                         .notes = LADE_STR("test build\\nsecond line"),
                         .key_id = lade_str_c(claimed_key_id ? claimed_key_id : id)};
    assert_int_equal(lade_fwsig_hash_init(&h), LADE_OK);
    assert_int_equal(lade_fwsig_hash_update(&h, "firmware image", 14), LADE_OK);
    assert_int_equal(lade_fwsig_hash_final(&h, m.image_sha256), LADE_OK);
    size_t len;
    assert_int_equal(lade_fwm_encode(&m, false, out, cap, &len, NULL), LADE_OK);
    assert_int_equal(lade_fwsig_sign(s, out, len, m.sig), LADE_OK);
    m.has_sig = true;
    assert_int_equal(lade_fwm_encode(&m, true, out, cap, &len, NULL), LADE_OK);
    return len;
}

static lade_err verify_buf(const struct lade_fwsig_keys *ks, const char *buf, size_t len,
                           struct lade_fwm_diag *d)
{
    struct lade_fwm m;
    lade_err err = lade_fwm_parse(buf, len, &m, d);
    return err ? err : lade_fwsig_verify(ks, &m, d);
}

/* ------------------------------------------------------------ tests */

static void test_rfc8032_vectors(void **state)
{
    struct fx *f = *state;
    uint8_t want_pub[32], want_sig[64], sig[64];
    unhex(T1_PUBLIC, want_pub, 32);
    assert_memory_equal(f->ka.pub, want_pub, 32);
    unhex(T1_SIG, want_sig, 64);
    assert_int_equal(lade_fwsig_sign(f->a, "", 0, sig), LADE_OK);
    assert_memory_equal(sig, want_sig, 64);
    assert_int_equal(lade_fwsig_sign(f->a, NULL, 0, sig), LADE_OK);
    assert_memory_equal(sig, want_sig, 64);

    unhex(T2_PUBLIC, want_pub, 32);
    assert_memory_equal(f->kb.pub, want_pub, 32);
    unhex(T2_SIG, want_sig, 64);
    assert_int_equal(lade_fwsig_sign(f->b, "\x72", 1, sig), LADE_OK);
    assert_memory_equal(sig, want_sig, 64);
    assert_int_equal(lade_fwsig_sign(NULL, "", 0, sig), LADE_ERR_INVAL);
    assert_int_equal(lade_fwsig_sign(f->b, NULL, 1, sig), LADE_ERR_INVAL);
}

static void test_key_ids_and_lists(void **state)
{
    struct fx *f = *state;
    assert_string_equal(f->ka.id, T1_KEY_ID);
    assert_string_equal(f->kb.id, T2_KEY_ID);
    char id[LADE_FWM_KEY_ID_LEN + 1];
    assert_int_equal(lade_fwsig_key_id(f->ka.pub, id), LADE_OK);
    assert_string_equal(id, T1_KEY_ID);

    struct lade_fwsig_keys ks;
    assert_int_equal(lade_fwsig_keys_parse(T1_PUB_B64, &ks), LADE_OK);
    assert_int_equal(ks.n, 1);
    assert_memory_equal(ks.k[0].pub, f->ka.pub, 32);
    assert_string_equal(ks.k[0].id, T1_KEY_ID);
    assert_int_equal(lade_fwsig_keys_parse(T1_PUB_B64 "," T2_PUB_B64, &ks), LADE_OK);
    assert_int_equal(ks.n, 2);
    assert_string_equal(ks.k[1].id, T2_KEY_ID);
    /* The two-key list fits the existing 128-byte firmware_pubkey setting. */
    assert_true(strlen(T1_PUB_B64 "," T2_PUB_B64) < 128);

    const struct {
        const char *list;
        lade_err err;
    } bad[] = {
        {"", LADE_ERR_CONFIG},
        {",", LADE_ERR_CONFIG},
        {T1_PUB_B64 ",", LADE_ERR_CONFIG},
        {"," T1_PUB_B64, LADE_ERR_CONFIG},
        {" " T1_PUB_B64, LADE_ERR_CONFIG},
        {T1_PUB_B64 " ", LADE_ERR_CONFIG},
        {"11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHUR==", LADE_ERR_CONFIG}, /* 31 bytes */
        {"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo=", LADE_ERR_CONFIG}, /* base64url */
        {"11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURp=", LADE_ERR_CONFIG}, /* pad bits */
        {T1_PUBLIC, LADE_ERR_CONFIG},                                      /* hex */
        {T1_PUB_B64 "," T1_PUB_B64, LADE_ERR_EXISTS},                      /* same key */
        {T1_PUB_B64 "," T2_PUB_B64 "," T1_PUB_B64, LADE_ERR_EXISTS},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        memset(&ks, 0x77, sizeof ks);
        assert_int_equal(lade_fwsig_keys_parse(bad[i].list, &ks), bad[i].err);
        assert_int_equal(ks.n, 0); /* nothing half-pinned */
    }
    char three[256];
    char b64c[LADE_FWSIG_PUB_B64_LEN + 1];
    assert_int_equal(lade_base64_encode(f->kc.pub, 32, b64c, sizeof b64c, NULL), LADE_OK);
    snprintf(three, sizeof three, "%s,%s,%s", T1_PUB_B64, T2_PUB_B64, b64c);
    assert_int_equal(lade_fwsig_keys_parse(three, &ks), LADE_ERR_FULL);
    assert_int_equal(lade_fwsig_keys_parse(NULL, &ks), LADE_ERR_INVAL);
    /* add one at a time (two settings fields) */
    memset(&ks, 0, sizeof ks);
    assert_int_equal(lade_fwsig_keys_add_b64(&ks, T2_PUB_B64, strlen(T2_PUB_B64)), LADE_OK);
    assert_int_equal(lade_fwsig_keys_add_b64(&ks, T1_PUB_B64, strlen(T1_PUB_B64)), LADE_OK);
    assert_int_equal(lade_fwsig_keys_add_b64(&ks, b64c, strlen(b64c)), LADE_ERR_FULL);
    assert_int_equal(ks.n, 2);
}

static void test_verify_good(void **state)
{
    struct fx *f = *state;
    char buf[LADE_FWM_MAX + 1];
    size_t len = make(f->a, NULL, 5, buf, sizeof buf);
    struct lade_fwsig_keys ks = pinned(&f->ka, NULL);
    struct lade_fwm_diag d;
    assert_int_equal(verify_buf(&ks, buf, len, &d), LADE_OK);
    assert_int_equal(d.reason, LADE_FWM_R_NONE);
    struct lade_fwm m;
    assert_int_equal(lade_fwsig_accept(&ks, buf, len, "lade-sim-1", 5, &m, &d), LADE_OK);
    assert_int_equal(m.security_counter, 5);
    assert_int_equal(m.image_len, 14);
    assert_true(lade_str_eq_c(m.key_id, T1_KEY_ID));
    /* the image it names */
    struct lade_fwsig_hash h;
    uint8_t sha[32];
    assert_int_equal(lade_fwsig_hash_init(&h), LADE_OK);
    assert_int_equal(lade_fwsig_hash_update(&h, "firmware ", 9), LADE_OK);
    assert_int_equal(lade_fwsig_hash_update(&h, "image", 5), LADE_OK);
    assert_int_equal(h.len, 14);
    assert_int_equal(lade_fwsig_hash_final(&h, sha), LADE_OK);
    assert_int_equal(lade_fwm_check_image(&m, h.len, sha, &d), LADE_OK);
}

static void test_verify_tampered(void **state)
{
    struct fx *f = *state;
    char buf[LADE_FWM_MAX + 1], t[LADE_FWM_MAX + 1];
    size_t len = make(f->a, NULL, 5, buf, sizeof buf);
    struct lade_fwsig_keys ks = pinned(&f->ka, &f->kb);
    struct lade_fwm m;
    assert_int_equal(lade_fwm_parse(buf, len, &m, NULL), LADE_OK);
    size_t signed_len = m.signed_len;
    /* Change every signed byte in turn to another character the parser still accepts there:
     * the form stays good, the signature must not. */
    static const char repl[] = "01ab-.xZ9";
    int parsed = 0;
    for (size_t i = 0; i < signed_len; i++) {
        for (const char *r = repl; *r; r++) {
            if (*r == buf[i])
                continue;
            memcpy(t, buf, len);
            t[i] = *r;
            struct lade_fwm_diag d;
            lade_err err = lade_fwm_parse(t, len, &m, &d);
            if (err) {
                assert_int_equal(err, LADE_ERR_PROTO);
                continue;
            }
            parsed++;
            err = lade_fwsig_verify(&ks, &m, &d);
            assert_int_equal(err, LADE_ERR_AUTH);
            assert_true(d.reason == LADE_FWM_R_BAD_SIGNATURE || d.reason == LADE_FWM_R_KEY_UNKNOWN);
            if (d.reason == LADE_FWM_R_KEY_UNKNOWN) /* only by changing the key id */
                assert_true(t + i >= m.key_id.p && t + i < m.key_id.p + m.key_id.n);
        }
    }
    assert_true(parsed > 200); /* the loop really did test forms that parse */

    /* The image hash, the counter and the hardware id, by name. */
    struct {
        const char *from, *to;
    } fields[] = {{"security-counter: 5\n", "security-counter: 9\n"},
                  {"hardware: lade-sim-1\n", "hardware: lade-sim-2\n"},
                  {"image-length: 14\n", "image-length: 15\n"},
                  {"version: 2.1.0\n", "version: 2.1.1\n"}};
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        memcpy(t, buf, len + 1);
        char *at = strstr(t, fields[i].from);
        assert_non_null(at);
        memcpy(at, fields[i].to, strlen(fields[i].to));
        struct lade_fwm_diag d;
        assert_int_equal(verify_buf(&ks, t, len, &d), LADE_ERR_AUTH);
        assert_int_equal(d.reason, LADE_FWM_R_BAD_SIGNATURE);
    }
    memcpy(t, buf, len + 1);
    char *h = strstr(t, "image-sha256: ") + strlen("image-sha256: ");
    *h = *h == '0' ? '1' : '0';
    struct lade_fwm_diag d;
    assert_int_equal(verify_buf(&ks, t, len, &d), LADE_ERR_AUTH);
    assert_int_equal(d.reason, LADE_FWM_R_BAD_SIGNATURE);

    /* The signature itself: each of its 64 bytes. */
    assert_int_equal(lade_fwm_parse(buf, len, &m, NULL), LADE_OK);
    for (size_t i = 0; i < 64; i++) {
        struct lade_fwm x = m;
        x.sig[i] ^= 0x01;
        assert_int_equal(lade_fwsig_verify(&ks, &x, &d), LADE_ERR_AUTH);
        assert_int_equal(d.reason, LADE_FWM_R_BAD_SIGNATURE);
    }
    struct lade_fwm x = m;
    memset(x.sig, 0, sizeof x.sig);
    assert_int_equal(lade_fwsig_verify(&ks, &x, &d), LADE_ERR_AUTH);
}

static void test_verify_keys(void **state)
{
    struct fx *f = *state;
    char a5[LADE_FWM_MAX + 1], b6[LADE_FWM_MAX + 1], c9[LADE_FWM_MAX + 1], forged[LADE_FWM_MAX + 1];
    size_t la = make(f->a, NULL, 5, a5, sizeof a5);
    size_t lb = make(f->b, NULL, 6, b6, sizeof b6);
    struct lade_fwm_diag d;

    /* wrong key: A's manifest, only B pinned (and the reverse) */
    struct lade_fwsig_keys only_a = pinned(&f->ka, NULL), only_b = pinned(&f->kb, NULL),
                           both = pinned(&f->ka, &f->kb), both_rev = pinned(&f->kb, &f->ka);
    assert_int_equal(verify_buf(&only_b, a5, la, &d), LADE_ERR_AUTH);
    assert_int_equal(d.reason, LADE_FWM_R_KEY_UNKNOWN);
    assert_int_equal(verify_buf(&only_a, b6, lb, &d), LADE_ERR_AUTH);
    assert_int_equal(d.reason, LADE_FWM_R_KEY_UNKNOWN);

    /* rotation: with both pinned, either key's manifests verify, in either order */
    assert_int_equal(verify_buf(&both, a5, la, &d), LADE_OK);
    assert_int_equal(verify_buf(&both, b6, lb, &d), LADE_OK);
    assert_int_equal(verify_buf(&both_rev, a5, la, &d), LADE_OK);
    assert_int_equal(verify_buf(&both_rev, b6, lb, &d), LADE_OK);
    /* ... and once A is retired (only B pinned), A's manifests no longer do */
    assert_int_equal(verify_buf(&only_b, b6, lb, &d), LADE_OK);

    /* re-signed: an attacker raises the counter and signs with its own key */
    size_t lc = make(f->c, NULL, 9, c9, sizeof c9);
    assert_int_equal(verify_buf(&both, c9, lc, &d), LADE_ERR_AUTH);
    assert_int_equal(d.reason, LADE_FWM_R_KEY_UNKNOWN);
    /* ... claiming a pinned key's id: that key is tried, and it did not sign */
    size_t lf = make(f->c, f->ka.id, 9, forged, sizeof forged);
    assert_int_equal(verify_buf(&both, forged, lf, &d), LADE_ERR_AUTH);
    assert_int_equal(d.reason, LADE_FWM_R_BAD_SIGNATURE);
    /* ... a pinned key signing under the other pinned key's id: only the named key counts */
    lf = make(f->b, f->ka.id, 9, forged, sizeof forged);
    assert_int_equal(verify_buf(&both, forged, lf, &d), LADE_ERR_AUTH);
    assert_int_equal(d.reason, LADE_FWM_R_BAD_SIGNATURE);

    /* mix-and-match: release 6's fields under release 5's signature (same key) */
    char a6[LADE_FWM_MAX + 1];
    size_t l6 = make(f->a, NULL, 6, a6, sizeof a6);
    struct lade_fwm m5, m6;
    assert_int_equal(lade_fwm_parse(a5, la, &m5, NULL), LADE_OK);
    assert_int_equal(lade_fwm_parse(a6, l6, &m6, NULL), LADE_OK);
    memcpy(m6.sig, m5.sig, sizeof m6.sig);
    assert_int_equal(lade_fwsig_verify(&both, &m6, &d), LADE_ERR_AUTH);
    assert_int_equal(d.reason, LADE_FWM_R_BAD_SIGNATURE);

    /* unsigned: the signed part alone */
    struct lade_fwm m;
    assert_int_equal(lade_fwsig_accept(&both, a5, m5.signed_len, "lade-sim-1", 0, &m, &d),
                     LADE_ERR_PROTO);
    assert_int_equal(d.reason, LADE_FWM_R_UNSIGNED);

    /* a pinned "key" that is not a curve point: refused, no crash */
    struct lade_fwsig_key junk;
    memset(junk.pub, 0xff, sizeof junk.pub);
    assert_int_equal(lade_fwsig_key_id(junk.pub, junk.id), LADE_OK);
    struct lade_fwsig_keys jk = pinned(&junk, NULL);
    lf = make(f->a, junk.id, 5, forged, sizeof forged);
    assert_int_equal(verify_buf(&jk, forged, lf, &d), LADE_ERR_AUTH);
    assert_int_equal(d.reason, LADE_FWM_R_BAD_SIGNATURE);

    /* arguments */
    struct lade_fwsig_keys none;
    memset(&none, 0, sizeof none);
    assert_int_equal(lade_fwsig_verify(&none, &m5, &d), LADE_ERR_INVAL);
    assert_int_equal(lade_fwsig_verify(NULL, &m5, &d), LADE_ERR_INVAL);
    memset(&m, 0, sizeof m);
    assert_int_equal(lade_fwsig_verify(&both, &m, &d), LADE_ERR_INVAL); /* never parsed */
}

static void test_accept_order(void **state)
{
    struct fx *f = *state;
    char buf[LADE_FWM_MAX + 1], forged[LADE_FWM_MAX + 1];
    size_t len = make(f->a, NULL, 5, buf, sizeof buf);
    struct lade_fwsig_keys ks = pinned(&f->ka, &f->kb);
    struct lade_fwm m;
    struct lade_fwm_diag d;
    /* downgrade */
    assert_int_equal(lade_fwsig_accept(&ks, buf, len, "lade-sim-1", 6, &m, &d), LADE_ERR_STATE);
    assert_int_equal(d.reason, LADE_FWM_R_DOWNGRADE);
    assert_null(m.raw.p); /* zeroed on refusal */
    assert_int_equal(lade_fwsig_accept(&ks, buf, len, NULL, 6, &m, &d), LADE_ERR_STATE);
    assert_int_equal(d.reason, LADE_FWM_R_DOWNGRADE);
    assert_int_equal(lade_fwsig_accept(&ks, buf, len, "lade-sim-1", 5, &m, &d), LADE_OK);
    assert_int_equal(lade_fwsig_accept(&ks, buf, len, "lade-sim-1", 4, &m, &d), LADE_OK);
    /* wrong hardware */
    assert_int_equal(lade_fwsig_accept(&ks, buf, len, "lade-pro-2", 0, &m, &d), LADE_ERR_INVAL);
    assert_int_equal(d.reason, LADE_FWM_R_WRONG_HARDWARE);
    assert_int_equal(lade_fwsig_accept(&ks, buf, len, NULL, 0, &m, &d), LADE_OK);
    /* A forgery is reported as a forgery, even when its fields would also be refused. */
    size_t lf = make(f->c, f->ka.id, 1, forged, sizeof forged);
    assert_int_equal(lade_fwsig_accept(&ks, forged, lf, "lade-pro-2", 9, &m, &d), LADE_ERR_AUTH);
    assert_int_equal(d.reason, LADE_FWM_R_BAD_SIGNATURE);
    /* malformed: the parse reason and line */
    memcpy(forged, buf, len);
    forged[3] = '\r';
    assert_int_equal(lade_fwsig_accept(&ks, forged, len, "lade-sim-1", 0, &m, &d), LADE_ERR_PROTO);
    assert_int_equal(d.reason, LADE_FWM_R_CR);
    assert_int_equal(d.line, 1);
    assert_int_equal(lade_fwsig_accept(&ks, buf, len, "lade-sim-1", 0, NULL, &d), LADE_ERR_INVAL);
}

/* Nothing on the manifest path reads a clock, and a clock set far wrong changes nothing. The
 * path has no dates to compare (no certificates), so this holds by construction; the counter
 * proves nobody even asks. */
static void test_clock_far_wrong(void **state)
{
    struct fx *f = *state;
    char buf[LADE_FWM_MAX + 1];
    size_t len = make(f->a, NULL, 5, buf, sizeof buf);
    struct lade_fwsig_keys ks;
    assert_int_equal(lade_fwsig_keys_parse(T1_PUB_B64 "," T2_PUB_B64, &ks), LADE_OK);
    const int64_t clocks[] = {0, 4102444800ll /* 2100 */, 5680281600ll /* 2150 */, -86400};
    for (size_t i = 0; i < sizeof clocks / sizeof *clocks; i++) {
        fake_now_s = clocks[i];
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        assert_int_equal((int64_t)ts.tv_sec, clocks[i]); /* the far-wrong clock is in effect */
        clock_reads = 0;
        counting = true;
        struct lade_fwm m;
        struct lade_fwm_diag d;
        lade_err e1 = lade_fwsig_accept(&ks, buf, len, "lade-sim-1", 5, &m, &d);
        lade_err e2 = lade_fwm_check(&m, "lade-sim-1", 5, &d);
        uint8_t sha[32];
        memcpy(sha, m.image_sha256, 32);
        lade_err e3 = lade_fwm_check_image(&m, 14, sha, &d);
        struct lade_fwm p;
        lade_err e4 = lade_fwm_parse(buf, len, &p, &d);
        lade_err e5 = lade_fwsig_verify(&ks, &p, &d);
        counting = false;
        assert_int_equal(e1, LADE_OK);
        assert_int_equal(e2, LADE_OK);
        assert_int_equal(e3, LADE_OK);
        assert_int_equal(e4, LADE_OK);
        assert_int_equal(e5, LADE_OK);
        assert_int_equal(clock_reads, 0);
    }
    fake_now_s = 0;
}

static void test_hash(void **state)
{
    (void)state;
    uint8_t want[32], got[32];
    unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", want, 32);
    struct lade_fwsig_hash h;
    assert_int_equal(lade_fwsig_hash_init(&h), LADE_OK);
    assert_int_equal(lade_fwsig_hash_update(&h, "a", 1), LADE_OK);
    assert_int_equal(lade_fwsig_hash_update(&h, NULL, 0), LADE_OK);
    assert_int_equal(lade_fwsig_hash_update(&h, "bc", 2), LADE_OK);
    assert_int_equal(h.len, 3);
    assert_int_equal(lade_fwsig_hash_final(&h, got), LADE_OK);
    assert_memory_equal(got, want, 32);
    assert_null(h.ctx);
    /* after final: no more use; free is harmless, twice */
    assert_int_equal(lade_fwsig_hash_update(&h, "x", 1), LADE_ERR_INVAL);
    assert_int_equal(lade_fwsig_hash_final(&h, got), LADE_ERR_INVAL);
    lade_fwsig_hash_free(&h);
    lade_fwsig_hash_free(&h);
    /* abandoned mid-way (a download given up) */
    assert_int_equal(lade_fwsig_hash_init(&h), LADE_OK);
    assert_int_equal(lade_fwsig_hash_update(&h, "partial", 7), LADE_OK);
    lade_fwsig_hash_free(&h);
    /* the empty input */
    unhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", want, 32);
    assert_int_equal(lade_fwsig_hash_init(&h), LADE_OK);
    assert_int_equal(lade_fwsig_hash_final(&h, got), LADE_OK);
    assert_memory_equal(got, want, 32);
    assert_int_equal(lade_fwsig_hash_init(NULL), LADE_ERR_INVAL);
}

static void test_keygen_files(void **state)
{
    (void)state;
    char dir[256], key[300], key2[300], junk[300];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/lade-fwsig-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(dir));
    snprintf(key, sizeof key, "%s/fw.key", dir);
    snprintf(key2, sizeof key2, "%s/fw2.key", dir);
    snprintf(junk, sizeof junk, "%s/junk.key", dir);

    uint8_t pub[32], pub2[32], again[32];
    assert_int_equal(lade_fwsig_keygen(key, pub), LADE_OK);
    struct stat st;
    assert_int_equal(stat(key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* never overwritten */
    assert_int_equal(lade_fwsig_keygen(key, again), LADE_ERR_EXISTS);
    assert_int_equal(lade_fwsig_keygen("/nonexistent-dir/k", again), LADE_ERR_IO);
    /* two keys differ */
    assert_int_equal(lade_fwsig_keygen(key2, pub2), LADE_OK);
    assert_memory_not_equal(pub, pub2, 32);

    /* load: the same public key; signs what the public key verifies */
    struct lade_fwsig_signer *s = NULL;
    assert_int_equal(lade_fwsig_signer_load(key, &s), LADE_OK);
    char id[LADE_FWM_KEY_ID_LEN + 1];
    assert_int_equal(lade_fwsig_signer_public(s, again, id), LADE_OK);
    assert_memory_equal(again, pub, 32);
    char buf[LADE_FWM_MAX + 1];
    size_t len = make(s, NULL, 1, buf, sizeof buf);
    lade_fwsig_signer_free(s);
    struct lade_fwsig_key k;
    memcpy(k.pub, pub, 32);
    assert_int_equal(lade_fwsig_key_id(pub, k.id), LADE_OK);
    struct lade_fwsig_keys ks = pinned(&k, NULL);
    struct lade_fwm_diag d;
    assert_int_equal(verify_buf(&ks, buf, len, &d), LADE_OK);

    /* a key file others can read is refused; so are files that are no key */
    assert_int_equal(chmod(key, 0640), 0);
    assert_int_equal(lade_fwsig_signer_load(key, &s), LADE_ERR_AUTH);
    assert_null(s);
    assert_int_equal(chmod(key, 0604), 0);
    assert_int_equal(lade_fwsig_signer_load(key, &s), LADE_ERR_AUTH);
    FILE *jf = fopen(junk, "w");
    assert_non_null(jf);
    fputs("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n", jf);
    fclose(jf);
    assert_int_equal(chmod(junk, 0600), 0);
    assert_int_equal(lade_fwsig_signer_load(junk, &s), LADE_ERR_CONFIG);
    assert_int_equal(lade_fwsig_signer_load("/nonexistent-dir/k", &s), LADE_ERR_NOT_FOUND);
    assert_int_equal(lade_fwsig_signer_load(dir, &s), LADE_ERR_IO); /* a directory */

    unlink(key);
    unlink(key2);
    unlink(junk);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc8032_vectors), cmocka_unit_test(test_key_ids_and_lists),
        cmocka_unit_test(test_verify_good),     cmocka_unit_test(test_verify_tampered),
        cmocka_unit_test(test_verify_keys),     cmocka_unit_test(test_accept_order),
        cmocka_unit_test(test_clock_far_wrong), cmocka_unit_test(test_hash),
        cmocka_unit_test(test_keygen_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
