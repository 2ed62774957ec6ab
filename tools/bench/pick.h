/*
 * Choosing what each I/O does: its direction, its block (sequentially, by
 * a random map that visits every block once per pass, uniformly at random,
 * or by a zipf distribution) and its size (bs, bsrange, bssplit).
 */
#ifndef COBLK_BENCH_PICK_H
#define COBLK_BENCH_PICK_H

#include <stdbool.h>
#include <stdint.h>

#include "options.h"

/* Rejection-inversion sampling of ranks 1..n with P(k) ~ 1/k^theta
 * (Hörmann and Derflinger): O(1) set-up and draws, any theta > 0. */
struct zipf {
    double theta, n;
    double h_x1, h_n, s;
};

struct picker {
    const struct job *job;
    uint64_t blocks;            /* of bs_unit bytes */
    bool random, map;
    uint64_t next;              /* sequential cursor, or map state */
    uint64_t mask;              /* random map: period - 1 (a power of two) */
    uint64_t rng;
    uint64_t scramble;          /* zipf: rank -> block multiplier */
    struct zipf zipf;
    /* Random map with sizes that vary: the blocks used this pass, so
     * that I/Os neither overlap nor leave gaps (fio's axmap). */
    uint64_t *used;
    uint64_t nr_used;
    /* The common jobs, inline: one block size, random with a map (and
     * no map of used blocks) or uniform; and one direction (-1: mixed). */
    /* rw=MODE:N: the modifier in blocks (sequential), or the I/Os left
     * from the current random offset and where the next one goes. */
    int64_t seq_add;
    bool pass_ended;            /* holes reached the end: as fio, stop */
    unsigned run_left;
    uint64_t run_block, run_next;
    enum { PICK_ANY, PICK_MAP, PICK_UNIFORM } fast;
    int fixed_dir;
};

/* 0, or -ENOMEM (the map of used blocks). */
int picker_init(struct picker *p, const struct job *job, uint64_t blocks,
                uint64_t seed);
void picker_free(struct picker *p);
/* xorshift64: fast, and good enough to choose blocks. */
static inline uint64_t picker_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* A generator state from a seed (randseed=): any seed but never 0, which
 * xorshift64 would keep for ever. */
static inline uint64_t picker_seed_state(uint64_t seed)
{
    uint64_t state = seed * 2654435761u + 1;

    return state ? state : 0x9e3779b97f4a7c15u;
}

/* A block uniformly at random: the high half of a 128-bit product maps
 * the draw to 0..blocks-1 without a division. */
static inline uint64_t picker_uniform(struct picker *p)
{
    return (uint64_t)(((unsigned __int128)picker_rand(&p->rng) * p->blocks) >>
                      64);
}

/* The random map's next block: x -> 5x + 1 mod 2^k has full period
 * (Hull-Dobell); values past the end are skipped, so each block comes
 * once per pass. */
static inline uint64_t picker_map_next(struct picker *p)
{
    do {
        p->next = (p->next * 5 + 1) & p->mask;
    } while (p->next >= p->blocks);
    return p->next;
}

uint64_t picker_block_any(struct picker *p, uint64_t *bytes);

/* The next block (in bs_unit units) and the size of the I/O there, never
 * past the last block. */
static inline uint64_t picker_block(struct picker *p, uint64_t *bytes)
{
    if (p->fast != PICK_ANY) {
        *bytes = p->job->bs_unit;
        return p->fast == PICK_MAP ? picker_map_next(p) : picker_uniform(p);
    }
    return picker_block_any(p, bytes);
}

int picker_mixed_direction(struct picker *p);

/* 0 read, 1 write, 2 trim: from rw and rwmixread. */
static inline int picker_direction(struct picker *p)
{
    return p->fixed_dir >= 0 ? p->fixed_dir : picker_mixed_direction(p);
}

void zipf_init(struct zipf *z, double theta, uint64_t n);
/* A rank in 1..n, drawing uniform numbers from rng. */
uint64_t zipf_draw(const struct zipf *z, uint64_t *rng);

#endif
