/*
 * Statistics (see stats.h).
 */
#include "config.h"

#include <math.h>

#include "stats.h"

/* Bucket b < LAT_SUB holds the value b; above, an octave [2^k, 2^(k+1))
 * is split in LAT_SUB equal parts.  The last octave also holds all that
 * is larger (hours). */
static unsigned bucket_of(uint64_t ns)
{
    if (ns < LAT_SUB) {
        return (unsigned)ns;
    }
    unsigned msb = 63 - (unsigned)__builtin_clzll(ns);
    if (msb > LAT_MAX_BIT) {
        return LAT_BUCKETS - 1;
    }
    unsigned sub = (unsigned)(ns >> (msb - LAT_SUB_BITS)) & (LAT_SUB - 1);
    return (msb - LAT_SUB_BITS + 1) * LAT_SUB + sub;
}

uint64_t lat_bucket_low(unsigned b)
{
    if (b < LAT_SUB) {
        return b;
    }
    unsigned msb = b / LAT_SUB + LAT_SUB_BITS - 1;
    return ((uint64_t)(LAT_SUB + b % LAT_SUB)) << (msb - LAT_SUB_BITS);
}

uint64_t lat_bucket_value(unsigned b)
{
    if (b < LAT_SUB) {
        return b;
    }
    unsigned msb = b / LAT_SUB + LAT_SUB_BITS - 1;
    return lat_bucket_low(b) + ((1ull << (msb - LAT_SUB_BITS)) >> 1);
}

void lat_add_moments(struct lat_stats *s, uint64_t ns, uint64_t n)
{
    if (s->count == 0 || ns < s->min_ns) {
        s->min_ns = ns;
    }
    if (ns > s->max_ns) {
        s->max_ns = ns;
    }
    /* Through int64_t: one instruction where uint64_t takes a branch and
     * five (no latency reaches 2^63 ns). */
    double x = (double)(int64_t)ns, weight = (double)(int64_t)n;
    s->count += n;
    s->sum_ns += x * weight;
    s->sum_sq_ns += x * x * weight;
}

void lat_add_n(struct lat_stats *s, uint64_t ns, uint64_t n)
{
    lat_add_moments(s, ns, n);
    s->buckets[bucket_of(ns)] += n;
}

void lat_add(struct lat_stats *s, uint64_t ns)
{
    lat_add_n(s, ns, 1);
}

void lat_merge(struct lat_stats *into, const struct lat_stats *from)
{
    if (!from->count) {
        return;
    }
    if (!into->count || from->min_ns < into->min_ns) {
        into->min_ns = from->min_ns;
    }
    if (from->max_ns > into->max_ns) {
        into->max_ns = from->max_ns;
    }
    into->count += from->count;
    into->sum_ns += from->sum_ns;
    into->sum_sq_ns += from->sum_sq_ns;
    for (unsigned b = 0; b < LAT_BUCKETS; b++) {
        into->buckets[b] += from->buckets[b];
    }
}

double lat_mean(const struct lat_stats *s)
{
    return s->count ? s->sum_ns / (double)s->count : 0;
}

/* The sample standard deviation from the count, sum and sum of squares. */
static double stdev_of(uint64_t count, double sum, double sum_sq)
{
    if (count < 2) {
        return 0;
    }
    double mean = sum / (double)count;
    double var = sum_sq / (double)count - mean * mean;
    return var > 0 ? sqrt(var * (double)count / (double)(count - 1)) : 0;
}

double lat_stdev(const struct lat_stats *s)
{
    return stdev_of(s->count, s->sum_ns, s->sum_sq_ns);
}

uint64_t lat_percentile(const struct lat_stats *s, double pct)
{
    if (!s->count) {
        return 0;
    }
    uint64_t rank = (uint64_t)ceil(pct / 100.0 * (double)s->count);
    uint64_t seen = 0;

    rank = rank ? rank : 1;
    for (unsigned b = 0; b < LAT_BUCKETS; b++) {
        seen += s->buckets[b];
        if (seen >= rank) {
            if (b == LAT_BUCKETS - 1) {
                return s->max_ns;       /* the overflow bucket */
            }
            uint64_t v = lat_bucket_value(b);
            return v < s->min_ns ? s->min_ns : v > s->max_ns ? s->max_ns : v;
        }
    }
    return s->max_ns;
}

unsigned depth_bucket(unsigned depth)
{
    unsigned b = 0;

    while (b < DEPTH_BUCKETS - 1 && depth >= 2u << b) {
        b++;
    }
    return b;
}

unsigned batch_bucket(unsigned batch)
{
    if (batch == 0) {
        return 0;
    }
    unsigned b = 1;
    while (b < DEPTH_BUCKETS - 1 && batch > 4u << (b - 1)) {
        b++;
    }
    return b;
}

void sample_add(struct sample_stats *s, double value)
{
    if (!s->count || value < s->min) {
        s->min = value;
    }
    if (!s->count || value > s->max) {
        s->max = value;
    }
    s->count++;
    s->sum += value;
    s->sum_sq += value * value;
}

void sample_merge(struct sample_stats *into, const struct sample_stats *from)
{
    if (!from->count) {
        return;
    }
    if (!into->count || from->min < into->min) {
        into->min = from->min;
    }
    if (!into->count || from->max > into->max) {
        into->max = from->max;
    }
    into->count += from->count;
    into->sum += from->sum;
    into->sum_sq += from->sum_sq;
}

double sample_mean(const struct sample_stats *s)
{
    return s->count ? s->sum / (double)s->count : 0;
}

double sample_stdev(const struct sample_stats *s)
{
    return stdev_of(s->count, s->sum, s->sum_sq);
}
