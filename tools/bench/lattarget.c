/*
 * fio's latency_target search (lattarget.h).
 */
#include "config.h"

#include "lattarget.h"

static void new_window(struct lat_target *t, uint64_t now, uint64_t ios)
{
    t->window_start_ns = now;
    t->window_ios = ios;
    t->window_missed = 0;
}

void lat_target_init(struct lat_target *t, uint64_t target_ns,
                     uint64_t window_ns, double percentile,
                     bool keep_adjusting, unsigned max_depth, uint64_t now,
                     uint64_t ios)
{
    *t = (struct lat_target){
        .target_ns = target_ns, .window_ns = window_ns,
        .percentile = percentile, .keep_adjusting = keep_adjusting,
        .depth = 1, .low = 1, .high = max_depth, .max = max_depth,
    };
    new_window(t, now, ios);
}

/* Half way down to the highest depth that passed. */
static enum lat_action failed(struct lat_target *t, uint64_t now,
                              uint64_t ios)
{
    new_window(t, now, ios);
    if (t->depth == 1) {
        return LAT_FAILED;
    }
    t->high = t->depth;
    if (t->depth == t->low) {
        t->low--;
    }
    t->depth = (t->depth + t->low) / 2;
    t->stable = 0;
    return LAT_QUIESCE;
}

/* Up: doubling while no depth has failed, else half way to the lowest
 * that did.  Just below it three times in a row, that one is tried
 * again.  Where the depth stays, it is the answer. */
static enum lat_action passed(struct lat_target *t, uint64_t now,
                              uint64_t ios)
{
    unsigned was = t->depth;

    new_window(t, now, ios);
    t->low = t->depth;
    if (t->depth + 1 == t->high && ++t->stable >= 3) {
        t->high++;
        t->stable = 0;
    }
    t->depth = t->high != t->max ? (t->depth + t->high) / 2 : t->depth * 2;
    t->depth = t->depth < t->max ? t->depth : t->max;
    if (t->keep_adjusting || t->depth != was) {
        return LAT_GO_ON;
    }
    if (t->final_window) {
        return LAT_DONE;
    }
    t->final_window = true;
    return LAT_RESTART_STATS;
}

enum lat_action lat_target_missed(struct lat_target *t, unsigned n,
                                  uint64_t now, uint64_t ios)
{
    if (t->percentile >= 100.0) {
        return failed(t, now, ios);
    }
    t->window_missed += n;
    return LAT_GO_ON;
}

enum lat_action lat_target_check(struct lat_target *t, uint64_t now,
                                 uint64_t ios)
{
    if (now - t->window_start_ns < t->window_ns) {
        return LAT_GO_ON;
    }
    uint64_t done = ios - t->window_ios;
    /* No I/O done in a whole window fails it, as in fio. */
    double within = done ? 100.0 * (double)(done - t->window_missed) /
                               (double)done
                         : 0.0;
    if (within >= t->percentile) {
        return passed(t, now, ios);
    }
    enum lat_action a = failed(t, now, ios);
    return a == LAT_FAILED ? LAT_GO_ON : a;     /* depth 1 stays */
}
