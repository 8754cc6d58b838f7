/* lade — Base64 (RFC 4648 §4, with padding), URL (percent) encoding (RFC 3986) and UTF-8 checks.
 *
 * Two-step encoding: *_len() gives the exact output size; encoders write into the caller's
 * buffer and fail with LADE_ERR_NOSPACE rather than truncate. Text outputs are NUL-terminated,
 * so the buffer needs one byte more than the reported length.
 */
#ifndef LADE_CODEC_H
#define LADE_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lade/err.h"

/* A borrowed byte/string view; never owns memory. */
struct lade_str {
    const char *p;
    size_t n;
};
#define LADE_STR(lit) ((struct lade_str){(lit), sizeof(lit) - 1})
struct lade_str lade_str_c(const char *s); /* view of a C string (NULL → empty) */
bool lade_str_eq(struct lade_str a, struct lade_str b);
bool lade_str_eq_c(struct lade_str a, const char *c);
bool lade_str_has_prefix(struct lade_str s, const char *prefix);

size_t lade_base64_encoded_len(size_t n);
/* Writes Base64 of in[0..n) and a NUL to out; *out_len = characters written (without NUL). */
lade_err lade_base64_encode(const void *in, size_t n, char *out, size_t out_cap,
                            size_t *out_len) LADE_MUST_CHECK;
/* Strict decode: length multiple of 4, only the alphabet, '=' only as final padding, and
 * non-zero pad bits rejected. */
lade_err lade_base64_decode(const char *in, size_t n, uint8_t *out, size_t out_cap,
                            size_t *out_len) LADE_MUST_CHECK;

/* Percent-encodes everything except RFC 3986 unreserved characters (A-Z a-z 0-9 - . _ ~),
 * with upper-case hex. */
size_t lade_url_encoded_len(const char *in, size_t n);
lade_err lade_url_encode(const char *in, size_t n, char *out, size_t out_cap,
                         size_t *out_len) LADE_MUST_CHECK;
/* Decodes %XX (either hex case); '+' is kept as '+'. A '%' not followed by two hex digits, or
 * a decoded NUL, is LADE_ERR_INVAL. out may equal in (in-place). Output is NUL-terminated. */
lade_err lade_url_decode(const char *in, size_t n, char *out, size_t out_cap,
                         size_t *out_len) LADE_MUST_CHECK;

/* Well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF). If allow_nul is false, U+0000
 * is rejected too (MQTT 3.1.1 §1.5.3). */
bool lade_utf8_valid(const uint8_t *s, size_t n, bool allow_nul);

/* Value of one hex digit (either case), or -1. */
int lade_hex_digit(char c);

/* Constant-time comparison for secrets (signatures, keys). */
bool lade_ct_equal(const void *a, const void *b, size_t n);

#endif
