/* Unit tests for the event loop (src/port/linux/loop.c): timer order, cancel and re-arm from
 * callbacks, fd readiness with pipes, unwatch during dispatch, signals. No fixed sleeps: waits
 * are the loop's own, bounded by deadlines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "lade/clock.h"
#include "lade/loop.h"

static struct lade_loop *new_loop(void)
{
    struct lade_loop *loop = NULL;
    assert_int_equal(lade_loop_new(&loop), LADE_OK);
    assert_non_null(loop);
    return loop;
}

/* ---- timers ---- */

struct rec {
    int order[64];
    int n;
};

struct tctx {
    struct lade_timer t;
    int id;
    struct rec *rec;
    struct lade_timer *victim; /* cancelled from this timer's callback */
    int rearm;                 /* re-arm self for "now" this many times */
};

static void rec_cb(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    struct tctx *x = ud;
    assert_ptr_equal(t, &x->t);
    assert_false(lade_timer_armed(t));
    x->rec->order[x->rec->n++] = x->id;
    if (x->victim) {
        lade_timer_cancel(loop, x->victim);
        lade_timer_cancel(loop, t); /* not armed: no-op */
    }
    if (x->rearm > 0) {
        x->rearm--;
        assert_int_equal(lade_timer_arm(loop, t, lade_mono_ms()), LADE_OK);
    }
}

static void tctx_init(struct tctx *x, int id, struct rec *rec)
{
    memset(x, 0, sizeof *x);
    x->id = id;
    x->rec = rec;
    lade_timer_init(&x->t, rec_cb, x);
}

static void test_timer_order(void **state)
{
    (void)state;
    struct lade_loop *loop = new_loop();
    struct rec rec = {0};
    struct tctx x[5];
    for (int i = 0; i < 5; i++)
        tctx_init(&x[i], i, &rec);
    uint64_t base = lade_mono_ms();
    /* All already due: one round fires them by due time, ties in arm order. */
    assert_int_equal(lade_timer_arm(loop, &x[0].t, base - 1), LADE_OK);
    assert_int_equal(lade_timer_arm(loop, &x[1].t, base - 5), LADE_OK);
    assert_int_equal(lade_timer_arm(loop, &x[2].t, base - 3), LADE_OK);
    assert_int_equal(lade_timer_arm(loop, &x[3].t, base - 5), LADE_OK);
    /* Far in the future: must not fire. */
    assert_int_equal(lade_timer_arm(loop, &x[4].t, base + 3600000), LADE_OK);
    assert_int_equal(lade_loop_timer_count(loop), 5);
    assert_int_equal(lade_loop_run_once(loop, 0), LADE_OK);
    assert_int_equal(rec.n, 4);
    assert_int_equal(rec.order[0], 1);
    assert_int_equal(rec.order[1], 3);
    assert_int_equal(rec.order[2], 2);
    assert_int_equal(rec.order[3], 0);
    assert_true(lade_timer_armed(&x[4].t));
    assert_int_equal(lade_loop_timer_count(loop), 1);
    lade_timer_cancel(loop, &x[4].t);
    assert_false(lade_timer_armed(&x[4].t));
    assert_int_equal(lade_loop_timer_count(loop), 0);
    lade_loop_free(loop);
}

static void test_timer_waits_until_due(void **state)
{
    (void)state;
    struct lade_loop *loop = new_loop();
    struct rec rec = {0};
    struct tctx x;
    tctx_init(&x, 7, &rec);
    uint64_t due = lade_mono_ms() + 30;
    assert_int_equal(lade_timer_arm(loop, &x.t, due), LADE_OK);
    uint64_t deadline = lade_mono_ms() + 5000;
    while (rec.n == 0 && lade_mono_ms() < deadline)
        assert_int_equal(lade_loop_run_once(loop, -1), LADE_OK);
    assert_int_equal(rec.n, 1);
    assert_true(lade_mono_ms() >= due);
    lade_loop_free(loop);
}

static void test_timer_cancel_during_dispatch(void **state)
{
    (void)state;
    struct lade_loop *loop = new_loop();
    struct rec rec = {0};
    struct tctx a, b, c;
    tctx_init(&a, 1, &rec);
    tctx_init(&b, 2, &rec);
    tctx_init(&c, 3, &rec);
    a.victim = &b.t; /* a fires first and cancels b, which is due in the same round */
    uint64_t now = lade_mono_ms();
    assert_int_equal(lade_timer_arm(loop, &a.t, now - 3), LADE_OK);
    assert_int_equal(lade_timer_arm(loop, &b.t, now - 2), LADE_OK);
    assert_int_equal(lade_timer_arm(loop, &c.t, now - 1), LADE_OK);
    assert_int_equal(lade_loop_run_once(loop, 0), LADE_OK);
    assert_int_equal(rec.n, 2);
    assert_int_equal(rec.order[0], 1);
    assert_int_equal(rec.order[1], 3);
    assert_false(lade_timer_armed(&b.t));
    assert_int_equal(lade_loop_timer_count(loop), 0);
    lade_loop_free(loop);
}

static void test_timer_rearm(void **state)
{
    (void)state;
    struct lade_loop *loop = new_loop();
    struct rec rec = {0};
    struct tctx a, b;
    tctx_init(&a, 1, &rec);
    tctx_init(&b, 2, &rec);
    /* Re-arming an armed timer moves it; it stays one entry. */
    uint64_t now = lade_mono_ms();
    assert_int_equal(lade_timer_arm(loop, &a.t, now + 3600000), LADE_OK);
    assert_int_equal(lade_timer_arm(loop, &a.t, now - 1), LADE_OK);
    assert_int_equal(lade_loop_timer_count(loop), 1);
    /* A callback re-arming itself for "now" fires once per round, not in a tight loop. */
    a.rearm = 2;
    assert_int_equal(lade_timer_arm(loop, &b.t, now), LADE_OK);
    assert_int_equal(lade_loop_run_once(loop, 0), LADE_OK);
    assert_int_equal(rec.n, 2); /* a, b */
    assert_true(lade_timer_armed(&a.t));
    assert_int_equal(lade_loop_run_once(loop, 0), LADE_OK);
    assert_int_equal(rec.n, 3);
    assert_int_equal(lade_loop_run_once(loop, 0), LADE_OK);
    assert_int_equal(rec.n, 4);
    assert_false(lade_timer_armed(&a.t));
    assert_int_equal(lade_loop_run_once(loop, 0), LADE_OK);
    assert_int_equal(rec.n, 4);
    lade_loop_free(loop);
}

/* Many timers with pseudo-random due times and cancellations: fire order is by due time. */
struct heap_ctx {
    struct lade_timer t;
    uint64_t due;
    uint64_t *last;
    int *fired;
};

static void heap_cb(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    (void)loop;
    (void)t;
    struct heap_ctx *h = ud;
    assert_true(h->due >= *h->last);
    *h->last = h->due;
    (*h->fired)++;
}

static void test_timer_heap_many(void **state)
{
    (void)state;
    enum { N = 2000 };
    struct lade_loop *loop = new_loop();
    struct heap_ctx *hs = calloc(N, sizeof *hs);
    assert_non_null(hs);
    uint64_t last = 0;
    int fired = 0;
    uint32_t x = 12345;
    uint64_t now = lade_mono_ms();
    for (int i = 0; i < N; i++) {
        x = x * 1103515245u + 12345u;
        hs[i].due = now - 1000 + (x >> 16) % 1000;
        hs[i].last = &last;
        hs[i].fired = &fired;
        lade_timer_init(&hs[i].t, heap_cb, &hs[i]);
        assert_int_equal(lade_timer_arm(loop, &hs[i].t, hs[i].due), LADE_OK);
    }
    int cancelled = 0;
    for (int i = 0; i < N; i += 3) {
        lade_timer_cancel(loop, &hs[i].t);
        cancelled++;
    }
    assert_int_equal(lade_loop_timer_count(loop), N - cancelled);
    assert_int_equal(lade_loop_run_once(loop, 0), LADE_OK);
    assert_int_equal(fired, N - cancelled);
    assert_int_equal(lade_loop_timer_count(loop), 0);
    lade_loop_free(loop);
    free(hs);
}

/* ---- fds ---- */

struct fdctx {
    struct lade_loop *loop;
    int fd;
    uint32_t events;
    int calls;
    int other_fd;    /* unwatched (and closed) from the callback when >= 0 */
    int unwatch_me;  /* unwatch own fd from the callback */
    int *other_gone; /* set when other_fd was closed */
};

static void fd_cb(struct lade_loop *loop, int fd, uint32_t events, void *ud)
{
    struct fdctx *x = ud;
    assert_int_equal(fd, x->fd);
    x->events |= events;
    x->calls++;
    if (x->unwatch_me)
        lade_loop_unwatch(loop, fd);
    if (x->other_fd >= 0 && !*x->other_gone) {
        lade_loop_unwatch(loop, x->other_fd);
        *x->other_gone = 1;
    }
}

static void make_pipe(int p[2])
{
    assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
}

static void test_fd_read_write(void **state)
{
    (void)state;
    struct lade_loop *loop = new_loop();
    int p[2];
    make_pipe(p);
    int gone = 0;
    struct fdctx r = {.loop = loop, .fd = p[0], .other_fd = -1, .other_gone = &gone};
    struct fdctx w = {.loop = loop, .fd = p[1], .other_fd = -1, .other_gone = &gone};
    assert_int_equal(lade_loop_watch(loop, p[0], LADE_IO_READ, fd_cb, &r), LADE_OK);
    assert_int_equal(lade_loop_watch(loop, p[0], LADE_IO_READ, fd_cb, &r), LADE_ERR_EXISTS);
    assert_true(lade_loop_watched(loop, p[0]));
    assert_int_equal(lade_loop_watch(loop, p[1], 0, fd_cb, &w), LADE_OK);
    /* Nothing ready: the read end is quiet, the write end is paused. */
    assert_int_equal(lade_loop_run_once(loop, 0), LADE_OK);
    assert_int_equal(r.calls, 0);
    assert_int_equal(w.calls, 0);
    /* The write end becomes interesting. */
    assert_int_equal(lade_loop_modify(loop, p[1], LADE_IO_WRITE), LADE_OK);
    assert_int_equal(lade_loop_run_once(loop, 1000), LADE_OK);
    assert_int_equal(w.calls, 1);
    assert_true(w.events & LADE_IO_WRITE);
    assert_int_equal(lade_loop_modify(loop, p[1], 0), LADE_OK);
    /* Data makes the read end ready (level-triggered: again until drained). */
    assert_int_equal(write(p[1], "x", 1), 1);
    assert_int_equal(lade_loop_run_once(loop, 1000), LADE_OK);
    assert_int_equal(r.calls, 1);
    assert_true(r.events & LADE_IO_READ);
    assert_int_equal(lade_loop_run_once(loop, 0), LADE_OK);
    assert_int_equal(r.calls, 2);
    char c;
    assert_int_equal(read(p[0], &c, 1), 1);
    assert_int_equal(lade_loop_run_once(loop, 0), LADE_OK);
    assert_int_equal(r.calls, 2);
    /* Closing the write end gives a hang-up on the read end. */
    lade_loop_unwatch(loop, p[1]);
    assert_false(lade_loop_watched(loop, p[1]));
    close(p[1]);
    assert_int_equal(lade_loop_run_once(loop, 1000), LADE_OK);
    assert_int_equal(r.calls, 3);
    assert_true(r.events & LADE_IO_HUP);
    /* Paused: the hang-up no longer spins. */
    assert_int_equal(lade_loop_modify(loop, p[0], 0), LADE_OK);
    assert_int_equal(lade_loop_run_once(loop, 0), LADE_OK);
    assert_int_equal(r.calls, 3);
    lade_loop_unwatch(loop, p[0]);
    lade_loop_unwatch(loop, p[0]); /* no-op */
    close(p[0]);
    assert_int_equal(lade_loop_modify(loop, p[0], LADE_IO_READ), LADE_ERR_NOT_FOUND);
    assert_int_equal(lade_loop_watch(loop, -1, LADE_IO_READ, fd_cb, &r), LADE_ERR_INVAL);
    lade_loop_free(loop);
}

static void test_fd_unwatch_other_during_dispatch(void **state)
{
    (void)state;
    struct lade_loop *loop = new_loop();
    int p1[2], p2[2];
    make_pipe(p1);
    make_pipe(p2);
    int gone = 0;
    struct fdctx a = {.loop = loop, .fd = p1[0], .other_fd = p2[0], .other_gone = &gone};
    struct fdctx b = {.loop = loop, .fd = p2[0], .other_fd = p1[0], .other_gone = &gone};
    assert_int_equal(lade_loop_watch(loop, p1[0], LADE_IO_READ, fd_cb, &a), LADE_OK);
    assert_int_equal(lade_loop_watch(loop, p2[0], LADE_IO_READ, fd_cb, &b), LADE_OK);
    assert_int_equal(write(p1[1], "x", 1), 1);
    assert_int_equal(write(p2[1], "x", 1), 1);
    /* Both are ready in the same epoll batch; whichever runs first unwatches the other,
     * which must then not be called. */
    uint64_t deadline = lade_mono_ms() + 5000;
    while (a.calls + b.calls == 0 && lade_mono_ms() < deadline)
        assert_int_equal(lade_loop_run_once(loop, 1000), LADE_OK);
    assert_int_equal(a.calls + b.calls, 1);
    /* The survivor keeps firing, the other never does. */
    assert_int_equal(lade_loop_run_once(loop, 0), LADE_OK);
    assert_int_equal(a.calls + b.calls, 2);
    assert_true(a.calls == 2 || b.calls == 2);
    lade_loop_unwatch(loop, p1[0]);
    lade_loop_unwatch(loop, p2[0]);
    close(p1[0]);
    close(p1[1]);
    close(p2[0]);
    close(p2[1]);
    lade_loop_free(loop);
}

static void test_fd_unwatch_self_and_reuse(void **state)
{
    (void)state;
    struct lade_loop *loop = new_loop();
    int p[2];
    make_pipe(p);
    int gone = 0;
    struct fdctx r = {
        .loop = loop, .fd = p[0], .other_fd = -1, .unwatch_me = 1, .other_gone = &gone};
    assert_int_equal(lade_loop_watch(loop, p[0], LADE_IO_READ, fd_cb, &r), LADE_OK);
    assert_int_equal(write(p[1], "x", 1), 1);
    assert_int_equal(lade_loop_run_once(loop, 1000), LADE_OK);
    assert_int_equal(r.calls, 1);
    assert_false(lade_loop_watched(loop, p[0]));
    assert_int_equal(lade_loop_run_once(loop, 0), LADE_OK);
    assert_int_equal(r.calls, 1);
    /* The fd number gets reused by a new pipe: watching it works. */
    close(p[0]);
    close(p[1]);
    int q[2];
    make_pipe(q);
    struct fdctx n = {.loop = loop, .fd = q[0], .other_fd = -1, .other_gone = &gone};
    assert_int_equal(lade_loop_watch(loop, q[0], LADE_IO_READ, fd_cb, &n), LADE_OK);
    assert_int_equal(write(q[1], "y", 1), 1);
    assert_int_equal(lade_loop_run_once(loop, 1000), LADE_OK);
    assert_int_equal(n.calls, 1);
    /* Unwatch tolerates an fd closed first. */
    close(q[0]);
    lade_loop_unwatch(loop, q[0]);
    close(q[1]);
    lade_loop_free(loop);
}

/* ---- signals, run/stop ---- */

static void on_usr1(struct lade_loop *loop, int signo, void *ud)
{
    assert_int_equal(signo, SIGUSR1);
    (*(int *)ud)++;
    lade_loop_stop(loop);
}

static void stop_cb(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    (void)t;
    (void)ud;
    assert_int_equal(raise(SIGUSR1), 0);
    (void)loop;
}

static void test_signal_and_stop(void **state)
{
    (void)state;
    struct lade_loop *loop = new_loop();
    int got = 0;
    assert_int_equal(lade_loop_on_signal(loop, SIGKILL, on_usr1, &got), LADE_ERR_INVAL);
    assert_int_equal(lade_loop_on_signal(loop, 0, on_usr1, &got), LADE_ERR_INVAL);
    assert_int_equal(lade_loop_on_signal(loop, SIGUSR1, on_usr1, &got), LADE_OK);
    /* A timer raises the signal; the signal's callback stops lade_loop_run (a broken signal
     * path would hang here until the CTest timeout). */
    struct lade_timer t;
    lade_timer_init(&t, stop_cb, NULL);
    assert_int_equal(lade_timer_arm_in(loop, &t, 1), LADE_OK);
    assert_int_equal(lade_loop_run(loop), LADE_OK);
    assert_int_equal(got, 1);
    /* A stop requested before run returns at once. */
    lade_loop_stop(loop);
    assert_int_equal(lade_loop_run(loop), LADE_OK);
    lade_loop_free(loop);
    /* The loop restored the mask: SIGUSR1 is no longer blocked. */
    sigset_t cur;
    assert_int_equal(sigprocmask(SIG_BLOCK, NULL, &cur), 0);
    assert_false(sigismember(&cur, SIGUSR1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timer_order),
        cmocka_unit_test(test_timer_waits_until_due),
        cmocka_unit_test(test_timer_cancel_during_dispatch),
        cmocka_unit_test(test_timer_rearm),
        cmocka_unit_test(test_timer_heap_many),
        cmocka_unit_test(test_fd_read_write),
        cmocka_unit_test(test_fd_unwatch_other_during_dispatch),
        cmocka_unit_test(test_fd_unwatch_self_and_reuse),
        cmocka_unit_test(test_signal_and_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
