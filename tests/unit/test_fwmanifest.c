/* Unit tests for the firmware manifest codec and checks (src/proto/fwmanifest): the good form
 * and its views, every refusal with its reason and line, the canonical round trip, the encoder's
 * own checks, notes escaping, hardware/downgrade/image checks. Signatures: test_fwmanifest_sig.c.
 * The manifests here are written out by hand, not by the encoder under test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lade/fwmanifest.h"

#define SHA_HEX "00112233445566778899aabbccddeeff0123456789abcdeffedcba9876543210"
/* Base64 of 64 bytes: 0x00 0x01 ... 0x3f. */
#define SIG_B64                                                                                    \
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw=="

#define L_MAGIC   "lade-fw-manifest: 1\n"
#define L_HW      "hardware: lade-sim-1\n"
#define L_VERSION "version: 1.4.2-rc.1+b7\n"
#define L_COUNTER "security-counter: 7\n"
#define L_LENGTH  "image-length: 10485760\n"
#define L_HASH    "image-sha256: " SHA_HEX "\n"
#define L_NOTES   "notes: Fixes \"x\\\\y\": line one\\nline two\\tT\n"
#define L_KEYID   "key-id: 0123456789abcdef\n"
#define L_SIG     "signature: " SIG_B64 "\n"

#define SIGNED_PART L_MAGIC L_HW L_VERSION L_COUNTER L_LENGTH L_HASH L_NOTES L_KEYID
#define GOOD        SIGNED_PART L_SIG
#define GOOD_NONOTE L_MAGIC L_HW L_VERSION L_COUNTER L_LENGTH L_HASH L_KEYID L_SIG

static lade_err parse_s(const char *s, struct lade_fwm *m, struct lade_fwm_diag *d)
{
    return lade_fwm_parse(s, strlen(s), m, d);
}

/* Expects s to be refused with err/reason on line. */
static void refuse(const char *s, size_t len, lade_err err, enum lade_fwm_reason r, unsigned line)
{
    struct lade_fwm m, zero;
    struct lade_fwm_diag d;
    memset(&zero, 0, sizeof zero);
    memset(&m, 0x5a, sizeof m);
    lade_err got = lade_fwm_parse(s, len, &m, &d);
    if (got != err || d.reason != r || d.line != line)
        fail_msg("input <%.*s>: got %d/%s/line %u, want %d/%s/line %u",
                 (int)(len > 300 ? 300 : len), s, got, lade_fwm_reason_text(d.reason), d.line, err,
                 lade_fwm_reason_text(r), line);
    assert_memory_equal(&m, &zero, sizeof m); /* nothing half-parsed is left behind */
}

static void refuse_s(const char *s, enum lade_fwm_reason r, unsigned line)
{
    refuse(s, strlen(s), LADE_ERR_PROTO, r, line);
}

/* GOOD with the first occurrence of from replaced by to. */
static const char *with(const char *base, const char *from, const char *to)
{
    static char buf[8192];
    const char *at = strstr(base, from);
    assert_non_null(at);
    size_t pre = (size_t)(at - base);
    assert_true(strlen(base) - strlen(from) + strlen(to) < sizeof buf);
    memcpy(buf, base, pre);
    strcpy(buf + pre, to);
    strcat(buf, at + strlen(from));
    return buf;
}

static void test_parse_good(void **state)
{
    (void)state;
    const char *s = GOOD;
    struct lade_fwm m;
    struct lade_fwm_diag d;
    assert_int_equal(parse_s(s, &m, &d), LADE_OK);
    assert_int_equal(d.reason, LADE_FWM_R_NONE);
    assert_int_equal(m.format, 1);
    assert_true(lade_str_eq_c(m.hw_id, "lade-sim-1"));
    assert_true(lade_str_eq_c(m.version, "1.4.2-rc.1+b7"));
    assert_int_equal(m.security_counter, 7);
    assert_int_equal(m.image_len, 10485760);
    const uint8_t sha[32] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa,
                             0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab,
                             0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10};
    assert_memory_equal(m.image_sha256, sha, 32);
    assert_true(lade_str_eq_c(m.notes, "Fixes \"x\\\\y\": line one\\nline two\\tT"));
    assert_true(lade_str_eq_c(m.key_id, "0123456789abcdef"));
    assert_true(m.has_sig);
    for (int i = 0; i < 64; i++)
        assert_int_equal(m.sig[i], i);
    /* Views point into the caller's buffer. */
    assert_ptr_equal(m.hw_id.p, strstr(s, "lade-sim-1"));
    assert_ptr_equal(m.raw.p, s);
    assert_int_equal(m.raw.n, strlen(s));
    /* The signed bytes: exactly everything before "signature: ". */
    struct lade_str sb = lade_fwm_signed_bytes(&m);
    assert_ptr_equal(sb.p, s);
    assert_int_equal(sb.n, strlen(SIGNED_PART));
    assert_int_equal(m.signed_len, strlen(SIGNED_PART));

    /* Without the optional notes. */
    assert_int_equal(parse_s(GOOD_NONOTE, &m, &d), LADE_OK);
    assert_null(m.notes.p);
    assert_int_equal(m.notes.n, 0);
    assert_int_equal(lade_fwm_signed_bytes(&m).n, strlen(GOOD_NONOTE) - strlen(L_SIG));

    /* Limits that are still good. */
    const char *hw64 = "hardware: " /* 64 */
                       "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._\n";
    assert_int_equal(parse_s(with(GOOD, L_HW, hw64), &m, &d), LADE_OK);
    assert_int_equal(m.hw_id.n, 64);
    assert_int_equal(parse_s(with(GOOD, L_COUNTER, "security-counter: 0\n"), &m, &d), LADE_OK);
    assert_int_equal(parse_s(with(GOOD, L_COUNTER, "security-counter: 4294967295\n"), &m, &d),
                     LADE_OK);
    assert_int_equal(m.security_counter, UINT32_MAX);
    assert_int_equal(parse_s(with(GOOD, L_LENGTH, "image-length: 18446744073709551615\n"), &m, &d),
                     LADE_OK);
    assert_int_equal(m.image_len, UINT64_MAX);
    assert_int_equal(parse_s(with(GOOD, L_LENGTH, "image-length: 1\n"), &m, &d), LADE_OK);
    assert_int_equal(parse_s(with(GOOD, L_VERSION, "version: 7\n"), &m, &d), LADE_OK);
    /* UTF-8 in the notes is fine. */
    assert_int_equal(parse_s(with(GOOD, L_NOTES, "notes: Ladeboks – æøå ✓\n"), &m, &d), LADE_OK);
    /* Notes of exactly the maximum. */
    static char big[8192];
    char notes[LADE_FWM_NOTES_MAX + 1];
    memset(notes, 'n', LADE_FWM_NOTES_MAX);
    notes[LADE_FWM_NOTES_MAX] = 0;
    snprintf(big, sizeof big, "%s%s%s%s%s%snotes: %s\n%s%s", L_MAGIC, L_HW, L_VERSION, L_COUNTER,
             L_LENGTH, L_HASH, notes, L_KEYID, L_SIG);
    assert_int_equal(parse_s(big, &m, &d), LADE_OK);
    assert_int_equal(m.notes.n, LADE_FWM_NOTES_MAX);
}

static void test_parse_not_nul_terminated(void **state)
{
    (void)state;
    /* The parser reads exactly len bytes: a copy with no NUL after it parses the same. */
    size_t n = strlen(GOOD);
    char buf[2048];
    memcpy(buf, GOOD, n);
    buf[n] = 'X';
    struct lade_fwm m;
    assert_int_equal(lade_fwm_parse(buf, n, &m, NULL), LADE_OK);
    assert_int_equal(lade_fwm_parse(buf, n + 1, &m, NULL), LADE_ERR_PROTO);
}

static void test_parse_size(void **state)
{
    (void)state;
    static char buf[LADE_FWM_MAX + 2];
    memset(buf, 'a', sizeof buf);
    refuse(buf, LADE_FWM_MAX + 1, LADE_ERR_TOO_BIG, LADE_FWM_R_TOO_BIG, 0);
    /* Exactly the maximum is not "too big" (it is malformed for other reasons). */
    refuse(buf, LADE_FWM_MAX, LADE_ERR_PROTO, LADE_FWM_R_TRUNCATED, 1);
    /* A good manifest padded past the limit with trailing lines: too big first. */
    static char big[LADE_FWM_MAX + 200];
    strcpy(big, GOOD);
    while (strlen(big) <= LADE_FWM_MAX)
        strcat(big, "notes: x\n");
    refuse(big, strlen(big), LADE_ERR_TOO_BIG, LADE_FWM_R_TOO_BIG, 0);
}

static void test_parse_truncated(void **state)
{
    (void)state;
    /* Every proper prefix is refused: TRUNCATED, except the one that ends right after the
     * key-id line, which has every field but the signature. */
    const char *s = GOOD;
    size_t n = strlen(s), signed_len = strlen(SIGNED_PART);
    for (size_t len = 0; len < n; len++) {
        struct lade_fwm m;
        struct lade_fwm_diag d;
        assert_int_equal(lade_fwm_parse(s, len, &m, &d), LADE_ERR_PROTO);
        if (len == signed_len)
            assert_int_equal(d.reason, LADE_FWM_R_UNSIGNED);
        else
            assert_int_equal(d.reason, LADE_FWM_R_TRUNCATED);
        assert_true(d.line >= 1 && d.line <= 9);
    }
    refuse_s("", LADE_FWM_R_TRUNCATED, 1);
    refuse_s(L_MAGIC L_HW, LADE_FWM_R_TRUNCATED, 3);
    /* No LF after the signature. */
    char cut[2048];
    strcpy(cut, GOOD);
    cut[strlen(cut) - 1] = 0;
    refuse_s(cut, LADE_FWM_R_TRUNCATED, 9);
    /* Unsigned: every field, no signature line. */
    refuse_s(SIGNED_PART, LADE_FWM_R_UNSIGNED, 9);
    refuse_s(with(GOOD, L_SIG, ""), LADE_FWM_R_UNSIGNED, 9);
}

static void test_parse_bytes(void **state)
{
    (void)state;
    /* CRLF line ends (a manifest edited on Windows) */
    char crlf[2048];
    size_t w = 0;
    for (const char *p = GOOD; *p; p++) {
        if (*p == '\n')
            crlf[w++] = '\r';
        crlf[w++] = *p;
    }
    crlf[w] = 0;
    refuse_s(crlf, LADE_FWM_R_CR, 1);
    refuse_s(with(GOOD, L_KEYID, "key-id: 0123456789abcdef\r\n"), LADE_FWM_R_CR, 8);
    /* NUL anywhere, also where a C-string reader would stop and see a good manifest */
    char nul[2048];
    size_t n = strlen(GOOD);
    memcpy(nul, GOOD, n);
    nul[n] = 0;
    memcpy(nul + n + 1, "notes: x\n", 9);
    refuse(nul, n + 10, LADE_ERR_PROTO, LADE_FWM_R_NUL, 10);
    memcpy(nul, GOOD, n);
    nul[strlen(L_MAGIC) + 12] = 0; /* inside the hardware id */
    refuse(nul, n, LADE_ERR_PROTO, LADE_FWM_R_NUL, 2);
    /* Other control characters */
    refuse_s(with(GOOD, "line two\\tT", "line two\tT"), LADE_FWM_R_CONTROL, 7);
    refuse_s(with(GOOD, "line one", "line \x1b[2Jone"), LADE_FWM_R_CONTROL, 7);
    refuse_s(with(GOOD, "line one", "line \x7fone"), LADE_FWM_R_CONTROL, 7);
    refuse_s(with(GOOD, L_HW, "hardware: lade\x0bsim\n"), LADE_FWM_R_CONTROL, 2);
}

static void test_parse_syntax(void **state)
{
    (void)state;
    refuse_s(with(GOOD, L_HW, "hardware:lade-sim-1\n"), LADE_FWM_R_SYNTAX, 2);
    refuse_s(with(GOOD, L_HW, "hardware: \n"), LADE_FWM_R_SYNTAX, 2);
    refuse_s(with(GOOD, L_HW, "hardware:\n"), LADE_FWM_R_SYNTAX, 2);
    refuse_s(with(GOOD, L_HW, "hardware lade-sim-1\n"), LADE_FWM_R_SYNTAX, 2);
    refuse_s(with(GOOD, L_HW, " hardware: lade-sim-1\n"), LADE_FWM_R_SYNTAX, 2);
    refuse_s(with(GOOD, L_HW, "hardware : lade-sim-1\n"), LADE_FWM_R_SYNTAX, 2);
    refuse_s(with(GOOD, L_HW, "Hardware: lade-sim-1\n"), LADE_FWM_R_SYNTAX, 2);
    refuse_s(with(GOOD, L_HW, "\n" L_HW), LADE_FWM_R_SYNTAX, 2);          /* blank line */
    refuse_s(with(GOOD, L_HW, "# comment\n" L_HW), LADE_FWM_R_SYNTAX, 2); /* comment */
    refuse_s(with(GOOD, L_HW, "hardware:  lade-sim-1\n"), LADE_FWM_R_HARDWARE, 2);
    refuse_s(with(GOOD, L_HW, "hardware: lade-sim-1 \n"), LADE_FWM_R_HARDWARE, 2);
    /* first line */
    refuse_s(with(GOOD, L_MAGIC, "lade-fw-manifest: 2\n"), LADE_FWM_R_FORMAT_VERSION, 1);
    refuse_s(with(GOOD, L_MAGIC, "lade-fw-manifest: 0\n"), LADE_FWM_R_FORMAT_VERSION, 1);
    refuse_s(with(GOOD, L_MAGIC, "lade-fw-manifest: 01\n"), LADE_FWM_R_MAGIC, 1);
    refuse_s(with(GOOD, L_MAGIC, "lade-fw-manifest: one\n"), LADE_FWM_R_MAGIC, 1);
    refuse_s(with(GOOD, L_MAGIC, "lade-fw-manifest:1\n"), LADE_FWM_R_MAGIC, 1);
    refuse_s(with(GOOD, L_MAGIC, "{\"hardware\": \"x\"}\n"), LADE_FWM_R_MAGIC, 1);
    refuse_s(with(GOOD, L_MAGIC, ""), LADE_FWM_R_MAGIC, 1); /* starts with hardware */
    refuse_s(with(GOOD, L_MAGIC, "notes: x\n" L_MAGIC), LADE_FWM_R_MAGIC, 1);
    refuse_s("<html><body>502 Bad Gateway</body></html>\n", LADE_FWM_R_MAGIC, 1);
}

static void test_parse_keys(void **state)
{
    (void)state;
    /* unknown keys, in the signed part or after it */
    refuse_s(with(GOOD, L_COUNTER, L_COUNTER "build: 77\n"), LADE_FWM_R_UNKNOWN_KEY, 5);
    refuse_s(with(GOOD, L_HW, L_HW "hardware-alt: other\n"), LADE_FWM_R_UNKNOWN_KEY, 3);
    refuse_s(with(GOOD, L_SIG, L_SIG "expires: 2030-01-01\n"), LADE_FWM_R_TRAILING, 10);
    /* duplicates: the second value must never win (or lose) */
    refuse_s(with(GOOD, L_HW, L_HW "hardware: other-hw\n"), LADE_FWM_R_DUPLICATE_KEY, 3);
    refuse_s(with(GOOD, L_COUNTER, L_COUNTER "security-counter: 1\n"), LADE_FWM_R_DUPLICATE_KEY, 5);
    refuse_s(with(GOOD, L_NOTES, L_NOTES "notes: more\n"), LADE_FWM_R_DUPLICATE_KEY, 8);
    refuse_s(with(GOOD, L_KEYID, L_KEYID L_KEYID), LADE_FWM_R_DUPLICATE_KEY, 9);
    refuse_s(with(GOOD, L_MAGIC, L_MAGIC L_MAGIC), LADE_FWM_R_DUPLICATE_KEY, 2);
    /* a second signature line: after the first one nothing may follow */
    refuse_s(with(GOOD, L_SIG, L_SIG L_SIG), LADE_FWM_R_TRAILING, 10);
    refuse_s(GOOD "\n", LADE_FWM_R_TRAILING, 10);
    refuse_s(GOOD "x", LADE_FWM_R_TRAILING, 10);
    /* order */
    refuse_s(with(GOOD_NONOTE, L_KEYID, L_KEYID "notes: late\n"), LADE_FWM_R_ORDER, 8);
    refuse_s(with(GOOD, L_HW L_VERSION, L_VERSION L_HW), LADE_FWM_R_MISSING_KEY, 2);
    refuse_s(with(GOOD, L_LENGTH L_HASH, L_HASH L_LENGTH), LADE_FWM_R_MISSING_KEY, 5);
    /* missing */
    refuse_s(with(GOOD, L_LENGTH, ""), LADE_FWM_R_MISSING_KEY, 5);
    refuse_s(with(GOOD, L_HW, ""), LADE_FWM_R_MISSING_KEY, 2);
    refuse_s(with(GOOD, L_KEYID, ""), LADE_FWM_R_MISSING_KEY, 8);
    refuse_s(with(GOOD, L_HASH, ""), LADE_FWM_R_MISSING_KEY, 6);
}

static void test_parse_values(void **state)
{
    (void)state;
    /* hardware id */
    refuse_s(with(GOOD, L_HW, "hardware: lade sim\n"), LADE_FWM_R_HARDWARE, 2);
    refuse_s(with(GOOD, L_HW, "hardware: lade/sim\n"), LADE_FWM_R_HARDWARE, 2);
    refuse_s(with(GOOD, L_HW, "hardware: läde\n"), LADE_FWM_R_HARDWARE, 2);
    refuse_s(with(GOOD, L_HW,
                  "hardware: abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-\n"),
             LADE_FWM_R_HARDWARE, 2); /* 65 */
    /* version */
    refuse_s(with(GOOD, L_VERSION, "version: v1.4.2\n"), LADE_FWM_R_VERSION, 3);
    refuse_s(with(GOOD, L_VERSION, "version: 1.4 beta\n"), LADE_FWM_R_VERSION, 3);
    refuse_s(with(GOOD, L_VERSION, "version: 1_4\n"), LADE_FWM_R_VERSION, 3);
    refuse_s(with(GOOD, L_VERSION,
                  "version: 1234567890123456789012345678901234567890123456789012345678901234"
                  "5\n"),
             LADE_FWM_R_VERSION, 3);
    /* security counter */
    const char *bad_counters[] = {"-1",   "+1",  "01", "4294967296", "99999999999999999999999",
                                  "0x10", "1.0", "1 "};
    for (size_t i = 0; i < sizeof bad_counters / sizeof *bad_counters; i++) {
        char line[64];
        snprintf(line, sizeof line, "security-counter: %s\n", bad_counters[i]);
        refuse_s(with(GOOD, L_COUNTER, line), LADE_FWM_R_COUNTER, 4);
    }
    /* image length */
    const char *bad_lengths[] = {"0", "-5", "00", "010", "18446744073709551616", "1e6", "10 MB"};
    for (size_t i = 0; i < sizeof bad_lengths / sizeof *bad_lengths; i++) {
        char line[64];
        snprintf(line, sizeof line, "image-length: %s\n", bad_lengths[i]);
        refuse_s(with(GOOD, L_LENGTH, line), LADE_FWM_R_LENGTH, 5);
    }
    /* image hash: length, case, digits */
    refuse_s(
        with(GOOD, SHA_HEX, "00112233445566778899AABBCCDDEEFF0123456789abcdeffedcba9876543210"),
        LADE_FWM_R_HASH, 6);
    refuse_s(with(GOOD, SHA_HEX, "0112233445566778899aabbccddeeff0123456789abcdeffedcba9876543210"),
             LADE_FWM_R_HASH, 6);
    refuse_s(with(GOOD, SHA_HEX, SHA_HEX "0"), LADE_FWM_R_HASH, 6);
    refuse_s(with(GOOD, SHA_HEX, SHA_HEX "00"), LADE_FWM_R_HASH, 6);
    refuse_s(
        with(GOOD, SHA_HEX, "g0112233445566778899aabbccddeeff0123456789abcdeffedcba9876543210"),
        LADE_FWM_R_HASH, 6);
    /* key id */
    refuse_s(with(GOOD, L_KEYID, "key-id: 0123456789abcde\n"), LADE_FWM_R_KEY_ID, 8);
    refuse_s(with(GOOD, L_KEYID, "key-id: 0123456789abcdef0\n"), LADE_FWM_R_KEY_ID, 8);
    refuse_s(with(GOOD, L_KEYID, "key-id: 0123456789ABCDEF\n"), LADE_FWM_R_KEY_ID, 8);
    refuse_s(with(GOOD, L_KEYID, "key-id: factory\n"), LADE_FWM_R_KEY_ID, 8);
    /* signature: exactly 88 characters of strict Base64 of 64 bytes */
    refuse_s(with(GOOD, SIG_B64, "AAEC"), LADE_FWM_R_SIGNATURE, 9);
    refuse_s(with(GOOD, "Pw==", "Pw="), LADE_FWM_R_SIGNATURE, 9);
    refuse_s(with(GOOD, "Pw==",
                  "Pw=="
                  "AAAA"),
             LADE_FWM_R_SIGNATURE, 9);
    refuse_s(with(GOOD, "Pw==", "Px=="), LADE_FWM_R_SIGNATURE, 9); /* non-zero pad bits */
    refuse_s(with(GOOD, "Pw==", "P w="), LADE_FWM_R_SIGNATURE, 9);
    refuse_s(with(GOOD, "Pw==", "Pw-_"), LADE_FWM_R_SIGNATURE, 9); /* base64url */
    refuse_s(with(GOOD, "AAEC", "AA=C"), LADE_FWM_R_SIGNATURE, 9); /* '=' inside */
    /* 63 bytes (Base64 of 84 characters) and 66 bytes (88 characters, no padding) */
    refuse_s(with(GOOD, SIG_B64,
                  "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4"
                  "OTo7PD0+"),
             LADE_FWM_R_SIGNATURE, 9);
    refuse_s(with(GOOD, SIG_B64,
                  "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4"
                  "OTo7PD0+P0BB"),
             LADE_FWM_R_SIGNATURE, 9);
}

static void test_parse_notes(void **state)
{
    (void)state;
    static char big[8192];
    char notes[LADE_FWM_NOTES_MAX + 2];
    memset(notes, 'n', LADE_FWM_NOTES_MAX + 1);
    notes[LADE_FWM_NOTES_MAX + 1] = 0;
    snprintf(big, sizeof big, "%s%s%s%s%s%snotes: %s\n%s%s", L_MAGIC, L_HW, L_VERSION, L_COUNTER,
             L_LENGTH, L_HASH, notes, L_KEYID, L_SIG);
    refuse_s(big, LADE_FWM_R_NOTES_TOO_LONG, 7);
    refuse_s(with(GOOD, L_NOTES, "notes: bad \\x escape\n"), LADE_FWM_R_NOTES, 7);
    refuse_s(with(GOOD, L_NOTES, "notes: ends with \\\n"), LADE_FWM_R_NOTES, 7);
    refuse_s(with(GOOD, L_NOTES, "notes: \\r\n"), LADE_FWM_R_NOTES, 7);
    refuse_s(with(GOOD, L_NOTES, "notes: \\0\n"), LADE_FWM_R_NOTES, 7);
    refuse_s(with(GOOD, L_NOTES, "notes: bad \xff utf-8\n"), LADE_FWM_R_NOTES, 7);
    refuse_s(with(GOOD, L_NOTES, "notes: overlong \xc0\xaf\n"), LADE_FWM_R_NOTES, 7);
    refuse_s(with(GOOD, L_NOTES, "notes: surrogate \xed\xa0\x80\n"), LADE_FWM_R_NOTES, 7);
    refuse_s(with(GOOD, L_NOTES, "notes: cut \xe2\x9c\n"), LADE_FWM_R_NOTES, 7);
}

static void test_parse_args(void **state)
{
    (void)state;
    struct lade_fwm m;
    struct lade_fwm_diag d;
    assert_int_equal(lade_fwm_parse(NULL, 5, &m, &d), LADE_ERR_INVAL);
    assert_int_equal(lade_fwm_parse(GOOD, strlen(GOOD), NULL, &d), LADE_ERR_INVAL);
    assert_int_equal(lade_fwm_parse(NULL, 0, &m, &d), LADE_ERR_PROTO); /* empty: truncated */
    assert_int_equal(lade_fwm_parse(GOOD, strlen(GOOD), &m, NULL), LADE_OK);
    /* signed bytes of something not parsed: empty */
    struct lade_fwm blank;
    memset(&blank, 0, sizeof blank);
    assert_null(lade_fwm_signed_bytes(&blank).p);
    assert_null(lade_fwm_signed_bytes(NULL).p);
}

/* Parse → encode gives the same bytes: one manifest, one encoding. */
static void test_encode_roundtrip(void **state)
{
    (void)state;
    const char *inputs[] = {GOOD, GOOD_NONOTE};
    for (size_t i = 0; i < 2; i++) {
        const char *s = inputs[i];
        struct lade_fwm m;
        assert_int_equal(parse_s(s, &m, NULL), LADE_OK);
        char out[LADE_FWM_MAX + 1];
        size_t len = 0;
        struct lade_fwm_diag d;
        assert_int_equal(lade_fwm_encoded_len(&m, true), strlen(s));
        assert_int_equal(lade_fwm_encode(&m, true, out, sizeof out, &len, &d), LADE_OK);
        assert_int_equal(len, strlen(s));
        assert_string_equal(out, s);
        /* the signed part alone is the prefix the parser names */
        assert_int_equal(lade_fwm_encoded_len(&m, false), m.signed_len);
        assert_int_equal(lade_fwm_encode(&m, false, out, sizeof out, &len, &d), LADE_OK);
        assert_int_equal(len, m.signed_len);
        assert_memory_equal(out, s, len);
        /* cap must hold the NUL too; nothing is written short */
        memset(out, '#', sizeof out);
        assert_int_equal(lade_fwm_encode(&m, true, out, strlen(s), &len, &d), LADE_ERR_NOSPACE);
        assert_int_equal(lade_fwm_encode(&m, true, out, strlen(s) + 1, &len, &d), LADE_OK);
    }
}

static void test_encode_checks(void **state)
{
    (void)state;
    struct lade_fwm good;
    assert_int_equal(parse_s(GOOD, &good, NULL), LADE_OK);
    char out[LADE_FWM_MAX + 1];
    size_t len;
    struct lade_fwm_diag d;
    struct {
        struct lade_fwm m;
        bool with_sig;
        enum lade_fwm_reason r;
    } cases[16];
    size_t n = 0;
    for (size_t i = 0; i < 16; i++)
        cases[i].m = good, cases[i].with_sig = true;
    cases[n].m.format = 2, cases[n++].r = LADE_FWM_R_FORMAT_VERSION;
    cases[n].m.hw_id = LADE_STR("bad hw"), cases[n++].r = LADE_FWM_R_HARDWARE;
    cases[n].m.hw_id = (struct lade_str){NULL, 0}, cases[n++].r = LADE_FWM_R_HARDWARE;
    cases[n].m.version = LADE_STR("x1"), cases[n++].r = LADE_FWM_R_VERSION;
    cases[n].m.image_len = 0, cases[n++].r = LADE_FWM_R_LENGTH;
    cases[n].m.notes = LADE_STR("a\nb"), cases[n++].r = LADE_FWM_R_NOTES; /* not escaped */
    cases[n].m.notes = LADE_STR("a\\qb"), cases[n++].r = LADE_FWM_R_NOTES;
    cases[n].m.key_id = LADE_STR("0123"), cases[n++].r = LADE_FWM_R_KEY_ID;
    cases[n].m.key_id = (struct lade_str){NULL, 0}, cases[n++].r = LADE_FWM_R_KEY_ID;
    cases[n].m.has_sig = false, cases[n++].r = LADE_FWM_R_UNSIGNED;
    static char long_notes[LADE_FWM_NOTES_MAX + 1];
    memset(long_notes, 'x', sizeof long_notes);
    cases[n].m.notes = (struct lade_str){long_notes, sizeof long_notes};
    cases[n++].r = LADE_FWM_R_NOTES_TOO_LONG;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(lade_fwm_encode(&cases[i].m, cases[i].with_sig, out, sizeof out, &len, &d),
                         LADE_ERR_INVAL);
        assert_int_equal(d.reason, cases[i].r);
        assert_int_equal(lade_fwm_encoded_len(&cases[i].m, cases[i].with_sig), 0);
    }
    /* unsigned part of an unsigned manifest is fine */
    struct lade_fwm u = good;
    u.has_sig = false;
    assert_int_equal(lade_fwm_encode(&u, false, out, sizeof out, &len, &d), LADE_OK);
    assert_int_equal(len, good.signed_len);
    /* empty notes view: no notes line */
    u.notes = (struct lade_str){"", 0};
    assert_int_equal(lade_fwm_encode(&u, false, out, sizeof out, &len, &d), LADE_OK);
    assert_null(strstr(out, "notes"));
    assert_int_equal(lade_fwm_encode(NULL, true, out, sizeof out, &len, &d), LADE_ERR_INVAL);
    assert_int_equal(lade_fwm_encode(&good, true, NULL, sizeof out, &len, &d), LADE_ERR_INVAL);
}

static void test_check(void **state)
{
    (void)state;
    struct lade_fwm m;
    struct lade_fwm_diag d;
    assert_int_equal(parse_s(GOOD, &m, NULL), LADE_OK); /* counter 7 */
    assert_int_equal(lade_fwm_check(&m, "lade-sim-1", 0, &d), LADE_OK);
    assert_int_equal(lade_fwm_check(&m, "lade-sim-1", 6, &d), LADE_OK);
    assert_int_equal(lade_fwm_check(&m, "lade-sim-1", 7, &d), LADE_OK); /* equal: allowed */
    assert_int_equal(d.reason, LADE_FWM_R_NONE);
    assert_int_equal(lade_fwm_check(&m, "lade-sim-1", 8, &d), LADE_ERR_STATE);
    assert_int_equal(d.reason, LADE_FWM_R_DOWNGRADE);
    assert_int_equal(lade_fwm_check(&m, "lade-sim-1", UINT32_MAX, &d), LADE_ERR_STATE);
    const char *others[] = {"lade-sim-2", "lade-sim", "lade-sim-10",
                            "LADE-SIM-1", "",         "lade-sim-1 "};
    for (size_t i = 0; i < sizeof others / sizeof *others; i++) {
        assert_int_equal(lade_fwm_check(&m, others[i], 0, &d), LADE_ERR_INVAL);
        assert_int_equal(d.reason, LADE_FWM_R_WRONG_HARDWARE);
    }
    /* wrong hardware is named before a downgrade */
    assert_int_equal(lade_fwm_check(&m, "lade-pro-2", 100, &d), LADE_ERR_INVAL);
    assert_int_equal(d.reason, LADE_FWM_R_WRONG_HARDWARE);
    assert_int_equal(lade_fwm_check(&m, NULL, 0, &d), LADE_ERR_INVAL);
    assert_int_equal(lade_fwm_check(NULL, "lade-sim-1", 0, NULL), LADE_ERR_INVAL);
}

static void test_check_image(void **state)
{
    (void)state;
    struct lade_fwm m;
    struct lade_fwm_diag d;
    assert_int_equal(parse_s(GOOD, &m, NULL), LADE_OK);
    uint8_t sha[32];
    memcpy(sha, m.image_sha256, 32);
    assert_int_equal(lade_fwm_check_image(&m, 10485760, sha, &d), LADE_OK);
    assert_int_equal(lade_fwm_check_image(&m, 10485761, sha, &d), LADE_ERR_AUTH);
    assert_int_equal(d.reason, LADE_FWM_R_IMAGE_LENGTH);
    assert_int_equal(lade_fwm_check_image(&m, 10485759, sha, &d), LADE_ERR_AUTH);
    assert_int_equal(d.reason, LADE_FWM_R_IMAGE_LENGTH);
    for (size_t i = 0; i < 32; i++) {
        sha[i] ^= 0x80;
        assert_int_equal(lade_fwm_check_image(&m, 10485760, sha, &d), LADE_ERR_AUTH);
        assert_int_equal(d.reason, LADE_FWM_R_IMAGE_HASH);
        sha[i] ^= 0x80;
    }
    assert_int_equal(lade_fwm_check_image(&m, 10485760, NULL, &d), LADE_ERR_INVAL);
}

static void test_notes_escape(void **state)
{
    (void)state;
    char esc[LADE_FWM_NOTES_MAX + 1], back[LADE_FWM_NOTES_MAX + 1];
    size_t n, bn;
    const char *raw = "Release 1.4\n\t- fixes C:\\path\n- æøå ✓";
    assert_int_equal(lade_fwm_notes_escape(raw, strlen(raw), esc, sizeof esc, &n), LADE_OK);
    assert_string_equal(esc, "Release 1.4\\n\\t- fixes C:\\\\path\\n- æøå ✓");
    assert_int_equal(n, strlen(esc));
    assert_int_equal(lade_fwm_notes_unescape((struct lade_str){esc, n}, back, sizeof back, &bn),
                     LADE_OK);
    assert_string_equal(back, raw);
    assert_int_equal(bn, strlen(raw));
    /* the escaped form is what the parser accepts */
    char line[LADE_FWM_NOTES_MAX + 16];
    snprintf(line, sizeof line, "notes: %s\n", esc);
    struct lade_fwm m;
    assert_int_equal(parse_s(with(GOOD, L_NOTES, line), &m, NULL), LADE_OK);
    assert_true(lade_str_eq_c(m.notes, esc));
    /* refusals */
    assert_int_equal(lade_fwm_notes_escape("a\rb", 3, esc, sizeof esc, &n), LADE_ERR_INVAL);
    assert_int_equal(lade_fwm_notes_escape("a\0b", 3, esc, sizeof esc, &n), LADE_ERR_INVAL);
    assert_int_equal(lade_fwm_notes_escape("a\x1b", 2, esc, sizeof esc, &n), LADE_ERR_INVAL);
    assert_int_equal(lade_fwm_notes_escape("\xff", 1, esc, sizeof esc, &n), LADE_ERR_INVAL);
    assert_int_equal(lade_fwm_notes_escape("abcdef", 6, esc, 6, &n), LADE_ERR_NOSPACE);
    assert_int_equal(lade_fwm_notes_escape("abcdef", 6, esc, 7, &n), LADE_OK);
    static char big[LADE_FWM_NOTES_MAX + 1];
    memset(big, '\n', sizeof big);
    assert_int_equal(lade_fwm_notes_escape(big, LADE_FWM_NOTES_MAX / 2, esc, sizeof esc, &n),
                     LADE_OK);
    assert_int_equal(n, LADE_FWM_NOTES_MAX);
    assert_int_equal(lade_fwm_notes_escape(big, LADE_FWM_NOTES_MAX / 2 + 1, esc, sizeof esc, &n),
                     LADE_ERR_TOO_BIG);
    assert_int_equal(lade_fwm_notes_escape("", 0, esc, sizeof esc, &n), LADE_OK);
    assert_int_equal(n, 0);
    assert_int_equal(lade_fwm_notes_unescape(LADE_STR("bad\\q"), back, sizeof back, &bn),
                     LADE_ERR_INVAL);
    assert_int_equal(lade_fwm_notes_unescape(LADE_STR("a\\n"), back, 2, &bn), LADE_ERR_NOSPACE);
    assert_int_equal(lade_fwm_notes_unescape(LADE_STR("a\\n"), back, 3, &bn), LADE_OK);
    assert_int_equal(bn, 2);
}

static void test_reason_text(void **state)
{
    (void)state;
    for (int i = 0; i < LADE_FWM_R__COUNT; i++) {
        const char *t = lade_fwm_reason_text((enum lade_fwm_reason)i);
        assert_string_not_equal(t, "unknown");
        for (int j = 0; j < i; j++)
            assert_string_not_equal(t, lade_fwm_reason_text((enum lade_fwm_reason)j));
    }
    assert_string_equal(lade_fwm_reason_text(LADE_FWM_R__COUNT), "unknown");
    assert_string_equal(lade_fwm_reason_text((enum lade_fwm_reason) - 1), "unknown");
}

static void test_validators(void **state)
{
    (void)state;
    assert_true(lade_fwm_hw_id_valid(LADE_STR("lade-sim-1")));
    assert_true(lade_fwm_hw_id_valid(LADE_STR("LADE_pro.2")));
    assert_false(lade_fwm_hw_id_valid(LADE_STR("")));
    assert_false(lade_fwm_hw_id_valid((struct lade_str){NULL, 3}));
    assert_true(lade_fwm_version_valid(LADE_STR("2.0.0")));
    assert_true(lade_fwm_version_valid(LADE_STR("2.0.0-beta.1+sha.5114f85")));
    assert_false(lade_fwm_version_valid(LADE_STR("")));
    assert_false(lade_fwm_version_valid(LADE_STR("-1")));
    assert_false(lade_fwm_version_valid(LADE_STR("2.0 ")));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good),
        cmocka_unit_test(test_parse_not_nul_terminated),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_parse_truncated),
        cmocka_unit_test(test_parse_bytes),
        cmocka_unit_test(test_parse_syntax),
        cmocka_unit_test(test_parse_keys),
        cmocka_unit_test(test_parse_values),
        cmocka_unit_test(test_parse_notes),
        cmocka_unit_test(test_parse_args),
        cmocka_unit_test(test_encode_roundtrip),
        cmocka_unit_test(test_encode_checks),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_check_image),
        cmocka_unit_test(test_notes_escape),
        cmocka_unit_test(test_reason_text),
        cmocka_unit_test(test_validators),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
