/*
 * coblk-img commit: what an image and the images between it and its base
 * store is written into the base (its backing file, or -b's), as qemu-img
 * commit does; then the image is emptied, so that it reads as the base,
 * unless -d, or -b (which leaves the images between invalid).  Each layer
 * is read alone (COBLK_OPEN_NO_BACKING), the deepest first, so that what
 * an upper one stores is written last.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "img/img.h"
#include "img/options.h"

#define CHAIN_MAX 256
#define CHUNK (2u << 20)

struct commit {
    char *names[CHAIN_MAX], *formats[CHAIN_MAX];
    unsigned nr;                    /* layers: 0 the image, nr - 1 base */
    struct img layer, base;
    uint64_t size, done, total, rate_limit, start_ns;
    uint8_t *buf;
    struct img_progress progress;
};

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The chain's names and formats, from the image down, as far as base
 * (NULL: the backing file). */
static int find_chain(struct commit *c, const char *filename,
                      const char *fmt, const char *base)
{
    /* -b names the base as backing file names do: relative to the
     * image's directory. */
    char *base_path = base ? img_backing_path(filename, base) : NULL;
    struct stat want;
    bool by_inode = base_path && stat(base_path, &want) == 0;

    free(base_path);
    c->names[0] = strdup(filename);
    c->formats[0] = fmt ? strdup(fmt) : NULL;
    for (c->nr = 1; c->nr < CHAIN_MAX; c->nr++) {
        struct img img;
        struct coblk_image_info info;
        unsigned i = c->nr - 1;
        /* The top for writing with its chain, as qemu-img opens it
         * first: a writer holding any of them is told as qemu-img tells
         * it. */
        if (img_open(&img, c->names[i], c->formats[i],
                     i == 0 ? IMG_OPEN_RW
                            : IMG_OPEN_NO_BACKING | IMG_OPEN_PLAIN_NAME) < 0) {
            return -EIO;
        }
        int ret = coblk_image_info(img.dev, &info, sizeof(info));
        bool found = false;
        if (ret == 0 && info.backing_file) {
            c->names[i + 1] = strdup(info.full_backing_file);
            c->formats[i + 1] = info.backing_format
                                    ? strdup(info.backing_format) : NULL;
            struct stat st;
            found = !base || !strcmp(base, info.backing_file) ||
                    (by_inode && stat(info.full_backing_file, &st) == 0 &&
                     st.st_dev == want.st_dev && st.st_ino == want.st_ino);
        }
        img_close(&img);
        if (!c->names[i + 1]) {
            break;
        }
        if (found) {
            c->nr = i + 2;
            return 0;
        }
    }
    if (c->nr == 1) {
        img_error("Image does not have a backing file");
    } else {
        img_error("Did not find '%s' in the backing chain of '%s'", base,
                  filename);
    }
    return -ENOENT;
}

static int coroutine_fn copy_extent(struct commit *c, uint64_t at,
                                    uint64_t n, uint32_t flags)
{
    if (flags & COBLK_BS_ZERO) {
        /* As zeroes the base need not store (its format says "zero"). */
        return coblk_co_pwrite_zeroes(c->base.dev, at, n, COBLK_REQ_F_UNMAP);
    }
    struct iovec iov = { c->buf, n };
    int ret = coblk_co_preadv(c->layer.dev, at, n, &iov, 1);
    return ret < 0 ? ret : coblk_co_pwritev(c->base.dev, at, n, &iov, 1, 0);
}

/* Writes what the open layer stores into the base. */
static int coroutine_fn commit_layer_co(void *opaque)
{
    struct commit *c = opaque;
    int64_t size = coblk_dev_size(c->layer.dev);
    uint64_t end = size < 0 ? 0 : (uint64_t)size;

    end = end < c->size ? end : c->size;
    for (uint64_t at = 0; at < end;) {
        struct coblk_block_status bs;
        uint64_t want = end - at < CHUNK ? end - at : CHUNK;
        int ret = coblk_co_block_status(c->layer.dev, at, want, &bs);
        if (ret == 0 && (bs.flags & COBLK_BS_ALLOCATED)) {
            ret = copy_extent(c, at, bs.bytes, bs.flags);
        }
        if (ret < 0) {
            img_error("Block job failed: %s", strerror(-ret));
            return ret;
        }
        at += bs.bytes;
        c->done += bs.bytes;
        img_progress_update(&c->progress, 100.0 * (double)c->done /
                                              (double)c->total);
        uint64_t due = c->rate_limit
                           ? c->start_ns + (uint64_t)((double)c->done * 1e9 /
                                                      (double)c->rate_limit)
                           : 0;
        uint64_t now = now_ns();
        if (due > now) {
            coblk_co_sleep_ns(due - now);
        }
    }
    return 0;
}

static int commit_layers(struct commit *c)
{
    unsigned base = c->nr - 1;

    if (img_open(&c->base, c->names[base], c->formats[base],
                 IMG_OPEN_RW | (base ? IMG_OPEN_PLAIN_NAME : 0)) < 0) {
        return -EIO;
    }
    int64_t base_size = coblk_dev_size(c->base.dev);
    int ret = 0;
    if (base_size >= 0 && (uint64_t)base_size < c->size) {
        ret = coblk_truncate(c->base.dev, c->size);
        if (ret < 0) {
            img_error("Could not resize the backing file: %s",
                      coblk_last_error());
        }
    }
    c->total = c->size * base;
    c->start_ns = now_ns();
    for (unsigned i = base; ret == 0 && i-- > 0;) {
        ret = img_open(&c->layer, c->names[i], c->formats[i],
                       IMG_OPEN_NO_BACKING | (i ? IMG_OPEN_PLAIN_NAME : 0));
        if (ret == 0) {
            ret = img_run(commit_layer_co, c);
            img_close(&c->layer);
        }
    }
    if (ret == 0 && coblk_flush(c->base.dev) < 0) {
        img_error("Block job failed: %s", coblk_last_error());
        ret = -EIO;
    }
    img_close(&c->base);
    return ret;
}

/* The image reads as its backing file again. */
static int empty_image(struct commit *c)
{
    struct img img;

    if (img_open(&img, c->names[0], c->formats[0],
                 IMG_OPEN_RW | IMG_OPEN_NO_BACKING) < 0) {
        return -EIO;
    }
    int ret = coblk_make_empty(img.dev);
    if (ret == -ENOTSUP) {
        ret = 0;        /* nothing to empty: as qemu-img, no complaint */
    } else if (ret < 0) {
        img_error("Could not empty %s: %s", c->names[0], coblk_last_error());
    }
    img_close(&img);
    return ret;
}

int img_commit(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "image-opts", no_argument, NULL, IMG_OPT_IMAGE_OPTS },
        { NULL, 0, NULL, 0 },
    };
    struct commit c = { 0 };
    const char *fmt = NULL, *base = NULL;
    bool drop = false, progress = false, quiet = false;
    int opt, ret = 1;

    while ((opt = getopt_long(argc, argv, ":f:ht:b:dpqr:", longopts,
                              NULL)) != -1) {
        switch (opt) {
        case IMG_OPT_IMAGE_OPTS: img_image_opts_given = true; break;
        case 'h': return img_help();
        case 'f': fmt = optarg; break;
        case 'b': base = optarg; drop = true; break;
        case 'd': drop = true; break;
        case 'p': progress = true; break;
        case 'q': quiet = true; break;
        case 't': break;
        case 'r':
            if (img_parse_size_option("rate limit", optarg, 0, INT64_MAX,
                                      &c.rate_limit) < 0) {
                return 1;
            }
            break;
        default:
            return img_bad_option(opt, argv);
        }
    }
    if (optind != argc - 1) {
        return img_usage("Expecting one image file name");
    }
    if (find_chain(&c, argv[optind], fmt, base) == 0) {
        struct img top;
        if (img_open(&top, c.names[0], c.formats[0],
                     IMG_OPEN_NO_BACKING) == 0) {
            int64_t size = coblk_dev_size(top.dev);
            c.size = size < 0 ? 0 : (uint64_t)size;
            img_close(&top);
            c.buf = malloc(CHUNK);
            img_progress_start(&c.progress, progress && !quiet);
            ret = !c.buf || commit_layers(&c) < 0 ||
                  (!drop && empty_image(&c) < 0);
            img_progress_end(&c.progress, ret == 0);
        }
    }
    if (ret == 0 && !quiet) {
        printf("Image committed.\n");
    }
    free(c.buf);
    for (unsigned i = 0; i < CHAIN_MAX; i++) {
        free(c.names[i]);
        free(c.formats[i]);
    }
    return ret;
}
