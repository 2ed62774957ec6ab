/*
 * fio's terse (--minimal) lines, version 3: one a job, fields separated by
 * ';', exactly fio 3.x's list (HOWTO "Terse output"): read and write
 * status (no trim in v3), CPU, I/O depths, latency distribution.  No disk
 * utilization fields: coblk-bench does not sample disks, as fio run on
 * files of no disk (e.g. ioengine=null) prints none.
 */
#include "config.h"

#include <inttypes.h>

#include "report.h"

#define TERSE_PERCENTILES 20    /* fio's FIO_IO_U_LIST_MAX_LEN */

/* min, max, mean, stdev in usec, as fio's calc_lat() gives them. */
static void terse_lat(FILE *out, const struct lat_stats *s)
{
    if (!s->count) {
        fprintf(out, ";0;0;%f;%f", 0.0, 0.0);
        return;
    }
    fprintf(out, ";%" PRIu64 ";%" PRIu64 ";%f;%f", s->min_ns / 1000,
            s->max_ns / 1000, lat_mean(s) / 1000, lat_stdev(s) / 1000);
}

static void terse_percentiles(FILE *out, const struct lat_stats *s,
                              const double *list, unsigned n)
{
    for (unsigned i = 0; i < TERSE_PERCENTILES; i++) {
        if (i >= n) {
            fputs(";0%=0", out);
            continue;
        }
        fprintf(out, ";%f%%=%" PRIu64, list[i],
                lat_percentile(s, list[i]) / 1000);
    }
}

/* fio divides by the aggregate in whole KiB/s here (not in the normal
 * report); a share it cannot compute is 100%, as when it is above. */
static void terse_bw(FILE *out, const struct sample_stats *s, uint64_t agg)
{
    double mean = sample_mean(s), pct = 100.0;

    if (!s->count) {
        fprintf(out, ";0;0;%f%%;%f;%f", 0.0, 0.0, 0.0);
        return;
    }
    if (agg / 1024) {
        pct = mean * 100 / (double)(agg / 1024);
        pct = pct > 100.0 ? 100.0 : pct;
    }
    fprintf(out, ";%" PRIu64 ";%" PRIu64 ";%f%%;%f;%f", (uint64_t)s->min,
            (uint64_t)s->max, pct, mean, sample_stdev(s));
}

static void terse_dir(FILE *out, const struct job_result *r, int d,
                      const struct report_group *grp, const double *list,
                      unsigned n)
{
    const struct dir_stats *s = &r->dir[d];
    uint64_t run = report_runtime_ms(r, d), bw = 0, iops = 0;

    if (run) {
        bw = s->bytes * 1000 / run / 1024;
        iops = s->ios * 1000 / run;
    }
    fprintf(out, ";%" PRIu64 ";%" PRIu64 ";%" PRIu64 ";%" PRIu64,
            s->bytes >> 10, bw, iops, run);
    terse_lat(out, &s->slat);
    terse_lat(out, &s->clat);
    /* As fio: total latency percentiles if kept, else completion's. */
    const struct job *job = r->job;
    terse_percentiles(out, job->lat_percentiles ? &s->lat : &s->clat, list,
                      job->lat_percentiles || job->clat_percentiles ? n : 0);
    terse_lat(out, &s->lat);
    terse_bw(out, &s->bw, grp->agg[d]);
}

/* ";%3.1f%%" (decimals 1) or ";%3.2f%%" each. */
static void terse_pcts(FILE *out, int decimals, const uint64_t *counts,
                       unsigned nr, uint64_t total, double min_pct,
                       double first_extra)
{
    double pct[DEPTH_BUCKETS + REPORT_LAT_M];

    report_percent(counts, nr, total, min_pct, pct);
    pct[0] += first_extra;
    for (unsigned i = 0; i < nr; i++) {
        fprintf(out, ";%3.*f%%", decimals, pct[i]);
    }
}

/* CPU, depths, then latencies in usec (those under 1 usec in the first
 * bucket, as fio keeps v3 unchanged) and msec. */
static void terse_usage(FILE *out, const struct report_block *b)
{
    const struct job_result *r = b->r;
    uint64_t ns[REPORT_LAT_N], us[REPORT_LAT_N], ms[REPORT_LAT_M];
    uint64_t total = report_total_ios(r);

    fprintf(out, ";%f%%;%f%%;%" PRIu64 ";%" PRIu64 ";%" PRIu64,
            report_cpu_pct(r->usr_sec, b->total_run_ns),
            report_cpu_pct(r->sys_sec, b->total_run_ns), r->ctx, r->majf,
            r->minf);
    terse_pcts(out, 1, r->io_depth, DEPTH_BUCKETS,
               report_sum(r->io_depth, DEPTH_BUCKETS), 0.1, 0);
    report_lat_counts(r, ns, us, ms);
    uint64_t under_us = report_sum(ns, REPORT_LAT_N);
    terse_pcts(out, 2, us, REPORT_LAT_N, total, 0.01,
               total ? 100.0 * (double)under_us / (double)total : 0);
    terse_pcts(out, 2, ms, REPORT_LAT_M, total, 0.01, 0);
}

static void terse_block(FILE *out, const struct report *rep,
                        const struct report_block *b)
{
    const struct job_result *r = b->r;
    double list[MAX_PERCENTILES];
    unsigned n = report_percentiles(r->job, list);
    struct report_group grp;

    report_group(rep, r->job->groupid, &grp);
    fprintf(out, "3;coblk-bench-%s;%s;%u;%d", PACKAGE_VERSION, r->job->name,
            r->job->groupid, -r->error);
    terse_dir(out, r, DIR_READ, &grp, list, n);
    terse_dir(out, r, DIR_WRITE, &grp, list, n);
    terse_usage(out, b);
    if (r->job->continue_on_error) {
        fprintf(out, ";%" PRIu64 ";%d", r->total_err, r->first_error);
    }
    if (r->job->description[0]) {
        fprintf(out, ";%s", r->job->description);
    }
    fputc('\n', out);
}

void report_terse(FILE *out, const struct report *rep)
{
    for (unsigned i = 0; i < rep->nr_blocks; i++) {
        terse_block(out, rep, &rep->blocks[i]);
    }
}
