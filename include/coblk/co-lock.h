/*
 * Locks for coroutine code: a waiting coroutine yields instead of blocking
 * its thread.  A coblk_co_mutex may be shared by coroutines on several
 * threads; a coblk_co_queue is protected by the mutex passed to
 * coblk_co_queue_wait() (or used from one thread only).
 */
#ifndef COBLK_CO_LOCK_H
#define COBLK_CO_LOCK_H

#include <stdbool.h>

#include "coblk/coroutine.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A FIFO of waiting coroutines.  Zero-initialised is empty. */
typedef struct coblk_co_queue {
    coblk_co *head;
    coblk_co *tail;
} coblk_co_queue;

/* Zero-initialised is unlocked. */
typedef struct coblk_co_mutex {
    int spin;               /* guards the fields below */
    bool locked;
    coblk_co *holder;
    coblk_co_queue waiters;
} coblk_co_mutex;

COBLK_API void coblk_co_mutex_init(coblk_co_mutex *m);
/* Takes m, yielding while another coroutine holds it; waiters get it in
 * the order they asked. */
COBLK_API void coroutine_fn coblk_co_mutex_lock(coblk_co_mutex *m);
/* Hands m to the first waiter, or releases it.  Aborts if the caller does
 * not hold m. */
COBLK_API void coroutine_fn coblk_co_mutex_unlock(coblk_co_mutex *m);

COBLK_API void coblk_co_queue_init(coblk_co_queue *q);
/* Queues the caller and yields until woken by _next or _restart_all; with
 * m, releases m while waiting and takes it again before returning. */
COBLK_API void coroutine_fn coblk_co_queue_wait(coblk_co_queue *q,
                                                coblk_co_mutex *m);
/* Wakes the first waiter; false if there was none. */
COBLK_API bool coblk_co_queue_next(coblk_co_queue *q);
/* Wakes every waiter, in order. */
COBLK_API void coblk_co_queue_restart_all(coblk_co_queue *q);
COBLK_API bool coblk_co_queue_empty(const coblk_co_queue *q);

#ifdef __cplusplus
}
#endif

#endif /* COBLK_CO_LOCK_H */
