/*
 * null:size=SIZE[,latency-ns=N]: completes every request without I/O;
 * reads return zeroes.  Measures the engine's own cost, like fio's null
 * engine; latency-ns makes each request wait on a timer first.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "blk-int.h"

typedef struct null_state {
    uint64_t latency_ns;
} null_state;

struct null_options {
    uint64_t size;
    uint64_t latency_ns;
    bool have_size;
};

static int null_option(void *opaque, const char *key, const char *value)
{
    struct null_options *opts = opaque;

    if (!strcmp(key, "size")) {
        if (blk_parse_size(value, &opts->size) < 0) {
            return blk_error(-EINVAL, "null: bad size '%s' (e.g. 1G, 512M)",
                             value);
        }
        opts->have_size = true;
        return 0;
    }
    if (!strcmp(key, "latency-ns")) {
        char *end;
        opts->latency_ns = strtoull(value, &end, 10);
        if (!*value || *end) {
            return blk_error(-EINVAL, "null: bad latency-ns '%s'", value);
        }
        return 0;
    }
    return blk_error(-EINVAL, "null: unknown option '%s' (size, latency-ns)",
                     key);
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
    iov_memset(iov, iovcnt, 0, 0, bytes);
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
