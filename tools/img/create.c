/*
 * coblk-img create: a new image, with qemu-img create's options, checks,
 * messages and its "Formatting '...'" line.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "img/img.h"
#include "img/options.h"

/* A new image's backing file: its format recorded, its size for an image
 * created without one.  Returns 0 or exit status 1 (message printed). */
static int check_backing(const char *filename, struct img_opts *opts,
                         bool unsafe, uint64_t *size)
{
    const char *name = img_opts_get(opts, "backing_file");
    const char *fmt = img_opts_get(opts, "backing_fmt");

    char *path = img_backing_path(filename, name);
    if (!path) {
        img_error("out of memory");
        return 1;
    }
    int ret = 0;
    if (!fmt) {
        /* qemu-img opens it to say what it is. */
        char probed[16];
        int err = coblk_probe(path, probed, sizeof(probed));
        if (err == 0) {
            img_error("%s: Backing file specified without backing format\n"
                      "Detected format of %s.", filename, probed);
        } else if (!unsafe && err != -ENOTSUP) {
            img_error("%s: Could not open '%s': %s\nCould not open backing "
                      "image.", filename, path, strerror(-err));
        } else {
            img_error("%s: Backing file specified without backing format",
                      filename);
        }
        ret = 1;
    } else if (!unsafe) {
        struct img backing;
        char *spec = img_spec(fmt, NULL, path);
        ret = spec ? coblk_dev_open(spec, COBLK_OPEN_RDONLY, &backing.dev)
                   : -ENOMEM;
        free(spec);
        if (ret < 0) {
            img_error("%s: Could not open '%s': %s\nCould not open backing "
                      "image.", filename, name, strerror(-ret));
            ret = 1;
        } else {
            if (*size == UINT64_MAX) {
                *size = (uint64_t)coblk_dev_size(backing.dev);
            }
            coblk_dev_close(backing.dev);
        }
    }
    free(path);
    return ret;
}

static int create_image(const char *fmt, const char *filename,
                        const char *size_arg, struct img_opts *opts,
                        bool unsafe, bool quiet)
{
    uint64_t size = UINT64_MAX;     /* not given */
    const char *size_opt = img_opts_get(opts, "size");

    if (size_arg && size_opt) {
        img_error("%s: The image size must be specified only once",
                  filename);
        return 1;
    }
    if (size_arg && img_parse_image_size(size_arg, &size)) {
        return 1;
    }
    if (strcmp(fmt, "qcow2") && strcmp(fmt, "raw")) {
        img_error("%s: Unknown file format '%s'", filename, fmt);
        return 1;
    }
    if (!strcmp(fmt, "raw") && (img_opts_get(opts, "backing_file") ||
                                img_opts_get(opts, "backing_fmt"))) {
        img_error("%s: Backing file%s not supported for file format 'raw'",
                  filename, img_opts_get(opts, "backing_file") ? ""
                                                               : " format");
        return 1;
    }
    /* An option's size is checked as options are, with their message. */
    if (img_opts_check(opts, fmt, filename) < 0 ||
        (size_opt && img_parse_image_size(size_opt, &size))) {
        return 1;
    }
    if (img_opts_get(opts, "backing_file") &&
        check_backing(filename, opts, unsafe, &size)) {
        return 1;
    }
    if (size == UINT64_MAX) {
        img_error("%s: Image creation needs a size parameter", filename);
        return 1;
    }
    if (!quiet) {
        img_opts_print_formatting(opts, fmt, filename, size);
    }
    size = (size + 511) & ~511ull;      /* QEMU's images are whole sectors */
    char *options = img_opts_normalise(opts, fmt) == 0
                        ? img_opts_join(opts, "size") : NULL;
    char *path = img_file_path(filename);
    int ret = options && path ? coblk_create(fmt, path, size, options)
                              : -ENOMEM;
    free(options);
    free(path);
    if (ret == -EBUSY) {
        img_error("%s: %s", filename, img_lib_error());
        return 1;
    }
    if (ret < 0 && ret != -EINVAL && ret != -ENOTSUP && ret != -EFBIG) {
        img_error("%s: Could not create '%s': %s", filename, filename,
                  strerror(-ret));
        return 1;
    }
    if (ret < 0) {
        img_error("%s: %s", filename, coblk_last_error());
        return 1;
    }
    return 0;
}

int img_create(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = "raw", *backing = NULL, *backing_fmt = NULL;
    struct img_opts opts = { 0 };
    bool quiet = false, unsafe = false;
    int c, ret = 1;

    while ((c = getopt_long(argc, argv, ":F:b:f:ho:qu", longopts, NULL)) !=
           -1) {
        switch (c) {
        case 'h': img_opts_free(&opts); return img_help();
        case 'f': fmt = optarg; break;
        case 'b': backing = optarg; break;
        case 'F': backing_fmt = optarg; break;
        case 'q': quiet = true; break;
        case 'u': unsafe = true; break;
        case 'o':
            if (img_opts_parse(&opts, optarg) < 0) {
                goto out;
            }
            break;
        default:
            ret = img_bad_option(c, argv);
            goto out;
        }
    }
    if (img_opts_is_help(&opts)) {
        ret = img_opts_help(fmt, optind < argc);
        goto out;
    }
    if (optind >= argc) {
        ret = img_usage("Expecting image file name");
        goto out;
    }
    if (argc - optind > 2) {
        ret = img_usage("Unexpected argument: %s", argv[optind + 2]);
        goto out;
    }
    if ((backing && img_opts_set(&opts, "backing_file", backing) < 0) ||
        (backing_fmt && img_opts_set(&opts, "backing_fmt", backing_fmt) < 0)) {
        goto out;
    }
    ret = create_image(fmt, argv[optind],
                       optind + 1 < argc ? argv[optind + 1] : NULL, &opts,
                       unsafe, quiet);
out:
    img_opts_free(&opts);
    return ret;
}
