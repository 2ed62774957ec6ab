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

/* One operation of the current coroutine, with a time limit or none:
 * limited_prep() gives its SQE to prepare, limited_wait() links the
 * timeout behind it (prep cleared the flags) and waits for both. */
struct limited {
    aio_co_request req, timer;
    struct io_uring_sqe *sqes[2];
    struct __kernel_timespec ts;
    uint64_t limit_ns;
};

static struct io_uring_sqe *limited_prep(coblk_aio *ctx, struct limited *l,
                                         uint64_t limit_ns)
{
    l->limit_ns = limit_ns;
    if (limit_ns) {
        aio_co_prep_linked(ctx, &l->req, &l->timer, l->sqes);
    } else {
        l->sqes[0] = aio_co_prep(ctx, &l->req);
    }
    return l->sqes[0];
}

/* The operation's result; -ETIMEDOUT when the limit cancelled it. */
static int coroutine_fn limited_wait(struct limited *l)
{
    if (!l->limit_ns) {
        return aio_co_wait(&l->req);
    }
    l->ts = (struct __kernel_timespec){
        .tv_sec = (long long)(l->limit_ns / 1000000000u),
        .tv_nsec = (long long)(l->limit_ns % 1000000000u),
    };
    l->sqes[0]->flags |= IOSQE_IO_LINK;
    io_uring_prep_link_timeout(l->sqes[1], &l->ts, 0);
    int res = aio_co_wait(&l->req);
    int timer = aio_co_wait(&l->timer);
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
        struct limited l;
        struct io_uring_sqe *sqe = limited_prep(ctx, &l,
                                                sending ? 0 : limit_ns);
        if (sending) {
            io_uring_prep_sendmsg(sqe, fd, &msg, MSG_NOSIGNAL);
        } else {
            /* Limited: what has arrived each time, so that the limit is
             * on silence, not on the whole transfer. */
            io_uring_prep_recvmsg(sqe, fd, &msg, limit_ns ? 0 : MSG_WAITALL);
        }
        int res = limited_wait(&l);
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
        struct limited l;
        io_uring_prep_recv(limited_prep(ctx, &l, limit_ns), fd, buf, len, 0);
        int res = limited_wait(&l);
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
