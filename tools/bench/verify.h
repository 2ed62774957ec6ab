/*
 * Data verification, as fio's verify=: every unit a job writes starts with
 * a header naming where and when it was written and a checksum of the rest;
 * reading the unit back checks all of it.
 *
 * A unit is a multiple of 512 bytes, at least 512 (the job's smallest
 * block size); a write of k units fills k units, each with its own header.
 * Unit layout, all integers little-endian:
 *
 *    0  u32     magic     VERIFY_MAGIC
 *    4  u16     algo      enum verify_algo: 1 crc32c, 2 md5, 3 meta
 *    6  u16     reserved  0
 *    8  u32     len       unit length in bytes, header included
 *   12  u32     reserved  0
 *   16  u64     offset    device byte offset the unit was written at
 *   24  u64     seed      the job's seed
 *   32  u64     seq       the job's write number
 *   40  u8[16]  data sum  of bytes [64, len): the md5 digest, or the
 *                         crc32c as a u32 then 12 zero bytes; meta (as
 *                         fio's verify=meta: where and which write, not
 *                         what): zeroes, and only a pattern is checked
 *   56  u32     reserved  0
 *   60  u32     hdr_crc   crc32c of bytes [0, 60)
 *   64  data              the pattern repeated from byte 64, or
 *                         pseudo-random bytes from seed, offset and seq
 */
#ifndef COBLK_BENCH_VERIFY_H
#define COBLK_BENCH_VERIFY_H

#include <stddef.h>
#include <stdint.h>

enum verify_algo { VERIFY_NONE, VERIFY_CRC32C, VERIFY_MD5, VERIFY_META };

#define VERIFY_MAGIC 0x66766263u        /* "cbvf" */
#define VERIFY_HDR_SIZE 64
#define VERIFY_MIN_UNIT 512

/* verify_check's seq to accept whichever write the unit holds. */
#define VERIFY_ANY_SEQ UINT64_MAX

struct verify_params {
    enum verify_algo algo;      /* VERIFY_CRC32C or VERIFY_MD5 */
    uint64_t seed;              /* the job's seed */
    const uint8_t *pattern;     /* verify_pattern, or NULL */
    unsigned pattern_len;
    uint32_t unit;              /* bytes per unit */
};

/* Fills the unit written at device byte offset `offset` as the job's
 * seq-th write: header, then data. */
void verify_fill(const struct verify_params *p, void *unit_buf,
                 uint64_t offset, uint64_t seq);

/* Checks a unit read back from offset, which should hold write seq (or
 * any, with VERIFY_ANY_SEQ).  Returns 0, or -EILSEQ with one line in msg
 * naming the offset and what was wrong. */
int verify_check(const struct verify_params *p, const void *unit_buf,
                 uint64_t offset, uint64_t seq, char *msg, size_t msg_size);

#endif
