/*
 * Data verification (see verify.h for the unit layout).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "checksum.h"
#include "verify.h"

enum {
    HDR_MAGIC = 0,
    HDR_ALGO = 4,
    HDR_LEN = 8,
    HDR_OFFSET = 16,
    HDR_SEED = 24,
    HDR_SEQ = 32,
    HDR_SUM = 40,
    HDR_CRC = 60,
};

#define SUM_SIZE 16

enum field_kind { FIELD_DEC, FIELD_HEX, FIELD_SUM, FIELD_ZERO };

static const struct hdr_field {
    const char *name;
    unsigned at, size;
    enum field_kind kind;
} hdr_fields[] = {
    { "magic", HDR_MAGIC, 4, FIELD_HEX },
    { "algo", HDR_ALGO, 2, FIELD_DEC },
    { "reserved", 6, 2, FIELD_ZERO },
    { "len", HDR_LEN, 4, FIELD_DEC },
    { "reserved", 12, 4, FIELD_ZERO },
    { "offset", HDR_OFFSET, 8, FIELD_DEC },
    { "seed", HDR_SEED, 8, FIELD_HEX },
    { "seq", HDR_SEQ, 8, FIELD_DEC },
    { "data sum", HDR_SUM, SUM_SIZE, FIELD_SUM },   /* crc32c: 4 bytes */
    { "reserved", HDR_SUM + 4, SUM_SIZE - 4, FIELD_ZERO },  /* md5: sum */
    { "reserved", 56, 4, FIELD_ZERO },
};

static uint64_t get_le(const uint8_t *p, unsigned size)
{
    uint64_t v = 0;

    for (unsigned i = size; i--;) {
        v = v << 8 | p[i];
    }
    return v;
}

static void put_le(uint8_t *p, uint64_t v, unsigned size)
{
    for (unsigned i = 0; i < size; i++, v >>= 8) {
        p[i] = (uint8_t)v;
    }
}

static void store_le64(uint8_t *p, uint64_t v)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    memcpy(p, &v, sizeof(v));
}

/* ---- data -------------------------------------------------------------- */

/* splitmix64's finalizer: every input bit moves every output bit */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

#define GOLDEN 0x9e3779b97f4a7c15ull

/* Eight xorshift64 lanes: independent, so they run side by side (and in
 * vector registers). */
#define LANES 8
#define CHUNK (8 * LANES)

struct prng {
    uint64_t s[LANES];
};

static struct prng prng_new(uint64_t seed, uint64_t offset, uint64_t seq)
{
    uint64_t h = mix64(mix64(mix64(seed + GOLDEN) ^ offset) ^ seq);
    struct prng g;

    for (int i = 0; i < LANES; i++) {
        g.s[i] = mix64(h + (uint64_t)(i + 1) * GOLDEN) | 1;
    }
    return g;
}

static inline uint64_t xorshift64(uint64_t x)
{
    x ^= x << 13;
    x ^= x >> 7;
    return x ^ (x << 17);
}

static inline void prng_next(struct prng *g, uint8_t out[CHUNK])
{
#pragma GCC unroll 8    /* then the lanes live in registers */
    for (int i = 0; i < LANES; i++) {
        g->s[i] = xorshift64(g->s[i]);
        store_le64(out + 8 * i, g->s[i]);
    }
}

/* len is a multiple of CHUNK: units are multiples of 512. */
static void fill_random(uint8_t *data, size_t len, uint64_t seed,
                        uint64_t offset, uint64_t seq)
{
    struct prng g = prng_new(seed, offset, seq);

    for (size_t i = 0; i < len; i += CHUNK) {
        prng_next(&g, data + i);
    }
}

static void fill_pattern(uint8_t *data, size_t len, const uint8_t *pattern,
                         size_t pattern_len)
{
    size_t done = pattern_len < len ? pattern_len : len;

    memcpy(data, pattern, done);
    while (done < len) {
        size_t n = done < len - done ? done : len - done;
        memcpy(data + done, data, n);
        done += n;
    }
}

static bool has_pattern(const struct verify_params *p)
{
    return p->pattern && p->pattern_len;
}

static void fill_data(const struct verify_params *p, uint8_t *data,
                      size_t len, uint64_t offset, uint64_t seq)
{
    if (has_pattern(p)) {
        fill_pattern(data, len, p->pattern, p->pattern_len);
    } else {
        fill_random(data, len, p->seed, offset, seq);
    }
}

static void data_sum(enum verify_algo algo, const uint8_t *data, size_t len,
                     uint8_t sum[SUM_SIZE])
{
    memset(sum, 0, SUM_SIZE);
    if (algo == VERIFY_MD5) {
        md5(data, len, sum);
    } else if (algo == VERIFY_CRC32C) {
        put_le(sum, crc32c(0, data, len), 4);
    }
}

static unsigned sum_size(enum verify_algo algo)
{
    return algo == VERIFY_MD5 ? 16 : algo == VERIFY_CRC32C ? 4 : 0;
}

/* Everything but the data sum and the header's own crc. */
static void put_header(const struct verify_params *p, uint8_t *hdr,
                       uint64_t offset, uint64_t seq)
{
    memset(hdr, 0, VERIFY_HDR_SIZE);
    put_le(hdr + HDR_MAGIC, VERIFY_MAGIC, 4);
    put_le(hdr + HDR_ALGO, p->algo, 2);
    put_le(hdr + HDR_LEN, p->unit, 4);
    put_le(hdr + HDR_OFFSET, offset, 8);
    put_le(hdr + HDR_SEED, p->seed, 8);
    put_le(hdr + HDR_SEQ, seq, 8);
}

void verify_fill(const struct verify_params *p, void *unit_buf,
                 uint64_t offset, uint64_t seq)
{
    uint8_t *hdr = unit_buf;
    uint8_t *data = hdr + VERIFY_HDR_SIZE;
    size_t len = p->unit - VERIFY_HDR_SIZE;

    fill_data(p, data, len, offset, seq);
    put_header(p, hdr, offset, seq);
    data_sum(p->algo, data, len, hdr + HDR_SUM);
    put_le(hdr + HDR_CRC, crc32c(0, hdr, HDR_CRC), 4);
}

/* ---- checking ---------------------------------------------------------- */

__attribute__((format(printf, 3, 4)))
static void append(char *msg, size_t size, const char *fmt, ...)
{
    size_t used = msg && size ? strnlen(msg, size) : 0;
    va_list ap;

    if (used + 1 >= size) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg + used, size - used, fmt, ap);
    va_end(ap);
}

__attribute__((format(printf, 4, 5)))
static int fail(char *msg, size_t size, uint64_t offset, const char *fmt, ...)
{
    va_list ap;

    if (!msg || !size) {
        return -EILSEQ;
    }
    snprintf(msg, size, "offset %" PRIu64 ": ", offset);
    size_t used = strlen(msg);
    va_start(ap, fmt);
    vsnprintf(msg + used, size - used, fmt, ap);
    va_end(ap);
    return -EILSEQ;
}

static const char *algo_name(unsigned algo)
{
    switch (algo) {
    case VERIFY_CRC32C:
        return "crc32c";
    case VERIFY_MD5:
        return "md5";
    case VERIFY_META:
        return "meta";
    default:
        return "unknown";
    }
}

/* "0x1234abcd" for crc32c, 32 hex digits for md5 */
static const char *sum_text(enum verify_algo algo, const uint8_t *sum,
                            char text[2 * SUM_SIZE + 1])
{
    if (algo != VERIFY_MD5) {
        snprintf(text, 2 * SUM_SIZE + 1, "0x%08" PRIx32,
                 (uint32_t)get_le(sum, 4));
        return text;
    }
    for (int i = 0; i < SUM_SIZE; i++) {
        snprintf(text + 2 * i, 3, "%02x", sum[i]);
    }
    return text;
}

static int bad_magic(const uint8_t *unit, size_t len, uint64_t offset,
                     char *msg, size_t size)
{
    uint32_t magic = (uint32_t)get_le(unit + HDR_MAGIC, 4);
    size_t nonzero = 0;

    while (nonzero < len && !unit[nonzero]) {
        nonzero++;
    }
    return fail(msg, size, offset, "bad magic 0x%08" PRIx32 ", wanted 0x%08x%s",
                magic, VERIFY_MAGIC,
                nonzero == len ? " (the unit is all zeroes)" : "");
}

/* The header the unit should have, its data sum taken from the data. */
static void expected_header(const struct verify_params *p,
                            const uint8_t *unit, uint64_t offset,
                            uint64_t seq, uint8_t *hdr)
{
    if (seq == VERIFY_ANY_SEQ) {
        seq = get_le(unit + HDR_SEQ, 8);
    }
    put_header(p, hdr, offset, seq);
    data_sum(p->algo, unit + VERIFY_HDR_SIZE, p->unit - VERIFY_HDR_SIZE,
             hdr + HDR_SUM);
}

static void describe_field(const struct hdr_field *f, enum verify_algo algo,
                           const uint8_t *found, const uint8_t *want,
                           char *msg, size_t size)
{
    char a[2 * SUM_SIZE + 1], b[2 * SUM_SIZE + 1];
    uint64_t x = f->size <= 8 ? get_le(found, f->size) : 0;
    uint64_t y = f->size <= 8 ? get_le(want, f->size) : 0;

    switch (f->kind) {
    case FIELD_DEC:
        append(msg, size, "; field %s is %" PRIu64 ", wanted %" PRIu64,
               f->name, x, y);
        break;
    case FIELD_HEX:
        append(msg, size, "; field %s is 0x%" PRIx64 ", wanted 0x%" PRIx64,
               f->name, x, y);
        break;
    case FIELD_SUM:
        append(msg, size, "; field %s is %s, wanted %s", f->name,
               sum_text(algo, found, a), sum_text(algo, want, b));
        break;
    case FIELD_ZERO:
        append(msg, size, "; field %s at +%u is not zero", f->name, f->at);
        break;
    }
}

/* Names the first header field unlike the one written. */
static void find_bad_field(const struct verify_params *p,
                           const uint8_t *unit, uint64_t offset,
                           uint64_t seq, char *msg, size_t size)
{
    uint8_t want[VERIFY_HDR_SIZE];

    expected_header(p, unit, offset, seq, want);
    for (size_t i = 0; i < sizeof(hdr_fields) / sizeof(hdr_fields[0]); i++) {
        const struct hdr_field *f = &hdr_fields[i];
        unsigned n = f->kind == FIELD_SUM ? sum_size(p->algo) : f->size;
        if (memcmp(unit + f->at, want + f->at, n)) {
            describe_field(f, p->algo, unit + f->at, want + f->at, msg, size);
            return;
        }
    }
}

static int bad_header_crc(const struct verify_params *p, const uint8_t *unit,
                          uint64_t offset, uint64_t seq, uint32_t computed,
                          char *msg, size_t size)
{
    uint32_t stored = (uint32_t)get_le(unit + HDR_CRC, 4);
    int ret = fail(msg, size, offset, "header checksum: expected crc32c "
                   "0x%08" PRIx32 ", received 0x%08" PRIx32, stored, computed);

    find_bad_field(p, unit, offset, seq, msg, size);
    return ret;
}

static int check_seq(uint64_t offset, uint64_t want, uint64_t found,
                     char *msg, size_t size)
{
    if (want == VERIFY_ANY_SEQ || found == want) {
        return 0;
    }
    return fail(msg, size, offset, "wrong seq in header: wanted write %"
                PRIu64 ", found write %" PRIu64 " (%s)", want, found,
                found < want ? "stale data: a lost write" :
                               "newer than expected");
}

/* The header is intact (its crc matched): is it the one expected here? */
static int check_fields(const struct verify_params *p, const uint8_t *unit,
                        uint64_t offset, uint64_t seq, char *msg,
                        size_t size)
{
    unsigned algo = (unsigned)get_le(unit + HDR_ALGO, 2);
    uint32_t len = (uint32_t)get_le(unit + HDR_LEN, 4);
    uint64_t found_offset = get_le(unit + HDR_OFFSET, 8);
    uint64_t seed = get_le(unit + HDR_SEED, 8);

    if (algo != p->algo) {
        return fail(msg, size, offset, "header algo %s (%u), wanted %s",
                    algo_name(algo), algo, algo_name(p->algo));
    }
    if (len != p->unit) {
        return fail(msg, size, offset, "header unit length %" PRIu32
                    ", wanted %" PRIu32, len, p->unit);
    }
    if (found_offset != offset) {
        return fail(msg, size, offset, "wrong offset in header: wrote at %"
                    PRIu64 ", found %" PRIu64, offset, found_offset);
    }
    if (seed != p->seed) {
        return fail(msg, size, offset, "wrong seed in header: wanted 0x%"
                    PRIx64 ", found 0x%" PRIx64, p->seed, seed);
    }
    return check_seq(offset, seq, get_le(unit + HDR_SEQ, 8), msg, size);
}

/* Data bytes [i, i + CHUNK) as verify_fill wrote them. */
static void expected_chunk(const struct verify_params *p, struct prng *g,
                           size_t i, uint8_t chunk[CHUNK])
{
    if (!has_pattern(p)) {
        prng_next(g, chunk);
        return;
    }
    for (size_t j = 0; j < CHUNK; j++) {
        chunk[j] = p->pattern[(i + j) % p->pattern_len];
    }
}

/* Index of the first data byte unlike what verify_fill wrote, and in
 * *wanted the byte it wrote there; len if there is none. */
static size_t first_bad_byte(const struct verify_params *p,
                             const uint8_t *data, size_t len,
                             uint64_t offset, uint64_t seq, uint8_t *wanted)
{
    struct prng g = prng_new(p->seed, offset, seq);
    uint8_t chunk[CHUNK];

    for (size_t i = 0; i < len; i += CHUNK) {
        expected_chunk(p, &g, i, chunk);
        for (size_t j = 0; j < CHUNK; j++) {
            if (data[i + j] != chunk[j]) {
                *wanted = chunk[j];
                return i + j;
            }
        }
    }
    return len;
}

/* verify=meta: the data is not summed; a pattern, if the job has one,
 * is checked byte for byte, as fio checks it. */
static int check_pattern(const struct verify_params *p, const uint8_t *data,
                         size_t len, uint64_t offset, char *msg, size_t size)
{
    uint8_t wanted = 0;
    size_t bad = has_pattern(p) ? first_bad_byte(p, data, len, offset, 0,
                                                 &wanted)
                                : len;
    if (bad == len) {
        return 0;
    }
    return fail(msg, size, offset, "verify_pattern: bad byte at offset %"
                PRIu64 " (unit +%zu): wanted 0x%02x, found 0x%02x",
                offset + VERIFY_HDR_SIZE + bad, VERIFY_HDR_SIZE + bad, wanted,
                data[bad]);
}

static int check_data(const struct verify_params *p, const uint8_t *unit,
                      uint64_t offset, char *msg, size_t size)
{
    const uint8_t *data = unit + VERIFY_HDR_SIZE;
    size_t len = p->unit - VERIFY_HDR_SIZE;
    uint64_t seq = get_le(unit + HDR_SEQ, 8);
    uint8_t sum[SUM_SIZE];
    char want[2 * SUM_SIZE + 1], got[2 * SUM_SIZE + 1];

    if (p->algo == VERIFY_META) {
        return check_pattern(p, data, len, offset, msg, size);
    }
    data_sum(p->algo, data, len, sum);
    if (!memcmp(unit + HDR_SUM, sum, sum_size(p->algo))) {
        return 0;
    }
    int ret = fail(msg, size, offset, "data checksum: expected %s %s, "
                   "received %s", algo_name(p->algo),
                   sum_text(p->algo, unit + HDR_SUM, want),
                   sum_text(p->algo, sum, got));
    uint8_t wanted = 0;
    size_t bad = first_bad_byte(p, data, len, offset, seq, &wanted);
    if (bad < len) {
        append(msg, size, "; first bad byte at offset %" PRIu64 " (unit +%zu)"
               ": wanted 0x%02x, found 0x%02x", offset + VERIFY_HDR_SIZE + bad,
               VERIFY_HDR_SIZE + bad, wanted, data[bad]);
    }
    return ret;
}

int verify_check(const struct verify_params *p, const void *unit_buf,
                 uint64_t offset, uint64_t seq, char *msg, size_t msg_size)
{
    const uint8_t *unit = unit_buf;

    if (get_le(unit + HDR_MAGIC, 4) != VERIFY_MAGIC) {
        return bad_magic(unit, p->unit, offset, msg, msg_size);
    }
    uint32_t crc = crc32c(0, unit, HDR_CRC);
    if (get_le(unit + HDR_CRC, 4) != crc) {
        return bad_header_crc(p, unit, offset, seq, crc, msg, msg_size);
    }
    int ret = check_fields(p, unit, offset, seq, msg, msg_size);
    if (ret) {
        return ret;
    }
    return check_data(p, unit, offset, msg, msg_size);
}
