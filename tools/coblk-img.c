/*
 * coblk-img: qemu-img's command lines, output and exit codes, on libcoblk.
 * Each command lives in tools/img/; this file picks one.  Uses the public
 * API only.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "img/img.h"

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *syntax;
};

static const struct command commands[] = {
    { "amend", img_amend,
      "amend [--image-opts] [-p] [-q] [-f fmt] [-t cache] [--force] -o options filename" },
    { "bench", img_bench,
      "bench [--image-opts] [-c count] [-d depth] [-f fmt] "
      "[--flush-interval=flush_interval] [-i aio] [-n] [--no-drain] "
      "[-o offset] [--pattern=pattern] [-q] [-s buffer_size] "
      "[-S step_size] [-t cache] [-w] [-U] [--output=human|json] "
      "filename" },
    { "bitmap", img_bitmap,
      "bitmap (--merge SOURCE | --add | --remove | --clear | --enable | "
      "--disable)... [-b source_file [-F source_fmt]] [-g granularity] "
      "[--image-opts | -f fmt] filename bitmap" },
    { "check", img_check,
      "check [--image-opts] [-q] [-f fmt] [--output=ofmt] [-r [leaks | all]] [-T src_cache] "
      "[-U] filename" },
    { "commit", img_commit,
      "commit [--image-opts] [-q] [-f fmt] [-t cache] [-b base] [-r rate_limit] [-d] [-p] "
      "filename" },
    { "compare", img_compare,
      "compare [--image-opts] [-f fmt] [-F fmt] [-T src_cache] [-p] [-q] [-s] [-U] "
      "filename1 filename2" },
    { "convert", img_convert,
      "convert [--image-opts] [--target-is-zero] [--bitmaps] [-U] [-C] [-c] [-p] [-q] [-n] [-f fmt] "
      "[-t cache] [-T src_cache] [-O output_fmt] [-B backing_file "
      "[-F backing_fmt]] [-o options] [-l snapshot_param] [-S sparse_size] "
      "[-r rate_limit] [-m num_coroutines] [-W] [--salvage] filename "
      "[filename2 [...]] output_filename" },
    { "create", img_create,
      "create [-q] [-f fmt] [-b backing_file [-F backing_fmt]] [-u] "
      "[-o options] filename [size]" },
    { "dd", img_dd,
      "dd [-U] [-f fmt] [-O output_fmt] [bs=block_size] [count=blocks] "
      "[skip=blocks] if=input of=output" },
    { "info", img_info,
      "info [--image-opts] [-f fmt] [--output=ofmt] [--backing-chain] [-U] filename" },
    { "map", img_map,
      "map [--image-opts] [-f fmt] [--start-offset=offset] [--max-length=len] "
      "[--output=ofmt] [-U] filename" },
    { "measure", img_measure,
      "measure [--output=ofmt] [-O output_fmt] [-o options] [--size N | "
      "[--image-opts] [-f fmt] [-l snapshot_param] filename]" },
    { "snapshot", img_snapshot,
      "snapshot [--image-opts] [-U] [-q] [-l | -a snapshot | -c snapshot | -d snapshot] "
      "filename" },
    { "rebase", img_rebase,
      "rebase [--image-opts] [-U] [-q] [-f fmt] [-t cache] [-T src_cache] [-p] [-u] "
      "-b backing_file [-F backing_fmt] filename" },
    { "resize", img_resize,
      "resize [--image-opts] [-f fmt] [--preallocation=prealloc] [-q] [--shrink] filename "
      "[+ | -]size" },
};

#define NR_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void print_version(void)
{
    printf("%s version " PACKAGE_VERSION " (libcoblk), qemu-img 7.2 "
           "command lines\n", IMG_PROG);
}

int img_help(void)
{
    print_version();
    printf("usage: %s [standard options] command [command options]\n",
           IMG_PROG);
    printf("Disk image utility on libcoblk (qemu-img's command lines)\n\n"
           "    '-h', '--help'       display this help and exit\n"
           "    '-V', '--version'    output version information and exit\n\n"
           "Command syntax:\n");
    for (size_t i = 0; i < NR_COMMANDS; i++) {
        printf("  %s\n", commands[i].syntax);
    }
    printf("\nCommand parameters:\n"
           "  'filename' is a disk image filename, or a coblk spec "
           "(coblk(3))\n"
           "  'fmt' is the disk image format. It is guessed automatically "
           "in most cases\n"
           "  'size' is the disk image size in bytes. Optional suffixes\n"
           "    'k' or 'K' (kilobyte, 1024), 'M' (megabyte, 1024k), 'G' "
           "(gigabyte, 1024M),\n"
           "    'T' (terabyte, 1024G), 'P' (petabyte, 1024T) and 'E' "
           "(exabyte, 1024P)  are\n"
           "    supported. 'b' is ignored.\n"
           "  'output_filename' is the destination disk image filename\n"
           "  'output_fmt' is the destination format\n"
           "  'options' is a comma separated list of format specific options "
           "in a\n"
           "    name=value format.\n"
           "  '-c' indicates that target image must be compressed (qcow2 "
           "only)\n"
           "  '-p' show progress of command (only certain commands)\n"
           "  '-q' use Quiet mode - do not print any output (except errors)\n"
           "  '-S' indicates the consecutive number of bytes (defaults to 4k) "
           "that must\n"
           "       contain only zeros for coblk-img to create a sparse "
           "image during\n"
           "       conversion.\n"
           "  '--output' takes the format in which the output must be done "
           "(human or json)\n"
           "  '-n' skips the target volume creation\n"
           "  '-m' specifies how many requests are in flight during the "
           "convert\n"
           "       process (defaults to 8)\n"
           "\nSupported formats: qcow2 raw\n"
           "\nSee coblk-img(1).\n");
    return 0;
}

/* -T / --trace PATTERN[,...]: taken as qemu-img takes it; coblk-img has no
 * trace events, so a pattern enables none (qemu-img's warning). */
static void trace_option(const char *arg)
{
    char *copy = strdup(arg);

    for (char *save = NULL, *item = strtok_r(copy, ",", &save); item;
         item = strtok_r(NULL, ",", &save)) {
        const char *pattern = !strncmp(item, "enable=", 7) ? item + 7
                              : strchr(item, '=') ? NULL : item;
        if (pattern && *pattern) {
            fprintf(stderr, "%s: warning: trace event '%s' does not exist\n",
                    IMG_PROG, pattern);
        }
    }
    free(copy);
}

/* The global options before the command that need an argument: how many
 * words they take (0: argv[i] is none of them). */
static int trace_words(char **argv, int i, int argc)
{
    const char *a = argv[i];

    if (!strcmp(a, "-T") || !strcmp(a, "--trace")) {
        if (i + 1 >= argc) {
            return -1;
        }
        trace_option(argv[i + 1]);
        return 2;
    }
    if (!strncmp(a, "-T", 2) || !strncmp(a, "--trace=", 8)) {
        trace_option(a[1] == 'T' ? a + 2 : a + 8);
        return 1;
    }
    return 0;
}

const char *img_prog = "coblk-img";

int main(int argc, char **argv)
{
    const char *called = argc > 0 ? strrchr(argv[0], '/') : NULL;
    if (argc > 0 && !strcmp(called ? called + 1 : argv[0], "qemu-img")) {
        img_prog = "qemu-img";
    }
    int first = 1;
    for (int n; first < argc && (n = trace_words(argv, first, argc)) != 0;
         first += n) {
        if (n < 0) {
            return img_usage("missing argument for option '%s'",
                             argv[first]);
        }
    }
    if (first < argc && !strcmp(argv[first], "--")) {
        first++;                    /* the end of the global options */
    }
    argc -= first - 1;
    argv += first - 1;
    if (argc < 2) {
        return img_usage("Not enough arguments");
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
        return img_help();
    }
    if (!strcmp(cmd, "-V") || !strcmp(cmd, "--version")) {
        print_version();
        return 0;
    }
    if (cmd[0] == '-') {
        return img_usage("unrecognized option '%s'", cmd);
    }
    for (size_t i = 0; i < NR_COMMANDS; i++) {
        if (!strcmp(cmd, commands[i].name)) {
            /* getopt sees the command as argv[0]. */
            return commands[i].run(argc - 1, argv + 1);
        }
    }
    return img_usage("Command not found: %s", cmd);
}
