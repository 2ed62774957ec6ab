/*
 * coblk-bench data verification: CRC-32C (in software and as crc32c()
 * picks it), MD5, verify_fill/verify_check catching each kind of damage
 * with its message, and verify_pattern's syntax.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bench/checksum.h"
#include "bench/pattern.h"
#include "bench/verify.h"
#include "random-data.h"

#define UNIT_MAX (64 * 1024)
#define PATTERN_MAX 512         /* a job's room for verify_pattern */

/* ---- CRC-32C ------------------------------------------------------------ */

typedef uint32_t crc_fn(uint32_t, const void *, size_t);

struct crc_case {
    const char *name;
    uint8_t data[32];
    size_t len;
    uint32_t crc;
};

static void check_crc_vectors(crc_fn *fn, const char *impl)
{
    static struct crc_case cases[] = {
        { "empty", "", 0, 0 },
        { "123456789", "123456789", 9, 0xe3069283 },
        { "32 zeroes", { 0 }, 32, 0x8a9136aa },
        { "32 0xff", { 0 }, 32, 0x62a8ab43 },
        { "0..31", { 0 }, 32, 0x46dd794e },
        { "31..0", { 0 }, 32, 0x113fdb5c },
    };

    memset(cases[3].data, 0xff, 32);
    for (int i = 0; i < 32; i++) {
        cases[4].data[i] = (uint8_t)i;
        cases[5].data[i] = (uint8_t)(31 - i);
    }
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint32_t got = fn(0, cases[i].data, cases[i].len);
        if (got != cases[i].crc) {
            fail_msg("%s(%s) = 0x%08" PRIx32 ", wanted 0x%08" PRIx32, impl,
                     cases[i].name, got, cases[i].crc);
        }
    }
}

static void test_crc32c_vectors(void **state)
{
    uint8_t a1000[1000];

    check_crc_vectors(crc32c_sw, "crc32c_sw");
    check_crc_vectors(crc32c, "crc32c");
    memset(a1000, 'a', sizeof(a1000));
    assert_int_equal(crc32c(0, a1000, sizeof(a1000)), 0x9f19ef6a);
    assert_int_equal(crc32c_sw(0, a1000, sizeof(a1000)), 0x9f19ef6a);
}

static void check_chaining(crc_fn *fn)
{
    uint8_t buf[300];

    random_bytes(buf, sizeof(buf));
    uint32_t whole = fn(0, buf, sizeof(buf));
    for (size_t split = 0; split <= sizeof(buf); split++) {
        uint32_t crc = fn(0, buf, split);
        assert_int_equal(fn(crc, buf + split, sizeof(buf) - split), whole);
    }
    /* three pieces, one of them empty */
    uint32_t crc = fn(0, buf, 17);
    crc = fn(crc, buf + 17, 0);
    assert_int_equal(fn(crc, buf + 17, sizeof(buf) - 17), whole);
}

static void test_crc32c_chaining(void **state)
{
    check_chaining(crc32c_sw);
    check_chaining(crc32c);
}

/* The instruction is used where the CPU has it; test-bench-crc32c-hw
 * checks it against crc32c_sw there. */
static void test_crc32c_detects_hw(void **state)
{
#if defined(__x86_64__)
    assert_int_equal(crc32c_have_hw(), !!__builtin_cpu_supports("sse4.2"));
#else
    assert_false(crc32c_have_hw());
#endif
}

/* ---- MD5 ------------------------------------------------------------------ */

static void hex(const uint8_t *bytes, size_t len, char *out)
{
    for (size_t i = 0; i < len; i++) {
        snprintf(out + 2 * i, 3, "%02x", bytes[i]);
    }
}

static void assert_md5(const void *buf, size_t len, const char *want)
{
    uint8_t digest[16];
    char text[33];

    md5(buf, len, digest);
    hex(digest, sizeof(digest), text);
    if (strcmp(text, want)) {
        fail_msg("md5 of %zu bytes: %s, wanted %s", len, text, want);
    }
}

static void test_md5_rfc1321(void **state)
{
    static const struct {
        const char *text, *md5;
    } suite[] = {
        { "", "d41d8cd98f00b204e9800998ecf8427e" },
        { "a", "0cc175b9c0f1b6a831c399e269772661" },
        { "abc", "900150983cd24fb0d6963f7d28e17f72" },
        { "message digest", "f96b697d7cb7938d525a2f31aaf161d0" },
        { "abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b" },
        { "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
          "d174ab98d277d9f5a5611c2c9f419d9f" },
        { "1234567890123456789012345678901234567890123456789012345678901234"
          "5678901234567890", "57edf4a22be3c955ac49da2e2107b67a" },
    };

    for (size_t i = 0; i < sizeof(suite) / sizeof(suite[0]); i++) {
        assert_md5(suite[i].text, strlen(suite[i].text), suite[i].md5);
    }
}

/* Lengths either side of the padding's boundaries, and a long input. */
static void test_md5_padding_and_pieces(void **state)
{
    static const struct {
        size_t len;
        const char *md5;
    } as[] = {
        { 55, "ef1772b6dff9a122358552954ad0df65" },
        { 56, "3b0c8ac703f828b04c6c197006d17218" },
        { 63, "b06521f39153d618550606be297466d5" },
        { 64, "014842d480b571495a4a0363793f7367" },
        { 65, "c743a45e0d2e6a95cb859adae0248435" },
        { 119, "8a7bd0732ed6a28ce75f6dabc90e1613" },
        { 120, "5f61c0ccad4cac44c75ff505e1f1e537" },
        { 1000000, "7707d6ae4e027c70eea2a935c2296f21" },
    };
    uint8_t *buf = malloc(1000000);

    assert_non_null(buf);
    memset(buf, 'a', 1000000);
    for (size_t i = 0; i < sizeof(as) / sizeof(as[0]); i++) {
        assert_md5(buf, as[i].len, as[i].md5);
    }

    /* fed in uneven pieces, the digest is the same */
    uint8_t one[16], pieces[16];
    random_bytes(buf, 5000);
    md5(buf, 5000, one);
    struct md5_ctx ctx;
    md5_init(&ctx);
    for (size_t done = 0, step = 0; done < 5000; step = (step + 7) % 131) {
        size_t n = step < 5000 - done ? step : 5000 - done;
        md5_update(&ctx, buf + done, n);
        done += n;
    }
    md5_final(&ctx, pieces);
    assert_memory_equal(one, pieces, 16);
    free(buf);
}

/* ---- verify_fill / verify_check --------------------------------------------- */

static const uint8_t pattern4[] = { 0xde, 0xad, 0xbe, 0xef };
static const uint8_t pattern3[] = { 'a', 'b', 'c' };

static struct verify_params params(enum verify_algo algo, uint32_t unit,
                                   const uint8_t *pattern, unsigned len)
{
    return (struct verify_params){
        .algo = algo, .seed = 0x5eed0fc0b1cull, .pattern = pattern,
        .pattern_len = len, .unit = unit,
    };
}

static uint64_t le(const uint8_t *p, unsigned size)
{
    uint64_t v = 0;

    for (unsigned i = size; i--;) {
        v = v << 8 | p[i];
    }
    return v;
}

static void test_fill_layout(void **state)
{
    static uint8_t unit[4096];
    struct verify_params p = params(VERIFY_MD5, 4096, pattern3, 3);

    verify_fill(&p, unit, 1 << 20, 42);
    assert_memory_equal(unit, "cbvf", 4);
    assert_int_equal(le(unit + 4, 2), VERIFY_MD5);
    assert_int_equal(le(unit + 6, 2), 0);
    assert_int_equal(le(unit + 8, 4), 4096);
    assert_int_equal(le(unit + 12, 4), 0);
    assert_int_equal(le(unit + 16, 8), 1 << 20);
    assert_int_equal(le(unit + 24, 8), p.seed);
    assert_int_equal(le(unit + 32, 8), 42);
    uint8_t digest[16];
    md5(unit + 64, 4096 - 64, digest);
    assert_memory_equal(unit + 40, digest, 16);
    assert_int_equal(le(unit + 56, 4), 0);
    assert_int_equal(le(unit + 60, 4), crc32c(0, unit, 60));
    for (size_t i = 64; i < sizeof(unit); i++) {
        assert_int_equal(unit[i], pattern3[(i - 64) % 3]);
    }

    p = params(VERIFY_CRC32C, 4096, NULL, 0);
    verify_fill(&p, unit, 0, 1);
    assert_int_equal(le(unit + 4, 2), VERIFY_CRC32C);
    assert_int_equal(le(unit + 40, 4), crc32c(0, unit + 64, 4096 - 64));
    for (int i = 44; i < 56; i++) {
        assert_int_equal(unit[i], 0);
    }
}

/* Random data depends on seed, offset and seq, and on nothing else. */
static void test_fill_random_data(void **state)
{
    static uint8_t a[4096], b[4096];
    struct verify_params p = params(VERIFY_CRC32C, 4096, NULL, 0);

    verify_fill(&p, a, 8192, 3);
    verify_fill(&p, b, 8192, 3);
    assert_memory_equal(a, b, sizeof(a));
    verify_fill(&p, b, 8192 + 4096, 3);
    assert_memory_not_equal(a + 64, b + 64, 64);
    verify_fill(&p, b, 8192, 4);
    assert_memory_not_equal(a + 64, b + 64, 64);
    p.seed++;
    verify_fill(&p, b, 8192, 3);
    assert_memory_not_equal(a + 64, b + 64, 64);

    /* no long runs of one byte: the data doesn't compress */
    unsigned counts[256] = { 0 };
    for (size_t i = 64; i < sizeof(a); i++) {
        counts[a[i]]++;
    }
    for (int v = 0; v < 256; v++) {
        assert_in_range(counts[v], 1, 40);
    }
}

static void test_fill_check_roundtrip(void **state)
{
    static uint8_t unit[UNIT_MAX];
    static uint8_t pattern512[512];
    static const enum verify_algo algos[] = { VERIFY_CRC32C, VERIFY_MD5 };
    static const uint32_t units[] = { 512, 4096, UNIT_MAX };
    const struct {
        const uint8_t *pattern;
        unsigned len;
    } patterns[] = {
        { NULL, 0 }, { pattern4, 4 }, { pattern3, 3 }, { pattern512, 512 },
    };

    random_bytes(pattern512, sizeof(pattern512));
    for (size_t a = 0; a < 2; a++) {
        for (size_t u = 0; u < 3; u++) {
            for (size_t pt = 0; pt < 4; pt++) {
                struct verify_params p = params(algos[a], units[u],
                                                patterns[pt].pattern,
                                                patterns[pt].len);
                uint64_t offset = (uint64_t)units[u] * (7 + pt);
                char msg[256] = "untouched";

                verify_fill(&p, unit, offset, 1000 + pt);
                assert_int_equal(verify_check(&p, unit, offset, 1000 + pt,
                                              msg, sizeof(msg)), 0);
                assert_int_equal(verify_check(&p, unit, offset,
                                              VERIFY_ANY_SEQ, msg,
                                              sizeof(msg)), 0);
                assert_string_equal(msg, "untouched");
            }
        }
    }
}

struct damage_case {
    struct verify_params p;
    uint8_t unit[4096];
    uint64_t offset, seq;
    char msg[512];
};

static struct damage_case *damage_setup(enum verify_algo algo,
                                        const uint8_t *pattern,
                                        unsigned pattern_len)
{
    static struct damage_case c;

    c.p = params(algo, sizeof(c.unit), pattern, pattern_len);
    c.offset = 3 * 4096;
    c.seq = 77;
    verify_fill(&c.p, c.unit, c.offset, c.seq);
    c.msg[0] = '\0';
    return &c;
}

static int damage_check(struct damage_case *c)
{
    return verify_check(&c->p, c->unit, c->offset, c->seq, c->msg,
                        sizeof(c->msg));
}

static void sum_hex(enum verify_algo algo, const uint8_t *data, size_t len,
                    char *out)
{
    if (algo == VERIFY_MD5) {
        uint8_t digest[16];
        md5(data, len, digest);
        hex(digest, sizeof(digest), out);
    } else {
        sprintf(out, "0x%08" PRIx32, crc32c(0, data, len));
    }
}

/* A flipped bit in the data: both checksums named, and the first bad
 * byte with what should be there. */
static void check_data_flip(enum verify_algo algo, const uint8_t *pattern,
                            unsigned pattern_len, size_t at)
{
    struct damage_case *c = damage_setup(algo, pattern, pattern_len);
    char want[64], got[64], expected[512];
    uint8_t good = c->unit[at];

    sum_hex(algo, c->unit + 64, sizeof(c->unit) - 64, want);
    c->unit[at] ^= 0x10;
    sum_hex(algo, c->unit + 64, sizeof(c->unit) - 64, got);
    snprintf(expected, sizeof(expected), "offset 12288: data checksum: "
             "expected %s %s, received %s; first bad byte at offset %zu "
             "(unit +%zu): wanted 0x%02x, found 0x%02x",
             algo == VERIFY_MD5 ? "md5" : "crc32c", want, got, 12288 + at,
             at, good, good ^ 0x10);
    assert_int_equal(damage_check(c), -EILSEQ);
    assert_string_equal(c->msg, expected);
}

static void test_damaged_data(void **state)
{
    static const size_t ats[] = { 64, 65, 100, 1000, 4095 };

    for (size_t i = 0; i < sizeof(ats) / sizeof(ats[0]); i++) {
        check_data_flip(VERIFY_CRC32C, NULL, 0, ats[i]);
        check_data_flip(VERIFY_MD5, NULL, 0, ats[i]);
        check_data_flip(VERIFY_CRC32C, pattern4, 4, ats[i]);
        check_data_flip(VERIFY_MD5, pattern3, 3, ats[i]);
    }

    /* the message's shape, spelled out once */
    struct damage_case *c = damage_setup(VERIFY_CRC32C, pattern4, 4);
    c->unit[64] = 0;
    assert_int_equal(damage_check(c), -EILSEQ);
    assert_non_null(strstr(c->msg, "offset 12288: data checksum: expected "
                           "crc32c 0x"));
    assert_non_null(strstr(c->msg, "; first bad byte at offset 12352 "
                           "(unit +64): wanted 0xde, found 0x00"));
    c = damage_setup(VERIFY_MD5, NULL, 0);
    c->unit[200] ^= 1;
    assert_int_equal(damage_check(c), -EILSEQ);
    const char *e = strstr(c->msg, "expected md5 ");
    assert_non_null(e);
    assert_int_equal(strspn(e + 13, "0123456789abcdef"), 32);
    assert_memory_equal(e + 45, ", received ", 11);
    assert_int_equal(strspn(e + 56, "0123456789abcdef"), 32);
}

/* What a flipped bit in each header byte is reported as. */
static const char *field_at(unsigned byte, enum verify_algo algo)
{
    static const struct {
        unsigned end;
        const char *text;
    } fields[] = {
        { 4, "bad magic" }, { 6, "; field algo is " },
        { 8, "; field reserved at +6 is not zero" }, { 12, "; field len is " },
        { 16, "; field reserved at +12 is not zero" },
        { 24, "; field offset is " }, { 32, "; field seed is 0x" },
        { 40, "; field seq is " }, { 44, "; field data sum is " },
        { 56, "; field reserved at +44 is not zero" },
        { 60, "; field reserved at +56 is not zero" },
        { 64, NULL },   /* the header crc itself */
    };

    if (algo == VERIFY_MD5 && byte >= 40 && byte < 56) {
        return "; field data sum is ";
    }
    for (size_t i = 0;; i++) {
        if (byte < fields[i].end) {
            return fields[i].text;
        }
    }
}

static void check_header_flip(enum verify_algo algo, unsigned byte,
                              unsigned bit)
{
    struct damage_case *c = damage_setup(algo, NULL, 0);
    char prefix[128];
    const char *field = field_at(byte, algo);

    c->unit[byte] ^= (uint8_t)(1 << bit);
    assert_int_equal(damage_check(c), -EILSEQ);
    if (byte < 4) {
        assert_non_null(strstr(c->msg, "offset 12288: bad magic 0x"));
        return;
    }
    snprintf(prefix, sizeof(prefix), "offset 12288: header checksum: "
             "expected crc32c 0x%08" PRIx32 ", received 0x%08" PRIx32,
             (uint32_t)le(c->unit + 60, 4), crc32c(0, c->unit, 60));
    if (strncmp(c->msg, prefix, strlen(prefix))) {
        fail_msg("byte %u bit %u: \"%s\"", byte, bit, c->msg);
    }
    if (field ? !strstr(c->msg, field) : strchr(c->msg, ';') != NULL) {
        fail_msg("byte %u bit %u: wanted \"%s\" in \"%s\"", byte, bit,
                 field ? field : "no field", c->msg);
    }
}

static void test_damaged_header(void **state)
{
    for (unsigned byte = 0; byte < VERIFY_HDR_SIZE; byte++) {
        for (unsigned bit = 0; bit < 8; bit++) {
            check_header_flip(VERIFY_CRC32C, byte, bit);
            check_header_flip(VERIFY_MD5, byte, bit);
        }
    }

    /* exact messages for a few */
    struct damage_case *c = damage_setup(VERIFY_CRC32C, NULL, 0);
    c->unit[16] ^= 1;
    assert_int_equal(damage_check(c), -EILSEQ);
    assert_non_null(strstr(c->msg, "; field offset is 12289, wanted 12288"));
    c = damage_setup(VERIFY_CRC32C, NULL, 0);
    c->unit[32] ^= 2;
    assert_int_equal(damage_check(c), -EILSEQ);
    assert_non_null(strstr(c->msg, "; field seq is 79, wanted 77"));
    c = damage_setup(VERIFY_CRC32C, NULL, 0);
    c->unit[9] ^= 0x20;
    assert_int_equal(damage_check(c), -EILSEQ);
    assert_non_null(strstr(c->msg, "; field len is 12288, wanted 4096"));
    c = damage_setup(VERIFY_MD5, NULL, 0);
    c->unit[4] ^= 1;
    assert_int_equal(damage_check(c), -EILSEQ);
    assert_non_null(strstr(c->msg, "; field algo is 3, wanted 2"));
    c = damage_setup(VERIFY_CRC32C, NULL, 0);
    c->unit[24] ^= 1;
    assert_int_equal(damage_check(c), -EILSEQ);
    assert_non_null(strstr(c->msg, "; field seed is 0x5eed0fc0b1d, "
                           "wanted 0x5eed0fc0b1c"));
    c = damage_setup(VERIFY_CRC32C, NULL, 0);
    char want[16], expected[64];
    sprintf(want, "0x%08" PRIx32, (uint32_t)le(c->unit + 40, 4));
    c->unit[40] ^= 1;
    snprintf(expected, sizeof(expected), "; field data sum is 0x%08" PRIx32
             ", wanted %s", (uint32_t)le(c->unit + 40, 4), want);
    assert_int_equal(damage_check(c), -EILSEQ);
    assert_non_null(strstr(c->msg, expected));
}

static void test_wrong_offset(void **state)
{
    struct damage_case *c = damage_setup(VERIFY_CRC32C, NULL, 0);

    c->offset += 4096;
    assert_int_equal(damage_check(c), -EILSEQ);
    assert_string_equal(c->msg, "offset 16384: wrong offset in header: "
                        "wrote at 16384, found 12288");
    c = damage_setup(VERIFY_MD5, pattern4, 4);
    c->offset = 0;
    assert_int_equal(damage_check(c), -EILSEQ);
    assert_string_equal(c->msg, "offset 0: wrong offset in header: "
                        "wrote at 0, found 12288");
}

static void test_wrong_seq(void **state)
{
    struct damage_case *c = damage_setup(VERIFY_CRC32C, NULL, 0);

    c->seq = 80;
    assert_int_equal(damage_check(c), -EILSEQ);
    assert_string_equal(c->msg, "offset 12288: wrong seq in header: wanted "
                        "write 80, found write 77 (stale data: a lost write)");
    c->seq = 76;
    assert_int_equal(damage_check(c), -EILSEQ);
    assert_string_equal(c->msg, "offset 12288: wrong seq in header: wanted "
                        "write 76, found write 77 (newer than expected)");
    c->seq = VERIFY_ANY_SEQ;
    assert_int_equal(damage_check(c), 0);
}

/* verify=meta, as fio's: the header says where and which write; the data
 * is not summed (its sum field stays zero), but a pattern is checked. */
static void test_meta(void **state)
{
    struct damage_case *c = damage_setup(VERIFY_META, NULL, 0);

    assert_int_equal(le(c->unit + 40, 8) | le(c->unit + 48, 8), 0);
    c->unit[100] ^= 1;                  /* random data: not checked */
    assert_int_equal(damage_check(c), 0);
    c->offset += 4096;
    assert_int_equal(damage_check(c), -EILSEQ);
    assert_string_equal(c->msg, "offset 16384: wrong offset in header: "
                        "wrote at 16384, found 12288");
    c = damage_setup(VERIFY_META, pattern4, 4);
    assert_int_equal(damage_check(c), 0);
    c->unit[4000] ^= 0x10;
    assert_int_equal(damage_check(c), -EILSEQ);
    char expected[160];
    snprintf(expected, sizeof(expected), "offset 12288: verify_pattern: bad "
             "byte at offset %u (unit +4000): wanted 0x%02x, found 0x%02x",
             12288 + 4000, c->unit[4000] ^ 0x10, c->unit[4000]);
    assert_string_equal(c->msg, expected);
    c->unit[4000] ^= 0x10;
    c->p.algo = VERIFY_CRC32C;
    assert_int_equal(damage_check(c), -EILSEQ);
    assert_string_equal(c->msg, "offset 12288: header algo meta (3), "
                        "wanted crc32c");
}

static void test_wrong_job(void **state)
{
    struct damage_case *c = damage_setup(VERIFY_CRC32C, NULL, 0);

    c->p.seed = 1;
    assert_int_equal(damage_check(c), -EILSEQ);
    assert_string_equal(c->msg, "offset 12288: wrong seed in header: wanted "
                        "0x1, found 0x5eed0fc0b1c");
    c->p.seed = 0x5eed0fc0b1cull;
    c->p.algo = VERIFY_MD5;
    assert_int_equal(damage_check(c), -EILSEQ);
    assert_string_equal(c->msg, "offset 12288: header algo crc32c (1), "
                        "wanted md5");
    c->p.algo = VERIFY_CRC32C;
    c->p.unit = 512;
    assert_int_equal(damage_check(c), -EILSEQ);
    assert_string_equal(c->msg, "offset 12288: header unit length 4096, "
                        "wanted 512");
}

static void test_zeroed_and_swapped(void **state)
{
    struct damage_case *c = damage_setup(VERIFY_CRC32C, NULL, 0);

    memset(c->unit, 0, sizeof(c->unit));
    assert_int_equal(damage_check(c), -EILSEQ);
    assert_string_equal(c->msg, "offset 12288: bad magic 0x00000000, wanted "
                        "0x66766263 (the unit is all zeroes)");
    c->unit[100] = 1;
    assert_int_equal(damage_check(c), -EILSEQ);
    assert_string_equal(c->msg, "offset 12288: bad magic 0x00000000, wanted "
                        "0x66766263");

    /* this unit's header over another write's data */
    static uint8_t other[4096];
    c = damage_setup(VERIFY_CRC32C, NULL, 0);
    verify_fill(&c->p, other, c->offset, c->seq + 1);
    memcpy(c->unit + 64, other + 64, sizeof(other) - 64);
    assert_int_equal(damage_check(c), -EILSEQ);
    assert_non_null(strstr(c->msg, "offset 12288: data checksum: expected "
                           "crc32c 0x"));
    assert_non_null(strstr(c->msg, "; first bad byte at offset 12352 "
                           "(unit +64): "));
}

static void test_message_buffer(void **state)
{
    struct damage_case *c = damage_setup(VERIFY_MD5, NULL, 0);
    char small[16];

    c->unit[300] ^= 1;
    assert_int_equal(verify_check(&c->p, c->unit, c->offset, c->seq, NULL, 0),
                     -EILSEQ);
    assert_int_equal(verify_check(&c->p, c->unit, c->offset, c->seq, small,
                                  sizeof(small)), -EILSEQ);
    assert_string_equal(small, "offset 12288: d");
    c->unit[8] ^= 1;
    assert_int_equal(verify_check(&c->p, c->unit, c->offset, c->seq, small,
                                  sizeof(small)), -EILSEQ);
    assert_string_equal(small, "offset 12288: h");
}

/* ---- verify_pattern ----------------------------------------------------- */

static void test_parse_pattern_good(void **state)
{
    static const struct {
        const char *text;
        unsigned len;
        uint8_t bytes[8];
    } cases[] = {
        { "0xdeadbeef", 4, { 0xde, 0xad, 0xbe, 0xef } },
        { "0XFF", 1, { 0xff } },
        { "0xabc", 2, { 0x0a, 0xbc } },
        { "0x00", 1, { 0 } },
        { "0xff0x14", 2, { 0xff, 0x14 } },
        { "66", 1, { 0x42 } },
        { "258", 2, { 0x02, 0x01 } },
        { "0", 1, { 0 } },
        { "+7", 1, { 7 } },
        { "-1", 4, { 0xff, 0xff, 0xff, 0xff } },
        { "-1024", 4, { 0x00, 0xfc, 0xff, 0xff } },
        { "2147483647", 4, { 0xff, 0xff, 0xff, 0x7f } },
        { "-2147483648", 4, { 0x00, 0x00, 0x00, 0x80 } },
        { "\"abc\"", 3, { 'a', 'b', 'c' } },
        { "'abc'", 3, { 'a', 'b', 'c' } },
        { "'a\"b'", 3, { 'a', '"', 'b' } },
        { "\"123\"0xFFeeCC", 6, { '1', '2', '3', 0xff, 0xee, 0xcc } },
        { "-100xab\"1\"", 6, { 0xf6, 0xff, 0xff, 0xff, 0xab, '1' } },
        { "\"\"0x01", 1, { 1 } },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t out[PATTERN_MAX];
        unsigned len = 0;
        char err[128] = "";

        if (pattern_parse(cases[i].text, out, sizeof(out), &len, err,
                          sizeof(err))) {
            fail_msg("%s: rejected: %s", cases[i].text, err);
        }
        if (len != cases[i].len || memcmp(out, cases[i].bytes, len)) {
            fail_msg("%s: %u bytes, wanted %u", cases[i].text, len,
                     cases[i].len);
        }
    }
}

static void test_parse_pattern_longest(void **state)
{
    char text[2 + 2 * PATTERN_MAX + 3] = "0x";
    uint8_t out[PATTERN_MAX];
    unsigned len = 0;
    char err[128];

    for (int i = 0; i < PATTERN_MAX; i++) {
        sprintf(text + 2 + 2 * i, "%02x", i & 0xff);
    }
    assert_int_equal(pattern_parse(text, out, sizeof(out), &len, err,
                                   sizeof(err)), 0);
    assert_int_equal(len, PATTERN_MAX);
    assert_int_equal(out[511], 0xff);
    strcat(text, "00");
    assert_int_equal(pattern_parse(text, out, sizeof(out), &len, err,
                                   sizeof(err)), -1);
    assert_string_equal(err, "verify_pattern: longer than 512 bytes");
}

static void test_parse_pattern_bad(void **state)
{
    static const struct {
        const char *text;
        const char *err;
    } cases[] = {
        { "", "verify_pattern: empty value" },
        { "\"\"", "verify_pattern: empty pattern" },
        { "abc", "verify_pattern: invalid value 'abc'" },
        { "-", "verify_pattern: invalid value '-'" },
        { "12abc", "verify_pattern: invalid value '12abc' at 'abc'" },
        { "0xff-", "verify_pattern: invalid value '0xff-' at '-'" },
        { "0x", "verify_pattern: no hex digits after 0x in '0x'" },
        { "0xzz", "verify_pattern: no hex digits after 0x in '0xzz'" },
        { "0x0x1", "verify_pattern: no hex digits after 0x in '0x0x1'" },
        { "\"abc", "verify_pattern: missing closing \" in '\"abc'" },
        { "0x01'abc", "verify_pattern: missing closing ' in '0x01'abc'" },
        { "2147483648",
          "verify_pattern: 2147483648 out of range [-2147483648, 2147483647]" },
        { "-2147483649",
          "verify_pattern: -2147483649 out of range [-2147483648, 2147483647]" },
        { "99999999999999999999999", "verify_pattern: 99999999999999999999999 "
          "out of range [-2147483648, 2147483647]" },
        { "%o", "verify_pattern: formats such as %o are not supported" },
        { "0xff%o", "verify_pattern: formats such as %o are not supported" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t out[PATTERN_MAX];
        unsigned len = 12345;
        char err[128] = "";

        int ret = pattern_parse(cases[i].text, out, sizeof(out), &len,
                                err, sizeof(err));
        if (ret != -1 || strncmp(err, cases[i].err, strlen(cases[i].err))) {
            fail_msg("%s: got %d \"%s\", wanted \"%s\"", cases[i].text, ret,
                     err, cases[i].err);
        }
        assert_int_equal(len, 12345);
    }

    uint8_t out[3];
    unsigned len;
    char err[128];
    assert_int_equal(pattern_parse("0xdeadbeef", out, sizeof(out),
                                   &len, err, sizeof(err)), -1);
    assert_string_equal(err, "verify_pattern: longer than 3 bytes");
    assert_int_equal(pattern_parse("\"abcd\"", out, sizeof(out), &len,
                                   err, sizeof(err)), -1);
    assert_string_equal(err, "verify_pattern: longer than 3 bytes");
    assert_int_equal(pattern_parse("abc", out, sizeof(out), &len,
                                   NULL, 0), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_vectors),
        cmocka_unit_test(test_crc32c_chaining),
        cmocka_unit_test(test_crc32c_detects_hw),
        cmocka_unit_test(test_md5_rfc1321),
        cmocka_unit_test(test_md5_padding_and_pieces),
        cmocka_unit_test(test_fill_layout),
        cmocka_unit_test(test_fill_random_data),
        cmocka_unit_test(test_fill_check_roundtrip),
        cmocka_unit_test(test_damaged_data),
        cmocka_unit_test(test_damaged_header),
        cmocka_unit_test(test_wrong_offset),
        cmocka_unit_test(test_wrong_seq),
        cmocka_unit_test(test_meta),
        cmocka_unit_test(test_wrong_job),
        cmocka_unit_test(test_zeroed_and_swapped),
        cmocka_unit_test(test_message_buffer),
        cmocka_unit_test(test_parse_pattern_good),
        cmocka_unit_test(test_parse_pattern_longest),
        cmocka_unit_test(test_parse_pattern_bad),
    };

    return cmocka_run_group_tests_name("bench-verify", tests, NULL, NULL);
}
