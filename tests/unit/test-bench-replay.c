/*
 * read_iolog=: fio's I/O logs read back (tools/bench/replay.c): both
 * versions, their pacing, what replay_* options change, and every way a
 * log can be wrong.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "bench/replay.h"

static char log_path[64];

/* A log file holding text; its path in log_path. */
static void write_log(const char *text)
{
    snprintf(log_path, sizeof(log_path), "/tmp/coblk-replay-XXXXXX");
    int fd = mkstemp(log_path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static void expect_io(struct replay *r, int kind, uint64_t offset,
                      uint64_t bytes, uint64_t due_us)
{
    struct replay_io io;
    char err[256];

    assert_int_equal(replay_next(r, &io, err, sizeof(err)), 1);
    assert_int_equal(io.kind, kind);
    assert_int_equal(io.offset, offset);
    assert_int_equal(io.bytes, bytes);
    assert_int_equal(io.due_us, due_us);
}

static void expect_end(struct replay *r)
{
    struct replay_io io;
    char err[256];

    assert_int_equal(replay_next(r, &io, err, sizeof(err)), 0);
    replay_close(r);
    unlink(log_path);
}

/* Version 3: times from the first I/O, file lines skipped; datasync is a
 * sync; replay_time_scale=200 halves the times. */
static void test_version_3(void **state)
{
    struct replay_opts opts = { .time_scale = 100 };
    struct replay r;
    char err[256];

    (void)state;
    write_log("fio version 3 iolog\n0 /dev/x add\n0 /dev/x open\n"
              "100 /dev/x read 4096 8192\n350 /dev/x write 0 512\n"
              "400 /dev/x datasync 0 0\n900 /dev/x trim 1024 2048\n"
              "901 /dev/x close\n");
    assert_int_equal(replay_open(&r, log_path, &opts, err, sizeof(err)), 0);
    expect_io(&r, REPLAY_READ, 4096, 8192, 0);
    expect_io(&r, REPLAY_WRITE, 0, 512, 250);
    expect_io(&r, REPLAY_SYNC, 0, 0, 300);
    expect_io(&r, REPLAY_TRIM, 1024, 2048, 800);
    expect_end(&r);

    write_log("fio version 3 iolog\n10 f read 0 512\n410 f read 512 512\n");
    opts.time_scale = 200;
    assert_int_equal(replay_open(&r, log_path, &opts, err, sizeof(err)), 0);
    expect_io(&r, REPLAY_READ, 0, 512, 0);
    expect_io(&r, REPLAY_READ, 512, 512, 200);
    expect_end(&r);
}

/* Version 2: waits add up; replay_no_stall drops them; replay_skip,
 * replay_scale and replay_align act on what is left. */
static void test_version_2_and_options(void **state)
{
    struct replay_opts opts = { .time_scale = 100 };
    struct replay r;
    char err[256];

    (void)state;
    write_log("fio version 2 iolog\nf add\nf open\nf read 0 4096\n"
              "f wait 1000 0\nf write 8192 4096\nf wait 500 0\n"
              "f sync 0 0\nf close\n");
    assert_int_equal(replay_open(&r, log_path, &opts, err, sizeof(err)), 0);
    expect_io(&r, REPLAY_READ, 0, 4096, 0);
    expect_io(&r, REPLAY_WRITE, 8192, 4096, 1000);
    expect_io(&r, REPLAY_SYNC, 0, 0, 1500);
    expect_end(&r);

    write_log("fio version 2 iolog\nf add\nf read 8192 4096\nf wait 1000 0\n"
              "f write 16384 4096\nf read 5000 512\n");
    opts = (struct replay_opts){ .time_scale = 100, .no_stall = true,
                                 .skip = 1u << REPLAY_WRITE, .scale = 2,
                                 .align = 1024 };
    assert_int_equal(replay_open(&r, log_path, &opts, err, sizeof(err)), 0);
    expect_io(&r, REPLAY_READ, 4096, 4096, 0);
    expect_io(&r, REPLAY_READ, 2048, 512, 0);
    expect_end(&r);
}

/* The whole log summed up before the run: its file, kinds, sizes. */
static void test_scan(void **state)
{
    struct replay_opts opts = { .time_scale = 100 };
    struct replay_summary sum;
    char err[256];

    (void)state;
    write_log("fio version 3 iolog\n0 /d add\n1 /d read 0 4096\n"
              "2 /d write 1048576 65536\n3 /d sync 0 0\n");
    assert_int_equal(replay_scan(log_path, &opts, &sum, err, sizeof(err)), 0);
    assert_string_equal(sum.file, "/d");
    assert_int_equal(sum.kinds, (1u << REPLAY_READ) | (1u << REPLAY_WRITE) |
                                    (1u << REPLAY_SYNC));
    assert_int_equal(sum.ios, 3);
    assert_int_equal(sum.max_bytes, 65536);
    assert_int_equal(sum.end, 1048576 + 65536);
    unlink(log_path);
}

static void expect_scan_error(const char *text, const char *message,
                              bool redirect)
{
    struct replay_opts opts = { .time_scale = 100, .redirect = redirect };
    struct replay_summary sum;
    char err[512];

    write_log(text);
    assert_int_equal(replay_scan(log_path, &opts, &sum, err, sizeof(err)),
                     -1);
    if (!strstr(err, message)) {
        fail_msg("'%s' lacks '%s'", err, message);
    }
    unlink(log_path);
}

/* Every line checked, named by file and line; nothing read past what is
 * wrong. */
static void test_bad_logs(void **state)
{
    (void)state;
    expect_scan_error("blktrace\n", "no fio iolog of version 2 or 3", false);
    expect_scan_error("fio version 4 iolog\n", "no fio iolog", false);
    expect_scan_error("", "no fio iolog", false);
    expect_scan_error("fio version 2 iolog\nf add\nf jump 0 512\n",
                      ":3: not an iolog 2 line: f jump 0 512", false);
    expect_scan_error("fio version 3 iolog\nf read 0 512\n",
                      ":2: not an iolog 3 line", false);
    expect_scan_error("fio version 2 iolog\nf read 0\n",
                      ":2: not an iolog 2 line", false);
    expect_scan_error("fio version 2 iolog\nf read 100 512\n",
                      ":2: 512 bytes at 100: offsets and lengths must be",
                      false);
    expect_scan_error("fio version 2 iolog\nf read 0 0\n",
                      "must be non-zero multiples of 512", false);
    expect_scan_error("fio version 2 iolog\nf read 18446744073709551104 "
                      "1024\n", "offsets and lengths", false);
    expect_scan_error("fio version 2 iolog\na read 0 512\nb read 0 512\n",
                      "the log uses several files (a, b)", false);
    struct replay_opts opts = { .time_scale = 100 };
    struct replay r;
    char err[256];
    assert_int_equal(replay_open(&r, "/nonexistent.log", &opts, err,
                                 sizeof(err)), -1);
    assert_non_null(strstr(err, "cannot open '/nonexistent.log'"));
}

/* replay_redirect: a log of several files goes onto the one device. */
static void test_redirected(void **state)
{
    struct replay_opts opts = { .time_scale = 100, .redirect = true };
    struct replay_summary sum;
    char err[256];

    (void)state;
    write_log("fio version 2 iolog\na read 0 512\nb read 512 512\n");
    assert_int_equal(replay_scan(log_path, &opts, &sum, err, sizeof(err)), 0);
    assert_int_equal(sum.ios, 2);
    unlink(log_path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_3),
        cmocka_unit_test(test_version_2_and_options),
        cmocka_unit_test(test_scan),
        cmocka_unit_test(test_bad_logs),
        cmocka_unit_test(test_redirected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
