/*
 * coblk-img snapshot: an image's internal snapshots, listed as qemu-img
 * snapshot -l lists them.  Creating, applying and deleting them (-c, -a,
 * -d) needs snapshot support in the library's qcow2 writer, which it does
 * not have yet: those are refused with a message.
 */
#include "config.h"

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

int img_snapshot(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    char action = 0;
    int c;

    while ((c = getopt_long(argc, argv, ":la:c:d:hqU", longopts, NULL)) !=
           -1) {
        switch (c) {
        case 'h': return img_help();
        case 'q': break;
        case 'U': img_force_share = true; break;
        case 'l': case 'a': case 'c': case 'd':
            if (action) {
                return img_usage("Cannot mix '-l', '-a', '-c', '-d'");
            }
            action = (char)c;
            break;
        default:
            return img_bad_option(c, argv);
        }
    }
    if (optind != argc - 1) {
        return img_usage("Expecting one image file name");
    }
    if (action && action != 'l') {
        img_error("snapshot -%c: creating, applying and deleting internal "
                  "snapshots is not supported by " IMG_PROG " yet (qcow2 "
                  "images with snapshots open read-only)", action);
        return 1;
    }
    return list(argv[optind], action == 'l');
}
