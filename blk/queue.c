/*
 * Request queues and the synchronous helpers.
 *
 * Each submitted request runs in a pooled coroutine in the queue's context:
 * the generic path, then the driver.  A queue whose context is the
 * caller's thread ("local") runs them when the caller reaps, without a
 * lock; a queue on another thread's context ("remote") schedules them
 * there and hands completions back under a mutex, with an eventfd to wake
 * the reaper.  The synchronous helpers are submit + wait (libnbd's rule:
 * one code path).
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "aio-int.h"
#include "blk-int.h"

#define DEPTH_MAX 65536u

struct coblk_queue {
    struct coblk_dev *dev;
    coblk_aio *ctx;
    bool local;                 /* ctx is the creating thread's */
    unsigned depth;
    /* Remote: submitted, not completed, counted down by the completing
     * thread after its last touch of the queue.  (Local: unreaped -
     * done_count, no counter to keep per request.) */
    atomic_uint running;
    struct coblk_queue *next;   /* in the device's list */
    unsigned unreaped;          /* submitted, not reaped (reaper's own) */
    /* Completed requests, a ring of `depth` (remote: under lock). */
    struct coblk_req **done;
    unsigned done_head, done_count;
    pthread_mutex_t lock;
    pthread_cond_t more_done;   /* remote: signalled to a waiting reaper */
    bool reaper_waiting;
    int event_fd;               /* remote: readable while done_count > 0 */
};

static struct coblk_queue *queue_of(struct coblk_req *req)
{
    return blk_req_private_of(req)->queue;
}

/* i + n, an index of the done ring, wrapped (without a division: this runs
 * twice a request). */
static unsigned ring_index(const struct coblk_queue *q, unsigned i,
                           unsigned n)
{
    i += n;
    return i >= q->depth ? i - q->depth : i;
}

static void push_done(struct coblk_queue *q, struct coblk_req *req)
{
    q->done[ring_index(q, q->done_head, q->done_count)] = req;
    q->done_count++;
}

/* Requests submitted and not completed. */
static unsigned queue_running(struct coblk_queue *q)
{
    return q->local ? q->unreaped - q->done_count
                    : atomic_load_explicit(&q->running, memory_order_acquire);
}

unsigned blk_queues_open(struct coblk_dev *dev)
{
    unsigned n = 0;

    pthread_mutex_lock(&dev->queues_lock);
    for (struct coblk_queue *q = dev->queues; q; q = q->next) {
        n++;
    }
    pthread_mutex_unlock(&dev->queues_lock);
    return n;
}

struct coblk_dev *blk_queue_dev(const struct coblk_queue *q)
{
    return q->dev;
}

void blk_queue_request_done(struct coblk_req *req)
{
    struct coblk_queue *q = queue_of(req);

    if (q->local) {
        push_done(q, req);
    } else {
        pthread_mutex_lock(&q->lock);
        push_done(q, req);
        bool first = q->done_count == 1;
        if (q->reaper_waiting) {
            pthread_cond_signal(&q->more_done);
        }
        pthread_mutex_unlock(&q->lock);
        if (first) {
            eventfd_write(q->event_fd, 1);
        }
        /* The last touch: the queue may be freed from now on. */
        atomic_fetch_sub_explicit(&q->running, 1, memory_order_release);
    }
}

int coblk_queue_new(struct coblk_dev *dev, unsigned depth, coblk_aio *ctx,
                    struct coblk_queue **out)
{
    if (!dev || !out || depth == 0 || depth > DEPTH_MAX) {
        return blk_error(-EINVAL, "coblk_queue_new: depth must be 1 to %u",
                         DEPTH_MAX);
    }
    struct coblk_queue *q = calloc(1, sizeof(*q));
    if (!q || !(q->done = calloc(depth, sizeof(*q->done)))) {
        free(q);
        return blk_error(-ENOMEM, "out of memory");
    }
    q->dev = dev;
    q->depth = depth;
    q->event_fd = -1;
    int ret = 0;
    if (!ctx) {
        /* Shared with every later user on this thread: not the queue's to
         * free. */
        ctx = aio_thread_ctx(&ret);
    }
    q->ctx = ctx;
    q->local = ctx == coblk_aio_current();
    if (ret == 0 && !q->local) {
        q->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        ret = q->event_fd < 0 ? -errno : 0;
    }
    if (ret == 0) {
        ret = coblk_co_pool_reserve(depth);
    }
    if (ret < 0) {
        if (q->event_fd >= 0) {
            close(q->event_fd);
        }
        free(q->done);
        free(q);
        if (ret == -E2BIG) {
            co_pool_stats pool;
            co_pool_get_stats(&pool);
            return blk_error(ret, "coblk_queue_new: depth %u on top of the "
                             "%u coroutines other queues reserved passes "
                             "the %u the system's memory maps allow "
                             "(vm.max_map_count: two maps a coroutine "
                             "stack): use smaller depths or fewer queues, "
                             "or raise vm.max_map_count", depth,
                             pool.reserved, pool.reserve_max);
        }
        return blk_error(ret, "coblk_queue_new: %s", strerror(-ret));
    }
    pthread_mutex_init(&q->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&q->more_done, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_lock(&dev->queues_lock);
    q->next = dev->queues;
    dev->queues = q;
    pthread_mutex_unlock(&dev->queues_lock);
    *out = q;
    return 0;
}

int coblk_queue_submit(struct coblk_queue *q, struct coblk_req **reqs,
                       unsigned n)
{
    if (!q || (n && !reqs)) {
        return blk_error(-EINVAL, "coblk_queue_submit: no queue or requests");
    }
    /* The common case enters directly: a fresh coroutine needs none of
     * coblk_aio_co_enter()'s checks for one that may be switching out. */
    bool direct = q->local && !coblk_in_coroutine();
    unsigned taken = 0;
    for (; taken < n && q->unreaped < q->depth; taken++) {
        struct coblk_req *req = reqs[taken];
        if (!req) {
            /* Taken so far: those; the next call gets the error. */
            if (taken == 0) {
                return blk_error(-EINVAL, "coblk_queue_submit: request %u "
                                 "is NULL", taken);
            }
            break;
        }
        blk_req_private_of(req)->queue = q;
        blk_req_private_of(req)->dev = q->dev;
        blk_req_private_of(req)->pin = 0;
        req->status = COBLK_S_IOERR;
        req->error = -EINPROGRESS;
        coblk_co *co = coblk_co_create(blk_request_co, req);
        if (!co) {
            if (taken == 0) {
                return blk_error(-ENOMEM, "coblk_queue_submit: out of "
                                 "memory for a coroutine");
            }
            break;
        }
        q->unreaped++;
        if (!q->local) {
            atomic_fetch_add_explicit(&q->running, 1, memory_order_relaxed);
        }
        if (direct) {
            co_enter_inline(co);
        } else {
            coblk_aio_co_enter(q->ctx, co);
        }
    }
    return (int)taken;
}

/* Moves up to max completions to done. */
static unsigned take_done(struct coblk_queue *q, struct coblk_req **done,
                          unsigned max)
{
    if (!q->local) {
        pthread_mutex_lock(&q->lock);
    }
    unsigned n = q->done_count < max ? q->done_count : max;
    for (unsigned i = 0; i < n; i++) {
        done[i] = q->done[q->done_head];
        q->done_head = ring_index(q, q->done_head, 1);
    }
    q->done_count -= n;
    if (!q->local) {
        if (q->done_count == 0) {
            eventfd_t drained;
            eventfd_read(q->event_fd, &drained);
        }
        pthread_mutex_unlock(&q->lock);
    }
    q->unreaped -= n;
    return n;
}

/* Waits until min requests completed, or until deadline (CLOCK_MONOTONIC
 * ns; negative: none).  A local queue runs its requests meanwhile. */
static void wait_for_done(struct coblk_queue *q, unsigned min,
                          int64_t deadline)
{
    if (q->local) {
        aio_poll_timeout(q->ctx, 0);    /* collect what is ready */
        while (q->done_count < min) {
            int64_t left = deadline < 0 ? -1 : deadline - aio_now_ns();
            if (deadline >= 0 && left <= 0) {
                return;
            }
            aio_poll_timeout(q->ctx, left);
        }
        return;
    }
    struct timespec until = { .tv_sec = deadline / 1000000000,
                              .tv_nsec = deadline % 1000000000 };
    pthread_mutex_lock(&q->lock);
    q->reaper_waiting = true;
    while (q->done_count < min) {
        if (deadline < 0) {
            pthread_cond_wait(&q->more_done, &q->lock);
        } else if (pthread_cond_timedwait(&q->more_done, &q->lock,
                                          &until) == ETIMEDOUT) {
            break;
        }
    }
    q->reaper_waiting = false;
    pthread_mutex_unlock(&q->lock);
}

int coblk_queue_reap(struct coblk_queue *q, struct coblk_req **done,
                     unsigned min, unsigned max, int timeout_ms)
{
    if (!q || !done || max == 0 || min > max) {
        return blk_error(-EINVAL, "coblk_queue_reap: need a queue, an array "
                         "and 0 <= min <= max, max > 0");
    }
    if (q->local && coblk_in_coroutine()) {
        return blk_error(-EINVAL, "coblk_queue_reap: called in a coroutine "
                         "of the queue's own context");
    }
    /* Waiting for more than is outstanding would never end. */
    if (min > q->unreaped) {
        min = q->unreaped;
    }
    wait_for_done(q, min,
                  timeout_ms < 0 ? -1
                                 : aio_now_ns() + timeout_ms * 1000000LL);
    return (int)take_done(q, done, max);
}

int coblk_queue_fd(struct coblk_queue *q)
{
    if (!q) {
        return blk_error(-EINVAL, "coblk_queue_fd: no queue");
    }
    return q->local ? q->ctx->ring.ring_fd : q->event_fd;
}

void coblk_queue_free(struct coblk_queue *q)
{
    if (!q) {
        return;
    }
    /* Completed requests need no reaping: only running ones are waited
     * for. */
    while (queue_running(q)) {
        if (q->local) {
            aio_poll_timeout(q->ctx, 1000000);
        } else {
            usleep(1000);
        }
    }
    pthread_mutex_lock(&q->dev->queues_lock);
    struct coblk_queue **link = &q->dev->queues;
    while (*link != q) {
        link = &(*link)->next;
    }
    *link = q->next;
    pthread_mutex_unlock(&q->dev->queues_lock);
    coblk_co_pool_unreserve(q->depth);
    if (q->event_fd >= 0) {
        close(q->event_fd);
    }
    pthread_cond_destroy(&q->more_done);
    pthread_mutex_destroy(&q->lock);
    free(q->done);
    free(q);
}

/* ---- synchronous helpers ------------------------------------------------------- */

enum sync_kind { SYNC_READ, SYNC_WRITE, SYNC_FLUSH, SYNC_STATUS };

struct sync_op {
    struct coblk_dev *dev;
    enum sync_kind kind;
    struct iovec iov;
    uint64_t offset;
    struct coblk_block_status *status;  /* SYNC_STATUS: iov_len bytes */
    int ret;
};

static int coroutine_fn sync_co(void *opaque)
{
    struct sync_op *op = opaque;

    switch (op->kind) {
    case SYNC_READ:
        return coblk_co_preadv(op->dev, op->offset, op->iov.iov_len,
                               &op->iov, 1);
    case SYNC_WRITE:
        return coblk_co_pwritev(op->dev, op->offset, op->iov.iov_len,
                                &op->iov, 1, 0);
    case SYNC_FLUSH:
        return coblk_co_flush(op->dev);
    case SYNC_STATUS:
        return coblk_co_block_status(op->dev, op->offset, op->iov.iov_len,
                                     op->status);
    }
    return -EINVAL;
}

static int run_sync(struct sync_op *op, const char *what)
{
    if (!op->dev) {
        return blk_error(-EINVAL, "%s: no device", what);
    }
    blk_error(0, "%s", "");     /* so that a driver's detail shows */
    op->ret = blk_run_in_coroutine(sync_co, op);
    if (op->ret == -EINVAL && op->kind == SYNC_STATUS) {
        return blk_error(op->ret, "%s: offset %llu is not inside the device "
                         "(%llu bytes), or no bytes asked for", what,
                         (unsigned long long)op->offset,
                         (unsigned long long)op->dev->size);
    }
    if (op->ret == -EINVAL && op->kind != SYNC_FLUSH &&
        (op->offset > op->dev->size ||
         op->iov.iov_len > op->dev->size - op->offset)) {
        return blk_error(op->ret, "%s: %zu bytes at %llu go past the end of "
                         "the device (%llu bytes)", what, op->iov.iov_len,
                         (unsigned long long)op->offset,
                         (unsigned long long)op->dev->size);
    }
    if (op->ret < 0 && *coblk_last_error()) {
        char detail[256];
        snprintf(detail, sizeof(detail), "%s", coblk_last_error());
        return blk_error(op->ret, "%s: %s", what, detail);
    }
    if (op->ret < 0) {
        return blk_error(op->ret, "%s: %s", what, strerror(-op->ret));
    }
    return 0;
}

int coblk_pread(struct coblk_dev *dev, void *buf, size_t bytes,
                uint64_t offset)
{
    struct sync_op op = { .dev = dev, .kind = SYNC_READ,
                          .iov = { .iov_base = buf, .iov_len = bytes },
                          .offset = offset };
    return run_sync(&op, "coblk_pread");
}

int coblk_pwrite(struct coblk_dev *dev, const void *buf, size_t bytes,
                 uint64_t offset)
{
    struct sync_op op = { .dev = dev, .kind = SYNC_WRITE,
                          .iov = { .iov_base = (void *)buf,
                                   .iov_len = bytes },
                          .offset = offset };
    return run_sync(&op, "coblk_pwrite");
}

int coblk_flush(struct coblk_dev *dev)
{
    struct sync_op op = { .dev = dev, .kind = SYNC_FLUSH };
    return run_sync(&op, "coblk_flush");
}

int coblk_block_status(struct coblk_dev *dev, uint64_t offset,
                       uint64_t bytes, struct coblk_block_status *out)
{
    if (!out) {
        return blk_error(-EINVAL, "coblk_block_status: no status to fill");
    }
    struct sync_op op = { .dev = dev, .kind = SYNC_STATUS,
                          .iov = { .iov_len = bytes }, .offset = offset,
                          .status = out };
    return run_sync(&op, "coblk_block_status");
}

struct co_call {
    int (*fn)(void *opaque);
    void *opaque;
    int ret;
    bool done;
};

static void coroutine_fn co_call_entry(void *opaque)
{
    struct co_call *call = opaque;

    call->ret = call->fn(call->opaque);
    call->done = true;
}

int blk_run_in_coroutine(int (*fn)(void *opaque), void *opaque)
{
    if (coblk_in_coroutine()) {
        return fn(opaque);
    }
    int ret = 0;
    coblk_aio *ctx = aio_thread_ctx(&ret);
    if (!ctx) {
        return blk_error(ret, "no event loop: %s", strerror(-ret));
    }
    struct co_call call = { .fn = fn, .opaque = opaque };
    coblk_co *co = coblk_co_create(co_call_entry, &call);
    if (!co) {
        return blk_error(-ENOMEM, "out of memory");
    }
    coblk_co_enter(co);
    while (!call.done) {
        coblk_aio_poll(ctx, true);
    }
    return call.ret;
}
