/*
 * coblk-img check: an image's metadata checked (and repaired with -r), in
 * qemu-img check's words, JSON and exit codes: 0 clean, 1 the check could
 * not run, 2 corruptions, 3 leaks only, 63 a format without checks.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <string.h>

#include "img/img.h"

enum { EXIT_CORRUPT = 2, EXIT_LEAKS = 3, EXIT_NO_CHECKS = 63 };

struct check_opts {
    const char *fmt;
    bool json, quiet;
    unsigned repair;
};

static void report_line(void *opaque, const char *line)
{
    (void)opaque;
    fprintf(stderr, "%s\n", line);
}

static void print_human(const struct coblk_check *c)
{
    if (!c->corruptions && !c->leaks && !c->check_errors) {
        printf("No errors were found on the image.\n");
    }
    if (c->corruptions) {
        printf("\n%" PRIu64 " errors were found on the image.\n"
               "Data may be corrupted, or further writes to the image may "
               "corrupt it.\n", c->corruptions);
    }
    if (c->leaks) {
        printf("\n%" PRIu64 " leaked clusters were found on the image.\n"
               "This means waste of disk space, but no harm to data.\n",
               c->leaks);
    }
    if (c->check_errors) {
        printf("\n%" PRIu64 " internal errors have occurred during the "
               "check.\n", c->check_errors);
    }
    if (c->total_clusters && c->allocated_clusters) {
        printf("%" PRIu64 "/%" PRIu64 " = %0.2f%% allocated, %0.2f%% "
               "fragmented, %0.2f%% compressed clusters\n",
               c->allocated_clusters, c->total_clusters,
               c->allocated_clusters * 100.0 / c->total_clusters,
               c->fragmented_clusters * 100.0 / c->allocated_clusters,
               c->compressed_clusters * 100.0 / c->allocated_clusters);
    }
    if (c->image_end_offset) {
        printf("Image end offset: %" PRIu64 "\n", c->image_end_offset);
    }
}

/* Adds key: v to o when v is not 0, as qemu-img leaves zero counters out. */
static void add_counter(struct json *o, const char *key, uint64_t v)
{
    if (v) {
        json_add(o, key, json_uint(v));
    }
}

static int print_json(const char *filename, const char *format,
                      const struct coblk_check *c)
{
    struct json *o = json_object();

    json_add(o, "filename", json_string(filename));
    json_add(o, "format", json_string(format));
    json_add(o, "check-errors", json_uint(c->check_errors));
    add_counter(o, "image-end-offset", c->image_end_offset);
    add_counter(o, "corruptions", c->corruptions);
    add_counter(o, "leaks", c->leaks);
    add_counter(o, "corruptions-fixed", c->corruptions_fixed);
    add_counter(o, "leaks-fixed", c->leaks_fixed);
    add_counter(o, "total-clusters", c->total_clusters);
    add_counter(o, "allocated-clusters", c->allocated_clusters);
    add_counter(o, "fragmented-clusters", c->fragmented_clusters);
    add_counter(o, "compressed-clusters", c->compressed_clusters);
    int ret = json_print(stdout, o);
    json_free(o);
    return ret;
}

/* Checks (and repairs) img into *c; then, after a repair, checks again as
 * qemu-img does, keeping what the repair fixed. */
static int run_check(struct img *img, const struct check_opts *o,
                     struct coblk_check *c)
{
    *c = (struct coblk_check){ .repair = o->repair, .report = report_line };
    int ret = coblk_check(img->dev, c, sizeof(*c));
    if (ret < 0 || !(c->corruptions_fixed || c->leaks_fixed)) {
        return ret;
    }
    if (!o->json && !o->quiet) {
        printf("The following inconsistencies were found and repaired:\n\n"
               "    %" PRIu64 " leaked clusters\n"
               "    %" PRIu64 " corruptions\n\n"
               "Double checking the fixed image now...\n",
               c->leaks_fixed, c->corruptions_fixed);
    }
    uint64_t leaks_fixed = c->leaks_fixed;
    uint64_t corruptions_fixed = c->corruptions_fixed;
    *c = (struct coblk_check){ .report = report_line };
    ret = coblk_check(img->dev, c, sizeof(*c));
    c->leaks_fixed = leaks_fixed;
    c->corruptions_fixed = corruptions_fixed;
    return ret;
}

static int check_image(const char *filename, const struct check_opts *o)
{
    struct img img;
    unsigned flags = o->repair ? IMG_OPEN_RW | IMG_OPEN_CHECK : 0;

    if (img_open(&img, filename, o->fmt, flags) < 0) {
        return 1;
    }
    struct coblk_check c;
    int ret = run_check(&img, o, &c);
    if (ret == -ENOTSUP) {
        img_error("This image format does not support checks");
        img_close(&img);
        return EXIT_NO_CHECKS;
    }
    if (ret == 0 && !o->quiet) {
        if (o->json) {
            print_json(filename, img.format, &c);
        } else {
            print_human(&c);
        }
    }
    img_close(&img);
    if (ret < 0) {
        img_error("Check failed: %s", strerror(-ret));
        return 1;
    }
    if (c.check_errors) {
        img_error("Check failed");
        return 1;
    }
    return c.corruptions ? EXIT_CORRUPT : c.leaks ? EXIT_LEAKS : 0;
}

int img_check(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "image-opts", no_argument, NULL, IMG_OPT_IMAGE_OPTS },
        { "format", required_argument, NULL, 'f' },
        { "repair", required_argument, NULL, 'r' },
        { "output", required_argument, NULL, 'O' },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    struct check_opts o = { 0 };
    const char *output = NULL;
    int c;

    while ((c = getopt_long(argc, argv, ":hf:r:T:qU", longopts, NULL)) !=
           -1) {
        switch (c) {
        case IMG_OPT_IMAGE_OPTS: img_image_opts_given = true; break;
        case 'h': return img_help();
        case 'f': o.fmt = optarg; break;
        case 'q': o.quiet = true; break;
        case 'T': break;
        case 'U': img_force_share = true; break;
        case 'r':
            if (!strcmp(optarg, "leaks")) {
                o.repair = COBLK_CHECK_REPAIR_LEAKS;
            } else if (!strcmp(optarg, "all")) {
                o.repair = COBLK_CHECK_REPAIR_LEAKS |
                           COBLK_CHECK_REPAIR_ERRORS;
            } else {
                return img_usage("Unknown option value for -r (expecting "
                                 "'leaks' or 'all'): %s", optarg);
            }
            break;
        case 'O': output = optarg; break;
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
    return check_image(argv[optind], &o);
}
