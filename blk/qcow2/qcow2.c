/*
 * qcow2:[OPTIONS:]CHILD: a qcow2 image (version 2 or 3) over any device,
 * with its backing chain.  OPTIONS, comma-separated:
 *   l2-cache-size=SIZE   memory for L2 tables (default 1M: 8 GiB of
 *                        64 KiB clusters)
 *   probed=on            the caller guessed the format: the image may not
 *                        name a backing file, which a guessed image could
 *                        use to read any file of its opener's
 *   snapshot=ID-OR-NAME  the contents of an internal snapshot (read-only)
 *
 * A backing file opens read-only with the format its overlay records
 * (probed, as above, when it records none), its name relative to the
 * overlay's directory; with COBLK_OPEN_NO_BACKING it stays closed, and
 * the image's data cannot change (its header can: coblk_set_backing()).
 */
#include "config.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "qcow2.h"

struct qcow2_options {
    uint64_t l2_cache_size;
    bool probed;
    char *snapshot;         /* malloc'd, or NULL */
};

static int qcow2_option(void *opaque, const char *key, const char *value)
{
    struct qcow2_options *opts = opaque;

    if (!strcmp(key, "l2-cache-size")) {
        if (blk_parse_size(value, &opts->l2_cache_size) < 0 ||
            opts->l2_cache_size > (1ull << 32)) {
            return blk_error(-EINVAL, "qcow2: bad l2-cache-size '%s' (bytes "
                             "up to 4G, e.g. 4M)", value);
        }
        return 0;
    }
    if (!strcmp(key, "probed")) {
        if (strcmp(value, "on") && strcmp(value, "off")) {
            return blk_error(-EINVAL, "qcow2: probed is on or off, not "
                             "'%s'", value);
        }
        opts->probed = !strcmp(value, "on");
        return 0;
    }
    if (!strcmp(key, "snapshot")) {
        free(opts->snapshot);
        opts->snapshot = strdup(value);
        return opts->snapshot ? 0 : blk_error(-ENOMEM, "out of memory");
    }
    return blk_error(-EINVAL, "qcow2: unknown option '%s' (l2-cache-size, "
                     "snapshot, probed)", key);
}

/* ---- the backing chain ------------------------------------------------------ */

/* The images this thread is opening, outermost first: a backing file that
 * is one of them makes a loop. */
#define CHAIN_MAX (BLK_DEPTH_MAX + 1)
static __thread struct {
    unsigned len;
    dev_t dev[CHAIN_MAX];
    ino_t ino[CHAIN_MAX];
} opening;

static bool being_opened(const struct stat *st)
{
    for (unsigned i = 0; i < opening.len; i++) {
        if (opening.dev[i] == st->st_dev && opening.ino[i] == st->st_ino) {
            return true;
        }
    }
    return false;
}

char *qcow2_backing_path(const char *overlay, const char *name)
{
    const char *slash = overlay ? strrchr(overlay, '/') : NULL;
    char *path;

    if (name[0] == '/' || !slash) {
        return strdup(name);
    }
    int dir_len = (int)(slash - overlay);
    return asprintf(&path, "%.*s/%s", dir_len, overlay, name) < 0 ? NULL
                                                                  : path;
}

/* The spec that opens the backing file at path as `format`. */
static int backing_spec(const char *path, const char *format, char **spec)
{
    char probed[16];

    if (!format) {
        int ret = coblk_probe(path, probed, sizeof(probed));
        if (ret < 0) {
            return blk_error(ret, "qcow2: backing file %s: %s", path,
                             coblk_last_error());
        }
    }
    const char *fmt = format ? format : probed;
    if (strcmp(fmt, "qcow2") && strcmp(fmt, "raw")) {
        return blk_error(-ENOTSUP, "qcow2: backing file %s is in format "
                         "'%s' (coblk reads qcow2 and raw)", path, fmt);
    }
    bool guessed = !format && !strcmp(fmt, "qcow2");
    if (asprintf(spec, "%s:%sfile:%s", fmt, guessed ? "probed=on:" : "",
                 path) < 0) {
        return blk_error(-ENOMEM, "out of memory");
    }
    return 0;
}

static int open_backing(struct coblk_dev *dev, qcow2_state *s, bool probed)
{
    const char *name = s->h.backing_name;
    bool opens = !(dev->flags & COBLK_OPEN_NO_BACKING);

    if (probed && opens) {
        return blk_error(-EACCES, "qcow2: %s names a backing file (%s) but "
                         "its format was guessed: name the format "
                         "(qcow2:FILE) to follow it",
                         blk_dev_filename(s->file), name);
    }
    bool is_path = !strstr(name, "://") && strncmp(name, "json:", 5);
    if (!is_path && opens) {
        return blk_error(-ENOTSUP, "qcow2: backing file '%s' is not a path "
                         "(coblk follows paths only)", name);
    }
    s->backing_path = is_path ? qcow2_backing_path(blk_dev_filename(s->file),
                                                   name)
                              : strdup(name);
    if (!s->backing_path) {
        return blk_error(-ENOMEM, "out of memory");
    }
    if (!opens) {
        s->backing_closed = true;
        return 0;
    }
    struct stat st;
    if (stat(s->backing_path, &st) == 0 && being_opened(&st)) {
        return blk_error(-ELOOP, "qcow2: the backing chain loops: %s is its "
                         "own backing file, or one of its overlays'",
                         s->backing_path);
    }
    char *spec = NULL;
    int ret = backing_spec(s->backing_path, s->h.backing_format, &spec);
    if (ret == 0) {
        ret = blk_open_backing(dev, spec, &s->backing);
    }
    free(spec);
    return ret;
}

/* ---- open and close ---------------------------------------------------------- */

static int load_l1(qcow2_state *s)
{
    size_t bytes = (size_t)s->h.l1_size * 8;
    int ret = qcow2_reserve_l1(s, s->h.l1_size);

    if (ret < 0) {
        return ret;
    }
    /* A snapshot's table may run past the end of the file (the active
     * one was checked at open). */
    ret = bytes ? qcow2_pread_zeroed(s->file, s->l1, bytes, s->h.l1_offset)
                : 0;
    if (ret < 0) {
        return blk_error(ret, "qcow2: reading the L1 table: %s",
                         strerror(-ret));
    }
    for (uint32_t i = 0; i < s->h.l1_size; i++) {
        s->l1[i] = be64toh(s->l1[i]);
    }
    return 0;
}

/* Refuses what this image may not be opened for.  An image marked
 * corrupt opens read-write only for a repair, and then stays closed to
 * every other write. */
static int check_access(const struct coblk_dev *dev, qcow2_state *s)
{
    const char *name = blk_dev_filename(s->file);

    if (dev->flags & COBLK_OPEN_RDONLY ||
        !(s->h.incompatible & QCOW2_INCOMPAT_CORRUPT)) {
        return 0;
    }
    if (!(dev->flags & COBLK_OPEN_CHECK)) {
        return blk_error(-EACCES, "qcow2: %s is marked corrupt: open it "
                         "read-only, or repair it (qemu-img check -r all)",
                         name);
    }
    s->corrupt = true;
    return 0;
}

int coroutine_fn qcow2_write_incompatible(qcow2_state *s, uint64_t bits)
{
    uint64_t be = htobe64(bits);
    struct iovec iov = { &be, sizeof(be) };
    int ret = coblk_co_pwritev(s->file, 72, sizeof(be), &iov, 1, 0);

    if (ret == 0) {
        ret = coblk_co_flush(s->file);
    }
    if (ret == 0) {
        s->h.incompatible = bits;
    }
    return ret;
}

/* Writes bits as the image's autoclear features, durably: the format
 * asks a program to clear the bits of features it does not keep up with
 * before it writes. */
static int coroutine_fn write_autoclear(qcow2_state *s, uint64_t bits)
{
    uint8_t be[8];
    struct iovec iov = { be, sizeof(be) };

    qcow2_put64(be, bits);
    int ret = coblk_co_pwritev(s->file, 88, sizeof(be), &iov, 1, 0);
    if (ret == 0) {
        ret = coblk_co_flush(s->file);
    }
    if (ret < 0) {
        return blk_error(ret, "qcow2: clearing autoclear features: %s",
                         strerror(-ret));
    }
    __atomic_store_n(&s->h.autoclear, bits, __ATOMIC_RELEASE);
    return 0;
}

/* At a read-write open: features coblk does not know at all. */
static int coroutine_fn clear_unknown_autoclear(void *opaque)
{
    qcow2_state *s = opaque;

    return write_autoclear(s, s->h.autoclear & QCOW2_AUTOCLEAR_BITMAPS);
}

/* Bitmaps, which coblk lists but does not update, are declared stale
 * before the guest's data first changes, not at open: a check -r, an
 * amend or a snapshot listed leave them valid, as in QEMU. */
int coroutine_fn qcow2_data_will_change(struct coblk_dev *dev)
{
    qcow2_state *s = dev->opaque;
    int ret = 0;

    if (s->h.version < 3 ||
        !__atomic_load_n(&s->h.autoclear, __ATOMIC_ACQUIRE)) {
        return 0;
    }
    qcow2_lock(s);
    if (s->h.autoclear) {
        ret = write_autoclear(s, 0);
    }
    if (ret == 0) {
        qcow2_free_bitmaps(s);      /* stale now: their clusters are leaks */
    }
    qcow2_unlock(s);
    return ret;
}

/* An image left dirty (lazy refcounts, not closed cleanly) gets its
 * refcounts repaired before anything is written, as QEMU does, then
 * the bit cleared. */
static int coroutine_fn repair_dirty(void *opaque)
{
    qcow2_state *s = opaque;
    struct coblk_check check = {
        .repair = COBLK_CHECK_REPAIR_LEAKS | COBLK_CHECK_REPAIR_ERRORS };
    int ret = qcow2_check_image(s, &check);

    if (ret == 0 && check.check_errors) {
        ret = blk_error(-EIO, "qcow2: %s was not closed cleanly and its "
                        "refcounts could not all be repaired: open it "
                        "read-only", blk_dev_filename(s->file));
    }
    if (ret < 0) {
        return ret;
    }
    return qcow2_write_incompatible(s, s->h.incompatible &
                                           ~(uint64_t)QCOW2_INCOMPAT_DIRTY);
}

/* Remembers the image's file while its backing chain opens. */
static bool push_opening(const qcow2_state *s)
{
    const char *path = blk_dev_filename(s->file);
    struct stat st;

    if (!path || stat(path, &st) < 0 || opening.len == CHAIN_MAX) {
        return false;
    }
    opening.dev[opening.len] = st.st_dev;
    opening.ino[opening.len] = st.st_ino;
    opening.len++;
    return true;
}

static int open_image(struct coblk_dev *dev, qcow2_state *s,
                      const struct qcow2_options *opts)
{
    int ret = qcow2_read_header(s->file, &s->h);

    if (ret == 0) {
        ret = check_access(dev, s);
    }
    if (ret < 0) {
        return ret;
    }
    s->cluster_size = 1ull << s->h.cluster_bits;
    bool extended = s->h.incompatible & QCOW2_INCOMPAT_EXTL2;
    s->l2_entry_bytes = extended ? 16 : 8;
    s->l2_bits = s->h.cluster_bits - (extended ? 4 : 3);
    s->subcluster_bits = s->h.cluster_bits - (extended ? 5 : 0);
    uint32_t slice = s->cluster_size < QCOW2_SLICE_BYTES
                         ? (uint32_t)s->cluster_size : QCOW2_SLICE_BYTES;
    ret = qcow2_read_snapshots(s);
    if (ret == 0) {
        ret = qcow2_read_bitmaps(s);
    }
    if (ret == 0 && opts->snapshot) {
        ret = dev->flags & COBLK_OPEN_RDONLY
                  ? qcow2_select_snapshot(s, opts->snapshot)
                  : blk_error(-EINVAL, "qcow2: a snapshot opens read-only");
    }
    if (ret == 0) {
        ret = load_l1(s);
    }
    if (ret == 0) {
        ret = qcow2_refcount_open(s);
    }
    if (ret == 0) {
        ret = qcow2_cache_init(&s->l2_cache, opts->l2_cache_size, slice,
                               &s->refcount_cache);
    }
    if (ret == 0 && !(dev->flags & COBLK_OPEN_RDONLY)) {
        /* New clusters go past the end of the file. */
        ret = blk_make_growable(s->file);
        if (ret < 0) {
            char why[200];
            snprintf(why, sizeof(why), "%s", coblk_last_error());
            ret = blk_error(ret, "qcow2: writing needs a file the image can "
                            "grow in, and %s; open it read-only", why);
        }
    }
    if (ret == 0 && !(dev->flags & COBLK_OPEN_RDONLY)) {
        ret = qcow2_meta_build(s);
    }
    if (ret == 0 && !(dev->flags & COBLK_OPEN_RDONLY) && s->h.version >= 3 &&
        (s->h.autoclear & ~(uint64_t)QCOW2_AUTOCLEAR_BITMAPS)) {
        ret = blk_run_in_coroutine(clear_unknown_autoclear, s);
    }
    /* Opened for a check, the check repairs it, and says what it did. */
    if (ret == 0 && !(dev->flags & (COBLK_OPEN_RDONLY | COBLK_OPEN_CHECK)) &&
        (s->h.incompatible & QCOW2_INCOMPAT_DIRTY)) {
        ret = blk_run_in_coroutine(repair_dirty, s);
    }
    if (ret == 0 && s->h.backing_name) {
        bool pushed = push_opening(s);
        ret = open_backing(dev, s, opts->probed);
        opening.len -= pushed;
    }
    return ret;
}

static void free_state(qcow2_state *s)
{
    if (s->backing) {
        coblk_dev_close(s->backing);
    }
    if (s->file) {
        coblk_dev_close(s->file);
    }
    qcow2_cache_free(&s->l2_cache);
    qcow2_refcount_close(s);
    qcow2_frees_close(s);
    qcow2_meta_free(s);
    qcow2_free_snapshots(s);
    qcow2_free_bitmaps(s);
    free(s->backing_path);
    qcow2_header_free(&s->h);
    qcow2_free_l1_views(s);
    free(s);
}

static int qcow2_open(struct coblk_dev *dev, const char *args)
{
    struct qcow2_options opts = { .l2_cache_size = QCOW2_DEFAULT_L2_CACHE };
    char *options;
    const char *child_spec;
    int ret = blk_split_options("qcow2", args, &options, &child_spec);

    if (ret < 0) {
        return ret;
    }
    ret = blk_parse_options(options, qcow2_option, &opts);
    free(options);
    qcow2_state *s = ret == 0 ? calloc(1, sizeof(*s)) : NULL;
    if (ret == 0 && !s) {
        ret = blk_error(-ENOMEM, "out of memory");
    }
    if (ret == 0) {
        coblk_co_mutex_init(&s->lock);
        ret = blk_open_child(dev, child_spec, &s->file);
    }
    if (ret == 0) {
        ret = open_image(dev, s, &opts);
    }
    free(opts.snapshot);
    if (ret < 0) {
        if (s) {
            free_state(s);
        }
        return ret;
    }
    dev->opaque = s;
    dev->file = s->file;
    dev->backing = s->backing;
    dev->size = s->h.size;
    return 0;
}

static void qcow2_info(struct coblk_dev *dev, struct coblk_image_info *info)
{
    qcow2_state *s = dev->opaque;
    const qcow2_header *h = &s->h;

    info->cluster_size = s->cluster_size;
    info->backing_file = h->backing_name;
    info->backing_format = h->backing_format;
    info->full_backing_file = s->backing_path;
    info->compat = h->version == 2 ? "0.10" : "1.1";
    info->compression_type = h->compression_type ? "zstd" : "zlib";
    info->refcount_bits = s->refcount_bits;
    info->lazy_refcounts = h->compatible & QCOW2_COMPAT_LAZY_REFCOUNTS;
    info->extended_l2 = h->incompatible & QCOW2_INCOMPAT_EXTL2;
    info->corrupt = h->incompatible & QCOW2_INCOMPAT_CORRUPT;
    info->dirty = h->incompatible & QCOW2_INCOMPAT_DIRTY;
    info->nb_snapshots = h->nb_snapshots;
    info->snapshots = s->snapshot_info;
    info->nb_bitmaps = s->nb_bitmaps;
    info->bitmaps = s->bitmap_info;
    info->stale_bitmaps = s->stale_bitmaps;
}

static void qcow2_close(struct coblk_dev *dev)
{
    /* What is cached goes to disk; a failure can only be told. */
    if (!(dev->flags & COBLK_OPEN_RDONLY) && coblk_flush(dev) < 0) {
        char why[256];
        snprintf(why, sizeof(why), "%s", coblk_last_error());
        blk_error(-EIO, "qcow2: closing %s: %s", blk_dev_filename(dev), why);
    }
    free_state(dev->opaque);
}

const blk_driver blk_qcow2_driver = {
    .name = "qcow2",
    .can_compress = true,
    .open = qcow2_open,
    .close = qcow2_close,
    .co_preadv = qcow2_co_preadv,
    .start_rw = qcow2_start_rw,
    .read_unpin = qcow2_read_unpin_op,
    .co_copy_range_from = qcow2_co_copy_range_from,
    .co_pwritev = qcow2_co_pwritev,
    .co_flush = qcow2_co_flush,
    .co_pdiscard = qcow2_co_pdiscard,
    .co_pwrite_zeroes = qcow2_co_pwrite_zeroes,
    .co_block_status = qcow2_co_block_status,
    .co_truncate = qcow2_co_truncate,
    .create = qcow2_create,
    .measure = qcow2_measure,
    .co_check = qcow2_co_check,
    .co_set_backing = qcow2_co_set_backing,
    .co_make_empty = qcow2_co_make_empty,
    .co_amend = qcow2_co_amend,
    .co_snapshot_create = qcow2_co_snapshot_create,
    .co_snapshot_apply = qcow2_co_snapshot_apply,
    .co_snapshot_delete = qcow2_co_snapshot_delete,
    .co_bitmap_edit = qcow2_co_bitmap_edit,
    .unallocated_reads_zeroes = true,
    .info = qcow2_info,
};
