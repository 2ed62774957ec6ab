/*
 * Devices: opening a spec with the right driver, closing after a drain,
 * and the thread-local error message every public call leaves behind.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "blk-int.h"
#include "nbd/uri.h"
#include "optlist.h"

static const blk_driver *const drivers[] = {
    &blk_file_driver,
    &blk_null_driver,
    &blk_blkdebug_driver,
    &blk_raw_driver,
    &blk_qcow2_driver,
    &blk_nbd_driver,
#ifdef HAVE_RBD
    &blk_rbd_driver,
#endif
};

#ifdef HAVE_RBD
#define DRIVER_NAMES "file, null, raw, qcow2, blkdebug, nbd, rbd"
#else
#define DRIVER_NAMES "file, null, raw, qcow2, blkdebug, nbd"
#endif

#define ERROR_MAX 512
static __thread char last_error[ERROR_MAX];

const char *coblk_last_error(void)
{
    return last_error;
}

int blk_error(int err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(last_error, sizeof(last_error), fmt, ap);
    va_end(ap);
    return err;
}

int blk_parse_number(const char *drv, const char *key, const char *text,
                     uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    uint64_t value = 0;

    /* strtoull alone would take "-1" (as 2^64 - 1) and leading spaces. */
    if (isdigit((unsigned char)*text)) {
        errno = 0;
        value = strtoull(text, &end, 10);
    }
    if (!isdigit((unsigned char)*text) || errno || *end || value < min ||
        value > max) {
        return blk_error(-EINVAL, "%s: %s must be a whole number from "
                         "%" PRIu64 " to %" PRIu64 ", not '%s'", drv, key,
                         min, max, text);
    }
    *out = value;
    return 0;
}

int blk_parse_size(const char *text, uint64_t *out)
{
    static const struct {
        char suffix;
        unsigned shift;
    } units[] = { { 'k', 10 }, { 'm', 20 }, { 'g', 30 }, { 't', 40 } };
    char *end;

    if (!isdigit((unsigned char)*text)) {
        return -EINVAL;
    }
    errno = 0;
    uint64_t value = strtoull(text, &end, 10);
    if (errno) {
        return -EINVAL;
    }
    unsigned shift = 0;
    if (*end) {
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            if (tolower((unsigned char)*end) == units[i].suffix) {
                shift = units[i].shift;
            }
        }
        /* Accept "1G", "1g", "1GiB", "1GB": all binary, as qemu-img does. */
        if (!shift || (end[1] && strcasecmp(end + 1, "b") &&
                       strcasecmp(end + 1, "ib"))) {
            return -EINVAL;
        }
    }
    if (shift && value > (UINT64_MAX >> shift)) {
        return -EINVAL;
    }
    *out = value << shift;
    return 0;
}

int blk_parse_options(const char *args,
                      int (*fn)(void *opaque, const char *key,
                                const char *value),
                      void *opaque)
{
    char *copy = strdup(args ? args : "");
    char *at = copy;
    int ret = 0;

    if (!copy) {
        return -ENOMEM;
    }
    for (char *item = optlist_next(&at); item && ret == 0;
         item = optlist_next(&at)) {
        char *eq = strchr(item, '=');
        if (!eq) {
            ret = blk_error(-EINVAL, "option '%s' has no value (key=value)",
                            item);
            break;
        }
        *eq = '\0';
        ret = fn(opaque, item, eq + 1);
    }
    free(copy);
    return ret;
}

/* An option list starts with a word and '=': "l2-cache-size=1M". */
static bool starts_options(const char *args)
{
    const char *c = args;

    while (isalnum((unsigned char)*c) || *c == '-' || *c == '_') {
        c++;
    }
    return c > args && *c == '=';
}

int blk_split_options(const char *drv, const char *args, char **options,
                      const char **child)
{
    const char *colon = starts_options(args) ? strchr(args, ':') : NULL;
    size_t len = colon ? (size_t)(colon - args) : 0;

    if (starts_options(args) && !colon) {
        return blk_error(-EINVAL, "%s: options '%s' but no image after "
                         "them (%s:OPTIONS:FILE)", drv, args, drv);
    }
    *child = colon ? colon + 1 : args;
    if (!**child) {
        return blk_error(-EINVAL, "%s: no image (%s:[OPTIONS:]FILE)", drv,
                         drv);
    }
    *options = strndup(args, len);
    return *options ? 0 : blk_error(-ENOMEM, "out of memory");
}

const char *blk_dev_filename(const struct coblk_dev *dev)
{
    while (dev && !dev->filename) {
        dev = dev->file;
    }
    return dev ? dev->filename : NULL;
}

int64_t blk_allocated_bytes(struct coblk_dev *dev)
{
    while (dev && !dev->drv->allocated_bytes) {
        dev = dev->file;
    }
    return dev ? dev->drv->allocated_bytes(dev) : -ENOTSUP;
}

/* "name:args" with a known driver name, else a file path. */
static const blk_driver *driver_for(const char *spec, const char **args)
{
    const char *colon = strchr(spec, ':');

    if (nbd_is_uri(spec)) {
        *args = spec;           /* the whole URI */
        return &blk_nbd_driver;
    }
    if (colon) {
        size_t len = (size_t)(colon - spec);
        for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++) {
            if (strlen(drivers[i]->name) == len &&
                !strncmp(spec, drivers[i]->name, len)) {
                *args = colon + 1;
                return drivers[i];
            }
        }
    }
    *args = spec;
    return &blk_file_driver;
}

/* A name like "nul" in "nul:size=1G" that is no driver and no file. */
static bool looks_like_unknown_driver(const char *spec)
{
    const char *colon = strchr(spec, ':');
    struct stat st;

    if (!colon || colon == spec || stat(spec, &st) == 0) {
        return false;
    }
    for (const char *c = spec; c < colon; c++) {
        if (!isalnum((unsigned char)*c) && *c != '-' && *c != '_') {
            return false;
        }
    }
    return true;
}

/* Opens a node `depth` levels below the device the user opened. */
static int open_node(const char *spec, int flags, unsigned depth,
                     struct coblk_dev **out)
{
    if (depth > BLK_DEPTH_MAX) {
        /* Each level is a frame or more on a request's coroutine stack. */
        return blk_error(-EINVAL, "the device graph is deeper than %u "
                         "levels at '%.40s...': nest fewer drivers",
                         BLK_DEPTH_MAX, spec);
    }
    const char *args;
    const blk_driver *drv = driver_for(spec, &args);
    if (drv == &blk_file_driver && args == spec &&
        looks_like_unknown_driver(spec)) {
        return blk_error(-EINVAL,
                         "'%.*s' in '%s' is no driver (" DRIVER_NAMES
                         ") and '%s' is no file",
                         (int)(strchr(spec, ':') - spec), spec, spec, spec);
    }

    struct coblk_dev *dev = calloc(1, sizeof(*dev));
    if (!dev) {
        return blk_error(-ENOMEM, "out of memory");
    }
    dev->drv = drv;
    dev->flags = flags;
    dev->depth = depth;
    dev->mem_align = 1;
    dev->offset_align = 1;
    dev->max_transfer = 1u << 30;
    pthread_mutex_init(&dev->queues_lock, NULL);
    int ret = drv->open(dev, args);
    if (ret < 0) {
        pthread_mutex_destroy(&dev->queues_lock);
        free(dev->filename);
        free(dev);
        return ret;
    }
    /* A serial that tells devices apart: driver and a hash of the spec. */
    uint64_t hash = 14695981039346656037u;
    for (const char *c = spec; *c; c++) {
        hash = (hash ^ (unsigned char)*c) * 1099511628211u;
    }
    char serial[COBLK_ID_BYTES + 1];
    snprintf(serial, sizeof(serial), "coblk-%.4s-%08" PRIx64, drv->name,
             hash & 0xffffffffu);
    memcpy(dev->serial, serial, COBLK_ID_BYTES);
    *out = dev;
    return 0;
}

int coblk_dev_open(const char *spec, int flags, struct coblk_dev **out)
{
    if (!spec || !*spec || !out) {
        return blk_error(-EINVAL, "coblk_dev_open: no device spec");
    }
    if (flags & ~(COBLK_OPEN_RDONLY | COBLK_OPEN_DIRECT |
                  COBLK_OPEN_NO_BACKING | COBLK_OPEN_NO_FLUSH |
                  COBLK_OPEN_LOCK | COBLK_OPEN_CHECK)) {
        return blk_error(-EINVAL, "coblk_dev_open: unknown flags %#x",
                         (unsigned)flags);
    }
    return open_node(spec, flags, 0, out);
}

int blk_open_child(struct coblk_dev *parent, const char *spec,
                   struct coblk_dev **out)
{
    if (!*spec) {
        return blk_error(-EINVAL, "%s: no child device spec",
                         parent->drv->name);
    }
    return open_node(spec, parent->flags, parent->depth + 1, out);
}

int blk_make_growable(struct coblk_dev *dev)
{
    for (struct coblk_dev *d = dev; d; d = d->file) {
        if (!d->drv->can_grow && !d->drv->filter) {
            return blk_error(-ENOTSUP, "%s cannot grow to take what is "
                             "written past its end", d->drv->name);
        }
        if (d->drv->can_grow) {
            for (struct coblk_dev *g = dev; g != d->file; g = g->file) {
                g->growable = true;
            }
            return 0;
        }
    }
    return blk_error(-ENOTSUP, "%s cannot grow", dev->drv->name);
}

int blk_open_backing(struct coblk_dev *parent, const char *spec,
                     struct coblk_dev **out)
{
    int flags = (parent->flags | COBLK_OPEN_RDONLY) & ~COBLK_OPEN_NO_BACKING;
    return open_node(spec, flags, parent->depth + 1, out);
}

/* The image format named fmt (a driver that creates images), or NULL. */
static const blk_driver *format_named(const char *fmt)
{
    for (size_t i = 0; fmt && i < sizeof(drivers) / sizeof(drivers[0]); i++) {
        if (!strcmp(drivers[i]->name, fmt) && drivers[i]->create) {
            return drivers[i];
        }
    }
    return NULL;
}

int coblk_create(const char *fmt, const char *path, uint64_t size,
                 const char *options)
{
    const blk_driver *drv = format_named(fmt);

    if (!drv || !path || !*path) {
        return blk_error(-EINVAL, "coblk_create: unknown format '%s' (qcow2, "
                         "raw), or no path", fmt ? fmt : "");
    }
    const char *args;
    const blk_driver *proto = driver_for(path, &args);
    if (drv == &blk_raw_driver && proto->create_image) {
        if (options && *options) {
            return blk_error(-ENOTSUP, "coblk_create: a raw image on %s "
                             "takes no options ('%s')", proto->name,
                             options);
        }
        return proto->create_image(args, size);
    }
    return drv->create(path, size, options ? options : "");
}

int coblk_image_info(struct coblk_dev *dev, struct coblk_image_info *info,
                     size_t size)
{
    /* A program built before the bitmaps were added gets the rest. */
    size_t oldest = offsetof(struct coblk_image_info, nb_bitmaps);

    if (!dev || !info || size < oldest) {
        return blk_error(-EINVAL, "coblk_image_info: no device, or a struct "
                         "coblk_image_info of %zu bytes", size);
    }
    struct coblk_image_info all = { .format = dev->drv->name,
                                    .virtual_size = dev->size };
    if (dev->drv->info) {
        dev->drv->info(dev, &all);
    }
    memcpy(info, &all, size < sizeof(all) ? size : sizeof(all));
    return 0;
}

struct measure_call {
    struct coblk_dev *source;
    uint64_t cluster_size;
    uint64_t data;              /* out: clusters with data, in bytes */
};

/* Bytes of whole target clusters the source's data falls in, as qemu-img
 * measure counts them: zeroes and holes are not data. */
static int coroutine_fn source_data(void *opaque)
{
    struct measure_call *m = opaque;
    uint64_t size = m->source->size, cs = m->cluster_size;

    for (uint64_t at = 0; at < size;) {
        struct coblk_block_status bs;
        int ret = coblk_co_block_status(m->source, at, size - at, &bs);
        if (ret < 0) {
            return blk_error(ret, "coblk_measure: the source's block status: "
                             "%s", strerror(-ret));
        }
        uint64_t n = bs.bytes;
        uint32_t data = COBLK_BS_DATA | COBLK_BS_ALLOCATED;
        if (!(bs.flags & COBLK_BS_ZERO) && (bs.flags & data) == data) {
            /* To the end of its cluster, counted whole. */
            uint64_t end = (at + n + cs - 1) / cs * cs;
            m->data += at % cs + (end - at);
            n = end - at;
        }
        at += n;
    }
    return 0;
}

/* What QEMU sets aside for source's persistent bitmaps in a qcow2 image
 * of cluster_size clusters: every bit allocated, the tables, the
 * directory. */
static uint64_t bitmaps_bytes(struct coblk_dev *source, uint64_t cluster_size)
{
    struct coblk_image_info info;
    uint64_t bytes = 0, dir = 0;

    if (coblk_image_info(source, &info, sizeof(info)) < 0) {
        return 0;
    }
    for (unsigned i = 0; i < info.nb_bitmaps; i++) {
        const struct coblk_bitmap_info *bm = &info.bitmaps[i];
        uint64_t bits = source->size / bm->granularity +
                        !!(source->size % bm->granularity);
        uint64_t clusters = ((bits + 7) / 8 + cluster_size - 1) /
                            cluster_size;
        bytes += clusters * cluster_size +
                 (clusters * 8 + cluster_size - 1) / cluster_size *
                     cluster_size;
        dir += (24 + strlen(bm->name) + 7) & ~7ull;
    }
    return bytes + (dir + cluster_size - 1) / cluster_size * cluster_size;
}

int coblk_measure(const char *fmt, const char *options, uint64_t size,
                  struct coblk_dev *source, struct coblk_measure *out,
                  size_t out_size)
{
    const blk_driver *drv = format_named(fmt);

    if (!drv || !out || out_size < sizeof(*out)) {
        return blk_error(-EINVAL, "coblk_measure: unknown format '%s' "
                         "(qcow2, raw), or no room for the result",
                         fmt ? fmt : "");
    }
    if (source && !size) {
        size = source->size;
    }
    uint64_t metadata, cs;
    bool data_is_size;
    int ret = drv->measure(options ? options : "", size, &metadata, &cs,
                           &data_is_size);
    if (ret < 0) {
        return ret;
    }
    uint64_t aligned = (size + cs - 1) / cs * cs;
    struct measure_call m = { .source = source, .cluster_size = cs };
    if (source && !data_is_size) {
        ret = blk_run_in_coroutine(source_data, &m);
        if (ret < 0) {
            return ret;
        }
    }
    *out = (struct coblk_measure){
        .required = metadata + (data_is_size ? aligned : m.data),
        .fully_allocated = metadata + aligned,
        .bitmaps = source && drv == &blk_qcow2_driver
                       ? bitmaps_bytes(source, cs) : 0 };
    return 0;
}

int coroutine_fn blk_co_truncate_child(struct coblk_dev *parent,
                                       struct coblk_dev *child, uint64_t size,
                                       enum coblk_prealloc mode)
{
    int ret = child->drv->co_truncate
                  ? child->drv->co_truncate(child, size, mode)
                  : blk_error(-ENOTSUP, "%s: %s does not change size",
                              parent->drv->name, child->drv->name);

    if (ret == 0) {
        blk_set_size(child, size);
    }
    return ret;
}

struct truncate_call {
    struct coblk_dev *dev;
    uint64_t size;
    enum coblk_prealloc mode;
};

static int coroutine_fn truncate_in_coroutine(void *opaque)
{
    struct truncate_call *call = opaque;
    int ret = call->dev->drv->co_truncate(call->dev, call->size, call->mode);

    if (ret == 0) {
        blk_set_size(call->dev, call->size);
    }
    return ret;
}

int coblk_truncate_prealloc(struct coblk_dev *dev, uint64_t size,
                            enum coblk_prealloc mode)
{
    if (!dev || size > INT64_MAX || mode > COBLK_PREALLOC_FULL) {
        return blk_error(-EINVAL, "coblk_truncate: no device, a size over "
                         "%lld or an unknown preallocation mode",
                         (long long)INT64_MAX);
    }
    if (dev->flags & COBLK_OPEN_RDONLY) {
        return blk_error(-EROFS, "coblk_truncate: the device is read-only");
    }
    if (mode != COBLK_PREALLOC_OFF && size < dev->size) {
        return blk_error(-EINVAL, "Preallocation can only be used for "
                         "growing images");
    }
    if (!dev->drv->co_truncate) {
        return blk_error(-ENOTSUP, "coblk_truncate: %s devices do not "
                         "change size", dev->drv->name);
    }
    struct truncate_call call = { dev, size, mode };
    return blk_run_in_coroutine(truncate_in_coroutine, &call);
}

int coblk_truncate(struct coblk_dev *dev, uint64_t size)
{
    return coblk_truncate_prealloc(dev, size, COBLK_PREALLOC_OFF);
}

struct backing_call {
    struct coblk_dev *dev;
    const char *backing, *format;
};

static int coroutine_fn set_backing_in_coroutine(void *opaque)
{
    struct backing_call *call = opaque;

    return call->dev->drv->co_set_backing(call->dev, call->backing,
                                          call->format);
}

/* The checks coblk_set_backing() and coblk_make_empty() share. */
static int image_editable(struct coblk_dev *dev, const char *what, bool op)
{
    if (!dev) {
        return blk_error(-EINVAL, "%s: no device", what);
    }
    if (dev->flags & COBLK_OPEN_RDONLY) {
        return blk_error(-EROFS, "%s: the device is read-only", what);
    }
    if (!op) {
        return blk_error(-ENOTSUP, "%s: %s images cannot change so", what,
                         dev->drv->name);
    }
    return 0;
}

int coblk_set_backing(struct coblk_dev *dev, const char *backing,
                      const char *format)
{
    int ret = image_editable(dev, "coblk_set_backing",
                             dev && dev->drv->co_set_backing);
    if (ret < 0) {
        return ret;
    }
    if (format && !backing) {
        return blk_error(-EINVAL, "coblk_set_backing: a format for no "
                         "backing file");
    }
    struct backing_call call = { dev, backing, format };
    return blk_run_in_coroutine(set_backing_in_coroutine, &call);
}

static int coroutine_fn make_empty_in_coroutine(void *opaque)
{
    struct coblk_dev *dev = opaque;

    return dev->drv->co_make_empty(dev);
}

int coblk_make_empty(struct coblk_dev *dev)
{
    int ret = image_editable(dev, "coblk_make_empty",
                             dev && dev->drv->co_make_empty);
    return ret < 0 ? ret : blk_run_in_coroutine(make_empty_in_coroutine, dev);
}

struct amend_call {
    struct coblk_dev *dev;
    const char *options;
};

static int coroutine_fn amend_in_coroutine(void *opaque)
{
    struct amend_call *call = opaque;

    return call->dev->drv->co_amend(call->dev, call->options);
}

int coblk_amend(struct coblk_dev *dev, const char *options)
{
    int ret = image_editable(dev, "coblk_amend", dev && dev->drv->co_amend);
    if (ret < 0) {
        return ret;
    }
    struct amend_call call = { dev, options ? options : "" };
    return blk_run_in_coroutine(amend_in_coroutine, &call);
}

struct snapshot_call {
    struct coblk_dev *dev;
    int coroutine_fn (*op)(struct coblk_dev *dev, const char *arg);
    const char *arg;
};

static int coroutine_fn snapshot_in_coroutine(void *opaque)
{
    struct snapshot_call *call = opaque;

    return call->op(call->dev, call->arg);
}

/* Runs a snapshot operation of dev's driver on arg (a name, or an id or
 * name); `what` names the public function in messages. */
static int snapshot_op(struct coblk_dev *dev, const char *what,
                       int coroutine_fn (*op)(struct coblk_dev *dev,
                                              const char *arg),
                       const char *arg)
{
    int ret = image_editable(dev, what, dev && op);
    if (ret < 0) {
        return ret;
    }
    if (!arg) {
        return blk_error(-EINVAL, "%s: no snapshot named", what);
    }
    struct snapshot_call call = { dev, op, arg };
    return blk_run_in_coroutine(snapshot_in_coroutine, &call);
}

int coblk_snapshot_create(struct coblk_dev *dev, const char *name)
{
    return snapshot_op(dev, "coblk_snapshot_create",
                       dev ? dev->drv->co_snapshot_create : NULL, name);
}

int coblk_snapshot_apply(struct coblk_dev *dev, const char *which)
{
    return snapshot_op(dev, "coblk_snapshot_apply",
                       dev ? dev->drv->co_snapshot_apply : NULL, which);
}

int coblk_snapshot_delete(struct coblk_dev *dev, const char *which)
{
    return snapshot_op(dev, "coblk_snapshot_delete",
                       dev ? dev->drv->co_snapshot_delete : NULL, which);
}

struct bitmap_call {
    struct coblk_dev *dev;
    const struct coblk_bitmap_edit *edit;
};

static int coroutine_fn bitmap_in_coroutine(void *opaque)
{
    struct bitmap_call *call = opaque;

    return call->dev->drv->co_bitmap_edit(call->dev, call->edit);
}

int coblk_bitmap_edit(struct coblk_dev *dev,
                      const struct coblk_bitmap_edit *edit)
{
    int ret = image_editable(dev, "coblk_bitmap_edit",
                             dev && dev->drv->co_bitmap_edit);
    if (ret < 0) {
        return ret;
    }
    if (!edit || !edit->name) {
        return blk_error(-EINVAL, "coblk_bitmap_edit: no bitmap named");
    }
    if (edit->op > COBLK_BITMAP_MERGE ||
        (edit->op == COBLK_BITMAP_MERGE && !edit->source_name)) {
        return blk_error(-EINVAL, "coblk_bitmap_edit: no such edit");
    }
    struct bitmap_call call = { dev, edit };
    return blk_run_in_coroutine(bitmap_in_coroutine, &call);
}

struct check_call {
    struct coblk_dev *dev;
    struct coblk_check *check;
};

static int coroutine_fn check_in_coroutine(void *opaque)
{
    struct check_call *call = opaque;

    return call->dev->drv->co_check(call->dev, call->check);
}

int coblk_check(struct coblk_dev *dev, struct coblk_check *check,
                size_t size)
{
    if (!dev || !check || size < sizeof(*check)) {
        return blk_error(-EINVAL, "coblk_check: no device, or a struct "
                         "coblk_check of %zu bytes", size);
    }
    if (!dev->drv->co_check) {
        return blk_error(-ENOTSUP, "coblk_check: %s is no image format "
                         "that can be checked", dev->drv->name);
    }
    if (check->repair && (dev->flags & COBLK_OPEN_RDONLY)) {
        return blk_error(-EROFS, "coblk_check: repairing needs the image "
                         "open for writing");
    }
    struct coblk_check in = *check;
    *check = (struct coblk_check){ .repair = in.repair, .report = in.report,
                                   .opaque = in.opaque };
    struct check_call call = { dev, check };
    return blk_run_in_coroutine(check_in_coroutine, &call);
}

int coblk_dev_close(struct coblk_dev *dev)
{
    if (!dev) {
        return 0;
    }
    /* Their requests would run on a freed device. */
    unsigned queues = blk_queues_open(dev);
    if (queues) {
        return blk_error(-EBUSY, "coblk_dev_close: %u queue%s of the device "
                         "still open: free %s first (coblk_queue_free)",
                         queues, queues == 1 ? "" : "s",
                         queues == 1 ? "it" : "them");
    }
    /* Requests in flight through coblk_co_* run in their callers'
     * contexts, which their owners poll; wait for them to finish. */
    while (atomic_load(&dev->in_flight)) {
        coblk_aio *ctx = coblk_aio_current();
        if (ctx && !coblk_in_coroutine()) {
            coblk_aio_poll(ctx, false);
        } else {
            sched_yield();
        }
    }
    dev->drv->close(dev);
    pthread_mutex_destroy(&dev->queues_lock);
    free(dev->filename);
    free(dev);
    return 0;
}

int coblk_dev_stats(struct coblk_dev *dev, struct coblk_dev_stats *stats,
                    size_t size)
{
    if (!dev || !stats) {
        return blk_error(-EINVAL, "coblk_dev_stats: no device or stats");
    }
    const blk_stats *c = &dev->stats;
    struct coblk_dev_stats now = {
        .short_reads = atomic_load_explicit(&c->short_reads,
                                            memory_order_relaxed),
        .short_writes = atomic_load_explicit(&c->short_writes,
                                             memory_order_relaxed),
        .resubmits = atomic_load_explicit(&c->resubmits,
                                          memory_order_relaxed),
        .bounces = atomic_load_explicit(&c->bounces, memory_order_relaxed),
        .splits = atomic_load_explicit(&c->splits, memory_order_relaxed),
        .serialising_waits = atomic_load_explicit(&c->serialising_waits,
                                                  memory_order_relaxed),
        .locked_lookups = atomic_load_explicit(&c->locked_lookups,
                                               memory_order_relaxed),
    };
    memset(stats, 0, size);
    memcpy(stats, &now, size < sizeof(now) ? size : sizeof(now));
    return 0;
}

int64_t coblk_dev_size(struct coblk_dev *dev)
{
    if (!dev) {
        return blk_error(-EINVAL, "coblk_dev_size: no device");
    }
    return (int64_t)dev->size;
}
