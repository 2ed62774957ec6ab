/*
 * Choosing blocks, sizes and directions (see pick.h).
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pick.h"

static double uniform01(uint64_t *s)
{
    return (double)(picker_rand(s) >> 11) * 0x1.0p-53;
}

/* (exp(x) - 1) / x and log1p(x) / x, continuous at 0. */
static double expm1_over(double x)
{
    return fabs(x) > 1e-8 ? expm1(x) / x : 1 + x / 2;
}

static double log1p_over(double x)
{
    return fabs(x) > 1e-8 ? log1p(x) / x : 1 - x / 2;
}

/* The hat function's integral H(x) = (x^(1-theta) - 1) / (1 - theta), its
 * inverse, and the density h(x) = x^-theta. */
static double zipf_H(const struct zipf *z, double x)
{
    double log_x = log(x);
    return expm1_over((1 - z->theta) * log_x) * log_x;
}

static double zipf_H_inv(const struct zipf *z, double x)
{
    double t = x * (1 - z->theta);
    if (t < -1) {
        t = -1;                 /* rounding at the edge of the domain */
    }
    return exp(log1p_over(t) * x);
}

static double zipf_h(const struct zipf *z, double x)
{
    return exp(-z->theta * log(x));
}

void zipf_init(struct zipf *z, double theta, uint64_t n)
{
    z->theta = theta;
    z->n = (double)n;
    z->h_x1 = zipf_H(z, 1.5) - 1;
    z->h_n = zipf_H(z, z->n + 0.5);
    z->s = 2 - zipf_H_inv(z, zipf_H(z, 2.5) - zipf_h(z, 2));
}

uint64_t zipf_draw(const struct zipf *z, uint64_t *rng)
{
    for (;;) {
        double u = uniform01(rng);
        double hu = z->h_n + u * (z->h_x1 - z->h_n);
        double x = zipf_H_inv(z, hu);
        double k = floor(x + 0.5);
        k = k < 1 ? 1 : k > z->n ? z->n : k;
        if (k - x <= z->s || hu >= zipf_H(z, k + 0.5) - zipf_h(z, k)) {
            return (uint64_t)k;
        }
    }
}

/* The direction of every I/O of a job that does one, or -1. */
static int fixed_direction(enum rw_mode rw)
{
    switch (rw) {
    case RW_READ:
    case RW_RANDREAD:
        return 0;
    case RW_WRITE:
    case RW_RANDWRITE:
        return 1;
    case RW_TRIM:
    case RW_RANDTRIM:
        return 2;
    default:
        return -1;
    }
}

int picker_init(struct picker *p, const struct job *job, uint64_t blocks,
                uint64_t seed)
{
    *p = (struct picker){ .job = job, .blocks = blocks,
                          .random = bench_rw_is_random(job->rw),
                          .map = !job->norandommap,
                          .rng = picker_seed_state(seed) };
    uint64_t period = 1;
    while (period < blocks) {
        period <<= 1;
    }
    p->mask = period - 1;
    p->next = p->random ? picker_rand(&p->rng) & p->mask : 0;
    if (job->distribution == DIST_ZIPF) {
        zipf_init(&p->zipf, job->zipf_theta, blocks);
        /* Hot ranks spread over the device, as fio hashes them: any
         * multiplier coprime with the block count is a permutation. */
        p->scramble = 0x9e3779b97f4a7c15ull % blocks | 1;
        while (bench_gcd(p->scramble, blocks) != 1) {
            p->scramble += 2;
        }
    }
    bool sizes_vary = job->nr_bssplit > 1 || job->bs_min != job->bs_max;
    bool random_map = p->random && p->map && job->distribution == DIST_RANDOM;
    if (random_map && sizes_vary) {
        p->used = calloc((blocks + 63) / 64, sizeof(*p->used));
        if (!p->used) {
            return -ENOMEM;
        }
    }
    p->seq_add = job->seq_add / (int64_t)job->bs_unit;
    bool one_size = !job->nr_bssplit && job->bs_min == job->bs_max &&
                    job->bs_min == job->bs_unit && !job->seq_add &&
                    job->ios_per_seek <= 1;
    bool uniform = p->random && !p->map && job->distribution == DIST_RANDOM;
    p->fast = !one_size  ? PICK_ANY
              : random_map ? PICK_MAP
              : uniform    ? PICK_UNIFORM
                           : PICK_ANY;
    p->fixed_dir = fixed_direction(job->rw);
    return 0;
}

void picker_free(struct picker *p)
{
    free(p->used);
    p->used = NULL;
}

static bool is_used(const struct picker *p, uint64_t block)
{
    return p->used[block / 64] >> (block % 64) & 1;
}

/* Takes up to units free blocks from block on; returns how many. */
static uint64_t take_free_run(struct picker *p, uint64_t block,
                              uint64_t units)
{
    uint64_t n = 0;

    while (n < units && block + n < p->blocks && !is_used(p, block + n)) {
        p->used[(block + n) / 64] |= 1ull << ((block + n) % 64);
        n++;
    }
    p->nr_used += n;
    if (p->nr_used == p->blocks) {      /* a pass is done: the next one */
        memset(p->used, 0, (p->blocks + 63) / 64 * sizeof(*p->used));
        p->nr_used = 0;
    }
    return n;
}

static uint64_t random_block(struct picker *p)
{
    if (p->job->distribution == DIST_ZIPF) {
        uint64_t rank = zipf_draw(&p->zipf, &p->rng) - 1;
        return (uint64_t)(((unsigned __int128)rank * p->scramble) %
                          p->blocks);
    }
    if (!p->map) {
        return picker_uniform(p);
    }
    uint64_t block;
    do {
        block = picker_map_next(p);
    } while (p->used && is_used(p, block));
    return block;
}

static uint64_t pick_size(struct picker *p)
{
    const struct job *job = p->job;

    if (job->nr_bssplit) {
        unsigned roll = (unsigned)(picker_rand(&p->rng) % 100), sum = 0;
        for (unsigned i = 0; i < job->nr_bssplit; i++) {
            sum += job->bssplit[i].pct;
            if (roll < sum) {
                return job->bssplit[i].bs;
            }
        }
        return job->bssplit[job->nr_bssplit - 1].bs;
    }
    if (job->bs_min == job->bs_max) {
        return job->bs_min;
    }
    uint64_t steps = job->bs_max / job->bs_min;
    return job->bs_min * (1 + picker_rand(&p->rng) % steps);
}

/* The block after a sequential I/O ending at end: with rw=MODE:N, N
 * further on (a hole) or back.  Past either end of the region, as fio:
 * going forwards, the pass ends (unless time_based) and the next starts
 * at the start; going backwards, it goes on from the end. */
static uint64_t next_sequential(struct picker *p, uint64_t end)
{
    int64_t next = (int64_t)end + p->seq_add;

    if (p->seq_add && (next < 0 || next >= (int64_t)p->blocks)) {
        p->pass_ended = p->seq_add > 0 && !p->job->time_based;
        next = p->seq_add > 0 ? 0 : (int64_t)p->blocks + p->seq_add;
    }
    return next < 0 ? 0 : (uint64_t)next;
}

uint64_t picker_block_any(struct picker *p, uint64_t *bytes)
{
    uint64_t size = pick_size(p);
    /* One size (the unit itself) spares a division per I/O. */
    uint64_t units = size == p->job->bs_unit ? 1 : size / p->job->bs_unit;
    uint64_t block;

    if (p->random && p->run_left) {     /* rw=randMODE:N */
        p->run_left--;
        block = p->job->seek_identical ? p->run_block
                                       : p->run_next % p->blocks;
    } else if (p->random) {
        block = random_block(p);
        p->run_left = p->job->ios_per_seek - 1;
        p->run_block = block;
    } else {
        block = p->next % p->blocks;
    }
    if (p->used) {
        units = take_free_run(p, block, units);
    } else if (units > p->blocks - block) {
        units = p->blocks - block;
    }
    size = units * p->job->bs_unit;
    p->run_next = block + units;
    if (!p->random) {
        p->next = next_sequential(p, block + units);
    }
    *bytes = size;
    return block;
}

int picker_mixed_direction(struct picker *p)
{
    return picker_rand(&p->rng) % 100 < p->job->rwmixread ? 0 : 1;
}
