/*
 * Telling AddressSanitizer, ThreadSanitizer and valgrind about coroutine
 * stacks.  Without this ASan reports false stack-buffer-overflows after a
 * switch, TSan loses track of which "thread" runs, and valgrind takes a
 * switch for a huge stack frame.  Every helper is empty in a plain build.
 */
#ifndef COBLK_CO_SANITIZER_H
#define COBLK_CO_SANITIZER_H

#include <pthread.h>

#ifndef COBLK_COROUTINE_INT_H
#error "include coroutine-int.h, which includes this file"
#endif

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define CO_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#define CO_TSAN 1
#endif

/* Call right before switching stacks to `to`.  fake_stack is where ASan
 * parks the current fake stack; NULL when the current coroutine is
 * terminating and its fake stack can go. */
static inline void san_switch_start(coblk_co *to, void **fake_stack)
{
#ifdef CO_ASAN
    __sanitizer_start_switch_fiber(fake_stack, to->stack.base, to->stack.size);
#endif
#ifdef CO_TSAN
    __tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
    (void)to;
    (void)fake_stack;
}

/* Call right after arriving on a stack, with what san_switch_start stored
 * there when this stack was left (NULL on first arrival).  Fills in the
 * stack we came from, when the caller wants it. */
static inline void san_switch_finish(void *fake_stack, const void **from_base,
                                     size_t *from_size)
{
#ifdef CO_ASAN
    __sanitizer_finish_switch_fiber(fake_stack, from_base, from_size);
#endif
    (void)fake_stack;
    (void)from_base;
    (void)from_size;
}

static inline void san_fiber_create(coblk_co *co)
{
#ifdef CO_TSAN
    co->tsan_fiber = __tsan_create_fiber(0);
#endif
    (void)co;
}

static inline void san_fiber_destroy(coblk_co *co)
{
#ifdef CO_TSAN
    __tsan_destroy_fiber(co->tsan_fiber);
#endif
    (void)co;
}

static inline void *san_current_fiber(void)
{
#ifdef CO_TSAN
    return __tsan_get_current_fiber();
#else
    return NULL;
#endif
}

/* The leader stands for the thread's own stack. */
static inline void san_leader_init(coblk_co *leader)
{
#ifdef CO_TSAN
    leader->tsan_fiber = __tsan_get_current_fiber();
#endif
#ifdef CO_ASAN
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        pthread_attr_getstack(&attr, &leader->stack.base, &leader->stack.size);
        pthread_attr_destroy(&attr);
    }
#endif
    (void)leader;
}

#endif /* COBLK_CO_SANITIZER_H */
