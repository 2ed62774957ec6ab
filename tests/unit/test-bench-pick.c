/*
 * coblk-bench's choices: every block once per pass with the random map,
 * sizes in their range and split, zipf's skew, directions by rwmixread.
 */
#include "config.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bench/pick.h"

/* The seeds of job number n (fio's thread_number) with randseed's
 * default. */
static const uint64_t *seeds_for(unsigned n)
{
    static uint64_t seeds[FRAND_STREAMS];

    frand_job_seeds(0x89, n, true, seeds);
    return seeds;
}

static struct job make_job(enum rw_mode rw)
{
    struct job job;
    char err[128];

    bench_job_defaults(&job);
    job.rw = rw;
    assert_int_equal(bench_job_finish(&job, err, sizeof(err)), 0);
    return job;
}

static void test_random_map_visits_each_block_once(void **state)
{
    static const uint64_t sizes[] = { 1, 2, 3, 1000, 4096, 65537 };

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        struct job job = make_job(RW_RANDREAD);
        struct picker p;
        uint64_t blocks = sizes[i], bytes;
        uint8_t *seen = calloc(blocks, 1);

        assert_int_equal(picker_init(&p, &job, blocks, seeds_for(42)), 0);
        for (uint64_t n = 0; n < 2 * blocks; n++) {
            uint64_t b = picker_block(&p, &bytes);
            assert_true(b < blocks);
            assert_int_equal(bytes, 4096);
            assert_true(seen[b] < 2);
            seen[b]++;
            if (n == blocks - 1) {      /* one pass: each exactly once */
                for (uint64_t k = 0; k < blocks; k++) {
                    assert_int_equal(seen[k], 1);
                }
            }
        }
        picker_free(&p);
        free(seen);
    }
}

/* norandommap: uniform over the blocks, with repeats, in range (a block
 * count of no particular form: the draw is scaled, not masked). */
static void test_uniform_without_map(void **state)
{
    enum { BLOCKS = 1000, DRAWS = 200000 };
    struct job job = make_job(RW_RANDREAD);
    struct picker p;
    static unsigned hits[BLOCKS];
    uint64_t bytes;

    job.norandommap = true;
    assert_int_equal(picker_init(&p, &job, BLOCKS, seeds_for(7)), 0);
    for (unsigned n = 0; n < DRAWS; n++) {
        uint64_t b = picker_block(&p, &bytes);
        assert_true(b < BLOCKS);
        assert_int_equal(bytes, 4096);
        hits[b]++;
    }
    /* 200 expected a block: each within 5 standard deviations (~14). */
    for (unsigned b = 0; b < BLOCKS; b++) {
        if (hits[b] < 130 || hits[b] > 270) {
            fail_msg("block %u drawn %u times of %d", b, hits[b], DRAWS);
        }
    }
    picker_free(&p);
}

/* The seed whose state would be 0 (xorshift64 stays there; it draws the
 * data and zipf's ranks): still random. */
static void test_no_seed_stops_the_generator(void **state)
{
    const uint64_t bad = 3484478332453834927u;  /* bad * 2654435761 + 1 == 0 */
    uint64_t s = picker_seed_state(bad), first;

    assert_true(bad * 2654435761u + 1 == 0);
    assert_true(s != 0);
    first = picker_rand(&s);
    bool moved = false;
    for (int i = 0; i < 10; i++) {
        moved |= picker_rand(&s) != first;
    }
    assert_true(moved);
}

/* fio's streams: job 1's first blocks of a 256-block randread without
 * the map, as fio 3.33 logs them (write_iolog); with the map, a block
 * drawn twice moves to the next free one, as fio's axmap. */
static void test_blocks_as_fio_draws_them(void **state)
{
    static const uint64_t fio_uniform[] = { 15, 189, 215, 120, 102, 215, 97,
                                            90, 233, 17, 218, 166 };
    struct job job = make_job(RW_RANDREAD);
    struct picker p;
    uint64_t bytes;

    job.norandommap = true;
    assert_int_equal(picker_init(&p, &job, 256, seeds_for(1)), 0);
    for (int i = 0; i < 12; i++) {
        assert_int_equal(picker_block(&p, &bytes), fio_uniform[i]);
    }
    picker_free(&p);

    job.norandommap = false;
    assert_int_equal(picker_init(&p, &job, 256, seeds_for(1)), 0);
    for (int i = 0; i < 12; i++) {
        /* The second 215 was done: the next free block is 216. */
        assert_int_equal(picker_block(&p, &bytes),
                         i == 5 ? 216 : fio_uniform[i]);
    }
    picker_free(&p);
}

/* The random map against a plain array of flags, on sizes around each
 * level's word boundary: next_free is the first free block after b, going
 * round once; take stops at a taken block and at the end. */
static void test_blockmap_as_a_flag_array(void **state)
{
    static const uint64_t sizes[] = { 1, 63, 64, 65, 4095, 4096, 4097,
                                      262145 };
    uint64_t rng = picker_seed_state(5);

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint64_t n = sizes[i];
        struct blockmap m;
        uint8_t *flag = calloc(n, 1);
        assert_int_equal(blockmap_init(&m, n), 0);
        for (uint64_t round = 0; round < n + 10; round++) {
            uint64_t b = picker_rand(&rng) % n;
            uint64_t want = BLOCKMAP_NONE;
            for (uint64_t k = 1; k <= n; k++) {
                if (!flag[(b + k) % n]) {
                    want = (b + k) % n;
                    break;
                }
            }
            assert_int_equal(blockmap_next_free(&m, b), want);
            uint64_t len = 1 + picker_rand(&rng) % 3, taken = 0;
            while (taken < len && b + taken < n && !flag[b + taken]) {
                flag[b + taken++] = 1;
            }
            assert_int_equal(blockmap_take(&m, b, len), taken);
            assert_int_equal(blockmap_is_done(&m, b), 1);
        }
        uint64_t done = 0;
        for (uint64_t k = 0; k < n; k++) {
            done += flag[k];
            assert_int_equal(blockmap_is_done(&m, k), flag[k]);
        }
        assert_int_equal(m.done, done);
        blockmap_clear(&m);
        assert_int_equal(blockmap_next_free(&m, n - 1), 0);
        assert_int_equal(m.done, 0);
        blockmap_free(&m);
        free(flag);
    }
}

/* fio's generators from their seeds: the first draws of taus88 and
 * taus258 for seed 1, and rand_between's range. */
static void test_frand_streams(void **state)
{
    struct frand r;
    uint64_t seeds[FRAND_STREAMS];

    frand_job_seeds(0x89, 1, true, seeds);
    assert_int_equal(seeds[FRAND_BLOCK], 0xb1899bed);
    frand_job_seeds(0x89, 2, true, seeds);
    assert_int_equal(seeds[FRAND_BLOCK], 2 * 0xb1899bedull);
    frand_job_seeds(42, 1, false, seeds);
    assert_true(seeds[FRAND_BLOCK] != 0xb1899bed);

    /* Two generators from one seed agree; 64 bits differ from 32. */
    struct frand a, b;
    frand_seed(&a, 12345, false);
    frand_seed(&b, 12345, false);
    frand_seed(&r, 12345, true);
    bool differ = false;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = frand_next(&a);
        assert_true(x <= UINT32_MAX);
        assert_int_equal(x, frand_next(&b));
        differ |= frand_next(&r) > UINT32_MAX;
        uint64_t v = frand_between(&a, 1, 100);
        assert_true(v >= 1 && v <= 100);
        assert_int_equal(frand_between(&b, 1, 100), v);
    }
    assert_true(differ);
}

/* fio's LFSR: every value below n once, then the end; again after a
 * reset; the forbidden all-ones seed refused. */
static void test_lfsr_visits_each_once(void **state)
{
    static const uint64_t sizes[] = { 1, 7, 8, 9, 1000, 4096, 100003 };

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint64_t n = sizes[i], v;
        struct flfsr l;
        uint8_t *seen = calloc(n, 1);
        assert_int_equal(flfsr_init(&l, n, 0xb1899bed), 0);
        for (int round = 1; round <= 2; round++) {
            for (uint64_t k = 0; k < n; k++) {
                assert_true(flfsr_next(&l, &v));
                assert_true(v < n);
                assert_int_equal(seen[v], round - 1);
                seen[v]++;
            }
            assert_false(flfsr_next(&l, &v) && flfsr_next(&l, &v));
            flfsr_reset(&l);
        }
        free(seen);
    }
    struct flfsr l;
    assert_int_equal(flfsr_init(&l, 8, 15), -1);  /* 4 bits: 15 is all ones */
}

static void test_sequential_wraps_and_clamps(void **state)
{
    struct job job = make_job(RW_READ);
    struct picker p;
    uint64_t bytes;
    char err[128];

    for (int d = 0; d < 3; d++) {
        job.dir_bs_min[d] = 4096;
        job.dir_bs_max[d] = 16384;      /* bsrange=4k-16k */
    }
    assert_int_equal(bench_job_finish(&job, err, sizeof(err)), 0);
    assert_int_equal(picker_init(&p, &job, 10, seeds_for(1)), 0);
    uint64_t expect = 0, sizes[5] = { 0 };
    for (int n = 0; n < 1000; n++) {
        uint64_t b = picker_block(&p, &bytes);
        assert_int_equal(b, expect);
        assert_true(bytes >= 4096 && bytes <= 16384 && bytes % 4096 == 0);
        assert_true(b * 4096 + bytes <= 10 * 4096);     /* never past */
        sizes[bytes / 4096]++;
        expect = (b + bytes / 4096) % 10;
    }
    for (int k = 1; k <= 4; k++) {
        assert_true(sizes[k] > 0);
    }
    picker_free(&p);
}

/* rw=read:8k skips 8k after each block; rw=read:-8k goes backwards,
 * from the end once past the start (fio's offsets for backwards-read.fio:
 * 0, then end - 8k, end - 12k, ...). */
static void test_sequential_offset_modifier(void **state)
{
    struct job job;
    struct picker p;
    uint64_t bytes;
    char err[128];

    bench_job_defaults(&job);
    assert_int_equal(bench_set_option(&job, "rw", "read:8k", err,
                                      sizeof(err)), 0);
    assert_int_equal(bench_job_finish(&job, err, sizeof(err)), 0);
    assert_int_equal(picker_init(&p, &job, 10, seeds_for(1)), 0);
    static const uint64_t holes[] = { 0, 3, 6, 9, 0, 3 };
    for (int i = 0; i < 6; i++) {
        assert_int_equal(p.pass_ended, i >= 4);     /* as fio: 0 3 6 9 */
        assert_int_equal(picker_block(&p, &bytes), holes[i]);
        assert_int_equal(bytes, 4096);
    }
    picker_free(&p);

    assert_int_equal(bench_set_option(&job, "rw", "read:-8k", err,
                                      sizeof(err)), 0);
    assert_int_equal(bench_job_finish(&job, err, sizeof(err)), 0);
    assert_int_equal(picker_init(&p, &job, 10, seeds_for(1)), 0);
    static const uint64_t back[] = { 0, 8, 7, 6, 5, 4, 3, 2, 1, 0, 8 };
    for (int i = 0; i < 11; i++) {
        assert_int_equal(picker_block(&p, &bytes), back[i]);
    }
    picker_free(&p);

    /* A hole of half a block: blocks count in its unit (fio's t0007). */
    assert_int_equal(bench_set_option(&job, "rw", "read:2k", err,
                                      sizeof(err)), 0);
    assert_int_equal(bench_job_finish(&job, err, sizeof(err)), 0);
    assert_int_equal(job.bs_unit, 2048);
    assert_int_equal(picker_init(&p, &job, 20, seeds_for(1)), 0);
    static const uint64_t half[] = { 0, 3, 6, 9, 12, 15, 18 };
    for (int i = 0; i < 7; i++) {
        assert_int_equal(picker_block(&p, &bytes), half[i]);
        assert_int_equal(bytes, 4096);
    }
    picker_free(&p);
    bench_job_defaults(&job);
    assert_int_equal(bench_set_option(&job, "rw", "read:100", err,
                                      sizeof(err)), 0);
    assert_int_equal(bench_job_finish(&job, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "must be a multiple of 512"));
}

/* rw=randread:4 does 4 I/Os from each random offset: one after the other,
 * or with rw_sequencer=identical all at it. */
static void test_random_offset_modifier(void **state)
{
    struct job job;
    struct picker p;
    uint64_t bytes;
    char err[128];

    for (int identical = 0; identical < 2; identical++) {
        bench_job_defaults(&job);
        assert_int_equal(bench_set_option(&job, "rw", "randread:4", err,
                                          sizeof(err)), 0);
        assert_int_equal(bench_set_option(&job, "rw_sequencer",
                                          identical ? "identical"
                                                    : "sequential",
                                          err, sizeof(err)), 0);
        assert_int_equal(bench_job_finish(&job, err, sizeof(err)), 0);
        assert_int_equal(picker_init(&p, &job, 1000, seeds_for(7)), 0);
        for (int run = 0; run < 50; run++) {
            uint64_t first = picker_block(&p, &bytes);
            for (uint64_t i = 1; i < 4; i++) {
                uint64_t want = identical ? first : (first + i) % 1000;
                assert_int_equal(picker_block(&p, &bytes), want);
            }
        }
        picker_free(&p);
    }
    assert_int_equal(bench_set_option(&job, "rw", "randread:x", err,
                                      sizeof(err)), -1);
    assert_int_equal(bench_set_option(&job, "rw_sequencer", "random", err,
                                      sizeof(err)), -1);
}

/* A direction whose smallest size is several units (12k of 4k): its
 * random blocks align to 12k, as fio's, every I/O has a size, and a
 * trimwrite's write repeats its trim. */
static void test_sizes_per_direction(void **state)
{
    struct job job;
    struct picker p;
    char err[128];
    uint64_t bytes;

    (void)state;
    bench_job_defaults(&job);
    job.rw = RW_RANDRW;
    assert_int_equal(bench_set_option(&job, "bssplit", "4k/100,12k/50:16k/50",
                                      err, sizeof(err)), 0);
    assert_int_equal(bench_job_finish(&job, err, sizeof(err)), 0);
    assert_int_equal(job.bs_unit, 4096);
    assert_int_equal(picker_init(&p, &job, 256, seeds_for(3)), 0);
    for (int i = 0; i < 5000; i++) {     /* time_based: passes again */
        int dir = picker_direction(&p);
        uint64_t block = picker_block(&p, &bytes);
        assert_true(bytes > 0);
        assert_true(block * 4096 + bytes <= 256 * 4096);
        if (dir == 1) {
            assert_int_equal(block % 3, 0);
            assert_true(bytes == 12288 || bytes == 16384 || bytes == 4096 ||
                        bytes == 8192);
        } else {
            assert_int_equal(bytes, 4096);
        }
    }
    picker_free(&p);

    bench_job_defaults(&job);
    job.rw = RW_RANDTRIMWRITE;
    assert_int_equal(bench_set_option(&job, "bs", "4k,4k,8k", err,
                                      sizeof(err)), 0);
    assert_int_equal(bench_job_finish(&job, err, sizeof(err)), 0);
    assert_int_equal(picker_init(&p, &job, 64, seeds_for(3)), 0);
    for (int i = 0; i < 64; i++) {
        uint64_t trim_bytes;
        assert_int_equal(picker_direction(&p), 2);
        uint64_t trim = picker_block(&p, &trim_bytes);
        assert_int_equal(trim_bytes, 8192);
        assert_int_equal(picker_direction(&p), 1);
        assert_int_equal(picker_block(&p, &bytes), trim);
        assert_int_equal(bytes, trim_bytes);
    }
    picker_free(&p);
}

static void test_bssplit_proportions(void **state)
{
    struct job job = make_job(RW_RANDWRITE);
    struct picker p;
    char err[128];
    uint64_t bytes, small = 0, large = 0;
    const int n = 100000;

    job.norandommap = true;     /* sizes as drawn, none cut short */
    assert_int_equal(bench_set_option(&job, "bssplit", "4k/80:64k/20", err,
                                      sizeof(err)), 0);
    assert_int_equal(bench_job_finish(&job, err, sizeof(err)), 0);
    assert_int_equal(picker_init(&p, &job, 1 << 20, seeds_for(7)), 0);
    for (int i = 0; i < n; i++) {
        picker_block(&p, &bytes);
        small += bytes == 4096;
        large += bytes > 4096;  /* 64k, or less at the end of the device */
    }
    assert_int_equal(small + large, n);
    assert_true(fabs((double)small / n - 0.8) < 0.01);
    picker_free(&p);
}

/* The share of draws landing on the hottest tenth of the blocks against
 * the exact zipf mass of ranks 1..n/10. */
static void check_zipf(double theta)
{
    const uint64_t n = 10000;
    const int draws = 200000;
    struct zipf z;
    uint64_t rng = 99, hot = 0;
    double mass = 0, hot_mass = 0;

    zipf_init(&z, theta, n);
    for (uint64_t k = 1; k <= n; k++) {
        double w = pow((double)k, -theta);
        mass += w;
        hot_mass += k <= n / 10 ? w : 0;
    }
    for (int i = 0; i < draws; i++) {
        uint64_t k = zipf_draw(&z, &rng);
        assert_true(k >= 1 && k <= n);
        hot += k <= n / 10;
    }
    double share = (double)hot / draws, expected = hot_mass / mass;
    if (fabs(share - expected) > 0.01) {
        fail_msg("zipf %.2f: hottest tenth got %.4f, expected %.4f", theta,
                 share, expected);
    }
}

/* Sizes that vary under the random map: each pass covers every block
 * exactly once, I/Os cut short where the next block is taken. */
static void test_random_map_with_varying_sizes(void **state)
{
    struct job job = make_job(RW_RANDWRITE);
    struct picker p;
    char err[128];
    const uint64_t blocks = 5000;
    uint8_t *hits = calloc(blocks, 1);

    assert_int_equal(bench_set_option(&job, "bssplit", "4k/40:12k/30:64k/30",
                                      err, sizeof(err)), 0);
    assert_int_equal(bench_job_finish(&job, err, sizeof(err)), 0);
    assert_int_equal(job.bs_unit, 4096);
    assert_int_equal(picker_init(&p, &job, blocks, seeds_for(11)), 0);
    for (int pass = 1; pass <= 2; pass++) {
        uint64_t covered = 0;
        while (covered < blocks) {
            uint64_t bytes, b = picker_block(&p, &bytes);
            assert_true(bytes >= 4096 && bytes <= 65536);
            for (uint64_t u = b; u < b + bytes / 4096; u++) {
                assert_true(u < blocks);
                assert_int_equal(hits[u], pass - 1);    /* once a pass */
                hits[u]++;
            }
            covered += bytes / 4096;
        }
        assert_int_equal(covered, blocks);
    }
    picker_free(&p);
    free(hits);
}

static void test_zipf_skew(void **state)
{
    check_zipf(0.8);
    check_zipf(1.2);
    check_zipf(2.5);

    /* Through the picker: blocks stay in range, hot ones repeat. */
    struct job job = make_job(RW_RANDREAD);
    struct picker p;
    char err[128];
    uint64_t bytes, counts[1000] = { 0 }, max = 0;
    assert_int_equal(bench_set_option(&job, "random_distribution", "zipf:1.2",
                                      err, sizeof(err)), 0);
    assert_int_equal(picker_init(&p, &job, 1000, seeds_for(3)), 0);
    for (int i = 0; i < 100000; i++) {
        uint64_t b = picker_block(&p, &bytes);
        assert_true(b < 1000);
        counts[b]++;
    }
    for (int i = 0; i < 1000; i++) {
        max = counts[i] > max ? counts[i] : max;
    }
    assert_true(max > 100000 / 10);     /* uniform would be ~100 */
    picker_free(&p);
}

static void test_directions(void **state)
{
    struct job job = make_job(RW_RANDRW);
    struct picker p;
    int reads = 0;

    job.rwmixread = 70;
    assert_int_equal(picker_init(&p, &job, 100, seeds_for(5)), 0);
    for (int i = 0; i < 100000; i++) {
        int d = picker_direction(&p);
        assert_true(d == 0 || d == 1);
        reads += d == 0;
    }
    assert_true(abs(reads - 70000) < 1000);
    picker_free(&p);
    job = make_job(RW_TRIM);
    assert_int_equal(picker_init(&p, &job, 100, seeds_for(5)), 0);
    assert_int_equal(picker_direction(&p), 2);
    picker_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_map_visits_each_block_once),
        cmocka_unit_test(test_uniform_without_map),
        cmocka_unit_test(test_no_seed_stops_the_generator),
        cmocka_unit_test(test_blocks_as_fio_draws_them),
        cmocka_unit_test(test_blockmap_as_a_flag_array),
        cmocka_unit_test(test_frand_streams),
        cmocka_unit_test(test_lfsr_visits_each_once),
        cmocka_unit_test(test_sequential_wraps_and_clamps),
        cmocka_unit_test(test_sequential_offset_modifier),
        cmocka_unit_test(test_random_offset_modifier),
        cmocka_unit_test(test_bssplit_proportions),
        cmocka_unit_test(test_sizes_per_direction),
        cmocka_unit_test(test_random_map_with_varying_sizes),
        cmocka_unit_test(test_zipf_skew),
        cmocka_unit_test(test_directions),
    };

    return cmocka_run_group_tests_name("bench-pick", tests, NULL, NULL);
}
