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

/* One direction's bssplit= in fio's order: by share, smallest first. */
static void split_order(const struct job *job, int d, struct bs_split *out)
{
    for (unsigned i = 0; i < job->nr_bssplit[d]; i++) {
        unsigned j = i;
        while (j > 0 && out[j - 1].pct > job->bssplit[d][i].pct) {
            out[j] = out[j - 1];
            j--;
        }
        out[j] = job->bssplit[d][i];
    }
}

static bool any_split(const struct job *job)
{
    return job->nr_bssplit[0] || job->nr_bssplit[1] || job->nr_bssplit[2];
}

static void seed_streams(struct picker *p)
{
    const struct job *job = p->job;
    /* As fio: with verify, writes draw their sizes as reads do. */
    uint64_t write_seed = job->verify ? p->seeds[FRAND_BS_READ]
                                      : p->seeds[FRAND_BS_WRITE];
    /* trimwrite: trims draw the sizes writes draw. */
    uint64_t trim_seed = p->trimwrite ? write_seed : p->seeds[FRAND_BS_TRIM];
    bool use64 = job->random_generator == RANDGEN_TAUSWORTHE64;

    frand_seed(&p->block_rand, p->seeds[FRAND_BLOCK], use64);
    frand_seed(&p->bs_rand[0], p->seeds[FRAND_BS_READ], use64);
    frand_seed(&p->bs_rand[1], write_seed, use64);
    frand_seed(&p->bs_rand[2], trim_seed, use64);
    frand_seed(&p->mix_rand, p->seeds[FRAND_MIX], false);
    frand_seed(&p->zone_rand, p->seeds[FRAND_ZONE], false);
    if (p->use_lfsr) {
        p->lfsr.seed = p->seeds[FRAND_BLOCK];
        flfsr_reset(&p->lfsr);
    }
    p->mix_dir = 0;
    p->mix_until = 0;
    p->issues[0] = p->issues[1] = 0;
}

/* fio's table for zoned: draw v (1..100) falls in the zone whose
 * accesses cover it, and gets that zone's span of the region. */
static void zoned_index(struct picker *p)
{
    const struct job *job = p->job;
    unsigned v = 0, start = 0;

    for (unsigned i = 0; i < job->nr_zones; i++) {
        for (unsigned j = 0; j < job->zones[i].access && v < 100; j++, v++) {
            p->zoned[v].start = (uint8_t)start;
            p->zoned[v].end = (uint8_t)(start + job->zones[i].size);
        }
        start += job->zones[i].size;
    }
}

/* The blocks random draws range over: a strided zone's, or all. */
static uint64_t zone_blocks(const struct job *job, uint64_t blocks)
{
    uint64_t range = job->zonemode == ZONES_STRIDED
                         ? job->zonerange / job->bs_unit : 0;

    return range && range < blocks ? range : blocks;
}

int picker_init(struct picker *p, const struct job *job, uint64_t blocks,
                const uint64_t seeds[FRAND_STREAMS])
{
    bool strided = job->zonemode == ZONES_STRIDED;
    uint64_t range = strided ? job->zonerange / job->bs_unit : 0;
    uint64_t zone = zone_blocks(job, blocks);

    *p = (struct picker){ .job = job, .blocks = zone, .region_blocks = blocks,
                          .zone_range = range,
                          .zone_step = strided ? (job->zonerange +
                                                  job->zoneskip) /
                                                     job->bs_unit
                                               : 0,
                          .random = bench_rw_is_random(job->rw),
                          .trimwrite = job->rw == RW_TRIMWRITE ||
                                       job->rw == RW_RANDTRIMWRITE,
                          .map = !job->norandommap,
                          .rng = picker_seed_state(seeds[FRAND_BLOCK]) };
    memcpy(p->seeds, seeds, sizeof(p->seeds));
    /* As fio: the LFSR visits each block once by itself, without a map;
     * where none fits (or the seed is its forbidden state), tausworthe. */
    p->use_lfsr = p->random && job->random_generator == RANDGEN_LFSR &&
                  job->distribution == DIST_RANDOM &&
                  flfsr_init(&p->lfsr, zone_blocks(job, blocks),
                             seeds[FRAND_BLOCK]) == 0;
    p->map &= !p->use_lfsr;
    seed_streams(p);
    for (int d = 0; d < 3; d++) {
        split_order(job, d, p->split[d]);
        /* A start so aligned leaves room for the smallest size. */
        p->align[d] = job->ba[d] / job->bs_unit;
        p->align_tail[d] = job->dir_bs_min[d] > job->ba[d]
                               ? (job->dir_bs_min[d] - job->ba[d]) /
                                     job->bs_unit
                               : 0;
    }
    if (job->distribution == DIST_ZIPF) {
        zipf_init(&p->zipf, job->zipf_theta, blocks);
        /* Hot ranks spread over the device, as fio hashes them: any
         * multiplier coprime with the block count is a permutation. */
        p->scramble = 0x9e3779b97f4a7c15ull % blocks | 1;
        while (bench_gcd(p->scramble, blocks) != 1) {
            p->scramble += 2;
        }
    }
    zoned_index(p);
    /* fio keeps no map of what zipf and zoned jobs did: blocks repeat. */
    bool random_map = p->random && p->map && job->distribution == DIST_RANDOM;
    if (random_map && blockmap_init(&p->done, zone) < 0) {
        return -ENOMEM;
    }
    p->map = random_map;
    p->seq_add = job->seq_add / (int64_t)job->bs_unit;
    bool one_size = !any_split(job) && job->bs_min == job->bs_max &&
                    job->bs_min == job->bs_unit && !job->seq_add &&
                    job->ba[0] == job->dir_bs_min[0] &&
                    job->ba[1] == job->dir_bs_min[1] &&
                    job->ba[2] == job->dir_bs_min[2] &&
                    job->ios_per_seek <= 1 && !p->zone_range && !p->trimwrite;
    bool uniform = p->random && !p->map && job->distribution == DIST_RANDOM;
    one_size &= !p->use_lfsr;
    p->fast = !one_size  ? PICK_ANY
              : random_map && job->distribution == DIST_RANDOM ? PICK_MAP
              : uniform    ? PICK_UNIFORM
                           : PICK_ANY;
    p->fixed_dir = fixed_direction(job->rw);
    if (p->fast == PICK_MAP) {
        p->drawn = picker_uniform(p);
    }
    return 0;
}

void picker_free(struct picker *p)
{
    blockmap_free(&p->done);
}

void picker_new_pass(struct picker *p)
{
    if (p->job->randrepeat) {
        seed_streams(p);
        if (p->fast == PICK_MAP) {
            p->drawn = picker_uniform(p);
        }
    }
    if (p->map) {
        blockmap_clear(&p->done);
    }
    p->next[0] = p->next[1] = 0;
    p->pass_ended = false;
    p->zone_start = p->zone_bytes = 0;
    p->blocks = p->zone_range && p->zone_range < p->region_blocks
                    ? p->zone_range : p->region_blocks;
}

/* Takes up to units blocks from block on, as the map allows; a full map
 * starts over (time_based). */
static uint64_t take_run(struct picker *p, uint64_t block, uint64_t units)
{
    uint64_t n = blockmap_take(&p->done, block, units);

    if (p->done.done == p->blocks) {
        blockmap_clear(&p->done);
    }
    return n;
}

uint64_t picker_map_miss(struct picker *p, uint64_t block)
{
    uint64_t free_block = blockmap_next_free(&p->done, block);

    if (free_block == BLOCKMAP_NONE) {
        blockmap_clear(&p->done);
        free_block = block;
    }
    take_run(p, free_block, 1);
    return free_block;
}

/* The map's next free entry after `from` below limit (a direction in
 * larger units uses the first entries only), or BLOCKMAP_NONE. */
static uint64_t free_below(struct picker *p, uint64_t from, uint64_t limit)
{
    uint64_t free_block = blockmap_next_free(&p->done, from);

    if (free_block != BLOCKMAP_NONE && free_block >= limit) {
        free_block = !blockmap_is_done(&p->done, 0)
                         ? 0 : blockmap_next_free(&p->done, 0);
    }
    return free_block < limit ? free_block : BLOCKMAP_NONE;
}

/* A random block in units of k blocks (fio draws in units of the
 * direction's alignment), among those that leave `tail` blocks after
 * them: uniformly, by zone, zipf or the LFSR, the next free one where the
 * map has it done. */
static uint64_t random_block(struct picker *p, uint64_t k, uint64_t tail)
{
    uint64_t blocks = (p->blocks > tail ? p->blocks - tail : 1) / k;

    blocks = blocks ? blocks : 1;

    if (p->job->distribution == DIST_ZIPF) {
        uint64_t rank = zipf_draw(&p->zipf, &p->rng) - 1;
        return (uint64_t)(((unsigned __int128)rank * p->scramble) % blocks);
    }
    uint64_t start = 0, span = blocks;
    if (p->job->distribution == DIST_ZONED) {
        unsigned v = (unsigned)frand_between(&p->zone_rand, 1, 100);
        start = p->zoned[v - 1].start * blocks / 100;
        span = blocks * (p->zoned[v - 1].end - p->zoned[v - 1].start) / 100;
    }
    uint64_t block;
    if (p->use_lfsr) {
        if (!flfsr_next(&p->lfsr, &block)) {     /* all done: again */
            flfsr_reset(&p->lfsr);
            flfsr_next(&p->lfsr, &block);
        }
        return block / k;
    }
    uint64_t draw = frand_next(&p->block_rand);
    block = (uint64_t)((double)span * frand_fraction(&p->block_rand, draw));
    if (p->map && blockmap_is_done(&p->done, block)) {
        uint64_t free_block = free_below(p, block, blocks);
        if (free_block == BLOCKMAP_NONE) {
            blockmap_clear(&p->done);
            free_block = block;
        }
        block = free_block;
    }
    return start + block < blocks ? start + block : blocks - 1;
}

/* An I/O's size, as fio draws it (its get_next_buflen): a share of the
 * largest size over the smallest (bsrange), or the first of the split,
 * by share, that the draw falls in; down to a multiple of the smallest;
 * drawn again until it fits before the end.  In bytes. */
static uint64_t pick_size(struct picker *p, int dir, uint64_t block)
{
    const struct job *job = p->job;
    struct frand *r = &p->bs_rand[dir];
    const struct bs_split *split = p->split[dir];
    uint64_t min = job->dir_bs_min[dir], max = job->dir_bs_max[dir];
    uint64_t room = (p->blocks - block) * job->bs_unit;
    uint64_t rand_max = r->use64 ? UINT64_MAX : UINT32_MAX;
    uint64_t size = min;

    if (min == max || room < min) {
        return min;
    }
    do {
        uint64_t draw = frand_next(r);
        if (!job->nr_bssplit[dir]) {
            size = min + (uint64_t)((double)max * frand_fraction(r, draw));
        } else {
            unsigned sum = 0;
            for (unsigned i = 0; i < job->nr_bssplit[dir]; i++) {
                sum += split[i].pct;
                size = split[i].bs;
                if (split[i].pct && draw / sum <= rand_max / 100 &&
                    size <= room) {
                    break;
                }
            }
        }
        size -= size % min;
        size = size > max ? max : size;
    } while (size > room);
    return size;
}

/* The block after a sequential I/O ending at end: with rw=MODE:N, N
 * further on (a hole) or back.  As fio, going forwards: an I/O that
 * reached the end of the file ends the pass (unless time_based); a hole
 * past the end of the file goes round to the start, past the end of a
 * region that ends before the file's, the pass ends.  Going backwards,
 * before the start goes round to the end. */
static uint64_t next_sequential(struct picker *p, uint64_t end)
{
    int64_t next = (int64_t)end + p->seq_add;
    bool over = next < 0 || next >= (int64_t)p->blocks;

    if (!p->seq_add) {
        return end;
    }
    /* An I/O of one size that would not fit before the end of the file
     * is not shortened: fio ends the pass there. */
    const struct job *job = p->job;
    uint64_t size = job->bs_min == job->bs_max && !any_split(job)
                        ? job->bs_min / job->bs_unit : 1;
    bool no_room = !over && p->region_ends_file &&
                   (uint64_t)next + size > p->blocks;
    if (p->seq_add > 0 && !job->time_based &&
        (p->region_ends_file ? end >= p->blocks || no_room : over)) {
        p->pass_ended = true;
    }
    if (over) {
        next = p->seq_add > 0 ? 0 : (int64_t)p->blocks + p->seq_add;
    }
    return next < 0 ? 0 : (uint64_t)next;
}

/* zonemode=strided, as fio: after zonesize bytes in a zone, on to the
 * next (round to the first past the end); every zonerange bytes, the map
 * and the cursors start again. */
static void next_zone_maybe(struct picker *p)
{
    const struct job *job = p->job;

    if (p->zone_bytes >= job->zonesize) {
        p->zone_bytes = 0;
        p->zone_start += p->zone_step;
        if (p->zone_start >= p->region_blocks) {
            p->zone_start = 0;
        }
        uint64_t left = p->region_blocks - p->zone_start;
        p->blocks = p->zone_range < left ? p->zone_range : left;
    }
    if (p->zone_bytes % job->zonerange == 0) {
        if (p->map) {
            blockmap_clear(&p->done);
        }
        if (p->use_lfsr) {
            flfsr_reset(&p->lfsr);
        }
        p->next[0] = p->next[1] = 0;
    }
}

uint64_t picker_block_any(struct picker *p, uint64_t *bytes)
{
    if (p->zone_range) {
        next_zone_maybe(p);
    }
    int dir = p->fixed_dir >= 0 ? p->fixed_dir : p->mix_dir;
    uint64_t *cursor = &p->next[dir == 1];
    /* As fio: random blocks of a direction are aligned, and its map
     * entries count in that alignment. */
    uint64_t k = p->align[dir], tail = p->align_tail[dir];
    uint64_t block;

    if (p->trimwrite && p->random && dir == 1) {
        *bytes = p->trim_bytes;     /* the trim's blocks, outside the map */
        return p->trim_block;
    }

    /* rw=randMODE:N, as fio: of every N I/Os, the first is random and the
     * others follow the last one (or repeat it), outside the map. */
    bool follows = p->random && p->run_left;
    if (follows) {
        p->run_left--;
        block = p->job->seek_identical ? p->run_block
                : p->run_next < p->blocks ? p->run_next
                                          : random_block(p, k, tail) * k;
    } else if (p->random) {
        block = random_block(p, k, tail) * k;
        p->run_left = p->job->ios_per_seek - 1;
    } else {
        block = *cursor % p->blocks;
    }
    uint64_t size = pick_size(p, dir, block);
    /* One size (the unit itself) spares a division per I/O. */
    uint64_t units = size == p->job->bs_unit ? 1 : size / p->job->bs_unit;
    if (p->map && !follows && k == 1) {
        units = take_run(p, block, units);
    } else if (p->map && !follows) {
        uint64_t taken = take_run(p, block / k, (units + k - 1) / k);
        units = taken && taken * k < units ? taken * k : units;
    }
    if (units > p->blocks - block) {
        units = p->blocks - block;
    }
    p->run_block = block;
    p->run_next = block + units;
    if (!p->random) {
        *cursor = next_sequential(p, block + units);
    }
    *bytes = units * p->job->bs_unit;
    p->zone_bytes += *bytes;
    p->trim_block = p->zone_start + block;
    p->trim_bytes = *bytes;
    return p->zone_start + block;
}

/* fio's mixed jobs: a direction is drawn (rwmixread in 100), and when it
 * changes, kept until its I/Os reach the other's so far times its share:
 * so runs of one direction, in the proportions asked. */
int picker_mixed_direction(struct picker *p)
{
    unsigned read_pct = p->job->rwmixread;

    if (p->trimwrite) {
        p->mix_dir = p->mix_dir == 2 ? 1 : 2;   /* a trim first */
        return p->mix_dir;
    }
    if (p->issues[p->mix_dir] >= p->mix_until) {
        int dir = frand_between(&p->mix_rand, 1, 100) <= read_pct ? 0 : 1;
        if (dir != p->mix_dir) {
            unsigned share = dir == 0 ? read_pct : 100 - read_pct;
            p->mix_until = p->issues[p->mix_dir] * share / 100;
        }
        p->mix_dir = dir;
    }
    p->issues[p->mix_dir]++;
    return p->mix_dir;
}
