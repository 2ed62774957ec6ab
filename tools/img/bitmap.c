/*
 * coblk-img bitmap: an image's persistent dirty bitmaps added, removed,
 * cleared, enabled, disabled and merged as qemu-img bitmap does: the
 * actions in the order given, each on disk before the next; the first
 * that fails stops the rest, with qemu-img's message.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "img/img.h"

enum {
    OPT_ADD = 256, OPT_REMOVE, OPT_CLEAR, OPT_ENABLE, OPT_DISABLE,
    OPT_MERGE, OPT_OBJECT, OPT_IMAGE_OPTS,
};

struct action {
    enum coblk_bitmap_op op;
    const char *source_name;        /* --merge */
};

struct bitmap_opts {
    struct action *actions;
    size_t nr_actions;
    const char *fmt, *source, *source_fmt;
    uint64_t granularity;
    bool add, merge;
};

static const char *op_name(enum coblk_bitmap_op op)
{
    static const char *const names[] = {
        [COBLK_BITMAP_ADD] = "add", [COBLK_BITMAP_REMOVE] = "remove",
        [COBLK_BITMAP_CLEAR] = "clear", [COBLK_BITMAP_ENABLE] = "enable",
        [COBLK_BITMAP_DISABLE] = "disable", [COBLK_BITMAP_MERGE] = "merge",
    };
    return names[op];
}

static int push(struct bitmap_opts *o, enum coblk_bitmap_op op,
                const char *source_name)
{
    struct action *a = realloc(o->actions,
                               (o->nr_actions + 1) * sizeof(*a));
    if (!a) {
        img_error("out of memory");
        return -ENOMEM;
    }
    o->actions = a;
    o->actions[o->nr_actions++] = (struct action){ op, source_name };
    o->add |= op == COBLK_BITMAP_ADD;
    o->merge |= op == COBLK_BITMAP_MERGE;
    return 0;
}

/* qemu-img's checks of the options, in its order; 0 or exit status 1. */
static int check_opts(const struct bitmap_opts *o, int argc, int optind_)
{
    if (!o->nr_actions) {
        img_error("Need at least one of --add, --remove, --clear, --enable, "
                  "--disable, or --merge");
    } else if (o->granularity && !o->add) {
        img_error("granularity only supported with --add");
    } else if (o->source_fmt && !o->source) {
        img_error("-F only supported with -b");
    } else if (o->source && !o->merge) {
        img_error("Merge bitmap source file only supported with --merge");
    } else if (optind_ != argc - 2) {
        img_error("Expecting filename and bitmap name");
    } else {
        return 0;
    }
    return 1;
}

/* The library's message for a failed edit, as qemu-img words it where
 * the image is not qcow2 (its format stores no bitmap, so has none). */
static void report(const struct img *img, const struct action *a,
                   const char *name, int ret)
{
    const char *why = coblk_last_error();

    if (ret == -ENOTSUP && strcmp(img->format, "qcow2") != 0) {
        if (a->op == COBLK_BITMAP_ADD) {
            img_error("Operation add on bitmap %s failed: Can't store "
                      "persistent bitmaps to %s: %s", name, img->filename,
                      strerror(-ret));
        } else {
            img_error("Operation %s on bitmap %s failed: Dirty bitmap '%s' "
                      "not found", op_name(a->op), name,
                      a->op == COBLK_BITMAP_MERGE ? a->source_name : name);
        }
        return;
    }
    img_error("Operation %s on bitmap %s failed: %s", op_name(a->op), name,
              why);
    if (strstr(why, "is inconsistent")) {
        fprintf(stderr, "Try block-dirty-bitmap-remove to delete this bitmap "
                "from disk\n");
    }
}

static int run(const struct bitmap_opts *o, const char *filename,
               const char *name)
{
    struct img img, source = { 0 };

    if (img_open(&img, filename, o->fmt, IMG_OPEN_RW | IMG_OPEN_NO_BACKING) <
        0) {
        return 1;
    }
    int status = 0;
    if (o->source && img_open(&source, o->source, o->source_fmt,
                              IMG_OPEN_NO_BACKING | IMG_OPEN_PLAIN_NAME) <
                         0) {
        status = 1;
    }
    for (size_t i = 0; status == 0 && i < o->nr_actions; i++) {
        const struct action *a = &o->actions[i];
        struct coblk_bitmap_edit edit = {
            .op = a->op, .name = name, .granularity = o->granularity,
            .source = source.dev, .source_name = a->source_name,
        };
        int ret = coblk_bitmap_edit(img.dev, &edit);
        if (ret < 0) {
            report(&img, a, name, ret);
            status = 1;
        }
    }
    if (source.dev) {
        img_close(&source);
    }
    img_close(&img);
    return status;
}

/* One option; 0, or the exit status of a bad one. */
static int parse_one(struct bitmap_opts *o, int c, char **argv)
{
    switch (c) {
    case 'h': return img_help() == 0 ? -1 : 1;
    case 'b': o->source = optarg; return 0;
    case 'f': o->fmt = optarg; return 0;
    case 'F': o->source_fmt = optarg; return 0;
    case 'g':
        if (img_parse_size_option("granularity", optarg, 0, INT64_MAX,
                                  &o->granularity) < 0) {
            return 1;
        }
        return 0;
    case OPT_ADD: return push(o, COBLK_BITMAP_ADD, NULL) < 0;
    case OPT_REMOVE: return push(o, COBLK_BITMAP_REMOVE, NULL) < 0;
    case OPT_CLEAR: return push(o, COBLK_BITMAP_CLEAR, NULL) < 0;
    case OPT_ENABLE: return push(o, COBLK_BITMAP_ENABLE, NULL) < 0;
    case OPT_DISABLE: return push(o, COBLK_BITMAP_DISABLE, NULL) < 0;
    case OPT_MERGE: return push(o, COBLK_BITMAP_MERGE, optarg) < 0;
    case OPT_OBJECT:
        img_error("--object is not supported: coblk-img has no secrets or "
                  "other objects to define");
        return 1;
    case OPT_IMAGE_OPTS: img_image_opts_given = true; return 0;
    default:
        return img_bad_option(c, argv);
    }
}

int img_bitmap(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "object", required_argument, NULL, OPT_OBJECT },
        { "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
        { "add", no_argument, NULL, OPT_ADD },
        { "remove", no_argument, NULL, OPT_REMOVE },
        { "clear", no_argument, NULL, OPT_CLEAR },
        { "enable", no_argument, NULL, OPT_ENABLE },
        { "disable", no_argument, NULL, OPT_DISABLE },
        { "merge", required_argument, NULL, OPT_MERGE },
        { "granularity", required_argument, NULL, 'g' },
        { "source-file", required_argument, NULL, 'b' },
        { "source-format", required_argument, NULL, 'F' },
        { NULL, 0, NULL, 0 },
    };
    struct bitmap_opts o = { 0 };
    int c, status = 0;

    while (status == 0 &&
           (c = getopt_long(argc, argv, ":b:f:F:g:h", longopts, NULL)) != -1) {
        status = parse_one(&o, c, argv);
    }
    if (status == 0) {
        status = check_opts(&o, argc, optind);
    }
    if (status == 0) {
        status = run(&o, argv[optind], argv[optind + 1]);
    }
    free(o.actions);
    return status < 0 ? 0 : status;
}

/* ---- convert --bitmaps ----------------------------------------------------- */

/* Whether info describes an image that stores bitmaps (qcow2 v3). */
static bool stores_bitmaps(const struct coblk_image_info *info)
{
    return !strcmp(info->format, "qcow2") && info->compat &&
           strcmp(info->compat, "0.10") != 0;
}

int img_bitmaps_check_source(struct coblk_dev *src, bool skip_broken)
{
    struct coblk_image_info info;

    if (coblk_image_info(src, &info, sizeof(info)) < 0 ||
        !stores_bitmaps(&info)) {
        img_error("Source lacks bitmap support");
        return -ENOTSUP;
    }
    /* Last first, as QEMU keeps its list. */
    for (unsigned i = info.nb_bitmaps; !skip_broken && i-- > 0;) {
        if (info.bitmaps[i].in_use) {
            img_error("Cannot copy inconsistent bitmap '%s'",
                      info.bitmaps[i].name);
            fprintf(stderr, "Try --skip-broken-bitmaps, or use '%s bitmap "
                    "--remove' to delete it\n", IMG_PROG);
            return -EINVAL;
        }
    }
    return 0;
}

int img_bitmaps_check_target(struct coblk_dev *dst)
{
    struct coblk_image_info info;
    int ret = coblk_image_info(dst, &info, sizeof(info));

    if (ret == 0 && stores_bitmaps(&info)) {
        return 0;
    }
    img_error("Format driver '%s' does not support bitmaps",
              ret == 0 ? info.format : "?");
    return -ENOTSUP;
}

/* Bitmap bm of src into dst: made with its granularity and auto flag,
 * then filled; removed again if that fails, as qemu-img does. */
static int copy_one(struct coblk_dev *src, struct coblk_dev *dst,
                    const struct coblk_bitmap_info *bm)
{
    struct coblk_bitmap_edit add = {
        .op = COBLK_BITMAP_ADD, .name = bm->name,
        .granularity = bm->granularity,
    };
    struct coblk_bitmap_edit disable = { .op = COBLK_BITMAP_DISABLE,
                                         .name = bm->name };
    struct coblk_bitmap_edit merge = {
        .op = COBLK_BITMAP_MERGE, .name = bm->name, .source = src,
        .source_name = bm->name,
    };
    struct coblk_bitmap_edit remove = { .op = COBLK_BITMAP_REMOVE,
                                        .name = bm->name };

    if (coblk_bitmap_edit(dst, &add) < 0 ||
        (!bm->auto_update && coblk_bitmap_edit(dst, &disable) < 0)) {
        img_error("Failed to create bitmap %s: %s", bm->name,
                  coblk_last_error());
        return -EIO;
    }
    int ret = coblk_bitmap_edit(dst, &merge);
    if (ret < 0) {
        img_error("Failed to populate bitmap %s: %s", bm->name,
                  coblk_last_error());
        coblk_bitmap_edit(dst, &remove);
    }
    return ret;
}

int img_bitmaps_copy(struct coblk_dev *src, struct coblk_dev *dst)
{
    struct coblk_image_info info;
    int ret = coblk_image_info(src, &info, sizeof(info));

    /* Told last first, as QEMU walks its list; copied in the source's
     * order, which QEMU's directory keeps too. */
    for (unsigned i = info.nb_bitmaps; ret == 0 && i-- > 0;) {
        if (info.bitmaps[i].in_use) {
            fprintf(stderr, "%s: warning: Skipping inconsistent bitmap '%s'\n",
                    IMG_PROG, info.bitmaps[i].name);
        }
    }
    for (unsigned i = 0; ret == 0 && i < info.nb_bitmaps; i++) {
        if (!info.bitmaps[i].in_use) {
            ret = copy_one(src, dst, &info.bitmaps[i]);
        }
    }
    return ret;
}
