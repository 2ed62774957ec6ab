/*
 * Which clusters hold metadata (header, L1 table, refcount table and
 * blocks, L2 tables, the snapshot table and the snapshots' L1 tables
 * (their L2 tables, unless shared, only count refcounts)), so that a hostile or damaged image cannot make a
 * guest write or a free land on them: an L2 entry that points at its own
 * table, a compressed descriptor that covers the header.  Kept for images
 * opened read-write only; a set of cluster indices, open addressing.
 *
 * What is found corrupt while writing marks the image corrupt (the header
 * bit QEMU sets too) and stops every further write: damage must not grow.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"

static uint64_t slot_of(const qcow2_meta *m, uint64_t key)
{
    return (key * 0x9e3779b97f4a7c15ull) >> (64 - m->bits);
}

/* Grows the table to hold at least `want` keys at half load. */
static int reserve(qcow2_meta *m, uint64_t want)
{
    if (want * 2 <= ((uint64_t)1 << m->bits) && m->keys) {
        return 0;
    }
    unsigned bits = m->bits ? m->bits : 6;
    while (((uint64_t)1 << bits) < want * 2) {
        bits++;
    }
    uint64_t *keys = calloc((size_t)1 << bits, sizeof(*keys));
    if (!keys) {
        return -ENOMEM;
    }
    qcow2_meta old = *m;
    m->keys = keys;
    m->bits = bits;
    m->count = 0;
    for (uint64_t i = 0; old.keys && i < ((uint64_t)1 << old.bits); i++) {
        if (old.keys[i]) {
            uint64_t slot = slot_of(m, old.keys[i]);
            while (m->keys[slot]) {
                slot = (slot + 1) & (((uint64_t)1 << m->bits) - 1);
            }
            m->keys[slot] = old.keys[i];
            m->count++;
        }
    }
    free(old.keys);
    return 0;
}

static bool has(const qcow2_meta *m, uint64_t cluster)
{
    uint64_t key = cluster + 1;

    if (!m->keys) {
        return false;
    }
    for (uint64_t slot = slot_of(m, key); m->keys[slot];
         slot = (slot + 1) & (((uint64_t)1 << m->bits) - 1)) {
        if (m->keys[slot] == key) {
            return true;
        }
    }
    return false;
}

/* Adds clusters [first, first + n); -EEXIST if one is there already. */
static int add(qcow2_meta *m, uint64_t first, uint64_t n)
{
    int ret = reserve(m, m->count + n);

    for (uint64_t c = first; ret == 0 && c < first + n; c++) {
        uint64_t key = c + 1, slot = slot_of(m, key);
        while (m->keys[slot] && m->keys[slot] != key) {
            slot = (slot + 1) & (((uint64_t)1 << m->bits) - 1);
        }
        if (m->keys[slot]) {
            return -EEXIST;
        }
        m->keys[slot] = key;
        m->count++;
    }
    return ret;
}

static int add_bytes(qcow2_state *s, uint64_t offset, uint64_t bytes,
                     const char *what)
{
    uint64_t first = offset >> s->h.cluster_bits;
    uint64_t n = (bytes + s->cluster_size - 1) >> s->h.cluster_bits;
    int ret = add(&s->meta, first, n ? n : 1);

    if (ret == -EEXIST) {
        return blk_error(-EINVAL, "qcow2: the image is corrupt: %s at %#"
                         PRIx64 " overlaps other metadata", what, offset);
    }
    return ret;
}

int qcow2_meta_build(qcow2_state *s)
{
    qcow2_meta_free(s);
    int ret = add_bytes(s, 0, s->cluster_size, "the header");
    if (ret == 0 && s->h.l1_size) {
        ret = add_bytes(s, s->h.l1_offset, (uint64_t)s->h.l1_size * 8,
                        "the L1 table");
    }
    if (ret == 0) {
        ret = add_bytes(s, s->h.refcount_table_offset,
                        (uint64_t)s->h.refcount_table_clusters
                            << s->h.cluster_bits, "the refcount table");
    }
    for (uint64_t i = 0; ret == 0 && i < s->reftable_entries; i++) {
        uint64_t block = s->reftable[i] & QCOW2_L1E_OFFSET_MASK;
        if (block) {
            ret = add_bytes(s, block, s->cluster_size, "a refcount block");
        }
    }
    for (uint32_t i = 0; ret == 0 && i < s->h.l1_size; i++) {
        uint64_t table = s->l1[i] & QCOW2_L1E_OFFSET_MASK;
        if (table) {
            ret = add_bytes(s, table, s->cluster_size, "an L2 table");
        }
    }
    if (ret == 0 && s->h.nb_snapshots) {
        ret = add_bytes(s, s->h.snapshots_offset, s->snapshots_bytes,
                        "the snapshot table");
    }
    for (uint32_t i = 0; ret == 0 && i < s->h.nb_snapshots; i++) {
        const qcow2_snapshot *sn = &s->snapshots[i];
        if (sn->l1_size && !sn->l1_error) {
            ret = add_bytes(s, sn->l1_offset, (uint64_t)sn->l1_size * 8,
                            "a snapshot's L1 table");
        }
    }
    return ret;
}

void qcow2_meta_free(qcow2_state *s)
{
    free(s->meta.keys);
    s->meta = (qcow2_meta){ 0 };
}

int qcow2_meta_add(qcow2_state *s, uint64_t offset, uint64_t bytes,
                   const char *what)
{
    return s->meta.keys ? add_bytes(s, offset, bytes, what) : 0;
}

bool qcow2_meta_overlaps(const qcow2_state *s, uint64_t offset,
                         uint64_t bytes)
{
    uint64_t first = offset >> s->h.cluster_bits;
    uint64_t last = (offset + (bytes ? bytes : 1) - 1) >> s->h.cluster_bits;

    for (uint64_t c = first; c <= last; c++) {
        if (c == 0 || has(&s->meta, c)) {
            return true;
        }
    }
    return false;
}

int qcow2_corrupt(qcow2_state *s, const char *fmt, ...)
{
    char what[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (!s->corrupt) {
        s->corrupt = true;
        /* Best effort: the image is refused writes either way. */
        qcow2_write_incompatible(s, s->h.incompatible |
                                        QCOW2_INCOMPAT_CORRUPT);
    }
    return blk_error(-EIO, "qcow2: the image is corrupt: %s; it is marked "
                     "corrupt and no longer written (repair it with "
                     "qemu-img check -r all)", what);
}
