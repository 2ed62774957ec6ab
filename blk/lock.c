/*
 * QEMU's image locks, so that coblk and QEMU processes (a running VM,
 * qemu-img, another coblk) never write an image one of them is using.
 * QEMU takes OFD read locks on single bytes of the image file: byte 100+i
 * while it holds permission i, byte 200+i while it does not let others
 * have permission i.  Before taking them it tests the bytes that would
 * conflict.  OFD locks belong to an open file, not a process: two opens
 * of one image in this process conflict too, which is what keeps a
 * convert from writing over its own source.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "blk-int.h"

#define LOCK_PERM_BASE 100
#define LOCK_SHARED_BASE 200

enum { PERM_READ, PERM_WRITE, PERM_WRITE_UNCHANGED, PERM_RESIZE, NR_PERMS };

static const char *const perm_names[NR_PERMS] = {
    "consistent read", "write", "write unchanged", "resize",
};

/* Whether another open file holds a lock on byte `at`. */
static int locked_by_others(int fd, int at, bool *locked)
{
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
                        .l_start = at, .l_len = 1 };

    if (fcntl(fd, F_OFD_GETLK, &fl) < 0) {
        return -errno;
    }
    *locked = fl.l_type != F_UNLCK;
    return 0;
}

static int take(int fd, int at)
{
    struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET,
                        .l_start = at, .l_len = 1 };

    return fcntl(fd, F_OFD_SETLK, &fl) < 0 ? -errno : 0;
}

int blk_lock_image(int fd, const char *path, bool write)
{
    /* Readers want consistent data: they let nobody write or resize.
     * Writers also write and resize (a format grows its file). */
    unsigned perms = 1u << PERM_READ |
                     (write ? 1u << PERM_WRITE | 1u << PERM_RESIZE : 0);
    unsigned unshared = 1u << PERM_WRITE | 1u << PERM_RESIZE;

    for (int i = 0; i < NR_PERMS; i++) {
        for (int shared = 0; shared < 2; shared++) {
            bool wanted = (shared ? unshared : perms) >> i & 1;
            bool locked = false;
            int at = (shared ? LOCK_PERM_BASE : LOCK_SHARED_BASE) + i;
            int ret = wanted ? locked_by_others(fd, at, &locked) : 0;
            if (ret < 0) {
                return blk_error(ret, "file: %s: locking: %s", path,
                                 strerror(-ret));
            }
            if (locked) {
                return blk_error(-EBUSY, "file: %s: Failed to get %s\"%s\" "
                                 "lock", path, shared ? "shared " : "",
                                 perm_names[i]);
            }
        }
    }
    for (int i = 0; i < NR_PERMS; i++) {
        int ret = 0;
        if (perms >> i & 1) {
            ret = take(fd, LOCK_PERM_BASE + i);
        }
        if (ret == 0 && unshared >> i & 1) {
            ret = take(fd, LOCK_SHARED_BASE + i);
        }
        if (ret < 0) {
            return blk_error(ret, "file: %s: locking: %s", path,
                             strerror(-ret));
        }
    }
    return 0;
}

int blk_file_option(struct blk_file_opts *o, const char *key,
                    const char *value)
{
    if (!strcmp(key, "nocow")) {
        if (strcmp(value, "on") && strcmp(value, "off")) {
            return blk_error(-EINVAL, "Parameter 'nocow' expects 'on' or "
                             "'off'");
        }
        o->nocow = !strcmp(value, "on");
        return 1;
    }
    if (!strcmp(key, "extent_size_hint")) {
        uint64_t hint;
        if (blk_parse_size(value, &hint) < 0) {
            return blk_error(-EINVAL, "Parameter 'extent_size_hint' expects "
                             "a size");
        }
        if (hint > UINT32_MAX) {
            return blk_error(-EINVAL, "Extent size hint is too large");
        }
        o->extent_size_hint = hint;
        return 1;
    }
    return 0;
}

/* nocow and the extent size hint, on the new empty file: where the file
 * system has neither, nothing happens (QEMU ignores that too). */
static void tune_new_file(int fd, const struct blk_file_opts *o)
{
    int flags;
    struct fsxattr attr;

    if (o->nocow && ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0) {
        flags |= FS_NOCOW_FL;
        (void)ioctl(fd, FS_IOC_SETFLAGS, &flags);
    }
    if (o->extent_size_hint && ioctl(fd, FS_IOC_FSGETXATTR, &attr) == 0) {
        attr.fsx_xflags |= FS_XFLAG_EXTSIZE;
        attr.fsx_extsize = (uint32_t)o->extent_size_hint;
        (void)ioctl(fd, FS_IOC_FSSETXATTR, &attr);
    }
}

int blk_create_file(const char *path, const char *who,
                    const struct blk_file_opts *o)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);

    if (fd < 0) {
        return blk_error(-errno, "%s: %s: %s", who, path, strerror(errno));
    }
    int ret = blk_lock_image(fd, path, true);
    if (ret == 0 && ftruncate(fd, 0) < 0) {
        ret = blk_error(-errno, "%s: %s: %s", who, path, strerror(errno));
    }
    if (ret < 0) {
        close(fd);
        return ret;
    }
    tune_new_file(fd, o);
    return fd;
}
