/*
 * The ucontext switch backend: the seed's design, portable to any POSIX
 * system.  makecontext() starts a stack, and sigsetjmp/siglongjmp (with no
 * signal mask, hence no system call) do every switch after that; swapcontext
 * runs once per fresh coroutine, since it saves the signal mask with a system
 * call.
 */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdint.h>
#include <ucontext.h>

#include "coroutine-int.h"

/* makecontext passes only ints: pointers travel in two halves. */
union ptr_halves {
    void *p;
    int i[2];
};

/* What co_backend_prepare() leaves for uc_start() to go back to. */
struct launch {
    sigjmp_buf back;
    void *creator_fiber;        /* ThreadSanitizer's, else NULL */
};

static void uc_start(int co_lo, int co_hi, int launch_lo, int launch_hi)
{
    union ptr_halves co_arg = { .i = { co_lo, co_hi } };
    union ptr_halves launch_arg = { .i = { launch_lo, launch_hi } };
    coblk_co *co = co_arg.p;
    struct launch *launch = launch_arg.p;
    coblk_co creator = { .tsan_fiber = launch->creator_fiber };
    const void *creator_base = NULL;

    san_switch_finish(NULL, &creator_base, &creator.stack.size);
    creator.stack.base = (void *)creator_base;
    if (!sigsetjmp(co->env, 0)) {
        /* Back to co_backend_prepare(); the first enter lands below. */
        san_switch_start(&creator, NULL);
        siglongjmp(launch->back, 1);
    }
    co_trampoline(co);
}

int co_backend_prepare(coblk_co *co)
{
    ucontext_t here, start;
    struct launch launch = { .creator_fiber = san_current_fiber() };
    union ptr_halves co_arg = { .p = co };
    union ptr_halves launch_arg = { .p = &launch };
    void *fake_stack = NULL;

    if (getcontext(&start) < 0) {
        return -errno;
    }
    start.uc_link = &here;
    start.uc_stack.ss_sp = co->stack.base;
    start.uc_stack.ss_size = co->stack.size;
    start.uc_stack.ss_flags = 0;
    makecontext(&start, (void (*)(void))uc_start, 4, co_arg.i[0],
                co_arg.i[1], launch_arg.i[0], launch_arg.i[1]);

    if (!sigsetjmp(launch.back, 0)) {
        san_switch_start(co, &fake_stack);
        swapcontext(&here, &start);
    }
    san_switch_finish(fake_stack, NULL, NULL);
    return 0;
}

/* noinline: sigsetjmp may return on another thread than it was called on,
 * so nothing thread-local may be computed around it in the caller. */
__attribute__((noinline))
co_action co_backend_switch(coblk_co *from, coblk_co *to, co_action action,
                            void **fake_stack)
{
    int ret = sigsetjmp(from->env, 0);
    if (ret == 0) {
        san_switch_start(to, fake_stack);
        siglongjmp(to->env, (int)action);
    }
    return (co_action)ret;
}
