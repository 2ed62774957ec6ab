/*
 * coblk-nbd's options: qemu-nbd's names and defaults.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nbd.h"

void nbd_error(const char *fmt, ...)
{
    va_list ap;

    fputs("coblk-nbd: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void usage(void)
{
    printf("Usage: coblk-nbd [OPTIONS] FILE\n"
           "Exports FILE (or a coblk device spec) over NBD, as qemu-nbd.\n"
           "\n"
           "  -p, --port=PORT           port to listen on (default 10809)\n"
           "  -b, --bind=IFACE          interface to bind to (default "
           "0.0.0.0)\n"
           "  -k, --socket=PATH         listen on a Unix socket instead\n"
           "  -x, --export-name=NAME    the export's name (default \"\")\n"
           "  -D, --description=TEXT    the export's description\n"
           "  -f, --format=FORMAT       raw or qcow2 (default: probed)\n"
           "  -r, --read-only           export read-only\n"
           "  -A, --allocation-depth    offer the qemu:allocation-depth "
           "context\n"
           "  -e, --shared=NUM          clients at once (default 1; 0: any)\n"
           "  -t, --persistent          keep serving after the last "
           "client\n"
           "  -n, --nocache             same as --cache=none\n"
           "      --cache=MODE          none, directsync, writeback "
           "(default), writethrough or unsafe\n"
           "      --fork                go to the background once "
           "listening\n"
           "      --pid-file=PATH       write the server's process id\n"
           "      --handshake-limit=N   seconds a client has to finish the "
           "handshake (default 10; 0: no limit)\n"
           "  -v, --verbose             report connections on stderr\n"
           "  -h, --help                this text\n"
           "  -V, --version             the version\n");
}

static bool set_cache(struct nbd_options *o, const char *mode)
{
    if (!strcmp(mode, "none") || !strcmp(mode, "off") ||
        !strcmp(mode, "directsync")) {
        o->direct = true;
    } else if (!strcmp(mode, "unsafe")) {
        o->no_flush = true;
    } else if (strcmp(mode, "writeback") && strcmp(mode, "writethrough")) {
        nbd_error("Invalid cache mode '%s'", mode);
        return false;
    }
    return true;
}

static bool set_shared(struct nbd_options *o, const char *arg)
{
    char *end;
    errno = 0;
    long n = strtol(arg, &end, 10);

    if (errno || end == arg || *end || n < 0 || n > INT_MAX) {
        nbd_error("Invalid shared device number '%s'", arg);
        return false;
    }
    o->shared = (unsigned)n;
    return true;
}

enum { OPT_FORK = 256, OPT_PID_FILE, OPT_CACHE, OPT_HANDSHAKE_LIMIT };

/* --handshake-limit=N seconds; 0 lifts the limit. */
static bool set_handshake_limit(struct nbd_options *o, const char *arg)
{
    char *end;
    errno = 0;
    unsigned long n = strtoul(arg, &end, 10);

    if (errno || end == arg || *end || *arg == '-' || n >= UINT_MAX) {
        nbd_error("Invalid handshake limit '%s' (seconds; 0 for none)", arg);
        return false;
    }
    o->handshake_limit = n ? (unsigned)n : UINT_MAX;
    return true;
}

int nbd_parse_options(int argc, char **argv, struct nbd_options *o)
{
    static const struct option longs[] = {
        { "port", required_argument, NULL, 'p' },
        { "bind", required_argument, NULL, 'b' },
        { "socket", required_argument, NULL, 'k' },
        { "export-name", required_argument, NULL, 'x' },
        { "description", required_argument, NULL, 'D' },
        { "format", required_argument, NULL, 'f' },
        { "read-only", no_argument, NULL, 'r' },
        { "allocation-depth", no_argument, NULL, 'A' },
        { "shared", required_argument, NULL, 'e' },
        { "persistent", no_argument, NULL, 't' },
        { "nocache", no_argument, NULL, 'n' },
        { "cache", required_argument, NULL, OPT_CACHE },
        { "fork", no_argument, NULL, OPT_FORK },
        { "pid-file", required_argument, NULL, OPT_PID_FILE },
        { "handshake-limit", required_argument, NULL, OPT_HANDSHAKE_LIMIT },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    int c;

    *o = (struct nbd_options){ .port = "10809", .shared = 1 };
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":p:b:k:x:D:f:rAe:tnvhV", longs,
                            NULL)) != -1) {
        switch (c) {
        case 'p': o->port = optarg; break;
        case 'b': o->bind = optarg; break;
        case 'k': o->socket_path = optarg; break;
        case 'x': o->export_name = optarg; break;
        case 'D': o->description = optarg; break;
        case 'f': o->format = optarg; break;
        case 'r': o->read_only = true; break;
        case 'A': o->allocation_depth = true; break;
        case 't': o->persistent = true; break;
        case 'n': o->direct = true; break;
        case 'v': o->verbose = true; break;
        case OPT_FORK: o->fork = true; break;
        case OPT_PID_FILE: o->pid_file = optarg; break;
        case 'e':
            if (!set_shared(o, optarg)) {
                return 1;
            }
            break;
        case OPT_CACHE:
            if (!set_cache(o, optarg)) {
                return 1;
            }
            break;
        case OPT_HANDSHAKE_LIMIT:
            if (!set_handshake_limit(o, optarg)) {
                return 1;
            }
            break;
        case 'h':
            usage();
            return 0;
        case 'V':
            printf("coblk-nbd %s\n", PACKAGE_VERSION);
            return 0;
        case ':':
            nbd_error("option '%s' requires an argument", argv[optind - 1]);
            nbd_error("Try 'coblk-nbd --help' for more information.");
            return 1;
        default:
            nbd_error("unrecognized option '%s'", argv[optind - 1]);
            nbd_error("Try 'coblk-nbd --help' for more information.");
            return 1;
        }
    }
    if (optind != argc - 1) {
        nbd_error("%s", optind == argc ? "Expected exactly one file "
                  "argument" : "Too many arguments");
        nbd_error("Try 'coblk-nbd --help' for more information.");
        return 1;
    }
    o->filename = argv[optind];
    if (o->socket_path && (o->bind || strcmp(o->port, "10809"))) {
        nbd_error("-k is incompatible with -b and -p");
        return 1;
    }
    return -1;
}
