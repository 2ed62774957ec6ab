/*
 * qcow2: the driver's shared definitions.  The format is QEMU's
 * docs/interop/qcow2.rst; the driver is split by concern:
 *   qcow2.c    open (options, backing chain), close, the ops table
 *   header.c   the header and its extensions, validated
 *   lock.c     the image's lock, and lookups without it
 *   cache.c    L2 table and refcount block slices in memory, write-back
 *   map.c      guest offset -> what is stored there (cluster types)
 *   read.c     reads and block status, compressed clusters
 *   refcount.c refcounts, allocating and freeing clusters
 *   meta.c     where metadata is, so that nothing else lands there
 *   create.c   new images, with qemu-img create's options
 *   check.c    qemu-img check: references against refcounts, repair
 *   rebuild.c  a new refcount structure, where a repair needs one
 *   snapshot.c internal snapshots: listed, and read
 *   snapshot-edit.c  internal snapshots made, applied, deleted
 *   resize.c   growing and shrinking the virtual size
 *   compress.c compressed writes
 *   write.c    writes (copy-on-write), write-zeroes, discard, flush
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
#define QCOW2_SNAPSHOT_TABLE_MAX (64u << 20)    /* QEMU's bound too */
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
    QCOW2_AUTOCLEAR_BITMAPS = 1u << 0,
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
    /* The bitmaps extension as found (nb_bitmaps 0: none); checked only
     * where autoclear says the bitmaps are consistent (bitmaps.c). */
    uint32_t nb_bitmaps;
    uint32_t bitmaps_reserved;
    uint64_t bitmap_dir_size, bitmap_dir_offset;
    bool has_bitmaps_ext;
} qcow2_header;

/* What one guest range is, in this image alone (map.c). */
enum qcow2_kind {
    QCOW2_UNALLOCATED,      /* the backing image's, or zeroes */
    QCOW2_UNALLOCATED_ALLOC,/* the same, in a cluster kept at host (an
                             * extended L2 entry's unallocated
                             * subcluster) */
    QCOW2_ZERO,             /* reads as zeroes */
    QCOW2_ZERO_ALLOC,       /* reads as zeroes; host is kept for it */
    QCOW2_NORMAL,           /* data at host */
    QCOW2_COMPRESSED,       /* compressed: host is the descriptor */
};

typedef struct qcow2_extent {
    enum qcow2_kind kind;
    bool copied;            /* NORMAL, ZERO_ALLOC: refcount exactly 1,
                             * so writable in place */
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
    bool forgotten;         /* while loading: dropped once read */
    bool dirty;             /* changed since read: write it back */
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
    struct qcow2_cache *depends_on; /* written (and flushed) first */
    bool keep_lock;         /* loads keep the image's lock: allocations
                             * must not interleave */
} qcow2_cache;

/* An internal snapshot (snapshot.c). */
typedef struct qcow2_snapshot {
    uint64_t l1_offset;
    uint32_t l1_size;
    /* 0, or why the L1 table cannot be used (-EINVAL: misaligned or
     * outside the file, -EFBIG: too large).  The image opens all the same,
     * as QEMU's: the snapshot fails when used (qcow2_snapshot_l1_usable),
     * and check reports it. */
    int l1_error;
    char *id, *name;
    uint32_t date_sec, date_nsec;
    uint64_t vm_clock_nsec, vm_state_size, disk_size;
    int64_t icount;
    uint8_t *extra;                     /* the extra data as read */
    uint32_t extra_len;
} qcow2_snapshot;

/* Metadata clusters (meta.c): a set of cluster indices + 1. */
typedef struct qcow2_meta {
    uint64_t *keys;
    unsigned bits;                      /* log2 of the slots */
    uint64_t count;
} qcow2_meta;

/* An L1 table's memory, as a lookup without the lock may read it
 * (lock.c): kept until close, also once a larger one replaced it. */
typedef struct qcow2_l1_view {
    uint64_t *table;                    /* host order; zeroes past l1_size */
    uint32_t capacity;                  /* entries allocated */
    struct qcow2_l1_view *older;
} qcow2_l1_view;

/* Host clusters to free (refcount.c). */
typedef struct qcow2_frees {
    uint64_t *offsets;
    size_t count, room;
} qcow2_frees;

/* A request that owns guest clusters while it runs (write.c). */
typedef struct qcow2_inflight {
    struct qcow2_inflight *next;
    uint64_t begin, end;        /* guest bytes, whole clusters */
    bool exclusive;             /* allocates or frees */
    coblk_co_queue waiters;
} qcow2_inflight;

typedef struct qcow2_state {
    struct coblk_dev *file;
    struct coblk_dev *backing;          /* NULL: none */
    qcow2_header h;
    uint64_t cluster_size;
    uint32_t l2_entry_bytes;            /* 8, or 16 with extended L2 */
    uint32_t l2_bits;                   /* log2 of entries per L2 table */
    uint32_t subcluster_bits;           /* == cluster_bits without ext L2 */
    uint64_t *l1;                       /* host order: the newest view's */
    uint32_t l1_capacity;
    qcow2_l1_view *l1_view;             /* the newest, for lookups */
    qcow2_l1_view *l1_views;            /* every one made, newest first */
    qcow2_cache l2_cache;
    /* Refcounts (refcount.c). */
    uint64_t *reftable;                 /* host order */
    uint64_t reftable_entries;
    qcow2_cache refcount_cache;
    uint32_t refcount_bits;
    uint64_t refblock_entries;          /* clusters a refcount block counts */
    uint64_t free_hint;                 /* no free cluster below this one */
    uint64_t compressed_next;           /* where the next compressed
                                         * cluster may go, or 0 */
    /* Clusters to free once the L2 changes that dropped them are on disk
     * and no read that may have found them there is in flight
     * (qcow2_free_clusters): the newest in `pending`, the batch waiting
     * for the reads of read phase graced_phase to end in `graced`. */
    qcow2_frees pending, graced;
    unsigned graced_phase;
    /* Reads of this image's clusters in flight, by the parity of the read
     * phase they began in (lock.c, qcow2_read_pin). */
    unsigned read_phase;                /* counts up */
    unsigned long reads[2];
    qcow2_snapshot *snapshots;          /* h.nb_snapshots of them */
    uint64_t snapshots_bytes;           /* the table's, in the file */
    struct coblk_snapshot_info *snapshot_info;  /* for coblk_image_info */
    /* Persistent dirty bitmaps, while consistent (bitmaps.c). */
    uint32_t nb_bitmaps;
    struct qcow2_bitmap *bitmaps;
    struct coblk_bitmap_info *bitmap_info;      /* for coblk_image_info */
    bool stale_bitmaps;                 /* found declared stale */
    char *backing_path;                 /* as opened */
    bool backing_closed;                /* opened without it
                                         * (COBLK_OPEN_NO_BACKING): data
                                         * cannot change, or a write would
                                         * copy zeroes for what it holds */
    qcow2_meta meta;                    /* read-write images only */
    bool corrupt;                       /* found so: no more writes */
    /* Block status: whether the image looks metadata-preallocated, by
     * QEMU's rule (read.c), found on first use: 0 unknown, 1 no, 2 yes. */
    uint8_t preallocated;
    /* Writes in flight that allocate or free, by guest range (write.c). */
    struct qcow2_inflight *inflight;
    /* Guards caches, tables and the in-flight list; held across metadata
     * I/O only where a change must be atomic, never across data I/O.
     * Taken and dropped through qcow2_lock(), which keeps seq odd while
     * it is held (lock.c). */
    coblk_co_mutex lock;
    unsigned long seq;
} qcow2_state;

/* lock.c: the image's lock, to be taken only through these. */
void coroutine_fn qcow2_lock(qcow2_state *s);
void coroutine_fn qcow2_unlock(qcow2_state *s);
/* Drops the lock until queue is restarted, then takes it again. */
void coroutine_fn qcow2_wait(qcow2_state *s, coblk_co_queue *queue);
/* A lookup without the lock: begins (false: the lock is held, take it),
 * then, after its reads, tells whether they saw no change (false: take
 * the lock and look again).  Nothing between may yield or write but
 * through atomics. */
bool qcow2_read_begin(qcow2_state *s, unsigned long *seq);
bool qcow2_read_valid(qcow2_state *s, unsigned long seq);
/* A read of the image's clusters: pinned before it looks them up, until
 * its data is read; returns the pin's read phase for the unpin. */
unsigned qcow2_read_pin(qcow2_state *s);
void qcow2_read_unpin(qcow2_state *s, unsigned phase);
/* Whether the reads pinned in `phase` have all ended. */
bool qcow2_reads_ended(qcow2_state *s, unsigned phase);
/* Starts a new read phase; returns the one before, whose reads
 * qcow2_reads_ended() then tells of. */
unsigned qcow2_next_read_phase(qcow2_state *s);
/* Makes room in s->l1 for `entries` (those past s->h.l1_size zeroes): in
 * place where there is, else in a larger table, the old one kept for
 * lookups until close.  0 or -ENOMEM. */
int qcow2_reserve_l1(qcow2_state *s, uint32_t entries);
void qcow2_free_l1_views(qcow2_state *s);

/* header.c: reads and checks the header of the image in file.  Returns
 * 0, or -EINVAL (-EFBIG for limits, -ENOTSUP for features) with a
 * message naming the field. */
int qcow2_read_header(struct coblk_dev *file, qcow2_header *h);
void qcow2_header_free(qcow2_header *h);
/* Reads bytes at offset of file; what lies past its end reads as zeroes,
 * as QEMU reads a snapshot's L1 table that runs past it. */
int qcow2_pread_zeroed(struct coblk_dev *file, void *buf, uint64_t bytes,
                       uint64_t offset);
/* Checks that [offset, offset + bytes) is cluster-aligned and inside the
 * file; names `what` in the message.  Returns 0 or -EINVAL. */
int qcow2_check_table(const struct coblk_dev *file, uint32_t cluster_bits,
                      const char *what, uint64_t offset, uint64_t bytes);

/* cache.c: a cache of about `bytes`, in slices of slice_bytes, whose
 * dirty slices are written only after depends_on's (or NULL). */
int qcow2_cache_init(qcow2_cache *c, uint64_t bytes, uint32_t slice_bytes,
                     qcow2_cache *depends_on);
void qcow2_cache_free(qcow2_cache *c);
/* The slice at file offset `offset`, read in if need be; called and
 * returns with s->lock held.  Sets *entries; returns 0 or -errno. */
int coroutine_fn qcow2_cache_get(qcow2_state *s, qcow2_cache *c,
                                 uint64_t offset, uint64_t **entries);
/* The same for a slice of a table just allocated: zeroes, not read. */
int coroutine_fn qcow2_cache_get_empty(qcow2_state *s, qcow2_cache *c,
                                       uint64_t offset, uint64_t **entries);
/* The loaded slice at offset, or NULL, without the lock (qcow2_read_begin)
 * and without yielding. */
const uint64_t *qcow2_cache_peek(qcow2_cache *c, uint64_t offset);
void qcow2_cache_mark_dirty(qcow2_cache *c, const uint64_t *entries);
/* Writes every dirty slice back and flushes the file. */
int coroutine_fn qcow2_cache_flush(qcow2_state *s, qcow2_cache *c);
/* Drops the slices in [offset, offset + bytes) unwritten: freed. */
void qcow2_cache_forget(qcow2_cache *c, uint64_t offset, uint64_t bytes);

/* refcount.c: the refcount table, read and checked at open. */
int qcow2_refcount_open(qcow2_state *s);
void qcow2_refcount_close(qcow2_state *s);
/* Sets entry i of a refcount block of bits-wide entries to v. */
void qcow2_refcount_entry_set(uint8_t *p, uint32_t bits, uint64_t i,
                              uint64_t v);
/* refcount-order.c: amend refcount_bits: every refcount copied into new
 * refcount blocks and a new table of 1 << order bits a refcount; lock
 * held, metadata flushed. */
int coroutine_fn qcow2_change_refcount_order(qcow2_state *s, uint32_t order);
/* refcount_bits=VALUE (create, amend) as its log2, in QEMU's words. */
int qcow2_parse_refcount_bits(const char *value, uint32_t *order);
/* The largest refcount refcount_bits can hold. */
uint64_t qcow2_refcount_max(const qcow2_state *s);
/* The refcount of the cluster at file offset `offset`. */
int coroutine_fn qcow2_get_refcount(qcow2_state *s, uint64_t offset,
                                    uint64_t *refcount);
/* Adds delta (+1 or -1) to the refcounts of `clusters` clusters from
 * offset; freed clusters are discarded in the file. */
int coroutine_fn qcow2_update_refcounts(qcow2_state *s, uint64_t offset,
                                        uint64_t clusters, int delta);
/* Writes table (host order, `clusters` clusters long; taken, freed on
 * failure) at cluster `site`, with its blocks already on disk, and points
 * the header and the image at it.  The old table is left to the caller. */
int coroutine_fn qcow2_reftable_install(qcow2_state *s, uint64_t *table,
                                        uint64_t site, uint64_t clusters);
/* qcow2.c: writes the header's incompatible feature bits, flushed. */
int coroutine_fn qcow2_write_incompatible(qcow2_state *s, uint64_t bits);
/* rebuild.c: replaces the refcount table and blocks by new ones that
 * count refs[c] references to each cluster c < nb_clusters, placed where
 * nothing is referenced.  The old structure is left unreferenced. */
int coroutine_fn qcow2_rebuild_refcounts(qcow2_state *s, const uint32_t *refs,
                                         uint64_t nb_clusters);
/* Sets the refcount of cluster `index` (a repair); -ENOSPC where no
 * refcount block counts it. */
int coroutine_fn qcow2_set_refcount(qcow2_state *s, uint64_t index,
                                    uint64_t refcount);
/* Frees `clusters` clusters from offset that an L2 change just dropped:
 * their refcounts go down only after that change is on disk, so that no
 * entry on disk ever points at a cluster counted free (nor is the cluster
 * reused before), and after the reads that may have found them ended, so
 * that none reads what a new owner wrote.  Lock held. */
int coroutine_fn qcow2_free_clusters(qcow2_state *s, uint64_t offset,
                                     uint64_t clusters);
/* Writes the L2 cache back, then frees what waited for it and for the
 * reads: at once on an image no read is using, else at a later call. */
int coroutine_fn qcow2_free_pending(qcow2_state *s);
/* Forgets what waits to be freed (closing: freed at the last flush, or
 * leaked). */
void qcow2_frees_close(qcow2_state *s);
/* Allocates `clusters` contiguous clusters (refcount 1); sets *offset, and
 * *fresh when they lie past the end of the file (they read as zeroes). */
int coroutine_fn qcow2_alloc_clusters(qcow2_state *s, uint64_t clusters,
                                      uint64_t *offset, bool *fresh);

/* snapshot.c: reads and checks the snapshot table. */
/* Persistent bitmaps: the format's bounds (and QEMU's), flags, table
 * entries, and one bitmap's directory entry. */
#define QCOW2_BITMAPS_MAX 65535u
#define QCOW2_BITMAP_DIR_MAX (1024ull * QCOW2_BITMAPS_MAX)
#define QCOW2_BITMAP_ENTRY_FIXED 24u
#define QCOW2_BITMAP_NAME_MAX 1023u
#define QCOW2_BITMAP_TABLE_MAX 0x8000000u
/* A bitmap's bits, in memory. */
#define QCOW2_BITMAP_BYTES_MAX 0x20000000ull
#define QCOW2_BITMAP_GRANULARITY_MIN 9
#define QCOW2_BITMAP_GRANULARITY_MAX 31

enum {
    QCOW2_BITMAP_IN_USE = 1u << 0,
    QCOW2_BITMAP_AUTO = 1u << 1,
    QCOW2_BITMAP_EXTRA_DATA_COMPATIBLE = 1u << 2,
    QCOW2_BITMAP_FLAGS_KNOWN = 0x7,
};

#define QCOW2_BITMAP_ENTRY_RESERVED 0xff000000000001feull
#define QCOW2_BITMAP_ENTRY_OFFSET 0x00fffffffffffe00ull
#define QCOW2_BITMAP_ENTRY_ALL_ONES 1ull

typedef struct qcow2_bitmap {
    char *name;
    uint64_t table_offset;
    uint32_t table_entries;
    uint32_t flags;
    uint8_t granularity_bits;
} qcow2_bitmap;

/* bitmaps.c: the bitmap directory, read and checked at open where the
 * image has one it calls consistent; 0, or -EINVAL naming what is wrong
 * (QEMU does not open such an image either). */
int qcow2_read_bitmaps(qcow2_state *s);
void qcow2_free_bitmaps(qcow2_state *s);
/* The bitmaps' clusters: directory, tables, data.  Calls count(opaque,
 * offset, bytes) for each, and corrupt(opaque) for each table entry the
 * format forbids; returns 0, or -EIO when a table cannot be read. */
int qcow2_bitmaps_clusters(qcow2_state *s, uint64_t *buf,
                           void (*count)(void *opaque, uint64_t offset,
                                         uint64_t bytes),
                           void (*corrupt)(void *opaque), void *opaque);
/* (Re)makes the list coblk_image_info() hands out. */
int qcow2_bitmap_info_build(qcow2_state *s);
/* bitmap-edit.c: coblk_bitmap_edit(). */
int coroutine_fn qcow2_co_bitmap_edit(struct coblk_dev *dev,
                                      const struct coblk_bitmap_edit *e);
/* edit.c: points the header at a bitmap directory of nb_bitmaps bitmaps
 * (0: none), with the autoclear bit that says they are consistent; lock
 * held. */
int coroutine_fn qcow2_write_bitmaps_ext(qcow2_state *s, uint32_t nb_bitmaps,
                                         uint64_t dir_offset,
                                         uint64_t dir_size);
int qcow2_read_snapshots(qcow2_state *s);
void qcow2_free_snapshots(qcow2_state *s);
void qcow2_snapshot_fields_free(qcow2_snapshot *sn);
void qcow2_free_snapshot_list(qcow2_snapshot *list, uint32_t n);
/* (Re)makes the list coblk_image_info() hands out. */
int qcow2_snapshot_info_build(qcow2_state *s);
/* 0 if the snapshot's L1 table may be read, else its error, with QEMU's
 * message. */
int qcow2_snapshot_l1_usable(const qcow2_snapshot *sn);
/* Makes the snapshot with this id (or else name) the tables read. */
int qcow2_select_snapshot(qcow2_state *s, const char *which);

/* snapshot-edit.c: coblk_snapshot_create(), _apply(), _delete(). */
int coroutine_fn qcow2_co_snapshot_create(struct coblk_dev *dev,
                                          const char *name);
int coroutine_fn qcow2_co_snapshot_apply(struct coblk_dev *dev,
                                         const char *which);
int coroutine_fn qcow2_co_snapshot_delete(struct coblk_dev *dev,
                                          const char *which);
/* Writes the snapshot table anew, each entry with this version's extra
 * data (as compat=1.1 wants it); lock held. */
int coroutine_fn qcow2_rewrite_snapshots(qcow2_state *s);

/* meta.c: builds the set of metadata clusters, -EINVAL (with a message)
 * where two pieces of metadata overlap. */
int qcow2_meta_build(qcow2_state *s);
void qcow2_meta_free(qcow2_state *s);
/* Records new metadata; -EINVAL if it overlaps what is there. */
int qcow2_meta_add(qcow2_state *s, uint64_t offset, uint64_t bytes,
                   const char *what);
/* Whether [offset, offset + bytes) touches metadata or the header. */
bool qcow2_meta_overlaps(const qcow2_state *s, uint64_t offset,
                         uint64_t bytes);
/* Marks the image corrupt (in its header too) and refuses further writes;
 * returns -EIO with the message. */
__attribute__((format(printf, 2, 3)))
int coroutine_fn qcow2_corrupt(qcow2_state *s, const char *fmt, ...);

/* map.c: what [offset, offset + bytes) holds, from offset on for
 * out->bytes (> 0) of one kind; with s->lock held. */
int coroutine_fn qcow2_map(qcow2_state *s, uint64_t offset, uint64_t bytes,
                           qcow2_extent *out);
/* The same without the lock, from L2 slices in the cache only: false
 * where it cannot tell (not cached, the lock held, a change meanwhile, an
 * entry that qcow2_map() would report). */
bool qcow2_map_cached(qcow2_state *s, uint64_t offset, uint64_t bytes,
                      qcow2_extent *out);
/* The L2 slice holding guest offset's entry (NULL entries when its L2
 * table is unallocated) and the entry's index in it, in entries of
 * s->l2_entry_bytes; with s->lock held. */
int coroutine_fn qcow2_l2_slice(qcow2_state *s, uint64_t offset,
                                uint64_t **entries, uint32_t *index);
/* The host clusters a compressed cluster's descriptor covers: its data
 * starts at *host and takes *bytes (within the file). */
void qcow2_compressed_extent(const qcow2_state *s, uint64_t desc,
                             uint64_t *host, uint64_t *bytes);

/* create.c: coblk_create() and coblk_measure() for qcow2. */
int qcow2_create(const char *path, uint64_t size, const char *options);
int qcow2_measure(const char *options, uint64_t size, uint64_t *metadata,
                  uint64_t *cluster_size, bool *data_is_size);

/* write.c */
int coroutine_fn qcow2_co_pwritev(struct coblk_dev *dev, uint64_t offset,
                                  uint64_t bytes, const struct iovec *iov,
                                  unsigned iovcnt, int req_flags);
int coroutine_fn qcow2_co_pdiscard(struct coblk_dev *dev, uint64_t offset,
                                   uint64_t bytes);
int coroutine_fn qcow2_co_pwrite_zeroes(struct coblk_dev *dev,
                                        uint64_t offset, uint64_t bytes,
                                        int req_flags);
int coroutine_fn qcow2_co_flush(struct coblk_dev *dev);
/* Guest offset's L2 entry (and bitmap; NULL when no table), to be changed:
 * its table made this image's own (copied from an internal snapshot's),
 * or made if make_table; lock held. */
int coroutine_fn qcow2_l2_entry(qcow2_state *s, uint64_t offset,
                                bool make_table, uint64_t **entry);
/* The host clusters an L2 entry's data takes, from *first (*count 0 for
 * an entry that points nowhere); -EIO, the image marked corrupt, where
 * they lie outside the file or over metadata. */
int coroutine_fn qcow2_entry_clusters(qcow2_state *s, uint64_t e,
                                      uint64_t *first, uint64_t *count);
/* Drops the references of an L2 entry being replaced (freed once the new
 * entry is on disk). */
int coroutine_fn qcow2_unref_entry(qcow2_state *s, uint64_t e);
/* Owns guest [begin, end) alone, after the requests touching it; lock
 * held.  -EIO once the image is found corrupt. */
int coroutine_fn qcow2_own_exclusive(qcow2_state *s, qcow2_inflight *mine,
                                     uint64_t begin, uint64_t end);
/* Owns every guest cluster, after the requests that own any, also on an
 * image found corrupt (check repairs it); lock held. */
void coroutine_fn qcow2_own_all(qcow2_state *s, qcow2_inflight *mine);
/* Ends an ownership (qcow2_own_exclusive(), or a write's own). */
void qcow2_release(qcow2_state *s, qcow2_inflight *mine);
/* The image alone, for an edit of its metadata: the lock taken, every
 * guest cluster owned after the requests that own any, what is cached
 * on disk.  0 (then end with qcow2_alone_end()), or -errno with nothing
 * held. */
int coroutine_fn qcow2_alone_begin(qcow2_state *s, qcow2_inflight *mine);
void coroutine_fn qcow2_alone_end(qcow2_state *s, qcow2_inflight *mine);

/* compress.c: COBLK_REQ_F_COMPRESS writes: whole clusters. */
int coroutine_fn qcow2_co_pwritev_compressed(struct coblk_dev *dev,
                                             uint64_t offset, uint64_t bytes,
                                             const struct iovec *iov,
                                             unsigned iovcnt);
/* Writes every cached change back, in order; lock held. */
int coroutine_fn qcow2_flush_metadata(qcow2_state *s);

/* resize.c: coblk_truncate() for qcow2. */
int coroutine_fn qcow2_co_truncate(struct coblk_dev *dev, uint64_t size,
                                   enum coblk_prealloc mode);
/* Replaces the active L1 table by one of `entries`; lock held. */
int coroutine_fn qcow2_grow_l1(qcow2_state *s, uint64_t entries);

/* edit.c: coblk_set_backing(), coblk_amend() and coblk_make_empty(). */
int coroutine_fn qcow2_co_set_backing(struct coblk_dev *dev,
                                      const char *backing,
                                      const char *format);
int coroutine_fn qcow2_co_make_empty(struct coblk_dev *dev);
int coroutine_fn qcow2_co_amend(struct coblk_dev *dev, const char *options);
/* The backing name as a path: relative to the overlay's directory. */
char *qcow2_backing_path(const char *overlay, const char *name);
/* Empties whole clusters [begin, end): zero clusters (zeroes), else
 * unallocated; keep_host keeps their host clusters (write.c). */
int coroutine_fn qcow2_empty_range(qcow2_state *s, uint64_t begin,
                                   uint64_t end, bool zeroes, bool keep_host);
/* Writes zeroes as data (no zero flag), from a buffer of zeroes. */
int coroutine_fn qcow2_write_zero_bytes(struct coblk_dev *dev,
                                        uint64_t offset, uint64_t bytes);
/* qcow2.c: called before any change of the guest's data: marks the
 * bitmaps stale. */
int coroutine_fn qcow2_data_will_change(struct coblk_dev *dev);

/* check.c: coblk_check() for qcow2. */
int coroutine_fn qcow2_co_check(struct coblk_dev *dev,
                                struct coblk_check *check);
int coroutine_fn qcow2_check_image(qcow2_state *s, struct coblk_check *check);

/* read.c */
/* Reads or writes bytes of dev at offset from iov at skip. */
int coroutine_fn qcow2_rw_part(struct coblk_dev *dev, bool write,
                               uint64_t offset, uint64_t bytes,
                               const struct iovec *iov, unsigned iovcnt,
                               uint64_t skip);
int coroutine_fn qcow2_co_preadv(struct coblk_dev *dev, uint64_t offset,
                                 uint64_t bytes, const struct iovec *iov,
                                 unsigned iovcnt);
/* The driver's read_unpin: drops the pin a started read held. */
void qcow2_read_unpin_op(struct coblk_dev *dev, unsigned pin);
int coroutine_fn qcow2_co_copy_range_from(struct coblk_dev *src,
                                          uint64_t src_offset,
                                          struct coblk_dev *dst,
                                          uint64_t dst_offset, uint64_t bytes);
/* A queue's read of one extent, started on the device that holds it
 * (start_rw). */
bool coroutine_fn qcow2_start_rw(struct coblk_dev *dev,
                                 struct coblk_req *req, bool write,
                                 uint64_t offset, uint64_t bytes,
                                 int req_flags);
int coroutine_fn qcow2_co_block_status(struct coblk_dev *dev,
                                       uint64_t offset, uint64_t bytes,
                                       struct coblk_block_status *out);

/* The clusters bytes take. */
static inline uint64_t qcow2_clusters(const qcow2_state *s, uint64_t bytes)
{
    return (bytes + s->cluster_size - 1) >> s->h.cluster_bits;
}

/* The bytes of bits a bitmap of 2^gran_bits bytes a bit takes for the
 * image. */
static inline uint64_t qcow2_bitmap_bytes(const qcow2_state *s,
                                          unsigned gran_bits)
{
    uint64_t bits = (s->h.size >> gran_bits) +
                    !!(s->h.size & ((1ull << gran_bits) - 1));
    return (bits + 7) / 8;
}

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

static inline void qcow2_put32(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8) {
        p[i] = (uint8_t)v;
    }
}

static inline void qcow2_put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8) {
        p[i] = (uint8_t)v;
    }
}

/* create.c: the feature name table QEMU writes in a version 3 header
 * (names for every known bit) into out, QCOW2_FEATURE_TABLE_MAX bytes of
 * room; returns its length. */
#define QCOW2_FEATURE_TABLE_MAX 512
uint32_t qcow2_feature_table(uint8_t *out);

#endif /* COBLK_QCOW2_H */
