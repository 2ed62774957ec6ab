/*
 * Event loop internals for the block layer: getting an SQE whose CQE wakes
 * a coroutine.  Not installed.
 *
 * Every SQE handed out produces exactly one CQE (no multishot, no linked
 * timeouts), so the count of SQEs handed out and not yet reaped is the
 * number of CQEs to come; keeping it at or below the CQ size means the
 * completion queue can never overflow.
 */
#ifndef COBLK_AIO_INT_H
#define COBLK_AIO_INT_H

#include <liburing.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "coblk/aio.h"
#include "coblk/co-lock.h"
#include "coroutine-int.h"

/* What a CQE's user_data points to. */
typedef struct aio_cqe_handler aio_cqe_handler;
struct aio_cqe_handler {
    void (*complete)(coblk_aio *ctx, aio_cqe_handler *handler, int res,
                     uint32_t flags);
};

/* A request a coroutine waits for; lives on the coroutine's stack. */
typedef struct aio_co_request {
    aio_cqe_handler handler;
    coblk_co *co;
    int res;
    uint32_t flags;
    bool done;
} aio_co_request;

typedef struct aio_bh aio_bh;

/* Counters of the rare paths: if they happen, someone should know. */
typedef struct aio_stats {
    uint64_t submits;           /* io_uring_enter calls that submitted */
    uint64_t sq_full;           /* SQ full: submitted early to make room */
    uint64_t slot_waits;        /* waited for a CQ slot (in-flight limit) */
    uint64_t submit_retries;    /* -EINTR / -EAGAIN / -EBUSY from the ring */
    uint64_t cq_overflows;      /* the kernel kept CQEs aside, CQ full */
    _Atomic uint64_t notifies;  /* eventfd writes (by any thread) */
    unsigned inflight_peak;     /* most SQEs in flight at a submission */
} aio_stats;

/* Registered (fixed) files: a sparse table per ring, so requests skip the
 * kernel's file lookup.  Each slot remembers the word its owner keeps the
 * slot's context in, to clear it when the context goes first. */
#define AIO_FIXED_FILES 64

/* Registered (fixed) buffers: memory the kernel pinned once, so that reads
 * and writes into it skip pinning its pages on every request. */
#define AIO_FIXED_BUFS 16

struct aio_fixed_buf {
    uintptr_t base;             /* 0: a free slot */
    size_t len;
};

struct coblk_aio {
    struct io_uring ring;
    bool fixed_files;           /* the kernel gave us a table */
    uint64_t fixed_used;        /* bitmap of slots */
    coblk_aio *_Atomic *fixed_owner[AIO_FIXED_FILES];
    bool fixed_bufs;            /* the kernel gave us a buffer table */
    unsigned fixed_bufs_end;    /* past the last used slot: lookups stop */
    struct aio_fixed_buf fixed_buf[AIO_FIXED_BUFS];
    unsigned setup_flags;       /* the fast modes the kernel accepted */
    unsigned inflight;          /* SQEs handed out whose CQE is not reaped */
    unsigned inflight_max;      /* the CQ size */
    bool reaping_in_coroutine;  /* the loop was run from a coroutine */
    bool made_by_library;       /* by aio_thread_ctx(), freed at exit */
    uint64_t poll_ns;           /* spin this long before sleeping, if idle */
    coblk_co_queue slot_waiters;  /* coroutines waiting for inflight room */
    aio_stats stats;

    /* Filled by other threads, emptied by the loop. */
    coblk_co *_Atomic scheduled;  /* LIFO, linked by sched_next */
    aio_bh *_Atomic bhs;          /* LIFO */
    atomic_bool sleeping;       /* the loop is (about to be) blocked */
    atomic_bool notified;       /* an eventfd write is on its way */
    /* Threads between queueing work here and finishing notify(): the loop
     * may run that work, and its owner free the context, before they are
     * done with it (an iothread's stop request is one such). */
    atomic_uint notifiers;
    int event_fd;
    uint64_t event_value;       /* the eventfd read's buffer */
    aio_cqe_handler event_handler;
    /* A timed wait on a kernel whose waits take no time limit. */
    struct __kernel_timespec wait_limit;
    aio_cqe_handler timeout_handler;
};

/* Registers fd in ctx's fixed-file table (on ctx's thread) and returns
 * its index, or -ENOTSUP (no table) / -ENOSPC (full) / -errno.  *owner
 * is set to ctx, and cleared (to NULL) if ctx is freed first. */
int aio_fixed_file_add(coblk_aio *ctx, int fd, coblk_aio *_Atomic *owner);
/* Releases the slot from any thread; ctx must be *owner, not NULL. */
void aio_fixed_file_remove(coblk_aio *_Atomic *owner, int index);

/* Whether SQEs besides the loop's own (the notifier's read, always in
 * flight) are handed out and not reaped. */
static inline bool aio_busy(const coblk_aio *ctx)
{
    return ctx->inflight > 1;
}

/* The index of ctx's registered buffer that holds [base, base + len), or
 * -1.  From ctx's thread.  Inline: with no buffer registered, one load. */
static inline int aio_fixed_buf_index(const coblk_aio *ctx, const void *base,
                                      size_t len)
{
    uintptr_t at = (uintptr_t)base;

    for (unsigned i = 0; i < ctx->fixed_bufs_end; i++) {
        const struct aio_fixed_buf *b = &ctx->fixed_buf[i];
        if (at - b->base < b->len && len <= b->len - (at - b->base)) {
            return (int)i;
        }
    }
    return -1;
}

/* This thread's context; when it has none, one made by the library and
 * freed when the thread exits (or by coblk_aio_free()).  NULL with *err
 * set if it cannot be made. */
coblk_aio *aio_thread_ctx(int *err);

/* CLOCK_MONOTONIC in nanoseconds: the clock of the loop's deadlines. */
static inline int64_t aio_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* coblk_aio_poll() that waits at most timeout_ns for something to do (0:
 * not at all, negative: without a limit). */
bool aio_poll_timeout(coblk_aio *ctx, int64_t timeout_ns);

struct io_uring_sqe *aio_get_sqe_slow(coblk_aio *ctx,
                                      aio_cqe_handler *handler);

/* An SQE whose CQE will go to handler, or NULL when the SQ is full or
 * the in-flight limit reached. */
static inline struct io_uring_sqe *aio_try_get_sqe(coblk_aio *ctx,
                                                   aio_cqe_handler *handler)
{
    struct io_uring_sqe *sqe;

    if (__builtin_expect(ctx->inflight < ctx->inflight_max, 1) &&
        (sqe = io_uring_get_sqe(&ctx->ring)) != NULL) {
        ctx->inflight++;
        io_uring_sqe_set_data(sqe, handler);
        return sqe;
    }
    return NULL;
}

/* Returns an SQE whose CQE will go to handler.  Never NULL: when the SQ is
 * full it submits what is queued; when the in-flight limit is reached it
 * yields (in a coroutine) or runs the loop until a completion makes room. */
static inline struct io_uring_sqe *aio_get_sqe(coblk_aio *ctx,
                                               aio_cqe_handler *handler)
{
    struct io_uring_sqe *sqe = aio_try_get_sqe(ctx, handler);

    return sqe ? sqe : aio_get_sqe_slow(ctx, handler);
}

void aio_co_request_complete(coblk_aio *ctx, aio_cqe_handler *handler,
                             int res, uint32_t flags);

/* The context the current coroutine runs in, or NULL. */
static inline coblk_aio *aio_co_context(void)
{
    coblk_co *self = co_self_inline();
    return self ? atomic_load_explicit(&self->aio, memory_order_relaxed)
                : NULL;
}

/* coroutine_fn (only): an SQE for a request the current coroutine will wait
 * for with aio_co_wait().  Marks the request in progress before anything can
 * complete it. */
static inline struct io_uring_sqe *aio_co_prep(coblk_aio *ctx,
                                               aio_co_request *req)
{
    req->handler.complete = aio_co_request_complete;
    req->co = *co_current_slot();
    req->done = false;
    return aio_get_sqe(ctx, &req->handler);
}

/* coroutine_fn: two SQEs side by side, in one submission, for requests
 * of the current coroutine: a request and its IORING_OP_LINK_TIMEOUT
 * (the caller sets IOSQE_IO_LINK on the first after preparing it).  Wait
 * for both: each completes. */
void aio_co_prep_linked(coblk_aio *ctx, aio_co_request *first,
                        aio_co_request *second, struct io_uring_sqe **sqes);

/* coroutine_fn: waits for a request prepared with aio_co_prep() and returns
 * its CQE's result.  Yields only while the request is in progress: the
 * completion may have come first. */
static inline int aio_co_wait(aio_co_request *req)
{
    while (!req->done) {
        co_yield_inline();
    }
    return req->res;
}

#endif /* COBLK_AIO_INT_H */
