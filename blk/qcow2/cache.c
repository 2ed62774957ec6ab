/*
 * Metadata caches (L2 tables, refcount blocks): slices of 4 KiB (or the
 * cluster when smaller), found by their file offset in a hash table,
 * evicted least recently used first.  A slice is read without the image's
 * lock held, so that misses of many requests overlap; requests that want
 * a slice being read wait for it.  Everything else happens under the lock
 * (qcow2_state.lock), also writing dirty slices back, which is rare on
 * the request path (evicting a dirty slice) and done in bulk by flush --
 * but for lookups without the lock (qcow2_cache_peek, and lock.c), which
 * read slices and note when they last used one.
 *
 * Write-back keeps the image consistent at every moment: a cache whose
 * slices point at clusters (L2) is written only after the cache that
 * counts them (refcounts) is written and flushed, so an L2 entry on disk
 * never points at a cluster the refcounts on disk call free.
 *
 * Entries pointers stay valid only until the next call that may yield
 * (any cache_get, flush, or I/O): the caller looks a slice up again.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"

#define NO_SLICE UINT32_MAX
#define MIN_SLICES 4u
#define MAX_SLICES (1u << 20)

int qcow2_cache_init(qcow2_cache *c, uint64_t bytes, uint32_t granule,
                     qcow2_cache *depends_on)
{
    uint64_t nr = bytes / granule;

    nr = nr < MIN_SLICES ? MIN_SLICES : nr > MAX_SLICES ? MAX_SLICES : nr;
    *c = (qcow2_cache){ .slice_bytes = granule, .nr_slices = (uint32_t)nr,
                        .nr_buckets = 1, .depends_on = depends_on };
    while (c->nr_buckets < 2 * nr) {
        c->nr_buckets <<= 1;
    }
    c->slices = calloc(nr, sizeof(*c->slices));
    c->buckets = malloc(c->nr_buckets * sizeof(*c->buckets));
    /* Aligned for O_DIRECT reads straight into the slices. */
    if (posix_memalign(&c->memory, 4096, nr * granule)) {
        c->memory = NULL;
    }
    if (!c->slices || !c->buckets || !c->memory) {
        qcow2_cache_free(c);
        return blk_error(-ENOMEM, "qcow2: out of memory for a %llu-byte "
                         "L2 cache", (unsigned long long)bytes);
    }
    memset(c->buckets, 0xff, c->nr_buckets * sizeof(*c->buckets));
    for (uint32_t i = 0; i < nr; i++) {
        c->slices[i].entries = (uint64_t *)((char *)c->memory +
                                            (size_t)i * granule);
        c->slices[i].hash_next = NO_SLICE;
        coblk_co_queue_init(&c->slices[i].loaded);
    }
    return 0;
}

void qcow2_cache_free(qcow2_cache *c)
{
    free(c->slices);
    free(c->buckets);
    free(c->memory);
    *c = (qcow2_cache){ 0 };
}

static uint32_t *bucket_of(qcow2_cache *c, uint64_t offset)
{
    uint64_t h = (offset >> 9) * 0x9e3779b97f4a7c15ull;
    return &c->buckets[(h >> 32) & (c->nr_buckets - 1)];
}

static uint32_t lookup(qcow2_cache *c, uint64_t offset)
{
    uint32_t i = *bucket_of(c, offset);

    while (i != NO_SLICE && c->slices[i].offset != offset) {
        i = c->slices[i].hash_next;
    }
    return i;
}

static void unlink_slice(qcow2_cache *c, uint32_t index)
{
    uint32_t *link = bucket_of(c, c->slices[index].offset);

    while (*link != index) {
        link = &c->slices[*link].hash_next;
    }
    *link = c->slices[index].hash_next;
    c->slices[index].offset = 0;
    c->slices[index].hash_next = NO_SLICE;
}

/* last_use is also set by lookups without the lock (qcow2_cache_peek). */
static uint64_t last_use(const qcow2_slice *sl)
{
    return __atomic_load_n(&sl->last_use, __ATOMIC_RELAXED);
}

static void touch(qcow2_cache *c, qcow2_slice *sl)
{
    __atomic_store_n(&sl->last_use, ++c->clock, __ATOMIC_RELAXED);
}

/* The least recently used slice not being read, or NO_SLICE; clean ones
 * first, so that a read rarely waits for a write. */
static uint32_t victim(qcow2_cache *c)
{
    uint32_t best = NO_SLICE;

    for (uint32_t i = 0; i < c->nr_slices; i++) {
        const qcow2_slice *sl = &c->slices[i];
        if (sl->loading) {
            continue;
        }
        if (!sl->offset) {
            return i;       /* empty: as good as it gets */
        }
        const qcow2_slice *b = best == NO_SLICE ? NULL : &c->slices[best];
        if (!b || (b->dirty && !sl->dirty) ||
            (b->dirty == sl->dirty && last_use(sl) < last_use(b))) {
            best = i;
        }
    }
    return best;
}

/* Writes one dirty slice back, after what it depends on; lock held. */
static int coroutine_fn write_back(qcow2_state *s, qcow2_cache *c,
                                   qcow2_slice *sl)
{
    if (c->depends_on) {
        int ret = qcow2_cache_flush(s, c->depends_on);
        if (ret < 0) {
            return ret;
        }
    }
    struct iovec iov = { sl->entries, c->slice_bytes };
    int ret = coblk_co_pwritev(s->file, sl->offset, c->slice_bytes, &iov, 1,
                               0);
    if (ret < 0) {
        return blk_error(ret, "qcow2: writing metadata at %#llx: %s",
                         (unsigned long long)sl->offset, strerror(-ret));
    }
    sl->dirty = false;
    return 0;
}

int coroutine_fn qcow2_cache_flush(qcow2_state *s, qcow2_cache *c)
{
    bool wrote = false;

    for (uint32_t i = 0; i < c->nr_slices; i++) {
        qcow2_slice *sl = &c->slices[i];
        if (sl->dirty) {
            int ret = write_back(s, c, sl);
            if (ret < 0) {
                return ret;
            }
            wrote = true;
        }
    }
    /* Durable before anything that depends on it is written. */
    return wrote ? coblk_co_flush(s->file) : 0;
}

/* Makes slice `index` hold offset: written back if dirty, then linked. */
static int coroutine_fn claim(qcow2_state *s, qcow2_cache *c, uint32_t index,
                              uint64_t offset)
{
    qcow2_slice *sl = &c->slices[index];

    if (sl->dirty) {
        int ret = write_back(s, c, sl);
        if (ret < 0) {
            return ret;
        }
    }
    if (sl->offset) {
        unlink_slice(c, index);
    }
    sl->offset = offset;
    uint32_t *bucket = bucket_of(c, offset);
    sl->hash_next = *bucket;
    *bucket = index;
    return 0;
}

/* Reads the slice at offset into slice `index`, dropping the lock unless
 * the cache keeps it. */
static int coroutine_fn load(qcow2_state *s, qcow2_cache *c, uint32_t index,
                             uint64_t offset)
{
    qcow2_slice *sl = &c->slices[index];
    int ret = claim(s, c, index, offset);

    if (ret < 0) {
        return ret;
    }
    /* Set and cleared with the lock held: a lookup without it trusts a
     * slice not so marked (qcow2_cache_peek) while this one fills. */
    sl->loading = true;
    if (!c->keep_lock) {
        qcow2_unlock(s);
    }
    ret = coblk_pread(s->file, sl->entries, c->slice_bytes, offset);
    if (!c->keep_lock) {
        qcow2_lock(s);
    }

    sl->loading = false;
    if (ret < 0 || sl->forgotten) {
        unlink_slice(c, index);     /* whoever waits tries again */
        sl->forgotten = false;
    }
    coblk_co_queue_restart_all(&sl->loaded);
    return ret;
}

/* Finds the slice at offset, or a slot for it (*found false). */
static int coroutine_fn find(qcow2_state *s, qcow2_cache *c, uint64_t offset,
                             uint32_t *index, bool *found)
{
    for (;;) {
        uint32_t i = lookup(c, offset);
        if (i != NO_SLICE && c->slices[i].loading) {
            qcow2_wait(s, &c->slices[i].loaded);
            continue;   /* it may have failed, and gone */
        }
        if (i == NO_SLICE) {
            i = victim(c);
            if (i == NO_SLICE) {
                /* Every slice is being read: wait for one. */
                qcow2_wait(s, &c->slices[0].loaded);
                continue;
            }
            *found = false;
        } else {
            *found = true;
        }
        *index = i;
        return 0;
    }
}

int coroutine_fn qcow2_cache_get(qcow2_state *s, qcow2_cache *c,
                                 uint64_t offset, uint64_t **entries)
{
    for (;;) {
        uint32_t i;
        bool found;
        int ret = find(s, c, offset, &i, &found);
        if (ret == 0 && !found) {
            ret = load(s, c, i, offset);
            if (ret == 0) {
                continue;   /* looked up again: it may have gone meanwhile */
            }
        }
        if (ret < 0) {
            return ret;
        }
        qcow2_slice *sl = &c->slices[i];
        touch(c, sl);
        *entries = sl->entries;
        return 0;
    }
}

int coroutine_fn qcow2_cache_get_empty(qcow2_state *s, qcow2_cache *c,
                                       uint64_t offset, uint64_t **entries)
{
    uint32_t i;
    bool found;
    int ret = find(s, c, offset, &i, &found);

    if (ret == 0 && !found) {
        ret = claim(s, c, i, offset);
    }
    if (ret < 0) {
        return ret;
    }
    qcow2_slice *sl = &c->slices[i];
    memset(sl->entries, 0, c->slice_bytes);
    touch(c, sl);
    *entries = sl->entries;
    return 0;
}

const uint64_t *qcow2_cache_peek(qcow2_cache *c, uint64_t offset)
{
    /* Chains change under the walk: it may not end where a lookup with
     * the lock would, but it ends. */
    uint32_t i = __atomic_load_n(bucket_of(c, offset), __ATOMIC_RELAXED);
    for (uint32_t steps = 0; i < c->nr_slices && steps < c->nr_slices;
         steps++) {
        qcow2_slice *sl = &c->slices[i];
        if (__atomic_load_n(&sl->offset, __ATOMIC_RELAXED) == offset) {
            if (__atomic_load_n(&sl->loading, __ATOMIC_RELAXED)) {
                return NULL;
            }
            uint64_t now = __atomic_load_n(&c->clock, __ATOMIC_RELAXED);
            if (last_use(sl) != now) {
                __atomic_store_n(&sl->last_use, now, __ATOMIC_RELAXED);
            }
            return sl->entries;
        }
        i = __atomic_load_n(&sl->hash_next, __ATOMIC_RELAXED);
    }
    return NULL;
}

void qcow2_cache_mark_dirty(qcow2_cache *c, const uint64_t *entries)
{
    size_t index = (size_t)((const char *)entries - (char *)c->memory) /
                   c->slice_bytes;

    c->slices[index].dirty = true;
}

/* A slice being read may hold what was there before: its loader drops it
 * (load()). */
void qcow2_cache_forget(qcow2_cache *c, uint64_t offset, uint64_t bytes)
{
    for (uint32_t i = 0; i < c->nr_slices; i++) {
        qcow2_slice *sl = &c->slices[i];
        if (!sl->offset || sl->offset < offset ||
            sl->offset - offset >= bytes) {
            continue;
        }
        if (sl->loading) {
            sl->forgotten = true;
        } else {
            sl->dirty = false;
            unlink_slice(c, i);
        }
    }
}
