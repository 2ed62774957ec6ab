/*
 * Job results: setting up, merging for group_reporting, freeing.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "run.h"

void bench_result_init(struct job_result *r, const struct job *job,
                       unsigned instance)
{
    memset(r, 0, sizeof(*r));
    r->job = job;
    r->instance = instance;
    r->series.interval_ms = 500;
}

void dir_stats_merge(struct dir_stats *into, const struct dir_stats *from)
{
    into->ios += from->ios;
    into->bytes += from->bytes;
    lat_merge(&into->slat, &from->slat);
    lat_merge(&into->clat, &from->clat);
    lat_merge(&into->lat, &from->lat);
    sample_merge(&into->bw, &from->bw);
    sample_merge(&into->iops, &from->iops);
}

const struct lat_stats *dir_prio_source(const struct dir_stats *d,
                                        const struct job *job)
{
    return job->lat_percentiles ? &d->lat : &d->clat;
}

int bench_result_alloc_prios(struct job_result *r)
{
    const struct job *job = r->job;

    for (int d = 0; d < CMDPRIO_DIRS; d++) {
        unsigned n = job->nr_prio_values[d];
        if (!n) {
            continue;
        }
        r->dir[d].prios = calloc(n, sizeof(*r->dir[d].prios));
        if (!r->dir[d].prios) {
            return -ENOMEM;
        }
        r->dir[d].nr_prios = n;
        for (unsigned i = 0; i < n; i++) {
            r->dir[d].prios[i].ioprio = job->prio_values[d][i];
        }
    }
    return 0;
}

void bench_result_clear_dirs(struct job_result *r)
{
    for (int d = 0; d < DIR_COUNT; d++) {
        struct dir_stats *s = &r->dir[d];
        for (unsigned i = 0; i < s->nr_prios; i++) {
            s->prios[i].lat = (struct lat_stats){ 0 };
        }
        *s = (struct dir_stats){ .prios = s->prios, .nr_prios = s->nr_prios };
    }
}

/* Adds latencies s to those of priority ioprio, new ones at the end. */
static int add_prio_lat(struct dir_stats *d, uint16_t ioprio,
                        const struct lat_stats *s)
{
    unsigned i = 0;

    while (i < d->nr_prios && d->prios[i].ioprio != ioprio) {
        i++;
    }
    if (i == d->nr_prios) {
        struct prio_lat *p = realloc(d->prios, (i + 1) * sizeof(*p));
        if (!p) {
            return -ENOMEM;
        }
        p[i] = (struct prio_lat){ .ioprio = ioprio };
        d->prios = p;
        d->nr_prios++;
    }
    lat_merge(&d->prios[i].lat, s);
    return 0;
}

int dir_stats_merge_prios(struct dir_stats *into, const struct job *into_job,
                          const struct dir_stats *from,
                          const struct job *from_job)
{
    const struct lat_stats *mine = dir_prio_source(into, into_job);
    const struct lat_stats *theirs = dir_prio_source(from, from_job);

    if (!into->prios && !from->prios && into_job->ioprio == from_job->ioprio) {
        return 0;
    }
    if (!into->prios && mine->count &&
        add_prio_lat(into, into_job->ioprio, mine) < 0) {
        return -ENOMEM;
    }
    if (!from->prios) {
        return theirs->count ? add_prio_lat(into, from_job->ioprio, theirs)
                             : 0;
    }
    for (unsigned i = 0; i < from->nr_prios; i++) {
        if (add_prio_lat(into, from->prios[i].ioprio,
                         &from->prios[i].lat) < 0) {
            return -ENOMEM;
        }
    }
    return 0;
}

/* Interval by interval: the group's I/O in each one. */
static int series_merge(struct series *into, const struct series *from)
{
    if (from->count > into->capacity) {
        struct series_point *p = realloc(into->points,
                                         from->count * sizeof(*p));
        if (!p) {
            return -ENOMEM;
        }
        into->points = p;
        into->capacity = from->count;
    }
    for (size_t i = 0; i < from->count; i++) {
        struct series_point *to = &into->points[i];
        const struct series_point *add = &from->points[i];
        if (i >= into->count) {
            *to = (struct series_point){ .t_ms = add->t_ms };
        }
        for (int d = 0; d < DIR_COUNT; d++) {
            to->ios[d] += add->ios[d];
            to->bytes[d] += add->bytes[d];
        }
        if (add->t_ms > to->t_ms) {
            to->t_ms = add->t_ms;
        }
    }
    if (from->count > into->count) {
        into->count = from->count;
    }
    return 0;
}

static void engine_stats_merge(struct job_result *into,
                               const struct job_result *from)
{
    struct coblk_dev_stats *d = &into->dev_stats;
    const struct coblk_dev_stats *fd = &from->dev_stats;
    struct coblk_aio_stats *a = &into->aio_stats;
    const struct coblk_aio_stats *fa = &from->aio_stats;

    d->short_reads += fd->short_reads;
    d->short_writes += fd->short_writes;
    d->resubmits += fd->resubmits;
    d->bounces += fd->bounces;
    d->splits += fd->splits;
    d->serialising_waits += fd->serialising_waits;
    d->locked_lookups += fd->locked_lookups;
    a->submits += fa->submits;
    a->sq_full += fa->sq_full;
    a->slot_waits += fa->slot_waits;
    a->submit_retries += fa->submit_retries;
    a->cq_overflows += fa->cq_overflows;
    a->notifies += fa->notifies;
    if (fa->inflight_peak > a->inflight_peak) {
        a->inflight_peak = fa->inflight_peak;
    }
}

int bench_result_merge(struct job_result *into, const struct job_result *from)
{
    int ret = 0;

    engine_stats_merge(into, from);
    for (int d = 0; d < DIR_COUNT; d++) {
        ret = ret ? ret : dir_stats_merge_prios(&into->dir[d], into->job,
                                                &from->dir[d], from->job);
        dir_stats_merge(&into->dir[d], &from->dir[d]);
    }
    into->sync_ios += from->sync_ios;
    lat_merge(&into->sync, &from->sync);
    for (int b = 0; b < DEPTH_BUCKETS; b++) {
        into->io_depth[b] += from->io_depth[b];
        into->submit[b] += from->submit[b];
        into->complete[b] += from->complete[b];
    }
    if (from->runtime_ns > into->runtime_ns) {
        into->runtime_ns = from->runtime_ns;
    }
    into->usr_sec += from->usr_sec;
    into->sys_sec += from->sys_sec;
    into->ctx += from->ctx;
    into->majf += from->majf;
    into->minf += from->minf;
    into->steady = into->steady ? into->steady : from->steady;
    into->first_error = into->total_err ? into->first_error
                                        : from->first_error;
    into->total_err += from->total_err;
    into->latency_depth = from->latency_depth;  /* the last one's, as fio */
    if (!into->error && from->error) {
        into->error = from->error;
        memcpy(into->errmsg, from->errmsg, sizeof(into->errmsg));
    }
    int series_ret = series_merge(&into->series, &from->series);
    return ret ? ret : series_ret;
}

void bench_result_free(struct job_result *r)
{
    for (int d = 0; d < DIR_COUNT; d++) {
        free(r->dir[d].prios);
        r->dir[d].prios = NULL;
        r->dir[d].nr_prios = 0;
    }
    free(r->series.points);
    r->series = (struct series){ .interval_ms = r->series.interval_ms };
}
