/*
 * The random map: which blocks a pass has done, so that random I/O visits
 * each block once per pass, and the first block not done after one that
 * is, as fio finds it (its axmap): a bitmap with levels above it, where a
 * set bit says the word below is full, so a search skips full words 64 at
 * a time at each level.
 */
#ifndef COBLK_BENCH_BLOCKMAP_H
#define COBLK_BENCH_BLOCKMAP_H

#include <stdbool.h>
#include <stdint.h>

#define BLOCKMAP_LEVELS 8       /* 64^8 blocks: more than any device */
#define BLOCKMAP_NONE UINT64_MAX

struct blockmap {
    uint64_t nr;                /* blocks */
    uint64_t done;              /* blocks set */
    unsigned levels;
    uint64_t words[BLOCKMAP_LEVELS];
    uint64_t *level[BLOCKMAP_LEVELS];   /* level[0]: a bit per block */
};

/* 0, or -ENOMEM. */
int blockmap_init(struct blockmap *m, uint64_t nr);
void blockmap_free(struct blockmap *m);
/* Every block not done: a new pass. */
void blockmap_clear(struct blockmap *m);

static inline bool blockmap_is_done(const struct blockmap *m, uint64_t b)
{
    return m->level[0][b / 64] >> (b % 64) & 1;
}

/* Marks up to n blocks done from b on, stopping at one done already or at
 * the end; returns how many. */
uint64_t blockmap_take(struct blockmap *m, uint64_t b, uint64_t n);

void blockmap_word_full(struct blockmap *m, uint64_t word);

/* Marks block b, not done, done: blockmap_take() for one, inline. */
static inline void blockmap_take_one(struct blockmap *m, uint64_t b)
{
    uint64_t *word = &m->level[0][b / 64];

    *word |= 1ull << (b % 64);
    if (__builtin_expect(*word == ~0ull, 0)) {
        blockmap_word_full(m, b / 64);
    }
    m->done++;
}

/* The first block not done after b, going round past the end once; or
 * BLOCKMAP_NONE when all are. */
uint64_t blockmap_next_free(const struct blockmap *m, uint64_t b);

#endif
