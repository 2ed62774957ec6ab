/*
 * The random map (see blockmap.h).  Bits past the last block, in each
 * level's last word, are kept set: so a full word is all ones everywhere.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "blockmap.h"

/* Sets the bits of level l's last word that stand for nothing. */
static void set_padding(struct blockmap *m, unsigned l, uint64_t bits)
{
    if (bits % 64) {
        m->level[l][bits / 64] |= ~0ull << (bits % 64);
    }
}

void blockmap_clear(struct blockmap *m)
{
    uint64_t bits = m->nr;

    for (unsigned l = 0; l < m->levels; l++) {
        memset(m->level[l], 0, m->words[l] * sizeof(uint64_t));
        set_padding(m, l, bits);
        bits = m->words[l];
    }
    m->done = 0;
}

int blockmap_init(struct blockmap *m, uint64_t nr)
{
    uint64_t bits = nr ? nr : 1;

    *m = (struct blockmap){ .nr = nr };
    do {
        m->words[m->levels] = (bits + 63) / 64;
        m->level[m->levels] = malloc(m->words[m->levels] * sizeof(uint64_t));
        if (!m->level[m->levels]) {
            blockmap_free(m);
            return -ENOMEM;
        }
        bits = m->words[m->levels++];
    } while (bits > 1 && m->levels < BLOCKMAP_LEVELS);
    blockmap_clear(m);
    return 0;
}

void blockmap_free(struct blockmap *m)
{
    for (unsigned l = 0; l < BLOCKMAP_LEVELS; l++) {
        free(m->level[l]);
        m->level[l] = NULL;
    }
    m->levels = 0;
}

/* Sets bit b of level l, and above it what became full. */
static void set_bit(struct blockmap *m, unsigned l, uint64_t b)
{
    for (; l < m->levels; l++, b /= 64) {
        uint64_t *word = &m->level[l][b / 64];
        *word |= 1ull << (b % 64);
        if (*word != ~0ull) {
            return;
        }
    }
}

void blockmap_word_full(struct blockmap *m, uint64_t word)
{
    if (m->levels > 1) {
        set_bit(m, 1, word);
    }
}

uint64_t blockmap_take(struct blockmap *m, uint64_t b, uint64_t n)
{
    uint64_t taken = 0;

    while (taken < n && b + taken < m->nr &&
           !blockmap_is_done(m, b + taken)) {
        set_bit(m, 0, b + taken);
        taken++;
    }
    m->done += taken;
    return taken;
}

/* The first clear bit of level l at or after bit b, or BLOCKMAP_NONE: in
 * b's word, else in the first word after it that the level above says is
 * not full. */
static uint64_t first_clear(const struct blockmap *m, unsigned l, uint64_t b)
{
    uint64_t w = b / 64;

    if (w >= m->words[l]) {
        return BLOCKMAP_NONE;
    }
    uint64_t below = (1ull << (b % 64)) - 1;
    uint64_t word = m->level[l][w] | below;
    if (word != ~0ull) {
        return w * 64 + (uint64_t)__builtin_ctzll(~word);
    }
    if (l + 1 == m->levels) {
        return BLOCKMAP_NONE;   /* the top: a single word */
    }
    uint64_t next = first_clear(m, l + 1, w + 1);
    if (next == BLOCKMAP_NONE) {
        return BLOCKMAP_NONE;
    }
    return next * 64 + (uint64_t)__builtin_ctzll(~m->level[l][next]);
}

uint64_t blockmap_next_free(const struct blockmap *m, uint64_t b)
{
    uint64_t from = b + 1 < m->nr ? b + 1 : 0;
    uint64_t found = first_clear(m, 0, from);

    if (found == BLOCKMAP_NONE && from) {
        found = first_clear(m, 0, 0);
    }
    return found < m->nr ? found : BLOCKMAP_NONE;
}
