/*
 * Internal snapshots made, applied and deleted, as qemu-img snapshot -c,
 * -a and -d do.  A snapshot is a copy of the active L1 table plus one
 * more reference to every L2 table and data cluster it reaches; the
 * active image then owns nothing alone (no COPIED flag), so its next
 * writes copy (write.c).
 *
 * Order, so that a crash leaves at worst leaked clusters: references are
 * added and on disk before a table that needs them is recorded; a
 * snapshot leaves the snapshot table before its references go; the
 * snapshot table is replaced whole, the header switched to the new one in
 * one write, the old one freed after.
 */
#include "config.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qcow2.h"

#define ENTRY_FIXED_BYTES 40u
#define EXTRA_BYTES 24u                 /* vm_state_size, disk_size, icount */
#define NB_SNAPSHOTS_OFFSET 60u         /* then snapshots_offset */
#define SIZE_OFFSET 24u
#define NAME_MAX_BYTES 65535u           /* 16-bit length fields */

/* ---- references ---------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* The active L1 table's L2 tables, sorted: a snapshot's L2 table may be
 * one of them, and must be no other metadata. */
struct active_tables {
    uint64_t *offsets;
    size_t n;
};

static int active_tables_of(const qcow2_state *s, struct active_tables *t)
{
    t->n = 0;
    t->offsets = malloc(((size_t)s->h.l1_size + 1) * sizeof(uint64_t));
    if (!t->offsets) {
        return blk_error(-ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < s->h.l1_size; i++) {
        if (s->l1[i] & QCOW2_L1E_OFFSET_MASK) {
            t->offsets[t->n++] = s->l1[i] & QCOW2_L1E_OFFSET_MASK;
        }
    }
    qsort(t->offsets, t->n, sizeof(uint64_t), cmp_u64);
    return 0;
}

/* An L2 table an L1 entry names: cluster-aligned, inside the file, and
 * either one of the active tables or no metadata at all. */
static int check_l2_offset(qcow2_state *s, const struct active_tables *t,
                           uint64_t l2)
{
    bool active = bsearch(&l2, t->offsets, t->n, sizeof(uint64_t), cmp_u64);

    if ((l2 & (s->cluster_size - 1)) || l2 >= s->file->size ||
        (!active && qcow2_meta_overlaps(s, l2, s->cluster_size))) {
        return qcow2_corrupt(s, "an L1 entry names %#" PRIx64 " as an L2 "
                             "table: unaligned, outside the file or over "
                             "other metadata", l2);
    }
    return 0;
}

/* Refcounts [offset, offset + clusters) will take: -ERANGE unless each
 * can count one more reference.  Checked before anything changes, so
 * that a refused snapshot leaves the image as it was. */
static int coroutine_fn check_headroom(qcow2_state *s, uint64_t offset,
                                       uint64_t clusters)
{
    for (uint64_t i = 0; i < clusters; i++) {
        uint64_t at = offset + (i << s->h.cluster_bits), refcount;
        int ret = qcow2_get_refcount(s, at, &refcount);
        if (ret < 0) {
            return ret;
        }
        if (refcount >= qcow2_refcount_max(s)) {
            return blk_error(-ERANGE, "qcow2: the cluster at %#" PRIx64
                             " has %" PRIu64 " references, as many as "
                             "refcount_bits=%u counts: no snapshot can share "
                             "it", at, refcount, s->refcount_bits);
        }
    }
    return 0;
}

/* Adds delta to the refcounts of the data one L2 entry points to; delta
 * 0 only checks they can count one more. */
/* Drops a reference to each of `clusters` data clusters from first;
 * those it frees wait for the reads that may be using them (qcow2_free_
 * clusters): a reference an apply drops is the active image's. */
static int coroutine_fn unref_data(qcow2_state *s, uint64_t first,
                                   uint64_t clusters)
{
    for (uint64_t i = 0; i < clusters; i++) {
        uint64_t at = first + (i << s->h.cluster_bits), refcount;
        int ret = qcow2_get_refcount(s, at, &refcount);
        if (ret == 0) {
            ret = refcount == 1 ? qcow2_free_clusters(s, at, 1)
                                : qcow2_update_refcounts(s, at, 1, -1);
        }
        if (ret < 0) {
            return ret;
        }
    }
    return 0;
}

static int coroutine_fn ref_entry(qcow2_state *s, uint64_t e, int delta)
{
    uint64_t first, clusters;
    int ret = qcow2_entry_clusters(s, e, &first, &clusters);

    if (ret < 0 || !clusters) {
        return ret;
    }
    return delta > 0 ? qcow2_update_refcounts(s, first, clusters, delta)
           : delta < 0 ? unref_data(s, first, clusters)
                       : check_headroom(s, first, clusters);
}

/* Adds delta (+1 or -1) to the refcounts of everything the L1 table l1
 * (host order) reaches: the data first, then the L2 tables, so that a
 * table is read before it can be freed; delta 0 checks that +1 would
 * fit.  `active`: the tables the image had active when the operation
 * began. */
static int coroutine_fn ref_tables(qcow2_state *s,
                                   const struct active_tables *active,
                                   const uint64_t *l1, uint32_t l1_size,
                                   int delta)
{
    uint32_t slice = s->l2_cache.slice_bytes;
    uint32_t words = s->l2_entry_bytes / 8;
    int ret = 0;

    for (uint32_t i = 0; ret == 0 && i < l1_size; i++) {
        uint64_t l2 = l1[i] & QCOW2_L1E_OFFSET_MASK;
        if (!l2) {
            continue;
        }
        ret = check_l2_offset(s, active, l2);
        for (uint64_t at = 0; ret == 0 && at < s->cluster_size; at += slice) {
            uint64_t *entries;
            ret = qcow2_cache_get(s, &s->l2_cache, l2 + at, &entries);
            for (uint32_t k = 0; ret == 0 && k < slice / 8; k += words) {
                ret = ref_entry(s, be64toh(entries[k]), delta);
            }
        }
        if (ret == 0) {
            ret = delta ? qcow2_update_refcounts(s, l2, 1, delta)
                        : check_headroom(s, l2, 1);
        }
    }
    return ret;
}

/* Sets the COPIED flag of `e` by the refcount of host; *changed if it
 * changed. */
static int coroutine_fn flag_copied(qcow2_state *s, uint64_t *e,
                                    uint64_t host, bool *changed)
{
    uint64_t refcount;
    int ret = qcow2_get_refcount(s, host, &refcount);

    if (ret == 0) {
        uint64_t want = refcount == 1 ? *e | QCOW2_OFLAG_COPIED
                                      : *e & ~QCOW2_OFLAG_COPIED;
        *changed |= want != *e;
        *e = want;
    }
    return ret;
}

/* The COPIED flags of one L2 table's entries, by their refcounts. */
static int coroutine_fn fix_copied_l2(qcow2_state *s, uint64_t l2)
{
    uint32_t slice = s->l2_cache.slice_bytes;
    uint32_t words = s->l2_entry_bytes / 8;
    int ret = 0;

    for (uint64_t at = 0; ret == 0 && at < s->cluster_size; at += slice) {
        uint64_t *entries;
        bool changed = false;
        ret = qcow2_cache_get(s, &s->l2_cache, l2 + at, &entries);
        for (uint32_t k = 0; ret == 0 && k < slice / 8; k += words) {
            uint64_t e = be64toh(entries[k]);
            uint64_t host = e & QCOW2_L2E_OFFSET_MASK;
            if (!(e & QCOW2_OFLAG_COMPRESSED) && host) {
                ret = flag_copied(s, &e, host, &changed);
                entries[k] = htobe64(e);
            }
        }
        if (ret == 0 && changed) {
            qcow2_cache_mark_dirty(&s->l2_cache, entries);
        }
    }
    return ret;
}

static int coroutine_fn write_at(qcow2_state *s, uint64_t offset,
                                 const void *buf, uint64_t bytes)
{
    struct iovec iov = { (void *)buf, bytes };
    int ret = coblk_co_pwritev(s->file, offset, bytes, &iov, 1, 0);

    if (ret == 0) {
        ret = coblk_co_flush(s->file);
    }
    return ret < 0 ? blk_error(ret, "qcow2: writing at %#" PRIx64 ": %s",
                               offset, strerror(-ret))
                   : 0;
}

static void swap_entries(uint64_t *a, uint64_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t t = a[i];
        a[i] = b[i];
        b[i] = t;
    }
}

/* Writes the active L1 table (host order) where the header says it is. */
static int coroutine_fn write_active_l1(qcow2_state *s)
{
    size_t n = s->h.l1_size;
    uint64_t *be = malloc(n * 8 + 8);

    if (!be) {
        return blk_error(-ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        be[i] = htobe64(s->l1[i]);
    }
    int ret = n ? write_at(s, s->h.l1_offset, be, n * 8) : 0;
    free(be);
    return ret;
}

/* Every COPIED flag of the active tables, by the refcounts: after
 * references came or went. */
static int coroutine_fn fix_copied(qcow2_state *s)
{
    bool l1_changed = false;
    int ret = 0;

    for (uint32_t i = 0; ret == 0 && i < s->h.l1_size; i++) {
        uint64_t l2 = s->l1[i] & QCOW2_L1E_OFFSET_MASK;
        if (l2) {
            ret = fix_copied_l2(s, l2);
        }
        if (ret == 0 && l2) {
            ret = flag_copied(s, &s->l1[i], l2, &l1_changed);
        }
    }
    if (ret == 0) {
        ret = qcow2_cache_flush(s, &s->refcount_cache);
    }
    if (ret == 0) {
        ret = qcow2_cache_flush(s, &s->l2_cache);
    }
    return ret == 0 && l1_changed ? write_active_l1(s) : ret;
}

/* ---- the snapshot table ------------------------------------------------------ */

static uint64_t entry_bytes(const qcow2_snapshot *sn)
{
    uint32_t extra = sn->extra_len > EXTRA_BYTES ? sn->extra_len
                                                 : EXTRA_BYTES;

    return (ENTRY_FIXED_BYTES + extra + strlen(sn->id) + strlen(sn->name) +
            7) & ~7ull;
}

static uint8_t *put_entry(uint8_t *p, const qcow2_snapshot *sn)
{
    uint32_t extra = sn->extra_len > EXTRA_BYTES ? sn->extra_len
                                                 : EXTRA_BYTES;
    size_t id_len = strlen(sn->id), name_len = strlen(sn->name);

    memset(p, 0, entry_bytes(sn));
    qcow2_put64(p, sn->l1_offset);
    qcow2_put32(p + 8, sn->l1_size);
    p[12] = (uint8_t)(id_len >> 8);
    p[13] = (uint8_t)id_len;
    p[14] = (uint8_t)(name_len >> 8);
    p[15] = (uint8_t)name_len;
    qcow2_put32(p + 16, sn->date_sec);
    qcow2_put32(p + 20, sn->date_nsec);
    qcow2_put64(p + 24, sn->vm_clock_nsec);
    qcow2_put32(p + 32, (uint32_t)sn->vm_state_size);
    qcow2_put32(p + 36, extra);
    uint8_t *x = p + ENTRY_FIXED_BYTES;
    /* What this version knows, then what a later one wrote, kept. */
    if (sn->extra_len > EXTRA_BYTES) {
        memcpy(x + EXTRA_BYTES, sn->extra + EXTRA_BYTES,
               sn->extra_len - EXTRA_BYTES);
    }
    qcow2_put64(x, sn->vm_state_size);
    qcow2_put64(x + 8, sn->disk_size);
    qcow2_put64(x + 16, (uint64_t)sn->icount);
    memcpy(x + extra, sn->id, id_len);
    memcpy(x + extra + id_len, sn->name, name_len);
    return p + entry_bytes(sn);
}

static uint64_t table_bytes(const qcow2_snapshot *snaps, uint32_t n)
{
    uint64_t bytes = 0;

    for (uint32_t i = 0; i < n; i++) {
        bytes += entry_bytes(&snaps[i]);
    }
    return bytes;
}

/* -EFBIG where a table of snaps[0..n) would pass QEMU's bounds. */
static int check_table_fits(const qcow2_snapshot *snaps, uint32_t n)
{
    uint64_t bytes = table_bytes(snaps, n);

    if (n > QCOW2_MAX_SNAPSHOTS || bytes > QCOW2_SNAPSHOT_TABLE_MAX) {
        return blk_error(-EFBIG, "qcow2: %" PRIu32 " snapshots would take a "
                         "table of %" PRIu64 " bytes: at most %u snapshots "
                         "in %u MiB", n, bytes, QCOW2_MAX_SNAPSHOTS,
                         QCOW2_SNAPSHOT_TABLE_MAX >> 20);
    }
    return 0;
}

/* Replaces the snapshot table by snaps[0..n) (checked to fit), which it
 * takes in every case: written in new clusters, the header switched to
 * it in one write, the old table freed.  Until the switch a failure
 * leaves the old table, and snaps is freed; after it, the state holds
 * snaps even if freeing the old table then fails. */
static int coroutine_fn replace_table(qcow2_state *s, qcow2_snapshot *snaps,
                                      uint32_t n)
{
    uint64_t bytes = table_bytes(snaps, n);
    uint64_t offset = 0;
    uint8_t *table = NULL;
    int ret = 0;
    if (n) {
        bool fresh;
        table = calloc(1, bytes);
        ret = table ? qcow2_alloc_clusters(s, qcow2_clusters(s, bytes), &offset,
                                           &fresh)
                    : blk_error(-ENOMEM, "out of memory");
    }
    if (ret == 0 && n) {
        ret = qcow2_meta_add(s, offset, bytes, "the snapshot table");
    }
    if (ret == 0) {
        ret = qcow2_cache_flush(s, &s->refcount_cache);
    }
    if (ret == 0 && n) {
        uint8_t *p = table;
        for (uint32_t i = 0; i < n; i++) {
            p = put_entry(p, &snaps[i]);
        }
        ret = write_at(s, offset, table, bytes);
    }
    free(table);
    if (ret == 0) {
        uint8_t fields[12];
        qcow2_put32(fields, n);
        qcow2_put64(fields + 4, offset);
        ret = write_at(s, NB_SNAPSHOTS_OFFSET, fields, sizeof(fields));
    }
    if (ret < 0) {
        qcow2_free_snapshot_list(snaps, n);
        return ret;
    }
    uint64_t old_offset = s->h.snapshots_offset;
    uint64_t old_bytes = s->snapshots_bytes;
    qcow2_free_snapshots(s);
    s->snapshots = snaps;
    s->h.nb_snapshots = n;
    s->h.snapshots_offset = offset;
    s->snapshots_bytes = bytes;
    ret = qcow2_snapshot_info_build(s);
    if (ret == 0 && old_bytes) {
        ret = qcow2_update_refcounts(s, old_offset, qcow2_clusters(s, old_bytes),
                                     -1);
    }
    return ret;
}

/* A copy of the snapshot list with room for one more (extra_room). */
static qcow2_snapshot *copy_list(const qcow2_state *s, bool extra_room)
{
    uint32_t n = s->h.nb_snapshots;
    qcow2_snapshot *copy = calloc(n + extra_room + 1, sizeof(*copy));
    bool ok = copy != NULL;

    for (uint32_t i = 0; ok && i < n; i++) {
        const qcow2_snapshot *from = &s->snapshots[i];
        copy[i] = *from;
        copy[i].id = strdup(from->id);
        copy[i].name = strdup(from->name);
        copy[i].extra = from->extra_len ? malloc(from->extra_len) : NULL;
        ok = copy[i].id && copy[i].name &&
             (copy[i].extra || !from->extra_len);
        if (copy[i].extra) {
            memcpy(copy[i].extra, from->extra, from->extra_len);
        }
    }
    if (!ok && copy) {
        qcow2_free_snapshot_list(copy, n + extra_room);
        copy = NULL;
    }
    return copy;
}

/* The extra data an entry gets when written (put_entry()): at least the
 * fields this version knows, so that the list in memory says what the
 * table on disk holds. */
static int complete_extra(qcow2_snapshot *sn)
{
    if (sn->extra_len >= EXTRA_BYTES) {
        return 0;
    }
    uint8_t *extra = realloc(sn->extra, EXTRA_BYTES);
    if (!extra) {
        return blk_error(-ENOMEM, "out of memory");
    }
    qcow2_put64(extra, sn->vm_state_size);
    qcow2_put64(extra + 8, sn->disk_size);
    qcow2_put64(extra + 16, (uint64_t)sn->icount);
    sn->extra = extra;
    sn->extra_len = EXTRA_BYTES;
    return 0;
}

int coroutine_fn qcow2_rewrite_snapshots(qcow2_state *s)
{
    int ret = qcow2_flush_metadata(s);
    qcow2_snapshot *list = ret == 0 ? copy_list(s, false) : NULL;

    if (ret < 0) {
        return ret;
    }
    if (!list) {
        return blk_error(-ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < s->h.nb_snapshots; i++) {
        if (complete_extra(&list[i]) < 0) {
            qcow2_free_snapshot_list(list, s->h.nb_snapshots);
            return -ENOMEM;
        }
    }
    ret = replace_table(s, list, s->h.nb_snapshots);
    int ret2 = qcow2_meta_build(s);
    return ret < 0 ? ret : ret2;
}

/* ---- the operations --------------------------------------------------------- */

/* Runs op on the image alone: every request done first, every change
 * before on disk. */
typedef int coroutine_fn snapshot_op(qcow2_state *s,
                                     const struct active_tables *active,
                                     const void *arg);

static int coroutine_fn exclusively(qcow2_state *s, snapshot_op *op,
                                    const void *arg)
{
    struct active_tables active = { 0 };
    qcow2_inflight mine;
    int ret = qcow2_alone_begin(s, &mine);

    if (ret < 0) {
        return ret;
    }
    ret = active_tables_of(s, &active);
    if (ret == 0) {
        ret = op(s, &active, arg);
    }
    free(active.offsets);
    /* Tables came and went: what is metadata now. */
    int ret2 = qcow2_meta_build(s);
    qcow2_alone_end(s, &mine);
    return ret < 0 ? ret : ret2;
}

/* The snapshot `which` names: an id first, else a name, as QEMU looks. */
static int find(const qcow2_state *s, const char *which)
{
    for (uint32_t i = 0; i < s->h.nb_snapshots; i++) {
        if (!strcmp(s->snapshots[i].id, which)) {
            return (int)i;
        }
    }
    for (uint32_t i = 0; i < s->h.nb_snapshots; i++) {
        if (!strcmp(s->snapshots[i].name, which)) {
            return (int)i;
        }
    }
    return blk_error(-ENOENT, "qcow2: no snapshot '%s' in %s", which,
                     blk_dev_filename(s->file));
}

/* One more than the largest numeric id, as QEMU numbers them. */
static char *next_id(const qcow2_state *s)
{
    unsigned long max = 0;
    char buf[32];

    for (uint32_t i = 0; i < s->h.nb_snapshots; i++) {
        unsigned long id = strtoul(s->snapshots[i].id, NULL, 10);
        max = id > max ? id : max;
    }
    snprintf(buf, sizeof(buf), "%lu", max + 1);
    return strdup(buf);
}

/* Copies the active L1 table to new clusters; sets *offset (0 for an
 * empty table). */
static int coroutine_fn copy_active_l1(qcow2_state *s, uint64_t *offset)
{
    uint64_t bytes = (uint64_t)s->h.l1_size * 8;
    bool fresh;

    *offset = 0;
    if (!bytes) {
        return 0;
    }
    uint64_t *copy = malloc(bytes);
    int ret = copy ? qcow2_alloc_clusters(s, qcow2_clusters(s, bytes), offset,
                                          &fresh)
                   : blk_error(-ENOMEM, "out of memory");
    if (ret == 0) {
        ret = qcow2_meta_add(s, *offset, bytes, "a snapshot's L1 table");
    }
    if (ret == 0) {
        ret = qcow2_cache_flush(s, &s->refcount_cache);
    }
    for (uint32_t i = 0; ret == 0 && i < s->h.l1_size; i++) {
        copy[i] = htobe64(s->l1[i] & ~QCOW2_OFLAG_COPIED);
    }
    if (ret == 0) {
        ret = write_at(s, *offset, copy, bytes);
    }
    free(copy);
    return ret;
}

static int coroutine_fn create_locked(qcow2_state *s,
                                      const struct active_tables *active,
                                      const void *arg)
{
    const char *name = arg;
    struct timespec now;
    qcow2_snapshot *list = copy_list(s, true);

    if (!list) {
        return blk_error(-ENOMEM, "out of memory");
    }
    uint32_t n = s->h.nb_snapshots;
    clock_gettime(CLOCK_REALTIME, &now);
    qcow2_snapshot *sn = &list[n];
    *sn = (qcow2_snapshot){
        .l1_size = s->h.l1_size, .id = next_id(s), .name = strdup(name),
        .date_sec = (uint32_t)now.tv_sec, .date_nsec = (uint32_t)now.tv_nsec,
        .disk_size = s->h.size };
    int ret = sn->id && sn->name ? 0 : blk_error(-ENOMEM, "out of memory");
    /* Whatever can refuse the snapshot does so before anything changes. */
    if (ret == 0) {
        ret = check_table_fits(list, n + 1);
    }
    if (ret == 0) {
        ret = ref_tables(s, active, s->l1, s->h.l1_size, 0);
    }
    if (ret == 0) {
        ret = copy_active_l1(s, &sn->l1_offset);
    }
    /* The snapshot's references, on disk before the table records it. */
    if (ret == 0) {
        ret = ref_tables(s, active, s->l1, s->h.l1_size, 1);
    }
    if (ret == 0) {
        ret = fix_copied(s);
    }
    if (ret < 0) {
        qcow2_free_snapshot_list(list, n + 1);
        return ret;
    }
    return replace_table(s, list, n + 1);
}

/* The snapshot's L1 table, in host order, padded with zeroes to
 * `entries`. */
static int coroutine_fn read_snapshot_l1(qcow2_state *s,
                                         const qcow2_snapshot *sn,
                                         uint32_t entries, uint64_t **l1)
{
    *l1 = calloc((size_t)entries + 1, 8);
    if (!*l1) {
        return blk_error(-ENOMEM, "out of memory");
    }
    int ret = sn->l1_size ? qcow2_pread_zeroed(s->file, *l1,
                                               (uint64_t)sn->l1_size * 8,
                                               sn->l1_offset)
                          : 0;
    if (ret < 0) {
        free(*l1);
        *l1 = NULL;
        return blk_error(ret, "qcow2: reading snapshot '%s''s L1 table: %s",
                         sn->name, strerror(-ret));
    }
    for (uint32_t i = 0; i < sn->l1_size; i++) {
        (*l1)[i] = be64toh((*l1)[i]) & ~QCOW2_OFLAG_COPIED;
    }
    return 0;
}

struct apply_args {
    struct coblk_dev *dev;
    const char *which;
};

static int coroutine_fn set_size(qcow2_state *s, struct coblk_dev *dev,
                                 uint64_t size)
{
    uint8_t field[8];

    qcow2_put64(field, size);
    int ret = size == s->h.size ? 0 : write_at(s, SIZE_OFFSET, field, 8);
    if (ret == 0) {
        s->h.size = size;
        blk_set_size(dev, size);
    }
    return ret;
}

static int coroutine_fn apply_locked(qcow2_state *s,
                                     const struct active_tables *active,
                                     const void *arg)
{
    const struct apply_args *a = arg;
    int i = find(s, a->which);
    if (i < 0) {
        return i;
    }
    const qcow2_snapshot *sn = &s->snapshots[i];
    int ret = qcow2_snapshot_l1_usable(sn);
    if (ret < 0) {
        return ret;
    }
    uint64_t shift = s->h.cluster_bits + s->l2_bits;
    if (sn->disk_size > INT64_MAX ||
        sn->l1_size < (sn->disk_size + (1ull << shift) - 1) >> shift) {
        return blk_error(-EINVAL, "qcow2: snapshot '%s' has a size its L1 "
                         "table does not cover", a->which);
    }
    /* The active table grows to the snapshot's if need be: it is read
     * padded to the size it will have. */
    uint32_t entries = sn->l1_size > s->h.l1_size ? sn->l1_size
                                                  : s->h.l1_size;
    uint64_t *l1 = NULL;
    ret = read_snapshot_l1(s, sn, entries, &l1);
    if (ret == 0) {
        ret = ref_tables(s, active, l1, sn->l1_size, 0);
    }
    if (ret == 0 && entries > s->h.l1_size) {
        ret = qcow2_grow_l1(s, entries);
    }
    /* The snapshot's tables gain the active image's references, on disk
     * before the active L1 table names them. */
    if (ret == 0) {
        ret = ref_tables(s, active, l1, s->h.l1_size, 1);
    }
    if (ret == 0) {
        ret = qcow2_cache_flush(s, &s->refcount_cache);
    }
    /* The active table takes the snapshot's entries in place (lookups
     * without the lock go on reading the same array); l1 takes the old
     * ones, whose references go. */
    if (ret == 0) {
        swap_entries(s->l1, l1, s->h.l1_size);
        ret = write_active_l1(s);
        if (ret < 0) {
            swap_entries(s->l1, l1, s->h.l1_size);
        }
    }
    if (ret == 0) {
        ret = ref_tables(s, active, l1, s->h.l1_size, -1);
    }
    free(l1);
    if (ret == 0) {
        ret = fix_copied(s);
    }
    return ret == 0 ? set_size(s, a->dev, sn->disk_size) : ret;
}

static int coroutine_fn delete_locked(qcow2_state *s,
                                      const struct active_tables *active,
                                      const void *arg)
{
    int i = find(s, arg);
    if (i < 0) {
        return i;
    }
    /* Its references cannot be dropped without its tables: QEMU's rule
     * too (check -r all leaves them as leaks). */
    int ret = qcow2_snapshot_l1_usable(&s->snapshots[i]);
    if (ret < 0) {
        return ret;
    }
    qcow2_snapshot *list = copy_list(s, false);
    if (!list) {
        return blk_error(-ENOMEM, "out of memory");
    }
    uint32_t n = s->h.nb_snapshots;
    qcow2_snapshot gone = list[i];
    memmove(&list[i], &list[i + 1], (n - (uint32_t)i - 1) * sizeof(*list));
    uint64_t *l1;
    ret = read_snapshot_l1(s, &gone, gone.l1_size, &l1);
    /* Out of the table first: a crash after leaves leaks, no dangling
     * snapshot. */
    if (ret == 0) {
        ret = replace_table(s, list, n - 1);
    } else {
        qcow2_free_snapshot_list(list, n - 1);
    }
    if (ret == 0) {
        ret = ref_tables(s, active, l1, gone.l1_size, -1);
    }
    if (ret == 0 && gone.l1_size) {
        ret = qcow2_update_refcounts(s, gone.l1_offset,
                                     qcow2_clusters(s, gone.l1_size * 8ull), -1);
    }
    if (ret == 0) {
        ret = fix_copied(s);
    }
    free(l1);
    qcow2_snapshot_fields_free(&gone);
    return ret;
}

int coroutine_fn qcow2_co_snapshot_create(struct coblk_dev *dev,
                                          const char *name)
{
    qcow2_state *s = dev->opaque;

    /* Refused before anything changes, where QEMU fails half-way. */
    if (s->refcount_bits == 1) {
        return blk_error(-ERANGE, "qcow2: with refcount_bits=1 a cluster "
                         "cannot be shared: no internal snapshots (amend "
                         "refcount_bits first)");
    }
    if (strlen(name) > NAME_MAX_BYTES) {
        return blk_error(-EINVAL, "qcow2: a snapshot name is at most %u "
                         "bytes", NAME_MAX_BYTES);
    }
    return exclusively(s, create_locked, name);
}

int coroutine_fn qcow2_co_snapshot_apply(struct coblk_dev *dev,
                                         const char *which)
{
    qcow2_state *s = dev->opaque;
    struct apply_args a = { dev, which };

    /* QEMU refuses too: the bitmaps would not match the data applied. */
    if (s->nb_bitmaps) {
        return blk_error(-EBUSY, "Device has active dirty bitmaps");
    }
    int ret = qcow2_data_will_change(dev);
    return ret < 0 ? ret : exclusively(s, apply_locked, &a);
}

int coroutine_fn qcow2_co_snapshot_delete(struct coblk_dev *dev,
                                          const char *which)
{
    return exclusively(dev->opaque, delete_locked, which);
}
