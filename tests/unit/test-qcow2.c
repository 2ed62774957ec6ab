/*
 * The block graph and the qcow2 driver, with QEMU's tools as the oracle:
 * images that qemu-img and qemu-io write, in every variant, read back
 * through libcoblk byte for byte as `qemu-img convert -O raw` reads them;
 * block status agrees with `qemu-img map`; backing chains resolve as
 * QEMU resolves them; and every malformed header field gets its own
 * error.  Skips (77) without qemu-img.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "coblk/coblk.h"
#include "image-dir.h"
#include "skip.h"

static bool have_qemu;

/* The offsets of an image's L1, first L2 and refcount tables. */
static void tables_of(const char *image, uint64_t *l1, uint64_t *l2,
                      uint64_t *reftable);

/* ---- helpers ----------------------------------------------------------------- */

/* Pieces of odd sizes, so that reads start and end inside clusters and
 * span several. */
static const size_t pieces[] = { 4096, 512, 200 * 1024, 65536 + 512,
                                 1 << 20, 7 * 512 };

/* Reads the whole device in pieces, one after the other. */
static uint8_t *read_device(struct coblk_dev *dev, size_t *size)
{
    int64_t total = coblk_dev_size(dev);

    assert_true(total >= 0);
    uint8_t *buf = malloc((size_t)total + 1);
    assert_non_null(buf);
    size_t done = 0;
    for (unsigned i = 0; done < (size_t)total; i++) {
        size_t len = pieces[i % 6];
        len = len < (size_t)total - done ? len : (size_t)total - done;
        int ret = coblk_pread(dev, buf + done, len, done);
        if (ret < 0) {
            print_error("read of %zu at %zu: %s\n", len, done,
                        coblk_last_error());
        }
        assert_int_equal(ret, 0);
        done += len;
    }
    *size = (size_t)total;
    return buf;
}

/* Reads the first `size` bytes (whole sectors) of dev in pieces through
 * a queue, many at once: the path that starts reads on the device that
 * holds their data (start_rw). */
static uint8_t *read_device_queued(struct coblk_dev *dev, size_t size)
{
    enum { DEPTH = 16 };
    uint8_t *buf = malloc(size + 1);
    struct iovec iov[DEPTH];
    struct coblk_req reqs[DEPTH], *ptrs[DEPTH], *done[DEPTH];
    struct coblk_queue *q;

    assert_non_null(buf);
    assert_int_equal(coblk_queue_new(dev, DEPTH, NULL, &q), 0);
    for (size_t next = 0, i = 0; next < size;) {
        int n = 0;
        for (; n < DEPTH && next < size; n++, i++) {
            size_t len = pieces[i % 6] < size - next ? pieces[i % 6]
                                                     : size - next;
            iov[n] = (struct iovec){ buf + next, len };
            reqs[n] = (struct coblk_req){ .type = COBLK_REQ_IN,
                                          .iov = &iov[n], .iovcnt = 1,
                                          .sector = next / 512 };
            ptrs[n] = &reqs[n];
            next += len;
        }
        assert_int_equal(coblk_queue_submit(q, ptrs, n), n);
        for (int got = 0; got < n;) {
            int k = coblk_queue_reap(q, done, 1, DEPTH, -1);
            assert_true(k > 0);
            got += k;
        }
        for (int j = 0; j < n; j++) {
            if (reqs[j].status != COBLK_S_OK) {
                print_error("queued read at sector %" PRIu64 ": %d (%s)\n",
                            reqs[j].sector, reqs[j].error,
                            coblk_last_error());
            }
            assert_int_equal(reqs[j].status, COBLK_S_OK);
        }
    }
    coblk_queue_free(q);
    return buf;
}

/* got and want agree on `size` bytes, or the first difference is told. */
static void assert_same_bytes(const char *what, const uint8_t *got,
                              const uint8_t *want, size_t size)
{
    for (size_t i = 0; i < size; i++) {
        if (got[i] != want[i]) {
            print_error("%s: byte %zu is %#x, qemu-img reads %#x\n", what,
                        i, got[i], want[i]);
            fail();
        }
    }
}

static struct coblk_dev *open_ok(const char *spec)
{
    struct coblk_dev *dev;
    int ret = coblk_dev_open(spec, COBLK_OPEN_RDONLY, &dev);

    if (ret < 0) {
        print_error("open %s: %s\n", spec, coblk_last_error());
    }
    assert_int_equal(ret, 0);
    return dev;
}

/* The image reads as qemu-img converts it, through spec. */
static void assert_reads_as_qemu(const char *image, const char *spec)
{
    size_t want_size, got_size;

    sh("qemu-img convert -O raw %s oracle.raw", image);
    uint8_t *want = read_file("oracle.raw", &want_size);
    struct coblk_dev *dev = open_ok(spec);
    uint8_t *got = read_device(dev, &got_size);
    assert_int_equal(got_size, want_size);
    assert_same_bytes(spec, got, want, want_size);
    free(got);
    got = read_device_queued(dev, want_size & ~(size_t)511);
    assert_same_bytes(spec, got, want, want_size & ~(size_t)511);
    assert_int_equal(coblk_dev_close(dev), 0);
    free(want);
    free(got);
}

static const char *qcow2_spec(const char *image)
{
    static char spec[300];

    snprintf(spec, sizeof(spec), "qcow2:%s", path_of(image));
    return spec;
}

/* Writes that leave every kind of cluster: data in parts of clusters and
 * across them, zeroes over data and over nothing, discarded data, the
 * last bytes of the image. */
#define QEMU_IO_MIX                                                         \
    "-c 'write -P 0x11 0 100k' -c 'write -P 0x22 300k 5k' "                 \
    "-c 'write -P 0x33 1M 2M' -c 'write -z 1536k 128k' "                    \
    "-c 'write -z 5M 64k' -c 'discard 2M 64k' "                             \
    "-c 'write -P 0x44 9215k 1k'"

/* ---- reading what qemu wrote ---------------------------------------------------- */

static void test_variants_read_as_qemu_reads_them(void **state)
{
    static const char *const variants[] = {
        "compat=0.10",
        "compat=1.1",
        "cluster_size=512",
        "cluster_size=4096,refcount_bits=1",
        "cluster_size=2M,refcount_bits=64",
        "extended_l2=on",
        "extended_l2=on,cluster_size=16k",
        "lazy_refcounts=on",
        "preallocation=metadata",
        "preallocation=falloc,cluster_size=128k",
        "refcount_bits=8,cluster_size=32k",
    };

    (void)state;
    if (!have_qemu) {
        skip_because("qemu-img is not installed");
    }
    for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
        print_message("  variant %s\n", variants[i]);
        sh("rm -f v.qcow2 && qemu-img create -f qcow2 -o %s v.qcow2 9217k",
           variants[i]);
        sh("qemu-io -f qcow2 " QEMU_IO_MIX " v.qcow2");
        assert_reads_as_qemu("v.qcow2", qcow2_spec("v.qcow2"));
    }
}

/* A raw file with zero runs, repeated bytes and noise: compressible in
 * parts. */
static void write_mixed_raw(const char *name, size_t size)
{
    uint8_t *buf = calloc(1, size);
    uint64_t x = 88172645463325252ull;

    assert_non_null(buf);
    for (size_t i = 0; i < size; i++) {
        size_t region = (i / 40000) % 4;
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        buf[i] = region == 0 ? 0 : region == 1 ? (uint8_t)(i / 512)
                 : region == 2 ? (uint8_t)x : (uint8_t)(x & 3);
    }
    int fd = open(path_of(name), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, size), (ssize_t)size);
    close(fd);
    free(buf);
}

static void test_compressed_clusters_read_back(void **state)
{
    static const char *const variants[] = {
        "compression_type=zlib",
        "compression_type=zstd",
        "compression_type=zlib,cluster_size=4096",
        "compression_type=zstd,cluster_size=2M",
    };

    (void)state;
    if (!have_qemu) {
        skip_because("qemu-img is not installed");
    }
    write_mixed_raw("mixed.raw", 5 * 1024 * 1024 + 4096);
    for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
        print_message("  %s\n", variants[i]);
        sh("rm -f c.qcow2 && qemu-img convert -c -O qcow2 -o %s mixed.raw "
           "c.qcow2", variants[i]);
        /* Compressed clusters beside plain ones. */
        sh("qemu-io -f qcow2 -c 'write -P 0x55 64k 4k' c.qcow2");
        assert_reads_as_qemu("c.qcow2", qcow2_spec("c.qcow2"));
    }
}

/* ---- copy offload ---------------------------------------------------------------- */

struct copy_call {
    struct coblk_dev *src, *dst;
    uint64_t src_offset, dst_offset, bytes;
    int ret;
    bool done;
};

static void coroutine_fn copy_range_co(void *opaque)
{
    struct copy_call *c = opaque;

    c->ret = coblk_co_copy_range(c->src, c->src_offset, c->dst,
                                 c->dst_offset, c->bytes);
    c->done = true;
}

static int copy_range(struct coblk_dev *src, uint64_t src_offset,
                      struct coblk_dev *dst, uint64_t dst_offset,
                      uint64_t bytes)
{
    struct copy_call c = { src, dst, src_offset, dst_offset, bytes, 0,
                           false };

    coblk_co_enter(coblk_co_create(copy_range_co, &c));
    while (!c.done) {
        coblk_aio_poll(coblk_aio_current(), true);
    }
    return c.ret;
}

static void assert_filled(struct coblk_dev *dev, uint64_t offset,
                          size_t bytes, uint8_t byte)
{
    uint8_t *buf = malloc(bytes);

    assert_non_null(buf);
    assert_int_equal(coblk_pread(dev, buf, bytes, offset), 0);
    for (size_t i = 0; i < bytes; i++) {
        if (buf[i] != byte) {
            fail_msg("byte %zu at %" PRIu64 ": %#x, not %#x", i, offset,
                     buf[i], byte);
        }
    }
    free(buf);
}

/* Data clusters of a qcow2 image and raw windows copy file to file; what
 * is not plain data, or not a file underneath, answers -ENOTSUP, having
 * written at most what came before it. */
static void test_copy_range_offloads_file_to_file(void **state)
{
    char spec[300];
    struct coblk_dev *qcow2, *dst, *window, *null, *ro;

    (void)state;
    if (!have_qemu) {
        skip_because("qemu-img is not installed");
    }
    sh("rm -f cr.qcow2 && qemu-img create -f qcow2 cr.qcow2 9217k");
    sh("qemu-io -f qcow2 " QEMU_IO_MIX " -c 'write -c -P 0x55 6M 64k' "
       "cr.qcow2");
    sh("rm -f cr.raw && qemu-img create -f raw cr.raw 9M");
    assert_int_equal(coblk_dev_open(qcow2_spec("cr.qcow2"), 0, &qcow2), 0);
    snprintf(spec, sizeof(spec), "raw:file:%s", path_of("cr.raw"));
    assert_int_equal(coblk_dev_open(spec, 0, &dst), 0);

    assert_int_equal(copy_range(qcow2, 1 << 20, dst, 4 << 20, 512 << 10), 0);
    assert_filled(dst, 4 << 20, 512 << 10, 0x33);
    assert_filled(dst, (4 << 20) + (512 << 10), 4096, 0);
    /* A zero cluster in the range, a compressed one, a raw image read
     * only, a range past the end, a device with no file: */
    assert_int_equal(copy_range(qcow2, (1 << 20) + 4096, dst, 2 << 20,
                                2 << 20), -ENOTSUP);
    assert_filled(dst, 2 << 20, (508 << 10), 0x33);
    assert_filled(dst, (2 << 20) + (508 << 10), (1 << 20) + (516 << 10), 0);
    assert_int_equal(copy_range(qcow2, 6 << 20, dst, 0, 64 << 10), -ENOTSUP);
    ro = open_ok(spec);
    assert_int_equal(copy_range(qcow2, 0, ro, 0, 4096), -EROFS);
    assert_int_equal(copy_range(qcow2, 0, dst, 9 << 20, 4096), -EINVAL);
    assert_int_equal(coblk_dev_open("null:size=1M", 0, &null), 0);
    assert_int_equal(copy_range(null, 0, dst, 0, 4096), -ENOTSUP);
    assert_int_equal(copy_range(qcow2, 0, null, 0, 4096), -ENOTSUP);
    assert_int_equal(copy_range(dst, 0, qcow2, 0, 4096), -ENOTSUP);
    assert_filled(dst, 0, 2 << 20, 0);
    /* blkdebug's rules see every byte: no offload through it. */
    struct coblk_dev *faulty;
    snprintf(spec, sizeof(spec), "blkdebug:event=read,errno=EIO:file:%s",
             path_of("cr.raw"));
    assert_int_equal(coblk_dev_open(spec, 0, &faulty), 0);
    assert_int_equal(copy_range(faulty, 4 << 20, dst, 0, 4096), -ENOTSUP);
    assert_int_equal(copy_range(qcow2, 1 << 20, faulty, 0, 4096), -ENOTSUP);
    assert_int_equal(coblk_dev_close(faulty), 0);
    assert_filled(dst, 0, 2 << 20, 0);

    /* Through a backing file, as far as it goes. */
    struct coblk_dev *top;
    sh("rm -f crt.qcow2 && qemu-img create -f qcow2 -b cr.qcow2 -F qcow2 "
       "crt.qcow2 12M && qemu-io -f qcow2 -c 'write -P 0x66 1088k 64k' "
       "crt.qcow2");
    assert_int_equal(coblk_dev_open(qcow2_spec("crt.qcow2"), 0, &top), 0);
    assert_int_equal(copy_range(top, 1 << 20, dst, 5 << 20, 256 << 10), 0);
    assert_filled(dst, 5 << 20, 64 << 10, 0x33);
    assert_filled(dst, (5 << 20) + (64 << 10), 64 << 10, 0x66);
    assert_filled(dst, (5 << 20) + (128 << 10), 128 << 10, 0x33);
    assert_int_equal(copy_range(top, 10 << 20, dst, 0, 4096), -ENOTSUP);
    assert_int_equal(coblk_dev_close(top), 0);

    /* Between raw windows of files: each maps its own offset. */
    snprintf(spec, sizeof(spec), "raw:offset=1M:file:%s", path_of("cr.raw"));
    assert_int_equal(coblk_dev_open(spec, 0, &window), 0);
    assert_int_equal(copy_range(window, 3 << 20, window, 0, 100 << 10), 0);
    assert_filled(dst, 1 << 20, 100 << 10, 0x33);
    assert_int_equal(copy_range(window, 0, dst, 8 << 20, 4096), 0);
    assert_filled(dst, 8 << 20, 4096, 0x33);

    assert_int_equal(coblk_dev_close(window), 0);
    assert_int_equal(coblk_dev_close(null), 0);
    assert_int_equal(coblk_dev_close(ro), 0);
    assert_int_equal(coblk_dev_close(dst), 0);
    assert_int_equal(coblk_dev_close(qcow2), 0);
}

static void test_queue_reads_at_depth_through_a_tiny_cache(void **state)
{
    (void)state;
    if (!have_qemu) {
        skip_because("qemu-img is not installed");
    }
    /* 4k clusters: 9 MiB has many L2 slices; a 16 KiB cache holds four,
     * so concurrent requests keep evicting each other's. */
    sh("rm -f q.qcow2 && qemu-img create -f qcow2 -o cluster_size=4k "
       "q.qcow2 9217k && qemu-io -f qcow2 " QEMU_IO_MIX " q.qcow2");
    sh("qemu-io -f qcow2 -c 'write -P 0x66 4M 3M' q.qcow2");
    sh("qemu-img convert -O raw q.qcow2 oracle.raw");
    size_t size;
    uint8_t *want = read_file("oracle.raw", &size);

    char spec[300];
    snprintf(spec, sizeof(spec), "qcow2:l2-cache-size=16k:%s",
             path_of("q.qcow2"));
    struct coblk_dev *dev = open_ok(spec);
    struct coblk_queue *q;
    assert_int_equal(coblk_queue_new(dev, 32, NULL, &q), 0);
    enum { DEPTH = 32, BS = 4096, ROUNDS = 64 };
    static uint8_t bufs[DEPTH][BS];
    struct iovec iov[DEPTH];
    struct coblk_req reqs[DEPTH], *ptrs[DEPTH], *done[DEPTH];
    uint64_t x = 1;
    for (int round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < DEPTH; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            iov[i] = (struct iovec){ bufs[i], BS };
            reqs[i] = (struct coblk_req){
                .type = COBLK_REQ_IN, .iov = &iov[i], .iovcnt = 1,
                .sector = (x >> 33) % (size / 512 - BS / 512) };
            ptrs[i] = &reqs[i];
        }
        assert_int_equal(coblk_queue_submit(q, ptrs, DEPTH), DEPTH);
        for (int got = 0; got < DEPTH;) {
            int n = coblk_queue_reap(q, done, 1, DEPTH, -1);
            assert_true(n > 0);
            got += n;
        }
        for (int i = 0; i < DEPTH; i++) {
            assert_int_equal(reqs[i].status, COBLK_S_OK);
            assert_memory_equal(bufs[i], want + reqs[i].sector * 512, BS);
        }
    }
    coblk_queue_free(q);
    assert_int_equal(coblk_dev_close(dev), 0);
    free(want);
}

/* ---- lookups without the lock --------------------------------------------------------- */

static uint64_t locked_lookups(struct coblk_dev *dev)
{
    struct coblk_dev_stats stats;

    assert_int_equal(coblk_dev_stats(dev, &stats, sizeof(stats)), 0);
    return stats.locked_lookups;
}

/* Runs one request on q and waits for it. */
static void run_one(struct coblk_queue *q, struct coblk_req *req)
{
    struct coblk_req *done;

    assert_int_equal(coblk_queue_submit(q, &req, 1), 1);
    assert_int_equal(coblk_queue_reap(q, &done, 1, 1, -1), 1);
    assert_ptr_equal(done, req);
    assert_int_equal(req->status, COBLK_S_OK);
}

/* Block b of the striped image: its index, then its index's low byte. */
static void stripe_block(uint8_t *buf, size_t bytes, uint64_t b)
{
    memset(buf, (int)(b & 0xff), bytes);
    memcpy(buf, &b, sizeof(b));
}

static void write_stripes(struct coblk_dev *dev, uint64_t from, uint64_t to)
{
    uint8_t buf[4096];

    for (uint64_t b = from; b < to; b++) {
        stripe_block(buf, sizeof(buf), b);
        assert_int_equal(coblk_pwrite(dev, buf, sizeof(buf), b * 4096), 0);
    }
}

static void assert_stripe(const uint8_t *got, uint64_t b)
{
    uint8_t want[4096];

    stripe_block(want, sizeof(want), b);
    assert_memory_equal(got, want, sizeof(want));
}

/* Reads of clusters whose L2 entries are cached go without the image's
 * lock, on both paths, also after writes changed the table, and after
 * the L1 table was replaced by a larger one. */
static void test_cached_reads_take_no_lock(void **state)
{
    (void)state;
    sh("rm -f nl.qcow2");
    assert_int_equal(coblk_create("qcow2", path_of("nl.qcow2"), 2 << 20,
                                  "cluster_size=4096"), 0);
    struct coblk_dev *dev;
    char spec[300];
    snprintf(spec, sizeof(spec), "qcow2:%s", path_of("nl.qcow2"));
    assert_int_equal(coblk_dev_open(spec, 0, &dev), 0);
    write_stripes(dev, 0, 64);

    uint8_t buf[4096];
    assert_int_equal(coblk_pread(dev, buf, sizeof(buf), 0), 0);
    uint64_t before = locked_lookups(dev);
    for (uint64_t b = 0; b < 64; b++) {
        assert_int_equal(coblk_pread(dev, buf, sizeof(buf), b * 4096), 0);
        assert_stripe(buf, b);
    }
    uint8_t *got = read_device_queued(dev, 64 * 4096);
    for (uint64_t b = 0; b < 64; b++) {
        assert_stripe(got + b * 4096, b);
    }
    free(got);
    write_stripes(dev, 64, 80);             /* the same L2 table, changed */
    assert_int_equal(coblk_pread(dev, buf, sizeof(buf), 70 * 4096), 0);
    assert_stripe(buf, 70);
    assert_int_equal(coblk_truncate(dev, 64 << 20), 0);   /* a new L1 */
    assert_int_equal(coblk_pread(dev, buf, sizeof(buf), 3 * 4096), 0);
    assert_stripe(buf, 3);
    assert_int_equal(locked_lookups(dev), before);

    /* A table not in the cache is read under the lock: counted. */
    write_stripes(dev, 4096, 4097);         /* past the first table */
    assert_int_equal(coblk_dev_close(dev), 0);
    assert_int_equal(coblk_dev_open(spec, 0, &dev), 0);
    before = locked_lookups(dev);
    assert_int_equal(coblk_pread(dev, buf, sizeof(buf), 4096 * 4096), 0);
    assert_stripe(buf, 4096);
    assert_int_equal(locked_lookups(dev), before + 1);
    assert_int_equal(coblk_dev_close(dev), 0);
}

/* Another thread reads the first stripes through a queue, checking each
 * block, until told to stop. */
struct stripe_reader {
    struct coblk_dev *dev;
    uint64_t blocks;
    _Atomic bool stop;
    unsigned long reads;
    _Atomic bool wrong;
    uint64_t wrong_block;
};

static void *read_stripes(void *opaque)
{
    enum { DEPTH = 16 };
    struct stripe_reader *r = opaque;
    static uint8_t bufs[DEPTH][4096];
    struct iovec iov[DEPTH];
    struct coblk_req reqs[DEPTH], *ptrs[DEPTH], *done[DEPTH];
    struct coblk_queue *q;
    uint64_t x = 7;

    if (coblk_queue_new(r->dev, DEPTH, NULL, &q) < 0) {
        r->wrong = true;
        return NULL;
    }
    while (!r->stop && !r->wrong) {
        for (int i = 0; i < DEPTH; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            iov[i] = (struct iovec){ bufs[i], 4096 };
            reqs[i] = (struct coblk_req){
                .type = COBLK_REQ_IN, .iov = &iov[i], .iovcnt = 1,
                .sector = (x >> 33) % r->blocks * 8 };
            ptrs[i] = &reqs[i];
        }
        int n = coblk_queue_submit(q, ptrs, DEPTH);
        for (int got = 0; got < n;) {
            int k = coblk_queue_reap(q, done, 1, DEPTH, -1);
            got += k > 0 ? k : n;
        }
        for (int i = 0; i < n && !r->wrong; i++) {
            uint64_t b = reqs[i].sector / 8;
            uint8_t want[4096];
            stripe_block(want, sizeof(want), b);
            if (reqs[i].status != COBLK_S_OK ||
                memcmp(bufs[i], want, sizeof(want))) {
                r->wrong = true;
                r->wrong_block = b;
            }
        }
        r->reads += (unsigned long)n;
    }
    coblk_queue_free(q);
    return NULL;
}

/* While one thread reads data that does not change, this one allocates
 * elsewhere through a cache of four slices (so that lookups race loads
 * and evictions of the slices they walk), grows the L1 table twice (the
 * second time with its tables preallocated) and discards, flushing the
 * frees: every read sees its own block, whichever path it took. */
static void test_lookups_race_allocations_and_evictions(void **state)
{
    (void)state;
    sh("rm -f race.qcow2");
    assert_int_equal(coblk_create("qcow2", path_of("race.qcow2"), 16 << 20,
                                  "cluster_size=4096"), 0);
    char spec[300];
    snprintf(spec, sizeof(spec), "qcow2:l2-cache-size=16k:%s",
             path_of("race.qcow2"));
    struct stripe_reader r = { .blocks = 1024 };
    assert_int_equal(coblk_dev_open(spec, 0, &r.dev), 0);
    write_stripes(r.dev, 0, r.blocks);

    struct coblk_queue *frees;
    assert_int_equal(coblk_queue_new(r.dev, 1, NULL, &frees), 0);
    pthread_t reader;
    assert_int_equal(pthread_create(&reader, NULL, read_stripes, &r), 0);
    uint64_t x = 3;
    for (int i = 0; i < 4000 && !r.wrong; i++) {
        if (i == 300) {
            assert_int_equal(coblk_truncate(r.dev, 32 << 20), 0);
        } else if (i == 600) {
            assert_int_equal(coblk_truncate_prealloc(r.dev, 64 << 20,
                                                     COBLK_PREALLOC_METADATA),
                             0);
        }
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t b = 2048 + (x >> 33) % (i < 300   ? 2048
                                         : i < 600 ? 6144
                                                   : 14336);
        write_stripes(r.dev, b, b + 1);
        if (i % 250 == 249) {
            /* Freed while the reader's reads hold their pins. */
            run_one(frees, &(struct coblk_req){ .type = COBLK_REQ_DISCARD,
                                                .sector = (b & ~15ull) * 8,
                                                .nr_sectors = 16 * 8 });
            run_one(frees, &(struct coblk_req){ .type = COBLK_REQ_FLUSH });
        }
    }
    r.stop = true;
    assert_int_equal(pthread_join(reader, NULL), 0);
    coblk_queue_free(frees);
    if (r.wrong) {
        print_error("block %" PRIu64 " read wrong after %lu reads\n",
                    r.wrong_block, r.reads);
    }
    assert_false(r.wrong);
    assert_true(r.reads > 0);
    assert_int_equal(coblk_dev_close(r.dev), 0);
    if (have_qemu) {
        sh("qemu-img check -q race.qcow2");
    }
}

/* A read that found guest cluster 0 of image (64 KiB clusters, read as
 * `was`), and is slow to read it (blkdebug holds it back), while a
 * discard frees its cluster, a flush lets the free happen and a write
 * allocates: the write does not get that cluster before the read is
 * done, so the read returns `was` or zeroes, never what the write wrote;
 * a check meanwhile finds no leak, and new refcount blocks keep the
 * cluster waiting (it is freed at close: qemu-img finds no leak). */
static void assert_read_outlives_discard(const char *image, uint8_t was)
{
    char spec[400];
    snprintf(spec, sizeof(spec), "qcow2:%s", path_of(image));
    struct coblk_dev *dev;
    assert_int_equal(coblk_dev_open(spec, 0, &dev), 0);
    struct coblk_block_status bs;
    assert_int_equal(coblk_block_status(dev, 0, 65536, &bs), 0);
    assert_true(bs.flags & COBLK_BS_OFFSET_VALID);
    assert_int_equal(coblk_dev_close(dev), 0);

    snprintf(spec, sizeof(spec),
             "qcow2:blkdebug:event=read,offset=%" PRIu64 ",len=65536,"
             "delay-ns=300000000,once:file:%s", bs.host_offset,
             path_of(image));
    assert_int_equal(coblk_dev_open(spec, 0, &dev), 0);
    struct coblk_queue *q;
    assert_int_equal(coblk_queue_new(dev, 4, NULL, &q), 0);
    static uint8_t got[65536], new[65536];
    struct iovec read_iov = { got, sizeof(got) };
    struct coblk_req read = { .type = COBLK_REQ_IN, .iov = &read_iov,
                              .iovcnt = 1, .sector = 0 };
    struct coblk_req *ptr = &read;
    assert_int_equal(coblk_queue_submit(q, &ptr, 1), 1);

    run_one(q, &(struct coblk_req){ .type = COBLK_REQ_DISCARD, .sector = 0,
                                    .nr_sectors = 128 });
    run_one(q, &(struct coblk_req){ .type = COBLK_REQ_FLUSH });
    memset(new, 0xbb, sizeof(new));
    struct iovec write_iov = { new, sizeof(new) };
    run_one(q, &(struct coblk_req){ .type = COBLK_REQ_OUT,
                                    .iov = &write_iov, .iovcnt = 1,
                                    .sector = 128 });
    struct coblk_check check = { .repair = COBLK_CHECK_REPAIR_LEAKS };
    assert_int_equal(coblk_check(dev, &check, sizeof(check)), 0);
    assert_int_equal(check.leaks, 0);
    assert_int_equal(check.corruptions, 0);
    assert_int_equal(coblk_amend(dev, "refcount_bits=32"), 0);

    struct coblk_req *done;
    assert_int_equal(coblk_queue_reap(q, &done, 1, 1, -1), 1);
    assert_ptr_equal(done, &read);
    assert_int_equal(read.status, COBLK_S_OK);
    for (size_t i = 0; i < sizeof(got); i++) {
        if (got[i] != was && got[i] != 0) {
            print_error("byte %zu read %#x: the write's data\n", i, got[i]);
            fail();
        }
    }
    coblk_queue_free(q);
    assert_int_equal(coblk_dev_close(dev), 0);
    if (have_qemu) {
        sh("qemu-img check -q %s", image);
    }
}

static void make_image_of(const char *image, uint8_t byte)
{
    struct coblk_dev *dev;
    static uint8_t data[65536];
    char spec[300];

    sh("rm -f %s", image);
    assert_int_equal(coblk_create("qcow2", path_of(image), 1 << 20, NULL),
                     0);
    snprintf(spec, sizeof(spec), "qcow2:%s", path_of(image));
    assert_int_equal(coblk_dev_open(spec, 0, &dev), 0);
    memset(data, byte, sizeof(data));
    assert_int_equal(coblk_pwrite(dev, data, sizeof(data), 0), 0);
    assert_int_equal(coblk_dev_close(dev), 0);
}

static void test_read_in_flight_keeps_its_cluster(void **state)
{
    (void)state;
    make_image_of("pin.qcow2", 0xaa);
    assert_read_outlives_discard("pin.qcow2", 0xaa);
}

/* A check with repair while an allocating write, held back by blkdebug,
 * writes its data into a cluster freed before: the cluster it allocated
 * is no leak to repair, and the image stays sound (a repair that freed
 * it would leave the write's entry pointing at a free cluster). */
static void test_check_waits_for_allocating_writes(void **state)
{
    (void)state;
    make_image_of("alloc.qcow2", 0x3c);
    char spec[300];
    snprintf(spec, sizeof(spec), "qcow2:%s", path_of("alloc.qcow2"));
    struct coblk_dev *dev;
    assert_int_equal(coblk_dev_open(spec, 0, &dev), 0);
    static uint8_t data[65536];
    memset(data, 0x3c, sizeof(data));
    assert_int_equal(coblk_pwrite(dev, data, sizeof(data), 65536), 0);
    struct coblk_block_status bs;
    assert_int_equal(coblk_block_status(dev, 0, 65536, &bs), 0);
    struct coblk_queue *q;
    assert_int_equal(coblk_queue_new(dev, 1, NULL, &q), 0);
    run_one(q, &(struct coblk_req){ .type = COBLK_REQ_DISCARD, .sector = 0,
                                    .nr_sectors = 128 });
    coblk_queue_free(q);
    assert_int_equal(coblk_dev_close(dev), 0);

    snprintf(spec, sizeof(spec),
             "qcow2:blkdebug:event=write,offset=%" PRIu64 ",len=65536,"
             "delay-ns=300000000,once:file:%s", bs.host_offset,
             path_of("alloc.qcow2"));
    assert_int_equal(coblk_dev_open(spec, 0, &dev), 0);
    assert_int_equal(coblk_queue_new(dev, 1, NULL, &q), 0);
    struct iovec iov = { data, sizeof(data) };
    struct coblk_req write = { .type = COBLK_REQ_OUT, .iov = &iov,
                               .iovcnt = 1, .sector = 256 };
    struct coblk_req *ptr = &write, *done;
    assert_int_equal(coblk_queue_submit(q, &ptr, 1), 1);
    /* The write runs (the queue's requests run while it is reaped) and
     * waits in blkdebug, its cluster allocated. */
    assert_int_equal(coblk_queue_reap(q, &done, 1, 1, 20), 0);
    struct coblk_check check = { .repair = COBLK_CHECK_REPAIR_LEAKS };
    assert_int_equal(coblk_check(dev, &check, sizeof(check)), 0);
    assert_int_equal(check.leaks, 0);
    assert_int_equal(check.corruptions, 0);
    assert_int_equal(coblk_queue_reap(q, &done, 1, 1, -1), 1);
    assert_int_equal(write.status, COBLK_S_OK);
    coblk_queue_free(q);
    struct coblk_block_status now;
    assert_int_equal(coblk_block_status(dev, 131072, 65536, &now), 0);
    assert_int_equal(now.host_offset, bs.host_offset);  /* it was reused */
    assert_int_equal(coblk_dev_close(dev), 0);
    if (have_qemu) {
        sh("qemu-img check -q alloc.qcow2");
    }
}

/* A growing resize with preallocation whose new cluster reuses one that a
 * failed write gave back, while a later allocating write past it is half
 * in the file: preallocation grows the file to the new cluster's end,
 * never truncates it, which would cut off the write's first part.  The
 * write goes to the file in two parts (outer blkdebug), the second held
 * back (inner blkdebug); the failed write is held back, then fails. */
static void test_preallocation_keeps_writes_past_it(void **state)
{
    (void)state;
    make_image_of("pregrow.qcow2", 0x11);
    struct stat st;
    assert_int_equal(stat(path_of("pregrow.qcow2"), &st), 0);
    uint64_t failed = (uint64_t)st.st_size, split = failed + 65536;
    char spec[600];
    snprintf(spec, sizeof(spec),
             "qcow2:blkdebug:event=write,offset=%" PRIu64 ",len=65536,"
             "errno=EIO,delay-ns=100000000,once;event=write,offset=%" PRIu64
             ",len=65536,short=512,once:blkdebug:event=write,offset=%" PRIu64
             ",len=512,delay-ns=400000000,once:file:%s", failed, split,
             split + 512, path_of("pregrow.qcow2"));
    struct coblk_dev *dev;
    assert_int_equal(coblk_dev_open(spec, 0, &dev), 0);
    struct coblk_queue *q;
    assert_int_equal(coblk_queue_new(dev, 2, NULL, &q), 0);
    static uint8_t lost[65536], kept[65536];
    memset(lost, 0x22, sizeof(lost));
    memset(kept, 0x33, sizeof(kept));
    struct iovec iovs[2] = { { lost, sizeof(lost) }, { kept, sizeof(kept) } };
    struct coblk_req writes[2] = {
        { .type = COBLK_REQ_OUT, .iov = &iovs[0], .iovcnt = 1, .sector = 128 },
        { .type = COBLK_REQ_OUT, .iov = &iovs[1], .iovcnt = 1, .sector = 256 },
    };
    struct coblk_req *ptrs[2] = { &writes[0], &writes[1] }, *done;
    assert_int_equal(coblk_queue_submit(q, ptrs, 2), 2);
    assert_int_equal(coblk_queue_reap(q, &done, 1, 1, -1), 1);
    assert_ptr_equal(done, &writes[0]);
    assert_int_equal(writes[0].status, COBLK_S_IOERR);
    /* The second write's first 512 bytes are in the file, the rest waits. */
    assert_int_equal(coblk_truncate_prealloc(dev, (1 << 20) + 65536,
                                             COBLK_PREALLOC_FALLOC), 0);
    assert_int_equal(coblk_queue_reap(q, &done, 1, 1, -1), 1);
    assert_int_equal(writes[1].status, COBLK_S_OK);
    coblk_queue_free(q);
    struct coblk_block_status bs;
    assert_int_equal(coblk_block_status(dev, 1 << 20, 65536, &bs), 0);
    assert_int_equal(bs.host_offset, failed);       /* it was reused */
    uint8_t *back = malloc(65536);
    assert_int_equal(coblk_pread(dev, back, 65536, 131072), 0);
    assert_memory_equal(back, kept, 65536);
    assert_int_equal(coblk_pread(dev, back, 65536, 1 << 20), 0);
    static const uint8_t zeroes[65536];
    assert_memory_equal(back, zeroes, 65536);
    free(back);
    struct coblk_check check = { 0 };
    assert_int_equal(coblk_check(dev, &check, sizeof(check)), 0);
    assert_int_equal(check.leaks + check.corruptions, 0);
    assert_int_equal(coblk_dev_close(dev), 0);
    if (have_qemu) {
        sh("qemu-img check -q pregrow.qcow2");
    }
}

/* A repair that rewrites an L2 table while a read, held back by blkdebug,
 * is loading a slice of it: the slice read before the repair is not kept
 * (it would lack the COPIED flag the repair set, and the next write would
 * copy the cluster it may write in place). */
static void test_slice_loading_during_repair_is_not_kept(void **state)
{
    (void)state;
    make_image_of("flag.qcow2", 0x44);
    uint64_t l1, l2, reftable;
    tables_of("flag.qcow2", &l1, &l2, &reftable);
    char spec[400];
    snprintf(spec, sizeof(spec), "qcow2:%s", path_of("flag.qcow2"));
    struct coblk_dev *dev = open_ok(spec);
    struct coblk_block_status bs;
    assert_int_equal(coblk_block_status(dev, 0, 65536, &bs), 0);
    assert_int_equal(coblk_dev_close(dev), 0);
    put_be("flag.qcow2", l2, 8, bs.host_offset);        /* COPIED lost */

    /* The slice's first 512 bytes are read before the repair, the rest
     * after: outer blkdebug splits the read, inner holds back its tail. */
    snprintf(spec, sizeof(spec),
             "qcow2:blkdebug:event=read,offset=%" PRIu64 ",len=512,short=512,"
             "once:blkdebug:event=read,offset=%" PRIu64 ",len=512,"
             "delay-ns=200000000,once:file:%s", l2, l2 + 512,
             path_of("flag.qcow2"));
    assert_int_equal(coblk_dev_open(spec, 0, &dev), 0);
    struct coblk_queue *q;
    assert_int_equal(coblk_queue_new(dev, 1, NULL, &q), 0);
    static uint8_t back[4096], expect[4096];
    memset(expect, 0x44, sizeof(expect));
    struct iovec iov = { back, sizeof(back) };
    struct coblk_req read = { .type = COBLK_REQ_IN, .iov = &iov,
                              .iovcnt = 1, .sector = 0 };
    struct coblk_req *ptr = &read, *done;
    assert_int_equal(coblk_queue_submit(q, &ptr, 1), 1);
    assert_int_equal(coblk_queue_reap(q, &done, 1, 1, 20), 0);
    struct coblk_check check = { .repair = COBLK_CHECK_REPAIR_LEAKS |
                                           COBLK_CHECK_REPAIR_ERRORS };
    assert_int_equal(coblk_check(dev, &check, sizeof(check)), 0);
    assert_int_equal(check.corruptions_fixed, 1);
    assert_int_equal(coblk_queue_reap(q, &done, 1, 1, -1), 1);
    assert_int_equal(read.status, COBLK_S_OK);
    assert_memory_equal(back, expect, sizeof(back));
    coblk_queue_free(q);
    memset(expect, 0x45, sizeof(expect));
    assert_int_equal(coblk_pwrite(dev, expect, sizeof(expect), 0), 0);
    struct coblk_block_status now;
    assert_int_equal(coblk_block_status(dev, 0, 65536, &now), 0);
    assert_int_equal(now.host_offset, bs.host_offset);  /* in place */
    assert_int_equal(coblk_dev_close(dev), 0);
    if (have_qemu) {
        sh("qemu-img check -q flag.qcow2");
    }
}

/* A check waits for the writes that own clusters, and the writes that
 * come meanwhile wait for the check: else a steady stream of writes could
 * hold it off for ever.  The first write is held back by blkdebug; the
 * second, over its cluster and the next, waits for it, then for the
 * check, which counts the first write's cluster but not the second's. */
static void test_check_goes_before_later_writes(void **state)
{
    (void)state;
    make_image_of("claim.qcow2", 0x71);
    struct stat st;
    assert_int_equal(stat(path_of("claim.qcow2"), &st), 0);
    char spec[300];
    snprintf(spec, sizeof(spec),
             "qcow2:blkdebug:event=write,offset=%lld,len=65536,"
             "delay-ns=200000000,once:file:%s", (long long)st.st_size,
             path_of("claim.qcow2"));
    struct coblk_dev *dev;
    assert_int_equal(coblk_dev_open(spec, 0, &dev), 0);
    struct coblk_queue *q;
    assert_int_equal(coblk_queue_new(dev, 2, NULL, &q), 0);
    static uint8_t first[65536], second[65536], back[65536];
    memset(first, 0x72, sizeof(first));
    memset(second, 0x73, sizeof(second));
    struct iovec iovs[2] = { { first, sizeof(first) },
                             { second, sizeof(second) } };
    struct coblk_req writes[2] = {
        { .type = COBLK_REQ_OUT, .iov = &iovs[0], .iovcnt = 1, .sector = 128 },
        { .type = COBLK_REQ_OUT, .iov = &iovs[1], .iovcnt = 1, .sector = 192 },
    };
    struct coblk_req *ptrs[2] = { &writes[0], &writes[1] }, *done[2];
    assert_int_equal(coblk_queue_submit(q, ptrs, 2), 2);
    assert_int_equal(coblk_queue_reap(q, done, 1, 1, 20), 0);
    struct coblk_check check = { 0 };
    assert_int_equal(coblk_check(dev, &check, sizeof(check)), 0);
    assert_int_equal(check.allocated_clusters, 2);
    assert_int_equal(check.leaks + check.corruptions, 0);
    assert_int_equal(coblk_queue_reap(q, done, 2, 2, -1), 2);
    assert_int_equal(writes[0].status, COBLK_S_OK);
    assert_int_equal(writes[1].status, COBLK_S_OK);
    coblk_queue_free(q);
    assert_int_equal(coblk_pread(dev, back, 32768, 65536), 0);
    assert_memory_equal(back, first, 32768);
    assert_int_equal(coblk_pread(dev, back, 65536, 98304), 0);
    assert_memory_equal(back, second, 65536);
    check = (struct coblk_check){ 0 };
    assert_int_equal(coblk_check(dev, &check, sizeof(check)), 0);
    assert_int_equal(check.allocated_clusters, 3);
    assert_int_equal(check.leaks + check.corruptions, 0);
    assert_int_equal(coblk_dev_close(dev), 0);
}

/* A check that cannot run (a file of more clusters than it counts in
 * memory) keeps the L2 entries of writes not yet flushed. */
static void test_failed_check_keeps_unflushed_writes(void **state)
{
    (void)state;
    sh("rm -f big.qcow2");
    assert_int_equal(coblk_create("qcow2", path_of("big.qcow2"), 1 << 20,
                                  "cluster_size=512"), 0);
    sh("truncate -s 130G big.qcow2");
    char spec[300];
    snprintf(spec, sizeof(spec), "qcow2:%s", path_of("big.qcow2"));
    struct coblk_dev *dev;
    assert_int_equal(coblk_dev_open(spec, 0, &dev), 0);
    static uint8_t data[4096], back[4096];
    memset(data, 0x6d, sizeof(data));
    /* The second write changes an entry of a table on disk: in the cache
     * only, until a flush. */
    assert_int_equal(coblk_pwrite(dev, data, sizeof(data), 0), 0);
    assert_int_equal(coblk_flush(dev), 0);
    assert_int_equal(coblk_pwrite(dev, data, sizeof(data), 8192), 0);
    struct coblk_check check = { .repair = COBLK_CHECK_REPAIR_LEAKS };
    assert_int_equal(coblk_check(dev, &check, sizeof(check)), -EFBIG);
    assert_int_equal(coblk_pread(dev, back, sizeof(back), 8192), 0);
    assert_memory_equal(back, data, sizeof(back));
    assert_int_equal(coblk_dev_close(dev), 0);
    assert_int_equal(coblk_dev_open(spec, COBLK_OPEN_RDONLY, &dev), 0);
    assert_int_equal(coblk_pread(dev, back, sizeof(back), 8192), 0);
    assert_memory_equal(back, data, sizeof(back));
    assert_int_equal(coblk_dev_close(dev), 0);
    sh("rm -f big.qcow2");
}

/* Reads through a queue (started on the file, each holding the pin it
 * took until its completion) let go: after them a discard and a flush
 * free the cluster, and the next allocation takes it again. */
static void test_reads_done_let_frees_happen(void **state)
{
    (void)state;
    sh("rm -f free.qcow2");
    assert_int_equal(coblk_create("qcow2", path_of("free.qcow2"), 1 << 20,
                                  NULL), 0);
    char spec[300];
    snprintf(spec, sizeof(spec), "qcow2:%s", path_of("free.qcow2"));
    struct coblk_dev *dev;
    static uint8_t data[65536];
    memset(data, 0x5c, sizeof(data));
    assert_int_equal(coblk_dev_open(spec, 0, &dev), 0);
    assert_int_equal(coblk_pwrite(dev, data, sizeof(data), 0), 0);
    struct coblk_block_status first, second;
    assert_int_equal(coblk_block_status(dev, 0, 65536, &first), 0);
    free(read_device_queued(dev, 65536));
    free(read_device(dev, &(size_t){ 0 }));

    struct coblk_queue *q;
    assert_int_equal(coblk_queue_new(dev, 1, NULL, &q), 0);
    run_one(q, &(struct coblk_req){ .type = COBLK_REQ_DISCARD, .sector = 0,
                                    .nr_sectors = 128 });
    run_one(q, &(struct coblk_req){ .type = COBLK_REQ_FLUSH });
    coblk_queue_free(q);
    assert_int_equal(coblk_pwrite(dev, data, sizeof(data), 65536), 0);
    assert_int_equal(coblk_block_status(dev, 65536, 65536, &second), 0);
    assert_int_equal(second.host_offset, first.host_offset);
    assert_int_equal(coblk_dev_close(dev), 0);
}

/* ---- backing chains ------------------------------------------------------------------ */

static void test_backing_chain_reads_through_every_layer(void **state)
{
    (void)state;
    if (!have_qemu) {
        skip_because("qemu-img is not installed");
    }
    sh("rm -f base.qcow2 mid.qcow2 top.qcow2 && "
       "qemu-img create -f qcow2 base.qcow2 9217k && "
       "qemu-io -f qcow2 " QEMU_IO_MIX " base.qcow2 && "
       "qemu-img create -f qcow2 -b base.qcow2 -F qcow2 mid.qcow2 && "
       "qemu-io -f qcow2 -c 'write -P 0x77 96k 8k' -c 'write -z 1M 4k' "
       "-c 'write -P 0x78 6M 1M' mid.qcow2 && "
       "qemu-img create -f qcow2 -o extended_l2=on -b mid.qcow2 -F qcow2 "
       "top.qcow2 && qemu-io -f qcow2 -c 'write -P 0x79 6M 4k' "
       "-c 'write -z 1032k 2k' top.qcow2");
    /* The backing names are relative to the images' directory, not to
     * the current one. */
    assert_reads_as_qemu("top.qcow2", qcow2_spec("top.qcow2"));
}

/* A queue's read started on the file comes back short where the file
 * shrank under the image: it runs again on the coroutine path, which
 * reads what is gone as zeroes, as a synchronous read does. */
static void test_queue_read_of_a_shrunk_file_runs_again(void **state)
{
    (void)state;
    if (!have_qemu) {
        skip_because("qemu-img is not installed");
    }
    /* The data cluster is the file's last. */
    sh("rm -f s.qcow2 && qemu-img create -f qcow2 s.qcow2 1M && "
       "qemu-io -f qcow2 -c 'write -P 0x5a 0 64k' s.qcow2");
    struct coblk_dev *dev = open_ok(qcow2_spec("s.qcow2"));
    struct stat st;
    assert_int_equal(stat(path_of("s.qcow2"), &st), 0);
    assert_int_equal(truncate(path_of("s.qcow2"), st.st_size - 32768), 0);
    uint8_t *got = read_device_queued(dev, 65536);
    for (size_t i = 0; i < 65536; i++) {
        assert_int_equal(got[i], i < 32768 ? 0x5a : 0);
    }
    assert_int_equal(coblk_dev_close(dev), 0);
    free(got);
}

static void test_backing_smaller_and_raw(void **state)
{
    (void)state;
    if (!have_qemu) {
        skip_because("qemu-img is not installed");
    }
    sh("rm -f small.raw over.qcow2 && qemu-img create -f raw small.raw 1000k"
       " && qemu-io -f raw -c 'write -P 0x5a 0 1000k' small.raw && "
       "qemu-img create -f qcow2 -b small.raw -F raw over.qcow2 3M && "
       "qemu-io -f qcow2 -c 'write -P 0x5b 900k 8k' over.qcow2");
    assert_reads_as_qemu("over.qcow2", qcow2_spec("over.qcow2"));
}

/* Replaces the backing format extension by an unknown one, so that the
 * image records no backing format. */
static void forget_backing_format(const char *image)
{
    size_t size;
    uint8_t *buf = read_file(image, &size);
    static const uint8_t type[4] = { 0xe2, 0x79, 0x2a, 0xca };
    uint8_t *at = memmem(buf, size < 65536 ? size : 65536, type, 4);

    assert_non_null(at);
    int fd = open(path_of(image), O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "\x12\x34\x56\x78", 4, at - buf), 4);
    close(fd);
    free(buf);
}

static void expect_open_error(const char *spec, int flags, int err,
                              const char *message)
{
    struct coblk_dev *dev = NULL;
    int ret = coblk_dev_open(spec, flags, &dev);

    if (ret != err || !strstr(coblk_last_error(), message)) {
        print_error("open %s: %d '%s', expected %d '%s'\n", spec, ret,
                    coblk_last_error(), err, message);
    }
    assert_int_equal(ret, err);
    assert_non_null(strstr(coblk_last_error(), message));
    assert_null(dev);
}

static void test_backing_without_format_is_probed_and_trusted_less(void **s)
{
    (void)s;
    if (!have_qemu) {
        skip_because("qemu-img is not installed");
    }
    /* base <- mid <- top, and neither overlay records its backing's
     * format: mid is probed as qcow2, and a probed image may not name a
     * backing file. */
    sh("rm -f pb.qcow2 pm.qcow2 pt.qcow2 && "
       "qemu-img create -f qcow2 pb.qcow2 1M && "
       "qemu-img create -f qcow2 -b pb.qcow2 -F qcow2 pm.qcow2 && "
       "qemu-img create -f qcow2 -b pm.qcow2 -F qcow2 pt.qcow2");
    forget_backing_format("pt.qcow2");
    expect_open_error(qcow2_spec("pt.qcow2"), COBLK_OPEN_RDONLY, -EACCES,
                      "names a backing file (pb.qcow2) but its format was "
                      "guessed");
    /* One level is fine: a probed image without a backing file. */
    sh("qemu-io -f qcow2 -c 'write -P 0x31 0 64k' pb.qcow2");
    assert_reads_as_qemu("pm.qcow2", qcow2_spec("pm.qcow2"));
    forget_backing_format("pm.qcow2");
    assert_reads_as_qemu("pm.qcow2", qcow2_spec("pm.qcow2"));
}

static void test_backing_loop_is_refused(void **state)
{
    (void)state;
    if (!have_qemu) {
        skip_because("qemu-img is not installed");
    }
    sh("rm -f la.qcow2 lb.qcow2 && qemu-img create -f qcow2 la.qcow2 1M && "
       "qemu-img create -f qcow2 -b la.qcow2 -F qcow2 lb.qcow2 && "
       "qemu-img rebase -u -b lb.qcow2 -F qcow2 la.qcow2");
    expect_open_error(qcow2_spec("lb.qcow2"), COBLK_OPEN_RDONLY, -ELOOP,
                      "the backing chain loops");
    sh("qemu-img rebase -u -b self.qcow2 -F qcow2 la.qcow2 && "
       "mv la.qcow2 self.qcow2");
    expect_open_error(qcow2_spec("self.qcow2"), COBLK_OPEN_RDONLY, -ELOOP,
                      "the backing chain loops");
}

static void test_backing_missing_is_named(void **state)
{
    (void)state;
    if (!have_qemu) {
        skip_because("qemu-img is not installed");
    }
    sh("rm -f gone.qcow2 orphan.qcow2 && qemu-img create -f qcow2 gone.qcow2"
       " 1M && qemu-img create -f qcow2 -b gone.qcow2 -F qcow2 orphan.qcow2"
       " && rm gone.qcow2");
    expect_open_error(qcow2_spec("orphan.qcow2"), COBLK_OPEN_RDONLY, -ENOENT,
                      "gone.qcow2");
}

/* ---- block status against qemu-img map ------------------------------------------------- */

struct map_entry {
    uint64_t start, length;
    unsigned depth;
    bool present, zero, data, has_offset;
    uint64_t offset;
};

/* qemu-img map --output=json, one entry a line. */
static unsigned qemu_map(const char *image, struct map_entry *out,
                         unsigned max)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "qemu-img map --output=json %s",
             path_of(image));
    FILE *p = popen(cmd, "r");
    char line[512];
    unsigned n = 0;

    assert_non_null(p);
    while (fgets(line, sizeof(line), p) && n < max) {
        struct map_entry *e = &out[n];
        char present[8], zero[8], data[8];
        int fields = sscanf(line, "%*[[{ ]\"start\": %" SCNu64 ", \"length\": %"
                            SCNu64 ", \"depth\": %u, \"present\": %7[a-z], "
                            "\"zero\": %7[a-z], \"data\": %7[a-z], "
                            "\"offset\": %" SCNu64, &e->start, &e->length,
                            &e->depth, present, zero, data, &e->offset);
        assert_true(fields >= 6);
        e->present = !strcmp(present, "true");
        e->zero = !strcmp(zero, "true");
        e->data = !strcmp(data, "true");
        e->has_offset = fields == 7;
        n++;
    }
    assert_int_equal(pclose(p), 0);
    return n;
}

/* The same walk through coblk_block_status(), merged as qemu-img merges:
 * same flags and depth, offsets contiguous or absent. */
static unsigned coblk_map(const char *spec, struct map_entry *out,
                          unsigned max)
{
    struct coblk_dev *dev = open_ok(spec);
    uint64_t size = (uint64_t)coblk_dev_size(dev);
    unsigned n = 0;

    for (uint64_t at = 0; at < size;) {
        struct coblk_block_status bs;
        assert_int_equal(coblk_block_status(dev, at, size - at, &bs), 0);
        assert_true(bs.bytes > 0 && bs.bytes <= size - at);
        struct map_entry e = {
            .start = at, .length = bs.bytes, .depth = bs.depth,
            .present = bs.flags & COBLK_BS_ALLOCATED,
            .zero = bs.flags & COBLK_BS_ZERO,
            .data = bs.flags & COBLK_BS_DATA,
            .has_offset = bs.flags & COBLK_BS_OFFSET_VALID,
            .offset = bs.host_offset };
        struct map_entry *last = n ? &out[n - 1] : NULL;
        if (last && last->depth == e.depth && last->present == e.present &&
            last->zero == e.zero && last->data == e.data &&
            last->has_offset == e.has_offset &&
            (!e.has_offset || last->offset + last->length == e.offset)) {
            last->length += e.length;
        } else {
            assert_true(n < max);
            out[n++] = e;
        }
        at += bs.bytes;
    }
    assert_int_equal(coblk_dev_close(dev), 0);
    return n;
}

static void assert_maps_as_qemu(const char *image)
{
    static struct map_entry want[4096], got[4096];
    unsigned nw = qemu_map(image, want, 4096);
    unsigned ng = coblk_map(qcow2_spec(image), got, 4096);

    for (unsigned i = 0; i < nw && i < ng; i++) {
        const struct map_entry *w = &want[i], *g = &got[i];
        if (w->start != g->start || w->length != g->length ||
            w->depth != g->depth || w->present != g->present ||
            w->zero != g->zero || w->data != g->data ||
            w->has_offset != g->has_offset ||
            (w->has_offset && w->offset != g->offset)) {
            print_error("%s entry %u: qemu start %" PRIu64 " length %" PRIu64
                        " depth %u present %d zero %d data %d offset %"
                        PRIu64 "; coblk %" PRIu64 " %" PRIu64 " %u %d %d %d %"
                        PRIu64 "\n", image, i, w->start, w->length,
                        w->depth, w->present, w->zero, w->data,
                        w->has_offset ? w->offset : 0, g->start, g->length,
                        g->depth, g->present, g->zero, g->data,
                        g->has_offset ? g->offset : 0);
            fail();
        }
    }
    assert_int_equal(ng, nw);
}

static void test_block_status_maps_as_qemu_img_map(void **state)
{
    (void)state;
    if (!have_qemu) {
        skip_because("qemu-img is not installed");
    }
    sh("rm -f mb.qcow2 mt.qcow2 && qemu-img create -f qcow2 mb.qcow2 9217k"
       " && qemu-io -f qcow2 " QEMU_IO_MIX " mb.qcow2 && "
       "qemu-img create -f qcow2 -b mb.qcow2 -F qcow2 mt.qcow2 && "
       "qemu-io -f qcow2 -c 'write -P 0x77 96k 8k' -c 'write -z 1M 4k' "
       "-c 'write -P 0x78 6M 1M' mt.qcow2");
    assert_maps_as_qemu("mb.qcow2");
    assert_maps_as_qemu("mt.qcow2");
    /* Subclusters: extended L2 over the same backing image. */
    sh("rm -f mx.qcow2 && qemu-img create -f qcow2 -o extended_l2=on "
       "-b mb.qcow2 -F qcow2 mx.qcow2 && qemu-io -f qcow2 "
       "-c 'write -P 0x79 96k 8k' -c 'write -z 1M 4k' -c 'write -P 0x7a 6M "
       "3k' -c 'write -z 6148k 2k' mx.qcow2");
    assert_maps_as_qemu("mx.qcow2");
}

/* ---- writing, against a shadow copy ------------------------------------------- */

enum { SHADOW_DEPTH = 32 };

struct shadow_run {
    struct coblk_dev *dev;
    struct coblk_queue *q;
    uint8_t *shadow;            /* what the guest must read */
    size_t size;
    uint64_t cluster;
    bool discard_zeroes;        /* whole discarded clusters read zeroes */
    uint64_t x;                 /* the random state */
};

static uint64_t next_random(struct shadow_run *r)
{
    r->x ^= r->x << 13;
    r->x ^= r->x >> 7;
    r->x ^= r->x << 17;
    return r->x;
}

/* One random request: mostly writes of any size and alignment, some
 * write-zeroes (with and without unmap), discards and flushes. */
static void random_request(struct shadow_run *r, struct coblk_req *req,
                           struct iovec *iov, uint8_t *buf, size_t buf_size)
{
    unsigned kind = next_random(r) % 16;
    uint64_t sectors = r->size / 512;
    uint64_t len = 1 + next_random(r) % (buf_size / 512);
    uint64_t sector = next_random(r) % sectors;

    len = len < sectors - sector ? len : sectors - sector;
    *req = (struct coblk_req){ .sector = sector };
    if (kind < 10) {
        for (size_t i = 0; i < len * 512; i++) {
            buf[i] = (uint8_t)next_random(r);
        }
        *iov = (struct iovec){ buf, len * 512 };
        req->type = COBLK_REQ_OUT;
        req->iov = iov;
        req->iovcnt = 1;
    } else if (kind < 12) {
        req->type = COBLK_REQ_WRITE_ZEROES;
        req->nr_sectors = (uint32_t)len;
        req->flags = kind == 11 ? COBLK_REQ_F_UNMAP : 0;
    } else if (kind < 15) {
        req->type = COBLK_REQ_DISCARD;
        req->nr_sectors = (uint32_t)len;
    } else {
        req->type = COBLK_REQ_FLUSH;
    }
}

/* What a completed request did to the guest's view. */
static void apply(struct shadow_run *r, const struct coblk_req *req)
{
    uint64_t begin = req->sector * 512;

    switch (req->type) {
    case COBLK_REQ_OUT:
        memcpy(r->shadow + begin, req->iov->iov_base, req->iov->iov_len);
        break;
    case COBLK_REQ_WRITE_ZEROES:
        memset(r->shadow + begin, 0, (size_t)req->nr_sectors * 512);
        break;
    case COBLK_REQ_DISCARD: {
        uint64_t end = begin + (uint64_t)req->nr_sectors * 512;
        uint64_t first = (begin + r->cluster - 1) / r->cluster * r->cluster;
        uint64_t last = end == r->size ? end : end / r->cluster * r->cluster;
        if (r->discard_zeroes && first < last) {
            memset(r->shadow + first, 0, last - first);
        }
        break;
    }
    }
}

/* Runs rounds of SHADOW_DEPTH random requests at once; requests in one
 * round touch disjoint sectors, so that the outcome is defined. */
static void run_random_requests(struct shadow_run *r, unsigned rounds)
{
    enum { BUF = 96 * 1024 };
    static uint8_t bufs[SHADOW_DEPTH][BUF];
    struct iovec iov[SHADOW_DEPTH];
    struct coblk_req reqs[SHADOW_DEPTH], *ptrs[SHADOW_DEPTH];
    struct coblk_req *done[SHADOW_DEPTH];

    for (unsigned round = 0; round < rounds; round++) {
        unsigned n = 0;
        for (unsigned tries = 0; n < SHADOW_DEPTH && tries < 200; tries++) {
            random_request(r, &reqs[n], &iov[n], bufs[n], BUF);
            /* Whole clusters: a discard rounds out to them. */
            uint64_t b = reqs[n].sector * 512 / r->cluster;
            uint64_t len = reqs[n].type == COBLK_REQ_OUT
                               ? iov[n].iov_len
                               : (uint64_t)reqs[n].nr_sectors * 512;
            uint64_t e = (reqs[n].sector * 512 + len + r->cluster - 1) /
                         r->cluster;
            bool clash = false;
            for (unsigned j = 0; j < n; j++) {
                uint64_t jl = reqs[j].type == COBLK_REQ_OUT
                                  ? iov[j].iov_len
                                  : (uint64_t)reqs[j].nr_sectors * 512;
                uint64_t jb = reqs[j].sector * 512 / r->cluster;
                uint64_t je = (reqs[j].sector * 512 + jl + r->cluster - 1) /
                              r->cluster;
                clash |= b < je && jb < e;
            }
            if (!clash) {
                ptrs[n] = &reqs[n];
                n++;
            }
        }
        assert_int_equal(coblk_queue_submit(r->q, ptrs, n), (int)n);
        for (unsigned got = 0; got < n;) {
            int k = coblk_queue_reap(r->q, done, 1, SHADOW_DEPTH, -1);
            assert_true(k > 0);
            for (int i = 0; i < k; i++) {
                if (done[i]->status != COBLK_S_OK) {
                    print_error("request type %u at sector %" PRIu64
                                " failed: %d (%s)\n", done[i]->type,
                                done[i]->sector, done[i]->error,
                                coblk_last_error());
                }
                assert_int_equal(done[i]->status, COBLK_S_OK);
                apply(r, done[i]);
            }
            got += (unsigned)k;
        }
    }
}

static void save_shadow(const struct shadow_run *r, const char *name)
{
    int fd = open(path_of(name), O_WRONLY | O_CREAT | O_TRUNC, 0644);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, r->shadow, r->size), (ssize_t)r->size);
    close(fd);
}

/* Writes `image` (made already) at random through the queue API, then
 * checks it with qemu-img: no errors, no leaks, the shadow's content. */
static void write_and_check(const char *image, uint64_t cluster,
                            bool discard_zeroes, unsigned rounds)
{
    struct shadow_run r = { .cluster = cluster,
                            .discard_zeroes = discard_zeroes,
                            .x = 0x9e3779b97f4a7c15ull };

    sh("qemu-img convert -O raw %s shadow.raw", image);
    r.shadow = read_file("shadow.raw", &r.size);
    assert_int_equal(coblk_dev_open(qcow2_spec(image), 0, &r.dev), 0);
    assert_int_equal(coblk_queue_new(r.dev, SHADOW_DEPTH, NULL, &r.q), 0);
    run_random_requests(&r, rounds);
    coblk_queue_free(r.q);
    assert_int_equal(coblk_dev_close(r.dev), 0);

    save_shadow(&r, "shadow.raw");
    sh("qemu-img check -f qcow2 %s", image);
    sh("qemu-img compare -f qcow2 -F raw %s shadow.raw", image);
    assert_reads_as_qemu(image, qcow2_spec(image));
    free(r.shadow);
}

static void test_random_writes_pass_qemu_img_check(void **state)
{
    static const struct {
        const char *options;
        uint64_t cluster;
    } variants[] = {
        { "cluster_size=64k", 65536 },
        { "compat=0.10", 65536 },
        { "cluster_size=4k,refcount_bits=1", 4096 },
        /* 64 entries a refcount block, 64 blocks a table: the table
         * grows, again and again. */
        { "cluster_size=512,refcount_bits=64", 512 },
        { "cluster_size=2M", 2 << 20 },
        { "extended_l2=on,cluster_size=32k", 32768 },
        { "lazy_refcounts=on,refcount_bits=8", 65536 },
        { "preallocation=metadata,cluster_size=16k", 16384 },
    };

    (void)state;
    if (!have_qemu) {
        skip_because("qemu-img is not installed");
    }
    for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
        print_message("  %s\n", variants[i].options);
        sh("rm -f rw.qcow2 && qemu-img create -f qcow2 -o %s rw.qcow2 9217k"
           " && qemu-io -f qcow2 " QEMU_IO_MIX " rw.qcow2",
           variants[i].options);
        write_and_check("rw.qcow2", variants[i].cluster, true, 40);
    }
}

static void test_random_writes_over_backing_and_compressed(void **state)
{
    (void)state;
    if (!have_qemu) {
        skip_because("qemu-img is not installed");
    }
    /* Over a backing image: copy-on-write of partial clusters, and
     * discards that must keep the backing data hidden. */
    sh("rm -f wb.qcow2 wo.qcow2 && qemu-img create -f qcow2 wb.qcow2 9217k"
       " && qemu-io -f qcow2 " QEMU_IO_MIX " wb.qcow2 && qemu-io -f qcow2 "
       "-c 'write -P 0x35 0 9M' wb.qcow2 && "
       "qemu-img create -f qcow2 -b wb.qcow2 -F qcow2 wo.qcow2");
    write_and_check("wo.qcow2", 65536, true, 40);
    /* Extended L2 over a backing image: subclusters copy on write. */
    sh("rm -f wo.qcow2 && qemu-img create -f qcow2 -o extended_l2=on "
       "-b wb.qcow2 -F qcow2 wo.qcow2");
    write_and_check("wo.qcow2", 65536, true, 40);
    /* Version 2 over a backing image: discard can only leave things. */
    sh("rm -f wo.qcow2 && qemu-img create -f qcow2 -o compat=0.10 "
       "-b wb.qcow2 -F qcow2 wo.qcow2");
    write_and_check("wo.qcow2", 65536, false, 40);
    /* Writes into compressed clusters, zlib and zstd. */
    write_mixed_raw("mixed.raw", 9 * 1024 * 1024);
    sh("rm -f wc.qcow2 && qemu-img convert -c -O qcow2 mixed.raw wc.qcow2");
    write_and_check("wc.qcow2", 65536, true, 40);
    sh("rm -f wc.qcow2 && qemu-img convert -c -O qcow2 -o "
       "compression_type=zstd,extended_l2=on mixed.raw wc.qcow2");
    write_and_check("wc.qcow2", 65536, true, 40);
}

/* ---- internal snapshots ----------------------------------------------------- */

static struct coblk_dev *open_rw(const char *image)
{
    struct coblk_dev *dev;
    int ret = coblk_dev_open(qcow2_spec(image), 0, &dev);

    if (ret < 0) {
        print_error("open %s: %s\n", image, coblk_last_error());
    }
    assert_int_equal(ret, 0);
    return dev;
}

/* Runs op (coblk_snapshot_create, _apply or _delete) on the image. */
static void snapshot_op(const char *image,
                        int (*op)(struct coblk_dev *, const char *),
                        const char *arg)
{
    struct coblk_dev *dev = open_rw(image);
    int ret = op(dev, arg);

    if (ret < 0) {
        print_error("snapshot op on '%s': %s\n", arg, coblk_last_error());
    }
    assert_int_equal(ret, 0);
    assert_int_equal(coblk_dev_close(dev), 0);
    /* No error, no leak: qemu-img check exits 0 only so. */
    sh("qemu-img check -f qcow2 %s", image);
}

/* The snapshot reads as `raw`, through qemu-img and through coblk. */
static void assert_snapshot_is(const char *image, const char *which,
                               const char *raw)
{
    char spec[400];

    sh("qemu-img convert -l snapshot.name=%s -O raw %s snap-now.raw && "
       "cmp snap-now.raw %s", which, image, raw);
    snprintf(spec, sizeof(spec), "qcow2:snapshot=%s:%s", which,
             path_of(image));
    assert_reads_as_qemu("snap-now.raw", spec);
}

static void snapshots_round(const char *options, uint64_t cluster)
{
    print_message("  %s\n", options);
    sh("rm -f sn.qcow2 && qemu-img create -f qcow2 -o %s sn.qcow2 9217k"
       " && qemu-io -f qcow2 " QEMU_IO_MIX " sn.qcow2 && "
       "qemu-img convert -O raw sn.qcow2 first.raw", options);
    snapshot_op("sn.qcow2", coblk_snapshot_create, "first");
    assert_snapshot_is("sn.qcow2", "first", "first.raw");
    /* Writes now copy the L2 tables and clusters the snapshot shares. */
    write_and_check("sn.qcow2", cluster, true, 20);
    assert_snapshot_is("sn.qcow2", "first", "first.raw");
    sh("qemu-img convert -O raw sn.qcow2 second.raw");
    snapshot_op("sn.qcow2", coblk_snapshot_create, "second");
    write_and_check("sn.qcow2", cluster, true, 20);
    /* qemu-img lists what coblk made, ids as QEMU numbers them. */
    sh("qemu-img snapshot -l sn.qcow2 | awk '$1 == 1 && $2 == \"first\" "
       "{ a = 1 } $1 == 2 && $2 == \"second\" { b = 1 } "
       "END { exit !(a && b) }'");
    assert_snapshot_is("sn.qcow2", "second", "second.raw");
    /* Applying brings back the content and the size (a version 2 image
     * with snapshots keeps its size, as in QEMU). */
    struct coblk_dev *dev = open_rw("sn.qcow2");
    assert_int_equal(coblk_truncate(dev, 20 << 20),
                     strstr(options, "0.10") ? -ENOTSUP : 0);
    assert_int_equal(coblk_dev_close(dev), 0);
    snapshot_op("sn.qcow2", coblk_snapshot_apply, "first");
    assert_reads_as_qemu("first.raw", qcow2_spec("sn.qcow2"));
    /* Deleted by id and by name: no leak, the data stays. */
    snapshot_op("sn.qcow2", coblk_snapshot_delete, "2");
    assert_snapshot_is("sn.qcow2", "first", "first.raw");
    snapshot_op("sn.qcow2", coblk_snapshot_delete, "first");
    sh("test -z \"$(qemu-img snapshot -l sn.qcow2)\"");
    assert_reads_as_qemu("first.raw", qcow2_spec("sn.qcow2"));
}

static void test_snapshots_made_applied_deleted_as_qemu_sees_them(void **s)
{
    (void)s;
    if (!have_qemu) {
        skip_because("qemu-img is not installed");
    }
    snapshots_round("cluster_size=64k", 65536);
    snapshots_round("compat=0.10", 65536);
    snapshots_round("extended_l2=on,cluster_size=32k", 32768);
    /* 15 references at most: applying takes a fourth, as in QEMU. */
    snapshots_round("cluster_size=4k,refcount_bits=4", 4096);
    snapshots_round("cluster_size=512,refcount_bits=64", 512);
}

static void test_snapshots_qemu_made_are_written_around(void **state)
{
    (void)state;
    if (!have_qemu) {
        skip_because("qemu-img is not installed");
    }
    /* Compressed clusters too: shared, then written over. */
    write_mixed_raw("mixed.raw", 9 * 1024 * 1024);
    sh("rm -f qs.qcow2 && qemu-img convert -c -O qcow2 mixed.raw qs.qcow2 && "
       "qemu-io -f qcow2 " QEMU_IO_MIX " qs.qcow2 && "
       "qemu-img convert -O raw qs.qcow2 q1.raw && "
       "qemu-img snapshot -c q1 qs.qcow2");
    write_and_check("qs.qcow2", 65536, true, 30);
    assert_snapshot_is("qs.qcow2", "q1", "q1.raw");
    /* What coblk wrote, QEMU applies and deletes cleanly. */
    sh("qemu-img snapshot -a q1 qs.qcow2 && qemu-img check qs.qcow2 && "
       "qemu-img convert -O raw qs.qcow2 now.raw && cmp now.raw q1.raw && "
       "qemu-img snapshot -d q1 qs.qcow2 && qemu-img check qs.qcow2");
}

static void test_snapshot_errors(void **state)
{
    struct coblk_dev *dev;

    (void)state;
    if (!have_qemu) {
        skip_because("qemu-img is not installed");
    }
    sh("rm -f se.qcow2 && qemu-img create -f qcow2 se.qcow2 1M && "
       "qemu-io -f qcow2 -c 'write -P 7 0 64k' se.qcow2 && "
       "qemu-img snapshot -c one se.qcow2");
    dev = open_rw("se.qcow2");
    assert_int_equal(coblk_snapshot_apply(dev, "nope"), -ENOENT);
    assert_non_null(strstr(coblk_last_error(), "no snapshot 'nope'"));
    assert_int_equal(coblk_snapshot_delete(dev, "nope"), -ENOENT);
    assert_int_equal(coblk_snapshot_create(dev, NULL), -EINVAL);
    assert_int_equal(coblk_dev_close(dev), 0);
    assert_int_equal(coblk_dev_open(qcow2_spec("se.qcow2"),
                                    COBLK_OPEN_RDONLY, &dev), 0);
    assert_int_equal(coblk_snapshot_create(dev, "x"), -EROFS);
    assert_int_equal(coblk_dev_close(dev), 0);
    /* A raw image has none. */
    sh("rm -f se.raw && truncate -s 1M se.raw");
    char spec[300];
    snprintf(spec, sizeof(spec), "raw:%s", path_of("se.raw"));
    assert_int_equal(coblk_dev_open(spec, 0, &dev), 0);
    assert_int_equal(coblk_snapshot_create(dev, "x"), -ENOTSUP);
    assert_int_equal(coblk_dev_close(dev), 0);
    /* One-bit refcounts cannot share: refused, nothing changed. */
    sh("rm -f s1.qcow2 && qemu-img create -f qcow2 -o refcount_bits=1 "
       "s1.qcow2 1M && qemu-io -f qcow2 -c 'write -P 7 0 64k' s1.qcow2 && "
       "cp s1.qcow2 s1-before.qcow2");
    dev = open_rw("s1.qcow2");
    assert_int_equal(coblk_snapshot_create(dev, "x"), -ERANGE);
    assert_int_equal(coblk_dev_close(dev), 0);
    sh("cmp s1.qcow2 s1-before.qcow2");
    /* Refcounts that cannot count one more reference: refused before
     * anything changes (qemu-img leaves flags wrong half-way). */
    sh("rm -f s2.qcow2 && qemu-img create -f qcow2 -o refcount_bits=2 "
       "s2.qcow2 1M && qemu-io -f qcow2 -c 'write -P 7 0 64k' s2.qcow2");
    snapshot_op("s2.qcow2", coblk_snapshot_create, "a");
    snapshot_op("s2.qcow2", coblk_snapshot_create, "b");
    sh("cp s2.qcow2 s2-before.qcow2");
    dev = open_rw("s2.qcow2");
    assert_int_equal(coblk_snapshot_create(dev, "c"), -ERANGE);
    assert_non_null(strstr(coblk_last_error(), "refcount_bits=2"));
    assert_int_equal(coblk_snapshot_apply(dev, "a"), -ERANGE);
    assert_int_equal(coblk_dev_close(dev), 0);
    sh("cmp s2.qcow2 s2-before.qcow2");
    /* Upgrading a version 2 image rewrites its snapshot table with the
     * extra data version 3 wants; downgrading it again keeps the
     * snapshot (one without zero clusters). */
    sh("rm -f v2.qcow2 && qemu-img create -f qcow2 -o compat=0.10 v2.qcow2 "
       "1M && qemu-img snapshot -c a v2.qcow2");
    size_t size;
    uint8_t *img = read_file("v2.qcow2", &size);
    uint64_t sn_table = 0;
    for (int i = 0; i < 8; i++) {
        sn_table = sn_table << 8 | img[64 + i];
    }
    /* As an old QEMU wrote it: no extra data, id and name after the
     * fixed part. */
    uint8_t *e = img + sn_table;
    uint32_t extra = (uint32_t)e[36] << 24 | e[37] << 16 | e[38] << 8 | e[39];
    memmove(e + 40, e + 40 + extra, (size_t)(e[13] + e[15]));
    memset(e + 36, 0, 4);
    int fd = open(path_of("v2.qcow2"), O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, e, 64, (off_t)sn_table), 64);
    close(fd);
    free(img);
    sh("qemu-img snapshot -l v2.qcow2 | grep -q '^1 *a '");
    dev = open_rw("v2.qcow2");
    assert_int_equal(coblk_amend(dev, "compat=1.1"), 0);
    assert_int_equal(coblk_amend(dev, "compat=0.10"), 0);
    assert_int_equal(coblk_dev_close(dev), 0);
    sh("qemu-img check v2.qcow2 && qemu-img snapshot -l v2.qcow2 | "
       "grep -q '^1 *a ' && qemu-img info v2.qcow2 | grep -q 'compat: 0.10'");
    /* A snapshot's zero clusters have no form in version 2: refused, the
     * image unchanged. */
    sh("rm -f zs.qcow2 && qemu-img create -f qcow2 zs.qcow2 1M && "
       "qemu-io -c 'write -z 64k 64k' zs.qcow2 && "
       "qemu-img snapshot -c z zs.qcow2 && cp zs.qcow2 zs-before.qcow2");
    dev = open_rw("zs.qcow2");
    assert_int_equal(coblk_amend(dev, "compat=0.10"), -ENOTSUP);
    assert_non_null(strstr(coblk_last_error(), "snapshot 'z' has zero"));
    assert_int_equal(coblk_dev_close(dev), 0);
    sh("cmp zs.qcow2 zs-before.qcow2");
    /* The old snapshot table counted free: freeing it after the switch
     * fails, and the new table stays the image's (it was freed twice). */
    sh("rm -f sf.qcow2 && qemu-img create -f qcow2 sf.qcow2 4M && "
       "qemu-io -f qcow2 -c 'write -P 5 0 1M' sf.qcow2 && "
       "qemu-img snapshot -c a sf.qcow2 && qemu-img snapshot -c b sf.qcow2");
    img = read_file("sf.qcow2", &size);
    uint64_t table_at = 0, reftable_at = 0, block_at = 0;
    for (int i = 0; i < 8; i++) {
        table_at = table_at << 8 | img[64 + i];
        reftable_at = reftable_at << 8 | img[48 + i];
    }
    for (int i = 0; i < 8; i++) {
        block_at = block_at << 8 | img[reftable_at + i];
    }
    free(img);
    put_be("sf.qcow2", block_at + 2 * (table_at >> 16), 2, 0);
    dev = open_rw("sf.qcow2");
    assert_int_equal(coblk_snapshot_delete(dev, "a"), -EIO);
    struct coblk_image_info info;
    assert_int_equal(coblk_image_info(dev, &info, sizeof(info)), 0);
    assert_int_equal(info.nb_snapshots, 1);
    assert_string_equal(info.snapshots[0].name, "b");
    assert_int_equal(coblk_dev_close(dev), 0);
    /* A snapshot whose L1 table names the refcount table as an L2 table:
     * the image is marked corrupt, the refcount table never freed. */
    sh("rm -f sh.qcow2 && qemu-img create -f qcow2 sh.qcow2 1M && "
       "qemu-img snapshot -c one sh.qcow2");
    img = read_file("sh.qcow2", &size);
    uint64_t reftable = 0, sn_l1 = 0;
    sn_table = 0;
    for (int i = 0; i < 8; i++) {
        reftable = reftable << 8 | img[48 + i];
        sn_table = sn_table << 8 | img[64 + i];
    }
    for (int i = 0; i < 8; i++) {
        sn_l1 = sn_l1 << 8 | img[sn_table + i];
    }
    free(img);
    put_be("sh.qcow2", sn_l1, 8, reftable);
    dev = open_rw("sh.qcow2");
    assert_int_equal(coblk_snapshot_delete(dev, "one"), -EIO);
    assert_non_null(strstr(coblk_last_error(), "corrupt"));
    assert_int_equal(coblk_dev_close(dev), 0);
    sh("qemu-img info sh.qcow2 | grep -q 'corrupt: true'");
}

/* Amends image with options (expecting err and, failing, message). */
static void amend(const char *image, const char *options, int err,
                  const char *message)
{
    struct coblk_dev *dev = open_rw(image);
    int ret = coblk_amend(dev, options);

    if (ret != err) {
        print_error("amend %s %s: %d %s\n", image, options, ret,
                    coblk_last_error());
    }
    assert_int_equal(ret, err);
    if (message) {
        assert_string_equal(coblk_last_error(), message);
    }
    assert_int_equal(coblk_dev_close(dev), 0);
}

/* amend refcount_bits: every width from 1 to 64 and back, on an image
 * with a snapshot (refcounts of 2) and 4k clusters (several refcount
 * blocks): after each change qemu-img finds it clean and reading as
 * before, and writes through coblk count right in the new width; a width
 * that cannot hold a refcount is refused before anything changes, with
 * QEMU's words. */
static void test_amend_refcount_bits(void **state)
{
    (void)state;
    if (!have_qemu) {
        skip_because("qemu-img is not installed");
    }
    sh("rm -f rb.qcow2 && qemu-img create -f qcow2 -o cluster_size=4k "
       "rb.qcow2 32M && qemu-io -f qcow2 -c 'write -P 9 0 24M' rb.qcow2 && "
       "qemu-img snapshot -c s rb.qcow2 && "
       "qemu-io -f qcow2 -c 'write -P 8 4M 1M' rb.qcow2 && "
       "qemu-img convert -O raw rb.qcow2 rb-before.raw");
    static const char *const widths[] = { "2", "64", "8", "4", "32", "16" };
    for (unsigned i = 0; i < sizeof(widths) / sizeof(widths[0]); i++) {
        char options[64];
        snprintf(options, sizeof(options), "refcount_bits=%s", widths[i]);
        amend("rb.qcow2", options, 0, NULL);
        sh("qemu-img check rb.qcow2 && qemu-img info rb.qcow2 | grep -q "
           "'refcount bits: %s$' && qemu-img compare rb.qcow2 rb-before.raw "
           "&& qemu-img convert -l snapshot.name=s -O raw rb.qcow2 rb-s.raw "
           "&& qemu-io -f raw -c 'read -P 9 0 24M' rb-s.raw", widths[i]);
    }
    sh("cp rb.qcow2 rb-kept.qcow2");
    amend("rb.qcow2", "refcount_bits=1", -EINVAL,
          "Cannot decrease refcount entry width to 1 bits: Cluster at offset "
          "0x4000 has a refcount of 2");
    sh("cmp rb.qcow2 rb-kept.qcow2");
    amend("rb.qcow2", "refcount_bits=3", -EINVAL,
          "Refcount width must be a power of two and may not exceed 64 "
          "bits");
    amend("rb.qcow2", "refcount_bits=8,compat=0.10", -EINVAL,
          "Refcount widths other than 16 bits require compatibility level "
          "1.1 or above (use compat=1.1 or greater)");
    /* Without the snapshot, one bit holds every refcount; then writes. */
    sh("qemu-img snapshot -d s rb.qcow2");
    amend("rb.qcow2", "refcount_bits=1", 0, NULL);
    write_and_check("rb.qcow2", 4096, true, 5);
    /* A long unused tail in the file (or a block device's end) takes no
     * refcount blocks: the new ones follow the last cluster in use. */
    sh("rm -f rbt.qcow2 && qemu-img create -f qcow2 rbt.qcow2 1G && "
       "qemu-io -f qcow2 -c 'write -P 5 0 1M' rbt.qcow2 && "
       "truncate -s 10G rbt.qcow2");
    amend("rbt.qcow2", "refcount_bits=64", 0, NULL);
    sh("qemu-img check rbt.qcow2 | grep -q 'Image end offset: 1[0-9]\\{6\\}$'"
       " && qemu-io -f qcow2 -c 'read -P 5 0 1M' rbt.qcow2");
    /* A version 2 image upgraded and narrowed in one amend. */
    sh("rm -f rb2.qcow2 && qemu-img create -f qcow2 -o compat=0.10 "
       "rb2.qcow2 8M && qemu-io -f qcow2 -c 'write -P 7 0 3M' rb2.qcow2");
    amend("rb2.qcow2", "compat=1.1,refcount_bits=4", 0, NULL);
    sh("qemu-img check rb2.qcow2 && qemu-img info rb2.qcow2 | grep -q "
       "'refcount bits: 4$' && qemu-io -f qcow2 -c 'read -P 7 0 3M' "
       "rb2.qcow2");
    amend("rb2.qcow2", "compat=0.10,refcount_bits=16", 0, NULL);
    sh("qemu-img check rb2.qcow2 && qemu-img info rb2.qcow2 | grep -q "
       "'compat: 0.10' && qemu-io -f qcow2 -c 'read -P 7 0 3M' rb2.qcow2");
}

/* Appends a check's report line to the buffer (4096 bytes) at opaque. */
static void keep_line(void *opaque, const char *line)
{
    char *lines = opaque;
    size_t used = strlen(lines);

    snprintf(lines + used, 4096 - used, "%s\n", line);
}

/* The offset of snapshot 0's entry in image's snapshot table. */
static uint64_t first_snapshot_entry(const char *image)
{
    size_t size;
    uint8_t *img = read_file(image, &size);
    uint64_t table = 0;

    for (int i = 0; i < 8; i++) {
        table = table << 8 | img[64 + i];
    }
    free(img);
    return table;
}

/* One damaged snapshot entry (a bad L1 offset or size) does not lock the
 * user out of the image, as in QEMU: the image opens, reads and writes;
 * the snapshot fails when used, with QEMU's words; check reports the
 * entry, its clusters as leaks.  And writes still copy what the snapshot
 * shares: with the entry mended, the snapshot reads as before. */
static void bad_snapshot_l1(uint64_t field_at, unsigned width, uint64_t value,
                            int err, const char *message,
                            const char *check_says)
{
    struct coblk_dev *dev;
    uint8_t buf[512], want[512];
    char lines[4096];

    sh("rm -f bl.qcow2 && qemu-img create -f qcow2 bl.qcow2 64M && "
       "qemu-io -f qcow2 -c 'write -P 7 0 512' bl.qcow2 && "
       "qemu-img snapshot -c test bl.qcow2 && cp bl.qcow2 bl-good.qcow2");
    uint64_t entry = first_snapshot_entry("bl.qcow2");
    put_be("bl.qcow2", entry + field_at, width, value);
    char spec[300];
    snprintf(spec, sizeof(spec), "qcow2:snapshot=test:%s",
             path_of("bl.qcow2"));
    expect_open_error(spec, COBLK_OPEN_RDONLY, err, message);
    dev = open_rw("bl.qcow2");
    memset(want, 7, sizeof(want));
    assert_int_equal(coblk_pread(dev, buf, sizeof(buf), 0), 0);
    assert_memory_equal(buf, want, sizeof(buf));
    memset(want, 9, sizeof(want));
    assert_int_equal(coblk_pwrite(dev, want, sizeof(want), 0), 0);
    assert_int_equal(coblk_pread(dev, buf, sizeof(buf), 0), 0);
    assert_memory_equal(buf, want, sizeof(buf));
    assert_int_equal(coblk_snapshot_apply(dev, "test"), err);
    assert_string_equal(coblk_last_error(), message);
    assert_int_equal(coblk_snapshot_delete(dev, "test"), err);
    assert_string_equal(coblk_last_error(), message);
    struct coblk_check c = { .report = keep_line, .opaque = lines };
    lines[0] = '\0';
    assert_int_equal(coblk_check(dev, &c, sizeof(c)), 0);
    assert_int_equal(c.corruptions, 1);
    assert_int_equal(c.leaks, 3);    /* the snapshot's L1 and L2, its data */
    assert_non_null(strstr(lines, check_says));
    assert_int_equal(coblk_dev_close(dev), 0);
    /* qemu-img check says the same. */
    sh("qemu-img check bl.qcow2 >bl.check 2>&1; test $? = 2 && "
       "grep -q '^ERROR.*%s' bl.check && grep -q '^Leaked cluster' bl.check",
       check_says);
    /* Mended: the snapshot still holds the 7s, the image the 9s. */
    size_t size;
    uint8_t *good = read_file("bl-good.qcow2", &size);
    uint64_t was = 0;
    for (unsigned i = 0; i < width; i++) {
        was = was << 8 | good[entry + field_at + i];
    }
    free(good);
    put_be("bl.qcow2", entry + field_at, width, was);
    sh("qemu-img check bl.qcow2 && "
       "qemu-img convert -l snapshot.name=test -O raw bl.qcow2 bl-snap.raw && "
       "qemu-io -f raw -c 'read -P 7 0 512' bl-snap.raw && "
       "qemu-io -f qcow2 -c 'read -P 9 0 512' bl.qcow2");
}

static void test_bad_snapshot_l1_fails_only_when_used(void **state)
{
    (void)state;
    if (!have_qemu) {
        skip_because("qemu-img is not installed");
    }
    bad_snapshot_l1(0, 8, 0x400200, -EINVAL,
                    "Snapshot L1 table offset invalid",
                    "l1_offset=0x400200: L1 table is not cluster aligned; "
                    "snapshot table entry corrupted");
    bad_snapshot_l1(8, 4, 0x10000000, -EFBIG, "Snapshot L1 table too large",
                    "l1_size=0x10000000: L1 table is too large; snapshot "
                    "table entry corrupted");
    /* Past the end of the file is no error, as in QEMU: that part of
     * the table reads as zeroes, and check says it exceeds the file. */
    sh("rm -f bl.qcow2 && qemu-img create -f qcow2 bl.qcow2 64M && "
       "qemu-io -f qcow2 -c 'write -P 7 0 512' bl.qcow2 && "
       "qemu-img snapshot -c test bl.qcow2");
    put_be("bl.qcow2", first_snapshot_entry("bl.qcow2"), 8, 1ull << 50);
    char spec[300], lines[4096] = "";
    snprintf(spec, sizeof(spec), "qcow2:snapshot=test:%s",
             path_of("bl.qcow2"));
    struct coblk_dev *dev;
    assert_int_equal(coblk_dev_open(spec, COBLK_OPEN_RDONLY, &dev), 0);
    uint8_t buf[512], zeroes[512] = { 0 };
    assert_int_equal(coblk_pread(dev, buf, sizeof(buf), 0), 0);
    assert_memory_equal(buf, zeroes, sizeof(buf));
    assert_int_equal(coblk_dev_close(dev), 0);
    dev = open_rw("bl.qcow2");
    struct coblk_check c = { .report = keep_line, .opaque = lines };
    assert_int_equal(coblk_check(dev, &c, sizeof(c)), 0);
    assert_int_equal(c.corruptions, 1);
    assert_int_equal(c.leaks, 3);
    assert_non_null(strstr(lines, "region exceeding the end of the file by "
                           "one cluster or more: offset 0x4000000000000"));
    assert_int_equal(coblk_dev_close(dev), 0);
    sh("qemu-img convert -l snapshot.name=test -O raw bl.qcow2 bl-snap.raw "
       "&& qemu-io -f raw -c 'read -P 0 0 64M' bl-snap.raw");
}

static void test_open_for_writing_refuses_what_it_cannot_keep(void **state)
{
    (void)state;
    if (!have_qemu) {
        skip_because("qemu-img is not installed");
    }
    /* Autoclear bits coblk does not know are cleared at a read-write
     * open, the bitmaps' before the guest's data first changes. */
    sh("rm -f ac.qcow2 && qemu-img create -f qcow2 ac.qcow2 1M");
    put_be("ac.qcow2", 88, 8, 0x8000000000000003ull);
    struct coblk_dev *dev;
    assert_int_equal(coblk_dev_open(qcow2_spec("ac.qcow2"), 0, &dev), 0);
    assert_int_equal(get_be("ac.qcow2", 88, 8), 1);
    uint8_t sector[512] = { 1 };
    assert_int_equal(coblk_pwrite(dev, sector, sizeof(sector), 0), 0);
    assert_int_equal(get_be("ac.qcow2", 88, 8), 0);
    assert_int_equal(coblk_dev_close(dev), 0);
    /* A read-only image is not written, not even at close. */
    sh("rm -f ro.qcow2 && qemu-img create -f qcow2 ro.qcow2 1M");
    put_be("ro.qcow2", 88, 8, 3);
    dev = open_ok(qcow2_spec("ro.qcow2"));
    uint8_t data[512] = { 1 };
    assert_int_equal(coblk_pwrite(dev, data, sizeof(data), 0), -EROFS);
    assert_int_equal(coblk_dev_close(dev), 0);
    assert_int_equal(get_be("ro.qcow2", 88, 8), 3);
}

/* ---- creating images ----------------------------------------------------------- */

/* Our image and qemu-img's, made with the same options, check clean, say
 * the same in qemu-img info and hold the same. */
static void assert_creates_as_qemu(const char *options, uint64_t size)
{
    int ret = coblk_create("qcow2", path_of("ours.qcow2"), size, options);

    if (ret < 0) {
        print_error("create %s: %s\n", options, coblk_last_error());
    }
    assert_int_equal(ret, 0);
    /* qemu-img takes the backing image's size when given none. */
    bool backing = strstr(options, "backing_file");
    char size_arg[32] = "";
    if (size || !backing) {
        snprintf(size_arg, sizeof(size_arg), "%" PRIu64, size);
    }
    sh("rm -f theirs.qcow2 && qemu-img create -f qcow2 %s%s%s theirs.qcow2 "
       "%s", *options ? "-o '" : "", options, *options ? "'" : "", size_arg);
    sh("qemu-img check -f qcow2 ours.qcow2");
    sh("python3 -c \"import json, subprocess as s\n"
       "info = lambda f: json.loads(s.check_output(['qemu-img', 'info', "
       "'--output=json', f]))\n"
       "a, b = info('ours.qcow2'), info('theirs.qcow2')\n"
       "keys = ['virtual-size', 'cluster-size', 'format', 'format-specific',"
       " 'backing-filename', 'backing-filename-format', "
       "'full-backing-filename']\n"
       "assert all(a.get(k) == b.get(k) for k in keys), (a, b)\"");
    /* Without a backing image, zeroes.  (qemu-img's own preallocated
     * clusters may hold what its metadata left there before.) */
    if (backing) {
        sh("qemu-img compare -f qcow2 -F qcow2 ours.qcow2 theirs.qcow2");
    } else {
        sh("rm -f zero.raw && truncate -s %" PRIu64 " zero.raw && "
           "qemu-img compare -f qcow2 -F raw ours.qcow2 zero.raw", size);
    }
}

static void test_create_as_qemu_img_does(void **state)
{
    static const char *const variants[] = {
        "", "compat=0.10", "compat=1.1,lazy_refcounts=on",
        "cluster_size=512", "cluster_size=4096,refcount_bits=1",
        "cluster_size=2M,refcount_bits=64", "extended_l2=on",
        "compression_type=zstd", "refcount_bits=8,extended_l2=on,"
        "cluster_size=32k", "preallocation=metadata",
        "preallocation=metadata,cluster_size=512",
        "preallocation=falloc,cluster_size=128k",
        "preallocation=full,cluster_size=4k",
    };
    static const uint64_t sizes[] = { 0, 999424, 10u << 20, 1ull << 30 };

    (void)state;
    if (!have_qemu) {
        skip_because("qemu-img is not installed");
    }
    for (size_t v = 0; v < sizeof(variants) / sizeof(variants[0]); v++) {
        print_message("  %s\n", variants[v]);
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
            bool full = strstr(variants[v], "full") ||
                        strstr(variants[v], "falloc");
            if (!(full && sizes[i] > (10u << 20))) {
                assert_creates_as_qemu(variants[v], sizes[i]);
            }
        }
    }
    /* What we create, we and qemu write. */
    assert_int_equal(coblk_create("qcow2", path_of("rw.qcow2"), 9217 * 1024,
                                  "cluster_size=4k,refcount_bits=1"), 0);
    sh("qemu-io -f qcow2 " QEMU_IO_MIX " rw.qcow2");
    write_and_check("rw.qcow2", 4096, true, 20);
}

static void test_create_with_a_backing_file(void **state)
{
    (void)state;
    if (!have_qemu) {
        skip_because("qemu-img is not installed");
    }
    sh("rm -f cb.qcow2 && qemu-img create -f qcow2 cb.qcow2 5M && "
       "qemu-io -f qcow2 -c 'write -P 0x21 0 5M' cb.qcow2");
    /* Size 0: the backing image's.  The name stays relative. */
    assert_creates_as_qemu("backing_file=cb.qcow2,backing_fmt=qcow2", 0);
    assert_creates_as_qemu("backing_file=cb.qcow2,backing_fmt=qcow2,"
                           "extended_l2=on,preallocation=metadata", 8u << 20);
    assert_reads_as_qemu("ours.qcow2", qcow2_spec("ours.qcow2"));
    sh("rm -f cr.raw && qemu-img create -f raw cr.raw 3M");
    assert_creates_as_qemu("backing_file=cr.raw,backing_fmt=raw", 0);
}

static void expect_create_error(const char *fmt, uint64_t size,
                                const char *options, int err,
                                const char *message)
{
    int ret = coblk_create(fmt, path_of("bad-create"), size, options);

    if (ret != err || !strstr(coblk_last_error(), message)) {
        print_error("create %s %s: %d '%s', expected %d '%s'\n", fmt,
                    options, ret, coblk_last_error(), err, message);
    }
    assert_int_equal(ret, err);
    assert_non_null(strstr(coblk_last_error(), message));
    assert_int_equal(access(path_of("bad-create"), F_OK), -1);
}

static void test_create_refuses_what_qemu_img_refuses(void **state)
{
    (void)state;
    expect_create_error("qcow2", 1 << 20, "size_of_cluster=4k", -EINVAL,
                        "unknown option 'size_of_cluster'");
    expect_create_error("qcow2", 1 << 20, "cluster_size=1000", -EINVAL,
                        "Cluster size must be a power of two between 512 "
                        "and 2048k");
    expect_create_error("qcow2", 1 << 20, "cluster_size=4M", -EINVAL,
                        "Cluster size must be a power of two");
    expect_create_error("qcow2", 1 << 20, "compat=0.10,refcount_bits=8",
                        -EINVAL, "Different refcount widths than 16 bits "
                        "require compatibility level 1.1");
    expect_create_error("qcow2", 1 << 20, "compat=0.10,extended_l2=on",
                        -EINVAL, "Extended L2 entries are only supported "
                        "with compatibility level 1.1");
    expect_create_error("qcow2", 1 << 20, "compat=2.0", -EINVAL,
                        "bad compat '2.0'");
    expect_create_error("qcow2", 1 << 20, "refcount_bits=3", -EINVAL,
                        "Refcount width must be a power of two");
    expect_create_error("qcow2", 1 << 20, "refcount_bits=128", -EINVAL,
                        "Refcount width must be a power of two and may not "
                        "exceed 64 bits");
    expect_create_error("qcow2", 1 << 20, "refcount_bits=-1", -EINVAL,
                        "Refcount width must be a power of two");
    expect_create_error("qcow2", 1 << 20, "refcount_bits=x", -EINVAL,
                        "Parameter 'refcount_bits' expects a number");
    expect_create_error("qcow2", 1 << 20, "extended_l2=on,cluster_size=4k",
                        -EINVAL, "extended_l2 needs clusters of 16k");
    expect_create_error("qcow2", 1000, "", -EINVAL, "multiple of 512");
    expect_create_error("qcow2", 1 << 20, "backing_file=x.qcow2", -EINVAL,
                        "needs its format");
    expect_create_error("qcow2", 1 << 20,
                        "backing_file=x.vmdk,backing_fmt=vmdk", -EINVAL,
                        "backing_fmt 'vmdk'");
    expect_create_error("qcow2", 1 << 20, "backing_file=x.qcow2,"
                        "backing_fmt=qcow2,preallocation=metadata", -EINVAL,
                        "needs extended_l2=on");
    expect_create_error("qcow2", 1ull << 62, "cluster_size=512", -EFBIG,
                        "try using a larger cluster size");
    expect_create_error("qcow2", 1 << 20, "preallocation=sparse", -EINVAL,
                        "bad preallocation 'sparse'");
    expect_create_error("vmdk", 1 << 20, "", -EINVAL,
                        "unknown format 'vmdk'");
    expect_create_error("raw", 1 << 20, "cluster_size=4k", -EINVAL,
                        "raw: unknown option 'cluster_size'");
}

static void test_create_raw(void **state)
{
    struct stat st;

    (void)state;
    assert_int_equal(coblk_create("raw", path_of("c.raw"), 3 << 20, NULL), 0);
    assert_int_equal(stat(path_of("c.raw"), &st), 0);
    assert_int_equal(st.st_size, 3 << 20);
    assert_true(st.st_blocks * 512 < (1 << 20));        /* sparse */
    assert_int_equal(coblk_create("raw", path_of("c.raw"), 3 << 20,
                                  "preallocation=full"), 0);
    assert_int_equal(stat(path_of("c.raw"), &st), 0);
    assert_true(st.st_blocks * 512 >= (3 << 20));
    assert_int_equal(coblk_create("raw", path_of("c.raw"), 1 << 20,
                                  "preallocation=falloc"), 0);
    assert_int_equal(stat(path_of("c.raw"), &st), 0);
    assert_int_equal(st.st_size, 1 << 20);
}

/* ---- info and snapshots --------------------------------------------------------- */

/* coblk_image_info() of image, in qemu-img info --output=json's terms,
 * compared with what qemu-img says, by python. */
static void assert_info_as_qemu(const char *image)
{
    struct coblk_dev *dev = open_ok(qcow2_spec(image));
    struct coblk_image_info i;
    assert_int_equal(coblk_image_info(dev, &i, sizeof(i)), 0);

    FILE *f = fopen(path_of("ours.json"), "w");
    assert_non_null(f);
    fprintf(f, "{\"virtual-size\": %" PRIu64 ", \"cluster-size\": %" PRIu64
            ", \"format\": \"%s\", \"compat\": \"%s\", "
            "\"compression-type\": \"%s\", \"refcount-bits\": %u, "
            "\"lazy-refcounts\": %s, \"extended-l2\": %s, "
            "\"corrupt\": %s, \"dirty-flag\": %s",
            i.virtual_size, i.cluster_size, i.format, i.compat,
            i.compression_type, i.refcount_bits,
            i.lazy_refcounts ? "true" : "false",
            i.extended_l2 ? "true" : "false", i.corrupt ? "true" : "false",
            i.dirty ? "true" : "false");
    if (i.backing_file) {
        fprintf(f, ", \"backing-filename\": \"%s\", "
                "\"backing-filename-format\": \"%s\"", i.backing_file,
                i.backing_format);
    }
    fprintf(f, ", \"snapshots\": [");
    for (unsigned k = 0; k < i.nb_snapshots; k++) {
        const struct coblk_snapshot_info *sn = &i.snapshots[k];
        fprintf(f, "%s{\"id\": \"%s\", \"name\": \"%s\", "
                "\"vm-state-size\": %" PRIu64 ", \"date-sec\": %u, "
                "\"date-nsec\": %u, \"vm-clock-sec\": %" PRIu64 ", "
                "\"vm-clock-nsec\": %" PRIu64 ", \"icount\": %" PRId64 "}",
                k ? ", " : "", sn->id, sn->name, sn->vm_state_size,
                sn->date_sec, sn->date_nsec,
                sn->vm_clock_nsec / 1000000000u,
                sn->vm_clock_nsec % 1000000000u, sn->icount);
    }
    fprintf(f, "]}\n");
    fclose(f);
    assert_int_equal(coblk_dev_close(dev), 0);
    sh("qemu-img info --output=json %s > theirs.json && python3 -c \""
       "import json\n"
       "a = json.load(open('ours.json'))\n"
       "t = json.load(open('theirs.json'))\n"
       "t.update(t['format-specific']['data'])\n"
       "t.setdefault('snapshots', [])\n"
       "for s in t['snapshots']: s.setdefault('icount', -1)\n"
       "# version 2 images lack the flags of version 3: false\n"
       "assert all(a[k] == t.get(k, False) for k in a), (a, t)\"", image);
}

static void test_info_and_snapshots_as_qemu_img_tells_them(void **state)
{
    (void)state;
    if (!have_qemu) {
        skip_because("qemu-img is not installed");
    }
    sh("rm -f i1.qcow2 i2.qcow2 && qemu-img create -f qcow2 -o "
       "compat=0.10,cluster_size=4k i1.qcow2 3M && qemu-img create -f qcow2"
       " -o lazy_refcounts=on,extended_l2=on,compression_type=zstd,"
       "refcount_bits=8 -b i1.qcow2 -F qcow2 i2.qcow2");
    assert_info_as_qemu("i1.qcow2");
    assert_info_as_qemu("i2.qcow2");
    /* Snapshots: listed, and each one's contents read. */
    sh("rm -f sn.qcow2 && qemu-img create -f qcow2 sn.qcow2 4M && "
       "qemu-io -f qcow2 -c 'write -P 1 0 1M' sn.qcow2 && "
       "qemu-img snapshot -c first sn.qcow2 && "
       "qemu-io -f qcow2 -c 'write -P 2 512k 1M' -c 'discard 0 64k' sn.qcow2"
       " && qemu-img snapshot -c second sn.qcow2 && "
       "qemu-io -f qcow2 -c 'write -P 3 3M 64k' sn.qcow2");
    assert_info_as_qemu("sn.qcow2");
    char spec[400];
    for (int i = 1; i <= 2; i++) {
        snprintf(spec, sizeof(spec), "qcow2:snapshot=%s:%s",
                 i == 1 ? "first" : "2", path_of("sn.qcow2"));
        sh("qemu-img convert -l snapshot.id=%d -O raw sn.qcow2 snap.raw", i);
        size_t size, got_size;
        uint8_t *want = read_file("snap.raw", &size);
        struct coblk_dev *dev = open_ok(spec);
        uint8_t *got = read_device(dev, &got_size);
        assert_int_equal(coblk_dev_close(dev), 0);
        assert_int_equal(got_size, size);
        assert_memory_equal(got, want, size);
        free(want);
        free(got);
    }
    assert_reads_as_qemu("sn.qcow2", qcow2_spec("sn.qcow2"));
    snprintf(spec, sizeof(spec), "qcow2:snapshot=third:%s",
             path_of("sn.qcow2"));
    expect_open_error(spec, COBLK_OPEN_RDONLY, -ENOENT, "no snapshot 'third'");
    snprintf(spec, sizeof(spec), "qcow2:snapshot=first:%s",
             path_of("sn.qcow2"));
    expect_open_error(spec, 0, -EINVAL, "a snapshot opens read-only");
    /* A table that runs past the file (a bad snapshot L1 table: below). */
    sh("cp sn.qcow2 bad-sn.qcow2");
    put_be("bad-sn.qcow2", 60, 4, 65536);
    expect_open_error(qcow2_spec("bad-sn.qcow2"), COBLK_OPEN_RDONLY, -EINVAL,
                      "snapshot");
}

/* ---- compressed writes ------------------------------------------------------------ */

/* Writes the raw file `from` into image as compressed clusters, `per`
 * clusters a request, all at once through a queue. */
static void write_compressed(const char *image, const char *from,
                             uint64_t cluster, uint64_t per)
{
    size_t size;
    uint8_t *data = read_file(from, &size);
    struct coblk_dev *dev;
    struct coblk_queue *q;

    assert_int_equal(coblk_dev_open(qcow2_spec(image), 0, &dev), 0);
    assert_int_equal(coblk_queue_new(dev, 64, NULL, &q), 0);
    uint64_t unit = cluster * per;
    uint64_t n = (size + unit - 1) / unit;
    struct iovec *iov = calloc(n, sizeof(*iov));
    struct coblk_req *reqs = calloc(n, sizeof(*reqs));
    assert_true(iov && reqs);
    for (uint64_t done = 0; done < n;) {
        struct coblk_req *ptrs[64], *finished[64];
        unsigned k = 0;
        for (; k < 64 && done + k < n; k++) {
            uint64_t i = done + k, at = i * unit;
            iov[i] = (struct iovec){ data + at,
                                     size - at < unit ? size - at : unit };
            reqs[i] = (struct coblk_req){ .type = COBLK_REQ_OUT,
                                          .flags = COBLK_REQ_F_COMPRESS,
                                          .sector = at / 512, .iov = &iov[i],
                                          .iovcnt = 1 };
            ptrs[k] = &reqs[i];
        }
        assert_int_equal(coblk_queue_submit(q, ptrs, k), (int)k);
        for (unsigned got = 0; got < k;) {
            int r = coblk_queue_reap(q, finished, 1, 64, -1);
            assert_true(r > 0);
            for (int j = 0; j < r; j++) {
                assert_int_equal(finished[j]->status, COBLK_S_OK);
            }
            got += (unsigned)r;
        }
        done += k;
    }
    coblk_queue_free(q);
    assert_int_equal(coblk_dev_close(dev), 0);
    free(iov);
    free(reqs);
    free(data);
}

static void test_compressed_writes_read_back_in_qemu(void **state)
{
    static const struct {
        const char *options;
        uint64_t cluster, per_request;
    } variants[] = {
        /* Requests of one cluster, and of many: those compress in
         * batches and end in the image's short last cluster. */
        { "compression_type=zlib", 65536, 1 },
        { "compression_type=zstd", 65536, 100 },
        { "compression_type=zlib,cluster_size=4k", 4096, 3 },
        { "compression_type=zstd,extended_l2=on,cluster_size=32k", 32768,
          100 },
        { "compat=0.10,cluster_size=512", 512, 1000 },
    };

    (void)state;
    if (!have_qemu) {
        skip_because("qemu-img is not installed");
    }
    /* Zeroes, patterns and noise: some clusters shrink, some do not. */
    write_mixed_raw("cmp.raw", (5u << 20) + 12288);
    for (size_t v = 0; v < sizeof(variants) / sizeof(variants[0]); v++) {
        print_message("  %s\n", variants[v].options);
        sh("rm -f wc.qcow2 && qemu-img create -f qcow2 -o %s wc.qcow2 %u",
           variants[v].options, (5u << 20) + 12288);
        write_compressed("wc.qcow2", "cmp.raw", variants[v].cluster,
                         variants[v].per_request);
        sh("qemu-img check -f qcow2 wc.qcow2 && "
           "qemu-img compare -f qcow2 -F raw wc.qcow2 cmp.raw && "
           "qemu-img check -f qcow2 --output=json wc.qcow2 | "
           "grep -q '\"compressed-clusters\": [1-9]'");
        assert_reads_as_qemu("wc.qcow2", qcow2_spec("wc.qcow2"));
        /* Then written over, discarded, zeroed: no leaks after. */
        write_and_check("wc.qcow2", variants[v].cluster, true, 15);
    }
    /* Where no format compresses, the flag is refused. */
    struct coblk_dev *dev;
    struct coblk_queue *q;
    assert_int_equal(coblk_dev_open("null:size=1M", 0, &dev), 0);
    assert_int_equal(coblk_queue_new(dev, 1, NULL, &q), 0);
    static uint8_t buf[65536];
    struct iovec iov = { buf, sizeof(buf) };
    struct coblk_req req = { .type = COBLK_REQ_OUT,
                             .flags = COBLK_REQ_F_COMPRESS, .iov = &iov,
                             .iovcnt = 1 }, *ptr = &req, *done;
    assert_int_equal(coblk_queue_submit(q, &ptr, 1), 1);
    assert_int_equal(coblk_queue_reap(q, &done, 1, 1, -1), 1);
    assert_int_equal(req.status, COBLK_S_UNSUPP);
    assert_int_equal(req.error, -ENOTSUP);
    coblk_queue_free(q);
    assert_int_equal(coblk_dev_close(dev), 0);
}

/* ---- measure -------------------------------------------------------------------- */

/* coblk_measure() says what qemu-img measure ARGS says. */
static void assert_measures_as_qemu(const char *fmt, const char *options,
                                    uint64_t size, const char *source)
{
    char what[300], cmd[800];
    if (source) {
        snprintf(what, sizeof(what), "-f qcow2 %s", path_of(source));
    } else {
        snprintf(what, sizeof(what), "--size %" PRIu64, size);
    }
    snprintf(cmd, sizeof(cmd), "qemu-img measure --output=json -O %s %s%s "
             "%s | python3 -c \"import json, sys; d = json.load(sys.stdin); "
             "print(d['required'], d['fully-allocated'])\"", fmt,
             *options ? "-o " : "", options, what);
    FILE *p = popen(cmd, "r");
    uint64_t required, full;
    assert_non_null(p);
    assert_int_equal(fscanf(p, "%" SCNu64 " %" SCNu64, &required, &full), 2);
    pclose(p);

    struct coblk_dev *dev = source ? open_ok(qcow2_spec(source)) : NULL;
    struct coblk_measure m;
    int ret = coblk_measure(fmt, options, size, dev, &m, sizeof(m));
    if (dev) {
        assert_int_equal(coblk_dev_close(dev), 0);
    }
    assert_int_equal(ret, 0);
    if (m.required != required || m.fully_allocated != full) {
        print_error("measure %s %s %" PRIu64 " %s: %" PRIu64 " %" PRIu64
                    ", qemu-img %" PRIu64 " %" PRIu64 "\n", fmt, options,
                    size, source ? source : "", m.required,
                    m.fully_allocated, required, full);
    }
    assert_int_equal(m.required, required);
    assert_int_equal(m.fully_allocated, full);
}

static void test_measure_as_qemu_img_does(void **state)
{
    static const char *const options[] = {
        "", "cluster_size=512", "refcount_bits=1", "extended_l2=on",
        "preallocation=full", "cluster_size=2M,refcount_bits=64",
        "compat=0.10", "preallocation=metadata,cluster_size=4k",
    };
    static const uint64_t sizes[] = { 0, 1 << 20, 1ull << 30, 10ull << 30 };

    (void)state;
    if (!have_qemu) {
        skip_because("qemu-img is not installed");
    }
    for (size_t o = 0; o < sizeof(options) / sizeof(options[0]); o++) {
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
            assert_measures_as_qemu("qcow2", options[o], sizes[i], NULL);
        }
    }
    assert_measures_as_qemu("raw", "", 1ull << 30, NULL);
    /* From images: their data, along the backing chain. */
    sh("rm -f mb.qcow2 mt.qcow2 && qemu-img create -f qcow2 mb.qcow2 9217k"
       " && qemu-io -f qcow2 " QEMU_IO_MIX " mb.qcow2 && "
       "qemu-img create -f qcow2 -b mb.qcow2 -F qcow2 mt.qcow2 && "
       "qemu-io -f qcow2 -c 'write -P 0x77 96k 8k' -c 'write -z 1M 4k' "
       "-c 'write -P 0x78 6M 1M' mt.qcow2");
    assert_measures_as_qemu("qcow2", "", 0, "mb.qcow2");
    assert_measures_as_qemu("qcow2", "cluster_size=512", 0, "mt.qcow2");
    assert_measures_as_qemu("qcow2", "cluster_size=2M", 0, "mt.qcow2");
    assert_measures_as_qemu("raw", "", 0, "mt.qcow2");
    struct coblk_measure m;
    assert_int_equal(coblk_measure("vmdk", NULL, 1 << 20, NULL, &m,
                                   sizeof(m)), -EINVAL);
    assert_int_equal(coblk_measure("qcow2", "cluster_size=3k", 1 << 20, NULL,
                                   &m, sizeof(m)), -EINVAL);
}

/* ---- resizing -------------------------------------------------------------------- */

static void resize(const char *spec, uint64_t size, int err)
{
    struct coblk_dev *dev;

    assert_int_equal(coblk_dev_open(spec, 0, &dev), 0);
    int ret = coblk_truncate(dev, size);
    if (ret != err) {
        print_error("truncate %s to %" PRIu64 ": %d %s\n", spec, size, ret,
                    coblk_last_error());
    }
    assert_int_equal(ret, err);
    if (ret == 0) {
        assert_int_equal(coblk_dev_size(dev), (int64_t)size);
    }
    assert_int_equal(coblk_dev_close(dev), 0);
}

static void test_resize_grows_and_shrinks_as_qemu_img_does(void **state)
{
    (void)state;
    if (!have_qemu) {
        skip_because("qemu-img is not installed");
    }
    /* 512-byte clusters: an L1 entry maps 32 KiB, so growing to 64 MiB
     * needs a new L1 table. */
    sh("rm -f g.qcow2 && qemu-img create -f qcow2 -o cluster_size=512 "
       "g.qcow2 1M && qemu-io -f qcow2 -c 'write -P 0x61 0 1M' g.qcow2 && "
       "cp g.qcow2 gq.qcow2 && qemu-img resize gq.qcow2 64M");
    resize(qcow2_spec("g.qcow2"), 64 << 20, 0);
    sh("qemu-img check -f qcow2 g.qcow2 && "
       "qemu-img compare -f qcow2 -F qcow2 g.qcow2 gq.qcow2");
    assert_info_as_qemu("g.qcow2");
    sh("qemu-io -f qcow2 -c 'write -P 0x62 60M 1M' g.qcow2 && "
       "qemu-img check -f qcow2 g.qcow2");
    write_and_check("g.qcow2", 512, true, 10);
    /* Shrinking: refused over data, done over nothing. */
    resize(qcow2_spec("g.qcow2"), 32 << 20, -ENOTSUP);
    sh("qemu-img create -f qcow2 s.qcow2 64M && qemu-io -f qcow2 -c "
       "'write -P 0x63 0 1M' -c 'write -P 0x64 40M 64k' -c 'discard 40M 64k'"
       " s.qcow2");
    resize(qcow2_spec("s.qcow2"), 1 << 20, 0);
    sh("qemu-img check -f qcow2 s.qcow2 && qemu-io -f qcow2 -c "
       "'read -P 0x63 0 1M' s.qcow2");
    assert_info_as_qemu("s.qcow2");
    resize(qcow2_spec("s.qcow2"), 1000, -EINVAL);
    /* Raw images and files follow; a raw window and read-only do not. */
    sh("rm -f r.raw && qemu-img create -f raw r.raw 1M");
    char spec[400];
    snprintf(spec, sizeof(spec), "raw:%s", path_of("r.raw"));
    resize(spec, 3 << 20, 0);
    struct stat st;
    assert_int_equal(stat(path_of("r.raw"), &st), 0);
    assert_int_equal(st.st_size, 3 << 20);
    snprintf(spec, sizeof(spec), "raw:offset=4096:%s", path_of("r.raw"));
    resize(spec, 1 << 20, -ENOTSUP);
    struct coblk_dev *dev = open_ok(path_of("r.raw"));
    assert_int_equal(coblk_truncate(dev, 1 << 20), -EROFS);
    assert_int_equal(coblk_dev_close(dev), 0);
}

/* Grows spec's image to size with mode (or fails with err and message);
 * returns the bytes of the file's blocks. */
static uint64_t grow_prealloc(const char *spec, const char *file,
                              uint64_t size, enum coblk_prealloc mode,
                              int err, const char *message)
{
    struct coblk_dev *dev;
    struct stat st;

    assert_int_equal(coblk_dev_open(spec, 0, &dev), 0);
    int ret = coblk_truncate_prealloc(dev, size, mode);
    if (ret != err) {
        print_error("grow %s to %" PRIu64 " (mode %d): %d %s\n", spec, size,
                    (int)mode, ret, coblk_last_error());
    }
    assert_int_equal(ret, err);
    if (message) {
        assert_string_equal(coblk_last_error(), message);
    }
    assert_int_equal(coblk_dev_close(dev), 0);
    assert_int_equal(stat(path_of(file), &st), 0);
    return (uint64_t)st.st_blocks * 512;
}

/* resize --preallocation through the library: falloc and full take the
 * space on disk, metadata only the tables; every mode reads as zeroes and
 * leaves a clean image; a file has no metadata mode; nothing shrinks
 * preallocated. */
static void test_grow_preallocated(void **state)
{
    (void)state;
    if (!have_qemu) {
        skip_because("qemu-img is not installed");
    }
    sh("rm -f p.qcow2 && qemu-img create -f qcow2 p.qcow2 1M");
    const char *spec = qcow2_spec("p.qcow2");
    uint64_t before = grow_prealloc(spec, "p.qcow2", 1 << 20,
                                    COBLK_PREALLOC_OFF, 0, NULL);
    uint64_t meta = grow_prealloc(spec, "p.qcow2", 9 << 20,
                                  COBLK_PREALLOC_METADATA, 0, NULL);
    assert_true(meta - before < 1 << 20);       /* no data clusters */
    uint64_t falloc = grow_prealloc(spec, "p.qcow2", 17 << 20,
                                    COBLK_PREALLOC_FALLOC, 0, NULL);
    assert_true(falloc - meta >= 8 << 20);
    uint64_t full = grow_prealloc(spec, "p.qcow2", 25 << 20,
                                  COBLK_PREALLOC_FULL, 0, NULL);
    assert_true(full - falloc >= 8 << 20);
    grow_prealloc(spec, "p.qcow2", 24 << 20, COBLK_PREALLOC_FULL, -EINVAL,
                  "Preallocation can only be used for growing images");
    sh("qemu-img check p.qcow2 && qemu-io -f qcow2 -c 'read -P 0 0 25M' "
       "p.qcow2 && test \"$(qemu-img map --output=json p.qcow2 | "
       "grep -c '\"present\": true')\" -ge 1");
    /* Over a larger backing image the new space reads as zeroes, not as
     * the backing data, whatever the mode (and with none): from an old
     * size inside a cluster, with and without extended L2 entries. */
    sh("rm -f pb.raw && qemu-img create -f raw pb.raw 8M && "
       "qemu-io -f raw -c 'write -P 0xbb 0 8M' pb.raw");
    static const char *const kinds[] = { "cluster_size=64k",
                                         "extended_l2=on", "compat=0.10" };
    for (unsigned k = 0; k < 3; k++) {
        for (int mode = COBLK_PREALLOC_OFF; mode <= COBLK_PREALLOC_FULL;
             mode++) {
            sh("rm -f po.qcow2 && qemu-img create -f qcow2 -o %s -b pb.raw "
               "-F raw po.qcow2 1000448", kinds[k]);
            grow_prealloc(qcow2_spec("po.qcow2"), "po.qcow2", 4 << 20,
                          (enum coblk_prealloc)mode, 0, NULL);
            sh("qemu-img check po.qcow2 && qemu-io -f qcow2 -c "
               "'read -P 0xbb 0 1000448' -c 'read -P 0 1000448 3193856' "
               "po.qcow2");
        }
    }
    /* 4k clusters with 64-bit refcounts: a refcount block counts what
     * one L2 table maps, and a run that fills that range must leave room
     * for the block itself. */
    sh("rm -f p64.qcow2 && qemu-img create -f qcow2 -o "
       "cluster_size=4096,refcount_bits=64 p64.qcow2 1M");
    grow_prealloc(qcow2_spec("p64.qcow2"), "p64.qcow2", 9 << 20,
                  COBLK_PREALLOC_METADATA, 0, NULL);
    sh("qemu-img check p64.qcow2 && qemu-io -f qcow2 -c 'read -P 0 0 9M' "
       "p64.qcow2");
    /* A raw image grows its file; metadata means nothing there. */
    sh("rm -f pr.raw && qemu-img create -f raw pr.raw 1M");
    char raw[400];
    snprintf(raw, sizeof(raw), "raw:%s", path_of("pr.raw"));
    grow_prealloc(raw, "pr.raw", 2 << 20, COBLK_PREALLOC_METADATA, -ENOTSUP,
                  "Unsupported preallocation mode: metadata");
    assert_true(grow_prealloc(raw, "pr.raw", 5 << 20, COBLK_PREALLOC_FULL,
                              0, NULL) >= 4 << 20);
    sh("test $(stat -c %%s pr.raw) = 5242880 && "
       "qemu-io -f raw -c 'read -P 0 0 5M' pr.raw");
}

/* ---- check and repair -------------------------------------------------------- */

static void count_line(void *opaque, const char *line)
{
    (void)line;
    (*(unsigned *)opaque)++;
}

/* coblk_check() of image says what qemu-img check --output=json says. */
static void assert_checks_as_qemu(const char *image)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "qemu-img check --output=json %s | python3 "
             "-c \"import json, sys; d = json.load(sys.stdin); print(*(d.get(k,"
             " 0) for k in ('corruptions', 'leaks', 'check-errors', "
             "'total-clusters', 'allocated-clusters', 'fragmented-clusters',"
             " 'compressed-clusters', 'image-end-offset')))\"",
             path_of(image));
    FILE *p = popen(cmd, "r");
    uint64_t want[8] = { 0 };
    assert_non_null(p);
    assert_int_equal(fscanf(p, "%" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
                            " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64,
                            &want[0], &want[1], &want[2], &want[3], &want[4],
                            &want[5], &want[6], &want[7]), 8);
    pclose(p);

    unsigned lines = 0;
    struct coblk_check c = { .report = count_line, .opaque = &lines };
    struct coblk_dev *dev = open_ok(qcow2_spec(image));
    assert_int_equal(coblk_check(dev, &c, sizeof(c)), 0);
    assert_int_equal(coblk_dev_close(dev), 0);
    const uint64_t got[8] = { c.corruptions, c.leaks, c.check_errors,
                              c.total_clusters, c.allocated_clusters,
                              c.fragmented_clusters, c.compressed_clusters,
                              c.image_end_offset };
    for (int i = 0; i < 8; i++) {
        if (got[i] != want[i]) {
            print_error("%s: counter %d is %" PRIu64 ", qemu-img says %"
                        PRIu64 "\n", image, i, got[i], want[i]);
        }
        assert_int_equal(got[i], want[i]);
    }
    assert_int_equal(lines, c.corruptions + c.leaks + c.check_errors);
}

static void repair(const char *image, unsigned what)
{
    struct coblk_check c = { .repair = what };
    struct coblk_dev *dev;

    assert_int_equal(coblk_dev_open(qcow2_spec(image), 0, &dev), 0);
    assert_int_equal(coblk_check(dev, &c, sizeof(c)), 0);
    assert_int_equal(coblk_dev_close(dev), 0);
    assert_int_equal(c.corruptions_fixed + c.leaks_fixed,
                     c.corruptions + c.leaks);
}

/* The refcount block's entry (16 bits) for the cluster at offset. */
static uint64_t refcount_entry(const char *image, uint64_t offset)
{
    uint64_t l1, l2, reftable;
    size_t size;

    tables_of(image, &l1, &l2, &reftable);
    uint8_t *buf = read_file(image, &size);
    uint64_t block = 0;
    for (int i = 0; i < 8; i++) {
        block = block << 8 | buf[reftable + i];
    }
    free(buf);
    return block + (offset >> 16) * 2;
}

/* ---- persistent bitmaps ---------------------------------------------- */

/* Where the bitmaps extension's data starts in image's header. */
static uint64_t bitmaps_extension(const char *image)
{
    uint64_t at = get_be(image, 100, 4);    /* header_length */

    for (unsigned n = 0; n < 100; n++) {
        uint64_t type = get_be(image, at, 4), len = get_be(image, at + 4, 4);
        if (type == 0x23852875) {
            return at + 8;
        }
        assert_true(type != 0);
        at += 8 + ((len + 7) & ~7ull);
    }
    fail();
    return 0;
}

static void bitmaps_image(const char *image)
{
    sh("rm -f %s && qemu-img create -q -f qcow2 %s 64M && "
       "qemu-img bitmap --add %s b0 && "
       "qemu-img bitmap --add -g 128k %s b1 && "
       "qemu-img bitmap --disable %s b1 && "
       "qemu-io -c 'write -P 1 0 4M' %s >/dev/null",
       image, image, image, image, image, image);
}

static void assert_check(struct coblk_dev *dev, uint64_t corruptions,
                         uint64_t leaks)
{
    struct coblk_check c = { 0 };

    assert_int_equal(coblk_check(dev, &c, sizeof(c)), 0);
    assert_int_equal(c.corruptions, corruptions);
    assert_int_equal(c.leaks, leaks);
}

/* A directory damaged at (offset, width) = value: the image is refused,
 * with a message naming what is wrong, as QEMU refuses it. */
static void bad_bitmap_directory(const char *field, uint64_t offset,
                                 unsigned width, uint64_t value,
                                 const char *message)
{
    print_message("  %s\n", field);
    sh("cp bm.qcow2 bmx.qcow2");
    put_be("bmx.qcow2", offset, width, value);
    expect_open_error(qcow2_spec("bmx.qcow2"), COBLK_OPEN_RDONLY, -EINVAL,
                      message);
    assert_int_not_equal(sh_status("qemu-img info bmx.qcow2 >/dev/null "
                                   "2>&1"), 0);
}

/* Bitmaps qemu-img made are listed as it lists them and their clusters
 * counted (not leaks, which a repair would free); written through coblk,
 * they are declared stale, and their clusters become leaks for both
 * checks. */
static void test_bitmaps_are_listed_and_counted(void **state)
{
    (void)state;
    if (!have_qemu) {
        skip_because("qemu-img is not installed");
    }
    bitmaps_image("bm.qcow2");
    struct coblk_dev *dev = open_ok(qcow2_spec("bm.qcow2"));
    struct coblk_image_info info;
    assert_int_equal(coblk_image_info(dev, &info, sizeof(info)), 0);
    assert_int_equal(info.nb_bitmaps, 2);
    assert_string_equal(info.bitmaps[0].name, "b0");
    assert_int_equal(info.bitmaps[0].granularity, 65536);
    assert_true(info.bitmaps[0].auto_update);
    assert_string_equal(info.bitmaps[1].name, "b1");
    assert_int_equal(info.bitmaps[1].granularity, 131072);
    assert_false(info.bitmaps[1].auto_update);
    assert_false(info.bitmaps[0].in_use || info.bitmaps[1].in_use);
    assert_false(info.stale_bitmaps);
    /* A program built before the bitmaps came gets all it knows of. */
    size_t old_size = offsetof(struct coblk_image_info, nb_bitmaps);
    memset(&info, 0xa5, sizeof(info));
    assert_int_equal(coblk_image_info(dev, &info, old_size), 0);
    assert_string_equal(info.format, "qcow2");
    assert_int_equal(info.nb_bitmaps, 0xa5a5a5a5u);     /* not written */
    assert_int_equal(coblk_image_info(dev, &info, old_size - 1), -EINVAL);
    assert_check(dev, 0, 0);
    assert_int_equal(coblk_dev_close(dev), 0);

    /* A table entry with a reserved bit: a corruption, and the data
     * cluster it named a leak.  (QEMU reads the tables at open and
     * refuses the image; coblk reads them only to check, so that what
     * the guest wrote can still be read and copied out.) */
    uint64_t ext = bitmaps_extension("bm.qcow2");
    uint64_t dir = get_be("bm.qcow2", ext + 16, 8);
    uint64_t table = get_be("bm.qcow2", dir, 8);
    sh("cp bm.qcow2 bmt.qcow2");
    put_be("bmt.qcow2", table, 8, get_be("bm.qcow2", table, 8) | 2);
    dev = open_ok(qcow2_spec("bmt.qcow2"));
    assert_check(dev, 1, 1);
    assert_int_equal(coblk_dev_close(dev), 0);
    sh("qemu-img check bmt.qcow2 2>&1 | grep -q 'bitmap_table'");

    /* Hostile directories and extensions. */
    bad_bitmap_directory("no bitmaps", ext, 4, 0, "counts 0 bitmaps");
    bad_bitmap_directory("a directory past the file", ext + 16, 8,
                         1ull << 40, "past the end of the file");
    bad_bitmap_directory("extra data", dir + 20, 4, 8, "has extra data");
    bad_bitmap_directory("a table longer than the image needs", dir + 8, 4,
                         2, "of another size than the image needs");
    bad_bitmap_directory("two bitmaps of one name", dir + 32 + 24, 2,
                         ('b' << 8) | '0', "two bitmaps are named 'b0'");
    bad_bitmap_directory("extra data past the directory", dir + 20, 4,
                         0xffffffffu, "runs past the directory's end");
    bad_bitmap_directory("a granularity of 256 bytes", dir + 17, 1, 8,
                         "has a granularity out of");
    bad_bitmap_directory("a table in the header", dir, 8, 0,
                         "has no valid bitmap table");

    /* Opened for writing, the bitmaps stay valid until the guest's data
     * changes (a check -r keeps them, as qemu-img's does); the first
     * write declares them stale. */
    sh("cp bm.qcow2 bmw.qcow2");
    dev = open_rw("bmw.qcow2");
    struct coblk_check repair = { .repair = COBLK_CHECK_REPAIR_LEAKS };
    assert_int_equal(coblk_check(dev, &repair, sizeof(repair)), 0);
    assert_int_equal(repair.leaks + repair.leaks_fixed, 0);
    assert_int_equal(get_be("bmw.qcow2", 88, 8) & 1, 1);
    uint8_t sector[512] = { 7 };
    assert_int_equal(coblk_pwrite(dev, sector, sizeof(sector), 0), 0);
    assert_int_equal(get_be("bmw.qcow2", 88, 8) & 1, 0);
    assert_check(dev, 0, 4);        /* directory, two tables, b0's data */
    assert_int_equal(coblk_dev_close(dev), 0);
    dev = open_ok(qcow2_spec("bmw.qcow2"));
    assert_int_equal(coblk_image_info(dev, &info, sizeof(info)), 0);
    assert_int_equal(info.nb_bitmaps, 0);
    assert_true(info.stale_bitmaps);
    assert_int_equal(coblk_dev_close(dev), 0);
    sh("qemu-img check bmw.qcow2 2>&1 | grep -q '^4 leaked clusters'");
}

static int bitmap_edit(struct coblk_dev *dev, enum coblk_bitmap_op op,
                       const char *name, uint64_t granularity,
                       const char *source_name)
{
    struct coblk_bitmap_edit e = { .op = op, .name = name,
                                   .granularity = granularity,
                                   .source_name = source_name };
    return coblk_bitmap_edit(dev, &e);
}

static struct coblk_image_info bitmaps_of(struct coblk_dev *dev)
{
    struct coblk_image_info info;

    assert_int_equal(coblk_image_info(dev, &info, sizeof(info)), 0);
    return info;
}

/* Bad edits are refused with the errno and QEMU's words, the image
 * unchanged. */
static void test_bitmap_edits_refused(void **state)
{
    (void)state;
    if (!have_qemu) {
        skip_because("qemu-img is not installed");
    }
    bitmaps_image("bx.qcow2");
    sh("cp bx.qcow2 bx-before.qcow2");
    struct coblk_dev *dev = open_rw("bx.qcow2");
    assert_int_equal(bitmap_edit(dev, COBLK_BITMAP_ADD, "b0", 0, NULL),
                     -EEXIST);
    assert_string_equal(coblk_last_error(), "Bitmap already exists: b0");
    assert_int_equal(bitmap_edit(dev, COBLK_BITMAP_ADD, "", 0, NULL),
                     -EINVAL);
    assert_int_equal(bitmap_edit(dev, COBLK_BITMAP_ADD, "g", 3000, NULL),
                     -EINVAL);
    assert_int_equal(bitmap_edit(dev, COBLK_BITMAP_ADD, "g", 256, NULL),
                     -EINVAL);
    assert_int_equal(bitmap_edit(dev, COBLK_BITMAP_ADD, "g", 1ull << 32,
                                 NULL), -EINVAL);
    assert_int_equal(bitmap_edit(dev, COBLK_BITMAP_CLEAR, "nope", 0, NULL),
                     -ENOENT);
    assert_string_equal(coblk_last_error(), "Dirty bitmap 'nope' not found");
    assert_int_equal(bitmap_edit(dev, COBLK_BITMAP_MERGE, "b0", 0, "nope"),
                     -ENOENT);
    assert_int_equal(bitmap_edit(dev, COBLK_BITMAP_MERGE, "b0", 0, NULL),
                     -EINVAL);
    assert_int_equal(bitmap_edit(dev, COBLK_BITMAP_ADD, NULL, 0, NULL),
                     -EINVAL);
    assert_int_equal(coblk_bitmap_edit(dev, NULL), -EINVAL);
    assert_int_equal(coblk_bitmap_edit(NULL, NULL), -EINVAL);
    char name[1025];
    memset(name, 'n', 1024);
    name[1024] = '\0';
    assert_int_equal(bitmap_edit(dev, COBLK_BITMAP_ADD, name, 0, NULL),
                     -EINVAL);
    assert_non_null(strstr(coblk_last_error(), "Can't make bitmap 'nnn"));
    assert_int_equal(coblk_dev_close(dev), 0);
    sh("cmp bx.qcow2 bx-before.qcow2");
    /* A granularity whose bits would pass QEMU's 512 MiB. */
    sh("rm -f bx32t.qcow2 && qemu-img create -q -f qcow2 bx32t.qcow2 32T");
    dev = open_rw("bx32t.qcow2");
    assert_int_equal(bitmap_edit(dev, COBLK_BITMAP_ADD, "g", 512, NULL),
                     -EFBIG);
    assert_int_equal(bitmap_edit(dev, COBLK_BITMAP_ADD, "g", 65536, NULL), 0);
    assert_int_equal(coblk_dev_close(dev), 0);
    sh("qemu-img check -q bx32t.qcow2");

    /* Read-only, raw and version 2 images hold none. */
    assert_int_equal(coblk_dev_open(qcow2_spec("bx-before.qcow2"),
                                    COBLK_OPEN_RDONLY, &dev), 0);
    assert_int_equal(bitmap_edit(dev, COBLK_BITMAP_ADD, "x", 0, NULL),
                     -EROFS);
    assert_int_equal(coblk_dev_close(dev), 0);
    sh("rm -f bx.raw && truncate -s 1M bx.raw");
    char spec[300];
    snprintf(spec, sizeof(spec), "raw:%s", path_of("bx.raw"));
    assert_int_equal(coblk_dev_open(spec, 0, &dev), 0);
    assert_int_equal(bitmap_edit(dev, COBLK_BITMAP_ADD, "x", 0, NULL),
                     -ENOTSUP);
    assert_int_equal(coblk_dev_close(dev), 0);
    sh("rm -f bx2.qcow2 && qemu-img create -q -f qcow2 -o compat=0.10 "
       "bx2.qcow2 1M && cp bx2.qcow2 bx2-before.qcow2");
    dev = open_rw("bx2.qcow2");
    assert_int_equal(bitmap_edit(dev, COBLK_BITMAP_ADD, "x", 0, NULL),
                     -ENOTSUP);
    assert_non_null(strstr(coblk_last_error(), "qcow2 v2 files"));
    assert_int_equal(coblk_dev_close(dev), 0);
    sh("cmp bx2.qcow2 bx2-before.qcow2");
}

/* Added, merged, disabled, enabled, cleared and removed: each edit on
 * disk, listed as qemu-img lists it, no cluster leaked or lost; the bits
 * themselves are compared with QEMU's in tests/integration/img.sh. */
static void test_bitmaps_edited_as_qemu_img_edits_them(void **state)
{
    (void)state;
    if (!have_qemu) {
        skip_because("qemu-img is not installed");
    }
    bitmaps_image("be.qcow2");
    struct coblk_dev *dev = open_rw("be.qcow2");
    assert_int_equal(bitmap_edit(dev, COBLK_BITMAP_ADD, "n", 0, NULL), 0);
    assert_int_equal(bitmap_edit(dev, COBLK_BITMAP_ADD, "f", 4096, NULL), 0);
    assert_int_equal(bitmap_edit(dev, COBLK_BITMAP_MERGE, "f", 0, "b1"), 0);
    assert_int_equal(bitmap_edit(dev, COBLK_BITMAP_DISABLE, "n", 0, NULL),
                     0);
    struct coblk_image_info info = bitmaps_of(dev);
    assert_int_equal(info.nb_bitmaps, 4);
    assert_string_equal(info.bitmaps[2].name, "n");
    assert_int_equal(info.bitmaps[2].granularity, 65536);
    assert_false(info.bitmaps[2].auto_update);
    assert_string_equal(info.bitmaps[3].name, "f");
    assert_int_equal(info.bitmaps[3].granularity, 4096);
    assert_true(info.bitmaps[3].auto_update);
    assert_check(dev, 0, 0);
    assert_int_equal(coblk_dev_close(dev), 0);
    sh("qemu-img check -q be.qcow2");
    /* b1 had 4 MiB dirty at 128 KiB bits; f has them at 4 KiB bits: 1024
     * bits, in one 64 KiB data cluster beside its table. */
    sh("qemu-img info be.qcow2 | grep -q 'name: f'");

    dev = open_rw("be.qcow2");
    info = bitmaps_of(dev);
    assert_int_equal(info.nb_bitmaps, 4);
    assert_false(info.bitmaps[2].auto_update);
    assert_int_equal(bitmap_edit(dev, COBLK_BITMAP_ENABLE, "n", 0, NULL), 0);
    assert_int_equal(bitmap_edit(dev, COBLK_BITMAP_CLEAR, "f", 0, NULL), 0);
    assert_int_equal(bitmap_edit(dev, COBLK_BITMAP_REMOVE, "b1", 0, NULL),
                     0);
    info = bitmaps_of(dev);
    assert_int_equal(info.nb_bitmaps, 3);
    assert_string_equal(info.bitmaps[1].name, "n");
    assert_true(info.bitmaps[1].auto_update);
    assert_check(dev, 0, 0);
    /* The last one gone, the extension and its autoclear bit go too. */
    assert_int_equal(bitmap_edit(dev, COBLK_BITMAP_REMOVE, "b0", 0, NULL),
                     0);
    assert_int_equal(bitmap_edit(dev, COBLK_BITMAP_REMOVE, "n", 0, NULL), 0);
    assert_int_equal(bitmap_edit(dev, COBLK_BITMAP_REMOVE, "f", 0, NULL), 0);
    assert_int_equal(bitmaps_of(dev).nb_bitmaps, 0);
    assert_check(dev, 0, 0);
    assert_int_equal(coblk_dev_close(dev), 0);
    assert_int_equal(get_be("be.qcow2", 88, 8) & 1, 0);
    sh("qemu-img check -q be.qcow2 && "
       "! qemu-img info be.qcow2 | grep -q bitmaps");

    /* Bitmaps declared stale (coblk wrote the guest's data) are gone for
     * QEMU too: a new one starts a new directory, the old clusters stay
     * leaked, as qemu-img leaves them. */
    bitmaps_image("bs.qcow2");
    dev = open_rw("bs.qcow2");
    uint8_t sector[512] = { 7 };
    assert_int_equal(coblk_pwrite(dev, sector, sizeof(sector), 0), 0);
    assert_int_equal(bitmap_edit(dev, COBLK_BITMAP_ADD, "new", 0, NULL), 0);
    info = bitmaps_of(dev);
    assert_int_equal(info.nb_bitmaps, 1);
    assert_false(info.stale_bitmaps);
    assert_check(dev, 0, 4);
    assert_int_equal(coblk_dev_close(dev), 0);
    sh("qemu-img info bs.qcow2 | grep -q 'name: new'");
}

/* A hostile table naming metadata as a bitmap's data: a merge refuses to
 * read it as bits where it lies past the file; a clear drops the table
 * without freeing the cluster it named, so the image stays sound. */
static void test_bitmap_tables_naming_metadata(void **state)
{
    (void)state;
    if (!have_qemu) {
        skip_because("qemu-img is not installed");
    }
    bitmaps_image("bh.qcow2");
    uint64_t ext = bitmaps_extension("bh.qcow2");
    uint64_t dir = get_be("bh.qcow2", ext + 16, 8);
    uint64_t table = get_be("bh.qcow2", dir, 8);
    uint64_t l1 = get_be("bh.qcow2", 40, 8);
    put_be("bh.qcow2", table, 8, l1);
    struct coblk_dev *dev = open_rw("bh.qcow2");
    assert_int_equal(bitmap_edit(dev, COBLK_BITMAP_CLEAR, "b0", 0, NULL), 0);
    assert_int_equal(coblk_dev_close(dev), 0);
    sh("qemu-img check bh.qcow2 >/dev/null 2>&1; test $? -le 3 && "
       "! qemu-img check bh.qcow2 2>&1 | grep -q ERROR");
    bitmaps_image("bp.qcow2");
    ext = bitmaps_extension("bp.qcow2");
    dir = get_be("bp.qcow2", ext + 16, 8);
    table = get_be("bp.qcow2", dir, 8);
    put_be("bp.qcow2", table, 8, 1ull << 40);
    dev = open_rw("bp.qcow2");
    assert_int_equal(bitmap_edit(dev, COBLK_BITMAP_ADD, "n", 0, NULL), 0);
    assert_int_equal(bitmap_edit(dev, COBLK_BITMAP_MERGE, "n", 0, "b0"),
                     -EINVAL);
    assert_non_null(strstr(coblk_last_error(), "the image is corrupt"));
    assert_int_equal(coblk_dev_close(dev), 0);
}

static void test_check_counts_as_qemu_img_and_repairs(void **state)
{
    uint64_t l1, l2, reftable;

    (void)state;
    if (!have_qemu) {
        skip_because("qemu-img is not installed");
    }
    sh("rm -f k0.qcow2 && qemu-img create -f qcow2 k0.qcow2 9217k && "
       "qemu-io -f qcow2 " QEMU_IO_MIX " -c 'write -c -P 7 4M 64k' "
       "-c 'write -c -P 8 4160k 64k' k0.qcow2");
    assert_checks_as_qemu("k0.qcow2");
    /* Internal snapshots: their tables count too. */
    sh("cp k0.qcow2 ks.qcow2 && qemu-img snapshot -c one ks.qcow2 && "
       "qemu-io -f qcow2 -c 'write -P 9 0 128k' ks.qcow2 && "
       "qemu-img snapshot -c two ks.qcow2");
    assert_checks_as_qemu("ks.qcow2");

    /* A data cluster counted 0, another's count too high. */
    sh("cp k0.qcow2 k1.qcow2");
    tables_of("k1.qcow2", &l1, &l2, &reftable);
    size_t size;
    uint8_t *buf = read_file("k1.qcow2", &size);
    uint64_t data = 0;
    for (int i = 0; i < 8; i++) {
        data = data << 8 | buf[l2 + i];
    }
    data &= 0x00fffffffffffe00ull;
    free(buf);
    put_be("k1.qcow2", refcount_entry("k1.qcow2", data), 2, 0);
    put_be("k1.qcow2", refcount_entry("k1.qcow2", data + 65536), 2, 3);
    assert_checks_as_qemu("k1.qcow2");
    repair("k1.qcow2", COBLK_CHECK_REPAIR_LEAKS | COBLK_CHECK_REPAIR_ERRORS);
    sh("qemu-img check -f qcow2 k1.qcow2");
    sh("qemu-img compare -f qcow2 -F qcow2 k0.qcow2 k1.qcow2");

    /* Leaks only: repairing leaks is enough. */
    sh("cp k0.qcow2 k2.qcow2");
    put_be("k2.qcow2", refcount_entry("k2.qcow2", data + 65536), 2, 2);
    assert_checks_as_qemu("k2.qcow2");
    repair("k2.qcow2", COBLK_CHECK_REPAIR_LEAKS);
    sh("qemu-img check -f qcow2 k2.qcow2");

    /* Broken entries: counted as qemu-img counts them. */
    sh("cp k0.qcow2 k3.qcow2");
    put_be("k3.qcow2", l2 + 8, 8, (1ull << 63) | (data + 4096));
    put_be("k3.qcow2", l2 + 16, 8, (1ull << 63) | (1ull << 40));
    assert_checks_as_qemu("k3.qcow2");
    /* A misaligned L2 table: qemu-img goes on to read garbage there and
     * counts what it finds; coblk reads nothing at a misaligned offset,
     * so only the corruption itself and the leaks it causes agree. */
    sh("cp k0.qcow2 k4.qcow2");
    put_be("k4.qcow2", l1, 8, (1ull << 63) | (l2 + 512));
    struct coblk_dev *dev = open_ok(qcow2_spec("k4.qcow2"));
    struct coblk_check c = { 0 };
    assert_int_equal(coblk_check(dev, &c, sizeof(c)), 0);
    assert_int_equal(coblk_dev_close(dev), 0);
    assert_int_equal(c.corruptions, 1);
    assert_true(c.leaks > 0);

    /* The refcount block lost: a repair of leaks alone may not rebuild
     * (-EIO, nothing written); a repair of errors rebuilds the structure,
     * and the old table is a leak it frees. */
    sh("cp k0.qcow2 k5.qcow2");
    put_be("k5.qcow2", reftable, 8, 0);
    sh("cp k5.qcow2 k5-before.qcow2");
    assert_int_equal(coblk_dev_open(qcow2_spec("k5.qcow2"), 0, &dev), 0);
    c = (struct coblk_check){ .repair = COBLK_CHECK_REPAIR_LEAKS };
    assert_int_equal(coblk_check(dev, &c, sizeof(c)), -EIO);
    assert_int_equal(c.check_errors, 1);
    assert_int_equal(coblk_dev_close(dev), 0);
    sh("cmp k5.qcow2 k5-before.qcow2");
    repair("k5.qcow2", COBLK_CHECK_REPAIR_LEAKS | COBLK_CHECK_REPAIR_ERRORS);
    sh("qemu-img check -f qcow2 k5.qcow2");
    sh("qemu-img compare -f qcow2 -F qcow2 k0.qcow2 k5.qcow2");
    dev = open_ok(qcow2_spec("k5.qcow2"));
    c = (struct coblk_check){ 0 };
    assert_int_equal(coblk_check(dev, &c, sizeof(c)), 0);
    assert_int_equal(c.corruptions + c.leaks + c.check_errors, 0);
    assert_int_equal(coblk_dev_close(dev), 0);

    /* A check of a read-only image repairs nothing. */
    dev = open_ok(qcow2_spec("k3.qcow2"));
    c = (struct coblk_check){ .repair = COBLK_CHECK_REPAIR_LEAKS };
    assert_int_equal(coblk_check(dev, &c, sizeof(c)), -EROFS);
    assert_int_equal(coblk_dev_close(dev), 0);
    dev = open_ok("null:size=1M");
    assert_int_equal(coblk_check(dev, &c, sizeof(c)), -ENOTSUP);
    assert_int_equal(coblk_dev_close(dev), 0);
}

static void test_dirty_images_are_repaired_when_opened_for_writing(void **s)
{
    (void)s;
    if (!have_qemu) {
        skip_because("qemu-img is not installed");
    }
    /* What lazy refcounts leave after a crash: data counted 0, the dirty
     * bit set. */
    sh("rm -f lazy.qcow2 && qemu-img create -f qcow2 -o lazy_refcounts=on "
       "lazy.qcow2 4M && qemu-io -f qcow2 -c 'write -P 0x4c 0 256k' "
       "lazy.qcow2 && cp lazy.qcow2 lazy0.qcow2");
    uint64_t l1, l2, reftable;
    tables_of("lazy.qcow2", &l1, &l2, &reftable);
    size_t size;
    uint8_t *buf = read_file("lazy.qcow2", &size);
    uint64_t data = 0;
    for (int i = 0; i < 8; i++) {
        data = data << 8 | buf[l2 + i];
    }
    free(buf);
    data &= 0x00fffffffffffe00ull;
    for (int i = 0; i < 4; i++) {
        put_be("lazy.qcow2", refcount_entry("lazy.qcow2", data + i * 65536ull),
               2, 0);
    }
    put_be("lazy.qcow2", 72, 8, 1);
    assert_int_equal(sh_status("qemu-img check -f qcow2 lazy.qcow2"), 2);
    /* Read-only: read as it is. */
    struct coblk_dev *dev = open_ok(qcow2_spec("lazy.qcow2"));
    assert_int_equal(coblk_dev_close(dev), 0);
    /* For writing: repaired first, and the bit cleared. */
    assert_int_equal(coblk_dev_open(qcow2_spec("lazy.qcow2"), 0, &dev), 0);
    uint8_t data_buf[4096];
    memset(data_buf, 0x4d, sizeof(data_buf));
    assert_int_equal(coblk_pwrite(dev, data_buf, sizeof(data_buf), 1 << 20),
                     0);
    assert_int_equal(coblk_dev_close(dev), 0);
    sh("qemu-img check -f qcow2 lazy.qcow2");
    buf = read_file("lazy.qcow2", &size);
    assert_int_equal(buf[79] & 1, 0);
    free(buf);
    sh("qemu-io -f qcow2 -c 'read -P 0x4c 0 256k' -c 'read -P 0x4d 1M 4k' "
       "lazy.qcow2 | grep -c verification | grep -q '^0$'");
}

/* ---- found by review ---------------------------------------------------------- */

/* Writes 512 bytes of 0x10 + i at each offset, all at once. */
static void write_at_once(const char *spec, const uint64_t *offsets,
                          unsigned n)
{
    struct coblk_dev *dev;
    struct coblk_queue *q;
    static uint8_t bufs[16][512];
    struct iovec iov[16];
    struct coblk_req reqs[16], *ptrs[16], *done[16];

    assert_true(n <= 16);
    assert_int_equal(coblk_dev_open(spec, 0, &dev), 0);
    assert_int_equal(coblk_queue_new(dev, n, NULL, &q), 0);
    for (unsigned i = 0; i < n; i++) {
        memset(bufs[i], 0x10 + (int)i, 512);
        iov[i] = (struct iovec){ bufs[i], 512 };
        reqs[i] = (struct coblk_req){ .type = COBLK_REQ_OUT, .iov = &iov[i],
                                      .iovcnt = 1,
                                      .sector = offsets[i] / 512 };
        ptrs[i] = &reqs[i];
    }
    assert_int_equal(coblk_queue_submit(q, ptrs, n), (int)n);
    for (unsigned got = 0; got < n;) {
        int k = coblk_queue_reap(q, done, 1, 16, -1);
        assert_true(k > 0);
        got += (unsigned)k;
    }
    for (unsigned i = 0; i < n; i++) {
        assert_int_equal(reqs[i].status, COBLK_S_OK);
    }
    coblk_queue_free(q);
    assert_int_equal(coblk_dev_close(dev), 0);
}

static void test_first_writes_to_one_l2_table_at_once(void **state)
{
    (void)state;
    if (!have_qemu) {
        skip_because("qemu-img is not installed");
    }
    /* Holes far apart make each allocation read refcount blocks: the
     * writes, all needing the same new L2 table, must not interleave
     * there (one table, not one per write). */
    sh("rm -f race.qcow2 && qemu-img create -f qcow2 -o cluster_size=512 "
       "race.qcow2 64M && qemu-io -f qcow2 -c 'write -P 1 0 24M' race.qcow2"
       " && qemu-io -f qcow2 -c 'discard 1M 512' -c 'discard 10M 512' "
       "-c 'discard 16M 512' -c 'discard 20M 512' -c 'discard 22M 512' "
       "-c 'discard 23M 512' race.qcow2");
    const uint64_t offsets[] = { 40u << 20, (40u << 20) + 4096,
                                 (40u << 20) + 8192, (40u << 20) + 12288 };
    write_at_once(qcow2_spec("race.qcow2"), offsets, 4);
    sh("qemu-img check -f qcow2 race.qcow2");
    for (int i = 0; i < 4; i++) {
        sh("qemu-io -f qcow2 -c 'read -P %d %" PRIu64 " 512' race.qcow2 | "
           "grep -q 'read 512/512'", 0x10 + i, offsets[i]);
    }
}

static void test_entries_pointing_at_metadata_mark_the_image_corrupt(void **s)
{
    uint64_t l1, l2, reftable;
    uint8_t buf[65536];

    (void)s;
    if (!have_qemu) {
        skip_because("qemu-img is not installed");
    }
    /* A data cluster "owned" at the refcount table: a write there would
     * destroy the refcounts. */
    sh("rm -f m.qcow2 && qemu-img create -f qcow2 m.qcow2 4M && "
       "qemu-io -f qcow2 -c 'write -P 0x12 0 64k' m.qcow2");
    tables_of("m.qcow2", &l1, &l2, &reftable);
    put_be("m.qcow2", l2 + 8, 8, (1ull << 63) | reftable);
    struct coblk_dev *dev;
    assert_int_equal(coblk_dev_open(qcow2_spec("m.qcow2"), 0, &dev), 0);
    memset(buf, 0xdd, sizeof(buf));
    assert_int_equal(coblk_pwrite(dev, buf, sizeof(buf), 65536), -EIO);
    assert_non_null(strstr(coblk_last_error(), "points at metadata"));
    /* Marked corrupt: no write goes anywhere any more. */
    assert_int_equal(coblk_pwrite(dev, buf, 512, 0), -EIO);
    assert_int_equal(coblk_dev_close(dev), 0);
    size_t size;
    uint8_t *image = read_file("m.qcow2", &size);
    assert_int_equal(image[79] & 2, 2);                 /* corrupt bit */
    assert_int_equal(image[reftable + 5], 0x02);        /* 0x20000 kept */
    free(image);
    expect_open_error(qcow2_spec("m.qcow2"), 0, -EACCES, "marked corrupt");

    /* Opened for a repair, a marked image still takes no write until a
     * check finds nothing wrong; the mark is then cleared on disk. */
    sh("rm -f mc.qcow2 && qemu-img create -f qcow2 mc.qcow2 4M && "
       "qemu-io -f qcow2 -c 'write -P 0x12 0 64k' mc.qcow2");
    put_be("mc.qcow2", 72, 8, 2);                       /* corrupt bit */
    assert_int_equal(coblk_dev_open(qcow2_spec("mc.qcow2"), COBLK_OPEN_CHECK,
                                    &dev), 0);
    assert_int_equal(coblk_pwrite(dev, buf, 512, 0), -EIO);
    struct coblk_check c = { .repair = COBLK_CHECK_REPAIR_LEAKS |
                                       COBLK_CHECK_REPAIR_ERRORS };
    assert_int_equal(coblk_check(dev, &c, sizeof(c)), 0);
    assert_int_equal(c.corruptions + c.leaks + c.check_errors, 0);
    assert_int_equal(coblk_pwrite(dev, buf, 512, 0), 0);
    assert_int_equal(coblk_dev_close(dev), 0);
    sh("qemu-img info mc.qcow2 | grep -q 'corrupt: false' && "
       "qemu-img check -q mc.qcow2 && qemu-io -f qcow2 -c "
       "'read -P 0xdd 0 512' -c 'read -P 0x12 512 65024' mc.qcow2");

    /* A compressed descriptor over the header: replacing the cluster
     * must not free (and punch out) the header. */
    sh("rm -f h.qcow2 && qemu-img create -f qcow2 h.qcow2 4M && "
       "qemu-io -f qcow2 -c 'write -P 0x12 0 64k' h.qcow2");
    tables_of("h.qcow2", &l1, &l2, &reftable);
    put_be("h.qcow2", l2, 8, (1ull << 62) | (255ull << 54));
    assert_int_equal(coblk_dev_open(qcow2_spec("h.qcow2"), 0, &dev), 0);
    assert_int_equal(coblk_pwrite(dev, buf, sizeof(buf), 0), -EIO);
    assert_int_equal(coblk_dev_close(dev), 0);
    image = read_file("h.qcow2", &size);
    assert_int_equal(image[0], 'Q');
    free(image);
}

static void test_formats_write_only_where_files_can_grow(void **state)
{
    (void)state;
    if (!have_qemu) {
        skip_because("qemu-img is not installed");
    }
    sh("rm -f win.qcow2 && qemu-img create -f qcow2 win.qcow2 4M");
    char spec[400];
    snprintf(spec, sizeof(spec), "qcow2:raw:file:%s", path_of("win.qcow2"));
    expect_open_error(spec, 0, -ENOTSUP, "raw cannot grow");
    struct coblk_dev *dev = open_ok(spec);      /* read-only is fine */
    assert_int_equal(coblk_dev_close(dev), 0);
    /* A filter passes growth through to its file. */
    snprintf(spec, sizeof(spec), "qcow2:blkdebug:event=flush,delay-ns=1:%s",
             path_of("win.qcow2"));
    assert_int_equal(coblk_dev_open(spec, 0, &dev), 0);
    uint8_t buf[8192];
    memset(buf, 0x3c, sizeof(buf));
    assert_int_equal(coblk_pwrite(dev, buf, sizeof(buf), 3 << 20), 0);
    memset(buf, 0, sizeof(buf));
    assert_int_equal(coblk_pread(dev, buf, sizeof(buf), 3 << 20), 0);
    assert_int_equal(buf[8191], 0x3c);
    assert_int_equal(coblk_dev_close(dev), 0);
    sh("qemu-img check -f qcow2 win.qcow2 && qemu-io -f qcow2 -c "
       "'read -P 0x3c 3M 8k' win.qcow2");
}

/* ---- the graph: specs, probe, raw ----------------------------------------------------- */

static void test_specs_nest_and_name_their_errors(void **state)
{
    (void)state;
    if (!have_qemu) {
        skip_because("qemu-img is not installed");
    }
    sh("rm -f g.qcow2 && qemu-img create -f qcow2 g.qcow2 2M && "
       "qemu-io -f qcow2 -c 'write -P 0x42 0 1M' g.qcow2");
    char spec[400];
    snprintf(spec, sizeof(spec), "qcow2:file:%s", path_of("g.qcow2"));
    assert_reads_as_qemu("g.qcow2", spec);
    snprintf(spec, sizeof(spec), "qcow2:l2-cache-size=64k:file:%s",
             path_of("g.qcow2"));
    assert_reads_as_qemu("g.qcow2", spec);
    snprintf(spec, sizeof(spec), "blkdebug:event=write,errno=EIO:qcow2:%s",
             path_of("g.qcow2"));
    assert_reads_as_qemu("g.qcow2", spec);

    expect_open_error("qcow2:", COBLK_OPEN_RDONLY, -EINVAL, "no image");
    expect_open_error("qcow2:l2-cache-size=1M", COBLK_OPEN_RDONLY, -EINVAL,
                      "but no image after them");
    snprintf(spec, sizeof(spec), "qcow2:cache=1:%s", path_of("g.qcow2"));
    expect_open_error(spec, COBLK_OPEN_RDONLY, -EINVAL,
                      "qcow2: unknown option 'cache'");
    snprintf(spec, sizeof(spec), "qcow2:l2-cache-size=lots:%s",
             path_of("g.qcow2"));
    expect_open_error(spec, COBLK_OPEN_RDONLY, -EINVAL,
                      "bad l2-cache-size 'lots'");
    /* A raw file is no qcow2 image. */
    sh("qemu-img create -f raw plain.raw 1M");
    expect_open_error(qcow2_spec("plain.raw"), COBLK_OPEN_RDONLY, -EINVAL,
                      "Image is not in qcow2 format");
}

static void test_raw_windows_and_probe(void **state)
{
    (void)state;
    if (!have_qemu) {
        skip_because("qemu-img is not installed");
    }
    sh("rm -f w.raw && qemu-img create -f raw w.raw 1M && "
       "qemu-io -f raw -c 'write -P 0x61 0 512k' -c 'write -P 0x62 512k "
       "512k' w.raw && qemu-img create -f qcow2 pr.qcow2 1M");
    char spec[400];
    snprintf(spec, sizeof(spec), "raw:offset=256k,size=512k:%s",
             path_of("w.raw"));
    struct coblk_dev *dev = open_ok(spec);
    assert_int_equal(coblk_dev_size(dev), 512 * 1024);
    uint8_t buf[2][4096];
    assert_int_equal(coblk_pread(dev, buf[0], 4096, 256 * 1024 - 4096), 0);
    assert_int_equal(coblk_pread(dev, buf[1], 4096, 256 * 1024), 0);
    assert_int_equal(buf[0][0], 0x61);
    assert_int_equal(buf[1][0], 0x62);
    assert_int_equal(coblk_pread(dev, buf[0], 4096, 512 * 1024 - 2048),
                     -EINVAL);
    assert_int_equal(coblk_dev_close(dev), 0);
    snprintf(spec, sizeof(spec), "raw:offset=768k,size=512k:%s",
             path_of("w.raw"));
    expect_open_error(spec, COBLK_OPEN_RDONLY, -EINVAL,
                      "go past the end of the image");

    char fmt[16];
    assert_int_equal(coblk_probe(path_of("w.raw"), fmt, sizeof(fmt)), 0);
    assert_string_equal(fmt, "raw");
    assert_int_equal(coblk_probe(path_of("pr.qcow2"), fmt, sizeof(fmt)), 0);
    assert_string_equal(fmt, "qcow2");
    assert_int_equal(coblk_probe(path_of("nothing"), fmt, sizeof(fmt)),
                     -ENOENT);
    assert_int_equal(coblk_probe(path_of("w.raw"), fmt, 4), -EINVAL);
    /* Formats coblk does not read are named, not guessed raw; files
     * shorter than their magic are raw. */
    static const char *const others[] = { "vmdk", "vdi", "vpc", "vhdx",
                                          "qed", "parallels" };
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        sh("rm -f o.img && qemu-img create -q -f %s o.img 1M", others[i]);
        assert_int_equal(coblk_probe(path_of("o.img"), fmt, sizeof(fmt)),
                         -ENOTSUP);
        assert_non_null(strstr(coblk_last_error(), others[i]));
    }
    sh("printf KDM > o.img");
    assert_int_equal(coblk_probe(path_of("o.img"), fmt, sizeof(fmt)), 0);
    assert_string_equal(fmt, "raw");
    /* A bare path is a file, never a guessed format. */
    dev = open_ok(path_of("pr.qcow2"));
    struct stat st;
    assert_int_equal(stat(path_of("pr.qcow2"), &st), 0);
    assert_int_equal(coblk_dev_size(dev), st.st_size);
    assert_int_equal(coblk_dev_close(dev), 0);
}

/* ---- hostile headers ---------------------------------------------------------------------- */

struct patch {
    const char *what;
    uint32_t offset;            /* in the file */
    unsigned width;             /* bytes, big-endian */
    uint64_t value;
    int err;
    const char *message;
};


static void test_malformed_headers_are_refused_by_field(void **state)
{
    static const struct patch patches[] = {
        { "magic", 0, 4, 0x51464900, -EINVAL,
          "Image is not in qcow2 format" },
        { "version", 4, 4, 4, -ENOTSUP, "Unsupported qcow2 version 4" },
        { "version 1", 4, 4, 1, -ENOTSUP, "version 1 (a qcow image" },
        { "cluster_bits", 20, 4, 8, -EINVAL, "Unsupported cluster size: 2^8" },
        { "cluster_bits", 20, 4, 22, -EINVAL,
          "Unsupported cluster size: 2^22" },
        { "cluster_bits", 20, 4, 0xffffffff, -EINVAL,
          "Unsupported cluster size" },
        { "crypt_method", 32, 4, 2, -ENOTSUP, "encrypted (luks)" },
        { "size", 24, 8, 1ull << 62, -EFBIG, "Image is too big" },
        { "size", 24, 8, UINT64_MAX, -EFBIG, "virtual size" },
        { "l1_size", 36, 4, 0, -EINVAL, "L1 table is too small" },
        { "l1_size", 36, 4, 0x7fffffff, -EFBIG, "l1_size 2147483647" },
        { "l1_size", 36, 4, 100000, -EINVAL, "the L1 table" },
        { "l1_table_offset", 40, 8, 0x30001, -EINVAL,
          "the L1 table offset 0x30001 is not aligned" },
        { "l1_table_offset", 40, 8, 1ull << 40, -EINVAL,
          "is not inside the file" },
        { "l1_table_offset", 40, 8, 0, -EINVAL,
          "the L1 table offset is 0, the header's cluster" },
        { "refcount_table_offset", 48, 8, 0, -EINVAL,
          "the refcount table offset is 0" },
        { "refcount_table_offset", 48, 8, 0x10200, -EINVAL,
          "the refcount table offset" },
        { "refcount_table_clusters", 56, 4, 0, -EINVAL,
          "no refcount table" },
        { "refcount_table_clusters", 56, 4, 1000000, -EFBIG,
          "refcount_table_clusters 1000000" },
        { "nb_snapshots", 60, 4, 70000, -EFBIG, "nb_snapshots 70000" },
        { "nb_snapshots", 60, 4, 3, -EINVAL, "the snapshot table" },
        { "incompatible_features", 72, 8, 1ull << 40, -ENOTSUP,
          "Unknown incompatible feature: 10000000000" },
        { "incompatible_features", 72, 8, 1ull << 2, -ENOTSUP,
          "external data file" },
        { "incompatible_features", 72, 8, 1ull << 3, -EINVAL,
          "compression_type 0 does not match" },
        { "refcount_order", 96, 4, 7, -EINVAL,
          "Reference count entry width too large" },
        { "header_length", 100, 4, 100, -EINVAL, "qcow2 header too short" },
        { "header_length", 100, 4, 108, -EINVAL, "header_length 108" },
        { "header_length", 100, 4, 0x20000, -EINVAL,
          "qcow2 header exceeds cluster size" },
        { "compression_type", 104, 1, 1, -EINVAL,
          "compression_type 1 does not match" },
        { "extension length", 112 + 4, 4, 0xfffffff0, -EINVAL,
          "header extension" },
        { "backing_file_size", 16, 4, 5000, -EINVAL,
          "the backing file name is 5000 bytes long" },
        { "backing_file_offset", 8, 8, 65530, -EINVAL,
          "is not inside the first cluster" },
    };

    (void)state;
    if (!have_qemu) {
        skip_because("qemu-img is not installed");
    }
    sh("rm -f hb.qcow2 && qemu-img create -f qcow2 hb.qcow2 1M");
    for (size_t i = 0; i < sizeof(patches) / sizeof(patches[0]); i++) {
        const struct patch *p = &patches[i];
        print_message("  %s = %#" PRIx64 "\n", p->what, p->value);
        /* With a backing file, for the fields of its name. */
        sh("rm -f bad.qcow2 && qemu-img create -f qcow2 -b hb.qcow2 "
           "-F qcow2 bad.qcow2 1M");
        put_be("bad.qcow2", p->offset, p->width, p->value);
        expect_open_error(qcow2_spec("bad.qcow2"), COBLK_OPEN_RDONLY,
                          p->err, p->message);
    }
}

static void test_malformed_features_and_sizes(void **state)
{
    (void)state;
    if (!have_qemu) {
        skip_because("qemu-img is not installed");
    }
    /* A compression type coblk does not know. */
    sh("rm -f bad.qcow2 && qemu-img create -f qcow2 bad.qcow2 1M");
    put_be("bad.qcow2", 72, 8, 1ull << 3);
    put_be("bad.qcow2", 104, 1, 2);
    expect_open_error(qcow2_spec("bad.qcow2"), COBLK_OPEN_RDONLY, -ENOTSUP,
                      "compression_type 2");
    /* Extended L2 entries on clusters too small for them. */
    sh("rm -f bad.qcow2 && qemu-img create -f qcow2 -o cluster_size=4k "
       "bad.qcow2 1M");
    put_be("bad.qcow2", 72, 8, 1ull << 4);
    expect_open_error(qcow2_spec("bad.qcow2"), COBLK_OPEN_RDONLY, -EINVAL,
                      "extended L2 entries need clusters of 16 KiB");
    /* The corrupt bit: read-only only. */
    sh("rm -f bad.qcow2 && qemu-img create -f qcow2 bad.qcow2 1M && "
       "qemu-io -f qcow2 -c 'write -P 0x12 0 4k' bad.qcow2");
    put_be("bad.qcow2", 72, 8, 1ull << 1);
    expect_open_error(qcow2_spec("bad.qcow2"), 0, -EACCES,
                      "is marked corrupt: open it read-only");
    /* The dirty bit alone does not stop a reader. */
    put_be("bad.qcow2", 72, 8, 1ull << 0);
    struct coblk_dev *dev = open_ok(qcow2_spec("bad.qcow2"));
    uint8_t buf[4096];
    assert_int_equal(coblk_pread(dev, buf, sizeof(buf), 0), 0);
    assert_int_equal(buf[4095], 0x12);
    assert_int_equal(coblk_dev_close(dev), 0);
    /* A file too short for any header: read as zeroes past its end, as
     * QEMU reads it, then refused for its length. */
    sh("printf 'QFI\\373' > short.qcow2");
    expect_open_error(qcow2_spec("short.qcow2"), COBLK_OPEN_RDONLY, -ENOTSUP,
                      "Unsupported qcow2 version 0");
    sh("printf 'QFI\\373\\0\\0\\0\\2\\0\\0\\0\\0\\0\\0\\0\\0"
       "\\0\\0\\0\\0\\0\\0\\0\\20' > short.qcow2");
    expect_open_error(qcow2_spec("short.qcow2"), COBLK_OPEN_RDONLY, -EINVAL,
                      "qcow2 header too short");
}

/* The file offsets of the L1 table, the first L2 table and the refcount
 * table. */
static void tables_of(const char *image, uint64_t *l1, uint64_t *l2,
                      uint64_t *reftable)
{
    size_t size;
    uint8_t *buf = read_file(image, &size);

    *l1 = *l2 = *reftable = 0;
    for (int i = 0; i < 8; i++) {
        *l1 = *l1 << 8 | buf[40 + i];
        *reftable = *reftable << 8 | buf[48 + i];
    }
    for (int i = 0; i < 8; i++) {
        *l2 = *l2 << 8 | buf[*l1 + i];
    }
    *l2 &= 0x00fffffffffffe00ull;
    free(buf);
}

/* A read fails with message; so does block status where the metadata
 * itself is bad (not so for compressed data, which it does not read). */
static void expect_read_error(const char *image, uint64_t offset,
                              const char *message, bool status_fails)
{
    struct coblk_dev *dev = open_ok(qcow2_spec(image));
    uint8_t buf[4096];

    assert_int_equal(coblk_pread(dev, buf, sizeof(buf), offset), -EIO);
    if (!strstr(coblk_last_error(), message)) {
        print_error("read error '%s', expected '%s'\n", coblk_last_error(),
                    message);
    }
    assert_non_null(strstr(coblk_last_error(), message));
    struct coblk_block_status bs;
    assert_int_equal(coblk_block_status(dev, offset, 4096, &bs),
                     status_fails ? -EIO : 0);
    assert_int_equal(coblk_dev_close(dev), 0);
}

static void test_malformed_tables_fail_reads_not_the_process(void **state)
{
    uint64_t l1, l2, reftable;

    (void)state;
    if (!have_qemu) {
        skip_because("qemu-img is not installed");
    }
    sh("rm -f t.qcow2 && qemu-img create -f qcow2 -o compat=0.10 t.qcow2 1M"
       " && qemu-io -f qcow2 -c 'write -P 0x12 0 128k' t.qcow2");
    tables_of("t.qcow2", &l1, &l2, &reftable);
    sh("cp t.qcow2 t0.qcow2");

    put_be("t.qcow2", l1, 8, (1ull << 63) | (1ull << 40));
    expect_read_error("t.qcow2", 0, "L1 entry 0 points to an L2 table "
                      "outside the file", true);
    sh("cp t0.qcow2 t.qcow2");
    put_be("t.qcow2", l1, 8, (1ull << 63) | (l2 + 512));
    expect_read_error("t.qcow2", 0, "inside a cluster", true);
    sh("cp t0.qcow2 t.qcow2");
    put_be("t.qcow2", l2, 8, (1ull << 63) | (1ull << 44));
    expect_read_error("t.qcow2", 0, "points to data outside the image",
                      true);
    sh("cp t0.qcow2 t.qcow2");
    put_be("t.qcow2", l2 + 8, 8, (1ull << 63) | 0x50000 | 1);
    expect_read_error("t.qcow2", 65536, "zero flag in a version 2 image",
                      true);
    sh("cp t0.qcow2 t.qcow2");
    /* A compressed descriptor far past the end of the file. */
    put_be("t.qcow2", l2, 8, (1ull << 62) | (1ull << 40));
    expect_read_error("t.qcow2", 0, "compressed cluster", false);
    sh("cp t0.qcow2 t.qcow2");
    /* One that decompresses to garbage. */
    put_be("t.qcow2", l2, 8, (1ull << 62) | 0x10000);
    expect_read_error("t.qcow2", 0, "does not decompress", false);
}

static int setup(void **state)
{
    (void)state;
    have_qemu = image_dir_setup();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return image_dir_teardown();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_variants_read_as_qemu_reads_them),
        cmocka_unit_test(test_compressed_clusters_read_back),
        cmocka_unit_test(test_copy_range_offloads_file_to_file),
        cmocka_unit_test(test_queue_reads_at_depth_through_a_tiny_cache),
        cmocka_unit_test(test_cached_reads_take_no_lock),
        cmocka_unit_test(test_lookups_race_allocations_and_evictions),
        cmocka_unit_test(test_read_in_flight_keeps_its_cluster),
        cmocka_unit_test(test_reads_done_let_frees_happen),
        cmocka_unit_test(test_check_waits_for_allocating_writes),
        cmocka_unit_test(test_preallocation_keeps_writes_past_it),
        cmocka_unit_test(test_slice_loading_during_repair_is_not_kept),
        cmocka_unit_test(test_failed_check_keeps_unflushed_writes),
        cmocka_unit_test(test_check_goes_before_later_writes),
        cmocka_unit_test(test_backing_chain_reads_through_every_layer),
        cmocka_unit_test(test_queue_read_of_a_shrunk_file_runs_again),
        cmocka_unit_test(test_backing_smaller_and_raw),
        cmocka_unit_test(test_backing_without_format_is_probed_and_trusted_less),
        cmocka_unit_test(test_backing_loop_is_refused),
        cmocka_unit_test(test_backing_missing_is_named),
        cmocka_unit_test(test_block_status_maps_as_qemu_img_map),
        cmocka_unit_test(test_random_writes_pass_qemu_img_check),
        cmocka_unit_test(test_random_writes_over_backing_and_compressed),
        cmocka_unit_test(test_open_for_writing_refuses_what_it_cannot_keep),
        cmocka_unit_test(test_create_as_qemu_img_does),
        cmocka_unit_test(test_create_with_a_backing_file),
        cmocka_unit_test(test_create_refuses_what_qemu_img_refuses),
        cmocka_unit_test(test_create_raw),
        cmocka_unit_test(test_info_and_snapshots_as_qemu_img_tells_them),
        cmocka_unit_test(test_snapshots_made_applied_deleted_as_qemu_sees_them),
        cmocka_unit_test(test_snapshots_qemu_made_are_written_around),
        cmocka_unit_test(test_snapshot_errors),
        cmocka_unit_test(test_bad_snapshot_l1_fails_only_when_used),
        cmocka_unit_test(test_amend_refcount_bits),
        cmocka_unit_test(test_resize_grows_and_shrinks_as_qemu_img_does),
        cmocka_unit_test(test_grow_preallocated),
        cmocka_unit_test(test_compressed_writes_read_back_in_qemu),
        cmocka_unit_test(test_measure_as_qemu_img_does),
        cmocka_unit_test(test_check_counts_as_qemu_img_and_repairs),
        cmocka_unit_test(test_bitmaps_are_listed_and_counted),
        cmocka_unit_test(test_bitmap_edits_refused),
        cmocka_unit_test(test_bitmaps_edited_as_qemu_img_edits_them),
        cmocka_unit_test(test_bitmap_tables_naming_metadata),
        cmocka_unit_test(
            test_dirty_images_are_repaired_when_opened_for_writing),
        cmocka_unit_test(test_first_writes_to_one_l2_table_at_once),
        cmocka_unit_test(
            test_entries_pointing_at_metadata_mark_the_image_corrupt),
        cmocka_unit_test(test_formats_write_only_where_files_can_grow),
        cmocka_unit_test(test_specs_nest_and_name_their_errors),
        cmocka_unit_test(test_raw_windows_and_probe),
        cmocka_unit_test(test_malformed_headers_are_refused_by_field),
        cmocka_unit_test(test_malformed_features_and_sizes),
        cmocka_unit_test(test_malformed_tables_fail_reads_not_the_process),
    };

    /* TEST_FILTER=test_snap* runs those alone (cmocka's pattern). */
    if (getenv("TEST_FILTER")) {
        cmocka_set_test_filter(getenv("TEST_FILTER"));
    }
    return tests_exit_status(cmocka_run_group_tests(tests, setup, teardown));
}
