/*
 * The image's lock, and the sequence count that lets a read look a
 * cached L2 entry up without it (map.c, qcow2_map_cached).
 *
 * The count is odd exactly while a coroutine holds the lock.  What a
 * lookup reads changes only while the count is odd (the L1 table, the
 * header's fields, L2 slices: their offsets, hash chains and entries),
 * with two exceptions it copes with: a slice being read in (cache.c,
 * load()) fills with the lock dropped, but is marked `loading` with the
 * lock held, and a lookup does not use a slice so marked; and the file's
 * size grows without the lock (io.c), read once, atomically.  A lookup
 * that saw the same even count before and after its reads saw no change
 * half-made: nobody held the lock in between.  What it reads may change
 * under it all the same, so it reads only memory that stays valid (the
 * cache's arrays live as long as the image, every L1 table until close:
 * qcow2_reserve_l1) and gives up, to take the locked path, at anything
 * odd.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"

#ifdef __SANITIZE_THREAD__
/* TSan cannot see that the count orders the lookup's reads against the
 * writers' changes; it is told to ignore those reads (only reads: the
 * lookup writes nothing but through atomics).  Nor does it model fences;
 * they are kept all the same, for what the code does under it. */
void AnnotateIgnoreReadsBegin(const char *file, int line);
void AnnotateIgnoreReadsEnd(const char *file, int line);
#pragma GCC diagnostic ignored "-Wtsan"
#endif

static void seq_bump(qcow2_state *s)
{
    unsigned long seq = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);

    /* Release: to a lookup that sees the new count, everything written
     * before it is visible. */
    __atomic_store_n(&s->seq, seq + 1, __ATOMIC_RELEASE);
}

/* After the count turned odd: no change made from here on becomes
 * visible before it. */
static void seq_odd(qcow2_state *s)
{
    seq_bump(s);
    __atomic_thread_fence(__ATOMIC_RELEASE);
}

void coroutine_fn qcow2_lock(qcow2_state *s)
{
    coblk_co_mutex_lock(&s->lock);
    seq_odd(s);
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
    seq_odd(s);
}

bool qcow2_read_begin(qcow2_state *s, unsigned long *seq)
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

bool qcow2_read_valid(qcow2_state *s, unsigned long seq)
{
#ifdef __SANITIZE_THREAD__
    AnnotateIgnoreReadsEnd(__FILE__, __LINE__);
#endif
    /* The lookup's reads are done before the count is read again. */
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    return __atomic_load_n(&s->seq, __ATOMIC_RELAXED) == seq;
}

/* ---- reads in flight ---------------------------------------------------- */

/* Counted in the phase that is current once counted: a phase that ends
 * later sees the read (qcow2_reads_ended), and changes made before an
 * earlier one ended (clusters dropped) are visible to its lookup, which
 * read that phase's start.  A phase that ended between the load and the
 * count would see neither: the count is taken back, and the read tries
 * the new phase.  Sequentially consistent throughout. */
unsigned qcow2_read_pin(qcow2_state *s)
{
    for (;;) {
        unsigned phase = __atomic_load_n(&s->read_phase, __ATOMIC_SEQ_CST);
        __atomic_fetch_add(&s->reads[phase & 1], 1, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&s->read_phase, __ATOMIC_SEQ_CST) == phase) {
            return phase & 1;
        }
        __atomic_fetch_sub(&s->reads[phase & 1], 1, __ATOMIC_SEQ_CST);
    }
}

void qcow2_read_unpin(qcow2_state *s, unsigned phase)
{
    __atomic_fetch_sub(&s->reads[phase], 1, __ATOMIC_RELEASE);
}

bool qcow2_reads_ended(qcow2_state *s, unsigned phase)
{
    return __atomic_load_n(&s->reads[phase], __ATOMIC_SEQ_CST) == 0;
}

unsigned qcow2_next_read_phase(qcow2_state *s)
{
    unsigned ended = s->read_phase;

    /* Counted on, not flipped: a read that loaded the phase before can
     * tell it changed even if it changed twice. */
    __atomic_store_n(&s->read_phase, ended + 1, __ATOMIC_SEQ_CST);
    return ended & 1;
}

/* ---- L1 tables a lookup may read -------------------------------------- */

int qcow2_reserve_l1(qcow2_state *s, uint32_t entries)
{
    if (entries <= s->l1_capacity && s->l1) {
        return 0;
    }
    /* Doubling: the tables kept for lookups add up to less than the one
     * in use. */
    uint64_t room = (uint64_t)s->l1_capacity * 2;
    room = room < entries ? entries : room;
    room = room > QCOW2_L1_MAX_BYTES / 8 ? QCOW2_L1_MAX_BYTES / 8 : room;
    room = room ? room : 1;
    uint64_t *table = calloc(room, 8);
    qcow2_l1_view *v = malloc(sizeof(*v));
    if (!table || !v) {
        free(table);
        free(v);
        return blk_error(-ENOMEM, "qcow2: out of memory for an L1 table "
                         "of %u entries", entries);
    }
    if (s->l1) {
        memcpy(table, s->l1, (size_t)s->h.l1_size * 8);
    }
    *v = (qcow2_l1_view){ .table = table, .capacity = (uint32_t)room,
                          .older = s->l1_views };
    s->l1_views = v;
    s->l1 = table;
    s->l1_capacity = (uint32_t)room;
    __atomic_store_n(&s->l1_view, v, __ATOMIC_RELEASE);
    return 0;
}

void qcow2_free_l1_views(qcow2_state *s)
{
    while (s->l1_views) {
        qcow2_l1_view *v = s->l1_views;
        s->l1_views = v->older;
        free(v->table);
        free(v);
    }
    s->l1_view = NULL;
    s->l1 = NULL;
    s->l1_capacity = 0;
}
