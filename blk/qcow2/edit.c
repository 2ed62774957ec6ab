/*
 * What qemu-img rebase, amend and commit change in an image beyond its
 * data: the backing file it names (coblk_set_backing(): the header's name
 * and backing format extension), its version and lazy refcounts
 * (coblk_amend()), each by rewriting the first cluster with the other
 * extensions kept as they are; and emptying it so that it reads as its
 * backing file (coblk_make_empty()).
 */
#include "config.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"

#define EXT_BACKING_FORMAT 0xe2792acau
#define EXT_FEATURE_TABLE 0x6803f857u
#define EXT_BITMAPS 0x23852875u
#define BITMAPS_EXT_BYTES 24u
#define V2_HEADER_BYTES 72u
/* With compression_type, padded: the length QEMU writes. */
#define V3_HEADER_BYTES 112u

/* A header edit: the fixed fields (edit_fixed() may change them, and
 * where the extensions start), the backing name and format, and the
 * bitmaps extension (kept as it was unless replace_bitmaps). */
struct header_edit {
    const char *backing, *format;
    uint32_t version;               /* 2 or 3 */
    bool lazy_refcounts;
    uint64_t autoclear;
    bool replace_bitmaps;
    uint32_t nb_bitmaps;            /* 0: no extension */
    uint64_t bitmap_dir_offset, bitmap_dir_size;
};

/* Where the old header's extensions start. */
static uint32_t extensions_start(const qcow2_state *s)
{
    return s->h.version >= 3 ? s->h.header_length : V2_HEADER_BYTES;
}

/* Appends an extension of len bytes at *at (padded to 8), if it fits. */
static int put_extension(uint8_t *out, uint32_t cs, uint32_t *at,
                         uint32_t type, const uint8_t *data, uint32_t len)
{
    if (*at + 8 + ((len + 7) & ~7u) > cs) {
        return -EINVAL;
    }
    qcow2_put32(out + *at, type);
    qcow2_put32(out + *at + 4, len);
    memcpy(out + *at + 8, data, len);
    *at += 8 + ((len + 7) & ~7u);
    return 0;
}

/* The first cluster from the fixed header `fixed` (its length: where the
 * extensions begin), the format extension, the feature table, the
 * bitmaps extension, the old extensions but those, the end, the name: in
 * QEMU's order.  Returns 0 or -EINVAL when that does not fit. */
static int rewrite_header(const qcow2_state *s, const uint8_t *old,
                          const uint8_t *fixed, uint32_t fixed_len,
                          const struct header_edit *e, uint8_t *out)
{
    const char *backing = e->backing, *format = e->format;
    uint32_t cs = (uint32_t)s->cluster_size;
    uint32_t start = extensions_start(s);
    uint32_t at = fixed_len;
    size_t fmt_len = format ? strlen(format) : 0;

    memset(out, 0, cs);
    memcpy(out, fixed, fixed_len);
    if (backing && format) {
        qcow2_put32(out + at, EXT_BACKING_FORMAT);
        qcow2_put32(out + at + 4, (uint32_t)fmt_len);
        memcpy(out + at + 8, format, fmt_len);
        at += 8 + (((uint32_t)fmt_len + 7) & ~7u);
    }
    /* As QEMU writes a header: version 3 names its feature bits, in a
     * table of its own rather than the old one; version 2 has none. */
    if (e->version >= 3) {
        uint8_t table[QCOW2_FEATURE_TABLE_MAX];
        uint32_t len = qcow2_feature_table(table);
        if (put_extension(out, cs, &at, EXT_FEATURE_TABLE, table, len) < 0) {
            return -EINVAL;
        }
    }
    if (e->replace_bitmaps && e->nb_bitmaps) {
        uint8_t ext[BITMAPS_EXT_BYTES] = { 0 };
        qcow2_put32(ext, e->nb_bitmaps);
        qcow2_put64(ext + 8, e->bitmap_dir_size);
        qcow2_put64(ext + 16, e->bitmap_dir_offset);
        if (put_extension(out, cs, &at, EXT_BITMAPS, ext, sizeof(ext)) < 0) {
            return -EINVAL;
        }
    }
    /* The old extensions were checked on open: they fit and end. */
    for (uint32_t from = start; from + 8 <= cs;) {
        uint32_t type = qcow2_be32(old + from);
        uint32_t len = 8 + ((qcow2_be32(old + from + 4) + 7) & ~7u);
        if (type == 0) {
            break;
        }
        if (type != EXT_BACKING_FORMAT && type != EXT_FEATURE_TABLE &&
            (type != EXT_BITMAPS || !e->replace_bitmaps)) {
            if (at + len > cs) {
                return -EINVAL;
            }
            memcpy(out + at, old + from, len);
            at += len;
        }
        from += len;
    }
    at += 8;                                /* the end: zeroes */
    size_t name_len = backing ? strlen(backing) : 0;
    if (at + name_len > cs) {
        return -EINVAL;
    }
    qcow2_put64(out + 8, backing ? at : 0);
    qcow2_put32(out + 16, (uint32_t)name_len);
    memcpy(out + at, backing ? backing : "", name_len);
    return 0;
}

/* The new name for info and a later open; the backing image open now
 * stays the one reads go through. */
static int remember(qcow2_state *s, const char *backing, const char *format)
{
    char *name = backing ? strdup(backing) : NULL;
    char *fmt = backing && format ? strdup(format) : NULL;
    char *path = backing ? qcow2_backing_path(blk_dev_filename(s->file),
                                              backing)
                         : NULL;

    if ((backing && (!name || !path)) || (backing && format && !fmt)) {
        free(name);
        free(fmt);
        free(path);
        return blk_error(-ENOMEM, "out of memory");
    }
    free(s->h.backing_name);
    free(s->h.backing_format);
    free(s->backing_path);
    s->h.backing_name = name;
    s->h.backing_format = fmt;
    s->backing_path = path;
    return 0;
}

/* The fixed header of the edited image, from the old one; its length. */
static uint32_t edit_fixed(const qcow2_state *s, const uint8_t *old,
                           const struct header_edit *e, uint8_t *fixed)
{
    uint32_t old_len = extensions_start(s);

    memset(fixed, 0, V3_HEADER_BYTES);
    memcpy(fixed, old, old_len);
    if (e->version == 2) {
        qcow2_put32(fixed + 4, 2);
        return V2_HEADER_BYTES;
    }
    uint32_t len = old_len > V3_HEADER_BYTES ? old_len : V3_HEADER_BYTES;
    uint64_t compatible = s->h.version >= 3 ? s->h.compatible : 0;
    compatible = e->lazy_refcounts ? compatible | QCOW2_COMPAT_LAZY_REFCOUNTS
                                   : compatible & ~(uint64_t)
                                                  QCOW2_COMPAT_LAZY_REFCOUNTS;
    qcow2_put32(fixed + 4, 3);
    /* Metadata is on disk (flushed first): not dirty. */
    qcow2_put64(fixed + 72, s->h.version >= 3
                          ? s->h.incompatible & ~(uint64_t)QCOW2_INCOMPAT_DIRTY
                          : 0);
    qcow2_put64(fixed + 80, compatible);
    qcow2_put64(fixed + 88, e->autoclear);
    qcow2_put32(fixed + 96, s->h.refcount_order);
    qcow2_put32(fixed + 100, len);
    return len;
}

static int coroutine_fn write_header(qcow2_state *s,
                                     const struct header_edit *e)
{
    uint8_t *old = calloc(2, s->cluster_size);
    uint8_t fixed[V3_HEADER_BYTES + 512];

    if (!old) {
        return blk_error(-ENOMEM, "out of memory");
    }
    uint8_t *out = old + s->cluster_size;
    uint64_t file_size = blk_size(s->file);
    uint64_t have = file_size < s->cluster_size ? file_size : s->cluster_size;
    struct iovec iov = { old, have };
    int ret = qcow2_flush_metadata(s);
    if (ret == 0) {
        ret = coblk_co_preadv(s->file, 0, have, &iov, 1);
    }
    if (ret == 0 && extensions_start(s) > sizeof(fixed)) {
        ret = blk_error(-ENOTSUP, "qcow2: a header of %" PRIu32 " bytes",
                        extensions_start(s));
    }
    if (ret == 0 &&
        rewrite_header(s, old, fixed, edit_fixed(s, old, e, fixed), e,
                       out) < 0) {
        ret = blk_error(-EINVAL, "qcow2: the header and the backing file's "
                        "name do not fit in the image's first cluster");
    }
    iov = (struct iovec){ out, s->cluster_size };
    if (ret == 0) {
        ret = coblk_co_pwritev(s->file, 0, s->cluster_size, &iov, 1, 0);
    }
    if (ret == 0) {
        ret = coblk_co_flush(s->file);
    }
    free(old);
    return ret;
}

/* The edit that changes nothing. */
static struct header_edit current(const qcow2_state *s)
{
    return (struct header_edit){
        .backing = s->h.backing_name, .format = s->h.backing_format,
        .version = s->h.version,
        .lazy_refcounts = s->h.compatible & QCOW2_COMPAT_LAZY_REFCOUNTS,
        .autoclear = s->h.version >= 3 ? s->h.autoclear : 0 };
}

int coroutine_fn qcow2_co_set_backing(struct coblk_dev *dev,
                                      const char *backing,
                                      const char *format)
{
    qcow2_state *s = dev->opaque;

    if ((backing && (!*backing || strlen(backing) > QCOW2_BACKING_NAME_MAX)) ||
        (format && (!*format || strlen(format) > QCOW2_FORMAT_NAME_MAX))) {
        return blk_error(-EINVAL, "qcow2: a backing file name of 1 to %d "
                         "bytes, a format name of 1 to %d",
                         QCOW2_BACKING_NAME_MAX, QCOW2_FORMAT_NAME_MAX);
    }
    struct header_edit e = current(s);
    e.backing = backing;
    e.format = format;
    qcow2_lock(s);
    int ret = write_header(s, &e);
    if (ret == 0) {
        ret = remember(s, backing, format);
    }
    qcow2_unlock(s);
    return ret;
}

int coroutine_fn qcow2_co_make_empty(struct coblk_dev *dev)
{
    qcow2_state *s = dev->opaque;
    uint64_t end = (dev->size + s->cluster_size - 1) & ~(s->cluster_size - 1);
    int ret = qcow2_data_will_change(dev);

    if (ret == 0 && end) {
        ret = qcow2_empty_range(s, 0, end, false, false);
    }
    return ret == 0 ? qcow2_co_flush(dev) : ret;
}

/* ---- amend ------------------------------------------------------------------- */

struct amend_opts {
    const qcow2_state *s;
    struct header_edit e;
    bool lazy_given, refcount_given;
    uint32_t refcount_order;
};

static int amend_option(void *opaque, const char *key, const char *value)
{
    struct amend_opts *a = opaque;

    if (!strcmp(key, "compat")) {
        if (!strcmp(value, "0.10") || !strcmp(value, "v2")) {
            a->e.version = 2;
        } else if (!strcmp(value, "1.1") || !strcmp(value, "v3")) {
            a->e.version = 3;
        } else {
            return blk_error(-EINVAL, "Unknown compatibility level %s",
                             value);
        }
        return 0;
    }
    if (!strcmp(key, "lazy_refcounts")) {
        bool on = !strcmp(value, "on") || !strcmp(value, "yes") ||
                  !strcmp(value, "true");
        if (!on && strcmp(value, "off") && strcmp(value, "no") &&
            strcmp(value, "false")) {
            return blk_error(-EINVAL, "qcow2: lazy_refcounts is on or off, "
                             "not '%s'", value);
        }
        a->e.lazy_refcounts = on;
        a->lazy_given = true;
        return 0;
    }
    if (!strcmp(key, "refcount_bits")) {
        a->refcount_given = true;
        return qcow2_parse_refcount_bits(value, &a->refcount_order);
    }
    return blk_error(-EINVAL, "Invalid parameter '%s'", key);
}

/* 1 if one of the L2 tables of this L1 table (a snapshot's, of l1_size
 * entries at l1_offset) has a zero cluster, 0 if none has, or an error.
 * l1 and l2: a cluster of room each. */
static int coroutine_fn l1_has_zero_clusters(qcow2_state *s,
                                             uint64_t l1_offset,
                                             uint32_t l1_size, uint64_t *l1,
                                             uint64_t *l2)
{
    uint64_t per_cluster = s->cluster_size / 8;

    for (uint64_t i = 0; i < l1_size; i += per_cluster) {
        uint64_t n = l1_size - i < per_cluster ? l1_size - i : per_cluster;
        int ret = qcow2_pread_zeroed(s->file, l1, n * 8, l1_offset + i * 8);
        for (uint64_t j = 0; ret == 0 && j < n; j++) {
            uint64_t l2_offset = be64toh(l1[j]) & QCOW2_L1E_OFFSET_MASK;
            if (!l2_offset) {
                continue;
            }
            ret = qcow2_pread_zeroed(s->file, l2, s->cluster_size, l2_offset);
            for (uint64_t e = 0; ret == 0 && e < per_cluster; e++) {
                uint64_t entry = be64toh(l2[e]);
                if ((entry & QCOW2_OFLAG_ZERO) &&
                    !(entry & QCOW2_OFLAG_COMPRESSED)) {
                    return 1;
                }
            }
        }
        if (ret < 0) {
            return ret;
        }
    }
    return 0;
}

/* compat=0.10 has no zero flag, and coblk writes out the active layer's
 * zero clusters only: an image with a snapshot that has some stays as it
 * is.  (QEMU 7.2 downgrades it into an image its own check finds corrupt,
 * with the snapshot's data changed.) */
static int coroutine_fn check_snapshot_zeroes(qcow2_state *s)
{
    uint64_t *l1 = malloc(s->cluster_size);
    uint64_t *l2 = malloc(s->cluster_size);
    int ret = l1 && l2 ? 0 : -ENOMEM;

    for (uint32_t i = 0; ret == 0 && i < s->h.nb_snapshots; i++) {
        const qcow2_snapshot *sn = &s->snapshots[i];
        ret = qcow2_snapshot_l1_usable(sn);
        if (ret == 0) {
            ret = l1_has_zero_clusters(s, sn->l1_offset, sn->l1_size, l1, l2);
        }
        if (ret == 1) {
            ret = blk_error(-ENOTSUP, "qcow2: snapshot '%s' has zero "
                            "clusters, which compat=0.10 cannot describe, "
                            "and coblk does not rewrite snapshots (delete "
                            "it first)", sn->name);
        }
    }
    free(l1);
    free(l2);
    return ret;
}

/* Whether compat=0.10 can describe the image. */
static int coroutine_fn check_downgrade(qcow2_state *s,
                                        const struct amend_opts *a)
{
    if (a->lazy_given && a->e.lazy_refcounts) {
        return blk_error(-EINVAL, "Lazy refcounts only supported with "
                         "compatibility level 1.1 and above (use "
                         "compat=1.1 or greater)");
    }
    if (s->h.incompatible & ~(uint64_t)QCOW2_INCOMPAT_DIRTY) {
        return blk_error(-ENOTSUP, "qcow2: the image uses features "
                         "compat=0.10 does not have (extended L2 entries, "
                         "zstd compression, a data file)");
    }
    return check_snapshot_zeroes(s);
}

/* compat=0.10 has no zero flag.  As QEMU downgrades: a zero cluster
 * becomes unallocated where nothing shows through, and zeroes written as
 * data where a backing image would, or where it keeps a host cluster. */
static int coroutine_fn expand_zero_clusters(struct coblk_dev *dev)
{
    qcow2_state *s = dev->opaque;

    for (uint64_t at = 0; at < dev->size;) {
        qcow2_extent ext;
        qcow2_lock(s);
        int ret = qcow2_map(s, at, dev->size - at, &ext);
        qcow2_unlock(s);
        if (ret == 0 && ext.kind == QCOW2_ZERO && !s->backing) {
            ret = qcow2_empty_range(s, at, at + ext.bytes, false, false);
        } else if (ret == 0 && (ext.kind == QCOW2_ZERO ||
                                ext.kind == QCOW2_ZERO_ALLOC)) {
            ret = qcow2_write_zero_bytes(dev, at, ext.bytes);
        }
        if (ret < 0) {
            return ret;
        }
        at += ext.bytes;
    }
    return 0;
}

int coroutine_fn qcow2_co_amend(struct coblk_dev *dev, const char *options)
{
    qcow2_state *s = dev->opaque;
    struct amend_opts a = { .s = s, .e = current(s),
                            .refcount_order = s->h.refcount_order };
    int ret = blk_parse_options(options, amend_option, &a);

    if (ret == 0 && a.e.version == 2 && a.refcount_order != 4) {
        ret = a.refcount_given
                  ? blk_error(-EINVAL, "Refcount widths other than 16 bits "
                              "require compatibility level 1.1 or above "
                              "(use compat=1.1 or greater)")
                  : blk_error(-EINVAL, "compat=0.10 requires "
                              "refcount_bits=16");
    }
    if (ret == 0 && a.e.version == 2) {
        ret = s->h.version == 2 && !(a.lazy_given && a.e.lazy_refcounts)
                  ? 0 : check_downgrade(s, &a);
        a.e.lazy_refcounts = false;
    }
    if (ret == 0 && a.e.version == 2 && s->h.version > 2) {
        ret = expand_zero_clusters(dev);
    }
    if (ret < 0) {
        return ret;
    }
    qcow2_lock(s);
    /* The width changes in a version 3 header: after an upgrade, before
     * a downgrade (to 16 bits, which version 2 has). */
    bool upgrade = a.e.version > s->h.version;
    if (!upgrade) {
        ret = qcow2_change_refcount_order(s, a.refcount_order);
    }
    if (ret == 0) {
        ret = write_header(s, &a.e);
    }
    if (ret == 0) {
        if (a.e.version != s->h.version) {
            s->h.incompatible = 0;
            s->h.compatible = 0;
            s->h.autoclear = 0;
            s->h.header_length = a.e.version == 2 ? V2_HEADER_BYTES
                                                  : V3_HEADER_BYTES;
        }
        s->h.version = a.e.version;
        s->h.incompatible &= ~(uint64_t)QCOW2_INCOMPAT_DIRTY;
        s->h.compatible = a.e.lazy_refcounts
                              ? s->h.compatible | QCOW2_COMPAT_LAZY_REFCOUNTS
                              : s->h.compatible &
                                    ~(uint64_t)QCOW2_COMPAT_LAZY_REFCOUNTS;
    }
    /* Version 3 wants each snapshot's disk size in its extra data. */
    if (ret == 0 && upgrade && s->h.nb_snapshots) {
        ret = qcow2_rewrite_snapshots(s);
    }
    if (ret == 0 && upgrade) {
        ret = qcow2_change_refcount_order(s, a.refcount_order);
    }
    qcow2_unlock(s);
    return ret;
}

int coroutine_fn qcow2_write_bitmaps_ext(qcow2_state *s, uint32_t nb_bitmaps,
                                         uint64_t dir_offset,
                                         uint64_t dir_size)
{
    struct header_edit e = current(s);

    e.replace_bitmaps = true;
    e.nb_bitmaps = nb_bitmaps;
    e.bitmap_dir_offset = dir_offset;
    e.bitmap_dir_size = dir_size;
    e.autoclear = nb_bitmaps ? e.autoclear | QCOW2_AUTOCLEAR_BITMAPS
                             : e.autoclear & ~(uint64_t)QCOW2_AUTOCLEAR_BITMAPS;
    int ret = write_header(s, &e);
    if (ret == 0) {
        s->h.has_bitmaps_ext = nb_bitmaps != 0;
        s->h.nb_bitmaps = nb_bitmaps;
        s->h.bitmaps_reserved = 0;
        s->h.bitmap_dir_offset = dir_offset;
        s->h.bitmap_dir_size = dir_size;
        __atomic_store_n(&s->h.autoclear, e.autoclear, __ATOMIC_RELEASE);
    }
    return ret;
}
