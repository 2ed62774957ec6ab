/*
 * Stream socket I/O on the ring (see sock.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>

#ifdef HAVE_VALGRIND_VALGRIND_H
#include <valgrind/memcheck.h>
#endif

#include "aio-int.h"
#include "sock.h"

int coroutine_fn nbd_co_recv(int fd, void *buf, size_t len)
{
    coblk_aio *ctx = aio_co_context();
    char *p = buf;

    if (!ctx) {
        return -EPERM;
    }
    while (len > 0) {
        aio_co_request req;
        io_uring_prep_recv(aio_co_prep(ctx, &req), fd, p, len, MSG_WAITALL);
        int res = aio_co_wait(&req);
        if (res == -EINTR || res == -EAGAIN) {
            continue;
        }
        if (res < 0) {
            return res;
        }
        if (res == 0) {
            return -ECONNRESET;
        }
#ifdef HAVE_VALGRIND_VALGRIND_H
        /* The kernel wrote through the ring, where memcheck cannot see. */
        VALGRIND_MAKE_MEM_DEFINED(p, res);
#endif
        p += res;
        len -= (size_t)res;
    }
    return 0;
}

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

int coroutine_fn nbd_co_recvv(int fd, struct iovec *iov, unsigned iovcnt)
{
    coblk_aio *ctx = aio_co_context();

    if (!ctx) {
        return -EPERM;
    }
    iov = iov_advance(iov, &iovcnt, 0);
    while (iovcnt > 0) {
        struct msghdr msg = { .msg_iov = iov, .msg_iovlen = iovcnt };
        aio_co_request req;
        io_uring_prep_recvmsg(aio_co_prep(ctx, &req), fd, &msg, MSG_WAITALL);
        int res = aio_co_wait(&req);
        if (res == -EINTR || res == -EAGAIN) {
            continue;
        }
        if (res < 0) {
            return res;
        }
        if (res == 0) {
            return -ECONNRESET;
        }
#ifdef HAVE_VALGRIND_VALGRIND_H
        size_t left = (size_t)res;
        for (unsigned i = 0; i < iovcnt && left; i++) {
            size_t n = iov[i].iov_len < left ? iov[i].iov_len : left;
            VALGRIND_MAKE_MEM_DEFINED(iov[i].iov_base, n);
            left -= n;
        }
#endif
        iov = iov_advance(iov, &iovcnt, (size_t)res);
    }
    return 0;
}

int coroutine_fn nbd_co_sendv(int fd, struct iovec *iov, unsigned iovcnt)
{
    coblk_aio *ctx = aio_co_context();

    if (!ctx) {
        return -EPERM;
    }
    iov = iov_advance(iov, &iovcnt, 0);     /* skip empty leading parts */
    while (iovcnt > 0) {
        struct msghdr msg = { .msg_iov = iov, .msg_iovlen = iovcnt };
        aio_co_request req;
        io_uring_prep_sendmsg(aio_co_prep(ctx, &req), fd, &msg,
                              MSG_NOSIGNAL);
        int res = aio_co_wait(&req);
        if (res == -EINTR || res == -EAGAIN) {
            continue;
        }
        if (res < 0) {
            return res;
        }
        if (res == 0) {
            return -EPIPE;
        }
        iov = iov_advance(iov, &iovcnt, (size_t)res);
    }
    return 0;
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
