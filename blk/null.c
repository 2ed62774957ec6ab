/*
 * null:size=SIZE[,latency-ns=N][,read-zeroes=on|off]: completes every
 * request without I/O; reads return zeroes, or with read-zeroes=off leave
 * the buffer as it was (as fio's null engine and QEMU's null-co do).
 * Measures the engine's own cost; latency-ns makes each request wait on a
 * timer first.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "blk-int.h"

typedef struct null_state {
    uint64_t latency_ns;
    bool read_zeroes;
} null_state;

struct null_options {
    uint64_t size;
    uint64_t latency_ns;
    bool have_size;
    bool keep_buffers;          /* read-zeroes=off */
};

static int null_option(void *opaque, const char *key, const char *value)
{
    struct null_options *opts = opaque;

    if (!strcmp(key, "size")) {
        /* coblk_dev_size() answers in an int64_t. */
        if (blk_parse_size(value, &opts->size) < 0 ||
            opts->size > INT64_MAX) {
            return blk_error(-EINVAL, "null: bad size '%s' (e.g. 1G, 512M; "
                             "at most %lld bytes)", value,
                             (long long)INT64_MAX);
        }
        opts->have_size = true;
        return 0;
    }
    if (!strcmp(key, "latency-ns")) {
        return blk_parse_number("null", key, value, 0, BLK_DELAY_MAX_NS,
                                &opts->latency_ns);
    }
    if (!strcmp(key, "read-zeroes")) {
        bool off = !strcmp(value, "off") || !strcmp(value, "0");
        if (!off && strcmp(value, "on") && strcmp(value, "1")) {
            return blk_error(-EINVAL, "null: read-zeroes is on or off, not "
                             "'%s'", value);
        }
        opts->keep_buffers = off;
        return 0;
    }
    return blk_error(-EINVAL, "null: unknown option '%s' (size, latency-ns, "
                     "read-zeroes)", key);
}

static int null_open(struct coblk_dev *dev, const char *args)
{
    struct null_options opts = { 0 };
    int ret = blk_parse_options(args, null_option, &opts);
    if (ret < 0) {
        return ret;
    }
    if (!opts.have_size) {
        return blk_error(-EINVAL, "null: size= is required (null:size=1G)");
    }
    null_state *s = calloc(1, sizeof(*s));
    if (!s) {
        return blk_error(-ENOMEM, "out of memory");
    }
    s->latency_ns = opts.latency_ns;
    s->read_zeroes = !opts.keep_buffers;
    dev->opaque = s;
    dev->size = opts.size;
    return 0;
}

static void null_close(struct coblk_dev *dev)
{
    free(dev->opaque);
}

static int coroutine_fn null_wait(struct coblk_dev *dev)
{
    null_state *s = dev->opaque;

    return s->latency_ns ? coblk_co_sleep_ns(s->latency_ns) : 0;
}

static int coroutine_fn null_preadv(struct coblk_dev *dev, uint64_t offset,
                                    uint64_t bytes, const struct iovec *iov,
                                    unsigned iovcnt)
{
    null_state *s = dev->opaque;

    if (s->read_zeroes) {
        iov_memset(iov, iovcnt, 0, 0, bytes);
    }
    return null_wait(dev);
}

static int coroutine_fn null_pwritev(struct coblk_dev *dev, uint64_t offset,
                                     uint64_t bytes, const struct iovec *iov,
                                     unsigned iovcnt, int req_flags)
{
    return null_wait(dev);
}

static int coroutine_fn null_flush(struct coblk_dev *dev)
{
    return null_wait(dev);
}

static int coroutine_fn null_pdiscard(struct coblk_dev *dev, uint64_t offset,
                                      uint64_t bytes)
{
    return null_wait(dev);
}

static int coroutine_fn null_pwrite_zeroes(struct coblk_dev *dev,
                                           uint64_t offset, uint64_t bytes,
                                           int req_flags)
{
    return null_wait(dev);
}

const blk_driver blk_null_driver = {
    .name = "null",
    .open = null_open,
    .close = null_close,
    .co_preadv = null_preadv,
    .co_pwritev = null_pwritev,
    .co_flush = null_flush,
    .co_pdiscard = null_pdiscard,
    .co_pwrite_zeroes = null_pwrite_zeroes,
};
