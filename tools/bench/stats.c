/*
 * Latency statistics (see stats.h).
 */
#include "config.h"

#include <math.h>

#include "stats.h"

static unsigned bucket_of(uint64_t ns)
{
    if (ns < 16) {
        return (unsigned)ns;
    }
    unsigned msb = 63 - (unsigned)__builtin_clzll(ns);
    unsigned sub = (unsigned)(ns >> (msb - 4)) & 15;
    return (msb - 3) * 16 + sub;
}

/* The middle of the values bucket b holds. */
static uint64_t bucket_value(unsigned b)
{
    if (b < 16) {
        return b;
    }
    unsigned msb = b / 16 + 3;
    uint64_t low = ((uint64_t)(16 + b % 16)) << (msb - 4);
    return low + ((1ull << (msb - 4)) >> 1);
}

void lat_add(struct lat_stats *s, uint64_t ns)
{
    if (s->count == 0 || ns < s->min_ns) {
        s->min_ns = ns;
    }
    if (ns > s->max_ns) {
        s->max_ns = ns;
    }
    s->count++;
    s->sum_ns += (double)ns;
    s->sum_sq_ns += (double)ns * (double)ns;
    s->buckets[bucket_of(ns)]++;
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

double lat_stdev(const struct lat_stats *s)
{
    if (s->count < 2) {
        return 0;
    }
    double mean = lat_mean(s);
    double var = s->sum_sq_ns / (double)s->count - mean * mean;
    return var > 0 ? sqrt(var * (double)s->count / (double)(s->count - 1))
                   : 0;
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
            uint64_t v = bucket_value(b);
            return v < s->min_ns ? s->min_ns : v > s->max_ns ? s->max_ns : v;
        }
    }
    return s->max_ns;
}
