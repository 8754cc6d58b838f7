/* lade — static resolver: literal addresses and a hosts file. Contract in include/lade/resolve.h.
 *
 * Why no getaddrinfo: it blocks the event loop (DESIGN convention 6) and would consult the
 * system's resolv.conf/nsswitch instead of the DNS servers DHCP gave us (SPEC R5).
 */
#include "lade/resolve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lade/log.h"

#define MOD "resolve"

lade_err lade_sockaddr_parse(const char *text, struct lade_sockaddr *out)
{
    if (!text || !out)
        return LADE_ERR_INVAL;
    memset(out, 0, sizeof *out);
    struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;
    if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        out->len = sizeof *sin;
        return LADE_OK;
    }
    char buf[INET6_ADDRSTRLEN + 2];
    size_t len = strlen(text);
    if (len >= 2 && text[0] == '[' && text[len - 1] == ']') {
        if (len - 2 >= sizeof buf)
            return LADE_ERR_INVAL;
        memcpy(buf, text + 1, len - 2);
        buf[len - 2] = '\0';
        text = buf;
    }
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;
    if (inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        out->len = sizeof *sin6;
        return LADE_OK;
    }
    memset(out, 0, sizeof *out);
    return LADE_ERR_INVAL;
}

void lade_sockaddr_set_port(struct lade_sockaddr *a, uint16_t port)
{
    if (a->ss.ss_family == AF_INET)
        ((struct sockaddr_in *)&a->ss)->sin_port = htons(port);
    else if (a->ss.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&a->ss)->sin6_port = htons(port);
}

uint16_t lade_sockaddr_port(const struct lade_sockaddr *a)
{
    if (a->ss.ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
    if (a->ss.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
    return 0;
}

lade_err lade_sockaddr_format(const struct lade_sockaddr *a, char *buf, size_t cap)
{
    char ip[INET6_ADDRSTRLEN];
    int v6 = a->ss.ss_family == AF_INET6;
    const void *src = v6 ? (const void *)&((const struct sockaddr_in6 *)&a->ss)->sin6_addr
                         : (const void *)&((const struct sockaddr_in *)&a->ss)->sin_addr;
    if ((a->ss.ss_family != AF_INET && !v6) || !inet_ntop(a->ss.ss_family, src, ip, sizeof ip))
        return LADE_ERR_INVAL;
    uint16_t port = lade_sockaddr_port(a);
    int w;
    if (port == 0)
        w = snprintf(buf, cap, "%s", ip);
    else
        w = snprintf(buf, cap, v6 ? "[%s]:%u" : "%s:%u", ip, (unsigned)port);
    if (w < 0 || (size_t)w >= cap)
        return LADE_ERR_NOSPACE;
    return LADE_OK;
}

int lade_sockaddr_equal(const struct lade_sockaddr *a, const struct lade_sockaddr *b)
{
    if (a->ss.ss_family != b->ss.ss_family)
        return 0;
    if (a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *x = (const struct sockaddr_in *)&a->ss;
        const struct sockaddr_in *y = (const struct sockaddr_in *)&b->ss;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)&a->ss;
        const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)&b->ss;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0 &&
               x->sin6_scope_id == y->sin6_scope_id;
    }
    return 0;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static char ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Case-insensitive (ASCII) comparison ignoring one trailing dot on either side. */
static int name_matches(const char *tok, size_t tlen, const char *name, size_t nlen)
{
    if (tlen > 0 && tok[tlen - 1] == '.')
        tlen--;
    if (nlen > 0 && name[nlen - 1] == '.')
        nlen--;
    if (tlen != nlen || tlen == 0)
        return 0;
    for (size_t i = 0; i < tlen; i++)
        if (ascii_lower(tok[i]) != ascii_lower(name[i]))
            return 0;
    return 1;
}

static lade_err check_name(const char *name, size_t *nlen)
{
    if (!name)
        return LADE_ERR_INVAL;
    size_t len = strlen(name);
    size_t core = (len > 0 && name[len - 1] == '.') ? len - 1 : len;
    if (core == 0 || core > LADE_RESOLVE_NAME_MAX)
        return LADE_ERR_INVAL;
    for (size_t i = 0; i < len; i++)
        if (is_space(name[i]) || name[i] == '#' || name[i] == '\n')
            return LADE_ERR_INVAL;
    *nlen = len;
    return LADE_OK;
}

lade_err lade_resolve_hosts_buf(const char *text, size_t len, const char *name,
                                struct lade_sockaddr *out, size_t cap, size_t *n)
{
    size_t nlen;
    if (!n || !out || cap == 0 || (!text && len > 0))
        return LADE_ERR_INVAL;
    *n = 0;
    lade_err err = check_name(name, &nlen);
    if (err != LADE_OK)
        return err;
    int overflow = 0;
    size_t pos = 0, lineno = 0;
    while (pos < len) {
        size_t end = pos;
        while (end < len && text[end] != '\n')
            end++;
        lineno++;
        size_t line_end = end;
        for (size_t i = pos; i < end; i++)
            if (text[i] == '#') {
                line_end = i;
                break;
            }
        /* Tokenize [pos, line_end). */
        size_t p = pos;
        while (p < line_end && is_space(text[p]))
            p++;
        size_t a0 = p;
        while (p < line_end && !is_space(text[p]))
            p++;
        size_t alen = p - a0;
        if (alen > 0) {
            char abuf[INET6_ADDRSTRLEN + 1];
            struct lade_sockaddr addr;
            int have_addr = 0;
            int matched = 0;
            while (p < line_end && !matched) {
                while (p < line_end && is_space(text[p]))
                    p++;
                size_t t0 = p;
                while (p < line_end && !is_space(text[p]))
                    p++;
                if (p > t0 && name_matches(text + t0, p - t0, name, nlen))
                    matched = 1;
            }
            if (matched) {
                if (alen < sizeof abuf) {
                    memcpy(abuf, text + a0, alen);
                    abuf[alen] = '\0';
                    /* No brackets in hosts files: plain inet_pton per family. */
                    have_addr = abuf[0] != '[' && lade_sockaddr_parse(abuf, &addr) == LADE_OK;
                }
                if (!have_addr) {
                    LOG_D(MOD, "hosts line %zu: bad address, skipped", lineno);
                } else {
                    int dup = 0;
                    for (size_t i = 0; i < *n; i++)
                        if (lade_sockaddr_equal(&out[i], &addr))
                            dup = 1;
                    if (!dup) {
                        if (*n < cap)
                            out[(*n)++] = addr;
                        else
                            overflow = 1;
                    }
                }
            }
        }
        pos = end + 1;
    }
    if (overflow)
        return LADE_ERR_NOSPACE;
    return *n > 0 ? LADE_OK : LADE_ERR_RESOLVE;
}

/* Reads a whole (small) regular file. ENOENT -> *buf NULL, LADE_OK. */
static lade_err read_small_file(const char *path, char **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return LADE_OK;
        LOG_W(MOD, "open %s: %s", path, strerror(errno));
        return LADE_ERR_IO;
    }
    lade_err err = LADE_OK;
    char *data = NULL;
    size_t used = 0, cap = 0;
    for (;;) {
        if (used == cap) {
            /* Capacity tops out one byte past the limit, so a file that big is detected. */
            if (cap > LADE_RESOLVE_HOSTS_MAX) {
                err = LADE_ERR_TOO_BIG;
                goto out;
            }
            cap = cap ? cap * 2 : 4096;
            if (cap > LADE_RESOLVE_HOSTS_MAX + 1)
                cap = LADE_RESOLVE_HOSTS_MAX + 1;
            char *d = realloc(data, cap);
            if (!d) {
                err = LADE_ERR_NOMEM;
                goto out;
            }
            data = d;
        }
        ssize_t r = read(fd, data + used, cap - used);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            LOG_W(MOD, "read %s: %s", path, strerror(errno));
            err = LADE_ERR_IO;
            goto out;
        }
        if (r == 0)
            break;
        used += (size_t)r;
    }
    if (used > LADE_RESOLVE_HOSTS_MAX)
        err = LADE_ERR_TOO_BIG;
out:
    close(fd);
    if (err != LADE_OK) {
        free(data);
        return err;
    }
    *buf = data;
    *len = used;
    return LADE_OK;
}

lade_err lade_resolve_static(const char *name, const char *hosts_file, struct lade_sockaddr *out,
                             size_t cap, size_t *n)
{
    size_t nlen;
    if (!n || !out || cap == 0)
        return LADE_ERR_INVAL;
    *n = 0;
    lade_err err = check_name(name, &nlen);
    if (err != LADE_OK)
        return err;
    if (lade_sockaddr_parse(name, &out[0]) == LADE_OK) {
        *n = 1;
        return LADE_OK;
    }
    if (!hosts_file) {
        LOG_D(MOD, "%s: not a literal address and no hosts file", name);
        return LADE_ERR_RESOLVE;
    }
    char *text;
    size_t len;
    err = read_small_file(hosts_file, &text, &len);
    if (err != LADE_OK)
        return err;
    if (!text) {
        LOG_D(MOD, "%s: hosts file %s missing", name, hosts_file);
        return LADE_ERR_RESOLVE;
    }
    err = lade_resolve_hosts_buf(text, len, name, out, cap, n);
    free(text);
    if (err == LADE_ERR_RESOLVE)
        LOG_D(MOD, "%s: not in %s", name, hosts_file);
    return err;
}
