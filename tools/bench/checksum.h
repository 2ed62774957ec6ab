/*
 * Checksums for data verification: CRC-32C (Castagnoli, as iSCSI, ext4
 * and fio's crc32c use it) and MD5 (RFC 1321).
 */
#ifndef COBLK_BENCH_CHECKSUM_H
#define COBLK_BENCH_CHECKSUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* CRC-32C of buf, continuing from crc: start with 0, and
 * crc32c(crc32c(0, a, n), b, m) is the CRC of a followed by b.
 * Uses the SSE4.2 crc32 instruction when the CPU has it. */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

/* The two implementations behind crc32c(), for tests.  crc32c_hw() may
 * only be called when crc32c_have_hw(). */
uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len);
uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t len);
bool crc32c_have_hw(void);

struct md5_ctx {
    uint32_t state[4];
    uint64_t bytes;             /* hashed so far */
    uint8_t block[64];          /* the partial block, bytes % 64 long */
};

void md5_init(struct md5_ctx *ctx);
void md5_update(struct md5_ctx *ctx, const void *buf, size_t len);
void md5_final(struct md5_ctx *ctx, uint8_t out[16]);
void md5(const void *buf, size_t len, uint8_t out[16]);

#endif
