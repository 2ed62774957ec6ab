/*
 * The image's lock, and the sequence count that lets a read look a
 * cached L2 entry up without it (map.c, qcow2_map_cached).
 *
 * The count is odd exactly while a coroutine holds the lock, and every
 * change to what a lookup reads (the L1 table, L2 slices and their hash
 * chains, the header's fields) is made with the lock held.  A lookup that
 * saw the same even count before and after its reads saw no change
 * half-made: nobody held the lock in between.  What it reads may still
 * change under it, so it only reads memory that stays valid (the cache's
 * arrays live as long as the image; L1 tables are kept until close, see
 * qcow2_publish_l1) and gives up, to take the locked path, at anything
 * odd.
 */
#include "config.h"

#include <stdlib.h>

#include "qcow2.h"

#ifdef __SANITIZE_THREAD__
/* TSan cannot see that the count orders the lookup's reads against the
 * writers' changes; it is told to ignore those reads (only reads: the
 * lookup writes nothing but through atomics). */
void AnnotateIgnoreReadsBegin(const char *file, int line);
void AnnotateIgnoreReadsEnd(const char *file, int line);
#endif

static void seq_bump(qcow2_state *s)
{
    unsigned seq = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);

    /* Release: to a lookup that sees the new count, everything written
     * before it is visible. */
    __atomic_store_n(&s->seq, seq + 1, __ATOMIC_RELEASE);
}

void coroutine_fn qcow2_lock(qcow2_state *s)
{
    coblk_co_mutex_lock(&s->lock);
    seq_bump(s);
#ifndef __SANITIZE_THREAD__
    /* No change below becomes visible before the count is odd. */
    __atomic_thread_fence(__ATOMIC_RELEASE);
#endif
}

void coroutine_fn qcow2_unlock(qcow2_state *s)
{
    seq_bump(s);
    coblk_co_mutex_unlock(&s->lock);
}

void coroutine_fn qcow2_wait(qcow2_state *s, coblk_co_queue *queue)
{
    seq_bump(s);
    coblk_co_queue_wait(queue, &s->lock);
    seq_bump(s);
#ifndef __SANITIZE_THREAD__
    __atomic_thread_fence(__ATOMIC_RELEASE);
#endif
}

bool qcow2_read_begin(qcow2_state *s, unsigned *seq)
{
    *seq = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
    if (*seq & 1) {
        return false;
    }
#ifdef __SANITIZE_THREAD__
    AnnotateIgnoreReadsBegin(__FILE__, __LINE__);
#endif
    return true;
}

bool qcow2_read_valid(qcow2_state *s, unsigned seq)
{
#ifdef __SANITIZE_THREAD__
    AnnotateIgnoreReadsEnd(__FILE__, __LINE__);
    /* TSan knows no fences; a read-modify-write orders as well. */
    return __atomic_fetch_add(&s->seq, 0, __ATOMIC_ACQ_REL) == seq;
#else
    /* The lookup's reads are done before the count is read again. */
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    return __atomic_load_n(&s->seq, __ATOMIC_RELAXED) == seq;
#endif
}

/* ---- L1 tables a lookup may read -------------------------------------- */

void qcow2_publish_l1(qcow2_state *s)
{
    qcow2_l1_view *v = malloc(sizeof(*v));

    if (v) {
        *v = (qcow2_l1_view){ .table = s->l1, .entries = s->h.l1_size,
                              .older = s->l1_views };
        s->l1_views = v;
    }
    /* Without memory for a view, lookups take the lock until the next
     * table is published. */
    __atomic_store_n(&s->l1_view, v, __ATOMIC_RELEASE);
}

void qcow2_retire_l1(qcow2_state *s, uint64_t *table)
{
    for (qcow2_l1_view *v = s->l1_views; v; v = v->older) {
        if (v->table == table) {
            v->owns_table = true;   /* a lookup may still read it */
            return;
        }
    }
    free(table);
}

void qcow2_free_l1_views(qcow2_state *s)
{
    while (s->l1_views) {
        qcow2_l1_view *v = s->l1_views;
        s->l1_views = v->older;
        if (v->owns_table) {
            free((void *)v->table);
        }
        free(v);
    }
    s->l1_view = NULL;
}
