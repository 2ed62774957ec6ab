/*
 * fio's flow control (flow=, flow_id=): jobs that share a flow id keep
 * their numbers of I/Os in proportion to their weights.  A job may issue
 * while its share of the flow's I/Os is at most its share of the flow's
 * weight; jobs join when they start and leave, their I/Os and weight
 * taken out, when they end.
 */
#ifndef COBLK_BENCH_FLOW_H
#define COBLK_BENCH_FLOW_H

#include <stdbool.h>
#include <stdint.h>

#define FLOW_MAX_WEIGHT 1000        /* fio's bound */

struct flow;

/* The flow `id`, made on first use, with weight added; NULL: no memory. */
struct flow *flow_join(unsigned id, unsigned weight);
/* Takes a job's I/Os (its *count) and weight out, and frees the flow
 * when it was the last job in it. */
void flow_leave(struct flow *f, uint64_t count, unsigned weight);
/* Whether a job of this weight, with *count I/Os so far, may issue one
 * more now; if so, counts it (in *count and the flow). */
bool flow_may_issue(struct flow *f, uint64_t *count, unsigned weight);

#endif
