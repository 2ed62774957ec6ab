/*
 * The L2 cache: slices of L2 tables (4 KiB, or the cluster when smaller),
 * found by their file offset in a hash table, evicted least recently used
 * first.  A slice is read without the image's lock held, so that misses
 * of many requests overlap; requests that want a slice being read wait
 * for it.  Everything else happens under the lock (qcow2_state.lock).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"

#define NO_SLICE UINT32_MAX
#define MIN_SLICES 4u
#define MAX_SLICES (1u << 20)

int qcow2_cache_init(qcow2_cache *c, uint64_t bytes, uint32_t granule)
{
    uint64_t nr = bytes / granule;

    nr = nr < MIN_SLICES ? MIN_SLICES : nr > MAX_SLICES ? MAX_SLICES : nr;
    *c = (qcow2_cache){ .slice_bytes = granule, .nr_slices = (uint32_t)nr,
                        .nr_buckets = 1 };
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

/* The least recently used slice not being read, or NO_SLICE. */
static uint32_t victim(qcow2_cache *c)
{
    uint32_t best = NO_SLICE;

    for (uint32_t i = 0; i < c->nr_slices; i++) {
        const qcow2_slice *sl = &c->slices[i];
        if (!sl->loading &&
            (best == NO_SLICE || sl->last_use < c->slices[best].last_use)) {
            best = i;
            if (!sl->offset) {
                break;      /* empty: as good as it gets */
            }
        }
    }
    return best;
}

/* Reads the slice at offset into slice `index`, dropping the lock. */
static int coroutine_fn load(qcow2_state *s, uint32_t index, uint64_t offset)
{
    qcow2_cache *c = &s->l2_cache;
    qcow2_slice *sl = &c->slices[index];

    if (sl->offset) {
        unlink_slice(c, index);
    }
    sl->offset = offset;
    uint32_t *bucket = bucket_of(c, offset);
    sl->hash_next = *bucket;
    *bucket = index;
    sl->loading = true;

    coblk_co_mutex_unlock(&s->lock);
    int ret = coblk_pread(s->file, sl->entries, c->slice_bytes, offset);
    coblk_co_mutex_lock(&s->lock);

    sl->loading = false;
    if (ret < 0) {
        unlink_slice(c, index);     /* whoever waits tries again */
    }
    coblk_co_queue_restart_all(&sl->loaded);
    return ret;
}

int coroutine_fn qcow2_cache_get(qcow2_state *s, uint64_t offset,
                                 uint64_t **entries)
{
    qcow2_cache *c = &s->l2_cache;

    for (;;) {
        uint32_t i = lookup(c, offset);
        if (i == NO_SLICE) {
            i = victim(c);
            if (i == NO_SLICE) {
                /* Every slice is being read: wait for one. */
                coblk_co_queue_wait(&c->slices[0].loaded, &s->lock);
                continue;
            }
            int ret = load(s, i, offset);
            if (ret < 0) {
                return ret;
            }
            continue;   /* looked up again: it may have gone meanwhile */
        }
        qcow2_slice *sl = &c->slices[i];
        if (sl->loading) {
            coblk_co_queue_wait(&sl->loaded, &s->lock);
            continue;
        }
        sl->last_use = ++c->clock;
        *entries = sl->entries;
        return 0;
    }
}
