/*
 * coblk-img dd: dd's operands (if= of= bs= count= skip=) as qemu-img dd
 * takes them, on convert's engine.  As in qemu-img, count counts blocks
 * from the start of the input, skipped ones included.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "img/convert.h"
#include "img/img.h"

struct dd {
    const char *in, *out;
    uint64_t bs, count, skip;
    bool has_count, has_skip;
};

static int parse_operand(struct dd *dd, const char *arg)
{
    const char *eq = strchr(arg, '=');
    size_t key = eq ? (size_t)(eq - arg) : strlen(arg);
    const char *value = eq ? eq + 1 : "";

    if (!eq) {
        img_error("unrecognized operand %s", arg);
        return -EINVAL;
    }
    if (!strncmp(arg, "if", key) && key == 2) {
        dd->in = value;
        return 0;
    }
    if (!strncmp(arg, "of", key) && key == 2) {
        dd->out = value;
    } else if (!strncmp(arg, "bs", key) && key == 2) {
        if (img_parse_size_option("bs", value, 1, INT_MAX, &dd->bs) < 0) {
            return -EINVAL;
        }
    } else if (!strncmp(arg, "count", key) && key == 5) {
        if (img_parse_size_option("count", value, 0, INT64_MAX,
                                  &dd->count) < 0) {
            return -EINVAL;
        }
        dd->has_count = true;
    } else if (!strncmp(arg, "skip", key) && key == 4) {
        if (img_parse_size_option("skip", value, 0, INT64_MAX,
                                  &dd->skip) < 0) {
            return -EINVAL;
        }
        dd->has_skip = true;
    } else {
        img_error("unrecognized operand %.*s", (int)key, arg);
        return -EINVAL;
    }
    return 0;
}

/* The window of the input to copy, as qemu-img dd computes it. */
static int window(const struct dd *dd, const char *fmt,
                  struct convert_opts *o)
{
    struct img in;

    if (img_open(&in, dd->in, fmt, 0) < 0) {
        return -EIO;
    }
    int64_t in_size = coblk_dev_size(in.dev);
    img_close(&in);
    if (in_size < 0) {
        img_error("Failed to get size for '%s'", dd->in);
        return -EIO;
    }
    uint64_t size = (uint64_t)in_size;
    if (dd->has_count && dd->count <= size / dd->bs) {
        size = dd->count * dd->bs;
    }
    uint64_t skip = dd->has_skip ? dd->skip : 0;
    if (skip > INT64_MAX / dd->bs || size < skip * dd->bs) {
        img_error("%s: cannot skip to specified offset", dd->in);
        o->skip = (uint64_t)in_size;
        o->length = 0;
    } else {
        o->skip = skip * dd->bs;
        o->length = size - o->skip;
    }
    return 0;
}

int img_dd(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    struct dd dd = { .bs = 512 };
    struct convert_opts o;
    const char *fmt = NULL;
    int c;

    convert_defaults(&o);
    while ((c = getopt_long(argc, argv, ":hf:O:U", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': return img_help();
        case 'f': fmt = optarg; break;
        case 'O': o.out_fmt = optarg; break;
        case 'U': img_force_share = true; break;
        default:
            return img_bad_option(c, argv);
        }
    }
    for (int i = optind; i < argc; i++) {
        if (parse_operand(&dd, argv[i]) < 0) {
            return 1;
        }
    }
    if (!dd.in || !dd.out) {
        img_error("Must specify both input and output files");
        return 1;
    }
    if (!img_known_format(o.out_fmt) || window(&dd, fmt, &o) < 0) {
        return 1;
    }
    o.fmt = fmt;
    o.dd = true;
    char *names[2] = { (char *)dd.in, (char *)dd.out };
    return convert_run(&o, names, 1);
}
