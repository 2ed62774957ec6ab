/*
 * Block layer tests: opening specs, data integrity against a shadow buffer
 * at queue depth 64 (file buffered and O_DIRECT, null), every bad request
 * with its exact status and errno, drain, and queues on iothreads.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "blk-int.h"

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
    expect_open_error("file:/nonexistent/coblk.img", 0, -ENOENT,
                      "/nonexistent/coblk.img");
    expect_open_error("file:/dev/null", 0, -EINVAL,
                      "not a regular file or block device");
    expect_open_error("null:size=1G", 1 << 9, -EINVAL, "unknown flags");
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
    size_t bytes = iov_size(req->iov, req->iovcnt);

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
        skip();     /* no O_DIRECT on this file system */
    }
    coblk_dev_close(dev);
    /* Misaligned buffers go through bounce buffers. */
    run_integrity(file_spec(), COBLK_OPEN_DIRECT, true, true, 4000);
}

static void test_integrity_null(void **state)
{
    run_integrity("null:size=8M", 0, false, true, 4000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_rejects_bad_specs),
        cmocka_unit_test(test_open_sizes),
        cmocka_unit_test(test_integrity_file_buffered),
        cmocka_unit_test(test_integrity_file_direct),
        cmocka_unit_test(test_integrity_null),
    };

    return cmocka_run_group_tests_name("blk", tests, make_image,
                                       remove_image);
}
