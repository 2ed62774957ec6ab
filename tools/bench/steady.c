/*
 * fio's steady state detection (see steady.h).
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "steady.h"

int steady_init(struct steady *s, bool iops, bool slope, bool pct,
                double limit, unsigned dur, uint64_t ramp_ns,
                uint64_t start_ns)
{
    *s = (struct steady){ .iops = iops, .slope = slope, .pct = pct,
                          .limit = limit, .dur = dur, .ramp_ns = ramp_ns,
                          .prev_ns = start_ns, .start_ns = start_ns,
                          .ramp_over = !ramp_ns };
    s->iops_data = calloc(dur, sizeof(*s->iops_data));
    s->bw_data = calloc(dur, sizeof(*s->bw_data));
    if (!s->iops_data || !s->bw_data) {
        steady_free(s);
        return -ENOMEM;
    }
    return 0;
}

void steady_free(struct steady *s)
{
    free(s->iops_data);
    free(s->bw_data);
    s->iops_data = s->bw_data = NULL;
}

uint64_t steady_mean(const uint64_t *data, unsigned n)
{
    uint64_t sum = 0;

    for (unsigned i = 0; i < n; i++) {
        sum += data[i];
    }
    return n ? sum / n : 0;
}

/* Appends a sample, dropping the oldest once dur are in. */
static void record(uint64_t *data, unsigned count, unsigned dur,
                   uint64_t value)
{
    if (count == dur) {
        memmove(data, data + 1, (dur - 1) * sizeof(*data));
    }
    data[count == dur ? dur - 1 : count] = value;
}

/* The criterion over the window: largest deviation from the mean, or the
 * least-squares slope against 0, 1, ..., dur - 1 (signed, as fio's). */
static void judge(struct steady *s)
{
    const uint64_t *y = s->iops ? s->iops_data : s->bw_data;
    double n = s->dur, mean = 0, sxy = 0, sxx = 0, dev = 0;

    for (unsigned i = 0; i < s->dur; i++) {
        mean += (double)y[i] / n;
    }
    for (unsigned i = 0; i < s->dur; i++) {
        double dx = i - (n - 1) / 2, dy = (double)y[i] - mean;
        sxy += dx * dy;
        sxx += dx * dx;
        dev = fabs(dy) > dev ? fabs(dy) : dev;
    }
    s->deviation = dev;
    s->slope_value = sxx ? sxy / sxx : 0;
    double value = s->slope ? s->slope_value : dev;
    s->criterion = s->pct ? (mean ? 100.0 * value / mean : 0) : value;
    s->attained = fabs(s->criterion) < s->limit;
}

bool steady_sample(struct steady *s, uint64_t ios, uint64_t bytes,
                   uint64_t now_ns)
{
    uint64_t ms = (now_ns - s->prev_ns) / 1000000;

    /* As fio: samples start a second after the ramp time. */
    if (!s->ramp_over && now_ns - s->start_ns >= s->ramp_ns + 1000000000) {
        s->ramp_over = true;
    }
    if (s->ramp_over && ms && !s->attained) {
        record(s->iops_data, s->count, s->dur, 1000 * (ios - s->prev_ios) / ms);
        record(s->bw_data, s->count, s->dur,
               1000 * (bytes - s->prev_bytes) / ms);
        s->count += s->count < s->dur;
        if (s->count == s->dur) {
            judge(s);
        }
    }
    s->prev_ios = ios;
    s->prev_bytes = bytes;
    s->prev_ns = now_ns;
    return s->attained;
}
