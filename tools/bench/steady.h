/*
 * fio's steady state (ss=, ss_dur=, ss_ramp=): once a second, the IOPS
 * and bandwidth of the last second are recorded; once ss_dur seconds of
 * them are in (after ss_ramp and one more second), the criterion is their
 * largest deviation from their mean, or the slope of their least-squares
 * line, absolute or as a percentage of the mean; under the limit, the
 * state is attained and the job stops.
 */
#ifndef COBLK_BENCH_STEADY_H
#define COBLK_BENCH_STEADY_H

#include <stdbool.h>
#include <stdint.h>

struct steady {
    /* What to watch, from the job. */
    bool iops, slope, pct;
    double limit;
    unsigned dur;               /* samples (seconds) */
    uint64_t ramp_ns;
    /* The last dur samples, oldest first once full. */
    uint64_t *iops_data, *bw_data;
    unsigned count;             /* samples recorded, up to dur */
    uint64_t prev_ios, prev_bytes, prev_ns, start_ns;
    bool ramp_over;
    /* The last check (0 until dur samples are in). */
    bool attained;
    double criterion, deviation, slope_value;
};

/* 0, or -ENOMEM. */
int steady_init(struct steady *s, bool iops, bool slope, bool pct,
                double limit, unsigned dur, uint64_t ramp_ns,
                uint64_t start_ns);
void steady_free(struct steady *s);
/* The totals done so far at now_ns (about a second after the last);
 * true once the state is attained. */
bool steady_sample(struct steady *s, uint64_t ios, uint64_t bytes,
                   uint64_t now_ns);
uint64_t steady_mean(const uint64_t *data, unsigned n);

#endif
