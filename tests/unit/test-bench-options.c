/*
 * coblk-bench option parsing: table-driven, values and errors as fio has
 * them, command lines and job files.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    { "iodepth", "32", AT(iodepth), 32, NULL },
    { "iodepth", "-1", AT(iodepth), 0, "iodepth: invalid number '-1'" },
    { "iodepth", "0", AT(iodepth), 0, "iodepth: 0 out of range" },
    { "runtime", "10", AT(runtime_ns), 10000000000ull, NULL },
    { "runtime", "500ms", AT(runtime_ns), 500000000, NULL },
    { "runtime", "2m", AT(runtime_ns), 120000000000ull, NULL },
    { "runtime", "5x", AT(runtime_ns), 0, "runtime: invalid time '5x'" },
    { "rw", "randread", AT(rw), RW_RANDREAD, NULL },
    { "readwrite", "randrw", AT(rw), RW_RANDRW, NULL },
    { "rw", "sideways", AT(rw), 0, "rw: invalid value 'sideways'" },
    { "ioengine", "null", AT(engine), ENGINE_NULL, NULL },
    { "ioengine", "libaio", AT(engine), 0, "invalid value 'libaio'" },
    { "direct", "1", AT(direct), 1, NULL },
    { "direct", "yes", AT(direct), 0, "direct: expected 0 or 1" },
    { "time_based", NULL, AT(time_based), 1, NULL },
    { "rwmixread", "70", AT(rwmixread), 70, NULL },
    { "rwmixread", "101", AT(rwmixread), 0, "out of range" },
    { "numjobs", "4", AT(numjobs), 4, NULL },
    { "bogus", "1", AT(bs), 0, "unrecognized option '--bogus'" },
    { "bs", NULL, AT(bs), 0, "option 'bs' needs a value" },
};

static uint64_t field_value(const struct job *job, size_t offset,
                            size_t size)
{
    const char *p = (const char *)job + offset;

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
    assert_int_equal(cfg.format, OUTPUT_JSON);
    bench_config_free(&cfg);

    assert_int_equal(parse(&cfg, err, sizeof(err), "--name=a", "--nope=1",
                           NULL), -1);
    assert_string_equal(err, "unrecognized option '--nope'");
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
        "bs = 16k\n"
        "size=${COBLK_TEST_SIZE}\n"
        "\n"
        "[reader]\n"
        "rw=randread\n"
        "iodepth=8\n"
        "time_based\n"
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
    unlink(path);

    assert_int_equal(parse(&cfg, err, sizeof(err), "/nonexistent.fio", NULL),
                     -1);
    assert_non_null(strstr(err, "failed to open job file"));
    bench_config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_option_values),
        cmocka_unit_test(test_command_line_jobs_inherit_globals),
        cmocka_unit_test(test_job_file),
    };

    return cmocka_run_group_tests_name("bench-options", tests, NULL, NULL);
}
