/*
 * fio 3.33's JSON report (see report.h): the structure, key order and
 * number formats fio's scripts read; with json+, the latency bins.
 */
#include "config.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "report.h"

/* ---- a writer ------------------------------------------------------------ */

/* A writer with fio's layout: two spaces a level, "key" : value. */
struct jw {
    FILE *out;
    int level;
    bool first;
};

/* A JSON string: quotes, backslashes and control characters escaped. */
static void json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            fprintf(out, "\\%c", c);
        } else if (c < 0x20) {
            fprintf(out, "\\u%04x", c);
        } else {
            fputc(c, out);
        }
    }
    fputc('"', out);
}

static void jw_key(struct jw *w, const char *key)
{
    if (!w->first) {
        fputs(",\n", w->out);
    }
    w->first = false;
    fprintf(w->out, "%*s", 2 * w->level, "");
    if (key) {
        json_string(w->out, key);
        fputs(" : ", w->out);
    }
}

static void jw_open(struct jw *w, const char *key, char bracket)
{
    jw_key(w, key);
    fprintf(w->out, "%c\n", bracket);
    w->level++;
    w->first = true;
}

static void jw_close(struct jw *w, char bracket)
{
    w->level--;
    fprintf(w->out, "\n%*s%c", 2 * w->level, "", bracket);
    w->first = false;
}

static void jw_uint(struct jw *w, const char *key, uint64_t value)
{
    jw_key(w, key);
    fprintf(w->out, "%" PRIu64, value);
}

static void jw_int(struct jw *w, const char *key, long long value)
{
    jw_key(w, key);
    fprintf(w->out, "%lld", value);
}

/* fio's %f; JSON has no nan or inf. */
static void jw_float(struct jw *w, const char *key, double value)
{
    jw_key(w, key);
    fprintf(w->out, "%f", isfinite(value) ? value : 0.0);
}

static void jw_str(struct jw *w, const char *key, const char *value)
{
    jw_key(w, key);
    json_string(w->out, value);
}

/* ---- job options as given ---------------------------------------------- */

/* fio's "job options" (or "global options"): the options given there with
 * a value, as typed; none, no object. */
static void json_options(struct jw *w, const char *key, const struct job *job)
{
    size_t pos = 0;
    const char *name, *value;

    if (!bench_given_next(job, &pos, &name, &value)) {
        return;
    }
    jw_open(w, key, '{');
    do {
        jw_str(w, name, value);
    } while (bench_given_next(job, &pos, &name, &value));
    jw_close(w, '}');
}

/* ---- JSON statistics ---------------------------------------------------- */

static void json_bins(struct jw *w, const struct lat_stats *s)
{
    jw_open(w, "bins", '{');
    for (unsigned b = 0; b < LAT_BUCKETS; b++) {
        char key[32];
        if (s->buckets[b]) {
            snprintf(key, sizeof(key), "%" PRIu64, lat_bucket_value(b));
            jw_uint(w, key, s->buckets[b]);
        }
    }
    jw_close(w, '}');
}

/* pl NULL: no percentiles (fio's slat and lat by default). */
static void json_lat(struct jw *w, const char *key, const struct lat_stats *s,
                     const struct report_plist *pl, bool bins)
{
    jw_open(w, key, '{');
    jw_uint(w, "min", s->count ? s->min_ns : 0);
    jw_uint(w, "max", s->max_ns);
    jw_float(w, "mean", lat_mean(s));
    jw_float(w, "stddev", lat_stdev(s));
    jw_uint(w, "N", s->count);
    if (pl && s->count) {
        jw_open(w, "percentile", '{');
        for (unsigned j = 0; j < pl->n; j++) {
            char name[64];
            snprintf(name, sizeof(name), "%f", pl->pct[j]);
            jw_uint(w, name, lat_percentile(s, pl->pct[j]));
        }
        jw_close(w, '}');
        if (bins) {
            json_bins(w, s);
        }
    }
    jw_close(w, '}');
}

/* fio's "prios": the latencies by priority, each with its class and
 * level, when two or more have some. */
static void json_prios(struct jw *w, const struct job *job,
                       const struct dir_stats *s,
                       const struct report_plist *pl, bool plus)
{
    bool percentiles = job->clat_percentiles || job->lat_percentiles;
    char key[16];

    if (!report_prios_shown(s)) {
        return;
    }
    snprintf(key, sizeof(key), "%s_ns", report_prio_lat_name(job));
    jw_open(w, "prios", '[');
    for (unsigned i = 0; i < s->nr_prios; i++) {
        const struct prio_lat *p = &s->prios[i];
        if (!p->lat.count) {
            continue;
        }
        jw_open(w, NULL, '{');
        jw_uint(w, "prioclass", p->ioprio >> IOPRIO_CLASS_SHIFT);
        jw_uint(w, "prio", p->ioprio & IOPRIO_MAX_LEVEL);
        json_lat(w, key, &p->lat, percentiles ? pl : NULL, plus);
        jw_close(w, '}');
    }
    jw_close(w, ']');
}

static void json_bw(struct jw *w, const struct sample_stats *s, uint64_t agg)
{
    bool any = s->count;

    jw_uint(w, "bw_min", any ? (uint64_t)s->min : 0);
    jw_uint(w, "bw_max", any ? (uint64_t)s->max : 0);
    jw_float(w, "bw_agg",
             any ? report_agg_percent(agg, sample_mean(s)) : 0);
    jw_float(w, "bw_mean", sample_mean(s));
    jw_float(w, "bw_dev", sample_stdev(s));
    jw_uint(w, "bw_samples", s->count);
}

static void json_iops(struct jw *w, const struct sample_stats *s)
{
    bool any = s->count;

    jw_uint(w, "iops_min", any ? (uint64_t)s->min : 0);
    jw_uint(w, "iops_max", any ? (uint64_t)s->max : 0);
    jw_float(w, "iops_mean", sample_mean(s));
    jw_float(w, "iops_stddev", sample_stdev(s));
    jw_uint(w, "iops_samples", s->count);
}

/* fio's "steadystate" object: what was watched, whether it was attained,
 * the last criterion, and the samples it was judged on, oldest first. */
static void json_steady(struct jw *w, const struct steady *s)
{
    char text[64];

    jw_open(w, "steadystate", '{');
    snprintf(text, sizeof(text), "%s%s:%f%s", s->iops ? "iops" : "bw",
             s->slope ? "_slope" : "", (double)(float)s->limit,
             s->pct ? "%" : "");
    jw_str(w, "ss", text);
    jw_uint(w, "duration", s->dur);
    jw_uint(w, "attained", s->attained);
    snprintf(text, sizeof(text), "%f%s", (double)(float)s->criterion,
             s->pct ? "%" : "");
    jw_str(w, "criterion", text);
    jw_float(w, "max_deviation", s->deviation);
    jw_float(w, "slope", s->slope_value);
    jw_open(w, "data", '{');
    jw_uint(w, "bw_mean", steady_mean(s->bw_data, s->count));
    jw_uint(w, "iops_mean", steady_mean(s->iops_data, s->count));
    for (int kind = 0; kind < 2; kind++) {
        const uint64_t *data = kind ? s->bw_data : s->iops_data;
        jw_open(w, kind ? "bw" : "iops", '[');
        for (unsigned i = 0; i < s->dur; i++) {
            jw_uint(w, NULL, i < s->count ? data[i] : 0);
        }
        jw_close(w, ']');
    }
    jw_close(w, '}');
    jw_close(w, '}');
}

static void json_dir(struct jw *w, const struct job_result *r, int d,
                     const struct report_group *grp,
                     const struct report_plist *pl, bool plus)
{
    const struct dir_stats *s = &r->dir[d];
    const struct job *job = r->job;
    uint64_t run = report_runtime_ms(r, d);
    uint64_t bps = run ? s->bytes * 1000 / run : 0;

    jw_open(w, report_dir_name(r, d), '{');
    jw_uint(w, "io_bytes", s->bytes);
    jw_uint(w, "io_kbytes", s->bytes >> 10);
    jw_uint(w, "bw_bytes", bps);
    jw_uint(w, "bw", bps / 1024);
    jw_float(w, "iops", run ? 1000.0 * (double)s->ios / (double)run : 0);
    jw_uint(w, "runtime", run);
    jw_uint(w, "total_ios", s->ios);
    jw_uint(w, "short_ios", 0);
    jw_uint(w, "drop_ios", 0);
    json_lat(w, "slat_ns", &s->slat, job->slat_percentiles ? pl : NULL,
             plus);
    json_lat(w, "clat_ns", &s->clat, job->clat_percentiles ? pl : NULL,
             plus);
    json_lat(w, "lat_ns", &s->lat, job->lat_percentiles ? pl : NULL, plus);
    json_prios(w, job, s, pl, plus);
    json_bw(w, &s->bw, grp->agg[d]);
    json_iops(w, &s->iops);
    jw_close(w, '}');
}

static void json_sync(struct jw *w, const struct job_result *r,
                      const struct report_plist *pl, bool plus)
{
    bool percentiles = r->job->clat_percentiles || r->job->lat_percentiles;

    jw_open(w, "sync", '{');
    jw_uint(w, "total_ios", r->sync_ios);
    json_lat(w, "lat_ns", &r->sync, percentiles ? pl : NULL, plus);
    jw_close(w, '}');
}

static void json_depths(struct jw *w, const char *key,
                        const char *const *keys,
                        const uint64_t map[DEPTH_BUCKETS])
{
    double pct[DEPTH_BUCKETS];

    report_percent(map, DEPTH_BUCKETS, report_sum(map, DEPTH_BUCKETS), 0.1,
                   pct);
    jw_open(w, key, '{');
    for (unsigned i = 0; i < DEPTH_BUCKETS; i++) {
        jw_float(w, keys[i], pct[i]);
    }
    jw_close(w, '}');
}

static void json_lat_map(struct jw *w, const char *key, const uint64_t *counts,
                         unsigned nr, uint64_t total)
{
    double pct[REPORT_LAT_M];

    report_percent(counts, nr, total, 0.01, pct);
    jw_open(w, key, '{');
    for (unsigned i = 0; i < nr; i++) {
        jw_float(w, report_lat_ranges[i], pct[i]);
    }
    jw_close(w, '}');
}

static void json_usage(struct jw *w, const struct report_block *b)
{
    const struct job_result *r = b->r;
    uint64_t ns[REPORT_LAT_N], us[REPORT_LAT_N], ms[REPORT_LAT_M];
    uint64_t total = report_total_ios(r);

    jw_uint(w, "job_runtime", b->total_run_ns / 1000000);
    jw_float(w, "usr_cpu", report_cpu_pct(r->usr_sec, b->total_run_ns));
    jw_float(w, "sys_cpu", report_cpu_pct(r->sys_sec, b->total_run_ns));
    jw_uint(w, "ctx", r->ctx);
    jw_uint(w, "majf", r->majf);
    jw_uint(w, "minf", r->minf);
    json_depths(w, "iodepth_level", report_depth_keys, r->io_depth);
    json_depths(w, "iodepth_submit", report_batch_keys, r->submit);
    json_depths(w, "iodepth_complete", report_batch_keys, r->complete);
    report_lat_counts(r, ns, us, ms);
    json_lat_map(w, "latency_ns", ns, REPORT_LAT_N, total);
    json_lat_map(w, "latency_us", us, REPORT_LAT_N, total);
    json_lat_map(w, "latency_ms", ms, REPORT_LAT_M, total);
    if (r->job->continue_on_error) {
        jw_uint(w, "total_err", r->total_err);
        jw_int(w, "first_error", r->first_error);
    }
    jw_uint(w, "latency_depth", report_latency_depth(r));
    jw_uint(w, "latency_target", r->job->latency_target_ns);
    jw_float(w, "latency_percentile", r->job->latency_percentile);
    jw_uint(w, "latency_window", r->job->latency_window_ns / 1000);
}

/* Beyond fio, under a key of its own: the engine's rare paths. */
static void json_engine_paths(struct jw *w, const struct job_result *r)
{
    const struct coblk_dev_stats *d = &r->dev_stats;
    const struct coblk_aio_stats *a = &r->aio_stats;

    jw_open(w, "coblk", '{');
    jw_uint(w, "short_reads", d->short_reads);
    jw_uint(w, "short_writes", d->short_writes);
    jw_uint(w, "resubmits", d->resubmits);
    jw_uint(w, "bounces", d->bounces);
    jw_uint(w, "splits", d->splits);
    jw_uint(w, "rmw_waits", d->serialising_waits);
    jw_uint(w, "locked_lookups", d->locked_lookups);
    jw_uint(w, "submits", a->submits);
    jw_uint(w, "sq_full", a->sq_full);
    jw_uint(w, "cq_waits", a->slot_waits);
    jw_uint(w, "cq_overflows", a->cq_overflows);
    jw_uint(w, "submit_retries", a->submit_retries);
    jw_uint(w, "inflight_peak", a->inflight_peak);
    jw_close(w, '}');
}

static void json_block(struct jw *w, const struct report *rep,
                       const struct bench_config *cfg,
                       const struct report_block *b, bool plus)
{
    const struct job_result *r = b->r;
    struct report_group grp;
    struct report_plist pl;

    pl.n = report_percentiles(r->job, pl.pct);
    report_group(rep, r->job->groupid, &grp);
    jw_open(w, NULL, '{');
    jw_str(w, "jobname", r->job->name);
    jw_uint(w, "groupid", r->job->groupid);
    jw_int(w, "error", -r->error);
    jw_uint(w, "eta", 0);
    jw_uint(w, "elapsed", (r->runtime_ns + 999999999) / 1000000000);
    json_options(w, "job options", r->job);
    for (int d = 0; d < (r->job->unified_rw ? 1 : DIR_COUNT); d++) {
        json_dir(w, r, d, &grp, &pl, plus);
    }
    json_sync(w, r, &pl, plus);
    json_usage(w, b);
    if (r->job->description[0]) {
        jw_str(w, "desc", r->job->description);
    }
    if (r->steady) {
        json_steady(w, r->steady);
    }
    json_engine_paths(w, r);
    jw_close(w, '}');
}

void report_json(FILE *out, const struct report *rep,
                        const struct bench_config *cfg, bool plus,
                        const struct timeval *now, const char *when)
{
    struct jw w = { .out = out, .first = true };
    char time_text[32];

    snprintf(time_text, sizeof(time_text), "%.*s",
             (int)strcspn(when, "\n"), when);
    jw_open(&w, NULL, '{');
    jw_str(&w, "fio version", "coblk-bench-" PACKAGE_VERSION);
    jw_int(&w, "timestamp", (long long)now->tv_sec);
    jw_int(&w, "timestamp_ms", (long long)now->tv_sec * 1000 +
           now->tv_usec / 1000);
    jw_str(&w, "time", time_text);
    json_options(&w, "global options", &cfg->global);
    jw_open(&w, "jobs", '[');
    for (unsigned i = 0; i < rep->nr_blocks; i++) {
        json_block(&w, rep, cfg, &rep->blocks[i], plus);
    }
    jw_close(&w, ']');
    jw_close(&w, '}');
    fputc('\n', out);
}
