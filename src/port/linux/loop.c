/* lade — event loop on epoll + signalfd. Contract in include/lade/loop.h. */
#include "lade/loop.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "lade/clock.h"
#include "lade/log.h"

#define MOD "loop"

#define LOOP_MAX_EVENTS 64
#define LOOP_NSIG       65 /* signals 1..64 */

struct watch {
    lade_io_cb cb;
    void *ud;
    uint32_t interest;
    uint32_t gen;      /* bumped on every watch/unwatch: stale epoll events are dropped */
    unsigned active;   /* watched */
    unsigned in_epoll; /* registered with epoll (interest != 0) */
};

struct sig_handler {
    lade_signal_cb cb;
    void *ud;
};

struct lade_loop {
    int epfd;
    int stop;

    struct watch *watches; /* indexed by fd */
    size_t nwatches;

    struct lade_timer **heap;
    size_t heap_len;
    size_t heap_cap;
    uint64_t timer_seq;

    int sigfd;
    sigset_t sigmask;     /* signals routed to sigfd */
    sigset_t sig_blocked; /* signals this loop blocked (restored on free) */
    struct sig_handler sig[LOOP_NSIG];
};

lade_err lade_loop_new(struct lade_loop **out)
{
    struct lade_loop *loop = calloc(1, sizeof *loop);
    if (!loop)
        return LADE_ERR_NOMEM;
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0) {
        LOG_E(MOD, "epoll_create1: %s", strerror(errno));
        free(loop);
        return LADE_ERR_IO;
    }
    loop->sigfd = -1;
    sigemptyset(&loop->sigmask);
    sigemptyset(&loop->sig_blocked);
    *out = loop;
    return LADE_OK;
}

void lade_loop_free(struct lade_loop *loop)
{
    if (!loop)
        return;
    for (size_t i = 0; i < loop->heap_len; i++)
        loop->heap[i]->heap_index = SIZE_MAX;
    free(loop->heap);
    if (loop->sigfd >= 0)
        close(loop->sigfd);
    if (!sigisemptyset(&loop->sig_blocked))
        sigprocmask(SIG_UNBLOCK, &loop->sig_blocked, NULL);
    free(loop->watches);
    close(loop->epfd);
    free(loop);
}

/* ---- fd watches ---- */

static uint32_t to_epoll(uint32_t interest)
{
    uint32_t ev = 0;
    if (interest & LADE_IO_READ)
        ev |= EPOLLIN | EPOLLRDHUP;
    if (interest & LADE_IO_WRITE)
        ev |= EPOLLOUT;
    return ev;
}

static uint32_t from_epoll(uint32_t ev)
{
    uint32_t r = 0;
    if (ev & (EPOLLIN | EPOLLPRI))
        r |= LADE_IO_READ;
    if (ev & EPOLLOUT)
        r |= LADE_IO_WRITE;
    if (ev & EPOLLERR)
        r |= LADE_IO_ERROR;
    if (ev & (EPOLLHUP | EPOLLRDHUP))
        r |= LADE_IO_HUP;
    return r;
}

static struct watch *watch_get(const struct lade_loop *loop, int fd)
{
    if (fd < 0 || (size_t)fd >= loop->nwatches || !loop->watches[fd].active)
        return NULL;
    return &loop->watches[fd];
}

/* Applies interest to epoll: registered iff interest != 0 (a paused fd in error must not
 * spin the loop with EPOLLERR/EPOLLHUP, which epoll reports regardless of the mask). */
static lade_err watch_apply(struct lade_loop *loop, int fd, struct watch *w, uint32_t interest)
{
    struct epoll_event ev = {.events = to_epoll(interest),
                             .data.u64 = ((uint64_t)w->gen << 32) | (uint32_t)fd};
    int rc = 0;
    if (interest == 0) {
        if (w->in_epoll)
            rc = epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
        w->in_epoll = 0;
    } else if (w->in_epoll) {
        rc = epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev);
    } else {
        rc = epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev);
        if (rc == 0)
            w->in_epoll = 1;
    }
    if (rc != 0) {
        LOG_W(MOD, "epoll_ctl fd %d: %s", fd, strerror(errno));
        return LADE_ERR_IO;
    }
    w->interest = interest;
    return LADE_OK;
}

lade_err lade_loop_watch(struct lade_loop *loop, int fd, uint32_t interest, lade_io_cb cb, void *ud)
{
    if (fd < 0 || !cb)
        return LADE_ERR_INVAL;
    if ((size_t)fd >= loop->nwatches) {
        size_t n = loop->nwatches ? loop->nwatches : 64;
        while (n <= (size_t)fd)
            n *= 2;
        struct watch *w = realloc(loop->watches, n * sizeof *w);
        if (!w)
            return LADE_ERR_NOMEM;
        memset(w + loop->nwatches, 0, (n - loop->nwatches) * sizeof *w);
        loop->watches = w;
        loop->nwatches = n;
    }
    struct watch *w = &loop->watches[fd];
    if (w->active)
        return LADE_ERR_EXISTS;
    w->gen++;
    w->cb = cb;
    w->ud = ud;
    w->in_epoll = 0;
    w->interest = 0;
    lade_err err = watch_apply(loop, fd, w, interest & (LADE_IO_READ | LADE_IO_WRITE));
    if (err != LADE_OK)
        return err;
    w->active = 1;
    return LADE_OK;
}

lade_err lade_loop_modify(struct lade_loop *loop, int fd, uint32_t interest)
{
    struct watch *w = watch_get(loop, fd);
    if (!w)
        return LADE_ERR_NOT_FOUND;
    interest &= LADE_IO_READ | LADE_IO_WRITE;
    if (interest == w->interest)
        return LADE_OK;
    return watch_apply(loop, fd, w, interest);
}

void lade_loop_unwatch(struct lade_loop *loop, int fd)
{
    struct watch *w = watch_get(loop, fd);
    if (!w)
        return;
    /* EBADF/ENOENT: the fd was closed already (close removes it from epoll) or its number was
     * reused by a descriptor we never registered — either way nothing is left to remove. */
    if (w->in_epoll)
        (void)epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
    w->active = 0;
    w->in_epoll = 0;
    w->interest = 0;
    w->cb = NULL;
    w->ud = NULL;
    w->gen++;
}

int lade_loop_watched(const struct lade_loop *loop, int fd)
{
    return watch_get(loop, fd) != NULL;
}

/* ---- timers: binary min-heap on (due_ms, seq) ---- */

static int timer_before(const struct lade_timer *a, const struct lade_timer *b)
{
    return a->due_ms < b->due_ms || (a->due_ms == b->due_ms && a->seq < b->seq);
}

static void heap_set(struct lade_loop *loop, size_t i, struct lade_timer *t)
{
    loop->heap[i] = t;
    t->heap_index = i;
}

static void heap_up(struct lade_loop *loop, size_t i)
{
    struct lade_timer *t = loop->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!timer_before(t, loop->heap[parent]))
            break;
        heap_set(loop, i, loop->heap[parent]);
        i = parent;
    }
    heap_set(loop, i, t);
}

static void heap_down(struct lade_loop *loop, size_t i)
{
    struct lade_timer *t = loop->heap[i];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const struct lade_timer *best = t;
        if (l < loop->heap_len && timer_before(loop->heap[l], best)) {
            m = l;
            best = loop->heap[l];
        }
        if (r < loop->heap_len && timer_before(loop->heap[r], best))
            m = r;
        if (m == i)
            break;
        heap_set(loop, i, loop->heap[m]);
        i = m;
    }
    heap_set(loop, i, t);
}

static void heap_remove(struct lade_loop *loop, size_t i)
{
    struct lade_timer *t = loop->heap[i];
    loop->heap_len--;
    if (i != loop->heap_len) {
        heap_set(loop, i, loop->heap[loop->heap_len]);
        if (i > 0 && timer_before(loop->heap[i], loop->heap[(i - 1) / 2]))
            heap_up(loop, i);
        else
            heap_down(loop, i);
    }
    t->heap_index = SIZE_MAX;
}

void lade_timer_init(struct lade_timer *t, lade_timer_cb cb, void *ud)
{
    memset(t, 0, sizeof *t);
    t->heap_index = SIZE_MAX;
    t->cb = cb;
    t->ud = ud;
}

lade_err lade_timer_arm(struct lade_loop *loop, struct lade_timer *t, uint64_t due_ms)
{
    if (t->heap_index != SIZE_MAX)
        heap_remove(loop, t->heap_index);
    if (loop->heap_len == loop->heap_cap) {
        size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
        struct lade_timer **h = realloc(loop->heap, cap * sizeof *h);
        if (!h)
            return LADE_ERR_NOMEM;
        loop->heap = h;
        loop->heap_cap = cap;
    }
    t->due_ms = due_ms;
    t->seq = loop->timer_seq++;
    loop->heap[loop->heap_len] = t;
    t->heap_index = loop->heap_len++;
    heap_up(loop, t->heap_index);
    return LADE_OK;
}

lade_err lade_timer_arm_in(struct lade_loop *loop, struct lade_timer *t, uint64_t delay_ms)
{
    return lade_timer_arm(loop, t, lade_mono_ms() + delay_ms);
}

void lade_timer_cancel(struct lade_loop *loop, struct lade_timer *t)
{
    if (t->heap_index == SIZE_MAX)
        return;
    if (t->heap_index >= loop->heap_len || loop->heap[t->heap_index] != t) {
        LOG_E(MOD, "timer %p is not armed on this loop", (void *)t);
        abort(); /* memory corruption or a timer of another loop: do not guess */
    }
    heap_remove(loop, t->heap_index);
}

int lade_timer_armed(const struct lade_timer *t)
{
    return t->heap_index != SIZE_MAX;
}

size_t lade_loop_timer_count(const struct lade_loop *loop)
{
    return loop->heap_len;
}

/* ---- signals ---- */

static void on_sigfd(struct lade_loop *loop, int fd, uint32_t events, void *ud)
{
    (void)events;
    (void)ud;
    for (;;) {
        struct signalfd_siginfo si;
        ssize_t n = read(fd, &si, sizeof si);
        if (n != (ssize_t)sizeof si) {
            if (n < 0 && errno != EAGAIN && errno != EINTR)
                LOG_W(MOD, "signalfd read: %s", strerror(errno));
            return;
        }
        int signo = (int)si.ssi_signo;
        if (signo > 0 && signo < LOOP_NSIG && loop->sig[signo].cb)
            loop->sig[signo].cb(loop, signo, loop->sig[signo].ud);
        if (loop->sigfd != fd)
            return; /* a callback freed the signal fd (cannot happen today, but be safe) */
    }
}

lade_err lade_loop_on_signal(struct lade_loop *loop, int signo, lade_signal_cb cb, void *ud)
{
    if (signo <= 0 || signo >= LOOP_NSIG || signo > SIGRTMAX || signo == SIGKILL ||
        signo == SIGSTOP || !cb)
        return LADE_ERR_INVAL;
    sigset_t one, old;
    sigemptyset(&one);
    sigaddset(&one, signo);
    if (sigprocmask(SIG_BLOCK, &one, &old) != 0)
        return LADE_ERR_IO;
    if (!sigismember(&old, signo))
        sigaddset(&loop->sig_blocked, signo);
    sigaddset(&loop->sigmask, signo);
    int fd = signalfd(loop->sigfd, &loop->sigmask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) {
        LOG_E(MOD, "signalfd: %s", strerror(errno));
        return LADE_ERR_IO;
    }
    if (loop->sigfd < 0) {
        loop->sigfd = fd;
        lade_err err = lade_loop_watch(loop, fd, LADE_IO_READ, on_sigfd, NULL);
        if (err != LADE_OK) {
            close(fd);
            loop->sigfd = -1;
            return err;
        }
    }
    loop->sig[signo].cb = cb;
    loop->sig[signo].ud = ud;
    return LADE_OK;
}

/* ---- dispatch ---- */

static int wait_ms(const struct lade_loop *loop, int max_wait_ms, uint64_t now)
{
    if (loop->heap_len == 0)
        return max_wait_ms < 0 ? -1 : max_wait_ms;
    uint64_t due = loop->heap[0]->due_ms;
    uint64_t d = due > now ? due - now : 0;
    if (d > (uint64_t)INT32_MAX)
        d = INT32_MAX;
    if (max_wait_ms >= 0 && (uint64_t)max_wait_ms < d)
        d = (uint64_t)max_wait_ms;
    return (int)d;
}

lade_err lade_loop_run_once(struct lade_loop *loop, int max_wait_ms)
{
    struct epoll_event evs[LOOP_MAX_EVENTS];
    int n =
        epoll_wait(loop->epfd, evs, LOOP_MAX_EVENTS, wait_ms(loop, max_wait_ms, lade_mono_ms()));
    if (n < 0) {
        if (errno != EINTR) {
            LOG_E(MOD, "epoll_wait: %s", strerror(errno));
            return LADE_ERR_IO;
        }
        n = 0;
    }
    for (int i = 0; i < n; i++) {
        int fd = (int)(uint32_t)evs[i].data.u64;
        uint32_t gen = (uint32_t)(evs[i].data.u64 >> 32);
        struct watch *w = watch_get(loop, fd);
        /* Unwatched (or unwatched and re-watched) by an earlier callback of this round. */
        if (!w || w->gen != gen)
            continue;
        uint32_t ev = from_epoll(evs[i].events);
        /* Report only what was asked for (interest may have changed earlier in this round),
         * plus errors and hang-ups. */
        ev &= w->interest | LADE_IO_ERROR | LADE_IO_HUP;
        if (ev && w->interest)
            w->cb(loop, fd, ev, w->ud);
    }
    /* Timers armed from here on carry seq >= limit and wait for the next round. */
    uint64_t limit = loop->timer_seq;
    uint64_t now = lade_mono_ms();
    while (loop->heap_len > 0) {
        struct lade_timer *t = loop->heap[0];
        if (t->due_ms > now || t->seq >= limit)
            break;
        heap_remove(loop, 0);
        t->cb(loop, t, t->ud);
    }
    return LADE_OK;
}

lade_err lade_loop_run(struct lade_loop *loop)
{
    lade_err err = LADE_OK;
    while (!loop->stop) {
        err = lade_loop_run_once(loop, -1);
        if (err != LADE_OK)
            break;
    }
    loop->stop = 0;
    return err;
}

void lade_loop_stop(struct lade_loop *loop)
{
    loop->stop = 1;
}
