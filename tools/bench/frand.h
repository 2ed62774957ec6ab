/*
 * fio's random number generators, so that a job issues the same I/O
 * sequence here as in fio: L'Ecuyer's maximally equidistributed combined
 * Tausworthe generators (taus88, 32 bits; taus258, 64 bits), seeded as
 * fio 3.33 seeds each job's streams, and drawn from as fio draws.
 */
#ifndef COBLK_BENCH_FRAND_H
#define COBLK_BENCH_FRAND_H

#include <stdbool.h>
#include <stdint.h>

struct frand {
    bool use64;
    uint32_t s32[3];
    uint64_t s64[5];
};

/* The streams of a job, in fio's order (its seed table is indexed so). */
enum frand_stream {
    FRAND_BS_READ, FRAND_BS_WRITE, FRAND_BS_TRIM, FRAND_VERIFY, FRAND_MIX,
    FRAND_FILE, FRAND_BLOCK, FRAND_FILE_SIZE, FRAND_TRIM, FRAND_BUF,
    FRAND_SEQ_RAND_READ, FRAND_SEQ_RAND_WRITE, FRAND_SEQ_RAND_TRIM,
    FRAND_START_DELAY, FRAND_DEDUPE, FRAND_POISSON, FRAND_ZONE,
    FRAND_POISSON2, FRAND_POISSON3, FRAND_PRIO, FRAND_DEDUPE_SET,
    FRAND_STREAMS,
};

void frand_seed(struct frand *r, uint64_t seed, bool use64);

static inline uint32_t frand_next32(struct frand *r)
{
    uint32_t *s = r->s32;

    s[0] = ((s[0] & 0xfffffffeu) << 12) ^ (((s[0] << 13) ^ s[0]) >> 19);
    s[1] = ((s[1] & 0xfffffff8u) << 4) ^ (((s[1] << 2) ^ s[1]) >> 25);
    s[2] = ((s[2] & 0xfffffff0u) << 17) ^ (((s[2] << 3) ^ s[2]) >> 11);
    return s[0] ^ s[1] ^ s[2];
}

uint64_t frand_next64(struct frand *r);

static inline uint64_t frand_next(struct frand *r)
{
    return r->use64 ? frand_next64(r) : frand_next32(r);
}

/* A draw as a fraction in [0, 1), as fio scales draws to ranges. */
static inline double frand_fraction(struct frand *r, uint64_t draw)
{
    return r->use64 ? (double)draw / 18446744073709551616.0
                    : (double)draw / 4294967296.0;
}

/* fio's rand_between(): a value in [start, end], both included. */
uint64_t frand_between(struct frand *r, uint64_t start, uint64_t end);

/* A job's seeds, as fio computes them from randseed= for the job numbered
 * thread_number (from 1, over all jobs and their numjobs copies); with
 * randrepeat (fio's default), the block offsets' stream is seeded from
 * the job's number alone, whatever randseed= says. */
void frand_job_seeds(uint64_t randseed, unsigned thread_number,
                     bool randrepeat, uint64_t seeds[FRAND_STREAMS]);

/* fio's other generator (random_generator=lfsr): a maximal-length
 * linear feedback shift register over just enough bits for n values,
 * each of 0..n-1 once before it ends; what it yields past n - 1 it skips.
 * The taps are the usual maximal-length ones (as fio takes them). */
struct flfsr {
    uint64_t xormask, last, top_bit, max, count, seed;
    bool first;                 /* fio's first step goes two */
};

/* 0, or -1 when no register fits n or the seed is the forbidden state. */
int flfsr_init(struct flfsr *l, uint64_t n, uint64_t seed);
/* Every value again, from the seed (a single first step, as fio's). */
void flfsr_reset(struct flfsr *l);
/* The next value, or false when all n have come. */
bool flfsr_next(struct flfsr *l, uint64_t *out);

#endif
