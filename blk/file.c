/*
 * file:PATH: regular files and block devices on io_uring.
 *
 * Every request is an SQE on the ring of the context the calling coroutine
 * runs in.  The kernel may transfer less than asked: a short read or write
 * is resubmitted for the rest (offset and iovec both advanced), a read
 * that hits end of file is zero-filled, a write that makes no progress
 * twice is -ENOSPC, and -EAGAIN / -EINTR are resubmitted; each is counted
 * in dev->stats.  O_DIRECT alignment is the kernel's own (statx DIOALIGN),
 * enforced by the generic path with bounce buffers.  Reads and writes use
 * the file registered in each context's fixed-file table, which spares the
 * kernel a file lookup per request.
 *
 * Not here: bounds, splitting and bouncing (io.c); formats (qcow2.c).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef HAVE_VALGRIND_VALGRIND_H
#include <valgrind/memcheck.h>
#endif

#include "aio-int.h"
#include "blk-int.h"

#define ZERO_CHUNK (1u << 20)
#define DIO_ALIGN_FALLBACK 4096

/* The contexts this file is registered in (see aio_fixed_file_add). */
#define FIXED_SLOTS 4

typedef struct file_state {
    int fd;
    pthread_mutex_t fixed_lock;     /* registering, not looking up */
    struct {
        coblk_aio *_Atomic ctx;     /* NULL: free */
        int index;
    } fixed[FIXED_SLOTS];
    bool fixed_full;                /* all slots taken: stop trying */
    bool under_valgrind;            /* reads must be marked defined */
} file_state;

static int file_fd(struct coblk_dev *dev)
{
    return ((file_state *)dev->opaque)->fd;
}

/* O_DIRECT needs: the kernel says (6.1+), a block device's logical block
 * size, or the largest usual value. */
static void set_dio_alignment(struct coblk_dev *dev, int fd, bool is_bdev)
{
    struct statx stx;

    if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
        (stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_offset_align) {
        dev->mem_align = stx.stx_dio_mem_align;
        dev->offset_align = stx.stx_dio_offset_align;
        return;
    }
    int block_size;
    if (is_bdev && ioctl(fd, BLKSSZGET, &block_size) == 0 && block_size > 0) {
        dev->mem_align = dev->offset_align = (uint32_t)block_size;
        return;
    }
    dev->mem_align = dev->offset_align = DIO_ALIGN_FALLBACK;
}

/* The error for a path that is no regular file or block device. */
static int refuse_type(const char *path, const struct stat *st)
{
    if (S_ISDIR(st->st_mode)) {
        return blk_error(-EISDIR, "file: %s is a directory", path);
    }
    return blk_error(-EINVAL, "file: %s is not a regular file or block "
                     "device", path);
}

/* Opens path without blocking: open() of a FIFO waits for a writer, and
 * of some devices for the device.  Refuses what is no regular file or
 * block device before opening it where it can, and after, by the fd, for
 * what was swapped in meanwhile.  Returns the fd, or -errno. */
static int open_regular_or_block(const char *path, int oflags,
                                 struct stat *st)
{
    if (stat(path, st) == 0 && !S_ISREG(st->st_mode) &&
        !S_ISBLK(st->st_mode)) {
        return refuse_type(path, st);
    }
    int fd = open(path, oflags | O_NONBLOCK);
    if (fd < 0) {
        int err = -errno;
        if (err == -EINVAL && (oflags & O_DIRECT)) {
            return blk_error(err, "file: %s: this file system does not "
                             "support O_DIRECT", path);
        }
        return blk_error(err, "file: %s: %s", path, strerror(-err));
    }
    int ret = 0;
    if (fstat(fd, st) < 0) {
        ret = blk_error(-errno, "file: %s: %s", path, strerror(errno));
    } else if (!S_ISREG(st->st_mode) && !S_ISBLK(st->st_mode)) {
        ret = refuse_type(path, st);
    } else if (fcntl(fd, F_SETFL, oflags & ~O_NONBLOCK) < 0) {
        /* Non-blocking, io_uring would answer -EAGAIN where it should
         * wait. */
        ret = blk_error(-errno, "file: %s: %s", path, strerror(errno));
    }
    if (ret < 0) {
        close(fd);
        return ret;
    }
    return fd;
}

static int file_open(struct coblk_dev *dev, const char *path)
{
    int oflags = O_CLOEXEC |
                 (dev->flags & COBLK_OPEN_RDONLY ? O_RDONLY : O_RDWR) |
                 (dev->flags & COBLK_OPEN_DIRECT ? O_DIRECT : 0);
    struct stat st;

    if (!*path) {
        return blk_error(-EINVAL, "file: no path (file:/path/to/image)");
    }
    int fd = open_regular_or_block(path, oflags, &st);
    if (fd < 0) {
        return fd;
    }
    bool write = !(dev->flags & COBLK_OPEN_RDONLY);
    int ret = dev->flags & COBLK_OPEN_LOCK ? blk_lock_image(fd, path, write)
                                           : 0;
    if (ret == 0 && S_ISREG(st.st_mode)) {
        dev->size = (uint64_t)st.st_size;
    } else if (ret == 0 && ioctl(fd, BLKGETSIZE64, &dev->size) < 0) {
        ret = blk_error(-errno, "file: %s: size: %s", path, strerror(errno));
    }
    file_state *s = ret == 0 ? calloc(1, sizeof(*s)) : NULL;
    if (ret == 0 && !s) {
        ret = blk_error(-ENOMEM, "out of memory");
    }
    if (ret < 0) {
        close(fd);
        return ret;
    }
    if (dev->flags & COBLK_OPEN_DIRECT) {
        set_dio_alignment(dev, fd, S_ISBLK(st.st_mode));
    }
    dev->filename = strdup(path);
    if (!dev->filename) {
        close(fd);
        free(s);
        return blk_error(-ENOMEM, "out of memory");
    }
    s->fd = fd;
#ifdef HAVE_VALGRIND_VALGRIND_H
    s->under_valgrind = RUNNING_ON_VALGRIND;
#endif
    pthread_mutex_init(&s->fixed_lock, NULL);
    dev->opaque = s;
    return 0;
}

static void file_close(struct coblk_dev *dev)
{
    file_state *s = dev->opaque;

    for (int i = 0; i < FIXED_SLOTS; i++) {
        if (atomic_load(&s->fixed[i].ctx)) {
            aio_fixed_file_remove(&s->fixed[i].ctx, s->fixed[i].index);
        }
    }
    pthread_mutex_destroy(&s->fixed_lock);
    close(s->fd);
    free(s);
}

/* Registers the file in ctx, once; returns the index or -errno. */
static int register_in(file_state *s, coblk_aio *ctx)
{
    int ret = -ENOSPC;

    pthread_mutex_lock(&s->fixed_lock);
    for (int i = 0; i < FIXED_SLOTS; i++) {
        if (atomic_load(&s->fixed[i].ctx) == ctx) {
            ret = s->fixed[i].index;    /* raced with ourselves: done */
            goto out;
        }
    }
    for (int i = 0; i < FIXED_SLOTS; i++) {
        if (!atomic_load(&s->fixed[i].ctx)) {
            ret = aio_fixed_file_add(ctx, s->fd, &s->fixed[i].ctx);
            if (ret >= 0) {
                s->fixed[i].index = ret;
            }
            goto out;
        }
    }
out:
    if (ret < 0) {
        s->fixed_full = true;   /* no table, or no room: plain fd from now */
    }
    pthread_mutex_unlock(&s->fixed_lock);
    return ret;
}

/* fixed_index() past the first slot: the rest, and registering. */
static __attribute__((noinline)) int fixed_index_slow(file_state *s,
                                                      coblk_aio *ctx)
{
    for (int i = 1; i < FIXED_SLOTS; i++) {
        if (atomic_load_explicit(&s->fixed[i].ctx, memory_order_relaxed) ==
            ctx) {
            return s->fixed[i].index;
        }
    }
    if (s->fixed_full) {
        return -1;
    }
    int index = register_in(s, ctx);
    return index < 0 ? -1 : index;
}

/* The file's index in ctx's fixed-file table, or -1 for the plain fd.
 * Only ctx's own thread registers or looks up ctx, so the index read
 * after a matching ctx is the one stored before it.  Inline for the first
 * slot: one thread doing all the I/O is the usual case. */
static inline int fixed_index(file_state *s, coblk_aio *ctx)
{
    if (atomic_load_explicit(&s->fixed[0].ctx, memory_order_relaxed) ==
        ctx) {
        return s->fixed[0].index;
    }
    return fixed_index_slow(s, ctx);
}

/* The kernel filled these bytes through the ring, which memcheck cannot
 * see: tell it, or every read looks uninitialised. */
static inline void mark_read(const struct coblk_dev *dev,
                             const struct iovec *iov, unsigned iovcnt,
                             size_t bytes)
{
    if (((file_state *)dev->opaque)->under_valgrind) {
        iov_mark_defined(iov, iovcnt, bytes);
    }
}

/* Runs one SQE prepared by prep and returns its result.
 *
 * The hot path is inlined into as few frames as possible: each function
 * still on the stack when a coroutine yields returns, after the wake, to
 * an address the CPU's return predictor cannot know (it was filled by the
 * event loop's calls), and a mispredicted return costs ~20 cycles. */
static inline __attribute__((always_inline)) int coroutine_fn file_submit(coblk_aio *ctx,
                                    void (*prep)(struct io_uring_sqe *sqe,
                                                 void *opaque),
                                    void *opaque)
{
    aio_co_request req;

    prep(aio_co_prep(ctx, &req), opaque);
    return aio_co_wait(&req);
}

struct rw_args {
    int fd;                 /* an index when fixed */
    bool fixed;
    bool write;
    int buf_index;          /* of a registered buffer holding iov[0], or -1 */
    int rw_flags;
    uint16_t ioprio;        /* the SQE's: 0, the thread's priority */
    bool offload;           /* to a kernel worker (IOSQE_ASYNC) */
    uint64_t offset;
    const struct iovec *iov;
    unsigned iovcnt;
};

/* A buffered transfer from this size on, while others are in flight, is
 * a copy to or from the page cache long enough to hand to one of the
 * kernel's io-wq workers: done inline, in io_uring_enter, every copy would
 * run on the loop's one CPU, one after the other.  Alone, it runs inline:
 * the hand-off would only add to its latency.  Measured on 2 CPUs: a 1 GiB
 * convert 0.21 s inline, 0.16 s offloaded (qemu-img's thread pool 0.17 s);
 * 1 MiB reads from the page cache at depth 1 lose 15% offloaded. */
#define OFFLOAD_MIN (256u << 10)

static inline __attribute__((always_inline)) void
prep_rw(struct io_uring_sqe *sqe, void *opaque)
{
    struct rw_args *a = opaque;

    /* One buffer: the plain op, which spares the kernel an iovec import;
     * in a registered buffer, the fixed op, which spares it pinning. */
    if (a->iovcnt == 1 && a->buf_index >= 0) {
        if (a->write) {
            io_uring_prep_write_fixed(sqe, a->fd, a->iov[0].iov_base,
                                      (unsigned)a->iov[0].iov_len, a->offset,
                                      a->buf_index);
        } else {
            io_uring_prep_read_fixed(sqe, a->fd, a->iov[0].iov_base,
                                     (unsigned)a->iov[0].iov_len, a->offset,
                                     a->buf_index);
        }
    } else if (a->iovcnt == 1) {
        if (a->write) {
            io_uring_prep_write(sqe, a->fd, a->iov[0].iov_base,
                                (unsigned)a->iov[0].iov_len, a->offset);
        } else {
            io_uring_prep_read(sqe, a->fd, a->iov[0].iov_base,
                               (unsigned)a->iov[0].iov_len, a->offset);
        }
    } else if (a->write) {
        io_uring_prep_writev(sqe, a->fd, a->iov, a->iovcnt, a->offset);
    } else {
        io_uring_prep_readv(sqe, a->fd, a->iov, a->iovcnt, a->offset);
    }
    sqe->rw_flags = a->rw_flags;
    sqe->ioprio = a->ioprio;
    if (a->fixed) {
        sqe->flags |= IOSQE_FIXED_FILE;
    }
    if (a->offload) {
        sqe->flags |= IOSQE_ASYNC;
    }
}

/* What file_rw() does after a first result other than the whole transfer:
 * resubmits after -EAGAIN / -EINTR and for the rest of a short transfer.
 * Out of line: rare, and its state would widen every request's frame. */
static __attribute__((noinline)) int coroutine_fn
file_rw_rest(struct coblk_dev *dev, coblk_aio *ctx, struct rw_args *a,
             int res, uint64_t bytes)
{
    const struct iovec *iov = a->iov;
    unsigned iovcnt = a->iovcnt;
    uint64_t offset = a->offset;
    struct iovec *rest = NULL;      /* the iovec left after a short one */
    uint64_t done = 0;
    bool stalled = false;
    int ret = 0;

    for (;; res = file_submit(ctx, prep_rw, a)) {
        if (res == -EAGAIN || res == -EINTR) {
            atomic_fetch_add(&dev->stats.resubmits, 1);
            continue;
        }
        if (res < 0) {
            ret = res;
            break;
        }
        if (res == 0 && !a->write) {
            /* End of file (it shrank under us): the rest reads as zeroes. */
            iov_memset(iov, iovcnt, done, 0, bytes - done);
            break;
        }
        if (res == 0) {
            if (stalled) {
                ret = -ENOSPC;
                break;
            }
            stalled = true;
        } else {
            stalled = false;
        }
        if (!a->write) {
            mark_read(dev, a->iov, a->iovcnt, (size_t)res);
        }
        done += (uint64_t)res;
        if (done == bytes) {
            break;
        }
        atomic_fetch_add(a->write ? &dev->stats.short_writes
                                  : &dev->stats.short_reads, 1);
        if (!rest && !(rest = malloc(iovcnt * sizeof(*rest)))) {
            ret = -ENOMEM;
            break;
        }
        a->iovcnt = iov_slice(iov, iovcnt, done, bytes - done, rest, iovcnt,
                              NULL);
        a->iov = rest;
        a->offset = offset + done;
    }
    free(rest);
    return ret;
}

/* The arguments of a transfer on ctx's ring: the registered file and
 * buffer where there are. */
static inline __attribute__((always_inline)) struct rw_args
rw_args_on(struct coblk_dev *dev, coblk_aio *ctx, bool write,
           uint64_t offset, uint64_t bytes, const struct iovec *iov,
           unsigned iovcnt, int rw_flags)
{
    struct rw_args a = { .fd = file_fd(dev), .write = write,
                         .rw_flags = rw_flags, .offset = offset,
                         .iov = iov, .iovcnt = iovcnt, .buf_index = -1,
                         .offload = bytes >= OFFLOAD_MIN &&
                                    !(dev->flags & COBLK_OPEN_DIRECT) &&
                                    aio_busy(ctx) };

    if (iovcnt == 1) {
        a.buf_index = aio_fixed_buf_index(ctx, iov[0].iov_base,
                                          iov[0].iov_len);
    }
    int index = fixed_index(dev->opaque, ctx);
    if (index >= 0) {
        a.fd = index;
        a.fixed = true;
    }
    return a;
}

static int rw_flags_of(int req_flags)
{
    return req_flags & COBLK_REQ_F_FUA ? RWF_DSYNC : 0;
}

static inline __attribute__((always_inline)) int coroutine_fn
file_rw(struct coblk_dev *dev, bool write, uint64_t offset, uint64_t bytes,
        const struct iovec *iov, unsigned iovcnt, int rw_flags)
{
    coblk_aio *ctx = aio_co_context();

    if (!ctx) {
        return -EPERM;
    }
    struct rw_args a = rw_args_on(dev, ctx, write, offset, bytes, iov,
                                  iovcnt, rw_flags);
    int res = file_submit(ctx, prep_rw, &a);
    if (__builtin_expect(res >= 0 && (uint64_t)res == bytes, 1)) {
        if (!write) {
            mark_read(dev, iov, iovcnt, bytes);
        }
        return 0;
    }
    return file_rw_rest(dev, ctx, &a, res, bytes);
}

/* ---- a queue's requests, finished from their CQE (start_rw) ---------------- */

static void started_complete(coblk_aio *ctx, aio_cqe_handler *handler,
                             int res, uint32_t flags)
{
    struct coblk_req *req = blk_req_of_handler(handler);
    blk_req_private *p = blk_req_private_of(req);

    (void)flags;
    if (__builtin_expect(res == (int)p->bytes, 1)) {
        if (req->type == COBLK_REQ_IN) {
            mark_read(p->dev, req->iov, req->iovcnt, p->bytes);
        }
        blk_request_finish(req, 0);
        return;
    }
    /* Short, or worth another try: the rest on the coroutine path.  A
     * hard error is the request's. */
    if (res >= 0 || res == -EAGAIN || res == -EINTR) {
        blk_request_retry(ctx, req);
    } else {
        blk_request_finish(req, res);
    }
}

/* The request's coroutine ends once the SQE is on the ring: resuming it
 * only to pass the result on would cost two coroutine switches and bring
 * its stack back into the cache (measured: a quarter more 4k reads a
 * second from a queue).  A short transfer, or one the kernel asks to
 * try again, rare, runs again on the coroutine path
 * (blk_request_retry()). */
static bool coroutine_fn file_start_rw(struct coblk_dev *dev,
                                       struct coblk_req *req, bool write,
                                       uint64_t offset, uint64_t bytes,
                                       int req_flags)
{
    coblk_aio *ctx = aio_co_context();

    if (!ctx) {
        return false;
    }
    blk_req_private *p = blk_req_private_of(req);
    struct rw_args a = rw_args_on(dev, ctx, write, offset, bytes, req->iov,
                                  req->iovcnt, rw_flags_of(req_flags));
    a.ioprio = COBLK_REQ_IOPRIO_OF(req->flags);
    p->handler.complete = started_complete;
    p->bytes = (uint32_t)bytes;
    prep_rw(aio_get_sqe(ctx, &p->handler), &a);
    return true;
}

static int coroutine_fn file_preadv(struct coblk_dev *dev, uint64_t offset,
                                    uint64_t bytes, const struct iovec *iov,
                                    unsigned iovcnt)
{
    return file_rw(dev, false, offset, bytes, iov, iovcnt, 0);
}

/* A write of the last block of a file whose size is not a multiple of the
 * O_DIRECT block (a read-modify-write, the only request that passes the
 * end): the file must keep its size.  Synchronous calls on the loop's
 * thread, but metadata only, and rare. */
static __attribute__((noinline)) int coroutine_fn
write_past_end(struct coblk_dev *dev, uint64_t offset, uint64_t bytes,
               const struct iovec *iov, unsigned iovcnt, int rw_flags)
{
    int fd = file_fd(dev);
    struct stat st;

    if (fstat(fd, &st) < 0) {
        return -errno;
    }
    int ret = file_rw(dev, true, offset, bytes, iov, iovcnt, rw_flags);
    bool grew = (uint64_t)st.st_size < offset + bytes;
    if (grew && ftruncate(fd, st.st_size) < 0 && ret == 0) {
        ret = -errno;
    }
    /* A FUA write made the growth durable: so must the shrinking be. */
    if (grew && (rw_flags & RWF_DSYNC) && fdatasync(fd) < 0 && ret == 0) {
        ret = -errno;
    }
    return ret;
}

static int coroutine_fn file_pwritev(struct coblk_dev *dev, uint64_t offset,
                                     uint64_t bytes, const struct iovec *iov,
                                     unsigned iovcnt, int req_flags)
{
    int rw_flags = rw_flags_of(req_flags);

    if (__builtin_expect(offset + bytes > blk_size(dev), 0)) {
        if (dev->growable) {
            /* A format's file: it grows (io.c records the size). */
            return file_rw(dev, true, offset, bytes, iov, iovcnt, rw_flags);
        }
        return write_past_end(dev, offset, bytes, iov, iovcnt, rw_flags);
    }
    return file_rw(dev, true, offset, bytes, iov, iovcnt, rw_flags);
}

struct fsync_args {
    int fd;
};

static void prep_fsync(struct io_uring_sqe *sqe, void *opaque)
{
    io_uring_prep_fsync(sqe, ((struct fsync_args *)opaque)->fd,
                        IORING_FSYNC_DATASYNC);
}

static int coroutine_fn file_flush(struct coblk_dev *dev)
{
    coblk_aio *ctx = aio_co_context();
    struct fsync_args a = { .fd = file_fd(dev) };

    if (dev->flags & COBLK_OPEN_NO_FLUSH) {
        return 0;
    }
    return ctx ? file_submit(ctx, prep_fsync, &a) : -EPERM;
}

struct fallocate_args {
    int fd;
    int mode;
    uint64_t offset, bytes;
};

static void prep_fallocate(struct io_uring_sqe *sqe, void *opaque)
{
    struct fallocate_args *a = opaque;

    io_uring_prep_fallocate(sqe, a->fd, a->mode, a->offset, a->bytes);
}

static int coroutine_fn file_fallocate(struct coblk_dev *dev, int mode,
                                       uint64_t offset, uint64_t bytes)
{
    coblk_aio *ctx = aio_co_context();
    struct fallocate_args a = { .fd = file_fd(dev), .mode = mode,
                                .offset = offset, .bytes = bytes };

    return ctx ? file_submit(ctx, prep_fallocate, &a) : -EPERM;
}

static int coroutine_fn file_pdiscard(struct coblk_dev *dev, uint64_t offset,
                                      uint64_t bytes)
{
    return file_fallocate(dev, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                          offset, bytes);
}

/* Writes zeroes the slow way, for file systems without ZERO_RANGE. */
static int coroutine_fn write_zero_buffers(struct coblk_dev *dev,
                                           uint64_t offset, uint64_t bytes)
{
    size_t chunk = bytes < ZERO_CHUNK ? (size_t)bytes : ZERO_CHUNK;
    void *zeroes;
    int ret = 0;

    if (posix_memalign(&zeroes, dev->mem_align > 8 ? dev->mem_align : 8,
                       chunk)) {
        return -ENOMEM;
    }
    memset(zeroes, 0, chunk);
    for (uint64_t done = 0; done < bytes && ret == 0; done += chunk) {
        size_t len = bytes - done < chunk ? (size_t)(bytes - done) : chunk;
        struct iovec iov = { .iov_base = zeroes, .iov_len = len };
        ret = file_rw(dev, true, offset + done, len, &iov, 1, 0);
    }
    free(zeroes);
    return ret;
}

static int coroutine_fn file_pwrite_zeroes(struct coblk_dev *dev,
                                           uint64_t offset, uint64_t bytes,
                                           int req_flags)
{
    int mode = req_flags & COBLK_REQ_F_UNMAP
                   ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
                   : FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
    int ret = file_fallocate(dev, mode, offset, bytes);
    if (ret == -EOPNOTSUPP || ret == -EINVAL) {
        ret = write_zero_buffers(dev, offset, bytes);
    }
    return ret;
}

/* The new space [from, to) of a grown file, as mode provides it. */
static int coroutine_fn preallocate_tail(struct coblk_dev *dev, uint64_t from,
                                         uint64_t to, enum coblk_prealloc mode)
{
    if (mode == COBLK_PREALLOC_FALLOC) {
        return file_fallocate(dev, 0, from, to - from);
    }
    return mode == COBLK_PREALLOC_FULL ? write_zero_buffers(dev, from, to - from)
                                       : 0;
}

/* A regular file only: a block device has the size it has. */
static int coroutine_fn file_truncate(struct coblk_dev *dev, uint64_t size,
                                      enum coblk_prealloc mode)
{
    struct stat st;
    int fd = file_fd(dev);

    if (mode == COBLK_PREALLOC_METADATA) {
        return blk_error(-ENOTSUP, "Unsupported preallocation mode: "
                         "metadata");
    }
    if (fstat(fd, &st) < 0) {
        return blk_error(-errno, "file: %s", strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        return blk_error(-ENOTSUP, "file: %s is a block device: its size "
                         "does not change", dev->filename);
    }
    if (ftruncate(fd, (off_t)size) < 0) {
        return blk_error(-errno, "file: %s: %s", dev->filename,
                         strerror(errno));
    }
    uint64_t old = (uint64_t)st.st_size;
    int ret = size > old ? preallocate_tail(dev, old, size, mode) : 0;
    if (ret < 0) {
        /* Not grown half-way: the old size back. */
        int err = ftruncate(fd, (off_t)old) < 0 ? errno : 0;
        return blk_error(ret, "file: %s: preallocating %" PRIu64 " bytes: "
                         "%s%s%s", dev->filename, size - old, strerror(-ret),
                         err ? "; and the old size could not be restored: "
                             : "", err ? strerror(err) : "");
    }
    return 0;
}

/* Holes and data, as the file system tells them (SEEK_HOLE / SEEK_DATA);
 * a block device, or a file system that cannot tell, is all data. */
static int coroutine_fn file_block_status(struct coblk_dev *dev,
                                          uint64_t offset, uint64_t bytes,
                                          struct coblk_block_status *out)
{
    int fd = file_fd(dev);
    off_t data = lseek(fd, (off_t)offset, SEEK_DATA);
    uint64_t end = offset + bytes;
    uint32_t flags = COBLK_BS_DATA;

    if (data < 0 && errno == ENXIO) {
        data = (off_t)end;              /* a hole to the end of the file */
    }
    if (data < 0) {
        /* SEEK_DATA unsupported (or a block device): all data. */
    } else if ((uint64_t)data > offset) {
        flags = COBLK_BS_ZERO;
        end = (uint64_t)data < end ? (uint64_t)data : end;
    } else {
        off_t hole = lseek(fd, (off_t)offset, SEEK_HOLE);
        if (hole > 0 && (uint64_t)hole > offset && (uint64_t)hole < end) {
            end = (uint64_t)hole;
        }
    }
    *out = (struct coblk_block_status){
        .bytes = end - offset, .host_offset = offset,
        .flags = flags | COBLK_BS_ALLOCATED | COBLK_BS_OFFSET_VALID };
    return 0;
}

/* ---- copy offload ---------------------------------------------------------- */

struct copy_args {
    int fd_in, fd_out;
    uint64_t off_in, off_out, bytes;
};

/* On a worker: copy_file_range(2) blocks (io_uring has no such op). */
static int copy_file_job(void *opaque)
{
    struct copy_args *a = opaque;
    loff_t in = (loff_t)a->off_in, out = (loff_t)a->off_out;

    for (uint64_t left = a->bytes; left;) {
        ssize_t n = copy_file_range(a->fd_in, &in, a->fd_out, &out, left, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -errno;
        }
        if (n == 0) {
            return -ENODATA;        /* the source ends before the range */
        }
        left -= (uint64_t)n;
    }
    return 0;
}

static int coroutine_fn file_copy_range_from(struct coblk_dev *src,
                                             uint64_t src_offset,
                                             struct coblk_dev *dst,
                                             uint64_t dst_offset,
                                             uint64_t bytes)
{
    return blk_co_copy_range_to(src, src_offset, dst, dst_offset, bytes);
}

/* Where both ends are files. */
static int coroutine_fn file_copy_range_to(struct coblk_dev *src,
                                           uint64_t src_offset,
                                           struct coblk_dev *dst,
                                           uint64_t dst_offset,
                                           uint64_t bytes)
{
    if (src->drv != &blk_file_driver) {
        return -ENOTSUP;
    }
    struct copy_args a = { .fd_in = file_fd(src), .fd_out = file_fd(dst),
                           .off_in = src_offset, .off_out = dst_offset,
                           .bytes = bytes };
    return blk_co_run_in_worker(copy_file_job, &a);
}

static int64_t file_allocated_bytes(struct coblk_dev *dev)
{
    struct stat st;

    return fstat(file_fd(dev), &st) < 0 ? -errno
                                        : (int64_t)st.st_blocks * 512;
}

const blk_driver blk_file_driver = {
    .name = "file",
    .can_grow = true,
    .open = file_open,
    .close = file_close,
    .start_rw = file_start_rw,
    .co_preadv = file_preadv,
    .co_pwritev = file_pwritev,
    .co_flush = file_flush,
    .co_pdiscard = file_pdiscard,
    .co_pwrite_zeroes = file_pwrite_zeroes,
    .co_block_status = file_block_status,
    .co_truncate = file_truncate,
    .co_copy_range_from = file_copy_range_from,
    .co_copy_range_to = file_copy_range_to,
    .allocated_bytes = file_allocated_bytes,
};
