/*
 * coblk-img compare: whether two images read the same, as qemu-img
 * compare says it (exit 0 identical, 1 different, 2 an image would not
 * open, 3 block status failed, 4 a read failed).  Ranges both images
 * report as zeroes are never read.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "img/img.h"

#define IO_BUF (2u << 20)
#define SECTOR 512

enum { SAME = 0, DIFFERENT = 1, EXIT_OPEN = 2, EXIT_STATUS = 3,
       EXIT_READ = 4 };

struct compare {
    struct img a, b;
    uint64_t size_a, size_b;
    bool strict, quiet;
    struct img_progress progress;
    uint8_t *buf_a, *buf_b;
};

static void __attribute__((format(printf, 2, 3)))
say(const struct compare *c, const char *fmt, ...)
{
    va_list ap;

    if (!c->quiet) {
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
    }
}

static int coroutine_fn status(const struct img *img, uint64_t offset,
                               uint64_t bytes, struct coblk_block_status *bs)
{
    int ret = coblk_co_block_status(img->dev, offset, bytes, bs);

    if (ret < 0) {
        img_error("Sector allocation test failed for %s", img->filename);
    }
    return ret;
}

static int coroutine_fn read_at(const struct img *img, uint64_t offset,
                                uint64_t bytes, uint8_t *buf)
{
    struct iovec iov = { buf, bytes };
    int ret = coblk_co_preadv(img->dev, offset, bytes, &iov, 1);

    if (ret < 0) {
        img_error("Error while reading offset %" PRIu64 " of %s: %s", offset,
                  img->filename, strerror(-ret));
    }
    return ret;
}

/* Where the first non-zero sector of buf starts, or -1. */
static int64_t find_nonzero(const uint8_t *buf, uint64_t len)
{
    for (uint64_t i = 0; i < len; i++) {
        if (buf[i]) {
            return (int64_t)(i & ~(uint64_t)(SECTOR - 1));
        }
    }
    return -1;
}

static int coroutine_fn check_empty(struct compare *c, const struct img *img,
                                    uint64_t offset, uint64_t bytes)
{
    if (read_at(img, offset, bytes, c->buf_a) < 0) {
        return EXIT_READ;
    }
    int64_t at = find_nonzero(c->buf_a, bytes);
    if (at >= 0) {
        say(c, "Content mismatch at offset %" PRIu64 "!\n",
            offset + (uint64_t)at);
        return DIFFERENT;
    }
    return SAME;
}

static int coroutine_fn compare_data(struct compare *c, uint64_t offset,
                                     uint64_t bytes)
{
    if (read_at(&c->a, offset, bytes, c->buf_a) < 0 ||
        read_at(&c->b, offset, bytes, c->buf_b) < 0) {
        return EXIT_READ;
    }
    for (uint64_t at = 0; at < bytes; at += SECTOR) {
        uint64_t n = bytes - at < SECTOR ? bytes - at : SECTOR;
        if (memcmp(c->buf_a + at, c->buf_b + at, n)) {
            say(c, "Content mismatch at offset %" PRIu64 "!\n", offset + at);
            return DIFFERENT;
        }
    }
    return SAME;
}

static uint32_t bs_kind(const struct coblk_block_status *bs)
{
    return bs->flags & (COBLK_BS_DATA | COBLK_BS_ZERO | COBLK_BS_ALLOCATED);
}

/* One step over the range both images have; *chunk: how far it went. */
static int coroutine_fn compare_step(struct compare *c, uint64_t offset,
                                     uint64_t *chunk)
{
    struct coblk_block_status sa, sb;

    if (status(&c->a, offset, c->size_a - offset, &sa) < 0 ||
        status(&c->b, offset, c->size_b - offset, &sb) < 0) {
        return EXIT_STATUS;
    }
    *chunk = sa.bytes < sb.bytes ? sa.bytes : sb.bytes;
    if (c->strict && bs_kind(&sa) != bs_kind(&sb)) {
        say(c, "Strict mode: Offset %" PRIu64 " block status mismatch!\n",
            offset);
        return DIFFERENT;
    }
    if ((sa.flags & COBLK_BS_ZERO) && (sb.flags & COBLK_BS_ZERO)) {
        return SAME;
    }
    *chunk = *chunk < IO_BUF ? *chunk : IO_BUF;
    bool data_a = !(sa.flags & COBLK_BS_ZERO);
    bool data_b = !(sb.flags & COBLK_BS_ZERO);
    if (data_a && data_b) {
        return compare_data(c, offset, *chunk);
    }
    return check_empty(c, data_a ? &c->a : &c->b, offset, *chunk);
}

/* QEMU counts whole sectors: a raw file of 1000 bytes has 1024, the last
 * 24 reading as zeroes. */
static uint64_t sectors(uint64_t size)
{
    return (size + SECTOR - 1) / SECTOR;
}

/* The part of the larger image past the smaller one must read as zero. */
static int coroutine_fn compare_tail(struct compare *c, uint64_t offset,
                                     uint64_t end)
{
    const struct img *over = c->size_a > c->size_b ? &c->a : &c->b;

    if (sectors(c->size_a) != sectors(c->size_b)) {
        say(c, "Warning: Image size mismatch!\n");
    }
    while (offset < end) {
        struct coblk_block_status bs;
        if (status(over, offset, end - offset, &bs) < 0) {
            return EXIT_STATUS;
        }
        uint64_t chunk = bs.bytes;
        if (!(bs.flags & COBLK_BS_ZERO)) {
            chunk = chunk < IO_BUF ? chunk : IO_BUF;
            int ret = check_empty(c, over, offset, chunk);
            if (ret != SAME) {
                return ret;
            }
        }
        offset += chunk;
        img_progress_update(&c->progress, 100.0 * (double)offset /
                                              (double)end);
    }
    return SAME;
}

static int coroutine_fn compare_co(void *opaque)
{
    struct compare *c = opaque;
    uint64_t common = c->size_a < c->size_b ? c->size_a : c->size_b;
    uint64_t end = c->size_a > c->size_b ? c->size_a : c->size_b;
    uint64_t offset = 0;

    if (c->strict && sectors(c->size_a) != sectors(c->size_b)) {
        say(c, "Strict mode: Image size mismatch!\n");
        return DIFFERENT;
    }
    while (offset < common) {
        uint64_t chunk = 0;
        int ret = compare_step(c, offset, &chunk);
        if (ret != SAME) {
            return ret;
        }
        offset += chunk;
        img_progress_update(&c->progress, 100.0 * (double)offset /
                                              (double)end);
    }
    if (c->size_a != c->size_b) {
        int ret = compare_tail(c, offset, end);
        if (ret != SAME) {
            return ret;
        }
    }
    say(c, "Images are identical.\n");
    return SAME;
}

static int run_compare(struct compare *c, char **names, const char *fmt_a,
                       const char *fmt_b, bool progress)
{
    int ret = EXIT_OPEN;

    if (img_open(&c->a, names[0], fmt_a, 0) < 0) {
        return EXIT_OPEN;
    }
    if (img_open(&c->b, names[1], fmt_b, 0) < 0) {
        goto close_a;
    }
    int64_t size_a = coblk_dev_size(c->a.dev);
    int64_t size_b = coblk_dev_size(c->b.dev);
    c->buf_a = malloc(IO_BUF);
    c->buf_b = malloc(IO_BUF);
    if (size_a < 0 || size_b < 0 || !c->buf_a || !c->buf_b) {
        img_error("Can't get image sizes, or out of memory");
        goto out;
    }
    c->size_a = (uint64_t)size_a;
    c->size_b = (uint64_t)size_b;
    img_progress_start(&c->progress, progress && !c->quiet);
    ret = img_run(compare_co, c);
    ret = ret < 0 ? EXIT_OPEN : ret;
    img_progress_end(&c->progress, ret == 0);
out:
    free(c->buf_a);
    free(c->buf_b);
    img_close(&c->b);
close_a:
    img_close(&c->a);
    return ret;
}

int img_compare(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "image-opts", no_argument, NULL, IMG_OPT_IMAGE_OPTS },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    struct compare c = { 0 };
    const char *fmt_a = NULL, *fmt_b = NULL;
    bool progress = false;
    int opt;

    while ((opt = getopt_long(argc, argv, ":hf:F:T:pqsU", longopts,
                              NULL)) != -1) {
        switch (opt) {
        case IMG_OPT_IMAGE_OPTS: img_image_opts_given = true; break;
        case 'h': return img_help();
        case 'f': fmt_a = optarg; break;
        case 'F': fmt_b = optarg; break;
        case 'p': progress = true; break;
        case 'q': c.quiet = true; break;
        case 's': c.strict = true; break;
        case 'T': break;
        case 'U': img_force_share = true; break;
        default:
            return img_bad_option(opt, argv);
        }
    }
    if (argc - optind != 2) {
        return img_usage("Expecting two image file names");
    }
    return run_compare(&c, argv + optind, fmt_a, fmt_b, progress);
}
