/*
 * The event loop: one context per thread on one io_uring.
 *
 * An iteration (coblk_aio_poll) runs the coroutines other threads scheduled
 * and the bottom halves they queued, submits every SQE prepared since the
 * last iteration with one io_uring_enter, and dispatches the CQEs to their
 * handlers, which mostly wake a coroutine.  Other threads wake a blocked
 * loop through an eventfd whose read is always pending on the ring, and
 * only when the loop said it is going to sleep.
 *
 * Not here: what the SQEs do (blk/), coroutine switching (coroutine.c).
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_VALGRIND_VALGRIND_H
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#include "aio-int.h"
#ifdef __SANITIZE_THREAD__
#include <sanitizer/tsan_interface.h>
#endif

#define ENTRIES_DEFAULT 256u
#define ENTRIES_MAX 32768u

struct aio_bh {
    aio_bh *next;
    void (*fn)(void *opaque);
    void *opaque;
};

/* This thread's context; read through the accessor because coroutines
 * reading it may have changed threads since their last look. */
CO_TLS(coblk_aio *, thread_aio)

coblk_aio *coblk_aio_current(void)
{
    return *thread_aio_ptr();
}

static void check_owner(const coblk_aio *ctx, const char *what)
{
    if (*thread_aio_ptr() != ctx) {
        co_die("%s: the context belongs to another thread", what);
    }
}

/* ---- submission ------------------------------------------------------------- */

/* Submits what is queued and, with wait_nr, waits for that many CQEs.
 * Transient ring errors are retried; anything else means a broken ring. */
static void submit(coblk_aio *ctx, unsigned wait_nr)
{
    /* Once a batch, not once an SQE: what is in flight peaks here. */
    if (ctx->inflight > ctx->stats.inflight_peak) {
        ctx->stats.inflight_peak = ctx->inflight;
    }
    for (;;) {
        int ret = wait_nr ? io_uring_submit_and_wait(&ctx->ring, wait_nr)
                          : io_uring_submit_and_get_events(&ctx->ring);
        if (ret >= 0) {
            ctx->stats.submits++;
            return;
        }
        if (ret == -EINTR) {
            /* A signal: the caller's loop comes round again. */
            ctx->stats.submit_retries++;
            return;
        }
        if (ret != -EAGAIN && ret != -EBUSY) {
            co_die("io_uring_enter failed: %s", strerror(-ret));
        }
        /* The kernel is short of memory or CQ room: let it breathe. */
        ctx->stats.submit_retries++;
        sched_yield();
    }
}

static void wait_for_slot(coblk_aio *ctx)
{
    ctx->stats.slot_waits++;
    if (coblk_in_coroutine()) {
        coblk_co_queue_wait(&ctx->slot_waiters, NULL);
    } else {
        coblk_aio_poll(ctx, true);
    }
}

struct io_uring_sqe *aio_get_sqe_slow(coblk_aio *ctx,
                                      aio_cqe_handler *handler)
{
    for (;;) {
        if (ctx->inflight >= ctx->inflight_max) {
            wait_for_slot(ctx);
            continue;
        }
        struct io_uring_sqe *sqe = aio_try_get_sqe(ctx, handler);
        if (sqe) {
            return sqe;
        }
        ctx->stats.sq_full++;
        submit(ctx, 0);
    }
}

void coroutine_fn aio_co_prep_linked(coblk_aio *ctx, aio_co_request *first,
                                     aio_co_request *second,
                                     struct io_uring_sqe **sqes)
{
    /* A chain cannot span two submissions: room for both first. */
    for (;;) {
        if (ctx->inflight + 2 > ctx->inflight_max) {
            wait_for_slot(ctx);
        } else if (io_uring_sq_space_left(&ctx->ring) < 2) {
            ctx->stats.sq_full++;
            submit(ctx, 0);
        } else {
            break;
        }
    }
    sqes[0] = aio_co_prep(ctx, first);
    sqes[1] = aio_co_prep(ctx, second);
}

/* ---- completions ------------------------------------------------------------ */

/* aio_co_request_complete(), inline in the reaping loop: see
 * co_enter_inline(). */
static inline __attribute__((always_inline)) void
co_request_complete(coblk_aio *ctx, aio_cqe_handler *handler, int res,
                    uint32_t flags)
{
    aio_co_request *req = (aio_co_request *)handler;
    coblk_co *co = req->co;

    req->res = res;
    req->flags = flags;
    req->done = true;
    if (co->caller) {
        /* Still running: it (or a coroutine it entered) ran the loop before
         * yielding.  aio_co_wait() will see `done` and not yield. */
        return;
    }
    if (!ctx->reaping_in_coroutine &&
        atomic_load_explicit(&co->aio, memory_order_relaxed) == ctx) {
        co_enter_inline(co);    /* the common case, without the checks */
    } else {
        coblk_aio_co_wake(co);
    }
}

void aio_co_request_complete(coblk_aio *ctx, aio_cqe_handler *handler,
                             int res, uint32_t flags)
{
    co_request_complete(ctx, handler, res, flags);
}

/* Each reaped CQE frees an in-flight slot for a coroutine waiting for one. */
static void wake_slot_waiters(coblk_aio *ctx, unsigned freed)
{
    while (freed-- > 0 && coblk_co_queue_next(&ctx->slot_waiters)) {
    }
}

/* Handlers live on coroutine stacks that went cold while the kernel
 * worked: fetch the next one while this one runs.  (Measured: fetching
 * further ahead, or the coroutine behind the handler too, is slower.) */
static inline void prefetch_next_handler(struct io_uring_cq *cq,
                                         unsigned head, unsigned tail)
{
    if (tail - head > 1) {
        __builtin_prefetch(io_uring_cqe_get_data(
                               &cq->cqes[(head + 1) & cq->ring_mask]),
                           1);
    }
}

/* Dispatches the CQEs in the CQ; returns how many. */
static unsigned reap_cq(coblk_aio *ctx)
{
    struct io_uring_cq *cq = &ctx->ring.cq;
    unsigned reaped = 0;

    for (;;) {
        /* Read afresh each time: a handler may run a coroutine that runs
         * the loop, which reaps too. */
        unsigned head = *cq->khead;
        unsigned tail = io_uring_smp_load_acquire(cq->ktail);
        if (head == tail) {
            break;
        }
        struct io_uring_cqe *cqe = &cq->cqes[head & cq->ring_mask];
        aio_cqe_handler *handler = io_uring_cqe_get_data(cqe);
        int res = cqe->res;
        uint32_t flags = cqe->flags;
        prefetch_next_handler(cq, head, tail);

        /* Release the CQE before the handler runs: it may run coroutines
         * that submit, and the in-flight count must match the CQ's room. */
        io_uring_smp_store_release(cq->khead, head + 1);
        ctx->inflight--;
        reaped++;
        if (handler->complete == aio_co_request_complete) {
            co_request_complete(ctx, handler, res, flags);
        } else {
            handler->complete(ctx, handler, res, flags);
        }
    }
    return reaped;
}

/* Dispatches the CQEs that are there, those the kernel kept aside for a
 * full CQ included; returns how many. */
static unsigned reap(coblk_aio *ctx)
{
    ctx->reaping_in_coroutine = coblk_in_coroutine();
    unsigned reaped = reap_cq(ctx);
    /* The in-flight limit keeps the CQ from filling; should it fill all
     * the same, the kernel keeps the rest (IORING_FEAT_NODROP) until an
     * enter with GETEVENTS moves them to the CQ. */
    while (io_uring_cq_has_overflow(&ctx->ring)) {
        ctx->stats.cq_overflows++;
        io_uring_get_events(&ctx->ring);
        reaped += reap_cq(ctx);
    }
    wake_slot_waiters(ctx, reaped);
    return reaped;
}

/* ---- cross-thread: scheduled coroutines, bottom halves, notify ------------ */

/* The caller has just queued work with a sequentially consistent push.
 * With the loop's sequentially consistent store of `sleeping` and load of
 * the queues, either the loop sees the work before it sleeps, or we see it
 * sleeping. */
static void notify(coblk_aio *ctx)
{
    if (atomic_load(&ctx->sleeping) &&
        !atomic_exchange(&ctx->notified, true)) {
        atomic_fetch_add_explicit(&ctx->stats.notifies, 1,
                                  memory_order_relaxed);
        if (eventfd_write(ctx->event_fd, 1) < 0) {
            co_die("eventfd_write: %s", strerror(errno));
        }
    }
}

static void arm_event_read(coblk_aio *ctx);

static void event_read_complete(coblk_aio *ctx, aio_cqe_handler *handler,
                                int res, uint32_t flags)
{
    if (res < 0 && res != -EAGAIN && res != -EINTR && res != -ECANCELED) {
        co_die("reading the notifier eventfd: %s", strerror(-res));
    }
    atomic_store(&ctx->notified, false);
    arm_event_read(ctx);
}

static void arm_event_read(coblk_aio *ctx)
{
    struct io_uring_sqe *sqe = aio_get_sqe(ctx, &ctx->event_handler);

    io_uring_prep_read(sqe, ctx->event_fd, &ctx->event_value,
                       sizeof(ctx->event_value), 0);
}

/* Reverses a LIFO taken from another thread into arrival order. */
#define REVERSE(list, link)                                                 \
    do {                                                                    \
        __typeof__(list) reversed_ = NULL;                                  \
        while (list) {                                                      \
            __typeof__(list) next_ = (list)->link;                          \
            (list)->link = reversed_;                                       \
            reversed_ = (list);                                             \
            (list) = next_;                                                 \
        }                                                                   \
        (list) = reversed_;                                                 \
    } while (0)

static bool run_scheduled(coblk_aio *ctx)
{
    if (!atomic_load_explicit(&ctx->scheduled, memory_order_relaxed)) {
        return false;
    }
    coblk_co *list = atomic_exchange_explicit(&ctx->scheduled, NULL,
                                              memory_order_acquire);
    REVERSE(list, sched_next);
    while (list) {
        coblk_co *co = list;
        list = co->sched_next;
        co_wait_switched_out(co);
        atomic_store_explicit(&co->scheduled, NULL, memory_order_relaxed);
        coblk_co_enter(co);
    }
    return true;
}

static bool run_bhs(coblk_aio *ctx)
{
    if (!atomic_load_explicit(&ctx->bhs, memory_order_relaxed)) {
        return false;
    }
    aio_bh *list = atomic_exchange_explicit(&ctx->bhs, NULL,
                                            memory_order_acquire);
    REVERSE(list, next);
    while (list) {
        aio_bh *bh = list;
        list = bh->next;
        bh->fn(bh->opaque);
        free(bh);
    }
    return true;
}

static bool has_queued_work(coblk_aio *ctx)
{
    return atomic_load(&ctx->scheduled) || atomic_load(&ctx->bhs);
}

/* Brackets queueing work for ctx from any thread: ctx is not freed between
 * the two (see coblk_aio_free). */
static void notifier_enter(coblk_aio *ctx)
{
    atomic_fetch_add_explicit(&ctx->notifiers, 1, memory_order_acquire);
}

static void notifier_exit(coblk_aio *ctx)
{
    atomic_fetch_sub_explicit(&ctx->notifiers, 1, memory_order_release);
}

/* Names the code at addr, for a message; "" when it has no symbol. */
static const char *symbol_at(void *addr, char *buf, size_t size)
{
    Dl_info info;

    if (addr && dladdr(addr, &info) && info.dli_sname) {
        snprintf(buf, size, " from %s+%#lx", info.dli_sname,
                 (unsigned long)((char *)addr - (char *)info.dli_saddr));
    } else {
        snprintf(buf, size, " from %p", addr);
    }
    return buf;
}

/* `who` is the public function that scheduled co, `from` where it was
 * called from: both name the culprit if co is scheduled twice. */
static void schedule(coblk_aio *ctx, coblk_co *co, const char *who,
                     void *from)
{
    const char *already = NULL;

    if (!atomic_compare_exchange_strong(&co->scheduled, &already, who)) {
        char first[128];
        co_die("coroutine %p already scheduled in '%s'%s; scheduled again "
                "by '%s'", (void *)co, already,
                symbol_at(co->scheduled_from, first, sizeof(first)), who);
    }
    co->scheduled_from = from;
    notifier_enter(ctx);
    coblk_co *head = atomic_load_explicit(&ctx->scheduled,
                                          memory_order_relaxed);
    do {
        co->sched_next = head;
    } while (!atomic_compare_exchange_weak_explicit(
        &ctx->scheduled, &head, co, memory_order_seq_cst,
        memory_order_relaxed));
    notify(ctx);
    notifier_exit(ctx);
}

void coblk_aio_co_schedule(coblk_aio *ctx, coblk_co *co)
{
    schedule(ctx, co, "coblk_aio_co_schedule", __builtin_return_address(0));
}

int coblk_aio_bh_schedule(coblk_aio *ctx, void (*fn)(void *), void *opaque)
{
    aio_bh *bh = malloc(sizeof(*bh));
    if (!bh) {
        return -ENOMEM;
    }
    bh->fn = fn;
    bh->opaque = opaque;
    notifier_enter(ctx);
    aio_bh *head = atomic_load_explicit(&ctx->bhs, memory_order_relaxed);
    do {
        bh->next = head;
    } while (!atomic_compare_exchange_weak_explicit(
        &ctx->bhs, &head, bh, memory_order_seq_cst, memory_order_relaxed));
    notify(ctx);
    notifier_exit(ctx);
    return 0;
}

static void enter_or_schedule(coblk_aio *ctx, coblk_co *co, const char *who,
                              void *from)
{
    coblk_aio *here = *thread_aio_ptr();

    if (ctx && ctx != here) {
        schedule(ctx, co, who, from);
        return;
    }
    coblk_co *self = coblk_co_self();
    if (!self) {
        /* Without a context, co may still be switching out elsewhere. */
        co_wait_switched_out(co);
        coblk_co_enter(co);
    } else if (self == co) {
        co_die("coroutine %p woke itself", (void *)co);
    } else {
        co_wakeup_push(self, co);
    }
}

void coblk_aio_co_enter(coblk_aio *ctx, coblk_co *co)
{
    enter_or_schedule(ctx, co, "coblk_aio_co_enter",
                      __builtin_return_address(0));
}

void coblk_aio_co_wake(coblk_co *co)
{
    enter_or_schedule(atomic_load_explicit(&co->aio, memory_order_relaxed),
                      co, "coblk_aio_co_wake", __builtin_return_address(0));
}

int coblk_aio_stats(coblk_aio *ctx, struct coblk_aio_stats *stats,
                    size_t size)
{
    if (!ctx || !stats) {
        return -EINVAL;
    }
    check_owner(ctx, "coblk_aio_stats");
    struct coblk_aio_stats now = {
        .submits = ctx->stats.submits,
        .sq_full = ctx->stats.sq_full,
        .slot_waits = ctx->stats.slot_waits,
        .submit_retries = ctx->stats.submit_retries,
        .cq_overflows = ctx->stats.cq_overflows,
        .notifies = atomic_load_explicit(&ctx->stats.notifies,
                                         memory_order_relaxed),
        .inflight_peak = ctx->stats.inflight_peak,
    };
    memset(stats, 0, size);
    memcpy(stats, &now, size < sizeof(now) ? size : sizeof(now));
    return 0;
}

/* ---- the loop ------------------------------------------------------------- */

/* valgrind does not know io_uring_enter blocks and keeps its big lock
 * across it, so a thread waiting in it would stop every other thread.
 * Under valgrind the loop submits, then waits at most a millisecond in
 * poll(), which valgrind knows. */
static void wait_in_slices(coblk_aio *ctx)
{
    struct pollfd ring = { .fd = ctx->ring.ring_fd, .events = POLLIN };

    submit(ctx, 0);
    if (!io_uring_cq_ready(&ctx->ring)) {
        poll(&ring, 1, 1);
    }
}

/* Spins up to poll_ns for work from other threads; true if some came.
 * Only when the ring is idle (the notifier's read is always in flight):
 * completions of requests in flight need a system call to be posted. */
static bool spin_for_work(coblk_aio *ctx)
{
    if (!ctx->poll_ns || ctx->inflight > 1 || RUNNING_ON_VALGRIND) {
        return false;
    }
    int64_t deadline = aio_now_ns() + (int64_t)ctx->poll_ns;
    do {
        for (int i = 0; i < 64; i++) {
            if (has_queued_work(ctx)) {
                return true;
            }
            cpu_relax();
        }
    } while (aio_now_ns() < deadline);
    return false;
}

int coblk_aio_set_poll_ns(coblk_aio *ctx, uint64_t ns)
{
    check_owner(ctx, "coblk_aio_set_poll_ns");
    if (ns > 1000000000u) {
        return -EINVAL;
    }
    ctx->poll_ns = ns;
    return 0;
}

static void timeout_complete(coblk_aio *ctx, aio_cqe_handler *handler,
                             int res, uint32_t flags)
{
}

/* Submits, then waits at most timeout_ns (or without a limit, if
 * negative) for a CQE. */
static void wait_with_timeout(coblk_aio *ctx, int64_t timeout_ns)
{
    struct __kernel_timespec limit = {
        .tv_sec = timeout_ns / 1000000000,
        .tv_nsec = timeout_ns % 1000000000,
    };
    struct io_uring_cqe *cqe;

    if (timeout_ns < 0) {
        submit(ctx, 1);
        return;
    }
    if (!(ctx->ring.features & IORING_FEAT_EXT_ARG)) {
        /* Before 5.11 a wait takes no time limit: a timeout SQE of ours
         * ends it (liburing's own would put a CQE in our CQ that is no
         * handler's).  It completes at the limit or at the next CQE.
         * Without room for it (the ring is full, its completions are
         * coming), this turn does not wait: waiting for room would take
         * no limit either. */
        struct io_uring_sqe *sqe = aio_try_get_sqe(ctx,
                                                   &ctx->timeout_handler);
        ctx->wait_limit = limit;
        if (sqe) {
            io_uring_prep_timeout(sqe, &ctx->wait_limit, 1, 0);
        }
        submit(ctx, sqe ? 1 : 0);
        return;
    }
    int ret = io_uring_submit_and_wait_timeout(&ctx->ring, &cqe, 1, &limit,
                                               NULL);
    if (ret < 0 && ret != -ETIME && ret != -EINTR) {
        co_die("io_uring_enter failed: %s", strerror(-ret));
    }
}

static void sleep_until_work(coblk_aio *ctx, int64_t timeout_ns)
{
    if (spin_for_work(ctx)) {
        return;
    }
    atomic_store(&ctx->sleeping, true);
    if (!has_queued_work(ctx)) {
        if (RUNNING_ON_VALGRIND) {
            wait_in_slices(ctx);
        } else {
            wait_with_timeout(ctx, timeout_ns);
        }
    }
    atomic_store_explicit(&ctx->sleeping, false, memory_order_relaxed);
}

bool coblk_aio_poll(coblk_aio *ctx, bool blocking)
{
    return aio_poll_timeout(ctx, blocking ? -1 : 0);
}

bool aio_poll_timeout(coblk_aio *ctx, int64_t timeout_ns)
{
    check_owner(ctx, "coblk_aio_poll");

    bool progress = run_scheduled(ctx);
    progress |= run_bhs(ctx);
    progress |= reap(ctx) > 0;

    if (timeout_ns != 0 && !progress) {
        sleep_until_work(ctx, timeout_ns);
    } else if (io_uring_sq_ready(&ctx->ring) || ctx->inflight > 1) {
        /* Submit the batch; with deferred task running this is also what
         * posts the completions of requests already in flight. */
        submit(ctx, 0);
    }
    progress |= reap(ctx) > 0;
    progress |= run_scheduled(ctx);
    progress |= run_bhs(ctx);
    return progress;
}

/* ---- timers and fd readiness ------------------------------------------------ */

int coroutine_fn coblk_co_sleep_ns(uint64_t ns)
{
    coblk_aio *ctx = aio_co_context();
    if (!ctx) {
        return -EPERM;
    }
    struct __kernel_timespec ts = {
        .tv_sec = (long long)(ns / 1000000000u),
        .tv_nsec = (long long)(ns % 1000000000u),
    };
    aio_co_request req;
    io_uring_prep_timeout(aio_co_prep(ctx, &req), &ts, 0, 0);
    int ret = aio_co_wait(&req);
    return ret == -ETIME ? 0 : ret;
}

int coroutine_fn coblk_co_wait_fd(int fd, short events)
{
    coblk_aio *ctx = aio_co_context();
    if (!ctx) {
        return -EPERM;
    }
    aio_co_request req;
    io_uring_prep_poll_add(aio_co_prep(ctx, &req), fd, (unsigned)events);
    return aio_co_wait(&req);
}

/* ---- registered files ----------------------------------------------------------- */

/* Guards the fixed-file bookkeeping of every context: a device and a
 * context may go away on different threads, and each must clear the
 * other's reference.  Only set-up and tear-down take it. */
static pthread_mutex_t fixed_lock = PTHREAD_MUTEX_INITIALIZER;

int aio_fixed_file_add(coblk_aio *ctx, int fd, coblk_aio *_Atomic *owner)
{
    if (!ctx->fixed_files) {
        return -ENOTSUP;
    }
    pthread_mutex_lock(&fixed_lock);
    int index = ctx->fixed_used == UINT64_MAX
                    ? -ENOSPC : __builtin_ctzll(~ctx->fixed_used);
    if (index >= 0) {
        int ret = io_uring_register_files_update(&ctx->ring, (unsigned)index,
                                                 &fd, 1);
        if (ret < 0) {
            index = ret;
        } else {
            ctx->fixed_used |= 1ull << index;
            ctx->fixed_owner[index] = owner;
            atomic_store(owner, ctx);
        }
    }
    pthread_mutex_unlock(&fixed_lock);
    return index;
}

struct fixed_remove {
    coblk_aio *ctx;
    int index;
};

static void fixed_remove_here(coblk_aio *ctx, int index)
{
    int none = -1;

    io_uring_register_files_update(&ctx->ring, (unsigned)index, &none, 1);
    pthread_mutex_lock(&fixed_lock);
    ctx->fixed_used &= ~(1ull << index);
    pthread_mutex_unlock(&fixed_lock);
}

static void fixed_remove_bh(void *opaque)
{
    struct fixed_remove *r = opaque;

    fixed_remove_here(r->ctx, r->index);
    free(r);
}

void aio_fixed_file_remove(coblk_aio *_Atomic *owner, int index)
{
    pthread_mutex_lock(&fixed_lock);
    coblk_aio *ctx = atomic_exchange(owner, NULL);
    bool here = ctx && ctx == coblk_aio_current();
    if (ctx) {
        ctx->fixed_owner[index] = NULL;
    }
    if (ctx && !here) {
        /* The ring's own thread must update its table (single issuer).
         * Queued under the lock, so that a coblk_aio_free() racing with us
         * (fixed_files_forget() takes the lock) still runs it. */
        struct fixed_remove *r = malloc(sizeof(*r));
        if (r) {
            *r = (struct fixed_remove){ .ctx = ctx, .index = index };
            if (coblk_aio_bh_schedule(ctx, fixed_remove_bh, r) < 0) {
                free(r);    /* the slot stays taken, harmlessly */
            }
        }
    }
    pthread_mutex_unlock(&fixed_lock);
    if (here) {
        fixed_remove_here(ctx, index);
    }
}

/* The context goes: its files' owners must forget it. */
static void fixed_files_forget(coblk_aio *ctx)
{
    pthread_mutex_lock(&fixed_lock);
    for (int i = 0; i < AIO_FIXED_FILES; i++) {
        if (ctx->fixed_owner[i]) {
            atomic_store(ctx->fixed_owner[i], NULL);
        }
    }
    ctx->fixed_used = 0;
    pthread_mutex_unlock(&fixed_lock);
}

/* ---- registered buffers --------------------------------------------------------- */

/* The kernel's limit for one registered buffer. */
#define FIXED_BUF_MAX (1ull << 30)

static bool fixed_buf_overlaps(const coblk_aio *ctx, uintptr_t base,
                               size_t len)
{
    for (unsigned i = 0; i < ctx->fixed_bufs_end; i++) {
        const struct aio_fixed_buf *b = &ctx->fixed_buf[i];
        if (b->base && base < b->base + b->len && b->base < base + len) {
            return true;
        }
    }
    return false;
}

/* A buffer slot's entry in the kernel's table: iov, or empty if NULL. */
static int fixed_buf_update(coblk_aio *ctx, unsigned index,
                            const struct iovec *iov)
{
    struct iovec none = { 0 };
    int ret = io_uring_register_buffers_update_tag(&ctx->ring, index,
                                                   iov ? iov : &none, NULL,
                                                   1);
    return ret < 0 ? ret : 0;
}

int coblk_aio_register_buffer(coblk_aio *ctx, void *base, size_t len)
{
    check_owner(ctx, "coblk_aio_register_buffer");
    if (!base || !len || len > FIXED_BUF_MAX ||
        (uintptr_t)base > UINTPTR_MAX - len ||
        fixed_buf_overlaps(ctx, (uintptr_t)base, len)) {
        return -EINVAL;
    }
    /* The table is made on first use: most contexts never need one.
     * Sparse tables came with 5.19. */
    if (!ctx->fixed_bufs) {
        int ret = io_uring_register_buffers_sparse(&ctx->ring,
                                                   AIO_FIXED_BUFS);
        if (ret < 0) {
            return ret == -EINVAL ? -ENOTSUP : ret;
        }
        ctx->fixed_bufs = true;
    }
    unsigned index = 0;
    while (index < AIO_FIXED_BUFS && ctx->fixed_buf[index].base) {
        index++;
    }
    if (index == AIO_FIXED_BUFS) {
        return -ENOSPC;
    }
    struct iovec iov = { .iov_base = base, .iov_len = len };
    int ret = fixed_buf_update(ctx, index, &iov);
    if (ret < 0) {
        return ret;
    }
    ctx->fixed_buf[index] = (struct aio_fixed_buf){ (uintptr_t)base, len };
    if (index >= ctx->fixed_bufs_end) {
        ctx->fixed_bufs_end = index + 1;
    }
    return 0;
}

int coblk_aio_unregister_buffer(coblk_aio *ctx, void *base)
{
    check_owner(ctx, "coblk_aio_unregister_buffer");
    for (unsigned i = 0; base && i < ctx->fixed_bufs_end; i++) {
        if (ctx->fixed_buf[i].base == (uintptr_t)base) {
            int ret = fixed_buf_update(ctx, i, NULL);
            if (ret < 0) {
                return ret;
            }
            ctx->fixed_buf[i] = (struct aio_fixed_buf){ 0 };
            while (ctx->fixed_bufs_end &&
                   !ctx->fixed_buf[ctx->fixed_bufs_end - 1].base) {
                ctx->fixed_bufs_end--;
            }
            return 0;
        }
    }
    return -ENOENT;
}

/* ---- the library's own per-thread context -------------------------------------- */

static pthread_once_t thread_ctx_once = PTHREAD_ONCE_INIT;
static pthread_key_t thread_ctx_key;

static void free_thread_ctx(void *ctx)
{
    coblk_aio_free(ctx);
}

static void make_thread_ctx_key(void)
{
    if (pthread_key_create(&thread_ctx_key, free_thread_ctx) != 0) {
        co_die("pthread_key_create failed");
    }
}

coblk_aio *aio_thread_ctx(int *err)
{
    coblk_aio *ctx = coblk_aio_current();
    if (ctx) {
        return ctx;
    }
    int ret = coblk_aio_new(0, 0, &ctx);
    if (ret < 0) {
        *err = ret;
        return NULL;
    }
    pthread_once(&thread_ctx_once, make_thread_ctx_key);
    pthread_setspecific(thread_ctx_key, ctx);
    ctx->made_by_library = true;
    return ctx;
}

/* ---- set-up and tear-down ---------------------------------------------------- */

/* The fast modes, best first; a kernel that rejects one (-EINVAL) gets the
 * next: single issuer + deferred task running (6.1), cooperative task
 * running (5.19), plain. */
static const unsigned ring_modes[] = {
    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
        IORING_SETUP_SUBMIT_ALL,
    IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL,
    0,
};

/* liburing maps and unmaps a ring with system calls of its own, which
 * ThreadSanitizer does not see: a ring a later thread gets at the
 * addresses of one a finished thread had looks like a race with the old
 * ring's writes.  Releasing the addresses when a ring goes and acquiring
 * them when one comes orders the two. */
static void tsan_ring_handover(struct io_uring *ring, bool arriving)
{
#ifdef __SANITIZE_THREAD__
    void *maps[] = { ring->sq.ring_ptr, ring->sq.sqes, ring->cq.ring_ptr };

    for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
        if (arriving) {
            __tsan_acquire(maps[i]);
        } else {
            __tsan_release(maps[i]);
        }
    }
#endif
    (void)ring;
    (void)arriving;
}

static void ring_exit(coblk_aio *ctx)
{
    tsan_ring_handover(&ctx->ring, false);
    io_uring_queue_exit(&ctx->ring);
}

static int ring_init(coblk_aio *ctx, unsigned entries, unsigned flags)
{
    size_t first = flags & COBLK_AIO_PLAIN_RING
                       ? sizeof(ring_modes) / sizeof(ring_modes[0]) - 1
                       : 0;
    int ret = -EINVAL;

    for (size_t i = first; i < sizeof(ring_modes) / sizeof(ring_modes[0]);
         i++) {
        struct io_uring_params params = {
            .flags = ring_modes[i] | IORING_SETUP_CQSIZE,
            .cq_entries = 2 * entries,
        };
        ret = io_uring_queue_init_params(entries, &ctx->ring, &params);
        if (ret == 0) {
            tsan_ring_handover(&ctx->ring, true);
            ctx->setup_flags = ring_modes[i];
            ctx->inflight_max = params.cq_entries;
            /* Saves a file table lookup per io_uring_enter (5.18). */
            io_uring_register_ring_fd(&ctx->ring);
            return 0;
        }
        if (ret != -EINVAL) {
            break;
        }
    }
    return ret;
}

int coblk_aio_new(unsigned entries, unsigned flags, coblk_aio **out)
{
    if (entries == 0) {
        entries = ENTRIES_DEFAULT;
    }
    if (entries > ENTRIES_MAX || (flags & ~COBLK_AIO_PLAIN_RING) || !out) {
        return -EINVAL;
    }
    if (*thread_aio_ptr()) {
        return -EEXIST;
    }
    coblk_aio *ctx = calloc(1, sizeof(*ctx));
    if (!ctx) {
        return -ENOMEM;
    }
    int ret = ring_init(ctx, entries, flags);
    if (ret < 0) {
        free(ctx);
        return ret;
    }
    ctx->event_fd = eventfd(0, EFD_CLOEXEC);
    if (ctx->event_fd < 0) {
        ret = -errno;
        ring_exit(ctx);
        free(ctx);
        return ret;
    }
    ctx->event_handler.complete = event_read_complete;
    ctx->timeout_handler.complete = timeout_complete;
    /* Sparse file tables came with 5.19; without, requests use plain fds. */
    ctx->fixed_files = io_uring_register_files_sparse(&ctx->ring,
                                                      AIO_FIXED_FILES) == 0;
    arm_event_read(ctx);
    *thread_aio_ptr() = ctx;
    co_set_thread_aio(ctx);
    *out = ctx;
    return 0;
}

void coblk_aio_free(coblk_aio *ctx)
{
    if (!ctx) {
        return;
    }
    check_owner(ctx, "coblk_aio_free");
    if (ctx->made_by_library) {
        pthread_setspecific(thread_ctx_key, NULL);  /* freed here, not twice */
    }
    /* First, so that no device queues a fixed-file removal after the
     * bottom halves below ran. */
    fixed_files_forget(ctx);
    do {
        run_scheduled(ctx);
        run_bhs(ctx);
        /* Let threads that queued work finish notifying us. */
        while (atomic_load_explicit(&ctx->notifiers, memory_order_acquire)) {
            cpu_relax();
        }
    } while (has_queued_work(ctx));
    ring_exit(ctx);
    close(ctx->event_fd);
    *thread_aio_ptr() = NULL;
    co_set_thread_aio(NULL);
    free(ctx);
}
