/*
 * fio's live status line:
 *   Jobs: 1 (f=1): [R(1)][45.0%][r=123MiB/s][r=31.4k IOPS][eta 00m:05s]
 */
#ifndef COBLK_BENCH_STATUS_H
#define COBLK_BENCH_STATUS_H

#include <stddef.h>
#include <stdint.h>

#include "run.h"

/* What the previous line saw, for the rates since then. */
struct status_prev {
    uint64_t t_ns;
    uint64_t ios[DIR_COUNT], bytes[DIR_COUNT];
};

/* Formats the line for n instances at now_ns (CLOCK_MONOTONIC), started
 * at start_ns; updates prev. */
void status_line(char *buf, size_t size, const struct job_result *results,
                 unsigned n, uint64_t start_ns, uint64_t now_ns,
                 struct status_prev *prev);

#endif
