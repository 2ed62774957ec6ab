/*
 * Synthetic results with known numbers, shared by the report tests
 * (test-bench-report, test-bench-report-json).
 */
#ifndef COBLK_TEST_REPORT_FIXTURES_H
#define COBLK_TEST_REPORT_FIXTURES_H

#include "bench/options.h"
#include "bench/report.h"
#include "bench/run.h"

/* A configuration of nr_groups groups and default globals. */
struct bench_config config(unsigned nr_groups);
/* Sets an option as the command line does (it is "given"); fails the
 * test on a bad value. */
void set(struct job *job, const char *name, const char *value);
/* A randread job of iodepth 8. */
struct job make_job(const char *name, unsigned groupid, bool grouped);
/* Four samples around mid: mid - step, mid, mid + step, mid. */
void add_samples(struct sample_stats *s, double mid, double step);
/* 1000 I/Os of 4 KiB in 2 s on direction d: clat half 150 us, half
 * 350 us (mean 250 us), slat 2 us; 2000 KiB/s and 500 IOPS sampled. */
void fill(struct job_result *r, const struct job *job, int d);
/* What gtod_reduce=1 leaves: 1000 writes of 4 KiB in 2 s and 62
 * flushes, counted, without latencies or samples. */
void fill_without_latencies(struct job_result *r, const struct job *job);
/* The report of the results in one format, in a string to free. */
char *render(const struct bench_config *cfg,
             const struct job_result *results, unsigned n, unsigned format);
void assert_has(const char *text, const char *part);
unsigned occurrences(const char *text, const char *part);

#endif
