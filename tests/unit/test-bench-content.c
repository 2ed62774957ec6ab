/*
 * What coblk-bench's writes carry (content.c): fio's buffer options, parsed
 * from a command line, judged by the bytes they produce.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <cmocka.h>

#include "bench/content.h"
#include "bench/options.h"

#define BS 4096
#define BUFFERS 2000

/* The job of the options given (NULL-terminated), its content set up. */
static void job_content(struct bench_config *cfg, struct content *c, ...)
{
    char *argv[32] = { "coblk-bench", "--name=t", "--ioengine=null",
                       "--size=64M", "--bs=4k" };
    int argc = 5;
    char err[256];
    va_list ap;

    va_start(ap, c);
    for (char *arg; (arg = va_arg(ap, char *));) {
        argv[argc++] = arg;
    }
    va_end(ap);
    if (bench_parse_args(cfg, argc, argv, err, sizeof(err)) != 0) {
        fail_msg("%s", err);
    }
    content_init(c, &cfg->jobs[0], 1234, 0);
}

/* BUFFERS buffers as the job's writes would carry them. */
static uint8_t *fill_many(struct content *c)
{
    uint8_t *data = malloc((size_t)BUFFERS * BS);

    assert_non_null(data);
    for (unsigned i = 0; i < BUFFERS; i++) {
        content_fill(c, data + (size_t)i * BS, BS);
    }
    return data;
}

static double compressed_share(const uint8_t *data, size_t bytes)
{
    uLongf out_len = compressBound(bytes);
    uint8_t *out = malloc(out_len);

    assert_non_null(out);
    assert_int_equal(compress2(out, &out_len, data, bytes, 1), Z_OK);
    free(out);
    return (double)out_len / (double)bytes;
}

/* Buffers equal to an earlier one, per cent. */
static double repeated_share(const uint8_t *data)
{
    unsigned repeated = 0;

    for (unsigned i = 1; i < BUFFERS; i++) {
        for (unsigned j = 0; j < i; j++) {
            if (!memcmp(data + (size_t)i * BS, data + (size_t)j * BS, BS)) {
                repeated++;
                break;
            }
        }
    }
    return 100.0 * repeated / BUFFERS;
}

static void test_default_is_random_and_scrambled(void **state)
{
    struct bench_config cfg;
    struct content c;
    uint8_t a[BS], b[BS];

    job_content(&cfg, &c, "--rw=write", NULL);
    uint8_t *data = fill_many(&c);
    assert_true(compressed_share(data, (size_t)BUFFERS * BS) > 0.99);
    assert_true(repeated_share(data) == 0);
    /* Each write of one buffer differs in every sector, and holds its
     * offset there. */
    memcpy(a, data, BS);
    content_write(&c, a, BS, 1 << 20);
    memcpy(b, a, BS);
    content_write(&c, b, BS, 1 << 20);
    for (unsigned s = 0; s < BS / 512; s++) {
        assert_memory_not_equal(a + s * 512, b + s * 512, 512);
        uint64_t want = (1 << 20) + s * 512;
        bool found = false;
        for (unsigned line = 0; line < 8; line++) {
            found |= !memcmp(a + s * 512 + line * 64, &want, 8);
        }
        assert_true(found);
    }
    free(data);
    bench_config_free(&cfg);
}

/* Half of each 512-byte chunk random, half zeroes: zlib gets about half;
 * with buffer_pattern the fixed half is the pattern. */
static void test_compress_percentage(void **state)
{
    struct bench_config cfg;
    struct content c;
    static const uint8_t zero[256];

    job_content(&cfg, &c, "--rw=write", "--buffer_compress_percentage=50",
                NULL);
    assert_int_equal(c.per_write, PER_WRITE_REFILL);
    uint8_t *data = fill_many(&c);
    double share = compressed_share(data, (size_t)BUFFERS * BS);
    assert_true(share > 0.48 && share < 0.56);
    for (unsigned i = 0; i < BUFFERS * BS / 512; i++) {
        assert_memory_equal(data + i * 512 + 256, zero, 256);
        assert_memory_not_equal(data + i * 512, zero, 256);
    }
    free(data);
    bench_config_free(&cfg);

    job_content(&cfg, &c, "--rw=write", "--buffer_compress_percentage=75",
                "--buffer_compress_chunk=4k", "--buffer_pattern=0xab", NULL);
    data = fill_many(&c);
    for (unsigned i = 0; i < BUFFERS; i++) {
        uint8_t *fixed = data + (size_t)i * BS + BS / 4;
        assert_int_equal(fixed[0], 0xab);
        assert_memory_equal(fixed, fixed + 1, BS * 3 / 4 - 1);
    }
    free(data);
    bench_config_free(&cfg);
}

/* 100: zeroes, kept from write to write (fio: no refill, no scramble). */
static void test_fully_compressible(void **state)
{
    struct bench_config cfg;
    struct content c;
    uint8_t buf[BS], zero[BS] = { 0 };

    job_content(&cfg, &c, "--rw=write", "--buffer_compress_percentage=100",
                NULL);
    memset(buf, 1, sizeof(buf));
    content_fill(&c, buf, BS);
    content_write(&c, buf, BS, 0);
    assert_memory_equal(buf, zero, BS);
    bench_config_free(&cfg);

    job_content(&cfg, &c, "--rw=write", "--zero_buffers", NULL);
    memset(buf, 1, sizeof(buf));
    content_fill(&c, buf, BS);
    content_write(&c, buf, BS, 4096);
    assert_memory_equal(buf, zero, BS);
    bench_config_free(&cfg);
}

static void test_dedupe_percentage(void **state)
{
    struct bench_config cfg;
    struct content c;

    job_content(&cfg, &c, "--rw=write", "--dedupe_percentage=30", NULL);
    uint8_t *data = fill_many(&c);
    double repeated = repeated_share(data);
    assert_true(repeated > 26 && repeated < 34);
    /* "repeat": a repeated buffer is the last new one. */
    unsigned repeats_of_last = 0;
    for (unsigned i = 1; i < BUFFERS; i++) {
        repeats_of_last += !memcmp(data + (size_t)i * BS,
                                   data + (size_t)(i - 1) * BS, BS);
    }
    assert_true(repeats_of_last >= repeated * BUFFERS / 100 - 1);
    free(data);
    bench_config_free(&cfg);

    job_content(&cfg, &c, "--rw=write", "--dedupe_percentage=100", NULL);
    data = fill_many(&c);
    assert_true(repeated_share(data) > 99.9);
    free(data);
    bench_config_free(&cfg);
}

/* working_set: repeats come from the first new buffers, as many as
 * dedupe_working_set_percentage of the size holds (1% of 8 MiB: 20). */
static void test_dedupe_working_set(void **state)
{
    struct bench_config cfg;
    struct content c;

    job_content(&cfg, &c, "--rw=write", "--size=8M", "--dedupe_percentage=50",
                "--dedupe_mode=working_set",
                "--dedupe_working_set_percentage=1", NULL);
    assert_int_equal(c.working_set, 20);
    uint8_t *data = fill_many(&c);
    unsigned new_ones = 0, repeats = 0;
    uint8_t *firsts = malloc((size_t)BUFFERS * BS);
    assert_non_null(firsts);
    for (unsigned i = 0; i < BUFFERS; i++) {
        bool seen = false;
        for (unsigned j = 0; j < new_ones && !seen; j++) {
            seen = !memcmp(data + (size_t)i * BS, firsts + (size_t)j * BS,
                           BS);
            repeats += seen && j < 20;
            assert_false(seen && j >= 20);  /* only the set repeats */
        }
        if (!seen) {
            memcpy(firsts + (size_t)new_ones++ * BS, data + (size_t)i * BS,
                   BS);
        }
    }
    /* The set's buffers not yet written come out as new ones. */
    assert_true(repeats > BUFFERS * 45 / 100 - 20 &&
                repeats < BUFFERS * 55 / 100);
    free(firsts);
    free(data);
    bench_config_free(&cfg);
}

/* fio's checks: a working set needs a size, and room for the repeats. */
static void test_dedupe_checks(void **state)
{
    struct bench_config cfg;
    char err[256];
    char *no_size[] = { "coblk-bench", "--name=t", "--filename=/tmp/x",
                        "--dedupe_percentage=10", "--dedupe_mode=working_set",
                        NULL };
    char *too_much[] = { "coblk-bench", "--name=t", "--size=1M",
                         "--ioengine=null", "--dedupe_percentage=90",
                         "--dedupe_mode=working_set",
                         "--dedupe_working_set_percentage=20", NULL };
    char *bad_mode[] = { "coblk-bench", "--name=t", "--dedupe_mode=all",
                         NULL };

    assert_int_equal(bench_parse_args(&cfg, 5, no_size, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "dedupe_mode=working_set needs size="));
    bench_config_free(&cfg);
    assert_int_equal(bench_parse_args(&cfg, 7, too_much, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "dedupe_percentage=90 cannot be reached"));
    bench_config_free(&cfg);
    assert_int_equal(bench_parse_args(&cfg, 3, bad_mode, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "dedupe_mode: invalid value 'all'"));
    bench_config_free(&cfg);
}

/* A pattern stays; where the job reads too, reads may overwrite it, so
 * every write refills it (fio's rules). */
static void test_pattern_refilled_where_reads_share_buffers(void **state)
{
    struct bench_config cfg;
    struct content c;
    uint8_t buf[BS];

    job_content(&cfg, &c, "--rw=write", "--buffer_pattern=0x1122", NULL);
    assert_int_equal(c.per_write, PER_WRITE_KEEP);
    bench_config_free(&cfg);
    job_content(&cfg, &c, "--rw=randrw", "--buffer_pattern=0x1122", NULL);
    assert_int_equal(c.per_write, PER_WRITE_REFILL);
    memset(buf, 7, sizeof(buf));
    content_write(&c, buf, BS, 0);
    for (unsigned i = 0; i < BS; i += 2) {
        assert_int_equal(buf[i], 0x11);
        assert_int_equal(buf[i + 1], 0x22);
    }
    bench_config_free(&cfg);
    job_content(&cfg, &c, "--rw=randrw", "--buffer_pattern=0x1122",
                "--refill_buffers=0", NULL);
    assert_int_equal(c.per_write, PER_WRITE_KEEP);
    bench_config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_is_random_and_scrambled),
        cmocka_unit_test(test_compress_percentage),
        cmocka_unit_test(test_fully_compressible),
        cmocka_unit_test(test_dedupe_percentage),
        cmocka_unit_test(test_dedupe_working_set),
        cmocka_unit_test(test_dedupe_checks),
        cmocka_unit_test(test_pattern_refilled_where_reads_share_buffers),
    };

    return cmocka_run_group_tests_name("bench-content", tests, NULL, NULL);
}
