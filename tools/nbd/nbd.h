/*
 * coblk-nbd: qemu-nbd's command line on libcoblk's NBD export.
 */
#ifndef COBLK_TOOLS_NBD_H
#define COBLK_TOOLS_NBD_H

#include <stdbool.h>

struct nbd_options {
    const char *format;         /* -f; NULL: probe */
    const char *filename;       /* a file or a coblk spec */
    bool read_only;             /* -r */
    const char *export_name;    /* -x */
    const char *description;    /* -D */
    const char *bind;           /* -b */
    const char *port;           /* -p */
    const char *socket_path;    /* -k */
    unsigned shared;            /* -e; 0: no limit */
    bool persistent;            /* -t */
    bool fork;                  /* --fork */
    const char *pid_file;       /* --pid-file */
    bool allocation_depth;      /* -A */
    unsigned handshake_limit;   /* --handshake-limit; as the export's */
    bool direct;                /* -n, --cache=none|directsync */
    bool no_flush;              /* --cache=unsafe */
    bool verbose;               /* -v */
};

/* Parses argv into o.  Returns -1 to go on, or the exit status (0 after
 * --help or --version, 1 after a usage error it printed). */
int nbd_parse_options(int argc, char **argv, struct nbd_options *o);

/* Opens the listening socket o asks for; prints why not and returns -1. */
int nbd_listen(const struct nbd_options *o);

/* Prints "coblk-nbd: " and the message to stderr. */
void nbd_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* COBLK_TOOLS_NBD_H */
