/*
 * iovec helpers for the block layer.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#ifdef HAVE_VALGRIND_VALGRIND_H
#include <valgrind/memcheck.h>
#endif

#include "blk-int.h"

int iov_measure_any(const struct iovec *iov, unsigned iovcnt,
                    uint64_t *bytes)
{
    uint64_t total = 0;

    if (iovcnt && !iov) {
        return -EINVAL;
    }
    for (unsigned i = 0; i < iovcnt; i++) {
        if (!iov[i].iov_base && iov[i].iov_len) {
            return -EFAULT;
        }
        total = iov[i].iov_len > UINT64_MAX - total ? UINT64_MAX
                                                    : total + iov[i].iov_len;
    }
    *bytes = total;
    return 0;
}

/* Walks bytes at skip of iov, calling fn on each piece. */
static size_t iov_walk(const struct iovec *iov, unsigned iovcnt, size_t skip,
                       size_t bytes,
                       void (*fn)(void *base, size_t len, size_t done,
                                  void *opaque),
                       void *opaque)
{
    size_t done = 0;

    for (unsigned i = 0; i < iovcnt && done < bytes; i++) {
        if (skip >= iov[i].iov_len) {
            skip -= iov[i].iov_len;
            continue;
        }
        size_t len = iov[i].iov_len - skip;
        if (len > bytes - done) {
            len = bytes - done;
        }
        fn((char *)iov[i].iov_base + skip, len, done, opaque);
        done += len;
        skip = 0;
    }
    return done;
}

static void copy_in(void *base, size_t len, size_t done, void *buf)
{
    memcpy(base, (const char *)buf + done, len);
}

static void copy_out(void *base, size_t len, size_t done, void *buf)
{
    memcpy((char *)buf + done, base, len);
}

static void fill(void *base, size_t len, size_t done, void *c)
{
    memset(base, *(int *)c, len);
}

size_t iov_from_buf(const struct iovec *iov, unsigned iovcnt, size_t skip,
                    const void *buf, size_t bytes)
{
    return iov_walk(iov, iovcnt, skip, bytes, copy_in, (void *)buf);
}

size_t iov_to_buf(const struct iovec *iov, unsigned iovcnt, size_t skip,
                  void *buf, size_t bytes)
{
    return iov_walk(iov, iovcnt, skip, bytes, copy_out, buf);
}

void iov_memset(const struct iovec *iov, unsigned iovcnt, size_t skip, int c,
                size_t bytes)
{
    iov_walk(iov, iovcnt, skip, bytes, fill, &c);
}

unsigned iov_slice(const struct iovec *iov, unsigned iovcnt, size_t skip,
                   size_t bytes, struct iovec *out, unsigned out_max,
                   size_t *covered)
{
    unsigned used = 0;
    size_t total = 0;

    for (unsigned i = 0; i < iovcnt && total < bytes && used < out_max;
         i++) {
        if (skip >= iov[i].iov_len) {
            skip -= iov[i].iov_len;
            continue;
        }
        size_t len = iov[i].iov_len - skip;
        if (len > bytes - total) {
            len = bytes - total;
        }
        out[used].iov_base = (char *)iov[i].iov_base + skip;
        out[used].iov_len = len;
        used++;
        total += len;
        skip = 0;
    }
    if (covered) {
        *covered = total;
    }
    return used;
}

void iov_mark_defined(const struct iovec *iov, unsigned iovcnt, size_t bytes)
{
#ifdef HAVE_VALGRIND_VALGRIND_H
    for (unsigned i = 0; i < iovcnt && bytes > 0; i++) {
        size_t len = iov[i].iov_len < bytes ? iov[i].iov_len : bytes;
        VALGRIND_MAKE_MEM_DEFINED(iov[i].iov_base, len);
        bytes -= len;
    }
#else
    (void)iov;
    (void)iovcnt;
    (void)bytes;
#endif
}
