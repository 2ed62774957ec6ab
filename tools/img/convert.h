/*
 * The copy engine behind convert (and dd): sources concatenated into a
 * target, on coroutines.
 */
#ifndef COBLK_IMG_CONVERT_H
#define COBLK_IMG_CONVERT_H

#include <stdbool.h>
#include <stdint.h>

#include "img/options.h"

struct convert_opts {
    const char *fmt, *out_fmt, *backing, *backing_fmt, *snapshot;
    struct img_opts out_opts;
    bool compress, progress, quiet, no_create, out_of_order, target_is_zero;
    /* copy_range (-C): data by copy offload (coblk_co_copy_range()). */
    bool salvage, copy_range, direct_src, direct_dst, flush_dst;
    bool sparse_given;              /* -S on the command line */
    bool bitmaps, skip_broken_bitmaps;
    bool dd;                        /* dd's words for a failed create */
    uint64_t sparse, rate_limit;
    unsigned coroutines;
    /* A window of the (single) source: from skip, at most length bytes
     * (UINT64_MAX: to its end).  For dd. */
    uint64_t skip, length;
};

/* convert's defaults: raw output, -S 4k, -m 8, the whole source. */
void convert_defaults(struct convert_opts *o);

/* Copies names[0..n-1] into names[n] as o says; the exit status. */
int convert_run(const struct convert_opts *o, char **names, unsigned n);

#endif /* COBLK_IMG_CONVERT_H */
