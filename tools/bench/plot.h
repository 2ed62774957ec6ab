/*
 * The SVG report (--plot): IOPS and bandwidth over time, completion latency
 * percentiles and histogram of every job, in one self-contained file.
 */
#ifndef COBLK_BENCH_PLOT_H
#define COBLK_BENCH_PLOT_H

#include <stddef.h>

#include "run.h"

/* Writes an SVG report of n results (all instances of all jobs) to path;
 * 0, or -1 with a message in err. */
int plot_svg(const char *path, const struct job_result *results, unsigned n,
             char *err, size_t err_size);

#endif
