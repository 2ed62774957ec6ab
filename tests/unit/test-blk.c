/*
 * Block layer tests: opening specs, data integrity against a shadow buffer
 * at queue depth 64 (file buffered and O_DIRECT, null), every bad request
 * with its exact status and errno, drain, and queues on iothreads.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "aio-int.h"
#include "blk-int.h"
#include "caps.h"
#include "skip.h"

#define DEV_SIZE (8u << 20)
#define SECTOR COBLK_SECTOR_SIZE

static char image[64];

static int make_image(void **state)
{
    snprintf(image, sizeof(image), "/var/tmp/coblk-test-%d.img", getpid());
    int fd = open(image, O_CREAT | O_TRUNC | O_RDWR, 0600);
    if (fd < 0 || ftruncate(fd, DEV_SIZE) < 0) {
        return -1;
    }
    close(fd);
    return 0;
}

static int remove_image(void **state)
{
    unlink(image);
    return 0;
}

static char *file_spec(void)
{
    static char spec[80];

    snprintf(spec, sizeof(spec), "file:%s", image);
    return spec;
}

/* ---- opening ------------------------------------------------------------------ */

static void expect_open_error(const char *spec, int flags, int err,
                              const char *message)
{
    struct coblk_dev *dev = NULL;

    assert_int_equal(coblk_dev_open(spec, flags, &dev), err);
    assert_null(dev);
    if (!strstr(coblk_last_error(), message)) {
        fail_msg("opening '%s': expected \"%s\" in \"%s\"", spec, message,
                 coblk_last_error());
    }
}

static void test_open_rejects_bad_specs(void **state)
{
    expect_open_error("", 0, -EINVAL, "no device spec");
    expect_open_error("nul:size=1G", 0, -EINVAL, "is no driver");
    expect_open_error("null:", 0, -EINVAL, "size= is required");
    expect_open_error("null:size=1X", 0, -EINVAL, "bad size '1X'");
    expect_open_error("null:size=1G,speed=9", 0, -EINVAL,
                      "unknown option 'speed'");
    expect_open_error("null:size", 0, -EINVAL, "has no value");
    expect_open_error("null:size=1G,read-zeroes=maybe", 0, -EINVAL,
                      "read-zeroes is on or off, not 'maybe'");
    expect_open_error("file:/nonexistent/coblk.img", 0, -ENOENT,
                      "/nonexistent/coblk.img");
    expect_open_error("file:/dev/null", 0, -EINVAL,
                      "not a regular file or block device");
    expect_open_error("null:size=1G", 1 << 9, -EINVAL, "unknown flags");
}

/* Every number in a spec is range-checked: strtoull alone takes "-1" as
 * 2^64 - 1 and skips leading spaces, and a run then sleeps for ever. */
static void test_open_rejects_numbers_out_of_range(void **state)
{
    expect_open_error("null:size=1M,latency-ns=-1", 0, -EINVAL,
                      "null: latency-ns must be a whole number from 0 to "
                      "3600000000000, not '-1'");
    expect_open_error("null:size=1M,latency-ns=99999999999999999999", 0,
                      -EINVAL, "not '99999999999999999999'");
    expect_open_error("null:size=1M,latency-ns=3600000000001", 0, -EINVAL,
                      "not '3600000000001'");
    expect_open_error("null:size=1M,latency-ns= 5", 0, -EINVAL,
                      "not ' 5'");
    expect_open_error("null:size=1M,latency-ns=", 0, -EINVAL, "not ''");
    expect_open_error("null:size=9223372036854775808", 0, -EINVAL,
                      "at most 9223372036854775807 bytes");
    expect_open_error("blkdebug:delay-ns= -1:null:size=1M", 0, -EINVAL,
                      "blkdebug: delay-ns must be a whole number from 0 to "
                      "3600000000000, not ' -1'");
    expect_open_error("blkdebug:every= -1:null:size=1M", 0, -EINVAL,
                      "blkdebug: every must be a whole number from 1 to "
                      "18446744073709551615, not ' -1'");
    expect_open_error("blkdebug:every=0:null:size=1M", 0, -EINVAL,
                      "every must be a whole number from 1 to");
    expect_open_error("blkdebug:seed=-3:null:size=1M", 0, -EINVAL,
                      "seed must be a whole number from 0 to");
    expect_open_error("blkdebug:errno= 5:null:size=1M", 0, -EINVAL,
                      "a number from 1 to 4095, not ' 5'");
    expect_open_error("blkdebug:errno=4096:null:size=1M", 0, -EINVAL,
                      "not '4096'");
    expect_open_error("blkdebug:prob= 0.5:null:size=1M", 0, -EINVAL,
                      "prob must be from 0 to 1, not ' 0.5'");
    expect_open_error("blkdebug:prob=nan:null:size=1M", 0, -EINVAL,
                      "not 'nan'");
    expect_open_error("blkdebug:short=-1:null:size=1M", 0, -EINVAL,
                      "bad short '-1'");
    struct coblk_dev *dev;
    assert_int_equal(coblk_dev_open("blkdebug:delay-ns=3600000000000,every=1,"
                                    "errno=4095,prob=.5,seed=0:"
                                    "null:size=1M,latency-ns=0", 0, &dev), 0);
    coblk_dev_close(dev);
}

/* A FIFO would block open() until a writer comes: refused without
 * waiting, read-only or not.  (alarm: a hang fails the test.) */
static void test_open_refuses_a_fifo_without_blocking(void **state)
{
    char fifo[64], spec[80];

    snprintf(fifo, sizeof(fifo), "/var/tmp/coblk-test-fifo-%d", getpid());
    snprintf(spec, sizeof(spec), "file:%s", fifo);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    alarm(10);
    expect_open_error(spec, COBLK_OPEN_RDONLY, -EINVAL,
                      "is not a regular file or block device");
    expect_open_error(fifo, 0, -EINVAL,
                      "is not a regular file or block device");
    expect_open_error("/var/tmp", COBLK_OPEN_RDONLY, -EISDIR,
                      "file: /var/tmp is a directory");
    expect_open_error("/var/tmp", 0, -EISDIR, "is a directory");
    alarm(0);
    unlink(fifo);
}

static void test_open_sizes(void **state)
{
    struct coblk_dev *dev;

    assert_int_equal(coblk_dev_open("null:size=1G", 0, &dev), 0);
    assert_int_equal(coblk_dev_size(dev), 1 << 30);
    coblk_dev_close(dev);
    assert_int_equal(coblk_dev_open("null:size=3MiB", 0, &dev), 0);
    assert_int_equal(coblk_dev_size(dev), 3 << 20);
    coblk_dev_close(dev);
    assert_int_equal(coblk_dev_open(image, 0, &dev), 0);    /* a bare path */
    assert_int_equal(coblk_dev_size(dev), DEV_SIZE);
    coblk_dev_close(dev);
}

/* ---- data integrity ----------------------------------------------------------- */

#define DEPTH 64
#define SLOT (DEV_SIZE / DEPTH)     /* each request in flight has a slot */
#define MAX_SEGS 4

struct slot_req {
    struct coblk_req req;
    struct iovec iov[MAX_SEGS];
    unsigned char *buf;             /* aligned, SLOT + 512 bytes */
    size_t misalign;                /* bytes the buffer is shifted by */
};

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Prepares a random read or write inside slot `slot`. */
static void prepare(struct slot_req *s, unsigned slot, unsigned char *shadow,
                    bool allow_misaligned)
{
    uint64_t sectors = 1 + rng() % 64;
    uint64_t first = rng() % (SLOT / SECTOR - sectors + 1);
    size_t bytes = sectors * SECTOR;
    bool write = rng() % 2;

    s->misalign = allow_misaligned && rng() % 4 == 0 ? 1 + rng() % 7 : 0;
    unsigned char *data = s->buf + s->misalign;
    /* Split into up to MAX_SEGS segments at sector boundaries. */
    unsigned segs = 1 + rng() % MAX_SEGS;
    size_t left = bytes, at = 0;
    unsigned n = 0;
    for (; n < segs && left; n++) {
        size_t len = n + 1 == segs ? left
                                   : SECTOR * (1 + rng() % (left / SECTOR));
        if (len > left) {
            len = left;
        }
        s->iov[n].iov_base = data + at;
        s->iov[n].iov_len = len;
        at += len;
        left -= len;
    }
    uint64_t sector = (uint64_t)slot * (SLOT / SECTOR) + first;
    s->req = (struct coblk_req){ .type = write ? COBLK_REQ_OUT : COBLK_REQ_IN,
                                 .sector = sector, .iov = s->iov,
                                 .iovcnt = n, .opaque = s };
    if (write) {
        for (size_t i = 0; i < bytes; i++) {
            data[i] = (unsigned char)rng();
        }
        if (shadow) {
            memcpy(shadow + sector * SECTOR, data, bytes);
        }
    } else {
        memset(data, 0xa5, bytes);
    }
}

static unsigned slot_of(const struct coblk_req *req)
{
    return (unsigned)(req->sector / (SLOT / SECTOR));
}

static void check_done(struct coblk_req *req, const unsigned char *shadow)
{
    struct slot_req *s = req->opaque;
    uint64_t bytes;
    assert_int_equal(iov_measure(req->iov, req->iovcnt, &bytes), 0);

    if (req->status != COBLK_S_OK) {
        fail_msg("request at sector %llu: status %u error %d",
                 (unsigned long long)req->sector, req->status, req->error);
    }
    if (req->type == COBLK_REQ_IN) {
        unsigned char *data = s->buf + s->misalign;
        if (shadow) {
            assert_memory_equal(data, shadow + req->sector * SECTOR, bytes);
        } else {
            for (size_t i = 0; i < bytes; i++) {
                assert_int_equal(data[i], 0);
            }
        }
    }
}

/* Random I/O at depth 64 for `total` requests, then every slot read back. */
static void run_integrity(const char *spec, int flags, bool shadowed,
                          bool allow_misaligned, unsigned total)
{
    struct coblk_dev *dev;
    struct coblk_queue *q;
    struct slot_req *slots = calloc(DEPTH, sizeof(*slots));
    unsigned char *shadow = shadowed ? calloc(1, DEV_SIZE) : NULL;

    assert_int_equal(coblk_dev_open(spec, flags, &dev), 0);
    if (shadowed) {
        assert_int_equal(coblk_pread(dev, shadow, DEV_SIZE, 0), 0);
    }
    assert_int_equal(coblk_queue_new(dev, DEPTH, NULL, &q), 0);
    for (unsigned i = 0; i < DEPTH; i++) {
        assert_int_equal(posix_memalign((void **)&slots[i].buf, 4096,
                                        SLOT + 512), 0);
        prepare(&slots[i], i, shadow, allow_misaligned);
        struct coblk_req *req = &slots[i].req;
        assert_int_equal(coblk_queue_submit(q, &req, 1), 1);
    }
    unsigned started = DEPTH, finished = 0;
    while (finished < started) {
        struct coblk_req *done[DEPTH];
        int n = coblk_queue_reap(q, done, 1, DEPTH, -1);
        assert_true(n >= 1);
        for (int i = 0; i < n; i++) {
            check_done(done[i], shadow);
            finished++;
            if (started < total) {
                struct slot_req *s = done[i]->opaque;
                prepare(s, slot_of(done[i]), shadow, allow_misaligned);
                struct coblk_req *req = &s->req;
                assert_int_equal(coblk_queue_submit(q, &req, 1), 1);
                started++;
            }
        }
    }
    coblk_queue_free(q);

    if (shadowed) {
        unsigned char *back = malloc(DEV_SIZE);
        assert_int_equal(coblk_pread(dev, back, DEV_SIZE, 0), 0);
        assert_memory_equal(back, shadow, DEV_SIZE);
        free(back);
    }
    coblk_dev_close(dev);
    for (unsigned i = 0; i < DEPTH; i++) {
        free(slots[i].buf);
    }
    free(slots);
    free(shadow);
}

static void test_integrity_file_buffered(void **state)
{
    run_integrity(file_spec(), 0, true, true, 4000);
}

static void test_integrity_file_direct(void **state)
{
    struct coblk_dev *dev;

    if (coblk_dev_open(file_spec(), COBLK_OPEN_DIRECT, &dev) < 0) {
        skip_because("no O_DIRECT on this file system");
    }
    coblk_dev_close(dev);
    /* Misaligned buffers go through bounce buffers. */
    run_integrity(file_spec(), COBLK_OPEN_DIRECT, true, true, 4000);
}

static void test_integrity_null(void **state)
{
    run_integrity("null:size=8M", 0, false, true, 4000);
}

/* ---- bad requests: exact status and errno ------------------------------------- */

/* Runs one request on a local queue and returns it completed. */
static void run_one(struct coblk_dev *dev, struct coblk_req *req)
{
    struct coblk_queue *q;
    struct coblk_req *done;

    assert_int_equal(coblk_queue_new(dev, 1, NULL, &q), 0);
    assert_int_equal(coblk_queue_submit(q, &req, 1), 1);
    assert_int_equal(coblk_queue_reap(q, &done, 1, 1, -1), 1);
    assert_ptr_equal(done, req);
    coblk_queue_free(q);
}

static void expect_request(struct coblk_dev *dev, struct coblk_req req,
                           uint8_t status, int error)
{
    run_one(dev, &req);
    if (req.status != status || req.error != error) {
        fail_msg("request type %u sector %llu: status %u error %d, expected "
                 "%u %d", req.type, (unsigned long long)req.sector,
                 req.status, req.error, status, error);
    }
}

static void test_bad_requests(void **state)
{
    struct coblk_dev *dev;
    static char buf[4096];
    struct iovec iov = { .iov_base = buf, .iov_len = 4096 };
    struct iovec odd = { .iov_base = buf, .iov_len = 1000 };
    uint64_t sectors = DEV_SIZE / SECTOR;

    assert_int_equal(coblk_dev_open(file_spec(), 0, &dev), 0);
    /* In bounds, the last 8 sectors. */
    expect_request(dev, (struct coblk_req){ .type = COBLK_REQ_IN,
                                            .sector = sectors - 8,
                                            .iov = &iov, .iovcnt = 1 },
                   COBLK_S_OK, 0);
    /* One sector past the end, far past, and overflowing. */
    expect_request(dev, (struct coblk_req){ .type = COBLK_REQ_IN,
                                            .sector = sectors - 7,
                                            .iov = &iov, .iovcnt = 1 },
                   COBLK_S_IOERR, -EINVAL);
    expect_request(dev, (struct coblk_req){ .type = COBLK_REQ_OUT,
                                            .sector = UINT64_MAX - 3,
                                            .iov = &iov, .iovcnt = 1 },
                   COBLK_S_IOERR, -EINVAL);
    expect_request(dev, (struct coblk_req){ .type = COBLK_REQ_WRITE_ZEROES,
                                            .sector = sectors - 1,
                                            .nr_sectors = UINT32_MAX },
                   COBLK_S_IOERR, -EINVAL);
    expect_request(dev, (struct coblk_req){ .type = COBLK_REQ_DISCARD,
                                            .sector = sectors + 1 },
                   COBLK_S_IOERR, -EINVAL);
    /* Not a whole number of sectors. */
    expect_request(dev, (struct coblk_req){ .type = COBLK_REQ_IN,
                                            .iov = &odd, .iovcnt = 1 },
                   COBLK_S_IOERR, -EINVAL);
    /* Unknown type and flags. */
    expect_request(dev, (struct coblk_req){ .type = 99 }, COBLK_S_UNSUPP,
                   -ENOTSUP);
    expect_request(dev, (struct coblk_req){ .type = COBLK_REQ_IN,
                                            .flags = COBLK_REQ_F_UNMAP,
                                            .iov = &iov, .iovcnt = 1 },
                   COBLK_S_UNSUPP, -ENOTSUP);
    expect_request(dev, (struct coblk_req){ .type = COBLK_REQ_OUT,
                                            .flags = 1u << 7,
                                            .iov = &iov, .iovcnt = 1 },
                   COBLK_S_UNSUPP, -ENOTSUP);
    /* Zero length: success without I/O. */
    expect_request(dev, (struct coblk_req){ .type = COBLK_REQ_IN,
                                            .sector = sectors },
                   COBLK_S_OK, 0);
    expect_request(dev, (struct coblk_req){ .type = COBLK_REQ_FLUSH },
                   COBLK_S_OK, 0);
    coblk_dev_close(dev);
}

/* NULL where a pointer is needed: an error on every driver, not a crash. */
static void expect_null_pointer_errors(const char *spec, int flags)
{
    struct coblk_dev *dev;
    static char buf[4096];
    struct iovec two[2] = { { .iov_base = buf, .iov_len = 512 },
                            { .iov_base = NULL, .iov_len = 512 } };
    struct iovec null_base = { .iov_base = NULL, .iov_len = 4096 };
    struct iovec id_at_null = { .iov_base = NULL, .iov_len = COBLK_ID_BYTES };

    assert_int_equal(coblk_dev_open(spec, flags, &dev), 0);
    expect_request(dev, (struct coblk_req){ .type = COBLK_REQ_IN,
                                            .iovcnt = 1 },
                   COBLK_S_IOERR, -EINVAL);
    expect_request(dev, (struct coblk_req){ .type = COBLK_REQ_OUT,
                                            .iovcnt = 2 },
                   COBLK_S_IOERR, -EINVAL);
    expect_request(dev, (struct coblk_req){ .type = COBLK_REQ_GET_ID,
                                            .iovcnt = 1 },
                   COBLK_S_IOERR, -EINVAL);
    expect_request(dev, (struct coblk_req){ .type = COBLK_REQ_IN,
                                            .iov = &null_base, .iovcnt = 1 },
                   COBLK_S_IOERR, -EFAULT);
    expect_request(dev, (struct coblk_req){ .type = COBLK_REQ_OUT,
                                            .iov = two, .iovcnt = 2 },
                   COBLK_S_IOERR, -EFAULT);
    expect_request(dev, (struct coblk_req){ .type = COBLK_REQ_GET_ID,
                                            .iov = &id_at_null, .iovcnt = 1 },
                   COBLK_S_IOERR, -EFAULT);
    assert_int_equal(coblk_pread(dev, NULL, 512, 0), -EFAULT);
    assert_int_equal(coblk_pwrite(dev, NULL, 512, 0), -EFAULT);
    assert_int_equal(coblk_pread(dev, NULL, 0, 0), 0);     /* nothing */
    coblk_dev_close(dev);
}

static void test_null_pointers_are_errors(void **state)
{
    char spec[120];

    struct coblk_dev *dev;

    expect_null_pointer_errors(file_spec(), 0);
    expect_null_pointer_errors("null:size=1M", 0);
    snprintf(spec, sizeof(spec), "blkdebug:event=read,delay-ns=1:%s",
             file_spec());
    expect_null_pointer_errors(spec, 0);
    if (coblk_dev_open(file_spec(), COBLK_OPEN_DIRECT, &dev) < 0) {
        skip_because("no O_DIRECT on this file system");
    }
    coblk_dev_close(dev);
    expect_null_pointer_errors(file_spec(), COBLK_OPEN_DIRECT);
}

/* A NULL in the batch: what comes before it is taken, and a batch that
 * starts with it is refused. */
static void test_submit_stops_at_a_null_request(void **state)
{
    struct coblk_dev *dev;
    struct coblk_queue *q;
    struct coblk_req req = { .type = COBLK_REQ_FLUSH };
    struct coblk_req *batch[] = { &req, NULL, &req }, *done[2];

    assert_int_equal(coblk_dev_open("null:size=1M", 0, &dev), 0);
    assert_int_equal(coblk_queue_new(dev, 4, NULL, &q), 0);
    assert_int_equal(coblk_queue_submit(q, batch, 3), 1);
    assert_int_equal(coblk_queue_submit(q, batch + 1, 2), -EINVAL);
    assert_non_null(strstr(coblk_last_error(), "request 0 is NULL"));
    assert_int_equal(coblk_queue_reap(q, done, 1, 2, -1), 1);
    assert_ptr_equal(done[0], &req);
    assert_int_equal(req.status, COBLK_S_OK);
    coblk_queue_free(q);
    coblk_dev_close(dev);
}

static void test_get_id(void **state)
{
    struct coblk_dev *dev;
    char id[COBLK_ID_BYTES + 4];
    struct iovec iov = { .iov_base = id, .iov_len = sizeof(id) };

    memset(id, 'x', sizeof(id));
    assert_int_equal(coblk_dev_open("null:size=1M", 0, &dev), 0);
    expect_request(dev, (struct coblk_req){ .type = COBLK_REQ_GET_ID,
                                            .iov = &iov, .iovcnt = 1 },
                   COBLK_S_OK, 0);
    assert_memory_equal(id, "coblk-null-", 11);
    assert_int_equal(id[COBLK_ID_BYTES], 'x');     /* 20 bytes, no more */
    coblk_dev_close(dev);
}

static void test_read_only_device(void **state)
{
    struct coblk_dev *dev;
    static char buf[SECTOR], back[SECTOR];
    struct iovec iov = { .iov_base = buf, .iov_len = SECTOR };

    assert_int_equal(coblk_dev_open(file_spec(), 0, &dev), 0);
    memset(buf, 0x5c, SECTOR);
    assert_int_equal(coblk_pwrite(dev, buf, SECTOR, 0), 0);
    coblk_dev_close(dev);

    assert_int_equal(coblk_dev_open(file_spec(), COBLK_OPEN_RDONLY, &dev), 0);
    memset(buf, 0x77, SECTOR);
    expect_request(dev, (struct coblk_req){ .type = COBLK_REQ_OUT,
                                            .iov = &iov, .iovcnt = 1 },
                   COBLK_S_IOERR, -EROFS);
    expect_request(dev, (struct coblk_req){ .type = COBLK_REQ_WRITE_ZEROES,
                                            .nr_sectors = 1 },
                   COBLK_S_IOERR, -EROFS);
    expect_request(dev, (struct coblk_req){ .type = COBLK_REQ_DISCARD,
                                            .nr_sectors = 1 },
                   COBLK_S_IOERR, -EROFS);
    assert_int_equal(coblk_pwrite(dev, buf, SECTOR, 0), -EROFS);
    /* Nothing changed. */
    assert_int_equal(coblk_pread(dev, back, SECTOR, 0), 0);
    for (int i = 0; i < SECTOR; i++) {
        assert_int_equal((unsigned char)back[i], 0x5c);
    }
    coblk_dev_close(dev);
}

static void test_write_zeroes_and_discard(void **state)
{
    struct coblk_dev *dev;
    static unsigned char buf[8 * SECTOR];

    assert_int_equal(coblk_dev_open(file_spec(), 0, &dev), 0);
    memset(buf, 0xee, sizeof(buf));
    assert_int_equal(coblk_pwrite(dev, buf, sizeof(buf), 64 * SECTOR), 0);
    expect_request(dev, (struct coblk_req){ .type = COBLK_REQ_WRITE_ZEROES,
                                            .sector = 65, .nr_sectors = 2 },
                   COBLK_S_OK, 0);
    expect_request(dev, (struct coblk_req){ .type = COBLK_REQ_WRITE_ZEROES,
                                            .flags = COBLK_REQ_F_UNMAP,
                                            .sector = 68, .nr_sectors = 1 },
                   COBLK_S_OK, 0);
    assert_int_equal(coblk_pread(dev, buf, sizeof(buf), 64 * SECTOR), 0);
    for (unsigned i = 0; i < sizeof(buf); i++) {
        unsigned sector = 64 + i / SECTOR;
        bool zero = sector == 65 || sector == 66 || sector == 68;
        assert_int_equal(buf[i], zero ? 0 : 0xee);
    }
    /* A discarded range of a file reads back as zeroes (a punched hole). */
    expect_request(dev, (struct coblk_req){ .type = COBLK_REQ_DISCARD,
                                            .sector = 64, .nr_sectors = 8 },
                   COBLK_S_OK, 0);
    assert_int_equal(coblk_pread(dev, buf, sizeof(buf), 64 * SECTOR), 0);
    for (unsigned i = 0; i < sizeof(buf); i++) {
        assert_int_equal(buf[i], 0);
    }
    coblk_dev_close(dev);
}

static void test_sync_helpers(void **state)
{
    struct coblk_dev *dev;
    char out[1000], in[1000];

    assert_int_equal(coblk_dev_open(file_spec(), COBLK_OPEN_DIRECT, &dev) == 0
                         ? 0 : coblk_dev_open(file_spec(), 0, &dev), 0);
    for (unsigned i = 0; i < sizeof(out); i++) {
        out[i] = (char)(i * 7);
    }
    /* Byte granularity, even on O_DIRECT: a read-modify-write. */
    assert_int_equal(coblk_pwrite(dev, out, sizeof(out), 12345), 0);
    assert_int_equal(coblk_flush(dev), 0);
    assert_int_equal(coblk_pread(dev, in, sizeof(in), 12345), 0);
    assert_memory_equal(in, out, sizeof(out));

    assert_int_equal(coblk_pread(dev, in, 2, DEV_SIZE - 1), -EINVAL);
    assert_non_null(strstr(coblk_last_error(), "past the end"));
    assert_int_equal(coblk_pread(NULL, in, 1, 0), -EINVAL);
    coblk_dev_close(dev);
}

static void test_null_reads_zeroes_unless_told_not_to(void **state)
{
    static const char *const specs[] = { "null:size=1M",
                                         "null:size=1M,read-zeroes=on",
                                         "null:size=1M,read-zeroes=off" };
    char buf[4096];

    for (int i = 0; i < 3; i++) {
        struct coblk_dev *dev;
        assert_int_equal(coblk_dev_open(specs[i], 0, &dev), 0);
        memset(buf, 0xa5, sizeof(buf));
        assert_int_equal(coblk_pread(dev, buf, sizeof(buf), 8192), 0);
        for (size_t k = 0; k < sizeof(buf); k++) {
            assert_int_equal((unsigned char)buf[k], i < 2 ? 0 : 0xa5);
        }
        coblk_dev_close(dev);
    }
}

static struct rlimit file_size_limit;

/* Teardown of the tests that shrink the image or limit the file size:
 * what they changed is restored even when they fail. */
static int restore_image(void **state)
{
    signal(SIGXFSZ, SIG_DFL);
    if (file_size_limit.rlim_max) {
        setrlimit(RLIMIT_FSIZE, &file_size_limit);
    }
    return truncate(image, DEV_SIZE);
}

static void test_read_past_shrunk_file_is_zero(void **state)
{
    struct coblk_dev *dev;
    char buf[2 * SECTOR];

    assert_int_equal(coblk_dev_open(file_spec(), 0, &dev), 0);
    memset(buf, 0x33, sizeof(buf));
    assert_int_equal(coblk_pwrite(dev, buf, sizeof(buf), DEV_SIZE - 2 * SECTOR),
                     0);
    /* The file shrinks under the device: the tail reads as zeroes. */
    assert_int_equal(truncate(image, DEV_SIZE - SECTOR), 0);
    assert_int_equal(coblk_pread(dev, buf, sizeof(buf), DEV_SIZE - 2 * SECTOR),
                     0);
    for (int i = 0; i < 2 * SECTOR; i++) {
        assert_int_equal(buf[i], i < SECTOR ? 0x33 : 0);
    }
    /* The kernel gave half: the rest was asked for again, and counted. */
    struct coblk_dev_stats stats;
    assert_int_equal(coblk_dev_stats(dev, &stats, sizeof(stats)), 0);
    assert_true(stats.short_reads >= 1);
    assert_int_equal(stats.short_writes, 0);
    assert_int_equal(stats.bounces, 0);
    /* An older caller's shorter struct: the fields it knows. */
    uint64_t first = 0;
    assert_int_equal(coblk_dev_stats(dev, (void *)&first, sizeof(first)), 0);
    assert_int_equal(first, stats.short_reads);
    assert_int_equal(coblk_dev_stats(NULL, &stats, sizeof(stats)), -EINVAL);
    coblk_dev_close(dev);
}

/* A queue's read finishes from its CQE (start_rw) unless the transfer
 * comes up short: then it goes on in a coroutine, as a synchronous read
 * does. */
static void test_queue_read_past_shrunk_file_is_zero(void **state)
{
    struct coblk_dev *dev;
    struct coblk_dev_stats before, after;
    char buf[2 * SECTOR];
    struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };

    assert_int_equal(coblk_dev_open(file_spec(), 0, &dev), 0);
    memset(buf, 0x44, sizeof(buf));
    expect_request(dev, (struct coblk_req){
                       .type = COBLK_REQ_OUT, .iov = &iov, .iovcnt = 1,
                       .sector = DEV_SIZE / SECTOR - 2 }, COBLK_S_OK, 0);
    assert_int_equal(coblk_dev_stats(dev, &before, sizeof(before)), 0);
    assert_int_equal(truncate(image, DEV_SIZE - SECTOR), 0);
    memset(buf, 0x55, sizeof(buf));
    expect_request(dev, (struct coblk_req){
                       .type = COBLK_REQ_IN, .iov = &iov, .iovcnt = 1,
                       .sector = DEV_SIZE / SECTOR - 2 }, COBLK_S_OK, 0);
    for (int i = 0; i < 2 * SECTOR; i++) {
        assert_int_equal(buf[i], i < SECTOR ? 0x44 : 0);
    }
    assert_int_equal(coblk_dev_stats(dev, &after, sizeof(after)), 0);
    assert_int_equal(after.short_reads, before.short_reads + 1);
    coblk_dev_close(dev);
}

/* A queue's write the kernel fails: the error reaches the request.  (The
 * file shrank, and growing it back passes the file size limit.) */
static void test_queue_write_error_reaches_the_request(void **state)
{
    struct coblk_dev *dev;
    char buf[SECTOR] = { 1 };
    struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };

    assert_int_equal(coblk_dev_open(file_spec(), 0, &dev), 0);
    assert_int_equal(truncate(image, SECTOR), 0);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &file_size_limit), 0);
    struct rlimit small = file_size_limit;
    small.rlim_cur = 2 * SECTOR;
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    expect_request(dev, (struct coblk_req){
                       .type = COBLK_REQ_OUT, .iov = &iov, .iovcnt = 1,
                       .sector = 4 }, COBLK_S_IOERR, -EFBIG);
    /* Below the limit, the same write succeeds. */
    expect_request(dev, (struct coblk_req){
                       .type = COBLK_REQ_OUT, .iov = &iov, .iovcnt = 1,
                       .sector = 1 }, COBLK_S_OK, 0);
    coblk_dev_close(dev);
}

/* COBLK_REQ_IOPRIO reaches the SQE of a file's request: the kernel takes
 * a class it knows (idle; real-time with the capability) and fails one it
 * does not
 * with EINVAL, on reads and writes alike; other types refuse the bits. */
static void test_queue_ioprio_reaches_the_kernel(void **state)
{
    struct coblk_dev *dev;
    char buf[SECTOR] = { 1 };
    struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
    const uint32_t idle = COBLK_REQ_IOPRIO(3 << 13 | 7);
    const uint32_t unknown = COBLK_REQ_IOPRIO(7 << 13);

    assert_int_equal(coblk_dev_open(file_spec(), 0, &dev), 0);
    expect_request(dev, (struct coblk_req){
                       .type = COBLK_REQ_OUT, .flags = idle, .iov = &iov,
                       .iovcnt = 1, .sector = 2 }, COBLK_S_OK, 0);
    expect_request(dev, (struct coblk_req){
                       .type = COBLK_REQ_IN, .flags = idle, .iov = &iov,
                       .iovcnt = 1, .sector = 2 }, COBLK_S_OK, 0);
    expect_request(dev, (struct coblk_req){
                       .type = COBLK_REQ_IN, .flags = unknown, .iov = &iov,
                       .iovcnt = 1, .sector = 2 }, COBLK_S_IOERR, -EINVAL);
    expect_request(dev, (struct coblk_req){
                       .type = COBLK_REQ_OUT, .flags = unknown, .iov = &iov,
                       .iovcnt = 1, .sector = 2 }, COBLK_S_IOERR, -EINVAL);
    if (may_use_realtime_io()) {
        expect_request(dev, (struct coblk_req){
                           .type = COBLK_REQ_IN,
                           .flags = COBLK_REQ_IOPRIO(1 << 13 | 0),
                           .iov = &iov, .iovcnt = 1, .sector = 2 },
                       COBLK_S_OK, 0);
    }
    expect_request(dev, (struct coblk_req){
                       .type = COBLK_REQ_FLUSH, .flags = idle },
                   COBLK_S_UNSUPP, -ENOTSUP);
    coblk_dev_close(dev);
}

/* ---- queues on iothreads, drain --------------------------------------------- */

struct half {
    struct coblk_dev *dev;
    coblk_iothread *thread;
    unsigned first_slot;
    int failures;
};

/* Writes then reads back every slot of one half of the device through a
 * queue on its own iothread. */
static void *write_half(void *opaque)
{
    struct half *h = opaque;
    struct coblk_queue *q;
    enum { N = DEPTH / 2 };
    static __thread struct slot_req slots[N];
    struct coblk_req *reqs[N], *done[N];

    assert_int_equal(coblk_queue_new(h->dev, N, coblk_iothread_aio(h->thread),
                                     &q), 0);
    for (int pass = 0; pass < 2; pass++) {
        for (unsigned i = 0; i < N; i++) {
            if (!slots[i].buf) {
                slots[i].buf = malloc(SLOT);
            }
            memset(slots[i].buf, pass ? 0 : (int)(h->first_slot + i + 1),
                   SLOT);
            slots[i].iov[0] = (struct iovec){ .iov_base = slots[i].buf,
                                              .iov_len = SLOT };
            slots[i].req = (struct coblk_req){
                .type = pass ? COBLK_REQ_IN : COBLK_REQ_OUT,
                .sector = (uint64_t)(h->first_slot + i) * (SLOT / SECTOR),
                .iov = slots[i].iov, .iovcnt = 1 };
            reqs[i] = &slots[i].req;
        }
        assert_int_equal(coblk_queue_submit(q, reqs, N), N);
        int got = 0;
        while (got < N) {
            int n = coblk_queue_reap(q, done, 1, N, 5000);
            assert_true(n > 0);
            for (int i = 0; i < n; i++) {
                h->failures += done[i]->status != COBLK_S_OK;
            }
            got += n;
        }
    }
    for (unsigned i = 0; i < N; i++) {
        for (size_t b = 0; b < SLOT; b++) {
            if (slots[i].buf[b] != (unsigned char)(h->first_slot + i + 1)) {
                h->failures++;
                break;
            }
        }
        free(slots[i].buf);
        slots[i].buf = NULL;
    }
    coblk_queue_free(q);
    return NULL;
}

static void test_two_queues_on_two_iothreads(void **state)
{
    struct coblk_dev *dev;
    struct half halves[2];
    pthread_t submitters[2];

    assert_int_equal(coblk_dev_open(file_spec(), 0, &dev), 0);
    for (int i = 0; i < 2; i++) {
        halves[i] = (struct half){ .dev = dev, .first_slot = i * DEPTH / 2 };
        assert_int_equal(coblk_iothread_new("blk", &halves[i].thread), 0);
        pthread_create(&submitters[i], NULL, write_half, &halves[i]);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(submitters[i], NULL);
        coblk_iothread_join(halves[i].thread);
        assert_int_equal(halves[i].failures, 0);
    }
    coblk_dev_close(dev);
}

static void test_close_drains_requests_in_flight(void **state)
{
    struct coblk_dev *dev;
    coblk_iothread *thread;
    struct coblk_queue *q;
    struct coblk_req reqs[16], *ptrs[16];
    static char buf[16][SECTOR];
    struct iovec iov[16];

    /* Each request waits 20 ms on a timer in the iothread. */
    assert_int_equal(coblk_dev_open("null:size=1M,latency-ns=20000000", 0,
                                    &dev), 0);
    assert_int_equal(coblk_iothread_new("drain", &thread), 0);
    assert_int_equal(coblk_queue_new(dev, 16, coblk_iothread_aio(thread), &q),
                     0);
    for (int i = 0; i < 16; i++) {
        memset(buf[i], 0xff, SECTOR);
        iov[i] = (struct iovec){ .iov_base = buf[i], .iov_len = SECTOR };
        reqs[i] = (struct coblk_req){ .type = COBLK_REQ_IN, .sector = i,
                                      .iov = &iov[i], .iovcnt = 1 };
        ptrs[i] = &reqs[i];
    }
    assert_int_equal(coblk_queue_submit(q, ptrs, 16), 16);
    /* Full: a 17th is not taken. */
    assert_int_equal(coblk_queue_submit(q, ptrs, 1), 0);
    coblk_queue_free(q);    /* waits for all 16 */
    for (int i = 0; i < 16; i++) {
        assert_int_equal(reqs[i].status, COBLK_S_OK);
        assert_int_equal(reqs[i].error, 0);
        assert_int_equal(buf[i][0], 0);
    }
    assert_int_equal(atomic_load(&dev->in_flight), 0);
    coblk_dev_close(dev);
    coblk_iothread_join(thread);
}

/* A device whose queues are open is not closed under them: -EBUSY, and it
 * stays usable (under ASan, a use after free would show here). */
static void test_close_refuses_while_queues_are_open(void **state)
{
    struct coblk_dev *dev;
    struct coblk_queue *q1, *q2;
    struct coblk_req req = { .type = COBLK_REQ_FLUSH };
    struct coblk_req *reqs[] = { &req }, *done[1];

    assert_int_equal(coblk_dev_open("null:size=1M", 0, &dev), 0);
    assert_int_equal(coblk_queue_new(dev, 4, NULL, &q1), 0);
    assert_int_equal(coblk_queue_new(dev, 4, NULL, &q2), 0);
    assert_int_equal(coblk_dev_close(dev), -EBUSY);
    assert_string_equal(coblk_last_error(), "coblk_dev_close: 2 queues of the "
                        "device still open: free them first "
                        "(coblk_queue_free)");
    coblk_queue_free(q2);
    assert_int_equal(coblk_dev_close(dev), -EBUSY);
    assert_non_null(strstr(coblk_last_error(), "1 queue of the device"));
    assert_int_equal(coblk_queue_submit(q1, reqs, 1), 1);
    assert_int_equal(coblk_queue_reap(q1, done, 1, 1, -1), 1);
    assert_int_equal(req.status, COBLK_S_OK);
    coblk_queue_free(q1);
    assert_int_equal(coblk_dev_close(dev), 0);
}

/* Registered files: one slot per device and context, given back on close,
 * on this thread at once and on another thread's context by a bottom half;
 * a context freed first takes its table along. */
static void test_fixed_files_are_given_back(void **state)
{
    struct coblk_dev *dev;
    char buf[SECTOR];
    int err = 0;
    /* The context the library made for this thread's earlier calls. */
    coblk_aio *ctx = aio_thread_ctx(&err);

    assert_non_null(ctx);
    if (!ctx->fixed_files) {
        skip_because("a kernel without sparse file tables");
    }
    uint64_t before = ctx->fixed_used;
    for (int i = 0; i < 3 * AIO_FIXED_FILES; i++) {
        assert_int_equal(coblk_dev_open(file_spec(), 0, &dev), 0);
        assert_int_equal(coblk_pread(dev, buf, SECTOR, 0), 0);
        assert_int_equal(__builtin_popcountll(ctx->fixed_used),
                         __builtin_popcountll(before) + 1);
        coblk_dev_close(dev);
        assert_int_equal(ctx->fixed_used, before);
    }

    /* Registered on an iothread, closed from here: a bottom half there. */
    coblk_iothread *thread;
    struct coblk_queue *q;
    struct iovec iov = { .iov_base = buf, .iov_len = SECTOR };
    struct coblk_req req = { .type = COBLK_REQ_IN, .iov = &iov, .iovcnt = 1 };
    struct coblk_req *reqs[] = { &req }, *done[1];
    assert_int_equal(coblk_iothread_new("fixed", &thread), 0);
    coblk_aio *remote = coblk_iothread_aio(thread);
    assert_int_equal(coblk_dev_open(file_spec(), 0, &dev), 0);
    assert_int_equal(coblk_queue_new(dev, 1, remote, &q), 0);
    assert_int_equal(coblk_queue_submit(q, reqs, 1), 1);
    assert_int_equal(coblk_queue_reap(q, done, 1, 1, -1), 1);
    assert_int_equal(req.status, COBLK_S_OK);
    coblk_queue_free(q);
    coblk_dev_close(dev);
    coblk_iothread_join(thread);    /* runs the pending bottom half */

    /* The context goes first: closing the device later must not touch it. */
    assert_int_equal(coblk_iothread_new("fixed", &thread), 0);
    assert_int_equal(coblk_dev_open(file_spec(), 0, &dev), 0);
    assert_int_equal(coblk_queue_new(dev, 1, coblk_iothread_aio(thread), &q),
                     0);
    assert_int_equal(coblk_queue_submit(q, reqs, 1), 1);
    assert_int_equal(coblk_queue_reap(q, done, 1, 1, -1), 1);
    coblk_queue_free(q);
    coblk_iothread_join(thread);
    coblk_dev_close(dev);
}

/* Registered buffers: a read into a registered page the process may no
 * longer write still lands, as the kernel pinned the page when it was
 * registered; into an unregistered one it fails.  So the reads below show
 * which op ran, and that each region is found by its own index. */
static void *map_pages(size_t n)
{
    void *p = mmap(NULL, n * 4096, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    assert_true(p != MAP_FAILED);
    return p;
}

static void test_registered_buffers(void **state)
{
    struct coblk_dev *dev;
    int err = 0;
    coblk_aio *ctx = aio_thread_ctx(&err);
    char *a = map_pages(2), *b = map_pages(1), *plain = map_pages(1);
    char data[8192];

    assert_non_null(ctx);
    for (size_t i = 0; i < sizeof(data); i++) {
        data[i] = (char)(i * 7 + 3);
    }
    assert_int_equal(coblk_dev_open(file_spec(), COBLK_OPEN_DIRECT, &dev), 0);
    assert_int_equal(coblk_pwrite(dev, data, sizeof(data), 0), 0);

    int ret = coblk_aio_register_buffer(ctx, a, 8192);
    if (ret == -ENOTSUP) {
        coblk_dev_close(dev);
        skip_because("a kernel without sparse buffer tables");
    }
    assert_int_equal(ret, 0);
    assert_int_equal(coblk_aio_register_buffer(ctx, b, 4096), 0);
    assert_int_equal(coblk_aio_register_buffer(ctx, a + 4096, 4096), -EINVAL);
    assert_int_equal(coblk_aio_register_buffer(ctx, NULL, 4096), -EINVAL);
    assert_int_equal(coblk_aio_register_buffer(ctx, plain, 0), -EINVAL);
    assert_int_equal(coblk_aio_unregister_buffer(ctx, plain), -ENOENT);

    assert_int_equal(mprotect(a, 8192, PROT_READ), 0);
    assert_int_equal(mprotect(b, 4096, PROT_READ), 0);
    assert_int_equal(mprotect(plain, 4096, PROT_READ), 0);
    assert_int_equal(coblk_pread(dev, plain, 4096, 0), -EFAULT);
    assert_int_equal(coblk_pread(dev, a + 4096, 4096, 0), 0);
    assert_memory_equal(a + 4096, data, 4096);
    assert_int_equal(coblk_pread(dev, b, 4096, 4096), 0);
    assert_memory_equal(b, data + 4096, 4096);

    /* A write from a registered buffer, read back through a plain one. */
    assert_int_equal(coblk_pwrite(dev, b, 4096, 16384), 0);
    char back[4096] __attribute__((aligned(4096)));
    assert_int_equal(coblk_pread(dev, back, 4096, 16384), 0);
    assert_memory_equal(back, data + 4096, 4096);

    /* Unregistered, the page is the process's again: read-only. */
    assert_int_equal(coblk_aio_unregister_buffer(ctx, a), 0);
    assert_int_equal(coblk_pread(dev, a, 4096, 0), -EFAULT);
    assert_int_equal(coblk_aio_unregister_buffer(ctx, a), -ENOENT);

    /* Sixteen regions at most (b holds one). */
    char *many = map_pages(AIO_FIXED_BUFS);
    for (int i = 0; i < AIO_FIXED_BUFS - 1; i++) {
        assert_int_equal(coblk_aio_register_buffer(ctx, many + i * 4096,
                                                   4096), 0);
    }
    assert_int_equal(coblk_aio_register_buffer(
                         ctx, many + (AIO_FIXED_BUFS - 1) * 4096, 4096),
                     -ENOSPC);
    for (int i = 0; i < AIO_FIXED_BUFS - 1; i++) {
        assert_int_equal(coblk_aio_unregister_buffer(ctx, many + i * 4096),
                         0);
    }
    assert_int_equal(coblk_aio_unregister_buffer(ctx, b), 0);
    assert_int_equal(ctx->fixed_bufs_end, 0);
    coblk_dev_close(dev);
    munmap(many, AIO_FIXED_BUFS * 4096);
    munmap(a, 8192);
    munmap(b, 4096);
    munmap(plain, 4096);
}

/* More iovecs than the kernel takes in one call (IOV_MAX): split. */
static void test_many_iovecs_are_split(void **state)
{
    enum { SEGS = 2500 };
    struct coblk_dev *dev;
    struct iovec *iov = calloc(SEGS, sizeof(*iov));
    unsigned char *out = malloc(SEGS * SECTOR), *in = malloc(SEGS * SECTOR);

    assert_int_equal(coblk_dev_open(file_spec(), 0, &dev), 0);
    for (unsigned i = 0; i < SEGS * SECTOR; i++) {
        out[i] = (unsigned char)(i / SECTOR + i);
    }
    for (unsigned i = 0; i < SEGS; i++) {
        iov[i] = (struct iovec){ .iov_base = out + i * SECTOR,
                                 .iov_len = SECTOR };
    }
    expect_request(dev, (struct coblk_req){ .type = COBLK_REQ_OUT,
                                            .sector = 100, .iov = iov,
                                            .iovcnt = SEGS },
                   COBLK_S_OK, 0);
    for (unsigned i = 0; i < SEGS; i++) {
        iov[i].iov_base = in + (SEGS - 1 - i) * SECTOR;    /* reversed */
    }
    expect_request(dev, (struct coblk_req){ .type = COBLK_REQ_IN,
                                            .sector = 100, .iov = iov,
                                            .iovcnt = SEGS },
                   COBLK_S_OK, 0);
    for (unsigned i = 0; i < SEGS; i++) {
        assert_memory_equal(in + (SEGS - 1 - i) * SECTOR, out + i * SECTOR,
                            SECTOR);
    }
    struct coblk_dev_stats stats;
    assert_int_equal(coblk_dev_stats(dev, &stats, sizeof(stats)), 0);
    assert_true(stats.splits >= 2);
    coblk_dev_close(dev);
    free(iov);
    free(out);
    free(in);
}

/* A remote queue's fd is readable exactly while completions wait. */
static void test_queue_fd_is_readable_while_completions_wait(void **state)
{
    struct coblk_dev *dev;
    coblk_iothread *thread;
    struct coblk_queue *q;
    char buf[SECTOR];
    struct iovec iov = { .iov_base = buf, .iov_len = SECTOR };
    struct coblk_req req = { .type = COBLK_REQ_IN, .iov = &iov, .iovcnt = 1 };
    struct coblk_req *reqs[] = { &req }, *done[1];

    assert_int_equal(coblk_dev_open("null:size=1M", 0, &dev), 0);
    assert_int_equal(coblk_iothread_new("fd", &thread), 0);
    assert_int_equal(coblk_queue_new(dev, 4, coblk_iothread_aio(thread), &q),
                     0);
    struct pollfd pfd = { .fd = coblk_queue_fd(q), .events = POLLIN };
    assert_true(pfd.fd >= 0);
    assert_int_equal(poll(&pfd, 1, 0), 0);
    assert_int_equal(coblk_queue_submit(q, reqs, 1), 1);
    assert_int_equal(poll(&pfd, 1, 5000), 1);
    assert_int_equal(coblk_queue_reap(q, done, 0, 1, 0), 1);
    assert_int_equal(done[0]->status, COBLK_S_OK);
    assert_int_equal(poll(&pfd, 1, 0), 0);
    coblk_queue_free(q);
    coblk_iothread_join(thread);
    coblk_dev_close(dev);
}

/* An iovec longer than the byte count: only the count is transferred. */
struct short_write {
    struct coblk_dev *dev;
    struct iovec iov;
    int ret;
    bool done;
};

static void write_512_of_iovec(void *opaque)
{
    struct short_write *w = opaque;

    w->ret = coblk_co_pwritev(w->dev, 0, 512, &w->iov, 1, 0);
    w->done = true;
}

static void test_longer_iovec_transfers_only_bytes(void **state)
{
    static char big[4096], back[4096];
    struct short_write w = { .iov = { .iov_base = big,
                                      .iov_len = sizeof(big) } };

    assert_int_equal(coblk_dev_open(file_spec(), 0, &w.dev), 0);
    memset(back, 0x11, sizeof(back));
    assert_int_equal(coblk_pwrite(w.dev, back, sizeof(back), 0), 0);
    memset(big, 0x22, sizeof(big));
    coblk_co_enter(coblk_co_create(write_512_of_iovec, &w));
    while (!w.done) {
        coblk_aio_poll(coblk_aio_current(), true);
    }
    assert_int_equal(w.ret, 0);
    assert_int_equal(coblk_pread(w.dev, back, sizeof(back), 0), 0);
    for (int i = 0; i < 4096; i++) {
        assert_int_equal(back[i], i < 512 ? 0x22 : 0x11);
    }
    coblk_dev_close(w.dev);
}

/* Read-modify-writes on two threads at once, into the same blocks (other
 * bytes of them): both finish, and neither undoes the other. */
#define RMW_ROUNDS 50

struct rmw_writer {
    struct coblk_dev *dev;
    unsigned char value;
    uint64_t at;                /* in each block */
    int ret;
};

static void *misaligned_writes(void *opaque)
{
    struct rmw_writer *w = opaque;
    char buf[100];

    memset(buf, w->value, sizeof(buf));
    for (int i = 0; i < RMW_ROUNDS && w->ret == 0; i++) {
        w->ret = coblk_pwrite(w->dev, buf, sizeof(buf),
                              w->at + (uint64_t)i * 4096);
    }
    return NULL;
}

static void test_concurrent_read_modify_writes(void **state)
{
    struct coblk_dev *dev;
    pthread_t threads[2];
    struct rmw_writer writers[2];
    static unsigned char zeroes[RMW_ROUNDS * 4096], back[4096];

    if (coblk_dev_open(file_spec(), COBLK_OPEN_DIRECT, &dev) < 0) {
        skip_because("no O_DIRECT on this file system");
    }
    assert_int_equal(coblk_pwrite(dev, zeroes, sizeof(zeroes), 0), 0);
    for (int i = 0; i < 2; i++) {
        writers[i] = (struct rmw_writer){ .dev = dev, .value = 0x41 + i,
                                          .at = 10 + 1000 * (uint64_t)i };
        assert_int_equal(pthread_create(&threads[i], NULL, misaligned_writes,
                                        &writers[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(writers[i].ret, 0);
    }
    for (int block = 0; block < RMW_ROUNDS; block++) {
        assert_int_equal(coblk_pread(dev, back, sizeof(back),
                                     (uint64_t)block * 4096), 0);
        for (int b = 0; b < 4096; b++) {
            int expect = b >= 10 && b < 110 ? 0x41
                         : b >= 1010 && b < 1110 ? 0x42 : 0;
            if (back[b] != expect) {
                fail_msg("block %d byte %d: %#x, expected %#x", block, b,
                         back[b], expect);
            }
        }
    }
    coblk_dev_close(dev);
}

/* A read-modify-write holds off only the requests that overlap its
 * blocks: on a null device with a 4 KiB block and 50 ms a request, a
 * write elsewhere completes during it, one into its block after it. */
static void test_read_modify_write_waits_only_for_overlaps(void **state)
{
    struct coblk_dev *dev;
    struct coblk_queue *q;
    static char buf[3][4096];
    struct iovec iov[3] = { { buf[0], SECTOR }, { buf[1], 4096 },
                            { buf[2], 4096 } };
    struct coblk_req reqs[3] = {
        { .type = COBLK_REQ_OUT, .sector = 1, .iov = &iov[0], .iovcnt = 1 },
        { .type = COBLK_REQ_OUT, .sector = 8, .iov = &iov[1], .iovcnt = 1 },
        { .type = COBLK_REQ_OUT, .sector = 0, .iov = &iov[2], .iovcnt = 1 },
    };
    struct coblk_req *batch[] = { &reqs[0], &reqs[1], &reqs[2] };

    assert_int_equal(coblk_dev_open("null:size=1M,latency-ns=50000000", 0,
                                    &dev), 0);
    dev->offset_align = 4096;   /* sector 1 alone: a read-modify-write */
    assert_int_equal(coblk_queue_new(dev, 3, NULL, &q), 0);
    assert_int_equal(coblk_queue_submit(q, batch, 3), 3);
    struct coblk_req *order[3];
    for (int got = 0; got < 3;) {
        int n = coblk_queue_reap(q, order + got, 1, 3 - got, -1);
        assert_true(n > 0);
        got += n;
    }
    /* Elsewhere, the read-modify-write itself, then its block. */
    assert_ptr_equal(order[0], &reqs[1]);
    assert_ptr_equal(order[1], &reqs[0]);
    assert_ptr_equal(order[2], &reqs[2]);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(reqs[i].status, COBLK_S_OK);
    }
    struct coblk_dev_stats stats;
    assert_int_equal(coblk_dev_stats(dev, &stats, sizeof(stats)), 0);
    assert_int_equal(stats.serialising_waits, 1);
    assert_int_equal(stats.bounces, 1);
    coblk_queue_free(q);
    coblk_dev_close(dev);
}

/* A read-modify-write waiting its turn is not passed, again and again, by
 * the next write into its block: a coroutine that writes there in a loop
 * starts each write right after the last ends, before the waiter runs. */
struct rmw_race {
    struct coblk_dev *dev;
    bool stop, rmw_done;
    int rmw_ret;
    unsigned writes, writes_before_rmw_done;
};

static void write_block_in_a_loop(void *opaque)
{
    struct rmw_race *r = opaque;
    static unsigned char block[8192] __attribute__((aligned(4096)));
    struct iovec iov = { .iov_base = block, .iov_len = sizeof(block) };

    while (!r->stop && r->writes < 100000) {
        if (coblk_co_pwritev(r->dev, 0, sizeof(block), &iov, 1, 0) < 0) {
            break;
        }
        r->writes++;
    }
}

static void misaligned_write_once(void *opaque)
{
    struct rmw_race *r = opaque;
    char buf[100];
    struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };

    memset(buf, 0x2c, sizeof(buf));
    coblk_co_sleep_ns(1000000);         /* the writer is going by now */
    unsigned before = r->writes;
    r->rmw_ret = coblk_co_pwritev(r->dev, 100, sizeof(buf), &iov, 1, 0);
    r->writes_before_rmw_done = r->writes - before;
    r->rmw_done = true;
    r->stop = true;
}

static void test_read_modify_write_is_not_starved(void **state)
{
    struct rmw_race r = { 0 };

    if (coblk_dev_open(file_spec(), COBLK_OPEN_DIRECT, &r.dev) < 0) {
        skip_because("no O_DIRECT on this file system");
    }
    r.dev->offset_align = 4096;     /* 100 bytes at 100: a read-modify-write */
    coblk_co_enter(coblk_co_create(write_block_in_a_loop, &r));
    coblk_co_enter(coblk_co_create(misaligned_write_once, &r));
    alarm(60);
    while (!r.stop || r.writes == 0) {
        coblk_aio_poll(coblk_aio_current(), true);
        if (r.writes >= 100000) {
            break;
        }
    }
    assert_true(r.rmw_done);
    assert_int_equal(r.rmw_ret, 0);
    /* It waited for the write in flight, and maybe the one after. */
    assert_true(r.writes_before_rmw_done <= 2);
    /* Let the writer see stop and finish its last write. */
    while (atomic_load(&r.dev->in_flight)) {
        coblk_aio_poll(coblk_aio_current(), true);
    }
    alarm(0);
    coblk_dev_close(r.dev);
}

/* Queue reads do not wait for read-modify-writes (only writes do): racing
 * with them, a read sees each target byte old or new and the bytes around
 * it untouched. */
#define RMW_BLOCKS DEPTH    /* one buffer each */
#define RMW_SPAN 4096
#define RMW_AT 10
#define RMW_LEN 100

static void *rewrite_misaligned(void *opaque)
{
    struct coblk_dev *dev = opaque;
    char buf[RMW_LEN];

    for (int round = 0; round < 4; round++) {
        memset(buf, 0x44 + round, sizeof(buf));
        for (int i = 0; i < RMW_BLOCKS; i++) {
            if (coblk_pwrite(dev, buf, sizeof(buf),
                             (uint64_t)i * RMW_SPAN + RMW_AT) < 0) {
                return (void *)1;
            }
        }
    }
    return NULL;
}

static void check_block_around_rmw(const unsigned char *data)
{
    for (int i = 0; i < RMW_SPAN; i++) {
        bool target = i >= RMW_AT && i < RMW_AT + RMW_LEN;
        if (target ? data[i] != 0x11 && (data[i] < 0x44 || data[i] > 0x47)
                   : data[i] != 0x11) {
            fail_msg("byte %d of a block read as %#x", i, data[i]);
        }
    }
}

static void test_reads_race_read_modify_writes(void **state)
{
    struct coblk_dev *dev;
    struct coblk_queue *q;
    unsigned char *bufs = NULL;
    struct iovec iov[DEPTH];
    struct coblk_req reqs[DEPTH], *batch[DEPTH];
    pthread_t writer;
    void *failed;

    if (coblk_dev_open(file_spec(), COBLK_OPEN_DIRECT, &dev) < 0) {
        skip_because("no O_DIRECT on this file system");
    }
    assert_int_equal(posix_memalign((void **)&bufs, 4096,
                                    RMW_BLOCKS * RMW_SPAN), 0);
    memset(bufs, 0x11, RMW_BLOCKS * RMW_SPAN);
    assert_int_equal(coblk_pwrite(dev, bufs, RMW_BLOCKS * RMW_SPAN, 0), 0);
    assert_int_equal(coblk_queue_new(dev, DEPTH, NULL, &q), 0);
    pthread_create(&writer, NULL, rewrite_misaligned, dev);
    unsigned reads = 0;
    for (int pass = 0; pass < 100; pass++) {
        for (unsigned i = 0; i < DEPTH; i++) {
            iov[i] = (struct iovec){ .iov_base = bufs + i * RMW_SPAN,
                                     .iov_len = RMW_SPAN };
            reqs[i] = (struct coblk_req){
                .type = COBLK_REQ_IN, .iov = &iov[i], .iovcnt = 1,
                .sector = (uint64_t)(rng() % RMW_BLOCKS) * (RMW_SPAN / SECTOR) };
            batch[i] = &reqs[i];
        }
        assert_int_equal(coblk_queue_submit(q, batch, DEPTH), DEPTH);
        for (unsigned got = 0; got < DEPTH;) {
            struct coblk_req *done[DEPTH];
            int n = coblk_queue_reap(q, done, 1, DEPTH, -1);
            assert_true(n >= 1);
            for (int i = 0; i < n; i++) {
                assert_int_equal(done[i]->status, COBLK_S_OK);
                check_block_around_rmw(done[i]->iov[0].iov_base);
            }
            got += (unsigned)n;
        }
        reads += DEPTH;
    }
    pthread_join(writer, &failed);
    assert_null(failed);
    assert_int_equal(reads, 100 * DEPTH);
    coblk_queue_free(q);
    /* Afterwards every block holds the last round's bytes. */
    for (int i = 0; i < RMW_BLOCKS; i++) {
        unsigned char back[RMW_SPAN];
        assert_int_equal(coblk_pread(dev, back, sizeof(back),
                                     (uint64_t)i * RMW_SPAN), 0);
        for (int b = 0; b < RMW_SPAN; b++) {
            assert_int_equal(back[b], b >= RMW_AT && b < RMW_AT + RMW_LEN
                                          ? 0x47 : 0x11);
        }
    }
    coblk_dev_close(dev);
    free(bufs);
}

/* An O_DIRECT device on a file of its own, of a size not a multiple of
 * the block size. */
struct sized_image {
    char path[80];
    int fd;                     /* the file, to check its size and bytes */
    struct coblk_dev *dev;
};

/* False where the file system has no O_DIRECT (the test skips). */
static bool open_sized_image(struct sized_image *img, const char *name,
                             off_t size)
{
    char spec[100];

    snprintf(img->path, sizeof(img->path), "/var/tmp/coblk-test-%s-%d.img",
             name, getpid());
    snprintf(spec, sizeof(spec), "file:%s", img->path);
    img->fd = open(img->path, O_CREAT | O_TRUNC | O_RDWR, 0600);
    assert_true(img->fd >= 0);
    assert_int_equal(ftruncate(img->fd, size), 0);
    if (coblk_dev_open(spec, COBLK_OPEN_DIRECT, &img->dev) < 0) {
        close(img->fd);
        unlink(img->path);
        return false;
    }
    return true;
}

static void close_sized_image(struct sized_image *img)
{
    coblk_dev_close(img->dev);
    close(img->fd);
    unlink(img->path);
}

static void assert_file_size(int fd, off_t size)
{
    struct stat st;

    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_size, size);
}

/* A file whose size is not a multiple of the O_DIRECT block size: a
 * read-modify-write of its last, partial block keeps the size. */
static void test_rmw_of_a_partial_last_block_keeps_the_size(void **state)
{
    const off_t size = 4 * 4096 + 1000;
    struct sized_image img;
    unsigned char buf[100], back[1000];

    if (!open_sized_image(&img, "tail", size)) {
        skip_because("no O_DIRECT on this file system");
    }
    memset(buf, 0x5a, sizeof(buf));
    assert_int_equal(coblk_pwrite(img.dev, buf, sizeof(buf), size - 300), 0);
    assert_file_size(img.fd, size);
    assert_int_equal(coblk_pread(img.dev, back, sizeof(back), size - 1000),
                     0);
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(back[i], i >= 700 && i < 800 ? 0x5a : 0);
    }
    /* The whole tail, and a write that ends exactly at the end. */
    assert_int_equal(coblk_pwrite(img.dev, buf, sizeof(buf), size - 100), 0);
    assert_file_size(img.fd, size);
    assert_int_equal(pread(img.fd, back, 100, size - 100), 100);
    assert_memory_equal(back, buf, 100);
    close_sized_image(&img);
}

/* Counted like writes, a bounced queue read waits for a read-modify-write
 * (which may be growing the file past its end for a moment); an aligned
 * one is not counted.  A block of 4 KiB is forced on a file of
 * 4 KiB * 4 + 1 KiB, whose last sector then bounces past the end. */
static void read_counted(struct coblk_queue *q, uint64_t sector,
                         size_t bytes, unsigned char *buf,
                         unsigned expect_in_flight, struct coblk_dev *dev)
{
    struct iovec iov = { .iov_base = buf, .iov_len = bytes };
    struct coblk_req req = { .type = COBLK_REQ_IN, .iov = &iov, .iovcnt = 1,
                             .sector = sector };
    struct coblk_req *reqs[] = { &req }, *done[1];

    assert_int_equal(coblk_queue_submit(q, reqs, 1), 1);
    assert_int_equal(atomic_load(&dev->in_flight), expect_in_flight);
    assert_int_equal(coblk_queue_reap(q, done, 1, 1, -1), 1);
    assert_int_equal(req.status, COBLK_S_OK);
    assert_int_equal(atomic_load(&dev->in_flight), 0);
}

static void test_bounced_reads_wait_for_read_modify_writes(void **state)
{
    const uint64_t size = 4 * 4096 + 1024;
    struct sized_image img;
    struct coblk_queue *q;
    unsigned char *buf = NULL, pattern[SECTOR];

    if (!open_sized_image(&img, "bounce", (off_t)size)) {
        skip_because("no O_DIRECT on this file system");
    }
    struct coblk_dev *dev = img.dev;
    dev->offset_align = 4096;
    memset(pattern, 0x6b, sizeof(pattern));
    assert_int_equal(coblk_pwrite(dev, pattern, SECTOR, size - SECTOR), 0);
    assert_file_size(img.fd, (off_t)size);
    assert_int_equal(posix_memalign((void **)&buf, 4096, 4096), 0);
    assert_int_equal(coblk_queue_new(dev, 4, NULL, &q), 0);
    read_counted(q, 0, 4096, buf, 0, dev);                      /* aligned */
    read_counted(q, size / SECTOR - 1, SECTOR, buf, 1, dev);    /* bounced */
    assert_memory_equal(buf, pattern, SECTOR);
    /* A FUA write there keeps the size too (and makes it durable). */
    memset(buf, 0x3c, SECTOR);
    struct iovec iov = { .iov_base = buf, .iov_len = SECTOR };
    struct coblk_req req = { .type = COBLK_REQ_OUT, .flags = COBLK_REQ_F_FUA,
                             .iov = &iov, .iovcnt = 1,
                             .sector = size / SECTOR - 1 };
    struct coblk_req *reqs[] = { &req }, *done[1];
    assert_int_equal(coblk_queue_submit(q, reqs, 1), 1);
    assert_int_equal(coblk_queue_reap(q, done, 1, 1, -1), 1);
    assert_int_equal(req.status, COBLK_S_OK);
    assert_file_size(img.fd, (off_t)size);
    assert_int_equal(pread(img.fd, pattern, SECTOR, (off_t)(size - SECTOR)),
                     SECTOR);
    assert_memory_equal(pattern, buf, SECTOR);
    coblk_queue_free(q);
    close_sized_image(&img);
    free(buf);
}

/* Two queues share the thread's context; freeing one keeps it. */
static void test_queues_share_the_thread_context(void **state)
{
    struct coblk_dev *dev;
    struct coblk_queue *q1, *q2;
    char buf[SECTOR];
    struct iovec iov = { .iov_base = buf, .iov_len = SECTOR };
    struct coblk_req req = { .type = COBLK_REQ_IN, .iov = &iov, .iovcnt = 1 };
    struct coblk_req *reqs[] = { &req }, *done[1];

    assert_int_equal(coblk_dev_open("null:size=1M", 0, &dev), 0);
    assert_int_equal(coblk_queue_new(dev, 4, NULL, &q1), 0);
    assert_int_equal(coblk_queue_new(dev, 4, NULL, &q2), 0);
    coblk_queue_free(q1);
    assert_int_equal(coblk_queue_submit(q2, reqs, 1), 1);
    assert_int_equal(coblk_queue_reap(q2, done, 1, 1, -1), 1);
    assert_int_equal(req.status, COBLK_S_OK);
    coblk_queue_free(q2);
    coblk_dev_close(dev);
}

static void test_queue_bad_arguments(void **state)
{
    struct coblk_dev *dev;
    struct coblk_queue *q;
    struct coblk_req *done[1];

    assert_int_equal(coblk_dev_open("null:size=1M", 0, &dev), 0);
    assert_int_equal(coblk_queue_new(dev, 0, NULL, &q), -EINVAL);
    assert_int_equal(coblk_queue_new(NULL, 4, NULL, &q), -EINVAL);
    assert_int_equal(coblk_queue_new(dev, 65537, NULL, &q), -EINVAL);
    /* Past what the memory maps allow: the limit that applies, and what
     * counts against it, in the message. */
    co_pool_stats pool;
    co_pool_get_stats(&pool);
    unsigned others = pool.reserve_max - 100 - pool.reserved;
    assert_int_equal(coblk_co_pool_reserve(others), 0);
    assert_int_equal(coblk_queue_new(dev, 100, NULL, &q), 0);
    coblk_queue_free(q);
    assert_int_equal(coblk_queue_new(dev, 101, NULL, &q), -E2BIG);
    char expect[200];
    snprintf(expect, sizeof(expect), "depth 101 on top of the %u "
             "coroutines other queues reserved passes the %u the system's "
             "memory maps allow", pool.reserved + others, pool.reserve_max);
    if (!strstr(coblk_last_error(), expect)) {
        fail_msg("\"%s\" not in \"%s\"", expect, coblk_last_error());
    }
    coblk_co_pool_unreserve(others);
    assert_int_equal(coblk_queue_new(dev, 4, NULL, &q), 0);
    assert_int_equal(coblk_queue_submit(q, NULL, 1), -EINVAL);
    assert_int_equal(coblk_queue_reap(q, done, 2, 1, 0), -EINVAL);
    /* Nothing outstanding: returns at once with none. */
    assert_int_equal(coblk_queue_reap(q, done, 1, 1, -1), 0);
    coblk_queue_free(q);
    coblk_dev_close(dev);
}

/* ---- blkdebug -------------------------------------------------------------------- */

static char *blkdebug_spec(const char *rules)
{
    static char spec[200];

    snprintf(spec, sizeof(spec), "blkdebug:%s:file:%s", rules, image);
    return spec;
}

static void test_blkdebug_rejects_bad_rules(void **state)
{
    expect_open_error("blkdebug:", 0, -EINVAL, "expected blkdebug:RULES:CHILD");
    expect_open_error("blkdebug:event=read:", 0, -EINVAL,
                      "expected blkdebug:RULES:CHILD");
    expect_open_error("blkdebug:event=foo:null:size=1M", 0, -EINVAL,
                      "bad event 'foo'");
    expect_open_error("blkdebug:bogus=1:null:size=1M", 0, -EINVAL,
                      "unknown rule option 'bogus'");
    expect_open_error("blkdebug:errno=EWHAT:null:size=1M", 0, -EINVAL,
                      "or a number from 1 to 4095, not 'EWHAT'");
    expect_open_error("blkdebug:prob=2:null:size=1M", 0, -EINVAL,
                      "prob must be from 0 to 1, not '2'");
    expect_open_error("blkdebug:errno=EIO:null:", 0, -EINVAL,
                      "size= is required");
}

/* Reads n single sectors through a queue; returns the failures, each
 * checked to be IOERR with -err, and every request reaped exactly once. */
static int count_failures(struct coblk_dev *dev, unsigned n, int err)
{
    struct coblk_queue *q;
    struct coblk_req *reqs = calloc(n, sizeof(*reqs));
    struct coblk_req **ptrs = calloc(n, sizeof(*ptrs));
    unsigned char *seen = calloc(n, 1);
    static char buf[SECTOR];
    struct iovec iov = { .iov_base = buf, .iov_len = SECTOR };
    int failures = 0;

    assert_int_equal(coblk_queue_new(dev, 8, NULL, &q), 0);
    for (unsigned i = 0; i < n; i++) {
        reqs[i] = (struct coblk_req){ .type = COBLK_REQ_IN, .sector = i,
                                      .iov = &iov, .iovcnt = 1,
                                      .opaque = &seen[i] };
        ptrs[i] = &reqs[i];
    }
    unsigned submitted = 0, reaped = 0;
    while (reaped < n) {
        int taken = coblk_queue_submit(q, ptrs + submitted, n - submitted);
        assert_true(taken >= 0);
        submitted += (unsigned)taken;
        struct coblk_req *done[8];
        int got = coblk_queue_reap(q, done, 1, 8, -1);
        for (int i = 0; i < got; i++) {
            unsigned char *mark = done[i]->opaque;
            assert_int_equal(*mark, 0);     /* exactly once */
            *mark = 1;
            if (done[i]->status != COBLK_S_OK) {
                assert_int_equal(done[i]->status, COBLK_S_IOERR);
                assert_int_equal(done[i]->error, -err);
                failures++;
            }
        }
        reaped += (unsigned)got;
    }
    coblk_queue_free(q);
    free(seen);
    free(ptrs);
    free(reqs);
    return failures;
}

static void test_blkdebug_errors(void **state)
{
    struct coblk_dev *dev;
    char buf[SECTOR];

    assert_int_equal(coblk_dev_open(blkdebug_spec("event=read,errno=EIO,"
                                                  "every=3"), 0, &dev), 0);
    assert_int_equal(count_failures(dev, 30, EIO), 10);
    /* Writes are not read events: they all pass. */
    assert_int_equal(coblk_pwrite(dev, buf, SECTOR, 0), 0);
    coblk_dev_close(dev);

    assert_int_equal(coblk_dev_open(blkdebug_spec("event=read,once,"
                                                  "errno=ENOSPC"), 0, &dev),
                     0);
    assert_int_equal(count_failures(dev, 20, ENOSPC), 1);
    assert_int_equal(count_failures(dev, 20, ENOSPC), 0);  /* still usable */
    coblk_dev_close(dev);

    /* An offset range: only sectors 4 and 5 fail. */
    assert_int_equal(coblk_dev_open(blkdebug_spec("offset=2048,len=1024,"
                                                  "errno=5"), 0, &dev), 0);
    assert_int_equal(count_failures(dev, 16, EIO), 2);
    coblk_dev_close(dev);

    assert_int_equal(coblk_dev_open(blkdebug_spec("event=flush,errno=EIO"), 0,
                                    &dev), 0);
    assert_int_equal(coblk_flush(dev), -EIO);
    coblk_dev_close(dev);
}

/* `levels` blkdebug filters over the test image. */
static char *nested_spec(unsigned levels)
{
    static const char level[] = "blkdebug:event=flush,errno=EIO:";
    char *spec = malloc(levels * strlen(level) + strlen(file_spec()) + 1);

    spec[0] = '\0';
    for (unsigned i = 0; i < levels; i++) {
        strcat(spec, level);
    }
    strcat(spec, file_spec());
    return spec;
}

/* The graph's depth is capped with a message, not a stack overflow in the
 * first request; at the cap, requests go through every level. */
/* raw:probed=on: no write may make the image look like a format that
 * names other files; without probed=on, any may. */
static void test_probed_raw_stays_raw(void **state)
{
    struct coblk_dev *dev;
    char spec[96], head[512] = "QFI\xfb\0\0\0\3", data[512];

    snprintf(spec, sizeof(spec), "raw:probed=on:file:%s", image);
    assert_int_equal(coblk_dev_open(spec, 0, &dev), 0);
    assert_int_equal(coblk_pwrite(dev, head, sizeof(head), 0), -EPERM);
    assert_non_null(strstr(coblk_last_error(), "format was guessed"));
    /* Byte by byte, too: each write sees the bytes before it. */
    assert_int_equal(coblk_pwrite(dev, "QFI", 3, 0), 0);
    assert_int_equal(coblk_pwrite(dev, "\xfb", 1, 3), -EPERM);
    memset(data, 0x42, sizeof(data));
    assert_int_equal(coblk_pwrite(dev, data, sizeof(data), 0), 0);
    assert_int_equal(coblk_pwrite(dev, head, sizeof(head), 4096), 0);
    /* A queue's write, which may otherwise go to the file as it is. */
    struct iovec iov = { .iov_base = head, .iov_len = sizeof(head) };
    expect_request(dev, (struct coblk_req){ .type = COBLK_REQ_OUT,
                                            .iov = &iov, .iovcnt = 1 },
                   COBLK_S_IOERR, -EPERM);
    assert_int_equal(coblk_pread(dev, data, sizeof(data), 0), 0);
    assert_int_equal(data[0], 0x42);
    coblk_dev_close(dev);
    snprintf(spec, sizeof(spec), "raw:file:%s", image);
    assert_int_equal(coblk_dev_open(spec, 0, &dev), 0);
    assert_int_equal(coblk_pwrite(dev, head, sizeof(head), 0), 0);
    coblk_dev_close(dev);
    expect_open_error("raw:probed=maybe:null:size=1M", 0, -EINVAL,
                      "probed is on or off");
}

/* A raw window's queue requests land at its offset in the file, and
 * stop at its end. */
static void test_raw_window_through_a_queue(void **state)
{
    struct coblk_dev *raw, *file;
    char spec[128], out[2 * SECTOR], in[2 * SECTOR];
    struct iovec iov = { .iov_base = out, .iov_len = sizeof(out) };

    snprintf(spec, sizeof(spec), "raw:offset=4096,size=8192:file:%s", image);
    assert_int_equal(coblk_dev_open(spec, 0, &raw), 0);
    assert_int_equal(coblk_dev_open(file_spec(), 0, &file), 0);
    memset(out, 0x6c, sizeof(out));
    expect_request(raw, (struct coblk_req){ .type = COBLK_REQ_OUT,
                                            .sector = 1, .iov = &iov,
                                            .iovcnt = 1 },
                   COBLK_S_OK, 0);
    assert_int_equal(coblk_pread(file, in, sizeof(in), 4096 + SECTOR), 0);
    assert_memory_equal(in, out, sizeof(in));
    memset(out, 0x6d, sizeof(out));
    assert_int_equal(coblk_pwrite(file, out, sizeof(out), 4096 + 4 * SECTOR),
                     0);
    iov.iov_base = in;
    expect_request(raw, (struct coblk_req){ .type = COBLK_REQ_IN,
                                            .sector = 4, .iov = &iov,
                                            .iovcnt = 1 },
                   COBLK_S_OK, 0);
    assert_memory_equal(in, out, sizeof(in));
    expect_request(raw, (struct coblk_req){ .type = COBLK_REQ_IN,
                                            .sector = 15, .iov = &iov,
                                            .iovcnt = 1 },
                   COBLK_S_IOERR, -EINVAL);
    coblk_dev_close(raw);
    coblk_dev_close(file);
}

/* A raw window off the O_DIRECT blocks (odd offset, odd size, as a raw
 * file of 1000 bytes is): every byte of it reads and writes, none outside
 * it, and the file keeps its size. */
static void test_raw_window_off_the_direct_blocks(void **state)
{
    const off_t size = 3 * 4096 + 1000;
    struct sized_image img;
    struct coblk_dev *raw;
    char spec[120];
    unsigned char fill[3000], in[3000], file[3000];

    if (!open_sized_image(&img, "window", size)) {
        skip_because("no O_DIRECT on this file system");
    }
    memset(fill, 0x11, sizeof(fill));
    assert_int_equal(pwrite(img.fd, fill, sizeof(fill), size - 3000), 3000);
    snprintf(spec, sizeof(spec), "raw:offset=%lld,size=2001:file:%s",
             (long long)size - 2500, img.path);
    assert_int_equal(coblk_dev_open(spec, COBLK_OPEN_DIRECT, &raw), 0);
    assert_int_equal(coblk_dev_size(raw), 2001);
    for (unsigned i = 0; i < sizeof(in); i++) {
        in[i] = (unsigned char)(i * 7 + 1);
    }
    assert_int_equal(coblk_pwrite(raw, in, 2001, 0), 0);
    assert_int_equal(coblk_pread(raw, file, 2001, 0), 0);
    assert_memory_equal(file, in, 2001);
    assert_int_equal(coblk_pread(raw, file, 1, 2000), 0);
    assert_int_equal(file[0], in[2000]);
    assert_int_equal(coblk_pread(raw, file, 2, 2000), -EINVAL);
    assert_int_equal(coblk_pwrite(raw, in, 2, 2000), -EINVAL);
    /* In the file: 500 bytes of 0x11, the window, 499 of 0x11. */
    assert_int_equal(pread(img.fd, file, 3000, size - 3000), 3000);
    assert_memory_equal(file, fill, 500);
    assert_memory_equal(file + 500, in, 2001);
    assert_memory_equal(file + 2501, fill, 499);
    assert_file_size(img.fd, size);
    coblk_dev_close(raw);
    close_sized_image(&img);
}

static void test_graph_depth_is_capped(void **state)
{
    struct coblk_dev *dev;
    char *spec = nested_spec(BLK_DEPTH_MAX + 1);
    char out[4096], in[4096];

    expect_open_error(spec, 0, -EINVAL, "the device graph is deeper than 64 "
                      "levels at 'file:");
    free(spec);
    spec = nested_spec(2000);
    expect_open_error(spec, 0, -EINVAL, "deeper than 64 levels");
    free(spec);

    spec = nested_spec(BLK_DEPTH_MAX);
    assert_int_equal(coblk_dev_open(spec, 0, &dev), 0);
    memset(out, 0x3d, sizeof(out));
    struct iovec iov = { .iov_base = out, .iov_len = sizeof(out) };
    expect_request(dev, (struct coblk_req){ .type = COBLK_REQ_OUT,
                                            .sector = 24, .iov = &iov,
                                            .iovcnt = 1 },
                   COBLK_S_OK, 0);
    iov.iov_base = in;
    expect_request(dev, (struct coblk_req){ .type = COBLK_REQ_IN,
                                            .sector = 24, .iov = &iov,
                                            .iovcnt = 1 },
                   COBLK_S_OK, 0);
    assert_memory_equal(in, out, sizeof(in));
    expect_request(dev, (struct coblk_req){ .type = COBLK_REQ_FLUSH },
                   COBLK_S_IOERR, -EIO);
    coblk_dev_close(dev);
    free(spec);
}

static void test_blkdebug_probability_is_seeded(void **state)
{
    struct coblk_dev *a, *b;

    assert_int_equal(coblk_dev_open("blkdebug:prob=0.25,seed=7,errno=EIO:"
                                    "null:size=1M", 0, &a), 0);
    assert_int_equal(coblk_dev_open("blkdebug:prob=0.25,seed=7,errno=EIO:"
                                    "null:size=1M", 0, &b), 0);
    int fa = count_failures(a, 400, EIO);
    int fb = count_failures(b, 400, EIO);
    assert_int_equal(fa, fb);
    assert_true(fa > 60 && fa < 140);       /* about 100 */
    coblk_dev_close(a);
    coblk_dev_close(b);
}

static void test_blkdebug_short_transfers_keep_data(void **state)
{
    /* Every read and write split in two; the data must not change. */
    run_integrity(blkdebug_spec("event=write,short=512;event=read,"
                                "short=1024"), 0, true, false, 2000);
}

static void test_blkdebug_delay(void **state)
{
    struct coblk_dev *dev;
    char buf[SECTOR];
    struct timespec t0, t1;

    assert_int_equal(coblk_dev_open("blkdebug:delay-ns=5000000:null:size=1M",
                                    0, &dev), 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(coblk_pread(dev, buf, SECTOR, 0), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ns = (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
    assert_true(ns >= 5e6);
    coblk_dev_close(dev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_rejects_bad_specs),
        cmocka_unit_test(test_open_rejects_numbers_out_of_range),
        cmocka_unit_test(test_open_refuses_a_fifo_without_blocking),
        cmocka_unit_test(test_open_sizes),
        cmocka_unit_test(test_integrity_file_buffered),
        cmocka_unit_test(test_integrity_file_direct),
        cmocka_unit_test(test_integrity_null),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_null_pointers_are_errors),
        cmocka_unit_test(test_submit_stops_at_a_null_request),
        cmocka_unit_test(test_get_id),
        cmocka_unit_test(test_read_only_device),
        cmocka_unit_test(test_write_zeroes_and_discard),
        cmocka_unit_test(test_sync_helpers),
        cmocka_unit_test(test_null_reads_zeroes_unless_told_not_to),
        cmocka_unit_test_teardown(test_read_past_shrunk_file_is_zero,
                                  restore_image),
        cmocka_unit_test_teardown(test_queue_read_past_shrunk_file_is_zero,
                                  restore_image),
        cmocka_unit_test_teardown(test_queue_write_error_reaches_the_request,
                                  restore_image),
        cmocka_unit_test(test_queue_ioprio_reaches_the_kernel),
        cmocka_unit_test(test_two_queues_on_two_iothreads),
        cmocka_unit_test(test_close_drains_requests_in_flight),
        cmocka_unit_test(test_close_refuses_while_queues_are_open),
        cmocka_unit_test(test_registered_buffers),
        cmocka_unit_test(test_many_iovecs_are_split),
        cmocka_unit_test(test_fixed_files_are_given_back),
        cmocka_unit_test(test_queue_fd_is_readable_while_completions_wait),
        cmocka_unit_test(test_longer_iovec_transfers_only_bytes),
        cmocka_unit_test(test_concurrent_read_modify_writes),
        cmocka_unit_test(test_read_modify_write_waits_only_for_overlaps),
        cmocka_unit_test(test_read_modify_write_is_not_starved),
        cmocka_unit_test(test_reads_race_read_modify_writes),
        cmocka_unit_test(test_rmw_of_a_partial_last_block_keeps_the_size),
        cmocka_unit_test(test_bounced_reads_wait_for_read_modify_writes),
        cmocka_unit_test(test_queues_share_the_thread_context),
        cmocka_unit_test(test_queue_bad_arguments),
        cmocka_unit_test(test_blkdebug_rejects_bad_rules),
        cmocka_unit_test(test_blkdebug_errors),
        cmocka_unit_test(test_probed_raw_stays_raw),
        cmocka_unit_test(test_raw_window_through_a_queue),
        cmocka_unit_test(test_raw_window_off_the_direct_blocks),
        cmocka_unit_test(test_graph_depth_is_capped),
        cmocka_unit_test(test_blkdebug_probability_is_seeded),
        cmocka_unit_test(test_blkdebug_short_transfers_keep_data),
        cmocka_unit_test(test_blkdebug_delay),
    };

    return tests_exit_status(cmocka_run_group_tests_name("blk", tests,
                                                         make_image,
                                                         remove_image));
}
