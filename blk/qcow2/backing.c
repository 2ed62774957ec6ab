/*
 * What qemu-img rebase and commit change in an image beyond its data: the
 * backing file it names (coblk_set_backing(): the header's name and
 * backing format extension, other extensions kept as they are), and
 * emptying it so that it reads as its backing file (coblk_make_empty()).
 */
#include "config.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"

#define EXT_BACKING_FORMAT 0xe2792acau
#define V2_HEADER_BYTES 72u

static void put32(uint8_t *p, uint32_t v)
{
    v = htobe32(v);
    memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
    v = htobe64(v);
    memcpy(p, &v, 8);
}

/* The first cluster with the new name and format: the fixed header, the
 * format extension, the old extensions but the format's, the end, the
 * name.  Returns 0 or -EINVAL when that does not fit. */
static int rewrite_header(const qcow2_state *s, const uint8_t *old,
                          uint8_t *out, const char *backing,
                          const char *format)
{
    uint32_t cs = (uint32_t)s->cluster_size;
    uint32_t start = s->h.version >= 3 ? s->h.header_length
                                       : V2_HEADER_BYTES;
    uint32_t at = start;
    size_t fmt_len = format ? strlen(format) : 0;

    memset(out, 0, cs);
    memcpy(out, old, start);
    if (backing && format) {
        put32(out + at, EXT_BACKING_FORMAT);
        put32(out + at + 4, (uint32_t)fmt_len);
        memcpy(out + at + 8, format, fmt_len);
        at += 8 + (((uint32_t)fmt_len + 7) & ~7u);
    }
    /* The old extensions were checked on open: they fit and end. */
    for (uint32_t from = start; from + 8 <= cs;) {
        uint32_t type = qcow2_be32(old + from);
        uint32_t len = 8 + ((qcow2_be32(old + from + 4) + 7) & ~7u);
        if (type == 0) {
            break;
        }
        if (type != EXT_BACKING_FORMAT) {
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
    put64(out + 8, backing ? at : 0);
    put32(out + 16, (uint32_t)name_len);
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
    uint8_t *old = calloc(2, s->cluster_size);
    if (!old) {
        return blk_error(-ENOMEM, "out of memory");
    }
    uint8_t *out = old + s->cluster_size;
    uint64_t have = s->file->size < s->cluster_size ? s->file->size
                                                    : s->cluster_size;
    struct iovec iov = { old, have };
    coblk_co_mutex_lock(&s->lock);
    int ret = coblk_co_preadv(s->file, 0, have, &iov, 1);
    if (ret == 0 && rewrite_header(s, old, out, backing, format) < 0) {
        ret = blk_error(-EINVAL, "qcow2: the backing file's name does not "
                        "fit in the image's first cluster");
    }
    iov = (struct iovec){ out, s->cluster_size };
    if (ret == 0) {
        ret = coblk_co_pwritev(s->file, 0, s->cluster_size, &iov, 1, 0);
    }
    if (ret == 0) {
        ret = coblk_co_flush(s->file);
    }
    if (ret == 0) {
        ret = remember(s, backing, format);
    }
    coblk_co_mutex_unlock(&s->lock);
    free(old);
    return ret;
}

int coroutine_fn qcow2_co_make_empty(struct coblk_dev *dev)
{
    qcow2_state *s = dev->opaque;
    uint64_t end = (dev->size + s->cluster_size - 1) & ~(s->cluster_size - 1);

    int ret = end ? qcow2_empty_range(s, 0, end, false, false) : 0;
    return ret == 0 ? qcow2_co_flush(dev) : ret;
}
