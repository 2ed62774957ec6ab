/*
 * Creating qcow2 images, with qemu-img create's options:
 *   cluster_size, compat (0.10 | v2 | 1.1 | v3), refcount_bits,
 *   lazy_refcounts, extended_l2, compression_type (zlib | zstd),
 *   preallocation (off | metadata | falloc | full), backing_file,
 *   backing_fmt.
 *
 * Layout as QEMU's: the header and its extensions in cluster 0, then the
 * refcount table, the refcount blocks, the L1 table and, preallocated,
 * the L2 tables and the data clusters.  Written with plain system calls:
 * the image is not open anywhere yet.
 */
#include "config.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qcow2.h"

#define V3_HEADER_BYTES 112u        /* with compression_type, padded */
#define DEFAULT_CLUSTER (64u << 10)

enum prealloc { PREALLOC_OFF, PREALLOC_METADATA, PREALLOC_FALLOC,
                PREALLOC_FULL };

struct create_opts {
    uint64_t cluster_size;
    unsigned version;
    uint64_t refcount_bits;
    bool lazy_refcounts, extended_l2;
    unsigned compression_type;
    enum prealloc prealloc;
    char *backing_file, *backing_fmt;       /* malloc'd */
    struct blk_file_opts file;
};

/* on/off, or QEMU's synonyms yes/no, true/false. */
static int on_off(const char *key, const char *value, bool *out)
{
    static const char *const yes[] = { "on", "yes", "true" };
    static const char *const no[] = { "off", "no", "false" };

    for (int i = 0; i < 3; i++) {
        if (!strcmp(value, yes[i]) || !strcmp(value, no[i])) {
            *out = !strcmp(value, yes[i]);
            return 0;
        }
    }
    return blk_error(-EINVAL, "qcow2: %s is on or off, not '%s'", key,
                     value);
}

static int pick(const char *key, const char *value,
                const char *const *names, unsigned count, unsigned *out)
{
    for (unsigned i = 0; i < count; i++) {
        if (!strcmp(value, names[i])) {
            *out = i;
            return 0;
        }
    }
    return blk_error(-EINVAL, "qcow2: bad %s '%s'", key, value);
}

static int create_option(void *opaque, const char *key, const char *value)
{
    struct create_opts *o = opaque;
    static const char *const compat[] = { "0.10", "v2", "1.1", "v3" };
    static const char *const compression[] = { "zlib", "zstd" };
    static const char *const prealloc[] = { "off", "metadata", "falloc",
                                            "full" };
    unsigned i = 0;
    int ret = blk_file_option(&o->file, key, value);

    if (ret != 0) {
        return ret < 0 ? ret : 0;
    }
    if (!strcmp(key, "cluster_size")) {
        if (blk_parse_size(value, &o->cluster_size) < 0) {
            return blk_error(-EINVAL, "qcow2: bad cluster_size '%s'", value);
        }
        return 0;
    }
    if (!strcmp(key, "compat")) {
        ret = pick(key, value, compat, 4, &i);
        o->version = i < 2 ? 2 : 3;
        return ret;
    }
    if (!strcmp(key, "refcount_bits")) {
        uint32_t order;
        ret = qcow2_parse_refcount_bits(value, &order);
        if (ret == 0) {
            o->refcount_bits = 1ull << order;
        }
        return ret;
    }
    if (!strcmp(key, "lazy_refcounts")) {
        return on_off(key, value, &o->lazy_refcounts);
    }
    if (!strcmp(key, "extended_l2")) {
        return on_off(key, value, &o->extended_l2);
    }
    if (!strcmp(key, "compression_type")) {
        return pick(key, value, compression, 2, &o->compression_type);
    }
    if (!strcmp(key, "preallocation")) {
        ret = pick(key, value, prealloc, 4, &i);
        o->prealloc = (enum prealloc)i;
        return ret;
    }
    if (!strcmp(key, "backing_file") || !strcmp(key, "backing_fmt")) {
        /* The value lives only while the options are parsed. */
        char **field = !strcmp(key, "backing_file") ? &o->backing_file
                                                    : &o->backing_fmt;
        free(*field);
        *field = strdup(value);
        return *field ? 0 : -ENOMEM;
    }
    return blk_error(-EINVAL, "qcow2: unknown option '%s' (cluster_size, "
                     "compat, refcount_bits, lazy_refcounts, extended_l2, "
                     "compression_type, preallocation, backing_file, "
                     "backing_fmt)", key);
}

/* What the options allow together, as qemu-img tells it. */
static int check_opts(const struct create_opts *o, uint64_t size)
{
    uint64_t cs = o->cluster_size;

    if (cs < 512 || cs > (2u << 20) || (cs & (cs - 1))) {
        return blk_error(-EINVAL, "Cluster size must be a power of two "
                         "between 512 and 2048k");
    }
    /* What version 2 cannot describe, each in QEMU's words. */
    static const char *const needs_v3 =
        "compatibility level 1.1 and above (use version=v3 or greater)";
    if (o->version == 2 && o->refcount_bits != 16) {
        return blk_error(-EINVAL, "Different refcount widths than 16 bits "
                         "require compatibility level 1.1 or above (use "
                         "version=v3 or greater)");
    }
    if (o->version == 2 && o->lazy_refcounts) {
        return blk_error(-EINVAL, "Lazy refcounts only supported with %s",
                         needs_v3);
    }
    if (o->version == 2 && o->extended_l2) {
        return blk_error(-EINVAL, "Extended L2 entries are only supported "
                         "with %s", needs_v3);
    }
    if (o->version == 2 && o->compression_type) {
        return blk_error(-EINVAL, "Non-zlib compression type is only "
                         "supported with %s", needs_v3);
    }
    if (o->extended_l2 && cs < (16u << 10)) {
        return blk_error(-EINVAL, "qcow2: extended_l2 needs clusters of 16k "
                         "or more");
    }
    if (size % 512) {
        return blk_error(-EINVAL, "qcow2: the size must be a multiple of "
                         "512 bytes, not %" PRIu64, size);
    }
    if (o->backing_file && !o->backing_fmt) {
        return blk_error(-EINVAL, "qcow2: a backing file needs its format "
                         "(backing_fmt=qcow2 or raw)");
    }
    if (o->backing_fmt && !o->backing_file) {
        return blk_error(-EINVAL, "Backing format cannot be used without "
                         "backing file");
    }
    if (o->backing_fmt && strcmp(o->backing_fmt, "qcow2") &&
        strcmp(o->backing_fmt, "raw")) {
        return blk_error(-EINVAL, "qcow2: backing_fmt '%s' (coblk reads "
                         "qcow2 and raw)", o->backing_fmt);
    }
    if (o->backing_file && (strlen(o->backing_file) > QCOW2_BACKING_NAME_MAX ||
                            !*o->backing_file)) {
        return blk_error(-EINVAL, "qcow2: the backing file name must be 1 to "
                         "%d bytes", QCOW2_BACKING_NAME_MAX);
    }
    if (o->backing_file && o->prealloc != PREALLOC_OFF && !o->extended_l2) {
        return blk_error(-EINVAL, "qcow2: preallocation over a backing file "
                         "needs extended_l2=on");
    }
    return 0;
}

/* ---- the layout ------------------------------------------------------------- */

struct layout {
    uint64_t cs;
    unsigned cluster_bits;
    uint64_t l1_size, l1_clusters;
    uint64_t l2_tables;             /* preallocated */
    uint64_t data_clusters;         /* preallocated */
    uint64_t refblock_entries;
    uint64_t reftable_clusters, refblocks;
    /* Cluster indices. */
    uint64_t reftable, first_block, l1, first_l2, first_data, end;
};

static unsigned log2_of(uint64_t v)
{
    return 63u - (unsigned)__builtin_clzll(v);
}

static int plan_layout(const struct create_opts *o, uint64_t size,
                       struct layout *l)
{
    uint64_t entry_bytes = o->extended_l2 ? 16 : 8;

    *l = (struct layout){ .cs = o->cluster_size,
                          .cluster_bits = log2_of(o->cluster_size) };
    uint64_t per_l2 = l->cs / entry_bytes;
    uint64_t per_l1 = per_l2 << l->cluster_bits;     /* bytes an entry maps */
    l->l1_size = size / per_l1 + (size % per_l1 != 0);
    if (l->l1_size > QCOW2_L1_MAX_BYTES / 8) {
        /* QEMU's words: the L1 table would be over 32 MiB. */
        return blk_error(-EFBIG, "The image size is too large for file "
                         "format 'qcow2' (try using a larger cluster size)");
    }
    l->l1_clusters = (l->l1_size * 8 + l->cs - 1) / l->cs;
    if (o->prealloc != PREALLOC_OFF) {
        l->l2_tables = l->l1_size;
        l->data_clusters = (size + l->cs - 1) / l->cs;
    }
    l->refblock_entries = l->cs * 8 / o->refcount_bits;
    /* The refcounts count themselves: grow until they fit. */
    uint64_t other = 1 + l->l1_clusters + l->l2_tables + l->data_clusters;
    l->reftable_clusters = 1;
    for (;;) {
        uint64_t total = other + l->reftable_clusters + l->refblocks;
        uint64_t blocks = (total + l->refblock_entries - 1) /
                          l->refblock_entries;
        uint64_t table = (blocks * 8 + l->cs - 1) / l->cs;
        if (blocks == l->refblocks && table == l->reftable_clusters) {
            break;
        }
        l->refblocks = blocks;
        l->reftable_clusters = table;
    }
    if (l->reftable_clusters << l->cluster_bits > QCOW2_REFTABLE_MAX_BYTES) {
        return blk_error(-EFBIG, "qcow2: the refcount table would be over "
                         "%u MiB: use larger clusters or less "
                         "preallocation", QCOW2_REFTABLE_MAX_BYTES >> 20);
    }
    l->reftable = 1;
    l->first_block = l->reftable + l->reftable_clusters;
    l->l1 = l->first_block + l->refblocks;
    l->first_l2 = l->l1 + l->l1_clusters;
    l->first_data = l->first_l2 + l->l2_tables;
    l->end = l->first_data + l->data_clusters;
    return 0;
}

/* ---- writing ---------------------------------------------------------------- */

static int pwrite_all(int fd, const void *buf, size_t bytes, uint64_t at)
{
    while (bytes) {
        ssize_t n = pwrite(fd, buf, bytes, (off_t)at);
        if (n < 0) {
            return blk_error(-errno, "qcow2: writing the new image: %s",
                             strerror(errno));
        }
        buf = (const char *)buf + n;
        bytes -= (size_t)n;
        at += (uint64_t)n;
    }
    return 0;
}

/* An extension at *at: type, length, data padded to 8. */
static void put_extension(uint8_t *buf, uint32_t *at, uint32_t type,
                          const void *data, uint32_t len)
{
    qcow2_put32(buf + *at, type);
    qcow2_put32(buf + *at + 4, len);
    memcpy(buf + *at + 8, data, len);
    *at += 8 + ((len + 7) & ~7u);
}

uint32_t qcow2_feature_table(uint8_t *out)
{
    static const struct {
        uint8_t type, bit;
        const char *name;
    } names[] = {
        { 0, 0, "dirty bit" }, { 0, 1, "corrupt bit" },
        { 0, 2, "external data file" }, { 0, 3, "compression type" },
        { 0, 4, "extended L2 entries" }, { 1, 0, "lazy refcounts" },
        { 2, 0, "bitmaps" }, { 2, 1, "raw external data" },
    };
    uint32_t n = sizeof(names) / sizeof(names[0]);

    memset(out, 0, n * 48);
    for (uint32_t i = 0; i < n; i++) {
        out[i * 48] = names[i].type;
        out[i * 48 + 1] = names[i].bit;
        memcpy(out + i * 48 + 2, names[i].name, strlen(names[i].name));
    }
    return n * 48;
}

static int write_header(int fd, const struct create_opts *o, uint64_t size,
                        const struct layout *l)
{
    uint8_t *buf = calloc(1, l->cs);
    uint8_t table[8 * 48];

    if (!buf) {
        return -ENOMEM;
    }
    qcow2_put32(buf, QCOW2_MAGIC);
    qcow2_put32(buf + 4, o->version);
    qcow2_put32(buf + 20, l->cluster_bits);
    qcow2_put64(buf + 24, size);
    qcow2_put32(buf + 36, (uint32_t)l->l1_size);
    qcow2_put64(buf + 40, l->l1_size ? l->l1 << l->cluster_bits : 0);
    qcow2_put64(buf + 48, l->reftable << l->cluster_bits);
    qcow2_put32(buf + 56, (uint32_t)l->reftable_clusters);
    uint32_t at = 72;
    if (o->version == 3) {
        qcow2_put64(buf + 72, (o->extended_l2 ? QCOW2_INCOMPAT_EXTL2 : 0) |
                        (o->compression_type ? QCOW2_INCOMPAT_COMPRESSION
                                             : 0));
        qcow2_put64(buf + 80, o->lazy_refcounts ? QCOW2_COMPAT_LAZY_REFCOUNTS : 0);
        qcow2_put32(buf + 96, log2_of(o->refcount_bits));
        qcow2_put32(buf + 100, V3_HEADER_BYTES);
        buf[104] = (uint8_t)o->compression_type;
        at = V3_HEADER_BYTES;
    }
    if (o->backing_fmt && o->backing_file) {
        put_extension(buf, &at, 0xe2792acau, o->backing_fmt,
                      (uint32_t)strlen(o->backing_fmt));
    }
    /* As QEMU: no room for names in a cluster of 512 bytes. */
    if (o->version == 3 && l->cs > 512) {
        put_extension(buf, &at, 0x6803f857u, table, qcow2_feature_table(table));
    }
    at += 8;        /* the end of the extensions: zeroes */
    if (o->backing_file) {
        uint32_t len = (uint32_t)strlen(o->backing_file);
        if (at + len > l->cs) {
            free(buf);
            return blk_error(-EINVAL, "qcow2: the backing file name does "
                             "not fit in the first cluster");
        }
        qcow2_put64(buf + 8, at);
        qcow2_put32(buf + 16, len);
        memcpy(buf + at, o->backing_file, len);
    }
    int ret = pwrite_all(fd, buf, l->cs, 0);
    free(buf);
    return ret;
}

/* Every cluster up to the end counts once. */
static int write_refcounts(int fd, unsigned refcount_bits,
                           const struct layout *l)
{
    uint8_t *buf = calloc(1, l->cs);
    int ret = buf ? 0 : -ENOMEM;

    for (uint64_t i = 0; ret == 0 && i < l->refblocks; i++) {
        memset(buf, 0, l->cs);
        for (uint64_t e = 0; e < l->refblock_entries; e++) {
            uint64_t c = i * l->refblock_entries + e;
            if (c >= l->end) {
                break;
            }
            uint64_t bit = e * refcount_bits;
            if (refcount_bits < 8) {
                buf[bit / 8] |= (uint8_t)(1u << (bit % 8));
            } else {
                buf[bit / 8 + refcount_bits / 8 - 1] = 1;
            }
        }
        ret = pwrite_all(fd, buf, l->cs, (l->first_block + i) << l->cluster_bits);
    }
    /* The table, a cluster at a time. */
    for (uint64_t c = 0; ret == 0 && c < l->reftable_clusters; c++) {
        memset(buf, 0, l->cs);
        for (uint64_t e = 0; e < l->cs / 8; e++) {
            uint64_t block = c * (l->cs / 8) + e;
            if (block < l->refblocks) {
                qcow2_put64(buf + e * 8, (l->first_block + block) << l->cluster_bits);
            }
        }
        ret = pwrite_all(fd, buf, l->cs, (l->reftable + c) << l->cluster_bits);
    }
    free(buf);
    return ret;
}

/* The L1 table and, preallocated, full L2 tables over the data. */
static int write_tables(int fd, const struct create_opts *o,
                        const struct layout *l)
{
    uint64_t entry_bytes = o->extended_l2 ? 16 : 8, per_l2 = l->cs / entry_bytes;
    size_t l1_bytes = (size_t)(l->l1_size * 8);
    uint8_t *buf = calloc(1, l->cs > l1_bytes ? l->cs : l1_bytes);
    int ret = buf ? 0 : -ENOMEM;

    if (ret == 0 && l->l2_tables) {
        for (uint64_t i = 0; i < l->l1_size; i++) {
            qcow2_put64(buf + i * 8, ((l->first_l2 + i) << l->cluster_bits) |
                               QCOW2_OFLAG_COPIED);
        }
    }
    /* Unpadded, as QEMU leaves it: the file ends with the L1 table. */
    if (ret == 0 && l1_bytes) {
        ret = pwrite_all(fd, buf, l1_bytes, l->l1 << l->cluster_bits);
    }
    for (uint64_t t = 0; ret == 0 && t < l->l2_tables; t++) {
        memset(buf, 0, l->cs);
        for (uint64_t e = 0; e < per_l2; e++) {
            uint64_t data = t * per_l2 + e;
            if (data >= l->data_clusters) {
                break;
            }
            qcow2_put64(buf + e * entry_bytes,
                  ((l->first_data + data) << l->cluster_bits) |
                      QCOW2_OFLAG_COPIED);
            /* With extended L2 entries, as QEMU: the subclusters stay
             * unallocated (a backing file's data shows through), only
             * the space is reserved; the bitmap is zeroes. */
        }
        ret = pwrite_all(fd, buf, l->cs, (l->first_l2 + t) << l->cluster_bits);
    }
    free(buf);
    return ret;
}

/* Preallocated data: a sparse tail, reserved blocks, or written zeroes. */
static int write_data(int fd, enum prealloc prealloc, const struct layout *l)
{
    uint64_t start = l->first_data << l->cluster_bits;
    uint64_t bytes = l->data_clusters << l->cluster_bits;

    if (!bytes) {
        return 0;
    }
    if (ftruncate(fd, (off_t)(start + bytes)) < 0) {
        return blk_error(-errno, "qcow2: sizing the new image: %s",
                         strerror(errno));
    }
    if (prealloc == PREALLOC_FALLOC) {
        int err = posix_fallocate(fd, (off_t)start, (off_t)bytes);
        return err ? blk_error(-err, "qcow2: preallocating: %s",
                               strerror(err))
                   : 0;
    }
    if (prealloc == PREALLOC_FULL) {
        static const uint8_t zeroes[1 << 16];
        for (uint64_t done = 0; done < bytes; done += sizeof(zeroes)) {
            uint64_t len = bytes - done < sizeof(zeroes) ? bytes - done
                                                         : sizeof(zeroes);
            int ret = pwrite_all(fd, zeroes, len, start + done);
            if (ret < 0) {
                return ret;
            }
        }
    }
    return 0;
}

/* The size of the backing image, for a size left 0. */
static int backing_size(const char *path, const struct create_opts *o,
                        uint64_t *size)
{
    char *spec, *at = NULL;
    const char *slash = strrchr(path, '/');
    struct coblk_dev *dev;

    /* Relative to the new image's directory, as it will be opened. */
    if (o->backing_file[0] != '/' && slash &&
        asprintf(&at, "%.*s/%s", (int)(slash - path), path,
                 o->backing_file) < 0) {
        return -ENOMEM;
    }
    if (asprintf(&spec, "%s:file:%s", o->backing_fmt,
                 at ? at : o->backing_file) < 0) {
        free(at);
        return -ENOMEM;
    }
    int ret = coblk_dev_open(spec, COBLK_OPEN_RDONLY, &dev);
    free(spec);
    free(at);
    if (ret == 0) {
        *size = (uint64_t)coblk_dev_size(dev);
        coblk_dev_close(dev);
    }
    return ret;
}

/* Writes the planned image at path; removes it on failure. */
static int write_image(const char *path, const struct create_opts *o,
                       uint64_t size, const struct layout *l)
{
    int fd = blk_create_file(path, "qcow2", &o->file);
    if (fd < 0) {
        return fd;
    }
    int ret = write_header(fd, o, size, l);
    if (ret == 0) {
        ret = write_refcounts(fd, (unsigned)o->refcount_bits, l);
    }
    if (ret == 0) {
        ret = write_tables(fd, o, l);
    }
    if (ret == 0) {
        ret = write_data(fd, o->prealloc, l);
    }
    if (ret == 0 && fsync(fd) < 0) {
        ret = blk_error(-errno, "qcow2: %s: %s", path, strerror(errno));
    }
    close(fd);
    if (ret < 0) {
        unlink(path);
    }
    return ret;
}

int qcow2_create(const char *path, uint64_t size, const char *options)
{
    struct create_opts o = { .cluster_size = DEFAULT_CLUSTER, .version = 3,
                             .refcount_bits = 16,
                             .file = BLK_FILE_OPTS_DEFAULT };
    struct layout l = { 0 };
    int ret = blk_parse_options(options, create_option, &o);

    if (ret == 0 && size == 0 && o.backing_file && o.backing_fmt) {
        ret = backing_size(path, &o, &size);
    }
    if (ret == 0) {
        ret = check_opts(&o, size);
    }
    if (ret == 0) {
        ret = plan_layout(&o, size, &l);
    }
    if (ret == 0) {
        ret = write_image(path, &o, size, &l);
    }
    free(o.backing_file);
    free(o.backing_fmt);
    return ret;
}

/* The refcount table and blocks that count `clusters` clusters and
 * themselves, in bytes (QEMU's arithmetic, so that the figures agree). */
static uint64_t refcount_metadata(uint64_t clusters, uint64_t cs,
                                  uint64_t refcount_bits)
{
    uint64_t per_block = cs * 8 / refcount_bits, per_table = cs / 8;
    uint64_t blocks = 0, table = 0, last;

    do {
        last = table;
        blocks = (clusters + table + blocks + per_block - 1) / per_block;
        table = (blocks + per_table - 1) / per_table;
    } while (last != table);
    return (blocks + table) * cs;
}

int qcow2_measure(const char *options, uint64_t size, uint64_t *metadata,
                  uint64_t *cluster_size, bool *data_is_size)
{
    struct create_opts o = { .cluster_size = DEFAULT_CLUSTER, .version = 3,
                             .refcount_bits = 16,
                             .file = BLK_FILE_OPTS_DEFAULT };
    int ret = blk_parse_options(options, create_option, &o);

    free(o.backing_file);
    free(o.backing_fmt);
    if (ret == 0) {
        ret = check_opts(&o, size);
    }
    if (ret < 0) {
        return ret;
    }
    uint64_t cs = o.cluster_size, entry = o.extended_l2 ? 16 : 8;
    uint64_t aligned = (size + cs - 1) / cs * cs;
    uint64_t l2_entries = aligned / cs;
    l2_entries = (l2_entries + cs / entry - 1) / (cs / entry) * (cs / entry);
    uint64_t l1_entries = l2_entries * entry / cs;
    l1_entries = (l1_entries + cs / 8 - 1) / (cs / 8) * (cs / 8);
    uint64_t meta = cs + l2_entries * entry + l1_entries * 8;
    meta += refcount_metadata((meta + aligned) / cs, cs, o.refcount_bits);
    *metadata = meta;
    *cluster_size = cs;
    *data_is_size = o.prealloc == PREALLOC_FALLOC ||
                    o.prealloc == PREALLOC_FULL;
    return 0;
}
