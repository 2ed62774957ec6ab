/*
 * libcoblk: block devices on coroutines and io_uring.
 *
 * Open a device by a short spec ("file:/path", "null:size=1G"), then either
 * submit virtio-blk style requests on a queue and reap their completions,
 * call the synchronous helpers, or, from coroutine code, the coblk_co_*
 * functions.  Every function returns 0 (or a count) or a negative errno;
 * coblk_last_error() then says what went wrong, for a human.  Nothing
 * aborts on bad input.
 */
#ifndef COBLK_COBLK_H
#define COBLK_COBLK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "coblk/aio.h"
#include "coblk/coroutine.h"

#ifdef __cplusplus
extern "C" {
#endif

struct coblk_dev;
struct coblk_queue;

/* Request types, with virtio-blk's values. */
enum {
    COBLK_REQ_IN = 0,               /* read into iov */
    COBLK_REQ_OUT = 1,              /* write from iov */
    COBLK_REQ_FLUSH = 4,
    COBLK_REQ_GET_ID = 8,           /* a 20-byte serial into iov */
    COBLK_REQ_DISCARD = 11,         /* nr_sectors from sector */
    COBLK_REQ_WRITE_ZEROES = 13,    /* nr_sectors from sector */
};

/* Request flags. */
enum {
    COBLK_REQ_F_FUA = 1u << 0,      /* OUT: durable before completion */
    COBLK_REQ_F_UNMAP = 1u << 1,    /* WRITE_ZEROES: may deallocate */
    COBLK_REQ_F_COMPRESS = 1u << 2, /* OUT: whole clusters, stored
                                     * compressed by a format that can
                                     * (qcow2); others: -ENOTSUP */
};

/* An I/O priority for a read or write, as ioprio(2) values it (class << 13
 * | level, IOPRIO_PRIO_VALUE()), in the upper 16 bits of flags: 0 is the
 * submitting thread's own priority (ioprio_set(2)).  A queue's requests
 * on a file (or raw over one) that go straight to its io_uring ring, the
 * common case (aligned, within the transfer limit), carry it as their
 * SQE's ioprio; those the library splits, bounces or retries after a
 * short transfer, and requests on other devices, run at the thread's
 * priority.  The kernel checks it: a class it does not know fails the
 * request with -EINVAL, the real-time class without CAP_SYS_ADMIN or
 * CAP_SYS_NICE with -EPERM. */
#define COBLK_REQ_IOPRIO_SHIFT 16
#define COBLK_REQ_IOPRIO_MASK 0xffff0000u
#define COBLK_REQ_IOPRIO(v)                                                  \
    (((uint32_t)(v) & 0xffffu) << COBLK_REQ_IOPRIO_SHIFT)
#define COBLK_REQ_IOPRIO_OF(flags)                                           \
    ((uint16_t)((flags) >> COBLK_REQ_IOPRIO_SHIFT))

/* Request status, with virtio-blk's values. */
enum {
    COBLK_S_OK = 0,
    COBLK_S_IOERR = 1,
    COBLK_S_UNSUPP = 2,
};

#define COBLK_SECTOR_SIZE 512
#define COBLK_ID_BYTES 20

struct coblk_req {
    uint32_t type;
    uint32_t flags;
    uint64_t sector;                /* in 512-byte units */
    uint32_t nr_sectors;            /* DISCARD and WRITE_ZEROES */
    struct iovec *iov;              /* IN, OUT, GET_ID */
    unsigned iovcnt;
    uint8_t status;                 /* out: COBLK_S_* */
    int error;                      /* out: 0 or -errno, the detail */
    void *opaque;                   /* the caller's */
    uint64_t reserved[4];           /* the library's; leave alone */
};

/* Open flags; 0 is read-write and buffered. */
enum {
    COBLK_OPEN_RDONLY = 1u << 0,
    COBLK_OPEN_DIRECT = 1u << 1,    /* bypass the page cache (O_DIRECT) */
    COBLK_OPEN_NO_BACKING = 1u << 2,/* leave an image's backing file closed:
                                     * what it would supply reads as zeroes
                                     * (tools that look at or edit the
                                     * image itself, as qemu-img info) */
    COBLK_OPEN_NO_FLUSH = 1u << 3,  /* flushes succeed without reaching the
                                     * disk (QEMU's cache=unsafe): for an
                                     * image worth nothing after a crash
                                     * anyway, as one being converted */
    COBLK_OPEN_LOCK = 1u << 4,      /* take QEMU's image locks (OFD locks)
                                     * on the files of the image and its
                                     * chain: a read-only open lets others
                                     * read but not write; a read-write
                                     * open, neither.  Where another
                                     * process (or open) holds a lock that
                                     * conflicts: -EBUSY */
    COBLK_OPEN_CHECK = 1u << 5,     /* for coblk_check() with repair (as
                                     * qemu-img check -r): an image marked
                                     * corrupt opens read-write, but only
                                     * the check writes to it, and a repair
                                     * that leaves nothing wrong clears the
                                     * mark */
};

/* Opens spec, a driver name, its arguments and, for formats and filters,
 * the spec of what they stand on (coblk(3) has the grammar):
 *   PATH | file:PATH                    a regular file or block device
 *   null:size=SIZE[,latency-ns=N]       no storage: reads zeroes
 *   raw:[offset=N,size=N:]CHILD         raw image data, or a window of it
 *   qcow2:[OPTIONS:]CHILD               a qcow2 image, its backing chain
 *                                       (OPTIONS: l2-cache-size=SIZE,
 *                                       snapshot=ID-OR-NAME, probed=on)
 *   blkdebug:RULES:CHILD                fault injection
 * e.g. "qcow2:disk.qcow2", "raw:file:disk.img".  The format is never
 * guessed: a bare path is a file (see coblk_probe()).  Returns 0, or
 * -EINVAL (bad spec or image), -ENOENT, -EACCES, ...; see
 * coblk_last_error(). */
COBLK_API int coblk_dev_open(const char *spec, int flags,
                             struct coblk_dev **out);

/* Waits for the device's requests in flight, then closes it.  Returns 0,
 * or -EBUSY while queues of the device are open: free them first (the
 * device stays open and usable). */
COBLK_API int coblk_dev_close(struct coblk_dev *dev);

/* Size in bytes, or -errno. */
COBLK_API int64_t coblk_dev_size(struct coblk_dev *dev);

/* Counters of a device's rare paths (its own, not its children's): if
 * they grow, someone should know.  Fields are only ever appended. */
struct coblk_dev_stats {
    uint64_t short_reads;       /* the kernel read less: the rest resubmitted */
    uint64_t short_writes;
    uint64_t resubmits;         /* -EAGAIN / -EINTR from the kernel */
    uint64_t bounces;           /* misaligned for O_DIRECT: bounce buffers */
    uint64_t splits;            /* past the driver's limits: in pieces */
    uint64_t serialising_waits; /* for an overlapping read-modify-write */
    uint64_t locked_lookups;    /* a format's lookups (of reads, block
                                 * status) under the image's lock: not
                                 * cached, or the image changing then */
};

/* Copies the device's counters into stats, of size bytes (pass
 * sizeof(*stats); fields this library lacks read 0).  From any thread.
 * Returns 0, or -EINVAL. */
COBLK_API int coblk_dev_stats(struct coblk_dev *dev,
                              struct coblk_dev_stats *stats, size_t size);

/* A queue of at most `depth` requests in flight (submitted and not yet
 * reaped) whose coroutines run in ctx, or in this thread's context (made if
 * there is none) when ctx is NULL: the caller then runs them in
 * coblk_queue_reap().  A queue is used from one thread at a time; one on
 * this thread's context, from this thread only.  Free a device's queues
 * before the device. */
COBLK_API int coblk_queue_new(struct coblk_dev *dev, unsigned depth,
                              coblk_aio *ctx, struct coblk_queue **out);

/* Submits n requests; returns how many were taken (fewer when the queue is
 * full), or -EINVAL.  A taken request completes exactly once: it comes back
 * from coblk_queue_reap() with its status set. */
COBLK_API int coblk_queue_submit(struct coblk_queue *q,
                                 struct coblk_req **reqs, unsigned n);

/* Waits until at least min requests completed (or timeout_ms passed; -1:
 * no limit) and returns up to max of them in done.  Returns the count, or
 * -EINVAL. */
COBLK_API int coblk_queue_reap(struct coblk_queue *q, struct coblk_req **done,
                               unsigned min, unsigned max, int timeout_ms);

/* An fd that is readable while completions wait to be reaped (for a queue
 * whose context runs on another thread; otherwise the ring's fd). */
COBLK_API int coblk_queue_fd(struct coblk_queue *q);

/* Waits for the queue's requests in flight, then frees it. */
COBLK_API void coblk_queue_free(struct coblk_queue *q);

/* Synchronous helpers (submit and wait).  Return 0 or -errno. */
COBLK_API int coblk_pread(struct coblk_dev *dev, void *buf, size_t bytes,
                          uint64_t offset);
COBLK_API int coblk_pwrite(struct coblk_dev *dev, const void *buf,
                           size_t bytes, uint64_t offset);
COBLK_API int coblk_flush(struct coblk_dev *dev);

/* For coroutine code: byte ranges, any alignment.  Return 0 or -errno. */
COBLK_API int coroutine_fn coblk_co_preadv(struct coblk_dev *dev,
                                           uint64_t offset, uint64_t bytes,
                                           const struct iovec *iov,
                                           unsigned iovcnt);
COBLK_API int coroutine_fn coblk_co_pwritev(struct coblk_dev *dev,
                                            uint64_t offset, uint64_t bytes,
                                            const struct iovec *iov,
                                            unsigned iovcnt, int req_flags);
COBLK_API int coroutine_fn coblk_co_flush(struct coblk_dev *dev);
COBLK_API int coroutine_fn coblk_co_pdiscard(struct coblk_dev *dev,
                                             uint64_t offset, uint64_t bytes);
COBLK_API int coroutine_fn coblk_co_pwrite_zeroes(struct coblk_dev *dev,
                                                  uint64_t offset,
                                                  uint64_t bytes,
                                                  int req_flags);

/* Copies bytes from src at src_offset to dst at dst_offset without passing
 * them through the caller (copy offload, as qemu-img convert -C): where
 * both end on files, through raw images (not blkdebug), and from a qcow2
 * image's allocated data clusters, with copy_file_range(2).  -ENOTSUP
 * where the devices cannot, or offsets and length do not suit their
 * alignment: copy the range through a buffer instead (a part of it may
 * have been copied already). */
COBLK_API int coroutine_fn coblk_co_copy_range(struct coblk_dev *src,
                                               uint64_t src_offset,
                                               struct coblk_dev *dst,
                                               uint64_t dst_offset,
                                               uint64_t bytes);

/* What an image would take (coblk_measure()), as qemu-img measure says. */
struct coblk_measure {
    uint64_t required;              /* for the data there is */
    uint64_t fully_allocated;       /* with every cluster allocated */
    uint64_t bitmaps;               /* persistent bitmaps (none: 0) */
};

/* Measures an image in format fmt ("qcow2", "raw") with create options
 * (NULL: defaults) holding either size bytes of nothing (source NULL) or
 * what source holds (size 0: source's size).  Fills out (size:
 * sizeof(*out)).  Returns 0, or -EINVAL naming what is wrong. */
COBLK_API int coblk_measure(const char *fmt, const char *options,
                            uint64_t size, struct coblk_dev *source,
                            struct coblk_measure *out, size_t out_size);

/* Changes the device's size to size bytes (a file, a raw image, a qcow2
 * image; opened for writing).  An image grows with unallocated space; it
 * shrinks only where nothing past the new end is stored.  Returns 0, or
 * -ENOTSUP (a driver that cannot, or data past the new end), -EROFS,
 * -errno. */
COBLK_API int coblk_truncate(struct coblk_dev *dev, uint64_t size);

/* How coblk_truncate_prealloc() provides the space an image grows by, as
 * qemu-img resize --preallocation=MODE. */
enum coblk_prealloc {
    COBLK_PREALLOC_OFF,         /* nothing: coblk_truncate() */
    COBLK_PREALLOC_METADATA,    /* an image's tables cover it (qcow2) */
    COBLK_PREALLOC_FALLOC,      /* and the file system reserves it */
    COBLK_PREALLOC_FULL,        /* zeroes written */
};

/* coblk_truncate() that grows the device with its new space preallocated
 * as mode says; reads of it return zeroes.  Returns 0, or -EINVAL for a
 * shrink with a mode other than OFF, -ENOTSUP for a mode the driver does
 * not have (METADATA on a file), -EROFS, -errno. */
COBLK_API int coblk_truncate_prealloc(struct coblk_dev *dev, uint64_t size,
                                      enum coblk_prealloc mode);

/* What a range of a device holds (coblk_co_block_status()). */
enum {
    COBLK_BS_DATA = 1u << 0,        /* reads come from stored data */
    COBLK_BS_ZERO = 1u << 1,        /* reads as zeroes */
    COBLK_BS_ALLOCATED = 1u << 2,   /* a layer of the chain decides what it
                                     * reads (else: zeroes past them all) */
    COBLK_BS_OFFSET_VALID = 1u << 3,/* host_offset tells where */
    COBLK_BS_COMPRESSED = 1u << 4,  /* stored compressed */
};

struct coblk_block_status {
    uint64_t bytes;                 /* how far from offset this holds */
    uint32_t flags;                 /* COBLK_BS_* */
    uint32_t depth;                 /* the layer that decides: 0 the
                                     * device, 1 its backing image, ... */
    uint64_t host_offset;           /* OFFSET_VALID: in that layer's file */
};

/* The status of the device at offset, for at most bytes (> 0) from there,
 * following backing chains.  Returns 0 (out->bytes > 0), or -EINVAL past
 * the end, or the error reading metadata. */
COBLK_API int coroutine_fn coblk_co_block_status(
    struct coblk_dev *dev, uint64_t offset, uint64_t bytes,
    struct coblk_block_status *out);
COBLK_API int coblk_block_status(struct coblk_dev *dev, uint64_t offset,
                                 uint64_t bytes,
                                 struct coblk_block_status *out);

/* For tools that guess formats as qemu-img does: reads the start of the
 * file at path and writes "qcow2" or "raw" to fmt (size bytes, at least
 * 8).  Returns 0, or -errno (-ENOTSUP for an old qcow version 1, or a
 * format coblk does not read: vmdk, vdi, vpc, vhdx, qed, ...).  A
 * caller that opens a probed image must not trust it with a backing file:
 * coblk opens "qcow2:probed=on:PATH" only without one. */
COBLK_API int coblk_probe(const char *path, char *fmt, size_t size);

/* Creates an image of size bytes at path (replacing what is there) in
 * format fmt, "qcow2" or "raw", with options as qemu-img create -o takes
 * them, or NULL:
 *   qcow2: cluster_size, compat (0.10, 1.1), refcount_bits,
 *          lazy_refcounts, extended_l2, compression_type (zlib, zstd),
 *          preallocation (off, metadata, falloc, full), backing_file and
 *          backing_fmt (then size 0 takes the backing image's)
 *   raw:   preallocation (off, falloc, full)
 * Returns 0, or -EINVAL naming a bad option, -EFBIG, -errno. */
COBLK_API int coblk_create(const char *fmt, const char *path, uint64_t size,
                           const char *options);

/* What an image is (coblk_image_info()): what qemu-img info shows.
 * Strings belong to the device, valid until it closes. */
struct coblk_snapshot_info {
    const char *id, *name;
    uint64_t vm_state_size;
    uint32_t date_sec, date_nsec;
    uint64_t vm_clock_nsec;
    uint64_t disk_size;             /* the guest's size at the snapshot */
    int64_t icount;                 /* -1: not recorded */
};

/* A persistent dirty bitmap a qcow2 image holds (coblk keeps none up to
 * date: an image written through coblk has them all declared stale). */
struct coblk_bitmap_info {
    const char *name;
    uint64_t granularity;           /* bytes a bit stands for */
    bool in_use;                    /* qemu-img's flag "in-use": left
                                     * inconsistent by its last writer */
    bool auto_update;               /* its flag "auto": follows writes */
};

struct coblk_image_info {
    const char *format;             /* the driver: "qcow2", "raw", ... */
    uint64_t virtual_size;
    uint64_t cluster_size;          /* 0: none */
    const char *backing_file;       /* as the image records it, or NULL */
    const char *backing_format;     /* recorded, or NULL */
    const char *full_backing_file;  /* the path opened, or NULL */
    /* qcow2 */
    const char *compat;             /* "0.10" or "1.1" */
    const char *compression_type;   /* "zlib" or "zstd" */
    unsigned refcount_bits;
    bool lazy_refcounts, extended_l2, corrupt, dirty;
    unsigned nb_snapshots;
    const struct coblk_snapshot_info *snapshots;
    unsigned nb_bitmaps;
    const struct coblk_bitmap_info *bitmaps;
    bool stale_bitmaps;             /* bitmaps a program that does not
                                     * keep them up to date wrote past:
                                     * their clusters are leaks */
};

/* Fills info (size: sizeof(*info)) for the device's top node.  Returns 0
 * or -EINVAL. */
COBLK_API int coblk_image_info(struct coblk_dev *dev,
                               struct coblk_image_info *info, size_t size);

/* Checking an image's metadata (coblk_check()), with qemu-img check's
 * counters. */
enum {
    COBLK_CHECK_REPAIR_LEAKS = 1u << 0,     /* clusters counted, unused */
    COBLK_CHECK_REPAIR_ERRORS = 1u << 1,    /* counts too low, flags */
};

struct coblk_check {
    /* In. */
    unsigned repair;                /* COBLK_CHECK_REPAIR_*; needs a device
                                     * open for writing */
    void (*report)(void *opaque, const char *line);  /* each problem, as
                                     * qemu-img words it; or NULL */
    void *opaque;
    /* Out. */
    uint64_t corruptions, leaks, check_errors;
    uint64_t corruptions_fixed, leaks_fixed;
    uint64_t total_clusters;        /* guest clusters */
    uint64_t allocated_clusters, fragmented_clusters, compressed_clusters;
    uint64_t image_end_offset;      /* past the last cluster in use */
};

/* Checks the image dev opened (a format: qcow2) as qemu-img check does:
 * every table entry, every refcount against the references counted.
 * Fills check (size: sizeof(*check)).  Returns 0 when the check ran
 * (problems are in the counters), or -ENOTSUP for a device that is no
 * image, -EROFS for a repair on a read-only device, -errno. */
COBLK_API int coblk_check(struct coblk_dev *dev, struct coblk_check *check,
                          size_t size);

/* Records backing (NULL: none) as the backing file of the image dev
 * opened for writing (qcow2), with its format (NULL: not recorded), as
 * qemu-img rebase -u does: nothing else changes, the data included; reads
 * go on through the backing image dev opened until it is opened again.
 * An image opened with COBLK_OPEN_NO_BACKING can be changed so.  Returns
 * 0, or -ENOTSUP (a raw image), -EROFS, -EINVAL (the name does not fit in
 * the header), -errno. */
COBLK_API int coblk_set_backing(struct coblk_dev *dev, const char *backing,
                                const char *format);

/* Drops everything the image dev (qcow2, opened for writing) stores, so
 * that it reads as its backing file, or as zeroes without one: qemu-img
 * commit's last step.  Returns 0, or -ENOTSUP, -EROFS, -errno. */
COBLK_API int coblk_make_empty(struct coblk_dev *dev);

/* Changes options of the image dev (qcow2, opened for writing), as
 * qemu-img amend does: compat (0.10 or 1.1; down only where version 2
 * can describe the image), lazy_refcounts (on, off), refcount_bits (a
 * power of two up to 64 that holds every refcount; 16 with compat=0.10).
 * Returns 0, or -EINVAL (a bad option, named), -ENOTSUP, -EROFS,
 * -errno. */
COBLK_API int coblk_amend(struct coblk_dev *dev, const char *options);

/* Internal snapshots of the image dev (qcow2, opened for writing), as
 * qemu-img snapshot -c, -a and -d make them; no request may be in flight
 * on dev meanwhile.  Create records the image as it is now under `name`
 * (names need not be unique), with the next free numeric id, the time,
 * and no VM state, as qemu-img does.  Apply makes the image what the
 * snapshot recorded (its size too), and delete drops one; `which` is an
 * id, else a name (the first one that matches).  coblk_image_info() lists
 * them.  Returns 0, or -ENOENT (no such snapshot), -EFBIG (the table is
 * full), -ENOTSUP (raw), -EROFS, -errno. */
COBLK_API int coblk_snapshot_create(struct coblk_dev *dev, const char *name);
COBLK_API int coblk_snapshot_apply(struct coblk_dev *dev, const char *which);
COBLK_API int coblk_snapshot_delete(struct coblk_dev *dev, const char *which);

/* Persistent dirty bitmaps of the image dev (qcow2 version 3, opened for
 * writing), edited as qemu-img bitmap edits them; no request may be in
 * flight on dev meanwhile.  Each edit is on disk when the call returns.
 * ADD makes an empty bitmap that follows writes ("auto"), of
 * `granularity` bytes a bit (a power of two from 512 B to 2 GiB; 0: the
 * cluster size within 4 KiB to 64 KiB, as QEMU picks); REMOVE drops one,
 * CLEAR empties it, ENABLE and DISABLE set or drop "auto", and MERGE sets
 * in it every bit that `source_name` of `source` (a qcow2 image of the
 * same size; NULL: dev) has set, whatever the two granularities.  A
 * bitmap left in use (inconsistent) may only be removed.  coblk keeps no
 * bitmap up to date: the first write to dev's data declares them all
 * stale.  Returns 0, or -ENOENT (no such bitmap), -EEXIST, -EINVAL (a bad
 * name or granularity, an inconsistent bitmap, sizes that differ),
 * -EFBIG (too many, or too large), -ENOTSUP (raw, version 2), -EROFS,
 * -errno. */
enum coblk_bitmap_op {
    COBLK_BITMAP_ADD,
    COBLK_BITMAP_REMOVE,
    COBLK_BITMAP_CLEAR,
    COBLK_BITMAP_ENABLE,
    COBLK_BITMAP_DISABLE,
    COBLK_BITMAP_MERGE,
};

struct coblk_bitmap_edit {
    enum coblk_bitmap_op op;
    const char *name;               /* the bitmap edited */
    uint64_t granularity;           /* ADD */
    struct coblk_dev *source;       /* MERGE */
    const char *source_name;        /* MERGE */
};

COBLK_API int coblk_bitmap_edit(struct coblk_dev *dev,
                                const struct coblk_bitmap_edit *edit);

/* What the last failing call on this thread said, or "". */
COBLK_API const char *coblk_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* COBLK_COBLK_H */
