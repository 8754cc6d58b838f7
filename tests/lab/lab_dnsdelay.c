/* lab_dnsdelay: a DNS server that answers slowly, for the lab's router (lab.sh dns slow MS).
 * Each UDP query is held for the delay, then forwarded to the upstream resolver from a fresh
 * socket; the answer goes back to the client as it came. Queries overlap (at most MAX_PENDING
 * in flight); one that upstream does not answer within 5 s after forwarding is dropped.
 * UDP only (a truncated answer's TCP retry finds nothing listening).
 *
 *   lab_dnsdelay --listen ADDR [--port N] --upstream ADDR [--upstream-port N] --delay-ms MS
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
                    "[--upstream-port N] --delay-ms MS\n");
    exit(2);
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
    const char *listen_addr = NULL, *up_addr = NULL;
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
        else
            usage();
    }
    if (!listen_addr || !up_addr || delay_ms < 0)
        usage();

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
