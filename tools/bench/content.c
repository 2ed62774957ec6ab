/*
 * What writes carry: fio's buffer options (content.h).
 */
#include "config.h"

#include <string.h>

#include "content.h"
#include "pick.h"
#include "run.h"

/* splitmix64's finaliser: neighbouring seeds give unrelated streams. */
static uint64_t mix(uint64_t x)
{
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static void fill_random(uint8_t *buf, uint64_t bytes, uint64_t seed)
{
    uint64_t state = picker_seed_state(mix(seed));
    uint64_t i = 0;

    for (; i + sizeof(uint64_t) <= bytes; i += sizeof(uint64_t)) {
        uint64_t v = picker_rand(&state);
        memcpy(buf + i, &v, sizeof(v));
    }
    if (i < bytes) {
        uint64_t v = picker_rand(&state);
        memcpy(buf + i, &v, bytes - i);
    }
}

/* The pattern from its start, over and over (fio's buffer_pattern). */
static void fill_pattern(const struct content *c, uint8_t *buf,
                         uint64_t bytes)
{
    uint64_t done = c->pattern_len < bytes ? c->pattern_len : bytes;

    memcpy(buf, c->pattern, done);
    while (done < bytes) {              /* doubling what is there */
        uint64_t n = done < bytes - done ? done : bytes - done;
        memcpy(buf + done, buf, n);
        done += n;
    }
}

static void fill_fixed(const struct content *c, uint8_t *buf, uint64_t bytes)
{
    if (c->pattern_len) {
        fill_pattern(c, buf, bytes);
    } else {
        memset(buf, 0, bytes);
    }
}

/* The seed of the k-th new buffer of instance `index`. */
static uint64_t new_seed(const struct content *c, unsigned index, uint64_t k)
{
    return mix(c->seed + index * 0x9e3779b97f4a7c15ull) + k;
}

/* The working set's i-th buffer, as fio makes the set: the first new
 * buffers of this instance; with dedupe_global, the set cut in equal
 * parts, each some instance's first new buffers, from this one's on. */
static uint64_t working_set_seed(const struct content *c, uint64_t i)
{
    if (!c->global) {
        return new_seed(c, c->index, i);
    }
    uint64_t part = c->working_set / c->instances;
    part = part ? part : 1;
    uint64_t other = (c->index + i / part) % c->instances;
    return new_seed(c, (unsigned)other, i % part);
}

/* The seed of the next buffer: a new one, or for dedupe_percentage of
 * them a repeated one (fio's "repeat": the last new one). */
static uint64_t next_seed(struct content *c)
{
    bool repeat = c->dedupe_pct == 100 ||
                  (c->dedupe_pct &&
                   picker_rand(&c->dedupe_rng) % 100 < c->dedupe_pct);

    if (repeat && c->working_set && c->dedupe_pct < 100) {
        return working_set_seed(c, picker_rand(&c->dedupe_rng) %
                                       c->working_set);
    }
    if (!repeat || !c->uniques) {
        c->uniques++;
    }
    return new_seed(c, c->index, c->uniques - 1);
}

/* Each chunk: random_pct of it random, the rest fixed. */
static void fill_mixed(struct content *c, uint8_t *buf, uint64_t bytes)
{
    uint64_t seed = next_seed(c);

    for (uint64_t pos = 0; pos < bytes; pos += c->chunk) {
        uint64_t len = bytes - pos < c->chunk ? bytes - pos : c->chunk;
        uint64_t random = c->chunk * c->random_pct / 100;
        random = random < len ? random : len;
        fill_random(buf + pos, random, mix(seed) + pos);
        fill_fixed(c, buf + pos + random, len - random);
    }
}

void content_fill(struct content *c, uint8_t *buf, uint64_t bytes)
{
    switch (c->fill) {
    case FILL_MIXED:
        fill_mixed(c, buf, bytes);
        break;
    case FILL_PATTERN:
        fill_pattern(c, buf, bytes);
        break;
    case FILL_ZERO:
        memset(buf, 0, bytes);
        break;
    case FILL_RANDOM:
        fill_random(buf, bytes, new_seed(c, c->index, c->uniques++));
        break;
    }
}

/* As fio scrambles: the offset at the start of one of the sector's eight
 * cache lines (which one changes from write to write), the count at the
 * end of the first. */
void content_scramble(struct content *c, uint8_t *buf, uint64_t bytes,
                      uint64_t offset)
{
    uint64_t count = ++c->scrambles;
    unsigned line = (unsigned)((count ^ (offset >> 9)) & 7) * 64;

    for (uint64_t pos = 0; pos + 512 <= bytes; pos += 512) {
        uint64_t at = offset + pos;
        memcpy(buf + pos + line, &at, sizeof(at));
        memcpy(buf + pos + 48, &count, sizeof(count));
        memcpy(buf + pos + 56, &c->seed, sizeof(c->seed));
    }
}

/* fio's rules: a pattern or zeroes stay (refilled where reads may have
 * overwritten them); compression or dedupe refill unless told not to;
 * the rest is scrambled unless zero_buffers=1 or a pattern was asked for
 * (scramble_buffers=1 given scrambles them too). */
static void choose_per_write(struct content *c, const struct job *job)
{
    bool mixed = c->fill == FILL_MIXED;
    bool reads = job->rw != RW_WRITE && job->rw != RW_RANDWRITE &&
                 job->rw != RW_TRIMWRITE && job->rw != RW_RANDTRIMWRITE;
    bool refill = job->refill_buffers_given
                      ? job->refill_buffers
                      : mixed || (c->pattern_len && reads);

    if (refill) {
        c->per_write = PER_WRITE_REFILL;
    } else if (job->scramble_buffers &&
               (job->scramble_buffers_given ||
                (!(job->zero_buffers && job->zero_buffers_given) &&
                 !c->pattern_len)) &&
               !job->compress_pct && !job->dedupe_pct) {
        c->per_write = PER_WRITE_SCRAMBLE;
    } else {
        c->per_write = PER_WRITE_KEEP;
    }
}

void content_init(struct content *c, const struct job *job, uint64_t seed,
                  unsigned index)
{
    *c = (struct content){
        .dedupe_pct = job->dedupe_pct,
        .pattern = job->buffer_pattern, .pattern_len = job->buffer_pattern_len,
        .seed = seed, .index = index,
        .instances = job->instances_in_run ? job->instances_in_run : 1,
        .dedupe_rng = picker_seed_state(mix(seed + index) + 1),
    };
    uint64_t bs = job->dir_bs_min[DIR_WRITE];
    c->chunk = job->compress_chunk && job->compress_chunk < bs
                   ? job->compress_chunk : bs;
    /* As fio: 100% compressible is zero_buffers and no compression (so
     * that dedupe then repeats random buffers). */
    unsigned compress = job->compress_pct == 100 ? 0 : job->compress_pct;
    c->random_pct = 100 - compress;
    if (compress || job->dedupe_pct) {
        c->fill = FILL_MIXED;
    } else if (c->pattern_len) {
        c->fill = FILL_PATTERN;
    } else if (job->zero_buffers || job->compress_pct == 100) {
        c->fill = FILL_ZERO;
    } else {
        c->fill = FILL_RANDOM;
    }
    if (job->dedupe_mode == DEDUPE_WORKING_SET) {
        c->working_set = job->size * job->dedupe_working_set_pct / 100 / bs;
        c->working_set = c->working_set ? c->working_set : 1;
        c->global = job->dedupe_global;
    }
    choose_per_write(c, job);
}
