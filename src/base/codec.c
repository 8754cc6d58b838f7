#include "lade/codec.h"

#include <string.h>

struct lade_str lade_str_c(const char *s)
{
    return (struct lade_str){s ? s : "", s ? strlen(s) : 0};
}

bool lade_str_eq(struct lade_str a, struct lade_str b)
{
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

bool lade_str_eq_c(struct lade_str a, const char *c)
{
    return lade_str_eq(a, lade_str_c(c));
}

bool lade_str_has_prefix(struct lade_str s, const char *prefix)
{
    size_t n = strlen(prefix);
    return s.n >= n && memcmp(s.p, prefix, n) == 0;
}

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t lade_base64_encoded_len(size_t n)
{
    return (n + 2) / 3 * 4;
}

lade_err lade_base64_encode(const void *in, size_t n, char *out, size_t out_cap, size_t *out_len)
{
    const uint8_t *s = in;
    size_t need = lade_base64_encoded_len(n);
    if (need < n / 3 * 4 || out_cap < need + 1)
        return LADE_ERR_NOSPACE;
    size_t o = 0;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = b64_alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)s[i] << 16;
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = '=';
    }
    out[o] = '\0';
    if (out_len)
        *out_len = o;
    return LADE_OK;
}

static int b64_val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

lade_err lade_base64_decode(const char *in, size_t n, uint8_t *out, size_t out_cap, size_t *out_len)
{
    if (n % 4 != 0)
        return LADE_ERR_INVAL;
    size_t pad = 0;
    if (n >= 1 && in[n - 1] == '=')
        pad++;
    if (n >= 2 && in[n - 2] == '=')
        pad++;
    size_t need = n / 4 * 3 - pad;
    if (out_cap < need)
        return LADE_ERR_NOSPACE;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        bool last = i + 4 == n;
        int v[4];
        for (int k = 0; k < 4; k++) {
            char c = in[i + k];
            if (c == '=' && last && (size_t)k >= 4 - pad) {
                v[k] = 0;
                continue;
            }
            v[k] = b64_val(c);
            if (v[k] < 0)
                return LADE_ERR_INVAL;
        }
        uint32_t w =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        if (last && pad == 2) {
            if (w & 0xFFFF)
                return LADE_ERR_INVAL; /* non-canonical pad bits */
            out[o++] = (uint8_t)(w >> 16);
        } else if (last && pad == 1) {
            if (w & 0xFF)
                return LADE_ERR_INVAL;
            out[o++] = (uint8_t)(w >> 16);
            out[o++] = (uint8_t)(w >> 8);
        } else {
            out[o++] = (uint8_t)(w >> 16);
            out[o++] = (uint8_t)(w >> 8);
            out[o++] = (uint8_t)w;
        }
    }
    if (out_len)
        *out_len = o;
    return LADE_OK;
}

static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

size_t lade_url_encoded_len(const char *in, size_t n)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += unreserved((unsigned char)in[i]) ? 1 : 3;
    return len;
}

lade_err lade_url_encode(const char *in, size_t n, char *out, size_t out_cap, size_t *out_len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t need = lade_url_encoded_len(in, n);
    if (out_cap < need + 1)
        return LADE_ERR_NOSPACE;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (unreserved(c)) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    if (out_len)
        *out_len = o;
    return LADE_OK;
}

int lade_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

lade_err lade_url_decode(const char *in, size_t n, char *out, size_t out_cap, size_t *out_len)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (c == '%') {
            if (n - i < 3)
                return LADE_ERR_INVAL;
            int hi = lade_hex_digit(in[i + 1]);
            int lo = lade_hex_digit(in[i + 2]);
            if (hi < 0 || lo < 0)
                return LADE_ERR_INVAL;
            c = (char)(hi << 4 | lo);
            if (c == '\0')
                return LADE_ERR_INVAL;
            i += 2;
        } else if (c == '\0') {
            return LADE_ERR_INVAL;
        }
        if (o + 1 >= out_cap)
            return LADE_ERR_NOSPACE;
        out[o++] = c;
    }
    if (out_cap < 1)
        return LADE_ERR_NOSPACE;
    out[o] = '\0';
    if (out_len)
        *out_len = o;
    return LADE_OK;
}

bool lade_utf8_valid(const uint8_t *s, size_t n, bool allow_nul)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            if (c == 0 && !allow_nul)
                return false;
            i++;
            continue;
        }
        size_t len;
        uint32_t cp;
        if ((c & 0xE0) == 0xC0) {
            len = 2;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000))
            return false; /* overlong */
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += len;
    }
    return true;
}

bool lade_ct_equal(const void *a, const void *b, size_t n)
{
    const volatile uint8_t *x = a;
    const volatile uint8_t *y = b;
    uint8_t d = 0;
    for (size_t i = 0; i < n; i++)
        d |= x[i] ^ y[i];
    return d == 0;
}
