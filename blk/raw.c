/*
 * raw:[offset=N,size=N,probed=on:]CHILD: a raw image, the bytes of its
 * child as they are, or a window of them (as QEMU's raw format's offset
 * and size); probed=on for an image whose format was guessed.
 *
 * It adds nothing but the window; naming it states the format, so that a
 * tool never has to guess, and a raw image never gets a backing file.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blk-int.h"

typedef struct raw_state {
    struct coblk_dev *child;
    uint64_t offset;            /* of the window in the child */
    bool probed;                /* guessed raw: see probed_write() */
    coblk_co_mutex head_lock;   /* probed: one write to the head at once */
} raw_state;

struct raw_options {
    uint64_t offset, size;
    bool have_size;
    bool probed;
};

static int raw_option(void *opaque, const char *key, const char *value)
{
    struct raw_options *opts = opaque;
    uint64_t *field = !strcmp(key, "offset") ? &opts->offset
                      : !strcmp(key, "size") ? &opts->size : NULL;

    if (!strcmp(key, "probed")) {
        opts->probed = !strcmp(value, "on");
        if (!opts->probed && strcmp(value, "off")) {
            return blk_error(-EINVAL, "raw: probed is on or off, not '%s'",
                             value);
        }
        return 0;
    }
    if (!field) {
        return blk_error(-EINVAL, "raw: unknown option '%s' (offset, size, "
                         "probed)", key);
    }
    if (blk_parse_size(value, field) < 0 || *field > INT64_MAX) {
        return blk_error(-EINVAL, "raw: bad %s '%s' (bytes, e.g. 4096 or "
                         "1M)", key, value);
    }
    opts->have_size |= field == &opts->size;
    return 0;
}

static uint64_t window_size(const struct coblk_dev *child,
                            const struct raw_options *opts)
{
    return opts->have_size ? opts->size
           : child->size - (opts->offset < child->size ? opts->offset
                                                       : child->size);
}

/* The window must lie inside the child. */
static int check_window(const struct coblk_dev *child,
                        const struct raw_options *opts)
{
    uint64_t size = window_size(child, opts);

    if (opts->offset > child->size || size > child->size - opts->offset) {
        return blk_error(-EINVAL, "raw: offset %llu and size %llu go past "
                         "the end of the image (%llu bytes)",
                         (unsigned long long)opts->offset,
                         (unsigned long long)size,
                         (unsigned long long)child->size);
    }
    return 0;
}

static int raw_open(struct coblk_dev *dev, const char *args)
{
    struct raw_options opts = { 0 };
    char *options;
    const char *child_spec;
    int ret = blk_split_options("raw", args, &options, &child_spec);

    if (ret < 0) {
        return ret;
    }
    ret = blk_parse_options(options, raw_option, &opts);
    free(options);
    raw_state *s = ret == 0 ? calloc(1, sizeof(*s)) : NULL;
    if (ret == 0 && !s) {
        ret = blk_error(-ENOMEM, "out of memory");
    }
    if (ret == 0) {
        ret = blk_open_child(dev, child_spec, &s->child);
    }
    if (ret == 0) {
        ret = check_window(s->child, &opts);
        if (ret < 0) {
            coblk_dev_close(s->child);
        }
    }
    if (ret < 0) {
        free(s);
        return ret;
    }
    s->offset = opts.offset;
    s->probed = opts.probed;
    coblk_co_mutex_init(&s->head_lock);
    dev->opaque = s;
    dev->file = s->child;
    dev->size = window_size(s->child, &opts);
    dev->mem_align = s->child->mem_align;
    /* A window off the child's O_DIRECT blocks (an odd-sized file, or an
     * odd offset) passes its requests on as they come: rounded out here
     * they would reach past the window, while the child pads them within
     * its own bounds. */
    dev->offset_align = (opts.offset | dev->size) & (s->child->offset_align - 1)
                            ? 1 : s->child->offset_align;
    return 0;
}

static void raw_close(struct coblk_dev *dev)
{
    raw_state *s = dev->opaque;

    coblk_dev_close(s->child);
    free(s);
}

static int coroutine_fn raw_preadv(struct coblk_dev *dev, uint64_t offset,
                                   uint64_t bytes, const struct iovec *iov,
                                   unsigned iovcnt)
{
    raw_state *s = dev->opaque;

    return coblk_co_preadv(s->child, s->offset + offset, bytes, iov, iovcnt);
}

static int coroutine_fn raw_copy_range_from(struct coblk_dev *src,
                                            uint64_t src_offset,
                                            struct coblk_dev *dst,
                                            uint64_t dst_offset,
                                            uint64_t bytes)
{
    raw_state *s = src->opaque;

    return blk_co_copy_range_from(s->child, s->offset + src_offset, dst,
                                  dst_offset, bytes);
}

/* The first bytes a format's guess looks at. */
#define PROBE_BYTES 32

/* Whether head (PROBE_BYTES) starts as an image of a format that may name
 * other files (backing files, extents): qcow and qcow2, QED, VMDK. */
static bool names_other_files(const uint8_t *head)
{
    static const char descriptor[] = "# Disk DescriptorFile";

    return !memcmp(head, "QFI\xfb", 4) || !memcmp(head, "QED\0", 4) ||
           !memcmp(head, "KDMV", 4) ||
           !memcmp(head, descriptor, sizeof(descriptor) - 1);
}

/* An image guessed to be raw (probed=on) must stay raw to the next guess:
 * otherwise whoever writes to it (a guest, an NBD client) could make it
 * a qcow2 image naming any file of the host as its backing file.  As in
 * QEMU, such a write fails with EPERM.  Writes to the first bytes take
 * head_lock, so that each sees the bytes the last one left. */
static int coroutine_fn probed_write(raw_state *s, uint64_t offset,
                                     uint64_t bytes, const struct iovec *iov,
                                     unsigned iovcnt, int req_flags)
{
    uint8_t head[PROBE_BYTES] = { 0 };
    uint64_t have = blk_size(s->child) - s->offset;
    struct iovec old = { head, have < PROBE_BYTES ? (size_t)have
                                                  : PROBE_BYTES };

    coblk_co_mutex_lock(&s->head_lock);
    int ret = coblk_co_preadv(s->child, s->offset, old.iov_len, &old, 1);
    if (ret == 0) {
        size_t n = PROBE_BYTES - offset < bytes ? PROBE_BYTES - offset
                                                : (size_t)bytes;
        iov_to_buf(iov, iovcnt, 0, head + offset, n);
        ret = names_other_files(head)
                  ? blk_error(-EPERM, "raw: the image's format was guessed: "
                              "a write that makes it look like another "
                              "format is refused (name the format raw to "
                              "allow it)")
                  : coblk_co_pwritev(s->child, s->offset + offset, bytes,
                                     iov, iovcnt, req_flags);
    }
    coblk_co_mutex_unlock(&s->head_lock);
    return ret;
}

/* Not over the first bytes of a guessed image: probed_write() checks
 * what lands there. */
static int coroutine_fn raw_copy_range_to(struct coblk_dev *src,
                                          uint64_t src_offset,
                                          struct coblk_dev *dst,
                                          uint64_t dst_offset, uint64_t bytes)
{
    raw_state *s = dst->opaque;

    if (s->probed && dst_offset < PROBE_BYTES) {
        return -ENOTSUP;
    }
    return blk_co_copy_range_to(src, src_offset, s->child,
                                s->offset + dst_offset, bytes);
}

static int coroutine_fn raw_pwritev(struct coblk_dev *dev, uint64_t offset,
                                    uint64_t bytes, const struct iovec *iov,
                                    unsigned iovcnt, int req_flags)
{
    raw_state *s = dev->opaque;

    if (s->probed && offset < PROBE_BYTES) {
        return probed_write(s, offset, bytes, iov, iovcnt, req_flags);
    }
    return coblk_co_pwritev(s->child, s->offset + offset, bytes, iov, iovcnt,
                            req_flags);
}

/* A queue's read or write goes to the child as it is, to be started
 * there (start_rw); a guessed image's first bytes are guarded on the
 * coroutine path. */
static bool coroutine_fn raw_start_rw(struct coblk_dev *dev,
                                      struct coblk_req *req, bool write,
                                      uint64_t offset, uint64_t bytes,
                                      int req_flags)
{
    raw_state *s = dev->opaque;

    if (write && s->probed && offset < PROBE_BYTES) {
        return false;
    }
    return blk_start_rw_on(s->child, req, write, s->offset + offset, bytes,
                           req_flags);
}

static int coroutine_fn raw_flush(struct coblk_dev *dev)
{
    return coblk_co_flush(((raw_state *)dev->opaque)->child);
}

static int coroutine_fn raw_pdiscard(struct coblk_dev *dev, uint64_t offset,
                                     uint64_t bytes)
{
    raw_state *s = dev->opaque;

    return coblk_co_pdiscard(s->child, s->offset + offset, bytes);
}

static int coroutine_fn raw_pwrite_zeroes(struct coblk_dev *dev,
                                          uint64_t offset, uint64_t bytes,
                                          int req_flags)
{
    raw_state *s = dev->opaque;

    return coblk_co_pwrite_zeroes(s->child, s->offset + offset, bytes,
                                  req_flags);
}

/* The whole child only: a window keeps its size. */
static int coroutine_fn raw_truncate(struct coblk_dev *dev, uint64_t size,
                                     enum coblk_prealloc mode)
{
    raw_state *s = dev->opaque;

    if (s->offset || blk_size(dev) != blk_size(s->child)) {
        return blk_error(-ENOTSUP, "raw: a window (offset=, size=) does not "
                         "change size");
    }
    return blk_co_truncate_child(dev, s->child, size, mode);
}

static int coroutine_fn raw_block_status(struct coblk_dev *dev,
                                         uint64_t offset, uint64_t bytes,
                                         struct coblk_block_status *out)
{
    raw_state *s = dev->opaque;
    int ret = coblk_co_block_status(s->child, s->offset + offset, bytes, out);

    /* The child's own layers are not this device's backing chain. */
    out->depth = 0;
    return ret;
}

struct raw_create_opts {
    int prealloc;
    struct blk_file_opts file;
};

/* preallocation=off (sparse), falloc or full (zeroes written), and the
 * file's options, as qemu-img create -f raw takes them. */
static int raw_option_prealloc(void *opaque, const char *key,
                               const char *value)
{
    static const char *const modes[] = { "off", "falloc", "full" };
    struct raw_create_opts *o = opaque;
    int ret = blk_file_option(&o->file, key, value);

    if (ret != 0) {
        return ret < 0 ? ret : 0;
    }
    if (strcmp(key, "preallocation")) {
        return blk_error(-EINVAL, "raw: unknown option '%s' "
                         "(preallocation, nocow, extent_size_hint)", key);
    }
    for (int i = 0; i < 3; i++) {
        if (!strcmp(value, modes[i])) {
            o->prealloc = i;
            return 0;
        }
    }
    return blk_error(-EINVAL, "raw: bad preallocation '%s' (off, falloc, "
                     "full)", value);
}

static int raw_create(const char *path, uint64_t size, const char *options)
{
    struct raw_create_opts o = { .file = BLK_FILE_OPTS_DEFAULT };
    int ret = blk_parse_options(options, raw_option_prealloc, &o);
    int mode = o.prealloc;

    if (ret < 0) {
        return ret;
    }
    if (size > INT64_MAX) {
        return blk_error(-EFBIG, "raw: size %llu is too large",
                         (unsigned long long)size);
    }
    int fd = blk_create_file(path, "raw", &o.file);
    if (fd < 0) {
        return fd;
    }
    if (ftruncate(fd, (off_t)size) < 0) {
        ret = -errno;
    } else if (mode == 1 && size) {
        ret = -posix_fallocate(fd, 0, (off_t)size);
    } else if (mode == 2) {
        static const char zeroes[1 << 16];
        for (uint64_t done = 0; ret == 0 && done < size;) {
            size_t len = size - done < sizeof(zeroes) ? (size_t)(size - done)
                                                      : sizeof(zeroes);
            ssize_t n = pwrite(fd, zeroes, len, (off_t)done);
            ret = n < 0 ? -errno : 0;
            done += n > 0 ? (uint64_t)n : 0;
        }
    }
    if (ret == 0 && fsync(fd) < 0) {
        ret = -errno;
    }
    close(fd);
    if (ret < 0) {
        unlink(path);
        return blk_error(ret, "raw: %s: %s", path, strerror(-ret));
    }
    return 0;
}

/* A raw image takes its size, whatever it holds. */
static int raw_measure(const char *options, uint64_t size, uint64_t *metadata,
                       uint64_t *cluster_size, bool *data_is_size)
{
    struct raw_create_opts o = { .file = BLK_FILE_OPTS_DEFAULT };
    int ret = blk_parse_options(options, raw_option_prealloc, &o);

    (void)size;
    *metadata = 0;
    *cluster_size = 1;
    *data_is_size = true;
    return ret;
}

/* A raw image shows what its storage tells beyond its bytes (an RBD
 * image's object size and snapshots), as in QEMU. */
static void raw_info(struct coblk_dev *dev, struct coblk_image_info *info)
{
    raw_state *s = dev->opaque;
    struct coblk_image_info child = { 0 };

    if (s->child->drv->info) {
        s->child->drv->info(s->child, &child);
        info->cluster_size = child.cluster_size;
        info->nb_snapshots = child.nb_snapshots;
        info->snapshots = child.snapshots;
    }
}

const blk_driver blk_raw_driver = {
    .name = "raw",
    .open = raw_open,
    .close = raw_close,
    .co_preadv = raw_preadv,
    .co_pwritev = raw_pwritev,
    .start_rw = raw_start_rw,
    .co_flush = raw_flush,
    .co_pdiscard = raw_pdiscard,
    .co_pwrite_zeroes = raw_pwrite_zeroes,
    .co_block_status = raw_block_status,
    .co_truncate = raw_truncate,
    .co_copy_range_from = raw_copy_range_from,
    .co_copy_range_to = raw_copy_range_to,
    .create = raw_create,
    .measure = raw_measure,
    .info = raw_info,
};
