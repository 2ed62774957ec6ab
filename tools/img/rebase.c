/*
 * coblk-img rebase: an image gets another backing file.  With -u only the
 * name changes (the user vouches that both read the same); without, what
 * the image leaves to its backing file and the new one reads differently
 * is first copied into the image, so that it reads the same after.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "img/img.h"
#include "img/options.h"

#define CHUNK (1u << 20)

struct rebase {
    struct img img, backing;        /* backing: the new one, or none */
    uint64_t size, backing_size;
    uint8_t *old, *new;
    struct img_progress progress;
};

/* Reads [at, at + n) of the new backing file: zeroes past its end. */
static int coroutine_fn read_new(struct rebase *r, uint64_t at, uint64_t n)
{
    memset(r->new, 0, n);
    if (!r->backing.dev || at >= r->backing_size) {
        return 0;
    }
    uint64_t len = r->backing_size - at < n ? r->backing_size - at : n;
    struct iovec iov = { r->new, len };
    return coblk_co_preadv(r->backing.dev, at, len, &iov, 1);
}

/* Copies into the image the sectors of [at, at + n) that the new backing
 * file reads differently. */
static int coroutine_fn copy_differences(struct rebase *r, uint64_t at,
                                         uint64_t n)
{
    struct iovec iov = { r->old, n };
    int ret = coblk_co_preadv(r->img.dev, at, n, &iov, 1);

    if (ret == 0) {
        ret = read_new(r, at, n);
    }
    for (uint64_t pos = 0; ret == 0 && pos < n;) {
        uint64_t len = n - pos < 512 ? n - pos : 512;
        if (!memcmp(r->old + pos, r->new + pos, len)) {
            pos += len;
            continue;
        }
        uint64_t end = pos + len;
        while (end < n && memcmp(r->old + end, r->new + end,
                                 n - end < 512 ? n - end : 512)) {
            end += n - end < 512 ? n - end : 512;
        }
        iov = (struct iovec){ r->old + pos, end - pos };
        ret = coblk_co_pwritev(r->img.dev, at + pos, end - pos, &iov, 1, 0);
        pos = end;
    }
    return ret;
}

static int coroutine_fn rebase_co(void *opaque)
{
    struct rebase *r = opaque;

    for (uint64_t at = 0; at < r->size;) {
        struct coblk_block_status bs;
        uint64_t want = r->size - at < CHUNK ? r->size - at : CHUNK;
        int ret = coblk_co_block_status(r->img.dev, at, want, &bs);
        if (ret < 0) {
            img_error("error while reading image metadata: %s",
                      strerror(-ret));
            return ret;
        }
        bool own = (bs.flags & COBLK_BS_ALLOCATED) && bs.depth == 0;
        if (!own && (ret = copy_differences(r, at, bs.bytes)) < 0) {
            img_error("error while rebasing at offset %" PRIu64 ": %s", at,
                      strerror(-ret));
            return ret;
        }
        at += bs.bytes;
        img_progress_update(&r->progress, 100.0 * (double)at /
                                              (double)r->size);
    }
    return 0;
}

static int open_new_backing(struct rebase *r, const char *filename,
                            const char *name, const char *fmt)
{
    if (!*name) {
        return 0;
    }
    char *path = img_backing_path(filename, name);
    char *spec = path ? img_spec(fmt, NULL, path) : NULL;
    int flags = COBLK_OPEN_RDONLY | (img_force_share ? 0 : COBLK_OPEN_LOCK);
    int ret = spec ? coblk_dev_open(spec, flags, &r->backing.dev) : -ENOMEM;
    if (ret < 0 && !strncmp(coblk_last_error(), "file: ", 6)) {
        img_error("Could not open new backing file '%s': Could not open "
                  "'%s': %s", name, path, strerror(-ret));
    } else if (ret < 0) {
        img_error("Could not open new backing file '%s': %s", name,
                  coblk_last_error());
    }
    free(spec);
    free(path);
    if (ret < 0) {
        r->backing.dev = NULL;
        return ret;
    }
    int64_t size = coblk_dev_size(r->backing.dev);
    r->backing_size = size < 0 ? 0 : (uint64_t)size;
    return 0;
}

static int rebase(const char *filename, const char *fmt, const char *name,
                  const char *backing_fmt, bool unsafe, bool progress)
{
    struct rebase r = { 0 };
    unsigned flags = IMG_OPEN_RW | IMG_OPEN_OUTPUT |
                     (unsafe ? IMG_OPEN_NO_BACKING : 0);

    /* As qemu-img 7.2: a new backing file's format is never guessed. */
    if (*name && !backing_fmt) {
        img_error("Could not change the backing file to '%s': backing "
                  "format must be specified", name);
        return 1;
    }
    if (img_open(&r.img, filename, fmt, flags) < 0) {
        return 1;
    }
    const char *new_fmt = backing_fmt;
    int ret = 0;
    if (!unsafe) {
        int64_t size = coblk_dev_size(r.img.dev);
        r.size = size < 0 ? 0 : (uint64_t)size;
        r.old = malloc(CHUNK);
        r.new = malloc(CHUNK);
        ret = !r.old || !r.new ? -ENOMEM
                               : open_new_backing(&r, filename, name,
                                                  new_fmt);
        if (ret == 0) {
            img_progress_start(&r.progress, progress);
            ret = img_run(rebase_co, &r);
            img_progress_end(&r.progress, ret == 0);
        }
    }
    if (ret == 0) {
        ret = coblk_set_backing(r.img.dev, *name ? name : NULL,
                                *name ? new_fmt : NULL);
        if (ret < 0) {
            img_error("Could not change the backing file to '%s': %s", name,
                      ret == -ENOTSUP ? strerror(ENOTSUP)   /* raw */
                                      : coblk_last_error());
        }
    }
    if (r.backing.dev) {
        img_close(&r.backing);
    }
    free(r.old);
    free(r.new);
    img_close(&r.img);
    return ret < 0 ? 1 : 0;
}

int img_rebase(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "image-opts", no_argument, NULL, IMG_OPT_IMAGE_OPTS },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL, *name = NULL, *backing_fmt = NULL;
    bool unsafe = false, progress = false, quiet = false;
    int c;

    while ((c = getopt_long(argc, argv, ":hf:F:b:upt:T:qU", longopts,
                            NULL)) != -1) {
        switch (c) {
        case IMG_OPT_IMAGE_OPTS: img_image_opts_given = true; break;
        case 'h': return img_help();
        case 'f': fmt = optarg; break;
        case 'F': backing_fmt = optarg; break;
        case 'b': name = optarg; break;
        case 'u': unsafe = true; break;
        case 'p': progress = true; break;
        case 'q': quiet = true; break;
        case 't': case 'T': break;
        case 'U': img_force_share = true; break;
        default:
            return img_bad_option(c, argv);
        }
    }
    if (optind != argc - 1) {
        return img_usage("Expecting one image file name");
    }
    if (!name) {
        return img_usage("Must specify backing file (-b) or use unsafe "
                         "mode (-u)");
    }
    return rebase(argv[optind], fmt, name, backing_fmt, unsafe,
                  progress && !quiet);
}
