/*
 * coblk event loop: one context (AioContext) per thread, on one io_uring.
 *
 * The ring carries block I/O and everything else the loop waits on: the
 * eventfd other threads use to wake it, fd readiness, timers.  Coroutines
 * that wait for a completion are woken with coblk_aio_co_wake(), which
 * enters them at once on their own thread or hands them to their context's
 * thread.  Bottom halves are callbacks any thread can queue for a context.
 *
 * A context belongs to the thread that created it: only that thread may
 * poll or free it (doing otherwise aborts with a message).  Waking,
 * scheduling and bottom halves are for any thread.
 */
#ifndef COBLK_AIO_H
#define COBLK_AIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coblk/coroutine.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct coblk_aio coblk_aio;

/* Flags for coblk_aio_new(). */
enum {
    /* Do not ask the kernel for single-issuer and deferred task running:
     * the ring set-up of a kernel without them (for tests and benchmarks). */
    COBLK_AIO_PLAIN_RING = 1u << 0,
};

/* Creates this thread's context with a submission queue of `entries`
 * (0: 256; at most 32768; the completion queue is twice that) and makes it
 * the thread's current context.  Returns 0, -EINVAL (bad entries or
 * flags), -EEXIST (the thread has a context already), or the ring's error
 * (-ENOMEM, -EPERM when io_uring is disabled, -ENOSYS). */
COBLK_API int coblk_aio_new(unsigned entries, unsigned flags,
                            coblk_aio **out);

/* Runs the bottom halves still queued, then frees the context.  Coroutines
 * still waiting on its ring are never resumed: let them finish first. */
COBLK_API void coblk_aio_free(coblk_aio *ctx);

/* This thread's context, or NULL. */
COBLK_API coblk_aio *coblk_aio_current(void);

/* One loop iteration: submits what coroutines prepared (one system call
 * for the batch), runs completions, scheduled coroutines and bottom halves.
 * With blocking, waits until there is something to do.  Returns true if
 * anything was done. */
COBLK_API bool coblk_aio_poll(coblk_aio *ctx, bool blocking);

/* How long the loop spins, waiting for work from other threads, before it
 * sleeps in the kernel: a sleeping thread takes microseconds to wake.  It
 * spins only when nothing is in flight on its ring, so I/O completions are
 * never delayed.  0 (the default; iothreads: 32 us) never spins.  Call from
 * the context's thread.  Returns 0, or -EINVAL above one second. */
COBLK_API int coblk_aio_set_poll_ns(coblk_aio *ctx, uint64_t ns);

/* Registers the memory [base, base + len) with ctx's ring (io_uring's
 * fixed buffers): reads and writes of files into it then skip the
 * kernel's pinning of its pages on every request, which is most of the
 * cost of a small O_DIRECT request.  The pages stay pinned (counted
 * against RLIMIT_MEMLOCK) until coblk_aio_unregister_buffer() or
 * coblk_aio_free(); free the memory only after.  Up to 16 regions per
 * context, each at most 1 GiB.  Call from the context's thread.  Returns
 * 0, or -EINVAL (an empty or too large region, or one overlapping a
 * registered one), -ENOSPC (16 registered), -ENOTSUP (a kernel before
 * 5.19), -ENOMEM (past RLIMIT_MEMLOCK), -errno. */
COBLK_API int coblk_aio_register_buffer(coblk_aio *ctx, void *base,
                                        size_t len);

/* Unregisters the region registered at base; requests into it must have
 * completed.  Call from the context's thread.  Returns 0, or -ENOENT. */
COBLK_API int coblk_aio_unregister_buffer(coblk_aio *ctx, void *base);

/* Counters of a context's rare paths.  Fields are only ever appended. */
struct coblk_aio_stats {
    uint64_t submits;           /* io_uring_enter calls that submitted */
    uint64_t sq_full;           /* SQ full: submitted early to make room */
    uint64_t slot_waits;        /* waited for CQ room (the in-flight limit) */
    uint64_t submit_retries;    /* -EINTR / -EAGAIN / -EBUSY from the ring */
    uint64_t cq_overflows;      /* times the kernel kept CQEs aside, CQ full */
    uint64_t notifies;          /* eventfd writes waking the loop */
    uint64_t inflight_peak;     /* most SQEs in flight at a submission */
};

/* Copies ctx's counters into stats, of size bytes (pass sizeof(*stats);
 * fields this library lacks read 0).  Call from the context's thread.
 * Returns 0, or -EINVAL. */
COBLK_API int coblk_aio_stats(coblk_aio *ctx, struct coblk_aio_stats *stats,
                              size_t size);

/* Wakes co, which waits in the context it last ran in: enters it now if
 * that is this thread's context (after the current coroutine yields, when
 * called from one), else schedules it there. */
COBLK_API void coblk_aio_co_wake(coblk_co *co);

/* Has ctx's thread enter co on its next iteration; from any thread.  co may
 * be the caller itself, about to yield: it is entered after it yields.
 * Aborts if co is already scheduled, naming who scheduled it. */
COBLK_API void coblk_aio_co_schedule(coblk_aio *ctx, coblk_co *co);

/* Enters co in ctx: at once if ctx is this thread's (queued behind the
 * current coroutine when called from one), else schedules it. */
COBLK_API void coblk_aio_co_enter(coblk_aio *ctx, coblk_co *co);

/* Runs fn(opaque) in ctx's thread on its next iteration; from any thread.
 * Returns 0 or -ENOMEM. */
COBLK_API int coblk_aio_bh_schedule(coblk_aio *ctx, void (*fn)(void *),
                                    void *opaque);

/* Sleeps at least ns nanoseconds (a timer on the ring).  Returns 0, or
 * -EPERM outside a coroutine running in a context. */
COBLK_API int coroutine_fn coblk_co_sleep_ns(uint64_t ns);

/* Waits until fd is ready for `events` (POLLIN, POLLOUT, ...).  Returns the
 * ready events, or -errno (-EPERM outside a coroutine in a context). */
COBLK_API int coroutine_fn coblk_co_wait_fd(int fd, short events);

/* A thread running its own context until joined. */
typedef struct coblk_iothread coblk_iothread;

/* Starts a thread named `name` (at most 15 bytes are kept) with its own
 * context.  Returns 0, -ENOMEM, -EAGAIN, or the context's error. */
COBLK_API int coblk_iothread_new(const char *name, coblk_iothread **out);
COBLK_API coblk_aio *coblk_iothread_aio(coblk_iothread *t);

/* Stops the thread after its current iteration, waits for it and frees it. */
COBLK_API void coblk_iothread_join(coblk_iothread *t);

#ifdef __cplusplus
}
#endif

#endif /* COBLK_AIO_H */
