/*
 * Event loop tests: wakes, cross-thread scheduling, bottom halves, timers,
 * fd readiness, a full SQ and CQ, CoMutex and CoQueue, misuse.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_VALGRIND_VALGRIND_H
#include <valgrind/valgrind.h>
#endif

#include <cmocka.h>

#include "aio-int.h"
#include "child.h"
#include "coblk/co-lock.h"

#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

static coblk_aio *ctx;      /* the main thread's, made by setup() */

static int setup(void **state)
{
    return coblk_aio_new(0, 0, &ctx);
}

static int teardown(void **state)
{
    coblk_aio_free(ctx);
    return 0;
}

/* Runs the loop until *done is true. */
static void poll_until(coblk_aio *c, const volatile bool *done)
{
    while (!*done) {
        coblk_aio_poll(c, true);
    }
}

/* coroutine_fn: let the loop run other work, then continue. */
static void yield_to_loop(void)
{
    coblk_aio_co_schedule(coblk_aio_current(), coblk_co_self());
    coblk_co_yield();
}

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* ---- set-up ----------------------------------------------------------------- */

static void test_new_rejects_bad_arguments(void **state)
{
    coblk_aio *other;

    assert_int_equal(coblk_aio_new(40000, 0, &other), -EINVAL);
    assert_int_equal(coblk_aio_new(0, 1u << 7, &other), -EINVAL);
    assert_int_equal(coblk_aio_new(0, 0, NULL), -EINVAL);
    /* One context per thread. */
    assert_int_equal(coblk_aio_new(0, 0, &other), -EEXIST);
    assert_ptr_equal(coblk_aio_current(), ctx);
}

static void *current_in_thread(void *opaque)
{
    return coblk_aio_current();
}

static void test_current_is_per_thread(void **state)
{
    pthread_t thread;
    void *seen = ctx;

    pthread_create(&thread, NULL, current_in_thread, NULL);
    pthread_join(thread, &seen);
    assert_null(seen);
    assert_ptr_equal(coblk_aio_current(), ctx);
}

/* ---- wake order and the wakeup list ------------------------------------------- */

struct wake_log {
    int events[16];
    int count;
    coblk_co *others[2];
};

static void log_event(struct wake_log *log, int event)
{
    assert_true(log->count < 16);
    log->events[log->count++] = event;
}

static void logs_and_yields(void *opaque)
{
    struct wake_log *log = opaque;

    log_event(log, 10 + (coblk_co_self() == log->others[1]));
    coblk_co_yield();
    log_event(log, 20 + (coblk_co_self() == log->others[1]));
}

static void wakes_others(void *opaque)
{
    struct wake_log *log = opaque;

    log_event(log, 1);
    coblk_aio_co_wake(log->others[0]);  /* queued: we are running */
    coblk_aio_co_wake(log->others[1]);
    log_event(log, 2);
    coblk_co_yield();
    log_event(log, 3);
}

static void test_wake_from_coroutine_runs_after_it_yields(void **state)
{
    struct wake_log log = { .count = 0 };
    log.others[0] = coblk_co_create(logs_and_yields, &log);
    log.others[1] = coblk_co_create(logs_and_yields, &log);
    coblk_co_enter(log.others[0]);
    coblk_co_enter(log.others[1]);
    coblk_co *waker = coblk_co_create(wakes_others, &log);

    coblk_aio_co_enter(ctx, waker);     /* not in a coroutine: at once */
    log_event(&log, 4);
    coblk_aio_co_wake(waker);           /* at once, again */

    int expected[] = { 10, 11, 1, 2, 20, 21, 4, 3 };
    assert_int_equal(log.count, 8);
    assert_memory_equal(log.events, expected, sizeof(expected));
}

static void wakes_itself(void *unused)
{
    coblk_aio_co_wake(coblk_co_self());
}

/* Children inherit the parent thread's context; they abort before they
 * would submit to its ring (which is the parent's). */
static void wake_self_in_child(void *unused)
{
    coblk_co_enter(coblk_co_create(wakes_itself, NULL));
}

static void test_waking_itself_aborts(void **state)
{
    char err[4096];
    int status = run_in_child(wake_self_in_child, NULL, err, sizeof(err));

    assert_non_null(strstr(err, "woke itself"));
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
}

/* ---- cross-thread ping-pong ------------------------------------------------------ */

struct ping_pong {
    coblk_aio *ctx[2];
    long hops;
    long resumed_on[2];     /* resumes seen in each context */
    long wrong_thread;      /* resumed in a context that was not the target */
    sem_t done;
};

static void hop(void *opaque)
{
    struct ping_pong *pp = opaque;

    for (long i = 0; i < pp->hops; i++) {
        coblk_aio *target = pp->ctx[i % 2];
        coblk_aio_co_schedule(target, coblk_co_self());
        coblk_co_yield();
        coblk_aio *here = coblk_aio_current();
        pp->resumed_on[here == pp->ctx[1]]++;
        pp->wrong_thread += here != target;
    }
    sem_post(&pp->done);
}

static void test_cross_thread_ping_pong(void **state)
{
    coblk_iothread *threads[2];
    struct ping_pong pp = { .hops = RUNNING_ON_VALGRIND ? 2000 : 1000000 };

    for (int i = 0; i < 2; i++) {
        assert_int_equal(coblk_iothread_new("ping", &threads[i]), 0);
        pp.ctx[i] = coblk_iothread_aio(threads[i]);
        assert_non_null(pp.ctx[i]);
    }
    assert_ptr_not_equal(pp.ctx[0], pp.ctx[1]);
    sem_init(&pp.done, 0, 0);
    coblk_aio_co_schedule(pp.ctx[1], coblk_co_create(hop, &pp));
    sem_wait(&pp.done);
    for (int i = 0; i < 2; i++) {
        coblk_iothread_join(threads[i]);
    }
    /* Every hop delivered exactly once, where it was sent. */
    assert_int_equal(pp.resumed_on[0], pp.hops / 2);
    assert_int_equal(pp.resumed_on[1], pp.hops / 2);
    assert_int_equal(pp.wrong_thread, 0);
}

static void scheduled_twice_in_child(void *unused)
{
    coblk_co *co = coblk_co_create(wakes_itself, NULL);
    coblk_aio_co_schedule(ctx, co);
    coblk_aio_co_schedule(ctx, co);
}

static void test_scheduling_twice_aborts(void **state)
{
    char err[4096];
    int status = run_in_child(scheduled_twice_in_child, NULL, err,
                              sizeof(err));

    assert_non_null(strstr(err, "already scheduled in 'coblk_aio_co_schedule'"));
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
}

static void poll_foreign(void *foreign_ctx)
{
    coblk_aio_poll(foreign_ctx, false);
}

static void test_polling_from_another_thread_aborts(void **state)
{
    coblk_iothread *thread;
    char err[4096];

    /* The child (a copy of this thread only) polls the iothread's context;
     * no thread is started in the child, which sanitizers dislike. */
    assert_int_equal(coblk_iothread_new("foreign", &thread), 0);
    int status = run_in_child(poll_foreign, coblk_iothread_aio(thread), err,
                              sizeof(err));
    coblk_iothread_join(thread);

    assert_non_null(strstr(err, "belongs to another thread"));
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
}

/* ---- bottom halves ---------------------------------------------------------------- */

#define BH_THREADS 4
#define BHS_EACH 5000

struct bh_test {
    pthread_t loop_thread;
    long ran[BH_THREADS];
    long out_of_order;
    long on_wrong_thread;
    long last_seq[BH_THREADS];
    bool finished;
};

struct bh_arg {
    struct bh_test *test;
    int thread;
    long seq;
};

static void count_bh(void *opaque)
{
    struct bh_arg *arg = opaque;
    struct bh_test *t = arg->test;

    t->ran[arg->thread]++;
    t->out_of_order += arg->seq != t->last_seq[arg->thread] + 1;
    t->last_seq[arg->thread] = arg->seq;
    t->on_wrong_thread += !pthread_equal(pthread_self(), t->loop_thread);
    free(arg);
}

struct bh_sender {
    struct bh_test *test;
    int thread;
};

static void *send_bhs(void *opaque)
{
    struct bh_sender *s = opaque;

    for (long i = 1; i <= BHS_EACH; i++) {
        struct bh_arg *arg = malloc(sizeof(*arg));
        *arg = (struct bh_arg){ .test = s->test, .thread = s->thread,
                                .seq = i };
        assert_int_equal(coblk_aio_bh_schedule(ctx, count_bh, arg), 0);
    }
    return NULL;
}

static void finish_bh(void *opaque)
{
    ((struct bh_test *)opaque)->finished = true;
}

static void test_bottom_halves_from_other_threads(void **state)
{
    struct bh_test t = { .loop_thread = pthread_self() };
    struct bh_sender senders[BH_THREADS];
    pthread_t threads[BH_THREADS];

    for (int i = 0; i < BH_THREADS; i++) {
        senders[i] = (struct bh_sender){ .test = &t, .thread = i };
        pthread_create(&threads[i], NULL, send_bhs, &senders[i]);
    }
    long total = 0;
    while (total < BH_THREADS * BHS_EACH) {
        coblk_aio_poll(ctx, true);
        total = 0;
        for (int i = 0; i < BH_THREADS; i++) {
            total += t.ran[i];
        }
    }
    for (int i = 0; i < BH_THREADS; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(t.ran[i], BHS_EACH);
    }
    assert_int_equal(t.out_of_order, 0);
    assert_int_equal(t.on_wrong_thread, 0);
    /* Nothing extra runs afterwards. */
    coblk_aio_bh_schedule(ctx, finish_bh, &t);
    poll_until(ctx, &t.finished);
    for (int i = 0; i < BH_THREADS; i++) {
        assert_int_equal(t.ran[i], BHS_EACH);
    }
}

/* ---- timers ----------------------------------------------------------------------- */

struct sleeper {
    uint64_t ns;
    double slept_ns;
    int ret;
    int order;
    int *finished;
    bool done;
};

static void sleep_and_time(void *opaque)
{
    struct sleeper *s = opaque;
    double start = now_ns();

    s->ret = coblk_co_sleep_ns(s->ns);
    s->slept_ns = now_ns() - start;
    s->order = (*s->finished)++;
    s->done = true;
}

static void test_timers_never_early(void **state)
{
    /* Started longest first; they must finish shortest first. */
    uint64_t ns[] = { 30000000, 10000000, 2000000, 1 };
    struct sleeper sleepers[4];
    int finished = 0;

    for (int i = 0; i < 4; i++) {
        sleepers[i] = (struct sleeper){ .ns = ns[i], .finished = &finished };
        coblk_co_enter(coblk_co_create(sleep_and_time, &sleepers[i]));
    }
    while (finished < 4) {
        coblk_aio_poll(ctx, true);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(sleepers[i].ret, 0);
        assert_true(sleepers[i].slept_ns >= (double)ns[i]);
        assert_int_equal(sleepers[i].order, 3 - i);
    }
}

static void sleep_outside(void **state)
{
    assert_int_equal(coblk_co_sleep_ns(1000), -EPERM);
    assert_int_equal(coblk_co_wait_fd(0, POLLIN), -EPERM);
}

/* ---- fd readiness ------------------------------------------------------------------ */

struct fd_waiter {
    int fd;
    int revents;
    char data[8];
    bool done;
};

static void wait_then_read(void *opaque)
{
    struct fd_waiter *w = opaque;

    w->revents = coblk_co_wait_fd(w->fd, POLLIN);
    assert_int_equal(read(w->fd, w->data, sizeof(w->data)), 5);
    w->done = true;
}

static void *write_later(void *opaque)
{
    usleep(20000);
    assert_int_equal(write(*(int *)opaque, "hello", 5), 5);
    return NULL;
}

static void test_fd_readiness_on_pipe(void **state)
{
    int fds[2];
    pthread_t writer;

    assert_int_equal(pipe(fds), 0);
    struct fd_waiter w = { .fd = fds[0] };
    coblk_co_enter(coblk_co_create(wait_then_read, &w));
    /* Nothing written yet: polling finds nothing to do for it. */
    for (int i = 0; i < 3; i++) {
        coblk_aio_poll(ctx, false);
    }
    assert_false(w.done);

    pthread_create(&writer, NULL, write_later, &fds[1]);
    poll_until(ctx, &w.done);
    pthread_join(writer, NULL);
    assert_true(w.revents & POLLIN);
    assert_memory_equal(w.data, "hello", 5);
    close(fds[0]);
    close(fds[1]);
}

/* ---- a tiny ring: SQ full, CQ full, CQ overflow ------------------------------------ */

#define NOPS_EACH 20
#define OUTSIDE_NOPS 100

struct nop_worker {
    coblk_aio *ctx;
    int completed;
    int bad_results;
    bool done;
};

static void submit_nops(void *opaque)
{
    struct nop_worker *w = opaque;

    for (int i = 0; i < NOPS_EACH; i++) {
        aio_co_request req;
        io_uring_prep_nop(aio_co_prep(w->ctx, &req));
        w->bad_results += aio_co_wait(&req) != 0;
        w->completed++;
    }
    w->done = true;
}

/* A callback handler that only counts, for SQEs from outside a coroutine. */
struct counting_handler {
    aio_cqe_handler handler;
    int count;
};

static void count_cqe(coblk_aio *c, aio_cqe_handler *handler, int res,
                      uint32_t flags)
{
    ((struct counting_handler *)handler)->count++;
}

/* NOPs from `workers` coroutines and from outside them, on a ring of its
 * own, which needs a thread of its own (one context a thread).  The thread
 * only records: cmocka's asserts must fail on the test's thread. */
struct nop_storm {
    unsigned entries, flags, workers;
    unsigned inflight_max;      /* 0: the ring's own limit */
    int new_ret;
    unsigned cq_size, setup_flags;
    int completed, bad_results, callbacks;
    unsigned inflight_after;
    struct coblk_aio_stats stats;
};

static void *nop_storm_thread(void *opaque)
{
    struct nop_storm *run = opaque;
    struct nop_worker *workers = calloc(run->workers, sizeof(*workers));
    struct counting_handler counter = { .handler.complete = count_cqe };
    coblk_aio *c;

    run->new_ret = coblk_aio_new(run->entries, run->flags, &c);
    if (run->new_ret < 0 || !workers) {
        free(workers);
        return NULL;
    }
    run->cq_size = c->inflight_max;
    run->setup_flags = c->setup_flags;
    if (run->inflight_max) {
        c->inflight_max = run->inflight_max;    /* lets the CQ overflow */
    }
    for (unsigned i = 0; i < run->workers; i++) {
        workers[i].ctx = c;
        coblk_co_enter(coblk_co_create(submit_nops, &workers[i]));
    }
    /* Outside a coroutine, a full ring makes aio_get_sqe() run the loop. */
    for (int i = 0; i < OUTSIDE_NOPS; i++) {
        io_uring_prep_nop(aio_get_sqe(c, &counter.handler));
    }
    for (unsigned i = 0; i < run->workers; i++) {
        poll_until(c, &workers[i].done);
        run->completed += workers[i].completed;
        run->bad_results += workers[i].bad_results;
    }
    while (c->inflight > 1) {    /* the notifier's read stays */
        coblk_aio_poll(c, true);
    }
    run->inflight_after = c->inflight;
    run->callbacks = counter.count;
    coblk_aio_stats(c, &run->stats, sizeof(run->stats));
    coblk_aio_free(c);
    free(workers);
    return NULL;
}

static void run_nop_storm(struct nop_storm *run)
{
    pthread_t thread;

    assert_int_equal(pthread_create(&thread, NULL, nop_storm_thread, run), 0);
    assert_int_equal(pthread_join(thread, NULL), 0);
    assert_int_equal(run->new_ret, 0);
    assert_int_equal(run->completed, run->workers * NOPS_EACH);
    assert_int_equal(run->bad_results, 0);
    assert_int_equal(run->callbacks, OUTSIDE_NOPS);
    assert_int_equal(run->inflight_after, 1);
}

static void test_tiny_ring_completes_every_nop_once(void **state)
{
    struct nop_storm run = { .entries = 4, .workers = 300 };

    run_nop_storm(&run);
    assert_int_equal(run.cq_size, 8);
    assert_true(run.stats.inflight_peak <= 8);
    assert_true(run.stats.sq_full > 0);
    assert_true(run.stats.slot_waits > 0);
    assert_int_equal(run.stats.cq_overflows, 0);
}

/* Past the in-flight limit the CQ overflows: the kernel keeps the rest,
 * and the loop must fetch them, each once. */
static void test_cq_overflow_loses_no_completion(void **state)
{
    struct nop_storm run = { .entries = 4, .workers = 300,
                             .inflight_max = 64 };

    run_nop_storm(&run);
    assert_int_equal(run.cq_size, 8);
    assert_true(run.stats.inflight_peak > 8);
    assert_true(run.stats.cq_overflows > 0);
}

static void test_plain_ring_fallback_works(void **state)
{
    struct nop_storm run = { .entries = 8, .flags = COBLK_AIO_PLAIN_RING,
                             .workers = 1 };

    run_nop_storm(&run);
    assert_int_equal(run.setup_flags, 0);
}

/* Before 5.11 a wait takes no time limit: the loop ends a timed wait with
 * a timeout SQE of its own, whose CQE is one of its handlers'. */
static void sleep_30ms(void *opaque)
{
    *(int *)opaque = coblk_co_sleep_ns(30000000) == 0 ? 1 : -1;
}

/* Long enough that none ends before the ring is full of them, even under
 * TSan on a loaded machine (where filling it took over a second). */
static void sleep_3s(void *opaque)
{
    coblk_co_sleep_ns(3000000000);
    ++*(int *)opaque;
}

static void test_timed_wait_without_ext_arg(void **state)
{
    unsigned features = ctx->ring.features;
    int slept = 0;

    ctx->ring.features &= ~IORING_FEAT_EXT_ARG;
    double start = now_ns();
    coblk_aio_poll(ctx, false);
    aio_poll_timeout(ctx, 20000000);
    /* (valgrind's loop waits in slices of a millisecond instead.) */
    assert_true(now_ns() - start >= 20e6 || RUNNING_ON_VALGRIND);
    coblk_co_enter(coblk_co_create(sleep_30ms, &slept));
    for (int turns = 0; !slept; turns++) {
        aio_poll_timeout(ctx, 5000000);
        assert_true(turns < 1000);
    }
    assert_int_equal(slept, 1);
    while (ctx->inflight > 1) {
        aio_poll_timeout(ctx, 5000000);
    }
    /* A full ring leaves no room for the timeout SQE: the timed wait must
     * not wait for room, which has no limit (here: 3 seconds). */
    int sleepers_done = 0;
    while (ctx->inflight < ctx->inflight_max) {
        coblk_co_enter(coblk_co_create(sleep_3s, &sleepers_done));
    }
    aio_poll_timeout(ctx, 20000000);
    assert_int_equal(sleepers_done, 0);
    while (ctx->inflight > 1) {
        aio_poll_timeout(ctx, 5000000);
    }
    assert_true(sleepers_done > 0);
    ctx->ring.features = features;
}

/* The counters, through the public call. */
static void test_aio_stats(void **state)
{
    struct coblk_aio_stats stats;
    unsigned char tail[8];

    assert_int_equal(coblk_aio_stats(NULL, &stats, sizeof(stats)), -EINVAL);
    assert_int_equal(coblk_aio_stats(ctx, NULL, sizeof(stats)), -EINVAL);
    ctx->stats.sq_full = 7;
    ctx->stats.cq_overflows = 3;
    assert_int_equal(coblk_aio_stats(ctx, &stats, sizeof(stats)), 0);
    assert_int_equal(stats.sq_full, 7);
    assert_int_equal(stats.cq_overflows, 3);
    assert_true(stats.submits > 0);
    /* An older caller's shorter struct, a newer one's longer: a prefix,
     * and zeroes past what the library has. */
    uint64_t first = 99;
    assert_int_equal(coblk_aio_stats(ctx, (void *)&first, sizeof(first)), 0);
    assert_int_equal(first, stats.submits);
    struct {
        struct coblk_aio_stats known;
        unsigned char more[8];
    } longer;
    memset(&longer, 0xff, sizeof(longer));
    assert_int_equal(coblk_aio_stats(ctx, (void *)&longer, sizeof(longer)),
                     0);
    memset(tail, 0, sizeof(tail));
    assert_memory_equal(longer.more, tail, sizeof(tail));
    assert_int_equal(longer.known.sq_full, 7);
    ctx->stats.sq_full = 0;
    ctx->stats.cq_overflows = 0;
}

/* ---- CoMutex ----------------------------------------------------------------------- */

struct counter {
    coblk_co_mutex lock;
    long value;
    int inside;             /* coroutines inside the critical section */
    int overlaps;
    int rounds;
    atomic_int finished;
};

static void increment_across_yields(void *opaque)
{
    struct counter *c = opaque;

    for (int i = 0; i < c->rounds; i++) {
        coblk_co_mutex_lock(&c->lock);
        c->overlaps += c->inside++ != 0;
        long seen = c->value;
        yield_to_loop();            /* others run, and must wait */
        c->value = seen + 1;
        c->inside--;
        coblk_co_mutex_unlock(&c->lock);
    }
    atomic_fetch_add(&c->finished, 1);
}

static void test_co_mutex_one_thread(void **state)
{
    struct counter c = { .rounds = 200 };

    coblk_co_mutex_init(&c.lock);
    for (int i = 0; i < 50; i++) {
        coblk_co_enter(coblk_co_create(increment_across_yields, &c));
    }
    while (atomic_load(&c.finished) < 50) {
        coblk_aio_poll(ctx, true);
    }
    assert_int_equal(c.value, 50 * 200);
    assert_int_equal(c.overlaps, 0);
}

static void start_incrementer(void *opaque)
{
    coblk_co_enter(coblk_co_create(increment_across_yields, opaque));
}

static void test_co_mutex_across_threads(void **state)
{
    coblk_iothread *threads[2];
    struct counter c = { .rounds = RUNNING_ON_VALGRIND ? 20 : 500 };

    coblk_co_mutex_init(&c.lock);
    for (int t = 0; t < 2; t++) {
        assert_int_equal(coblk_iothread_new("mutex", &threads[t]), 0);
    }
    for (int i = 0; i < 40; i++) {
        coblk_aio_bh_schedule(coblk_iothread_aio(threads[i % 2]),
                              start_incrementer, &c);
    }
    while (atomic_load(&c.finished) < 40) {
        usleep(1000);
    }
    for (int t = 0; t < 2; t++) {
        coblk_iothread_join(threads[t]);
    }
    assert_int_equal(c.value, 40L * c.rounds);
    assert_int_equal(c.overlaps, 0);
}

static void unlock_unheld(void *opaque)
{
    coblk_co_mutex_unlock(opaque);
}

static void unlock_unheld_in_child(void *unused)
{
    coblk_co_mutex m;

    coblk_co_mutex_init(&m);
    coblk_co_enter(coblk_co_create(unlock_unheld, &m));
}

static void test_unlocking_unheld_mutex_aborts(void **state)
{
    char err[4096];
    int status = run_in_child(unlock_unheld_in_child, NULL, err,
                              sizeof(err));

    assert_non_null(strstr(err, "coblk_co_mutex_unlock"));
    assert_non_null(strstr(err, "does not hold it"));
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
}

/* ---- CoQueue ------------------------------------------------------------------------ */

struct queue_test {
    coblk_co_queue queue;
    int woken[8];
    int count;
};

static void wait_in_queue(void *opaque)
{
    struct queue_test *qt = opaque;
    int me = qt->count++;

    coblk_co_queue_wait(&qt->queue, NULL);
    qt->woken[me]++;
}

static void test_co_queue_next_and_restart_all(void **state)
{
    struct queue_test qt = { .count = 0 };

    coblk_co_queue_init(&qt.queue);
    assert_true(coblk_co_queue_empty(&qt.queue));
    for (int i = 0; i < 5; i++) {
        coblk_co_enter(coblk_co_create(wait_in_queue, &qt));
    }
    assert_false(coblk_co_queue_empty(&qt.queue));

    /* next wakes exactly the first waiter, at once (we are not in one). */
    assert_true(coblk_co_queue_next(&qt.queue));
    int after_next[8] = { 1 };
    assert_memory_equal(qt.woken, after_next, sizeof(after_next));

    coblk_co_queue_restart_all(&qt.queue);
    int after_all[8] = { 1, 1, 1, 1, 1 };
    assert_memory_equal(qt.woken, after_all, sizeof(after_all));
    assert_true(coblk_co_queue_empty(&qt.queue));
    assert_false(coblk_co_queue_next(&qt.queue));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_rejects_bad_arguments),
        cmocka_unit_test(test_current_is_per_thread),
        cmocka_unit_test(test_wake_from_coroutine_runs_after_it_yields),
        cmocka_unit_test(test_waking_itself_aborts),
        cmocka_unit_test(test_cross_thread_ping_pong),
        cmocka_unit_test(test_scheduling_twice_aborts),
        cmocka_unit_test(test_polling_from_another_thread_aborts),
        cmocka_unit_test(test_bottom_halves_from_other_threads),
        cmocka_unit_test(test_timers_never_early),
        cmocka_unit_test(sleep_outside),
        cmocka_unit_test(test_fd_readiness_on_pipe),
        cmocka_unit_test(test_tiny_ring_completes_every_nop_once),
        cmocka_unit_test(test_cq_overflow_loses_no_completion),
        cmocka_unit_test(test_plain_ring_fallback_works),
        cmocka_unit_test(test_timed_wait_without_ext_arg),
        cmocka_unit_test(test_aio_stats),
        cmocka_unit_test(test_co_mutex_one_thread),
        cmocka_unit_test(test_co_mutex_across_threads),
        cmocka_unit_test(test_unlocking_unheld_mutex_aborts),
        cmocka_unit_test(test_co_queue_next_and_restart_all),
    };

    return cmocka_run_group_tests_name("aio", tests, setup, teardown);
}
