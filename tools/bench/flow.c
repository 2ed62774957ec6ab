/*
 * fio's flow control: a list of flows (few: one a flow id), their counts
 * and weights updated atomically, the list under a lock.
 */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "flow.h"

struct flow {
    struct flow *next;
    unsigned id;
    unsigned refs;                      /* under flows_lock */
    /* As fio, the count starts at 1: a first job's share is then 0. */
    _Atomic uint64_t count;
    _Atomic unsigned weight;
};

static pthread_mutex_t flows_lock = PTHREAD_MUTEX_INITIALIZER;
static struct flow *flows;

struct flow *flow_join(unsigned id, unsigned weight)
{
    pthread_mutex_lock(&flows_lock);
    struct flow *f = flows;
    while (f && f->id != id) {
        f = f->next;
    }
    if (!f && (f = calloc(1, sizeof(*f)))) {
        f->id = id;
        atomic_init(&f->count, 1);
        f->next = flows;
        flows = f;
    }
    if (f) {
        f->refs++;
        atomic_fetch_add(&f->weight, weight);
    }
    pthread_mutex_unlock(&flows_lock);
    return f;
}

void flow_leave(struct flow *f, uint64_t count, unsigned weight)
{
    pthread_mutex_lock(&flows_lock);
    atomic_fetch_sub(&f->count, count);
    atomic_fetch_sub(&f->weight, weight);
    if (!--f->refs) {
        struct flow **link = &flows;
        while (*link != f) {
            link = &(*link)->next;
        }
        *link = f->next;
        free(f);
    }
    pthread_mutex_unlock(&flows_lock);
}

bool flow_may_issue(struct flow *f, uint64_t *count, unsigned weight)
{
    double share = (double)*count /
                   (double)atomic_load_explicit(&f->count,
                                                memory_order_relaxed);
    double due = (double)weight /
                 (double)atomic_load_explicit(&f->weight,
                                              memory_order_relaxed);

    if (share > due) {
        return false;
    }
    atomic_fetch_add_explicit(&f->count, 1, memory_order_relaxed);
    (*count)++;
    return true;
}
