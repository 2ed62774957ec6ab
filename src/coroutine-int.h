/*
 * Coroutine internals shared by the core (coroutine.c), the pool
 * (co-pool.c), the stacks (co-stack.c), the two switch backends and the
 * event loop.  Not installed: users see include/coblk/coroutine.h only.
 */
#ifndef COBLK_COROUTINE_INT_H
#define COBLK_COROUTINE_INT_H

#include <setjmp.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include "coblk/coroutine.h"

/* What a switch tells the coroutine switched to. */
typedef enum {
    CO_ACTION_ENTER = 1,
    CO_ACTION_YIELD = 2,
    CO_ACTION_TERMINATE = 3,
} co_action;

typedef struct co_stack {
    void *guard;        /* lowest page: PROT_NONE, overflow faults here */
    void *base;         /* lowest usable byte */
    size_t size;        /* usable bytes below the coblk_co at the top */
    size_t map_size;    /* the whole mapping, guard included */
    unsigned valgrind_id;
} co_stack;

/* The asm backend's saved state (co-switch-asm.h); offsets are used there. */
typedef struct co_regs {
    void *sp;
    void *ip;               /* where to resume */
    void *bp;               /* the frame pointer cannot be a clobber */
    uint32_t mxcsr;
    uint16_t fpu_cw;
} co_regs;

/* An intrusive FIFO of coroutines linked through queue_next. */
typedef struct co_fifo {
    coblk_co *head;
    coblk_co **tail;
} co_fifo;

struct coblk_co {
    /* Hot: an enter and the asm switch read only this first cache line,
     * so waking a coroutine whose line went cold costs one miss, not
     * three. */
    co_regs asm_regs;           /* asm backend */
    coblk_co *caller;           /* who entered us; non-NULL while running */
    /* The event loop context it last ran in: inherited from whoever
     * entered it (a thread's leader holds the thread's context). */
    void *_Atomic aio;
    /* The function that scheduled this coroutine (event loop), to name the
     * culprit when it is entered or scheduled a second time. */
    const char *_Atomic scheduled;
    coblk_co_fn *entry;         /* NULL while idle in the pool */

    /* The second line: what a coroutine's life from the pool and back
     * touches besides the first (taking it, entering it, its first switch
     * out, its termination). */
    /* The current-coroutine slot of the thread it runs on, NULL once it has
     * switched out: a coroutine scheduled from another thread just before
     * it yields is entered only after the yield is complete. */
    coblk_co **_Atomic running_on;
    co_fifo wakeup;             /* to run after we yield or terminate */
    void *opaque;
    coblk_co *pool_next;        /* link in a pool batch */
    coblk_co *batch_next;       /* link between pool batches */
    size_t stack_asked;         /* the stack size its creator asked for */

    coblk_co *queue_next;       /* link in a wakeup list or a CoQueue */
    coblk_co *sched_next;       /* link in an event loop's scheduled list */
    void *scheduled_from;       /* return address in who scheduled it */
    co_stack stack;
    void *tsan_fiber;
    sigjmp_buf env;             /* ucontext backend */
};

_Static_assert(offsetof(struct coblk_co, running_on) == 64 &&
                   offsetof(struct coblk_co, stack_asked) + sizeof(size_t) <=
                       128,
               "a pooled coroutine's life touches two cache lines");

/* ---- core (coroutine.c) ------------------------------------------------ */

/* Prints "coblk: " and the message, and aborts: for misuse that would
 * otherwise corrupt a stack or lose a wake-up. */
__attribute__((noreturn, format(printf, 1, 2), cold))
void co_die(const char *fmt, ...);

/* Runs co->entry and terminates, in a loop: a pooled coroutine is reused
 * from the top of this loop.  Called by the backends on a fresh stack. */
__attribute__((noreturn)) void co_trampoline(coblk_co *co);

/* Frees a coroutine and its stack (the pool calls it when full). */
void co_destroy(coblk_co *co);

/* Queues co to run after the current coroutine yields or terminates. */
void co_wakeup_push(coblk_co *self, coblk_co *co);

/* Sets the event loop context of this thread's own stack, inherited by the
 * coroutines it enters. */
void co_set_thread_aio(void *aio);

/* Waits until co, if running on another thread, has switched out. */
void co_wait_switched_out(coblk_co *co);

/* Live coroutines (idle in a pool or not), for tests. */
unsigned co_live_count(void);

/* ---- stacks (co-stack.c) ------------------------------------------------- */

/* Maps size bytes of stack (rounded up to pages) with a guard page below and
 * room for a coblk_co at the top; returns that coblk_co, zeroed except for
 * its stack, or NULL with errno set. */
coblk_co *co_stack_new(size_t size);
void co_stack_free(coblk_co *co);

/* ---- pool (co-pool.c) ---------------------------------------------------- */

/* An idle coroutine with a stack of stack_size bytes, or NULL. */
coblk_co *co_pool_get(size_t stack_size);
/* Takes a terminated coroutine; frees it if the pool is full. */
void co_pool_put(coblk_co *co);

typedef struct co_pool_stats {
    unsigned local_idle;    /* in this thread's pool */
    unsigned shared_idle;   /* in the shared pool */
    unsigned shared_max;    /* bound of the shared pool */
    unsigned reserved;      /* by coblk_co_pool_reserve() */
    unsigned reserve_max;   /* the most that may be */
} co_pool_stats;
void co_pool_get_stats(co_pool_stats *stats);

#define CO_POOL_BATCH 64u
#define CO_POOL_LOCAL_BATCHES 3u   /* per thread: 3 batches, 192 idle */
#define CO_POOL_SHARED_DEFAULT 1024u

/* ---- switch backends (co-switch-*.c) -------------------------------------- */

/* Makes the first switch to co run co_trampoline(co) on co's stack. */
int co_backend_prepare(coblk_co *co);

/* Saves the running context in from, resumes to; returns the action of
 * whoever switches back to from.  Calls san_switch_start(to, fake_stack)
 * right before it leaves the stack (ThreadSanitizer wants a setjmp on the
 * fiber it later longjmps from).  coroutine.c is compiled once per backend,
 * so the asm backend's switch can be inline. */
#include "co-sanitizer.h"
#ifdef CO_SWITCH_ASM
#include "co-switch-asm.h"
#else
co_action co_backend_switch(coblk_co *from, coblk_co *to, co_action action,
                            void **fake_stack);
#endif

/* A hint to the CPU inside a spin-wait loop. */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

/* ---- coroutine-safe thread-locals ------------------------------------------
 * A coroutine can yield on one thread and resume on another, but the
 * compiler assumes a function never changes threads and may keep a
 * thread-local's address in a register across the switch.  Access such
 * variables only through var_ptr(), which computes the address afresh on
 * every call: on x86-64 in an asm statement the compiler can neither hoist
 * nor merge (two instructions), elsewhere out of line. */
#if defined(__x86_64__)
#define CO_TLS(type, var)                                                   \
    static __thread type co_tls_##var                                      \
        __attribute__((used, tls_model("initial-exec")));                   \
    static inline __attribute__((always_inline, unused)) type *var##_ptr(  \
        void)                                                               \
    {                                                                       \
        type *p;                                                            \
        __asm__ volatile("movq %%fs:0, %0\n\t"                               \
                         "addq co_tls_" #var "@gottpoff(%%rip), %0"         \
                         : "=r"(p));                                        \
        return p;                                                           \
    }
#else
#define CO_TLS(type, var)                                                   \
    static __thread type co_tls_##var                                      \
        __attribute__((tls_model("initial-exec")));                         \
    static __attribute__((noinline, unused)) type *var##_ptr(void)          \
    {                                                                       \
        type *p = &co_tls_##var;                                            \
        __asm__ volatile("" : "+r"(p));                                     \
        return p;                                                           \
    }
#endif

/* ---- the switch, inline for the backends that allow it -------------------- */

/* This thread's current-coroutine slot: the running coroutine, or the
 * thread's leader when none runs (NULL before the thread's first enter).
 * A coroutine is running exactly while its caller is set; the leader never
 * has one.  Defined in coroutine.c, read everywhere (see CO_TLS). */
#if defined(__x86_64__)
extern __thread coblk_co *co_tls_current
    __attribute__((tls_model("initial-exec"), visibility("hidden")));

static inline __attribute__((always_inline)) coblk_co **co_current_slot(void)
{
    coblk_co **p;
    __asm__ volatile("movq %%fs:0, %0\n\t"
                     "addq co_tls_current@gottpoff(%%rip), %0"
                     : "=r"(p));
    return p;
}
#else
coblk_co **co_current_slot(void);
#endif

/* The running coroutine, or NULL: coblk_co_self(), inline. */
static inline __attribute__((always_inline)) coblk_co *co_self_inline(void)
{
    coblk_co *cur = *co_current_slot();
    return cur && cur->caller ? cur : NULL;
}
__attribute__((noreturn, cold)) void co_die_yield_outside(void);

/* Switches from the running coroutine to `to`.  `current` is this thread's
 * current-coroutine slot, looked up by the caller before the switch: after
 * it the caller may be on another thread, and must look it up again. */
static inline __attribute__((always_inline)) co_action
co_switch(coblk_co **current, coblk_co *from, coblk_co *to, co_action action)
{
    void *fake_stack = NULL;

    *current = to;
    co_action ret = co_backend_switch(
        from, to, action,
        action == CO_ACTION_TERMINATE ? NULL : &fake_stack);
    san_switch_finish(fake_stack, NULL, NULL);
    return ret;
}

/* coblk_co_yield(), inline. */
static inline __attribute__((always_inline)) void co_yield_switch(void)
{
    coblk_co **current = co_current_slot();
    coblk_co *self = *current;
    if (__builtin_expect(!self || !self->caller, 0)) {
        co_die_yield_outside();
    }
    coblk_co *to = self->caller;
    self->caller = NULL;
    co_switch(current, self, to, CO_ACTION_YIELD);
}

/* ---- entering, inline for the loops that enter one coroutine after another */

/* The rare parts of an enter (coroutine.c). */
coblk_co *co_leader_init(coblk_co **current);
__attribute__((noreturn, cold)) void co_die_not_enterable(const coblk_co *co);
/* Runs the coroutines woken by one that yielded or terminated.  Those woken
 * meanwhile go first, depth-first, as in the seed's aio_co_enter. */
__attribute__((noinline)) void co_run_woken(coblk_co **current,
                                            coblk_co *from, co_fifo pending);

/* Runs `to` until it yields or terminates; returns the coroutines it woke
 * meanwhile, in order. */
static inline __attribute__((always_inline)) co_fifo
co_run_one(coblk_co **current, coblk_co *from, coblk_co *to)
{
    if (__builtin_expect(atomic_load_explicit(&to->scheduled,
                                              memory_order_relaxed) ||
                         to->caller || !to->entry, 0)) {
        co_die_not_enterable(to);
    }
    to->caller = from;
    atomic_store_explicit(&to->aio, atomic_load_explicit(
                              &from->aio, memory_order_relaxed),
                          memory_order_relaxed);
    atomic_store_explicit(&to->running_on, current, memory_order_relaxed);
    co_action action = co_switch(current, from, to, CO_ACTION_ENTER);

    /* Take its wakeup list before publishing that it switched out: from
     * then on another thread may enter it, and it may wake others. */
    co_fifo woken = to->wakeup;
    if (woken.head) {
        to->wakeup.head = NULL;
        to->wakeup.tail = &to->wakeup.head;
    }
    atomic_store_explicit(&to->running_on, NULL, memory_order_release);
    if (action == CO_ACTION_TERMINATE) {
        co_pool_put(to);
    }
    return woken;
}

/* coblk_co_enter(), inline.  Where a loop enters coroutine after coroutine
 * (completions, submissions), this spares the return after each switch
 * back, which mispredicts: the coroutine's own returns took the
 * return-stack entries of its enterer's calls. */
static inline __attribute__((always_inline)) void co_enter_inline(coblk_co *co)
{
    /* The enterer always resumes on this thread: only `co` switches back
     * to it, and `co` runs here. */
    coblk_co **current = co_current_slot();
    coblk_co *from = *current ? *current : co_leader_init(current);

    co_fifo woken = co_run_one(current, from, co);
    if (__builtin_expect(woken.head != NULL, 0)) {
        co_run_woken(current, from, woken);
    }
}

/* coroutine_fn: yields, for coblk's own code on its hot paths.  With the
 * asm backend the switch is inline, so the coroutine resumes without a
 * return: a return after a switch is predicted from the other stack's
 * calls and mispredicts, which costs more than the rest of the switch. */
static inline void co_yield_inline(void)
{
#ifdef CO_SWITCH_ASM
    co_yield_switch();
#else
    coblk_co_yield();
#endif
}

#endif /* COBLK_COROUTINE_INT_H */
