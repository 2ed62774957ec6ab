/*
 * Statistics as fio keeps them: latencies (count, min, max, mean, stdev and
 * a log-linear histogram for percentiles), periodic samples of bandwidth and IOPS, and the
 * distributions of queue depth and batch sizes.
 */
#ifndef COBLK_BENCH_STATS_H
#define COBLK_BENCH_STATS_H

#include <stddef.h>
#include <stdint.h>

/* 64 sub-buckets per power of two, as fio: under 1.6% error (half that
 * from the midpoint), up to 2^40 ns (18 minutes). */
#define LAT_SUB_BITS 6
#define LAT_SUB (1u << LAT_SUB_BITS)
#define LAT_MAX_BIT 40
#define LAT_BUCKETS ((LAT_MAX_BIT - LAT_SUB_BITS + 2) * LAT_SUB)

struct lat_stats {
    uint64_t count;
    uint64_t min_ns, max_ns;
    double sum_ns, sum_sq_ns;
    uint64_t buckets[LAT_BUCKETS];
};

/* Plain running statistics of samples (bandwidth, IOPS). */
struct sample_stats {
    uint64_t count;
    double min, max, sum, sum_sq;
};

/* One priority's latencies (fio's clat_prio_stat): completion latencies,
 * or with lat_percentiles total ones. */
struct prio_lat {
    uint16_t ioprio;            /* ioprio(2)'s value: class << 13 | level */
    struct lat_stats lat;
};

struct dir_stats {
    uint64_t ios;
    uint64_t bytes;
    struct lat_stats slat;      /* preparing to submitted (no histogram) */
    struct lat_stats clat;      /* submitted to completed */
    struct lat_stats lat;       /* preparing to completed (no histogram) */
    struct sample_stats bw;     /* KiB/s, one sample per interval */
    struct sample_stats iops;
    /* cmdprio: the latencies by priority, owned (job_result's functions);
     * NULL: every I/O at the job's priority. */
    struct prio_lat *prios;
    unsigned nr_prios;
};

/* fio's depth buckets: 1, 2, 4, 8, 16, 32, >=64 (IO depths) and
 * 0, 4, 8, 16, 32, 64, >=64 (submit and complete batch sizes). */
#define DEPTH_BUCKETS 7
unsigned depth_bucket(unsigned depth);
unsigned batch_bucket(unsigned batch);

void lat_add(struct lat_stats *s, uint64_t ns);
/* n samples of the same value (a batch submitted together). */
void lat_add_n(struct lat_stats *s, uint64_t ns, uint64_t n);
/* The same without the histogram: for what is reported without
 * percentiles (slat and lat, as fio does by default). */
void lat_add_moments(struct lat_stats *s, uint64_t ns, uint64_t n);
void lat_merge(struct lat_stats *into, const struct lat_stats *from);
double lat_mean(const struct lat_stats *s);
double lat_stdev(const struct lat_stats *s);
/* The value below which pct percent of samples lie (bucket midpoint). */
uint64_t lat_percentile(const struct lat_stats *s, double pct);
/* The middle (the smallest) latency histogram bucket b holds, in ns. */
uint64_t lat_bucket_value(unsigned b);
uint64_t lat_bucket_low(unsigned b);

void sample_add(struct sample_stats *s, double value);
void sample_merge(struct sample_stats *into, const struct sample_stats *from);
double sample_mean(const struct sample_stats *s);
double sample_stdev(const struct sample_stats *s);

#endif
