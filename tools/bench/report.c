/*
 * Reports in fio 3.x's layouts (see report.h): the normal text report and
 * the JSON structure, laid out as fio 3.33 prints them; report-terse.c has
 * the terse lines.
 */
#include "config.h"

#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "report.h"

static const char *const dir_names[] = { "read", "write", "trim" };
static const double default_percentiles[] = {
    1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 99, 99.5, 99.9, 99.95,
    99.99,
};
#define NR_DEFAULT_PERCENTILES \
    (sizeof(default_percentiles) / sizeof(default_percentiles[0]))

/* ---- results grouped as fio reports them -------------------------------- */

/* fio starts a new block unless both are group_reporting in one group. */
static bool same_block(const struct job_result *prev,
                       const struct job_result *r)
{
    return prev->job->group_reporting && r->job->group_reporting &&
           prev->job->groupid == r->job->groupid;
}

static void add_single(struct report *rep, const struct job_result *r)
{
    rep->blocks[rep->nr_blocks++] = (struct report_block){
        .r = r, .members = 1, .total_run_ns = r->runtime_ns };
}

/* Squared deviations from the mean (fio's S). */
static double spread(const struct sample_stats *s)
{
    double sq = s->sum_sq - s->sum * s->sum / (double)s->count;
    return sq > 0 ? sq : 0;
}

/* fio adds the members' bandwidth and IOPS statistics up for
 * group_reporting (means, spreads, extremes: the group's bandwidth),
 * where bench_result_merge pools their samples. */
static void sum_samples(struct sample_stats *into,
                        const struct sample_stats *from)
{
    if (!from->count) {
        return;
    }
    if (!into->count) {
        *into = *from;
        return;
    }
    double mean = sample_mean(into) + sample_mean(from);
    double sq = spread(into) + spread(from);
    into->min += from->min;
    into->max += from->max;
    into->count += from->count;
    into->sum = mean * (double)into->count;
    into->sum_sq = sq + mean * mean * (double)into->count;
}

static void sum_all_samples(struct job_result *m,
                            const struct job_result *results, unsigned count)
{
    for (int d = 0; d < DIR_COUNT; d++) {
        m->dir[d].bw = m->dir[d].iops = (struct sample_stats){ 0 };
        for (unsigned i = 0; i < count; i++) {
            sum_samples(&m->dir[d].bw, &results[i].dir[d].bw);
            sum_samples(&m->dir[d].iops, &results[i].dir[d].iops);
        }
    }
}

/* Merges results[0..count) into one block, or when out of memory shows
 * them one by one: something rather than nothing. */
static void add_merged(struct report *rep, const struct job_result *results,
                       unsigned count)
{
    struct job_result *m = count > 1 ? malloc(sizeof(*m)) : NULL;

    if (!m) {
        for (unsigned i = 0; i < count; i++) {
            add_single(rep, &results[i]);
        }
        return;
    }
    struct report_block *b = &rep->blocks[rep->nr_blocks++];
    *b = (struct report_block){ .r = m, .merged = m, .members = count };
    bench_result_init(m, results[0].job, results[0].instance);
    for (unsigned i = 0; i < count; i++) {
        /* Only the time series can fail to merge; reports don't use it. */
        (void)bench_result_merge(m, &results[i]);
        b->total_run_ns += results[i].runtime_ns;
    }
    sum_all_samples(m, results, count);
}

int report_build(struct report *rep, const struct bench_config *cfg,
                 const struct job_result *results, unsigned n)
{
    *rep = (struct report){ .nr_groups = cfg->nr_groups };
    rep->blocks = calloc(n ? n : 1, sizeof(*rep->blocks));
    if (!rep->blocks) {
        return -1;
    }
    for (unsigned i = 0, end; i < n; i = end) {
        for (end = i + 1; end < n && same_block(&results[end - 1],
                                                &results[end]); end++) {
        }
        add_merged(rep, &results[i], end - i);
        if (results[i].job->groupid >= rep->nr_groups) {
            rep->nr_groups = results[i].job->groupid + 1;
        }
    }
    return 0;
}

void report_free(struct report *rep)
{
    for (unsigned i = 0; i < rep->nr_blocks; i++) {
        if (rep->blocks[i].merged) {
            bench_result_free(rep->blocks[i].merged);
            free(rep->blocks[i].merged);
        }
    }
    free(rep->blocks);
    *rep = (struct report){ 0 };
}

uint64_t report_runtime_ms(const struct job_result *r, int d)
{
    if (!r->dir[d].ios && !r->dir[d].bytes) {
        return 0;
    }
    uint64_t ms = r->runtime_ns / 1000000;
    return ms ? ms : 1;
}

void report_group(const struct report *rep, unsigned g,
                  struct report_group *grp)
{
    *grp = (struct report_group){ 0 };
    for (unsigned i = 0; i < rep->nr_blocks; i++) {
        const struct job_result *r = rep->blocks[i].r;
        if (r->job->groupid != g) {
            continue;
        }
        for (int d = 0; d < DIR_COUNT; d++) {
            uint64_t run = report_runtime_ms(r, d);
            if (!run) {
                continue;
            }
            uint64_t bw = r->dir[d].bytes * 1000 / run;
            bool first = !grp->max_run[d];
            if (first || run < grp->min_run[d]) {
                grp->min_run[d] = run;
            }
            if (run > grp->max_run[d]) {
                grp->max_run[d] = run;
            }
            if (first || bw < grp->min_bw[d]) {
                grp->min_bw[d] = bw;
            }
            if (bw > grp->max_bw[d]) {
                grp->max_bw[d] = bw;
            }
            grp->bytes[d] += r->dir[d].bytes;
        }
    }
    for (int d = 0; d < DIR_COUNT; d++) {
        if (grp->max_run[d]) {
            grp->agg[d] = grp->bytes[d] * 1000 / grp->max_run[d];
        }
    }
}

/* ---- numbers as fio computes them --------------------------------------- */

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

unsigned report_percentiles(const struct job *job,
                            double list[MAX_PERCENTILES])
{
    unsigned n = job->nr_percentiles;

    if (n > MAX_PERCENTILES) {
        n = MAX_PERCENTILES;
    }
    if (n) {
        memcpy(list, job->percentiles, n * sizeof(list[0]));
    } else {
        n = NR_DEFAULT_PERCENTILES;
        memcpy(list, default_percentiles, sizeof(default_percentiles));
    }
    qsort(list, n, sizeof(list[0]), compare_doubles);
    return n;
}

/* The most decimals a percentile in the list has: fio's precision. */
static unsigned percentile_precision(const double *list, unsigned n)
{
    unsigned precision = 0;

    for (unsigned i = 0; i < n; i++) {
        char text[64];
        snprintf(text, sizeof(text), "%.6f", list[i]);
        size_t len = strlen(text);
        while (text[len - 1] == '0') {
            len--;
        }
        unsigned decimals = (unsigned)(len - 1 - (size_t)(strchr(text, '.') -
                                                          text));
        if (decimals > precision) {
            precision = decimals;
        }
    }
    return precision;
}

uint64_t report_sum(const uint64_t *counts, unsigned nr)
{
    uint64_t sum = 0;

    for (unsigned i = 0; i < nr; i++) {
        sum += counts[i];
    }
    return sum;
}

void report_percent(const uint64_t *counts, unsigned nr, uint64_t total,
                    double min_pct, double *pct)
{
    for (unsigned i = 0; i < nr; i++) {
        pct[i] = total ? 100.0 * (double)counts[i] / (double)total : 0;
        if (counts[i] && pct[i] < min_pct) {
            pct[i] = min_pct;
        }
    }
}

uint64_t report_total_ios(const struct job_result *r)
{
    return r->dir[DIR_READ].ios + r->dir[DIR_WRITE].ios +
           r->dir[DIR_TRIM].ios;
}

/* fio's bucket of a value under 1000 (or any, for msec): "2=" holds 0-1,
 * "4=" 2-3, ... "1000=" 750-999, "2000=" 1000-1999, ">=2000=" the rest. */
static unsigned lat_index(uint64_t value)
{
    static const unsigned edges[] = { 2, 4, 10, 20, 50, 100, 250, 500, 750,
                                      1000, 2000 };
    unsigned i = 0;

    while (i < sizeof(edges) / sizeof(edges[0]) && value >= edges[i]) {
        i++;
    }
    return i;
}

/* fio counts each I/O by its completion latency (clat). */
void report_lat_counts(const struct job_result *r, uint64_t ns[REPORT_LAT_N],
                       uint64_t us[REPORT_LAT_N], uint64_t ms[REPORT_LAT_M])
{
    memset(ns, 0, REPORT_LAT_N * sizeof(ns[0]));
    memset(us, 0, REPORT_LAT_N * sizeof(us[0]));
    memset(ms, 0, REPORT_LAT_M * sizeof(ms[0]));
    for (int d = 0; d < DIR_COUNT; d++) {
        const struct lat_stats *s = &r->dir[d].clat;
        for (unsigned b = 0; b < LAT_BUCKETS; b++) {
            uint64_t v = lat_bucket_value(b);
            if (!s->buckets[b]) {
                continue;
            }
            if (v < 1000) {
                ns[lat_index(v)] += s->buckets[b];
            } else if (v < 1000000) {
                us[lat_index(v / 1000)] += s->buckets[b];
            } else {
                ms[lat_index(v / 1000000)] += s->buckets[b];
            }
        }
    }
}

double report_cpu_pct(double sec, uint64_t total_run_ns)
{
    return total_run_ns ? 100.0 * sec / ((double)total_run_ns / 1e9) : 0;
}

/* fio's bw "per": the mean (which fio passes as an int) as a percentage of
 * the group's aggregate bandwidth. */
static double agg_percent(uint64_t agg, double mean_kib)
{
    if (agg <= 1024) {
        return 100.0;
    }
    double pct = trunc(mean_kib) * 100.0 / ((double)agg / 1024.0);
    return pct > 100.0 ? 100.0 : pct;
}

/* ---- normal ------------------------------------------------------------- */

char *num2str(char buf[NUM_LEN], uint64_t num, int maxlen, bool pow2,
              enum n2s_unit units)
{
    static const char *const si[] = { "", "k", "M", "G", "T", "P" };
    static const char *const iec[] = { "", "Ki", "Mi", "Gi", "Ti", "Pi" };
    static const char *const unit_names[] = { "", "B", "B/s" };
    const char *const *prefix = pow2 ? iec : si;
    const unsigned thousand = pow2 ? 1024 : 1000;
    unsigned modulo = UINT_MAX, post = 0;
    bool carry = false;
    char tmp[NUM_LEN];

    while (post < 6 && snprintf(tmp, sizeof(tmp), "%" PRIu64, num) > maxlen) {
        modulo = (unsigned)(num % thousand);
        num /= thousand;
        carry = modulo >= thousand / 2;
        post++;
    }
    if (post >= 6) {
        post = 0;
    }
    if (modulo != UINT_MAX) {
        int decimals = maxlen - snprintf(tmp, sizeof(tmp), "%" PRIu64, num) -
                       1;
        if (decimals > 0) {
            snprintf(tmp, sizeof(tmp), "%.*f", decimals,
                     (double)modulo / thousand);
            snprintf(buf, NUM_LEN, "%" PRIu64 ".%s%s%s", num, tmp + 2,
                     prefix[post], unit_names[units]);
            return buf;
        }
        num += carry;
    }
    snprintf(buf, NUM_LEN, "%" PRIu64 "%s%s", num, prefix[post],
             unit_names[units]);
    return buf;
}

/* fio's choice of unit: usec or msec only when min, max and the spread
 * are all large enough. */
static const char *scale_lat(uint64_t *min, uint64_t *max, double *mean,
                             double *dev)
{
    static const struct {
        uint64_t div;
        const char *name;
    } units[] = { { 1000000, "(msec)" }, { 1000, "(usec)" } };

    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        uint64_t div = units[i].div;
        if (*min > 2 * div && *max > 100 * div - 1 && *dev > (double)div) {
            *min /= div;
            *max /= div;
            *mean /= (double)div;
            *dev /= (double)div;
            return units[i].name;
        }
    }
    return "(nsec)";
}

static void normal_lat(FILE *out, const char *name, const struct lat_stats *s)
{
    uint64_t min = s->min_ns, max = s->max_ns;
    double mean = lat_mean(s), dev = lat_stdev(s);
    char a[NUM_LEN], b[NUM_LEN];

    if (!s->count) {
        return;
    }
    const char *unit = scale_lat(&min, &max, &mean, &dev);
    fprintf(out, "    %s %s: min=%s, max=%s, avg=%5.02f, stdev=%5.02f\n",
            name, unit, num2str(a, min, 6, false, N2S_NONE),
            num2str(b, max, 6, false, N2S_NONE), mean, dev);
}

struct plist {
    double pct[MAX_PERCENTILES];
    unsigned n, precision;
};

/* fio's show_clat_percentiles(): unit by range, columns by the widest. */
static void normal_percentiles(FILE *out, const char *pre,
                               const struct lat_stats *s,
                               const struct plist *pl)
{
    uint64_t vals[MAX_PERCENTILES], minv = UINT64_MAX, maxv = 0;
    uint64_t divisor = 1;
    const char *unit = "nsec";

    if (!s->count || !pl->n) {
        return;
    }
    for (unsigned j = 0; j < pl->n; j++) {
        vals[j] = lat_percentile(s, pl->pct[j]);
        minv = vals[j] < minv ? vals[j] : minv;
        maxv = vals[j] > maxv ? vals[j] : maxv;
    }
    if (minv > 2000000 && maxv > 99999999) {
        divisor = 1000000;
        unit = "msec";
    } else if (minv > 2000 && maxv > 99999) {
        divisor = 1000;
        unit = "usec";
    }
    fprintf(out, "    %s percentiles (%s):\n     |", pre, unit);
    uint64_t top = maxv / divisor;
    int width = top ? (int)(log10((double)top) + 1) : 0;
    width = width < 5 ? 5 : width;
    unsigned per_line = 73 / (pl->precision + 10 + (unsigned)width);
    per_line = per_line ? per_line : 1;
    for (unsigned j = 0; j < pl->n; j++) {
        bool last = j + 1 == pl->n;
        uint64_t v = vals[j];
        if (j && j % per_line == 0) {
            fputs("     |", out);
        }
        for (uint64_t d = divisor; d > 1; d /= 1000) {
            v = (v + 999) / 1000;
        }
        fprintf(out, " %*.*fth=[%*" PRIu64 "]%c", (int)pl->precision + 3,
                (int)pl->precision, pl->pct[j], width, v, last ? '\n' : ',');
        if (!last && j % per_line == per_line - 1) {
            fputc('\n', out);
        }
    }
}

static void normal_bw(FILE *out, const struct sample_stats *s, uint64_t agg)
{
    double mean = sample_mean(s), dev = sample_stdev(s);
    uint64_t min = (uint64_t)s->min, max = (uint64_t)s->max;
    double per = agg_percent(agg, mean);
    const char *unit = "KiB";

    if (!s->count) {
        return;
    }
    if (mean > 1024.0 * 1024.0) {
        min /= 1024;
        max /= 1024;
        mean /= 1024;
        dev /= 1024;
        unit = "MiB";
    }
    fprintf(out, "   bw (%5s/s): min=%5" PRIu64 ", max=%5" PRIu64
            ", per=%3.2f%%, avg=%5.02f, stdev=%5.02f, samples=%" PRIu64 "\n",
            unit, min, max, per, mean, dev, s->count);
}

static void normal_iops(FILE *out, const struct sample_stats *s)
{
    if (!s->count) {
        return;
    }
    fprintf(out, "   iops        : min=%5" PRIu64 ", max=%5" PRIu64
            ", avg=%5.02f, stdev=%5.02f, samples=%" PRIu64 "\n",
            (uint64_t)s->min, (uint64_t)s->max, sample_mean(s),
            sample_stdev(s), s->count);
}

static void normal_dir(FILE *out, const struct job_result *r, int d,
                       const struct report_group *grp,
                       const struct plist *pl)
{
    const struct dir_stats *s = &r->dir[d];
    uint64_t run = report_runtime_ms(r, d);
    char iops[NUM_LEN], bw[NUM_LEN], bw_si[NUM_LEN], io[NUM_LEN];

    if (!run) {
        return;
    }
    uint64_t bps = s->bytes * 1000 / run;
    fprintf(out, "  %s: IOPS=%s, BW=%s (%s)(%s/%" PRIu64 "msec)%s\n",
            dir_names[d], num2str(iops, s->ios * 1000 / run, 4, false,
                                  N2S_NONE),
            num2str(bw, bps, 4, true, N2S_BYTEPERSEC),
            num2str(bw_si, bps, 4, false, N2S_BYTEPERSEC),
            num2str(io, s->bytes, 4, true, N2S_BYTE), run,
            d == DIR_WRITE ? "; 0 zone resets" : "");
    normal_lat(out, "slat", &s->slat);
    normal_lat(out, "clat", &s->clat);
    normal_lat(out, " lat", &s->lat);
    normal_percentiles(out, "clat", &s->clat, pl);
    normal_bw(out, &s->bw, grp->agg[d]);
    normal_iops(out, &s->iops);
}

/* fio's "  lat (usec)   : 50=0.03%, 100=17.35%, ..." lines, five a line. */
static void normal_lat_line(FILE *out, const char *unit,
                            const uint64_t *counts, unsigned nr,
                            uint64_t total)
{
    static const char *const ranges[] = { "2", "4", "10", "20", "50", "100",
                                          "250", "500", "750", "1000",
                                          "2000", ">=2000" };
    double pct[REPORT_LAT_M];
    unsigned on_line = 0;

    report_percent(counts, nr, total, 0.01, pct);
    for (unsigned i = 0; i < nr; i++) {
        if (pct[i] <= 0) {
            continue;
        }
        if (on_line == 5) {
            fputc('\n', out);
            on_line = 0;
        }
        if (on_line) {
            fputs(", ", out);
        } else {
            fprintf(out, "  lat (%s)   : ", unit);
        }
        fprintf(out, "%s=%3.2f%%", ranges[i], pct[i]);
        on_line++;
    }
    if (on_line) {
        fputc('\n', out);
    }
}

static void normal_lat_dist(FILE *out, const struct job_result *r)
{
    uint64_t ns[REPORT_LAT_N], us[REPORT_LAT_N], ms[REPORT_LAT_M];
    uint64_t total = report_total_ios(r);

    report_lat_counts(r, ns, us, ms);
    normal_lat_line(out, "nsec", ns, REPORT_LAT_N, total);
    normal_lat_line(out, "usec", us, REPORT_LAT_N, total);
    normal_lat_line(out, "msec", ms, REPORT_LAT_M, total);
}

static void normal_depths(FILE *out, const char *label,
                          const char *const *keys,
                          const uint64_t map[DEPTH_BUCKETS])
{
    double pct[DEPTH_BUCKETS];

    report_percent(map, DEPTH_BUCKETS, report_sum(map, DEPTH_BUCKETS), 0.1,
                   pct);
    fputs(label, out);
    for (unsigned i = 0; i < DEPTH_BUCKETS; i++) {
        fprintf(out, "%s%s=%3.1f%%", i ? ", " : "", keys[i], pct[i]);
    }
    fputc('\n', out);
}

static const char *const depth_keys[] = { "1", "2", "4", "8", "16", "32",
                                          ">=64" };
static const char *const batch_keys[] = { "0", "4", "8", "16", "32", "64",
                                          ">=64" };

static void normal_header(FILE *out, const struct report_block *b,
                          const char *when)
{
    const struct job_result *r = b->r;

    fprintf(out, "%s: (groupid=%u, jobs=%u): err=%2d", r->job->name,
            r->job->groupid, b->members, -r->error);
    if (r->error) {
        fprintf(out, " (%s)", r->errmsg[0] ? r->errmsg : strerror(-r->error));
    }
    fprintf(out, ": pid=%d: %s", (int)getpid(), when);
}

/* Beyond fio: what coblk costs in CPU for each I/O. */
static void normal_cpu_per_io(FILE *out, const struct job_result *r)
{
    uint64_t ios = report_total_ios(r);

    if (!ios) {
        return;
    }
    double usr = r->usr_sec * 1e9 / (double)ios;
    double sys = r->sys_sec * 1e9 / (double)ios;
    fprintf(out, "  coblk cpu/io : %.0fns (usr=%.0fns engine, sys=%.0fns "
            "kernel)\n", usr + sys, usr, sys);
}

static void normal_tail(FILE *out, const struct report_block *b)
{
    const struct job_result *r = b->r;

    fprintf(out, "  cpu          : usr=%3.2f%%, sys=%3.2f%%, ctx=%" PRIu64
            ", majf=%" PRIu64 ", minf=%" PRIu64 "\n",
            report_cpu_pct(r->usr_sec, b->total_run_ns),
            report_cpu_pct(r->sys_sec, b->total_run_ns), r->ctx, r->majf,
            r->minf);
    normal_depths(out, "  IO depths    : ", depth_keys, r->io_depth);
    normal_depths(out, "     submit    : ", batch_keys, r->submit);
    normal_depths(out, "     complete  : ", batch_keys, r->complete);
    fprintf(out, "     issued rwts: total=%" PRIu64 ",%" PRIu64 ",%" PRIu64
            ",%" PRIu64 " short=0,0,0,0 dropped=0,0,0,0\n",
            r->dir[DIR_READ].ios, r->dir[DIR_WRITE].ios, r->dir[DIR_TRIM].ios,
            r->sync.count);
    fprintf(out, "     latency   : target=0, window=0, percentile=100.00%%, "
            "depth=%u\n", r->job->iodepth);
    normal_cpu_per_io(out, r);
}

static void normal_block(FILE *out, const struct report *rep,
                         const struct report_block *b, const char *when)
{
    const struct job_result *r = b->r;
    struct report_group grp;
    struct plist pl;

    if (!report_total_ios(r) && !r->error) {
        return;
    }
    pl.n = report_percentiles(r->job, pl.pct);
    pl.precision = percentile_precision(pl.pct, pl.n);
    report_group(rep, r->job->groupid, &grp);
    normal_header(out, b, when);
    for (int d = 0; d < DIR_COUNT; d++) {
        normal_dir(out, r, d, &grp, &pl);
    }
    normal_lat_dist(out, r);
    if (r->sync.count) {
        fputs("  fsync/fdatasync/sync_file_range:\n", out);
        normal_lat(out, "sync", &r->sync);
        normal_percentiles(out, "sync", &r->sync, &pl);
    }
    normal_tail(out, b);
}

static void normal_group(FILE *out, const struct report *rep, unsigned g)
{
    static const char *const names[] = { "   READ", "  WRITE", "   TRIM" };
    struct report_group grp;

    report_group(rep, g, &grp);
    fprintf(out, "\nRun status group %u (all jobs):\n", g);
    for (int d = 0; d < DIR_COUNT; d++) {
        char n[8][NUM_LEN];
        if (!grp.max_run[d]) {
            continue;
        }
        fprintf(out, "%s: bw=%s (%s), %s-%s (%s-%s), io=%s (%s), run=%"
                PRIu64 "-%" PRIu64 "msec\n", names[d],
                num2str(n[0], grp.agg[d], 4, true, N2S_BYTEPERSEC),
                num2str(n[1], grp.agg[d], 4, false, N2S_BYTEPERSEC),
                num2str(n[2], grp.min_bw[d], 4, true, N2S_BYTEPERSEC),
                num2str(n[3], grp.max_bw[d], 4, true, N2S_BYTEPERSEC),
                num2str(n[4], grp.min_bw[d], 4, false, N2S_BYTEPERSEC),
                num2str(n[5], grp.max_bw[d], 4, false, N2S_BYTEPERSEC),
                num2str(n[6], grp.bytes[d], 4, true, N2S_BYTE),
                num2str(n[7], grp.bytes[d], 4, false, N2S_BYTE),
                grp.min_run[d], grp.max_run[d]);
    }
}

static void report_normal(FILE *out, const struct report *rep,
                          const char *when)
{
    fputc('\n', out);
    for (unsigned i = 0; i < rep->nr_blocks; i++) {
        normal_block(out, rep, &rep->blocks[i], when);
    }
    for (unsigned g = 0; g < rep->nr_groups; g++) {
        normal_group(out, rep, g);
    }
}

/* ---- JSON --------------------------------------------------------------- */

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
                     const struct plist *pl, bool bins)
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

static void json_bw(struct jw *w, const struct sample_stats *s, uint64_t agg)
{
    bool any = s->count;

    jw_uint(w, "bw_min", any ? (uint64_t)s->min : 0);
    jw_uint(w, "bw_max", any ? (uint64_t)s->max : 0);
    jw_float(w, "bw_agg", any ? agg_percent(agg, sample_mean(s)) : 0);
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

static void json_dir(struct jw *w, const struct job_result *r, int d,
                     const struct report_group *grp, const struct plist *pl,
                     bool plus)
{
    const struct dir_stats *s = &r->dir[d];
    uint64_t run = report_runtime_ms(r, d);
    uint64_t bps = run ? s->bytes * 1000 / run : 0;

    jw_open(w, dir_names[d], '{');
    jw_uint(w, "io_bytes", s->bytes);
    jw_uint(w, "io_kbytes", s->bytes >> 10);
    jw_uint(w, "bw_bytes", bps);
    jw_uint(w, "bw", bps / 1024);
    jw_float(w, "iops", run ? 1000.0 * (double)s->ios / (double)run : 0);
    jw_uint(w, "runtime", run);
    jw_uint(w, "total_ios", s->ios);
    jw_uint(w, "short_ios", 0);
    jw_uint(w, "drop_ios", 0);
    json_lat(w, "slat_ns", &s->slat, NULL, false);
    json_lat(w, "clat_ns", &s->clat, pl, plus);
    json_lat(w, "lat_ns", &s->lat, NULL, false);
    json_bw(w, &s->bw, grp->agg[d]);
    json_iops(w, &s->iops);
    jw_close(w, '}');
}

static void json_sync(struct jw *w, const struct job_result *r,
                      const struct plist *pl, bool plus)
{
    jw_open(w, "sync", '{');
    jw_uint(w, "total_ios", r->sync.count);
    json_lat(w, "lat_ns", &r->sync, pl, plus);
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
    static const char *const ranges[] = { "2", "4", "10", "20", "50", "100",
                                          "250", "500", "750", "1000",
                                          "2000", ">=2000" };
    double pct[REPORT_LAT_M];

    report_percent(counts, nr, total, 0.01, pct);
    jw_open(w, key, '{');
    for (unsigned i = 0; i < nr; i++) {
        jw_float(w, ranges[i], pct[i]);
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
    json_depths(w, "iodepth_level", depth_keys, r->io_depth);
    json_depths(w, "iodepth_submit", batch_keys, r->submit);
    json_depths(w, "iodepth_complete", batch_keys, r->complete);
    report_lat_counts(r, ns, us, ms);
    json_lat_map(w, "latency_ns", ns, REPORT_LAT_N, total);
    json_lat_map(w, "latency_us", us, REPORT_LAT_N, total);
    json_lat_map(w, "latency_ms", ms, REPORT_LAT_M, total);
    jw_uint(w, "latency_depth", r->job->iodepth);
    jw_uint(w, "latency_target", 0);
    jw_float(w, "latency_percentile", 100.0);
    jw_uint(w, "latency_window", 0);
}

static void json_block(struct jw *w, const struct report *rep,
                       const struct bench_config *cfg,
                       const struct report_block *b, bool plus)
{
    const struct job_result *r = b->r;
    struct report_group grp;
    struct plist pl;

    pl.n = report_percentiles(r->job, pl.pct);
    report_group(rep, r->job->groupid, &grp);
    jw_open(w, NULL, '{');
    jw_str(w, "jobname", r->job->name);
    jw_uint(w, "groupid", r->job->groupid);
    jw_int(w, "error", -r->error);
    jw_uint(w, "eta", 0);
    jw_uint(w, "elapsed", (r->runtime_ns + 999999999) / 1000000000);
    json_options(w, "job options", r->job);
    for (int d = 0; d < DIR_COUNT; d++) {
        json_dir(w, r, d, &grp, &pl, plus);
    }
    json_sync(w, r, &pl, plus);
    json_usage(w, b);
    jw_close(w, '}');
}

static void report_json(FILE *out, const struct report *rep,
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

/* ---- entry point -------------------------------------------------------- */

/* "j: (g=0): rw=randread, bs=(R) 4096B-4096B, (W) ..., iodepth=32" */
static void job_line(FILE *out, const struct job *job)
{
    char low[NUM_LEN], high[NUM_LEN];

    num2str(low, job->bs_min, 4, true, N2S_BYTE);
    num2str(high, job->bs_max, 4, true, N2S_BYTE);
    fprintf(out, "%s: (g=%u): rw=%s, bs=(R) %s-%s, (W) %s-%s, (T) %s-%s, "
            "ioengine=%s, iodepth=%u\n", job->name, job->groupid,
            bench_rw_name(job->rw), low, high, low, high, low, high,
            job->engine == ENGINE_NULL ? "null" : "io_uring", job->iodepth);
}

void report_start(FILE *out, const struct bench_config *cfg)
{
    unsigned total = 0;

    for (unsigned j = 0; j < cfg->nr_jobs; j++) {
        job_line(out, &cfg->jobs[j]);
        if (cfg->jobs[j].numjobs > 1) {
            fputs("...\n", out);
        }
        total += cfg->jobs[j].numjobs;
    }
    fprintf(out, "coblk-bench-%s\nStarting %u thread%s\n", PACKAGE_VERSION,
            total, total == 1 ? "" : "s");
}

void report_write(FILE *out, const struct bench_config *cfg,
                  const struct job_result *results, unsigned n,
                  unsigned format)
{
    struct report rep;
    struct timeval now;
    char when[32];

    if (report_build(&rep, cfg, results, n) < 0) {
        fprintf(stderr, "coblk-bench: out of memory for the report\n");
        return;
    }
    gettimeofday(&now, NULL);
    time_t sec = now.tv_sec;
    if (!ctime_r(&sec, when)) {
        snprintf(when, sizeof(when), "?\n");
    }
    if (format & OUTPUT_TERSE) {
        report_terse(out, &rep);
    } else if (format & (OUTPUT_JSON | OUTPUT_JSON_PLUS)) {
        report_json(out, &rep, cfg, format & OUTPUT_JSON_PLUS, &now, when);
    } else if (format & OUTPUT_NORMAL) {
        report_normal(out, &rep, when);
    }
    report_free(&rep);
}
