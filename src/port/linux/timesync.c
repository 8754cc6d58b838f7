/* lade — trusted time on the event loop: sockets, timer, floor file and the lade clock around the
 * pure SNTP client. Contract in include/lade/timesync.h; policy in docs/time.md.
 */
#include "lade/timesync.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lade/clock.h"
#include "lade/file.h"
#include "lade/log.h"

#define MOD "timesync"

/* A datagram bigger than this is not NTP we speak (48-byte header, maybe a MAC or extensions);
 * it is read truncated and judged by its first 48 bytes. */
#define RX_MAX 512
/* A floor more than this after the build time is taken for a corrupt file. */
#define FLOOR_MAX_AHEAD_S (30ll * 366 * 86400)
/* With ntp_host and no address yet: try the hosts file again this often. */
#define RESOLVE_RETRY_MS 60000u

struct lade_timesync {
    struct lade_loop *loop;
    struct lade_timer timer;
    struct lade_sntp_client sntp;
    struct lade_timesync_cfg cfg; /* strings below are our copies */
    char *ntp_host, *hosts_file, *floor_file;
    uint16_t port;
    int64_t offset_ms; /* lade clock − system clock */
    bool started;
    bool static_servers; /* servers came from cfg/set_servers, not from ntp_host */
    size_t n;
    struct lade_sockaddr addr[LADE_SNTP_MAX_SERVERS];
    int fd[LADE_SNTP_MAX_SERVERS];
    enum lade_sntp_state reported; /* the state on_state last told of */
};

/* ---------------------------------------------------------------- floor file */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    /* Howard Hinnant's algorithm: days since 1970-01-01 of a proleptic Gregorian date. */
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

int64_t lade_timesync_build_time_s(void)
{
#ifdef LADE_BUILD_TIME_S
    return (int64_t)LADE_BUILD_TIME_S;
#else
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    const char *date = __DATE__; /* "Mmm dd yyyy" */
    unsigned m = 1;
    for (unsigned i = 0; i < 12; i++)
        if (memcmp(date, months + 3 * i, 3) == 0)
            m = i + 1;
    unsigned d = (unsigned)atoi(date + 4);
    int64_t y = atoi(date + 7);
    return days_from_civil(y, m, d ? d : 1) * 86400;
#endif
}

lade_err lade_timesync_read_floor(const char *path, int64_t *wall_s)
{
    if (!path || !wall_s)
        return LADE_ERR_INVAL;
    FILE *f = fopen(path, "re");
    if (!f)
        return errno == ENOENT ? LADE_ERR_NOT_FOUND : LADE_ERR_IO;
    char buf[64];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    bool err = ferror(f);
    fclose(f);
    if (err)
        return LADE_ERR_IO;
    buf[n] = '\0';
    char *end = NULL;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (end == buf || errno || v < 0 || v > (1ll << 40))
        return LADE_ERR_INVAL;
    while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
        end++;
    if (*end || n == sizeof buf - 1)
        return LADE_ERR_INVAL;
    *wall_s = v;
    return LADE_OK;
}

lade_err lade_timesync_write_floor(const char *path, int64_t wall_s)
{
    if (!path || wall_s < 0)
        return LADE_ERR_INVAL;
    char line[32];
    int len = snprintf(line, sizeof line, "%lld\n", (long long)wall_s);
    return lade_file_write_atomic(path, line, (size_t)len, 0644, true);
}

/* ---------------------------------------------------------------- clock */

static int64_t sys_wall_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int64_t lade_timesync_wall_ms(const struct lade_timesync *ts)
{
    return sys_wall_ms() + (ts ? ts->offset_ms : 0);
}

int64_t lade_timesync_wall_s(const struct lade_timesync *ts)
{
    int64_t ms = lade_timesync_wall_ms(ts);
    return ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
}

int64_t lade_timesync_offset_ms(const struct lade_timesync *ts)
{
    return ts ? ts->offset_ms : 0;
}

static struct lade_sntp_now now_of(const struct lade_timesync *ts)
{
    struct lade_sntp_now now = {.mono_ms = lade_mono_ms(), .wall_ms = lade_timesync_wall_ms(ts)};
    return now;
}

/* ---------------------------------------------------------------- sockets and timer */

static void close_fd(struct lade_timesync *ts, size_t i)
{
    if (ts->fd[i] < 0)
        return;
    lade_loop_unwatch(ts->loop, ts->fd[i]);
    close(ts->fd[i]);
    ts->fd[i] = -1;
}

static void on_timer(struct lade_loop *loop, struct lade_timer *t, void *ud);

/* After every call into the machine: drop sockets no query needs, arm the timer. */
static void after(struct lade_timesync *ts)
{
    enum lade_sntp_state st = lade_sntp_client_state(&ts->sntp);
    if (st != ts->reported) {
        ts->reported = st;
        if (ts->cfg.on_state)
            ts->cfg.on_state(ts->cfg.ud);
    }
    for (size_t i = 0; i < ts->n; i++)
        if (!lade_sntp_client_pending(&ts->sntp, i))
            close_fd(ts, i);
    uint64_t next = lade_sntp_client_next_ms(&ts->sntp);
    if (next == UINT64_MAX) {
        lade_timer_cancel(ts->loop, &ts->timer);
        return;
    }
    if (lade_timer_arm(ts->loop, &ts->timer, next) != LADE_OK) {
        /* Out of memory growing the timer heap: try again soon rather than never. */
        if (lade_timer_arm_in(ts->loop, &ts->timer, 1000) != LADE_OK)
            LOG_E(MOD, "cannot arm the timer: time sync stalls");
    }
}

static enum lade_sntp_result errno_result(int e)
{
    switch (e) {
    case ECONNREFUSED:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case EHOSTDOWN:
        return LADE_SNTP_E_REFUSED;
    default:
        return LADE_SNTP_E_SEND;
    }
}

static void on_readable(struct lade_loop *loop, int fd, uint32_t events, void *ud)
{
    (void)loop;
    (void)events;
    struct lade_timesync *ts = ud;
    size_t i = 0;
    while (i < ts->n && ts->fd[i] != fd)
        i++;
    if (i == ts->n)
        return;
    for (;;) {
        uint8_t buf[RX_MAX];
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                lade_sntp_client_on_error(&ts->sntp, i, errno_result(errno), now_of(ts));
            break;
        }
        (void)lade_sntp_client_on_reply(&ts->sntp, i, buf, (size_t)n, now_of(ts));
        if (!lade_sntp_client_pending(&ts->sntp, i))
            break; /* answered: the socket is closed below */
    }
    after(ts);
}

static lade_err op_send(void *ud, size_t i, const uint8_t *pkt, size_t len)
{
    struct lade_timesync *ts = ud;
    if (i >= ts->n)
        return LADE_ERR_INVAL;
    /* A fresh socket per query: a fresh random source port (kernel ephemeral choice), and a
     * late answer to an earlier query cannot arrive on it. */
    close_fd(ts, i);
    const struct lade_sockaddr *a = &ts->addr[i];
    int fd = socket(a->ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return LADE_ERR_IO;
    /* connect(): the kernel drops datagrams from anyone else and reports ICMP errors to us. */
    if (connect(fd, (const struct sockaddr *)&a->ss, a->len) != 0) {
        LOG_D(MOD, "server %zu: connect: %s", i, strerror(errno));
        close(fd);
        return LADE_ERR_IO;
    }
    if (lade_loop_watch(ts->loop, fd, LADE_IO_READ, on_readable, ts) != LADE_OK) {
        close(fd);
        return LADE_ERR_IO;
    }
    ts->fd[i] = fd;
    ssize_t n = send(fd, pkt, len, 0);
    if (n != (ssize_t)len) {
        LOG_D(MOD, "server %zu: send: %s", i, n < 0 ? strerror(errno) : "short");
        close_fd(ts, i);
        return LADE_ERR_IO;
    }
    return LADE_OK;
}

static uint64_t op_random64(void *ud)
{
    (void)ud;
    uint64_t v;
    if (lade_random(&v, sizeof v) != LADE_OK)
        v = (uint64_t)lade_random_u32() << 32 | lade_random_u32();
    return v;
}

static void op_step(void *ud, int64_t correction_ms)
{
    struct lade_timesync *ts = ud;
    ts->offset_ms += correction_ms;
    int64_t wall = lade_timesync_wall_ms(ts);
    LOG_I(MOD, "lade clock stepped by %lld ms", (long long)correction_ms);
    if (ts->cfg.set_clock && ts->cfg.set_clock(ts->cfg.ud, wall)) {
        /* The caller set the OS clock to wall: the system clock is now the right one. */
        ts->offset_ms = 0;
    }
}

static void op_trust(void *ud, bool trusted)
{
    struct lade_timesync *ts = ud;
    if (ts->cfg.on_trust)
        ts->cfg.on_trust(ts->cfg.ud, trusted);
}

static void op_save_floor(void *ud, int64_t wall_ms)
{
    struct lade_timesync *ts = ud;
    if (!ts->floor_file)
        return;
    lade_err err = lade_timesync_write_floor(ts->floor_file, wall_ms / 1000);
    if (err != LADE_OK)
        LOG_W(MOD, "cannot save the clock floor to %s: %s", ts->floor_file, lade_strerror(err));
}

/* Resolves ntp_host into addr[] (with the port); returns the count (0 on failure). */
static size_t resolve(struct lade_timesync *ts, struct lade_sockaddr *out)
{
    size_t n = 0;
    lade_err err =
        lade_resolve_static(ts->ntp_host, ts->hosts_file, out, LADE_SNTP_MAX_SERVERS, &n);
    if (err != LADE_OK && err != LADE_ERR_NOSPACE) {
        LOG_W(MOD, "cannot resolve %s: %s", ts->ntp_host, lade_strerror(err));
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        if (lade_sockaddr_port(&out[i]) == 0)
            lade_sockaddr_set_port(&out[i], ts->port);
    return n;
}

/* Takes a new address list; the prev-index map keeps what is known per address. *changed
 * (may be NULL) tells whether the list differed (then the machine restarted its round). */
static lade_err take_servers(struct lade_timesync *ts, const struct lade_sockaddr *a, size_t n,
                             bool *changed)
{
    if (n > LADE_SNTP_MAX_SERVERS)
        n = LADE_SNTP_MAX_SERVERS;
    struct lade_sockaddr next[LADE_SNTP_MAX_SERVERS];
    int prev[LADE_SNTP_MAX_SERVERS];
    bool same = n == ts->n;
    for (size_t i = 0; i < n; i++) {
        next[i] = a[i];
        if (lade_sockaddr_port(&next[i]) == 0)
            lade_sockaddr_set_port(&next[i], ts->port);
        prev[i] = -1;
        for (size_t j = 0; j < ts->n; j++)
            if (lade_sockaddr_equal(&next[i], &ts->addr[j]))
                prev[i] = (int)j;
        same = same && prev[i] == (int)i;
    }
    if (changed)
        *changed = !same;
    if (same)
        return LADE_OK;
    for (size_t i = 0; i < LADE_SNTP_MAX_SERVERS; i++)
        close_fd(ts, i);
    memcpy(ts->addr, next, n * sizeof next[0]);
    ts->n = n;
    lade_err err = lade_sntp_client_set_servers(&ts->sntp, n, prev, now_of(ts));
    after(ts);
    return err;
}

static void on_timer(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    (void)loop;
    (void)t;
    struct lade_timesync *ts = ud;
    enum lade_sntp_state st = lade_sntp_client_state(&ts->sntp);
    if (ts->ntp_host && !ts->static_servers && st == LADE_SNTP_IDLE) {
        /* Started with no address for the host: try the hosts file again (R11). */
        ts->n = resolve(ts, ts->addr);
        if (ts->n == 0) {
            if (lade_timer_arm_in(ts->loop, &ts->timer, RESOLVE_RETRY_MS) != LADE_OK)
                LOG_E(MOD, "cannot arm the timer: time sync stalls");
            return;
        }
        if (lade_sntp_client_start(&ts->sntp, ts->n, now_of(ts)) != LADE_OK)
            LOG_E(MOD, "cannot start the SNTP client");
        after(ts);
        return;
    }
    if (ts->ntp_host && !ts->static_servers && st == LADE_SNTP_BACKOFF &&
        lade_sntp_client_next_ms(&ts->sntp) <= lade_mono_ms()) {
        /* Untrusted and about to try again: the host may have other addresses by now. */
        struct lade_sockaddr a[LADE_SNTP_MAX_SERVERS];
        size_t n = resolve(ts, a);
        bool changed = false;
        if (n > 0 && take_servers(ts, a, n, &changed) != LADE_OK)
            LOG_W(MOD, "cannot take the new addresses");
        if (changed)
            return; /* the new list started its own burst */
    }
    lade_sntp_client_tick(&ts->sntp, now_of(ts));
    after(ts);
}

/* ---------------------------------------------------------------- lifecycle */

static char *dup_opt(const char *s, bool *fail)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *fail = true;
    return d;
}

lade_err lade_timesync_new(struct lade_loop *loop, const struct lade_timesync_cfg *cfg,
                           struct lade_timesync **out)
{
    if (!loop || !cfg || !out)
        return LADE_ERR_INVAL;
    *out = NULL;
    struct lade_timesync *ts = calloc(1, sizeof *ts);
    if (!ts)
        return LADE_ERR_NOMEM;
    lade_err err = LADE_OK;
    bool fail = false;
    ts->loop = loop;
    ts->cfg = *cfg;
    ts->ntp_host = dup_opt(cfg->ntp_host, &fail);
    ts->hosts_file = dup_opt(cfg->hosts_file, &fail);
    ts->floor_file = dup_opt(cfg->floor_file, &fail);
    ts->cfg.ntp_host = ts->cfg.hosts_file = ts->cfg.floor_file = NULL;
    ts->cfg.servers = NULL;
    ts->cfg.policy = NULL;
    if (fail) {
        err = LADE_ERR_NOMEM;
        goto out;
    }
    ts->port = cfg->port ? cfg->port : LADE_SNTP_PORT;
    ts->offset_ms = cfg->start_offset_ms;
    for (size_t i = 0; i < LADE_SNTP_MAX_SERVERS; i++)
        ts->fd[i] = -1;
    lade_timer_init(&ts->timer, on_timer, ts);

    /* Floor = max(build time, last trusted time saved) (docs/time.md "Floor"). */
    int64_t build_s = cfg->build_time_s ? cfg->build_time_s : lade_timesync_build_time_s();
    int64_t floor_s = build_s;
    if (ts->floor_file) {
        int64_t saved_s = 0;
        lade_err ferr = lade_timesync_read_floor(ts->floor_file, &saved_s);
        if (ferr == LADE_OK && saved_s > build_s + FLOOR_MAX_AHEAD_S)
            LOG_W(MOD, "floor file %s: %lld is past any plausible date, ignored", ts->floor_file,
                  (long long)saved_s);
        else if (ferr == LADE_OK && saved_s > floor_s)
            floor_s = saved_s;
        else if (ferr != LADE_OK && ferr != LADE_ERR_NOT_FOUND)
            LOG_W(MOD, "floor file %s: %s, ignored", ts->floor_file, lade_strerror(ferr));
    }

    struct lade_sntp_cfg policy;
    if (cfg->policy)
        policy = *cfg->policy;
    else
        lade_sntp_cfg_default(&policy);
    policy.host_mode = cfg->host_mode;
    policy.floor_ms = floor_s * 1000;
    struct lade_sntp_ops ops = {
        .send = op_send,
        .random64 = op_random64,
        .step = op_step,
        .trust = op_trust,
        .save_floor = op_save_floor,
    };
    err = lade_sntp_client_init(&ts->sntp, &policy, &ops, ts);
    if (err != LADE_OK)
        goto out;
    if (cfg->n_servers && !cfg->servers) {
        err = LADE_ERR_INVAL;
        goto out;
    }
    ts->n = cfg->n_servers > LADE_SNTP_MAX_SERVERS ? LADE_SNTP_MAX_SERVERS : cfg->n_servers;
    for (size_t i = 0; i < ts->n; i++) {
        ts->addr[i] = cfg->servers[i];
        if (lade_sockaddr_port(&ts->addr[i]) == 0)
            lade_sockaddr_set_port(&ts->addr[i], ts->port);
    }
    ts->static_servers = ts->n > 0;
out:
    if (err != LADE_OK) {
        free(ts->ntp_host);
        free(ts->hosts_file);
        free(ts->floor_file);
        free(ts);
        return err;
    }
    *out = ts;
    return LADE_OK;
}

lade_err lade_timesync_start(struct lade_timesync *ts)
{
    if (!ts)
        return LADE_ERR_INVAL;
    if (ts->started)
        return LADE_ERR_STATE;
    ts->started = true;
    bool host = ts->sntp.cfg.host_mode;
    if (!host && ts->n == 0 && ts->ntp_host)
        ts->n = resolve(ts, ts->addr);
    if (!host && ts->n == 0) {
        if (!ts->ntp_host) {
            ts->started = false;
            return LADE_ERR_CONFIG;
        }
        /* Nothing resolvable yet: untrusted; try again in a minute (R11). */
        LOG_W(MOD, "no address for %s yet; trying again in %u s", ts->ntp_host,
              RESOLVE_RETRY_MS / 1000);
        return lade_timer_arm_in(ts->loop, &ts->timer, RESOLVE_RETRY_MS);
    }
    lade_err err = lade_sntp_client_start(&ts->sntp, ts->n, now_of(ts));
    after(ts);
    return err;
}

lade_err lade_timesync_set_servers(struct lade_timesync *ts, const struct lade_sockaddr *servers,
                                   size_t n)
{
    if (!ts || (n && !servers) || (n == 0 && !ts->sntp.cfg.host_mode))
        return LADE_ERR_INVAL;
    ts->static_servers = true;
    if (!ts->started) {
        ts->n = n > LADE_SNTP_MAX_SERVERS ? LADE_SNTP_MAX_SERVERS : n;
        for (size_t i = 0; i < ts->n; i++) {
            ts->addr[i] = servers[i];
            if (lade_sockaddr_port(&ts->addr[i]) == 0)
                lade_sockaddr_set_port(&ts->addr[i], ts->port);
        }
        return LADE_OK;
    }
    if (ts->sntp.cfg.host_mode)
        return LADE_OK;
    return take_servers(ts, servers, n, NULL);
}

void lade_timesync_network_changed(struct lade_timesync *ts)
{
    if (!ts || !ts->started || ts->sntp.cfg.host_mode || ts->n == 0 || lade_timesync_trusted(ts) ||
        lade_sntp_client_state(&ts->sntp) == LADE_SNTP_IDLE)
        return;
    /* The sockets are connected, so their source address is the old one: open new ones. */
    for (size_t i = 0; i < LADE_SNTP_MAX_SERVERS; i++)
        close_fd(ts, i);
    int prev[LADE_SNTP_MAX_SERVERS];
    for (size_t i = 0; i < ts->n; i++)
        prev[i] = (int)i;
    if (lade_sntp_client_set_servers(&ts->sntp, ts->n, prev, now_of(ts)) == LADE_OK)
        after(ts);
}

void lade_timesync_free(struct lade_timesync *ts)
{
    if (!ts)
        return;
    lade_timer_cancel(ts->loop, &ts->timer);
    for (size_t i = 0; i < LADE_SNTP_MAX_SERVERS; i++)
        close_fd(ts, i);
    lade_sntp_client_stop(&ts->sntp);
    free(ts->ntp_host);
    free(ts->hosts_file);
    free(ts->floor_file);
    free(ts);
}

/* ---------------------------------------------------------------- diagnostics */

bool lade_timesync_trusted(const struct lade_timesync *ts)
{
    return ts && lade_sntp_client_trusted(&ts->sntp);
}

void lade_timesync_status(const struct lade_timesync *ts, struct lade_sntp_status *out)
{
    if (ts)
        lade_sntp_client_status(&ts->sntp, out);
}

size_t lade_timesync_servers(const struct lade_timesync *ts)
{
    return ts ? ts->n : 0;
}

lade_err lade_timesync_server(const struct lade_timesync *ts, size_t i, struct lade_sockaddr *addr,
                              struct lade_sntp_server_diag *diag)
{
    if (!ts)
        return LADE_ERR_INVAL;
    if (i >= ts->n)
        return LADE_ERR_NOT_FOUND;
    if (addr)
        *addr = ts->addr[i];
    if (diag) {
        if (lade_sntp_client_server_diag(&ts->sntp, i, diag) != LADE_OK)
            memset(diag, 0, sizeof *diag); /* started without servers yet */
    }
    return LADE_OK;
}

lade_err lade_timesync_describe(const struct lade_timesync *ts, char *buf, size_t cap)
{
    if (!ts || !buf || cap == 0)
        return LADE_ERR_INVAL;
    struct lade_sntp_status st;
    lade_sntp_client_status(&ts->sntp, &st);
    size_t off = 0;
    int n = snprintf(buf, cap, "%s %s", lade_sntp_state_name(st.state),
                     st.trusted ? "trusted" : "untrusted");
    if (n < 0 || (size_t)n >= cap)
        goto nospace;
    off = (size_t)n;
    if (st.server >= 0 && (size_t)st.server < ts->n) {
        char a[LADE_SOCKADDR_STRLEN];
        if (lade_sockaddr_format(&ts->addr[st.server], a, sizeof a) != LADE_OK)
            snprintf(a, sizeof a, "?");
        uint64_t mono = lade_mono_ms();
        n = snprintf(buf + off, cap - off,
                     " server %s offset %lld ms delay %u ms stratum %u synced %llu s ago", a,
                     (long long)st.offset_ms, st.delay_ms, st.stratum,
                     (unsigned long long)((mono - st.last_sync_mono_ms) / 1000));
        if (n < 0 || (size_t)n >= cap - off)
            goto nospace;
        off += (size_t)n;
    }
    for (size_t i = 0; i < ts->n; i++) {
        char a[LADE_SOCKADDR_STRLEN];
        if (lade_sockaddr_format(&ts->addr[i], a, sizeof a) != LADE_OK)
            snprintf(a, sizeof a, "?");
        struct lade_sntp_server_diag d;
        if (lade_sntp_client_server_diag(&ts->sntp, i, &d) != LADE_OK)
            memset(&d, 0, sizeof d);
        n = snprintf(buf + off, cap - off, "%s %s %s", i == 0 ? ";" : ",", a,
                     d.sent == 0 ? "unasked" : lade_sntp_result_name(d.last_result));
        if (n < 0 || (size_t)n >= cap - off)
            goto nospace;
        off += (size_t)n;
    }
    return LADE_OK;
nospace:
    buf[0] = '\0';
    return LADE_ERR_NOSPACE;
}
