/*
 * Changing refcount_bits (qemu-img amend -o refcount_bits=N): every
 * refcount is copied into new refcount blocks of the new width and a new
 * refcount table, both placed past the last cluster in use; the header then
 * switches to them in one write.  In the new blocks the old blocks and
 * table already count as free and the new ones as used, so the image is
 * consistent on either side of that write; a crash before it leaves the
 * new structures as leaked clusters.
 */
#include "config.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"

#define REFTABLE_FIELDS 48u         /* offset (8), clusters (4) */
#define ORDER_FIELD 96u
/* The clusters it counts in memory at most (2 GiB of 64-bit refcounts),
 * as check's bound: beyond, a clear refusal rather than an allocation
 * the system may not back. */
#define MAX_CLUSTERS (1ull << 28)

/* The new structures, past the last cluster in use: `blocks` refcount
 * blocks then `table` clusters of refcount table, enough to count
 * themselves.  Past the last cluster in use, not the end of the file: a
 * file with a long unused tail (or a block device) needs no blocks for
 * it. */
struct layout {
    uint64_t start;                 /* first cluster of the blocks */
    uint64_t blocks, table;
    uint64_t per_block;             /* refcounts in a block */
};

static uint64_t div_up(uint64_t a, uint64_t b)
{
    return (a + b - 1) / b;
}

/* The cluster after the last one in use, the old refcount structures
 * counted in whatever their refcounts say (they must survive until the
 * header switches). */
static int coroutine_fn used_end(qcow2_state *s, uint64_t *end)
{
    uint64_t clusters = div_up(s->file->size, s->cluster_size);
    uint64_t table = s->h.refcount_table_offset >> s->h.cluster_bits;

    *end = table + s->h.refcount_table_clusters;
    for (uint64_t i = 0; i < s->reftable_entries; i++) {
        uint64_t c = (s->reftable[i] & QCOW2_L1E_OFFSET_MASK) >>
                     s->h.cluster_bits;
        *end = c && c + 1 > *end ? c + 1 : *end;
    }
    for (uint64_t c = *end; c < clusters; c++) {
        uint64_t refcount;
        int ret = qcow2_get_refcount(s, c << s->h.cluster_bits, &refcount);
        if (ret < 0) {
            return ret;
        }
        *end = refcount ? c + 1 : *end;
    }
    return 0;
}

static struct layout plan(const qcow2_state *s, uint64_t start,
                          uint32_t order)
{
    struct layout l = {
        .start = start,
        .per_block = (s->cluster_size * 8) >> order,
    };
    uint64_t blocks, table;

    do {
        blocks = l.blocks;
        table = l.table;
        l.blocks = div_up(l.start + blocks + table, l.per_block);
        l.table = div_up(l.blocks * 8, s->cluster_size);
    } while (l.blocks != blocks || l.table != table);
    return l;
}

/* The new refcount blocks' contents, every refcount checked against the
 * new width; the old blocks and table count as free there. */
static int coroutine_fn fill_blocks(qcow2_state *s, const struct layout *l,
                                    uint32_t bits, uint8_t *blocks)
{
    uint64_t max = bits == 64 ? UINT64_MAX : (1ull << bits) - 1;
    bool *old = calloc(l->start ? l->start : 1, sizeof(*old));

    if (!old) {
        return blk_error(-ENOMEM, "out of memory");
    }
    /* Marked once: a scan of the table per cluster would be quadratic. */
    uint64_t table = s->h.refcount_table_offset >> s->h.cluster_bits;
    for (uint64_t k = 0; k < s->h.refcount_table_clusters; k++) {
        if (table + k < l->start) {
            old[table + k] = true;
        }
    }
    for (uint64_t i = 0; i < s->reftable_entries; i++) {
        uint64_t c = (s->reftable[i] & QCOW2_L1E_OFFSET_MASK) >>
                     s->h.cluster_bits;
        if (c && c < l->start) {
            old[c] = true;
        }
    }
    int ret = 0;
    for (uint64_t c = 0; c < l->start && ret == 0; c++) {
        uint64_t refcount = 0;
        ret = old[c] ? 0 : qcow2_get_refcount(s, c << s->h.cluster_bits,
                                              &refcount);
        if (ret == 0 && refcount > max) {
            ret = blk_error(-EINVAL, "Cannot decrease refcount entry width "
                            "to %u bits: Cluster at offset %#" PRIx64 " has "
                            "a refcount of %" PRIu64, bits,
                            c << s->h.cluster_bits, refcount);
        }
        if (ret == 0) {
            qcow2_refcount_entry_set(blocks, bits, c, refcount);
        }
    }
    free(old);
    for (uint64_t c = l->start; c < l->start + l->blocks + l->table; c++) {
        qcow2_refcount_entry_set(blocks, bits, c, 1);
    }
    return ret;
}

static int coroutine_fn write_at(qcow2_state *s, uint64_t offset,
                                 void *buf, uint64_t bytes)
{
    struct iovec iov = { buf, bytes };

    return coblk_co_pwritev(s->file, offset, bytes, &iov, 1, 0);
}

/* The new blocks, then the table naming them, on disk. */
static int coroutine_fn write_structures(qcow2_state *s,
                                         const struct layout *l,
                                         uint8_t *blocks)
{
    uint64_t cs = s->cluster_size;
    uint64_t *table = calloc(l->table, cs);

    if (!table) {
        return blk_error(-ENOMEM, "out of memory");
    }
    for (uint64_t b = 0; b < l->blocks; b++) {
        table[b] = htobe64((l->start + b) * cs);
    }
    int ret = write_at(s, l->start * cs, blocks, l->blocks * cs);
    if (ret == 0) {
        ret = write_at(s, (l->start + l->blocks) * cs, table, l->table * cs);
    }
    if (ret == 0) {
        ret = coblk_co_flush(s->file);
    }
    free(table);
    return ret < 0 ? blk_error(ret, "qcow2: writing %" PRIu64 " clusters of "
                               "new refcount structures at %#" PRIx64 ": %s",
                               l->blocks + l->table, l->start * cs,
                               strerror(-ret))
                   : 0;
}

/* The header's table fields and refcount_order, in one write (the fields
 * between them as they are on disk). */
static int coroutine_fn switch_header(qcow2_state *s, const struct layout *l,
                                      uint32_t order)
{
    uint8_t fields[ORDER_FIELD + 4 - REFTABLE_FIELDS];
    struct iovec iov = { fields, sizeof(fields) };
    int ret = coblk_co_preadv(s->file, REFTABLE_FIELDS, sizeof(fields),
                              &iov, 1);

    if (ret < 0) {
        return ret;
    }
    qcow2_put64(fields, (l->start + l->blocks) * s->cluster_size);
    qcow2_put32(fields + 8, (uint32_t)l->table);
    qcow2_put32(fields + ORDER_FIELD - REFTABLE_FIELDS, order);
    ret = coblk_co_pwritev(s->file, REFTABLE_FIELDS, sizeof(fields), &iov, 1,
                           0);
    return ret == 0 ? coblk_co_flush(s->file) : ret;
}

int qcow2_parse_refcount_bits(const char *value, uint32_t *order)
{
    const char *digits = value[0] == '-' ? value + 1 : value;
    uint64_t bits;

    if (!*digits || strspn(digits, "0123456789") != strlen(digits)) {
        return blk_error(-EINVAL, "Parameter 'refcount_bits' expects a "
                         "number");
    }
    if (digits != value || blk_parse_number("qcow2", "refcount_bits",
                                            digits, 1, 64, &bits) < 0 ||
        (bits & (bits - 1))) {
        return blk_error(-EINVAL, "Refcount width must be a power of two "
                         "and may not exceed 64 bits");
    }
    *order = (uint32_t)__builtin_ctzll(bits);
    return 0;
}

int coroutine_fn qcow2_change_refcount_order(qcow2_state *s, uint32_t order)
{
    if (order == s->h.refcount_order) {
        return 0;
    }
    uint64_t start = 0;
    int ret = qcow2_flush_metadata(s);
    if (ret == 0) {
        ret = used_end(s, &start);
    }
    if (ret < 0) {
        return ret;
    }
    struct layout l = plan(s, start, order);
    if (l.start + l.blocks + l.table > MAX_CLUSTERS ||
        l.table > UINT32_MAX) {
        return blk_error(-EFBIG, "qcow2: %" PRIu64 " clusters in use are "
                         "more than coblk changes the refcount width of "
                         "(%llu); qemu-img convert makes a copy with the "
                         "width wanted", l.start, MAX_CLUSTERS);
    }
    uint8_t *blocks = calloc(l.blocks, s->cluster_size);
    if (!blocks) {
        return blk_error(-ENOMEM, "out of memory for %" PRIu64 " refcount "
                         "blocks", l.blocks);
    }
    ret = fill_blocks(s, &l, 1u << order, blocks);
    if (ret == 0) {
        ret = write_structures(s, &l, blocks);
    }
    if (ret == 0) {
        ret = switch_header(s, &l, order);
    }
    free(blocks);
    if (ret < 0) {
        return ret;
    }
    qcow2_refcount_close(s);
    s->h.refcount_order = order;
    s->h.refcount_table_offset = (l.start + l.blocks) * s->cluster_size;
    s->h.refcount_table_clusters = (uint32_t)l.table;
    s->free_hint = 0;
    ret = qcow2_refcount_open(s);
    return ret == 0 && s->meta.keys ? qcow2_meta_build(s) : ret;
}
