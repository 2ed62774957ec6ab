/*
 * Worker threads for CPU-bound work a coroutine should not do on its
 * event loop's thread (compressing clusters): the coroutine hands a job
 * to the pool and yields; the worker that ran it wakes the coroutine with
 * coblk_aio_co_wake(), which from a foreign thread always schedules, so
 * the wake cannot overtake the yield.  One pool per process, started on
 * first use with a thread per CPU (at most WORKERS_MAX), stopped at exit.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <unistd.h>

#include "blk-int.h"

#define WORKERS_MAX 16

struct worker_job {
    int (*fn)(void *opaque);
    void *opaque;
    int ret;
    coblk_co *co;
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
        coblk_aio_co_wake(job->co);
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

int coroutine_fn blk_co_run_in_worker(int (*fn)(void *opaque), void *opaque)
{
    struct worker_job job = { .fn = fn, .opaque = opaque,
                              .co = coblk_co_self() };

    pthread_mutex_lock(&pool.lock);
    if (!pool.started) {
        start_pool();
    }
    if (!pool.nr_threads || pool.stopping) {
        pthread_mutex_unlock(&pool.lock);
        return fn(opaque);
    }
    if (pool.tail) {
        pool.tail->next = &job;
    } else {
        pool.head = &job;
    }
    pool.tail = &job;
    pthread_cond_signal(&pool.work);
    pthread_mutex_unlock(&pool.lock);
    coblk_co_yield();
    return job.ret;
}
