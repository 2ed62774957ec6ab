/*
 * coblk-bench's statistics: histogram percentiles within fio's precision,
 * the bucket layout, fio's depth and batch buckets, sample statistics.
 */
#include "config.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "bench/stats.h"

static void test_buckets_tile_the_line(void **state)
{
    for (unsigned b = 1; b < LAT_BUCKETS; b++) {
        uint64_t low = lat_bucket_low(b), prev = lat_bucket_low(b - 1);
        assert_true(low > prev);
        assert_true(lat_bucket_value(b) >= low);
        if (b + 1 < LAT_BUCKETS) {
            assert_true(lat_bucket_value(b) < lat_bucket_low(b + 1));
        }
    }
}

static void test_percentiles_within_fio_precision(void **state)
{
    struct lat_stats *s = calloc(1, sizeof(*s));
    const uint64_t n = 1000000;

    for (uint64_t v = 1; v <= n; v++) {
        lat_add(s, v * 37);     /* 37 ns to 37 ms, uniform */
    }
    static const double pcts[] = { 1, 10, 50, 90, 99, 99.9, 99.99 };
    for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++) {
        double exact = pcts[i] / 100 * n * 37;
        double got = (double)lat_percentile(s, pcts[i]);
        if (fabs(got - exact) / exact > 0.008) {
            fail_msg("p%g: %.0f, exact %.0f", pcts[i], got, exact);
        }
    }
    assert_int_equal(s->count, n);
    assert_int_equal(s->min_ns, 37);
    assert_int_equal(s->max_ns, n * 37);
    assert_true(fabs(lat_mean(s) - 37.0 * (n + 1) / 2) < 1e-3 * 37 * n);

    /* Small values are exact; huge ones land in the last bucket. */
    struct lat_stats *t = calloc(1, sizeof(*t));
    lat_add_n(t, 42, 3);
    lat_add(t, UINT64_MAX);
    assert_int_equal(t->buckets[42], 3);
    assert_int_equal(t->buckets[LAT_BUCKETS - 1], 1);
    assert_int_equal(lat_percentile(t, 50), 42);
    assert_int_equal(lat_percentile(t, 100), UINT64_MAX);
    free(s);
    free(t);
}

static void test_fio_depth_buckets(void **state)
{
    /* IO depths 1, 2, 4, 8, 16, 32, >=64; batches 0, 4, 8, 16, 32, 64,
     * >=64 (1 to 4 count as 4). */
    static const unsigned depth[][2] = { { 1, 0 }, { 3, 1 }, { 4, 2 },
                                         { 31, 4 }, { 32, 5 }, { 64, 6 },
                                         { 1000, 6 } };
    static const unsigned batch[][2] = { { 0, 0 }, { 1, 1 }, { 4, 1 },
                                         { 5, 2 }, { 32, 4 }, { 64, 5 },
                                         { 65, 6 } };
    for (size_t i = 0; i < sizeof(depth) / sizeof(depth[0]); i++) {
        assert_int_equal(depth_bucket(depth[i][0]), depth[i][1]);
        assert_int_equal(batch_bucket(batch[i][0]), batch[i][1]);
    }
}

static void test_samples_merge(void **state)
{
    struct sample_stats a = { 0 }, b = { 0 };

    sample_add(&a, 2);
    sample_add(&a, 4);
    sample_add(&b, 9);
    sample_merge(&a, &b);
    assert_int_equal(a.count, 3);
    assert_true(a.min == 2 && a.max == 9);
    assert_true(fabs(sample_mean(&a) - 5) < 1e-9);
    assert_true(fabs(sample_stdev(&a) - sqrt(13)) < 1e-9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets_tile_the_line),
        cmocka_unit_test(test_percentiles_within_fio_precision),
        cmocka_unit_test(test_fio_depth_buckets),
        cmocka_unit_test(test_samples_merge),
    };

    return cmocka_run_group_tests_name("bench-stats", tests, NULL, NULL);
}
