/* lab_dnsdelay: a DNS server that answers slowly, for the lab's router (lab.sh dns slow MS).
 * Each UDP query is held for the delay, then forwarded to the upstream resolver from a fresh
 * socket; the answer goes back to the client as it came. Queries overlap (at most MAX_PENDING
 * in flight); one that upstream does not answer within 5 s after forwarding is dropped.
 * UDP only (a truncated answer's TCP retry finds nothing listening).
 *
 * With --spoof MODE (lab.sh dns spoof-id|spoof-question|spoof-addr) it is also an off-path
 * forger that knows a little too much: on each query it first sends FORGED answers pointing the
 * asked name at --spoof-answer (an address nothing answers on), each logged as a line starting
 * "forged", then forwards the query after the delay and relays the real answer as above.
 *   id        the right question, a wrong transaction id (id+1, then the id's complement)
 *   question  the right id; another name in the question ("forged." + the name), then the same
 *             name with another type (AAAA for A, A for anything else)
 *   addr      the right id and question (byte for byte, 0x20 case kept), sent from each
 *             --spoof-from ADDR:PORT: another address (bound with IP_TRANSPARENT, so it need not
 *             be configured), or the server's own address with another port (PORT 0: any)
 *
 *   lab_dnsdelay --listen ADDR [--port N] --upstream ADDR [--upstream-port N] --delay-ms MS
 *                [--spoof id|question|addr [--spoof-answer A.B.C.D]
 *                 [--spoof-from ADDR:PORT[,ADDR:PORT...]]]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_PENDING   64
#define UPSTREAM_WAIT 5000
#define MAX_SPOOF_SRC 4

struct pending {
    bool used;
    struct sockaddr_in client;
    uint8_t query[1500];
    size_t len;
    uint64_t due_ms; /* forward at; then: give up at */
    int up_fd;       /* -1 until forwarded */
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void usage(void)
{
    fprintf(stderr, "usage: lab_dnsdelay --listen ADDR [--port N] --upstream ADDR "
                    "[--upstream-port N] --delay-ms MS\n"
                    "       [--spoof id|question|addr [--spoof-answer A.B.C.D] "
                    "[--spoof-from ADDR:PORT[,ADDR:PORT...]]]\n");
    exit(2);
}

/* --- forgeries (--spoof) ------------------------------------------------------------------ */

enum spoof { SPOOF_NONE, SPOOF_ID, SPOOF_QUESTION, SPOOF_ADDR };

struct spoof_src {
    int fd;
    char what[80]; /* "192.168.77.2:53" for the log */
};

static enum spoof g_spoof;
static struct in_addr g_spoof_answer;
static struct spoof_src g_src[MAX_SPOOF_SRC];
static int g_nsrc;

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* The end of the query's one question (its name uncompressed, as every stub sends it), or 0. */
static size_t question_end(const uint8_t *q, size_t len)
{
    if (len < 12 || (q[2] & 0x80) || rd16(q + 4) != 1)
        return 0;
    size_t off = 12;
    while (off < len && q[off] != 0) {
        if (q[off] & 0xC0)
            return 0;
        off += 1u + q[off];
    }
    if (off + 1 + 4 > len)
        return 0;
    return off + 1 + 4;
}

/* The name at q+12 as text, for the log. */
static void name_text(const uint8_t *q, size_t qend, char *out, size_t cap)
{
    size_t o = 0, off = 12;
    while (off < qend - 4 && q[off] != 0 && o + 2 < cap) {
        size_t l = q[off++];
        for (size_t i = 0; i < l && off < qend && o + 2 < cap; i++) {
            uint8_t ch = q[off++];
            out[o++] = (ch > 32 && ch < 127) ? (char)ch : '?';
        }
        out[o++] = '.';
    }
    out[o] = 0;
}

/* A forged answer: header with id, the question as given (qname..qclass, qlen bytes), one A
 * record (a pointer to the question's name) for --spoof-answer. Returns its length. */
static size_t forge(uint8_t *out, uint16_t id, const uint8_t *question, size_t qlen)
{
    wr16(out, id);
    out[2] = 0x81; /* QR, RD */
    out[3] = 0x80; /* RA, NOERROR */
    wr16(out + 4, 1);
    wr16(out + 6, 1);
    wr16(out + 8, 0);
    wr16(out + 10, 0);
    memcpy(out + 12, question, qlen);
    uint8_t *p = out + 12 + qlen;
    wr16(p, 0xC00C); /* the question's name */
    wr16(p + 2, 1);  /* A */
    wr16(p + 4, 1);  /* IN */
    wr16(p + 6, 0);
    wr16(p + 8, 300); /* TTL 300 s */
    wr16(p + 10, 4);
    memcpy(p + 12, &g_spoof_answer, 4);
    return 12 + qlen + 16;
}

static void log_forged(const char *how, const char *name, const struct sockaddr_in *to,
                       const char *from)
{
    char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &g_spoof_answer, a, sizeof a);
    inet_ntop(AF_INET, &to->sin_addr, b, sizeof b);
    printf("forged %s: %s -> %s, to %s:%u from %s\n", how, name, a, b, ntohs(to->sin_port), from);
}

/* Sends this mode's forged answers to query q (len bytes) from client, through fd (the
 * listening socket) or the --spoof-from sockets. */
static void send_forgeries(int fd, const char *listen_what, const uint8_t *q, size_t len,
                           const struct sockaddr_in *client)
{
    size_t qend = question_end(q, len);
    if (!qend)
        return; /* not a query we understand: forwarded untouched */
    uint16_t id = rd16(q);
    const uint8_t *question = q + 12;
    size_t qlen = qend - 12;
    char name[300], how[96];
    name_text(q, qend, name, sizeof name);
    uint8_t msg[1500 + 64], alt[1500];
    size_t n;
    switch (g_spoof) {
    case SPOOF_ID: {
        const uint16_t ids[] = {(uint16_t)(id + 1), (uint16_t)~id};
        for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
            n = forge(msg, ids[i], question, qlen);
            if (sendto(fd, msg, n, 0, (const struct sockaddr *)client, sizeof *client) < 0) {
                perror("sendto");
                continue;
            }
            snprintf(how, sizeof how, "wrong id 0x%04x (query 0x%04x)", ids[i], id);
            log_forged(how, name, client, listen_what);
        }
        break;
    }
    case SPOOF_QUESTION: {
        /* another name: "forged." in front of the asked one */
        static const uint8_t label[] = {6, 'f', 'o', 'r', 'g', 'e', 'd'};
        if (sizeof label + qlen <= sizeof alt) {
            memcpy(alt, label, sizeof label);
            memcpy(alt + sizeof label, question, qlen);
            n = forge(msg, id, alt, sizeof label + qlen);
            if (sendto(fd, msg, n, 0, (const struct sockaddr *)client, sizeof *client) >= 0)
                log_forged("other name forged.<name> (right id)", name, client, listen_what);
            else
                perror("sendto");
        }
        /* the same name, another type */
        memcpy(alt, question, qlen);
        uint16_t qtype = rd16(alt + qlen - 4);
        uint16_t other = qtype == 1 ? 28 : 1;
        wr16(alt + qlen - 4, other);
        n = forge(msg, id, alt, qlen);
        if (sendto(fd, msg, n, 0, (const struct sockaddr *)client, sizeof *client) >= 0) {
            snprintf(how, sizeof how, "other type %u for %u (right id)", other, qtype);
            log_forged(how, name, client, listen_what);
        } else {
            perror("sendto");
        }
        break;
    }
    case SPOOF_ADDR:
        n = forge(msg, id, question, qlen);
        for (int i = 0; i < g_nsrc; i++) {
            if (sendto(g_src[i].fd, msg, n, 0, (const struct sockaddr *)client, sizeof *client) <
                0) {
                fprintf(stderr, "sendto from %s: %s\n", g_src[i].what, strerror(errno));
                continue;
            }
            log_forged("right id and question, wrong source", name, client, g_src[i].what);
        }
        break;
    case SPOOF_NONE:
        break;
    }
}

/* One --spoof-from ADDR:PORT socket. An address the host does not have is bound with
 * IP_TRANSPARENT (root), so the forgery needs no configuration on the router. */
static void open_spoof_src(const char *spec)
{
    char addr[64];
    const char *colon = strrchr(spec, ':');
    size_t al = colon ? (size_t)(colon - spec) : strlen(spec);
    if (al == 0 || al >= sizeof addr || g_nsrc >= MAX_SPOOF_SRC) {
        fprintf(stderr, "lab_dnsdelay: bad --spoof-from '%s'\n", spec);
        exit(2);
    }
    memcpy(addr, spec, al);
    addr[al] = 0;
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)(colon ? atoi(colon + 1) : 0))};
    int one = 1;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || inet_pton(AF_INET, addr, &sa.sin_addr) != 1 ||
        setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        fprintf(stderr, "lab_dnsdelay: cannot send from %s: %s\n", spec, strerror(errno));
        exit(1);
    }
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    g_src[g_nsrc].fd = fd;
    snprintf(g_src[g_nsrc].what, sizeof g_src[g_nsrc].what, "%s:%u", addr, ntohs(sa.sin_port));
    g_nsrc++;
}

static void drop(struct pending *p)
{
    if (p->up_fd >= 0)
        close(p->up_fd);
    p->up_fd = -1;
    p->used = false;
}

int main(int argc, char **argv)
{
    const char *listen_addr = NULL, *up_addr = NULL, *spoof_from = NULL;
    const char *spoof_answer = "198.51.100.99";
    int port = 53, up_port = 53;
    long delay_ms = -1;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        if (strcmp(argv[i], "--listen") == 0)
            listen_addr = argv[++i];
        else if (strcmp(argv[i], "--port") == 0)
            port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--upstream") == 0)
            up_addr = argv[++i];
        else if (strcmp(argv[i], "--upstream-port") == 0)
            up_port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--delay-ms") == 0)
            delay_ms = atol(argv[++i]);
        else if (strcmp(argv[i], "--spoof") == 0) {
            i++;
            if (strcmp(argv[i], "id") == 0)
                g_spoof = SPOOF_ID;
            else if (strcmp(argv[i], "question") == 0)
                g_spoof = SPOOF_QUESTION;
            else if (strcmp(argv[i], "addr") == 0)
                g_spoof = SPOOF_ADDR;
            else
                usage();
        } else if (strcmp(argv[i], "--spoof-answer") == 0)
            spoof_answer = argv[++i];
        else if (strcmp(argv[i], "--spoof-from") == 0)
            spoof_from = argv[++i];
        else
            usage();
    }
    if (!listen_addr || !up_addr || delay_ms < 0)
        usage();
    if (inet_pton(AF_INET, spoof_answer, &g_spoof_answer) != 1)
        usage();
    if (g_spoof == SPOOF_ADDR) {
        char list[512];
        snprintf(list, sizeof list, "%s", spoof_from ? spoof_from : "");
        for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save))
            open_spoof_src(t);
        if (g_nsrc == 0) {
            fprintf(stderr, "lab_dnsdelay: --spoof addr needs --spoof-from\n");
            return 2;
        }
    }

    struct sockaddr_in la = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct sockaddr_in ua = {.sin_family = AF_INET, .sin_port = htons((uint16_t)up_port)};
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0 || inet_pton(AF_INET, listen_addr, &la.sin_addr) != 1 ||
        inet_pton(AF_INET, up_addr, &ua.sin_addr) != 1 ||
        bind(fd, (struct sockaddr *)&la, sizeof la) != 0) {
        fprintf(stderr, "lab_dnsdelay: cannot listen on %s:%d: %s\n", listen_addr, port,
                strerror(errno));
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("lab_dnsdelay: %s:%d -> %s:%d after %ld ms\n", listen_addr, port, up_addr, up_port,
           delay_ms);
    char listen_what[64];
    snprintf(listen_what, sizeof listen_what, "%s:%d", listen_addr, port);
    if (g_spoof != SPOOF_NONE) {
        static const char *const names[] = {"", "id", "question", "addr"};
        printf("lab_dnsdelay: forging answers (%s) for %s first\n", names[g_spoof], spoof_answer);
        for (int i = 0; i < g_nsrc; i++)
            printf("lab_dnsdelay: forging from %s\n", g_src[i].what);
    }

    static struct pending pend[MAX_PENDING];
    for (int i = 0; i < MAX_PENDING; i++)
        pend[i].up_fd = -1;

    for (;;) {
        struct pollfd pfd[MAX_PENDING + 1];
        int idx[MAX_PENDING + 1], n = 0;
        uint64_t now = now_ms(), next = now + 1000;
        pfd[n] = (struct pollfd){.fd = fd, .events = POLLIN};
        idx[n++] = -1;
        for (int i = 0; i < MAX_PENDING; i++) {
            if (!pend[i].used)
                continue;
            if (pend[i].due_ms < next)
                next = pend[i].due_ms;
            if (pend[i].up_fd >= 0) {
                pfd[n] = (struct pollfd){.fd = pend[i].up_fd, .events = POLLIN};
                idx[n++] = i;
            }
        }
        int r = poll(pfd, (nfds_t)n, next > now ? (int)(next - now) : 0);
        if (r < 0 && errno != EINTR) {
            perror("poll");
            return 1;
        }
        for (int k = 0; r > 0 && k < n; k++) {
            if (!(pfd[k].revents & (POLLIN | POLLERR)))
                continue;
            if (idx[k] < 0) { /* a new query */
                struct pending *p = NULL;
                for (int i = 0; i < MAX_PENDING && !p; i++)
                    if (!pend[i].used)
                        p = &pend[i];
                uint8_t buf[1500];
                struct sockaddr_in from;
                socklen_t fl = sizeof from;
                ssize_t len = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
                if (len <= 0 || !p)
                    continue; /* full: the query is lost, as with an overloaded server */
                memcpy(p->query, buf, (size_t)len);
                p->len = (size_t)len;
                p->client = from;
                p->due_ms = now_ms() + (uint64_t)delay_ms;
                p->up_fd = -1;
                p->used = true;
                if (g_spoof != SPOOF_NONE)
                    send_forgeries(fd, listen_what, p->query, p->len, &from);
            } else { /* upstream's answer */
                struct pending *p = &pend[idx[k]];
                uint8_t buf[4096];
                ssize_t len = recv(p->up_fd, buf, sizeof buf, 0);
                if (len > 0) {
                    sendto(fd, buf, (size_t)len, 0, (struct sockaddr *)&p->client,
                           sizeof p->client);
                    printf("answered %s after %ld ms\n", inet_ntoa(p->client.sin_addr), delay_ms);
                }
                drop(p);
            }
        }
        now = now_ms();
        for (int i = 0; i < MAX_PENDING; i++) {
            struct pending *p = &pend[i];
            if (!p->used || p->due_ms > now)
                continue;
            if (p->up_fd >= 0) { /* upstream never answered */
                drop(p);
                continue;
            }
            p->up_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
            if (p->up_fd < 0 || connect(p->up_fd, (struct sockaddr *)&ua, sizeof ua) != 0 ||
                send(p->up_fd, p->query, p->len, 0) < 0) {
                drop(p);
                continue;
            }
            p->due_ms = now + UPSTREAM_WAIT;
        }
    }
}
