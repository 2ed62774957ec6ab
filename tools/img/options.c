/*
 * Image creation options: parsed from -o, checked against the format's
 * list, printed in qemu-img's "Formatting" line, passed to coblk_create().
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "img/img.h"
#include "img/options.h"
#include "optlist.h"

enum opt_type { T_STR, T_SIZE, T_NUM, T_BOOL };

struct opt_desc {
    const char *name;
    enum opt_type type;
    const char *def;            /* printed when not set; NULL: not printed */
    const char *help;
};

/* In the order qemu-img prints them in its "Formatting" line. */
static const struct opt_desc qcow2_opts[] = {
    { "cluster_size", T_SIZE, "65536", "qcow2 cluster size" },
    { "extended_l2", T_BOOL, "off", "Extended L2 tables" },
    { "preallocation", T_STR, NULL,
      "Preallocation mode (allowed values: off, metadata, falloc, full)" },
    { "compression_type", T_STR, "zlib",
      "Compression method used for image cluster compression" },
    { "size", T_SIZE, NULL, "Virtual disk size" },
    { "compat", T_STR, NULL, "Compatibility level (v2 [0.10] or v3 [1.1])" },
    { "backing_file", T_STR, NULL, "File name of a base image" },
    { "backing_fmt", T_STR, NULL, "Image format of the base image" },
    { "lazy_refcounts", T_BOOL, "off", "Postpone refcount updates" },
    { "refcount_bits", T_NUM, "16", "Width of a reference count entry in "
                                    "bits" },
    { "nocow", T_BOOL, NULL, "Turn off copy-on-write (valid only on btrfs)" },
    { "extent_size_hint", T_SIZE, NULL,
      "Extent size hint for the image file, 0 to disable" },
    { NULL, 0, NULL, NULL },
};

static const struct opt_desc raw_opts[] = {
    { "size", T_SIZE, NULL, "Virtual disk size" },
    { "nocow", T_BOOL, NULL, "Turn off copy-on-write (valid only on btrfs)" },
    { "preallocation", T_STR, NULL,
      "Preallocation mode (allowed values: off, falloc, full)" },
    { "extent_size_hint", T_SIZE, NULL,
      "Extent size hint for the image file, 0 to disable" },
    { NULL, 0, NULL, NULL },
};

static const struct opt_desc *format_opts(const char *fmt)
{
    return !strcmp(fmt, "qcow2") ? qcow2_opts : raw_opts;
}

static const struct opt_desc *find_desc(const char *fmt, const char *name)
{
    for (const struct opt_desc *d = format_opts(fmt); d->name; d++) {
        if (!strcmp(d->name, name)) {
            return d;
        }
    }
    return NULL;
}

int img_opts_set(struct img_opts *o, const char *name, const char *value)
{
    for (unsigned i = 0; i < o->n; i++) {
        if (!strcmp(o->v[i].name, name)) {
            char *copy = strdup(value);
            if (!copy) {
                img_error("out of memory");
                return -ENOMEM;
            }
            free(o->v[i].value);
            o->v[i].value = copy;
            return 0;
        }
    }
    struct img_opt *v = realloc(o->v, (o->n + 1) * sizeof(*v));
    if (!v) {
        img_error("out of memory");
        return -ENOMEM;
    }
    o->v = v;
    v[o->n].name = strdup(name);
    v[o->n].value = strdup(value);
    if (!v[o->n].name || !v[o->n].value) {
        free(v[o->n].name);
        free(v[o->n].value);
        img_error("out of memory");
        return -ENOMEM;
    }
    o->n++;
    return 0;
}

int img_opts_parse(struct img_opts *o, const char *text)
{
    if (!*text) {
        img_error("Invalid option list: %s", text);
        return -EINVAL;
    }
    char *copy = strdup(text), *at = copy;
    int ret = copy ? 0 : -ENOMEM;

    for (char *item = optlist_next(&at); item && ret == 0;
         item = optlist_next(&at)) {
        char *eq = strchr(item, '=');
        if (!eq && (!strcmp(item, "help") || !strcmp(item, "?"))) {
            ret = img_opts_set(o, "help", "on");
            continue;
        }
        if (!eq) {
            /* A name alone is name=on, as QEMU reads it ("lazy_refcounts");
             * an unknown one is refused when the options are checked. */
            ret = img_opts_set(o, item, "on");
            continue;
        }
        *eq = '\0';
        ret = img_opts_set(o, item, eq + 1);
    }
    if (!copy) {
        img_error("out of memory");
    }
    free(copy);
    return ret;
}

const char *img_opts_get(const struct img_opts *o, const char *name)
{
    for (unsigned i = 0; i < o->n; i++) {
        if (!strcmp(o->v[i].name, name)) {
            return o->v[i].value;
        }
    }
    return NULL;
}

void img_opts_free(struct img_opts *o)
{
    for (unsigned i = 0; i < o->n; i++) {
        free(o->v[i].name);
        free(o->v[i].value);
    }
    free(o->v);
    *o = (struct img_opts){ 0 };
}

bool img_opts_is_help(const struct img_opts *o)
{
    return img_opts_get(o, "help") != NULL;
}

/* Whether an option is the file's (QEMU's protocol's) rather than the
 * format's: help lists those only for a file name. */
static bool file_level(const char *fmt, const char *name)
{
    return !strcmp(name, "nocow") || !strcmp(name, "extent_size_hint") ||
           (!strcmp(fmt, "raw") && !strcmp(name, "preallocation"));
}

int img_opts_help(const char *fmt, bool with_file)
{
    static const char *const types[] = { "str", "size", "num",
                                         "bool (on/off)" };
    if (!img_known_format(fmt)) {
        return 1;
    }
    if (with_file) {
        printf("Supported options:\n");
    } else {
        printf("Supported %s options:\n", fmt);
    }
    /* Listed by name, as qemu-img lists them. */
    const struct opt_desc *opts = format_opts(fmt);
    size_t n = 0;
    while (opts[n].name) {
        n++;
    }
    bool done[16] = { false };
    for (size_t i = 0; i < n; i++) {
        done[i] = !with_file && file_level(fmt, opts[i].name);
    }
    for (;;) {
        size_t best = n;
        for (size_t i = 0; i < n; i++) {
            if (!done[i] && (best == n ||
                             strcmp(opts[i].name, opts[best].name) < 0)) {
                best = i;
            }
        }
        if (best == n) {
            break;
        }
        done[best] = true;
        char left[64];
        snprintf(left, sizeof(left), "%s=<%s>", opts[best].name,
                 types[opts[best].type]);
        printf("  %-22s - %s\n", left, opts[best].help);
    }
    if (!with_file) {
        printf("\nThe protocol level may support further options.\n"
               "Specify the target filename to include those options.\n");
    }
    return 0;
}

int img_opts_check(const struct img_opts *o, const char *fmt,
                   const char *filename)
{
    for (unsigned i = 0; i < o->n; i++) {
        if (!find_desc(fmt, o->v[i].name)) {
            img_error("%s%sInvalid parameter '%s'", filename ? filename : "",
                      filename ? ": " : "", o->v[i].name);
            return -EINVAL;
        }
        uint64_t v;
        if (find_desc(fmt, o->v[i].name)->type == T_SIZE &&
            img_parse_size(o->v[i].value, &v) < 0) {
            img_error("%s%sParameter '%s' expects a non-negative number "
                      "below 2^64\nOptional suffix k, M, G, T, P or E means "
                      "kilo-, mega-, giga-, tera-, peta-\nand exabytes, "
                      "respectively.", filename ? filename : "",
                      filename ? ": " : "", o->v[i].name);
            return -EINVAL;
        }
    }
    return 0;
}

int img_opts_normalise(struct img_opts *o, const char *fmt)
{
    for (unsigned i = 0; i < o->n; i++) {
        const struct opt_desc *d = find_desc(fmt, o->v[i].name);
        uint64_t v;
        char num[24];
        if (d && d->type == T_SIZE && img_parse_size(o->v[i].value, &v) == 0) {
            snprintf(num, sizeof(num), "%" PRIu64, v);
            if (img_opts_set(o, o->v[i].name, num) < 0) {
                return -ENOMEM;
            }
        }
    }
    return 0;
}

/* Copies value to out with its commas doubled, as option lists write
 * them; returns the end. */
static char *put_escaped(char *out, const char *value)
{
    for (; *value; value++) {
        *out++ = *value;
        if (*value == ',') {
            *out++ = ',';
        }
    }
    *out = '\0';
    return out;
}

char *img_opts_join(const struct img_opts *o, const char *skip)
{
    size_t len = 1;
    for (unsigned i = 0; i < o->n; i++) {
        len += strlen(o->v[i].name) + 2 * strlen(o->v[i].value) + 2;
    }
    char *out = malloc(len), *p = out;
    if (!out) {
        return NULL;
    }
    *p = '\0';
    for (unsigned i = 0; i < o->n; i++) {
        if (strcmp(o->v[i].name, skip)) {
            p += sprintf(p, "%s%s=", p == out ? "" : ",", o->v[i].name);
            p = put_escaped(p, o->v[i].value);
        }
    }
    return out;
}

void img_opts_print_formatting(const struct img_opts *o, const char *fmt,
                               const char *filename, uint64_t size)
{
    printf("Formatting '%s', fmt=%s", filename, fmt);
    for (const struct opt_desc *d = format_opts(fmt); d->name; d++) {
        const char *value = img_opts_get(o, d->name);
        uint64_t n;
        if (!strcmp(d->name, "size")) {
            printf(" size=%" PRIu64, size);
        } else if (value && d->type == T_SIZE &&
                   img_parse_size(value, &n) == 0) {
            printf(" %s=%" PRIu64, d->name, n);
        } else if (value || d->def) {
            const char *v = value ? value : d->def;
            char *escaped = malloc(2 * strlen(v) + 1);
            if (escaped) {
                put_escaped(escaped, v);
            }
            printf(" %s=%s", d->name, escaped ? escaped : v);
            free(escaped);
        }
    }
    printf("\n");
    fflush(stdout);
}

int img_parse_image_size(const char *text, uint64_t *size)
{
    int ret = img_parse_size(text, size);

    if (ret == 0 && *size > INT64_MAX) {
        ret = -ERANGE;
    }
    if (ret == -ERANGE) {
        img_error("Invalid image size specified. Must be between 0 and "
                  "%" PRId64 ".", INT64_MAX);
        return 1;
    }
    if (ret < 0) {
        img_error("Invalid image size specified. You may use k, M, G, T, P "
                  "or E suffixes for");
        img_error("kilobytes, megabytes, gigabytes, terabytes, petabytes and "
                  "exabytes.");
        return 1;
    }
    return 0;
}

char *img_backing_path(const char *filename, const char *name)
{
    const char *slash = strrchr(filename, '/');
    char *path;

    if (name[0] == '/' || !slash) {
        return strdup(name);
    }
    if (asprintf(&path, "%.*s/%s", (int)(slash - filename), filename,
                 name) < 0) {
        return NULL;
    }
    return path;
}
