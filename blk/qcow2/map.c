/*
 * Guest offset -> what the image stores there: L1 entry, L2 slice, then
 * one cluster (or, with extended L2 entries, one subcluster) after the
 * other while they are of the same kind and, for data, contiguous in the
 * file, so that one request reads one run.  Entries come from a file
 * anyone may have written: an entry that points outside the file or is
 * malformed is -EIO with a message, never a read somewhere else.
 *
 * A read looks up without the lock first (qcow2_map_cached): the same
 * walk over what the cache holds, checked against the image's sequence
 * count (lock.c), silent where the locked walk would report.
 */
#include "config.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>

#include "qcow2.h"

/* One unit (cluster, or subcluster with extended L2): its kind and, for
 * data, the file offset where the unit starts. */
struct unit {
    enum qcow2_kind kind;
    bool copied;
    uint64_t host;
};

static int corrupt(bool report, uint64_t offset, const char *what,
                   uint64_t value)
{
    if (!report) {
        return -EIO;
    }
    return blk_error(-EIO, "qcow2: the image is corrupt: the L2 entry for "
                     "guest offset %#" PRIx64 " %s (%#" PRIx64 ")", offset,
                     what, value);
}

/* Entries are read once each, whole: a lookup without the lock reads
 * them while they may change. */
static uint64_t entry_word(const uint64_t *entry, unsigned word)
{
    return be64toh(__atomic_load_n(&entry[word], __ATOMIC_RELAXED));
}

/* The unit at guest `offset`, from its L2 entry (and bitmap); report:
 * say what is wrong with it. */
static int classify(const qcow2_state *s, uint64_t offset,
                    const uint64_t *entry, struct unit *u, bool report)
{
    uint64_t e = entry_word(entry, 0);
    uint64_t cluster_host = e & QCOW2_L2E_OFFSET_MASK;

    if (e & QCOW2_OFLAG_COMPRESSED) {
        *u = (struct unit){ QCOW2_COMPRESSED, false, e & ~(3ull << 62) };
        return 0;
    }
    u->copied = e & QCOW2_OFLAG_COPIED;
    bool zero_flag = e & QCOW2_OFLAG_ZERO;
    if (s->l2_entry_bytes == 16) {
        uint64_t bitmap = entry_word(entry, 1);
        unsigned sc = (unsigned)(offset >> s->subcluster_bits) &
                      (QCOW2_SUBCLUSTERS - 1);
        bool alloc = bitmap >> sc & 1, zero = bitmap >> (32 + sc) & 1;
        if (alloc && zero) {
            return corrupt(report, offset, "marks a subcluster both allocated "
                           "and zero", bitmap);
        }
        if (alloc && !cluster_host) {
            return corrupt(report, offset, "allocates a subcluster of no "
                           "cluster", e);
        }
        u->kind = alloc ? QCOW2_NORMAL
                  : !zero ? (cluster_host ? QCOW2_UNALLOCATED_ALLOC
                                          : QCOW2_UNALLOCATED)
                  : cluster_host ? QCOW2_ZERO_ALLOC : QCOW2_ZERO;
        u->host = cluster_host + ((uint64_t)sc << s->subcluster_bits);
    } else if (zero_flag) {
        if (s->h.version < 3) {
            return corrupt(report, offset, "has the zero flag in a version 2 "
                           "image", e);
        }
        u->kind = cluster_host ? QCOW2_ZERO_ALLOC : QCOW2_ZERO;
        u->host = cluster_host;
    } else {
        u->kind = cluster_host ? QCOW2_NORMAL : QCOW2_UNALLOCATED;
        u->host = cluster_host;
    }
    if ((u->kind == QCOW2_NORMAL || u->kind == QCOW2_ZERO_ALLOC) &&
        ((cluster_host & (s->cluster_size - 1)) ||
         cluster_host >= blk_size(s->file))) {
        return corrupt(report, offset, "points to data outside the image file "
                       "or inside a cluster", cluster_host);
    }
    return 0;
}

/* Where guest offset's L2 entry is, by the L1 table l1 of l1_size
 * entries: the file offset of its slice (*slice 0: no table) and its
 * index there, in entries of s->l2_entry_bytes. */
static int locate(const qcow2_state *s, const uint64_t *l1, uint32_t l1_size,
                  uint64_t offset, uint64_t *slice, uint32_t *index,
                  bool report)
{
    unsigned l1_shift = s->h.cluster_bits + s->l2_bits;
    uint64_t l1_index = offset >> l1_shift;
    uint32_t per_slice = s->l2_cache.slice_bytes / s->l2_entry_bytes;
    uint32_t l2_index = (uint32_t)(offset >> s->h.cluster_bits) &
                        ((1u << s->l2_bits) - 1);

    /* Where in its slice the entry is, also for a table not there. */
    *index = l2_index % per_slice;
    *slice = 0;
    if (l1_index >= l1_size) {
        return 0;
    }
    uint64_t l2_offset = __atomic_load_n(&l1[l1_index], __ATOMIC_RELAXED) &
                         QCOW2_L1E_OFFSET_MASK;
    uint64_t file_size = blk_size(s->file);
    if (!l2_offset) {
        return 0;
    }
    if ((l2_offset & (s->cluster_size - 1)) || l2_offset > file_size ||
        s->cluster_size > file_size - l2_offset) {
        return !report ? -EIO
               : blk_error(-EIO, "qcow2: the image is corrupt: L1 entry %"
                           PRIu64 " points to an L2 table outside the file "
                           "or inside a cluster (%#" PRIx64 ")", l1_index,
                           l2_offset);
    }
    *slice = l2_offset +
             (uint64_t)(l2_index / per_slice) * s->l2_cache.slice_bytes;
    return 0;
}

int coroutine_fn qcow2_l2_slice(qcow2_state *s, uint64_t offset,
                                uint64_t **entries, uint32_t *index)
{
    uint64_t l1_index = offset >> (s->h.cluster_bits + s->l2_bits);

    for (;;) {
        uint64_t slice;
        int ret = locate(s, s->l1, s->h.l1_size, offset, &slice, index, true);

        *entries = NULL;
        if (ret < 0 || !slice) {
            return ret;
        }
        uint64_t named = s->l1[l1_index];
        ret = qcow2_cache_get(s, &s->l2_cache, slice, entries);
        /* The lock drops while a slice loads or is waited for: the L1
         * entry may name another table by now (the old one freed, its
         * cluster discarded).  Walked again. */
        if (ret < 0 || s->l1[l1_index] == named) {
            return ret;
        }
    }
}

/* qcow2_map() from the slice holding offset's entry at index (NULL: no
 * table). */
static int map_slice(const qcow2_state *s, uint64_t offset, uint64_t bytes,
                     const uint64_t *entries, uint32_t index,
                     qcow2_extent *out, bool report)
{
    int ret;

    /* Never past the slice: the next one may not be in memory. */
    uint32_t per_slice = s->l2_cache.slice_bytes / s->l2_entry_bytes;
    uint64_t cluster_mask = s->cluster_size - 1;
    uint64_t in_slice = ((uint64_t)(per_slice - index) << s->h.cluster_bits) -
                        (offset & cluster_mask);
    if (bytes > in_slice) {
        bytes = in_slice;
    }
    if (!entries) {
        *out = (qcow2_extent){ QCOW2_UNALLOCATED, false, bytes, 0 };
        return 0;
    }
    uint64_t unit_size = 1ull << s->subcluster_bits;
    uint32_t words = s->l2_entry_bytes / 8;
    struct unit first;
    ret = classify(s, offset, &entries[(size_t)index * words], &first,
                   report);
    if (ret < 0) {
        return ret;
    }
    uint64_t in_unit = unit_size - (offset & (unit_size - 1));
    if (first.kind == QCOW2_COMPRESSED) {
        /* One cluster per descriptor. */
        uint64_t in_cluster = s->cluster_size - (offset & cluster_mask);
        *out = (qcow2_extent){ QCOW2_COMPRESSED, false,
                               bytes < in_cluster ? bytes : in_cluster,
                               first.host };
        return 0;
    }
    uint64_t done = in_unit < bytes ? in_unit : bytes;
    uint64_t expect = first.host + unit_size;
    while (done < bytes) {
        uint64_t at = offset + done;
        uint32_t i = index + (uint32_t)((at >> s->h.cluster_bits) -
                                        (offset >> s->h.cluster_bits));
        struct unit next;
        ret = classify(s, at, &entries[(size_t)i * words], &next, report);
        if (ret < 0) {
            return ret;
        }
        bool has_host = first.kind == QCOW2_NORMAL ||
                        first.kind == QCOW2_ZERO_ALLOC ||
                        first.kind == QCOW2_UNALLOCATED_ALLOC;
        if (next.kind != first.kind || next.copied != first.copied ||
            (has_host && next.host != expect)) {
            break;
        }
        done += bytes - done < unit_size ? bytes - done : unit_size;
        expect += unit_size;
    }
    *out = (qcow2_extent){ first.kind, first.copied, done,
                           first.host + (offset & (unit_size - 1)) };
    return 0;
}

int coroutine_fn qcow2_map(qcow2_state *s, uint64_t offset, uint64_t bytes,
                           qcow2_extent *out)
{
    uint64_t *entries;
    uint32_t index;
    int ret = qcow2_l2_slice(s, offset, &entries, &index);

    return ret < 0 ? ret
                   : map_slice(s, offset, bytes, entries, index, out, true);
}

bool qcow2_map_cached(qcow2_state *s, uint64_t offset, uint64_t bytes,
                      qcow2_extent *out)
{
    unsigned long seq;

    if (!qcow2_read_begin(s, &seq)) {
        return false;
    }
    const qcow2_l1_view *l1 = __atomic_load_n(&s->l1_view, __ATOMIC_ACQUIRE);
    uint64_t slice;
    uint32_t index;
    bool found = l1 && locate(s, l1->table, l1->capacity, offset, &slice,
                              &index, false) == 0;
    const uint64_t *entries = found && slice
                                  ? qcow2_cache_peek(&s->l2_cache, slice)
                                  : NULL;
    found = found && (!slice || entries) &&
            map_slice(s, offset, bytes, entries, index, out, false) == 0;
    return qcow2_read_valid(s, seq) && found;
}

void qcow2_compressed_extent(const qcow2_state *s, uint64_t desc,
                             uint64_t *host, uint64_t *bytes)
{
    unsigned x = 62 - (s->h.cluster_bits - 8);
    uint64_t sectors = (desc >> x) + 1;

    *host = desc & ((1ull << x) - 1);
    *bytes = sectors * 512 - (*host & 511);
    /* The last one may end before its last sector. */
    uint64_t file_size = blk_size(s->file);
    if (*host < file_size && *bytes > file_size - *host) {
        *bytes = file_size - *host;
    }
}
