/* libFuzzer target: the firmware manifest parser (lade_fwm_parse), its canonical encoder, the
 * notes escaping, the checks and the Ed25519 verification (src/proto/fwmanifest,
 * src/port/linux/fwsig.c).
 *
 * Input: the manifest bytes, all of them (copied to an exact-size buffer, so an over-read is an
 * ASan report). Two keys are pinned: RFC 8032 test keys 1 and 2; the seeds in
 * corpus/fuzz_fwmanifest are signed with them, so the fuzzer starts from manifests that verify.
 * Invariants:
 *   - only OK, PROTO or TOO_BIG; TOO_BIG exactly when longer than LADE_FWM_MAX; a refusal names
 *     a parse reason and a line inside the input (or just past it) and leaves *m zeroed;
 *   - accepted: every view inside the input; the fields obey their rules; the signed bytes are
 *     the input up to a "signature: " line that ends the input;
 *   - one encoding: encode(parse(x)) == x, and the unsigned encoding is the signed prefix;
 *   - notes unescape, and escape back to the same text;
 *   - the checks agree with the fields (hardware equality, counter order, image length);
 *   - verify answers only OK or AUTH (KEY_UNKNOWN / BAD_SIGNATURE); a manifest that verifies
 *     stops verifying when any one signed byte changes (and still parses), or when the input
 *     loses its last byte (then it does not even parse). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lade/fwmanifest.h"
#include "lade/fwsig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

#define PINNED                                                                                     \
    "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=,PUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw="

static bool inside(struct lade_str v, const char *buf, size_t len)
{
    return v.p >= buf && v.n <= len && (size_t)(v.p - buf) <= len - v.n;
}

static void check_refusal(lade_err err, const struct lade_fwm *m, const struct lade_fwm_diag *d,
                          const char *buf, size_t len)
{
    static const struct lade_fwm zero;
    CHECK(err == LADE_ERR_PROTO || err == LADE_ERR_TOO_BIG);
    CHECK((err == LADE_ERR_TOO_BIG) == (len > LADE_FWM_MAX));
    CHECK(d->reason > LADE_FWM_R_NONE && d->reason < LADE_FWM_R_KEY_UNKNOWN);
    CHECK((d->reason == LADE_FWM_R_TOO_BIG) == (err == LADE_ERR_TOO_BIG));
    CHECK(memcmp(m, &zero, sizeof zero) == 0);
    if (err == LADE_ERR_PROTO) {
        unsigned lines = 1;
        for (size_t i = 0; i < len; i++)
            lines += buf[i] == '\n';
        CHECK(d->line >= 1 && d->line <= lines);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct lade_fwsig_keys keys;
    static bool once;
    if (!once) {
        once = true;
        CHECK(lade_fwsig_keys_parse(PINNED, &keys) == LADE_OK);
    }
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);

    struct lade_fwm m;
    struct lade_fwm_diag d;
    lade_err err = lade_fwm_parse(buf, size, &m, &d);
    if (err != LADE_OK) {
        check_refusal(err, &m, &d, buf, size);
        goto out;
    }
    CHECK(d.reason == LADE_FWM_R_NONE && d.line == 0);

    /* views and fields */
    CHECK(m.raw.p == buf && m.raw.n == size && size <= LADE_FWM_MAX);
    CHECK(inside(m.hw_id, buf, size) && lade_fwm_hw_id_valid(m.hw_id));
    CHECK(inside(m.version, buf, size) && lade_fwm_version_valid(m.version));
    CHECK(inside(m.key_id, buf, size) && m.key_id.n == LADE_FWM_KEY_ID_LEN);
    CHECK(m.notes.n == 0 ? m.notes.p == NULL : inside(m.notes, buf, size));
    CHECK(m.notes.n <= LADE_FWM_NOTES_MAX);
    CHECK(m.format == LADE_FWM_FORMAT && m.image_len >= 1 && m.has_sig);
    struct lade_str sb = lade_fwm_signed_bytes(&m);
    CHECK(sb.p == buf && sb.n == m.signed_len && sb.n < size);
    CHECK(size - sb.n == strlen(LADE_FWM_SIGNATURE_LINE) + LADE_FWM_SIG_B64_LEN + 1);
    CHECK(memcmp(buf + sb.n, LADE_FWM_SIGNATURE_LINE, strlen(LADE_FWM_SIGNATURE_LINE)) == 0);
    CHECK(buf[size - 1] == '\n' && memchr(buf, 0, size) == NULL && memchr(buf, '\r', size) == NULL);

    /* one encoding */
    static char enc[LADE_FWM_MAX + 1];
    size_t n = 0;
    CHECK(lade_fwm_encoded_len(&m, true) == size);
    CHECK(lade_fwm_encode(&m, true, enc, sizeof enc, &n, NULL) == LADE_OK);
    CHECK(n == size && memcmp(enc, buf, size) == 0);
    CHECK(lade_fwm_encode(&m, false, enc, sizeof enc, &n, NULL) == LADE_OK);
    CHECK(n == m.signed_len && memcmp(enc, buf, n) == 0);
    CHECK(lade_fwm_encode(&m, true, enc, size, &n, NULL) == LADE_ERR_NOSPACE);

    /* notes */
    if (m.notes.n) {
        static char raw[LADE_FWM_NOTES_MAX + 1], back[LADE_FWM_NOTES_MAX + 1];
        size_t rn = 0, bn = 0;
        CHECK(lade_fwm_notes_unescape(m.notes, raw, sizeof raw, &rn) == LADE_OK);
        CHECK(rn <= m.notes.n);
        CHECK(lade_fwm_notes_escape(raw, rn, back, sizeof back, &bn) == LADE_OK);
        CHECK(bn == m.notes.n && memcmp(back, m.notes.p, bn) == 0);
    }

    /* checks agree with the fields */
    bool ours = lade_str_eq_c(m.hw_id, "lade-sim-1");
    CHECK((lade_fwm_check(&m, "lade-sim-1", 0, &d) == LADE_OK) == ours);
    if (ours) {
        CHECK(lade_fwm_check(&m, "lade-sim-1", m.security_counter, &d) == LADE_OK);
        if (m.security_counter < UINT32_MAX) {
            CHECK(lade_fwm_check(&m, "lade-sim-1", m.security_counter + 1, &d) == LADE_ERR_STATE);
            CHECK(d.reason == LADE_FWM_R_DOWNGRADE);
        }
    }
    CHECK(lade_fwm_check_image(&m, m.image_len, m.image_sha256, &d) == LADE_OK);
    CHECK(lade_fwm_check_image(&m, m.image_len - 1, m.image_sha256, &d) == LADE_ERR_AUTH);

    /* signature */
    err = lade_fwsig_verify(&keys, &m, &d);
    CHECK(err == LADE_OK || err == LADE_ERR_AUTH);
    if (err != LADE_OK) {
        CHECK(d.reason == LADE_FWM_R_KEY_UNKNOWN || d.reason == LADE_FWM_R_BAD_SIGNATURE);
        goto out;
    }
    /* a good one: any changed signed byte breaks it (the position is picked from the input) */
    size_t at = (size_t)buf[size / 2] * 31u % m.signed_len;
    char saved = buf[at];
    buf[at] = (char)(saved == '0' ? '1' : '0');
    struct lade_fwm t;
    if (lade_fwm_parse(buf, size, &t, &d) == LADE_OK)
        CHECK(lade_fwsig_verify(&keys, &t, &d) == LADE_ERR_AUTH);
    buf[at] = saved;
    CHECK(lade_fwm_parse(buf, size - 1, &t, &d) == LADE_ERR_PROTO);
    CHECK(lade_fwsig_accept(&keys, buf, size, NULL, 0, &t, &d) == LADE_OK);
out:
    free(buf);
    return 0;
}
