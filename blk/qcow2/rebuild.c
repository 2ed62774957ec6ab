/*
 * Rebuilding the refcount structure from the references a check counted.
 * A per-cluster repair cannot mend a cluster in use that no refcount
 * block counts, nor a block that lies outside the file or inside a
 * cluster: there, new blocks and a new table replace the old ones.
 *
 * They go into clusters nothing references (the old table and its valid
 * blocks were counted, so they are not overwritten), and past the end of
 * the file where there are none.  All of it is written and flushed before
 * the header points to the new table, in one write: a crash before that
 * leaves the image as it was, after it a complete structure.  The old
 * table and blocks are then unreferenced, leaks a check can free.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"

struct plan {
    uint32_t *counts;       /* references per cluster, new structure's too */
    uint64_t len;           /* clusters in counts */
    uint64_t cap;
    uint64_t *blocks;       /* each table index's new block (cluster), 0 none */
    uint64_t nblocks;
    uint64_t table, table_clusters;     /* the new table's run */
    uint64_t per_block;     /* clusters a refcount block counts */
    uint64_t hint;          /* no unreferenced cluster below it */
};

/* Makes counts cover at least n clusters (new ones counted 0). */
static int cover(struct plan *p, uint64_t n)
{
    if (n > p->cap) {
        uint64_t cap = n + n / 4 + 64;
        uint32_t *counts = realloc(p->counts, cap * sizeof(*counts));
        if (!counts) {
            return -ENOMEM;
        }
        p->counts = counts;
        p->cap = cap;
    }
    if (n > p->len) {
        memset(p->counts + p->len, 0, (n - p->len) * sizeof(*p->counts));
        p->len = n;
    }
    return 0;
}

/* The first run of n unreferenced clusters, now counted once; -1 when
 * memory runs out. */
static int64_t take(struct plan *p, uint64_t n)
{
    uint64_t start = p->hint, run = 0;

    while (start < p->len && p->counts[start]) {
        start++;
    }
    p->hint = start;
    for (uint64_t c = start; run < n; c++) {
        if (c >= p->len && cover(p, c + n - run) < 0) {
            return -1;
        }
        if (p->counts[c]) {
            run = 0;
            start = c + 1;
        } else {
            run++;
        }
    }
    for (uint64_t c = start; c < start + n; c++) {
        p->counts[c] = 1;
    }
    return (int64_t)start;
}

static bool block_needed(const struct plan *p, uint64_t i)
{
    uint64_t end = (i + 1) * p->per_block;

    for (uint64_t c = i * p->per_block; c < end && c < p->len; c++) {
        if (p->counts[c]) {
            return true;
        }
    }
    return false;
}

/* Gives a block to every table index counting something in use; a block
 * may land in a range that had none, hence the passes until none is
 * added.  Returns the table entries needed, or 0 out of memory. */
static uint64_t place_blocks(struct plan *p)
{
    bool added = true;

    while (added) {
        added = false;
        for (uint64_t i = 0; i * p->per_block < p->len; i++) {
            if (i >= p->nblocks) {
                uint64_t n = i * 2 + 16;
                uint64_t *blocks = realloc(p->blocks, n * sizeof(*blocks));
                if (!blocks) {
                    return 0;
                }
                memset(blocks + p->nblocks, 0,
                       (n - p->nblocks) * sizeof(*blocks));
                p->blocks = blocks;
                p->nblocks = n;
            }
            if (!p->blocks[i] && block_needed(p, i)) {
                int64_t c = take(p, 1);
                if (c < 0) {
                    return 0;
                }
                p->blocks[i] = (uint64_t)c;
                added = true;
            }
        }
    }
    return (p->len + p->per_block - 1) / p->per_block;
}

/* Places the blocks and a table long enough to name them all. */
static int place(qcow2_state *s, struct plan *p)
{
    uint64_t per_cluster = s->cluster_size / 8;

    for (;;) {
        uint64_t entries = place_blocks(p);
        if (!entries) {
            return -ENOMEM;
        }
        uint64_t need = (entries + per_cluster - 1) / per_cluster;
        if (need <= p->table_clusters) {
            return 0;
        }
        if (need << s->h.cluster_bits > QCOW2_REFTABLE_MAX_BYTES) {
            return blk_error(-EFBIG, "qcow2: the rebuilt refcount table "
                             "would be over %u MiB",
                             QCOW2_REFTABLE_MAX_BYTES >> 20);
        }
        /* Too short: give its run back and take a longer one. */
        for (uint64_t c = 0; c < p->table_clusters; c++) {
            p->counts[p->table + c] = 0;
        }
        if (p->table_clusters && p->table < p->hint) {
            p->hint = p->table;
        }
        int64_t site = take(p, need);
        if (site < 0) {
            return -ENOMEM;
        }
        p->table = (uint64_t)site;
        p->table_clusters = need;
    }
}

static int coroutine_fn write_blocks(qcow2_state *s, const struct plan *p)
{
    uint64_t max = qcow2_refcount_max(s);
    void *buf;

    if (posix_memalign(&buf, 4096, s->cluster_size)) {
        return -ENOMEM;
    }
    int ret = 0;
    for (uint64_t i = 0; ret == 0 && i < p->nblocks; i++) {
        if (!p->blocks[i]) {
            continue;
        }
        memset(buf, 0, s->cluster_size);
        uint64_t first = i * p->per_block;
        for (uint64_t c = first; c < first + p->per_block && c < p->len; c++) {
            qcow2_refcount_entry_set(buf, s->refcount_bits, c - first,
                                     p->counts[c] < max ? p->counts[c] : max);
        }
        uint64_t offset = p->blocks[i] << s->h.cluster_bits;
        struct iovec iov = { buf, s->cluster_size };
        ret = coblk_co_pwritev(s->file, offset, s->cluster_size, &iov, 1, 0);
        if (ret < 0) {
            blk_error(ret, "qcow2: writing a rebuilt refcount block at %#"
                      PRIx64 ": %s", offset, strerror(-ret));
        }
    }
    free(buf);
    return ret;
}

static uint64_t *table_of(const qcow2_state *s, const struct plan *p)
{
    uint64_t *table = calloc(p->table_clusters, s->cluster_size);
    uint64_t entries = p->table_clusters * s->cluster_size / 8;

    /* Indices past the entries placed have no block. */
    for (uint64_t i = 0; table && i < p->nblocks && i < entries; i++) {
        table[i] = p->blocks[i] << s->h.cluster_bits;
    }
    return table;
}

int coroutine_fn qcow2_rebuild_refcounts(qcow2_state *s, const uint32_t *refs,
                                         uint64_t nb_clusters)
{
    struct plan p = { .per_block = s->refblock_entries, .hint = 1 };
    int ret = cover(&p, nb_clusters);

    if (ret == 0) {
        memcpy(p.counts, refs, nb_clusters * sizeof(*refs));
        ret = place(s, &p);
    }
    if (ret == 0) {
        ret = write_blocks(s, &p);
    }
    uint64_t *table = ret == 0 ? table_of(s, &p) : NULL;
    if (ret == 0 && !table) {
        ret = -ENOMEM;
    }
    if (ret == 0) {
        /* The old blocks' slices are not the new structure's. */
        qcow2_cache_forget(&s->refcount_cache, 0, UINT64_MAX);
        ret = qcow2_reftable_install(s, table, p.table, p.table_clusters);
        s->free_hint = 0;
    }
    free(p.counts);
    free(p.blocks);
    return ret;
}
