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

/* ---- the LFSR ------------------------------------------------------------- */

/* Taps of maximal-length registers of 3 to 63 bits (Xilinx XAPP052, as
 * fio uses them), highest first; 0 ends a list. */
static const uint8_t lfsr_taps[64][6] = {
    [3] = { 3, 2 }, [4] = { 4, 3 }, [5] = { 5, 3 }, [6] = { 6, 5 },
    [7] = { 7, 6 }, [8] = { 8, 6, 5, 4 }, [9] = { 9, 5 }, [10] = { 10, 7 },
    [11] = { 11, 9 }, [12] = { 12, 6, 4, 1 }, [13] = { 13, 4, 3, 1 },
    [14] = { 14, 5, 3, 1 }, [15] = { 15, 14 }, [16] = { 16, 15, 13, 4 },
    [17] = { 17, 14 }, [18] = { 18, 11 }, [19] = { 19, 6, 2, 1 },
    [20] = { 20, 17 }, [21] = { 21, 19 }, [22] = { 22, 21 },
    [23] = { 23, 18 }, [24] = { 24, 23, 22, 17 }, [25] = { 25, 22 },
    [26] = { 26, 6, 2, 1 }, [27] = { 27, 5, 2, 1 }, [28] = { 28, 25 },
    [29] = { 29, 27 }, [30] = { 30, 6, 4, 1 }, [31] = { 31, 28 },
    [32] = { 32, 31, 29, 1 }, [33] = { 33, 20 }, [34] = { 34, 27, 2, 1 },
    [35] = { 35, 33 }, [36] = { 36, 25 }, [37] = { 37, 5, 4, 3, 2, 1 },
    [38] = { 38, 6, 5, 1 }, [39] = { 39, 35 }, [40] = { 40, 38, 21, 19 },
    [41] = { 41, 38 }, [42] = { 42, 41, 20, 19 }, [43] = { 43, 42, 38, 37 },
    [44] = { 44, 43, 18, 17 }, [45] = { 45, 44, 42, 41 },
    [46] = { 46, 45, 26, 25 }, [47] = { 47, 42 }, [48] = { 48, 47, 21, 20 },
    [49] = { 49, 40 }, [50] = { 50, 49, 24, 23 }, [51] = { 51, 50, 36, 35 },
    [52] = { 52, 49 }, [53] = { 53, 52, 38, 37 }, [54] = { 54, 53, 18, 17 },
    [55] = { 55, 31 }, [56] = { 56, 55, 35, 34 }, [57] = { 57, 50 },
    [58] = { 58, 39 }, [59] = { 59, 58, 38, 37 }, [60] = { 60, 59 },
    [61] = { 61, 60, 46, 45 }, [62] = { 62, 61, 6, 5 }, [63] = { 63, 62 },
};

int flfsr_init(struct flfsr *l, uint64_t n, uint64_t seed)
{
    unsigned bits = 3;

    /* The all-ones state never comes: 2^bits must exceed n. */
    while (bits < 64 && (1ull << bits) <= n) {
        bits++;
    }
    if (bits == 64 || !n) {
        return -1;
    }
    *l = (struct flfsr){ .top_bit = 1ull << (bits - 1), .max = n - 1,
                         .seed = seed };
    for (int i = 0; i < 6 && lfsr_taps[bits][i]; i++) {
        l->xormask |= 1ull << (lfsr_taps[bits][i] - 1);
    }
    flfsr_reset(l);
    l->first = true;
    return l->last == (l->top_bit << 1) - 1 ? -1 : 0;
}

/* As fio's: the first step after a reset is a single one. */
void flfsr_reset(struct flfsr *l)
{
    l->last = l->seed & ((l->top_bit << 1) - 1);
    l->count = 0;
}

static void flfsr_step(struct flfsr *l)
{
    l->last = ((l->last >> 1) | l->top_bit) ^
              (((l->last & 1) - 1) & l->xormask);
}

bool flfsr_next(struct flfsr *l, uint64_t *out)
{
    if (l->count++ > l->max) {
        return false;
    }
    do {
        flfsr_step(l);
        if (l->first) {
            flfsr_step(l);
            l->first = false;
        }
    } while (l->last > l->max);
    *out = l->last;
    return true;
}
