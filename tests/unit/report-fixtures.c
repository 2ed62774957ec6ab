/*
 * Synthetic results with known numbers, for the report tests (see
 * report-fixtures.h).
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "report-fixtures.h"

struct bench_config config(unsigned nr_groups)
{
    struct bench_config cfg;

    memset(&cfg, 0, sizeof(cfg));
    bench_job_defaults(&cfg.global);
    cfg.nr_groups = nr_groups;
    return cfg;
}

/* As the command line does it: "job options" are those given. */
void set(struct job *job, const char *name, const char *value)
{
    char err[256];

    if (bench_set_option(job, name, value, err, sizeof(err)) < 0) {
        fail_msg("%s=%s: %s", name, value, err);
    }
}

struct job make_job(const char *name, unsigned groupid, bool grouped)
{
    struct job job;

    bench_job_defaults(&job);
    set(&job, "name", name);
    set(&job, "rw", "randread");
    set(&job, "iodepth", "8");
    job.groupid = groupid;
    job.group_reporting = grouped;
    return job;
}

void add_samples(struct sample_stats *s, double mid, double step)
{
    sample_add(s, mid - step);
    sample_add(s, mid);
    sample_add(s, mid + step);
    sample_add(s, mid);
}

/* 1000 I/Os of 4 KiB in 2 s on direction d: clat half 150 us, half
 * 350 us (mean 250 us), slat 2 us; 2000 KiB/s and 500 IOPS sampled. */
void fill(struct job_result *r, const struct job *job, int d)
{
    struct dir_stats *s = &r->dir[d];

    bench_result_init(r, job, 0);
    for (unsigned i = 0; i < 1000; i++) {
        uint64_t clat = i % 2 ? 350000 : 150000;
        lat_add(&s->slat, 2000);
        lat_add(&s->clat, clat);
        lat_add(&s->lat, clat + 2000);
    }
    s->ios = 1000;
    s->bytes = 1000 * 4096;
    add_samples(&s->bw, 2000, 100);
    add_samples(&s->iops, 500, 25);
    r->io_depth[depth_bucket(8)] = 1000;
    r->submit[batch_bucket(1)] = 1000;
    r->complete[batch_bucket(1)] = 1000;
    r->runtime_ns = 2000000000;
    r->usr_sec = 98e-9 * 1000;
    r->sys_sec = 314e-9 * 1000;
    r->ctx = 10;
    r->dev_stats = (struct coblk_dev_stats){ .short_reads = 1, .bounces = 3,
                                             .locked_lookups = 4 };
    r->aio_stats = (struct coblk_aio_stats){ .submits = 250, .sq_full = 2,
                                             .inflight_peak = 9 };
}

void fill_without_latencies(struct job_result *r, const struct job *job)
{
    bench_result_init(r, job, 0);
    r->dir[DIR_WRITE].ios = 1000;
    r->dir[DIR_WRITE].bytes = 1000 * 4096;
    r->runtime_ns = 2000000000;
    r->sync_ios = 62;
}

char *render(const struct bench_config *cfg,
                    const struct job_result *results, unsigned n,
                    unsigned format)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);

    assert_non_null(out);
    report_write(out, cfg, results, n, format);
    assert_int_equal(fclose(out), 0);
    assert_non_null(text);
    return text;
}

void assert_has(const char *text, const char *part)
{
    if (!strstr(text, part)) {
        fail_msg("missing \"%s\" in:\n%s", part, text);
    }
}

unsigned occurrences(const char *text, const char *part)
{
    unsigned n = 0;

    for (const char *at = text; (at = strstr(at, part)); at++) {
        n++;
    }
    return n;
}
