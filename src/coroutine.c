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

#include "co-sanitizer.h"
#include "coroutine-int.h"

#define STACK_MIN (16u * 1024u)
#define STACK_MAX (64u * 1024u * 1024u)

/* The running coroutine, or this thread's leader when none runs (or NULL
 * before the thread's first enter).  A coroutine is running exactly while
 * its caller is set; the leader never has one. */
CO_TLS(coblk_co *, current)
/* Stands for the thread's own stack when a coroutine switches back to it. */
CO_TLS(coblk_co, leader)

static atomic_uint live_count;
static atomic_size_t stack_size = COBLK_CO_STACK_DEFAULT;

__attribute__((noreturn, format(printf, 1, 2)))
static void co_die(const char *fmt, ...)
{
    va_list ap;

    fputs("coblk: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

/* Switches from the running coroutine to `to`.  `current` is this thread's
 * current-coroutine slot, looked up by the caller before the switch: after
 * it the caller may be on another thread, and must look it up again. */
static co_action co_switch(coblk_co **current, coblk_co *from, coblk_co *to,
                           co_action action)
{
    void *fake_stack = NULL;

    *current = to;
    san_switch_start(to, action == CO_ACTION_TERMINATE ? NULL : &fake_stack);
    co_action ret = co_backend_switch(from, to, action);
    san_switch_finish(fake_stack, NULL, NULL);
    return ret;
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
        co_switch(current_ptr(), co, to, CO_ACTION_TERMINATE);
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
static coblk_co *leader_init(coblk_co **current)
{
    coblk_co *leader = leader_ptr();

    san_leader_init(leader);
    *current = leader;
    return leader;
}

__attribute__((noreturn, noinline, cold))
static void die_not_enterable(const coblk_co *co)
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

static void check_enterable(const coblk_co *co)
{
    if (__builtin_expect(atomic_load_explicit(&co->scheduled,
                                              memory_order_relaxed) ||
                         co->caller || !co->entry, 0)) {
        die_not_enterable(co);
    }
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
    front->head = NULL;
    front->tail = &front->head;
}

void coblk_co_enter(coblk_co *co)
{
    /* The enterer always resumes on this thread: only `to` switches back
     * to it, and `to` runs here. */
    coblk_co **current = current_ptr();
    coblk_co *from = *current ? *current : leader_init(current);
    co_fifo pending = { .head = co, .tail = &co->queue_next };

    co->queue_next = NULL;
    while (pending.head) {
        coblk_co *to = pending.head;
        pending.head = to->queue_next;
        if (!pending.head) {
            pending.tail = &pending.head;
        }

        check_enterable(to);
        to->caller = from;
        co_action action = co_switch(current, from, to, CO_ACTION_ENTER);

        /* Coroutines woken while `to` ran go first, depth-first, as in the
         * seed's aio_co_enter. */
        fifo_prepend(&pending, &to->wakeup);
        if (action == CO_ACTION_TERMINATE) {
            co_pool_put(to);
        }
    }
}

void co_wakeup_push(coblk_co *self, coblk_co *co)
{
    co->queue_next = NULL;
    *self->wakeup.tail = co;
    self->wakeup.tail = &co->queue_next;
}

void coroutine_fn coblk_co_yield(void)
{
    coblk_co **current = current_ptr();
    coblk_co *self = *current;
    if (!self || !self->caller) {
        co_die("coblk_co_yield() called outside a coroutine");
    }
    coblk_co *to = self->caller;
    self->caller = NULL;
    co_switch(current, self, to, CO_ACTION_YIELD);
}

coblk_co *coblk_co_self(void)
{
    coblk_co *cur = *current_ptr();
    return cur && cur->caller ? cur : NULL;
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
