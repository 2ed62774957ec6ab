/*
 * Persistent dirty bitmaps (the bitmaps header extension).  coblk keeps
 * none up to date, but lists them (coblk_image_info) and counts their
 * clusters (check), while the image calls them consistent: autoclear bit
 * 0 set.  Opened for writing, the image has that bit cleared (qcow2.c),
 * as the format asks of a program that does not update them; QEMU then
 * ignores them, and its check finds their clusters leaked.
 */
#include "config.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"

static int broken(uint32_t index, const char *why)
{
    return blk_error(-EINVAL, "qcow2: bitmap %" PRIu32 " of the bitmap "
                     "directory %s (repair the image with QEMU, or drop its "
                     "bitmaps with qemu-img bitmap --remove)", index, why);
}

/* Whether bm's table is where the format allows, and as long as the
 * image's size needs at bm's granularity (shorter only for a bitmap in
 * use, as QEMU allows): -EINVAL, -EFBIG. */
static int check_table(const qcow2_state *s, const qcow2_bitmap *bm)
{
    uint64_t file = blk_size(s->file);
    uint64_t bytes = qcow2_bitmap_bytes(s, bm->granularity_bits);
    uint64_t clusters = qcow2_clusters(s, bytes);

    if (!bm->table_offset || (bm->table_offset & (s->cluster_size - 1)) ||
        !bm->table_entries || bm->table_entries > QCOW2_BITMAP_TABLE_MAX ||
        bm->table_offset > file ||
        (uint64_t)bm->table_entries * 8 > file - bm->table_offset) {
        return -EINVAL;
    }
    if (bytes > QCOW2_BITMAP_BYTES_MAX || bm->table_entries > clusters ||
        (bm->table_entries < clusters && !(bm->flags & QCOW2_BITMAP_IN_USE))) {
        return -EFBIG;
    }
    return 0;
}

/* The entry at dir + *at (of dir_bytes), checked. */
static int parse_entry(qcow2_state *s, const uint8_t *dir, uint64_t dir_bytes,
                       uint64_t *at, uint32_t index, qcow2_bitmap *bm)
{
    if (dir_bytes - *at < QCOW2_BITMAP_ENTRY_FIXED) {
        return broken(index, "is cut off by the directory's end");
    }
    const uint8_t *e = dir + *at;
    uint32_t name_bytes = (uint32_t)e[18] << 8 | e[19];
    uint32_t extra_bytes = qcow2_be32(e + 20);
    uint64_t bytes = ((uint64_t)QCOW2_BITMAP_ENTRY_FIXED + extra_bytes + name_bytes +
                      7) & ~7ull;

    *bm = (qcow2_bitmap){ .table_offset = qcow2_be64(e),
                          .table_entries = qcow2_be32(e + 8),
                          .flags = qcow2_be32(e + 12),
                          .granularity_bits = e[17] };
    if (bytes > dir_bytes - *at) {
        return broken(index, "runs past the directory's end");
    }
    if (e[16] != 1) {
        return broken(index, "is of an unknown type");
    }
    if (bm->flags & ~QCOW2_BITMAP_FLAGS_KNOWN) {
        return broken(index, "has reserved flags set");
    }
    if (bm->granularity_bits < QCOW2_BITMAP_GRANULARITY_MIN ||
        bm->granularity_bits > QCOW2_BITMAP_GRANULARITY_MAX) {
        return broken(index, "has a granularity out of 512 B to 2 GiB");
    }
    if (name_bytes > QCOW2_BITMAP_NAME_MAX) {
        return broken(index, "has a name of over 1023 bytes");
    }
    if (extra_bytes) {
        return broken(index, "has extra data, which coblk (as QEMU) does "
                      "not know");
    }
    int ret = check_table(s, bm);
    if (ret < 0) {
        return broken(index, ret == -EFBIG ? "has a bitmap table of another "
                      "size than the image needs" : "has no valid bitmap "
                      "table");
    }
    /* Up to a NUL, as QEMU reads it. */
    bm->name = strndup((const char *)e + QCOW2_BITMAP_ENTRY_FIXED, name_bytes);
    if (!bm->name) {
        return blk_error(-ENOMEM, "out of memory");
    }
    *at += bytes;
    return 0;
}

static int check_extension(const qcow2_state *s)
{
    const qcow2_header *h = &s->h;

    if (!h->nb_bitmaps || h->nb_bitmaps > QCOW2_BITMAPS_MAX || h->bitmaps_reserved) {
        return blk_error(-EINVAL, "qcow2: the bitmaps extension counts %"
                         PRIu32 " bitmaps (1 to 65535)%s", h->nb_bitmaps,
                         h->bitmaps_reserved ? ", and sets reserved bytes"
                                             : "");
    }
    if (!h->bitmap_dir_size || h->bitmap_dir_size > QCOW2_BITMAP_DIR_MAX ||
        !h->bitmap_dir_offset ||
        (h->bitmap_dir_offset & (s->cluster_size - 1))) {
        return blk_error(-EINVAL, "qcow2: the bitmap directory (%" PRIu64
                         " bytes at %#" PRIx64 ") is not where the format "
                         "allows it", h->bitmap_dir_size,
                         h->bitmap_dir_offset);
    }
    uint64_t file = blk_size(s->file);
    if (h->bitmap_dir_offset > file ||
        h->bitmap_dir_size > file - h->bitmap_dir_offset) {
        return blk_error(-EINVAL, "qcow2: the bitmap directory runs past "
                         "the end of the file");
    }
    return 0;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names differ, and the tables fit in the file side by side: a check,
 * which reads them all, then reads no more than the file. */
static int check_together(const qcow2_state *s)
{
    uint64_t entries = 0;
    char **names = malloc(s->nb_bitmaps * sizeof(*names));

    if (!names) {
        return blk_error(-ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < s->nb_bitmaps; i++) {
        names[i] = s->bitmaps[i].name;
        entries += s->bitmaps[i].table_entries;
    }
    qsort(names, s->nb_bitmaps, sizeof(*names), compare_names);
    int ret = 0;
    for (uint32_t i = 1; i < s->nb_bitmaps && ret == 0; i++) {
        if (!strcmp(names[i - 1], names[i])) {
            ret = blk_error(-EINVAL, "qcow2: two bitmaps are named '%s'",
                            names[i]);
        }
    }
    free(names);
    if (ret == 0 && entries * 8 > blk_size(s->file)) {
        ret = blk_error(-EINVAL, "qcow2: the bitmap tables take more room "
                        "than the file has");
    }
    return ret;
}

int qcow2_bitmap_info_build(qcow2_state *s)
{
    s->bitmap_info = calloc(s->nb_bitmaps, sizeof(*s->bitmap_info));
    if (!s->bitmap_info) {
        return blk_error(-ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < s->nb_bitmaps; i++) {
        const qcow2_bitmap *bm = &s->bitmaps[i];
        s->bitmap_info[i] = (struct coblk_bitmap_info){
            .name = bm->name,
            .granularity = 1ull << bm->granularity_bits,
            .in_use = bm->flags & QCOW2_BITMAP_IN_USE,
            .auto_update = bm->flags & QCOW2_BITMAP_AUTO,
        };
    }
    return 0;
}

int qcow2_read_bitmaps(qcow2_state *s)
{
    const qcow2_header *h = &s->h;

    if (!h->has_bitmaps_ext) {
        return 0;
    }
    if (h->version < 3 || !(h->autoclear & QCOW2_AUTOCLEAR_BITMAPS)) {
        s->stale_bitmaps = true;    /* not ours to list */
        return 0;
    }
    int ret = check_extension(s);
    uint8_t *dir = ret == 0 ? malloc(h->bitmap_dir_size) : NULL;
    if (ret == 0 && !dir) {
        ret = blk_error(-ENOMEM, "out of memory");
    }
    if (ret == 0) {
        s->bitmaps = calloc(h->nb_bitmaps, sizeof(*s->bitmaps));
        ret = s->bitmaps ? coblk_pread(s->file, dir, h->bitmap_dir_size,
                                       h->bitmap_dir_offset)
                         : blk_error(-ENOMEM, "out of memory");
    }
    uint64_t at = 0;
    for (uint32_t i = 0; ret == 0 && i < h->nb_bitmaps; i++) {
        ret = parse_entry(s, dir, h->bitmap_dir_size, &at, i, &s->bitmaps[i]);
        s->nb_bitmaps += ret == 0;
    }
    if (ret == 0 && at != h->bitmap_dir_size) {
        ret = blk_error(-EINVAL, "qcow2: the bitmap directory holds more "
                        "than its %" PRIu32 " bitmaps", h->nb_bitmaps);
    }
    if (ret == 0) {
        ret = check_together(s);
    }
    free(dir);
    if (ret == 0) {
        ret = qcow2_bitmap_info_build(s);
    }
    if (ret < 0) {
        qcow2_free_bitmaps(s);
    }
    return ret;
}

void qcow2_free_bitmaps(qcow2_state *s)
{
    for (uint32_t i = 0; i < s->nb_bitmaps; i++) {
        free(s->bitmaps[i].name);
    }
    free(s->bitmaps);
    free(s->bitmap_info);
    s->bitmaps = NULL;
    s->bitmap_info = NULL;
    s->nb_bitmaps = 0;
}

/* One bitmap's table, a cluster at a time into buf, and the data
 * clusters it names. */
static int table_clusters(qcow2_state *s, const qcow2_bitmap *bm,
                          uint64_t *buf,
                          void (*count)(void *, uint64_t, uint64_t),
                          void (*corrupt)(void *), void *opaque)
{
    uint64_t per_cluster = s->cluster_size / 8;

    count(opaque, bm->table_offset, (uint64_t)bm->table_entries * 8);
    for (uint64_t done = 0; done < bm->table_entries; done += per_cluster) {
        uint64_t n = bm->table_entries - done < per_cluster
                         ? bm->table_entries - done : per_cluster;
        if (qcow2_pread_zeroed(s->file, buf, n * 8,
                               bm->table_offset + done * 8) < 0) {
            return -EIO;
        }
        for (uint64_t i = 0; i < n; i++) {
            uint64_t e = be64toh(buf[i]);
            uint64_t offset = e & QCOW2_BITMAP_ENTRY_OFFSET;
            if ((e & QCOW2_BITMAP_ENTRY_RESERVED) ||
                (offset && (e & QCOW2_BITMAP_ENTRY_ALL_ONES)) ||
                (offset & (s->cluster_size - 1))) {
                corrupt(opaque);
            } else if (offset) {
                count(opaque, offset, s->cluster_size);
            }
        }
    }
    return 0;
}

int qcow2_bitmaps_clusters(qcow2_state *s, uint64_t *buf,
                           void (*count)(void *, uint64_t, uint64_t),
                           void (*corrupt)(void *), void *opaque)
{
    if (!s->nb_bitmaps) {
        return 0;
    }
    count(opaque, s->h.bitmap_dir_offset, s->h.bitmap_dir_size);
    for (uint32_t i = 0; i < s->nb_bitmaps; i++) {
        int ret = table_clusters(s, &s->bitmaps[i], buf, count, corrupt,
                                 opaque);
        if (ret < 0) {
            return ret;
        }
    }
    return 0;
}
