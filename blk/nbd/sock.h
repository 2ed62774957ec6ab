/*
 * Stream socket I/O for coroutines, on the context's io_uring: a request
 * or reply is one receive or one vectored send, and the coroutine yields
 * until the ring completes it.
 */
#ifndef COBLK_NBD_SOCK_H
#define COBLK_NBD_SOCK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "coblk/coroutine.h"

/* Receives exactly len bytes.  Returns 0, -ECONNRESET if the stream ends
 * first (shutdown() of the socket ends it too), or another -errno. */
int coroutine_fn nbd_co_recv(int fd, void *buf, size_t len);

/* Receives what has arrived, at least 1 byte and at most len: the count,
 * -ECONNRESET at the end of the stream, -ETIMEDOUT when nothing came in
 * limit_ns (0: no limit), or another -errno. */
int coroutine_fn nbd_co_recv_some(int fd, void *buf, size_t len,
                                  uint64_t limit_ns);

/* Receives exactly the bytes iov describes (it may change iov), as
 * nbd_co_recv(); -ETIMEDOUT when nothing comes in limit_ns (0: no
 * limit). */
int coroutine_fn nbd_co_recvv(int fd, struct iovec *iov, unsigned iovcnt,
                              uint64_t limit_ns);

/* Sends every byte of iov (which it may change).  Returns 0 or -errno
 * (-EPIPE once the peer is gone). */
int coroutine_fn nbd_co_sendv(int fd, struct iovec *iov, unsigned iovcnt);

/* Accepts a connection on a listening socket: the new socket, close-on-
 * exec, or -errno. */
int coroutine_fn nbd_co_accept(int listen_fd);

#endif /* COBLK_NBD_SOCK_H */
