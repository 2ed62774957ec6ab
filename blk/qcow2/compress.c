/*
 * Compressed writes (COBLK_REQ_F_COMPRESS), as qemu-img convert -c makes
 * them: whole clusters only (the last one of the image may be short),
 * each compressed on its own with the image's compression type (raw
 * deflate, or zstd) and packed into host clusters at byte granularity.
 * A host cluster's refcount counts the compressed clusters that touch it.
 * Data that does not shrink is written as a plain cluster.
 */
#include "config.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "qcow2.h"

/* Each worker thread's compression state, made at its first job and
 * reused: zlib and zstd set up tables of hundreds of KiB for a stream
 * (measured on 2 CPUs: convert -c of the 1 GiB benchmark image with zstd,
 * 0.89 s with a new context per cluster, 0.83 s so). */
struct compressors {
    z_stream z;
    bool z_ready;
    ZSTD_CCtx *zstd;
};

static pthread_key_t compressors_key;
static pthread_once_t compressors_once = PTHREAD_ONCE_INIT;
static bool compressors_keyed;

static void compressors_free(void *opaque)
{
    struct compressors *c = opaque;

    if (c->z_ready) {
        deflateEnd(&c->z);
    }
    ZSTD_freeCCtx(c->zstd);
    free(c);
}

static void compressors_key_create(void)
{
    compressors_keyed = pthread_key_create(&compressors_key,
                                           compressors_free) == 0;
}

/* This thread's, or NULL when out of memory (or of thread keys). */
static struct compressors *thread_compressors(void)
{
    pthread_once(&compressors_once, compressors_key_create);
    if (!compressors_keyed) {
        return NULL;
    }
    struct compressors *c = pthread_getspecific(compressors_key);
    if (!c && (c = calloc(1, sizeof(*c))) &&
        pthread_setspecific(compressors_key, c)) {
        free(c);
        c = NULL;
    }
    return c;
}

/* Compresses in into out (out_len bytes of room); returns the length, or
 * 0 when it does not fit, or without memory for the state: the cluster is
 * then written as it is. */
static size_t deflate_raw(const uint8_t *in, size_t in_len, uint8_t *out,
                          size_t out_len)
{
    struct compressors *c = thread_compressors();

    if (!c) {
        return 0;
    }
    /* Raw deflate with a 4 KiB window, as QEMU writes it. */
    if (!c->z_ready) {
        c->z_ready = deflateInit2(&c->z, Z_DEFAULT_COMPRESSION, Z_DEFLATED,
                                  -12, 9, Z_DEFAULT_STRATEGY) == Z_OK;
    } else {
        c->z_ready = deflateReset(&c->z) == Z_OK;
    }
    if (!c->z_ready) {
        return 0;
    }
    c->z.next_in = (Bytef *)in;
    c->z.avail_in = (uInt)in_len;
    c->z.next_out = out;
    c->z.avail_out = (uInt)out_len;
    int ret = deflate(&c->z, Z_FINISH);
    return ret == Z_STREAM_END ? out_len - c->z.avail_out : 0;
}

static size_t compress_zstd(const uint8_t *in, size_t in_len, uint8_t *out,
                            size_t out_len)
{
    struct compressors *c = thread_compressors();

    if (c && !c->zstd) {
        c->zstd = ZSTD_createCCtx();
    }
    if (!c || !c->zstd) {
        return 0;
    }
    size_t n = ZSTD_compressCCtx(c->zstd, out, out_len, in, in_len,
                                 ZSTD_CLEVEL_DEFAULT);
    return ZSTD_isError(n) ? 0 : n;
}

/* Room for len compressed bytes: in the host cluster being filled when
 * they fit there, else in a new cluster (the bytes spanning both when it
 * comes right after).  Counts the references.  Lock held. */
static int coroutine_fn alloc_bytes(qcow2_state *s, uint64_t len,
                                    uint64_t *host)
{
    uint64_t mask = s->cluster_size - 1;
    uint64_t next = s->compressed_next;
    bool partial = next && (next & mask);

    if (partial && len <= s->cluster_size - (next & mask)) {
        /* One more compressed cluster in this host cluster. */
        int ret = qcow2_update_refcounts(s, next & ~mask, 1, +1);
        if (ret < 0) {
            return ret;
        }
        *host = next;
    } else {
        uint64_t clusters = (len + mask) >> s->h.cluster_bits;
        bool fresh;
        int ret = qcow2_alloc_clusters(s, partial ? 1 : clusters, host,
                                       &fresh);
        if (ret < 0) {
            return ret;
        }
        /* Right after the partial one (len < a cluster): span the two
         * rather than leave the partial one's end unused. */
        if (partial && *host == (next & ~mask) + s->cluster_size) {
            ret = qcow2_update_refcounts(s, next & ~mask, 1, +1);
            if (ret < 0) {
                qcow2_update_refcounts(s, *host, 1, -1);
                return ret;
            }
            *host = next;
        }
    }
    s->compressed_next = *host + len;
    return 0;
}

/* The L2 descriptor of len compressed bytes at host. */
static uint64_t descriptor(const qcow2_state *s, uint64_t host, uint64_t len)
{
    unsigned x = 62 - (s->h.cluster_bits - 8);
    uint64_t extra_sectors = ((host + len - 1) >> 9) - (host >> 9);

    return QCOW2_OFLAG_COMPRESSED | extra_sectors << x | host;
}

/* Stores one guest cluster's compressed data; owns the cluster. */
static int coroutine_fn store_compressed(qcow2_state *s, uint64_t cluster,
                                         const uint8_t *data, uint64_t len)
{
    uint64_t host, *entry;
    unsigned x = 62 - (s->h.cluster_bits - 8);
    int ret = alloc_bytes(s, len, &host);

    if (ret == 0 && host + len > (1ull << x)) {
        ret = blk_error(-EFBIG, "qcow2: compressed data past %" PRIu64
                        " bytes into the file cannot be described",
                        (uint64_t)1 << x);
    }
    if (ret < 0) {
        return ret;
    }
    qcow2_unlock(s);
    struct iovec iov = { (void *)data, len };
    ret = coblk_co_pwritev(s->file, host, len, &iov, 1, 0);
    qcow2_lock(s);
    if (ret == 0) {
        ret = qcow2_l2_entry(s, cluster, true, &entry);
    }
    if (ret < 0) {
        qcow2_update_refcounts(s, host & ~(s->cluster_size - 1), 1, -1);
        return ret;
    }
    uint64_t old = be64toh(entry[0]);
    entry[0] = htobe64(descriptor(s, host, len));
    if (s->l2_entry_bytes == 16) {
        entry[1] = 0;       /* compressed clusters have no subclusters */
    }
    qcow2_cache_mark_dirty(&s->l2_cache, entry);
    return qcow2_unref_entry(s, old);
}

struct compress_job {
    bool zstd;
    const uint8_t *in;
    size_t in_len;
    uint8_t *out;
    size_t room, len;
};

static int compress_job(void *opaque)
{
    struct compress_job *j = opaque;

    j->len = j->zstd ? compress_zstd(j->in, j->in_len, j->out, j->room)
                     : deflate_raw(j->in, j->in_len, j->out, j->room);
    return 0;
}

/* One guest cluster at offset, the input of job, which compressed it (to
 * nothing when it did not shrink: then it is written as it is). */
static int coroutine_fn store_cluster(struct coblk_dev *dev, uint64_t offset,
                                      const struct compress_job *job)
{
    qcow2_state *s = dev->opaque;
    uint64_t bytes = dev->size - offset < s->cluster_size
                         ? dev->size - offset : s->cluster_size;

    if (!job->len) {
        struct iovec iov = { (void *)job->in, bytes };
        return qcow2_co_pwritev(dev, offset, bytes, &iov, 1, 0);
    }
    qcow2_inflight mine;
    qcow2_lock(s);
    int ret = qcow2_own_exclusive(s, &mine, offset, offset + s->cluster_size);
    if (ret == 0) {
        ret = store_compressed(s, offset, job->out, job->len);
        qcow2_release(s, &mine);
    }
    qcow2_unlock(s);
    return ret;
}

/* Clusters a request compresses at once, on all the worker threads: at
 * most this many, and this much of its data (which bounds its buffers). */
#define BATCH_CLUSTERS 64u
#define BATCH_BYTES (4u << 20)

/* A request's clusters, compressed in batches on the worker threads and
 * stored in their order, so that a request's compressed clusters lie in
 * the file as in the guest. */
struct compress_batch {
    unsigned max;
    uint8_t *in, *out;
    struct compress_job *jobs;
    void **opaques;
};

static int batch_init(struct compress_batch *b, const qcow2_state *s,
                      uint64_t clusters)
{
    uint64_t most = BATCH_BYTES >> s->h.cluster_bits;   /* 2 or more */

    most = most < BATCH_CLUSTERS ? most : BATCH_CLUSTERS;
    b->max = (unsigned)(clusters < most ? clusters : most);
    b->in = malloc(2 * b->max * s->cluster_size);
    b->out = b->in ? b->in + b->max * s->cluster_size : NULL;
    b->jobs = calloc(b->max, sizeof(*b->jobs));
    b->opaques = calloc(b->max, sizeof(*b->opaques));
    return b->in && b->jobs && b->opaques ? 0 : -ENOMEM;
}

static void batch_free(struct compress_batch *b)
{
    free(b->in);
    free(b->jobs);
    free(b->opaques);
}

/* Compresses and stores n clusters of the request, from done on. */
static int coroutine_fn batch_run(struct coblk_dev *dev,
                                  struct compress_batch *b, uint64_t offset,
                                  uint64_t bytes, const struct iovec *iov,
                                  unsigned iovcnt, uint64_t done, unsigned n)
{
    qcow2_state *s = dev->opaque;
    uint64_t cs = s->cluster_size;

    for (unsigned i = 0; i < n; i++) {
        uint64_t at = done + i * cs;
        uint64_t len = bytes - at < cs ? bytes - at : cs;
        uint8_t *in = b->in + i * cs;
        memset(in + len, 0, cs - len);
        iov_to_buf(iov, iovcnt, at, in, len);
        b->jobs[i] = (struct compress_job){
            .zstd = s->h.compression_type == QCOW2_COMPRESS_ZSTD,
            .in = in, .in_len = cs, .out = b->out + i * cs,
            .room = cs - 1,         /* smaller, or not at all */
        };
        b->opaques[i] = &b->jobs[i];
    }
    int ret = blk_co_run_in_workers(compress_job, b->opaques, n);
    for (unsigned i = 0; ret == 0 && i < n; i++) {
        ret = store_cluster(dev, offset + done + i * cs, &b->jobs[i]);
    }
    return ret;
}

int coroutine_fn qcow2_co_pwritev_compressed(struct coblk_dev *dev,
                                             uint64_t offset, uint64_t bytes,
                                             const struct iovec *iov,
                                             unsigned iovcnt)
{
    qcow2_state *s = dev->opaque;
    uint64_t mask = s->cluster_size - 1;

    if ((offset & mask) || ((bytes & mask) && offset + bytes != dev->size)) {
        return blk_error(-EINVAL, "qcow2: compressed writes take whole "
                         "clusters of %" PRIu64 " bytes", s->cluster_size);
    }
    uint64_t clusters = (bytes + mask) >> s->h.cluster_bits;
    int ret = clusters ? qcow2_data_will_change(dev) : 0;
    if (!clusters || ret < 0) {
        return ret;
    }
    struct compress_batch b;
    ret = batch_init(&b, s, clusters);
    for (uint64_t done = 0; ret == 0 && done < bytes;
         done += (uint64_t)b.max << s->h.cluster_bits) {
        uint64_t left = clusters - (done >> s->h.cluster_bits);
        ret = batch_run(dev, &b, offset, bytes, iov, iovcnt, done,
                        left < b.max ? (unsigned)left : b.max);
    }
    batch_free(&b);
    return ret;
}
