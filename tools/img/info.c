/*
 * coblk-img info: what an image is, as qemu-img info prints it (text or
 * JSON), for the image alone or for each image of its backing chain.
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

#define CHAIN_MAX 256

/* What qemu-img calls actual-size: the space the file takes; -1 for what
 * is no local file. */
static int64_t actual_size(const char *filename)
{
    char *path = img_file_path(filename);
    struct stat st;
    bool file = path && stat(path, &st) == 0 && S_ISREG(st.st_mode);

    free(path);
    return file ? (int64_t)st.st_blocks * 512 : -1;
}

/* QEMU's block layer counts whole sectors. */
static uint64_t virtual_size(const struct coblk_image_info *info)
{
    uint64_t size = info->virtual_size;

    if (!strcmp(info->format, "qcow2")) {
        return size & ~511ull;
    }
    return size + 511 < size ? size : (size + 511) & ~511ull;
}

/* ---- snapshots, shared with coblk-img snapshot -l ---------------------------- */

void img_snapshot_header(FILE *out)
{
    fprintf(out, "%-10s%-17s%8s%20s%13s%11s\n", "ID", "TAG", "VM SIZE", "DATE",
           "VM CLOCK", "ICOUNT");
}

void img_snapshot_row(FILE *out, const struct coblk_snapshot_info *sn)
{
    char size[32], date[32] = "", clock[32], icount[24] = "";
    time_t t = sn->date_sec;
    struct tm tm;
    uint64_t ms = sn->vm_clock_nsec / 1000000;

    if (localtime_r(&t, &tm)) {
        strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
    }
    snprintf(clock, sizeof(clock), "%02" PRIu64 ":%02u:%02u.%03u",
             ms / 3600000, (unsigned)(ms / 60000 % 60),
             (unsigned)(ms / 1000 % 60), (unsigned)(ms % 1000));
    if (sn->icount >= 0) {
        snprintf(icount, sizeof(icount), "%" PRId64, sn->icount);
    }
    fprintf(out, "%-9s %-16s %8s%20s%13s%11s\n", sn->id, sn->name,
           img_size_str(sn->vm_state_size, size), date, clock, icount);
}

/* ---- text ------------------------------------------------------------------- */

/* qemu-img's names of a bitmap's flags, in its order; n of them. */
static unsigned bitmap_flags(const struct coblk_bitmap_info *bm,
                             const char *names[2])
{
    unsigned n = 0;

    if (bm->in_use) {
        names[n++] = "in-use";
    }
    if (bm->auto_update) {
        names[n++] = "auto";
    }
    return n;
}

static void print_bitmaps(FILE *out, const struct coblk_image_info *info)
{
    fprintf(out, "    bitmaps:\n");
    for (unsigned i = 0; i < info->nb_bitmaps; i++) {
        const struct coblk_bitmap_info *bm = &info->bitmaps[i];
        const char *flags[2];
        unsigned n = bitmap_flags(bm, flags);
        fprintf(out, "        [%u]:\n            flags:\n", i);
        for (unsigned f = 0; f < n; f++) {
            fprintf(out, "                [%u]: %s\n", f, flags[f]);
        }
        fprintf(out, "            name: %s\n", bm->name);
        fprintf(out, "            granularity: %" PRIu64 "\n", bm->granularity);
    }
}

static void print_qcow2_specific(FILE *out,
                                 const struct coblk_image_info *info)
{
    bool v3 = !strcmp(info->compat, "1.1");

    fprintf(out, "Format specific information:\n");
    fprintf(out, "    compat: %s\n", info->compat);
    fprintf(out, "    compression type: %s\n", info->compression_type);
    if (v3) {
        fprintf(out, "    lazy refcounts: %s\n",
               info->lazy_refcounts ? "true" : "false");
    }
    if (info->nb_bitmaps) {
        print_bitmaps(out, info);
    }
    fprintf(out, "    refcount bits: %u\n", info->refcount_bits);
    if (v3) {
        fprintf(out, "    corrupt: %s\n", info->corrupt ? "true" : "false");
        fprintf(out, "    extended l2: %s\n", info->extended_l2 ? "true" : "false");
    }
}

static void print_human(FILE *out, const char *filename,
                        const struct coblk_image_info *info, int64_t actual)
{
    char size[32];
    uint64_t vsize = virtual_size(info);

    fprintf(out, "image: %s\n", filename);
    fprintf(out, "file format: %s\n", info->format);
    fprintf(out, "virtual size: %s (%" PRIu64 " bytes)\n",
           img_size_str(vsize, size), vsize);
    if (actual >= 0) {
        fprintf(out, "disk size: %s\n", img_size_str((uint64_t)actual, size));
    } else {
        fprintf(out, "disk size: unavailable\n");
    }
    if (info->cluster_size) {
        fprintf(out, "cluster_size: %" PRIu64 "\n", info->cluster_size);
    }
    if (info->dirty) {
        fprintf(out, "cleanly shut down: no\n");
    }
    if (info->backing_file) {
        fprintf(out, "backing file: %s", info->backing_file);
        if (info->full_backing_file &&
            strcmp(info->full_backing_file, info->backing_file)) {
            fprintf(out, " (actual path: %s)", info->full_backing_file);
        }
        fprintf(out, "\n");
    }
    if (info->backing_format) {
        fprintf(out, "backing file format: %s\n", info->backing_format);
    }
    if (info->nb_snapshots) {
        fprintf(out, "Snapshot list:\n");
        img_snapshot_header(out);
        for (unsigned i = 0; i < info->nb_snapshots; i++) {
            img_snapshot_row(out, &info->snapshots[i]);
        }
    }
    if (info->compat) {
        print_qcow2_specific(out, info);
    }
}

/* ---- JSON ------------------------------------------------------------------- */

static struct json *snapshot_json(const struct coblk_snapshot_info *sn)
{
    struct json *o = json_object();

    json_add(o, "id", json_string(sn->id));
    json_add(o, "name", json_string(sn->name));
    json_add(o, "vm-state-size", json_uint(sn->vm_state_size));
    json_add(o, "date-sec", json_uint(sn->date_sec));
    json_add(o, "date-nsec", json_uint(sn->date_nsec));
    json_add(o, "vm-clock-sec", json_uint(sn->vm_clock_nsec / 1000000000));
    json_add(o, "vm-clock-nsec", json_uint(sn->vm_clock_nsec % 1000000000));
    if (sn->icount >= 0) {
        json_add(o, "icount", json_int(sn->icount));
    }
    return o;
}

static struct json *bitmaps_json(const struct coblk_image_info *info)
{
    struct json *list = json_array();

    for (unsigned i = 0; i < info->nb_bitmaps; i++) {
        const struct coblk_bitmap_info *bm = &info->bitmaps[i];
        struct json *o = json_object(), *flags = json_array();
        const char *names[2];
        unsigned n = bitmap_flags(bm, names);
        for (unsigned f = 0; f < n; f++) {
            json_add(flags, NULL, json_string(names[f]));
        }
        json_add(o, "flags", flags);
        json_add(o, "name", json_string(bm->name));
        json_add(o, "granularity", json_uint(bm->granularity));
        json_add(list, NULL, o);
    }
    return list;
}

static struct json *qcow2_json(const struct coblk_image_info *info)
{
    bool v3 = !strcmp(info->compat, "1.1");
    struct json *spec = json_object(), *data = json_object();

    json_add(spec, "type", json_string("qcow2"));
    json_add(data, "compat", json_string(info->compat));
    json_add(data, "compression-type", json_string(info->compression_type));
    if (v3) {
        json_add(data, "lazy-refcounts", json_bool(info->lazy_refcounts));
    }
    if (info->nb_bitmaps) {
        json_add(data, "bitmaps", bitmaps_json(info));
    }
    json_add(data, "refcount-bits", json_uint(info->refcount_bits));
    if (v3) {
        json_add(data, "corrupt", json_bool(info->corrupt));
        json_add(data, "extended-l2", json_bool(info->extended_l2));
    }
    json_add(spec, "data", data);
    return spec;
}

static struct json *info_json(const char *filename,
                              const struct coblk_image_info *info,
                              int64_t actual, bool dirty_known)
{
    struct json *o = json_object();

    if (info->nb_snapshots) {
        struct json *list = json_array();
        for (unsigned i = 0; i < info->nb_snapshots; i++) {
            json_add(list, NULL, snapshot_json(&info->snapshots[i]));
        }
        json_add(o, "snapshots", list);
    }
    if (info->backing_format) {
        json_add(o, "backing-filename-format",
                 json_string(info->backing_format));
    }
    json_add(o, "virtual-size", json_uint(virtual_size(info)));
    json_add(o, "filename", json_string(filename));
    if (info->cluster_size) {
        json_add(o, "cluster-size", json_uint(info->cluster_size));
    }
    json_add(o, "format", json_string(info->format));
    if (actual >= 0) {
        json_add(o, "actual-size", json_int(actual));
    }
    if (info->compat) {
        json_add(o, "format-specific", qcow2_json(info));
    }
    if (info->backing_file) {
        json_add(o, "full-backing-filename",
                 json_string(info->full_backing_file
                                 ? info->full_backing_file
                                 : info->backing_file));
        json_add(o, "backing-filename", json_string(info->backing_file));
    }
    if (dirty_known) {
        json_add(o, "dirty-flag", json_bool(info->dirty));
    }
    return o;
}

/* ---- the command ---------------------------------------------------------- */

struct info_opts {
    const char *fmt;
    bool json, chain;
};

/* One image of the chain: printed to out (text) or returned in *obj
 * (JSON).
 * Sets *next to the backing file to follow (to free()), or NULL. */
/* One image of the chain (a backing file: depth > 0, named plainly). */
static int info_one(FILE *out, const char *filename, const char *fmt,
                    unsigned depth, const struct info_opts *o,
                    struct json **obj, char **next, char **next_fmt)
{
    struct img img;
    struct coblk_image_info info;

    *next = *next_fmt = NULL;
    if (img_open(&img, filename, fmt, IMG_OPEN_NO_BACKING |
                                      (depth ? IMG_OPEN_PLAIN_NAME : 0)) < 0) {
        return 1;
    }
    if (coblk_image_info(img.dev, &info, sizeof(info)) < 0) {
        img_error("%s: %s", filename, coblk_last_error());
        img_close(&img);
        return 1;
    }
    int64_t actual = actual_size(img.filename);
    char *shown = img_display_name(img.filename);
    if (!shown) {
        img_error("out of memory");
        img_close(&img);
        return 1;
    }
    /* QEMU knows no dirty flag of a raw image whose protocol keeps none
     * (NBD). */
    bool dirty_known = !(img_is_nbd(img.filename) &&
                         !strcmp(info.format, "raw"));
    if (o->json) {
        *obj = info_json(shown, &info, actual, dirty_known);
    } else {
        print_human(out, shown, &info, actual);
    }
    free(shown);
    if (o->chain && info.backing_file) {
        *next = strdup(info.full_backing_file ? info.full_backing_file
                                              : info.backing_file);
        *next_fmt = info.backing_format ? strdup(info.backing_format) : NULL;
    }
    img_close(&img);
    return 0;
}

/* Whether filename is a file met before in the chain; if not, adds it. */
static bool seen_before(struct stat *seen, unsigned n, const char *filename)
{
    struct stat st;

    if (stat(filename, &st) < 0) {
        return false;
    }
    for (unsigned i = 0; i < n; i++) {
        if (seen[i].st_dev == st.st_dev && seen[i].st_ino == st.st_ino) {
            return true;
        }
    }
    seen[n] = st;
    return false;
}

/* The chain is printed only once all of it could be read. */
static int info_chain(const char *filename, const struct info_opts *o)
{
    static struct stat seen[CHAIN_MAX];
    struct json *list = o->json && o->chain ? json_array() : NULL;
    struct json *obj = NULL;
    char *text = NULL;
    size_t text_len = 0;
    FILE *out = open_memstream(&text, &text_len);
    char *name = strdup(filename), *fmt = o->fmt ? strdup(o->fmt) : NULL;
    int ret = name && out ? 0 : 1;

    for (unsigned depth = 0; name && ret == 0; depth++) {
        if (depth == CHAIN_MAX || seen_before(seen, depth, name)) {
            img_error("Backing file '%s' creates an infinite loop.", name);
            ret = 1;
            break;
        }
        if (depth && !o->json) {
            fputc('\n', out);
        }
        char *next, *next_fmt;
        ret = info_one(out, name, fmt, depth, o, &obj, &next, &next_fmt);
        if (list && obj) {
            json_add(list, NULL, obj);
            obj = NULL;
        }
        free(name);
        free(fmt);
        name = next;
        fmt = next_fmt;
    }
    free(name);
    free(fmt);
    if (out) {
        fclose(out);
    }
    if (ret == 0 && o->json && json_print(stdout, list ? list : obj) < 0) {
        img_error("out of memory");
        ret = 1;
    } else if (ret == 0) {
        fwrite(text, 1, text_len, stdout);
    }
    free(text);
    json_free(list);
    json_free(obj);
    return ret;
}

int img_info(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "format", required_argument, NULL, 'f' },
        { "output", required_argument, NULL, 'O' },
        { "backing-chain", no_argument, NULL, 'b' },
        { "force-share", no_argument, NULL, 'U' },
        { "image-opts", no_argument, NULL, 'I' },
        { NULL, 0, NULL, 0 },
    };
    struct info_opts o = { 0 };
    const char *output = NULL;
    int c;

    while ((c = getopt_long(argc, argv, ":f:hU", longopts, NULL)) != -1) {
        switch (c) {
        case 'f': o.fmt = optarg; break;
        case 'h': return img_help();
        case 'U': img_force_share = true; break;
        case 'b': o.chain = true; break;
        case 'O': output = optarg; break;
        case 'I': img_image_opts_given = true; break;
        default:
            return img_bad_option(c, argv);
        }
    }
    if (optind != argc - 1) {
        return img_usage("Expecting one image file name");
    }
    /* Checked after the file name, as qemu-img checks it. */
    if (output && img_parse_output(output, &o.json) < 0) {
        return 1;
    }
    return info_chain(argv[optind], &o);
}
