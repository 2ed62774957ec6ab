/*
 * CRC-32C and MD5 (see checksum.h).
 */
#include "config.h"

#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

#include "checksum.h"

static uint64_t load_le64(const uint8_t *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof(v));
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

static uint32_t load_le32(const uint8_t *p)
{
    uint32_t v;

    memcpy(&v, p, sizeof(v));
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    return v;
}

static void store_le32(uint8_t *p, uint32_t v)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    memcpy(p, &v, sizeof(v));
}

/* ---- CRC-32C ----------------------------------------------------------- */

#define CRC32C_POLY 0x82f63b78u     /* 0x1edc6f41 bit-reversed */

/* Slicing-by-8: crc_table[k][b] is the CRC of byte b followed by k zero
 * bytes, so eight table lookups advance the CRC by eight bytes. */
static uint32_t crc_table[8][256];
static bool have_hw;

__attribute__((constructor))
static void crc32c_init(void)
{
    for (unsigned b = 0; b < 256; b++) {
        uint32_t crc = b;
        for (int bit = 0; bit < 8; bit++) {
            crc = (crc >> 1) ^ (CRC32C_POLY & -(crc & 1));
        }
        crc_table[0][b] = crc;
    }
    for (unsigned b = 0; b < 256; b++) {
        for (int k = 1; k < 8; k++) {
            uint32_t prev = crc_table[k - 1][b];
            crc_table[k][b] = (prev >> 8) ^ crc_table[0][prev & 0xff];
        }
    }
#if defined(__x86_64__)
    /* Constructors may run before libgcc has read the CPU's features. */
    __builtin_cpu_init();
    have_hw = __builtin_cpu_supports("sse4.2");
#endif
}

uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    crc = ~crc;
    for (; len >= 8; p += 8, len -= 8) {
        uint64_t w = load_le64(p) ^ crc;
        crc = crc_table[7][w & 0xff] ^ crc_table[6][(w >> 8) & 0xff] ^
              crc_table[5][(w >> 16) & 0xff] ^ crc_table[4][(w >> 24) & 0xff] ^
              crc_table[3][(w >> 32) & 0xff] ^ crc_table[2][(w >> 40) & 0xff] ^
              crc_table[1][(w >> 48) & 0xff] ^ crc_table[0][w >> 56];
    }
    for (; len; p++, len--) {
        crc = crc_table[0][(crc ^ *p) & 0xff] ^ (crc >> 8);
    }
    return ~crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    uint64_t crc64 = ~crc;

    for (; len >= 8; p += 8, len -= 8) {
        uint64_t w;
        memcpy(&w, p, sizeof(w));
        crc64 = _mm_crc32_u64(crc64, w);
    }
    crc = (uint32_t)crc64;
    for (; len; p++, len--) {
        crc = _mm_crc32_u8(crc, *p);
    }
    return ~crc;
}
#else
uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
    return crc32c_sw(crc, buf, len);
}
#endif

bool crc32c_have_hw(void)
{
    return have_hw;
}

uint32_t crc32c(uint32_t crc, const void *buf, size_t len)
{
    if (have_hw) {
        return crc32c_hw(crc, buf, len);
    }
    return crc32c_sw(crc, buf, len);
}

/* ---- MD5 (RFC 1321) ----------------------------------------------------- */

/* K[i] = floor(abs(sin(i + 1)) * 2^32) */
static const uint32_t md5_k[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee,
    0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be,
    0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa,
    0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
    0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c,
    0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05,
    0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039,
    0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1,
    0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
};

/* The message word each step adds: round r takes them in steps of 1, 5,
 * 3 and 7 from 0, 1, 5 and 0. */
static const uint8_t md5_word[64] = {
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
    1, 6, 11, 0, 5, 10, 15, 4, 9, 14, 3, 8, 13, 2, 7, 12,
    5, 8, 11, 14, 1, 4, 7, 10, 13, 0, 3, 6, 9, 12, 15, 2,
    0, 7, 14, 5, 12, 3, 10, 1, 8, 15, 6, 13, 4, 11, 2, 9,
};

#define MD5_F(x, y, z) ((z) ^ ((x) & ((y) ^ (z))))
#define MD5_G(x, y, z) ((y) ^ ((z) & ((x) ^ (y))))
#define MD5_H(x, y, z) ((x) ^ (y) ^ (z))
#define MD5_I(x, y, z) ((y) ^ ((x) | ~(z)))

static inline uint32_t rol32(uint32_t v, unsigned s)
{
    return (v << s) | (v >> (32 - s));
}

#define MD5_STEP(f, a, b, c, d, i, s) \
    ((a) = rol32((a) + f((b), (c), (d)) + x[md5_word[i]] + md5_k[i], (s)) + (b))

/* Four steps, the registers rotating; the constant indexes fold away. */
#define MD5_QUAD(f, i, s1, s2, s3, s4) \
    do { \
        MD5_STEP(f, a, b, c, d, (i), (s1)); \
        MD5_STEP(f, d, a, b, c, (i) + 1, (s2)); \
        MD5_STEP(f, c, d, a, b, (i) + 2, (s3)); \
        MD5_STEP(f, b, c, d, a, (i) + 3, (s4)); \
    } while (0)

static void md5_block(uint32_t state[4], const uint8_t *block)
{
    uint32_t x[16];
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3];

    for (int i = 0; i < 16; i++) {
        x[i] = load_le32(block + 4 * i);
    }
    MD5_QUAD(MD5_F, 0, 7, 12, 17, 22);
    MD5_QUAD(MD5_F, 4, 7, 12, 17, 22);
    MD5_QUAD(MD5_F, 8, 7, 12, 17, 22);
    MD5_QUAD(MD5_F, 12, 7, 12, 17, 22);
    MD5_QUAD(MD5_G, 16, 5, 9, 14, 20);
    MD5_QUAD(MD5_G, 20, 5, 9, 14, 20);
    MD5_QUAD(MD5_G, 24, 5, 9, 14, 20);
    MD5_QUAD(MD5_G, 28, 5, 9, 14, 20);
    MD5_QUAD(MD5_H, 32, 4, 11, 16, 23);
    MD5_QUAD(MD5_H, 36, 4, 11, 16, 23);
    MD5_QUAD(MD5_H, 40, 4, 11, 16, 23);
    MD5_QUAD(MD5_H, 44, 4, 11, 16, 23);
    MD5_QUAD(MD5_I, 48, 6, 10, 15, 21);
    MD5_QUAD(MD5_I, 52, 6, 10, 15, 21);
    MD5_QUAD(MD5_I, 56, 6, 10, 15, 21);
    MD5_QUAD(MD5_I, 60, 6, 10, 15, 21);
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
}

void md5_init(struct md5_ctx *ctx)
{
    ctx->state[0] = 0x67452301;
    ctx->state[1] = 0xefcdab89;
    ctx->state[2] = 0x98badcfe;
    ctx->state[3] = 0x10325476;
    ctx->bytes = 0;
}

void md5_update(struct md5_ctx *ctx, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    size_t used = ctx->bytes % 64;

    ctx->bytes += len;
    if (used) {
        size_t n = len < 64 - used ? len : 64 - used;
        memcpy(ctx->block + used, p, n);
        p += n;
        len -= n;
        if (used + n < 64) {
            return;
        }
        md5_block(ctx->state, ctx->block);
    }
    for (; len >= 64; p += 64, len -= 64) {
        md5_block(ctx->state, p);
    }
    memcpy(ctx->block, p, len);
}

void md5_final(struct md5_ctx *ctx, uint8_t out[16])
{
    static const uint8_t pad[64] = { 0x80 };
    uint64_t bits = ctx->bytes * 8;
    uint8_t length[8];

    for (int i = 0; i < 8; i++) {
        length[i] = (uint8_t)(bits >> (8 * i));
    }
    /* 0x80, zeros up to 56 mod 64, then the length in bits */
    md5_update(ctx, pad, 1 + (119 - ctx->bytes % 64) % 64);
    md5_update(ctx, length, sizeof(length));
    for (int i = 0; i < 4; i++) {
        store_le32(out + 4 * i, ctx->state[i]);
    }
}

void md5(const void *buf, size_t len, uint8_t out[16])
{
    struct md5_ctx ctx;

    md5_init(&ctx);
    md5_update(&ctx, buf, len);
    md5_final(&ctx, out);
}
