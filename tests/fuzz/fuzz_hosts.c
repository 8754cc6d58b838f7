/* libFuzzer target: the static resolver's hosts-file lookup (lade_resolve_hosts_buf) and the
 * literal address parser (lade_sockaddr_parse) it and the settings use.
 *
 * Input: byte 0 is the capacity (1..8), then "{name}\n{hosts file text}". The text is copied to
 * a buffer of its exact size with no NUL (the function takes a length), so an over-read is an
 * ASan report. Invariants:
 *   - the result is OK / INVAL / RESOLVE / NOSPACE with *n consistent with it;
 *   - every address is IPv4 or IPv6 with port 0, formats into LADE_SOCKADDR_STRLEN, and the
 *     formatted text parses back to the same address; no address is returned twice;
 *   - a smaller capacity returns a prefix of what a large one returns (file order);
 *   - the lookup ignores ASCII case and one trailing dot in the name;
 *   - a literal parses, formats and parses back to the same address. */
#include <ctype.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lade/log.h"
#include "lade/resolve.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

#define BIG 64

static void discard(void *ud, enum lade_log_level level, const char *module, const char *line)
{
    (void)ud;
    (void)level;
    (void)module;
    (void)line;
}

static void check_addr(const struct lade_sockaddr *a)
{
    int fam = a->ss.ss_family;
    CHECK((fam == AF_INET && a->len == sizeof(struct sockaddr_in)) ||
          (fam == AF_INET6 && a->len == sizeof(struct sockaddr_in6)));
    CHECK(lade_sockaddr_port(a) == 0);
    char text[LADE_SOCKADDR_STRLEN];
    CHECK(lade_sockaddr_format(a, text, sizeof text) == LADE_OK);
    struct lade_sockaddr b;
    CHECK(lade_sockaddr_parse(text, &b) == LADE_OK && lade_sockaddr_equal(a, &b));
    /* With a port: the bracketed form must fit too. */
    struct lade_sockaddr c = *a;
    lade_sockaddr_set_port(&c, 65535);
    CHECK(lade_sockaddr_port(&c) == 65535);
    CHECK(lade_sockaddr_format(&c, text, sizeof text) == LADE_OK);
}

static lade_err lookup(const char *text, size_t len, const char *name, struct lade_sockaddr *out,
                       size_t cap, size_t *n)
{
    *n = 12345;
    lade_err err = lade_resolve_hosts_buf(text, len, name, out, cap, n);
    switch (err) {
    case LADE_OK:
        CHECK(*n >= 1 && *n <= cap);
        break;
    case LADE_ERR_NOSPACE:
        CHECK(*n == cap);
        break;
    case LADE_ERR_RESOLVE:
    case LADE_ERR_INVAL:
        CHECK(*n == 0 || (err == LADE_ERR_INVAL && *n == 12345));
        return err;
    default:
        abort();
    }
    for (size_t i = 0; i < *n; i++) {
        check_addr(&out[i]);
        for (size_t j = 0; j < i; j++)
            CHECK(!lade_sockaddr_equal(&out[i], &out[j]));
    }
    return err;
}

static bool same_result(lade_err e1, const struct lade_sockaddr *a, size_t na, lade_err e2,
                        const struct lade_sockaddr *b, size_t nb)
{
    if (e1 != e2 || na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (!lade_sockaddr_equal(&a[i], &b[i]))
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool once;
    if (!once) {
        once = true;
        lade_log_set_sink(discard, NULL); /* skipped lines are logged at debug level */
        lade_log_set_level(LADE_LOG_DEBUG);
    }
    if (size < 1)
        return 0;
    size_t cap = (size_t)(data[0] % 8) + 1;
    data++;
    size--;
    const uint8_t *nl = memchr(data, '\n', size);
    size_t nlen = nl ? (size_t)(nl - data) : size;
    if (nlen > 300)
        return 0;
    char name[302]; /* room for an added trailing dot */
    memcpy(name, data, nlen);
    name[nlen] = 0;
    size_t tlen = nl ? size - nlen - 1 : 0;
    char *text = malloc(tlen ? tlen : 1);
    if (!text)
        return 0;
    if (tlen)
        memcpy(text, nl + 1, tlen);

    /* The literal parser on the name (settings and the CLI hand it outside text). */
    struct lade_sockaddr lit;
    if (lade_sockaddr_parse(name, &lit) == LADE_OK)
        check_addr(&lit);

    static struct lade_sockaddr small[8], big[BIG], alt[BIG];
    size_t ns, nb, na;
    lade_err es = lookup(text, tlen, name, small, cap, &ns);
    lade_err eb = lookup(text, tlen, name, big, BIG, &nb);
    if (es == LADE_ERR_INVAL) {
        CHECK(eb == LADE_ERR_INVAL);
        goto out;
    }
    /* Prefix property. */
    if (eb == LADE_OK && nb <= cap) {
        CHECK(same_result(es, small, ns, eb, big, nb));
    } else if (eb != LADE_ERR_RESOLVE) {
        CHECK(es == LADE_ERR_NOSPACE && ns == cap);
        for (size_t i = 0; i < cap; i++)
            CHECK(lade_sockaddr_equal(&small[i], &big[i]));
    } else {
        CHECK(es == LADE_ERR_RESOLVE);
    }

    /* Case and one trailing dot do not matter. */
    char other[302];
    memcpy(other, name, nlen + 1);
    for (size_t i = 0; i < nlen; i++)
        other[i] = (char)(isupper((unsigned char)other[i]) ? tolower((unsigned char)other[i])
                                                           : toupper((unsigned char)other[i]));
    for (size_t i = 0; i < nlen; i++) /* only ASCII letters are folded */
        if ((unsigned char)name[i] >= 0x80)
            other[i] = name[i];
    lade_err ea = lookup(text, tlen, other, alt, BIG, &na);
    CHECK(same_result(eb, big, nb, ea, alt, na));
    if (nlen > 0 && name[nlen - 1] != '.') {
        memcpy(other, name, nlen);
        other[nlen] = '.';
        other[nlen + 1] = 0;
        ea = lookup(text, tlen, other, alt, BIG, &na);
        /* Adding the dot may only take a 253-character name over nothing: same answer. */
        CHECK(same_result(eb, big, nb, ea, alt, na));
    }
out:
    free(text);
    return 0;
}
