/*
 * The coroutine pool: terminated coroutines keep their stacks and are handed
 * out again, so creating one costs a few pointer moves, not an mmap.
 *
 * The seed's two levels, with what QEMU learned since:
 * - each thread keeps up to CO_POOL_LOCAL_BATCHES batches of CO_POOL_BATCH
 *   idle coroutines, touched without locks or atomics;
 * - beyond that whole batches move to and from a shared pool under a mutex:
 *   one lock per CO_POOL_BATCH creates or terminates at worst, and never the
 *   seed's "grab the entire global list";
 * - the shared pool is bounded: CO_POOL_SHARED_DEFAULT, or what users
 *   reserve if that is more; reservations are capped below
 *   vm.max_map_count, since every stack costs two mappings;
 * - a coroutine may terminate on another thread than it was created on: it
 *   simply joins the pool of the thread it terminated on;
 * - a thread's own batches are freed when the thread exits.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#include "coroutine-int.h"

typedef struct local_pool {
    coblk_co *partial;          /* a batch being filled or emptied */
    unsigned partial_count;
    coblk_co *full;             /* full batches, linked by batch_next */
    unsigned full_count;
    bool exit_hook_set;
} local_pool;

/* initial-exec: libcoblk is linked at start-up, and the general model
 * costs a __tls_get_addr call per coroutine. */
static __thread local_pool local __attribute__((tls_model("initial-exec")));

static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static coblk_co *shared_batches;        /* linked by batch_next */
static atomic_uint shared_batch_count;  /* read without the lock as a hint */
static unsigned shared_reserved;        /* under shared_lock */

static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;
static pthread_key_t exit_key;

static void destroy_batch(coblk_co *batch)
{
    while (batch) {
        coblk_co *next = batch->pool_next;
        co_destroy(batch);
        batch = next;
    }
}

static void destroy_batches(coblk_co *batches)
{
    while (batches) {
        coblk_co *next = batches->batch_next;
        destroy_batch(batches);
        batches = next;
    }
}

static void free_local_pool(void *unused)
{
    destroy_batch(local.partial);
    destroy_batches(local.full);
    local = (local_pool){ 0 };
}

static void make_exit_key(void)
{
    if (pthread_key_create(&exit_key, free_local_pool) != 0) {
        /* Without the hook an exiting thread's pool leaks; say so once. */
        fputs("coblk: pthread_key_create failed: coroutine pools of exiting "
              "threads will not be freed\n", stderr);
    }
}

static void set_exit_hook(void)
{
    pthread_once(&exit_key_once, make_exit_key);
    /* Any non-NULL value makes the destructor run at thread exit. */
    pthread_setspecific(exit_key, &local);
    local.exit_hook_set = true;
}

/* Reserved coroutines are in use or idle, never both: the pool needs room
 * for all of them idle, not for that on top of its default. */
static unsigned shared_max_locked(void)
{
    return shared_reserved > CO_POOL_SHARED_DEFAULT ? shared_reserved
                                                     : CO_POOL_SHARED_DEFAULT;
}

/* Returns a full batch from the shared pool, or NULL. */
static coblk_co *shared_pop(void)
{
    if (atomic_load_explicit(&shared_batch_count, memory_order_relaxed) == 0) {
        return NULL;
    }
    pthread_mutex_lock(&shared_lock);
    coblk_co *batch = shared_batches;
    if (batch) {
        shared_batches = batch->batch_next;
        atomic_fetch_sub_explicit(&shared_batch_count, 1,
                                  memory_order_relaxed);
    }
    pthread_mutex_unlock(&shared_lock);
    return batch;
}

/* Gives a full batch to the shared pool; false if that would pass its bound. */
static bool shared_push(coblk_co *batch)
{
    bool taken = false;

    pthread_mutex_lock(&shared_lock);
    unsigned count = atomic_load_explicit(&shared_batch_count,
                                          memory_order_relaxed);
    if ((count + 1) * CO_POOL_BATCH <= shared_max_locked()) {
        batch->batch_next = shared_batches;
        shared_batches = batch;
        atomic_store_explicit(&shared_batch_count, count + 1,
                              memory_order_relaxed);
        taken = true;
    }
    pthread_mutex_unlock(&shared_lock);
    return taken;
}

coblk_co *co_pool_get(size_t stack_size)
{
    if (!local.partial) {
        if (local.full) {
            local.partial = local.full;
            local.full = local.full->batch_next;
            local.full_count--;
        } else {
            local.partial = shared_pop();
        }
        if (!local.partial) {
            return NULL;
        }
        local.partial_count = CO_POOL_BATCH;
    }

    coblk_co *co = local.partial;
    local.partial = co->pool_next;
    local.partial_count--;
    if (co->stack_asked != stack_size) {
        /* Made before coblk_co_set_stack_size() changed the size. */
        co_destroy(co);
        return NULL;
    }
    return co;
}

void co_pool_put(coblk_co *co)
{
    if (!local.exit_hook_set) {
        set_exit_hook();
    }
    co->pool_next = local.partial;
    local.partial = co;
    if (++local.partial_count < CO_POOL_BATCH) {
        return;
    }

    local.partial->batch_next = local.full;
    local.full = local.partial;
    local.full_count++;
    local.partial = NULL;
    local.partial_count = 0;
    /* The partial batch counts as one of this thread's batches. */
    if (local.full_count < CO_POOL_LOCAL_BATCHES) {
        return;
    }
    coblk_co *batch = local.full;
    local.full = batch->batch_next;
    local.full_count--;
    if (!shared_push(batch)) {
        destroy_batch(batch);
    }
}

static unsigned long max_map_count(void)
{
    unsigned long count = 65530;    /* the kernel's default */
    FILE *f = fopen("/proc/sys/vm/max_map_count", "re");

    if (f) {
        if (fscanf(f, "%lu", &count) != 1) {
            count = 65530;
        }
        fclose(f);
    }
    return count;
}

/* At most this many coroutines reserved: each stack is two mappings
 * (stack and guard), and CO_MAPS_KEPT stay for the rest of the process
 * (libraries, malloc arenas, threads' stacks) and the coroutines beyond
 * the reservations (a thread's idle batches, its own). */
#define CO_MAPS_KEPT 16384ul

static unsigned reserve_ceiling(void)
{
    static unsigned ceiling;

    if (!ceiling) {
        unsigned long maps = max_map_count();
        ceiling = (unsigned)(maps > 2 * CO_MAPS_KEPT
                                 ? (maps - CO_MAPS_KEPT) / 2 : maps / 4);
    }
    return ceiling;
}

void co_pool_get_stats(co_pool_stats *stats)
{
    stats->local_idle = local.partial_count +
                        local.full_count * CO_POOL_BATCH;
    pthread_mutex_lock(&shared_lock);
    stats->shared_idle = atomic_load(&shared_batch_count) * CO_POOL_BATCH;
    stats->shared_max = shared_max_locked();
    stats->reserved = shared_reserved;
    stats->reserve_max = reserve_ceiling();
    pthread_mutex_unlock(&shared_lock);
}

int coblk_co_pool_reserve(unsigned n)
{
    int ret = 0;

    pthread_mutex_lock(&shared_lock);
    if ((unsigned long)shared_reserved + n > reserve_ceiling()) {
        ret = -E2BIG;
    } else {
        shared_reserved += n;
    }
    pthread_mutex_unlock(&shared_lock);
    return ret;
}

void coblk_co_pool_unreserve(unsigned n)
{
    coblk_co *excess = NULL;

    pthread_mutex_lock(&shared_lock);
    shared_reserved -= n < shared_reserved ? n : shared_reserved;
    unsigned count = atomic_load(&shared_batch_count);
    while (count * CO_POOL_BATCH > shared_max_locked()) {
        coblk_co *batch = shared_batches;
        shared_batches = batch->batch_next;
        batch->batch_next = excess;
        excess = batch;
        count--;
    }
    atomic_store(&shared_batch_count, count);
    pthread_mutex_unlock(&shared_lock);
    destroy_batches(excess);
}
