/*
 * CoMutex and CoQueue: waiting without blocking the thread.
 *
 * A waiter queues itself and yields; whoever releases the mutex or restarts
 * the queue wakes it with coblk_aio_co_wake(), which hands it to its own
 * thread when it runs elsewhere.  The mutex is handed over to the first
 * waiter rather than released, so waiters get it in FIFO order and a
 * coroutine that unlocks and relocks at once cannot starve them.  A short
 * spinlock guards the mutex's fields: coroutines on several threads may
 * share it.
 */
#include "config.h"

#include "coblk/aio.h"
#include "coblk/co-lock.h"
#include "coroutine-int.h"

__attribute__((noreturn))
static void lock_die(const char *what, const void *lock)
{
    co_die("%s(%p) %s", what, lock,
           coblk_in_coroutine() ? "by a coroutine that does not hold it"
                                : "called outside a coroutine");
}

/* ---- CoQueue ------------------------------------------------------------------ */

void coblk_co_queue_init(coblk_co_queue *q)
{
    q->head = q->tail = NULL;
}

bool coblk_co_queue_empty(const coblk_co_queue *q)
{
    return q->head == NULL;
}

static void queue_push(coblk_co_queue *q, coblk_co *co)
{
    co->queue_next = NULL;
    if (q->tail) {
        q->tail->queue_next = co;
    } else {
        q->head = co;
    }
    q->tail = co;
}

static coblk_co *queue_pop(coblk_co_queue *q)
{
    coblk_co *co = q->head;
    if (co) {
        q->head = co->queue_next;
        if (!q->head) {
            q->tail = NULL;
        }
    }
    return co;
}

void coroutine_fn coblk_co_queue_wait(coblk_co_queue *q, coblk_co_mutex *m)
{
    coblk_co *self = coblk_co_self();
    if (!self) {
        lock_die("coblk_co_queue_wait", q);
    }
    queue_push(q, self);
    if (m) {
        coblk_co_mutex_unlock(m);
    }
    coblk_co_yield();
    if (m) {
        coblk_co_mutex_lock(m);
    }
}

bool coblk_co_queue_next(coblk_co_queue *q)
{
    coblk_co *co = queue_pop(q);
    if (!co) {
        return false;
    }
    coblk_aio_co_wake(co);
    return true;
}

void coblk_co_queue_restart_all(coblk_co_queue *q)
{
    while (coblk_co_queue_next(q)) {
    }
}

/* ---- CoMutex ------------------------------------------------------------------ */

static void spin_lock(int *spin)
{
    while (__atomic_exchange_n(spin, 1, __ATOMIC_ACQUIRE)) {
        while (__atomic_load_n(spin, __ATOMIC_RELAXED)) {
            cpu_relax();
        }
    }
}

static void spin_unlock(int *spin)
{
    __atomic_store_n(spin, 0, __ATOMIC_RELEASE);
}

void coblk_co_mutex_init(coblk_co_mutex *m)
{
    *m = (coblk_co_mutex){ .spin = 0 };
}

void coroutine_fn coblk_co_mutex_lock(coblk_co_mutex *m)
{
    coblk_co *self = coblk_co_self();
    if (!self) {
        lock_die("coblk_co_mutex_lock", m);
    }
    spin_lock(&m->spin);
    if (!m->locked) {
        m->locked = true;
        m->holder = self;
        spin_unlock(&m->spin);
        return;
    }
    queue_push(&m->waiters, self);
    spin_unlock(&m->spin);

    /* The unlocker makes us the holder before waking us; anything else
     * that wakes us is spurious. */
    for (;;) {
        coblk_co_yield();
        spin_lock(&m->spin);
        bool mine = m->holder == self;
        spin_unlock(&m->spin);
        if (mine) {
            return;
        }
    }
}

void coroutine_fn coblk_co_mutex_unlock(coblk_co_mutex *m)
{
    coblk_co *self = coblk_co_self();

    spin_lock(&m->spin);
    if (!self || !m->locked || m->holder != self) {
        spin_unlock(&m->spin);
        lock_die("coblk_co_mutex_unlock", m);
    }
    coblk_co *next = queue_pop(&m->waiters);
    m->holder = next;
    m->locked = next != NULL;
    spin_unlock(&m->spin);
    if (next) {
        coblk_aio_co_wake(next);
    }
}
