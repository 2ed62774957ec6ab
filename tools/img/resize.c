/*
 * coblk-img resize: an image grows, or with --shrink shrinks (dropping
 * what it stores past the new end), to a size or by a difference (+SIZE,
 * -SIZE), as qemu-img resize does.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <string.h>

#include "img/img.h"

struct resize_opts {
    const char *fmt, *prealloc;
    bool shrink, quiet;
};

/* --preallocation=MODE, as qemu-img names the modes; 0 or exit status. */
static int prealloc_mode(const char *name, enum coblk_prealloc *mode)
{
    static const char *const names[] = { "off", "metadata", "falloc",
                                         "full" };

    for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (!strcmp(name, names[i])) {
            *mode = (enum coblk_prealloc)i;
            return 0;
        }
    }
    img_error("Invalid preallocation mode '%s'", name);
    return 1;
}

/* The new size from "[+|-]SIZE" and the current one; 0 or exit status. */
static int new_size(const char *arg, uint64_t current, uint64_t *out)
{
    int sign = arg[0] == '+' ? 1 : arg[0] == '-' ? -1 : 0;
    uint64_t n;

    if (img_parse_size(arg + (sign != 0), &n) < 0 || n > INT64_MAX) {
        img_error("Parameter 'size' expects a non-negative number below 2^64"
                  "\nOptional suffix k, M, G, T, P or E means kilo-, mega-, "
                  "giga-, tera-, peta-\nand exabytes, respectively.");
        return 1;
    }
    if (sign < 0 && n >= current) {
        img_error("New image size must be positive");
        return 1;
    }
    *out = sign > 0 ? current + n : sign < 0 ? current - n : n;
    if (*out == 0 || *out > INT64_MAX) {
        img_error("New image size must be positive");
        return 1;
    }
    return 0;
}

struct shrink {
    struct coblk_dev *dev;
    uint64_t from, to;
};

/* What --shrink cuts off is discarded first: the image then stores
 * nothing there (whole clusters), as qemu-img resize --shrink drops it. */
static int coroutine_fn discard_tail(void *opaque)
{
    struct shrink *sh = opaque;

    return coblk_co_pdiscard(sh->dev, sh->from, sh->to - sh->from);
}

static int resize(const char *filename, const char *size_arg,
                  const struct resize_opts *o)
{
    struct img img;
    enum coblk_prealloc mode = COBLK_PREALLOC_OFF;

    if (o->prealloc && prealloc_mode(o->prealloc, &mode) != 0) {
        return 1;
    }
    if (img_open(&img, filename, o->fmt, IMG_OPEN_RW) < 0) {
        return 1;
    }
    int64_t stored = coblk_dev_size(img.dev);
    /* As QEMU counts it, in whole sectors: a raw file of 1000 bytes is
     * 1024 ("+1" makes it 1025, 1001 is a shrink). */
    int64_t current = stored < 0 ? stored : (stored + 511) & ~511ll;
    uint64_t size = 0;
    int ret = current < 0 ? 1 : new_size(size_arg, (uint64_t)current, &size);
    if (ret == 0 && mode != COBLK_PREALLOC_OFF && size < (uint64_t)current) {
        img_error("Preallocation can only be used for growing images");
        ret = 1;
    }
    if (ret == 0 && size < (uint64_t)current && !o->shrink) {
        img_error("Use the --shrink option to perform a shrink operation.");
        img_error("warning: Shrinking an image will delete all data beyond "
                  "the shrunken image's end. Before performing such an "
                  "operation, make sure there is no important data there.");
        ret = 1;
    }
    if (ret == 0 && size < (uint64_t)stored) {
        struct shrink sh = { img.dev, size, (uint64_t)stored };
        int err = img_run(discard_tail, &sh);
        if (err < 0 && err != -ENOTSUP) {
            img_error("%s", coblk_last_error());
            ret = 1;
        }
    }
    if (ret == 0) {
        int err = coblk_truncate_prealloc(img.dev, size, mode);
        if (err < 0) {
            img_error("%s", *coblk_last_error() ? coblk_last_error()
                                                : strerror(-err));
            ret = 1;
        } else if (!o->quiet) {
            printf("Image resized.\n");
        }
    }
    img_close(&img);
    return ret;
}

int img_resize(int argc, char **argv)
{
    enum { OPT_PREALLOC = 256, OPT_SHRINK };
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "image-opts", no_argument, NULL, IMG_OPT_IMAGE_OPTS },
        { "preallocation", required_argument, NULL, OPT_PREALLOC },
        { "shrink", no_argument, NULL, OPT_SHRINK },
        { NULL, 0, NULL, 0 },
    };
    struct resize_opts o = { 0 };
    int c;

    /* "-1G" is a size, not an option: take it out of getopt's way. */
    if (argc < 3) {
        return img_usage("Not enough arguments");
    }
    const char *size_arg = argv[--argc];
    if (argc > 1 && !strcmp(argv[argc - 1], "--")) {
        argc--;
    }
    while ((c = getopt_long(argc, argv, ":hf:q", longopts, NULL)) != -1) {
        switch (c) {
        case IMG_OPT_IMAGE_OPTS: img_image_opts_given = true; break;
        case 'h': return img_help();
        case 'f': o.fmt = optarg; break;
        case 'q': o.quiet = true; break;
        case OPT_PREALLOC: o.prealloc = optarg; break;
        case OPT_SHRINK: o.shrink = true; break;
        default:
            return img_bad_option(c, argv);
        }
    }
    if (optind != argc - 1) {
        return img_usage("Expecting image file name and size");
    }
    return resize(argv[optind], size_arg, &o);
}
