/*
 * iothreads: a thread that runs its own event loop context until joined.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aio-int.h"

#define IOTHREAD_POLL_NS 32768

struct coblk_iothread {
    pthread_t thread;
    coblk_aio *ctx;
    atomic_bool stopping;
    sem_t started;
    int start_error;            /* coblk_aio_new()'s, read after `started` */
    char name[16];
};

static void *iothread_run(void *opaque)
{
    coblk_iothread *t = opaque;

    pthread_setname_np(pthread_self(), t->name);
    t->start_error = coblk_aio_new(0, 0, &t->ctx);
    sem_post(&t->started);
    if (t->start_error < 0) {
        return NULL;
    }
    /* QEMU's iothread default (poll-max-ns): an idle iothread answers
     * another thread in well under a microsecond instead of several. */
    coblk_aio_set_poll_ns(t->ctx, IOTHREAD_POLL_NS);
    while (!atomic_load_explicit(&t->stopping, memory_order_relaxed)) {
        coblk_aio_poll(t->ctx, true);
    }
    coblk_aio_free(t->ctx);
    return NULL;
}

int coblk_iothread_new(const char *name, coblk_iothread **out)
{
    coblk_iothread *t = calloc(1, sizeof(*t));
    if (!t) {
        return -ENOMEM;
    }
    snprintf(t->name, sizeof(t->name), "%s", name ? name : "coblk-io");
    sem_init(&t->started, 0, 0);
    int ret = pthread_create(&t->thread, NULL, iothread_run, t);
    if (ret != 0) {
        sem_destroy(&t->started);
        free(t);
        return -ret;
    }
    while (sem_wait(&t->started) < 0 && errno == EINTR) {
    }
    if (t->start_error < 0) {
        ret = t->start_error;
        pthread_join(t->thread, NULL);
        sem_destroy(&t->started);
        free(t);
        return ret;
    }
    *out = t;
    return 0;
}

coblk_aio *coblk_iothread_aio(coblk_iothread *t)
{
    return t->ctx;
}

static void stop_bh(void *opaque)
{
    coblk_iothread *t = opaque;

    atomic_store_explicit(&t->stopping, true, memory_order_relaxed);
}

void coblk_iothread_join(coblk_iothread *t)
{
    if (!t) {
        return;
    }
    /* Set by the thread itself, in a bottom half, so the loop wakes up. */
    while (coblk_aio_bh_schedule(t->ctx, stop_bh, t) < 0) {
        sched_yield();
    }
    pthread_join(t->thread, NULL);
    sem_destroy(&t->started);
    free(t);
}
