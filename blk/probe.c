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

/* As much as QEMU's guess reads. */
#define HEAD_BYTES 2048

/* The formats QEMU knows by their first bytes that coblk does not read,
 * as QEMU's own probes know them (a magic, and a version where QEMU
 * checks one): guessed raw, their metadata would be read as the guest's
 * disk (and a resize would cut them). */
static const struct {
    const char *name;
    unsigned offset, len;
    const char *magic;
    unsigned version_offset, version_len;
    const char *version;
} foreign[] = {
    { "vmdk", 0, 4, "KDMV", 0, 0, NULL },
    { "vmdk", 0, 4, "COWD", 0, 0, NULL },
    { "vdi", 64, 4, "\x7f\x10\xda\xbe", 68, 4, "\x01\0\x01\0" },
    { "vpc", 0, 8, "conectix", 0, 0, NULL },
    { "vhdx", 0, 8, "vhdxfile", 0, 0, NULL },
    { "qed", 0, 4, "QED\0", 0, 0, NULL },
    { "parallels", 0, 16, "WithoutFreeSpace", 16, 4, "\x02\0\0\0" },
    { "parallels", 0, 16, "WithouFreSpacExt", 16, 4, "\x02\0\0\0" },
    { "luks", 0, 6, "LUKS\xba\xbe", 6, 2, "\0\x01" },
};

static bool has_bytes(const uint8_t *head, size_t len, unsigned offset,
                      unsigned n, const char *bytes)
{
    return offset + n <= len && !memcmp(head + offset, bytes, n);
}

/* Whether p starts "version=N" (N 1 to 3) and its line ends there. */
static bool version_line(const char *p, const char *end)
{
    static const char key[] = "version=";
    size_t left = (size_t)(end - p), n = sizeof(key) - 1;

    if (left < n + 2 || memcmp(p, key, n) || p[n] < '1' || p[n] > '3') {
        return false;
    }
    return p[n + 1] == '\n' ||
           (left >= n + 3 && p[n + 1] == '\r' && p[n + 2] == '\n');
}

/* A vmdk descriptor as QEMU's probe reads one: comment lines and lines of
 * blanks, then "version=1", 2 or 3. */
static bool vmdk_descriptor(const uint8_t *head, size_t len)
{
    const char *p = (const char *)head, *end = p + len;

    while (p < end) {
        if (*p == '#') {
            while (p < end && *p != '\n') {
                p++;
            }
        } else if (*p == ' ') {
            while (p < end && *p == ' ') {
                p++;
            }
            if (p < end && *p == '\r') {
                p++;
            }
            if (p == end || *p != '\n') {
                return false;
            }
        } else {
            return version_line(p, end);
        }
        p++;
    }
    return false;
}

static const char *foreign_format(const uint8_t *head, size_t len)
{
    for (size_t i = 0; i < sizeof(foreign) / sizeof(foreign[0]); i++) {
        if (has_bytes(head, len, foreign[i].offset, foreign[i].len,
                      foreign[i].magic) &&
            (!foreign[i].version ||
             has_bytes(head, len, foreign[i].version_offset,
                       foreign[i].version_len, foreign[i].version))) {
            return foreign[i].name;
        }
    }
    return vmdk_descriptor(head, len) ? "vmdk" : NULL;
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
    /* qcow2 from version 2 on, as QEMU guesses it (a version 0 is raw). */
    bool qcow = len >= 8 && qcow2_be32(head) == QCOW2_MAGIC;
    if (qcow && qcow2_be32(head + 4) == 1) {
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
             qcow && qcow2_be32(head + 4) >= 2 ? "qcow2" : "raw");
    return 0;
}
