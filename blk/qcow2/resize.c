/*
 * Changing a qcow2 image's virtual size.  Growing adds unallocated space,
 * with a larger L1 table where the new size needs one: written in new
 * clusters, counted and flushed, before the header points to it (size and
 * offset in one write), the old table freed after; preallocated, the new
 * space gets its clusters too.  Shrinking only drops space nothing is
 * stored in: a shrink that would lose data is refused.
 */
#include "config.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"

#define SIZE_OFFSET 24u
#define L1_FIELDS_OFFSET 36u        /* l1_size, then l1_table_offset */

static int coroutine_fn write_header_field(qcow2_state *s, uint64_t offset,
                                           const void *field, size_t bytes)
{
    struct iovec iov = { (void *)field, bytes };
    int ret = coblk_co_pwritev(s->file, offset, bytes, &iov, 1, 0);

    return ret == 0 ? coblk_co_flush(s->file) : ret;
}

/* Whether anything is stored in [from, to) of the guest. */
static int coroutine_fn stored_past(qcow2_state *s, uint64_t from,
                                    uint64_t to, bool *stored)
{
    *stored = false;
    for (uint64_t at = from; at < to && !*stored;) {
        qcow2_extent ext;
        int ret = qcow2_map(s, at, to - at, &ext);
        if (ret < 0) {
            return ret;
        }
        *stored = ext.kind != QCOW2_UNALLOCATED && ext.kind != QCOW2_ZERO;
        at += ext.bytes;
    }
    return 0;
}

int coroutine_fn qcow2_grow_l1(qcow2_state *s, uint64_t entries)
{
    uint64_t clusters = (entries * 8 + s->cluster_size - 1) >>
                        s->h.cluster_bits;
    uint64_t bytes = clusters << s->h.cluster_bits;

    if (entries > QCOW2_L1_MAX_BYTES / 8) {
        return blk_error(-EFBIG, "qcow2: the size needs an L1 table over "
                         "%u MiB", QCOW2_L1_MAX_BYTES >> 20);
    }
    /* Room in memory first: nothing is written if there is none. */
    int ret = qcow2_reserve_l1(s, (uint32_t)entries);
    if (ret < 0) {
        return ret;
    }
    uint64_t *table;        /* the new table as written, big-endian */
    if (posix_memalign((void **)&table, 4096, bytes)) {
        return -ENOMEM;
    }
    memset(table, 0, bytes);
    uint64_t offset;
    bool fresh;
    ret = qcow2_alloc_clusters(s, clusters, &offset, &fresh);
    /* Counted, and written, before the header points to it. */
    if (ret == 0) {
        ret = qcow2_cache_flush(s, &s->refcount_cache);
    }
    for (uint32_t i = 0; i < s->h.l1_size; i++) {
        table[i] = htobe64(s->l1[i]);
    }
    if (ret == 0) {
        struct iovec iov = { table, bytes };
        ret = coblk_co_pwritev(s->file, offset, bytes, &iov, 1, 0);
    }
    free(table);
    if (ret == 0) {
        ret = coblk_co_flush(s->file);
    }
    if (ret == 0) {
        uint8_t fields[12];
        uint32_t be_size = htobe32((uint32_t)entries);
        uint64_t be_offset = htobe64(offset);
        memcpy(fields, &be_size, 4);
        memcpy(fields + 4, &be_offset, 8);
        ret = write_header_field(s, L1_FIELDS_OFFSET, fields, sizeof(fields));
    }
    if (ret < 0) {
        return ret;
    }
    uint64_t old_offset = s->h.l1_offset;
    uint64_t old_clusters = ((uint64_t)s->h.l1_size * 8 + s->cluster_size -
                             1) >> s->h.cluster_bits;
    s->h.l1_offset = offset;
    s->h.l1_size = (uint32_t)entries;   /* its new entries are zeroes */
    ret = qcow2_meta_build(s);
    if (ret == 0 && old_clusters && old_offset) {
        ret = qcow2_update_refcounts(s, old_offset, old_clusters, -1);
    }
    return ret;
}

/* The file reaches at least `end`, by a write of the last bytes below
 * it (in a run of new clusters the caller owns).  Never a truncate: an
 * allocating write past `end`, in flight and not yet counted in the
 * file's size, may be in the file already, and would be cut off. */
static int coroutine_fn reach_end(qcow2_state *s, uint64_t end)
{
    static const uint8_t zeroes[512];
    struct iovec iov = { (void *)zeroes, sizeof(zeroes) };

    return coblk_co_pwritev(s->file, end - sizeof(zeroes), sizeof(zeroes),
                            &iov, 1, 0);
}

/* Host bytes [host, host + bytes) inside the file (freed clusters reused,
 * the new part of a cluster in use, or a run the file was just grown to
 * hold) must read as zeroes: written so with full preallocation, zeroed
 * in place with falloc (reserved), holes with metadata.  Full writes grow
 * the file themselves. */
static int coroutine_fn zero_host(qcow2_state *s, uint64_t host,
                                  uint64_t bytes, enum coblk_prealloc mode)
{
    if (mode != COBLK_PREALLOC_FULL) {
        return coblk_co_pwrite_zeroes(s->file, host, bytes,
                                      mode == COBLK_PREALLOC_METADATA
                                          ? COBLK_REQ_F_UNMAP : 0);
    }
    void *zeroes;
    if (posix_memalign(&zeroes, 4096, s->cluster_size)) {
        return blk_error(-ENOMEM, "out of memory");
    }
    memset(zeroes, 0, s->cluster_size);
    int ret = 0;
    for (uint64_t at = 0; at < bytes && ret == 0; at += s->cluster_size) {
        uint64_t len = bytes - at < s->cluster_size ? bytes - at
                                                    : s->cluster_size;
        struct iovec iov = { zeroes, len };
        ret = coblk_co_pwritev(s->file, host + at, len, &iov, 1, 0);
    }
    free(zeroes);
    return ret;
}

/* A preallocated cluster's L2 entry, as QEMU makes it: plain data, its
 * host cluster reading as zeroes (fresh file space, or zeroed); with
 * extended L2 entries, a host cluster whose subclusters are all still
 * unallocated, or over a backing image (which would show through them)
 * all zero. */
static void set_preallocated(qcow2_state *s, uint64_t *entry, uint64_t host)
{
    entry[0] = htobe64(host | QCOW2_OFLAG_COPIED);
    if (s->l2_entry_bytes == 16) {
        entry[1] = s->backing ? htobe64(0xffffffffull << 32) : 0;
    }
    qcow2_cache_mark_dirty(&s->l2_cache, entry);
}

static bool has_host(const uint64_t *entry)
{
    return be64toh(entry[0]) & (QCOW2_L2E_OFFSET_MASK |
                                QCOW2_OFLAG_COMPRESSED);
}

/* A cluster the image owns already, where it reaches into the new space
 * [from, end): falloc and full take that part of its host cluster too
 * (the rest holds data).  Shared clusters are left: a snapshot may see
 * that part. */
static int coroutine_fn reserve_tail(qcow2_state *s, uint64_t c,
                                     uint64_t e, uint64_t from, uint64_t end,
                                     enum coblk_prealloc mode)
{
    uint64_t start = c > from ? c : from;
    uint64_t stop = c + s->cluster_size < end ? c + s->cluster_size : end;

    if (mode == COBLK_PREALLOC_METADATA || (e & QCOW2_OFLAG_COMPRESSED) ||
        !(e & QCOW2_OFLAG_COPIED) || start >= stop) {
        return 0;
    }
    uint64_t host = (e & QCOW2_L2E_OFFSET_MASK) + (start - c);
    return zero_host(s, host, stop - start, mode);
}

/* Preallocates the clusters of guest [begin, end), all under one L2
 * table, whose new space starts at from: the unallocated ones get host
 * clusters in one run, counted first, then the file grown to hold them
 * and the run zeroed, then the entries pointed at them, so that no entry
 * names space the file lacks. */
static int coroutine_fn preallocate_table(qcow2_state *s, uint64_t from,
                                          uint64_t begin, uint64_t end,
                                          enum coblk_prealloc mode)
{
    uint64_t n = 0, *entry;
    int ret = 0;

    for (uint64_t c = begin; c < end && ret == 0; c += s->cluster_size) {
        ret = qcow2_l2_entry(s, c, true, &entry);
        if (ret == 0 && has_host(entry)) {
            ret = reserve_tail(s, c, be64toh(entry[0]), from, end, mode);
        } else {
            n += ret == 0;
        }
    }
    uint64_t host;
    bool fresh;
    if (ret == 0 && n) {
        ret = qcow2_alloc_clusters(s, n, &host, &fresh);
    }
    if (ret < 0 || n == 0) {
        return ret;
    }
    uint64_t run_end = host + (n << s->h.cluster_bits);
    if (mode != COBLK_PREALLOC_FULL && run_end > blk_size(s->file)) {
        ret = reach_end(s, run_end);
    }
    if (ret == 0) {
        ret = zero_host(s, host, run_end - host, mode);
    }
    if (ret < 0) {
        /* No entry names the run yet, no read can use it: it goes back
         * at once (no leak). */
        qcow2_update_refcounts(s, host, n, -1);
        return ret;
    }
    for (uint64_t c = begin; c < end && ret == 0; c += s->cluster_size) {
        ret = qcow2_l2_entry(s, c, true, &entry);
        if (ret == 0 && !has_host(entry)) {
            set_preallocated(s, entry, host);
            host += s->cluster_size;
        }
    }
    return ret;
}

/* Gives every unallocated cluster of guest [from, to) a host cluster, as
 * resize --preallocation does.  Over a backing image a cluster that
 * straddles `from` is left as it is: its head shows the backing data. */
static int coroutine_fn preallocate(qcow2_state *s, uint64_t from,
                                    uint64_t to, enum coblk_prealloc mode)
{
    uint64_t cs = s->cluster_size;
    uint64_t begin = s->backing ? (from + cs - 1) & ~(cs - 1)
                                : from & ~(cs - 1);
    /* A step within one L2 table, and at most half what a refcount block
     * counts: a run that fills a block's whole range leaves no room for
     * the block itself. */
    uint64_t per_table = cs << s->l2_bits;
    uint64_t half_block = (s->refblock_entries > 1 ? s->refblock_entries / 2
                                                   : 1) << s->h.cluster_bits;
    uint64_t step = per_table < half_block ? per_table : half_block;
    int ret = 0;

    for (uint64_t at = begin; at < to && ret == 0;) {
        uint64_t step_end = (at & ~(step - 1)) + step;
        uint64_t stop = step_end < to ? step_end : to;
        ret = preallocate_table(s, from, at, stop, mode);
        at = stop;
    }
    return ret == 0 ? qcow2_flush_metadata(s) : ret;
}

static int coroutine_fn resize_locked(qcow2_state *s, uint64_t size)
{
    if (s->corrupt) {
        return blk_error(-EIO, "qcow2: the image was found corrupt: no "
                         "more changes");
    }
    /* As QEMU: a version 2 snapshot records no disk size of its own. */
    if (s->h.nb_snapshots && s->h.version < 3) {
        return blk_error(-ENOTSUP, "Can't resize a v2 image which has "
                         "snapshots");
    }
    if (size < s->h.size) {
        bool stored;
        uint64_t from = (size + s->cluster_size - 1) & ~(s->cluster_size - 1);
        int ret = stored_past(s, from, s->h.size, &stored);
        if (ret < 0) {
            return ret;
        }
        if (stored) {
            return blk_error(-ENOTSUP, "qcow2: data is stored past %" PRIu64
                             " bytes: shrinking drops only unused space "
                             "(discard it first)", size);
        }
    }
    unsigned shift = s->h.cluster_bits + s->l2_bits;
    uint64_t needed = (size + (1ull << shift) - 1) >> shift;
    if (needed > s->h.l1_size) {
        int ret = qcow2_grow_l1(s, needed);
        if (ret < 0) {
            return ret;
        }
    }
    uint64_t be = htobe64(size);
    int ret = write_header_field(s, SIZE_OFFSET, &be, sizeof(be));
    if (ret == 0) {
        s->h.size = size;
    }
    return ret;
}

/* Growing over a backing image that is larger: the new space must read
 * as zeroes, not as what the backing image holds there (QEMU zeroes it
 * too).  The image has its new size already. */
static int coroutine_fn zero_backing_tail(struct coblk_dev *dev, uint64_t old,
                                          uint64_t size)
{
    qcow2_state *s = dev->opaque;
    uint64_t stop = size < s->backing->size ? size : s->backing->size;

    blk_set_size(dev, size);
    return qcow2_co_pwrite_zeroes(dev, old, stop - old, 0);
}

int coroutine_fn qcow2_co_truncate(struct coblk_dev *dev, uint64_t size,
                                   enum coblk_prealloc mode)
{
    qcow2_state *s = dev->opaque;
    uint64_t old = s->h.size;

    if (size % 512) {
        return blk_error(-EINVAL, "qcow2: the size must be a multiple of "
                         "512 bytes, not %" PRIu64, size);
    }
    if (size == old) {
        return 0;                       /* bitmaps stay valid */
    }
    int ret = qcow2_data_will_change(dev);
    if (ret < 0) {
        return ret;
    }
    qcow2_lock(s);
    ret = resize_locked(s, size);
    qcow2_unlock(s);
    if (ret == 0 && size > old && s->backing && s->backing->size > old) {
        ret = zero_backing_tail(dev, old, size);
    }
    if (ret == 0 && mode != COBLK_PREALLOC_OFF && size > old) {
        /* Owned: a write there, or a check, waits for the clusters to be
         * given and named (the lock drops while L2 slices load). */
        qcow2_inflight mine;
        qcow2_lock(s);
        ret = qcow2_own_exclusive(s, &mine, old & ~(s->cluster_size - 1),
                                  size);
        if (ret == 0) {
            ret = preallocate(s, old, size, mode);
            qcow2_release(s, &mine);
        }
        qcow2_unlock(s);
    }
    return ret;
}
