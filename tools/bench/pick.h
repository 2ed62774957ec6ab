/*
 * Choosing what each I/O does: its direction, its block (sequentially, by
 * a random map that visits every block once per pass, uniformly at random,
 * or by a zipf distribution) and its size (bs, bsrange, bssplit).  As fio
 * chooses: the same streams, seeds and draws (frand.h), so that a job
 * issues the same sequence of I/Os as fio's (zipf excepted).
 */
#ifndef COBLK_BENCH_PICK_H
#define COBLK_BENCH_PICK_H

#include <stdbool.h>
#include <stdint.h>

#include "blockmap.h"
#include "frand.h"
#include "options.h"

/* Rejection-inversion sampling of ranks 1..n with P(k) ~ 1/k^theta
 * (Hörmann and Derflinger): O(1) set-up and draws, any theta > 0. */
struct zipf {
    double theta, n;
    double h_x1, h_n, s;
};

struct picker {
    const struct job *job;
    uint64_t blocks;            /* of bs_unit bytes: the region, or zone */
    /* zonemode=strided: the region, where the zone starts in it, its
     * range and step (range + skip) in blocks, and the bytes done in it. */
    uint64_t region_blocks, zone_start, zone_range, zone_step;
    uint64_t zone_bytes;
    bool random, map;
    uint64_t next[2];           /* sequential cursors: reads, writes */
    /* fio's streams (see frand.h), reseeded from seeds each pass when
     * the job repeats its randomness: blocks, sizes, directions. */
    uint64_t seeds[FRAND_STREAMS];
    struct frand block_rand, bs_rand[3], mix_rand, zone_rand;
    struct flfsr lfsr;          /* random_generator=lfsr */
    bool use_lfsr;
    /* zoned: for each draw of 1..100, the span of the region (start and
     * end, in percent) its zone covers. */
    struct { uint8_t start, end; } zoned[100];
    uint64_t rng;               /* zipf's own draws */
    uint64_t scramble;          /* zipf: rank -> block multiplier */
    struct zipf zipf;
    struct blockmap done;       /* the random map */
    uint64_t drawn;             /* PICK_MAP: the next draw, prefetched */
    struct bs_split split[3][MAX_BSSPLIT];  /* bssplit=, in fio's order */
    /* fio's mixed jobs keep a direction for a while: its I/Os so far, and
     * the count of them at which it draws again. */
    int mix_dir;
    uint64_t mix_until;
    /* rw=trimwrite and randtrimwrite: a trim, then a write of the same
     * blocks (randtrimwrite: the trim's block and size again). */
    bool trimwrite;
    uint64_t trim_block, trim_bytes;
    /* Each direction's random alignment (fio's blockalign, by default its
     * smallest size) and the blocks a start so aligned leaves after it,
     * in blocks. */
    uint64_t align[3], align_tail[3];
    uint64_t issues[2];
    /* rw=MODE:N: the modifier in blocks (sequential), or the I/Os left
     * to follow the last one, where it started and where it ended. */
    int64_t seq_add;
    bool pass_ended;            /* holes reached the end: as fio, stop */
    bool region_ends_file;      /* set by the caller: no file past it */
    unsigned run_left;
    uint64_t run_block, run_next;
    /* The common jobs, inline: one block size, random with or without
     * the map; and one direction (-1: mixed). */
    enum { PICK_ANY, PICK_MAP, PICK_UNIFORM } fast;
    int fixed_dir;
};

/* seeds: the job's, from frand_job_seeds().  0, or -ENOMEM (the map). */
int picker_init(struct picker *p, const struct job *job, uint64_t blocks,
                const uint64_t seeds[FRAND_STREAMS]);
void picker_free(struct picker *p);
/* A new pass (loops=): as fio, the streams start again when the job
 * repeats its randomness; every block is to do again. */
void picker_new_pass(struct picker *p);

/* xorshift64: fast, and good enough for data. */
static inline uint64_t picker_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* A generator state from a seed: any seed but never 0, which xorshift64
 * would keep for ever. */
static inline uint64_t picker_seed_state(uint64_t seed)
{
    uint64_t state = seed * 2654435761u + 1;

    return state ? state : 0x9e3779b97f4a7c15u;
}

/* A block uniformly at random, as fio draws it: the draw's fraction of
 * the block count, in doubles.  A 32-bit draw times a count below 2^21
 * is below 2^53, where doubles are exact: there the same block comes
 * from a multiply and a shift, without the conversions' latency. */
static inline __attribute__((always_inline)) uint64_t
picker_uniform(struct picker *p)
{
    uint64_t draw = frand_next(&p->block_rand);

    if (!p->block_rand.use64 && p->blocks < (1u << 21)) {
        return (p->blocks * draw) >> 32;
    }
    return (uint64_t)((double)p->blocks *
                      frand_fraction(&p->block_rand, draw));
}

uint64_t picker_map_miss(struct picker *p, uint64_t block);

/* Draws the block after the next, and has its map word fetched while
 * this I/O goes: a random word of the map is most often not in the
 * cache, and waiting for it was a fifth of a null job's time. */
static inline __attribute__((always_inline)) uint64_t
picker_draw_ahead(struct picker *p)
{
    uint64_t block = p->drawn;

    p->drawn = picker_uniform(p);
    __builtin_prefetch(&p->done.level[0][p->drawn / 64], 1);
    return block;
}

/* The random map's next block: a uniform draw, or when that block is
 * done, the first after it that is not (fio's axmap search). */
static inline __attribute__((always_inline)) uint64_t
picker_map_next(struct picker *p)
{
    uint64_t block = picker_draw_ahead(p);

    if (blockmap_is_done(&p->done, block)) {
        /* Half the draws of a pass, on average: the next free block is
         * most often in the same word. */
        uint64_t after = block % 64 == 63 ? 0 : ~0ull << (block % 64 + 1);
        uint64_t free_bits = ~p->done.level[0][block / 64] & after;
        if (!free_bits) {
            return picker_map_miss(p, block);
        }
        block = block / 64 * 64 + (uint64_t)__builtin_ctzll(free_bits);
        if (block >= p->blocks) {
            return picker_map_miss(p, block);
        }
    }
    blockmap_take_one(&p->done, block);
    if (__builtin_expect(p->done.done == p->blocks, 0)) {
        blockmap_clear(&p->done);       /* time_based: round again */
    }
    return block;
}

uint64_t picker_block_any(struct picker *p, uint64_t *bytes);

/* The next block (in bs_unit units) and the size of the I/O there, never
 * past the last block. */
static inline __attribute__((always_inline)) uint64_t
picker_block(struct picker *p, uint64_t *bytes)
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
