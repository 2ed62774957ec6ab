/*
 * Checking and repairing a qcow2 image, as qemu-img check does: count the
 * references to every cluster of the file (header, tables, data, the
 * snapshots' tables and data), compare them with the refcounts, then the
 * COPIED flags of the active tables with the refcounts.  Problems go to
 * the caller's report callback worded as qemu-img words them, and into
 * its counters.  Repairs set refcounts to the references counted and the
 * flags to the refcounts.  Where a cluster in use has no refcount, or a
 * refcount block is not where a block can be, a repair of errors rebuilds
 * the whole refcount structure (rebuild.c) and counts again.
 *
 * The whole check runs under the image's lock, owning every guest
 * cluster (after the writes that own any), on metadata written back
 * first: requests wait meanwhile, and nothing changes under it.
 */
#include "config.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"

/* References counted in memory, one a cluster: the check's bound. */
#define CHECK_MAX_CLUSTERS (1ull << 28)

struct checker {
    qcow2_state *s;
    struct coblk_check *c;
    uint64_t nb_clusters;           /* of the file */
    uint32_t *refs;                 /* references counted, saturating */
    uint64_t *table;                /* one cluster, for L2 tables */
    uint64_t next_contiguous;       /* for fragmentation, within one L2
                                     * table as qemu-img counts it */
    bool rebuild;                   /* refcounts a per-cluster repair
                                     * cannot mend */
};

__attribute__((format(printf, 2, 3)))
static void report(struct checker *k, const char *fmt, ...)
{
    char line[256];
    va_list ap;

    if (!k->c->report) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    k->c->report(k->c->opaque, line);
}

/* Bits of table entries the format reserves: set, the entry is corrupt. */
#define L1E_RESERVED 0x7f000000000001ffull
#define L2E_RESERVED 0x3f000000000001feull

/* One more reference to every cluster of [offset, offset + bytes). */
static void count(struct checker *k, uint64_t offset, uint64_t bytes)
{
    qcow2_state *s = k->s;
    uint64_t first = offset >> s->h.cluster_bits;
    uint64_t last = (offset + bytes - 1) >> s->h.cluster_bits;

    if (!bytes) {
        return;         /* an empty table takes no cluster */
    }
    if (last >= k->nb_clusters || offset + bytes < offset) {
        report(k, "ERROR: counting reference for region exceeding the end "
               "of the file by one cluster or more: offset 0x%" PRIx64
               " size 0x%" PRIx64, offset, bytes);
        k->c->corruptions++;
        return;
    }
    uint64_t max = qcow2_refcount_max(s);
    for (uint64_t c = first; c <= last; c++) {
        if (k->refs[c] == max) {
            /* One more reference than the width holds: as qemu-img, not
             * counted (a repair would write a refcount that wraps to 0,
             * and free a cluster in use), but reported. */
            report(k, "ERROR: overflow cluster offset=%#" PRIx64,
                   c << s->h.cluster_bits);
            report(k, "Use qemu-img amend to increase the refcount entry "
                   "width or qemu-img convert to create a clean copy if the "
                   "image cannot be opened for writing");
            k->c->corruptions++;
        } else if (k->refs[c] != UINT32_MAX) {
            k->refs[c]++;
        }
    }
}

static int read_at(qcow2_state *s, void *buf, uint64_t bytes, uint64_t at)
{
    return coblk_pread(s->file, buf, bytes, at);
}

/* ---- counting references ---------------------------------------------------- */

/* Counts what an L2 entry references; in the active tables (`stats`)
 * also the guest clusters allocated, fragmented and compressed, as
 * qemu-img counts them. */
static void count_l2_entry(struct checker *k, const uint64_t *entry,
                           bool stats)
{
    qcow2_state *s = k->s;
    uint64_t e = be64toh(entry[0]);

    if (e & QCOW2_OFLAG_COMPRESSED) {
        uint64_t host, bytes;
        qcow2_compressed_extent(s, e & ~(3ull << 62), &host, &bytes);
        if (stats) {
            k->c->allocated_clusters++;
            k->c->compressed_clusters++;
            /* Fragmented by nature: they share sectors. */
            k->c->fragmented_clusters++;
        }
        count(k, host, bytes);
        return;
    }
    uint64_t host = e & QCOW2_L2E_OFFSET_MASK;
    if (!host) {
        return;
    }
    if (e & L2E_RESERVED) {
        report(k, "ERROR found l2 entry with reserved bits set: %" PRIx64, e);
        k->c->corruptions++;
    }
    if (host & (s->cluster_size - 1)) {
        /* Still a reference to the cluster it falls in, as qemu-img
         * counts it. */
        report(k, "ERROR offset=%" PRIx64 ": Data cluster is not properly "
               "aligned; L2 entry corrupted.", host);
        k->c->corruptions++;
    }
    if (stats) {
        k->c->allocated_clusters++;
        if (k->next_contiguous && host != k->next_contiguous) {
            k->c->fragmented_clusters++;
        }
        k->next_contiguous = host + s->cluster_size;
    }
    count(k, host, s->cluster_size);
}

/* The tables of one L1 table (the active one, or a snapshot's). */
static int count_l1(struct checker *k, const uint64_t *l1, uint32_t l1_size,
                    uint64_t l1_offset, bool active)
{
    qcow2_state *s = k->s;
    uint32_t words = s->l2_entry_bytes / 8;

    count(k, l1_offset, (uint64_t)l1_size * 8);
    for (uint32_t i = 0; i < l1_size; i++) {
        uint64_t l2 = l1[i] & QCOW2_L1E_OFFSET_MASK;
        if (l1[i] & L1E_RESERVED) {
            report(k, "ERROR found L1 entry with reserved bits set: %" PRIx64,
                   l1[i]);
            k->c->corruptions++;
        }
        if (!l2) {
            continue;
        }
        if (l2 & (s->cluster_size - 1)) {
            report(k, "ERROR l2_offset=%" PRIx64 ": Table is not cluster "
                   "aligned; L1 entry corrupted", l2);
            k->c->corruptions++;
            /* The cluster it falls in is still referenced (as qemu-img
             * counts it): a repair must not free what may be the table. */
            count(k, l2 & ~(s->cluster_size - 1), s->cluster_size);
            continue;
        }
        uint64_t before = k->c->corruptions;
        count(k, l2, s->cluster_size);
        if (k->c->corruptions != before) {
            continue;       /* outside the file: nothing to read */
        }
        int ret = read_at(s, k->table, s->cluster_size, l2);
        if (ret < 0) {
            report(k, "ERROR: I/O error in check_refcounts_l2");
            k->c->check_errors++;
            continue;
        }
        k->next_contiguous = 0;
        for (uint64_t e = 0; e < s->cluster_size / s->l2_entry_bytes; e++) {
            count_l2_entry(k, &k->table[e * words], active);
        }
    }
    return 0;
}

/* The snapshot table and every snapshot's tables, as read at open. */
static int count_snapshots(struct checker *k)
{
    qcow2_state *s = k->s;

    for (uint32_t i = 0; i < s->h.nb_snapshots; i++) {
        const qcow2_snapshot *sn = &s->snapshots[i];
        uint64_t *l1 = sn->l1_error ? NULL
                                    : malloc((size_t)sn->l1_size * 8 + 8);
        if (sn->l1_error == -EFBIG) {
            report(k, "ERROR snapshot %s (%s) l1_size=%#" PRIx32 ": L1 table "
                   "is too large; snapshot table entry corrupted", sn->id,
                   sn->name, sn->l1_size);
            k->c->corruptions++;
        } else if (sn->l1_error) {
            report(k, "ERROR snapshot %s (%s) l1_offset=%#" PRIx64 ": L1 "
                   "table is %s; snapshot table entry corrupted", sn->id,
                   sn->name, sn->l1_offset,
                   sn->l1_offset ? "not cluster aligned" : "the header");
            k->c->corruptions++;
        } else if (!l1) {
            report(k, "ERROR: out of memory for snapshot %s's L1 table",
                   sn->id);
            k->c->check_errors++;
        } else if (qcow2_pread_zeroed(s->file, l1, (uint64_t)sn->l1_size * 8,
                                      sn->l1_offset) < 0) {
            report(k, "ERROR: I/O error reading snapshot %s's L1 table",
                   sn->id);
            k->c->check_errors++;
        } else {
            for (uint32_t j = 0; j < sn->l1_size; j++) {
                l1[j] = be64toh(l1[j]);
            }
            count_l1(k, l1, sn->l1_size, sn->l1_offset, false);
        }
        free(l1);
    }
    if (s->h.nb_snapshots) {
        count(k, s->h.snapshots_offset, s->snapshots_bytes);
    }
    return 0;
}

static void count_refcount_structures(struct checker *k)
{
    qcow2_state *s = k->s;

    count(k, s->h.refcount_table_offset,
          (uint64_t)s->h.refcount_table_clusters << s->h.cluster_bits);
    for (uint64_t i = 0; i < s->reftable_entries; i++) {
        uint64_t block = s->reftable[i] & QCOW2_L1E_OFFSET_MASK;
        if (!block) {
            continue;
        }
        if (block & (s->cluster_size - 1)) {
            report(k, "ERROR refcount block %" PRIu64 " is not cluster "
                   "aligned; refcount table entry corrupted", i);
            k->c->corruptions++;
            k->rebuild = true;
        } else if (block >> s->h.cluster_bits >= k->nb_clusters) {
            report(k, "ERROR refcount block %" PRIu64 " is outside image",
                   i);
            k->c->corruptions++;
            k->rebuild = true;
        } else {
            count(k, block, s->cluster_size);
        }
    }
}

/* ---- comparing and repairing ------------------------------------------------- */

/* One pass over the refcounts, counting mismatches; with `fix`, it
 * repairs what the repair mode allows.  As qemu-img does, a first pass
 * reports every mismatch ("ERROR", "Leaked"), and a repair runs a second
 * pass whose counts stand ("Repairing" for what it mends). */
static void coroutine_fn compare_pass(struct checker *k, bool fix,
                                      uint64_t *highest, bool *any)
{
    qcow2_state *s = k->s;

    for (uint64_t c = 0; c < k->nb_clusters; c++) {
        uint64_t refcount;
        int ret = qcow2_get_refcount(s, c << s->h.cluster_bits, &refcount);
        if (ret < 0) {
            report(k, "Can't get refcount for cluster %" PRIu64 ": %s", c,
                   strerror(-ret));
            k->c->check_errors++;
            continue;
        }
        uint64_t refs = k->refs[c];
        if (refcount || refs) {
            *highest = c;
            *any = true;
        }
        if (refcount == refs) {
            continue;
        }
        bool leak = refcount > refs;
        /* No refcount at all where there are references: the block may
         * be missing or wrong, which only a rebuild mends. */
        k->rebuild |= refcount == 0;
        bool mend = fix && refcount &&
                    (k->c->repair & (leak ? COBLK_CHECK_REPAIR_LEAKS
                                          : COBLK_CHECK_REPAIR_ERRORS));
        *(leak ? &k->c->leaks : &k->c->corruptions) += 1;
        report(k, "%s cluster %" PRIu64 " refcount=%" PRIu64 " reference=%"
               PRIu64, mend ? "Repairing" : leak ? "Leaked" : "ERROR", c,
               refcount, refs);
        if (mend && qcow2_set_refcount(s, c, refs) == 0) {
            *(leak ? &k->c->leaks_fixed : &k->c->corruptions_fixed) += 1;
        } else if (mend) {
            k->c->check_errors++;
        }
    }
}

/* Clusters an open image frees once the reads that may use them end
 * (qcow2_free_clusters) are still its own: neither leaked nor free. */
static void count_frees_waiting(struct checker *k)
{
    const qcow2_frees *lists[] = { &k->s->pending, &k->s->graced };

    for (unsigned l = 0; l < 2; l++) {
        for (size_t i = 0; i < lists[l]->count; i++) {
            count(k, lists[l]->offsets[i], k->s->cluster_size);
        }
    }
}

static void count_bitmap_clusters(void *opaque, uint64_t offset,
                                  uint64_t bytes)
{
    count(opaque, offset, bytes);
}

static void corrupt_bitmap_entry(void *opaque)
{
    struct checker *k = opaque;

    k->c->corruptions++;
}

/* The references of everything the image holds: header, active and
 * snapshot tables and data, bitmaps, refcount structure, clusters waiting
 * to be freed.  `stats`: also the allocation counters, which only the
 * first count may add to. */
static int count_references(struct checker *k, bool stats)
{
    qcow2_state *s = k->s;

    count(k, 0, s->cluster_size);       /* the header */
    int ret = count_l1(k, s->l1, s->h.l1_size, s->h.l1_offset, stats);
    if (ret == 0) {
        ret = count_snapshots(k);
    }
    if (ret == 0 && qcow2_bitmaps_clusters(s, k->table, count_bitmap_clusters,
                                           corrupt_bitmap_entry, k) < 0) {
        report(k, "ERROR: I/O error reading a bitmap table");
        k->c->check_errors++;
    }
    if (ret == 0) {
        count_refcount_structures(k);
        count_frees_waiting(k);
    }
    return ret;
}

/* Counts from scratch, against a file that may have grown. */
static int recount(struct checker *k)
{
    qcow2_state *s = k->s;
    uint64_t nb_clusters = (blk_size(s->file) + s->cluster_size - 1) >>
                           s->h.cluster_bits;
    uint32_t *refs = nb_clusters <= CHECK_MAX_CLUSTERS
                         ? calloc(nb_clusters + 1, sizeof(*refs)) : NULL;

    if (!refs) {
        return blk_error(-ENOMEM, "qcow2: out of memory for the check");
    }
    free(k->refs);
    k->refs = refs;
    k->nb_clusters = nb_clusters;
    k->rebuild = false;
    return count_references(k, false);
}

/* Replaces the refcount structure by one built from the references
 * counted, then counts again.  The old table and blocks are now leaks,
 * freed here if leaks may be repaired; as qemu-img counts, what the
 * rebuild mended counts as fixed, and only the leaks it made and could
 * not free are added. */
static int coroutine_fn rebuild(struct checker *k,
                                const struct coblk_check *start,
                                uint64_t *highest, bool *any)
{
    struct coblk_check found = *k->c;

    report(k, "Rebuilding refcount structure");
    int ret = qcow2_rebuild_refcounts(k->s, k->refs, k->nb_clusters);
    if (ret == 0) {
        k->c->corruptions = start->corruptions;
        k->c->leaks = start->leaks;
        k->c->check_errors = start->check_errors;
        ret = recount(k);
    }
    if (ret < 0) {
        return ret;
    }
    *highest = 0;
    *any = false;
    compare_pass(k, true, highest, any);
    if (k->rebuild) {
        report(k, "ERROR rebuilt refcount structure is still broken");
        k->c->check_errors++;
    }
    uint64_t fresh_leaks = (k->c->leaks - start->leaks) -
                           (k->c->leaks_fixed - start->leaks_fixed);
    uint64_t left = k->c->corruptions -
                    (k->c->corruptions_fixed - start->corruptions_fixed);

    k->c->corruptions = found.corruptions;
    k->c->corruptions_fixed = start->corruptions_fixed +
                              (found.corruptions > left
                                   ? found.corruptions - left : 0);
    k->c->leaks = found.leaks + fresh_leaks;
    k->c->leaks_fixed = start->leaks_fixed + (found.leaks - start->leaks);
    return 0;
}

static int coroutine_fn compare_refcounts(struct checker *k,
                                          const struct coblk_check *start)
{
    uint64_t highest = 0;
    bool any = false;
    struct coblk_check before = *k->c;
    int ret = 0;

    compare_pass(k, false, &highest, &any);
    if (k->rebuild && (k->c->repair & COBLK_CHECK_REPAIR_ERRORS)) {
        ret = rebuild(k, start, &highest, &any);
    } else if (k->rebuild && k->c->repair) {
        report(k, "ERROR need to rebuild refcount structures");
        k->c->check_errors++;
        return blk_error(-EIO, "qcow2: the refcount structure needs a "
                         "rebuild, which only a repair of errors does");
    } else if (k->c->repair && (k->c->leaks > before.leaks ||
                                k->c->corruptions > before.corruptions)) {
        *k->c = before;
        compare_pass(k, true, &highest, &any);
    }
    k->c->image_end_offset = any ? (highest + 1) << k->s->h.cluster_bits : 0;
    return ret;
}

/* Whether an entry's COPIED flag agrees with its cluster's refcount; with
 * repair, makes it agree.  Sets *changed when it did. */
static uint64_t coroutine_fn fix_copied(struct checker *k, uint64_t e,
                                        uint64_t host, const char *what,
                                        uint32_t index, bool *changed)
{
    uint64_t refcount = 0;

    qcow2_get_refcount(k->s, host, &refcount);
    if ((refcount == 1) == !!(e & QCOW2_OFLAG_COPIED)) {
        return e;
    }
    /* qemu-img's words: what it repairs, it says it repairs. */
    const char *label = k->c->repair & COBLK_CHECK_REPAIR_ERRORS
                            ? "Repairing" : "ERROR";
    if (!strcmp(what, "L2")) {
        report(k, "%s OFLAG_COPIED L2 cluster: l1_index=%" PRIu32
               " l1_entry=%" PRIx64 " refcount=%" PRIu64, label, index, e,
               refcount);
    } else {
        report(k, "%s OFLAG_COPIED data cluster: l2_entry=%" PRIx64
               " refcount=%" PRIu64, label, e, refcount);
    }
    k->c->corruptions++;
    if (!(k->c->repair & COBLK_CHECK_REPAIR_ERRORS)) {
        return e;
    }
    k->c->corruptions_fixed++;
    *changed = true;
    return refcount == 1 ? e | QCOW2_OFLAG_COPIED : e & ~QCOW2_OFLAG_COPIED;
}

static int coroutine_fn check_copied_l2(struct checker *k, uint64_t l2)
{
    qcow2_state *s = k->s;
    uint32_t words = s->l2_entry_bytes / 8;
    bool changed = false;

    if (read_at(s, k->table, s->cluster_size, l2) < 0) {
        k->c->check_errors++;
        return 0;
    }
    for (uint64_t i = 0; i < s->cluster_size / s->l2_entry_bytes; i++) {
        uint64_t e = be64toh(k->table[i * words]);
        uint64_t host = e & QCOW2_L2E_OFFSET_MASK;
        if ((e & QCOW2_OFLAG_COMPRESSED) || !host ||
            (host & (s->cluster_size - 1))) {
            continue;
        }
        k->table[i * words] = htobe64(fix_copied(k, e, host, "data", 0,
                                                 &changed));
    }
    if (!changed) {
        return 0;
    }
    struct iovec iov = { k->table, s->cluster_size };
    return coblk_co_pwritev(s->file, l2, s->cluster_size, &iov, 1, 0);
}

static int coroutine_fn check_copied(struct checker *k)
{
    qcow2_state *s = k->s;

    for (uint32_t i = 0; i < s->h.l1_size; i++) {
        uint64_t l2 = s->l1[i] & QCOW2_L1E_OFFSET_MASK;
        if (!l2 || (l2 & (s->cluster_size - 1)) ||
            (l2 >> s->h.cluster_bits) >= k->nb_clusters) {
            continue;
        }
        bool changed = false;
        uint64_t e = fix_copied(k, s->l1[i], l2, "L2", i, &changed);
        if (changed) {
            uint64_t be = htobe64(e);
            struct iovec iov = { &be, 8 };
            int ret = coblk_co_pwritev(s->file, s->h.l1_offset + i * 8ull, 8,
                                       &iov, 1, 0);
            if (ret < 0) {
                return ret;
            }
            s->l1[i] = e;
        }
        int ret = check_copied_l2(k, l2);
        if (ret < 0) {
            return ret;
        }
    }
    return 0;
}

/* Version 3 wants each snapshot's disk size in its extra data (16 bytes
 * at least): a shorter entry is an error, as qemu-img check reports it;
 * a repair rewrites the table as an upgrade to version 3 does.  Before
 * anything is counted: the rewrite moves the table. */
static int coroutine_fn check_snapshot_entries(struct checker *k)
{
    qcow2_state *s = k->s;
    bool fix = k->c->repair & COBLK_CHECK_REPAIR_ERRORS;
    uint64_t incomplete = 0;

    for (uint32_t i = 0; s->h.version >= 3 && i < s->h.nb_snapshots; i++) {
        if (s->snapshots[i].extra_len < 16) {
            report(k, "%s snapshot table entry %" PRIu32 " is incomplete",
                   fix ? "Repairing" : "ERROR", i);
            incomplete++;
        }
    }
    k->c->corruptions += incomplete;
    if (!fix || !incomplete) {
        return 0;
    }
    int ret = qcow2_rewrite_snapshots(s);
    if (ret == 0) {
        k->c->corruptions_fixed += incomplete;
    }
    return ret;
}

/* ---- the check ----------------------------------------------------------------- */

static int coroutine_fn run_check(struct checker *k)
{
    qcow2_state *s = k->s;
    int ret = check_snapshot_entries(k);

    if (ret < 0) {
        return ret;
    }
    struct coblk_check start = *k->c;
    ret = count_references(k, true);
    if (ret == 0) {
        ret = compare_refcounts(k, &start);
    }
    /* Repairs changed refcounts: on disk before the flags that rely on
     * them. */
    if (ret == 0 && k->c->repair) {
        ret = qcow2_cache_flush(s, &s->refcount_cache);
    }
    if (ret == 0) {
        ret = check_copied(k);
    }
    return ret;
}

/* After a repair that left nothing wrong, the image is no longer marked
 * corrupt, nor dirty (its refcounts are right again), as qemu-img check
 * -r clears both marks; it takes writes. */
static int coroutine_fn mark_clean(qcow2_state *s, const struct coblk_check *c)
{
    const uint64_t marks = QCOW2_INCOMPAT_CORRUPT | QCOW2_INCOMPAT_DIRTY;

    if (!(s->h.incompatible & marks) || c->check_errors ||
        c->corruptions > c->corruptions_fixed) {
        return 0;
    }
    int ret = qcow2_write_incompatible(s, s->h.incompatible & ~marks);
    if (ret == 0) {
        s->corrupt = false;
    }
    return ret;
}

int coroutine_fn qcow2_co_check(struct coblk_dev *dev,
                                struct coblk_check *check)
{
    return qcow2_check_image(dev->opaque, check);
}

/* The check's memory, for the file as it is now. */
static int make_checker(qcow2_state *s, struct checker *k)
{
    k->nb_clusters = (blk_size(s->file) + s->cluster_size - 1) >>
                     s->h.cluster_bits;
    if (k->nb_clusters > CHECK_MAX_CLUSTERS) {
        return blk_error(-EFBIG, "qcow2: %" PRIu64 " clusters are too many "
                         "to check in memory", k->nb_clusters);
    }
    k->refs = calloc(k->nb_clusters + 1, sizeof(*k->refs));
    if (!k->refs ||
        posix_memalign((void **)&k->table, 4096, s->cluster_size)) {
        free(k->refs);
        k->refs = NULL;
        return blk_error(-ENOMEM, "qcow2: out of memory for the check");
    }
    return 0;
}

int coroutine_fn qcow2_check_image(qcow2_state *s, struct coblk_check *check)
{
    struct checker k = { .s = s, .c = check };

    check->total_clusters = (s->h.size + s->cluster_size - 1) >>
                            s->h.cluster_bits;
    qcow2_lock(s);
    /* A write that allocated, and dropped the lock to write its data,
     * holds clusters no entry names yet: counted now, they would look
     * leaked, and a repair would free them under it.  Its data may grow
     * the file: measured after. */
    qcow2_inflight all;
    qcow2_own_all(s, &all);
    int ret = qcow2_flush_metadata(s);
    if (ret == 0) {
        ret = make_checker(s, &k);
        if (ret == 0) {
            ret = run_check(&k);
        }
        /* L2 tables were read, and perhaps written, around the cache (its
         * slices clean: flushed). */
        qcow2_cache_forget(&s->l2_cache, 0, UINT64_MAX);
    }
    if (ret == 0 && check->repair) {
        ret = qcow2_cache_flush(s, &s->refcount_cache);
    }
    if (ret == 0 && check->repair) {
        ret = mark_clean(s, check);
    }
    qcow2_release(s, &all);
    qcow2_unlock(s);
    free(k.refs);
    free(k.table);
    return ret;
}
