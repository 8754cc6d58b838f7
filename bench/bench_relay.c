/* bench_relay — a counting TCP relay on 127.0.0.1, used by `make bench` (scripts/bench.sh).
 *
 *   bench_relay UPSTREAM_PORT PORT_FILE LOG_FILE
 *
 * Listens on 127.0.0.1 (a port the kernel picks), writes that port to PORT_FILE, forwards every
 * connection it accepts to 127.0.0.1:UPSTREAM_PORT and appends to LOG_FILE one line per read:
 *   <monotonic ms> <conn#> open
 *   <monotonic ms> <conn#> c2s <bytes>      client → server, TCP payload as read() returned it
 *   <monotonic ms> <conn#> s2c <bytes>      server → client
 *   <monotonic ms> <conn#> close
 * So a benchmark sees every byte above TCP (TLS records included) of each connection, with a
 * timestamp, without trusting the program it measures. Runs until killed (SIGTERM).
 *
 * Writes to the other side are blocking: the peers here are a broker and MQTT clients that read
 * promptly, and the volumes are a few KiB, so this never stalls in practice.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#define MAX_CONNS 32

struct conn {
    int fd[2]; /* 0 = client side, 1 = server side; -1 when unused */
    bool eof[2];
    unsigned id;
};

static struct conn conns[MAX_CONNS];
static FILE *log_fp;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void note(unsigned id, const char *what, long n)
{
    if (n >= 0)
        fprintf(log_fp, "%llu %u %s %ld\n", (unsigned long long)now_ms(), id, what, n);
    else
        fprintf(log_fp, "%llu %u %s\n", (unsigned long long)now_ms(), id, what);
    fflush(log_fp);
}

static void conn_close(struct conn *c)
{
    for (int i = 0; i < 2; i++) {
        if (c->fd[i] >= 0)
            close(c->fd[i]);
        c->fd[i] = -1;
    }
    note(c->id, "close", -1);
}

static bool write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

static int connect_upstream(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fputs("usage: bench_relay UPSTREAM_PORT PORT_FILE LOG_FILE\n", stderr);
        return 2;
    }
    int upstream = atoi(argv[1]);
    signal(SIGPIPE, SIG_IGN);
    log_fp = fopen(argv[3], "a");
    if (!log_fp) {
        perror(argv[3]);
        return 1;
    }
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 16) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &alen) != 0) {
        perror("bench_relay: listen");
        return 1;
    }
    /* Write the port atomically: the script polls for the file. */
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", argv[2]);
    FILE *pf = fopen(tmp, "w");
    if (!pf || fprintf(pf, "%u\n", ntohs(a.sin_port)) < 0 || fclose(pf) != 0 ||
        rename(tmp, argv[2]) != 0) {
        perror(argv[2]);
        return 1;
    }
    for (int i = 0; i < MAX_CONNS; i++)
        conns[i].fd[0] = conns[i].fd[1] = -1;
    unsigned next_id = 1;
    char buf[65536];

    for (;;) {
        struct pollfd pfd[1 + 2 * MAX_CONNS];
        int map[1 + 2 * MAX_CONNS];
        nfds_t n = 0;
        pfd[n] = (struct pollfd){.fd = lfd, .events = POLLIN};
        map[n++] = -1;
        for (int i = 0; i < MAX_CONNS; i++)
            for (int s = 0; s < 2; s++)
                if (conns[i].fd[s] >= 0 && !conns[i].eof[s]) {
                    pfd[n] = (struct pollfd){.fd = conns[i].fd[s], .events = POLLIN};
                    map[n++] = i * 2 + s;
                }
        if (poll(pfd, n, -1) < 0) {
            if (errno == EINTR)
                continue;
            perror("bench_relay: poll");
            return 1;
        }
        if (pfd[0].revents & POLLIN) {
            int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
            int slot = -1;
            for (int i = 0; i < MAX_CONNS && slot < 0; i++)
                if (conns[i].fd[0] < 0)
                    slot = i;
            int sfd = cfd >= 0 && slot >= 0 ? connect_upstream(upstream) : -1;
            if (sfd < 0) {
                if (cfd >= 0)
                    close(cfd);
            } else {
                int one = 1;
                setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                conns[slot] = (struct conn){.fd = {cfd, sfd}, .id = next_id++};
                note(conns[slot].id, "open", -1);
            }
        }
        for (nfds_t k = 1; k < n; k++) {
            if (!(pfd[k].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            struct conn *c = &conns[map[k] / 2];
            int s = map[k] % 2;
            if (c->fd[s] < 0 || c->fd[s] != pfd[k].fd)
                continue; /* closed earlier in this round */
            ssize_t r = read(c->fd[s], buf, sizeof buf);
            if (r < 0 && errno == EINTR)
                continue;
            if (r > 0) {
                note(c->id, s == 0 ? "c2s" : "s2c", (long)r);
                if (!write_all(c->fd[1 - s], buf, (size_t)r))
                    conn_close(c);
                continue;
            }
            if (r < 0) { /* reset: drop both sides */
                conn_close(c);
                continue;
            }
            c->eof[s] = true;
            shutdown(c->fd[1 - s], SHUT_WR);
            if (c->eof[0] && c->eof[1])
                conn_close(c);
        }
    }
}
