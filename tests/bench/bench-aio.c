/*
 * Event loop benchmarks.  tests/bench/aio.sh runs them alternately and
 * prints the ratios.
 *
 *   nop MODE N     N IORING_OP_NOPs at queue depth 32, ns per NOP:
 *                  MODE coblk: 32 coroutines, each preparing a NOP and
 *                  yielding until its CQE wakes it;
 *                  MODE plain: a plain liburing loop, same ring set-up.
 *   hops N         a coroutine hopping between two iothreads N times;
 *                  prints hops per second.
 */
#include "config.h"

#include <errno.h>
#include <liburing.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aio-int.h"

#define DEPTH 32

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void check(int ret, const char *what)
{
    if (ret < 0) {
        fprintf(stderr, "bench-aio: %s: %s\n", what, strerror(-ret));
        exit(1);
    }
}

/* ---- NOP round trip ----------------------------------------------------------- */

struct nop_job {
    coblk_aio *ctx;
    long remaining;     /* NOPs still to start, shared by the coroutines */
    long completed;
};

static void nop_worker(void *opaque)
{
    struct nop_job *job = opaque;

    while (job->remaining > 0) {
        job->remaining--;
        aio_co_request req;
        io_uring_prep_nop(aio_co_prep(job->ctx, &req));
        aio_co_wait(&req);
        job->completed++;
    }
}

static double nop_coblk(coblk_aio *ctx, long n)
{
    struct nop_job job = { .ctx = ctx, .remaining = n };

    double start = now_ns();
    for (int i = 0; i < DEPTH; i++) {
        coblk_co_enter(coblk_co_create(nop_worker, &job));
    }
    while (job.completed < n) {
        coblk_aio_poll(ctx, true);
    }
    return (now_ns() - start) / n;
}

static double nop_plain(unsigned setup_flags, long n)
{
    struct io_uring ring;
    struct io_uring_params params = { .flags = setup_flags };
    long submitted = 0, completed = 0;

    check(io_uring_queue_init_params(64, &ring, &params), "io_uring setup");
    io_uring_register_ring_fd(&ring);
    double start = now_ns();
    for (; submitted < DEPTH && submitted < n; submitted++) {
        io_uring_prep_nop(io_uring_get_sqe(&ring));
    }
    while (completed < n) {
        struct io_uring_cqe *cqe;
        unsigned head, reaped = 0;

        check(io_uring_submit_and_wait(&ring, 1), "io_uring_submit_and_wait");
        io_uring_for_each_cqe(&ring, head, cqe) {
            reaped++;
        }
        io_uring_cq_advance(&ring, reaped);
        completed += reaped;
        for (unsigned i = 0; i < reaped && submitted < n; i++, submitted++) {
            io_uring_prep_nop(io_uring_get_sqe(&ring));
        }
    }
    double ns = (now_ns() - start) / n;
    io_uring_queue_exit(&ring);
    return ns;
}

/* ---- cross-thread hops -------------------------------------------------------- */

struct hop_job {
    coblk_aio *ctx[2];
    long hops;
    sem_t done;
};

static void hopper(void *opaque)
{
    struct hop_job *job = opaque;

    for (long i = 0; i < job->hops; i++) {
        coblk_aio *next = coblk_aio_current() == job->ctx[0] ? job->ctx[1]
                                                              : job->ctx[0];
        coblk_aio_co_schedule(next, coblk_co_self());
        coblk_co_yield();
    }
    sem_post(&job->done);
}

static double hops_per_second(long hops)
{
    coblk_iothread *threads[2];
    struct hop_job job = { .hops = hops };

    for (int i = 0; i < 2; i++) {
        check(coblk_iothread_new(i ? "hop-b" : "hop-a", &threads[i]),
              "iothread");
        job.ctx[i] = coblk_iothread_aio(threads[i]);
    }
    sem_init(&job.done, 0, 0);
    double start = now_ns();
    coblk_aio_co_schedule(job.ctx[0], coblk_co_create(hopper, &job));
    sem_wait(&job.done);
    double elapsed = now_ns() - start;
    for (int i = 0; i < 2; i++) {
        coblk_iothread_join(threads[i]);
    }
    return hops / (elapsed / 1e9);
}

static int run_nop(long n, const char *mode)
{
    coblk_aio *ctx;

    check(coblk_aio_new(64, 0, &ctx), "coblk_aio_new");
    if (!strcmp(mode, "coblk")) {
        printf("nop_coblk %.2f\n", nop_coblk(ctx, n));
    } else if (!strcmp(mode, "plain")) {
        printf("nop_plain %.2f\n", nop_plain(ctx->setup_flags, n));
    } else {
        fprintf(stderr, "bench-aio: nop mode must be coblk or plain\n");
        return 1;
    }
    coblk_aio_free(ctx);
    return 0;
}

int main(int argc, char **argv)
{
    long n = argc > 2 ? atol(argv[2]) : 0;

    if (argc == 4 && n > 0 && !strcmp(argv[1], "nop")) {
        return run_nop(n, argv[3]);
    }
    if (argc == 3 && n > 0 && !strcmp(argv[1], "hops")) {
        printf("hops_per_sec %.0f\n", hops_per_second(n));
        return 0;
    }
    fprintf(stderr, "usage: %s nop N coblk|plain\n       %s hops N\n",
            argv[0], argv[0]);
    return 1;
}
