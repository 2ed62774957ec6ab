/*
 * latency_target's search (lattarget.c), against a modelled device whose
 * latency grows with the depth: the depth it settles at, the steps it
 * takes there, the windows it judges, its end.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "bench/lattarget.h"

#define WINDOW 1000000ull       /* 1 ms */

/* A device serving depth d in d * 100 us: 1000 I/Os a window, all over
 * the target above `fits`, none at or below.  Runs windows until the
 * search ends or `windows` pass; records each depth tried. */
struct model {
    unsigned fits;
    unsigned depths[64], nr;
    enum lat_action last;
    unsigned restarts;
};

static void run_windows(struct lat_target *t, struct model *m,
                        unsigned windows)
{
    uint64_t now = 0, ios = 0;

    for (unsigned w = 0; w < windows; w++) {
        m->depths[m->nr++] = t->depth;
        ios += 1000;
        now += WINDOW;
        enum lat_action a = LAT_GO_ON;
        if (t->depth > m->fits) {
            a = lat_target_missed(t, 1000, now, ios);
        }
        if (a == LAT_GO_ON) {
            a = lat_target_check(t, now, ios);
        }
        m->last = a;
        m->restarts += a == LAT_RESTART_STATS;
        if (a == LAT_DONE || a == LAT_FAILED) {
            return;
        }
    }
}

/* Doubling to the first failure (8), bisecting down between the depths
 * that passed and failed, then a last window at 5, the deepest within. */
static void test_settles_at_the_deepest_depth_within(void **state)
{
    struct lat_target t;
    struct model m = { .fits = 5 };
    static const unsigned want[] = { 1, 2, 4, 8, 6, 5, 5 };

    lat_target_init(&t, 450000, WINDOW, 99.0, false, 64, 0, 0);
    run_windows(&t, &m, 40);
    assert_int_equal(m.last, LAT_DONE);
    assert_int_equal(m.restarts, 1);
    assert_int_equal(t.depth, 5);
    assert_int_equal(m.nr, sizeof(want) / sizeof(want[0]));
    for (unsigned i = 0; i < m.nr; i++) {
        assert_int_equal(m.depths[i], want[i]);
    }
}

/* A target every depth meets: the depth stops at iodepth. */
static void test_never_deeper_than_iodepth(void **state)
{
    struct lat_target t;
    struct model m = { .fits = 1000 };

    lat_target_init(&t, 450000, WINDOW, 100.0, false, 12, 0, 0);
    run_windows(&t, &m, 40);
    assert_int_equal(m.last, LAT_DONE);
    assert_int_equal(t.depth, 12);
    assert_int_equal(m.depths[m.nr - 1], 12);
}

/* percentile 100: one I/O over the target fails the depth at once,
 * without waiting for the window; at depth 1 the search has failed. */
static void test_any_miss_fails_at_100_percent(void **state)
{
    struct lat_target t;

    lat_target_init(&t, 1000, WINDOW, 100.0, false, 32, 0, 0);
    assert_int_equal(lat_target_check(&t, WINDOW, 10), LAT_GO_ON);
    assert_int_equal(t.depth, 2);
    assert_int_equal(lat_target_missed(&t, 1, WINDOW + 5, 11), LAT_QUIESCE);
    assert_int_equal(t.depth, 1);
    assert_int_equal(lat_target_missed(&t, 1, WINDOW + 9, 12), LAT_FAILED);
}

/* Below 100 a window passes with that share within, and a window
 * without any I/O fails. */
static void test_percentile_and_empty_windows(void **state)
{
    struct lat_target t;

    lat_target_init(&t, 1000, WINDOW, 90.0, false, 32, 0, 0);
    assert_int_equal(lat_target_missed(&t, 10, 100, 50), LAT_GO_ON);
    assert_int_equal(lat_target_check(&t, WINDOW - 1, 100), LAT_GO_ON);
    assert_int_equal(lat_target_check(&t, WINDOW, 100), LAT_GO_ON);
    assert_int_equal(t.depth, 2);       /* 90 of 100 within: passed */
    assert_int_equal(lat_target_missed(&t, 11, WINDOW + 1, 150),
                     LAT_GO_ON);
    assert_int_equal(lat_target_check(&t, 2 * WINDOW, 200), LAT_QUIESCE);
    assert_int_equal(t.depth, 1);       /* 89 of 100: failed */
    assert_int_equal(lat_target_check(&t, 3 * WINDOW, 200), LAT_GO_ON);
    assert_int_equal(t.depth, 1);       /* empty, but no lower */
}

/* latency_run: the search never ends; it keeps following the device. */
static void test_latency_run_keeps_adjusting(void **state)
{
    struct lat_target t;
    struct model m = { .fits = 5 };

    lat_target_init(&t, 450000, WINDOW, 99.0, true, 64, 0, 0);
    run_windows(&t, &m, 60);
    assert_int_equal(m.nr, 60);
    assert_int_equal(m.restarts, 0);
    for (unsigned i = 20; i < m.nr; i++) {
        assert_true(m.depths[i] >= 4 && m.depths[i] <= 6);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_settles_at_the_deepest_depth_within),
        cmocka_unit_test(test_never_deeper_than_iodepth),
        cmocka_unit_test(test_any_miss_fails_at_100_percent),
        cmocka_unit_test(test_percentile_and_empty_windows),
        cmocka_unit_test(test_latency_run_keeps_adjusting),
    };

    return cmocka_run_group_tests_name("bench-lattarget", tests, NULL, NULL);
}
