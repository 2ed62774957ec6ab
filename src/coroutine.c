/*
 * The coroutine core: create, enter, yield, terminate, and the wakeup list.
 *
 * It knows nothing of stacks' layout (co-stack.c), of pooling (co-pool.c) or
 * of how registers are switched (co-switch-*.c), and nothing of event loops:
 * the event loop builds aio_co_wake on top of coblk_co_enter() and the
 * wakeup list here.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "coroutine-int.h"

#define STACK_MIN (16u * 1024u)
#define STACK_MAX (64u * 1024u * 1024u)

/* See co_current_slot(). */
__thread coblk_co *co_tls_current
    __attribute__((tls_model("initial-exec"), visibility("hidden")));

#if !defined(__x86_64__)
/* Out of line, so that the slot's address is computed afresh after every
 * switch (see CO_TLS). */
__attribute__((noinline)) coblk_co **co_current_slot(void)
{
    coblk_co **p = &co_tls_current;
    __asm__ volatile("" : "+r"(p));
    return p;
}
#endif
/* Stands for the thread's own stack when a coroutine switches back to it. */
CO_TLS(coblk_co, leader)

static atomic_uint live_count;
static atomic_size_t stack_size = COBLK_CO_STACK_DEFAULT;

void co_die(const char *fmt, ...)
{
    va_list ap;

    fputs("coblk: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

void co_trampoline(coblk_co *co)
{
    san_switch_finish(NULL, NULL, NULL);
    for (;;) {
        co->entry(co->opaque);

        coblk_co *to = co->caller;
        co->caller = NULL;
        co->entry = NULL;
        /* Returns when the pool hands this coroutine out again, maybe to
         * another thread. */
        co_switch(co_current_slot(), co, to, CO_ACTION_TERMINATE);
    }
}

static coblk_co *co_new(size_t size)
{
    coblk_co *co = co_stack_new(size);
    if (!co) {
        return NULL;
    }
    co->wakeup.tail = &co->wakeup.head;
    san_fiber_create(co);
    int ret = co_backend_prepare(co);
    if (ret < 0) {
        san_fiber_destroy(co);
        co_stack_free(co);
        errno = -ret;
        return NULL;
    }
    atomic_fetch_add_explicit(&live_count, 1, memory_order_relaxed);
    return co;
}

void co_destroy(coblk_co *co)
{
    san_fiber_destroy(co);
    co_stack_free(co);
    atomic_fetch_sub_explicit(&live_count, 1, memory_order_relaxed);
}

unsigned co_live_count(void)
{
    return atomic_load_explicit(&live_count, memory_order_relaxed);
}

coblk_co *coblk_co_create(coblk_co_fn *fn, void *opaque)
{
    if (!fn) {
        errno = EINVAL;
        return NULL;
    }
    size_t size = atomic_load_explicit(&stack_size, memory_order_relaxed);
    coblk_co *co = co_pool_get(size);
    if (!co) {
        co = co_new(size);
        if (!co) {
            return NULL;
        }
    }
    co->entry = fn;
    co->opaque = opaque;
    return co;
}

/* The thread's first coroutine switch: from now on the leader stands for
 * the thread's own stack. */
coblk_co *co_leader_init(coblk_co **current)
{
    coblk_co *leader = leader_ptr();

    san_leader_init(leader);
    *current = leader;
    return leader;
}

void co_die_not_enterable(const coblk_co *co)
{
    const char *scheduled = atomic_load(&co->scheduled);
    if (scheduled) {
        co_die("coroutine %p entered while already scheduled in '%s'",
               (void *)co, scheduled);
    }
    if (co->caller) {
        co_die("coroutine %p re-entered recursively", (void *)co);
    }
    co_die("coroutine %p entered after it terminated", (void *)co);
}

static void fifo_prepend(co_fifo *fifo, co_fifo *front)
{
    if (!front->head) {
        return;
    }
    *front->tail = fifo->head;
    if (!fifo->head) {
        fifo->tail = front->tail;
    }
    fifo->head = front->head;
}

/* Runs the coroutines woken by one that yielded or terminated.  Those woken
 * meanwhile go first, depth-first, as in the seed's aio_co_enter. */
void co_run_woken(coblk_co **current, coblk_co *from, co_fifo pending)
{
    while (pending.head) {
        coblk_co *to = pending.head;
        pending.head = to->queue_next;
        if (!pending.head) {
            pending.tail = &pending.head;
        }
        co_fifo woken = co_run_one(current, from, to);
        fifo_prepend(&pending, &woken);
    }
}

void coblk_co_enter(coblk_co *co)
{
    co_enter_inline(co);
}

void co_set_thread_aio(void *aio)
{
    coblk_co **current = co_current_slot();
    coblk_co *leader = *current ? leader_ptr() : co_leader_init(current);

    atomic_store_explicit(&leader->aio, aio, memory_order_relaxed);
}

void co_wait_switched_out(coblk_co *co)
{
    coblk_co **mine = co_current_slot();

    for (;;) {
        coblk_co **on = atomic_load_explicit(&co->running_on,
                                             memory_order_acquire);
        /* Running here is misuse, which check_enterable() reports. */
        if (!on || on == mine) {
            return;
        }
        cpu_relax();
    }
}

void co_wakeup_push(coblk_co *self, coblk_co *co)
{
    co->queue_next = NULL;
    *self->wakeup.tail = co;
    self->wakeup.tail = &co->queue_next;
}

void co_die_yield_outside(void)
{
    co_die("coblk_co_yield() called outside a coroutine");
}

void coroutine_fn coblk_co_yield(void)
{
    co_yield_switch();
}

coblk_co *coblk_co_self(void)
{
    return co_self_inline();
}

bool coblk_in_coroutine(void)
{
    return coblk_co_self() != NULL;
}

int coblk_co_set_stack_size(size_t bytes)
{
    if (bytes == 0) {
        bytes = COBLK_CO_STACK_DEFAULT;
    }
    if (bytes < STACK_MIN || bytes > STACK_MAX) {
        return -EINVAL;
    }
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    bytes = (bytes + page - 1) & ~(page - 1);
    atomic_store_explicit(&stack_size, bytes, memory_order_relaxed);
    return 0;
}

size_t coblk_co_get_stack_size(void)
{
    return atomic_load_explicit(&stack_size, memory_order_relaxed);
}
