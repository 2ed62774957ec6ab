/*
 * qcow2 header and header extensions: every field checked before the
 * driver uses it, each refusal naming the field.  An image is untrusted
 * input: a hostile header must get an error, never a crash, a huge
 * allocation or a read outside the file.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"

#define V2_HEADER_BYTES 72u
#define V3_HEADER_BYTES 104u

/* Header extension types. */
enum {
    EXT_END = 0,
    EXT_BACKING_FORMAT = 0xe2792acau,
    EXT_FEATURE_TABLE = 0x6803f857u,
    EXT_BITMAPS = 0x23852875u,
    EXT_CRYPTO = 0x0537be77u,
    EXT_DATA_FILE = 0x44415441u,
};

#define FEATURE_ENTRY_BYTES 48u
#define FEATURE_NAME_BYTES 46u

static const char *const known_incompatible[] = {
    "dirty bit", "corrupt bit", "external data file", "compression type",
    "extended L2 entries",
};

void qcow2_header_free(qcow2_header *h)
{
    free(h->backing_name);
    free(h->backing_format);
    h->backing_name = h->backing_format = NULL;
}

int qcow2_check_table(const struct coblk_dev *file, uint32_t cluster_bits,
                      const char *what, uint64_t offset, uint64_t bytes)
{
    if (offset & ((1ull << cluster_bits) - 1)) {
        return blk_error(-EINVAL, "qcow2: %s offset %#" PRIx64 " is not "
                         "aligned to a cluster", what, offset);
    }
    if (offset == 0) {
        /* QEMU opens it, the header read as the table: its check then
         * reports a cluster of garbage, and -r all grows the file by
         * gigabytes rebuilding from it. */
        return blk_error(-EINVAL, "qcow2: %s offset is 0, the header's "
                         "cluster: the image is corrupt", what);
    }
    if (offset > file->size || bytes > file->size - offset) {
        return blk_error(-EINVAL, "qcow2: %s (%" PRIu64 " bytes at %#"
                         PRIx64 ") is not inside the file (%" PRIu64
                         " bytes)", what, bytes, offset, file->size);
    }
    return 0;
}

int qcow2_pread_zeroed(struct coblk_dev *file, void *buf, uint64_t bytes,
                       uint64_t offset)
{
    uint64_t in_file = offset >= file->size ? 0
                       : file->size - offset < bytes ? file->size - offset
                                                     : bytes;

    memset((uint8_t *)buf + in_file, 0, bytes - in_file);
    return in_file ? coblk_pread(file, buf, in_file, offset) : 0;
}

/* The unknown incompatible features `bits` as qemu-img names them: the
 * names the image's feature table gives, in its order up to the first
 * entry without a name (a last entry cut short counts, zero padded, as
 * in QEMU), then the mask of the bits it does not name. */
static void name_features(const uint8_t *table, uint32_t table_bytes,
                          uint64_t bits, char *out, size_t size)
{
    size_t used = 0;

    out[0] = '\0';
    for (uint32_t e = 0; e < table_bytes && used < size;
         e += FEATURE_ENTRY_BYTES) {
        uint8_t entry[FEATURE_ENTRY_BYTES] = { 0 };
        memcpy(entry, table + e, table_bytes - e < FEATURE_ENTRY_BYTES
                                     ? table_bytes - e : FEATURE_ENTRY_BYTES);
        if (!entry[2]) {
            break;
        }
        if (entry[0] != 0 || entry[1] > 63 || !(bits & (1ull << entry[1]))) {
            continue;
        }
        char name[FEATURE_NAME_BYTES + 1] = "";
        memcpy(name, entry + 2, FEATURE_NAME_BYTES);
        for (char *c = name; *c; c++) {
            *c = *c >= ' ' && *c < 127 ? *c : '?';
        }
        bits &= ~(1ull << entry[1]);
        int n = snprintf(out + used, size - used, "%s%s", used ? ", " : "",
                         name);
        used += n > 0 ? (size_t)n : 0;
    }
    if (bits && used < size) {
        snprintf(out + used, size - used, "%sUnknown incompatible feature: "
                 "%" PRIx64, used ? ", " : "", bits);
    }
}

static int refuse_features(const qcow2_header *h, const uint8_t *table,
                           uint32_t table_bytes)
{
    uint64_t unknown = h->incompatible & ~(uint64_t)QCOW2_INCOMPAT_KNOWN;
    char names[256];

    if (unknown) {
        name_features(table, table_bytes, unknown, names, sizeof(names));
        return blk_error(-ENOTSUP, "Unsupported qcow2 feature(s): %s",
                         names);
    }
    if (h->incompatible & QCOW2_INCOMPAT_DATA_FILE) {
        /* It would make the image read and write a file its owner never
         * named to coblk. */
        return blk_error(-ENOTSUP, "qcow2: the image keeps its data in an "
                         "external data file (%s), which coblk does not "
                         "open", known_incompatible[2]);
    }
    return 0;
}

static int copy_string(const uint8_t *p, uint32_t len, uint32_t max,
                       const char *what, char **out)
{
    if (len == 0 || len > max) {
        return blk_error(-EINVAL, "qcow2: %s is %" PRIu32 " bytes long "
                         "(1 to %" PRIu32 ")", what, len, max);
    }
    if (memchr(p, '\0', len)) {
        return blk_error(-EINVAL, "qcow2: %s contains a NUL byte", what);
    }
    free(*out);
    *out = strndup((const char *)p, len);
    return *out ? 0 : blk_error(-ENOMEM, "out of memory");
}

/* The bitmaps extension's fields, as they are: bitmaps.c checks them
 * where they count. */
static int read_bitmaps_ext(qcow2_header *h, const uint8_t *data,
                            uint32_t len)
{
    if (len != 24) {
        return blk_error(-EINVAL, "qcow2: the bitmaps extension is %" PRIu32
                         " bytes long, not 24", len);
    }
    h->has_bitmaps_ext = true;
    h->nb_bitmaps = qcow2_be32(data);
    h->bitmaps_reserved = qcow2_be32(data + 4);
    h->bitmap_dir_size = qcow2_be64(data + 8);
    h->bitmap_dir_offset = qcow2_be64(data + 16);
    return 0;
}

/* Walks the extensions in [start, end) of the first cluster. */
static int read_extensions(qcow2_header *h, const uint8_t *buf,
                           uint32_t start, uint32_t end,
                           const uint8_t **features, uint32_t *features_len)
{
    uint32_t seen = 0;

    for (uint32_t at = start; at < end;) {
        if (end - at < 8) {
            return blk_error(-EINVAL, "qcow2: header extension at %" PRIu32
                             " is cut off by the end of the first cluster",
                             at);
        }
        uint32_t type = qcow2_be32(buf + at);
        uint32_t len = qcow2_be32(buf + at + 4);
        if (type == EXT_END) {
            return 0;
        }
        if (len > end - at - 8) {
            return blk_error(-EINVAL, "qcow2: header extension %#" PRIx32
                             " is %" PRIu32 " bytes long: past the end of "
                             "the header area", type, len);
        }
        const uint8_t *data = buf + at + 8;
        int ret = 0;
        switch (type) {
        case EXT_BACKING_FORMAT:
            ret = copy_string(data, len, QCOW2_FORMAT_NAME_MAX,
                              "the backing format name",
                              &h->backing_format);
            break;
        case EXT_FEATURE_TABLE:
            *features = data;
            *features_len = len;
            break;
        case EXT_DATA_FILE:
            h->incompatible |= QCOW2_INCOMPAT_DATA_FILE;
            break;
        case EXT_BITMAPS:
            ret = read_bitmaps_ext(h, data, len);
            break;
        default:
            break;      /* unknown extensions: not needed */
        }
        if (ret < 0) {
            return ret;
        }
        if (++seen > 4096) {
            return blk_error(-EINVAL, "qcow2: too many header extensions");
        }
        at += 8 + ((len + 7) & ~7u);
    }
    return 0;
}

/* The fixed fields. */
static int parse_fields(qcow2_header *h, const uint8_t *p, uint64_t file_size)
{
    /* In QEMU's words where it has them (qemu-img prints them); p reads
     * as zeroes past the end of a short file, as QEMU reads it, and the
     * file's length is judged once the fields have been. */
    if (file_size < 4 || qcow2_be32(p) != QCOW2_MAGIC) {
        return blk_error(-EINVAL, "Image is not in qcow2 format");
    }
    h->version = qcow2_be32(p + 4);
    if (h->version != 2 && h->version != 3) {
        return blk_error(-ENOTSUP, "Unsupported qcow2 version %" PRIu32
                         "%s", h->version,
                         h->version == 1 ? " (a qcow image: convert it with "
                                           "qemu-img)" : "");
    }
    h->cluster_bits = qcow2_be32(p + 20);
    if (h->cluster_bits < QCOW2_MIN_CLUSTER_BITS ||
        h->cluster_bits > QCOW2_MAX_CLUSTER_BITS) {
        return blk_error(-EINVAL, "Unsupported cluster size: 2^%" PRIu32,
                         h->cluster_bits);
    }
    h->size = qcow2_be64(p + 24);
    uint32_t crypt = qcow2_be32(p + 32);
    if (crypt) {
        return blk_error(-ENOTSUP, "qcow2: the image is encrypted (%s), "
                         "which coblk does not support",
                         crypt == 1 ? "aes" : crypt == 2 ? "luks" : "?");
    }
    h->l1_size = qcow2_be32(p + 36);
    h->l1_offset = qcow2_be64(p + 40);
    h->refcount_table_offset = qcow2_be64(p + 48);
    h->refcount_table_clusters = qcow2_be32(p + 56);
    h->nb_snapshots = qcow2_be32(p + 60);
    h->snapshots_offset = qcow2_be64(p + 64);
    h->refcount_order = 4;
    h->header_length = V2_HEADER_BYTES;
    if (h->version == 3) {
        h->incompatible = qcow2_be64(p + 72);
        h->compatible = qcow2_be64(p + 80);
        h->autoclear = qcow2_be64(p + 88);
        h->refcount_order = qcow2_be32(p + 96);
        h->header_length = qcow2_be32(p + 100);
        if (h->header_length < V3_HEADER_BYTES) {
            return blk_error(-EINVAL, "qcow2 header too short");
        }
        if (h->header_length > (1u << h->cluster_bits)) {
            return blk_error(-EINVAL, "qcow2 header exceeds cluster size");
        }
        if (h->header_length % 8) {
            return blk_error(-EINVAL, "qcow2: header_length %" PRIu32
                             " is not a multiple of 8", h->header_length);
        }
        if (h->refcount_order > 6) {
            return blk_error(-EINVAL, "Reference count entry width too "
                             "large; may not exceed 64 bits");
        }
    }
    if (file_size < (h->version == 3 ? V3_HEADER_BYTES : V2_HEADER_BYTES)) {
        return blk_error(-EINVAL, "qcow2 header too short");
    }
    return 0;
}

/* Compression type and extended L2, which depend on other fields. */
static int check_feature_fields(qcow2_header *h, const uint8_t *p)
{
    h->compression_type = h->header_length > V3_HEADER_BYTES ? p[104] : 0;
    bool flagged = h->incompatible & QCOW2_INCOMPAT_COMPRESSION;
    if (flagged != (h->compression_type != 0)) {
        return blk_error(-EINVAL, "qcow2: compression_type %" PRIu32
                         " does not match the compression type feature bit",
                         h->compression_type);
    }
    if (h->compression_type > QCOW2_COMPRESS_ZSTD) {
        return blk_error(-ENOTSUP, "qcow2: compression_type %" PRIu32
                         " (coblk knows 0 zlib, 1 zstd)",
                         h->compression_type);
    }
    if ((h->incompatible & QCOW2_INCOMPAT_EXTL2) &&
        h->cluster_bits < QCOW2_EXTL2_MIN_CLUSTER_BITS) {
        return blk_error(-EINVAL, "qcow2: extended L2 entries need "
                         "clusters of 16 KiB or more, not %u bytes",
                         1u << h->cluster_bits);
    }
    return 0;
}

/* The L1 table must cover the virtual size, within the memory limit; the
 * other tables must lie inside the file. */
static int check_tables(const qcow2_header *h, const struct coblk_dev *file)
{
    uint32_t entry_bytes = h->incompatible & QCOW2_INCOMPAT_EXTL2 ? 16 : 8;
    uint32_t l2_bits = h->cluster_bits - (entry_bytes == 16 ? 4 : 3);
    unsigned shift = h->cluster_bits + l2_bits;     /* bytes per L1 entry */

    if (h->size > INT64_MAX) {
        return blk_error(-EFBIG, "qcow2: virtual size %" PRIu64 " is too "
                         "large", h->size);
    }
    uint64_t needed = (h->size + (1ull << shift) - 1) >> shift;
    if (needed > QCOW2_L1_MAX_BYTES / 8) {
        /* QEMU's words: its L1 table would be over 32 MiB. */
        return blk_error(-EFBIG, "Image is too big");
    }
    if (h->l1_size < needed) {
        return blk_error(-EINVAL, "L1 table is too small");
    }
    if (h->l1_size > QCOW2_L1_MAX_BYTES / 8) {
        return blk_error(-EFBIG, "qcow2: l1_size %" PRIu32 " is over %u "
                         "entries", h->l1_size, QCOW2_L1_MAX_BYTES / 8);
    }
    int ret = h->l1_size ? qcow2_check_table(file, h->cluster_bits,
                                             "the L1 table", h->l1_offset,
                                             (uint64_t)h->l1_size * 8)
                         : 0;
    uint64_t reftable = (uint64_t)h->refcount_table_clusters
                        << h->cluster_bits;
    if (ret == 0 && reftable > QCOW2_REFTABLE_MAX_BYTES) {
        ret = blk_error(-EFBIG, "qcow2: refcount_table_clusters %" PRIu32
                        " is over %u MiB", h->refcount_table_clusters,
                        QCOW2_REFTABLE_MAX_BYTES >> 20);
    }
    if (ret == 0 && reftable == 0) {
        ret = blk_error(-EINVAL, "qcow2: the image has no refcount table");
    }
    if (ret == 0) {
        ret = qcow2_check_table(file, h->cluster_bits,
                                "the refcount table",
                                h->refcount_table_offset, reftable);
    }
    if (ret == 0 && h->nb_snapshots > QCOW2_MAX_SNAPSHOTS) {
        ret = blk_error(-EFBIG, "qcow2: nb_snapshots %" PRIu32 " is over "
                        "%u", h->nb_snapshots, QCOW2_MAX_SNAPSHOTS);
    }
    if (ret == 0 && h->nb_snapshots) {
        /* Each entry is at least 40 bytes. */
        ret = qcow2_check_table(file, h->cluster_bits,
                                "the snapshot table", h->snapshots_offset,
                                (uint64_t)h->nb_snapshots * 40);
    }
    return ret;
}

/* The backing file name, in the first cluster after the extensions. */
static int read_backing_name(qcow2_header *h, const uint8_t *buf,
                             uint32_t buf_len, uint64_t name_offset,
                             uint32_t name_len)
{
    if (name_offset == 0) {
        return 0;
    }
    if (name_offset > buf_len || name_len > buf_len - name_offset) {
        return blk_error(-EINVAL, "qcow2: the backing file name (%" PRIu32
                         " bytes at %" PRIu64 ") is not inside the first "
                         "cluster", name_len, name_offset);
    }
    return copy_string(buf + name_offset, name_len, QCOW2_BACKING_NAME_MAX,
                       "the backing file name", &h->backing_name);
}

int qcow2_read_header(struct coblk_dev *file, qcow2_header *h)
{
    uint8_t first[V3_HEADER_BYTES + 8] = { 0 };
    uint64_t first_len = file->size < sizeof(first) ? file->size
                                                     : sizeof(first);

    *h = (qcow2_header){ 0 };
    int ret = coblk_pread(file, first, first_len, 0);
    if (ret < 0) {
        return blk_error(ret, "qcow2: reading the header: %s",
                         strerror(-ret));
    }
    ret = parse_fields(h, first, file->size);
    if (ret == 0) {
        ret = check_feature_fields(h, first);
    }
    if (ret < 0) {
        return ret;
    }
    /* The whole first cluster: extensions and the backing name. */
    uint32_t cluster = 1u << h->cluster_bits;
    uint32_t buf_len = file->size < cluster ? (uint32_t)file->size : cluster;
    uint8_t *buf = malloc(buf_len);
    if (!buf) {
        return blk_error(-ENOMEM, "out of memory");
    }
    ret = coblk_pread(file, buf, buf_len, 0);
    if (ret < 0) {
        ret = blk_error(ret, "qcow2: reading the header: %s",
                        strerror(-ret));
    }
    const uint8_t *features = NULL;
    uint32_t features_len = 0;
    uint64_t name_offset = qcow2_be64(buf + 8);
    uint32_t name_len = qcow2_be32(buf + 16);
    if (ret == 0) {
        /* Extensions (version 2 has them too) end where the backing
         * name starts, if it does. */
        uint32_t end = name_offset && name_offset < buf_len
                           ? (uint32_t)name_offset : buf_len;
        ret = read_extensions(h, buf, h->header_length,
                              end > h->header_length ? end : h->header_length,
                              &features, &features_len);
    }
    if (ret == 0) {
        ret = refuse_features(h, features, features_len);
    }
    if (ret == 0) {
        ret = read_backing_name(h, buf, buf_len, name_offset, name_len);
    }
    if (ret == 0) {
        ret = check_tables(h, file);
    }
    free(buf);
    if (ret < 0) {
        qcow2_header_free(h);
    }
    return ret;
}
