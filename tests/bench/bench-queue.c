/*
 * Queue API benchmark: 4 KiB random reads at queue depth 32 through
 * coblk_queue_submit / coblk_queue_reap, one thread.  tests/bench/queue.sh
 * runs it against fio's null engine and a plain liburing loop.
 *
 *   bench-queue coblk SPEC N    N requests on the device SPEC
 *   bench-queue coblk-write SPEC N STEP
 *                               N 4 KiB writes instead, at STEP bytes from
 *                               each other, in order (qemu-img bench -w -S)
 *   bench-queue plain PATH N    the floor: the same O_DIRECT reads of PATH
 *                               from a plain liburing loop
 * Prints "ns_per_req X" and "iops Y".
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "coblk/coblk.h"

#define DEPTH 32
#define BLOCK 4096

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static uint64_t rng_state = 88172645463325252u;

static uint64_t random_block(uint64_t blocks)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state % blocks;
}

static void report(double elapsed_ns, long n)
{
    printf("ns_per_req %.1f\niops %.0f\n", elapsed_ns / n, n / (elapsed_ns / 1e9));
}

/* Random reads, or with step > 0 writes step bytes apart. */
static int run_coblk(const char *spec, long n, uint64_t step)
{
    struct coblk_dev *dev;
    struct coblk_queue *q;
    struct coblk_req reqs[DEPTH], *batch[DEPTH];
    struct iovec iov[DEPTH];
    int flags = strncmp(spec, "null:", 5) ? COBLK_OPEN_DIRECT : 0;

    if (!step) {
        flags |= COBLK_OPEN_RDONLY;
    }
    if (coblk_dev_open(spec, flags, &dev) < 0 ||
        coblk_queue_new(dev, DEPTH, NULL, &q) < 0) {
        fprintf(stderr, "bench-queue: %s\n", coblk_last_error());
        return 1;
    }
    uint64_t blocks = (uint64_t)coblk_dev_size(dev) / BLOCK;
    char *buf = aligned_alloc(BLOCK, DEPTH * BLOCK);
    for (int i = 0; i < DEPTH; i++) {
        iov[i] = (struct iovec){ .iov_base = buf + i * BLOCK,
                                 .iov_len = BLOCK };
        reqs[i] = (struct coblk_req){
            .type = step ? COBLK_REQ_OUT : COBLK_REQ_IN, .iov = &iov[i],
            .iovcnt = 1 };
        batch[i] = &reqs[i];
    }

    memset(buf, 0xa5, DEPTH * BLOCK);
    long submitted = 0, completed = 0;
    unsigned ready = DEPTH;         /* requests in batch[] to submit */
    uint64_t next = 0;              /* the next write's offset */
    double start = now_ns();
    while (completed < n) {
        for (unsigned i = 0; i < ready; i++) {
            if (step) {
                batch[i]->sector = next / 512;
                next = (next + step) % (blocks * BLOCK);
            } else {
                batch[i]->sector = random_block(blocks) * (BLOCK / 512);
            }
        }
        if (ready && submitted < n) {
            int taken = coblk_queue_submit(q, batch, ready);
            submitted += taken;
        }
        int got = coblk_queue_reap(q, batch, 1, DEPTH, -1);
        for (int i = 0; i < got; i++) {
            if (batch[i]->status != COBLK_S_OK) {
                fprintf(stderr, "bench-queue: request failed: %s\n",
                        strerror(-batch[i]->error));
                return 1;
            }
        }
        completed += got;
        ready = submitted < n ? (unsigned)got : 0;
    }
    report(now_ns() - start, completed);
    coblk_queue_free(q);
    coblk_dev_close(dev);
    free(buf);
    return 0;
}

static int run_plain(const char *path, long n)
{
    struct io_uring ring;
    struct io_uring_params params = {
        .flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
    };
    int fd = open(path, O_RDONLY | O_DIRECT);
    if (fd < 0 || io_uring_queue_init_params(64, &ring, &params) < 0) {
        fprintf(stderr, "bench-queue: %s: cannot set up\n", path);
        return 1;
    }
    io_uring_register_ring_fd(&ring);
    uint64_t blocks = (uint64_t)lseek(fd, 0, SEEK_END) / BLOCK;
    char *buf = aligned_alloc(BLOCK, DEPTH * BLOCK);
    long submitted = 0, completed = 0;

    double start = now_ns();
    for (; submitted < DEPTH; submitted++) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
        io_uring_prep_read(sqe, fd, buf + submitted * BLOCK, BLOCK,
                           random_block(blocks) * BLOCK);
        sqe->user_data = (uint64_t)submitted;
    }
    while (completed < n) {
        struct io_uring_cqe *cqe;
        unsigned head, reaped = 0;
        uint64_t slots[DEPTH];

        io_uring_submit_and_wait(&ring, 1);
        io_uring_for_each_cqe(&ring, head, cqe) {
            if (cqe->res != BLOCK) {
                fprintf(stderr, "bench-queue: read: %d\n", cqe->res);
                return 1;
            }
            slots[reaped++] = cqe->user_data;
        }
        io_uring_cq_advance(&ring, reaped);
        completed += reaped;
        for (unsigned i = 0; i < reaped && submitted < n; i++, submitted++) {
            struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
            io_uring_prep_read(sqe, fd, buf + slots[i] * BLOCK, BLOCK,
                               random_block(blocks) * BLOCK);
            sqe->user_data = slots[i];
        }
    }
    report(now_ns() - start, completed);
    io_uring_queue_exit(&ring);
    close(fd);
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    long n = argc >= 4 ? atol(argv[3]) : 0;

    if (n > 0 && argc == 4 && !strcmp(argv[1], "coblk")) {
        return run_coblk(argv[2], n, 0);
    }
    if (n > 0 && argc == 5 && !strcmp(argv[1], "coblk-write") &&
        atol(argv[4]) >= BLOCK) {
        return run_coblk(argv[2], n, (uint64_t)atol(argv[4]));
    }
    if (n > 0 && !strcmp(argv[1], "plain")) {
        return run_plain(argv[2], n);
    }
    fprintf(stderr, "usage: %s coblk SPEC N | coblk-write SPEC N STEP | "
            "plain PATH N\n", argv[0]);
    return 1;
}
