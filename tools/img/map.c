/*
 * coblk-img map: where an image's data lives, layer by layer, as qemu-img
 * map prints it.  Only metadata is read: a sparse image of any size maps
 * in time proportional to its allocated extents.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "img/img.h"

#define CHAIN_MAX 256

struct entry {
    uint64_t start, length, offset;
    uint32_t depth;
    bool data, zero, present, has_offset;
};

struct map {
    struct img img;
    bool json;
    uint64_t start, end, size;
    char *layers[CHAIN_MAX];        /* each layer's file, by depth */
    unsigned nr_layers;
    int status;                     /* exit status */
};

/* Names of the files of the chain, as qemu-img map prints them.  The top
 * one is m->img, open already: a second connection to an NBD server that
 * takes one client at a time would wait for ever. */
static int name_layers(struct map *m, const char *filename)
{
    const char *name = strncmp(filename, "file:", 5) ? filename : filename + 5;
    char *next_fmt = NULL;

    m->layers[0] = img_display_name(name);
    for (unsigned i = 0; m->layers[i] && i + 1 < CHAIN_MAX; i++) {
        struct img layer = m->img;
        struct coblk_image_info info;
        m->nr_layers = i + 1;
        int ret = i == 0 ? 0 : img_open(&layer, m->layers[i], next_fmt,
                                        IMG_OPEN_NO_BACKING | IMG_OPEN_QUIET |
                                            IMG_OPEN_PLAIN_NAME);
        free(next_fmt);
        next_fmt = NULL;
        if (ret < 0) {
            return ret;
        }
        ret = coblk_image_info(layer.dev, &info, sizeof(info));
        if (ret == 0 && info.full_backing_file) {
            m->layers[i + 1] = strdup(info.full_backing_file);
            next_fmt = info.backing_format ? strdup(info.backing_format)
                                           : NULL;
        }
        if (i > 0) {
            img_close(&layer);
        }
    }
    free(next_fmt);
    return 0;
}

static bool mergeable(const struct entry *a, const struct entry *b)
{
    return a->length && a->zero == b->zero && a->data == b->data &&
           a->depth == b->depth && a->present == b->present &&
           a->has_offset == b->has_offset &&
           (!a->has_offset || a->offset + a->length == b->offset);
}

static const char *layer_name(const struct map *m, uint32_t depth)
{
    return depth < m->nr_layers && m->layers[depth] ? m->layers[depth] : "";
}

/* Prints e; next (or NULL at the end) may be changed for the human form,
 * which does not tell zeroes from holes. */
static int print_entry(const struct map *m, const struct entry *e,
                       struct entry *next)
{
    if (m->json) {
        printf("{ \"start\": %" PRIu64 ", \"length\": %" PRIu64 ", "
               "\"depth\": %" PRIu32 ", \"present\": %s, \"zero\": %s, "
               "\"data\": %s", e->start, e->length, e->depth,
               e->present ? "true" : "false", e->zero ? "true" : "false",
               e->data ? "true" : "false");
        if (e->has_offset) {
            printf(", \"offset\": %" PRIu64, e->offset);
        }
        fputs(next ? "},\n" : "}", stdout);
        return 0;
    }
    if (e->data && !e->has_offset) {
        img_error("File contains external, encrypted or compressed "
                  "clusters.");
        return -ENOTSUP;
    }
    if (e->data && !e->zero) {
        printf("%#-16" PRIx64 "%#-16" PRIx64 "%#-16" PRIx64 "%s\n", e->start,
               e->length, e->has_offset ? e->offset : 0,
               layer_name(m, e->depth));
    }
    if (next && (!next->data || next->zero)) {
        next->data = false;
        next->zero = true;
    }
    return 0;
}

static int coroutine_fn map_co(void *opaque)
{
    struct map *m = opaque;
    struct entry curr = { .start = m->start }, next;
    /* Past the device's end, up to a whole sector, only as its last run. */
    uint64_t query_end = m->end < m->size ? m->end : m->size;

    while (curr.start + curr.length < query_end) {
        uint64_t at = curr.start + curr.length;
        struct coblk_block_status bs;
        int ret = coblk_co_block_status(m->img.dev, at, query_end - at, &bs);
        if (ret < 0) {
            img_error("Could not read file metadata: %s", strerror(-ret));
            return 1;
        }
        next = (struct entry){
            .start = at, .length = bs.bytes, .depth = bs.depth,
            .data = bs.flags & COBLK_BS_DATA,
            .zero = bs.flags & COBLK_BS_ZERO,
            .present = bs.flags & COBLK_BS_ALLOCATED,
            .has_offset = (bs.flags & COBLK_BS_OFFSET_VALID) &&
                          !(bs.flags & COBLK_BS_COMPRESSED),
            .offset = bs.host_offset,
        };
        if (mergeable(&curr, &next)) {
            curr.length += next.length;
            continue;
        }
        if (curr.length && print_entry(m, &curr, &next) < 0) {
            return 1;
        }
        curr = next;
    }
    if (m->end > query_end && curr.start + curr.length == query_end) {
        /* The rest of the last sector, past the file's end: a hole. */
        next = (struct entry){ .start = query_end,
                               .length = m->end - query_end,
                               .zero = true, .present = true,
                               .has_offset = true, .offset = query_end };
        if (curr.length && print_entry(m, &curr, &next) < 0) {
            return 1;
        }
        curr = next;
    }
    /* A range past the end still gets its (empty) entry, as in qemu-img. */
    return print_entry(m, &curr, NULL) < 0 ? 1 : 0;
}

static int run_map(struct map *m, const char *filename, const char *fmt,
                   const uint64_t *max_length)
{
    if (img_open(&m->img, filename, fmt, 0) < 0) {
        return 1;
    }
    int ret = name_layers(m, m->img.filename) < 0 ? 1 : 0;
    int64_t size = coblk_dev_size(m->img.dev);
    m->size = size < 0 ? 0 : (uint64_t)size;
    /* QEMU counts whole sectors: a raw file's partial last one too. */
    uint64_t end = (m->size + 511) & ~511ull;
    if (max_length && *max_length < end - (m->start < end ? m->start : end)) {
        end = m->start + *max_length;
    }
    m->end = end;
    if (ret == 0) {
        fputs(m->json ? "[" : "Offset          Length          Mapped to  "
                              "     File\n", stdout);
        ret = img_run(map_co, m);
        if (m->json) {
            fputs("]\n", stdout);
        }
    }
    for (unsigned i = 0; i < CHAIN_MAX; i++) {
        free(m->layers[i]);
    }
    img_close(&m->img);
    return ret ? 1 : 0;
}

static int parse_offset(const char *arg, const char *what, uint64_t *out)
{
    return img_parse_size_option(what, arg, 0, INT64_MAX, out) < 0 ? -1 : 0;
}

int img_map(int argc, char **argv)
{
    enum { OPT_START = 256, OPT_MAX_LENGTH, OPT_OUTPUT };
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "image-opts", no_argument, NULL, IMG_OPT_IMAGE_OPTS },
        { "format", required_argument, NULL, 'f' },
        { "output", required_argument, NULL, OPT_OUTPUT },
        { "force-share", no_argument, NULL, 'U' },
        { "start-offset", required_argument, NULL, OPT_START },
        { "max-length", required_argument, NULL, OPT_MAX_LENGTH },
        { NULL, 0, NULL, 0 },
    };
    static struct map m;
    const char *fmt = NULL;
    uint64_t max_length = 0;
    bool has_max_length = false;
    const char *output = NULL;
    int c;

    while ((c = getopt_long(argc, argv, ":f:hU", longopts, NULL)) != -1) {
        switch (c) {
        case IMG_OPT_IMAGE_OPTS: img_image_opts_given = true; break;
        case 'h': return img_help();
        case 'f': fmt = optarg; break;
        case 'U': img_force_share = true; break;
        case OPT_START:
            if (parse_offset(optarg, "start offset", &m.start) < 0) {
                return 1;
            }
            break;
        case OPT_MAX_LENGTH:
            if (parse_offset(optarg, "max length", &max_length) < 0) {
                return 1;
            }
            has_max_length = true;
            break;
        case OPT_OUTPUT: output = optarg; break;
        default:
            return img_bad_option(c, argv);
        }
    }
    if (optind != argc - 1) {
        return img_usage("Expecting one image file name");
    }
    /* Checked after the file name, as qemu-img checks it. */
    if (output && img_parse_output(output, &m.json) < 0) {
        return 1;
    }
    return run_map(&m, argv[optind], fmt,
                   has_max_length ? &max_length : NULL);
}
