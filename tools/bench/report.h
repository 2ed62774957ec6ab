/*
 * Reports in fio 3.x's layouts, so that fio users and fio's scripts read
 * them unchanged: normal, JSON, JSON+ (with latency bins) and terse v3.
 */
#ifndef COBLK_BENCH_REPORT_H
#define COBLK_BENCH_REPORT_H

#include <stdio.h>
#include <sys/time.h>

#include "options.h"
#include "run.h"

/* Writes the report of n results (numjobs instances of each job, in their
 * stonewall groups) in one format, an OUTPUT_* bit.  fio writes several
 * formats in the order terse, json (or json+), normal. */
void report_write(FILE *out, const struct bench_config *cfg,
                  const struct job_result *results, unsigned n,
                  unsigned format);
/* What the normal format prints before the jobs start: each job's line,
 * the version and how many threads start, as fio. */
void report_start(FILE *out, const struct bench_config *cfg);

enum n2s_unit { N2S_NONE, N2S_BYTE, N2S_BYTEPERSEC };

#define NUM_LEN 40

/* fio's num2str(): at most maxlen digits (and the point), in k/M/G or
 * Ki/Mi/Gi with pow2, with fio's rounding; returns buf. */
char *num2str(char buf[NUM_LEN], uint64_t num, int maxlen, bool pow2,
              enum n2s_unit units);

/* ---- shared by report.c, report-json.c and report-terse.c --------------- */

extern const char *const report_dir_names[DIR_COUNT];
/* "read", "write", "trim", or "mixed" with unified_rw_reporting. */
const char *report_dir_name(const struct job_result *r, int d);
/* fio's names of the I/O depth and of the batch size buckets. */
extern const char *const report_depth_keys[DEPTH_BUCKETS];
extern const char *const report_batch_keys[DEPTH_BUCKETS];

/* What fio reports as one job (its thread_stat): an instance, or with
 * group_reporting all the instances of a group merged. */
struct report_block {
    const struct job_result *r;
    struct job_result *merged;  /* owned; r points to it when merged */
    unsigned members;
    uint64_t total_run_ns;      /* the members' runtimes added up */
};

struct report {
    struct report_block *blocks;
    unsigned nr_blocks;
    unsigned nr_groups;
};

/* A stonewall group's totals (fio's group_run_stats); runs in ms,
 * bandwidths in bytes/s. */
struct report_group {
    uint64_t bytes[DIR_COUNT], agg[DIR_COUNT];
    uint64_t min_run[DIR_COUNT], max_run[DIR_COUNT];
    uint64_t min_bw[DIR_COUNT], max_bw[DIR_COUNT];
    bool mixed;                 /* unified_rw_reporting: dir 0 is "MIXED" */
};

#define REPORT_LAT_N 10         /* fio's 2, 4, 10, ... 1000 per unit */
#define REPORT_LAT_M 12         /* and 2000, >=2000 for msec */
extern const char *const report_lat_ranges[REPORT_LAT_M];

/* The percentiles to report and the decimals fio shows them with. */
struct report_plist {
    double pct[MAX_PERCENTILES];
    unsigned n, precision;
};

/* Fills rep; returns 0, or -1 (nothing to free) when out of memory. */
int report_build(struct report *rep, const struct bench_config *cfg,
                 const struct job_result *results, unsigned n);
void report_free(struct report *rep);
void report_group(const struct report *rep, unsigned g,
                  struct report_group *grp);
/* The direction's runtime in ms, 0 when it did no I/O. */
uint64_t report_runtime_ms(const struct job_result *r, int d);
/* The job's percentile list (fio's default when it has none), sorted;
 * returns how many. */
unsigned report_percentiles(const struct job *job,
                            double list[MAX_PERCENTILES]);
/* I/Os by completion latency in fio's buckets (lat_n, lat_u, lat_m). */
void report_lat_counts(const struct job_result *r, uint64_t ns[REPORT_LAT_N],
                       uint64_t us[REPORT_LAT_N], uint64_t ms[REPORT_LAT_M]);
/* counts as percentages of total, raised to min_pct when not zero (fio's
 * 0.1% for depths, 0.01% for latencies); all 0 when total is. */
void report_percent(const uint64_t *counts, unsigned nr, uint64_t total,
                    double min_pct, double *pct);
uint64_t report_sum(const uint64_t *counts, unsigned nr);
/* CPU time as a percentage of the block's run time. */
double report_cpu_pct(double sec, uint64_t total_run_ns);
uint64_t report_total_ios(const struct job_result *r);
/* Whether the direction's latencies by priority are shown: as fio, when
 * two priorities or more have some. */
bool report_prios_shown(const struct dir_stats *s);
/* What fio calls them: "lat" with lat_percentiles, else "clat". */
const char *report_prio_lat_name(const struct job *job);
/* fio's latency "depth": latency_target's, else the iodepth. */
unsigned report_latency_depth(const struct job_result *r);
/* fio's bw "per": the mean (which fio passes as an int) as a percentage of
 * the group's aggregate bandwidth. */
double report_agg_percent(uint64_t agg, double mean_kib);

void report_terse(FILE *out, const struct report *rep);
/* now and when (ctime's text) are the report's time stamp. */
void report_json(FILE *out, const struct report *rep,
                 const struct bench_config *cfg, bool plus,
                 const struct timeval *now, const char *when);

#endif
