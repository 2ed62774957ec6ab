/*
 * qcow2 reads and block status.  The image's lock is held at most to look
 * the range up (qcow2_map), and not even then where the L2 entries are
 * cached (qcow2_map_cached); the data is read without it, from the file,
 * the backing image or, for compressed clusters, through a buffer of the
 * request's own.
 */
#include "config.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "qcow2.h"

#define SLICE_IOVS 16   /* on the stack; more are rare */

int coroutine_fn qcow2_rw_part(struct coblk_dev *dev, bool write,
                               uint64_t offset, uint64_t bytes,
                               const struct iovec *iov, unsigned iovcnt,
                               uint64_t skip)
{
    struct iovec local[SLICE_IOVS];
    struct iovec *part = iovcnt <= SLICE_IOVS ? local
                         : malloc(iovcnt * sizeof(*part));

    if (!part) {
        return -ENOMEM;
    }
    unsigned n = iov_slice(iov, iovcnt, skip, bytes, part, iovcnt, NULL);
    int ret = write ? coblk_co_pwritev(dev, offset, bytes, part, n, 0)
                    : coblk_co_preadv(dev, offset, bytes, part, n);
    if (part != local) {
        free(part);
    }
    return ret;
}

/* Reads [offset, offset + bytes) of `from` into iov at skip; what lies
 * past from's end reads as zeroes (a backing image smaller than its
 * overlay, a file that ends inside its last cluster). */
static int coroutine_fn read_part(struct coblk_dev *from, uint64_t offset,
                                  uint64_t bytes, const struct iovec *iov,
                                  unsigned iovcnt, uint64_t skip,
                                  bool whole)
{
    uint64_t avail = !from || offset >= from->size ? 0
                     : from->size - offset < bytes ? from->size - offset
                                                   : bytes;
    if (avail < bytes) {
        iov_memset(iov, iovcnt, skip + avail, 0, bytes - avail);
    }
    if (!avail) {
        return 0;
    }
    if (whole && avail == bytes) {
        return coblk_co_preadv(from, offset, bytes, iov, iovcnt);
    }
    return qcow2_rw_part(from, false, offset, avail, iov, iovcnt, skip);
}

static int inflate_zlib(const uint8_t *in, size_t in_len, uint8_t *out,
                        size_t out_len)
{
    z_stream z = { .next_in = (Bytef *)in, .avail_in = (uInt)in_len,
                   .next_out = out, .avail_out = (uInt)out_len };

    /* Raw deflate: qcow2's clusters carry no zlib header. */
    if (inflateInit2(&z, -12) != Z_OK) {
        return -ENOMEM;
    }
    int ret = inflate(&z, Z_FINISH);
    inflateEnd(&z);
    /* Done when the cluster is full: the input may run on into the next
     * compressed cluster's sector. */
    bool full = z.avail_out == 0;
    return (ret == Z_STREAM_END || ret == Z_BUF_ERROR) && full ? 0 : -EIO;
}

static int decompress_zstd(const uint8_t *in, size_t in_len, uint8_t *out,
                           size_t out_len)
{
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    ZSTD_inBuffer input = { in, in_len, 0 };
    ZSTD_outBuffer output = { out, out_len, 0 };
    int ret = 0;

    if (!dctx) {
        return -ENOMEM;
    }
    /* Streaming: a frame may not record its size, a cluster may take
     * several frames, and the input may have trailing bytes.  Done when
     * the cluster is full; an error when nothing moves any more. */
    while (output.pos < output.size) {
        size_t in_before = input.pos, out_before = output.pos;
        size_t left = ZSTD_decompressStream(dctx, &output, &input);
        if (ZSTD_isError(left) ||
            (input.pos == in_before && output.pos == out_before)) {
            ret = -EIO;
            break;
        }
    }
    ZSTD_freeDCtx(dctx);
    return ret;
}

/* Clusters from this size on are inflated on a worker thread: below it
 * the hop to the worker and back costs more than the inflating, which
 * stalls the event loop's other requests only briefly. */
#define INFLATE_IN_WORKER_MIN (16u << 10)

struct inflate_job {
    const qcow2_state *s;
    const uint8_t *in;
    size_t len;
    uint8_t *out;
};

static int inflate_job(void *opaque)
{
    struct inflate_job *j = opaque;
    size_t out_len = j->s->cluster_size;

    return j->s->h.compression_type == QCOW2_COMPRESS_ZSTD
               ? decompress_zstd(j->in, j->len, j->out, out_len)
               : inflate_zlib(j->in, j->len, j->out, out_len);
}

/* Reads the compressed cluster described by desc and copies bytes of it,
 * from in_cluster on, into iov at skip. */
static int coroutine_fn read_compressed(qcow2_state *s, uint64_t desc,
                                        uint64_t in_cluster, uint64_t bytes,
                                        const struct iovec *iov,
                                        unsigned iovcnt, uint64_t skip)
{
    uint64_t host, len;

    qcow2_compressed_extent(s, desc, &host, &len);
    if (host >= blk_size(s->file)) {
        return blk_error(-EIO, "qcow2: the image is corrupt: a compressed "
                         "cluster at %#" PRIx64 " lies outside the file",
                         host);
    }
    uint8_t *in = malloc(len + s->cluster_size);
    if (!in) {
        return -ENOMEM;
    }
    uint8_t *out = in + len;
    int ret = coblk_co_preadv(s->file, host, len,
                              &(struct iovec){ in, len }, 1);
    if (ret == 0) {
        struct inflate_job job = { s, in, len, out };
        ret = s->cluster_size >= INFLATE_IN_WORKER_MIN
                  ? blk_co_run_in_worker(inflate_job, &job)
                  : inflate_job(&job);
        if (ret == -EIO) {
            blk_error(ret, "qcow2: the compressed cluster at %#" PRIx64
                      " does not decompress to a cluster", host);
        }
    }
    if (ret == 0) {
        iov_from_buf(iov, iovcnt, skip, out + in_cluster, bytes);
    }
    free(in);
    return ret;
}

/* What the image says about [offset, offset + bytes): one extent, from
 * the cache without the lock where it can be. */
static int coroutine_fn map_range(struct coblk_dev *dev, uint64_t offset,
                                  uint64_t bytes, qcow2_extent *ext)
{
    qcow2_state *s = dev->opaque;

    if (qcow2_map_cached(s, offset, bytes, ext)) {
        return 0;
    }
    atomic_fetch_add_explicit(&dev->stats.locked_lookups, 1,
                              memory_order_relaxed);
    qcow2_lock(s);
    int ret = qcow2_map(s, offset, bytes, ext);
    qcow2_unlock(s);
    return ret;
}

/* Whether reads of dev must pin what they read: an image open for
 * writing may free a cluster while a read of it is in flight. */
static bool pins_reads(const struct coblk_dev *dev)
{
    return !(dev->flags & COBLK_OPEN_RDONLY);
}

static int coroutine_fn read_extents(struct coblk_dev *dev, uint64_t offset,
                                     uint64_t bytes, const struct iovec *iov,
                                     unsigned iovcnt)
{
    qcow2_state *s = dev->opaque;

    for (uint64_t done = 0; done < bytes;) {
        qcow2_extent ext;
        uint64_t at = offset + done;
        int ret = map_range(dev, at, bytes - done, &ext);
        if (ret < 0) {
            return ret;
        }
        bool whole = done == 0 && ext.bytes == bytes;
        switch (ext.kind) {
        case QCOW2_UNALLOCATED:
        case QCOW2_UNALLOCATED_ALLOC:
            ret = read_part(s->backing, at, ext.bytes, iov, iovcnt, done,
                            whole);
            break;
        case QCOW2_ZERO:
        case QCOW2_ZERO_ALLOC:
            iov_memset(iov, iovcnt, done, 0, ext.bytes);
            break;
        case QCOW2_NORMAL:
            ret = read_part(s->file, ext.host, ext.bytes, iov, iovcnt, done,
                            whole);
            break;
        case QCOW2_COMPRESSED:
            ret = read_compressed(s, ext.host, at & (s->cluster_size - 1),
                                  ext.bytes, iov, iovcnt, done);
            break;
        }
        if (ret < 0) {
            return ret;
        }
        done += ext.bytes;
    }
    return 0;
}

int coroutine_fn qcow2_co_preadv(struct coblk_dev *dev, uint64_t offset,
                                 uint64_t bytes, const struct iovec *iov,
                                 unsigned iovcnt)
{
    qcow2_state *s = dev->opaque;

    if (!pins_reads(dev)) {
        return read_extents(dev, offset, bytes, iov, iovcnt);
    }
    unsigned pin = qcow2_read_pin(s);
    int ret = read_extents(dev, offset, bytes, iov, iovcnt);
    qcow2_read_unpin(s, pin);
    return ret;
}

/* One extent of a copy offload: from the image's file, or from its
 * backing image where that holds the bytes.  Zeroes and compressed
 * clusters are for the caller to copy through a buffer. */
static int coroutine_fn copy_extent(qcow2_state *s, const qcow2_extent *ext,
                                    uint64_t offset, struct coblk_dev *dst,
                                    uint64_t dst_offset)
{
    switch (ext->kind) {
    case QCOW2_NORMAL:
        return blk_co_copy_range_from(s->file, ext->host, dst, dst_offset,
                                      ext->bytes);
    case QCOW2_UNALLOCATED:
    case QCOW2_UNALLOCATED_ALLOC:
        if (s->backing && offset <= blk_size(s->backing) &&
            ext->bytes <= blk_size(s->backing) - offset) {
            return blk_co_copy_range_from(s->backing, offset, dst,
                                          dst_offset, ext->bytes);
        }
        return -ENOTSUP;
    default:
        return -ENOTSUP;
    }
}

/* Copy offload, pinned as a read (see copy_extent). */
static int coroutine_fn copy_extents(struct coblk_dev *src,
                                     uint64_t src_offset,
                                     struct coblk_dev *dst,
                                     uint64_t dst_offset, uint64_t bytes)
{
    qcow2_state *s = src->opaque;

    for (uint64_t done = 0; done < bytes;) {
        qcow2_extent ext;
        int ret = map_range(src, src_offset + done, bytes - done, &ext);
        if (ret == 0) {
            ret = copy_extent(s, &ext, src_offset + done, dst,
                              dst_offset + done);
        }
        if (ret < 0) {
            return ret;
        }
        done += ext.bytes;
    }
    return 0;
}

int coroutine_fn qcow2_co_copy_range_from(struct coblk_dev *src,
                                          uint64_t src_offset,
                                          struct coblk_dev *dst,
                                          uint64_t dst_offset, uint64_t bytes)
{
    qcow2_state *s = src->opaque;

    if (!pins_reads(src)) {
        return copy_extents(src, src_offset, dst, dst_offset, bytes);
    }
    unsigned pin = qcow2_read_pin(s);
    int ret = copy_extents(src, src_offset, dst, dst_offset, bytes);
    qcow2_read_unpin(s, pin);
    return ret;
}

void qcow2_read_unpin_op(struct coblk_dev *dev, unsigned pin)
{
    qcow2_read_unpin(dev->opaque, pin);
}

/* A read that is one extent of the file's or the backing image's bytes
 * as they lie there goes to that device as it is, to be started there
 * (a queue's hot path, see start_rw); the rest (zeroes, compressed
 * clusters, reads across extents, writes, which must own their clusters
 * while they run) take the coroutine path. */
bool coroutine_fn qcow2_start_rw(struct coblk_dev *dev,
                                 struct coblk_req *req, bool write,
                                 uint64_t offset, uint64_t bytes,
                                 int req_flags)
{
    qcow2_state *s = dev->opaque;
    qcow2_extent ext;

    if (write) {
        return false;
    }
    /* Pinned before the lookup; a read of this image's clusters holds the
     * pin until it finishes (the coroutine path pins its own). */
    bool pinning = pins_reads(dev);
    unsigned phase = pinning ? qcow2_read_pin(s) : 0;
    bool mapped = map_range(dev, offset, bytes, &ext) == 0 &&
                  ext.bytes >= bytes;
    if (mapped && ext.kind == QCOW2_NORMAL &&
        (!pinning || blk_req_pin(dev, req, phase))) {
        if (blk_start_rw_on(s->file, req, false, ext.host, bytes,
                            req_flags)) {
            return true;
        }
        blk_req_unpin(req);
    }
    if (pinning) {
        qcow2_read_unpin(s, phase);
    }
    /* The backing image's bytes: no cluster of this image to keep. */
    return mapped && s->backing &&
           (ext.kind == QCOW2_UNALLOCATED ||
            ext.kind == QCOW2_UNALLOCATED_ALLOC) &&
           blk_start_rw_on(s->backing, req, false, offset, bytes, req_flags);
}

/* Whether the image looks preallocated: it counts clearly more clusters in
 * use than its file has blocks (over 10/9 of them, and 2 more), QEMU's
 * rule.  Then the holes of its file under data clusters read as zeroes
 * too, which block status tells (and convert, compare and map use); for
 * other images QEMU does not look, and neither does coblk, so that the
 * statuses agree with qemu-img's. */
static int coroutine_fn looks_preallocated(qcow2_state *s, bool *yes)
{
    if (s->preallocated == 0) {
        int64_t real = blk_allocated_bytes(s->file);
        uint64_t real_clusters = real > 0 ? (uint64_t)real / s->cluster_size
                                          : 0;
        uint64_t threshold = real_clusters * 10 / 9 > real_clusters + 2
                                 ? real_clusters * 10 / 9 : real_clusters + 2;
        uint64_t clusters = (s->file->size + s->cluster_size - 1) >>
                            s->h.cluster_bits, used = 0;
        bool found = false;
        qcow2_lock(s);
        for (uint64_t c = 0; real >= 0 && c < clusters && !found; c++) {
            uint64_t refcount;
            int ret = qcow2_get_refcount(s, c << s->h.cluster_bits,
                                         &refcount);
            if (ret < 0) {
                qcow2_unlock(s);
                return ret;
            }
            used += refcount > 0;
            found = used > threshold;
        }
        qcow2_unlock(s);
        s->preallocated = found ? 2 : 1;
    }
    *yes = s->preallocated == 2;
    return 0;
}

int coroutine_fn qcow2_co_block_status(struct coblk_dev *dev,
                                       uint64_t offset, uint64_t bytes,
                                       struct coblk_block_status *out)
{
    qcow2_state *s = dev->opaque;
    qcow2_extent ext;
    int ret = map_range(dev, offset, bytes, &ext);

    if (ret < 0) {
        return ret;
    }
    static const uint32_t flags[] = {
        [QCOW2_UNALLOCATED] = 0,
        [QCOW2_UNALLOCATED_ALLOC] = COBLK_BS_OFFSET_VALID,
        [QCOW2_ZERO] = COBLK_BS_ZERO | COBLK_BS_ALLOCATED,
        [QCOW2_ZERO_ALLOC] = COBLK_BS_ZERO | COBLK_BS_ALLOCATED |
                             COBLK_BS_OFFSET_VALID,
        [QCOW2_NORMAL] = COBLK_BS_DATA | COBLK_BS_ALLOCATED |
                         COBLK_BS_OFFSET_VALID,
        [QCOW2_COMPRESSED] = COBLK_BS_DATA | COBLK_BS_ALLOCATED |
                             COBLK_BS_COMPRESSED,
    };
    *out = (struct coblk_block_status){
        .bytes = ext.bytes, .flags = flags[ext.kind],
        .host_offset = flags[ext.kind] & COBLK_BS_OFFSET_VALID ? ext.host
                                                               : 0 };
    bool preallocated;
    if (ext.kind == QCOW2_NORMAL &&
        (ret = looks_preallocated(s, &preallocated)) == 0 && preallocated) {
        blk_status_file_zeroes(s->file, out);
    }
    return ret;
}
