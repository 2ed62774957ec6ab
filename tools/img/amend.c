/*
 * coblk-img amend: changes an image's options in place, as qemu-img amend
 * does: compat and lazy_refcounts (coblk_amend()) and size (a resize).
 * Options only creation can set, and the backing file (rebase's), are
 * refused with qemu-img's messages.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "img/img.h"
#include "img/options.h"

/* Whether every option is one amend takes; else qemu-img's message. */
static bool amendable(const struct img_opts *o)
{
    static const char *const amend[] = { "compat", "lazy_refcounts",
                                         "refcount_bits", "size" };
    static const char *const create_only[] = {
        "cluster_size", "extended_l2", "compression_type", "preallocation",
        "data_file", "data_file_raw", "encryption", "encrypt.format" };

    if (img_opts_get(o, "backing_file") || img_opts_get(o, "backing_fmt")) {
        img_error("Cannot amend the backing file\nYou can use '%s rebase' "
                  "instead.", IMG_PROG);
        return false;
    }
    for (unsigned i = 0; i < o->n; i++) {
        bool ok = false, creation = false;
        for (size_t k = 0; k < sizeof(amend) / sizeof(amend[0]); k++) {
            ok |= !strcmp(o->v[i].name, amend[k]);
        }
        for (size_t k = 0; k < sizeof(create_only) / sizeof(create_only[0]);
             k++) {
            creation |= !strcmp(o->v[i].name, create_only[k]);
        }
        if (!ok) {
            img_error("Invalid parameter '%s'%s", o->v[i].name,
                      creation ? "\nThis option is only supported for "
                                 "image creation" : "");
            return false;
        }
    }
    return true;
}

static int apply(struct img *img, const struct img_opts *o)
{
    const char *size = img_opts_get(o, "size");
    /* What coblk_amend() takes: all but size. */
    char *options = img_opts_join(o, "size");
    int ret = options ? 0 : -ENOMEM;

    if (ret == 0 && *options) {
        ret = coblk_amend(img->dev, options);
    }
    free(options);
    uint64_t bytes;
    if (ret == 0 && size) {
        ret = img_parse_size(size, &bytes) < 0 ? -EINVAL
                                               : coblk_truncate(img->dev,
                                                                bytes);
    }
    return ret;
}

int img_amend(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "image-opts", no_argument, NULL, IMG_OPT_IMAGE_OPTS },
        { "force", no_argument, NULL, 'F' },
        { NULL, 0, NULL, 0 },
    };
    struct img_opts opts = { 0 };
    const char *fmt = NULL;
    bool progress = false, quiet = false;
    int c, ret = 1;

    while ((c = getopt_long(argc, argv, ":ho:f:t:pq", longopts, NULL)) !=
           -1) {
        switch (c) {
        case IMG_OPT_IMAGE_OPTS: img_image_opts_given = true; break;
        case 'h': img_opts_free(&opts); return img_help();
        case 'f': fmt = optarg; break;
        case 'p': progress = true; break;
        case 'q': quiet = true; break;
        case 't': case 'F': break;
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
    if (!opts.n) {
        ret = img_usage("Must specify options (-o)");
        goto out;
    }
    if (optind != argc - 1) {
        ret = img_usage("Expecting one image file name");
        goto out;
    }
    struct img img;
    if (img_open(&img, argv[optind], fmt, IMG_OPEN_RW) < 0) {
        goto out;
    }
    if (strcmp(img.format, "qcow2")) {
        img_error("Format driver '%s' does not support option amendment",
                  img.format);
    } else if (img_opts_is_help(&opts)) {
        ret = img_opts_help(img.format, false);
    } else if (amendable(&opts)) {
        /* qemu-img's steps between are its own: the start and the end. */
        struct img_progress shown;
        img_progress_start(&shown, progress && !quiet);
        ret = apply(&img, &opts) < 0 ? 1 : 0;
        img_progress_end(&shown, true);
        if (ret) {
            img_error("%s", coblk_last_error());
        }
    }
    img_close(&img);
out:
    img_opts_free(&opts);
    return ret;
}
