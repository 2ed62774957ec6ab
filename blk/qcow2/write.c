/*
 * qcow2 writes, write-zeroes, discard and flush.
 *
 * A write to clusters it owns (refcount 1) goes straight to the file.
 * Anywhere else it allocates, one cluster at a time: a new cluster (or,
 * with extended L2 entries, the subclusters of one it owns), the parts of
 * it the write does not cover copied from what the guest saw there
 * (backing image, compressed data, zeroes) in the same write as the data,
 * then the L2 entry.  Where there is nothing to copy (a run of clusters
 * that read as zeroes: unallocated over no backing data, or zero
 * clusters), a run of new clusters is allocated at once and written in
 * one write, as a convert into a new image writes.  Nothing is copied into a new cluster past the end
 * of the file where the old content was zeroes: it reads as zeroes.
 * Clusters and L2 tables an internal snapshot shares (no COPIED flag) are
 * never written in place: the image gets its own copy first.
 *
 * Requests that allocate or free own their guest clusters while they run
 * (s->inflight): others touching those clusters wait, so there are never
 * two allocations for one guest cluster, and a cluster is never freed
 * under a write in flight to it.  Writes in place only wait for those.
 *
 * Order: data before the L2 entry that points to it; refcounts on disk
 * before L2 entries (cache.c), a new L2 table before the L1 entry.
 */
#include "config.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"

typedef qcow2_inflight inflight;

/* ---- owning guest clusters ---------------------------------------------------- */

static inflight *conflict(qcow2_state *s, uint64_t begin, uint64_t end,
                          bool exclusive)
{
    for (inflight *r = s->inflight; r; r = r->next) {
        if (r->begin < end && begin < r->end && (r->exclusive || exclusive)) {
            return r;
        }
    }
    return NULL;
}

static void own(qcow2_state *s, inflight *r, uint64_t begin, uint64_t end,
                bool exclusive)
{
    *r = (inflight){ .next = s->inflight, .begin = begin, .end = end,
                     .exclusive = exclusive };
    s->inflight = r;
}

void qcow2_release(qcow2_state *s, inflight *r)
{
    inflight **link = &s->inflight;

    while (*link != r) {
        link = &(*link)->next;
    }
    *link = r->next;
    coblk_co_queue_restart_all(&r->waiters);
}

static uint64_t cluster_floor(const qcow2_state *s, uint64_t offset)
{
    return offset & ~(s->cluster_size - 1);
}

static uint64_t cluster_ceil(const qcow2_state *s, uint64_t offset)
{
    return (offset + s->cluster_size - 1) & ~(s->cluster_size - 1);
}

/* ---- tables ----------------------------------------------------------------------- */

static int coroutine_fn write_meta(qcow2_state *s, uint64_t offset,
                                   const void *buf, uint64_t bytes)
{
    struct iovec iov = { (void *)buf, bytes };
    int ret = coblk_co_pwritev(s->file, offset, bytes, &iov, 1, 0);

    return ret < 0 ? blk_error(ret, "qcow2: writing metadata at %#" PRIx64
                               ": %s", offset, strerror(-ret))
                   : 0;
}

/* The L2 table at `table`, shared with an internal snapshot, as it is on
 * disk, for this image's own copy: its entries point where they did, but
 * none is this image's alone any more (COPIED).  The lock is kept. */
static int coroutine_fn read_shared_table(qcow2_state *s, uint64_t table,
                                          uint64_t *buf)
{
    /* Slices are changed only in tables the image owns; written back all
     * the same, so that the file is the truth. */
    int ret = qcow2_cache_flush(s, &s->l2_cache);
    struct iovec iov = { buf, s->cluster_size };

    if (ret == 0) {
        ret = coblk_co_preadv(s->file, table, s->cluster_size, &iov, 1);
    }
    if (ret < 0) {
        return blk_error(ret, "qcow2: reading the L2 table at %#" PRIx64
                         ": %s", table, strerror(-ret));
    }
    for (size_t i = 0; i < s->cluster_size / 8; i += s->l2_entry_bytes / 8) {
        buf[i] &= htobe64(~QCOW2_OFLAG_COPIED);
    }
    return 0;
}

/* Drops the active L1 table's reference to the shared L2 table it no
 * longer points to, once that change is on disk. */
static int coroutine_fn unref_shared_table(qcow2_state *s, uint64_t table)
{
    uint64_t refcount;
    int ret = coblk_co_flush(s->file);

    if (ret == 0) {
        ret = qcow2_update_refcounts(s, table, 1, -1);
    }
    if (ret == 0) {
        ret = qcow2_get_refcount(s, table, &refcount);
    }
    /* Marked shared but counted once: freed, and no metadata now. */
    return ret == 0 && !refcount ? qcow2_meta_build(s) : ret;
}

/* Makes sure guest offset's L2 table exists and is this image's alone:
 * a new empty table, or a copy of one shared with an internal snapshot.
 * Atomic under the lock (it never drops it). */
static int coroutine_fn ensure_l2_table(qcow2_state *s, uint64_t offset)
{
    uint64_t i = offset >> (s->h.cluster_bits + s->l2_bits);
    uint64_t l1e = s->l1[i];
    uint64_t shared = l1e & QCOW2_L1E_OFFSET_MASK;

    if (shared && (l1e & QCOW2_OFLAG_COPIED)) {
        return 0;
    }
    uint64_t table;
    bool fresh;
    int ret = qcow2_alloc_clusters(s, 1, &table, &fresh);
    if (ret == 0) {
        ret = qcow2_meta_add(s, table, s->cluster_size, "an L2 table");
    }
    /* Counted on disk before anything points to it. */
    if (ret == 0) {
        ret = qcow2_cache_flush(s, &s->refcount_cache);
    }
    uint64_t *contents = NULL;
    if (ret == 0 && posix_memalign((void **)&contents, 4096,
                                   s->cluster_size)) {
        ret = -ENOMEM;
    }
    if (ret == 0) {
        memset(contents, 0, s->cluster_size);
        if (shared) {
            ret = read_shared_table(s, shared, contents);
        }
    }
    if (ret == 0) {
        qcow2_cache_forget(&s->l2_cache, table, s->cluster_size);
        ret = write_meta(s, table, contents, s->cluster_size);
    }
    free(contents);
    if (ret == 0) {
        ret = coblk_co_flush(s->file);
    }
    if (ret < 0) {
        return ret;
    }
    s->l1[i] = table | QCOW2_OFLAG_COPIED;
    uint64_t be = htobe64(s->l1[i]);
    ret = write_meta(s, s->h.l1_offset + i * 8, &be, 8);
    if (ret < 0) {
        s->l1[i] = l1e;
        return ret;
    }
    return shared ? unref_shared_table(s, shared) : 0;
}

/* Guest offset's L2 entry (and bitmap), as it is: not to be changed. */
static int coroutine_fn l2_entry_to_read(qcow2_state *s, uint64_t offset,
                                         const uint64_t **entry)
{
    uint64_t *entries;
    uint32_t index;
    int ret = qcow2_l2_slice(s, offset, &entries, &index);

    *entry = ret == 0 && entries
                 ? &entries[(size_t)index * (s->l2_entry_bytes / 8)] : NULL;
    return ret;
}

/* Guest offset's L2 entry (and bitmap), to be changed: in a table the
 * image owns, copied from a snapshot's if need be, made if make_table. */
int coroutine_fn qcow2_l2_entry(qcow2_state *s, uint64_t offset,
                                bool make_table, uint64_t **entry)
{
    uint64_t i = offset >> (s->h.cluster_bits + s->l2_bits);
    bool exists = s->l1[i] & QCOW2_L1E_OFFSET_MASK;
    int ret = make_table || exists ? ensure_l2_table(s, offset) : 0;

    if (ret == 0) {
        ret = l2_entry_to_read(s, offset, (const uint64_t **)entry);
    }
    return ret;
}

int coroutine_fn qcow2_entry_clusters(qcow2_state *s, uint64_t e,
                                      uint64_t *first, uint64_t *count)
{
    uint64_t host = e & QCOW2_L2E_OFFSET_MASK, bytes = s->cluster_size;

    *count = 0;
    if (e & QCOW2_OFLAG_COMPRESSED) {
        qcow2_compressed_extent(s, e & ~(3ull << 62), &host, &bytes);
    } else if (!host) {
        return 0;
    }
    /* What the entry claims must be data that starts inside the file (the
     * last cluster may end past it: a fresh one is written in part). */
    if (host >= s->file->size || qcow2_meta_overlaps(s, host, bytes)) {
        return qcow2_corrupt(s, "an L2 entry claims %" PRIu64 " bytes at %#"
                             PRIx64 ", outside the file or over metadata",
                             bytes, host);
    }
    *first = cluster_floor(s, host);
    *count = ((cluster_floor(s, host + bytes - 1) - *first) >>
              s->h.cluster_bits) + 1;
    return 0;
}

/* Drops the references of an L2 entry that is being replaced: freed once
 * the new entry is on disk. */
int coroutine_fn qcow2_unref_entry(qcow2_state *s, uint64_t e)
{
    uint64_t first, count;
    int ret = qcow2_entry_clusters(s, e, &first, &count);

    return ret == 0 && count ? qcow2_free_clusters(s, first, count) : ret;
}

/* ---- allocating writes -------------------------------------------------------------- */

/* How one allocating step writes its cluster. */
struct plan {
    uint64_t cluster;           /* guest offset of the cluster */
    uint64_t host;              /* where it goes */
    bool new_cluster, fresh;
    uint64_t begin, end;        /* guest range written, data and copies */
    uint64_t old_entry;         /* to unreference, if new_cluster */
    bool old_zeroes;            /* the copies would be zeroes */
};

static uint64_t subcluster_mask(const qcow2_state *s, uint64_t begin,
                                uint64_t end)
{
    unsigned first = (unsigned)((begin & (s->cluster_size - 1)) >>
                                s->subcluster_bits);
    unsigned last = (unsigned)(((end - 1) & (s->cluster_size - 1)) >>
                               s->subcluster_bits);
    return (last == 31 ? ~0u : (1u << (last + 1)) - 1) & ~((1u << first) - 1);
}

/* Decides where [offset, offset + bytes) of one cluster goes and what
 * must be copied around it; allocates if need be.  Lock held. */
static int coroutine_fn make_plan(qcow2_state *s, uint64_t offset,
                                  uint64_t bytes, struct plan *p)
{
    const uint64_t *entry;
    int ret = l2_entry_to_read(s, offset, &entry);

    if (ret < 0) {
        return ret;
    }
    uint64_t e = entry ? be64toh(entry[0]) : 0;
    bool extended = s->l2_entry_bytes == 16;
    bool compressed = e & QCOW2_OFLAG_COMPRESSED;
    uint64_t host = compressed ? 0 : e & QCOW2_L2E_OFFSET_MASK;
    bool owned = host && (e & QCOW2_OFLAG_COPIED);
    /* Copy whole clusters, or with extended L2 the subclusters touched,
     * unless the cluster's data is all elsewhere (compressed, shared). */
    uint64_t unit = extended && !compressed && (owned || !host)
                        ? 1ull << s->subcluster_bits : s->cluster_size;

    *p = (struct plan){
        .cluster = cluster_floor(s, offset),
        .begin = offset & ~(unit - 1),
        .end = (offset + bytes + unit - 1) & ~(unit - 1),
        .old_entry = e,
    };
    /* Zeroes around the data: a zero cluster, or nothing here and no
     * backing image there. */
    bool zero_flag = !extended && (e & QCOW2_OFLAG_ZERO);
    p->old_zeroes = !compressed && (zero_flag || !host) &&
                    (zero_flag || !s->backing ||
                     p->begin >= s->backing->size);
    if (extended && !compressed) {
        /* Zero subclusters read as zeroes, whatever the backing. */
        uint64_t bitmap = be64toh(entry ? entry[1] : 0);
        uint64_t mask = subcluster_mask(s, p->begin, p->end);
        p->old_zeroes = ((bitmap >> 32) & mask) == mask ||
                        (!(bitmap & mask) && (!s->backing ||
                                              p->begin >= s->backing->size));
    }
    if (owned && (extended || zero_flag)) {
        /* Its own cluster: unallocated subclusters, or a preallocated
         * zero cluster, are filled in place. */
        if (qcow2_meta_overlaps(s, host, s->cluster_size)) {
            return qcow2_corrupt(s, "the L2 entry for guest offset %#"
                                 PRIx64 " points at metadata (%#" PRIx64
                                 ")", offset, host);
        }
        p->host = host;
        return 0;
    }
    p->new_cluster = true;
    ret = ensure_l2_table(s, offset);   /* first, as QEMU: data follows */
    return ret < 0 ? ret : qcow2_alloc_clusters(s, 1, &p->host, &p->fresh);
}

/* Reads what the guest sees in [begin, end) into buf, zeroes past the
 * end of the device. */
static int coroutine_fn read_old(struct coblk_dev *dev, uint64_t begin,
                                 uint64_t end, uint8_t *buf)
{
    uint64_t stop = end < dev->size ? end : dev->size;

    memset(buf, 0, end - begin);
    if (begin >= stop) {
        return 0;
    }
    struct iovec iov = { buf, stop - begin };
    return qcow2_co_preadv(dev, begin, stop - begin, &iov, 1);
}

/* Writes the data and the copies around it, as one write.  Lock not
 * held. */
static int coroutine_fn write_planned(struct coblk_dev *dev,
                                      const struct plan *p, uint64_t offset,
                                      uint64_t bytes, const struct iovec *iov,
                                      unsigned iovcnt, uint64_t skip)
{
    qcow2_state *s = dev->opaque;
    uint64_t head = offset - p->begin, tail = p->end - (offset + bytes);
    bool skip_copies = p->fresh && p->old_zeroes;
    uint8_t *copies = NULL;
    int ret = 0;

    if (!skip_copies && head + tail &&
        posix_memalign((void **)&copies, 4096, head + tail + 1)) {
        return -ENOMEM;
    }
    if (copies && head) {
        ret = p->old_zeroes ? (memset(copies, 0, head), 0)
                            : read_old(dev, p->begin, offset, copies);
    }
    if (ret == 0 && copies && tail) {
        ret = p->old_zeroes ? (memset(copies + head, 0, tail), 0)
                            : read_old(dev, offset + bytes, p->end,
                                       copies + head);
    }
    struct iovec *parts = ret == 0 ? malloc((iovcnt + 2) * sizeof(*parts))
                                   : NULL;
    if (ret == 0 && !parts) {
        ret = -ENOMEM;
    }
    if (ret == 0) {
        unsigned n = 0;
        if (copies && head) {
            parts[n++] = (struct iovec){ copies, head };
        }
        n += iov_slice(iov, iovcnt, skip, bytes, parts + n, iovcnt, NULL);
        if (copies && tail) {
            parts[n++] = (struct iovec){ copies + head, tail };
        }
        uint64_t from = skip_copies ? offset : p->begin;
        uint64_t len = skip_copies ? bytes : p->end - p->begin;
        ret = coblk_co_pwritev(s->file, p->host + (from - p->cluster), len,
                               parts, n, 0);
    }
    free(parts);
    free(copies);
    return ret;
}

/* Points the cluster's L2 entry at the planned host cluster. */
static int coroutine_fn commit_plan(qcow2_state *s, const struct plan *p)
{
    uint64_t *entry;
    int ret = qcow2_l2_entry(s, p->cluster, true, &entry);

    if (ret < 0) {
        return ret;
    }
    entry[0] = htobe64(p->host | QCOW2_OFLAG_COPIED);
    if (s->l2_entry_bytes == 16) {
        bool whole = p->end - p->begin == s->cluster_size;
        uint64_t bitmap = be64toh(entry[1]);
        uint64_t mask = whole ? 0xffffffffull
                              : subcluster_mask(s, p->begin, p->end);
        if (p->old_entry & QCOW2_OFLAG_COMPRESSED) {
            bitmap = 0;
        }
        entry[1] = htobe64((bitmap | mask) & ~(mask << 32));
    }
    qcow2_cache_mark_dirty(&s->l2_cache, entry);
    if (p->new_cluster) {
        ret = qcow2_unref_entry(s, p->old_entry);
    }
    return ret;
}

/* Clusters one run allocates at most: 512, and less than a refcount
 * block counts, so that a block made for the run finds room in its own
 * range (refcount.c places it there). */
static uint64_t run_clusters_max(const qcow2_state *s)
{
    uint64_t half_block = s->refblock_entries / 2;
    return half_block < 512 ? half_block : 512;
}

/* How much of a write of bytes at offset into ext (not owned in place)
 * may allocate as a run: all of ext where its clusters read as zeroes,
 * with nothing to copy or keep; over a backing image's data, the whole
 * clusters the write covers (nothing to copy from there either).  0: the
 * one-cluster path. */
static uint64_t run_allocatable(const qcow2_state *s, const qcow2_extent *ext,
                                uint64_t offset)
{
    if (s->l2_entry_bytes != 8) {
        return 0;               /* subclusters: the one-cluster path */
    }
    if (ext->kind == QCOW2_ZERO ||
        (ext->kind == QCOW2_UNALLOCATED &&
         (!s->backing || cluster_floor(s, offset) >= s->backing->size))) {
        return ext->bytes;
    }
    if (ext->kind != QCOW2_UNALLOCATED || offset & (s->cluster_size - 1)) {
        return 0;
    }
    return ext->bytes & ~(s->cluster_size - 1);
}

/* A run of clusters that read as zeroes, owned (exclusive) by the caller:
 * new clusters side by side, the data (and, inside the file, zeroes
 * around it) in one write, then an L2 entry each. */
static int coroutine_fn allocating_run(struct coblk_dev *dev, uint64_t offset,
                                       uint64_t bytes, const struct iovec *iov,
                                       unsigned iovcnt, uint64_t skip)
{
    qcow2_state *s = dev->opaque;
    uint64_t first = cluster_floor(s, offset);
    uint64_t n = (cluster_ceil(s, offset + bytes) - first) >>
                 s->h.cluster_bits;
    struct plan p = { .cluster = first, .begin = first,
                      .end = first + (n << s->h.cluster_bits),
                      .new_cluster = true, .old_zeroes = true };
    /* The L2 tables first, as QEMU: the data of writes in a row then lies
     * in a row in the file. */
    int ret = ensure_l2_table(s, first);
    if (ret == 0) {
        ret = ensure_l2_table(s, p.end - 1);
    }
    if (ret == 0) {
        ret = qcow2_alloc_clusters(s, n, &p.host, &p.fresh);
    }

    if (ret < 0) {
        return ret;
    }
    qcow2_unlock(s);
    ret = write_planned(dev, &p, offset, bytes, iov, iovcnt, skip);
    qcow2_lock(s);
    uint64_t committed = 0;
    for (; ret == 0 && committed < n; committed++) {
        uint64_t at = committed << s->h.cluster_bits;
        struct plan one = { .cluster = first + at, .begin = first + at,
                            .end = first + at + s->cluster_size,
                            .host = p.host + at, .new_cluster = true };
        ret = commit_plan(s, &one);
    }
    if (ret < 0 && committed < n) {
        /* Never referenced: back to free. */
        qcow2_update_refcounts(s, p.host + (committed << s->h.cluster_bits),
                               n - committed, -1);
    }
    return ret;
}

/* One cluster that needs allocating, owned (exclusive) by the caller. */
static int coroutine_fn allocating_write(struct coblk_dev *dev,
                                         uint64_t offset, uint64_t bytes,
                                         const struct iovec *iov,
                                         unsigned iovcnt, uint64_t skip)
{
    qcow2_state *s = dev->opaque;
    struct plan p;
    int ret = make_plan(s, offset, bytes, &p);

    if (ret < 0) {
        return ret;
    }
    qcow2_unlock(s);
    ret = write_planned(dev, &p, offset, bytes, iov, iovcnt, skip);
    qcow2_lock(s);
    if (ret == 0) {
        return commit_plan(s, &p);
    }
    if (p.new_cluster) {
        qcow2_update_refcounts(s, p.host, 1, -1);   /* never used */
    }
    return ret;
}

static int refuse_corrupt(void)
{
    return blk_error(-EIO, "qcow2: the image was found corrupt: no more "
                     "writes (repair it with qemu-img check -r all)");
}

/* Writes from offset on, as far as one step goes; sets *done. */
static int coroutine_fn write_step(struct coblk_dev *dev, uint64_t offset,
                                   uint64_t bytes, const struct iovec *iov,
                                   unsigned iovcnt, uint64_t skip,
                                   uint64_t *done)
{
    qcow2_state *s = dev->opaque;
    qcow2_extent ext;
    inflight mine, *r;
    bool in_place, run;
    int ret;

    qcow2_lock(s);
    for (;;) {
        ret = s->corrupt ? refuse_corrupt() : qcow2_map(s, offset, bytes, &ext);
        if (ret == 0 && ext.kind == QCOW2_NORMAL &&
            qcow2_meta_overlaps(s, ext.host, ext.bytes)) {
            ret = qcow2_corrupt(s, "the L2 entry for guest offset %#" PRIx64
                                " points at metadata (%#" PRIx64 ")", offset,
                                ext.host);
        }
        if (ret < 0) {
            qcow2_unlock(s);
            return ret;
        }
        in_place = ext.kind == QCOW2_NORMAL && ext.copied;
        uint64_t run_bytes = in_place ? 0 : run_allocatable(s, &ext, offset);
        run = run_bytes != 0;
        uint64_t in_cluster = s->cluster_size - (offset & (s->cluster_size - 1));
        uint64_t most = run ? in_cluster + ((run_clusters_max(s) - 1)
                                            << s->h.cluster_bits)
                            : in_cluster;
        *done = in_place ? ext.bytes
                : run ? (run_bytes < most ? run_bytes : most)
                      : (ext.bytes < most ? ext.bytes : most);
        r = conflict(s, cluster_floor(s, offset),
                     cluster_ceil(s, offset + *done), !in_place);
        if (!r) {
            break;
        }
        qcow2_wait(s, &r->waiters);
    }
    own(s, &mine, cluster_floor(s, offset), cluster_ceil(s, offset + *done),
        !in_place);
    if (in_place) {
        qcow2_unlock(s);
        ret = qcow2_rw_part(s->file, true, ext.host, *done, iov, iovcnt,
                            skip);
        qcow2_lock(s);
    } else if (run) {
        ret = allocating_run(dev, offset, *done, iov, iovcnt, skip);
    } else {
        ret = allocating_write(dev, offset, *done, iov, iovcnt, skip);
    }
    qcow2_release(s, &mine);
    qcow2_unlock(s);
    return ret;
}

/* Refuses data changes to an image opened without its backing file. */
static int coroutine_fn data_writable(struct coblk_dev *dev)
{
    const qcow2_state *s = dev->opaque;

    if (s->backing_closed) {
        return blk_error(-EACCES, "qcow2: %s was opened without its backing "
                         "file: its data cannot change",
                         blk_dev_filename(s->file));
    }
    return qcow2_data_will_change(dev);
}

int coroutine_fn qcow2_co_pwritev(struct coblk_dev *dev, uint64_t offset,
                                  uint64_t bytes, const struct iovec *iov,
                                  unsigned iovcnt, int req_flags)
{
    int writable = data_writable(dev);
    if (writable < 0) {
        return writable;
    }
    if (req_flags & COBLK_REQ_F_COMPRESS) {
        int ret = qcow2_co_pwritev_compressed(dev, offset, bytes, iov,
                                              iovcnt);
        return ret == 0 && (req_flags & COBLK_REQ_F_FUA)
                   ? qcow2_co_flush(dev) : ret;
    }
    for (uint64_t done = 0; done < bytes;) {
        uint64_t step;
        int ret = write_step(dev, offset + done, bytes - done, iov, iovcnt,
                             done, &step);
        if (ret < 0) {
            return ret;
        }
        done += step;
    }
    /* Durable: the data, and the metadata that finds it. */
    return req_flags & COBLK_REQ_F_FUA ? qcow2_co_flush(dev) : 0;
}

/* ---- discard and write-zeroes ------------------------------------------------------------- */

/* The entry (and bitmap) a whole cluster gets: zeroes when the guest must
 * read zeroes (write-zeroes, or a discard over a backing image), else
 * unallocated.  keep_host: a zero cluster keeps its preallocated host. */
static void emptied_entry(const qcow2_state *s, uint64_t old, bool zeroes,
                          bool keep_host, uint64_t *e, uint64_t *bitmap)
{
    bool owned = !(old & QCOW2_OFLAG_COMPRESSED) &&
                 (old & QCOW2_L2E_OFFSET_MASK) && (old & QCOW2_OFLAG_COPIED);
    uint64_t host = keep_host && owned
                        ? (old & QCOW2_L2E_OFFSET_MASK) | QCOW2_OFLAG_COPIED
                        : 0;

    if (s->l2_entry_bytes == 16) {
        *e = host;
        *bitmap = zeroes ? 0xffffffffull << 32 : 0;
    } else {
        *e = zeroes ? host | QCOW2_OFLAG_ZERO : 0;
        *bitmap = 0;
    }
}

/* Empties the whole clusters [begin, end); lock held, range owned. */
static int coroutine_fn empty_clusters(qcow2_state *s, uint64_t begin,
                                       uint64_t end, bool zeroes,
                                       bool keep_host)
{
    for (uint64_t c = begin; c < end; c += s->cluster_size) {
        uint64_t *entry;
        /* Nothing to zero where nothing is and nothing shows through. */
        bool need_table = zeroes && (s->backing || s->l2_entry_bytes == 16);
        int ret = qcow2_l2_entry(s, c, need_table, &entry);
        if (ret < 0) {
            return ret;
        }
        if (!entry) {
            continue;
        }
        uint64_t old = be64toh(entry[0]), e, bitmap;
        emptied_entry(s, old, zeroes, keep_host, &e, &bitmap);
        entry[0] = htobe64(e);
        if (s->l2_entry_bytes == 16) {
            entry[1] = htobe64(bitmap);
        }
        qcow2_cache_mark_dirty(&s->l2_cache, entry);
        if ((old & ~QCOW2_OFLAG_ZERO) != (e & ~QCOW2_OFLAG_ZERO)) {
            ret = qcow2_unref_entry(s, old);
            if (ret < 0) {
                return ret;
            }
        }
    }
    return 0;
}

/* Waits until no request owns any of [begin, end). */
static void coroutine_fn wait_owners(qcow2_state *s, uint64_t begin,
                                     uint64_t end)
{
    inflight *r;

    while ((r = conflict(s, begin, end, true))) {
        qcow2_wait(s, &r->waiters);
    }
}

int coroutine_fn qcow2_own_exclusive(qcow2_state *s, inflight *mine,
                                     uint64_t begin, uint64_t end)
{
    if (begin == 0 && end == UINT64_MAX) {
        qcow2_own_all(s, mine);
    } else {
        wait_owners(s, begin, end);
        own(s, mine, begin, end, true);
    }
    if (s->corrupt) {
        qcow2_release(s, mine);
        return refuse_corrupt();
    }
    return 0;
}

int coroutine_fn qcow2_alone_begin(qcow2_state *s, inflight *mine)
{
    qcow2_lock(s);
    int ret = qcow2_own_exclusive(s, mine, 0, UINT64_MAX);
    if (ret == 0 && (ret = qcow2_flush_metadata(s)) < 0) {
        qcow2_release(s, mine);
    }
    if (ret < 0) {
        qcow2_unlock(s);
    }
    return ret;
}

void coroutine_fn qcow2_alone_end(qcow2_state *s, inflight *mine)
{
    qcow2_release(s, mine);
    qcow2_unlock(s);
}

/* The first request other than mine that owns some guest cluster, or
 * waits to own them all (a claim: only_claims). */
static inflight *other_owner(qcow2_state *s, const inflight *mine,
                             bool only_claims)
{
    for (inflight *r = s->inflight; r; r = r->next) {
        if (r != mine &&
            (!only_claims || (r->begin == 0 && r->end == UINT64_MAX))) {
            return r;
        }
    }
    return NULL;
}

/* Claimed first, then waited for: a request that comes meanwhile waits
 * for this one, so that a steady stream of writes, each owning a little,
 * cannot hold it off for ever.  One claim at a time (two would wait for
 * each other). */
void coroutine_fn qcow2_own_all(qcow2_state *s, inflight *mine)
{
    inflight *r;

    while ((r = other_owner(s, NULL, true))) {
        qcow2_wait(s, &r->waiters);
    }
    own(s, mine, 0, UINT64_MAX, true);
    while ((r = other_owner(s, mine, false))) {
        qcow2_wait(s, &r->waiters);
    }
}

int coroutine_fn qcow2_empty_range(qcow2_state *s, uint64_t begin,
                                    uint64_t end, bool zeroes, bool keep_host)
{
    inflight mine;

    qcow2_lock(s);
    int ret = qcow2_own_exclusive(s, &mine, begin, end);
    if (ret == 0) {
        ret = empty_clusters(s, begin, end, zeroes, keep_host);
        qcow2_release(s, &mine);
    }
    qcow2_unlock(s);
    return ret;
}

/* Whole clusters inside [offset, offset + bytes): [*begin, *end). */
static bool whole_clusters(const struct coblk_dev *dev, uint64_t offset,
                           uint64_t bytes, uint64_t *begin, uint64_t *end)
{
    const qcow2_state *s = dev->opaque;
    uint64_t stop = offset + bytes;

    *begin = cluster_ceil(s, offset);
    /* The last cluster counts as whole up to the end of the device. */
    *end = stop == dev->size ? cluster_ceil(s, stop) : cluster_floor(s, stop);
    return *begin < *end;
}

int coroutine_fn qcow2_write_zero_bytes(struct coblk_dev *dev,
                                        uint64_t offset, uint64_t bytes)
{
    static const uint8_t zeroes[65536];

    for (uint64_t done = 0; done < bytes;) {
        uint64_t len = bytes - done < sizeof(zeroes) ? bytes - done
                                                     : sizeof(zeroes);
        struct iovec iov = { (void *)zeroes, len };
        int ret = qcow2_co_pwritev(dev, offset + done, len, &iov, 1, 0);
        if (ret < 0) {
            return ret;
        }
        done += len;
    }
    return 0;
}

int coroutine_fn qcow2_co_pwrite_zeroes(struct coblk_dev *dev,
                                        uint64_t offset, uint64_t bytes,
                                        int req_flags)
{
    qcow2_state *s = dev->opaque;
    uint64_t begin, end;
    int writable = data_writable(dev);

    if (writable < 0) {
        return writable;
    }
    /* Version 2 has no zero flag: zeroes only by leaving nothing there,
     * and only where no backing image shows through. */
    if ((s->h.version < 3 && s->backing) ||
        !whole_clusters(dev, offset, bytes, &begin, &end)) {
        return qcow2_write_zero_bytes(dev, offset, bytes);
    }
    int ret = qcow2_write_zero_bytes(dev, offset, begin - offset);
    if (ret == 0) {
        ret = qcow2_empty_range(s, begin, end, s->h.version >= 3,
                                !(req_flags & COBLK_REQ_F_UNMAP));
    }
    uint64_t stop = offset + bytes;
    if (ret == 0 && end < stop) {
        ret = qcow2_write_zero_bytes(dev, end, stop - end);
    }
    return ret;
}

int coroutine_fn qcow2_co_pdiscard(struct coblk_dev *dev, uint64_t offset,
                                   uint64_t bytes)
{
    qcow2_state *s = dev->opaque;
    uint64_t begin, end;
    int writable = data_writable(dev);

    if (writable < 0) {
        return writable;
    }
    /* Partial clusters stay: discard is advice.  Over a backing image the
     * guest must not see its data come back: zeroes, where the format
     * can say so. */
    if (!whole_clusters(dev, offset, bytes, &begin, &end) ||
        (s->backing && s->h.version < 3)) {
        return 0;
    }
    return qcow2_empty_range(s, begin, end, s->backing != NULL, false);
}

int coroutine_fn qcow2_flush_metadata(qcow2_state *s)
{
    /* Refcounts up, L2 entries, refcounts down: each on disk before the
     * next (cache.c, qcow2_free_clusters). */
    int ret = qcow2_cache_flush(s, &s->l2_cache);
    if (ret == 0) {
        ret = qcow2_free_pending(s);
    }
    return ret == 0 ? qcow2_cache_flush(s, &s->refcount_cache) : ret;
}

int coroutine_fn qcow2_co_flush(struct coblk_dev *dev)
{
    qcow2_state *s = dev->opaque;

    qcow2_lock(s);
    int ret = qcow2_flush_metadata(s);
    qcow2_unlock(s);
    return ret == 0 ? coblk_co_flush(s->file) : ret;
}
