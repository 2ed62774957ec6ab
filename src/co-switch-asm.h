/*
 * The asm switch backend for x86-64 (System V ABI), inlined where the
 * switch happens.
 *
 * The switch is an asm statement, not a call: it stores the resume address,
 * stack and frame pointer of the running coroutine, loads those of the next
 * and jumps.  Declaring every other register clobbered makes the compiler
 * save only the callee-saved registers it really uses, as for a call.  And
 * since no call is left unmatched by a return, the CPU's return-stack
 * predictor stays right: a switch through a called function makes every
 * return after it mispredict (measured: 4 mispredicted returns per
 * enter/yield round trip, most of its cost).
 *
 * The MXCSR and x87 control words are callee-saved too, so they travel
 * with the coroutine.
 */
#ifndef COBLK_CO_SWITCH_ASM_H
#define COBLK_CO_SWITCH_ASM_H

#include <stddef.h>
#include <stdint.h>

_Static_assert(offsetof(co_regs, sp) == 0 && offsetof(co_regs, ip) == 8 &&
                   offsetof(co_regs, bp) == 16 &&
                   offsetof(co_regs, mxcsr) == 24 &&
                   offsetof(co_regs, fpu_cw) == 28,
               "co_regs offsets are hard-coded in the switch below");

static inline __attribute__((always_inline)) co_action
co_backend_switch(coblk_co *from, coblk_co *to, co_action action,
                  void **fake_stack)
{
    co_regs *save = &from->asm_regs;
    co_regs *load = &to->asm_regs;
    uintptr_t value = (uintptr_t)action;

    san_switch_start(to, fake_stack);
    /* Fixed registers: rdx carries the action across; rdi holds the
     * coroutine switched to, which a fresh stack's start code needs; and
     * `load` must not be given rbp, which the switch overwrites. */
    __asm__ volatile(
        "leaq 1f(%%rip), %%rax\n\t"
        "movq %%rsp, 0(%[save])\n\t"
        "movq %%rax, 8(%[save])\n\t"
        "movq %%rbp, 16(%[save])\n\t"
        "stmxcsr 24(%[save])\n\t"
        "fnstcw 28(%[save])\n\t"
        "ldmxcsr 24(%[load])\n\t"
        "fldcw 28(%[load])\n\t"
        "movq 16(%[load]), %%rbp\n\t"
        "movq 0(%[load]), %%rsp\n\t"
        "jmpq *8(%[load])\n"
        "1:\n\t"
        : "+d"(value), [save] "+S"(save), [load] "+c"(load), "+D"(to)
        :
        : "rax", "rbx", "r8", "r9", "r10", "r11", "r12", "r13",
          "r14", "r15", "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3",
          "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
          "xmm12", "xmm13", "xmm14", "xmm15", "st", "st(1)", "st(2)",
          "st(3)", "st(4)", "st(5)", "st(6)", "st(7)"
#ifdef __AVX512F__
          /* Caller-saved too, and only usable with AVX-512. */
          , "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22",
          "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29",
          "xmm30", "xmm31", "k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"
#endif
    );
    return (co_action)value;
}

#endif /* COBLK_CO_SWITCH_ASM_H */
