/*
 * Coroutine microbenchmarks, in the shapes of QEMU's coroutine perf tests.
 * Built once per switch backend; tests/bench/coroutine.sh runs both
 * alternately and prints the ratios.  Prints one "name ns" line per
 * benchmark: nanoseconds per operation.
 *
 *   lifecycle  create + enter + terminate (pooled)
 *   yield      enter + yield round trip
 *   nesting    per level of a 1000-deep nest (create + enter + terminate)
 *   cycle      create + enter + yield + enter + terminate
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "coblk/coroutine.h"

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void noop(void *opaque)
{
}

static double bench_lifecycle(unsigned long n)
{
    double start = now_ns();
    for (unsigned long i = 0; i < n; i++) {
        coblk_co_enter(coblk_co_create(noop, NULL));
    }
    return (now_ns() - start) / n;
}

static void yield_until_stopped(void *opaque)
{
    volatile bool *stop = opaque;

    while (!*stop) {
        coblk_co_yield();
    }
}

static double bench_yield(unsigned long n)
{
    volatile bool stop = false;
    coblk_co *co = coblk_co_create(yield_until_stopped, (void *)&stop);

    double start = now_ns();
    for (unsigned long i = 0; i < n; i++) {
        coblk_co_enter(co);
    }
    double elapsed = now_ns() - start;
    stop = true;
    coblk_co_enter(co);
    return elapsed / n;
}

#define NEST_DEPTH 1000

static void nest(void *opaque)
{
    unsigned *remaining = opaque;

    if (--*remaining > 0) {
        coblk_co_enter(coblk_co_create(nest, remaining));
    }
}

static double bench_nesting(unsigned long n)
{
    double start = now_ns();
    for (unsigned long i = 0; i < n; i++) {
        unsigned remaining = NEST_DEPTH;
        coblk_co_enter(coblk_co_create(nest, &remaining));
    }
    return (now_ns() - start) / (n * NEST_DEPTH);
}

static void yield_once(void *opaque)
{
    coblk_co_yield();
}

static double bench_cycle(unsigned long n)
{
    double start = now_ns();
    for (unsigned long i = 0; i < n; i++) {
        coblk_co *co = coblk_co_create(yield_once, NULL);
        coblk_co_enter(co);
        coblk_co_enter(co);
    }
    return (now_ns() - start) / n;
}

int main(int argc, char **argv)
{
    /* Scale 1 takes about a second per backend on a 2-core machine. */
    double scale = argc > 1 ? atof(argv[1]) : 1.0;
    if (scale <= 0) {
        fprintf(stderr, "usage: %s [SCALE]  (SCALE > 0, default 1)\n",
                argv[0]);
        return 1;
    }
    unsigned long ops = (unsigned long)(4e6 * scale);

    /* Warm the pool so the first benchmark does not pay for the mmaps. */
    bench_nesting(2);
    printf("lifecycle %.2f\n", bench_lifecycle(ops));
    printf("yield %.2f\n", bench_yield(ops));
    printf("nesting %.2f\n", bench_nesting(ops / 4000 + 1));
    printf("cycle %.2f\n", bench_cycle(ops));
    return 0;
}
