/*
 * coblk coroutines: stackful, pooled, cheap to create and switch.
 *
 * A coroutine runs fn(opaque) on its own stack.  coblk_co_enter() runs it
 * until it yields or returns; coblk_co_yield() goes back to whoever entered
 * it.  When fn returns the coroutine terminates and its stack goes back to
 * a pool, so creating the next one costs no system call.
 *
 * Coroutines are not bound to a thread: one created on thread A may be
 * entered (and terminate) on thread B, as long as only one thread touches
 * it at a time.  Code that may resume on another thread after a yield must
 * not keep thread-local values across it (glibc even declares
 * pthread_self() const, so the compiler may reuse its result).
 *
 * Misuse (entering a running or scheduled coroutine, yielding outside a
 * coroutine) is a programming error: it prints a message and aborts, in
 * release builds too, because carrying on would corrupt a stack.
 */
#ifndef COBLK_COROUTINE_H
#define COBLK_COROUTINE_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define COBLK_API __attribute__((visibility("default")))

/* Marks a function that may only be called from coroutine context. */
#define coroutine_fn

typedef struct coblk_co coblk_co;
typedef void coblk_co_fn(void *opaque);

/* Default stack size: 256 KiB of address space, of which only the pages a
 * coroutine touches become memory (see README, "Coroutine stacks"). */
#define COBLK_CO_STACK_DEFAULT (256u * 1024u)

/* Returns a new coroutine that will run fn(opaque) when first entered, or
 * NULL with errno set (ENOMEM, or EINVAL when fn is NULL). */
COBLK_API coblk_co *coblk_co_create(coblk_co_fn *fn, void *opaque);

/* Runs co until it yields or terminates, then runs any coroutines it woke
 * (see the wakeup list in src/coroutine.c).  Aborts if co is running or
 * scheduled. */
COBLK_API void coblk_co_enter(coblk_co *co);

/* Goes back to whoever entered the current coroutine.  Aborts outside a
 * coroutine. */
COBLK_API void coroutine_fn coblk_co_yield(void);

/* The running coroutine, or NULL outside a coroutine. */
COBLK_API coblk_co *coblk_co_self(void);
COBLK_API bool coblk_in_coroutine(void);

/* Lets the pool keep n more idle coroutines, for a user about to run n at a
 * time (a queue of depth n): the pool keeps up to 1024 idle, or what is
 * reserved in all if that is more.  Returns 0, or -E2BIG past
 * (vm.max_map_count - 16384) / 2 reserved in all, 24573 with the kernel's
 * default (each stack is two mappings; the rest stay for the process).
 * Undo with coblk_co_pool_unreserve(). */
COBLK_API int coblk_co_pool_reserve(unsigned n);
COBLK_API void coblk_co_pool_unreserve(unsigned n);

/* Stack size for coroutines created from now on, rounded up to whole pages;
 * 0 restores the default.  Returns 0, or -EINVAL below 16 KiB or above
 * 64 MiB. */
COBLK_API int coblk_co_set_stack_size(size_t bytes);
COBLK_API size_t coblk_co_get_stack_size(void);

#ifdef __cplusplus
}
#endif

#endif /* COBLK_COROUTINE_H */
