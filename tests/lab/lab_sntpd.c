/* lab_sntpd: a scripted SNTP server for the lab (tests/lab/lab.sh), for the cases chrony cannot
 * play: a server whose clock is off by a fixed amount ("one server an hour off"), a
 * Kiss-o'-Death, an unsynchronised server (leap indicator 3). Never touches the machine's clock.
 *
 *   lab_sntpd --listen ADDR [--port N] [--offset-s S] [--stratum N] [--kod CODE] [--leap N]
 *
 * Answers every mode-3 request (RFC 4330 §5) with mode 4: originate = the request's transmit
 * timestamp, receive/transmit/reference = this machine's time + offset. --kod sends stratum 0
 * with the kiss code (RATE, DENY, RSTR) as reference id. Logs one line per answer to stdout.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NTP_UNIX_DELTA 2208988800ULL /* 1900-01-01 to 1970-01-01, seconds */

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Now + offset as an NTP timestamp (seconds since 1900, 32.32 fixed point). */
static void put_now(uint8_t *p, long long offset_s)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t sec = (uint64_t)((long long)ts.tv_sec + offset_s) + NTP_UNIX_DELTA;
    uint64_t frac = ((uint64_t)ts.tv_nsec << 32) / 1000000000ULL;
    put32(p, (uint32_t)sec);
    put32(p + 4, (uint32_t)frac);
}

static void usage(void)
{
    fprintf(stderr, "usage: lab_sntpd --listen ADDR [--port N] [--offset-s S] [--stratum N] "
                    "[--kod CODE] [--leap N]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *listen_addr = NULL, *kod = NULL;
    int port = 123, stratum = 2, leap = 0;
    long long offset_s = 0;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        if (strcmp(argv[i], "--listen") == 0)
            listen_addr = argv[++i];
        else if (strcmp(argv[i], "--port") == 0)
            port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--offset-s") == 0)
            offset_s = atoll(argv[++i]);
        else if (strcmp(argv[i], "--stratum") == 0)
            stratum = atoi(argv[++i]);
        else if (strcmp(argv[i], "--kod") == 0)
            kod = argv[++i];
        else if (strcmp(argv[i], "--leap") == 0)
            leap = atoi(argv[++i]);
        else
            usage();
    }
    if (!listen_addr)
        usage();

    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (fd < 0 || inet_pton(AF_INET, listen_addr, &sa.sin_addr) != 1 ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        fprintf(stderr, "lab_sntpd: cannot listen on %s:%d: %s\n", listen_addr, port,
                strerror(errno));
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("lab_sntpd: %s:%d offset %lld s stratum %d%s%s leap %d\n", listen_addr, port, offset_s,
           kod ? 0 : stratum, kod ? " kod " : "", kod ? kod : "", leap);

    for (;;) {
        uint8_t req[512], resp[48];
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(fd, req, sizeof req, 0, (struct sockaddr *)&from, &fl);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            perror("recvfrom");
            return 1;
        }
        if (n < 48 || (req[0] & 7) != 3) /* not a client request */
            continue;
        memset(resp, 0, sizeof resp);
        put_now(resp + 32, offset_s); /* receive */
        int vn = (req[0] >> 3) & 7;
        resp[0] = (uint8_t)((leap & 3) << 6 | (vn ? vn : 4) << 3 | 4);
        resp[1] = (uint8_t)(kod ? 0 : stratum);
        resp[2] = req[2];                 /* poll */
        resp[3] = (uint8_t)(int8_t)(-20); /* precision ~1 us */
        put32(resp + 8, 0x00000100);      /* root dispersion: 1/256 s */
        if (kod)
            memcpy(resp + 12, kod, strlen(kod) < 4 ? strlen(kod) : 4);
        else
            memcpy(resp + 12, "LAB", 3);
        put_now(resp + 16, offset_s - 16); /* reference: a little while ago */
        memcpy(resp + 24, req + 40, 8);    /* originate = client's transmit */
        put_now(resp + 40, offset_s);      /* transmit */
        char a[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &from.sin_addr, a, sizeof a);
        if (sendto(fd, resp, sizeof resp, 0, (struct sockaddr *)&from, fl) < 0)
            perror("sendto");
        else
            printf("answered %s:%d\n", a, ntohs(from.sin_port));
    }
}
