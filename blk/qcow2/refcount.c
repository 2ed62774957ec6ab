/*
 * Refcounts: a table of refcount blocks, each a cluster of entries of
 * refcount_bits (1 to 64) bits, one per host cluster.  Allocation looks
 * for free clusters from a hint up (reusing what was freed), else past
 * the end of the file.
 *
 * Order on disk, so that the image is consistent after a crash at any
 * point (a leak at worst, never a cluster in use that counts as free): a
 * new refcount block is written before the table entry that points to
 * it; a new refcount table, with the blocks that count it, before the
 * header points to it.  Refcount blocks go through a cache whose dirty
 * slices are written before any L2 slice (see cache.c).
 *
 * Loads of refcount slices keep the image's lock (keep_lock): an
 * allocation looks and claims in one step, with no other allocation in
 * between.
 */
#include "config.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"

#define REFTABLE_HEADER_OFFSET 48u     /* offset, then clusters */

int qcow2_refcount_open(qcow2_state *s)
{
    uint64_t bytes = (uint64_t)s->h.refcount_table_clusters
                     << s->h.cluster_bits;

    s->refcount_bits = 1u << s->h.refcount_order;
    s->refblock_entries = (s->cluster_size * 8) >> s->h.refcount_order;
    s->reftable_entries = bytes / 8;
    s->reftable = malloc(bytes);
    if (!s->reftable) {
        return blk_error(-ENOMEM, "out of memory");
    }
    int ret = coblk_pread(s->file, s->reftable, bytes,
                          s->h.refcount_table_offset);
    if (ret < 0) {
        return blk_error(ret, "qcow2: reading the refcount table: %s",
                         strerror(-ret));
    }
    for (uint64_t i = 0; i < s->reftable_entries; i++) {
        s->reftable[i] = be64toh(s->reftable[i]);
    }
    uint32_t slice = s->cluster_size < QCOW2_SLICE_BYTES
                         ? (uint32_t)s->cluster_size : QCOW2_SLICE_BYTES;
    /* A quarter of the L2 cache's default: refcounts are dense. */
    ret = qcow2_cache_init(&s->refcount_cache, QCOW2_DEFAULT_L2_CACHE / 4,
                           slice, NULL);
    s->refcount_cache.keep_lock = true;
    return ret;
}

void qcow2_refcount_close(qcow2_state *s)
{
    qcow2_cache_free(&s->refcount_cache);
    free(s->reftable);
    s->reftable = NULL;
}

void qcow2_frees_close(qcow2_state *s)
{
    free(s->pending.offsets);
    free(s->graced.offsets);
    s->pending = (qcow2_frees){ 0 };
    s->graced = (qcow2_frees){ 0 };
}

/* ---- entries of any width ---------------------------------------------------- */

static uint64_t entry_get(const uint8_t *p, uint32_t bits, uint64_t i)
{
    if (bits < 8) {
        uint64_t bit = i * bits;
        return (p[bit / 8] >> (bit % 8)) & ((1u << bits) - 1);
    }
    const uint8_t *e = p + i * (bits / 8);
    uint64_t v = 0;
    for (uint32_t k = 0; k < bits / 8; k++) {
        v = v << 8 | e[k];
    }
    return v;
}

void qcow2_refcount_entry_set(uint8_t *p, uint32_t bits, uint64_t i,
                              uint64_t v)
{
    if (bits < 8) {
        uint64_t bit = i * bits;
        uint8_t mask = (uint8_t)(((1u << bits) - 1) << (bit % 8));
        p[bit / 8] = (uint8_t)((p[bit / 8] & ~mask) | (v << (bit % 8)));
        return;
    }
    uint8_t *e = p + i * (bits / 8);
    for (uint32_t k = bits / 8; k-- > 0; v >>= 8) {
        e[k] = (uint8_t)v;
    }
}

uint64_t qcow2_refcount_max(const qcow2_state *s)
{
    return s->refcount_bits == 64 ? UINT64_MAX
                                  : (1ull << s->refcount_bits) - 1;
}

/* ---- one cluster's refcount -------------------------------------------------- */

/* Where cluster `index`'s refcount lives: its block's file offset (0:
 * none yet), the slice in it and the entry in the slice. */
struct where {
    uint64_t table_index;
    uint64_t block;
    uint64_t slice;
    uint64_t entry;
};

static int locate(const qcow2_state *s, uint64_t index, struct where *w)
{
    uint64_t per_slice = (uint64_t)s->refcount_cache.slice_bytes * 8 /
                         s->refcount_bits;
    uint64_t within = index % s->refblock_entries;

    w->table_index = index / s->refblock_entries;
    w->block = w->table_index < s->reftable_entries
                   ? s->reftable[w->table_index] & QCOW2_L1E_OFFSET_MASK : 0;
    w->slice = w->block + within / per_slice * s->refcount_cache.slice_bytes;
    w->entry = within % per_slice;
    if (w->block && ((w->block & (s->cluster_size - 1)) ||
                     w->block >= s->file->size)) {
        return blk_error(-EIO, "qcow2: the image is corrupt: refcount table "
                         "entry %" PRIu64 " points outside the file or "
                         "inside a cluster (%#" PRIx64 ")", w->table_index,
                         w->block);
    }
    return 0;
}

static int coroutine_fn get_index(qcow2_state *s, uint64_t index,
                                  uint64_t *refcount)
{
    struct where w;
    uint64_t *entries;
    int ret = locate(s, index, &w);

    *refcount = 0;
    if (ret < 0 || !w.block) {
        return ret;
    }
    ret = qcow2_cache_get(s, &s->refcount_cache, w.slice, &entries);
    if (ret == 0) {
        *refcount = entry_get((uint8_t *)entries, s->refcount_bits, w.entry);
    }
    return ret;
}

int coroutine_fn qcow2_get_refcount(qcow2_state *s, uint64_t offset,
                                    uint64_t *refcount)
{
    return get_index(s, offset >> s->h.cluster_bits, refcount);
}

/* ---- growing the refcount structures ------------------------------------------- */

static int coroutine_fn write_at(qcow2_state *s, uint64_t offset,
                                 const void *buf, uint64_t bytes)
{
    struct iovec iov = { (void *)buf, bytes };
    int ret = coblk_co_pwritev(s->file, offset, bytes, &iov, 1, 0);

    return ret < 0 ? blk_error(ret, "qcow2: writing refcount metadata at %#"
                               PRIx64 ": %s", offset, strerror(-ret))
                   : 0;
}

static int coroutine_fn write_table_entry(qcow2_state *s, uint64_t i)
{
    uint64_t be = htobe64(s->reftable[i]);

    return write_at(s, s->h.refcount_table_offset + i * 8, &be, 8);
}

/* A zeroed cluster buffer, aligned for O_DIRECT. */
static uint8_t *zero_cluster(const qcow2_state *s)
{
    void *buf;

    if (posix_memalign(&buf, 4096, s->cluster_size)) {
        return NULL;
    }
    memset(buf, 0, s->cluster_size);
    return buf;
}

/* The first cluster counted by table entry table_index, whose block does
 * not exist yet (so all it counts is free), that is not in
 * [skip, skip + n). */
static uint64_t free_in_block(const qcow2_state *s, uint64_t table_index,
                              uint64_t skip, uint64_t n)
{
    uint64_t c = table_index * s->refblock_entries;

    if (c >= skip && c < skip + n) {
        c = skip + n;
    }
    return c;
}

static int coroutine_fn grow_reftable(qcow2_state *s, uint64_t min_entries,
                                      uint64_t skip, uint64_t n);

/* Creates the refcount block for table entry i, which will count the
 * clusters [skip, skip + n) about to be allocated: it goes at the first
 * cluster it counts outside them, and counts itself. */
static int coroutine_fn new_refblock(qcow2_state *s, uint64_t i,
                                     uint64_t skip, uint64_t n)
{
    if (i >= s->reftable_entries) {
        int ret = grow_reftable(s, i + 1, skip, n);
        if (ret < 0 || s->reftable[i]) {
            return ret;     /* growing may have made this very block */
        }
    }
    uint64_t block = free_in_block(s, i, skip, n);
    if (block / s->refblock_entries != i) {
        return blk_error(-ENOSPC, "qcow2: no room for a refcount block");
    }
    uint8_t *buf = zero_cluster(s);
    if (!buf) {
        return -ENOMEM;
    }
    qcow2_refcount_entry_set(buf, s->refcount_bits,
                             block % s->refblock_entries, 1);
    uint64_t offset = block << s->h.cluster_bits;
    int ret = write_at(s, offset, buf, s->cluster_size);
    free(buf);
    if (ret == 0) {
        /* Stale slices of a cluster used before: not this block's. */
        qcow2_cache_forget(&s->refcount_cache, offset, s->cluster_size);
        s->reftable[i] = offset;
        ret = write_table_entry(s, i);
    }
    if (ret == 0) {
        ret = qcow2_meta_add(s, offset, s->cluster_size, "a refcount block");
    }
    if (ret < 0) {
        s->reftable[i] = 0;
    }
    return ret;
}

/* Sets cluster `index`'s refcount; its block is made if need be, without
 * using [skip, skip + n). */
static int coroutine_fn set_index(qcow2_state *s, uint64_t index,
                                  uint64_t refcount, uint64_t skip,
                                  uint64_t n)
{
    struct where w;
    uint64_t *entries;
    int ret = locate(s, index, &w);

    if (ret == 0 && !w.block) {
        ret = new_refblock(s, w.table_index, skip, n);
        if (ret == 0) {
            ret = locate(s, index, &w);
        }
    }
    if (ret == 0) {
        ret = qcow2_cache_get(s, &s->refcount_cache, w.slice, &entries);
    }
    if (ret == 0) {
        qcow2_refcount_entry_set((uint8_t *)entries, s->refcount_bits,
                                 w.entry, refcount);
        qcow2_cache_mark_dirty(&s->refcount_cache, entries);
    }
    return ret;
}

/* The first cluster past the end of the file and past every cluster the
 * refcount table reaches: nothing there is in use, and no refcount block
 * counts it yet. */
static uint64_t past_everything(const qcow2_state *s)
{
    uint64_t end = (s->file->size + s->cluster_size - 1) >>
                   s->h.cluster_bits;
    uint64_t reach = s->reftable_entries * s->refblock_entries;

    return end > reach ? end : reach;
}

/* A new table's layout: `clusters` of table at site, then one refcount
 * block for each block index its clusters and the blocks themselves fall
 * in, recorded in table (zeroed, `entries` long).  Returns the cluster
 * past the blocks, or 0 when the table is too short to reach them. */
static uint64_t lay_out(const qcow2_state *s, uint64_t site,
                        uint64_t clusters, uint64_t *table, uint64_t entries)
{
    uint64_t end = site + clusters;

    for (uint64_t i = site / s->refblock_entries;
         i <= (end - 1) / s->refblock_entries; i++) {
        if (i >= entries) {
            return 0;
        }
        table[i] = end << s->h.cluster_bits;    /* the next block */
        end++;
    }
    return end;
}

/* Writes the refcount blocks of a new layout: each counts the new
 * clusters [site, end) it covers. */
static int coroutine_fn write_new_blocks(qcow2_state *s, const uint64_t *table,
                                         uint64_t site, uint64_t end)
{
    uint8_t *block = zero_cluster(s);
    int ret = block ? 0 : -ENOMEM;

    for (uint64_t i = site / s->refblock_entries;
         ret == 0 && i <= (end - 1) / s->refblock_entries; i++) {
        memset(block, 0, s->cluster_size);
        for (uint64_t c = site; c < end; c++) {
            if (c / s->refblock_entries == i) {
                qcow2_refcount_entry_set(block, s->refcount_bits,
                                         c % s->refblock_entries, 1);
            }
        }
        ret = write_at(s, table[i], block, s->cluster_size);
    }
    free(block);
    return ret;
}

/* Writes table (host order, `clusters` long) at site, then points the
 * header at it: offset and size in one write. */
static int coroutine_fn switch_table(qcow2_state *s, uint64_t *table,
                                     uint64_t site, uint64_t clusters)
{
    uint64_t entries = clusters * s->cluster_size / 8;

    for (uint64_t i = 0; i < entries; i++) {
        table[i] = htobe64(table[i]);
    }
    int ret = write_at(s, site << s->h.cluster_bits, table,
                       clusters << s->h.cluster_bits);
    for (uint64_t i = 0; i < entries; i++) {
        table[i] = be64toh(table[i]);
    }
    if (ret == 0) {
        ret = coblk_co_flush(s->file);
    }
    if (ret == 0) {
        uint8_t field[12];
        uint64_t be_offset = htobe64(site << s->h.cluster_bits);
        uint32_t be_clusters = htobe32((uint32_t)clusters);
        memcpy(field, &be_offset, 8);
        memcpy(field + 8, &be_clusters, 4);
        ret = write_at(s, REFTABLE_HEADER_OFFSET, field, sizeof(field));
    }
    return ret == 0 ? coblk_co_flush(s->file) : ret;
}

/* Replaces the refcount table by one of at least min_entries, written
 * past everything (and past [skip, skip + n), being allocated) with the
 * blocks that count it; the header then points to it, and the old table
 * is freed.  A crash before the switch leaves the old table, and the new
 * clusters unreferenced. */
static int coroutine_fn grow_reftable(qcow2_state *s, uint64_t min_entries,
                                      uint64_t skip, uint64_t n)
{
    uint64_t per_cluster = s->cluster_size / 8;
    uint64_t site = past_everything(s);

    site = site > skip + n ? site : skip + n;
    uint64_t entries = s->reftable_entries * 2 > min_entries
                           ? s->reftable_entries * 2 : min_entries;
    uint64_t *table = NULL;
    uint64_t clusters, end = 0;

    while (!end) {
        clusters = (entries + per_cluster - 1) / per_cluster;
        if (clusters << s->h.cluster_bits > QCOW2_REFTABLE_MAX_BYTES) {
            free(table);
            return blk_error(-EFBIG, "qcow2: the refcount table would grow "
                             "past %u MiB", QCOW2_REFTABLE_MAX_BYTES >> 20);
        }
        free(table);
        table = calloc(clusters, s->cluster_size);
        if (!table) {
            return -ENOMEM;
        }
        memcpy(table, s->reftable, s->reftable_entries * 8);
        end = lay_out(s, site, clusters, table, clusters * per_cluster);
        entries = clusters * per_cluster + 1;
    }
    uint64_t old_offset = s->h.refcount_table_offset;
    uint64_t old_clusters = s->h.refcount_table_clusters;
    int ret = qcow2_cache_flush(s, &s->refcount_cache);
    if (ret == 0) {
        ret = write_new_blocks(s, table, site, end);
    }
    if (ret == 0) {
        ret = qcow2_reftable_install(s, table, site, clusters);
    }
    if (ret < 0) {
        return ret;
    }
    return qcow2_update_refcounts(s, old_offset, old_clusters, -1);
}

int coroutine_fn qcow2_reftable_install(qcow2_state *s, uint64_t *table,
                                        uint64_t site, uint64_t clusters)
{
    int ret = switch_table(s, table, site, clusters);

    if (ret < 0) {
        free(table);
        return ret;
    }
    free(s->reftable);
    s->reftable = table;
    s->reftable_entries = clusters * s->cluster_size / 8;
    s->h.refcount_table_offset = site << s->h.cluster_bits;
    s->h.refcount_table_clusters = (uint32_t)clusters;
    return s->meta.keys ? qcow2_meta_build(s) : 0;
}

/* Punches freed clusters out of the file, where the file can: best
 * effort, nothing references them any more. */
static void coroutine_fn discard_in_file(qcow2_state *s, uint64_t offset,
                                         uint64_t bytes)
{
    if (offset < s->file->size) {
        uint64_t len = bytes < s->file->size - offset ? bytes
                                                      : s->file->size - offset;
        coblk_co_pdiscard(s->file, offset, len);
    }
}

int coroutine_fn qcow2_set_refcount(qcow2_state *s, uint64_t index,
                                    uint64_t refcount)
{
    struct where w;
    int ret = locate(s, index, &w);

    if (ret == 0 && !w.block) {
        /* A new block's place is chosen among free clusters, which a
         * repair cannot yet tell. */
        return blk_error(-ENOSPC, "qcow2: no refcount block counts cluster "
                         "%" PRIu64, index);
    }
    if (ret == 0) {
        ret = set_index(s, index, refcount, index, 1);
    }
    if (ret == 0 && refcount == 0) {
        /* A leak mended: its space goes back, as qemu-img gives it. */
        discard_in_file(s, index << s->h.cluster_bits, s->cluster_size);
    }
    return ret;
}

/* ---- allocating and freeing ---------------------------------------------------- */

int coroutine_fn qcow2_update_refcounts(qcow2_state *s, uint64_t offset,
                                        uint64_t clusters, int delta)
{
    uint64_t first = offset >> s->h.cluster_bits;

    for (uint64_t c = first; c < first + clusters; c++) {
        uint64_t refcount;
        int ret = get_index(s, c, &refcount);
        if (ret < 0) {
            return ret;
        }
        if ((delta < 0 && refcount == 0) ||
            (delta > 0 && refcount == qcow2_refcount_max(s))) {
            return blk_error(delta < 0 ? -EIO : -ERANGE, "qcow2: the "
                             "refcount of the cluster at %#" PRIx64 " would "
                             "go %s", c << s->h.cluster_bits,
                             delta < 0 ? "below 0: the image is corrupt"
                                       : "past its maximum");
        }
        ret = set_index(s, c, refcount + (uint64_t)(int64_t)delta, c, 1);
        if (ret < 0) {
            return ret;
        }
        if (refcount + (uint64_t)(int64_t)delta == 0) {
            if (c < s->free_hint) {
                s->free_hint = c;
            }
            if (s->compressed_next >> s->h.cluster_bits == c) {
                s->compressed_next = 0;     /* not there any more */
            }
            qcow2_cache_forget(&s->l2_cache, c << s->h.cluster_bits,
                               s->cluster_size);
            discard_in_file(s, c << s->h.cluster_bits, s->cluster_size);
        }
    }
    return 0;
}

/* Pending frees past which they are applied at once, not at a flush. */
#define PENDING_MAX 4096u

/* Frees the graced batch if the reads that may use its clusters ended. */
static int coroutine_fn free_graced(qcow2_state *s)
{
    if (!s->graced.count || !qcow2_reads_ended(s, s->graced_phase)) {
        return 0;
    }
    qcow2_frees *g = &s->graced;
    for (size_t i = 0; i < g->count; i++) {
        int ret = qcow2_update_refcounts(s, g->offsets[i], 1, -1);
        if (ret < 0) {
            /* That one is left allocated (a leak, which check repairs);
             * the rest is tried again at the next call. */
            g->count -= i + 1;
            memmove(g->offsets, g->offsets + i + 1,
                    g->count * sizeof(*g->offsets));
            return ret;
        }
    }
    g->count = 0;
    return 0;
}

int coroutine_fn qcow2_free_pending(qcow2_state *s)
{
    if (!s->pending.count && !s->graced.count) {
        return 0;
    }
    int ret = qcow2_cache_flush(s, &s->l2_cache);
    if (ret == 0) {
        ret = free_graced(s);
    }
    /* The pending batch waits for the reads begun until now: those of
     * the phase that ends here. */
    if (ret == 0 && !s->graced.count && s->pending.count) {
        qcow2_frees batch = s->pending;
        s->pending = s->graced;
        s->graced = batch;
        s->graced_phase = qcow2_next_read_phase(s);
        ret = free_graced(s);
    }
    return ret;
}

int coroutine_fn qcow2_free_clusters(qcow2_state *s, uint64_t offset,
                                     uint64_t clusters)
{
    qcow2_frees *p = &s->pending;

    for (uint64_t i = 0; i < clusters; i++) {
        if (p->count == p->room) {
            size_t room = p->room ? p->room * 2 : 64;
            uint64_t *grown = realloc(p->offsets, room * sizeof(*grown));
            if (!grown) {
                return -ENOMEM;
            }
            p->offsets = grown;
            p->room = room;
        }
        p->offsets[p->count++] = offset + (i << s->h.cluster_bits);
    }
    bool can_free = !s->graced.count ||
                    qcow2_reads_ended(s, s->graced_phase);
    return p->count > PENDING_MAX && can_free ? qcow2_free_pending(s) : 0;
}

int coroutine_fn qcow2_alloc_clusters(qcow2_state *s, uint64_t clusters,
                                      uint64_t *offset, bool *fresh)
{
    /* Host offsets must fit in an L2 entry's 56 bits. */
    uint64_t limit = 1ull << (56 - s->h.cluster_bits);
    uint64_t start = s->free_hint, run = 0;

    for (uint64_t c = start; run < clusters; c++) {
        uint64_t refcount;
        int ret = c < limit ? get_index(s, c, &refcount)
                            : blk_error(-EFBIG, "qcow2: the image file is "
                                        "full (56-bit offsets)");
        if (ret < 0) {
            return ret;
        }
        if (refcount) {
            if (c == s->free_hint) {
                s->free_hint = c + 1;
            }
            run = 0;
            start = c + 1;
        } else {
            run++;
        }
    }
    if (qcow2_meta_overlaps(s, start << s->h.cluster_bits,
                            clusters << s->h.cluster_bits)) {
        return qcow2_corrupt(s, "metadata at cluster %" PRIu64 " counts as "
                             "free", start);
    }
    uint64_t file_end = (blk_size(s->file) + s->cluster_size - 1) >>
                        s->h.cluster_bits;
    for (uint64_t c = start; c < start + clusters; c++) {
        int ret = set_index(s, c, 1, start, clusters);
        if (ret < 0) {
            return ret;
        }
    }
    if (start == s->free_hint) {
        s->free_hint = start + clusters;
    }
    *offset = start << s->h.cluster_bits;
    *fresh = start >= file_end;
    return 0;
}
