/*
 * Coroutine core tests, built once per switch backend (test-coroutine-asm,
 * test-coroutine-ucontext): both must pass the same tests.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "child.h"
#include "coroutine-int.h"

/* ---- enter / yield / terminate ----------------------------------------- */

struct event_log {
    int events[32];
    int count;
};

static void log_event(struct event_log *log, int event)
{
    assert_true(log->count < 32);
    log->events[log->count++] = event;
}

static void yield_twice(void *opaque)
{
    struct event_log *log = opaque;

    log_event(log, 1);
    coblk_co_yield();
    log_event(log, 2);
    coblk_co_yield();
    log_event(log, 3);
}

static void test_enter_yield_terminate_order(void **state)
{
    struct event_log log = { .count = 0 };
    unsigned live = co_live_count();
    coblk_co *co = coblk_co_create(yield_twice, &log);

    assert_non_null(co);
    log_event(&log, 10);
    coblk_co_enter(co);
    log_event(&log, 11);
    coblk_co_enter(co);
    log_event(&log, 12);
    coblk_co_enter(co);     /* terminates */
    log_event(&log, 13);

    int expected[] = { 10, 1, 11, 2, 12, 3, 13 };
    assert_int_equal(log.count, 7);
    assert_memory_equal(log.events, expected, sizeof(expected));
    /* The terminated coroutine went to the pool, not away. */
    assert_true(co_live_count() >= live);
    assert_null(co->entry);
}

/* ---- data in and out --------------------------------------------------- */

struct accumulator {
    long input;     /* written by the caller before each enter */
    long sum;       /* written by the coroutine */
    int rounds;
};

static void accumulate(void *opaque)
{
    struct accumulator *acc = opaque;

    for (int i = 0; i < acc->rounds; i++) {
        acc->sum += acc->input;
        coblk_co_yield();
    }
    acc->sum = -acc->sum;   /* says "finished" */
}

static void test_data_in_and_out(void **state)
{
    struct accumulator acc = { .rounds = 5 };
    coblk_co *co = coblk_co_create(accumulate, &acc);
    long expected = 0;

    assert_non_null(co);
    for (int i = 0; i < 5; i++) {
        acc.input = 1000 + i * 7;
        expected += acc.input;
        coblk_co_enter(co);
        assert_int_equal(acc.sum, expected);
    }
    coblk_co_enter(co);
    assert_int_equal(acc.sum, -expected);
}

/* ---- self / in_coroutine ------------------------------------------------ */

struct self_seen {
    coblk_co *self[2];
    bool in_coroutine[2];
};

static void record_self(void *opaque)
{
    struct self_seen *seen = opaque;

    seen->self[0] = coblk_co_self();
    seen->in_coroutine[0] = coblk_in_coroutine();
    coblk_co_yield();
    seen->self[1] = coblk_co_self();
    seen->in_coroutine[1] = coblk_in_coroutine();
}

static void test_self_and_in_coroutine(void **state)
{
    struct self_seen seen = { 0 };

    assert_null(coblk_co_self());
    assert_false(coblk_in_coroutine());
    coblk_co *co = coblk_co_create(record_self, &seen);
    assert_non_null(co);
    coblk_co_enter(co);
    assert_null(coblk_co_self());
    assert_false(coblk_in_coroutine());
    coblk_co_enter(co);
    assert_ptr_equal(seen.self[0], co);
    assert_ptr_equal(seen.self[1], co);
    assert_true(seen.in_coroutine[0]);
    assert_true(seen.in_coroutine[1]);
    assert_null(coblk_co_self());
}

static void test_create_rejects_null_fn(void **state)
{
    errno = 0;
    assert_null(coblk_co_create(NULL, NULL));
    assert_int_equal(errno, EINVAL);
}

/* ---- nesting ----------------------------------------------------------- */

#define NEST_DEPTH 1000

struct nest {
    int depth;              /* levels entered so far */
    int deepest;
    int unwound;            /* levels that saw self intact after the child */
    coblk_co *levels[NEST_DEPTH];
};

static void nest_level(void *opaque)
{
    struct nest *nest = opaque;
    int level = nest->depth++;
    coblk_co *self = coblk_co_self();

    nest->levels[level] = self;
    if (nest->depth > nest->deepest) {
        nest->deepest = nest->depth;
    }
    if (nest->depth < NEST_DEPTH) {
        coblk_co *child = coblk_co_create(nest_level, nest);
        assert_non_null(child);
        coblk_co_enter(child);
    }
    /* Back from the child: still ourselves, on our own stack. */
    if (coblk_co_self() == self && nest->levels[level] == self) {
        nest->unwound++;
    }
}

static void test_nesting_1000_deep(void **state)
{
    struct nest *nest = calloc(1, sizeof(*nest));
    coblk_co *top = coblk_co_create(nest_level, nest);

    assert_non_null(top);
    coblk_co_enter(top);
    assert_int_equal(nest->deepest, NEST_DEPTH);
    assert_int_equal(nest->unwound, NEST_DEPTH);
    /* 1000 live at once means 1000 distinct coroutines. */
    for (int i = 1; i < NEST_DEPTH; i++) {
        assert_ptr_not_equal(nest->levels[i], nest->levels[i - 1]);
    }
    assert_null(coblk_co_self());
    free(nest);
}

/* A yield deep in a nest goes back one level only. */
struct nested_yield {
    struct event_log log;
    coblk_co *inner;
};

static void inner_yields(void *opaque)
{
    struct nested_yield *ny = opaque;

    log_event(&ny->log, 2);
    coblk_co_yield();
    log_event(&ny->log, 5);
}

static void outer_enters_inner(void *opaque)
{
    struct nested_yield *ny = opaque;

    log_event(&ny->log, 1);
    ny->inner = coblk_co_create(inner_yields, ny);
    coblk_co_enter(ny->inner);
    log_event(&ny->log, 3);
    coblk_co_yield();
    log_event(&ny->log, 4);
    coblk_co_enter(ny->inner);
    log_event(&ny->log, 6);
}

static void test_nested_yield_returns_one_level(void **state)
{
    struct nested_yield ny = { .log = { .count = 0 } };
    coblk_co *outer = coblk_co_create(outer_enters_inner, &ny);

    coblk_co_enter(outer);
    log_event(&ny.log, 100);
    coblk_co_enter(outer);

    int expected[] = { 1, 2, 3, 100, 4, 5, 6 };
    assert_int_equal(ny.log.count, 7);
    assert_memory_equal(ny.log.events, expected, sizeof(expected));
}

/* ---- wakeup list ------------------------------------------------------- */

struct wake_test {
    struct event_log log;
    coblk_co *a, *b, *c, *d;
};

static void wake_b(void *opaque)
{
    struct wake_test *wt = opaque;

    log_event(&wt->log, 2);
    co_wakeup_push(coblk_co_self(), wt->d);  /* runs before c: depth first */
    log_event(&wt->log, 3);
}

static void wake_c(void *opaque)
{
    log_event(&((struct wake_test *)opaque)->log, 5);
}

static void wake_d(void *opaque)
{
    log_event(&((struct wake_test *)opaque)->log, 4);
}

static void wake_a(void *opaque)
{
    struct wake_test *wt = opaque;

    co_wakeup_push(coblk_co_self(), wt->b);
    co_wakeup_push(coblk_co_self(), wt->c);
    log_event(&wt->log, 1);
    coblk_co_yield();
    log_event(&wt->log, 7);
}

static void test_wakeup_list_runs_after_yield(void **state)
{
    struct wake_test wt = { .log = { .count = 0 } };

    wt.a = coblk_co_create(wake_a, &wt);
    wt.b = coblk_co_create(wake_b, &wt);
    wt.c = coblk_co_create(wake_c, &wt);
    wt.d = coblk_co_create(wake_d, &wt);
    coblk_co_enter(wt.a);
    log_event(&wt.log, 6);
    coblk_co_enter(wt.a);

    int expected[] = { 1, 2, 3, 4, 5, 6, 7 };
    assert_int_equal(wt.log.count, 7);
    assert_memory_equal(wt.log.events, expected, sizeof(expected));
}

/* ---- pool ---------------------------------------------------------------- */

struct stack_probe {
    uintptr_t local_addr;
};

static void probe_stack(void *opaque)
{
    struct stack_probe *probe = opaque;
    volatile char here = 0;

    probe->local_addr = (uintptr_t)&here;
}

static bool on_stack_of(const coblk_co *co, uintptr_t addr)
{
    uintptr_t base = (uintptr_t)co->stack.base;
    return addr >= base && addr < base + co->stack.size;
}

static void test_pool_reuses_terminated_coroutine(void **state)
{
    struct stack_probe first = { 0 }, second = { 0 };
    coblk_co *co1 = coblk_co_create(probe_stack, &first);

    coblk_co_enter(co1);
    unsigned live = co_live_count();
    coblk_co *co2 = coblk_co_create(probe_stack, &second);
    coblk_co_enter(co2);

    assert_ptr_equal(co1, co2);
    assert_true(on_stack_of(co1, first.local_addr));
    assert_true(on_stack_of(co2, second.local_addr));
    assert_int_equal(co_live_count(), live);
}

static void noop(void *opaque)
{
}

/* Runs in a thread of its own so that its local pool starts empty and is
 * freed when it exits. */
static void *churn_2000(void *opaque)
{
    enum { N = 2000 };
    coblk_co **cos = calloc(N, sizeof(*cos));
    co_pool_stats *stats = opaque;

    for (int i = 0; i < N; i++) {
        cos[i] = coblk_co_create(noop, NULL);
        assert_non_null(cos[i]);
    }
    for (int i = 0; i < N; i++) {
        coblk_co_enter(cos[i]);
    }
    co_pool_get_stats(stats);
    free(cos);
    return NULL;
}

static co_pool_stats churn_in_thread(void)
{
    co_pool_stats stats;
    pthread_t thread;

    assert_int_equal(pthread_create(&thread, NULL, churn_2000, &stats), 0);
    pthread_join(thread, NULL);
    return stats;
}

static void test_pool_is_bounded_and_reserve_raises_bound(void **state)
{
    unsigned live_before = co_live_count();
    co_pool_stats stats = churn_in_thread();

    assert_int_equal(stats.local_idle, CO_POOL_LOCAL_BATCHES * CO_POOL_BATCH -
                                           CO_POOL_BATCH + 2000 % CO_POOL_BATCH);
    assert_true(stats.shared_idle <= stats.shared_max);
    assert_int_equal(stats.shared_max, CO_POOL_SHARED_DEFAULT);
    /* The thread's own pool was freed when it exited; the shared pool keeps
     * at most its bound. */
    assert_true(co_live_count() <= live_before + stats.shared_max);

    /* The bound grows to what is reserved (not the default on top). */
    assert_int_equal(coblk_co_pool_reserve(3000), 0);
    stats = churn_in_thread();
    assert_int_equal(stats.shared_max, 3000);
    assert_int_equal(stats.reserved, 3000);
    assert_true(stats.shared_idle > CO_POOL_SHARED_DEFAULT);
    assert_true(stats.shared_idle <= stats.shared_max);

    coblk_co_pool_unreserve(3000);
    co_pool_get_stats(&stats);
    assert_int_equal(stats.shared_max, CO_POOL_SHARED_DEFAULT);
    assert_true(stats.shared_idle <= CO_POOL_SHARED_DEFAULT);
    assert_true(co_live_count() <= live_before + CO_POOL_SHARED_DEFAULT);

    assert_int_equal(coblk_co_pool_reserve(UINT_MAX), -E2BIG);
    coblk_co_pool_unreserve(UINT_MAX);      /* more than reserved: clamps */
    co_pool_get_stats(&stats);
    assert_int_equal(stats.shared_max, CO_POOL_SHARED_DEFAULT);
    assert_int_equal(stats.reserved, 0);
}

/* Reservations go up to (vm.max_map_count - 16384) / 2 in all, the default
 * bound of the pool not counted: 20 queues of depth 1000 fit with the
 * kernel's default of 65530. */
static void test_reservations_reach_the_stated_ceiling(void **state)
{
    unsigned long maps = 65530;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    co_pool_stats stats;

    if (f) {
        assert_int_equal(fscanf(f, "%lu", &maps), 1);
        fclose(f);
    }
    co_pool_get_stats(&stats);
    assert_int_equal(stats.reserved, 0);
    assert_int_equal(stats.reserve_max,
                     maps > 32768 ? (maps - 16384) / 2 : maps / 4);
    if (maps >= 65530) {
        for (int i = 0; i < 20; i++) {
            assert_int_equal(coblk_co_pool_reserve(1000), 0);
        }
        coblk_co_pool_unreserve(20000);
    }
    assert_int_equal(coblk_co_pool_reserve(stats.reserve_max), 0);
    assert_int_equal(coblk_co_pool_reserve(1), -E2BIG);
    coblk_co_pool_unreserve(stats.reserve_max);
    assert_int_equal(coblk_co_pool_reserve(1), 0);
    coblk_co_pool_unreserve(1);
}

/* ---- across threads -------------------------------------------------------- */

#define HANDOVER 100

struct handover {
    pthread_t ran_on[2];
    coblk_co *self_after_resume;
};

/* glibc declares pthread_self() const, so the compiler may reuse its value
 * across a yield; a coroutine that can change threads must not let it. */
static __attribute__((noinline)) pthread_t thread_now(void)
{
    __asm__ volatile("" ::: "memory");
    return pthread_self();
}

static void record_threads(void *opaque)
{
    struct handover *h = opaque;

    h->ran_on[0] = thread_now();
    coblk_co_yield();
    /* Resumed on the other thread: thread-locals must be that thread's. */
    h->ran_on[1] = thread_now();
    h->self_after_resume = coblk_co_self();
}

struct finisher {
    coblk_co **cos;
    unsigned live_before_exit;
    co_pool_stats stats;
};

static void *finish_coroutines(void *opaque)
{
    struct finisher *f = opaque;

    for (int i = 0; i < HANDOVER; i++) {
        coblk_co_enter(f->cos[i]);
    }
    co_pool_get_stats(&f->stats);
    f->live_before_exit = co_live_count();
    return NULL;
}

static void test_created_on_one_thread_terminated_on_another(void **state)
{
    struct handover h[HANDOVER];
    coblk_co *cos[HANDOVER];
    struct finisher f = { .cos = cos };
    pthread_t thread;

    for (int i = 0; i < HANDOVER; i++) {
        cos[i] = coblk_co_create(record_threads, &h[i]);
        coblk_co_enter(cos[i]);
    }
    assert_int_equal(pthread_create(&thread, NULL, finish_coroutines, &f), 0);
    pthread_join(thread, NULL);

    for (int i = 0; i < HANDOVER; i++) {
        assert_true(pthread_equal(h[i].ran_on[0], pthread_self()));
        assert_true(pthread_equal(h[i].ran_on[1], thread));
        assert_ptr_equal(h[i].self_after_resume, cos[i]);
    }
    /* They joined the finishing thread's pool, which its exit freed. */
    assert_int_equal(f.stats.local_idle, HANDOVER);
    assert_int_equal(co_live_count(), f.live_before_exit - HANDOVER);
}

/* ---- stack size ---------------------------------------------------------- */

static void test_stack_size_setting(void **state)
{
    assert_int_equal(coblk_co_get_stack_size(), COBLK_CO_STACK_DEFAULT);
    assert_int_equal(coblk_co_set_stack_size(1024), -EINVAL);
    assert_int_equal(coblk_co_set_stack_size((size_t)1 << 40), -EINVAL);
    assert_int_equal(coblk_co_set_stack_size(100000), 0);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    assert_int_equal(coblk_co_get_stack_size(),
                     (100000 + page - 1) / page * page);

    struct stack_probe probe;
    coblk_co *co = coblk_co_create(probe_stack, &probe);
    assert_true(co->stack.size >= 100000);
    /* Rounded up to pages, plus up to a page of cache colouring. */
    assert_true(co->stack.size < 100000 + 3 * page);
    coblk_co_enter(co);
    assert_true(on_stack_of(co, probe.local_addr));

    assert_int_equal(coblk_co_set_stack_size(0), 0);
    assert_int_equal(coblk_co_get_stack_size(), COBLK_CO_STACK_DEFAULT);
    /* The pooled 100000-byte coroutine is not handed out for the default. */
    co = coblk_co_create(probe_stack, &probe);
    assert_true(co->stack.size >= COBLK_CO_STACK_DEFAULT);
    coblk_co_enter(co);
}

/* ---- stack overflow ------------------------------------------------------ */

static coblk_co *overflowing;

static void on_segv(int sig, siginfo_t *info, void *ucontext)
{
    uintptr_t addr = (uintptr_t)info->si_addr;
    uintptr_t guard = (uintptr_t)overflowing->stack.guard;

    if (addr >= guard && addr < (uintptr_t)overflowing->stack.base) {
        /* The guard page: die of the fault, as without this handler. */
        signal(SIGSEGV, SIG_DFL);
        return;
    }
    char msg[128];
    int len = snprintf(msg, sizeof(msg), "fault at %#lx, guard page at %#lx",
                       (unsigned long)addr, (unsigned long)guard);
    write(STDERR_FILENO, msg, (size_t)len);
    _exit(4);   /* faulted somewhere else: the guard did not catch it */
}

/* noinline: inlined into itself, several 512-byte frames would make one
 * larger than the guard page, which could then be jumped over. */
static __attribute__((noinline)) int recurse(int depth)
{
    volatile char frame[512];

    frame[0] = (char)depth;
    if (depth < 0) {
        return 0;       /* never: the guard page stops it first */
    }
    return recurse(depth + 1) + frame[0];
}

static void overflow(void *opaque)
{
    recurse(0);
}

static void overflow_in_coroutine(void *unused)
{
    static char altstack[64 * 1024];
    stack_t ss = { .ss_sp = altstack, .ss_size = sizeof(altstack) };
    struct sigaction sa = { .sa_sigaction = on_segv,
                            .sa_flags = SA_SIGINFO | SA_ONSTACK };

    sigaltstack(&ss, NULL);
    sigaction(SIGSEGV, &sa, NULL);
    coblk_co_set_stack_size(16 * 1024);
    overflowing = coblk_co_create(overflow, NULL);
    coblk_co_enter(overflowing);
}

static void test_stack_overflow_hits_guard_page(void **state)
{
    char err[4096];
    int status = run_in_child(overflow_in_coroutine, NULL, err, sizeof(err));

    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGSEGV) {
        fail_msg("child should die of SIGSEGV on the guard page; wait "
                 "status %#x (exit 4: fault elsewhere), stderr: %s",
                 status, err);
    }
}

/* ---- misuse aborts ------------------------------------------------------- */

static void assert_child_aborts(void (*fn)(void *), const char *message)
{
    char err[4096];
    int status = run_in_child(fn, NULL, err, sizeof(err));

    if (!strstr(err, message)) {
        fail_msg("expected \"%s\" on stderr, got \"%s\"", message, err);
    }
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

static void yield_outside(void *unused)
{
    coblk_co_yield();
}

static void test_yield_outside_coroutine_aborts(void **state)
{
    assert_child_aborts(yield_outside, "called outside a coroutine");
}

static void enter_self(void *opaque)
{
    coblk_co_enter(coblk_co_self());
}

static void enter_self_in_child(void *unused)
{
    coblk_co_enter(coblk_co_create(enter_self, NULL));
}

static void test_entering_running_coroutine_aborts(void **state)
{
    assert_child_aborts(enter_self_in_child, "re-entered recursively");
}

static void enter_caller(void *opaque)
{
    coblk_co_enter(opaque);
}

static void enter_child_that_enters_us(void *opaque)
{
    coblk_co_enter(coblk_co_create(enter_caller, coblk_co_self()));
}

static void enter_caller_in_child(void *unused)
{
    coblk_co_enter(coblk_co_create(enter_child_that_enters_us, NULL));
}

static void test_entering_caller_aborts(void **state)
{
    assert_child_aborts(enter_caller_in_child, "re-entered recursively");
}

static void enter_scheduled_in_child(void *unused)
{
    coblk_co *co = coblk_co_create(noop, NULL);

    co->scheduled = "test_scheduler";
    coblk_co_enter(co);
}

static void test_entering_scheduled_coroutine_aborts(void **state)
{
    assert_child_aborts(enter_scheduled_in_child,
                        "already scheduled in 'test_scheduler'");
}

static void enter_terminated_in_child(void *unused)
{
    coblk_co *co = coblk_co_create(noop, NULL);

    coblk_co_enter(co);
    coblk_co_enter(co);
}

static void test_entering_terminated_coroutine_aborts(void **state)
{
    assert_child_aborts(enter_terminated_in_child, "after it terminated");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_enter_yield_terminate_order),
        cmocka_unit_test(test_data_in_and_out),
        cmocka_unit_test(test_self_and_in_coroutine),
        cmocka_unit_test(test_create_rejects_null_fn),
        cmocka_unit_test(test_nesting_1000_deep),
        cmocka_unit_test(test_nested_yield_returns_one_level),
        cmocka_unit_test(test_wakeup_list_runs_after_yield),
        cmocka_unit_test(test_pool_reuses_terminated_coroutine),
        cmocka_unit_test(test_pool_is_bounded_and_reserve_raises_bound),
        cmocka_unit_test(test_reservations_reach_the_stated_ceiling),
        cmocka_unit_test(test_created_on_one_thread_terminated_on_another),
        cmocka_unit_test(test_stack_size_setting),
        cmocka_unit_test(test_stack_overflow_hits_guard_page),
        cmocka_unit_test(test_yield_outside_coroutine_aborts),
        cmocka_unit_test(test_entering_running_coroutine_aborts),
        cmocka_unit_test(test_entering_caller_aborts),
        cmocka_unit_test(test_entering_scheduled_coroutine_aborts),
        cmocka_unit_test(test_entering_terminated_coroutine_aborts),
    };

    return cmocka_run_group_tests_name(CO_BACKEND_NAME, tests, NULL, NULL);
}
