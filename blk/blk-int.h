/*
 * Block layer internals: the device, the driver ops table, the generic
 * request path and the helpers drivers share.  Not installed.
 */
#ifndef COBLK_BLK_INT_H
#define COBLK_BLK_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "aio-int.h"
#include "coblk/co-lock.h"
#include "coblk/coblk.h"

typedef struct blk_driver blk_driver;

/* Counters of rare paths (see STYLE.md: a short read nobody saw happen). */
typedef struct blk_stats {
    atomic_ulong short_reads;       /* resubmitted for the rest */
    atomic_ulong short_writes;
    atomic_ulong resubmits;         /* -EAGAIN / -EINTR from the kernel */
    atomic_ulong bounces;           /* misaligned for O_DIRECT */
    atomic_ulong splits;            /* over the driver's limits */
    atomic_ulong serialising_waits; /* for an overlapping read-modify-write */
    atomic_ulong locked_lookups;    /* a format's, under its image's lock */
} blk_stats;

/* A request the device tracks while it runs (io.c), on its coroutine's
 * stack: for drain, and so that a read-modify-write and the requests
 * overlapping its blocks do not interleave. */
typedef struct blk_tracked blk_tracked;
struct blk_tracked {
    blk_tracked *prev, *next;       /* in dev->tracked */
    uint64_t begin, end;            /* bytes; whole blocks when bounced */
    bool serialising;               /* a read-modify-write */
    bool waiting;                   /* for another: not started */
    coblk_co_queue waiters;         /* for it to end */
};

struct coblk_dev {
    const blk_driver *drv;
    void *opaque;                   /* the driver's state */
    int flags;                      /* COBLK_OPEN_* */
    unsigned depth;                 /* 0: the device the user opened */
    uint64_t size;                  /* bytes */
    bool growable;                  /* writes may pass the end and grow
                                     * it (a format's file) */
    uint32_t mem_align;             /* buffers must be aligned to this */
    uint32_t offset_align;          /* offsets and lengths, to this */
    uint64_t max_transfer;          /* bytes per driver call */
    char serial[COBLK_ID_BYTES];
    /* The graph: what a format or filter stands on (its file) and a
     * format's backing image; NULL where none.  Their driver owns and
     * closes them; the generic code only walks them. */
    struct coblk_dev *file;
    struct coblk_dev *backing;
    char *filename;                 /* a file node's path, else NULL */
    /* Tracked requests (io.c): those through coblk_co_*, and queue
     * requests a read-modify-write may need to wait for. */
    coblk_co_mutex track_lock;
    blk_tracked *tracked;
    unsigned serialising;           /* read-modify-writes among them */
    atomic_uint in_flight;          /* their count, for close */
    pthread_mutex_t queues_lock;
    struct coblk_queue *queues;     /* open queues: no closing while any */
    blk_stats stats;
};

/* A device's size, read once and set whole: a file under a format grows
 * (io.c, grew()) while requests of other threads check their bounds. */
static inline uint64_t blk_size(const struct coblk_dev *dev)
{
    return __atomic_load_n(&dev->size, __ATOMIC_RELAXED);
}

static inline void blk_set_size(struct coblk_dev *dev, uint64_t size)
{
    __atomic_store_n(&dev->size, size, __ATOMIC_RELAXED);
}

/* A driver: one static const table per file in blk/.  The byte ranges it
 * gets are in bounds, non-empty, aligned for the device, at most
 * max_transfer bytes and at most IOV_MAX iovecs.  One exception: where the
 * size is not a multiple of offset_align, a bounced request covers the
 * whole last block, past the end; reading there gives zeroes, and writing
 * there must not grow the device. */
struct blk_driver {
    const char *name;
    bool can_grow;          /* writes past the end may extend it (files) */
    bool filter;            /* passes every request to dev->file */
    bool can_compress;      /* takes COBLK_REQ_F_COMPRESS writes */
    /* Parses args (the spec after "name:") and sets dev->size and, when
     * they differ from the defaults, the alignment and limits. */
    int (*open)(struct coblk_dev *dev, const char *args);
    void (*close)(struct coblk_dev *dev);
    int coroutine_fn (*co_preadv)(struct coblk_dev *dev, uint64_t offset,
                                  uint64_t bytes, const struct iovec *iov,
                                  unsigned iovcnt);
    int coroutine_fn (*co_pwritev)(struct coblk_dev *dev, uint64_t offset,
                                   uint64_t bytes, const struct iovec *iov,
                                   unsigned iovcnt, int req_flags);
    int coroutine_fn (*co_flush)(struct coblk_dev *dev);
    /* Optional, a queue's hot path: starts a read or write of a queue's
     * request, already checked (in bounds, aligned as the device needs, at
     * most max_transfer bytes and IOV_MAX iovecs, nothing to serialise
     * with), as one SQE whose CQE handler finishes the request with
     * blk_request_finish() -- without resuming the request's coroutine,
     * which ends at once.  Returns false, having started nothing, where
     * the request needs the coroutine path. */
    bool coroutine_fn (*start_rw)(struct coblk_dev *dev,
                                  struct coblk_req *req, bool write,
                                  uint64_t offset, uint64_t bytes,
                                  int req_flags);
    /* With start_rw: drops a read pin a started request held (blk_req_pin);
     * from the thread the request completes on. */
    void (*read_unpin)(struct coblk_dev *dev, unsigned pin);
    /* Optional: NULL answers -ENOTSUP. */
    int coroutine_fn (*co_pdiscard)(struct coblk_dev *dev, uint64_t offset,
                                    uint64_t bytes);
    int coroutine_fn (*co_pwrite_zeroes)(struct coblk_dev *dev,
                                         uint64_t offset, uint64_t bytes,
                                         int req_flags);
    /* What [offset, offset + bytes) holds in this node alone: sets
     * out->bytes (> 0, at most bytes), out->flags (COBLK_BS_ALLOCATED
     * when this node decides what the range reads, not its backing) and
     * out->host_offset.  NULL: all data, allocated. */
    int coroutine_fn (*co_block_status)(struct coblk_dev *dev,
                                        uint64_t offset, uint64_t bytes,
                                        struct coblk_block_status *out);
    /* Formats whose unallocated ranges read as zeroes where no backing
     * file lies under them (qcow2).  Elsewhere a range not allocated
     * (an NBD server's hole that may not read as zeroes) is told as the
     * node told it. */
    bool unallocated_reads_zeroes;
    /* Optional, copy offload (coblk_co_copy_range()), in two halves: the
     * source's driver maps its range onto the node that holds the bytes
     * and calls blk_co_copy_range_from() on it, or, holding them itself,
     * blk_co_copy_range_to(); the destination's maps its range the same
     * way down to the node that copies.  Ranges are in bounds and aligned.
     * NULL answers -ENOTSUP: blkdebug's rules, say, must see the data go
     * through it. */
    int coroutine_fn (*co_copy_range_from)(struct coblk_dev *src,
                                           uint64_t src_offset,
                                           struct coblk_dev *dst,
                                           uint64_t dst_offset,
                                           uint64_t bytes);
    int coroutine_fn (*co_copy_range_to)(struct coblk_dev *src,
                                         uint64_t src_offset,
                                         struct coblk_dev *dst,
                                         uint64_t dst_offset,
                                         uint64_t bytes);
    /* Changes the size (coblk_truncate_prealloc()); dev->size is set
     * after.  A mode other than OFF comes only with growth. */
    int coroutine_fn (*co_truncate)(struct coblk_dev *dev, uint64_t size,
                                    enum coblk_prealloc mode);
    /* Optional: the bytes the device takes on its storage (a file's
     * blocks); NULL answers -ENOTSUP. */
    int64_t (*allocated_bytes)(struct coblk_dev *dev);
    /* Formats: creates an image at path (coblk_create()). */
    int (*create)(const char *path, uint64_t size, const char *options);
    /* Protocols that keep images by name (rbd): creates the one args (the
     * spec after "name:") names, for a raw image there. */
    int (*create_image)(const char *args, uint64_t size);
    /* Formats: coblk_measure(): the metadata for size bytes, and how the
     * data a source holds rounds (cluster size; 0 counts none). */
    int (*measure)(const char *options, uint64_t size, uint64_t *metadata,
                   uint64_t *cluster_size, bool *data_is_size);
    /* Formats: what coblk_image_info() tells beyond format and size. */
    void (*info)(struct coblk_dev *dev, struct coblk_image_info *info);
    /* Formats: checks (and repairs) the image's metadata (coblk_check()). */
    int coroutine_fn (*co_check)(struct coblk_dev *dev,
                                 struct coblk_check *check);
    /* Formats: records another backing file (coblk_set_backing()). */
    int coroutine_fn (*co_set_backing)(struct coblk_dev *dev,
                                       const char *backing,
                                       const char *format);
    /* Formats: drops all data (coblk_make_empty()). */
    int coroutine_fn (*co_make_empty)(struct coblk_dev *dev);
    /* Formats: changes options of the image (coblk_amend()). */
    int coroutine_fn (*co_amend)(struct coblk_dev *dev, const char *options);
    /* Formats: internal snapshots (coblk_snapshot_create() and others). */
    int coroutine_fn (*co_snapshot_create)(struct coblk_dev *dev,
                                           const char *name);
    int coroutine_fn (*co_snapshot_apply)(struct coblk_dev *dev,
                                          const char *which);
    int coroutine_fn (*co_snapshot_delete)(struct coblk_dev *dev,
                                           const char *which);
    /* Formats: persistent bitmaps (coblk_bitmap_edit()). */
    int coroutine_fn (*co_bitmap_edit)(struct coblk_dev *dev,
                                       const struct coblk_bitmap_edit *edit);
};

extern const blk_driver blk_file_driver;
extern const blk_driver blk_null_driver;
extern const blk_driver blk_blkdebug_driver;
extern const blk_driver blk_raw_driver;
extern const blk_driver blk_qcow2_driver;
extern const blk_driver blk_nbd_driver;
extern const blk_driver blk_rbd_driver;     /* when built with librbd */

/* What the library keeps in a queue's request, in its reserved words
 * (accessed only as this). */
typedef struct blk_req_private {
    struct coblk_queue *queue;
    /* The device it runs on: the queue's, until a driver starts it
     * (start_rw); then the one that did (a format's file, say). */
    struct coblk_dev *dev;
    /* A request its driver started: */
    aio_cqe_handler handler;    /* its CQE's */
    uint32_t bytes;             /* its length */
    uint8_t pin;                /* the queue device's read pin + 1, or 0
                                 * (blk_req_pin) */
} blk_req_private;

_Static_assert(sizeof(blk_req_private) <=
                   sizeof(((struct coblk_req *)0)->reserved),
               "a request's private part fits its reserved words");

static inline blk_req_private *blk_req_private_of(struct coblk_req *req)
{
    return (blk_req_private *)(void *)req->reserved;
}

static inline struct coblk_req *blk_req_of_handler(aio_cqe_handler *handler)
{
    return (struct coblk_req *)(void *)((char *)handler -
                                        offsetof(blk_req_private, handler) -
                                        offsetof(struct coblk_req, reserved));
}

/* The coroutine a queue runs each request in (io.c): runs the request on
 * the device its private part names, sets its status and error, and gives
 * it to blk_queue_request_done() -- or leaves that to a driver that
 * started it (start_rw). */
void coroutine_fn blk_request_co(void *opaque);

/* Finishes a request its driver started (start_rw), with the result of
 * the transfer: 0 or a negative errno (io.c). */
void blk_request_finish(struct coblk_req *req, int ret);

/* Runs a request its driver started again, in ctx (the CQE's context):
 * whole, on its queue's device and through the coroutine path, which
 * handles what the one SQE could not (a short transfer, a retryable
 * error), then finishes it (io.c).
 * Running a transfer twice is safe: a read fills the buffer again, a
 * write writes the same bytes again. */
void blk_request_retry(coblk_aio *ctx, struct coblk_req *req);

/* For the start_rw of a queue's own device (false for any other): req
 * holds the device's read pin `pin` (< 255) until it finishes, then
 * drops it with the driver's read_unpin; blk_req_unpin() takes it back
 * from a request that did not start. */
bool blk_req_pin(struct coblk_dev *dev, struct coblk_req *req, unsigned pin);
void blk_req_unpin(struct coblk_req *req);

/* For a format or filter's start_rw: starts req as a transfer of
 * [offset, offset + bytes) of dev, one of its children, if dev can take
 * it so (start_rw, and the checks the queue's device passed); false,
 * having started nothing, if not (io.c). */
bool coroutine_fn blk_start_rw_on(struct coblk_dev *dev,
                                  struct coblk_req *req, bool write,
                                  uint64_t offset, uint64_t bytes,
                                  int req_flags);

/* A queue's request is done (queue.c): it goes to the completed ones, and
 * stops counting for drain. */
void blk_queue_request_done(struct coblk_req *req);

/* The device's open queues (queue.c). */
unsigned blk_queues_open(struct coblk_dev *dev);

/* The device a queue was opened on (queue.c). */
struct coblk_dev *blk_queue_dev(const struct coblk_queue *q);

/* How deep a device graph may be (filters, later backing chains): each
 * level adds frames to the coroutine stack of every request through it. */
#define BLK_DEPTH_MAX 64u

/* Opens the device a filter or format stands on, with the parent's flags,
 * one level deeper; fails past BLK_DEPTH_MAX. */
int blk_open_child(struct coblk_dev *parent, const char *spec,
                   struct coblk_dev **out);
/* Lets writes past the end of dev extend it, as a format needs of its
 * file: dev must be a driver that can grow, or a filter over one.
 * Returns 0, or -ENOTSUP naming what cannot grow. */
int blk_make_growable(struct coblk_dev *dev);
/* A filter's or a whole-child format's truncate: its child's, the child's
 * size then set.  -ENOTSUP, naming both drivers, for a child that does
 * not change size. */
int coroutine_fn blk_co_truncate_child(struct coblk_dev *parent,
                                       struct coblk_dev *child, uint64_t size,
                                       enum coblk_prealloc mode);

/* Opens a format's backing image: as a child, but read-only. */
int blk_open_backing(struct coblk_dev *parent, const char *spec,
                     struct coblk_dev **out);

/* Splits the arguments of a format, "[OPTIONS:]CHILD": OPTIONS is a
 * comma-separated key=value list whose first key is a word (letters,
 * digits, '-', '_') followed by '='; anything else is the child's spec.
 * Sets *options (a copy, "" when none; free it) and *child.  Returns 0,
 * -EINVAL naming drv when no child is left, or -ENOMEM. */
int blk_split_options(const char *drv, const char *args, char **options,
                      const char **child);

/* The path of the file under dev (following dev->file), or NULL. */
const char *blk_dev_filename(const struct coblk_dev *dev);
/* The bytes dev takes on its storage, through filters and raw images to
 * the file; -ENOTSUP where no driver knows. */
int64_t blk_allocated_bytes(struct coblk_dev *dev);
/* A format's data status `out` (DATA, OFFSET_VALID, not ZERO) gains ZERO
 * where its host range lies in a hole of `file`, cut where the file's
 * status changes; the file's errors leave it as it is. */
void coroutine_fn blk_status_file_zeroes(struct coblk_dev *file,
                                         struct coblk_block_status *out);

/* Runs fn(opaque) in a coroutine of this thread's context (at once when
 * called from one) and returns what it returns. */
int blk_run_in_coroutine(int (*fn)(void *opaque), void *opaque);

/* QEMU's image locks on the open image fd (lock.c): checks that nobody
 * conflicts, then takes them, for reading or writing.  Returns 0, or
 * -EBUSY ("Failed to get \"write\" lock") or -errno with a message. */
int blk_lock_image(int fd, const char *path, bool write);

/* The file's own create options, which every format takes as qemu-img
 * does (file-posix's): nocow (btrfs) and extent_size_hint (XFS; 1M by
 * default, 0 for none). */
struct blk_file_opts {
    bool nocow;
    uint64_t extent_size_hint;
};
#define BLK_FILE_OPTS_DEFAULT { .nocow = false, .extent_size_hint = 1 << 20 }
/* 1 when key is one of them (value parsed into o), 0 when not, or
 * -EINVAL with qemu-img's message. */
int blk_file_option(struct blk_file_opts *o, const char *key,
                    const char *value);

/* Opens path for a new image (created if missing), locked for writing,
 * and only then empties it: an image in use is never destroyed.  Then
 * applies o where the file system has them (elsewhere they are no
 * error, as in QEMU).  Returns the fd, or -errno with a message naming
 * `who` (the driver). */
int blk_create_file(const char *path, const char *who,
                    const struct blk_file_opts *o);

/* The halves of a copy offload (see blk_driver.co_copy_range_from). */
int coroutine_fn blk_co_copy_range_from(struct coblk_dev *src,
                                        uint64_t src_offset,
                                        struct coblk_dev *dst,
                                        uint64_t dst_offset, uint64_t bytes);
int coroutine_fn blk_co_copy_range_to(struct coblk_dev *src,
                                      uint64_t src_offset,
                                      struct coblk_dev *dst,
                                      uint64_t dst_offset, uint64_t bytes);

/* Runs fn(opaque) on a worker thread (worker.c) while the calling
 * coroutine waits, for CPU-bound work; returns fn's result. */
int coroutine_fn blk_co_run_in_worker(int (*fn)(void *opaque), void *opaque);
/* Runs fn(opaques[i]) for each of n on the worker threads at once, and
 * waits for all; returns the first non-zero result, or -ENOMEM. */
int coroutine_fn blk_co_run_in_workers(int (*fn)(void *opaque),
                                       void *const opaques[], unsigned n);

/* Sets this thread's coblk_last_error() message and returns err. */
__attribute__((format(printf, 2, 3)))
int blk_error(int err, const char *fmt, ...);

/* The longest delay a spec may ask for (null's latency-ns, blkdebug's
 * delay-ns): an hour. */
#define BLK_DELAY_MAX_NS 3600000000000ull

/* Parses option `key` of driver `drv`: digits only (no sign, no spaces),
 * from min to max.  Returns 0, or -EINVAL with a message naming both. */
int blk_parse_number(const char *drv, const char *key, const char *text,
                     uint64_t min, uint64_t max, uint64_t *out);

/* Parses a size: digits with an optional k, M, G, T (binary) suffix. */
int blk_parse_size(const char *text, uint64_t *out);

/* For each "key=value" in a comma-separated list, calls fn; stops at the
 * first error it returns. */
int blk_parse_options(const char *args,
                      int (*fn)(void *opaque, const char *key,
                                const char *value),
                      void *opaque);

/* ---- iovec helpers (iov.c) ------------------------------------------------ */

/* Measures a caller's iovec: sets *bytes to its length (UINT64_MAX when
 * the sum overflows, which callers reject) and returns 0, or -EINVAL for a
 * missing array (iov NULL, iovcnt > 0) or -EFAULT for a NULL buffer of
 * some length. */
int iov_measure_any(const struct iovec *iov, unsigned iovcnt,
                    uint64_t *bytes);
/* iov_measure_any(), inline for the common request of one buffer. */
static inline int iov_measure(const struct iovec *iov, unsigned iovcnt,
                              uint64_t *bytes)
{
    if (__builtin_expect(iovcnt == 1 && iov && iov[0].iov_base, 1)) {
        *bytes = iov[0].iov_len;
        return 0;
    }
    return iov_measure_any(iov, iovcnt, bytes);
}
/* Copies bytes at skip into / out of an iovec; returns bytes copied. */
size_t iov_from_buf(const struct iovec *iov, unsigned iovcnt, size_t skip,
                    const void *buf, size_t bytes);
size_t iov_to_buf(const struct iovec *iov, unsigned iovcnt, size_t skip,
                  void *buf, size_t bytes);
void iov_memset(const struct iovec *iov, unsigned iovcnt, size_t skip,
                int c, size_t bytes);
/* The kernel filled the first bytes of iov through the ring, which
 * valgrind's memcheck cannot see: tells it (nothing without valgrind). */
void iov_mark_defined(const struct iovec *iov, unsigned iovcnt,
                      size_t bytes);
/* Describes up to bytes at skip of iov in out, stopping when out_max
 * entries are used; returns the entries used and sets *covered (if not
 * NULL) to the bytes they describe. */
unsigned iov_slice(const struct iovec *iov, unsigned iovcnt, size_t skip,
                   size_t bytes, struct iovec *out, unsigned out_max,
                   size_t *covered);

#endif /* COBLK_BLK_INT_H */
