/*
 * coblk-bench's log files, line by line as fio writes them: a line per
 * I/O, means per window with log_avg_msec, bandwidth and IOPS windows,
 * fio's file names, the error for a log that cannot be written, and logs
 * stored compressed (fio's .fz, read back by --inflate-log).
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

#include "bench/logs.h"

static char dir[64];

static int make_dir(void **state)
{
    snprintf(dir, sizeof(dir), "/tmp/coblk-test-logs.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* A job that logs to dir/PREFIX with the given kinds. */
static struct job log_job(const char *prefix, bool lat, bool bw, bool iops,
                          uint64_t avg_ms)
{
    struct job job;
    char path[256];

    memset(&job, 0, sizeof(job));
    snprintf(path, sizeof(path), "%s/%s", dir, prefix);
    snprintf(job.lat_log, sizeof(job.lat_log), "%s", lat ? path : "");
    snprintf(job.bw_log, sizeof(job.bw_log), "%s", bw ? path : "");
    snprintf(job.iops_log, sizeof(job.iops_log), "%s", iops ? path : "");
    job.log_avg_msec = avg_ms;
    job.per_job_logs = true;
    return job;
}

/* The whole of dir/name, or NULL when there is no such file. */
static char *slurp(const char *name)
{
    char path[256];
    static char text[4096];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f) {
        return NULL;
    }
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    fclose(f);
    return text;
}

static void open_logs(struct job_logs *logs, const struct job *job,
                      unsigned index)
{
    char err[256];

    if (logs_open(logs, job, index, err, sizeof(err)) < 0) {
        fail_msg("logs_open: %s", err);
    }
}

static void close_logs(struct job_logs *logs, uint64_t t_ms)
{
    char err[256];

    if (logs_close(logs, t_ms, err, sizeof(err)) < 0) {
        fail_msg("logs_close: %s", err);
    }
}

static void test_line_per_io(void **state)
{
    struct job job = log_job("a", true, false, false, 0);
    struct job_logs logs;

    open_logs(&logs, &job, 1);
    logs_io(&logs, 5, 0, 4096, 0, 0, 100, 2000, 2100);
    logs_io(&logs, 7, 1, 8192, 4096, 0, 150, 3000, 3150);
    logs_io(&logs, 9, 2, 4096, 12288, 0, 10, 20, 30);
    close_logs(&logs, 10);
    assert_string_equal(slurp("a_lat.1.log"), "5, 2100, 0, 4096, 0\n"
                        "7, 3150, 1, 8192, 0\n"
                        "9, 30, 2, 4096, 0\n");
    assert_string_equal(slurp("a_clat.1.log"), "5, 2000, 0, 4096, 0\n"
                        "7, 3000, 1, 8192, 0\n"
                        "9, 20, 2, 4096, 0\n");
    assert_string_equal(slurp("a_slat.1.log"), "5, 100, 0, 4096, 0\n"
                        "7, 150, 1, 8192, 0\n"
                        "9, 10, 2, 4096, 0\n");
    assert_null(slurp("a_bw.1.log"));
    assert_null(slurp("a_iops.1.log"));
}

/* log_avg_msec: the mean of each direction's I/Os in each window, at the
 * window's end; the last, partial window at the close. */
static void test_window_means(void **state)
{
    struct job job = log_job("b", true, false, false, 100);
    struct job_logs logs;

    open_logs(&logs, &job, 3);
    logs_io(&logs, 10, 0, 4096, 0, 0, 10, 900, 1000);
    logs_io(&logs, 50, 0, 4096, 0, 0, 30, 2900, 3000);
    logs_io(&logs, 60, 1, 8192, 0, 0, 5, 495, 500);
    logs_io(&logs, 120, 0, 4096, 0, 0, 70, 6930, 7000);
    logs_io(&logs, 330, 1, 4096, 0, 0, 1, 1, 2);
    close_logs(&logs, 350);
    assert_string_equal(slurp("b_lat.3.log"), "100, 2000, 0, 4096, 0\n"
                        "100, 500, 1, 8192, 0\n"
                        "200, 7000, 0, 4096, 0\n"
                        "350, 2, 1, 4096, 0\n");
    assert_string_equal(slurp("b_slat.3.log"), "100, 20, 0, 4096, 0\n"
                        "100, 5, 1, 8192, 0\n"
                        "200, 70, 0, 4096, 0\n"
                        "350, 1, 1, 4096, 0\n");
}

/* As fio without log_avg_msec: a line per I/O, bandwidth its size over
 * its completion latency, IOPS 1; with log_offset, the offset column;
 * with per_job_logs=0, no instance number in the name. */
static void test_bandwidth_and_iops_per_io(void **state)
{
    struct job job = log_job("e", false, true, true, 0);
    struct job_logs logs;

    job.log_offset = true;
    job.per_job_logs = false;
    open_logs(&logs, &job, 2);
    logs_io(&logs, 3, 0, 4096, 8192, 0, 10, 4000, 4010);
    logs_io(&logs, 4, 1, 65536, 0, 0, 10, 0, 10);
    logs_window(&logs, 500, 0, 4096, 1234.5, 308.6);    /* none */
    close_logs(&logs, 500);
    assert_string_equal(slurp("e_bw.log"), "3, 1024000, 0, 4096, 8192, 0\n"
                        "4, 0, 1, 65536, 0, 0\n");
    assert_string_equal(slurp("e_iops.log"), "3, 1, 0, 4096, 8192, 0\n"
                        "4, 1, 1, 65536, 0, 0\n");
    assert_null(slurp("e_bw.2.log"));
}

static void test_bandwidth_and_iops(void **state)
{
    struct job job = log_job("c", false, true, true, 500);
    struct job_logs logs;

    open_logs(&logs, &job, 2);
    logs_window(&logs, 500, 0, 4096, 1234.5, 308.6);
    logs_window(&logs, 500, 1, 65536, 99.4, 1.2);
    logs_io(&logs, 600, 0, 4096, 0, 0, 1, 2, 3);    /* no latency log: none */
    logs_window(&logs, 1000, 0, 4096, 0, 0);
    close_logs(&logs, 1000);
    assert_string_equal(slurp("c_bw.2.log"), "500, 1235, 0, 4096, 0\n"
                        "500, 99, 1, 65536, 0\n"
                        "1000, 0, 0, 4096, 0\n");
    assert_string_equal(slurp("c_iops.2.log"), "500, 309, 0, 4096, 0\n"
                        "500, 1, 1, 65536, 0\n"
                        "1000, 0, 0, 4096, 0\n");
    assert_null(slurp("c_lat.2.log"));
}

/* log_store_compressed: NAME.log.fz, samples in zlib chunks of about
 * log_compression bytes (3 samples of 40 here: 3 chunks for 7, which
 * fio's own --inflate-log reads too: bench.sh), which logs_inflate()
 * prints as the plain log would read. */
static void test_stored_compressed(void **state)
{
    struct job job = log_job("z", true, false, false, 0);
    struct job_logs logs;
    char path[256], err[256];

    job.log_offset = true;
    job.log_store_compressed = true;
    job.log_compression = 130;
    open_logs(&logs, &job, 1);
    for (uint64_t i = 0; i < 7; i++) {
        logs_io(&logs, i, (int)(i % 2), 4096, i << 12, 0, 1, 10 + i,
                100 + i);
    }
    close_logs(&logs, 7);
    assert_null(slurp("z_lat.1.log"));
    snprintf(path, sizeof(path), "%s/z_clat.1.log.fz", dir);
    FILE *out = tmpfile();
    assert_int_equal(logs_inflate(path, out, err, sizeof(err)), 0);
    rewind(out);
    char text[1024];
    text[fread(text, 1, sizeof(text) - 1, out)] = '\0';
    fclose(out);
    assert_string_equal(text, "0, 10, 0, 4096, 0, 0\n1, 11, 1, 4096, 4096, 0\n"
                        "2, 12, 0, 4096, 8192, 0\n3, 13, 1, 4096, 12288, 0\n"
                        "4, 14, 0, 4096, 16384, 0\n5, 15, 1, 4096, 20480, 0\n"
                        "6, 16, 0, 4096, 24576, 0\n");
    /* Not a compressed log: an error that says so. */
    snprintf(path, sizeof(path), "%s/z_plain", dir);
    FILE *f = fopen(path, "w");
    fputs("0, 1, 0, 4096, 0\n", f);
    fclose(f);
    out = tmpfile();
    assert_int_equal(logs_inflate(path, out, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a log stored compressed"));
    fclose(out);
}

/* The priority column as fio 3.33 writes it: 1 for a real-time I/O and
 * 0 for others, or with log_prio=1 the I/O's priority (0x%04x), in plain
 * and in stored compressed logs alike. */
static void test_priority_column(void **state)
{
    struct job job = log_job("p", true, false, false, 0);
    struct job_logs logs;
    char path[256], err[256], text[256];

    open_logs(&logs, &job, 1);
    logs_io(&logs, 1, 0, 4096, 0, 1 << 13 | 1, 1, 2, 3);
    logs_io(&logs, 2, 1, 4096, 0, 3 << 13 | 2, 1, 2, 3);
    close_logs(&logs, 3);
    assert_string_equal(slurp("p_clat.1.log"), "1, 2, 0, 4096, 1\n"
                        "2, 2, 1, 4096, 0\n");
    job.log_prio = true;
    open_logs(&logs, &job, 2);
    logs_io(&logs, 1, 0, 4096, 0, 1 << 13 | 1, 1, 2, 3);
    logs_io(&logs, 2, 1, 4096, 0, 0, 1, 2, 3);
    close_logs(&logs, 3);
    assert_string_equal(slurp("p_clat.2.log"), "1, 2, 0, 4096, 0x2001\n"
                        "2, 2, 1, 4096, 0x0000\n");
    job.log_store_compressed = true;
    open_logs(&logs, &job, 3);
    logs_io(&logs, 1, 0, 4096, 0, 2 << 13 | 7, 1, 2, 3);
    close_logs(&logs, 3);
    snprintf(path, sizeof(path), "%s/p_clat.3.log.fz", dir);
    FILE *out = tmpfile();
    assert_int_equal(logs_inflate(path, out, err, sizeof(err)), 0);
    rewind(out);
    text[fread(text, 1, sizeof(text) - 1, out)] = '\0';
    fclose(out);
    assert_string_equal(text, "1, 2, 0, 4096, 0x4007\n");
}

static void test_unwritable(void **state)
{
    struct job job;
    struct job_logs logs;
    char err[256];

    memset(&job, 0, sizeof(job));
    job.per_job_logs = true;
    snprintf(job.bw_log, sizeof(job.bw_log), "%s/missing/d", dir);
    assert_int_equal(logs_open(&logs, &job, 1, err, sizeof(err)), -1);
    char want[256];
    snprintf(want, sizeof(want), "cannot write log %s/missing/d_bw.1.log: "
             "No such file or directory", dir);
    assert_string_equal(err, want);
    assert_int_equal(logs_close(&logs, 0, err, sizeof(err)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_per_io),
        cmocka_unit_test(test_bandwidth_and_iops_per_io),
        cmocka_unit_test(test_window_means),
        cmocka_unit_test(test_bandwidth_and_iops),
        cmocka_unit_test(test_stored_compressed),
        cmocka_unit_test(test_priority_column),
        cmocka_unit_test(test_unwritable),
    };

    return cmocka_run_group_tests_name("bench-logs", tests, make_dir,
                                       remove_dir);
}
