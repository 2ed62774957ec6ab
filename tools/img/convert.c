/*
 * coblk-img convert: copies one or more images (concatenated) into a new
 * or existing image, as qemu-img convert does, on -m coroutines of one
 * thread: each claims the next chunk of the source (up to 2 MiB, cut at
 * block-status boundaries and the target's clusters), reads it, and
 * writes what the target lacks: data, zeroes where the target does not
 * read as zero already, nothing for runs of -S zero bytes on a zeroed
 * target.  Writes start in the source's order unless -W.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>

#include "coblk/co-lock.h"
#include "img/convert.h"
#include "img/img.h"

#define CHUNK_MAX (2u << 20)
#define SPARSE_MAX (16u << 20)
#define COROUTINES_MAX 16

/* Every source ends on a sector, as in qemu-img (it counts in sectors): the
 * part of a sector a source leaves (from start + size to end) reads as
 * zeroes, and is written as zeroes where the target is not (-n). */
struct source {
    struct img img;
    uint64_t start, size;       /* where it goes in the target */
    uint64_t end;               /* where the next one goes */
    uint64_t skip;              /* where in the source that part begins */
};

enum chunk_kind { CHUNK_DATA, CHUNK_ZERO, CHUNK_SKIP };

struct chunk {
    uint64_t offset, bytes, seq;
    enum chunk_kind kind;
    bool turn_passed;           /* the next chunk may write */
};

struct convert {
    const struct convert_opts *o;
    struct source *src;
    unsigned nr_src;
    struct img dst;
    uint64_t total;             /* bytes to convert */
    uint64_t cluster;           /* the target's, or 0 */
    bool zero_init;             /* the target reads as zeroes where unwritten */
    bool dst_backing;           /* ... or as its backing file */
    uint64_t dst_backing_end;   /* where that ends */
    bool copy_range;            /* -C, until an offloaded copy fails */
    /* Claiming chunks. */
    coblk_co_mutex claim_lock;
    uint64_t next, next_seq;
    unsigned cur_src;
    /* Writes in order (without -W). */
    uint64_t turn;
    coblk_co_queue turn_queue;
    /* Progress and the end. */
    uint64_t done_bytes;
    struct img_progress progress;
    uint64_t start_ns;
    unsigned running;
    coblk_co_queue finished;
    int error;
};

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Whether len bytes at p are all zero. */
static bool is_zero(const uint8_t *p, size_t len)
{
    while (len && ((uintptr_t)p & 7)) {
        if (*p++) {
            return false;
        }
        len--;
    }
    const uint64_t *w = (const uint64_t *)p;
    for (; len >= 64; len -= 64, w += 8) {
        if (w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7]) {
            return false;
        }
    }
    p = (const uint8_t *)w;
    while (len--) {
        if (*p++) {
            return false;
        }
    }
    return true;
}

/* The first error only: the requests in flight beside it would fail
 * alike (ENOSPC), one line each. */
static void report(const struct convert *c, const char *what,
                   uint64_t offset, int err)
{
    if (!c->error) {
        img_error("error while %s at byte %" PRIu64 ": %s", what, offset,
                  strerror(-err));
    }
}

static void fail(struct convert *c, int err)
{
    if (!c->error) {
        c->error = err;
    }
    coblk_co_queue_restart_all(&c->turn_queue);
}

/* ---- claiming the next chunk -------------------------------------------- */

/* With a backing file, the target takes from the source only what its top
 * image holds (as qemu-img convert -B does); the rest shows through.  Its
 * zeroes too are written only where the target's backing image could show
 * through them: not past its end (qemu-img's rule). */
static enum chunk_kind kind_of(const struct convert *c,
                               const struct coblk_block_status *bs)
{
    bool data = !(bs->flags & COBLK_BS_ZERO) && (bs->flags & COBLK_BS_DATA);

    if (c->dst_backing &&
        (bs->depth > 0 || (!data && c->next >= c->dst_backing_end))) {
        return CHUNK_SKIP;
    }
    if (data) {
        return CHUNK_DATA;
    }
    return c->o->sparse ? CHUNK_ZERO : CHUNK_DATA;   /* -S 0: allocate */
}

/* The status of the source at c->next into k, for at most max bytes. */
static int coroutine_fn source_status(struct convert *c, uint64_t max,
                                      struct chunk *k)
{
    while (c->next >= c->src[c->cur_src].end) {
        c->cur_src++;
    }
    const struct source *s = &c->src[c->cur_src];
    struct coblk_block_status bs = { .flags = COBLK_BS_ZERO };

    if (c->next >= s->start + s->size) {          /* padding to a sector */
        k->kind = kind_of(c, &bs);
        k->bytes = s->end - c->next;
        return 0;
    }
    uint64_t local = c->next - s->start + s->skip;
    uint64_t room = s->size + s->skip - local;
    int ret = coblk_co_block_status(s->img.dev, local,
                                    max < room ? max : room, &bs);
    if (ret < 0) {
        if (!c->o->salvage) {
            img_error("error while reading block status at offset "
                      "%" PRIu64 ": %s", c->next, strerror(-ret));
            return ret;
        }
        bs = (struct coblk_block_status){ .bytes = max < room ? max : room,
                                          .flags = COBLK_BS_DATA |
                                                   COBLK_BS_ALLOCATED };
    }
    k->kind = kind_of(c, &bs);
    k->bytes = bs.bytes;
    return 0;
}

/* Compressed chunks are whole target clusters, as the source's status
 * runs, cut down to clusters; a run shorter than a cluster makes that
 * cluster data (it is written whole, or not at all). */
static int coroutine_fn claim_compressed(struct convert *c, struct chunk *k)
{
    uint64_t buffer = CHUNK_MAX - CHUNK_MAX % c->cluster;
    uint64_t left = c->total - c->next;
    int ret = source_status(c, left, k);

    if (ret == 0) {
        uint64_t whole = k->bytes - k->bytes % c->cluster;
        if (whole) {
            k->bytes = k->kind == CHUNK_DATA && whole > buffer ? buffer : whole;
        } else {
            k->kind = CHUNK_DATA;
            k->bytes = c->cluster < left ? c->cluster : left;
        }
    }
    return ret;
}

/* Data in chunks of a buffer; what needs none (zeroes, the backing file's)
 * in one chunk, however long, so that sparse images go fast.  Chunks end
 * at the target's clusters: where the source's status changes inside one,
 * the whole cluster is data, so that no two chunks write one cluster (the
 * second would wait for the first, and its clusters would fall out of
 * order in the file). */
static int coroutine_fn claim_plain(struct convert *c, struct chunk *k)
{
    int ret = source_status(c, c->total - c->next, k);
    uint64_t align = c->cluster ? c->cluster : c->o->sparse;

    if (ret < 0) {
        return ret;
    }
    if (k->kind == CHUNK_DATA && k->bytes > CHUNK_MAX) {
        k->bytes = CHUNK_MAX;
    }
    uint64_t end = align ? (c->next + k->bytes) / align * align : 0;
    if (end > c->next) {
        k->bytes = end - c->next;
    } else if (c->cluster && c->next + k->bytes < c->total) {
        /* A buffer at most: an rbd image's "clusters" are 4 MiB. */
        end = (c->next / c->cluster + 1) * c->cluster;
        end = end < c->next + CHUNK_MAX ? end : c->next + CHUNK_MAX;
        k->bytes = (end < c->total ? end : c->total) - c->next;
        k->kind = CHUNK_DATA;
    }
    return 0;
}

/* Takes the next chunk; false when there is none left (or an error). */
static bool coroutine_fn claim(struct convert *c, struct chunk *k)
{
    coblk_co_mutex_lock(&c->claim_lock);
    bool got = !c->error && c->next < c->total;
    if (got) {
        int ret = c->o->compress ? claim_compressed(c, k) : claim_plain(c, k);
        if (ret < 0) {
            fail(c, ret);
            got = false;
        } else {
            k->offset = c->next;
            k->seq = c->next_seq++;
            k->turn_passed = false;
            c->next += k->bytes;
        }
    }
    coblk_co_mutex_unlock(&c->claim_lock);
    return got;
}

/* ---- writes in order ---------------------------------------------------- */

/* Without -W, writes go in the source's order.  Into a raw target they
 * only start in order.  Into an image that allocates (a target with
 * clusters), a chunk waits until the one before has started its last
 * request: the image takes clusters for a request as it comes, so they
 * lie in order in its file, as qemu-img lays them, while the data of one
 * chunk is copied beside the next chunk's (qemu-img waits for the whole
 * write; measured: raw -> qcow2 of 1 GiB, 0.15 s that way, 0.11 s this).
 * Not quite all: where qcow2 takes a request's clusters in two steps, at
 * the boundary of an L2 slice (every 32 MiB with 64 KiB clusters), the
 * next chunk's may come between. */
static bool serialised(const struct convert *c)
{
    return !c->o->out_of_order && c->cluster;
}

static void pass_turn(struct convert *c, struct chunk *k)
{
    if (!k->turn_passed) {
        k->turn_passed = true;
        c->turn++;
        coblk_co_queue_restart_all(&c->turn_queue);
    }
}

/* Called before each request that writes k: before k's last one, the
 * next chunk may go on.  Its coroutine runs once this one yields, after
 * k's request has entered the image, ahead of the next chunk's in the
 * queue of the image's lock. */
static void request_starts(struct convert *c, struct chunk *k, bool last)
{
    if (last && serialised(c)) {
        pass_turn(c, k);
    }
}

/* Waits until k's turn to write (not with -W). */
static bool coroutine_fn take_turn(struct convert *c, struct chunk *k)
{
    if (c->o->out_of_order) {
        return !c->error;
    }
    while (c->turn != k->seq && !c->error) {
        coblk_co_queue_wait(&c->turn_queue, NULL);
    }
    if (c->error) {
        return false;
    }
    if (!serialised(c)) {
        pass_turn(c, k);
    }
    return true;
}

/* ---- reading and writing ----------------------------------------------- */

/* Reads n bytes at offset (in the target) of source s into buf. */
static int coroutine_fn read_source(struct convert *c, const struct source *s,
                                    uint64_t offset, uint64_t n, uint8_t *buf)
{
    struct iovec iov = { buf, n };
    int ret = coblk_co_preadv(s->img.dev, offset - s->start + s->skip, n,
                              &iov, 1);

    if (ret < 0) {
        report(c, "reading", offset, ret);
    }
    if (ret < 0 && c->o->salvage) {
        memset(buf, 0, n);
        ret = 0;
    }
    return ret;
}

/* Reads bytes at offset of the concatenated sources into buf. */
static int coroutine_fn read_sources(struct convert *c, uint64_t offset,
                                     uint64_t bytes, uint8_t *buf)
{
    for (unsigned i = 0; i < c->nr_src && bytes; i++) {
        const struct source *s = &c->src[i];
        uint64_t data_end = s->start + s->size;
        if (offset < data_end) {
            uint64_t n = data_end - offset < bytes ? data_end - offset : bytes;
            int ret = read_source(c, s, offset, n, buf);
            if (ret < 0) {
                return ret;
            }
            buf += n;
            offset += n;
            bytes -= n;
        }
        if (offset < s->end && bytes) {             /* padding to a sector */
            uint64_t n = s->end - offset < bytes ? s->end - offset : bytes;
            memset(buf, 0, n);
            buf += n;
            offset += n;
            bytes -= n;
        }
    }
    return 0;
}

static int coroutine_fn write_data(struct convert *c, uint64_t offset,
                                   uint64_t bytes, uint8_t *buf, int flags)
{
    struct iovec iov = { buf, bytes };
    int ret = coblk_co_pwritev(c->dst.dev, offset, bytes, &iov, 1, flags);

    if (ret < 0) {
        report(c, "writing", offset, ret);
    }
    return ret;
}

/* Zeroes a range the target does not already read as zero. */
static int coroutine_fn write_zeroes(struct convert *c, uint64_t offset,
                                     uint64_t bytes)
{
    if (c->zero_init && !c->dst_backing) {
        return 0;
    }
    int flags = c->dst_backing ? 0 : COBLK_REQ_F_UNMAP;
    int ret = coblk_co_pwrite_zeroes(c->dst.dev, offset, bytes, flags);
    if (ret < 0) {
        report(c, "writing", offset, ret);
    }
    return ret;
}

/* Writes a data chunk: runs of zero blocks (-S bytes, or the target's
 * clusters) as zeroes, the rest as data. */
static int coroutine_fn write_sparse(struct convert *c, struct chunk *k,
                                     uint8_t *buf)
{
    uint64_t unit = c->o->sparse > c->cluster ? c->o->sparse : c->cluster;
    uint64_t pos = 0;

    while (pos < k->bytes) {
        /* The run from pos: up to the next unit boundary, then whole units
         * while their zeroness stays the same. */
        uint64_t end = ((k->offset + pos) / unit + 1) * unit - k->offset;
        end = end < k->bytes ? end : k->bytes;
        bool zero = is_zero(buf + pos, end - pos);
        while (end < k->bytes) {
            uint64_t next = end + unit < k->bytes ? end + unit : k->bytes;
            if (is_zero(buf + end, next - end) != zero) {
                break;
            }
            end = next;
        }
        request_starts(c, k, end == k->bytes);
        int ret = zero ? write_zeroes(c, k->offset + pos, end - pos)
                       : write_data(c, k->offset + pos, end - pos, buf + pos,
                                    0);
        if (ret < 0) {
            return ret;
        }
        pos = end;
    }
    return 0;
}

/* The bytes of the cluster at pos of a chunk of `bytes`. */
static uint64_t cluster_len(const struct convert *c, uint64_t bytes,
                            uint64_t pos)
{
    return bytes - pos < c->cluster ? bytes - pos : c->cluster;
}

/* Compressed clusters, whole but the image's last: that one reaches the
 * target's end (the sources' rounded up to a sector). */
static int coroutine_fn write_compressed(struct convert *c,
                                         const struct chunk *k, uint8_t *buf)
{
    uint64_t bytes = k->bytes;

    /* Runs of clusters alike, each in one request: the library
     * compresses a request's clusters at once, on all CPUs. */
    for (uint64_t pos = 0; pos < bytes;) {
        bool zero = is_zero(buf + pos, cluster_len(c, bytes, pos));
        uint64_t end = pos + cluster_len(c, bytes, pos);
        /* A short last cluster goes alone: where it is not the image's
         * end, its error names its own offset, as qemu-img's does. */
        while (end < bytes && cluster_len(c, bytes, end) == c->cluster &&
               is_zero(buf + end, c->cluster) == zero) {
            end += c->cluster;
        }
        int ret = zero ? write_zeroes(c, k->offset + pos, end - pos)
                       : write_data(c, k->offset + pos, end - pos, buf + pos,
                                    COBLK_REQ_F_COMPRESS);
        if (ret < 0) {
            return ret;
        }
        pos = end;
    }
    return 0;
}

/* Keeps to -r bytes per second: a chunk starts when the chunks claimed
 * before it have had their time. */
static void coroutine_fn rate_limit(struct convert *c, const struct chunk *k)
{
    if (!c->o->rate_limit) {
        return;
    }
    uint64_t due = c->start_ns +
                   (uint64_t)((double)(k->offset) * 1e9 /
                              (double)c->o->rate_limit);
    uint64_t now = now_ns();
    if (due > now) {
        coblk_co_sleep_ns(due - now);
    }
}

/* Compressed chunks keep their turn to the end: the image takes their
 * clusters once compressed, in the order they finish. */
static int coroutine_fn write_chunk(struct convert *c, struct chunk *k,
                                    uint8_t *buf)
{
    switch (k->kind) {
    case CHUNK_SKIP:
        return 0;
    case CHUNK_ZERO:
        request_starts(c, k, true);
        return write_zeroes(c, k->offset, k->bytes);
    case CHUNK_DATA:
        if (c->o->compress) {
            return write_compressed(c, k, buf);
        }
        if (c->o->sparse) {
            return write_sparse(c, k, buf);
        }
        request_starts(c, k, true);
        return write_data(c, k->offset, k->bytes, buf, 0);
    }
    return -EINVAL;
}

/* Copy offload (-C) of a data chunk from each source it lies in; the
 * padding of a source to a sector has nothing to copy from. */
static int coroutine_fn copy_range(struct convert *c, const struct chunk *k)
{
    uint64_t offset = k->offset, bytes = k->bytes;

    for (unsigned i = 0; i < c->nr_src && bytes; i++) {
        const struct source *s = &c->src[i];
        if (offset >= s->end) {
            continue;
        }
        uint64_t n = s->end - offset < bytes ? s->end - offset : bytes;
        if (offset + n > s->start + s->size) {
            return -ENOTSUP;
        }
        int ret = coblk_co_copy_range(s->img.dev, offset - s->start + s->skip,
                                      c->dst.dev, offset, n);
        if (ret < 0) {
            return ret;
        }
        offset += n;
        bytes -= n;
    }
    return 0;
}

/* With -C, data chunks go by copy offload until one fails (the devices
 * cannot, or an error): as in qemu-img, that chunk and the rest then go
 * through the buffer, where a real error shows again. */
static int coroutine_fn copy_chunk(struct convert *c, struct chunk *k,
                                   uint8_t *buf)
{
    bool offload = c->copy_range && k->kind == CHUNK_DATA;
    int ret = 0;

    if (k->kind == CHUNK_DATA && !offload) {
        ret = read_sources(c, k->offset, k->bytes, buf);
    }
    if (ret < 0 || !take_turn(c, k)) {
        return ret < 0 ? ret : c->error;
    }
    if (offload && copy_range(c, k) < 0) {
        c->copy_range = false;
        offload = false;
        ret = read_sources(c, k->offset, k->bytes, buf);
    }
    if (ret == 0 && !offload) {
        ret = write_chunk(c, k, buf);
    }
    if (ret == 0 && serialised(c)) {
        pass_turn(c, k);
    }
    return ret;
}

/* A chunk's buffer, in a huge page where the kernel gives one.  The first copy into
 * a buffer of 4 KiB pages faults each page in: measured on 2 CPUs, a
 * convert of 1 GiB took 0.14 s that way, 0.10 s with huge pages. */
static uint8_t *chunk_buffer(void)
{
    void *buf;

    if (posix_memalign(&buf, CHUNK_MAX, CHUNK_MAX)) {
        return NULL;
    }
    madvise(buf, CHUNK_MAX, MADV_HUGEPAGE);     /* only advice */
    return buf;
}

static void coroutine_fn worker(void *opaque)
{
    struct convert *c = opaque;
    uint8_t *buf = NULL;
    struct chunk k;

    buf = chunk_buffer();
    if (!buf) {
        img_error("out of memory");
        fail(c, -ENOMEM);
    }
    while (buf && claim(c, &k)) {
        rate_limit(c, &k);
        int ret = copy_chunk(c, &k, buf);
        if (ret < 0) {
            fail(c, ret);
            break;
        }
        c->done_bytes += k.bytes;
        img_progress_update(&c->progress,
                            100.0 * (double)c->done_bytes /
                                (double)c->total);
    }
    free(buf);
    c->running--;
    coblk_co_queue_restart_all(&c->finished);
}

static int coroutine_fn convert_co(void *opaque)
{
    struct convert *c = opaque;
    coblk_aio *ctx = coblk_aio_current();

    c->start_ns = now_ns();
    for (unsigned i = 0; i < c->o->coroutines; i++) {
        coblk_co *co = coblk_co_create(worker, c);
        if (!co) {
            fail(c, -ENOMEM);
            break;
        }
        c->running++;
        coblk_aio_co_schedule(ctx, co);
    }
    while (c->running) {
        coblk_co_queue_wait(&c->finished, NULL);
    }
    if (c->error == 0 && c->o->flush_dst) {
        c->error = coblk_co_flush(c->dst.dev);
        if (c->error) {
            img_error("error while flushing: %s", strerror(-c->error));
        }
    }
    return c->error;
}

/* ---- opening and creating -------------------------------------------------- */

static int open_sources(struct convert *c, char **names, unsigned n)
{
    char *snap = NULL;

    if (c->o->snapshot && img_snapshot_option(c->o->snapshot, &snap) < 0) {
        return -EINVAL;
    }
    c->src = calloc(n, sizeof(*c->src));
    if (!c->src) {
        free(snap);
        return -ENOMEM;
    }
    int ret = 0;
    for (unsigned i = 0; i < n && ret == 0; i++) {
        unsigned flags = c->o->direct_src ? IMG_OPEN_DIRECT : 0;
        ret = img_open_opts(&c->src[i].img, names[i], c->o->fmt, snap, flags);
        if (ret < 0) {
            break;
        }
        c->nr_src++;
        int64_t size = coblk_dev_size(c->src[i].img.dev);
        if (size < 0) {
            img_error("Could not get size of '%s': %s", names[i],
                      strerror((int)-size));
            ret = (int)size;
            break;
        }
        uint64_t skip = c->o->skip < (uint64_t)size ? c->o->skip
                                                    : (uint64_t)size;
        uint64_t part = (uint64_t)size - skip;
        c->src[i].start = c->total;
        c->src[i].skip = skip;
        c->src[i].size = part < c->o->length ? part : c->o->length;
        c->total = (c->total + c->src[i].size + 511) & ~511ull;
        c->src[i].end = c->total;
    }
    free(snap);
    return ret;
}

static int create_target(struct convert *c, const char *filename)
{
    struct img_opts *opts = (struct img_opts *)&c->o->out_opts;

    if ((c->o->backing && img_opts_set(opts, "backing_file",
                                       c->o->backing) < 0) ||
        (c->o->backing_fmt && img_opts_set(opts, "backing_fmt",
                                           c->o->backing_fmt) < 0)) {
        return -ENOMEM;
    }
    if (img_opts_check(opts, c->o->out_fmt, NULL) < 0) {
        return -EINVAL;
    }
    if (img_opts_get(opts, "backing_file") && !img_opts_get(opts,
                                                            "backing_fmt")) {
        img_error("Use of backing file requires explicit backing format");
        return -EINVAL;
    }
    char *options = img_opts_normalise(opts, c->o->out_fmt) == 0
                        ? img_opts_join(opts, "size") : NULL;
    char *path = img_file_path(filename);
    int ret = options && path ? coblk_create(c->o->out_fmt, path, c->total,
                                             options)
                              : -ENOMEM;
    free(options);
    free(path);
    if (ret < 0 && c->o->dd) {
        img_error("%s: error while creating output image: %s", filename,
                  img_lib_error());
    } else if (ret < 0) {
        img_error("%s: error while converting %s: %s", filename,
                  c->o->out_fmt, img_lib_error());
    }
    return ret;
}

/* Where the new target's backing image ends; UINT64_MAX where that
 * cannot be told (then zeroes are written all the way). */
static uint64_t backing_end(const struct coblk_image_info *info)
{
    char *spec = info->full_backing_file && info->backing_format
                     ? img_spec(info->backing_format, NULL,
                                info->full_backing_file)
                     : NULL;
    struct coblk_dev *dev;
    int64_t size = -1;

    if (spec && coblk_dev_open(spec, COBLK_OPEN_RDONLY |
                                         COBLK_OPEN_NO_BACKING, &dev) == 0) {
        size = coblk_dev_size(dev);
        coblk_dev_close(dev);
    }
    free(spec);
    return size < 0 ? UINT64_MAX : (uint64_t)size;
}

static int open_target(struct convert *c, const char *filename)
{
    unsigned flags = IMG_OPEN_RW | IMG_OPEN_QUIET | IMG_OPEN_OUTPUT |
                     IMG_OPEN_PLAIN_NAME;

    if (c->o->direct_dst) {
        flags |= IMG_OPEN_DIRECT;
    }
    if (!c->o->flush_dst) {
        flags |= IMG_OPEN_NO_FLUSH;
    }
    int ret = img_open(&c->dst, filename, c->o->out_fmt, flags);
    if (ret < 0) {
        return ret;
    }
    struct coblk_image_info info;
    bool have_info = coblk_image_info(c->dst.dev, &info, sizeof(info)) == 0;
    c->cluster = have_info ? info.cluster_size : 0;
    /* Only a backing file given (-B) shows through the target: without
     * it -n writes everything, whatever the target's backing holds.  As
     * in qemu-img 7.2, the end of the backing image is known only for a
     * new target; into an existing one zeroes are written all the way. */
    c->dst_backing = c->o->backing || img_opts_get(&c->o->out_opts,
                                                   "backing_file");
    c->dst_backing_end = c->dst_backing && !c->o->no_create && have_info
                             ? backing_end(&info) : UINT64_MAX;
    int64_t size = coblk_dev_size(c->dst.dev);
    if (size >= 0 && (((uint64_t)size + 511) & ~511ull) < c->total) {
        img_error("output file is smaller than input file");
        return -EINVAL;
    }
    /* -n into a raw file ending inside the last sector: qemu-img writes
     * the whole sector, and the file grows to hold it. */
    if (size >= 0 && (uint64_t)size < c->total &&
        (ret = coblk_truncate(c->dst.dev, c->total)) < 0) {
        img_error("error while growing '%s' to %" PRIu64 " bytes: %s",
                  filename, c->total, strerror(-ret));
        return ret;
    }
    if (c->o->compress && !c->cluster) {
        img_error("Compression not supported for this file format");
        return -ENOTSUP;
    }
    return 0;
}

void convert_defaults(struct convert_opts *o)
{
    *o = (struct convert_opts){ .out_fmt = "raw", .sparse = 4096,
                                .coroutines = 8, .length = UINT64_MAX };
}

int convert_run(const struct convert_opts *o, char **names, unsigned n)
{
    struct convert c = { .o = o, .copy_range = o->copy_range };
    const char *out = names[n];
    int ret = open_sources(&c, names, n);

    if (ret == 0 && o->bitmaps) {
        ret = img_bitmaps_check_source(c.src[0].img.dev,
                                       o->skip_broken_bitmaps);
    }
    if (ret == 0 && !o->no_create) {
        ret = create_target(&c, out);
    }
    if (ret == 0) {
        ret = open_target(&c, out);
    }
    if (ret == 0 && o->bitmaps) {
        ret = img_bitmaps_check_target(c.dst.dev);
    }
    if (ret == 0) {
        c.zero_init = !o->no_create || o->target_is_zero;
        img_progress_start(&c.progress, o->progress && !o->quiet);
        ret = img_run(convert_co, &c);
        /* The bitmaps once the data is in: no write makes them stale. */
        if (ret == 0 && o->bitmaps) {
            ret = img_bitmaps_copy(c.src[0].img.dev, c.dst.dev);
        }
        img_progress_end(&c.progress, ret == 0);
    }
    if (c.dst.dev) {
        img_close(&c.dst);
    }
    for (unsigned i = 0; i < c.nr_src; i++) {
        img_close(&c.src[i].img);
    }
    free(c.src);
    return ret < 0 ? 1 : 0;
}

/* ---- options ------------------------------------------------------------- */

/* -t / -T: QEMU's cache modes. */
static int parse_cache(const char *mode, bool *direct, bool *flush)
{
    static const struct { const char *name; bool direct, flush; } modes[] = {
        { "none", true, true }, { "directsync", true, true },
        { "writeback", false, true }, { "writethrough", false, true },
        { "unsafe", false, false },
    };
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        if (!strcmp(mode, modes[i].name)) {
            *direct = modes[i].direct;
            if (flush) {
                *flush = modes[i].flush;
            }
            return 0;
        }
    }
    img_error("Invalid cache option: %s", mode);
    return -EINVAL;
}

static int check_options(const struct convert_opts *o, unsigned sources)
{
    if (!img_known_format(o->out_fmt)) {
        return -EINVAL;
    }
    if (o->no_create && o->out_opts.n) {
        img_error("-o has no effect when skipping image creation");
        return -EINVAL;
    }
    if (o->backing_fmt && !o->backing && strcmp(o->out_fmt, "qcow2")) {
        img_error("Backing file format not supported for file format '%s'",
                  o->out_fmt);
        return -EINVAL;
    }
    if (o->snapshot && sources > 1) {
        img_error("No support for concatenating multiple snapshot");
        return -EINVAL;
    }
    if (o->backing && sources > 1) {
        img_error("Having a backing file for the target makes no sense "
                  "when concatenating multiple input images");
        return -EINVAL;
    }
    if (o->skip_broken_bitmaps && !o->bitmaps) {
        img_error("Use of --skip-broken-bitmaps requires --bitmaps");
        return -EINVAL;
    }
    if (o->bitmaps && sources > 1) {
        img_error("Copying bitmaps only possible with single source");
        return -EINVAL;
    }
    if (o->target_is_zero && !o->no_create) {
        img_error("--target-is-zero requires use of -n flag");
        return -EINVAL;
    }
    if (o->compress && strcmp(o->out_fmt, "qcow2")) {
        img_error("Compression not supported for this file format");
        return -EINVAL;
    }
    if (o->copy_range && o->compress) {
        img_error("Cannot enable copy offloading when -c is used");
        return -EINVAL;
    }
    if (o->copy_range && o->sparse_given) {
        img_error("Cannot enable copy offloading when -S is used");
        return -EINVAL;
    }
    if (o->copy_range && o->salvage) {
        img_error("Cannot use copy offloading in salvaging mode");
        return -EINVAL;
    }
    if (o->backing && !o->no_create && strcmp(o->out_fmt, "qcow2")) {
        img_error("Backing file not supported for file format '%s'",
                  o->out_fmt);
        return -EINVAL;
    }
    if (o->backing && o->target_is_zero) {
        img_error("Cannot use --target-is-zero when the destination image "
                  "has a backing file");
        return -EINVAL;
    }
    return 0;
}

static int parse_number_option(int c, const char *arg, struct convert_opts *o)
{
    uint64_t v;

    if (c == 'S') {
        if (img_parse_size_option("buffer size for sparse output", arg, 0,
                                  INT64_MAX, &v) < 0) {
            return -EINVAL;
        }
        if (v % 512 || v > SPARSE_MAX) {
            img_error("Invalid buffer size for sparse output specified. "
                      "Valid sizes are multiples of 512 up to %u. Select 0 "
                      "to disable sparse detection (fully allocates "
                      "output).", SPARSE_MAX);
            return -EINVAL;
        }
        o->sparse = v;
        o->sparse_given = true;
    } else if (c == 'm') {
        char *end;
        long m = strtol(arg, &end, 10);
        if (*end || m < 1 || m > COROUTINES_MAX) {
            img_error("Invalid number of coroutines. Allowed number of "
                      "coroutines is between 1 and %d", COROUTINES_MAX);
            return -EINVAL;
        }
        o->coroutines = (unsigned)m;
    } else {
        if (img_parse_size_option("rate limit", arg, 0, INT64_MAX, &v) < 0) {
            return -EINVAL;
        }
        o->rate_limit = v;
    }
    return 0;
}

int img_convert(int argc, char **argv)
{
    enum {
        OPT_TARGET_IS_ZERO = 256, OPT_SALVAGE, OPT_BITMAPS, OPT_SKIP_BROKEN,
        OPT_UNSUPPORTED,
    };
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "image-opts", no_argument, NULL, IMG_OPT_IMAGE_OPTS },
        { "force-share", no_argument, NULL, 'U' },
        { "target-is-zero", no_argument, NULL, OPT_TARGET_IS_ZERO },
        { "salvage", no_argument, NULL, OPT_SALVAGE },
        { "target-image-opts", no_argument, NULL, OPT_UNSUPPORTED },
        { "bitmaps", no_argument, NULL, OPT_BITMAPS },
        { "skip-broken-bitmaps", no_argument, NULL, OPT_SKIP_BROKEN },
        { NULL, 0, NULL, 0 },
    };
    struct convert_opts o;
    int c, ret = 1;

    convert_defaults(&o);
    while ((c = getopt_long(argc, argv, ":hf:O:B:CcF:o:l:S:pt:T:qnm:WUr:",
                            longopts, NULL)) != -1) {
        switch (c) {
        case IMG_OPT_IMAGE_OPTS: img_image_opts_given = true; break;
        case 'h': img_opts_free(&o.out_opts); return img_help();
        case 'f': o.fmt = optarg; break;
        case 'O': o.out_fmt = optarg; break;
        case 'B': o.backing = optarg; break;
        case 'F': o.backing_fmt = optarg; break;
        case 'C': o.copy_range = true; break;
        case 'c': o.compress = true; break;
        case 'l': o.snapshot = optarg; break;
        case 'p': o.progress = true; break;
        case 'q': o.quiet = true; break;
        case 'n': o.no_create = true; break;
        case 'W': o.out_of_order = true; break;
        case 'U': img_force_share = true; break;
        case OPT_TARGET_IS_ZERO: o.target_is_zero = true; break;
        case OPT_SALVAGE: o.salvage = true; break;
        case OPT_BITMAPS: o.bitmaps = true; break;
        case OPT_SKIP_BROKEN: o.skip_broken_bitmaps = true; break;
        case 'o':
            if (img_opts_parse(&o.out_opts, optarg) < 0) {
                goto out;
            }
            break;
        case 'S': case 'm': case 'r':
            if (parse_number_option(c, optarg, &o) < 0) {
                goto out;
            }
            break;
        case 't':
            if (parse_cache(optarg, &o.direct_dst, &o.flush_dst) < 0) {
                goto out;
            }
            break;
        case 'T':
            if (parse_cache(optarg, &o.direct_src, NULL) < 0) {
                goto out;
            }
            break;
        case OPT_UNSUPPORTED:
            img_error("%s is not supported by %s", argv[optind - 1],
                      IMG_PROG);
            goto out;
        default:
            ret = img_bad_option(c, argv);
            goto out;
        }
    }
    if (img_opts_is_help(&o.out_opts)) {
        ret = img_opts_help(o.out_fmt, argc - optind >= 2);
        goto out;
    }
    if (argc - optind < 2) {
        img_error("Must specify image file name");
        goto out;
    }
    if (check_options(&o, (unsigned)(argc - optind - 1)) == 0) {
        ret = convert_run(&o, argv + optind, (unsigned)(argc - optind - 1));
    }
out:
    img_opts_free(&o.out_opts);
    return ret;
}
