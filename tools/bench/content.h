/*
 * What writes carry, as fio's buffer options shape it.
 *
 * By default the buffers get random data once, and every write scrambles
 * a few bytes of each sector (its offset and a count: three stores), so
 * that a deduplicating device sees no two writes alike.  refill_buffers
 * draws new data for every write; buffer_compress_percentage makes that
 * share of each buffer_compress_chunk a fixed pattern (zeroes, or
 * buffer_pattern) after random bytes; dedupe_percentage makes that share
 * of the writes repeat an earlier one's data: the last unique one, or with
 * dedupe_mode=working_set one of a set of dedupe_working_set_percentage
 * of the job's size.  zero_buffers and buffer_pattern fill the buffers
 * once.
 */
#ifndef COBLK_BENCH_CONTENT_H
#define COBLK_BENCH_CONTENT_H

#include <stdbool.h>
#include <stdint.h>

#include "options.h"

struct content {
    enum { PER_WRITE_KEEP, PER_WRITE_SCRAMBLE, PER_WRITE_REFILL } per_write;
    enum { FILL_RANDOM, FILL_ZERO, FILL_PATTERN, FILL_MIXED } fill;
    unsigned random_pct;        /* of each chunk, in a mixed fill */
    unsigned dedupe_pct;
    uint64_t chunk;             /* bytes of a mixed fill's chunk */
    const uint8_t *pattern;
    unsigned pattern_len;
    uint64_t seed;              /* every instance's buffers derive from it */
    unsigned index, instances;  /* this instance of the run's (from 0) */
    uint64_t uniques;           /* buffers of new data so far */
    uint64_t dedupe_rng;        /* whether a buffer repeats one */
    uint64_t working_set;       /* buffers to repeat; 0: the last one */
    bool global;                /* dedupe_global: all instances' set */
    uint64_t scrambles;         /* writes scrambled */
};

/* The content of instance `index` (from 0) of the run's instances of
 * jobs; the same seed for all of them, so that they can repeat each
 * other's buffers (dedupe_global), their own from it and their index. */
void content_init(struct content *c, const struct job *job, uint64_t seed,
                  unsigned index);

/* Fills a buffer of bytes as the job's options say. */
void content_fill(struct content *c, uint8_t *buf, uint64_t bytes);

/* Writes the offset of each sector, and the count of writes, into it. */
void content_scramble(struct content *c, uint8_t *buf, uint64_t bytes,
                      uint64_t offset);

/* Readies a buffer holding earlier data for the write of bytes at
 * offset: refills or scrambles it, or leaves it. */
static inline void content_write(struct content *c, uint8_t *buf,
                                 uint64_t bytes, uint64_t offset)
{
    if (c->per_write == PER_WRITE_SCRAMBLE) {
        content_scramble(c, buf, bytes, offset);
    } else if (c->per_write == PER_WRITE_REFILL) {
        content_fill(c, buf, bytes);
    }
}

#endif
