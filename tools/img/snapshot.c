/*
 * coblk-img snapshot: an image's internal snapshots, listed (-l),
 * created (-c), applied (-a) and deleted (-d) as qemu-img snapshot does,
 * with its messages.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <string.h>

#include "img/img.h"

/* Lists the snapshots (-l); with print false only opens the image, as
 * qemu-img snapshot without an action does. */
static int list(const char *filename, bool print)
{
    struct img img;
    struct coblk_image_info info;

    if (img_open(&img, filename, NULL, IMG_OPEN_NO_BACKING) < 0) {
        return 1;
    }
    int ret = coblk_image_info(img.dev, &info, sizeof(info));
    if (ret == 0 && print && info.nb_snapshots) {
        printf("Snapshot list:\n");
        img_snapshot_header(stdout);
        for (unsigned i = 0; i < info.nb_snapshots; i++) {
            img_snapshot_row(stdout, &info.snapshots[i]);
        }
    }
    img_close(&img);
    return ret < 0 ? 1 : 0;
}

/* qemu-img keeps a new snapshot's name in 256 bytes. */
#define NAME_KEPT 255

/* Creates, applies or deletes (action -c, -a, -d) snapshot `name`. */
static int change(const char *filename, char action, const char *name)
{
    struct img img;
    char kept[NAME_KEPT + 1];

    if (img_open(&img, filename, NULL, IMG_OPEN_RW | IMG_OPEN_NO_BACKING) <
        0) {
        return 1;
    }
    int ret;
    switch (action) {
    case 'c':
        snprintf(kept, sizeof(kept), "%s", name);
        ret = coblk_snapshot_create(img.dev, kept);
        if (ret < 0) {
            img_error("Could not create snapshot '%s': %d (%s)", kept, ret,
                      strerror(-ret));
        }
        break;
    case 'a':
        ret = coblk_snapshot_apply(img.dev, name);
        if (ret < 0 && img_snapshot_unusable()) {
            img_error("%s", coblk_last_error());
        }
        if (ret == -ENOENT || (ret < 0 && img_snapshot_unusable())) {
            img_error("Could not apply snapshot '%s': Failed to load "
                      "snapshot: %s", name, strerror(-ret));
        } else if (ret < 0) {
            img_error("Could not apply snapshot '%s': %s", name,
                      coblk_last_error());
        }
        break;
    default:
        ret = coblk_snapshot_delete(img.dev, name);
        if (ret < 0) {
            img_error("Could not delete snapshot '%s': %s", name,
                      ret == -ENOENT ? "snapshot not found"
                                     : coblk_last_error());
        }
        break;
    }
    img_close(&img);
    return ret < 0 ? 1 : 0;
}

int img_snapshot(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "image-opts", no_argument, NULL, IMG_OPT_IMAGE_OPTS },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    const char *name = NULL;
    char action = 0;
    int c;

    while ((c = getopt_long(argc, argv, ":la:c:d:hqU", longopts, NULL)) !=
           -1) {
        switch (c) {
        case IMG_OPT_IMAGE_OPTS: img_image_opts_given = true; break;
        case 'h': return img_help();
        case 'q': break;
        case 'U': img_force_share = true; break;
        case 'l': case 'a': case 'c': case 'd':
            if (action) {
                return img_usage("Cannot mix '-l', '-a', '-c', '-d'");
            }
            action = (char)c;
            name = optarg;
            break;
        default:
            return img_bad_option(c, argv);
        }
    }
    if (optind != argc - 1) {
        return img_usage("Expecting one image file name");
    }
    if (action && action != 'l') {
        return change(argv[optind], action, name);
    }
    return list(argv[optind], action == 'l');
}
