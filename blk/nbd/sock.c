/*
 * Stream socket I/O on the ring (see sock.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "aio-int.h"
#include "blk-int.h"
#include "sock.h"

/* Drops the first n bytes of the iovec; returns the new start. */
static struct iovec *iov_advance(struct iovec *iov, unsigned *iovcnt,
                                 size_t n)
{
    while (*iovcnt > 0 && n >= iov->iov_len) {
        n -= iov->iov_len;
        iov++;
        (*iovcnt)--;
    }
    if (*iovcnt > 0) {
        iov->iov_base = (char *)iov->iov_base + n;
        iov->iov_len -= n;
    }
    return iov;
}

/* One sendmsg or recvmsg (MSG_WAITALL with all); with a limit, a linked
 * timeout cancels it: -ETIMEDOUT. */
static int coroutine_fn msg_once(coblk_aio *ctx, int fd, struct msghdr *msg,
                                 bool sending, bool all, uint64_t limit_ns)
{
    aio_co_request req, limit;
    struct io_uring_sqe *sqes[2];
    struct __kernel_timespec ts = {
        .tv_sec = (long long)(limit_ns / 1000000000u),
        .tv_nsec = (long long)(limit_ns % 1000000000u),
    };

    if (limit_ns) {
        aio_co_prep_linked(ctx, &req, &limit, sqes);
    } else {
        sqes[0] = aio_co_prep(ctx, &req);
    }
    if (sending) {
        io_uring_prep_sendmsg(sqes[0], fd, msg, MSG_NOSIGNAL);
    } else {
        io_uring_prep_recvmsg(sqes[0], fd, msg, all ? MSG_WAITALL : 0);
    }
    if (!limit_ns) {
        return aio_co_wait(&req);
    }
    sqes[0]->flags |= IOSQE_IO_LINK;
    io_uring_prep_link_timeout(sqes[1], &ts, 0);
    int res = aio_co_wait(&req);
    int timer = aio_co_wait(&limit);
    return res == -ECANCELED && timer == -ETIME ? -ETIMEDOUT : res;
}

/* Moves every byte of iov through the socket, one way: as many
 * sendmsg / recvmsg as it takes; receiving, each within limit_ns (0:
 * none). */
static int coroutine_fn transfer(int fd, struct iovec *iov, unsigned iovcnt,
                                 bool sending, uint64_t limit_ns)
{
    coblk_aio *ctx = aio_co_context();

    if (!ctx) {
        return -EPERM;
    }
    iov = iov_advance(iov, &iovcnt, 0);     /* skip empty leading parts */
    while (iovcnt > 0) {
        struct msghdr msg = { .msg_iov = iov, .msg_iovlen = iovcnt };
        /* Limited: what has arrived each time, so that the limit is on
         * silence, not on the whole transfer. */
        int res = msg_once(ctx, fd, &msg, sending, !limit_ns,
                           sending ? 0 : limit_ns);
        if (res == -EINTR || res == -EAGAIN) {
            continue;
        }
        if (res < 0) {
            return res;
        }
        if (res == 0) {
            return sending ? -EPIPE : -ECONNRESET;
        }
        if (!sending) {
            iov_mark_defined(iov, iovcnt, (size_t)res);
        }
        iov = iov_advance(iov, &iovcnt, (size_t)res);
    }
    return 0;
}

int coroutine_fn nbd_co_recv(int fd, void *buf, size_t len)
{
    struct iovec iov = { buf, len };
    return transfer(fd, &iov, 1, false, 0);
}

int coroutine_fn nbd_co_recv_some(int fd, void *buf, size_t len,
                                  uint64_t limit_ns)
{
    coblk_aio *ctx = aio_co_context();

    if (!ctx) {
        return -EPERM;
    }
    for (;;) {
        struct iovec iov = { buf, len };
        struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
        int res = msg_once(ctx, fd, &msg, false, false, limit_ns);
        if (res == -EINTR || res == -EAGAIN) {
            continue;
        }
        if (res > 0) {
            iov_mark_defined(&iov, 1, (size_t)res);
        }
        return res == 0 ? -ECONNRESET : res;
    }
}

int coroutine_fn nbd_co_recvv(int fd, struct iovec *iov, unsigned iovcnt,
                              uint64_t limit_ns)
{
    return transfer(fd, iov, iovcnt, false, limit_ns);
}

int coroutine_fn nbd_co_sendv(int fd, struct iovec *iov, unsigned iovcnt)
{
    return transfer(fd, iov, iovcnt, true, 0);
}

int coroutine_fn nbd_co_accept(int listen_fd)
{
    coblk_aio *ctx = aio_co_context();

    if (!ctx) {
        return -EPERM;
    }
    aio_co_request req;
    io_uring_prep_accept(aio_co_prep(ctx, &req), listen_fd, NULL, NULL,
                         SOCK_CLOEXEC);
    return aio_co_wait(&req);
}
