/*
 * Internal snapshots: the snapshot table, read and checked at open, listed
 * by coblk_image_info(), and one snapshot's contents opened read-only
 * (qcow2:snapshot=ID-OR-NAME:FILE) by reading through its L1 table.
 * Creating, applying and deleting them: snapshot-edit.c.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"

#define ENTRY_FIXED_BYTES 40u
#define EXTRA_MAX 1024u                 /* QEMU's bound too */

static char *copy_field(const uint8_t *p, uint32_t len)
{
    char *s = malloc(len + 1);

    if (s) {
        memcpy(s, p, len);
        s[len] = '\0';
    }
    return s;
}

/* One entry at table + *at (of table_bytes), checked. */
static int parse_entry(qcow2_state *s, const uint8_t *table,
                       uint64_t table_bytes, uint64_t *at,
                       qcow2_snapshot *snap, uint32_t index)
{
    if (table_bytes - *at < ENTRY_FIXED_BYTES) {
        return blk_error(-EINVAL, "qcow2: snapshot %" PRIu32 " is cut off "
                         "by the end of the snapshot table", index);
    }
    const uint8_t *e = table + *at;
    uint32_t id_len = (uint32_t)e[12] << 8 | e[13];
    uint32_t name_len = (uint32_t)e[14] << 8 | e[15];
    uint32_t extra = qcow2_be32(e + 36);
    uint64_t len = ENTRY_FIXED_BYTES + (uint64_t)extra + id_len + name_len;

    if (extra > EXTRA_MAX || len > table_bytes - *at) {
        return blk_error(-EINVAL, "qcow2: snapshot %" PRIu32 " (extra data "
                         "%" PRIu32 " bytes, names %" PRIu32 " and %" PRIu32
                         ") does not fit in the snapshot table", index,
                         extra, id_len, name_len);
    }
    *snap = (qcow2_snapshot){
        .l1_offset = qcow2_be64(e), .l1_size = qcow2_be32(e + 8),
        .date_sec = qcow2_be32(e + 16), .date_nsec = qcow2_be32(e + 20),
        .vm_clock_nsec = qcow2_be64(e + 24),
        .vm_state_size = qcow2_be32(e + 32), .disk_size = s->h.size,
        .icount = -1,
    };
    const uint8_t *x = e + ENTRY_FIXED_BYTES;
    if (extra >= 8) {
        snap->vm_state_size = qcow2_be64(x);
    }
    if (extra >= 16) {
        snap->disk_size = qcow2_be64(x + 8);
    }
    if (extra >= 24) {
        snap->icount = (int64_t)qcow2_be64(x + 16);
    }
    /* As QEMU: misaligned (or the header) is wrong; past the end of the
     * file is not, and reads as zeroes. */
    if (snap->l1_size > QCOW2_L1_MAX_BYTES / 8) {
        snap->l1_error = -EFBIG;
    } else if (snap->l1_size &&
               (snap->l1_offset == 0 ||
                (snap->l1_offset & (s->cluster_size - 1)))) {
        snap->l1_error = -EINVAL;
    }
    snap->id = copy_field(x + extra, id_len);
    snap->name = copy_field(x + extra + id_len, name_len);
    /* Kept whole: a rewritten table keeps what later versions put there. */
    snap->extra_len = extra;
    snap->extra = extra ? malloc(extra) : NULL;
    if (snap->extra) {
        memcpy(snap->extra, x, extra);
    }
    if (!snap->id || !snap->name || (extra && !snap->extra)) {
        return blk_error(-ENOMEM, "out of memory");
    }
    *at += (len + 7) & ~7ull;
    return 0;
}

int qcow2_snapshot_info_build(qcow2_state *s)
{
    free(s->snapshot_info);
    s->snapshot_info = calloc(s->h.nb_snapshots + 1,
                              sizeof(*s->snapshot_info));
    if (!s->snapshot_info) {
        return blk_error(-ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < s->h.nb_snapshots; i++) {
        const qcow2_snapshot *snap = &s->snapshots[i];
        s->snapshot_info[i] = (struct coblk_snapshot_info){
            .id = snap->id, .name = snap->name,
            .vm_state_size = snap->vm_state_size,
            .date_sec = snap->date_sec, .date_nsec = snap->date_nsec,
            .vm_clock_nsec = snap->vm_clock_nsec,
            .disk_size = snap->disk_size, .icount = snap->icount };
    }
    return 0;
}

int qcow2_read_snapshots(qcow2_state *s)
{
    uint32_t n = s->h.nb_snapshots;

    if (!n) {
        return 0;
    }
    /* The table's length is known only entry by entry: read what the
     * file holds from its start, within the bound. */
    uint64_t avail = s->file->size - s->h.snapshots_offset;
    uint64_t bytes = avail < QCOW2_SNAPSHOT_TABLE_MAX
                         ? avail : QCOW2_SNAPSHOT_TABLE_MAX;
    uint8_t *table = malloc(bytes);
    s->snapshots = calloc(n, sizeof(*s->snapshots));
    if (!table || !s->snapshots) {
        free(table);
        return blk_error(-ENOMEM, "out of memory");
    }
    int ret = coblk_pread(s->file, table, bytes, s->h.snapshots_offset);
    uint64_t at = 0;
    for (uint32_t i = 0; ret == 0 && i < n; i++) {
        ret = parse_entry(s, table, bytes, &at, &s->snapshots[i], i);
    }
    free(table);
    s->snapshots_bytes = at;
    return ret == 0 ? qcow2_snapshot_info_build(s) : ret;
}

void qcow2_snapshot_fields_free(qcow2_snapshot *sn)
{
    free(sn->id);
    free(sn->name);
    free(sn->extra);
}

void qcow2_free_snapshot_list(qcow2_snapshot *list, uint32_t n)
{
    for (uint32_t i = 0; list && i < n; i++) {
        qcow2_snapshot_fields_free(&list[i]);
    }
    free(list);
}

void qcow2_free_snapshots(qcow2_state *s)
{
    qcow2_free_snapshot_list(s->snapshots, s->h.nb_snapshots);
    free(s->snapshot_info);
    s->snapshots = NULL;
    s->snapshot_info = NULL;
}

int qcow2_snapshot_l1_usable(const qcow2_snapshot *sn)
{
    if (sn->l1_error == -EFBIG) {
        return blk_error(-EFBIG, "Snapshot L1 table too large");
    }
    if (sn->l1_error) {
        return blk_error(sn->l1_error, "Snapshot L1 table offset invalid");
    }
    return 0;
}

int qcow2_select_snapshot(qcow2_state *s, const char *which)
{
    const qcow2_snapshot *found = NULL;

    /* By id first, then by name, as qemu-img -l looks them up. */
    for (uint32_t i = 0; !found && i < s->h.nb_snapshots; i++) {
        if (!strcmp(s->snapshots[i].id, which)) {
            found = &s->snapshots[i];
        }
    }
    for (uint32_t i = 0; !found && i < s->h.nb_snapshots; i++) {
        if (!strcmp(s->snapshots[i].name, which)) {
            found = &s->snapshots[i];
        }
    }
    if (!found) {
        return blk_error(-ENOENT, "qcow2: no snapshot '%s' in %s", which,
                         blk_dev_filename(s->file));
    }
    int ret = qcow2_snapshot_l1_usable(found);
    if (ret < 0) {
        return ret;
    }
    uint64_t shift = s->h.cluster_bits + s->l2_bits;
    uint64_t needed = (found->disk_size + (1ull << shift) - 1) >> shift;
    if (found->disk_size > INT64_MAX || found->l1_size < needed) {
        return blk_error(-EINVAL, "qcow2: snapshot '%s' has a size its L1 "
                         "table does not cover", which);
    }
    s->h.l1_offset = found->l1_offset;
    s->h.l1_size = found->l1_size;
    s->h.size = found->disk_size;
    return 0;
}
