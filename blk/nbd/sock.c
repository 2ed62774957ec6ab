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

/* Moves every byte of iov through the socket, one way: as many
 * sendmsg / recvmsg as it takes. */
static int coroutine_fn transfer(int fd, struct iovec *iov, unsigned iovcnt,
                                 bool sending)
{
    coblk_aio *ctx = aio_co_context();

    if (!ctx) {
        return -EPERM;
    }
    iov = iov_advance(iov, &iovcnt, 0);     /* skip empty leading parts */
    while (iovcnt > 0) {
        struct msghdr msg = { .msg_iov = iov, .msg_iovlen = iovcnt };
        aio_co_request req;
        struct io_uring_sqe *sqe = aio_co_prep(ctx, &req);
        if (sending) {
            io_uring_prep_sendmsg(sqe, fd, &msg, MSG_NOSIGNAL);
        } else {
            io_uring_prep_recvmsg(sqe, fd, &msg, MSG_WAITALL);
        }
        int res = aio_co_wait(&req);
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
    return transfer(fd, &iov, 1, false);
}

/* One receive; with a limit, a linked timeout cancels it. */
static int coroutine_fn recv_once(coblk_aio *ctx, int fd, void *buf,
                                  size_t len, uint64_t limit_ns)
{
    aio_co_request req, limit;

    if (!limit_ns) {
        io_uring_prep_recv(aio_co_prep(ctx, &req), fd, buf, len, 0);
        return aio_co_wait(&req);
    }
    struct __kernel_timespec ts = {
        .tv_sec = (long long)(limit_ns / 1000000000u),
        .tv_nsec = (long long)(limit_ns % 1000000000u),
    };
    struct io_uring_sqe *sqes[2];
    aio_co_prep_linked(ctx, &req, &limit, sqes);
    io_uring_prep_recv(sqes[0], fd, buf, len, 0);
    sqes[0]->flags |= IOSQE_IO_LINK;
    io_uring_prep_link_timeout(sqes[1], &ts, 0);
    int res = aio_co_wait(&req);
    int timer = aio_co_wait(&limit);
    return res == -ECANCELED && timer == -ETIME ? -ETIMEDOUT : res;
}

int coroutine_fn nbd_co_recv_some(int fd, void *buf, size_t len,
                                  uint64_t limit_ns)
{
    coblk_aio *ctx = aio_co_context();

    if (!ctx) {
        return -EPERM;
    }
    for (;;) {
        int res = recv_once(ctx, fd, buf, len, limit_ns);
        if (res == -EINTR || res == -EAGAIN) {
            continue;
        }
        if (res > 0) {
            struct iovec iov = { buf, (size_t)res };
            iov_mark_defined(&iov, 1, (size_t)res);
        }
        return res == 0 ? -ECONNRESET : res;
    }
}

int coroutine_fn nbd_co_recvv(int fd, struct iovec *iov, unsigned iovcnt)
{
    return transfer(fd, iov, iovcnt, false);
}

int coroutine_fn nbd_co_sendv(int fd, struct iovec *iov, unsigned iovcnt)
{
    return transfer(fd, iov, iovcnt, true);
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
