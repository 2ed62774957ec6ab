/*
 * coblk-img measure: the space a new image would take, for a size or for
 * what an image holds, as qemu-img measure prints it.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "img/img.h"
#include "img/options.h"

struct measure_opts {
    const char *fmt, *out_fmt, *size_arg, *snapshot;
    struct img_opts opts;
    bool json;
};

static int print_result(const struct measure_opts *o,
                        const struct coblk_measure *m, bool bitmaps)
{
    if (!o->json) {
        printf("required size: %" PRIu64 "\n", m->required);
        printf("fully allocated size: %" PRIu64 "\n", m->fully_allocated);
        if (bitmaps) {
            printf("bitmaps size: %" PRIu64 "\n", m->bitmaps);
        }
        return 0;
    }
    struct json *j = json_object();
    json_add(j, "required", json_uint(m->required));
    json_add(j, "fully-allocated", json_uint(m->fully_allocated));
    if (bitmaps) {
        json_add(j, "bitmaps", json_uint(m->bitmaps));
    }
    int ret = json_print(stdout, j);
    json_free(j);
    return ret < 0 ? 1 : 0;
}

static int measure(struct measure_opts *o, const char *filename)
{
    uint64_t size = 0;
    struct img img = { 0 };

    if (o->size_arg && img_parse_image_size(o->size_arg, &size)) {
        return 1;
    }
    if (!img_known_format(o->out_fmt)) {
        return 1;
    }
    if (img_opts_check(&o->opts, o->out_fmt, NULL) < 0) {
        img_error("Invalid options for file format '%s'", o->out_fmt);
        return 1;
    }
    if (filename) {
        char *snap = NULL;
        if (o->snapshot && img_snapshot_option(o->snapshot, &snap) < 0) {
            return 1;
        }
        int ret = img_open_opts(&img, filename, o->fmt, snap, 0);
        free(snap);
        if (ret < 0) {
            return 1;
        }
    }
    if (img.dev) {
        /* QEMU's images are whole sectors. */
        int64_t src_size = coblk_dev_size(img.dev);
        size = src_size < 0 ? 0 : ((uint64_t)src_size + 511) & ~511ull;
    }
    char *options = img_opts_normalise(&o->opts, o->out_fmt) == 0
                        ? img_opts_join(&o->opts, "size") : NULL;
    struct coblk_measure m;
    int ret = options ? coblk_measure(o->out_fmt, options, size, img.dev, &m,
                                      sizeof(m))
                      : -ENOMEM;
    free(options);
    if (ret == 0) {
        /* qemu-img counts bitmaps when both images could hold them. */
        struct coblk_image_info info;
        const char *compat = img_opts_get(&o->opts, "compat");
        bool bitmaps = img.dev && !strcmp(o->out_fmt, "qcow2") &&
                       (!compat || strcmp(compat, "0.10")) &&
                       coblk_image_info(img.dev, &info, sizeof(info)) == 0 &&
                       info.compat && !strcmp(info.compat, "1.1");
        ret = print_result(o, &m, bitmaps);
    } else {
        img_error("%s", *coblk_last_error() ? coblk_last_error()
                                              : strerror(-ret));
        ret = 1;
    }
    if (img.dev) {
        img_close(&img);
    }
    return ret;
}

int img_measure(int argc, char **argv)
{
    enum { OPT_SIZE = 256, OPT_OUTPUT };
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "image-opts", no_argument, NULL, IMG_OPT_IMAGE_OPTS },
        { "output", required_argument, NULL, OPT_OUTPUT },
        { "size", required_argument, NULL, OPT_SIZE },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    struct measure_opts o = { .out_fmt = "raw" };
    int c, ret = 1;

    while ((c = getopt_long(argc, argv, ":hf:O:o:l:U", longopts, NULL)) !=
           -1) {
        switch (c) {
        case IMG_OPT_IMAGE_OPTS: img_image_opts_given = true; break;
        case 'h': img_opts_free(&o.opts); return img_help();
        case 'f': o.fmt = optarg; break;
        case 'O': o.out_fmt = optarg; break;
        case 'l': o.snapshot = optarg; break;
        case 'U': img_force_share = true; break;
        case OPT_SIZE: o.size_arg = optarg; break;
        case 'o':
            if (img_opts_parse(&o.opts, optarg) < 0) {
                goto out;
            }
            break;
        case OPT_OUTPUT:
            if (img_parse_output(optarg, &o.json) < 0) {
                goto out;
            }
            break;
        default:
            ret = img_bad_option(c, argv);
            goto out;
        }
    }
    const char *filename = optind < argc ? argv[optind] : NULL;
    if (argc - optind > 1) {
        ret = img_usage("Expecting one image file name");
    } else if (o.size_arg && filename) {
        img_error("--size N cannot be used together with a filename.");
    } else if (!o.size_arg && !filename) {
        img_error("Either --size N or one filename must be specified.");
    } else if (img_opts_is_help(&o.opts)) {
        ret = img_opts_help(o.out_fmt, false);
    } else {
        ret = measure(&o, filename);
    }
out:
    img_opts_free(&o.opts);
    return ret;
}
