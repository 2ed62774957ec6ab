/*
 * Reports in fio's layouts, so that a fio user and fio's scripts read them
 * unchanged: the normal text report and the JSON structure of fio 3.x.
 */
#include "config.h"

#include <inttypes.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "report.h"

static const char *const dir_names[] = { "read", "write", "trim" };
static const double percentiles[] = { 1, 5, 10, 20, 30, 40, 50, 60, 70, 80,
                                      90, 95, 99, 99.5, 99.9, 99.95, 99.99 };
#define NR_PERCENTILES (sizeof(percentiles) / sizeof(percentiles[0]))

/* fio's short numbers: 2520k, 9844MiB. */
static void human(char *buf, size_t size, double value, bool binary)
{
    static const char *const units[] = { "", "k", "M", "G", "T" };
    static const char *const bunits[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    double base = binary ? 1024 : 1000;
    int u = 0;

    while (value >= 10000 && u < 4) {
        value /= base;
        u++;
    }
    snprintf(buf, size, "%.*f%s", value < 10 && u ? 1 : 0, value,
             binary ? bunits[u] : units[u]);
}

static void normal_dir(FILE *out, const char *name, const struct dir_stats *d,
                       uint64_t runtime_ns)
{
    double sec = runtime_ns / 1e9;
    char iops[32], bw[32], io[32];

    if (!d->ios) {
        return;
    }
    human(iops, sizeof(iops), d->ios / sec, false);
    human(bw, sizeof(bw), d->bytes / sec, true);
    human(io, sizeof(io), (double)d->bytes, true);
    fprintf(out, "  %s: IOPS=%s, BW=%s/s (%.1fMB/s)(%s/%" PRIu64 "msec)\n",
            name, iops, bw, d->bytes / sec / 1e6, io, runtime_ns / 1000000);
    const struct lat_stats *c = &d->clat;
    fprintf(out, "    clat (nsec): min=%" PRIu64 ", max=%" PRIu64
            ", avg=%.2f, stdev=%.2f\n", c->min_ns, c->max_ns, lat_mean(c),
            lat_stdev(c));
    fprintf(out, "     lat (nsec): min=%" PRIu64 ", max=%" PRIu64
            ", avg=%.2f, stdev=%.2f\n", c->min_ns, c->max_ns, lat_mean(c),
            lat_stdev(c));
    fprintf(out, "    clat percentiles (nsec):\n");
    for (size_t i = 0; i < NR_PERCENTILES; i++) {
        fprintf(out, "%s%5.2fth=[%" PRIu64 "]%s",
                i % 4 == 0 ? "     | " : " ", percentiles[i],
                lat_percentile(c, percentiles[i]),
                i + 1 == NR_PERCENTILES ? "\n" : i % 4 == 3 ? ",\n" : ",");
    }
}

/* Results of one job, merged (all of them with group_reporting). */
static struct job_result merge(const struct job_result *results, unsigned n)
{
    struct job_result sum = results[0];

    for (unsigned i = 1; i < n; i++) {
        for (int d = 0; d < DIR_COUNT; d++) {
            sum.dir[d].ios += results[i].dir[d].ios;
            sum.dir[d].bytes += results[i].dir[d].bytes;
            lat_merge(&sum.dir[d].clat, &results[i].dir[d].clat);
        }
        if (results[i].runtime_ns > sum.runtime_ns) {
            sum.runtime_ns = results[i].runtime_ns;
        }
        sum.usr_sec += results[i].usr_sec;
        sum.sys_sec += results[i].sys_sec;
        if (!sum.error) {
            sum.error = results[i].error;
        }
    }
    return sum;
}

void report_normal(FILE *out, const struct bench_config *cfg,
                   const struct job_result *results, unsigned n)
{
    bool group = n && results[0].job->group_reporting;
    unsigned shown = group ? 1 : n;

    for (unsigned i = 0; i < shown; i++) {
        struct job_result r = group ? merge(results, n) : results[i];
        double sec = r.runtime_ns / 1e9;
        fprintf(out, "%s: (groupid=0, jobs=%u): err=%3d: pid=%d\n",
                r.job->name, group ? n : 1, -r.error, (int)getpid());
        for (int d = 0; d < DIR_COUNT; d++) {
            normal_dir(out, dir_names[d], &r.dir[d], r.runtime_ns);
        }
        fprintf(out, "  cpu          : usr=%.2f%%, sys=%.2f%%, ctx=0, "
                "majf=0, minf=0\n",
                sec ? 100 * r.usr_sec / sec : 0,
                sec ? 100 * r.sys_sec / sec : 0);
        fprintf(out, "  IO depths    : %u=100.0%%\n", r.job->iodepth);
    }
    struct job_result all = merge(results, n);
    fprintf(out, "\nRun status group 0 (all jobs):\n");
    for (int d = 0; d < DIR_COUNT; d++) {
        const struct dir_stats *s = &all.dir[d];
        if (!s->ios) {
            continue;
        }
        char bw[32], io[32];
        human(bw, sizeof(bw), s->bytes / (all.runtime_ns / 1e9), true);
        human(io, sizeof(io), (double)s->bytes, true);
        fprintf(out, "%7s: bw=%s/s, io=%s, run=%" PRIu64 "msec\n",
                d == DIR_READ ? "READ" : d == DIR_WRITE ? "WRITE" : "TRIM",
                bw, io, all.runtime_ns / 1000000);
    }
}

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

static void json_lat(FILE *out, const char *key, const struct lat_stats *c,
                     bool with_percentiles, bool last)
{
    fprintf(out, "        \"%s\" : {\n          \"min\" : %" PRIu64
            ",\n          \"max\" : %" PRIu64 ",\n          \"mean\" : %f,\n"
            "          \"stddev\" : %f,\n          \"N\" : %" PRIu64 "%s\n",
            key, c->min_ns, c->max_ns, lat_mean(c), lat_stdev(c), c->count,
            with_percentiles ? "," : "");
    if (with_percentiles) {
        fprintf(out, "          \"percentile\" : {\n");
        for (size_t i = 0; i < NR_PERCENTILES; i++) {
            fprintf(out, "            \"%f\" : %" PRIu64 "%s\n",
                    percentiles[i], lat_percentile(c, percentiles[i]),
                    i + 1 < NR_PERCENTILES ? "," : "");
        }
        fprintf(out, "          }\n");
    }
    fprintf(out, "        }%s\n", last ? "" : ",");
}

static void json_dir(FILE *out, const char *name, const struct dir_stats *d,
                     uint64_t runtime_ns)
{
    double sec = runtime_ns ? runtime_ns / 1e9 : 1;
    const struct lat_stats zero = { 0 };

    fprintf(out, "      \"%s\" : {\n", name);
    fprintf(out, "        \"io_bytes\" : %" PRIu64 ",\n"
            "        \"io_kbytes\" : %" PRIu64 ",\n"
            "        \"bw_bytes\" : %.0f,\n        \"bw\" : %.0f,\n"
            "        \"iops\" : %f,\n        \"runtime\" : %" PRIu64 ",\n"
            "        \"total_ios\" : %" PRIu64 ",\n"
            "        \"short_ios\" : 0,\n        \"drop_ios\" : 0,\n",
            d->bytes, d->bytes / 1024, d->bytes / sec, d->bytes / sec / 1024,
            d->ios / sec, d->ios ? runtime_ns / 1000000 : 0, d->ios);
    json_lat(out, "slat_ns", &zero, false, false);
    json_lat(out, "clat_ns", &d->clat, true, false);
    json_lat(out, "lat_ns", &d->clat, false, true);
    fprintf(out, "      },\n");
}

static void json_options(FILE *out, const struct job *job)
{
    fprintf(out, "      \"job options\" : {\n        \"name\" : ");
    json_string(out, job->name);
    fprintf(out, ",\n        \"rw\" : \"%s\",\n"
            "        \"bs\" : \"%" PRIu64 "\",\n"
            "        \"iodepth\" : \"%u\",\n"
            "        \"ioengine\" : \"%s\"\n      },\n",
            bench_rw_name(job->rw), job->bs, job->iodepth,
            job->engine == ENGINE_NULL ? "null" : "io_uring");
}

void report_json(FILE *out, const struct bench_config *cfg,
                 const struct job_result *results, unsigned n)
{
    bool group = n && results[0].job->group_reporting;
    unsigned shown = group ? 1 : n;

    fprintf(out, "{\n  \"fio version\" : \"coblk-bench-%s\",\n"
            "  \"timestamp\" : %ld,\n  \"jobs\" : [\n", PACKAGE_VERSION,
            (long)time(NULL));
    for (unsigned i = 0; i < shown; i++) {
        struct job_result r = group ? merge(results, n) : results[i];
        double sec = r.runtime_ns ? r.runtime_ns / 1e9 : 1;
        fprintf(out, "    {\n      \"jobname\" : ");
        json_string(out, r.job->name);
        fprintf(out, ",\n      \"groupid\" : 0,\n      \"error\" : %d,\n"
                "      \"elapsed\" : %" PRIu64 ",\n", -r.error,
                (r.runtime_ns + 999999999) / 1000000000);
        json_options(out, r.job);
        for (int d = 0; d < DIR_COUNT; d++) {
            json_dir(out, dir_names[d], &r.dir[d], r.runtime_ns);
        }
        fprintf(out, "      \"usr_cpu\" : %f,\n      \"sys_cpu\" : %f,\n"
                "      \"ctx\" : 0,\n      \"majf\" : 0,\n      \"minf\" : 0\n"
                "    }%s\n", 100 * r.usr_sec / sec, 100 * r.sys_sec / sec,
                i + 1 < shown ? "," : "");
    }
    fprintf(out, "  ]\n}\n");
}
