/*
 * qcow2: the driver's shared definitions.  The format is QEMU's
 * docs/interop/qcow2.rst; the driver is split by concern:
 *   qcow2.c    open (options, backing chain), close, the ops table
 *   header.c   the header and its extensions, validated
 *   cache.c    L2 table slices in memory
 *   map.c      guest offset -> what is stored there (cluster types)
 *   read.c     reads and block status, compressed clusters
 */
#ifndef COBLK_QCOW2_H
#define COBLK_QCOW2_H

#include <stdbool.h>
#include <stdint.h>

#include "../blk-int.h"

#define QCOW2_MAGIC 0x514649fbu             /* "QFI\xfb" */
#define QCOW2_MIN_CLUSTER_BITS 9
#define QCOW2_MAX_CLUSTER_BITS 21           /* 2 MiB, QEMU's limit too */
#define QCOW2_EXTL2_MIN_CLUSTER_BITS 14
#define QCOW2_SUBCLUSTERS 32                /* per cluster, extended L2 */
#define QCOW2_BACKING_NAME_MAX 1023
#define QCOW2_FORMAT_NAME_MAX 31
/* Memory an image's tables may take, whatever the header says. */
#define QCOW2_L1_MAX_BYTES (32u << 20)
#define QCOW2_REFTABLE_MAX_BYTES (8u << 20)
#define QCOW2_MAX_SNAPSHOTS 65536u
#define QCOW2_DEFAULT_L2_CACHE (1u << 20)
#define QCOW2_SLICE_BYTES 4096u             /* L2 cache granule */

/* Header feature bits. */
enum {
    QCOW2_INCOMPAT_DIRTY = 1u << 0,
    QCOW2_INCOMPAT_CORRUPT = 1u << 1,
    QCOW2_INCOMPAT_DATA_FILE = 1u << 2,
    QCOW2_INCOMPAT_COMPRESSION = 1u << 3,
    QCOW2_INCOMPAT_EXTL2 = 1u << 4,
    QCOW2_INCOMPAT_KNOWN = 0x1f,
    QCOW2_COMPAT_LAZY_REFCOUNTS = 1u << 0,
};

enum { QCOW2_COMPRESS_ZLIB = 0, QCOW2_COMPRESS_ZSTD = 1 };

/* Table entries. */
#define QCOW2_OFLAG_COPIED (1ull << 63)
#define QCOW2_OFLAG_COMPRESSED (1ull << 62)
#define QCOW2_OFLAG_ZERO 1ull
#define QCOW2_L1E_OFFSET_MASK 0x00fffffffffffe00ull
#define QCOW2_L2E_OFFSET_MASK 0x00fffffffffffe00ull
#define QCOW2_L1E_RESERVED 0x7f000000000001ffull
#define QCOW2_L2E_RESERVED 0x3f000000000001feull

/* The header as parsed and checked (header.c). */
typedef struct qcow2_header {
    uint32_t version;
    uint32_t cluster_bits;
    uint64_t size;
    uint32_t l1_size;
    uint64_t l1_offset;
    uint64_t refcount_table_offset;
    uint32_t refcount_table_clusters;
    uint32_t nb_snapshots;
    uint64_t snapshots_offset;
    uint64_t incompatible, compatible, autoclear;
    uint32_t refcount_order;
    uint32_t header_length;
    uint32_t compression_type;
    char *backing_name;                 /* NULL: none */
    char *backing_format;               /* NULL: not recorded */
} qcow2_header;

/* What one guest range is, in this image alone (map.c). */
enum qcow2_kind {
    QCOW2_UNALLOCATED,      /* the backing image's, or zeroes */
    QCOW2_ZERO,             /* reads as zeroes */
    QCOW2_ZERO_ALLOC,       /* reads as zeroes; host is kept for it */
    QCOW2_NORMAL,           /* data at host */
    QCOW2_COMPRESSED,       /* compressed: host is the descriptor */
};

typedef struct qcow2_extent {
    enum qcow2_kind kind;
    uint64_t bytes;         /* from the guest offset asked */
    uint64_t host;          /* NORMAL, ZERO_ALLOC: file offset of the
                             * guest offset; 
                             * COMPRESSED: the L2 entry's descriptor */
} qcow2_extent;

/* A slice of an L2 table in memory (cache.c). */
typedef struct qcow2_slice {
    uint64_t offset;        /* in the file; 0: empty */
    uint64_t last_use;
    uint32_t hash_next;     /* in its bucket; UINT32_MAX ends */
    bool loading;           /* read in progress: wait on `loaded` */
    coblk_co_queue loaded;
    uint64_t *entries;      /* big-endian, as in the file */
} qcow2_slice;

typedef struct qcow2_cache {
    uint32_t slice_bytes;   /* 4 KiB, or the cluster when smaller */
    uint32_t nr_slices;
    uint32_t nr_buckets;    /* a power of two */
    uint32_t *buckets;      /* slice indices; UINT32_MAX: none */
    qcow2_slice *slices;
    uint64_t clock;
    void *memory;           /* every slice's entries, aligned */
} qcow2_cache;

typedef struct qcow2_state {
    struct coblk_dev *file;
    struct coblk_dev *backing;          /* NULL: none */
    qcow2_header h;
    uint64_t cluster_size;
    uint32_t l2_entry_bytes;            /* 8, or 16 with extended L2 */
    uint32_t l2_bits;                   /* log2 of entries per L2 table */
    uint32_t subcluster_bits;           /* == cluster_bits without ext L2 */
    uint64_t *l1;                       /* host order */
    qcow2_cache l2_cache;
    /* Guards the cache and the tables; never held across data I/O. */
    coblk_co_mutex lock;
    uint8_t *decompress_buf;            /* one cluster, under lock */
    uint8_t *compressed_buf;            /* its input, under lock */
} qcow2_state;

/* header.c: reads and checks the header of the image in file.  Returns
 * 0, or -EINVAL (-EFBIG for limits, -ENOTSUP for features) with a
 * message naming the field. */
int qcow2_read_header(struct coblk_dev *file, qcow2_header *h);
void qcow2_header_free(qcow2_header *h);
/* Checks that [offset, offset + bytes) is cluster-aligned and inside the
 * file; names `what` in the message.  Returns 0 or -EINVAL. */
int qcow2_check_table(const struct coblk_dev *file, uint32_t cluster_bits,
                      const char *what, uint64_t offset, uint64_t bytes);

/* cache.c */
/* A cache of about `bytes`, in slices of slice_bytes. */
int qcow2_cache_init(qcow2_cache *c, uint64_t bytes, uint32_t slice_bytes);
void qcow2_cache_free(qcow2_cache *c);
/* The slice at file offset `offset`, read in if need be; called and
 * returns with s->lock held.  Sets *entries; returns 0 or -errno. */
int coroutine_fn qcow2_cache_get(qcow2_state *s, uint64_t offset,
                                 uint64_t **entries);

/* map.c: what [offset, offset + bytes) holds, from offset on for
 * out->bytes (> 0) of one kind; with s->lock held. */
int coroutine_fn qcow2_map(qcow2_state *s, uint64_t offset, uint64_t bytes,
                           qcow2_extent *out);

/* read.c */
int coroutine_fn qcow2_co_preadv(struct coblk_dev *dev, uint64_t offset,
                                 uint64_t bytes, const struct iovec *iov,
                                 unsigned iovcnt);
int coroutine_fn qcow2_co_block_status(struct coblk_dev *dev,
                                       uint64_t offset, uint64_t bytes,
                                       struct coblk_block_status *out);

/* Big-endian fields. */
static inline uint32_t qcow2_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t qcow2_be64(const uint8_t *p)
{
    return (uint64_t)qcow2_be32(p) << 32 | qcow2_be32(p + 4);
}

#endif /* COBLK_QCOW2_H */
