/*
 * Persistent bitmaps edited as qemu-img bitmap edits them
 * (coblk_bitmap_edit()): add, remove, clear, enable, disable, merge.
 * An edit writes what changes in new clusters (a bitmap's data, its
 * table, then the directory), switches the header's bitmaps extension to
 * the new directory in one write, and only then frees what the old
 * directory held: a crash leaves the old bitmaps or the new ones, at
 * worst with leaked clusters.  Messages are QEMU's words, which
 * qemu-img prints.
 */
#include "config.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"

/* QEMU's default: the cluster size, within 4 KiB to 64 KiB. */
#define DEFAULT_GRANULARITY_MIN 4096u
#define DEFAULT_GRANULARITY_MAX 65536u

static bool all_zero(const uint8_t *p, size_t n)
{
    return p[0] == 0 && !memcmp(p, p + 1, n - 1);
}

static int find(const qcow2_state *s, const char *name)
{
    for (uint32_t i = 0; i < s->nb_bitmaps; i++) {
        if (!strcmp(s->bitmaps[i].name, name)) {
            return (int)i;
        }
    }
    return blk_error(-ENOENT, "Dirty bitmap '%s' not found", name);
}

/* A bitmap its last writer left in use may only be removed. */
static int check_consistent(const qcow2_bitmap *bm)
{
    if (bm->flags & QCOW2_BITMAP_IN_USE) {
        return blk_error(-EINVAL, "Bitmap '%s' is inconsistent and cannot be "
                         "used", bm->name);
    }
    return 0;
}

/* ---- a bitmap's bits ------------------------------------------------------ */

/* Whether a table entry that names a data cluster (neither 0, all
 * zeroes, nor 1, all ones) names one the format allows, in the file. */
static bool entry_valid(const qcow2_state *s, uint64_t e)
{
    uint64_t offset = e & QCOW2_BITMAP_ENTRY_OFFSET;

    return !(e & (QCOW2_BITMAP_ENTRY_RESERVED | QCOW2_BITMAP_ENTRY_ALL_ONES)) &&
           !(offset & (s->cluster_size - 1)) &&
           offset < blk_size(s->file) &&
           s->cluster_size <= blk_size(s->file) - offset;
}

/* bm's table, host order (checked at open to lie in the file). */
static int coroutine_fn read_table(qcow2_state *s, const qcow2_bitmap *bm,
                                   uint64_t **out)
{
    uint64_t bytes = (uint64_t)bm->table_entries * 8;
    uint64_t *table = malloc(bytes);
    struct iovec iov = { table, bytes };

    if (!table) {
        return blk_error(-ENOMEM, "out of memory");
    }
    int ret = coblk_co_preadv(s->file, bm->table_offset, bytes, &iov, 1);
    if (ret < 0) {
        free(table);
        return blk_error(ret, "qcow2: reading the table of bitmap '%s': %s",
                         bm->name, strerror(-ret));
    }
    for (uint32_t i = 0; i < bm->table_entries; i++) {
        table[i] = be64toh(table[i]);
    }
    *out = table;
    return 0;
}

/* bm's bits, in as many clusters as its table has entries. */
static int coroutine_fn read_bits(qcow2_state *s, const qcow2_bitmap *bm,
                                  uint8_t **out)
{
    uint64_t *table = NULL;
    int ret = read_table(s, bm, &table);
    uint8_t *bits = ret == 0 ? calloc(bm->table_entries, s->cluster_size)
                             : NULL;

    if (ret == 0 && !bits) {
        ret = blk_error(-ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; ret == 0 && i < bm->table_entries; i++) {
        uint8_t *cluster = bits + ((uint64_t)i << s->h.cluster_bits);
        if (table[i] == QCOW2_BITMAP_ENTRY_ALL_ONES) {
            memset(cluster, 0xff, s->cluster_size);
        } else if (table[i] && !entry_valid(s, table[i])) {
            ret = blk_error(-EINVAL, "qcow2: bitmap '%s' has a table entry "
                            "the format forbids (%#" PRIx64 "): the image "
                            "is corrupt", bm->name, table[i]);
        } else if (table[i]) {
            struct iovec iov = { cluster, s->cluster_size };
            ret = coblk_co_preadv(s->file, table[i], s->cluster_size, &iov,
                                  1);
        }
    }
    free(table);
    if (ret < 0) {
        free(bits);
        return ret;
    }
    *out = bits;
    return 0;
}

static int coroutine_fn write_cluster(qcow2_state *s, const void *buf,
                                      uint64_t bytes, uint64_t *offset)
{
    bool fresh;
    int ret = qcow2_alloc_clusters(s, qcow2_clusters(s, bytes), offset, &fresh);
    struct iovec iov = { (void *)buf, bytes };

    if (ret == 0) {
        ret = coblk_co_pwritev(s->file, *offset, bytes, &iov, 1, 0);
    }
    return ret;
}

/* Writes bits (`entries` clusters) as a new table, the clusters of
 * zeroes left out, as QEMU writes them; sets *table_offset. */
static int coroutine_fn write_bits(qcow2_state *s, const uint8_t *bits,
                                   uint32_t entries, uint64_t *table_offset)
{
    uint64_t *table = calloc(entries, sizeof(*table));
    int ret = table ? 0 : blk_error(-ENOMEM, "out of memory");

    for (uint32_t i = 0; ret == 0 && i < entries; i++) {
        const uint8_t *cluster = bits + ((uint64_t)i << s->h.cluster_bits);
        uint64_t offset;
        if (!all_zero(cluster, s->cluster_size)) {
            ret = write_cluster(s, cluster, s->cluster_size, &offset);
            table[i] = htobe64(offset);
        }
    }
    if (ret == 0) {
        ret = write_cluster(s, table, (uint64_t)entries * 8, table_offset);
    }
    free(table);
    return ret < 0 ? blk_error(ret, "qcow2: writing a bitmap: %s",
                               strerror(-ret))
                   : 0;
}

/* Drops one reference of the clusters from offset, unless one holds
 * metadata or what more than this bitmap refers to: a damaged image
 * leaks, rather than frees what is in use. */
static int coroutine_fn unref_owned(qcow2_state *s, uint64_t offset,
                                    uint64_t clusters)
{
    for (uint64_t i = 0; i < clusters; i++) {
        uint64_t at = offset + (i << s->h.cluster_bits), refcount;
        if (qcow2_meta_overlaps(s, at, s->cluster_size)) {
            continue;           /* a table or directory over metadata */
        }
        int ret = qcow2_get_refcount(s, at, &refcount);
        if (ret == 0 && refcount == 1) {
            ret = qcow2_update_refcounts(s, at, 1, -1);
        }
        if (ret < 0) {
            return ret;
        }
    }
    return 0;
}

/* Frees bm's data clusters and table, once no directory names them. */
static int coroutine_fn free_bits(qcow2_state *s, const qcow2_bitmap *bm)
{
    uint64_t *table = NULL;
    int ret = read_table(s, bm, &table);

    for (uint32_t i = 0; ret == 0 && i < bm->table_entries; i++) {
        uint64_t offset = table[i] & QCOW2_BITMAP_ENTRY_OFFSET;
        if (table[i] > QCOW2_BITMAP_ENTRY_ALL_ONES &&
            entry_valid(s, table[i])) {
            ret = unref_owned(s, offset, 1);
        }
    }
    free(table);
    if (ret == 0) {
        ret = unref_owned(s, bm->table_offset,
                          qcow2_clusters(s, (uint64_t)bm->table_entries * 8));
    }
    return ret;
}

/* Sets every bit of dst (2^dst_bits bytes a bit) whose bytes touch
 * those of a bit set in src (2^src_bits bytes a bit), over size bytes;
 * src's bits past size (padding, which a damaged image may set) count
 * for nothing. */
static void merge_bits(uint8_t *dst, unsigned dst_bits, const uint8_t *src,
                       unsigned src_bits, uint64_t size, uint64_t src_bytes)
{
    uint64_t byte = 0;

    if (dst_bits == src_bits) {     /* whole bytes at once, but the last */
        for (uint64_t whole = ((size - 1) >> src_bits) / 8; byte < whole;
             byte++) {
            dst[byte] |= src[byte];
        }
    }
    for (; byte < src_bytes; byte++) {
        for (unsigned b = 0; src[byte] >> b; b++) {
            uint64_t start = (byte * 8 + b) << src_bits;
            if (start >= size) {
                return;
            }
            if (!(src[byte] >> b & 1)) {
                continue;
            }
            uint64_t end = start + (1ull << src_bits);
            end = end < size ? end : size;
            for (uint64_t d = start >> dst_bits; d <= (end - 1) >> dst_bits;
                 d++) {
                dst[d / 8] |= (uint8_t)(1u << (d % 8));
            }
        }
    }
}

/* ---- the directory -------------------------------------------------------- */

static uint64_t entry_bytes(const char *name)
{
    return (QCOW2_BITMAP_ENTRY_FIXED + strlen(name) + 7) & ~7ull;
}

static uint64_t directory_bytes(const qcow2_bitmap *list, uint32_t n)
{
    uint64_t bytes = 0;

    for (uint32_t i = 0; i < n; i++) {
        bytes += entry_bytes(list[i].name);
    }
    return bytes;
}

static uint8_t *put_entry(uint8_t *p, const qcow2_bitmap *bm)
{
    size_t name_len = strlen(bm->name);

    qcow2_put64(p, bm->table_offset);
    qcow2_put32(p + 8, bm->table_entries);
    qcow2_put32(p + 12, bm->flags);
    p[16] = 1;                              /* dirty tracking */
    p[17] = bm->granularity_bits;
    p[18] = (uint8_t)(name_len >> 8);
    p[19] = (uint8_t)name_len;
    memcpy(p + QCOW2_BITMAP_ENTRY_FIXED, bm->name, name_len);
    return p + entry_bytes(bm->name);
}

static void free_list(qcow2_bitmap *list, uint32_t n)
{
    for (uint32_t i = 0; list && i < n; i++) {
        free(list[i].name);
    }
    free(list);
}

/* The directory in memory, with room for one more. */
static qcow2_bitmap *copy_list(const qcow2_state *s)
{
    qcow2_bitmap *copy = calloc(s->nb_bitmaps + 1, sizeof(*copy));

    for (uint32_t i = 0; copy && i < s->nb_bitmaps; i++) {
        copy[i] = s->bitmaps[i];
        copy[i].name = strdup(s->bitmaps[i].name);
        if (!copy[i].name) {
            free_list(copy, i);
            copy = NULL;
        }
    }
    if (!copy) {
        blk_error(-ENOMEM, "out of memory");
    }
    return copy;
}

static int coroutine_fn write_directory(qcow2_state *s,
                                        const qcow2_bitmap *list, uint32_t n,
                                        uint64_t *offset)
{
    uint64_t bytes = directory_bytes(list, n);
    uint8_t *dir = calloc(1, bytes);

    if (!dir) {
        return blk_error(-ENOMEM, "out of memory");
    }
    uint8_t *p = dir;
    for (uint32_t i = 0; i < n; i++) {
        p = put_entry(p, &list[i]);
    }
    int ret = write_cluster(s, dir, bytes, offset);
    free(dir);
    return ret < 0 ? blk_error(ret, "qcow2: writing the bitmap directory: "
                               "%s", strerror(-ret))
                   : 0;
}

/* Makes list[0..n) (taken in every case) the image's directory: written,
 * with every cluster it names counted on disk, before the header names
 * it; the old directory freed after. */
static int coroutine_fn replace_directory(qcow2_state *s, qcow2_bitmap *list,
                                          uint32_t n)
{
    uint64_t offset = 0;
    int ret = n ? write_directory(s, list, n, &offset) : 0;

    if (ret == 0) {
        ret = qcow2_cache_flush(s, &s->refcount_cache);
    }
    if (ret == 0) {
        ret = coblk_co_flush(s->file);
    }
    uint64_t old_offset = s->h.bitmap_dir_offset;
    uint64_t old_bytes = s->nb_bitmaps ? s->h.bitmap_dir_size : 0;
    if (ret == 0) {
        ret = qcow2_write_bitmaps_ext(s, n, offset,
                                      n ? directory_bytes(list, n) : 0);
    }
    if (ret < 0) {
        free_list(list, n);
        return ret;
    }
    qcow2_free_bitmaps(s);
    s->bitmaps = list;
    s->nb_bitmaps = n;
    s->stale_bitmaps = false;
    ret = qcow2_bitmap_info_build(s);
    if (ret == 0 && old_bytes) {
        ret = unref_owned(s, old_offset, qcow2_clusters(s, old_bytes));
    }
    return ret;
}

/* Gives list[at] (in the directory of s) a new table holding bits, then
 * frees the old one. */
static int coroutine_fn replace_bits(qcow2_state *s, qcow2_bitmap *list,
                                     uint32_t at, const uint8_t *bits)
{
    qcow2_bitmap old = s->bitmaps[at];
    int ret = write_bits(s, bits, list[at].table_entries,
                         &list[at].table_offset);

    if (ret < 0) {
        free_list(list, s->nb_bitmaps);
        return ret;
    }
    old.name = list[at].name;   /* s->bitmaps, and its names, go */
    ret = replace_directory(s, list, s->nb_bitmaps);
    return ret == 0 ? free_bits(s, &old) : ret;
}

/* ---- the edits ------------------------------------------------------------ */

static unsigned log2_of(uint64_t v)
{
    return (unsigned)__builtin_ctzll(v);
}

static int check_new(const qcow2_state *s, const char *name, uint64_t gran)
{
    const char *problem = NULL;
    int ret = -EINVAL;

    if (s->h.version < 3) {
        problem = "Cannot store dirty bitmaps in qcow2 v2 files";
        ret = -ENOTSUP;
    } else if (qcow2_bitmap_bytes(s, log2_of(gran)) > QCOW2_BITMAP_BYTES_MAX ||
               qcow2_clusters(s, qcow2_bitmap_bytes(s, log2_of(gran))) >
                   QCOW2_BITMAP_TABLE_MAX) {
        problem = "Too much space will be occupied by the bitmap. Use "
                  "larger granularity";
        ret = -EFBIG;
    } else if (strlen(name) > QCOW2_BITMAP_NAME_MAX) {
        problem = "Name length exceeds maximum (1023 characters)";
    } else if (s->nb_bitmaps >= QCOW2_BITMAPS_MAX) {
        problem = "Maximum number of persistent bitmaps is already reached";
        ret = -EFBIG;
    } else if (directory_bytes(s->bitmaps, s->nb_bitmaps) + entry_bytes(name) >
               QCOW2_BITMAP_DIR_MAX) {
        problem = "Not enough space in the bitmap directory";
        ret = -EFBIG;
    } else if (!s->h.size) {
        problem = "An image of 0 bytes holds no bitmap";
    }
    return problem ? blk_error(ret, "Can't make bitmap '%s' persistent in "
                               "'%s': %s", name, blk_dev_filename(s->file),
                               problem)
                   : 0;
}

static int coroutine_fn add(qcow2_state *s, const struct coblk_bitmap_edit *e)
{
    uint64_t gran = e->granularity;

    if (!*e->name) {
        return blk_error(-EINVAL, "Bitmap name cannot be empty");
    }
    if (!gran) {
        gran = s->cluster_size < DEFAULT_GRANULARITY_MIN ? DEFAULT_GRANULARITY_MIN
               : s->cluster_size > DEFAULT_GRANULARITY_MAX
                   ? DEFAULT_GRANULARITY_MAX : s->cluster_size;
    }
    if (gran < 512 || (gran & (gran - 1)) ||
        gran > 1ull << QCOW2_BITMAP_GRANULARITY_MAX) {
        return blk_error(-EINVAL, "Granularity must be power of 2 and at "
                         "least 512");
    }
    if (find(s, e->name) >= 0) {
        return blk_error(-EEXIST, "Bitmap already exists: %s", e->name);
    }
    int ret = check_new(s, e->name, gran);
    qcow2_bitmap *list = ret == 0 ? copy_list(s) : NULL;
    if (!list) {
        return ret < 0 ? ret : -ENOMEM;
    }
    qcow2_bitmap *bm = &list[s->nb_bitmaps];
    bm->granularity_bits = (uint8_t)log2_of(gran);
    bm->flags = QCOW2_BITMAP_AUTO;
    bm->table_entries = (uint32_t)qcow2_clusters(s, qcow2_bitmap_bytes(s,
                                                   bm->granularity_bits));
    bm->name = strdup(e->name);
    uint64_t *table = calloc(bm->table_entries, sizeof(*table));
    ret = bm->name && table ? write_cluster(s, table,
                                            (uint64_t)bm->table_entries * 8,
                                            &bm->table_offset)
                            : blk_error(-ENOMEM, "out of memory");
    free(table);
    if (ret < 0) {
        free_list(list, s->nb_bitmaps + 1);
        return ret;
    }
    return replace_directory(s, list, s->nb_bitmaps + 1);
}

static int coroutine_fn remove_bitmap(qcow2_state *s,
                                      const struct coblk_bitmap_edit *e)
{
    int at = find(s, e->name);
    qcow2_bitmap *list = at >= 0 ? copy_list(s) : NULL;

    if (!list) {
        return at < 0 ? at : -ENOMEM;
    }
    qcow2_bitmap old = s->bitmaps[at];
    free(list[at].name);
    memmove(&list[at], &list[at + 1],
            (s->nb_bitmaps - (uint32_t)at - 1) * sizeof(*list));
    old.name = (char *)e->name;     /* s->bitmaps, and its names, go */
    int ret = replace_directory(s, list, s->nb_bitmaps - 1);
    return ret == 0 ? free_bits(s, &old) : ret;
}

static int coroutine_fn clear(qcow2_state *s, const struct coblk_bitmap_edit *e)
{
    int at = find(s, e->name);
    int ret = at < 0 ? at : check_consistent(&s->bitmaps[at]);
    qcow2_bitmap *list = ret == 0 ? copy_list(s) : NULL;
    uint8_t *zeroes = list ? calloc(list[at].table_entries, s->cluster_size)
                           : NULL;

    if (!zeroes) {
        free_list(list, s->nb_bitmaps);
        return ret < 0 ? ret : blk_error(-ENOMEM, "out of memory");
    }
    ret = replace_bits(s, list, (uint32_t)at, zeroes);
    free(zeroes);
    return ret;
}

static int coroutine_fn set_auto(qcow2_state *s,
                                 const struct coblk_bitmap_edit *e)
{
    int at = find(s, e->name);
    int ret = at < 0 ? at : check_consistent(&s->bitmaps[at]);
    qcow2_bitmap *list = ret == 0 ? copy_list(s) : NULL;

    if (!list) {
        return ret < 0 ? ret : -ENOMEM;
    }
    list[at].flags = e->op == COBLK_BITMAP_ENABLE
                         ? list[at].flags | QCOW2_BITMAP_AUTO
                         : list[at].flags & ~(uint32_t)QCOW2_BITMAP_AUTO;
    return replace_directory(s, list, s->nb_bitmaps);
}

/* The source of a merge: a bitmap of a qcow2 image of dev's size. */
static int merge_source(struct coblk_dev *dev,
                        const struct coblk_bitmap_edit *e,
                        qcow2_state **src)
{
    struct coblk_dev *from = e->source ? e->source : dev;

    if (from->drv != &blk_qcow2_driver) {
        return blk_error(-ENOTSUP, "Dirty bitmap '%s' not found: %s is not "
                         "a qcow2 image", e->source_name, from->filename);
    }
    *src = from->opaque;
    int at = find(*src, e->source_name);
    int ret = at < 0 ? at : check_consistent(&(*src)->bitmaps[at]);
    if (ret < 0) {
        return ret;
    }
    if (from->size != dev->size) {
        return blk_error(-EINVAL, "Bitmaps are of different sizes "
                         "(destination size is %" PRIu64 ", source size is %"
                         PRIu64 ") and can't be merged", dev->size,
                         from->size);
    }
    return at;
}

static int coroutine_fn merge(struct coblk_dev *dev,
                              const struct coblk_bitmap_edit *e)
{
    qcow2_state *s = dev->opaque, *src = NULL;
    int at = find(s, e->name);
    int ret = at < 0 ? at : check_consistent(&s->bitmaps[at]);
    int from = ret < 0 ? ret : merge_source(dev, e, &src);
    uint8_t *bits = NULL, *src_bits = NULL;

    ret = from < 0 ? from : read_bits(s, &s->bitmaps[at], &bits);
    if (ret == 0) {
        ret = read_bits(src, &src->bitmaps[from], &src_bits);
    }
    qcow2_bitmap *list = ret == 0 ? copy_list(s) : NULL;
    if (ret == 0 && !list) {
        ret = -ENOMEM;
    }
    if (ret == 0) {
        const qcow2_bitmap *sbm = &src->bitmaps[from];
        merge_bits(bits, list[at].granularity_bits, src_bits,
                   sbm->granularity_bits, dev->size,
                   qcow2_bitmap_bytes(src, sbm->granularity_bits));
        ret = replace_bits(s, list, (uint32_t)at, bits);
    }
    free(bits);
    free(src_bits);
    return ret;
}

static int coroutine_fn edit_locked(struct coblk_dev *dev,
                                    const struct coblk_bitmap_edit *e)
{
    qcow2_state *s = dev->opaque;

    switch (e->op) {
    case COBLK_BITMAP_ADD:
        return add(s, e);
    case COBLK_BITMAP_REMOVE:
        return remove_bitmap(s, e);
    case COBLK_BITMAP_CLEAR:
        return clear(s, e);
    case COBLK_BITMAP_ENABLE:
    case COBLK_BITMAP_DISABLE:
        return set_auto(s, e);
    case COBLK_BITMAP_MERGE:
        return merge(dev, e);
    }
    return -EINVAL;
}

int coroutine_fn qcow2_co_bitmap_edit(struct coblk_dev *dev,
                                      const struct coblk_bitmap_edit *e)
{
    qcow2_state *s = dev->opaque;
    qcow2_inflight mine;
    int ret = qcow2_alone_begin(s, &mine);

    if (ret == 0) {
        ret = edit_locked(dev, e);
        qcow2_alone_end(s, &mine);
    }
    return ret;
}
