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

#define HEAD_BYTES 72

/* The formats QEMU knows by their first bytes that coblk does not read:
 * guessed raw, their metadata would be read as the guest's disk (and a
 * resize would cut them). */
static const struct {
    const char *name;
    unsigned offset, len;
    const char *magic;
} foreign[] = {
    { "vmdk", 0, 4, "KDMV" },
    { "vmdk", 0, 4, "COWD" },
    { "vmdk", 0, 21, "# Disk DescriptorFile" },
    { "vdi", 64, 4, "\x7f\x10\xda\xbe" },
    { "vpc", 0, 8, "conectix" },
    { "vhdx", 0, 8, "vhdxfile" },
    { "qed", 0, 4, "QED\0" },
    { "bochs", 0, 22, "Bochs Virtual HD Image" },
    { "parallels", 0, 16, "WithoutFreeSpace" },
    { "parallels", 0, 16, "WithouFreSpacExt" },
    { "luks", 0, 6, "LUKS\xba\xbe" },
};

static const char *foreign_format(const uint8_t *head, size_t len)
{
    for (size_t i = 0; i < sizeof(foreign) / sizeof(foreign[0]); i++) {
        if (foreign[i].offset + foreign[i].len <= len &&
            !memcmp(head + foreign[i].offset, foreign[i].magic,
                    foreign[i].len)) {
            return foreign[i].name;
        }
    }
    return NULL;
}

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
    uint8_t head[HEAD_BYTES] = { 0 };
    size_t len = dev->size < sizeof(head) ? dev->size : sizeof(head);
    ret = coblk_pread(dev, head, len, 0);
    coblk_dev_close(dev);
    if (ret < 0) {
        return ret;
    }
    if (len >= 8 && qcow2_be32(head) == QCOW2_MAGIC &&
        qcow2_be32(head + 4) == 1) {
        return blk_error(-ENOTSUP, "%s is a qcow (version 1) image, which "
                         "coblk does not read", path);
    }
    const char *other = foreign_format(head, len);
    if (other) {
        return blk_error(-ENOTSUP, "%s is a %s image, which coblk does not "
                         "read (it reads raw and qcow2; give -f raw to read "
                         "the file as it is)", path, other);
    }
    snprintf(fmt, size, "%s",
             len >= 4 && qcow2_be32(head) == QCOW2_MAGIC ? "qcow2" : "raw");
    return 0;
}
