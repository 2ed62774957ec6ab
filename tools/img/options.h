/*
 * Image creation options (-o name=value,...), as qemu-img takes, checks
 * and prints them.
 */
#ifndef COBLK_IMG_OPTIONS_H
#define COBLK_IMG_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

struct img_opt {
    char *name, *value;
};

struct img_opts {
    struct img_opt *v;
    unsigned n;
};

/* Adds "a=b,c=d" (a later value replaces an earlier one).  Returns 0, or
 * -EINVAL / -ENOMEM with the message printed. */
int img_opts_parse(struct img_opts *o, const char *text);
int img_opts_set(struct img_opts *o, const char *name, const char *value);
/* The value of name, or NULL. */
const char *img_opts_get(const struct img_opts *o, const char *name);
void img_opts_free(struct img_opts *o);

/* Whether "help" (or "?") was one of the options. */
bool img_opts_is_help(const struct img_opts *o);
/* Lists fmt's options as qemu-img does (with_file: a file name was
 * given, and the file's own options are listed too); the exit status. */
int img_opts_help(const char *fmt, bool with_file);

/* Refuses an option fmt does not have, with qemu-img's message naming
 * filename (or nothing: NULL).  Returns 0 or -EINVAL. */
int img_opts_check(const struct img_opts *o, const char *fmt,
                   const char *filename);

/* Rewrites size options (cluster_size=0.5k) as numbers of bytes, which
 * is what coblk_create() reads.  Returns 0 or -ENOMEM. */
int img_opts_normalise(struct img_opts *o, const char *fmt);

/* The options but `skip` as "a=b,c=d", to free(); NULL: out of memory. */
char *img_opts_join(const struct img_opts *o, const char *skip);

/* "Formatting 'FILE', fmt=FMT k=v ...": every option fmt has, set or
 * defaulted, in qemu-img's order. */
void img_opts_print_formatting(const struct img_opts *o, const char *fmt,
                               const char *filename, uint64_t size);

/* An image size as qemu-img create takes it: 0 or exit status 1 with its
 * message printed. */
int img_parse_image_size(const char *text, uint64_t *size);

/* The backing file name as opened from the image at filename: relative to
 * its directory.  To free(); NULL: out of memory. */
char *img_backing_path(const char *filename, const char *name);

#endif /* COBLK_IMG_OPTIONS_H */
