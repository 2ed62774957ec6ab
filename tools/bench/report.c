/*
 * Reports in fio 3.x's layouts (see report.h): what all formats share, and
 * the normal text report as fio 3.33 prints it; report-json.c has the JSON
 * structure and report-terse.c the terse lines.
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

const char *const report_dir_names[DIR_COUNT] = { "read", "write", "trim" };
const char *const report_depth_keys[DEPTH_BUCKETS] = {
    "1", "2", "4", "8", "16", "32", ">=64" };
const char *const report_batch_keys[DEPTH_BUCKETS] = {
    "0", "4", "8", "16", "32", "64", ">=64" };
const char *const report_lat_ranges[REPORT_LAT_M] = {
    "2", "4", "10", "20", "50", "100", "250", "500", "750", "1000", "2000",
    ">=2000" };
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

/* unified_rw_reporting=mixed: every direction's statistics in the
 * first's, reported as "mixed" (those by priority too, as fio's). */
static void fold_directions(struct job_result *m)
{
    for (int d = 1; d < DIR_COUNT; d++) {
        (void)dir_stats_merge_prios(&m->dir[0], m->job, &m->dir[d], m->job);
        dir_stats_merge(&m->dir[0], &m->dir[d]);
        free(m->dir[d].prios);
        m->dir[d] = (struct dir_stats){ 0 };
    }
}

const char *report_dir_name(const struct job_result *r, int d)
{
    return r->job->unified_rw ? "mixed" : report_dir_names[d];
}

/* Merges results[0..count) into one block, or when out of memory shows
 * them one by one: something rather than nothing. */
static void add_merged(struct report *rep, const struct job_result *results,
                       unsigned count)
{
    bool fold = results[0].job->unified_rw;
    struct job_result *m = count > 1 || fold ? malloc(sizeof(*m)) : NULL;

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
        /* Out of memory, the time series (reports don't use it) or the
         * latencies by priority may be left short. */
        (void)bench_result_merge(m, &results[i]);
        b->total_run_ns += results[i].runtime_ns;
    }
    sum_all_samples(m, results, count);
    if (fold) {
        fold_directions(m);
    }
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
        grp->mixed |= r->job->unified_rw;
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

unsigned report_latency_depth(const struct job_result *r)
{
    return r->latency_depth ? r->latency_depth : r->job->iodepth;
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

double report_agg_percent(uint64_t agg, double mean_kib)
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
            num += tmp[0] == '1';       /* 15.96 is 16.0, not 15.0 */
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

/* fio's show_clat_percentiles(): unit by range, columns by the widest. */
static void normal_percentiles(FILE *out, const char *pre,
                               const struct lat_stats *s,
                               const struct report_plist *pl)
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

bool report_prios_shown(const struct dir_stats *s)
{
    unsigned with_samples = 0;

    for (unsigned i = 0; i < s->nr_prios; i++) {
        with_samples += s->prios[i].lat.count > 0;
    }
    return with_samples >= 2;
}

const char *report_prio_lat_name(const struct job *job)
{
    return job->lat_percentiles ? "lat" : "clat";
}

/* fio's "clat prio 1/0 (usec): min=..." lines. */
static void normal_prio_lats(FILE *out, const struct job *job,
                             const struct dir_stats *s)
{
    for (unsigned i = 0; i < s->nr_prios; i++) {
        const struct prio_lat *p = &s->prios[i];
        char name[64];
        snprintf(name, sizeof(name), "%s prio %u/%u",
                 report_prio_lat_name(job), p->ioprio >> IOPRIO_CLASS_SHIFT,
                 p->ioprio & IOPRIO_MAX_LEVEL);
        normal_lat(out, name, &p->lat);
    }
}

/* fio's "clat prio 1/0 (50.12% of IOs) percentiles (usec):" blocks. */
static void normal_prio_percentiles(FILE *out, const struct job *job,
                                    const struct dir_stats *s,
                                    const struct report_plist *pl)
{
    uint64_t total = dir_prio_source(s, job)->count;

    for (unsigned i = 0; i < s->nr_prios; i++) {
        const struct prio_lat *p = &s->prios[i];
        char name[64];
        if (!p->lat.count) {
            continue;
        }
        snprintf(name, sizeof(name), "%s prio %u/%u (%.2f%% of IOs)",
                 report_prio_lat_name(job), p->ioprio >> IOPRIO_CLASS_SHIFT,
                 p->ioprio & IOPRIO_MAX_LEVEL,
                 100.0 * (double)p->lat.count / (double)total);
        normal_percentiles(out, name, &p->lat, pl);
    }
}

static void normal_bw(FILE *out, const struct sample_stats *s, uint64_t agg)
{
    double mean = sample_mean(s), dev = sample_stdev(s);
    uint64_t min = (uint64_t)s->min, max = (uint64_t)s->max;
    double per = report_agg_percent(agg, mean);
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
                       const struct report_plist *pl)
{
    const struct dir_stats *s = &r->dir[d];
    uint64_t run = report_runtime_ms(r, d);
    char iops[NUM_LEN], bw[NUM_LEN], bw_si[NUM_LEN], io[NUM_LEN];

    if (!run) {
        return;
    }
    uint64_t bps = s->bytes * 1000 / run;
    fprintf(out, "  %s: IOPS=%s, BW=%s (%s)(%s/%" PRIu64 "msec)%s\n",
            report_dir_name(r, d), num2str(iops, s->ios * 1000 / run, 4, false,
                                  N2S_NONE),
            num2str(bw, bps, 4, true, N2S_BYTEPERSEC),
            num2str(bw_si, bps, 4, false, N2S_BYTEPERSEC),
            num2str(io, s->bytes, 4, true, N2S_BYTE), run,
            d == DIR_WRITE ? "; 0 zone resets" : "");
    normal_lat(out, "slat", &s->slat);
    normal_lat(out, "clat", &s->clat);
    normal_lat(out, " lat", &s->lat);
    bool by_prio = report_prios_shown(s);
    if (by_prio) {
        normal_prio_lats(out, r->job, s);
    }
    if (r->job->slat_percentiles) {
        normal_percentiles(out, "slat", &s->slat, pl);
    }
    if (r->job->clat_percentiles) {
        normal_percentiles(out, "clat", &s->clat, pl);
    }
    if (r->job->lat_percentiles) {
        normal_percentiles(out, "lat", &s->lat, pl);
    }
    if (by_prio && (r->job->clat_percentiles || r->job->lat_percentiles)) {
        normal_prio_percentiles(out, r->job, s, pl);
    }
    normal_bw(out, &s->bw, grp->agg[d]);
    normal_iops(out, &s->iops);
}

/* fio's "  lat (usec)   : 50=0.03%, 100=17.35%, ..." lines, five a line. */
static void normal_lat_line(FILE *out, const char *unit,
                            const uint64_t *counts, unsigned nr,
                            uint64_t total)
{
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
        fprintf(out, "%s=%3.2f%%", report_lat_ranges[i], pct[i]);
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
    if (r->job->description[0]) {
        fprintf(out, "  Description  : [%s]\n", r->job->description);
    }
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

/* Beyond fio: the engine's rare paths, which should stay at zero or near
 * it (a short read nobody sees happen is a bug nobody finds). */
static void normal_engine_paths(FILE *out, const struct job_result *r)
{
    const struct coblk_dev_stats *d = &r->dev_stats;
    const struct coblk_aio_stats *a = &r->aio_stats;

    fprintf(out, "  coblk        : short reads=%" PRIu64 ", short writes=%"
            PRIu64 ", resubmits=%" PRIu64 ", bounces=%" PRIu64 ", splits=%"
            PRIu64 ", rmw waits=%" PRIu64 ", locked lookups=%" PRIu64
            ", sq full=%" PRIu64 ", cq waits=%" PRIu64 ", cq overflows=%"
            PRIu64 "\n",
            d->short_reads, d->short_writes, d->resubmits, d->bounces,
            d->splits, d->serialising_waits, d->locked_lookups, a->sq_full,
            a->slot_waits, a->cq_overflows);
}

static void normal_tail(FILE *out, const struct report_block *b)
{
    const struct job_result *r = b->r;

    fprintf(out, "  cpu          : usr=%3.2f%%, sys=%3.2f%%, ctx=%" PRIu64
            ", majf=%" PRIu64 ", minf=%" PRIu64 "\n",
            report_cpu_pct(r->usr_sec, b->total_run_ns),
            report_cpu_pct(r->sys_sec, b->total_run_ns), r->ctx, r->majf,
            r->minf);
    normal_depths(out, "  IO depths    : ", report_depth_keys,
                  r->io_depth);
    normal_depths(out, "     submit    : ", report_batch_keys, r->submit);
    normal_depths(out, "     complete  : ", report_batch_keys,
                  r->complete);
    fprintf(out, "     issued rwts: total=%" PRIu64 ",%" PRIu64 ",%" PRIu64
            ",%" PRIu64 " short=0,0,0,0 dropped=0,0,0,0\n",
            r->dir[DIR_READ].ios, r->dir[DIR_WRITE].ios, r->dir[DIR_TRIM].ios,
            r->sync_ios);
    if (r->job->continue_on_error) {
        fprintf(out, "     errors    : total=%" PRIu64 ", first_error=%d/<%s>"
                "\n", r->total_err, r->first_error,
                strerror(r->first_error));
    }
    fprintf(out, "     latency   : target=%" PRIu64 ", window=%" PRIu64
            ", percentile=%.2f%%, depth=%u\n", r->job->latency_target_ns,
            r->job->latency_window_ns / 1000, r->job->latency_percentile,
            report_latency_depth(r));
    normal_cpu_per_io(out, r);
    normal_engine_paths(out, r);
}

/* fio's "  steadystate  : attained=yes, bw=..., iops=..., iops slope=..."
 * line. */
static void normal_steady(FILE *out, const struct steady *s)
{
    char bw[NUM_LEN], bw_si[NUM_LEN], iops[NUM_LEN];
    uint64_t bw_mean = steady_mean(s->bw_data, s->count);

    fprintf(out, "  steadystate  : attained=%s, bw=%s (%s), iops=%s, "
            "%s%s=%.3f%s\n", s->attained ? "yes" : "no",
            num2str(bw, bw_mean, 4, true, N2S_BYTEPERSEC),
            num2str(bw_si, bw_mean, 4, false, N2S_BYTEPERSEC),
            num2str(iops, steady_mean(s->iops_data, s->count), 4, false,
                    N2S_NONE),
            s->iops ? "iops" : "bw", s->slope ? " slope" : " mean dev",
            s->criterion, s->pct ? "%" : "");
}

static void normal_block(FILE *out, const struct report *rep,
                         const struct report_block *b, const char *when)
{
    const struct job_result *r = b->r;
    struct report_group grp;
    struct report_plist pl;

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
    if (r->steady) {
        normal_steady(out, r->steady);
    }
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
                PRIu64 "-%" PRIu64 "msec\n", grp.mixed ? "  MIXED" : names[d],
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

/* ---- entry point -------------------------------------------------------- */

/* "j: (g=0): rw=randread, bs=(R) 4096B-4096B, (W) ..., iodepth=32" */
static void job_line(FILE *out, const struct job *job)
{
    char low[3][NUM_LEN], high[3][NUM_LEN];

    for (int d = 0; d < 3; d++) {
        num2str(low[d], job->dir_bs_min[d], 4, true, N2S_BYTE);
        num2str(high[d], job->dir_bs_max[d], 4, true, N2S_BYTE);
    }
    fprintf(out, "%s: (g=%u): rw=%s, bs=(R) %s-%s, (W) %s-%s, (T) %s-%s, "
            "ioengine=%s, iodepth=%u\n", job->name, job->groupid,
            bench_rw_name(job->rw), low[0], high[0], low[1], high[1], low[2],
            high[2], bench_engine_name(job->engine), job->iodepth_asked);
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
