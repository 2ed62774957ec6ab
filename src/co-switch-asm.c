/*
 * The asm switch backend for x86-64: starting a fresh stack.  The switch
 * itself is inline, in co-switch-asm.h.
 */
#include "config.h"

#include <stdint.h>

#include "coroutine-int.h"

/* A fresh stack's first switch jumps here with the coroutine in rdi and
 * rsp 16-byte aligned, as a call needs.  co_trampoline never returns. */
__asm__(
    ".text\n"
    ".p2align 4\n"
    ".type co_asm_start, @function\n"
    "co_asm_start:\n"
    "    .cfi_startproc\n"
    "    .cfi_undefined rip\n"
    "    call co_trampoline\n"
    "    ud2\n"
    "    .cfi_endproc\n"
    ".size co_asm_start, .-co_asm_start\n");

void co_asm_start(void);

int co_backend_prepare(coblk_co *co)
{
    uintptr_t top = (uintptr_t)co->stack.base + co->stack.size;
    co_regs *regs = &co->asm_regs;

    regs->sp = (void *)((top & ~(uintptr_t)15) - 16);
    regs->ip = (void *)co_asm_start;
    regs->bp = NULL;    /* ends the frame chain for debuggers */
    /* Start with the creator's floating-point modes, as a thread would. */
    __asm__ volatile("stmxcsr %0" : "=m"(regs->mxcsr));
    __asm__ volatile("fnstcw %0" : "=m"(regs->fpu_cw));
    return 0;
}
