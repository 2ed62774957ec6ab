/*
 * coblk-bench's run loop: bench_run() on null: devices and on a temporary
 * file, checked by what it counts (I/Os, bytes, flushes, passes), what it
 * writes, and the errors it reports.  No assertion depends on timing.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "bench/flow.h"
#include "bench/gate.h"
#include "bench/options.h"
#include "bench/run.h"
#include "bench/verify.h"
#include "caps.h"

/* A job from "name=value" (or "flag") strings, finished as the command
 * line finishes it; fails the test on a bad option. */
static struct job make_job(const char *const opts[])
{
    struct job job;
    char err[256];

    bench_job_defaults(&job);
    snprintf(job.name, sizeof(job.name), "run");
    for (unsigned i = 0; opts[i]; i++) {
        char item[256];
        snprintf(item, sizeof(item), "%s", opts[i]);
        char *eq = strchr(item, '=');
        if (eq) {
            *eq = '\0';
        }
        if (bench_set_option(&job, item, eq ? eq + 1 : NULL, err,
                             sizeof(err)) < 0) {
            fail_msg("%s: %s", opts[i], err);
        }
    }
    if (bench_job_finish(&job, err, sizeof(err)) < 0) {
        fail_msg("%s", err);
    }
    return job;
}

/* Runs instance 0 of job on spec; the result is the caller's to free
 * (bench_result_free, then free). */
static struct job_result *run(const struct job *job, const char *spec)
{
    struct job_result *r = calloc(1, sizeof(*r));

    assert_non_null(r);
    bench_result_init(r, job, 0);
    bench_run(job, spec, 0, 1, r);
    assert_int_equal(atomic_load(&r->progress.state), STATE_DONE);
    return r;
}

static void done(struct job_result *r)
{
    bench_result_free(r);
    free(r);
}

static uint64_t bucket_sum(const uint64_t *buckets)
{
    uint64_t sum = 0;

    for (unsigned i = 0; i < DEPTH_BUCKETS; i++) {
        sum += buckets[i];
    }
    return sum;
}

/* A temporary file of size bytes (sparse, zeroes); its path in path. */
static void temp_file(char path[64], uint64_t size)
{
    snprintf(path, 64, "/tmp/coblk-test-run.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)size), 0);
    close(fd);
}

/* ---- counts ------------------------------------------------------------- */

static void test_null_counts(void **state)
{
    struct job job = make_job((const char *[]){
        "rw=randread", "bs=4k", "iodepth=8", NULL });
    struct job_result *r = run(&job, "null:size=16M");

    assert_int_equal(r->error, 0);
    assert_int_equal(r->dir[DIR_READ].ios, 4096);
    assert_int_equal(r->dir[DIR_READ].bytes, 16 << 20);
    assert_int_equal(r->dir[DIR_WRITE].ios, 0);
    assert_int_equal(r->dir[DIR_READ].clat.count, 4096);
    assert_int_equal(r->dir[DIR_READ].lat.count, 4096);
    assert_int_equal(r->dir[DIR_READ].slat.count, 4096);
    /* Every submitted request is counted at its depth, once. */
    assert_int_equal(bucket_sum(r->io_depth), 4096);
    done(r);
}

static uint64_t histogram_sum(const struct lat_stats *s)
{
    uint64_t sum = 0;

    for (unsigned b = 0; b < LAT_BUCKETS; b++) {
        sum += s->buckets[b];
    }
    return sum;
}

/* Completions are accounted a run of the same latencies at a time (a
 * submitted batch, mostly): with reads and writes of several sizes mixed
 * in each reap, each direction still counts each of its I/Os once, in
 * its bytes, its histogram and its moments. */
static void test_grouped_accounting_counts_each_io(void **state)
{
    char path[64], spec[80];
    struct job job = make_job((const char *[]){
        "rw=randrw", "bsrange=4k-16k", "iodepth=16", "direct=1", NULL });

    temp_file(path, 16 << 20);
    snprintf(spec, sizeof(spec), "file:%s", path);
    struct job_result *r = run(&job, spec);
    assert_int_equal(r->error, 0);
    assert_int_equal(r->dir[DIR_READ].bytes + r->dir[DIR_WRITE].bytes,
                     16 << 20);
    for (int d = DIR_READ; d <= DIR_WRITE; d++) {
        const struct dir_stats *s = &r->dir[d];
        assert_true(s->ios > 100);
        assert_true(s->bytes >= s->ios * 4096 && s->bytes <= s->ios * 16384);
        assert_int_equal(s->clat.count, s->ios);
        assert_int_equal(s->lat.count, s->ios);
        assert_int_equal(s->slat.count, s->ios);
        assert_int_equal(histogram_sum(&s->clat), s->ios);
        double mean = lat_mean(&s->clat);
        assert_true(mean >= (double)s->clat.min_ns &&
                    mean <= (double)s->clat.max_ns);
        assert_true(lat_mean(&s->lat) >= mean);    /* lat = slat + clat */
    }
    done(r);
    unlink(path);
}

/* A verified write held for overlapping another in the batch not yet
 * submitted: the batch goes, and the run does every I/O (it used to end
 * with the batch dropped and 0 writes). */
static void test_held_write_submits_its_batch(void **state)
{
    char path[64], spec[80];
    struct job job = make_job((const char *[]){
        "rw=randwrite", "bs=4k", "size=1M", "verify=crc32c", "norandommap",
        "iodepth=16", "iodepth_batch_submit=16", NULL });

    temp_file(path, 1 << 20);
    snprintf(spec, sizeof(spec), "file:%s", path);
    struct job_result *r = run(&job, spec);
    assert_int_equal(r->error, 0);
    assert_int_equal(r->dir[DIR_WRITE].ios, 256);
    assert_true(r->dir[DIR_READ].ios > 0);      /* the verify pass */
    done(r);
    unlink(path);
}

static void test_size_and_offset(void **state)
{
    struct job job = make_job((const char *[]){
        "rw=read", "bs=64k", "offset=1M", "size=2M", NULL });
    struct job_result *r = run(&job, "null:size=16M");

    assert_int_equal(r->error, 0);
    assert_int_equal(r->dir[DIR_READ].ios, 32);
    assert_int_equal(r->dir[DIR_READ].bytes, 2 << 20);
    done(r);
}

static void test_loops_and_number_ios(void **state)
{
    struct job loops = make_job((const char *[]){
        "rw=randread", "size=4M", "loops=3", NULL });
    struct job_result *r = run(&loops, "null:size=4M");

    assert_int_equal(r->dir[DIR_READ].ios, 3 * 1024);
    done(r);

    /* number_ios counts per pass, as fio's does. */
    struct job nios = make_job((const char *[]){
        "rw=randread", "size=4M", "loops=3", "number_ios=10", NULL });
    r = run(&nios, "null:size=4M");
    assert_int_equal(r->dir[DIR_READ].ios, 30);
    assert_int_equal(r->dir[DIR_READ].bytes, 30 * 4096);
    done(r);
}

static void test_mixed_covers_each_block_once(void **state)
{
    struct job job = make_job((const char *[]){
        "rw=randrw", "rwmixread=70", "size=8M", "iodepth=4", NULL });
    struct job_result *r = run(&job, "null:size=8M");

    assert_int_equal(r->error, 0);
    assert_int_equal(r->dir[DIR_READ].ios + r->dir[DIR_WRITE].ios, 2048);
    assert_int_equal(r->dir[DIR_READ].bytes + r->dir[DIR_WRITE].bytes,
                     8 << 20);
    assert_true(r->dir[DIR_READ].ios > r->dir[DIR_WRITE].ios);
    done(r);
}

/* fio's fsync=N: a flush before the write after every Nth; end_fsync's
 * own flush is not counted. */
static void test_fsync_counts(void **state)
{
    char path[64];
    temp_file(path, 1 << 20);
    struct job job = make_job((const char *[]){
        "rw=write", "size=1M", "fsync=16", "end_fsync=1", NULL });
    char spec[80];
    snprintf(spec, sizeof(spec), "file:%s", path);
    struct job_result *r = run(&job, spec);

    assert_int_equal(r->error, 0);
    assert_int_equal(r->dir[DIR_WRITE].ios, 256);
    assert_int_equal(r->sync_ios, 15);
    assert_int_equal(r->sync.count, 15);        /* their latencies */
    done(r);
    unlink(path);
}

/* rate_iops=1 in a 100 ms run: the first I/O goes at once, the second
 * would be due after the end. */
static void test_rate_limit_by_count(void **state)
{
    struct job job = make_job((const char *[]){
        "rw=randread", "rate_iops=1", "runtime=100ms", NULL });
    struct job_result *r = run(&job, "null:size=1M");

    assert_int_equal(r->error, 0);
    assert_int_equal(r->dir[DIR_READ].ios, 1);
    done(r);
}

/* flow=: jobs that try in turn issue in proportion to their weights; a
 * job that left no longer holds the others back. */
static void test_flow_keeps_weights(void **state)
{
    struct flow *light = flow_join(7, 1), *heavy = flow_join(7, 3);
    struct flow *other = flow_join(8, 1);
    uint64_t n_light = 0, n_heavy = 0, n_other = 0;

    (void)state;
    assert_non_null(light);
    assert_ptr_equal(light, heavy);         /* one flow per id */
    assert_ptr_not_equal(light, other);
    for (unsigned i = 0; i < 40000; i++) {
        flow_may_issue(light, &n_light, 1);
        flow_may_issue(heavy, &n_heavy, 3);
        assert_true(flow_may_issue(other, &n_other, 1));    /* alone */
    }
    assert_int_equal(n_heavy, 40000);       /* never held: it leads */
    assert_in_range(n_heavy, 3 * n_light - 3, 3 * n_light + 3);
    flow_leave(light, n_light, 1);
    for (unsigned i = 0; i < 100; i++) {
        assert_true(flow_may_issue(heavy, &n_heavy, 3));
    }
    flow_leave(heavy, n_heavy, 3);
    flow_leave(other, n_other, 1);
}

/* ---- a group's start line ------------------------------------------------ */

struct gated {
    const struct job *job;
    const char *spec;
    struct job_result r;
    uint64_t delay_ns;          /* before the instance starts */
    uint64_t started_ns, ended_ns;
};

static void *run_gated(void *opaque)
{
    struct gated *g = opaque;

    struct timespec ts = { 0, (long)g->delay_ns };
    nanosleep(&ts, NULL);
    g->started_ns = bench_now_ns();
    bench_run(g->job, g->spec, 0, 1, &g->r);
    g->ended_ns = bench_now_ns();
    return NULL;
}

/* Runs two instances that share a start line, the second starting
 * 200 ms after the first. */
static void run_two_gated(struct gated *g)
{
    struct start_gate gate;
    pthread_t threads[2];

    gate_init(&gate);
    gate_expect(&gate, 2);
    for (unsigned i = 0; i < 2; i++) {
        bench_result_init(&g[i].r, g[i].job, 0);
        g[i].r.gate = &gate;
        g[i].delay_ns = i * 200000000ull;
        assert_int_equal(pthread_create(&threads[i], NULL, run_gated, &g[i]),
                         0);
    }
    for (unsigned i = 0; i < 2; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
    }
    gate_destroy(&gate);
}

/* The instances of a group start their I/O together, as fio's: the first
 * waits for the late one, so its 300 ms run ends after the late one's
 * start plus 300 ms (without the line, 200 ms before). */
static void test_group_starts_together(void **state)
{
    struct job job = make_job((const char *[]){
        "rw=randread", "time_based", "runtime=300ms", NULL });
    struct gated g[2] = { { .job = &job, .spec = "null:size=16M" },
                          { .job = &job, .spec = "null:size=16M" } };

    (void)state;
    run_two_gated(g);
    for (unsigned i = 0; i < 2; i++) {
        assert_int_equal(g[i].r.error, 0);
        assert_true(g[i].r.dir[DIR_READ].ios > 0);
        assert_true(g[i].r.runtime_ns >= 300000000);
        bench_result_free(&g[i].r);
    }
    assert_true(g[0].ended_ns >= g[1].started_ns + 300000000);
}

/* One that fails to set up does not hold the other at the line. */
static void test_failed_instance_opens_the_line(void **state)
{
    struct job job = make_job((const char *[]){
        "rw=randread", "time_based", "runtime=100ms", NULL });
    struct gated g[2] = { { .job = &job, .spec = "null:size=16M" },
                          { .job = &job, .spec = "nosuchdriver:x" } };

    (void)state;
    run_two_gated(g);
    assert_int_equal(g[0].r.error, 0);
    assert_true(g[0].r.dir[DIR_READ].ios > 0);
    assert_int_not_equal(g[1].r.error, 0);
    assert_ptr_equal(g[1].r.gate, NULL);
    for (unsigned i = 0; i < 2; i++) {
        bench_result_free(&g[i].r);
    }
}

/* ---- fio's tuning options ------------------------------------------------ */

/* The run loop's calls to clock_gettime, counted: the test program is
 * linked with --wrap=clock_gettime.  Visible, as the linker wants when a
 * shared library (ASan's) refers to clock_gettime too. */
int __real_clock_gettime(clockid_t clock, struct timespec *ts);
__attribute__((visibility("default")))
int __wrap_clock_gettime(clockid_t clock, struct timespec *ts);
static _Atomic uint64_t clock_reads;

int __wrap_clock_gettime(clockid_t clock, struct timespec *ts)
{
    atomic_fetch_add(&clock_reads, 1);
    return __real_clock_gettime(clock, ts);
}

static uint64_t clock_reads_of(const struct job *job, struct job_result **r)
{
    atomic_store(&clock_reads, 0);
    *r = run(job, "null:size=16M");
    return atomic_load(&clock_reads);
}

/* gtod_reduce: no latency kept, and the clock read once in 64 reaps
 * instead of twice a turn (4096 I/Os in batches of up to 8). */
static void test_gtod_reduce(void **state)
{
    struct job full = make_job((const char *[]){
        "rw=randread", "iodepth=8", NULL });
    struct job reduced = make_job((const char *[]){
        "rw=randread", "iodepth=8", "gtod_reduce=1", NULL });
    struct job_result *r;

    assert_true(clock_reads_of(&full, &r) > 4096 / 8);
    assert_int_equal(r->dir[DIR_READ].clat.count, 4096);
    done(r);
    assert_true(clock_reads_of(&reduced, &r) < 4096 / 64);
    assert_int_equal(r->error, 0);
    assert_int_equal(r->dir[DIR_READ].ios, 4096);
    assert_int_equal(r->dir[DIR_READ].bytes, 16 << 20);
    assert_int_equal(r->dir[DIR_READ].clat.count, 0);
    assert_int_equal(r->dir[DIR_READ].slat.count, 0);
    assert_int_equal(r->dir[DIR_READ].lat.count, 0);
    done(r);
}

/* Each disable_* drops its own statistic only. */
static void test_disable_each(void **state)
{
    struct job no_clat = make_job((const char *[]){
        "rw=randread", "iodepth=8", "disable_clat=1", NULL });
    struct job no_slat_lat = make_job((const char *[]){
        "rw=randread", "iodepth=8", "disable_slat", "disable_lat", NULL });
    struct job_result *r;

    r = run(&no_clat, "null:size=16M");
    assert_int_equal(r->dir[DIR_READ].clat.count, 0);
    assert_int_equal(r->dir[DIR_READ].slat.count, 4096);
    assert_int_equal(r->dir[DIR_READ].lat.count, 4096);
    done(r);
    r = run(&no_slat_lat, "null:size=16M");
    assert_int_equal(r->dir[DIR_READ].clat.count, 4096);
    assert_int_equal(r->dir[DIR_READ].slat.count, 0);
    assert_int_equal(r->dir[DIR_READ].lat.count, 0);
    done(r);
}

/* With fsync= under disable_clat, flushes are counted, their latencies
 * not, as fio. */
static void test_flushes_without_latency(void **state)
{
    char path[64], spec[80];
    temp_file(path, 1 << 20);
    snprintf(spec, sizeof(spec), "file:%s", path);
    struct job job = make_job((const char *[]){
        "rw=write", "size=1M", "fsync=16", "gtod_reduce=1", NULL });
    struct job_result *r = run(&job, spec);

    assert_int_equal(r->error, 0);
    assert_int_equal(r->sync_ios, 15);
    assert_int_equal(r->sync.count, 0);
    done(r);
    unlink(path);
}

/* Bandwidth and IOPS are sampled every 500 ms, unless disabled. */
static void test_disable_bw_measurement(void **state)
{
    struct job sampled = make_job((const char *[]){
        "rw=randread", "time_based", "runtime=700ms", NULL });
    struct job unsampled = make_job((const char *[]){
        "rw=randread", "time_based", "runtime=700ms",
        "disable_bw_measurement=1", NULL });
    struct job_result *r = run(&sampled, "null:size=16M");

    assert_true(r->dir[DIR_READ].bw.count >= 1);
    assert_int_equal(r->dir[DIR_READ].iops.count, r->dir[DIR_READ].bw.count);
    done(r);
    r = run(&unsampled, "null:size=16M");
    assert_true(r->dir[DIR_READ].ios > 0);
    assert_int_equal(r->dir[DIR_READ].bw.count, 0);
    assert_int_equal(r->dir[DIR_READ].iops.count, 0);
    assert_true(r->series.count >= 1);      /* --plot still has its series */
    done(r);
}

static uint64_t reaps(const struct job_result *r)
{
    return bucket_sum(r->complete);
}

/* iodepth_batch_complete_max caps one reap: 16 in flight on null, all
 * complete at once, are taken two at a time. */
static void test_batch_complete_max(void **state)
{
    struct job capped = make_job((const char *[]){
        "rw=randread", "iodepth=16", "iodepth_batch_complete_max=2", NULL });
    struct job uncapped = make_job((const char *[]){
        "rw=randread", "iodepth=16", NULL });
    struct job_result *r = run(&capped, "null:size=16M");

    assert_int_equal(r->dir[DIR_READ].ios, 4096);
    assert_true(reaps(r) >= 4096 / 2);
    assert_int_equal(r->complete[batch_bucket(2)], reaps(r));
    done(r);
    r = run(&uncapped, "null:size=16M");
    assert_true(reaps(r) < 4096 / 2);
    done(r);
}

/* ---- data on a file ----------------------------------------------------- */

static uint32_t le32_at(int fd, off_t offset)
{
    uint8_t b[4];

    assert_int_equal(pread(fd, b, 4, offset), 4);
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
           (uint32_t)b[3] << 24;
}

static void test_verify_writes_and_catches_corruption(void **state)
{
    char path[64], spec[80];
    temp_file(path, 1 << 20);
    snprintf(spec, sizeof(spec), "file:%s", path);
    struct job write = make_job((const char *[]){
        "rw=randwrite", "size=1M", "iodepth=8", "verify=crc32c", NULL });
    struct job_result *r = run(&write, spec);

    assert_int_equal(r->error, 0);
    assert_int_equal(r->dir[DIR_WRITE].ios, 256);
    assert_int_equal(r->dir[DIR_READ].ios, 256);     /* all read back */
    done(r);

    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    for (off_t block = 0; block < 256; block++) {
        assert_int_equal(le32_at(fd, block * 4096), VERIFY_MAGIC);
    }
    assert_int_equal(pwrite(fd, "XX", 2, 7 * 4096 + 1000), 2);
    close(fd);

    struct job check = make_job((const char *[]){
        "rw=randwrite", "size=1M", "verify=crc32c", "verify_only=1", NULL });
    r = run(&check, spec);
    assert_int_equal(r->error, -EILSEQ);
    assert_int_equal(r->dir[DIR_WRITE].ios, 0);
    if (strncmp(r->errmsg, "verify: offset 28672: data checksum: ", 37)) {
        fail_msg("errmsg: %s", r->errmsg);
    }
    done(r);
    unlink(path);
}

/* ---- errors ------------------------------------------------------------- */

static void test_failed_read(void **state)
{
    struct job job = make_job((const char *[]){ "rw=read", NULL });
    struct job_result *r = run(&job,
                               "blkdebug:event=read,offset=8192,len=4096,"
                               "errno=EIO:null:size=1M");

    assert_int_equal(r->error, -EIO);
    assert_string_equal(r->errmsg, "read at offset 8192: Input/output "
                        "error");
    assert_int_equal(r->dir[DIR_READ].ios, 3);  /* counted, as fio */
    done(r);
}

/* The library's errno, not one of our choosing. */
static void test_failed_open(void **state)
{
    struct job job = make_job((const char *[]){ "rw=read", NULL });
    struct job_result *r = run(&job, "file:/nonexistent/coblk-test");

    assert_int_equal(r->error, -ENOENT);
    assert_string_equal(r->errmsg, "file: /nonexistent/coblk-test: No such "
                        "file or directory");
    done(r);

    r = run(&job, "null:size=1M,bogus=1");
    assert_int_equal(r->error, -EINVAL);
    done(r);
}

/* ---- stopping (SIGINT, SIGTERM) ---------------------------------------- */

/* bench_stop() lasts for the process: this test runs last (a child
 * process would do, but ThreadSanitizer refuses threads after a fork). */
struct instance {
    const struct job *job;
    struct job_result r;
    pthread_t thread;
};

static void *instance_thread(void *arg)
{
    struct instance *in = arg;

    /* Each I/O waits on a timer, so that no instance spins without a
     * system call: valgrind would hardly ever run the other threads. */
    bench_run(in->job, "null:size=1G,latency-ns=100000", 0, 1, &in->r);
    return NULL;
}

static struct instance *start(const struct job *job)
{
    struct instance *in = calloc(1, sizeof(*in));

    assert_non_null(in);
    in->job = job;
    bench_result_init(&in->r, job, 0);
    assert_int_equal(pthread_create(&in->thread, NULL, instance_thread, in),
                     0);
    return in;
}

static void free_instance(struct instance *in)
{
    bench_result_free(&in->r);
    free(in);
}

/* Sleeps, not spins: under valgrind a spinning thread can keep the
 * others from running. */
static void wait_for_first_read(const struct instance *in)
{
    while (!atomic_load(&in->r.progress.ios[DIR_READ])) {
        usleep(1000);
    }
}

/* An hour's jobs end when asked. */
static void test_stop(void **state)
{
    struct job running_job = make_job((const char *[]){
        "rw=randread", "iodepth=16", "time_based", "runtime=1h", NULL });
    struct job limited_job = make_job((const char *[]){
        "rw=randread", "rate_iops=1", "time_based", "runtime=1h", NULL });
    struct job delayed_job = make_job((const char *[]){
        "rw=randread", "startdelay=1h", NULL });

    alarm(300);                 /* a watchdog, not a bound: a hang fails */
    struct instance *running = start(&running_job);
    struct instance *limited = start(&limited_job);
    struct instance *delayed = start(&delayed_job);
    wait_for_first_read(running);
    wait_for_first_read(limited);
    bench_stop();
    pthread_join(running->thread, NULL);
    pthread_join(limited->thread, NULL);
    pthread_join(delayed->thread, NULL);

    /* Running: stopped with its I/O done and counted. */
    const struct dir_stats *reads = &running->r.dir[DIR_READ];
    assert_int_equal(running->r.error, 0);
    assert_true(reads->ios > 0);
    assert_int_equal(reads->ios, reads->clat.count);
    /* Rate limited: stopped while waiting for its second I/O. */
    assert_int_equal(limited->r.error, 0);
    assert_int_equal(limited->r.dir[DIR_READ].ios, 1);
    /* Start delay: stopped before starting. */
    assert_int_equal(delayed->r.error, 0);
    assert_int_equal(delayed->r.dir[DIR_READ].ios, 0);
    assert_int_equal(atomic_load(&delayed->r.progress.state), STATE_DONE);

    /* Started after the stop: no I/O. */
    struct instance *late = start(&running_job);
    pthread_join(late->thread, NULL);
    assert_int_equal(late->r.error, 0);
    assert_int_equal(late->r.dir[DIR_READ].ios, 0);
    alarm(0);
    free_instance(running);
    free_instance(limited);
    free_instance(delayed);
    free_instance(late);
}

/* ---- I/O priorities ----------------------------------------------------- */

/* Lines of a log whose priority column (log_prio=1) is prio, per
 * direction. */
static void count_log_prios(const char *path, const char *prio,
                            uint64_t counts[2])
{
    FILE *f = fopen(path, "r");
    char line[256];

    assert_non_null(f);
    counts[0] = counts[1] = 0;
    while (fgets(line, sizeof(line), f)) {
        unsigned long long t, v, bs;
        int dir;
        char col[16];
        assert_int_equal(sscanf(line, "%llu, %llu, %d, %llu, %15s", &t, &v,
                                &dir, &bs, col), 5);
        if (!strcmp(col, prio) && dir >= 0 && dir < 2) {
            counts[dir]++;
        }
    }
    fclose(f);
}

/* cmdprio_percentage=50 on a file, at the real-time class (fio's
 * default, which the kernel takes with the capability) or else the idle
 * one: about half of each direction's I/Os go at it, the rest at the
 * job's (0), each counted once in the latencies by priority and logged
 * with its priority. */
static void test_cmdprio_splits_the_ios(void **state)
{
    char path[64], spec[80], prefix[80], log[112];
    bool root = may_use_realtime_io();
    struct job job = make_job((const char *[]){
        "rw=randrw", "bs=4k", "iodepth=8", "ioengine=io_uring",
        "cmdprio_percentage=50", root ? "cmdprio_class=1" : "cmdprio_class=3",
        "log_prio=1", NULL });

    temp_file(path, 16 << 20);
    snprintf(spec, sizeof(spec), "file:%s", path);
    snprintf(prefix, sizeof(prefix), "%s-log", path);
    snprintf(job.lat_log, sizeof(job.lat_log), "%s", prefix);
    struct job_result *r = run(&job, spec);
    assert_int_equal(r->error, 0);
    uint64_t logged_picked[2], logged_default[2];
    snprintf(log, sizeof(log), "%s_clat.1.log", prefix);
    count_log_prios(log, root ? "0x2000" : "0x6000", logged_picked);
    count_log_prios(log, "0x0000", logged_default);
    for (int d = DIR_READ; d <= DIR_WRITE; d++) {
        const struct dir_stats *s = &r->dir[d];
        assert_int_equal(s->nr_prios, 2);
        assert_int_equal(s->prios[0].ioprio, 0);
        assert_int_equal(s->prios[1].ioprio, (root ? 1 : 3) << 13);
        uint64_t picked = s->prios[1].lat.count;
        assert_int_equal(s->prios[0].lat.count + picked, s->ios);
        assert_int_equal(histogram_sum(&s->prios[0].lat) +
                             histogram_sum(&s->prios[1].lat), s->ios);
        assert_true(s->ios > 1000);
        assert_true(picked > s->ios * 2 / 5 && picked < s->ios * 3 / 5);
        assert_int_equal(logged_picked[d], picked);
        assert_int_equal(logged_default[d], s->prios[0].lat.count);
    }
    done(r);
    for (const char *kind = "lat\0clat\0slat\0"; *kind;
         kind += strlen(kind) + 1) {
        snprintf(log, sizeof(log), "%s_%s.1.log", prefix, kind);
        unlink(log);
    }
    unlink(path);
}

/* group_reporting, as fio's sum_thread_stats(): latencies by priority
 * merge by value, an instance without them counting at its job's
 * priority; none are made for instances all at one priority. */
static void test_prio_stats_merge_by_value(void **state)
{
    struct job cmdprio = make_job((const char *[]){
        "rw=randread", "bs=4k", "ioengine=libaio", "cmdprio_percentage=50",
        "lat_percentiles=1", NULL });
    struct job plain = make_job((const char *[]){
        "rw=randread", "bs=4k", "lat_percentiles=1", NULL });
    struct job_result *a = run(&cmdprio, "null:size=4M");
    struct job_result *b = run(&plain, "null:size=4M");
    struct job_result m;

    /* With lat_percentiles=1, fio keeps total latencies by priority. */
    assert_int_equal(a->dir[DIR_READ].prios[0].lat.count +
                         a->dir[DIR_READ].prios[1].lat.count,
                     a->dir[DIR_READ].lat.count);
    assert_null(b->dir[DIR_READ].prios);

    bench_result_init(&m, &plain, 0);
    assert_int_equal(bench_result_merge(&m, b), 0);
    assert_int_equal(bench_result_merge(&m, b), 0);
    assert_null(m.dir[DIR_READ].prios);         /* one priority */
    bench_result_free(&m);

    plain.ioprio = 3 << 13 | 7;     /* as prioclass=3, prio=7 (no syscall) */
    bench_result_init(&m, &cmdprio, 0);
    assert_int_equal(bench_result_merge(&m, a), 0);
    assert_int_equal(bench_result_merge(&m, b), 0);
    assert_int_equal(bench_result_merge(&m, a), 0);
    const struct dir_stats *s = &m.dir[DIR_READ];
    assert_int_equal(s->nr_prios, 3);
    assert_int_equal(s->prios[0].ioprio, 0);
    assert_int_equal(s->prios[1].ioprio, 1 << 13);
    assert_int_equal(s->prios[2].ioprio, 3 << 13 | 7);
    assert_int_equal(s->prios[0].lat.count,
                     2 * a->dir[DIR_READ].prios[0].lat.count);
    assert_int_equal(s->prios[2].lat.count, b->dir[DIR_READ].lat.count);
    assert_int_equal(s->prios[0].lat.count + s->prios[1].lat.count +
                         s->prios[2].lat.count, s->lat.count);
    bench_result_free(&m);
    done(a);
    done(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_null_counts),
        cmocka_unit_test(test_cmdprio_splits_the_ios),
        cmocka_unit_test(test_prio_stats_merge_by_value),
        cmocka_unit_test(test_grouped_accounting_counts_each_io),
        cmocka_unit_test(test_held_write_submits_its_batch),
        cmocka_unit_test(test_size_and_offset),
        cmocka_unit_test(test_loops_and_number_ios),
        cmocka_unit_test(test_mixed_covers_each_block_once),
        cmocka_unit_test(test_fsync_counts),
        cmocka_unit_test(test_rate_limit_by_count),
        cmocka_unit_test(test_flow_keeps_weights),
        cmocka_unit_test(test_group_starts_together),
        cmocka_unit_test(test_failed_instance_opens_the_line),
        cmocka_unit_test(test_gtod_reduce),
        cmocka_unit_test(test_disable_each),
        cmocka_unit_test(test_flushes_without_latency),
        cmocka_unit_test(test_disable_bw_measurement),
        cmocka_unit_test(test_batch_complete_max),
        cmocka_unit_test(test_verify_writes_and_catches_corruption),
        cmocka_unit_test(test_failed_read),
        cmocka_unit_test(test_failed_open),
        cmocka_unit_test(test_stop),    /* last: see bench_stop() */
    };

    return cmocka_run_group_tests_name("bench-run", tests, NULL, NULL);
}
