/*
 * Worker threads for CPU-bound work a coroutine should not do on its
 * event loop's thread (compressing clusters): the coroutine hands a job
 * (or several) to the pool and yields; the worker that ran the last wakes
 * the coroutine with coblk_aio_co_wake(), which from a foreign thread
 * always schedules, so the wake cannot overtake the yield.  One pool per
 * process, started on first use with a thread per CPU (at most
 * WORKERS_MAX), stopped at exit.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "blk-int.h"

#define WORKERS_MAX 16

/* Jobs handed over together, and the coroutine waiting for the last. */
struct worker_batch {
    atomic_uint left;
    coblk_co *co;
};

struct worker_job {
    int (*fn)(void *opaque);
    void *opaque;
    int ret;
    struct worker_batch *batch;
    struct worker_job *next;
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t work;
    struct worker_job *head, *tail;
    pthread_t threads[WORKERS_MAX];
    unsigned nr_threads;
    bool started, stopping;
} pool = { .lock = PTHREAD_MUTEX_INITIALIZER,
           .work = PTHREAD_COND_INITIALIZER };

static void *worker_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&pool.lock);
    for (;;) {
        while (!pool.head && !pool.stopping) {
            pthread_cond_wait(&pool.work, &pool.lock);
        }
        if (!pool.head) {
            break;
        }
        struct worker_job *job = pool.head;
        pool.head = job->next;
        if (!pool.head) {
            pool.tail = NULL;
        }
        pthread_mutex_unlock(&pool.lock);
        job->ret = job->fn(job->opaque);
        /* The batch lives on the waiting coroutine's stack: after the
         * last job's count, only the waker may touch it. */
        struct worker_batch *batch = job->batch;
        if (atomic_fetch_sub_explicit(&batch->left, 1,
                                      memory_order_acq_rel) == 1) {
            coblk_aio_co_wake(batch->co);
        }
        pthread_mutex_lock(&pool.lock);
    }
    pthread_mutex_unlock(&pool.lock);
    return NULL;
}

/* With pool.lock held.  A pool without threads runs jobs in the caller. */
static void start_pool(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned n = cpus < 1 ? 1 : cpus > WORKERS_MAX ? WORKERS_MAX
                                                   : (unsigned)cpus;
    pool.started = true;
    while (pool.nr_threads < n &&
           pthread_create(&pool.threads[pool.nr_threads], NULL, worker_main,
                          NULL) == 0) {
        pool.nr_threads++;
    }
}

__attribute__((destructor)) static void stop_pool(void)
{
    pthread_mutex_lock(&pool.lock);
    pool.stopping = true;
    pthread_cond_broadcast(&pool.work);
    pthread_mutex_unlock(&pool.lock);
    for (unsigned i = 0; i < pool.nr_threads; i++) {
        pthread_join(pool.threads[i], NULL);
    }
    pool.nr_threads = 0;
}

/* Runs the n jobs on the pool, or in the caller when it has no
 * threads, and waits for all of them. */
static void coroutine_fn run_jobs(struct worker_job *jobs, unsigned n)
{
    struct worker_batch batch = { .co = coblk_co_self() };

    atomic_init(&batch.left, n);
    pthread_mutex_lock(&pool.lock);
    if (!pool.started) {
        start_pool();
    }
    if (!pool.nr_threads || pool.stopping) {
        pthread_mutex_unlock(&pool.lock);
        for (unsigned i = 0; i < n; i++) {
            jobs[i].ret = jobs[i].fn(jobs[i].opaque);
        }
        return;
    }
    for (unsigned i = 0; i < n; i++) {
        jobs[i].batch = &batch;
        jobs[i].next = NULL;
        if (pool.tail) {
            pool.tail->next = &jobs[i];
        } else {
            pool.head = &jobs[i];
        }
        pool.tail = &jobs[i];
    }
    if (n == 1) {
        pthread_cond_signal(&pool.work);
    } else {
        pthread_cond_broadcast(&pool.work);
    }
    pthread_mutex_unlock(&pool.lock);
    coblk_co_yield();
}

int coroutine_fn blk_co_run_in_worker(int (*fn)(void *opaque), void *opaque)
{
    struct worker_job job = { .fn = fn, .opaque = opaque };

    run_jobs(&job, 1);
    return job.ret;
}

int coroutine_fn blk_co_run_in_workers(int (*fn)(void *opaque),
                                       void *const opaques[], unsigned n)
{
    if (!n) {
        return 0;
    }
    struct worker_job *jobs = calloc(n, sizeof(*jobs));
    if (!jobs) {
        return -ENOMEM;
    }
    for (unsigned i = 0; i < n; i++) {
        jobs[i] = (struct worker_job){ .fn = fn, .opaque = opaques[i] };
    }
    run_jobs(jobs, n);
    int ret = 0;
    for (unsigned i = 0; i < n && !ret; i++) {
        ret = jobs[i].ret;
    }
    free(jobs);
    return ret;
}
