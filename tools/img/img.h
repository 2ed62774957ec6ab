/*
 * coblk-img: what the commands share.  Each command is one function,
 * img_CMD(argc, argv), returning the process's exit status as qemu-img's
 * would be.
 */
#ifndef COBLK_IMG_IMG_H
#define COBLK_IMG_IMG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "coblk/coblk.h"

/* The name the tool gives itself: "coblk-img", or "qemu-img" when run by
 * that name (a drop-in link), so that its messages read as the ones the
 * scripts it stands in for expect. */
extern const char *img_prog;
#define IMG_PROG img_prog

/* The commands. */
int img_amend(int argc, char **argv);
int img_bench(int argc, char **argv);
int img_bitmap(int argc, char **argv);
int img_check(int argc, char **argv);
int img_commit(int argc, char **argv);
int img_compare(int argc, char **argv);
int img_convert(int argc, char **argv);
int img_create(int argc, char **argv);
int img_dd(int argc, char **argv);
int img_info(int argc, char **argv);
int img_map(int argc, char **argv);
int img_measure(int argc, char **argv);
int img_rebase(int argc, char **argv);
int img_resize(int argc, char **argv);
int img_snapshot(int argc, char **argv);

/* convert --bitmaps (bitmap.c), with qemu-img's messages: whether the
 * source can give its bitmaps (none in use, unless skip_broken), whether
 * the target can take them; then the copy, each bitmap added and filled
 * (those in use skipped, with a warning).  0 or -errno. */
int img_bitmaps_check_source(struct coblk_dev *src, bool skip_broken);
int img_bitmaps_check_target(struct coblk_dev *dst);
int img_bitmaps_copy(struct coblk_dev *src, struct coblk_dev *dst);

/* ---- messages (util.c) -------------------------------------------------- */

/* "coblk-img: MESSAGE" on stderr. */
void img_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Whether the library's last error says a snapshot's tables cannot be
 * used (a corrupt snapshot table entry): qemu-img words those as a failed
 * snapshot load. */
bool img_snapshot_unusable(void);

/* A usage error: the message, then where help is; returns exit status 1. */
int img_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The usage error getopt_long's result c stands for (an unknown option or
 * a missing argument); for '?' and ':'.  Returns 1. */
int img_bad_option(int c, char **argv);

/* --output=human|json into *json; -EINVAL with qemu-img's message. */
int img_parse_output(const char *arg, bool *json);

/* Prints the global help (the command list) and returns 0. */
int img_help(void);

/* ---- numbers -------------------------------------------------------------- */

/* qemu's size syntax: a number (0x hex allowed), a fraction only with a
 * suffix, one of B k K M G T P E (powers of 1024).  Returns 0 or -EINVAL
 * (-ERANGE past 2^64 - 1). */
int img_parse_size(const char *s, uint64_t *out);

/* A size option named `what`, from min to max: 0, or -EINVAL / -ERANGE
 * after qemu-img's messages for it (a bad suffix, out of range). */
int img_parse_size_option(const char *what, const char *arg, uint64_t min,
                          uint64_t max, uint64_t *out);

/* qemu's human size, "1 GiB", "1.32 MiB", "512 B", into buf. */
const char *img_size_str(uint64_t bytes, char buf[32]);

/* ---- images --------------------------------------------------------------- */

enum {
    IMG_OPEN_RW = 1u << 0,
    IMG_OPEN_NO_BACKING = 1u << 1,  /* the image alone (info, check) */
    IMG_OPEN_QUIET = 1u << 2,       /* no warning for a probed raw image */
    IMG_OPEN_DIRECT = 1u << 3,      /* -t none: O_DIRECT */
    IMG_OPEN_NO_FLUSH = 1u << 4,    /* -t unsafe: flushes do nothing */
    IMG_OPEN_CHECK = 1u << 5,       /* check -r: a corrupt image too */
    /* The image a command writes beside what it reads (convert's and
     * dd's target, rebase's overlay): -U shares only what is read, so it
     * is locked whatever -U says.  Any other image opened for writing
     * under -U is refused, as qemu-img refuses it. */
    IMG_OPEN_OUTPUT = 1u << 6,
    /* A name that is never image options (convert's target, a backing
     * file found in the chain). */
    IMG_OPEN_PLAIN_NAME = 1u << 7,
};

struct img {
    struct coblk_dev *dev;
    const char *filename;           /* as the user wrote it; of image
                                     * options, the file they name */
    char format[16];                /* as given or probed */
    char *options_name;             /* that name's memory */
};

/* -U (--force-share): images open without QEMU's locks, so even one a
 * VM is writing; otherwise a conflicting lock refuses the open. */
extern bool img_force_share;

/* coblk_last_error(), a lock conflict worded as qemu-img words it. */
const char *img_lib_error(void);

/* --image-opts: every image name is QEMU's image options
 * ("driver=qcow2,file.filename=x"); a "json:{...}" name always is. */
extern bool img_image_opts_given;
/* The commands' getopt value for --image-opts. */
#define IMG_OPT_IMAGE_OPTS 0x1000
/* The format (or NULL: probe) and the name for img_open() that image
 * options (--image-opts text, or a json: name) give; 0, or -EINVAL with
 * qemu-img's message printed.  Both allocated. */
int img_image_opts(const char *text, char **fmt, char **name);

/* Opens filename in format fmt (NULL: probe as qemu-img does), prints
 * qemu-img's message on failure.  Returns 0 or -errno. */
int img_open(struct img *img, const char *filename, const char *fmt,
             unsigned flags);
/* The same with options for the format's driver (qcow2: "snapshot=ID"). */
int img_open_opts(struct img *img, const char *filename, const char *fmt,
                  const char *fmt_options, unsigned flags);
void img_close(struct img *img);

/* The path of a file named on the command line, as QEMU reads it: a
 * "file:" prefix names the protocol, and is no part of the path; what
 * follows it gets "./" where it would read as a protocol itself (a colon
 * before any slash).  Allocated; NULL without memory. */
char *img_file_path(const char *name);
/* The spec that opens filename as fmt ("qcow2", "raw") with the driver's
 * options (or NULL), to free(). */
char *img_spec(const char *fmt, const char *options, const char *filename);

/* The driver option for qemu-img's -l snapshot_param
 * ("snapshot.id=ID", "snapshot.name=NAME" or "ID_OR_NAME") into *out, to
 * free().  Returns 0 or -EINVAL with the message printed. */
int img_snapshot_option(const char *param, char **out);

/* Whether fmt names a format coblk-img writes; if not, prints qemu-img's
 * message. */
bool img_known_format(const char *fmt);

/* Whether name is an NBD URI. */
bool img_is_nbd(const char *name);
/* The name qemu-img shows for an image given as name: an NBD URI as QEMU
 * rewrites it ("nbd+unix://?socket=PATH", "nbd://HOST:PORT/EXPORT"),
 * else name.  Returns a new string (NULL: out of memory). */
char *img_display_name(const char *name);

/* Runs fn(opaque) in a coroutine on this thread's event loop and returns
 * its result once it finished (-errno from setting up the loop). */
int img_run(int (*fn)(void *opaque), void *opaque);

/* ---- snapshots, as qemu-img lists them (info.c) ---------------------------- */

void img_snapshot_header(FILE *out);
void img_snapshot_row(FILE *out, const struct coblk_snapshot_info *sn);

/* ---- progress (-p) ---------------------------------------------------------- */

struct img_progress {
    bool enabled;                   /* -p; else a line per SIGUSR1 */
    double shown;                   /* last percentage printed */
    double current;
};

void img_progress_start(struct img_progress *p, bool enabled);
void img_progress_update(struct img_progress *p, double percent);
/* Ends the line; a command that completed shows 100% first, as
 * qemu-img does (not after a mismatch or an error). */
void img_progress_end(struct img_progress *p, bool complete);

/* ---- JSON, printed as QEMU prints it (json.c) ----------------------------- */

struct json;

struct json *json_object(void);
struct json *json_array(void);
/* Add to an object (key copied) or, with key NULL, to an array.  A NULL
 * value (out of memory) is remembered and fails json_print(). */
void json_add(struct json *parent, const char *key, struct json *value);
struct json *json_int(int64_t v);
struct json *json_uint(uint64_t v);
struct json *json_bool(bool v);
struct json *json_string(const char *s);
/* Prints v with QEMU's indentation and key order, then a newline.
 * Returns 0, or -ENOMEM if building it ran out of memory. */
int json_print(FILE *out, const struct json *v);
void json_free(struct json *v);

#endif /* COBLK_IMG_IMG_H */
