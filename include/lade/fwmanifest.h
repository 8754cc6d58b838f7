/* lade — firmware manifest, pure part (src/proto/fwmanifest): parse, encode and check the
 * signed description of one firmware image. No I/O, no clock, no allocation. The signature
 * itself (Ed25519, OpenSSL) is include/lade/fwsig.h. Format, limits and reasons:
 * docs/firmware.md "Manifest".
 *
 * A manifest is UTF-8 text of "key: value" lines, each ended by one LF, in this fixed order:
 *
 *   lade-fw-manifest: 1                 format version (only 1); also the domain separator
 *   hardware: lade-sim-1                1..64 of [A-Za-z0-9._-]
 *   version: 1.4.2                      1..64 of [0-9A-Za-z.+-], starting with a digit
 *   security-counter: 7                 decimal uint32, no sign, no leading zero
 *   image-length: 10485760              decimal uint64, >= 1, no sign, no leading zero
 *   image-sha256: <64 lower-case hex>
 *   notes: <text>                       optional; <= LADE_FWM_NOTES_MAX bytes, escaped (below)
 *   key-id: <16 lower-case hex>         the pinned key that signed it (lade_fwsig_key_id)
 *   signature: <Base64 of 64 bytes>     Ed25519 over every byte before this line
 *
 * Nothing else: no comments, no blank lines, no CR, no NUL, no other control character, the
 * key, ": " and the value (everything up to the LF, never empty), no unknown or repeated key,
 * nothing after the signature line, at most LADE_FWM_MAX bytes in all. So a manifest has exactly
 * one encoding, parse → encode gives the same bytes, and the signed bytes are the file's first
 * bytes up to the LF that ends the key-id line.
 *
 * Notes are one line: a backslash escapes "\n" (line feed), "\t" (tab) and "\\" (backslash);
 * any other escape, a lone trailing backslash, a control character or invalid UTF-8 is refused.
 * lade_fwm_notes_unescape gives the text back.
 *
 * Every refusal returns a lade_err and fills a struct lade_fwm_diag (reason + line) when the
 * caller passes one; lade_fwm_reason_text names the reason for logs, status and reports.
 */
#ifndef LADE_FWMANIFEST_H
#define LADE_FWMANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lade/codec.h"
#include "lade/err.h"

#define LADE_FWM_MAX            4096 /* whole manifest, bytes */
#define LADE_FWM_FORMAT         1    /* the only format version */
#define LADE_FWM_HW_MAX         64   /* hardware id, characters */
#define LADE_FWM_VERSION_MAX    64   /* firmware version, characters */
#define LADE_FWM_NOTES_MAX      1024 /* notes, bytes as written (escaped) */
#define LADE_FWM_SHA256_LEN     32
#define LADE_FWM_KEY_ID_LEN     16 /* hex characters (8 bytes of SHA-256 of the public key) */
#define LADE_FWM_SIG_LEN        64 /* Ed25519 */
#define LADE_FWM_SIG_B64_LEN    88
#define LADE_FWM_SIGNATURE_LINE "signature: "

enum lade_fwm_reason {
    LADE_FWM_R_NONE = 0,
    /* parse (LADE_ERR_PROTO unless said otherwise) */
    LADE_FWM_R_TOO_BIG,        /* more than LADE_FWM_MAX bytes (LADE_ERR_TOO_BIG) */
    LADE_FWM_R_TRUNCATED,      /* ends inside a line or before the last key */
    LADE_FWM_R_NUL,            /* a NUL byte */
    LADE_FWM_R_CR,             /* a CR (CRLF line ends are not the canonical form) */
    LADE_FWM_R_CONTROL,        /* another control character (tab, ESC, DEL...) */
    LADE_FWM_R_SYNTAX,         /* not "key: value" (no ": " after a key, or an empty value) */
    LADE_FWM_R_MAGIC,          /* first line is not "lade-fw-manifest: N" */
    LADE_FWM_R_FORMAT_VERSION, /* "lade-fw-manifest: N" with N other than 1 */
    LADE_FWM_R_UNKNOWN_KEY,
    LADE_FWM_R_DUPLICATE_KEY,
    LADE_FWM_R_ORDER,       /* a known key out of its place */
    LADE_FWM_R_MISSING_KEY, /* a required key was skipped */
    LADE_FWM_R_HARDWARE,    /* hardware id: empty, too long or a character outside the set */
    LADE_FWM_R_VERSION,     /* firmware version: likewise */
    LADE_FWM_R_COUNTER,     /* security-counter: not a strict decimal uint32 */
    LADE_FWM_R_LENGTH,      /* image-length: not a strict decimal uint64, or 0 */
    LADE_FWM_R_HASH,        /* image-sha256: not 64 lower-case hex digits */
    LADE_FWM_R_NOTES,       /* notes: bad escape or invalid UTF-8 */
    LADE_FWM_R_NOTES_TOO_LONG,
    LADE_FWM_R_KEY_ID,    /* key-id: not 16 lower-case hex digits */
    LADE_FWM_R_UNSIGNED,  /* every field but no signature line */
    LADE_FWM_R_SIGNATURE, /* signature: not strict Base64 of exactly 64 bytes */
    LADE_FWM_R_TRAILING,  /* bytes after the signature line */
    /* signature (include/lade/fwsig.h; LADE_ERR_AUTH) */
    LADE_FWM_R_KEY_UNKNOWN,   /* key-id names none of the pinned keys */
    LADE_FWM_R_BAD_SIGNATURE, /* the named key did not sign these bytes */
    /* checks */
    LADE_FWM_R_WRONG_HARDWARE, /* for another hardware id (LADE_ERR_INVAL) */
    LADE_FWM_R_DOWNGRADE,      /* security counter below the installed one (LADE_ERR_STATE) */
    LADE_FWM_R_IMAGE_LENGTH,   /* image of another length (LADE_ERR_AUTH) */
    LADE_FWM_R_IMAGE_HASH,     /* image with another SHA-256 (LADE_ERR_AUTH) */
    LADE_FWM_R__COUNT
};

/* Short, static text ("wrong hardware id", "downgrade: security counter below the installed
 * one", ...); "unknown" for values out of range. Never NULL. */
const char *lade_fwm_reason_text(enum lade_fwm_reason r);

/* Why something was refused. line: 1-based line of the manifest for parse errors, 0 otherwise. */
struct lade_fwm_diag {
    enum lade_fwm_reason reason;
    unsigned line;
};

/* A manifest. After lade_fwm_parse every view points into the caller's buffer, which must
 * outlive the struct; to build one for lade_fwm_encode, fill the fields by hand (the views may
 * point anywhere). */
struct lade_fwm {
    uint32_t format;         /* LADE_FWM_FORMAT */
    struct lade_str hw_id;   /* hardware id */
    struct lade_str version; /* firmware version, informational; anti-rollback uses the counter */
    uint32_t security_counter;
    uint64_t image_len; /* bytes */
    uint8_t image_sha256[LADE_FWM_SHA256_LEN];
    struct lade_str notes;  /* escaped form as written; {NULL, 0} when absent */
    struct lade_str key_id; /* LADE_FWM_KEY_ID_LEN lower-case hex */
    uint8_t sig[LADE_FWM_SIG_LEN];
    bool has_sig;        /* parse: always true on success */
    struct lade_str raw; /* parse: the whole manifest; encode: ignored */
    size_t signed_len;   /* parse: raw.p[0, signed_len) is what the signature covers */
};

/* Parses and validates buf[0..len) (need not be NUL-terminated; a NUL inside is refused).
 *   LADE_OK          *m filled; m->has_sig true
 *   LADE_ERR_TOO_BIG len > LADE_FWM_MAX
 *   LADE_ERR_PROTO   malformed; diag says why and where
 *   LADE_ERR_INVAL   NULL buf (with len > 0) or m
 * On error *m is zeroed. This checks form only: use lade_fwsig_verify before trusting a field. */
lade_err lade_fwm_parse(const char *buf, size_t len, struct lade_fwm *m,
                        struct lade_fwm_diag *diag) LADE_MUST_CHECK;

/* The exact bytes the signature covers: a view into the parsed buffer (empty for a manifest
 * that was not parsed). */
struct lade_str lade_fwm_signed_bytes(const struct lade_fwm *m);

/* Exact size of the encoding of m: the signed part only (with_sig false), or the whole manifest
 * with its signature line. 0 when m does not validate. */
size_t lade_fwm_encoded_len(const struct lade_fwm *m, bool with_sig);
/* Writes the canonical encoding of m (fields checked exactly as the parser does; notes given
 * escaped), NUL-terminated; *len excludes the NUL. The signed part is byte for byte the prefix
 * of the whole manifest, so: encode(with_sig false) → sign those bytes → set sig/has_sig →
 * encode(with_sig true).
 * Errors: LADE_ERR_INVAL (a field the parser would refuse, or with_sig without has_sig; diag
 * says which), LADE_ERR_NOSPACE (cap <= encoded length; nothing truncated), LADE_ERR_TOO_BIG. */
lade_err lade_fwm_encode(const struct lade_fwm *m, bool with_sig, char *out, size_t cap,
                         size_t *len, struct lade_fwm_diag *diag) LADE_MUST_CHECK;

/* Checks a manifest whose signature was verified against this device:
 *   hardware id equal to expected_hw_id (byte for byte) else LADE_ERR_INVAL, WRONG_HARDWARE;
 *   security_counter >= installed_counter            else LADE_ERR_STATE, DOWNGRADE.
 * An equal counter is accepted (a fix that closes no hole need not raise it); the version
 * string is not compared. Nothing here reads a clock: there are no dates on this path. */
lade_err lade_fwm_check(const struct lade_fwm *m, const char *expected_hw_id,
                        uint32_t installed_counter, struct lade_fwm_diag *diag) LADE_MUST_CHECK;

/* Checks a downloaded image against the manifest: image_len equal to m->image_len else
 * LADE_ERR_AUTH, IMAGE_LENGTH; sha256 equal (constant time) else LADE_ERR_AUTH, IMAGE_HASH. */
lade_err lade_fwm_check_image(const struct lade_fwm *m, uint64_t image_len,
                              const uint8_t sha256[LADE_FWM_SHA256_LEN],
                              struct lade_fwm_diag *diag) LADE_MUST_CHECK;

/* Field validators, as the parser applies them (exposed for tools and settings). */
bool lade_fwm_hw_id_valid(struct lade_str s);
bool lade_fwm_version_valid(struct lade_str s);

/* Notes: escape raw text (LF → "\n", tab → "\t", '\' → "\\"; any other control character or
 * invalid UTF-8 → LADE_ERR_INVAL) and back. Both write a NUL; *len excludes it.
 * Errors: LADE_ERR_INVAL, LADE_ERR_NOSPACE (nothing truncated), LADE_ERR_TOO_BIG (escape only:
 * longer than LADE_FWM_NOTES_MAX escaped). */
lade_err lade_fwm_notes_escape(const char *raw, size_t n, char *out, size_t cap,
                               size_t *len) LADE_MUST_CHECK;
lade_err lade_fwm_notes_unescape(struct lade_str notes, char *out, size_t cap,
                                 size_t *len) LADE_MUST_CHECK;

#endif
