/*
 * Guessing an image's format, for tools that behave as qemu-img does
 * without -f.  The library itself never guesses (coblk_dev_open): a raw
 * disk whose guest wrote a qcow2 header into its first sector would
 * otherwise be opened as that header says, backing file and all.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blk-int.h"
#include "qcow2/qcow2.h"

int coblk_probe(const char *path, char *fmt, size_t size)
{
    if (!path || !*path || !fmt || size < 8) {
        return blk_error(-EINVAL, "coblk_probe: no path, or no room for "
                         "the format's name");
    }
    char *spec;
    if (asprintf(&spec, "file:%s", path) < 0) {
        return blk_error(-ENOMEM, "out of memory");
    }
    struct coblk_dev *dev;
    int ret = coblk_dev_open(spec, COBLK_OPEN_RDONLY, &dev);
    free(spec);
    if (ret < 0) {
        return ret;
    }
    uint8_t head[8] = { 0 };
    if (dev->size >= sizeof(head)) {
        ret = coblk_pread(dev, head, sizeof(head), 0);
    }
    coblk_dev_close(dev);
    if (ret < 0) {
        return ret;
    }
    if (qcow2_be32(head) == QCOW2_MAGIC && qcow2_be32(head + 4) == 1) {
        return blk_error(-ENOTSUP, "%s is a qcow (version 1) image, which "
                         "coblk does not read", path);
    }
    snprintf(fmt, size, "%s",
             qcow2_be32(head) == QCOW2_MAGIC ? "qcow2" : "raw");
    return 0;
}
