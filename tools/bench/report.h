/*
 * Reports in fio's layouts: normal and JSON.
 */
#ifndef COBLK_BENCH_REPORT_H
#define COBLK_BENCH_REPORT_H

#include <stdio.h>

#include "options.h"
#include "run.h"

/* Writes the report for n results (several per job with numjobs). */
void report_normal(FILE *out, const struct bench_config *cfg,
                   const struct job_result *results, unsigned n);
void report_json(FILE *out, const struct bench_config *cfg,
                 const struct job_result *results, unsigned n);

#endif
