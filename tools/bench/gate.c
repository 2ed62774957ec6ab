/*
 * A group's start line (gate.h).
 */
#include "config.h"

#include "gate.h"

void gate_init(struct start_gate *g)
{
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->open, NULL);
    g->expected = 0;
}

void gate_destroy(struct start_gate *g)
{
    pthread_cond_destroy(&g->open);
    pthread_mutex_destroy(&g->lock);
}

void gate_expect(struct start_gate *g, unsigned count)
{
    pthread_mutex_lock(&g->lock);
    g->expected = count;
    pthread_mutex_unlock(&g->lock);
}

void gate_arrive(struct start_gate *g, bool wait)
{
    pthread_mutex_lock(&g->lock);
    if (g->expected > 0 && --g->expected == 0) {
        pthread_cond_broadcast(&g->open);
    }
    while (wait && g->expected > 0) {
        pthread_cond_wait(&g->open, &g->lock);
    }
    pthread_mutex_unlock(&g->lock);
}
