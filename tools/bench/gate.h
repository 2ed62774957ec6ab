/*
 * A group's start line: its instances set up (device, queue, buffers,
 * random map) and wait there, so that their I/O and clocks start together,
 * as fio starts a reporting group's jobs.  Without it a job whose thread
 * starts late runs on alone at the end, and shared limits (flow=, rate
 * of a group) hold for only part of the run.
 */
#ifndef COBLK_BENCH_GATE_H
#define COBLK_BENCH_GATE_H

#include <pthread.h>
#include <stdbool.h>

struct start_gate {
    pthread_mutex_t lock;
    pthread_cond_t open;
    unsigned expected;          /* instances still to arrive */
};

void gate_init(struct start_gate *g);
void gate_destroy(struct start_gate *g);
/* Expects `count` instances (those that start at once) before opening. */
void gate_expect(struct start_gate *g, unsigned count);
/* Arrives; with `wait`, returns once every expected instance has.  One
 * that failed to set up arrives without waiting, or the others would
 * wait for it for ever. */
void gate_arrive(struct start_gate *g, bool wait);

#endif
