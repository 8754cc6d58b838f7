/* Firmware manifest codec and checks (docs/firmware.md "Manifest"). Pure: no I/O, no clock, no
 * malloc.
 *
 * Why so strict: the signature covers bytes, but the device acts on the fields it parses from
 * them. A lenient parser (CRLF or LF, optional spaces, comments, repeated keys with "last one
 * wins", unknown keys ignored) lets two programs read different fields from the same signed
 * bytes — the gap behind many "signature valid, contents not what was signed" bugs. Here every
 * manifest has exactly one encoding, every byte before the signature line is signed, and there
 * is nothing the parser skips. */
#include "lade/fwmanifest.h"

#include <string.h>

enum key {
    K_MAGIC,
    K_HW,
    K_VERSION,
    K_COUNTER,
    K_LENGTH,
    K_HASH,
    K_NOTES,
    K_KEY_ID,
    K_SIG,
    K__N,
};

static const struct {
    const char *name;
    bool optional;
} keys[K__N] = {
    [K_MAGIC] = {"lade-fw-manifest", false},
    [K_HW] = {"hardware", false},
    [K_VERSION] = {"version", false},
    [K_COUNTER] = {"security-counter", false},
    [K_LENGTH] = {"image-length", false},
    [K_HASH] = {"image-sha256", false},
    [K_NOTES] = {"notes", true},
    [K_KEY_ID] = {"key-id", false},
    [K_SIG] = {"signature", false},
};

const char *lade_fwm_reason_text(enum lade_fwm_reason r)
{
    switch (r) {
    case LADE_FWM_R_NONE:
        return "ok";
    case LADE_FWM_R_TOO_BIG:
        return "manifest too big";
    case LADE_FWM_R_TRUNCATED:
        return "manifest truncated";
    case LADE_FWM_R_NUL:
        return "NUL byte in manifest";
    case LADE_FWM_R_CR:
        return "CR in manifest (line ends must be LF only)";
    case LADE_FWM_R_CONTROL:
        return "control character in manifest";
    case LADE_FWM_R_SYNTAX:
        return "line is not 'key: value'";
    case LADE_FWM_R_MAGIC:
        return "not a lade firmware manifest";
    case LADE_FWM_R_FORMAT_VERSION:
        return "unsupported manifest format version";
    case LADE_FWM_R_UNKNOWN_KEY:
        return "unknown key";
    case LADE_FWM_R_DUPLICATE_KEY:
        return "duplicate key";
    case LADE_FWM_R_ORDER:
        return "key out of order";
    case LADE_FWM_R_MISSING_KEY:
        return "required key missing";
    case LADE_FWM_R_HARDWARE:
        return "bad hardware id";
    case LADE_FWM_R_VERSION:
        return "bad firmware version";
    case LADE_FWM_R_COUNTER:
        return "bad security-counter";
    case LADE_FWM_R_LENGTH:
        return "bad image-length";
    case LADE_FWM_R_HASH:
        return "bad image-sha256 (64 lower-case hex digits)";
    case LADE_FWM_R_NOTES:
        return "bad notes (escape or UTF-8)";
    case LADE_FWM_R_NOTES_TOO_LONG:
        return "notes too long";
    case LADE_FWM_R_KEY_ID:
        return "bad key-id (16 lower-case hex digits)";
    case LADE_FWM_R_UNSIGNED:
        return "manifest not signed";
    case LADE_FWM_R_SIGNATURE:
        return "bad signature encoding (Base64 of 64 bytes)";
    case LADE_FWM_R_TRAILING:
        return "data after the signature";
    case LADE_FWM_R_KEY_UNKNOWN:
        return "signed by a key that is not pinned (unknown key-id)";
    case LADE_FWM_R_BAD_SIGNATURE:
        return "signature does not verify";
    case LADE_FWM_R_WRONG_HARDWARE:
        return "wrong hardware id";
    case LADE_FWM_R_DOWNGRADE:
        return "downgrade: security counter below the installed one";
    case LADE_FWM_R_IMAGE_LENGTH:
        return "image length differs from the manifest";
    case LADE_FWM_R_IMAGE_HASH:
        return "image SHA-256 differs from the manifest";
    case LADE_FWM_R__COUNT:
        break;
    }
    return "unknown";
}

static lade_err refuse(struct lade_fwm_diag *diag, lade_err err, enum lade_fwm_reason r,
                       unsigned line)
{
    if (diag) {
        diag->reason = r;
        diag->line = line;
    }
    return err;
}

static bool in_set(char c, const char *extra)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr(extra, c));
}

bool lade_fwm_hw_id_valid(struct lade_str s)
{
    if (!s.p || s.n == 0 || s.n > LADE_FWM_HW_MAX)
        return false;
    for (size_t i = 0; i < s.n; i++)
        if (!in_set(s.p[i], "._-"))
            return false;
    return true;
}

bool lade_fwm_version_valid(struct lade_str s)
{
    if (!s.p || s.n == 0 || s.n > LADE_FWM_VERSION_MAX || s.p[0] < '0' || s.p[0] > '9')
        return false;
    for (size_t i = 0; i < s.n; i++)
        if (!in_set(s.p[i], ".+-"))
            return false;
    return true;
}

/* Strict decimal: digits only, no sign, no leading zero (but "0"), at most max. */
static bool parse_dec(struct lade_str s, uint64_t max, uint64_t *out)
{
    if (s.n == 0 || s.n > 20 || (s.n > 1 && s.p[0] == '0'))
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return false;
        uint64_t d = (uint64_t)(s.p[i] - '0');
        if (v > (max - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static int lower_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Exactly 2*n lower-case hex digits; out may be NULL (check only). */
static bool parse_hex(struct lade_str s, uint8_t *out, size_t n)
{
    if (!s.p || s.n != 2 * n)
        return false;
    for (size_t i = 0; i < n; i++) {
        int hi = lower_hex(s.p[2 * i]), lo = lower_hex(s.p[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        if (out)
            out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

/* Escaped notes as written: no control character, valid UTF-8, only \n \t \\ escapes. */
static enum lade_fwm_reason notes_check(struct lade_str s)
{
    if (s.n > LADE_FWM_NOTES_MAX)
        return LADE_FWM_R_NOTES_TOO_LONG;
    if (!s.p || s.n == 0 || !lade_utf8_valid((const uint8_t *)s.p, s.n, false))
        return LADE_FWM_R_NOTES;
    for (size_t i = 0; i < s.n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c < 0x20 || c == 0x7f)
            return LADE_FWM_R_NOTES;
        if (c == '\\') {
            if (i + 1 >= s.n || !strchr("nt\\", s.p[i + 1]))
                return LADE_FWM_R_NOTES;
            i++;
        }
    }
    return LADE_FWM_R_NONE;
}

/* Validates one value; fills the matching field of m. */
static enum lade_fwm_reason take_value(enum key k, struct lade_str v, struct lade_fwm *m)
{
    uint64_t u;
    switch (k) {
    case K_MAGIC:
        if (!parse_dec(v, UINT32_MAX, &u))
            return LADE_FWM_R_MAGIC;
        if (u != LADE_FWM_FORMAT)
            return LADE_FWM_R_FORMAT_VERSION;
        m->format = (uint32_t)u;
        return LADE_FWM_R_NONE;
    case K_HW:
        if (!lade_fwm_hw_id_valid(v))
            return LADE_FWM_R_HARDWARE;
        m->hw_id = v;
        return LADE_FWM_R_NONE;
    case K_VERSION:
        if (!lade_fwm_version_valid(v))
            return LADE_FWM_R_VERSION;
        m->version = v;
        return LADE_FWM_R_NONE;
    case K_COUNTER:
        if (!parse_dec(v, UINT32_MAX, &u))
            return LADE_FWM_R_COUNTER;
        m->security_counter = (uint32_t)u;
        return LADE_FWM_R_NONE;
    case K_LENGTH:
        if (!parse_dec(v, UINT64_MAX, &u) || u == 0)
            return LADE_FWM_R_LENGTH;
        m->image_len = u;
        return LADE_FWM_R_NONE;
    case K_HASH:
        return parse_hex(v, m->image_sha256, LADE_FWM_SHA256_LEN) ? LADE_FWM_R_NONE
                                                                  : LADE_FWM_R_HASH;
    case K_NOTES: {
        enum lade_fwm_reason r = notes_check(v);
        if (r == LADE_FWM_R_NONE)
            m->notes = v;
        return r;
    }
    case K_KEY_ID:
        if (!parse_hex(v, NULL, LADE_FWM_KEY_ID_LEN / 2))
            return LADE_FWM_R_KEY_ID;
        m->key_id = v;
        return LADE_FWM_R_NONE;
    case K_SIG: {
        size_t n = 0;
        if (v.n != LADE_FWM_SIG_B64_LEN ||
            lade_base64_decode(v.p, v.n, m->sig, sizeof m->sig, &n) != LADE_OK ||
            n != LADE_FWM_SIG_LEN)
            return LADE_FWM_R_SIGNATURE;
        m->has_sig = true;
        return LADE_FWM_R_NONE;
    }
    case K__N:
        break;
    }
    return LADE_FWM_R_SYNTAX;
}

static bool key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

static int find_key(struct lade_str k)
{
    for (int i = 0; i < K__N; i++)
        if (lade_str_eq_c(k, keys[i].name))
            return i;
    return -1;
}

static lade_err parse_fail(struct lade_fwm *m, struct lade_fwm_diag *diag, lade_err err,
                           enum lade_fwm_reason r, unsigned line)
{
    memset(m, 0, sizeof *m);
    return refuse(diag, err, r, line);
}

lade_err lade_fwm_parse(const char *buf, size_t len, struct lade_fwm *m, struct lade_fwm_diag *diag)
{
    if (diag)
        *diag = (struct lade_fwm_diag){0};
    if (!m || (!buf && len))
        return LADE_ERR_INVAL;
    memset(m, 0, sizeof *m);
    if (len > LADE_FWM_MAX)
        return parse_fail(m, diag, LADE_ERR_TOO_BIG, LADE_FWM_R_TOO_BIG, 0);

    /* Bytes first: one pass names NUL, CR and control characters wherever they are, before a
     * line split could hide them behind another complaint. */
    unsigned line = 1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c == '\n')
            line++;
        else if (c == 0)
            return parse_fail(m, diag, LADE_ERR_PROTO, LADE_FWM_R_NUL, line);
        else if (c == '\r')
            return parse_fail(m, diag, LADE_ERR_PROTO, LADE_FWM_R_CR, line);
        else if (c < 0x20 || c == 0x7f)
            return parse_fail(m, diag, LADE_ERR_PROTO, LADE_FWM_R_CONTROL, line);
    }

    unsigned seen = 0;
    int next = K_MAGIC;
    size_t pos = 0;
    line = 0;
    while (pos < len) {
        line++;
        if (seen & (1u << K_SIG))
            return parse_fail(m, diag, LADE_ERR_PROTO, LADE_FWM_R_TRAILING, line);
        const char *lf = memchr(buf + pos, '\n', len - pos);
        if (!lf)
            return parse_fail(m, diag, LADE_ERR_PROTO, LADE_FWM_R_TRUNCATED, line);
        size_t eol = (size_t)(lf - buf);
        struct lade_str l = {buf + pos, eol - pos};

        size_t kn = 0;
        while (kn < l.n && key_char(l.p[kn]))
            kn++;
        if (kn == 0 || kn + 2 > l.n || l.p[kn] != ':' || l.p[kn + 1] != ' ' || kn + 2 == l.n)
            return parse_fail(m, diag, LADE_ERR_PROTO,
                              line == 1 ? LADE_FWM_R_MAGIC : LADE_FWM_R_SYNTAX, line);
        struct lade_str key = {l.p, kn};
        struct lade_str val = {l.p + kn + 2, l.n - kn - 2};
        int k = find_key(key);
        if (line == 1 && k != K_MAGIC)
            return parse_fail(m, diag, LADE_ERR_PROTO, LADE_FWM_R_MAGIC, line);
        if (k < 0)
            return parse_fail(m, diag, LADE_ERR_PROTO, LADE_FWM_R_UNKNOWN_KEY, line);
        if (seen & (1u << k))
            return parse_fail(m, diag, LADE_ERR_PROTO, LADE_FWM_R_DUPLICATE_KEY, line);
        if (k < next)
            return parse_fail(m, diag, LADE_ERR_PROTO, LADE_FWM_R_ORDER, line);
        for (int j = next; j < k; j++)
            if (!keys[j].optional)
                return parse_fail(m, diag, LADE_ERR_PROTO, LADE_FWM_R_MISSING_KEY, line);
        enum lade_fwm_reason r = take_value((enum key)k, val, m);
        if (r != LADE_FWM_R_NONE)
            return parse_fail(m, diag, LADE_ERR_PROTO, r, line);
        if (k == K_SIG)
            m->signed_len = pos;
        seen |= 1u << k;
        next = k + 1;
        pos = eol + 1;
    }
    if (!(seen & (1u << K_SIG)))
        return parse_fail(m, diag, LADE_ERR_PROTO,
                          (seen & (1u << K_KEY_ID)) ? LADE_FWM_R_UNSIGNED : LADE_FWM_R_TRUNCATED,
                          line + 1);
    m->raw = (struct lade_str){buf, len};
    return LADE_OK;
}

struct lade_str lade_fwm_signed_bytes(const struct lade_fwm *m)
{
    if (!m || !m->raw.p || m->signed_len > m->raw.n)
        return (struct lade_str){NULL, 0};
    return (struct lade_str){m->raw.p, m->signed_len};
}

/* ------------------------------------------------------------------ encode */

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

/* Writes "key: value\n" at out+*pos when out is non-NULL; always advances *pos. */
static void put_line(char *out, size_t *pos, enum key k, const char *v, size_t vn)
{
    size_t kn = strlen(keys[k].name);
    if (out) {
        memcpy(out + *pos, keys[k].name, kn);
        memcpy(out + *pos + kn, ": ", 2);
        memcpy(out + *pos + kn + 2, v, vn);
        out[*pos + kn + 2 + vn] = '\n';
    }
    *pos += kn + 2 + vn + 1;
}

static const char hexdig[] = "0123456789abcdef";

/* Checks m as the parser would, then measures (out NULL) or writes the encoding. */
static enum lade_fwm_reason encode(const struct lade_fwm *m, bool with_sig, char *out, size_t *len)
{
    uint8_t probe[LADE_FWM_KEY_ID_LEN / 2];
    if (m->format != LADE_FWM_FORMAT)
        return LADE_FWM_R_FORMAT_VERSION;
    if (!lade_fwm_hw_id_valid(m->hw_id))
        return LADE_FWM_R_HARDWARE;
    if (!lade_fwm_version_valid(m->version))
        return LADE_FWM_R_VERSION;
    if (m->image_len == 0)
        return LADE_FWM_R_LENGTH;
    if (m->notes.n > 0) {
        enum lade_fwm_reason r = notes_check(m->notes);
        if (r != LADE_FWM_R_NONE)
            return r;
    }
    if (!parse_hex(m->key_id, probe, sizeof probe))
        return LADE_FWM_R_KEY_ID;
    if (with_sig && !m->has_sig)
        return LADE_FWM_R_UNSIGNED;

    char num[24], hex[2 * LADE_FWM_SHA256_LEN];
    size_t pos = 0, n;
    n = fmt_u64(m->format, num);
    put_line(out, &pos, K_MAGIC, num, n);
    put_line(out, &pos, K_HW, m->hw_id.p, m->hw_id.n);
    put_line(out, &pos, K_VERSION, m->version.p, m->version.n);
    n = fmt_u64(m->security_counter, num);
    put_line(out, &pos, K_COUNTER, num, n);
    n = fmt_u64(m->image_len, num);
    put_line(out, &pos, K_LENGTH, num, n);
    for (size_t i = 0; i < LADE_FWM_SHA256_LEN; i++) {
        hex[2 * i] = hexdig[m->image_sha256[i] >> 4];
        hex[2 * i + 1] = hexdig[m->image_sha256[i] & 15];
    }
    put_line(out, &pos, K_HASH, hex, sizeof hex);
    if (m->notes.n > 0)
        put_line(out, &pos, K_NOTES, m->notes.p, m->notes.n);
    put_line(out, &pos, K_KEY_ID, m->key_id.p, m->key_id.n);
    if (with_sig) {
        char b64[LADE_FWM_SIG_B64_LEN + 1];
        size_t bn = 0;
        if (lade_base64_encode(m->sig, sizeof m->sig, b64, sizeof b64, &bn) != LADE_OK)
            return LADE_FWM_R_SIGNATURE;
        put_line(out, &pos, K_SIG, b64, bn);
    }
    if (pos > LADE_FWM_MAX)
        return LADE_FWM_R_TOO_BIG;
    *len = pos;
    return LADE_FWM_R_NONE;
}

size_t lade_fwm_encoded_len(const struct lade_fwm *m, bool with_sig)
{
    size_t len = 0;
    if (!m || encode(m, with_sig, NULL, &len) != LADE_FWM_R_NONE)
        return 0;
    return len;
}

lade_err lade_fwm_encode(const struct lade_fwm *m, bool with_sig, char *out, size_t cap,
                         size_t *len, struct lade_fwm_diag *diag)
{
    if (diag)
        *diag = (struct lade_fwm_diag){0};
    if (!m || !out || !len)
        return LADE_ERR_INVAL;
    size_t need = 0;
    enum lade_fwm_reason r = encode(m, with_sig, NULL, &need);
    if (r != LADE_FWM_R_NONE)
        return refuse(diag, r == LADE_FWM_R_TOO_BIG ? LADE_ERR_TOO_BIG : LADE_ERR_INVAL, r, 0);
    if (cap <= need)
        return LADE_ERR_NOSPACE;
    if (encode(m, with_sig, out, &need) != LADE_FWM_R_NONE)
        return LADE_ERR_INVAL;
    out[need] = 0;
    *len = need;
    return LADE_OK;
}

/* ------------------------------------------------------------------ checks */

lade_err lade_fwm_check(const struct lade_fwm *m, const char *expected_hw_id,
                        uint32_t installed_counter, struct lade_fwm_diag *diag)
{
    if (diag)
        *diag = (struct lade_fwm_diag){0};
    if (!m || !expected_hw_id)
        return LADE_ERR_INVAL;
    if (!lade_str_eq_c(m->hw_id, expected_hw_id))
        return refuse(diag, LADE_ERR_INVAL, LADE_FWM_R_WRONG_HARDWARE, 0);
    /* Anti-rollback by the signed counter only, never by a version string or a date. */
    if (m->security_counter < installed_counter)
        return refuse(diag, LADE_ERR_STATE, LADE_FWM_R_DOWNGRADE, 0);
    return LADE_OK;
}

lade_err lade_fwm_check_image(const struct lade_fwm *m, uint64_t image_len,
                              const uint8_t sha256[LADE_FWM_SHA256_LEN], struct lade_fwm_diag *diag)
{
    if (diag)
        *diag = (struct lade_fwm_diag){0};
    if (!m || !sha256)
        return LADE_ERR_INVAL;
    if (image_len != m->image_len)
        return refuse(diag, LADE_ERR_AUTH, LADE_FWM_R_IMAGE_LENGTH, 0);
    if (!lade_ct_equal(sha256, m->image_sha256, LADE_FWM_SHA256_LEN))
        return refuse(diag, LADE_ERR_AUTH, LADE_FWM_R_IMAGE_HASH, 0);
    return LADE_OK;
}

/* ------------------------------------------------------------------ notes */

lade_err lade_fwm_notes_escape(const char *raw, size_t n, char *out, size_t cap, size_t *len)
{
    if ((!raw && n) || !out || !len)
        return LADE_ERR_INVAL;
    if (!lade_utf8_valid((const uint8_t *)(raw ? raw : ""), n, false))
        return LADE_ERR_INVAL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)raw[i];
        char esc = 0;
        if (c == '\n')
            esc = 'n';
        else if (c == '\t')
            esc = 't';
        else if (c == '\\')
            esc = '\\';
        else if (c < 0x20 || c == 0x7f)
            return LADE_ERR_INVAL;
        size_t w = esc ? 2 : 1;
        if (o + w > LADE_FWM_NOTES_MAX)
            return LADE_ERR_TOO_BIG;
        if (o + w >= cap)
            return LADE_ERR_NOSPACE;
        if (esc) {
            out[o++] = '\\';
            out[o++] = esc;
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = 0;
    *len = o;
    return LADE_OK;
}

lade_err lade_fwm_notes_unescape(struct lade_str notes, char *out, size_t cap, size_t *len)
{
    if (!out || !len || cap == 0 || (!notes.p && notes.n))
        return LADE_ERR_INVAL;
    if (notes.n > 0 && notes_check(notes) != LADE_FWM_R_NONE)
        return LADE_ERR_INVAL;
    size_t o = 0;
    for (size_t i = 0; i < notes.n; i++) {
        char c = notes.p[i];
        if (c == '\\') {
            c = notes.p[++i];
            c = c == 'n' ? '\n' : c == 't' ? '\t' : '\\';
        }
        if (o + 1 >= cap)
            return LADE_ERR_NOSPACE;
        out[o++] = c;
    }
    out[o] = 0;
    *len = o;
    return LADE_OK;
}
