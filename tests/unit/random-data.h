/*
 * Test data that is the same every run: xorshift64 from a fixed seed.
 */
#ifndef COBLK_TEST_RANDOM_DATA_H
#define COBLK_TEST_RANDOM_DATA_H

#include <stddef.h>
#include <stdint.h>

static uint64_t rng_state = 0x0123456789abcdefull;

static inline uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static inline void random_bytes(uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        buf[i] = (uint8_t)rng();
    }
}

#endif
