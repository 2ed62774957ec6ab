/*
 * Latency statistics: count, min, max, mean, stdev and a log-linear
 * histogram (16 sub-buckets per power of two, under 6.25% error) for
 * percentiles, as fio keeps them.
 */
#ifndef COBLK_BENCH_STATS_H
#define COBLK_BENCH_STATS_H

#include <stdint.h>

#define LAT_BUCKETS (64 * 16)

struct lat_stats {
    uint64_t count;
    uint64_t min_ns, max_ns;
    double sum_ns, sum_sq_ns;
    uint64_t buckets[LAT_BUCKETS];
};

struct dir_stats {
    uint64_t ios;
    uint64_t bytes;
    struct lat_stats clat;
};

void lat_add(struct lat_stats *s, uint64_t ns);
void lat_merge(struct lat_stats *into, const struct lat_stats *from);
double lat_mean(const struct lat_stats *s);
double lat_stdev(const struct lat_stats *s);
/* The value below which pct percent of samples lie (bucket midpoint). */
uint64_t lat_percentile(const struct lat_stats *s, double pct);

#endif
