/* lade — the event loop of a process (Linux: epoll + signalfd), src/port/linux/loop.c.
 *
 * One loop per process (DESIGN "Non-blocking everywhere"); single-threaded: every call below is
 * made from the thread that runs the loop. Nothing here blocks except the wait inside
 * lade_loop_run / lade_loop_run_once.
 *
 * fd watches: the loop keeps a small table indexed by fd. Readiness is level-triggered. A watch
 * with interest 0 is paused (removed from epoll), so an fd in error does not spin. Errors and
 * hang-ups are reported (LADE_IO_ERROR / LADE_IO_HUP) whenever the interest is not 0.
 * Unwatch an fd before closing it. lade_loop_unwatch tolerates an fd that was already closed.
 *
 * Timers are embedded by the caller (struct lade_timer) and kept in a binary heap of pointers
 * inside the loop: arming never allocates per timer (the heap array grows geometrically), so
 * thousands of contexts in one process are cheap. Timers due at the same millisecond fire in
 * the order they were armed. A timer must be cancelled (or have fired) before its memory is
 * freed or reused.
 *
 * Re-entrancy: callbacks may watch/modify/unwatch any fd (their own included), arm/cancel any
 * timer (their own included) and call lade_loop_stop. Events for an fd unwatched during a
 * dispatch round are not delivered afterwards, even if the fd number is reused in that round.
 * A timer armed during timer dispatch fires in a later round even when already due, so a timer
 * that re-arms itself for "now" cannot starve fd events. lade_loop_free must not be called
 * from a callback.
 */
#ifndef LADE_LOOP_H
#define LADE_LOOP_H

#include <stddef.h>
#include <stdint.h>

#include "lade/err.h"

struct lade_loop;

/* Readiness / interest bits. READ and WRITE are interests; ERROR and HUP are only reported. */
#define LADE_IO_READ  0x1u
#define LADE_IO_WRITE 0x2u
#define LADE_IO_ERROR 0x4u /* EPOLLERR: fetch the error with getsockopt(SO_ERROR) or by I/O */
#define LADE_IO_HUP   0x8u /* EPOLLHUP/EPOLLRDHUP: peer closed (reads may still drain data) */

typedef void (*lade_io_cb)(struct lade_loop *loop, int fd, uint32_t events, void *ud);

struct lade_timer;
typedef void (*lade_timer_cb)(struct lade_loop *loop, struct lade_timer *t, void *ud);

/* Embed in your context; initialize with lade_timer_init. Fields are private to the loop. */
struct lade_timer {
    uint64_t due_ms;   /* lade_mono_ms() time it fires at */
    uint64_t seq;      /* arm order: ties on due_ms fire first-armed first */
    size_t heap_index; /* position in the loop's heap; SIZE_MAX when not armed */
    lade_timer_cb cb;
    void *ud;
};

typedef void (*lade_signal_cb)(struct lade_loop *loop, int signo, void *ud);

/* Creates a loop (epoll fd, close-on-exec). Errors: LADE_ERR_NOMEM, LADE_ERR_IO. */
lade_err lade_loop_new(struct lade_loop **out) LADE_MUST_CHECK;
/* Closes the loop's own fds, restores the signal mask changed by lade_loop_on_signal (a signal
 * still pending then gets its default action) and frees it. Watched fds are not closed; armed
 * timers are simply forgotten (their heap_index is reset). NULL is ignored. */
void lade_loop_free(struct lade_loop *loop);

/* Starts watching fd with interest (LADE_IO_READ|LADE_IO_WRITE, 0 = paused).
 * Errors: LADE_ERR_INVAL (fd < 0, cb NULL), LADE_ERR_EXISTS (already watched),
 * LADE_ERR_NOMEM, LADE_ERR_IO (epoll_ctl failed, e.g. a regular file). */
lade_err lade_loop_watch(struct lade_loop *loop, int fd, uint32_t interest, lade_io_cb cb,
                         void *ud) LADE_MUST_CHECK;
/* Changes the interest of a watched fd. Errors: LADE_ERR_NOT_FOUND, LADE_ERR_IO. */
lade_err lade_loop_modify(struct lade_loop *loop, int fd, uint32_t interest) LADE_MUST_CHECK;
/* Stops watching fd (no-op if not watched). Does not close it. */
void lade_loop_unwatch(struct lade_loop *loop, int fd);
/* True (1) if fd is watched. */
int lade_loop_watched(const struct lade_loop *loop, int fd);

void lade_timer_init(struct lade_timer *t, lade_timer_cb cb, void *ud);
/* Arms t to fire once at due_ms (monotonic, lade_mono_ms()); re-arms if already armed (never
 * allocates then). A due time in the past fires in the next dispatch round.
 * Errors: LADE_ERR_NOMEM (growing the heap; t is left unarmed). */
lade_err lade_timer_arm(struct lade_loop *loop, struct lade_timer *t,
                        uint64_t due_ms) LADE_MUST_CHECK;
/* Same with a delay from now. */
lade_err lade_timer_arm_in(struct lade_loop *loop, struct lade_timer *t,
                           uint64_t delay_ms) LADE_MUST_CHECK;
/* Disarms t (no-op if not armed). Safe from any callback, including t's own. */
void lade_timer_cancel(struct lade_loop *loop, struct lade_timer *t);
/* True (1) if t is armed. */
int lade_timer_armed(const struct lade_timer *t);
/* Number of armed timers (diagnostics, tests). */
size_t lade_loop_timer_count(const struct lade_loop *loop);

/* Delivers signo through the loop (signalfd) instead of asynchronously: the signal is blocked
 * in the calling thread (call this before starting other threads, which inherit the mask) and
 * cb runs from the loop. One callback per signal; a second call replaces it.
 * Errors: LADE_ERR_INVAL (signo not in 1..SIGRTMAX, or SIGKILL/SIGSTOP), LADE_ERR_IO. */
lade_err lade_loop_on_signal(struct lade_loop *loop, int signo, lade_signal_cb cb,
                             void *ud) LADE_MUST_CHECK;

/* One round: waits up to max_wait_ms (< 0: until the next timer or event; 0: poll) — never
 * past the earliest timer — then dispatches ready fds, then due timers.
 * Returns LADE_OK (also when interrupted by a signal) or LADE_ERR_IO (epoll_wait failed). */
lade_err lade_loop_run_once(struct lade_loop *loop, int max_wait_ms) LADE_MUST_CHECK;
/* Runs rounds until lade_loop_stop is called (then returns LADE_OK and clears the stop
 * request) or epoll fails (LADE_ERR_IO). A stop requested before the call returns at once. */
lade_err lade_loop_run(struct lade_loop *loop) LADE_MUST_CHECK;
/* Asks lade_loop_run to return after the current round. */
void lade_loop_stop(struct lade_loop *loop);

#endif
