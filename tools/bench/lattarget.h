/*
 * fio's latency_target: the deepest queue at which the job's I/O still
 * finishes within the target, found while it runs.
 *
 * The depth starts at 1.  Every latency_window, if latency_percentile of
 * the window's I/Os were within latency_target, the depth goes up
 * (doubling until a depth has failed, then half way to the lowest failed
 * one), else half way down to the highest that passed.  Where a pass
 * leaves the depth as it was (it can go no higher), that depth is the
 * answer: the statistics start afresh, and after one more window at it
 * the job ends (latency_run=1: it goes on adjusting until its size or
 * runtime ends it).  With a percentile of
 * 100 any one I/O over the target fails the depth at once; at depth 1
 * that is the job's error.  A pure state machine; run.c applies it.
 */
#ifndef COBLK_BENCH_LATTARGET_H
#define COBLK_BENCH_LATTARGET_H

#include <stdbool.h>
#include <stdint.h>

struct lat_target {
    uint64_t target_ns, window_ns;
    double percentile;
    bool keep_adjusting;        /* latency_run */
    unsigned depth, low, high, max;
    unsigned stable;            /* passes just below high, in a row */
    bool final_window;
    uint64_t window_start_ns, window_ios, window_missed;
};

/* What the runner must do after a step. */
enum lat_action {
    LAT_GO_ON,
    LAT_QUIESCE,                /* depth lowered: let what is in flight end */
    LAT_RESTART_STATS,          /* the depth is found: its window begins */
    LAT_DONE,                   /* the found depth's window is over */
    LAT_FAILED,                 /* over the target at depth 1 */
};

void lat_target_init(struct lat_target *t, uint64_t target_ns,
                     uint64_t window_ns, double percentile,
                     bool keep_adjusting, unsigned max_depth, uint64_t now,
                     uint64_t ios);

/* n I/Os took longer than the target; ios: all completed so far. */
enum lat_action lat_target_missed(struct lat_target *t, unsigned n,
                                  uint64_t now, uint64_t ios);

/* At now, with ios completed so far: judges the window once it is over. */
enum lat_action lat_target_check(struct lat_target *t, uint64_t now,
                                 uint64_t ios);

#endif
