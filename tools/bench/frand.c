/*
 * fio's generators and seeding (see frand.h).  The algorithms are
 * L'Ecuyer's ("Maximally Equidistributed Combined Tausworthe Generators",
 * Math. Comp. 65 (1996); taus258 from "Tables of Maximally Equidistributed
 * Combined LFSR Generators", Math. Comp. 68 (1999)); the constants of the
 * seeding are fio's, including its start value, which C's ^ makes 53
 * where 2^31 + 2^17 + 2^7 was meant.
 */
#include "config.h"

#include "frand.h"

/* fio's constants: the block stream's seed with randrepeat, and the
 * multiplier that spreads randseed= over the streams. */
#define BLOCK_SEED 0xb1899bedull
#define SEED_SPREAD 0x9e370001ull
#define SEED_START 53           /* (2^31) + (2^17) + (2^7), as C reads it */

/* The components must not start below these (the erratum to the paper). */
static uint64_t at_least(uint64_t x, uint64_t floor)
{
    return x < floor ? x + floor : x;
}

uint64_t frand_next64(struct frand *r)
{
    uint64_t *s = r->s64, x;

    x = ((s[0] << 1) ^ s[0]) >> 53;
    s[0] = ((s[0] & 0xfffffffffffffffeull) << 10) ^ x;
    x = ((s[1] << 24) ^ s[1]) >> 50;
    s[1] = ((s[1] & 0xfffffffffffffe00ull) << 5) ^ x;
    x = ((s[2] << 3) ^ s[2]) >> 23;
    s[2] = ((s[2] & 0xfffffffffffff000ull) << 29) ^ x;
    x = ((s[3] << 5) ^ s[3]) >> 24;
    s[3] = ((s[3] & 0xfffffffffffe0000ull) << 23) ^ x;
    x = ((s[4] << 3) ^ s[4]) >> 33;
    s[4] = ((s[4] & 0xffffffffff800000ull) << 8) ^ x;
    return s[0] ^ s[1] ^ s[2] ^ s[3] ^ s[4];
}

void frand_seed(struct frand *r, uint64_t seed, bool use64)
{
    static const uint64_t floors[5] = { 1, 7, 15, 33, 49 };

    r->use64 = use64;
    if (use64) {
        uint64_t x = SEED_START;
        for (int i = 0; i < 5; i++) {
            x = r->s64[i] = at_least(x * 6906969069ull ^ seed, floors[i]);
        }
    } else {
        uint32_t seed32 = (uint32_t)seed, x = SEED_START;
        for (int i = 0; i < 3; i++) {
            x = r->s32[i] = (uint32_t)at_least((uint32_t)(x * 69069u) ^
                                               seed32, floors[i]);
        }
    }
    for (int crank = 0; crank < 6; crank++) {
        frand_next(r);
    }
}

uint64_t frand_between(struct frand *r, uint64_t start, uint64_t end)
{
    uint64_t draw = frand_next(r);

    if (r->use64) {
        return start + (uint64_t)((double)(end - start + 1) *
                                  frand_fraction(r, draw));
    }
    /* fio truncates through an int here. */
    return start + (uint64_t)(int)((double)(uint32_t)(end - start + 1) *
                                   frand_fraction(r, draw));
}

void frand_job_seeds(uint64_t randseed, unsigned thread_number,
                     bool randrepeat, uint64_t seeds[FRAND_STREAMS])
{
    uint64_t seed = randseed;

    for (int i = 0; i < 4; i++) {
        seed *= SEED_SPREAD;
    }
    for (int i = 0; i < FRAND_STREAMS; i++) {
        seeds[i] = seed * thread_number + (uint64_t)i;
        seed *= SEED_SPREAD;
    }
    if (randrepeat) {
        seeds[FRAND_BLOCK] = BLOCK_SEED * thread_number;
    }
}
