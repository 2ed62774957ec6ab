/*
 * The asm switch backend for x86-64 (System V ABI).
 *
 * A switch saves only what the ABI makes callee-saved: rbx, rbp, r12-r15,
 * the stack pointer, and the MXCSR and x87 control words.  Everything else
 * the compiler already assumes clobbered across the call.  No signal mask,
 * no pointer mangling, no system call: a switch is a dozen instructions.
 */
#include "config.h"

#include <stdint.h>

#include "coroutine-int.h"

/* Saves the callee-saved state on the current stack, stores the stack
 * pointer in *save_sp, loads new_sp, restores what was saved there, and
 * returns `arg` (in rax) to whoever is resumed. */
uintptr_t co_asm_swap(void **save_sp, void *new_sp, uintptr_t arg);

__asm__(
    ".text\n"
    ".p2align 4\n"
    ".globl co_asm_swap\n"
    ".hidden co_asm_swap\n"
    ".type co_asm_swap, @function\n"
    "co_asm_swap:\n"
    "    .cfi_startproc\n"
    "    pushq %rbp\n"
    "    pushq %rbx\n"
    "    pushq %r12\n"
    "    pushq %r13\n"
    "    pushq %r14\n"
    "    pushq %r15\n"
    "    subq $8, %rsp\n"
    "    stmxcsr (%rsp)\n"
    "    fnstcw 4(%rsp)\n"
    "    movq %rsp, (%rdi)\n"
    "    movq %rsi, %rsp\n"
    "    ldmxcsr (%rsp)\n"
    "    fldcw 4(%rsp)\n"
    "    addq $8, %rsp\n"
    "    popq %r15\n"
    "    popq %r14\n"
    "    popq %r13\n"
    "    popq %r12\n"
    "    popq %rbx\n"
    "    popq %rbp\n"
    "    movq %rdx, %rax\n"
    "    ret\n"
    "    .cfi_endproc\n"
    ".size co_asm_swap, .-co_asm_swap\n"
    "\n"
    /* A fresh stack's first "return" lands here with the coroutine in r12
     * and rsp 16-byte aligned, as a call site needs. */
    ".p2align 4\n"
    ".type co_asm_start, @function\n"
    "co_asm_start:\n"
    "    .cfi_startproc\n"
    "    .cfi_undefined rip\n"
    "    movq %r12, %rdi\n"
    "    call co_trampoline\n"
    "    ud2\n"
    "    .cfi_endproc\n"
    ".size co_asm_start, .-co_asm_start\n");

void co_asm_start(void);

/* The frame co_asm_swap pops on the first switch to a fresh stack, lowest
 * address first. */
struct start_frame {
    uint32_t mxcsr;
    uint16_t fpu_cw;
    uint16_t pad;
    uint64_t r15, r14, r13, r12, rbx, rbp;
    uint64_t ret;
};

int co_backend_prepare(coblk_co *co)
{
    uintptr_t top = (uintptr_t)co->stack.base + co->stack.size;
    /* After `ret` pops start_frame, rsp = top - 16: 16-byte aligned. */
    struct start_frame *frame =
        (struct start_frame *)((top & ~(uintptr_t)15) - 16 -
                               sizeof(struct start_frame));

    *frame = (struct start_frame){
        .r12 = (uintptr_t)co,
        .ret = (uintptr_t)co_asm_start,
    };
    /* Start with the creator's floating-point modes, as a thread would. */
    __asm__ volatile("stmxcsr %0" : "=m"(frame->mxcsr));
    __asm__ volatile("fnstcw %0" : "=m"(frame->fpu_cw));
    co->regs.sp = frame;
    return 0;
}

co_action co_backend_switch(coblk_co *from, coblk_co *to, co_action action)
{
    return (co_action)co_asm_swap(&from->regs.sp, to->regs.sp,
                                  (uintptr_t)action);
}
