/*
 * The generic request path, between the public calls and the drivers:
 * bounds (overflow-safe), read-only devices, empty requests, in-flight
 * counting for drain, splitting to the driver's limits, and bounce buffers
 * for O_DIRECT requests the kernel would refuse.
 *
 * A misaligned O_DIRECT write is a read-modify-write of whole blocks: a
 * write, discard or bounced read landing in those blocks meanwhile would
 * be undone or see them half done.  As QEMU's serialising requests, it
 * waits for the overlapping requests in flight and holds off those that
 * come while it runs; requests elsewhere on the device go on.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "blk-int.h"

static bool in_bounds(const struct coblk_dev *dev, uint64_t offset,
                      uint64_t bytes)
{
    uint64_t size = blk_size(dev);

    return offset <= size && bytes <= size - offset;
}

static bool dio_aligned(const struct coblk_dev *dev, uint64_t offset,
                        uint64_t bytes, const struct iovec *iov,
                        unsigned iovcnt)
{
    if (dev->offset_align == 1 && dev->mem_align == 1) {
        return true;
    }
    if ((offset | bytes) & (dev->offset_align - 1)) {
        return false;
    }
    for (unsigned i = 0; i < iovcnt; i++) {
        if (((uintptr_t)iov[i].iov_base | iov[i].iov_len) &
            (dev->mem_align - 1)) {
            return false;
        }
    }
    return true;
}

/* ---- in flight ------------------------------------------------------------- */

static bool overlap(const blk_tracked *a, const blk_tracked *b)
{
    return a->begin < b->end && b->begin < a->end;
}

/* A request t must wait for: one in flight whose blocks overlap t's, where
 * either is a read-modify-write.  A request new to the list waits for
 * any such one, so that a read-modify-write waiting its turn is not passed
 * by every request that comes after it; nothing can be waiting for a new
 * request yet.  Woken, a request looks again and passes over those that
 * wait themselves: they may be waiting for it, and they look again when
 * woken, before they do anything. */
static blk_tracked *conflicting(struct coblk_dev *dev, const blk_tracked *t,
                                bool new)
{
    for (blk_tracked *other = dev->tracked; other; other = other->next) {
        if (other != t && (other->serialising || t->serialising) &&
            (new || !other->waiting) && overlap(other, t)) {
            return other;
        }
    }
    return NULL;
}

/* Tracks a request on [begin, end) of the device until request_end(), for
 * drain and for read-modify-writes (serialising), after waiting for the
 * requests it conflicts with. */
static void coroutine_fn request_begin(struct coblk_dev *dev, blk_tracked *t,
                                       uint64_t begin, uint64_t end,
                                       bool serialising)
{
    *t = (blk_tracked){ .begin = begin, .end = end,
                        .serialising = serialising };
    atomic_fetch_add_explicit(&dev->in_flight, 1, memory_order_relaxed);
    coblk_co_mutex_lock(&dev->track_lock);
    t->next = dev->tracked;
    if (t->next) {
        t->next->prev = t;
    }
    dev->tracked = t;
    dev->serialising += serialising;
    /* Without read-modify-writes nothing conflicts: skip the walk. */
    bool new = true;
    for (blk_tracked *other; dev->serialising &&
                             (other = conflicting(dev, t, new)) != NULL;) {
        atomic_fetch_add_explicit(&dev->stats.serialising_waits, 1,
                                  memory_order_relaxed);
        t->waiting = true;
        coblk_co_queue_wait(&other->waiters, &dev->track_lock);
        t->waiting = false;
        new = false;
    }
    coblk_co_mutex_unlock(&dev->track_lock);
}

static void coroutine_fn request_end(struct coblk_dev *dev, blk_tracked *t)
{
    coblk_co_mutex_lock(&dev->track_lock);
    if (t->prev) {
        t->prev->next = t->next;
    } else {
        dev->tracked = t->next;
    }
    if (t->next) {
        t->next->prev = t->prev;
    }
    dev->serialising -= t->serialising;
    coblk_co_queue_restart_all(&t->waiters);
    coblk_co_mutex_unlock(&dev->track_lock);
    /* The last touch of the device: coblk_dev_close() may free it now. */
    atomic_fetch_sub_explicit(&dev->in_flight, 1, memory_order_release);
}

/* ---- splitting ------------------------------------------------------------- */

/* Calls the driver on pieces of at most max_transfer bytes and IOV_MAX
 * iovecs.  Out of line: rare, and its state would widen the frame of every
 * request. */
static __attribute__((noinline)) int coroutine_fn
rw_pieces(struct coblk_dev *dev, bool write, uint64_t offset,
          uint64_t bytes, const struct iovec *iov, unsigned iovcnt,
          int req_flags)
{
    atomic_fetch_add(&dev->stats.splits, 1);
    struct iovec *piece = malloc(IOV_MAX * sizeof(*piece));
    if (!piece) {
        return -ENOMEM;
    }
    int ret = 0;
    for (uint64_t done = 0; done < bytes && ret == 0;) {
        uint64_t most = bytes - done < dev->max_transfer ? bytes - done
                                                         : dev->max_transfer;
        size_t len;
        unsigned n = iov_slice(iov, iovcnt, done, most, piece, IOV_MAX,
                               &len);
        ret = write ? dev->drv->co_pwritev(dev, offset + done, len, piece, n,
                                           req_flags)
                    : dev->drv->co_preadv(dev, offset + done, len, piece, n);
        done += len;
    }
    free(piece);
    return ret;
}

/* Calls the driver, in pieces when the request exceeds its limits. */
static inline __attribute__((always_inline)) int coroutine_fn
rw_split(struct coblk_dev *dev, bool write, uint64_t offset, uint64_t bytes,
         const struct iovec *iov, unsigned iovcnt, int req_flags)
{
    if (bytes <= dev->max_transfer && iovcnt <= IOV_MAX) {
        return write ? dev->drv->co_pwritev(dev, offset, bytes, iov, iovcnt,
                                            req_flags)
                     : dev->drv->co_preadv(dev, offset, bytes, iov, iovcnt);
    }
    return rw_pieces(dev, write, offset, bytes, iov, iovcnt, req_flags);
}

/* ---- bounce buffers ----------------------------------------------------------- */

/* Tracked over the whole blocks it reads: a bounced read covers them, on a
 * device whose size is not a multiple of them even past the end, where a
 * read-modify-write may be growing the file for a moment (file.c's
 * write_past_end).  Out of line for the reason rw_pieces() is. */
static __attribute__((noinline)) int coroutine_fn
rw_bounced(struct coblk_dev *dev, bool write, uint64_t offset, uint64_t bytes,
           const struct iovec *iov, unsigned iovcnt, int req_flags)
{
    uint64_t align = dev->offset_align;
    uint64_t start = offset & ~(align - 1);
    uint64_t end = (offset + bytes + align - 1) & ~(align - 1);
    uint64_t len = end - start;
    bool rmw = write && (start != offset || end != offset + bytes);
    void *buf;
    int ret;

    atomic_fetch_add(&dev->stats.bounces, 1);
    if (len > SIZE_MAX ||
        posix_memalign(&buf, dev->mem_align < sizeof(void *)
                                 ? sizeof(void *) : dev->mem_align,
                       (size_t)len)) {
        return -ENOMEM;
    }
    struct iovec whole = { .iov_base = buf, .iov_len = (size_t)len };
    blk_tracked tracked;
    request_begin(dev, &tracked, start, end, rmw);
    if (!write || rmw) {
        ret = rw_split(dev, false, start, len, &whole, 1, 0);
        if (ret < 0) {
            goto out;
        }
    }
    if (write) {
        iov_to_buf(iov, iovcnt, 0, (char *)buf + (offset - start), bytes);
        ret = rw_split(dev, true, start, len, &whole, 1, req_flags);
    } else {
        iov_from_buf(iov, iovcnt, 0, (char *)buf + (offset - start), bytes);
    }
out:
    request_end(dev, &tracked);
    free(buf);
    return ret;
}

/* ---- the byte-range entry points ---------------------------------------------- */

/* A request tracked for drain or for read-modify-writes.  Out of line for
 * the reason rw_pieces() is. */
static __attribute__((noinline)) int coroutine_fn
rw_tracked(struct coblk_dev *dev, bool write, uint64_t offset, uint64_t bytes,
           const struct iovec *iov, unsigned iovcnt, int req_flags)
{
    blk_tracked tracked;

    request_begin(dev, &tracked, offset, offset + bytes, false);
    int ret = rw_split(dev, write, offset, bytes, iov, iovcnt, req_flags);
    request_end(dev, &tracked);
    return ret;
}

/* A request counted in flight for coblk_dev_close(), not listed: one
 * nothing can conflict with. */
static inline __attribute__((always_inline)) int coroutine_fn
rw_counted(struct coblk_dev *dev, bool write, uint64_t offset, uint64_t bytes,
           const struct iovec *iov, unsigned iovcnt, int req_flags)
{
    atomic_fetch_add_explicit(&dev->in_flight, 1, memory_order_relaxed);
    int ret = rw_split(dev, write, offset, bytes, iov, iovcnt, req_flags);
    /* The last touch of the device, as in request_end(). */
    atomic_fetch_sub_explicit(&dev->in_flight, 1, memory_order_release);
    return ret;
}

/* A queue counts its own requests for drain (without a locked instruction
 * per request); the device tracks one on top only where a read-modify-
 * write (O_DIRECT with a block size) must not interleave with it: a write,
 * or a bounced read (co_rw_checked).  An aligned read racing with one sees
 * each block before or after it, and the bytes the read-modify-write did
 * not target are the same in both. */
static bool needs_tracking(const struct coblk_dev *dev, bool write)
{
    return write && dev->offset_align > 1;
}

/* A request already checked: in bounds, allowed, not empty, and iov
 * describing exactly `bytes`.  Tracked where a read-modify-write could
 * conflict with it (bounced ones always are); otherwise counted for
 * close if `count` (a queue counts its own).  Inlined into its callers:
 * see file_submit() on return prediction. */
static inline __attribute__((always_inline)) int coroutine_fn
co_rw_checked(struct coblk_dev *dev, bool write, uint64_t offset,
              uint64_t bytes, const struct iovec *iov, unsigned iovcnt,
              int req_flags, bool count)
{
    if ((req_flags & COBLK_REQ_F_COMPRESS) && !dev->drv->can_compress) {
        return -ENOTSUP;
    }
    if (!dio_aligned(dev, offset, bytes, iov, iovcnt)) {
        return rw_bounced(dev, write, offset, bytes, iov, iovcnt, req_flags);
    }
    if (needs_tracking(dev, write)) {
        return rw_tracked(dev, write, offset, bytes, iov, iovcnt, req_flags);
    }
    if (count) {
        return rw_counted(dev, write, offset, bytes, iov, iovcnt, req_flags);
    }
    return rw_split(dev, write, offset, bytes, iov, iovcnt, req_flags);
}

/* A write that may grow a growable device: it must stay addressable. */
static bool may_grow(const struct coblk_dev *dev, bool write, uint64_t offset,
                     uint64_t bytes)
{
    return write && dev->growable && offset <= INT64_MAX &&
           bytes <= INT64_MAX - offset;
}

/* The device grew to end: concurrent writes may raise it too. */
static void grew(struct coblk_dev *dev, uint64_t end)
{
    uint64_t size = blk_size(dev);

    while (size < end &&
           !__atomic_compare_exchange_n(&dev->size, &size, end, true,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
}

/* The generic path once the range is known to be addressable. */
static inline __attribute__((always_inline)) int coroutine_fn
co_rw_sized(struct coblk_dev *dev, bool write, uint64_t offset,
            uint64_t bytes, const struct iovec *iov, unsigned iovcnt,
            int req_flags)
{
    if (write && (dev->flags & COBLK_OPEN_RDONLY)) {
        return -EROFS;
    }
    if (bytes == 0) {
        return 0;
    }
    uint64_t iov_bytes;
    int ret = iov_measure(iov, iovcnt, &iov_bytes);
    if (ret < 0) {
        return ret;
    }
    if (iov_bytes < bytes) {
        return -EINVAL;
    }
    if (iov_bytes == bytes) {
        return co_rw_checked(dev, write, offset, bytes, iov, iovcnt,
                             req_flags, true);
    }
    /* Drivers transfer whole iovecs: hand them exactly `bytes`. */
    struct iovec *exact = malloc(iovcnt * sizeof(*exact));
    if (!exact) {
        return -ENOMEM;
    }
    iovcnt = iov_slice(iov, iovcnt, 0, bytes, exact, iovcnt, NULL);
    ret = co_rw_checked(dev, write, offset, bytes, exact, iovcnt, req_flags,
                        true);
    free(exact);
    return ret;
}

/* A write past the end of a growable device, which then records its new
 * size.  Out of line: rare. */
static __attribute__((noinline)) int coroutine_fn
co_write_growing(struct coblk_dev *dev, uint64_t offset, uint64_t bytes,
                 const struct iovec *iov, unsigned iovcnt, int req_flags)
{
    int ret = co_rw_sized(dev, true, offset, bytes, iov, iovcnt, req_flags);

    if (ret == 0) {
        grew(dev, offset + bytes);
    }
    return ret;
}

static inline __attribute__((always_inline)) int coroutine_fn
co_rw(struct coblk_dev *dev, bool write, uint64_t offset, uint64_t bytes,
      const struct iovec *iov, unsigned iovcnt, int req_flags)
{
    if (!dev) {
        return -EINVAL;
    }
    if (!in_bounds(dev, offset, bytes)) {
        return may_grow(dev, write, offset, bytes)
                   ? co_write_growing(dev, offset, bytes, iov, iovcnt,
                                      req_flags)
                   : -EINVAL;
    }
    return co_rw_sized(dev, write, offset, bytes, iov, iovcnt, req_flags);
}

int coroutine_fn coblk_co_preadv(struct coblk_dev *dev, uint64_t offset,
                                 uint64_t bytes, const struct iovec *iov,
                                 unsigned iovcnt)
{
    return co_rw(dev, false, offset, bytes, iov, iovcnt, 0);
}

int coroutine_fn coblk_co_pwritev(struct coblk_dev *dev, uint64_t offset,
                                  uint64_t bytes, const struct iovec *iov,
                                  unsigned iovcnt, int req_flags)
{
    if (req_flags & ~(COBLK_REQ_F_FUA | COBLK_REQ_F_COMPRESS)) {
        return -EINVAL;
    }
    return co_rw(dev, true, offset, bytes, iov, iovcnt, req_flags);
}

int coroutine_fn coblk_co_flush(struct coblk_dev *dev)
{
    if (!dev) {
        return -EINVAL;
    }
    if (dev->flags & COBLK_OPEN_RDONLY) {
        return 0;       /* nothing written, nothing to make durable */
    }
    blk_tracked tracked;
    request_begin(dev, &tracked, 0, 0, false);     /* overlaps nothing */
    int ret = dev->drv->co_flush(dev);
    request_end(dev, &tracked);
    return ret;
}

/* Discard and write-zeroes: a range, no data. */
static int coroutine_fn co_range(struct coblk_dev *dev, bool zeroes,
                                 uint64_t offset, uint64_t bytes,
                                 int req_flags)
{
    if (!dev || !in_bounds(dev, offset, bytes)) {
        return -EINVAL;
    }
    if (dev->flags & COBLK_OPEN_RDONLY) {
        return -EROFS;
    }
    if (bytes == 0) {
        return 0;
    }
    if (zeroes ? !dev->drv->co_pwrite_zeroes : !dev->drv->co_pdiscard) {
        return -ENOTSUP;
    }
    blk_tracked tracked;
    request_begin(dev, &tracked, offset, offset + bytes, false);
    int ret = zeroes ? dev->drv->co_pwrite_zeroes(dev, offset, bytes,
                                                  req_flags)
                     : dev->drv->co_pdiscard(dev, offset, bytes);
    request_end(dev, &tracked);
    return ret;
}

int coroutine_fn coblk_co_pdiscard(struct coblk_dev *dev, uint64_t offset,
                                   uint64_t bytes)
{
    return co_range(dev, false, offset, bytes, 0);
}

int coroutine_fn coblk_co_pwrite_zeroes(struct coblk_dev *dev,
                                        uint64_t offset, uint64_t bytes,
                                        int req_flags)
{
    if (req_flags & ~COBLK_REQ_F_UNMAP) {
        return -EINVAL;
    }
    return co_range(dev, true, offset, bytes, req_flags);
}

/* ---- copy offload ---------------------------------------------------------- */

int coroutine_fn blk_co_copy_range_from(struct coblk_dev *src,
                                        uint64_t src_offset,
                                        struct coblk_dev *dst,
                                        uint64_t dst_offset, uint64_t bytes)
{
    return src->drv->co_copy_range_from
               ? src->drv->co_copy_range_from(src, src_offset, dst,
                                              dst_offset, bytes)
               : -ENOTSUP;
}

int coroutine_fn blk_co_copy_range_to(struct coblk_dev *src,
                                      uint64_t src_offset,
                                      struct coblk_dev *dst,
                                      uint64_t dst_offset, uint64_t bytes)
{
    return dst->drv->co_copy_range_to
               ? dst->drv->co_copy_range_to(src, src_offset, dst, dst_offset,
                                            bytes)
               : -ENOTSUP;
}

static bool aligned_for(const struct coblk_dev *dev, uint64_t offset,
                        uint64_t bytes)
{
    return !((offset | bytes) & (dev->offset_align - 1));
}

int coroutine_fn coblk_co_copy_range(struct coblk_dev *src,
                                     uint64_t src_offset,
                                     struct coblk_dev *dst,
                                     uint64_t dst_offset, uint64_t bytes)
{
    if (!src || !dst || !in_bounds(src, src_offset, bytes) ||
        !in_bounds(dst, dst_offset, bytes)) {
        return -EINVAL;
    }
    if (dst->flags & COBLK_OPEN_RDONLY) {
        return -EROFS;
    }
    if (bytes == 0) {
        return 0;
    }
    /* The kernel copies O_DIRECT files in their blocks. */
    if (!aligned_for(src, src_offset, bytes) ||
        !aligned_for(dst, dst_offset, bytes)) {
        return -ENOTSUP;
    }
    blk_tracked reading, writing;
    request_begin(src, &reading, src_offset, src_offset + bytes, false);
    request_begin(dst, &writing, dst_offset, dst_offset + bytes, false);
    int ret = blk_co_copy_range_from(src, src_offset, dst, dst_offset, bytes);
    request_end(dst, &writing);
    request_end(src, &reading);
    return ret;
}

/* ---- block status ---------------------------------------------------------- */

void coroutine_fn blk_status_file_zeroes(struct coblk_dev *file,
                                         struct coblk_block_status *out)
{
    uint64_t host = out->host_offset;
    struct coblk_block_status fs;

    if (host >= blk_size(file)) {
        out->flags |= COBLK_BS_ZERO;        /* past the end of the file */
        return;
    }
    if (coblk_co_block_status(file, host, out->bytes, &fs) == 0) {
        out->flags |= fs.flags & COBLK_BS_ZERO;
        out->bytes = fs.bytes;
    }
}

/* One node's own status: its driver's, a filter's child's, or data. */
static int coroutine_fn node_status(struct coblk_dev *dev, uint64_t offset,
                                    uint64_t bytes,
                                    struct coblk_block_status *out)
{
    if (dev->drv->co_block_status) {
        return dev->drv->co_block_status(dev, offset, bytes, out);
    }
    if (dev->file) {
        return coblk_co_block_status(dev->file, offset, bytes, out);
    }
    *out = (struct coblk_block_status){
        .bytes = bytes, .flags = COBLK_BS_DATA | COBLK_BS_ALLOCATED };
    return 0;
}

int coroutine_fn coblk_co_block_status(struct coblk_dev *dev,
                                       uint64_t offset, uint64_t bytes,
                                       struct coblk_block_status *out)
{
    if (!dev || !out || bytes == 0 || offset >= dev->size) {
        return -EINVAL;
    }
    bytes = bytes < dev->size - offset ? bytes : dev->size - offset;
    /* Down the backing chain while the range is unallocated. */
    for (uint32_t depth = 0;; depth++) {
        int ret = node_status(dev, offset, bytes, out);
        if (ret < 0) {
            return ret;
        }
        if (out->bytes == 0 || out->bytes > bytes) {
            return -EIO;        /* a driver's bug: never loop on it */
        }
        out->depth = depth;
        if ((out->flags & COBLK_BS_ALLOCATED) || !dev->backing ||
            offset >= dev->backing->size) {
            if (!(out->flags & COBLK_BS_ALLOCATED) &&
                dev->drv->unallocated_reads_zeroes) {
                /* Past every layer: zeroes (where the layer may keep
                 * room for them). */
                out->flags = COBLK_BS_ZERO |
                             (out->flags & COBLK_BS_OFFSET_VALID);
            }
            return 0;
        }
        bytes = out->bytes;
        if (bytes > dev->backing->size - offset) {
            bytes = dev->backing->size - offset;
        }
        dev = dev->backing;
    }
}

/* ---- virtio-blk requests ----------------------------------------------------------- */

static void set_result(struct coblk_req *req, int ret)
{
    req->error = ret < 0 ? ret : 0;
    req->status = ret == 0 ? COBLK_S_OK
                  : ret == -ENOTSUP || ret == -EOPNOTSUPP ? COBLK_S_UNSUPP
                                                          : COBLK_S_IOERR;
}

/* request_rw(): the driver started the request (start_rw), and will
 * finish it. */
#define RW_STARTED 1

/* A request a driver may start and finish from its CQE (start_rw): one
 * that needs none of the generic path's work around the transfer. */
static inline __attribute__((always_inline)) bool
can_start(const struct coblk_dev *dev, bool write, uint64_t offset,
          uint64_t bytes, const struct iovec *iov, unsigned iovcnt,
          int req_flags)
{
    return dev->drv->start_rw && !(req_flags & COBLK_REQ_F_COMPRESS) &&
           bytes <= dev->max_transfer && bytes <= INT32_MAX &&
           iovcnt <= IOV_MAX && !needs_tracking(dev, write) &&
           dio_aligned(dev, offset, bytes, iov, iovcnt);
}

/* A read or write: 0, a negative errno, or RW_STARTED. */
static inline __attribute__((always_inline)) int coroutine_fn
request_rw(struct coblk_dev *dev, struct coblk_req *req, bool write)
{
    uint64_t sectors = blk_size(dev) / COBLK_SECTOR_SIZE;
    uint64_t bytes;
    int ret = iov_measure(req->iov, req->iovcnt, &bytes);

    if (ret < 0) {
        return ret;
    }
    if (bytes % COBLK_SECTOR_SIZE) {
        return -EINVAL;
    }
    if (req->sector > sectors || bytes / COBLK_SECTOR_SIZE >
                                     sectors - req->sector) {
        return -EINVAL;
    }
    if (write && (dev->flags & COBLK_OPEN_RDONLY)) {
        return -EROFS;
    }
    if (bytes == 0) {
        return 0;
    }
    uint64_t offset = req->sector * COBLK_SECTOR_SIZE;
    int req_flags = write ? (int)(req->flags & (COBLK_REQ_F_FUA |
                                                COBLK_REQ_F_COMPRESS))
                          : 0;
    if (can_start(dev, write, offset, bytes, req->iov, req->iovcnt,
                  req_flags) &&
        dev->drv->start_rw(dev, req, write, offset, bytes, req_flags)) {
        return RW_STARTED;
    }
    return co_rw_checked(dev, write, offset, bytes, req->iov, req->iovcnt,
                         req_flags, false);
}

static int coroutine_fn request_range(struct coblk_dev *dev,
                                      struct coblk_req *req, bool zeroes)
{
    uint64_t sectors = blk_size(dev) / COBLK_SECTOR_SIZE;

    if (req->sector > sectors || req->nr_sectors > sectors - req->sector) {
        return -EINVAL;
    }
    return co_range(dev, zeroes, req->sector * COBLK_SECTOR_SIZE,
                    (uint64_t)req->nr_sectors * COBLK_SECTOR_SIZE,
                    (int)(req->flags & COBLK_REQ_F_UNMAP));
}

static int request_get_id(struct coblk_dev *dev, struct coblk_req *req)
{
    uint64_t bytes;
    int ret = iov_measure(req->iov, req->iovcnt, &bytes);

    if (ret == 0) {
        iov_from_buf(req->iov, req->iovcnt, 0, dev->serial, COBLK_ID_BYTES);
    }
    return ret;
}

/* Flags each type accepts besides a priority (flags_allowed()). */
static uint32_t allowed_flags(uint32_t type)
{
    switch (type) {
    case COBLK_REQ_OUT:
        return COBLK_REQ_F_FUA | COBLK_REQ_F_COMPRESS;
    case COBLK_REQ_WRITE_ZEROES:
        return COBLK_REQ_F_UNMAP;
    default:
        return 0;
    }
}

/* Whether the request's flags are all its type's; reads and writes also
 * take a priority (COBLK_REQ_IOPRIO), which the driver's start_rw reads
 * from the request.  The common request, without flags, costs what it
 * did before priorities. */
static inline __attribute__((always_inline)) bool
flags_allowed(const struct coblk_req *req)
{
    uint32_t other = req->flags & ~allowed_flags(req->type);

    return !other || (!(other & ~COBLK_REQ_IOPRIO_MASK) &&
                      (req->type == COBLK_REQ_IN ||
                       req->type == COBLK_REQ_OUT));
}

/* Runs a virtio-blk request and sets its status and error; returns false
 * if its driver started it instead, to finish it later. */
static inline __attribute__((always_inline)) bool coroutine_fn
co_request(struct coblk_dev *dev, struct coblk_req *req)
{
    int ret;

    if (!flags_allowed(req)) {
        set_result(req, -ENOTSUP);
        return true;
    }
    switch (req->type) {
    case COBLK_REQ_IN:
    case COBLK_REQ_OUT:
        ret = request_rw(dev, req, req->type == COBLK_REQ_OUT);
        if (ret == RW_STARTED) {
            return false;
        }
        break;
    case COBLK_REQ_FLUSH:
        ret = coblk_co_flush(dev);
        break;
    case COBLK_REQ_GET_ID:
        ret = request_get_id(dev, req);
        break;
    case COBLK_REQ_DISCARD:
        ret = request_range(dev, req, false);
        break;
    case COBLK_REQ_WRITE_ZEROES:
        ret = request_range(dev, req, true);
        break;
    default:
        ret = -ENOTSUP;
        break;
    }
    set_result(req, ret);
    return true;
}

/* One function between the coroutine's start and the driver: each frame
 * still on the stack while a request waits costs two mispredicted returns
 * after it resumes (its own, and one of the code that woke it). */
void coroutine_fn blk_request_co(void *opaque)
{
    struct coblk_req *req = opaque;

    if (co_request(blk_req_private_of(req)->dev, req)) {
        blk_queue_request_done(req);
    }
}

void blk_request_finish(struct coblk_req *req, int ret)
{
    blk_req_private *p = blk_req_private_of(req);

    if (p->pin) {
        struct coblk_dev *dev = blk_queue_dev(p->queue);
        dev->drv->read_unpin(dev, p->pin - 1u);
        p->pin = 0;
    }
    set_result(req, ret);
    blk_queue_request_done(req);
}

bool blk_req_pin(struct coblk_dev *dev, struct coblk_req *req, unsigned pin)
{
    blk_req_private *p = blk_req_private_of(req);

    if (blk_queue_dev(p->queue) != dev) {
        return false;
    }
    p->pin = (uint8_t)(pin + 1);
    return true;
}

void blk_req_unpin(struct coblk_req *req)
{
    blk_req_private_of(req)->pin = 0;
}

bool coroutine_fn blk_start_rw_on(struct coblk_dev *dev,
                                  struct coblk_req *req, bool write,
                                  uint64_t offset, uint64_t bytes,
                                  int req_flags)
{
    blk_req_private *p = blk_req_private_of(req);

    if (!in_bounds(dev, offset, bytes) ||
        !can_start(dev, write, offset, bytes, req->iov, req->iovcnt,
                   req_flags)) {
        return false;
    }
    p->dev = dev;
    return dev->drv->start_rw(dev, req, write, offset, bytes, req_flags);
}

static void coroutine_fn request_retry_co(void *opaque)
{
    struct coblk_req *req = opaque;
    blk_req_private *p = blk_req_private_of(req);
    bool write = req->type == COBLK_REQ_OUT;
    int req_flags = write ? (int)(req->flags & COBLK_REQ_F_FUA) : 0;
    struct coblk_dev *dev = blk_queue_dev(p->queue);
    uint64_t offset = req->sector * COBLK_SECTOR_SIZE;

    /* The checks the request passed before it started hold (aligned,
     * allowed) but its bounds: the device may have shrunk since. */
    blk_request_finish(req, !in_bounds(dev, offset, p->bytes)
                                ? -EINVAL
                                : co_rw_checked(dev, write, offset, p->bytes,
                                                req->iov, req->iovcnt,
                                                req_flags, false));
}

void blk_request_retry(coblk_aio *ctx, struct coblk_req *req)
{
    coblk_co *co = coblk_co_create(request_retry_co, req);

    if (!co) {
        blk_request_finish(req, -ENOMEM);
        return;
    }
    coblk_aio_co_enter(ctx, co);
}
