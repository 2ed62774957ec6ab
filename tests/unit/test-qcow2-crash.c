/*
 * Crash consistency of qcow2 writes: a writer process (this program, run
 * again with --writer) writes rounds of random requests at once, each
 * round ended by a flush and reported through a pipe; it is killed with
 * SIGKILL at a random moment.  Then `qemu-img check` must find no
 * corruption (leaks are allowed: clusters allocated for what never got
 * its L2 entry), and everything the last reported round and those before
 * it wrote must read back, except what the round in progress touched.
 * Many rounds of that, bounded in time.  Skips (77) without qemu-img.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "coblk/coblk.h"
#include "image-dir.h"
#include "skip.h"

#define IMAGE_SIZE (16u << 20)
#define MAX_REQS 24
#define MAX_LEN (128u << 10)
#define KILLS 12

static bool have_qemu;
static const char *self;        /* this program, for --writer */

/* ---- the rounds, the same in writer and checker --------------------------------- */

struct request {
    uint32_t type;              /* COBLK_REQ_OUT, _WRITE_ZEROES, _DISCARD */
    uint64_t offset, len;
    uint64_t seed;              /* of a write's data */
};

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static void fill(uint8_t *buf, uint64_t len, uint64_t seed)
{
    for (uint64_t i = 0; i < len; i += 8) {
        uint64_t v = mix(seed + i);
        memcpy(buf + i, &v, len - i < 8 ? len - i : 8);
    }
}

/* Round r of a run: requests on disjoint clusters (a discard rounds out
 * to whole ones). */
static unsigned make_round(uint64_t seed, uint64_t r, uint64_t cluster,
                           struct request *reqs)
{
    unsigned n = 0;
    uint64_t x = mix(seed ^ mix(r));

    for (unsigned tries = 0; tries < 64 && n < MAX_REQS; tries++) {
        x = mix(x);
        struct request q = {
            .offset = (x % (IMAGE_SIZE / 512)) * 512,
            .len = (1 + (x >> 40) % (MAX_LEN / 512)) * 512,
            .seed = x,
        };
        unsigned kind = (unsigned)(x >> 20) % 10;
        q.type = kind < 7 ? COBLK_REQ_OUT
                 : kind < 9 ? COBLK_REQ_WRITE_ZEROES : COBLK_REQ_DISCARD;
        if (q.len > IMAGE_SIZE - q.offset) {
            q.len = IMAGE_SIZE - q.offset;
        }
        uint64_t b = q.offset / cluster;
        uint64_t e = (q.offset + q.len + cluster - 1) / cluster;
        bool clash = false;
        for (unsigned j = 0; j < n; j++) {
            uint64_t jb = reqs[j].offset / cluster;
            uint64_t je = (reqs[j].offset + reqs[j].len + cluster - 1) /
                          cluster;
            clash |= b < je && jb < e;
        }
        if (!clash) {
            reqs[n++] = q;
        }
    }
    return n;
}

/* ---- the writer --------------------------------------------------------------------- */

static int run_writer(const char *spec, uint64_t seed, uint64_t cluster,
                      int report_fd)
{
    static uint8_t bufs[MAX_REQS][MAX_LEN];
    struct coblk_dev *dev;
    struct coblk_queue *q;

    if (coblk_dev_open(spec, 0, &dev) < 0 ||
        coblk_queue_new(dev, MAX_REQS + 1, NULL, &q) < 0) {
        fprintf(stderr, "writer: %s\n", coblk_last_error());
        return 1;
    }
    for (uint64_t r = 0;; r++) {
        struct request reqs[MAX_REQS];
        struct coblk_req creq[MAX_REQS], *ptrs[MAX_REQS], *done[MAX_REQS];
        struct iovec iov[MAX_REQS];
        unsigned n = make_round(seed, r, cluster, reqs);
        for (unsigned i = 0; i < n; i++) {
            creq[i] = (struct coblk_req){ .type = reqs[i].type,
                                          .sector = reqs[i].offset / 512 };
            if (reqs[i].type == COBLK_REQ_OUT) {
                fill(bufs[i], reqs[i].len, reqs[i].seed);
                iov[i] = (struct iovec){ bufs[i], reqs[i].len };
                creq[i].iov = &iov[i];
                creq[i].iovcnt = 1;
            } else {
                creq[i].nr_sectors = (uint32_t)(reqs[i].len / 512);
            }
            ptrs[i] = &creq[i];
        }
        if (coblk_queue_submit(q, ptrs, n) != (int)n) {
            return 1;
        }
        for (unsigned got = 0; got < n;) {
            int k = coblk_queue_reap(q, done, 1, MAX_REQS, -1);
            for (int i = 0; i < k; i++) {
                if (done[i]->status != COBLK_S_OK) {
                    fprintf(stderr, "writer: request failed: %d\n",
                            done[i]->error);
                    return 1;
                }
            }
            got += k > 0 ? (unsigned)k : 0;
        }
        if (coblk_flush(dev) < 0) {
            return 1;
        }
        /* Durable: say so. */
        if (write(report_fd, &r, sizeof(r)) != sizeof(r)) {
            return 1;
        }
    }
}

/* ---- the checker ------------------------------------------------------------------- */

static void apply(uint8_t *shadow, const struct request *q, uint64_t cluster)
{
    switch (q->type) {
    case COBLK_REQ_OUT:
        fill(shadow + q->offset, q->len, q->seed);
        break;
    case COBLK_REQ_WRITE_ZEROES:
        memset(shadow + q->offset, 0, q->len);
        break;
    default: {
        /* No backing image: whole discarded clusters read zeroes. */
        uint64_t end = q->offset + q->len;
        uint64_t first = (q->offset + cluster - 1) / cluster * cluster;
        uint64_t last = end == IMAGE_SIZE ? end : end / cluster * cluster;
        if (first < last) {
            memset(shadow + first, 0, last - first);
        }
    }
    }
}

/* Starts a writer on image, kills it after delay_ms; returns the last
 * round it reported durable, or -1. */
static int64_t write_and_kill(const char *spec, uint64_t seed,
                              uint64_t cluster, unsigned delay_ms)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char seed_s[32], cluster_s[32], fd_s[16];
        close(fds[0]);
        snprintf(seed_s, sizeof(seed_s), "%" PRIu64, seed);
        snprintf(cluster_s, sizeof(cluster_s), "%" PRIu64, cluster);
        snprintf(fd_s, sizeof(fd_s), "%d", fds[1]);
        execl(self, self, "--writer", spec, seed_s, cluster_s, fd_s,
              (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    struct timespec ts = { delay_ms / 1000, (long)(delay_ms % 1000) * 1000000 };
    nanosleep(&ts, NULL);
    kill(pid, SIGKILL);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFSIGNALED(status)) {
        print_error("the writer exited early (%d): see its message\n",
                    status);
        fail();
    }
    int64_t last = -1;
    uint64_t r;
    while (read(fds[0], &r, sizeof(r)) == sizeof(r)) {
        last = (int64_t)r;
    }
    close(fds[0]);
    return last;
}

/* Kill rounds on crash.qcow2, which `make` (a shell command) creates
 * with IMAGE_SIZE bytes; what it holds at first is read with qemu-img. */
static void crash_rounds(const char *make, uint64_t cluster)
{
    char spec[300];
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    uint64_t seed = mix((uint64_t)now.tv_nsec);
    print_message("  %s, seed %" PRIu64 "\n", make, seed);
    sh("rm -f crash.qcow2 && %s && qemu-img convert -f qcow2 -O raw "
       "crash.qcow2 crash.raw", make);
    snprintf(spec, sizeof(spec), "qcow2:%s", path_of("crash.qcow2"));
    size_t size;
    uint8_t *base = read_file("crash.raw", &size);
    assert_int_equal(size, IMAGE_SIZE);

    for (unsigned kill_no = 0; kill_no < KILLS; kill_no++) {
        uint64_t run_seed = mix(seed + kill_no);
        int64_t durable = write_and_kill(spec, run_seed, cluster,
                                         5 + (unsigned)(run_seed % 60));
        /* Leaks allowed (3), corruption not (2). */
        int check = sh_status("qemu-img check -f qcow2 crash.qcow2");
        if (check != 0 && check != 3) {
            print_error("kill %u: qemu-img check exits %d\n", kill_no,
                        check);
            fail();
        }
        struct request reqs[MAX_REQS];
        for (int64_t r = 0; r <= durable; r++) {
            unsigned n = make_round(run_seed, (uint64_t)r, cluster, reqs);
            for (unsigned i = 0; i < n; i++) {
                apply(base, &reqs[i], cluster);
            }
        }
        /* What the round in flight touched may be either way. */
        uint8_t *unknown = calloc(1, IMAGE_SIZE);
        assert_non_null(unknown);
        unsigned n = make_round(run_seed, (uint64_t)(durable + 1), cluster,
                                reqs);
        for (unsigned i = 0; i < n; i++) {
            uint64_t b = reqs[i].offset / cluster * cluster;
            uint64_t e = (reqs[i].offset + reqs[i].len + cluster - 1) /
                         cluster * cluster;
            memset(unknown + b, 1, (e < IMAGE_SIZE ? e : IMAGE_SIZE) - b);
        }
        sh("qemu-img convert -f qcow2 -O raw crash.qcow2 crash.raw");
        uint8_t *got = read_file("crash.raw", &size);
        assert_int_equal(size, IMAGE_SIZE);
        for (size_t i = 0; i < IMAGE_SIZE; i++) {
            if (!unknown[i] && got[i] != base[i]) {
                print_error("kill %u after round %" PRId64 ": byte %zu is "
                            "%#x, not %#x\n", kill_no, durable, i, got[i],
                            base[i]);
                fail();
            }
        }
        /* The next run starts from what is there. */
        memcpy(base, got, IMAGE_SIZE);
        free(got);
        free(unknown);
    }
    free(base);
}

static void test_killed_writers_leave_consistent_images(void **state)
{
    (void)state;
    if (!have_qemu) {
        skip_because("qemu-img is not installed");
    }
    crash_rounds("qemu-img create -f qcow2 crash.qcow2 16M", 65536);
    /* Small clusters, 1-bit refcounts: new refcount blocks all the time. */
    crash_rounds("qemu-img create -f qcow2 -o cluster_size=4k,refcount_bits=1"
                 " crash.qcow2 16M", 4096);
    crash_rounds("qemu-img create -f qcow2 -o extended_l2=on crash.qcow2 16M",
                 65536);
    /* Compressed clusters, replaced by writes and freed by discards. */
    crash_rounds("qemu-img create -f raw c.raw 16M && qemu-io -f raw "
                 "-c 'write -P 0x5a 0 16M' c.raw && qemu-img convert -c "
                 "-O qcow2 c.raw crash.qcow2", 65536);
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

int main(int argc, char **argv)
{
    if (argc == 6 && !strcmp(argv[1], "--writer")) {
        return run_writer(argv[2], strtoull(argv[3], NULL, 10),
                          strtoull(argv[4], NULL, 10), atoi(argv[5]));
    }
    self = argv[0];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_killed_writers_leave_consistent_images),
    };

    return tests_exit_status(cmocka_run_group_tests(tests, setup, teardown));
}
