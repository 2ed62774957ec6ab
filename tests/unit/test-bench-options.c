/*
 * coblk-bench option parsing: table-driven, values and errors as fio has
 * them, command lines and job files.
 */
#include "config.h"

#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include "bench/options.h"

struct value_case {
    const char *option, *value;
    size_t offset, size;    /* field checked, when ok */
    uint64_t expected;
    const char *error;      /* NULL: accepted */
};

#define AT(f) offsetof(struct job, f), sizeof(((struct job *)0)->f)

static const struct value_case cases[] = {
    { "bs", "4k", AT(bs), 4096, NULL },
    { "bs", "64KiB", AT(bs), 65536, NULL },
    { "bs", "1M", AT(bs), 1 << 20, NULL },
    { "bs", "0", AT(bs), 0, "bs: 0 out of range" },
    { "bs", "4x", AT(bs), 0, "bs: invalid size '4x'" },
    { "size", "16M", AT(size), 16 << 20, NULL },
    { "size", "1g", AT(size), 1 << 30, NULL },
    { "size", "2t", AT(size), 2ull << 40, NULL },
    { "size", "-1", AT(size), 0, "size: invalid size '-1'" },
    { "size", "0", AT(size_given), 1, NULL },   /* fio's "the whole file" */
    { "iodepth", "32", AT(iodepth), 32, NULL },
    { "iodepth", "-1", AT(iodepth), 0, "iodepth: invalid number '-1'" },
    { "iodepth", "0", AT(iodepth), 0, "iodepth: 0 out of range" },
    { "runtime", "10", AT(runtime_ns), 10000000000ull, NULL },
    { "runtime", "500ms", AT(runtime_ns), 500000000, NULL },
    { "runtime", "2m", AT(runtime_ns), 120000000000ull, NULL },
    { "runtime", "5x", AT(runtime_ns), 0, "runtime: invalid time '5x'" },
    { "timeout", "3s", AT(runtime_ns), 3000000000ull, NULL },
    { "filesize", "64k)", AT(filesize), 65536, NULL },   /* fio's t/strided */
    { "filesize", "64k)x", AT(filesize), 0, "invalid size" },
    { "io_size", "1m", AT(io_size), 1 << 20, NULL },
    { "zonemode", "strided", AT(zonemode), ZONES_STRIDED, NULL },
    { "zonemode", "zbd", AT(zonemode), 0, "does not drive zoned block" },
    { "zonerange", "64k", AT(zonerange), 65536, NULL },
    { "random_distribution", "zoned:50/5:30/15:20/", AT(nr_zones), 3, NULL },
    { "random_distribution", "zoned:50/5:30/15", AT(nr_zones), 0,
      "accesses must add up to 100% and the sizes to no more (got 80%" },
    { "random_distribution", "zoned:50/60:50/60", AT(nr_zones), 0,
      "sizes to no more (got 100% and 120%)" },
    { "random_distribution", "zoned:/5:100/5", AT(nr_zones), 0,
      "expected ACCESS/SIZE percentages" },
    { "random_distribution", "zoned:50/5,50/5", AT(nr_zones), 0,
      "one split for all directions" },
    { "buffered", "1", AT(direct), 0, NULL },
    { "buffered", "0", AT(direct), 1, NULL },
    { "buffered", "2", AT(direct), 0, "buffered: expected 0 or 1" },
    { "unlink", NULL, AT(unlink), 1, NULL },
    { "filesize", "2M", AT(filesize), 2 << 20, NULL },
    { "filesize", "0", AT(filesize), 0, "filesize: 0 out of range" },
    { "fallocate", "keep", AT(fallocate), FALLOC_KEEP, NULL },
    { "fallocate", "1", AT(fallocate), FALLOC_POSIX, NULL },
    { "fallocate", "0", AT(fallocate), FALLOC_NONE, NULL },
    { "fallocate", "truncate", AT(fallocate), FALLOC_TRUNCATE, NULL },
    { "fallocate", "2", AT(fallocate), 0,
      "fallocate: expected none, native, posix, keep or truncate, got '2'" },
    { "thread", NULL, AT(unsupported), 0, NULL },
    { "threads", "1", AT(unsupported), 0, NULL },
    /* Text coblk has no use for is taken, whatever its length. */
    { "log_compression_cpus", "1", AT(unsupported), 0, NULL },
    { "verify_async_cpus", "0-1", AT(unsupported), 0, NULL },
    { "verify_async", "4", AT(unsupported), 0, NULL },
    { "create_serialize", "0", AT(unsupported), 0, NULL },
    { "create_on_open", "1", AT(unsupported), UNSUPPORTED_CREATE_ON_OPEN,
      NULL },
    { "create_on_open", "0", AT(unsupported), 0, NULL },
    { "rw", "randread", AT(rw), RW_RANDREAD, NULL },
    { "readwrite", "randrw", AT(rw), RW_RANDRW, NULL },
    { "rw", "sideways", AT(rw), 0, "rw: invalid value 'sideways'" },
    { "ioengine", "null", AT(engine), ENGINE_NULL, NULL },
    { "ioengine", "libaio", AT(engine), ENGINE_LIBAIO, NULL },
    { "ioengine", "pvsync2", AT(engine), ENGINE_PVSYNC2, NULL },
    { "ioengine", "rbd", AT(engine), 0,
      "ioengine=rbd: not an engine coblk-bench runs; it runs io_uring, "
      "libaio, posixaio, sync, psync, vsync, pvsync and pvsync2" },
    { "direct", "1", AT(direct), 1, NULL },
    { "direct", "yes", AT(direct), 0, "direct: expected 0 or 1" },
    { "time_based", NULL, AT(time_based), 1, NULL },
    { "rwmixread", "70", AT(rwmixread), 70, NULL },
    { "rwmixread", "101", AT(rwmixread), 0, "out of range" },
    { "numjobs", "4", AT(numjobs), 4, NULL },
    { "bogus", "1", AT(bs), 0, "unrecognized option '--bogus'" },
    { "bs", NULL, AT(bs), 0, "option 'bs' needs a value" },
    { "bsrange", "4k-64k", AT(dir_bs_max[0]), 65536, NULL },
    { "bsrange", "4k-64k", AT(dir_bs_max[2]), 65536, NULL },
    { "bsrange", "64k-4k", AT(dir_bs_min[0]), 0,
      "bsrange: invalid range '64k-4k'" },
    { "bsrange", "4k", AT(dir_bs_min[0]), 0, "bsrange: invalid range '4k'" },
    { "bsrange", "512:1M", AT(dir_bs_max[1]), 1 << 20, NULL }, /* t0002 */
    { "bsrange", "4k-8k,16k-32k", AT(dir_bs_min[2]), 16384, NULL },
    /* fio reads what follows a size leniently (its t0023 writes this). */
    { "bsrange", "512/25:1k:25:2k:25:4k/25", AT(dir_bs_max[0]), 1024, NULL },
    { "bs", "8k,16k", AT(dir_bs_max[2]), 16384, NULL },
    { "bs", "8k,16k,", AT(dir_bs_max[2]), 4096, NULL },
    { "bs", ",16k", AT(dir_bs_min[0]), 4096, NULL },
    { "bs", "4k,4k,8k", AT(dir_bs_min[2]), 8192, NULL },
    { "blockalign", "8k,16k", AT(ba[2]), 16384, NULL },
    { "ba", "4k", AT(ba[0]), 4096, NULL },
    { "bs", "4k,4k,8k,8k", AT(bs), 0, "bs: at most READ,WRITE,TRIM" },
    /* I/O priorities: fio's ranges, cmdprio's READ[,WRITE]. */
    { "prio", "7", AT(prio), 7, NULL },
    { "prio", "8", AT(prio), 0, "prio: '8' is not a number in [0, 7]" },
    { "prioclass", "3", AT(prioclass), 3, NULL },
    { "prioclass", "4", AT(prioclass), 0, "prioclass: '4' is not a number "
      "in [0, 3]" },
    { "prioclass", "1", AT(prio_given), 1, NULL },
    { "cmdprio_percentage", "50", AT(cmdprio_pct[1]), 50, NULL },
    { "cmdprio_percentage", "30,70", AT(cmdprio_pct[0]), 30, NULL },
    { "cmdprio_percentage", "30,70", AT(cmdprio_pct[1]), 70, NULL },
    { "cmdprio_percentage", "101", AT(cmdprio_pct[0]), 0,
      "cmdprio_percentage: '101' is not a number in [0, 100]" },
    { "cmdprio_percentage", "1,2,3", AT(cmdprio_pct[0]), 0,
      "cmdprio_percentage: at most READ,WRITE, got '1,2,3'" },
    { "cmdprio_class", "2", AT(cmdprio_class[1]), 2, NULL },
    { "cmdprio_class", "0", AT(cmdprio_class[0]), 0,
      "cmdprio_class: '0' is not a number in [1, 3]" },
    { "cmdprio", ",5", AT(cmdprio_level[1]), 5, NULL },
    { "cmdprio", "8", AT(cmdprio_level[0]), 0, "in [0, 7]" },
    /* Entries of 0% are left out; the rest sorted by size. */
    { "cmdprio_bssplit", "64k/25/1/1:64k/75/3/2:1024k/0",
      AT(nr_cmdprio_bssplit[1]), 2, NULL },
    { "cmdprio_bssplit", "1m/10:64k/100,1024k/0", AT(cmdprio_bssplit[0][0].bs),
      65536, NULL },
    { "cmdprio_bssplit", "64k/100:1024k/0,1024k/0", AT(nr_cmdprio_bssplit[1]),
      0, NULL },
    { "cmdprio_bssplit", "4k/60:8k/50:4k/50", AT(nr_cmdprio_bssplit[0]), 0,
      "cmdprio_bssplit: total percentage for bs: 4096 exceeds 100" },
    { "cmdprio_bssplit", "4k/10/1", AT(nr_cmdprio_bssplit[0]), 0,
      "cmdprio_bssplit: invalid entry '4k/10/1' (SIZE/PCT or "
      "SIZE/PCT/CLASS/LEVEL)" },
    { "cmdprio_bssplit", "4k/10/4/0", AT(nr_cmdprio_bssplit[0]), 0,
      "cmdprio_bssplit: '4' is not a number in [0, 3]" },
    { "cmdprio_bssplit", "4k/101", AT(nr_cmdprio_bssplit[0]), 0,
      "cmdprio_bssplit: '101' is not a number in [0, 100]" },
    { "cmdprio_bssplit", "a,b,c", AT(nr_cmdprio_bssplit[0]), 0,
      "cmdprio_bssplit: at most READ,WRITE lists" },
    { "io_submit_mode", "offload", AT(unsupported), 0, NULL },
    { "io_submit_mode", "later", AT(unsupported), 0, "invalid value" },
    { "bssplit", "4k/10:64k/50:32k", AT(nr_bssplit[0]), 3, NULL },
    { "bssplit", "4k/10:64k/50:32k", AT(nr_bssplit[2]), 3, NULL },
    { "bssplit", "64k/40:1024k/60,1024k/100", AT(nr_bssplit[1]), 1, NULL },
    { "bssplit", "4k/60:64k/50", AT(nr_bssplit[0]), 0, "must add up to 100" },
    { "bssplit", "4k/50:8k/40", AT(nr_bssplit[0]), 0, "must add up to 100" },
    { "bssplit", "4k/x", AT(nr_bssplit[0]), 0, "bssplit: invalid entry '4k'" },
    { "rwmixwrite", "30", AT(rwmixread), 70, NULL },
    { "rwmixwrite", "130", AT(rwmixread), 0, "rwmixwrite: expected 0 to 100" },
    { "iodepth_batch_submit", "8", AT(iodepth_batch_submit), 8, NULL },
    { "iodepth_batch_complete_min", "4", AT(iodepth_batch_complete_min), 4,
      NULL },
    { "ramp_time", "2s", AT(ramp_time_ns), 2000000000, NULL },
    { "startdelay", "500ms", AT(startdelay_ns), 500000000, NULL },
    { "iodepth_batch", "8", AT(iodepth_batch_submit), 8, NULL },
    { "iodepth_batch_complete", "2", AT(iodepth_batch_complete_min), 2,
      NULL },
    { "iodepth_batch_complete_max", "32", AT(iodepth_batch_complete_max), 32,
      NULL },
    { "fixedbufs", NULL, AT(fixedbufs), 1, NULL },
    { "fixedbufs", "0", AT(fixedbufs), 0, NULL },
    { "sqthread_poll", "0", AT(unsupported), 0, NULL },
    { "sqthread_poll", "1", AT(unsupported), UNSUPPORTED_SQTHREAD_POLL,
      NULL },
    { "sqthread_poll_cpu", "0", AT(unsupported),
      UNSUPPORTED_SQTHREAD_POLL_CPU, NULL },
    { "sqthread_poll_cpu", "x", AT(unsupported), 0,
      "sqthread_poll_cpu: invalid number 'x'" },
    { "hipri", "1", AT(unsupported), UNSUPPORTED_HIPRI, NULL },
    { "hipri", "2", AT(unsupported), 0, "hipri: expected 0 or 1, got '2'" },
    { "error_dump", "1", AT(unsupported), UNSUPPORTED_ERROR_DUMP, NULL },
    { "error_dump", "0", AT(unsupported), 0, NULL },
    { "error_dump", "2", AT(unsupported), 0,
      "error_dump: expected 0 or 1, got '2'" },
    { "registerfiles", "1", AT(unsupported), 0, NULL },
    { "userspace_reap", NULL, AT(unsupported), 0, NULL },
    { "nonvectored", "-1", AT(unsupported), 0, NULL },
    { "nonvectored", "1", AT(unsupported), 0, NULL },
    { "nonvectored", "2", AT(unsupported), 0,
      "nonvectored: invalid value '2'" },
    { "disable_lat", "1", AT(disable_lat), 1, NULL },
    { "disable_clat", NULL, AT(disable_clat), 1, NULL },
    { "disable_slat", "1", AT(disable_slat), 1, NULL },
    { "disable_bw_measurement", "1", AT(disable_bw), 1, NULL },
    { "disable_bw", "1", AT(disable_bw), 1, NULL },
    { "gtod_reduce", "1", AT(gtod_reduce), 1, NULL },
    { "gtod_reduce", "yes", AT(gtod_reduce), 0,
      "gtod_reduce: expected 0 or 1, got 'yes'" },
    { "randrepeat", "0", AT(randrepeat), 0, NULL },
    { "rate", "1m", AT(rate[0]), 1 << 20, NULL },
    { "rate", "1m", AT(rate[2]), 1 << 20, NULL },
    { "rate", "1m,2m", AT(rate[1]), 2 << 20, NULL },
    { "rate", "1m,2m", AT(rate[2]), 2 << 20, NULL },    /* as the last */
    { "rate", "1m,2m,", AT(rate[2]), 0, NULL },
    { "rate", "1m,2m,3m", AT(rate[2]), 3 << 20, NULL },
    { "rate", "1m,2m,3m,4m", AT(rate[0]), 0, "rate: invalid value" },
    { "rate", ",2m", AT(rate[0]), 0, NULL },
    { "ratemin", "1k", AT(ratemin[1]), 1024, NULL },
    { "rate_iops_min", ",5", AT(rate_iops_min[1]), 5, NULL },
    { "ratecycle", "500", AT(ratecycle_ms), 500, NULL },
    { "rate_process", "poisson", AT(rate_process), RATE_POISSON, NULL },
    { "rate", "fast", AT(rate[0]), 0, "rate: invalid value 'fast'" },
    { "rate_iops", "500", AT(rate_iops[1]), 500, NULL },
    { "rate_iops", "1k", AT(rate_iops[0]), 0, "rate_iops: invalid value" },
    { "random_distribution", "zipf:1.2", AT(distribution), DIST_ZIPF, NULL },
    { "random_distribution", "random", AT(distribution), DIST_RANDOM, NULL },
    { "random_distribution", "zipf:1", AT(distribution), 0, "THETA > 0" },
    { "random_distribution", "pareto:0.5", AT(distribution), 0,
      "expected random, zipf:THETA" },
    { "fsync", "8", AT(fsync), 8, NULL },
    { "end_fsync", "1", AT(end_fsync), 1, NULL },
    { "verify", "md5", AT(verify), VERIFY_MD5, NULL },
    { "verify", "crc32c-intel", AT(verify), VERIFY_CRC32C, NULL },
    { "verify", "sha1", AT(verify), 0, "verify: expected crc32c, md5, meta or 0" },
    { "verify_pattern", "0xdeadbeef", AT(verify_pattern_len), 4, NULL },
    { "verify_backlog", "16", AT(verify_backlog), 16, NULL },
    { "verify_fatal", "1", AT(verify_fatal), 1, NULL },
    { "do_verify", "0", AT(do_verify), 0, NULL },
    { "percentile_list", "99:99.9:99.99", AT(nr_percentiles), 3, NULL },
    { "percentile_list", "50:101", AT(nr_percentiles), 0, "(0, 100]" },
    { "percentile_list", "", AT(nr_percentiles), 0, "percentile_list: empty" },
    { "log_avg_msec", "100", AT(log_avg_msec), 100, NULL },
    { "loops", "3", AT(loops), 3, NULL },
    { "loops", "0", AT(loops), 0, "loops: 0 out of range" },
    { "number_ios", "100", AT(number_ios), 100, NULL },
    /* fio's thinktime and thinktime_spin count microseconds; _iotime,
     * seconds. */
    { "thinktime", "10", AT(thinktime_ns), 10000, NULL },
    { "thinktime", "2ms", AT(thinktime_ns), 2000000, NULL },
    { "thinktime_spin", "5", AT(thinktime_spin_ns), 5000, NULL },
    { "thinktime_iotime", "2", AT(thinktime_iotime_ns), 2000000000ull, NULL },
    { "thinktime_blocks", "8", AT(thinktime_blocks), 8, NULL },
    { "thinktime_blocks_type", "issue", AT(thinktime_blocks_type),
      THINK_ISSUE, NULL },
    { "flow", "1000", AT(flow), 1000, NULL },
    { "flow", "1001", AT(flow), 0, "flow: 1001 out of range [0, 1000]" },
    { "flow_sleep", "100", AT(flow_sleep), 100, NULL },
    { "stonewall", NULL, AT(stonewall), 1, NULL },
    { "new_group", NULL, AT(new_group), 1, NULL },
};

static uint64_t field_value(const struct job *job, size_t offset,
                            size_t size)
{
    const char *p = (const char *)job + offset;

    if (offset == offsetof(struct job, bssplit) ||
        offset == offsetof(struct job, verify_pattern)) {
        size = sizeof(uint64_t);
    }
    switch (size) {
    case sizeof(bool):
        return *(const bool *)p;
    case sizeof(unsigned):
        return *(const unsigned *)p;
    default:
        return *(const uint64_t *)p;
    }
}

static void test_option_values(void **state)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct value_case *c = &cases[i];
        struct job job;
        char err[256] = "";

        bench_job_defaults(&job);
        int ret = bench_set_option(&job, c->option, c->value, err,
                                   sizeof(err));
        if (c->error) {
            if (ret != -1 || !strstr(err, c->error)) {
                fail_msg("--%s=%s: expected \"%s\", got %d \"%s\"", c->option,
                         c->value ? c->value : "(none)", c->error, ret, err);
            }
        } else {
            if (ret != 0) {
                fail_msg("--%s=%s: rejected: %s", c->option, c->value, err);
            }
            assert_int_equal(field_value(&job, c->offset, c->size),
                             c->expected);
        }
    }
}

static int parse(struct bench_config *cfg, char *err, size_t size, ...)
{
    char *argv[32] = { "coblk-bench" };
    int argc = 1;
    va_list ap;

    va_start(ap, size);
    for (char *arg; (arg = va_arg(ap, char *));) {
        argv[argc++] = arg;
    }
    va_end(ap);
    return bench_parse_args(cfg, argc, argv, err, size);
}

/* Where a job's file is: filename= under directory=, or fio's
 * $jobname.$jobnum.$filenum there; filesize= is the region by default. */
static void test_directory_and_filesize(void **state)
{
    struct bench_config cfg;
    char err[256];

    assert_int_equal(parse(&cfg, err, sizeof(err), "--directory=/mnt/d",
                           "--filesize=8M", "--name=a", "--name=b",
                           "--filename=f.img", "--size=4M", "--name=c",
                           "--filename=/abs.img", "--name=d",
                           "--filename=null:size=1M", "--description=x y",
                           NULL), 0);
    assert_string_equal(cfg.jobs[0].filename, "/mnt/d/a.0.0");
    assert_int_equal(cfg.jobs[0].size, 8 << 20);
    assert_string_equal(cfg.jobs[1].filename, "/mnt/d/f.img");
    assert_int_equal(cfg.jobs[1].size, 4 << 20);
    assert_string_equal(cfg.jobs[2].filename, "/abs.img");
    assert_string_equal(cfg.jobs[3].filename, "null:size=1M");
    assert_string_equal(cfg.jobs[3].description, "x y");
    bench_config_free(&cfg);
    assert_int_equal(parse(&cfg, err, sizeof(err), "--directory=/d",
                           "--filename_format=f.$jobname.$jobnum.$filenum.x",
                           "--name=a", "--name=b", "--directory=", NULL), 0);
    assert_string_equal(cfg.jobs[0].filename, "/d/f.a.0.0.x");
    assert_string_equal(cfg.jobs[1].filename, "f.b.0.0.x");
    bench_config_free(&cfg);
    /* As fio: the region ends with the file at the latest. */
    assert_int_equal(parse(&cfg, err, sizeof(err), "--name=a",
                           "--filesize=1M", "--size=2M", "--offset=256k",
                           NULL), 0);
    assert_int_equal(cfg.jobs[0].size, 768 << 10);
    bench_config_free(&cfg);
    assert_int_equal(parse(&cfg, err, sizeof(err), "--name=a",
                           "--filesize=1M", "--offset=1M", NULL), -1);
    assert_string_equal(err, "a: offset=1048576 is past filesize=1048576");
    bench_config_free(&cfg);
}

/* fill_device: without size=, a file gets its file system's free space
 * (in whole blocks); a size given, or a device spec, stays. */
static void test_fill_device_takes_the_free_space(void **state)
{
    struct bench_config cfg;
    struct statvfs fs;
    char err[256];

    (void)state;
    assert_int_equal(statvfs("/var/tmp", &fs), 0);
    uint64_t before = (uint64_t)fs.f_bavail * fs.f_frsize;
    assert_int_equal(parse(&cfg, err, sizeof(err), "--name=a",
                           "--filename=/var/tmp/coblk-fill-test", "--bs=64k",
                           "--fill_device=1", "--name=b", "--size=1M",
                           "--name=c", "--filename=null:size=1M", NULL), 0);
    assert_int_equal(statvfs("/var/tmp", &fs), 0);
    uint64_t after = (uint64_t)fs.f_bavail * fs.f_frsize;
    uint64_t got = cfg.jobs[0].size;
    uint64_t least = (before < after ? before : after) - (64 << 10);
    assert_true(got >= least && got <= (before > after ? before : after));
    assert_int_equal(got % (64 << 10), 0);
    assert_int_equal(cfg.jobs[1].size, 1 << 20);
    assert_int_equal(cfg.jobs[2].size, 0);
    bench_config_free(&cfg);
}

/* CPU lists as fio writes them, and binding to them: the thread then
 * runs on just those (split: one each, round robin). */
static void test_cpu_sets_and_binding(void **state)
{
    struct id_set set;
    char err[256];
    cpu_set_t before, now;

    assert_int_equal(id_set_parse("0-3,6,8-9", &set, err, sizeof(err)), 0);
    assert_int_equal(id_set_count(&set), 7);
    assert_true(id_set_has(&set, 6) && !id_set_has(&set, 5));
    assert_int_equal(id_set_parse("3-1", &set, err, sizeof(err)), -1);
    assert_int_equal(id_set_parse("1,,2", &set, err, sizeof(err)), -1);
    assert_int_equal(id_set_parse("5000", &set, err, sizeof(err)), -1);
    assert_int_equal(id_set_parse("", &set, err, sizeof(err)), -1);

    assert_int_equal(sched_getaffinity(0, sizeof(before), &before), 0);
    assert_int_equal(id_set_parse("0", &set, err, sizeof(err)), 0);
    assert_int_equal(affinity_bind(&set, false, 3), 0);
    assert_int_equal(sched_getaffinity(0, sizeof(now), &now), 0);
    assert_int_equal(CPU_COUNT(&now), 1);
    assert_true(CPU_ISSET(0, &now));
    if (CPU_COUNT(&before) >= 2 && CPU_ISSET(1, &before)) {
        assert_int_equal(id_set_parse("0-1", &set, err, sizeof(err)), 0);
        assert_int_equal(affinity_bind(&set, true, 3), 0);  /* 3 % 2 */
        assert_int_equal(sched_getaffinity(0, sizeof(now), &now), 0);
        assert_int_equal(CPU_COUNT(&now), 1);
        assert_true(CPU_ISSET(1, &now));
    }
    assert_int_equal(sched_setaffinity(0, sizeof(before), &before), 0);

    assert_int_equal(affinity_mem_policy("interleave:0", false, err,
                                         sizeof(err)), 0);
    assert_int_equal(affinity_mem_policy("bind", false, err, sizeof(err)),
                     -1);
    assert_int_equal(affinity_mem_policy("local:0", false, err,
                                         sizeof(err)), -1);
    assert_int_equal(affinity_mem_policy("local", true, err, sizeof(err)),
                     0);
    assert_int_equal(affinity_mem_policy("default", true, err, sizeof(err)),
                     0);
}

/* Synchronous engines run at depth 1, as fio caps them; the depth asked
 * is kept for the reports. */
static void test_sync_engines_cap_the_depth(void **state)
{
    struct bench_config cfg;
    char err[256];

    assert_int_equal(parse(&cfg, err, sizeof(err), "--iodepth=8",
                           "--iodepth_batch_submit=4", "--name=a",
                           "--ioengine=psync", "--name=b",
                           "--ioengine=libaio", NULL), 0);
    assert_int_equal(cfg.jobs[0].iodepth, 1);
    assert_int_equal(cfg.jobs[0].iodepth_asked, 8);
    assert_int_equal(cfg.jobs[0].iodepth_batch_submit, 1);
    assert_int_equal(cfg.jobs[1].iodepth, 8);
    assert_int_equal(cfg.jobs[1].iodepth_asked, 8);
    assert_string_equal(bench_engine_name(cfg.jobs[1].engine), "libaio");
    bench_config_free(&cfg);
}

static void test_command_line_jobs_inherit_globals(void **state)
{
    struct bench_config cfg;
    char err[256];

    assert_int_equal(parse(&cfg, err, sizeof(err), "--bs=8k", "--iodepth=16",
                           "--name=a", "--rw=randread", "--name=b",
                           "--iodepth=4", "--output-format=json", NULL),
                     0);
    assert_int_equal(cfg.nr_jobs, 2);
    assert_string_equal(cfg.jobs[0].name, "a");
    assert_int_equal(cfg.jobs[0].bs, 8192);
    assert_int_equal(cfg.jobs[0].iodepth, 16);
    assert_int_equal(cfg.jobs[0].rw, RW_RANDREAD);
    assert_string_equal(cfg.jobs[1].name, "b");
    assert_int_equal(cfg.jobs[1].iodepth, 4);
    assert_int_equal(cfg.jobs[1].rw, RW_READ);      /* not a's */
    assert_int_equal(cfg.formats, OUTPUT_JSON);
    bench_config_free(&cfg);

    assert_int_equal(parse(&cfg, err, sizeof(err), "--name=a", "--nope=1",
                           NULL), -1);
    assert_string_equal(err, "unrecognized option '--nope'");
    bench_config_free(&cfg);
    assert_int_equal(parse(&cfg, err, sizeof(err), "--name=a",
                           "--runtim=1", NULL), -1);
    assert_string_equal(err, "unrecognized option '--runtim' (did you mean "
                        "--runtime?)");
    bench_config_free(&cfg);
    assert_int_equal(parse(&cfg, err, sizeof(err), "--output-format=xml",
                           NULL), -1);
    bench_config_free(&cfg);
}

static void test_job_file(void **state)
{
    char path[] = "/tmp/coblk-jobfile-XXXXXX";
    int fd = mkstemp(path);
    const char *text =
        "; a comment\n"
        "# another\n"
        "[global]\n"
        "ioengine=null\n"
        "bs = 16k ; a trailing comment\n"
        "verify_pattern=\"a#b\"\t# a # inside a value stays\n"
        "size=${COBLK_TEST_SIZE}\n"
        "\n"
        "[reader]\n"
        "rw=randread\n"
        "iodepth=8\n"
        "time_based\n"
        "runtime=5\n"
        "[writer]\n"
        "rw=write\n";
    struct bench_config cfg;
    char err[256];

    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    setenv("COBLK_TEST_SIZE", "32M", 1);
    assert_int_equal(parse(&cfg, err, sizeof(err), path, NULL), 0);
    assert_int_equal(cfg.nr_jobs, 2);
    assert_string_equal(cfg.jobs[0].name, "reader");
    assert_int_equal(cfg.jobs[0].engine, ENGINE_NULL);
    assert_int_equal(cfg.jobs[0].bs, 16384);
    assert_int_equal(cfg.jobs[0].verify_pattern_len, 3);
    assert_memory_equal(cfg.jobs[0].verify_pattern, "a#b", 3);
    assert_int_equal(cfg.jobs[0].size, 32 << 20);
    assert_int_equal(cfg.jobs[0].iodepth, 8);
    assert_true(cfg.jobs[0].time_based);
    assert_string_equal(cfg.jobs[1].name, "writer");
    assert_int_equal(cfg.jobs[1].rw, RW_WRITE);
    assert_int_equal(cfg.jobs[1].iodepth, 1);
    assert_false(cfg.jobs[1].time_based);
    bench_config_free(&cfg);

    /* A bad line names the file and line. */
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, "[j]\nbs=zz\n", 10), 10);
    close(fd);
    assert_int_equal(parse(&cfg, err, sizeof(err), path, NULL), -1);
    assert_non_null(strstr(err, "bs: invalid size 'zz'"));
    assert_non_null(strstr(err, ":2)"));
    bench_config_free(&cfg);

    /* An unknown option: where, as fio names it, and the likely one. */
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, "[j]\nrw=read\n iodepht = 4\n", 25), 25);
    close(fd);
    assert_int_equal(parse(&cfg, err, sizeof(err), path, NULL), -1);
    char want[128];
    snprintf(want, sizeof(want), "%s:3: unknown option 'iodepht' (did you "
             "mean iodepth?)", path);
    assert_string_equal(err, want);
    bench_config_free(&cfg);
    unlink(path);

    assert_int_equal(parse(&cfg, err, sizeof(err), "/nonexistent.fio", NULL),
                     -1);
    assert_non_null(strstr(err, "failed to open job file"));
    bench_config_free(&cfg);
}

/* Writes text into dir/name. */
static void put_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* include FILE, as fio: found as named, else beside the including file;
 * nested; no sections in it; a loop stops.  '-' reads standard input.
 * --showcmd's line holds every job option in order; --warnings-fatal
 * turns an ignored option into an error. */
static void test_job_file_includes_stdin_showcmd(void **state)
{
    struct bench_config cfg;
    char err[512], dir[] = "/tmp/coblk-inc-XXXXXX", main_fio[600];

    (void)state;
    assert_non_null(mkdtemp(dir));
    put_file(dir, "depth.fio", "iodepth=4\n");
    put_file(dir, "glob.fio", "bs=8k\ninclude depth.fio\n");
    put_file(dir, "main.fio", "[global]\nioengine=null\ninclude glob.fio\n"
             "[t]\nrw=randread\n[u]\ntime_based\n");
    snprintf(main_fio, sizeof(main_fio), "%s/main.fio", dir);
    assert_int_equal(parse(&cfg, err, sizeof(err), "--showcmd", main_fio,
                           NULL), 0);
    assert_int_equal(cfg.nr_jobs, 2);
    assert_int_equal(cfg.jobs[0].bs, 8192);
    assert_int_equal(cfg.jobs[0].iodepth, 4);
    assert_int_equal(cfg.jobs[1].iodepth, 4);
    assert_true(cfg.show_cmd);
    assert_string_equal(cfg.cmd, " --ioengine=null --bs=8k --iodepth=4 "
                        "--name=t --rw=randread --name=u --time_based");
    bench_config_free(&cfg);

    put_file(dir, "sect.fio", "[x]\n");
    put_file(dir, "bad.fio", "[t]\ninclude sect.fio\n");
    snprintf(main_fio, sizeof(main_fio), "%s/bad.fio", dir);
    assert_int_equal(parse(&cfg, err, sizeof(err), main_fio, NULL), -1);
    assert_non_null(strstr(err, "sect.fio:1: no new sections in included "
                           "files"));
    bench_config_free(&cfg);
    put_file(dir, "self.fio", "include self.fio\n");
    put_file(dir, "loop.fio", "[t]\ninclude self.fio\n");
    snprintf(main_fio, sizeof(main_fio), "%s/loop.fio", dir);
    assert_int_equal(parse(&cfg, err, sizeof(err), main_fio, NULL), -1);
    assert_non_null(strstr(err, "more than 16 includes deep"));
    bench_config_free(&cfg);
    put_file(dir, "missing.fio", "[t]\ninclude nosuch.fio\n");
    snprintf(main_fio, sizeof(main_fio), "%s/missing.fio", dir);
    assert_int_equal(parse(&cfg, err, sizeof(err), main_fio, NULL), -1);
    assert_non_null(strstr(err, "nosuch.fio' job file: No such file"));
    bench_config_free(&cfg);

    /* Standard input: a job file given as '-'. */
    put_file(dir, "plain.fio", "[t]\nrw=read\n[u]\nrw=write\n");
    snprintf(main_fio, sizeof(main_fio), "%s/plain.fio", dir);
    FILE *saved = stdin;
    stdin = fopen(main_fio, "r");
    assert_non_null(stdin);
    assert_int_equal(parse(&cfg, err, sizeof(err), "-", NULL), 0);
    fclose(stdin);
    stdin = saved;
    assert_int_equal(cfg.nr_jobs, 2);
    assert_string_equal(cfg.jobs[1].name, "u");
    bench_config_free(&cfg);

    assert_int_equal(parse(&cfg, err, sizeof(err), "--name=j", "--hipri",
                           NULL), 0);
    assert_int_equal(bench_check_warnings(&cfg, err, sizeof(err)), 0);
    bench_config_free(&cfg);
    assert_int_equal(parse(&cfg, err, sizeof(err), "--warnings-fatal",
                           "--name=j", "--hipri", NULL), 0);
    assert_int_equal(bench_check_warnings(&cfg, err, sizeof(err)), -1);
    assert_string_equal(err, "hipri: not supported by coblk, and "
                        "--warnings-fatal makes that an error");
    bench_config_free(&cfg);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_values_in_depth(void **state)
{
    struct job job;
    char err[256];

    bench_job_defaults(&job);
    assert_int_equal(bench_set_option(&job, "bssplit", "4k/10:64k/50:32k:8k",
                                      err, sizeof(err)), 0);
    assert_int_equal(job.bssplit[0][0].pct, 10);
    assert_int_equal(job.bssplit[0][1].bs, 65536);
    assert_int_equal(job.bssplit[0][2].pct + job.bssplit[0][3].pct, 40);
    assert_int_equal(bench_job_finish(&job, err, sizeof(err)), 0);
    assert_int_equal(job.bs_min, 4096);
    assert_int_equal(job.bs_max, 65536);

    assert_int_equal(bench_set_option(&job, "verify_pattern", "0xdeadbeef",
                                      err, sizeof(err)), 0);
    assert_memory_equal(job.verify_pattern, "\xde\xad\xbe\xef", 4);
    assert_int_equal(bench_set_option(&job, "percentile_list", "50:99.5",
                                      err, sizeof(err)), 0);
    assert_true(job.percentiles[1] == 99.5);
    assert_int_equal(bench_set_option(&job, "random_distribution",
                                      "zipf:0.8", err, sizeof(err)), 0);
    assert_true(job.zipf_theta == 0.8);

    /* Without a prefix, the job's name, once the job has one (a
     * [global] write_bw_log gives each job its own, as fio's t0023
     * wants). */
    assert_int_equal(bench_set_option(&job, "write_lat_log", NULL, err,
                                      sizeof(err)), 0);
    snprintf(job.name, sizeof(job.name), "lj");
    assert_int_equal(bench_job_finish(&job, err, sizeof(err)), 0);
    assert_string_equal(job.lat_log, "lj");
    assert_int_equal(bench_set_option(&job, "write_bw_log", "/tmp/x", err,
                                      sizeof(err)), 0);
    assert_string_equal(job.bw_log, "/tmp/x");

    /* Combinations that cannot run. */
    bench_job_defaults(&job);
    job.verify = VERIFY_CRC32C;
    job.engine = ENGINE_NULL;
    assert_int_equal(bench_job_finish(&job, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not ioengine=null"));
    job.engine = ENGINE_IO_URING;
    job.rw = RW_TRIM;
    assert_int_equal(bench_job_finish(&job, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "verify does not apply to rw=trim"));
    bench_job_defaults(&job);
    job.verify_only = true;
    assert_int_equal(bench_job_finish(&job, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "verify_only needs verify="));
    bench_job_defaults(&job);
    job.iodepth = 4;
    job.iodepth_batch_submit = 16;
    assert_int_equal(bench_job_finish(&job, err, sizeof(err)), 0);
    assert_int_equal(job.iodepth_batch_submit, 4);
}

/* A job with the options, finished: 0, or -1 with the message in err. */
static int finish_with(struct job *job, const char *const opts[], char *err,
                       size_t err_size)
{
    bench_job_defaults(job);
    snprintf(job->name, sizeof(job->name), "p");
    for (unsigned i = 0; opts[i]; i++) {
        char item[256];
        snprintf(item, sizeof(item), "%s", opts[i]);
        char *eq = strchr(item, '=');
        *eq = '\0';
        assert_int_equal(bench_set_option(job, item, eq + 1, err, err_size),
                         0);
    }
    return bench_job_finish(job, err, err_size);
}

/* What runs: the job's priority (fio's ioprio_value()), and per
 * direction the choices and the priorities kept apart, the job's first;
 * the combinations fio's engines refuse. */
static void test_priorities_finished(void **state)
{
    struct job job;
    char err[256];

    /* fio's examples/cmdprio-bssplit.fio, [cmdprio-adv-def]. */
    assert_int_equal(finish_with(&job, (const char *[]){
        "ioengine=libaio", "rw=randrw", "prioclass=2", "prio=7",
        "cmdprio_bssplit=64k/25/1/1:64k/75/3/2:1024k/0,1024k/0", NULL },
        err, sizeof(err)), 0);
    assert_int_equal(job.ioprio, 2 << 13 | 7);
    assert_int_equal(job.nr_prio_values[0], 3);
    assert_int_equal(job.prio_values[0][0], 2 << 13 | 7);
    assert_int_equal(job.prio_values[0][1], 1 << 13 | 1);
    assert_int_equal(job.prio_values[0][2], 3 << 13 | 2);
    assert_int_equal(job.nr_prio_choices[0], 2);
    assert_int_equal(job.prio_choices[0][1].bs, 65536);
    assert_int_equal(job.prio_choices[0][1].pct, 75);
    assert_int_equal(job.prio_choices[0][1].index, 2);
    assert_int_equal(job.nr_prio_values[1], 0);      /* writes: 1024k/0 */

    /* The simple format takes cmdprio_class and cmdprio; class 0 of
     * prioclass is best-effort, as fio's. */
    assert_int_equal(finish_with(&job, (const char *[]){
        "ioengine=io_uring", "rw=randwrite", "prio=3",
        "cmdprio_bssplit=64k/100", "cmdprio_class=3", "cmdprio=4", NULL },
        err, sizeof(err)), 0);
    assert_int_equal(job.ioprio, 2 << 13 | 3);
    assert_int_equal(job.nr_prio_values[0], 0);      /* no reads */
    assert_int_equal(job.nr_prio_values[1], 2);
    assert_int_equal(job.prio_choices[1][0].ioprio, 3 << 13 | 4);

    /* cmdprio_percentage: real-time unless told; no prio=: 0, the
     * thread's own. */
    assert_int_equal(finish_with(&job, (const char *[]){
        "ioengine=libaio", "rw=randread", "cmdprio_percentage=50", NULL },
        err, sizeof(err)), 0);
    assert_int_equal(job.ioprio, 0);
    assert_int_equal(job.nr_prio_choices[0], 1);
    assert_int_equal(job.prio_choices[0][0].bs, 0);
    assert_int_equal(job.prio_values[0][1], 1 << 13);
    assert_false(job.prio_given);

    assert_int_equal(finish_with(&job, (const char *[]){
        "ioengine=libaio", "cmdprio_percentage=50",
        "cmdprio_bssplit=4k/10", NULL }, err, sizeof(err)), -1);
    assert_string_equal(err, "p: cmdprio_percentage and cmdprio_bssplit "
                        "options are mutually exclusive");
    assert_int_equal(finish_with(&job, (const char *[]){
        "ioengine=psync", "cmdprio_class=2", NULL }, err, sizeof(err)), -1);
    assert_string_equal(err, "p: cmdprio_class is an option of the io_uring "
                        "and libaio engines, not of ioengine=psync");
}

/* fio's batches: submit 0 is the iodepth, none above it, a maximum
 * below the minimum is raised to it; ours: no maximum by default. */
static void test_batches(void **state)
{
    struct job job;
    char err[256];

    bench_job_defaults(&job);
    assert_int_equal(job.iodepth_batch_submit, 1);
    assert_int_equal(job.iodepth_batch_complete_min, 1);
    assert_int_equal(job.iodepth_batch_complete_max, 0);
    job.iodepth = 32;
    job.iodepth_batch_submit = 0;
    job.iodepth_batch_complete_max = 64;
    assert_int_equal(bench_job_finish(&job, err, sizeof(err)), 0);
    assert_int_equal(job.iodepth_batch_submit, 32);
    assert_int_equal(job.iodepth_batch_complete_max, 32);
    job.iodepth_batch_complete_min = 8;
    job.iodepth_batch_complete_max = 4;
    assert_int_equal(bench_job_finish(&job, err, sizeof(err)), 0);
    assert_int_equal(job.iodepth_batch_complete_max, 8);
    job.iodepth_batch_complete_max = 0;
    assert_int_equal(bench_job_finish(&job, err, sizeof(err)), 0);
    assert_int_equal(job.iodepth_batch_complete_max, 0);
}

static void assert_disabled(const struct job *job, bool lat, bool clat,
                            bool slat, bool bw)
{
    assert_int_equal(job->disable_lat, lat);
    assert_int_equal(job->disable_clat, clat);
    assert_int_equal(job->disable_slat, slat);
    assert_int_equal(job->disable_bw, bw);
}

/* gtod_reduce=1 sets every disable_*, in the order given, as fio's
 * callback does; =0 leaves them alone. */
static void test_gtod_reduce(void **state)
{
    struct bench_config cfg;
    char err[256];

    assert_int_equal(parse(&cfg, err, sizeof(err), "--name=a", NULL), 0);
    assert_disabled(&cfg.jobs[0], false, false, false, false);
    assert_false(cfg.jobs[0].gtod_reduce);
    bench_config_free(&cfg);
    assert_int_equal(parse(&cfg, err, sizeof(err), "--gtod_reduce=1",
                           "--name=a", "--name=b", "--disable_clat=0", NULL),
                     0);
    assert_disabled(&cfg.jobs[0], true, true, true, true);
    assert_true(cfg.jobs[0].gtod_reduce);
    assert_disabled(&cfg.jobs[1], true, false, true, true);
    bench_config_free(&cfg);
    assert_int_equal(parse(&cfg, err, sizeof(err), "--name=a",
                           "--disable_slat", "--gtod_reduce=0", NULL), 0);
    assert_disabled(&cfg.jobs[0], false, false, true, false);
    assert_false(cfg.jobs[0].gtod_reduce);
    bench_config_free(&cfg);
}

/* One line per unsupported option turned on anywhere, once. */
static void test_unsupported_warned_once(void **state)
{
    struct bench_config cfg;
    char err[256], *text = NULL;
    size_t len = 0;

    assert_int_equal(parse(&cfg, err, sizeof(err), "--fixedbufs",
                           "--registerfiles", "--name=a", "--hipri",
                           "--sqthread_poll=0", "--name=b", "--hipri=1",
                           "--nonvectored=0", "--userspace_reap", NULL), 0);
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    bench_warn_unsupported(&cfg, out);
    assert_int_equal(fclose(out), 0);
    assert_string_equal(text, "coblk-bench: hipri: not supported by coblk, "
                        "ignored\n");
    free(text);
    bench_config_free(&cfg);
}

static void test_program_options(void **state)
{
    struct bench_config cfg;
    char err[256];

    assert_int_equal(parse(&cfg, err, sizeof(err), "--output-format=json+,"
                           "normal", "--eta=never", "--eta-interval=500ms",
                           "--status-interval=2", "--plot=/tmp/p.svg",
                           "--name=a", NULL), 0);
    assert_int_equal(cfg.formats, OUTPUT_JSON_PLUS | OUTPUT_NORMAL);
    assert_int_equal(cfg.eta, ETA_NEVER);
    assert_int_equal(cfg.eta_interval_ns, 500000000);
    assert_int_equal(cfg.status_interval_ns, 2000000000);
    assert_string_equal(cfg.plot, "/tmp/p.svg");
    bench_config_free(&cfg);

    assert_int_equal(parse(&cfg, err, sizeof(err), "--minimal", "--name=a",
                           NULL), 0);
    assert_int_equal(cfg.formats, OUTPUT_TERSE);
    assert_int_equal(cfg.eta_interval_ns, 1000000000);   /* fio's default */
    bench_config_free(&cfg);
    /* --append-terse: terse lines beside the normal output only. */
    assert_int_equal(parse(&cfg, err, sizeof(err), "--append-terse",
                           "--name=a", NULL), 0);
    assert_int_equal(cfg.formats, OUTPUT_NORMAL | OUTPUT_TERSE);
    bench_config_free(&cfg);
    assert_int_equal(parse(&cfg, err, sizeof(err), "--append-terse",
                           "--output-format=json", "--name=a", NULL), 0);
    assert_int_equal(cfg.formats, OUTPUT_JSON);
    bench_config_free(&cfg);

    static const char *const bad[][2] = {
        { "--output-format=json,xml", "got 'xml'" },
        { "--eta=sometimes", "eta: expected auto, always or never" },
        { "--status-interval=10ms", "at least 1000ms" },
        { "--terse-version=2", "only 3" },
        { "--section=", "section: needs a job name" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse(&cfg, err, sizeof(err), bad[i][0], NULL), -1);
        if (!strstr(err, bad[i][1])) {
            fail_msg("%s: expected \"%s\", got \"%s\"", bad[i][0], bad[i][1],
                     err);
        }
        bench_config_free(&cfg);
    }
}

/* "job options" and "global options" as fio shows them: given with a
 * value, as typed, a repeated one replacing the first. */
static void given_string(const struct job *job, char *out, size_t size)
{
    size_t pos = 0, used = 0;
    const char *name, *value;

    out[0] = '\0';
    while (bench_given_next(job, &pos, &name, &value) && used < size) {
        used += (size_t)snprintf(out + used, size - used, "%s%s=%s",
                                 used ? " " : "", name, value);
    }
}

static void test_options_as_given(void **state)
{
    struct bench_config cfg;
    char err[256], text[512];

    assert_int_equal(parse(&cfg, err, sizeof(err), "--bs=8k", "--name=j",
                           "--ioengine=null", "--size=16m", "--time_based",
                           "--bs=4k", "--size=1g", NULL), 0);
    given_string(&cfg.global, text, sizeof(text));
    assert_string_equal(text, "bs=8k");
    given_string(&cfg.jobs[0], text, sizeof(text));
    assert_string_equal(text, "name=j ioengine=null bs=4k size=1g");
    bench_config_free(&cfg);

    /* In a job file, name= renames the section's job (fio), and the
     * section's name is not an option given. */
    char path[] = "/tmp/coblk-given-XXXXXX";
    int fd = mkstemp(path);
    const char *file = "[a]\nioengine=null\nname=b\nbs=8k\n[c]\n";
    assert_int_equal(write(fd, file, strlen(file)), (ssize_t)strlen(file));
    close(fd);
    assert_int_equal(parse(&cfg, err, sizeof(err), path, NULL), 0);
    assert_int_equal(cfg.nr_jobs, 2);
    assert_string_equal(cfg.jobs[0].name, "b");
    assert_int_equal(cfg.jobs[0].bs, 8192);
    given_string(&cfg.jobs[0], text, sizeof(text));
    assert_string_equal(text, "ioengine=null name=b bs=8k");
    assert_string_equal(cfg.jobs[1].name, "c");
    assert_int_equal(cfg.jobs[1].given_len, 0);
    bench_config_free(&cfg);
    unlink(path);
}

static void test_groups_and_sections(void **state)
{
    struct bench_config cfg;
    char err[256];

    assert_int_equal(parse(&cfg, err, sizeof(err), "--name=a", "--name=b",
                           "--name=c", "--stonewall", "--name=d",
                           "--new_group", "--name=e", NULL), 0);
    assert_int_equal(cfg.nr_jobs, 5);
    assert_int_equal(cfg.nr_groups, 3);
    assert_int_equal(cfg.jobs[1].groupid, 0);
    assert_int_equal(cfg.jobs[2].groupid, 1);
    assert_int_equal(cfg.jobs[3].groupid, 2);
    assert_int_equal(cfg.jobs[4].groupid, 2);
    bench_config_free(&cfg);

    assert_int_equal(parse(&cfg, err, sizeof(err), "--section=b",
                           "--section=d", "--name=a", "--name=b", "--name=c",
                           "--name=d", NULL), 0);
    assert_int_equal(cfg.nr_jobs, 2);
    assert_string_equal(cfg.jobs[0].name, "b");
    assert_string_equal(cfg.jobs[1].name, "d");
    bench_config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_option_values),
        cmocka_unit_test(test_sync_engines_cap_the_depth),
        cmocka_unit_test(test_cpu_sets_and_binding),
        cmocka_unit_test(test_directory_and_filesize),
        cmocka_unit_test(test_fill_device_takes_the_free_space),
        cmocka_unit_test(test_command_line_jobs_inherit_globals),
        cmocka_unit_test(test_job_file),
        cmocka_unit_test(test_values_in_depth),
        cmocka_unit_test(test_batches),
        cmocka_unit_test(test_gtod_reduce),
        cmocka_unit_test(test_unsupported_warned_once),
        cmocka_unit_test(test_program_options),
        cmocka_unit_test(test_job_file_includes_stdin_showcmd),
        cmocka_unit_test(test_options_as_given),
        cmocka_unit_test(test_groups_and_sections),
        cmocka_unit_test(test_priorities_finished),
    };

    return cmocka_run_group_tests_name("bench-options", tests, NULL, NULL);
}
