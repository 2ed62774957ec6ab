/*
 * coblk-bench's live status line: fio's layout, rates since the previous
 * line, the slowest instance's progress and time left.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bench/status.h"

#define SEC 1000000000ull

static void test_status_line(void **state)
{
    struct job job;
    struct job_result r[3];
    struct status_prev prev = { .t_ns = 10 * SEC };
    char line[256];

    bench_job_defaults(&job);
    job.rw = RW_RANDREAD;
    for (int i = 0; i < 3; i++) {
        bench_result_init(&r[i], &job, (unsigned)i);
        atomic_store(&r[i].progress.state, STATE_RUNNING);
        /* Time-based: 10 s from 10 s to 20 s. */
        atomic_store(&r[i].progress.end_ns, 20 * SEC);
    }
    atomic_store(&r[2].progress.state, STATE_DONE);
    atomic_store(&r[0].progress.ios[DIR_READ], 1000);
    atomic_store(&r[0].progress.bytes[DIR_READ], 1000 * 4096);
    atomic_store(&r[1].progress.ios[DIR_READ], 1000);
    atomic_store(&r[1].progress.bytes[DIR_READ], 1000 * 4096);

    status_line(line, sizeof(line), r, 3, 10 * SEC, 12 * SEC, &prev);
    assert_string_equal(line, "Jobs: 2 (f=2): [r(2),_(1)][20.0%]"
                              "[r=4000KiB/s][r=1000 IOPS][eta 00m:08s]");
    assert_int_equal(prev.ios[DIR_READ], 2000);
    assert_int_equal(prev.t_ns, 12 * SEC);

    /* Nothing new: no rates; size-based progress from the bytes done. */
    for (int i = 0; i < 2; i++) {
        atomic_store(&r[i].progress.end_ns, 0);
        atomic_store(&r[i].progress.total_bytes, 4000 * 4096);
    }
    atomic_store(&r[1].progress.state, STATE_VERIFYING);
    status_line(line, sizeof(line), r, 3, 10 * SEC, 14 * SEC, &prev);
    assert_string_equal(line, "Jobs: 2 (f=2): [r(1),V(1),_(1)][25.0%][-]"
                              "[- IOPS][eta 00m:12s]");

    /* fio's letters: upper case sequential, lower case random; a mix of
     * all reads or all writes is those; trims are D; ramping is '/'. */
    static const struct {
        enum rw_mode rw;
        unsigned rwmixread;
        char letter;
    } letters[] = {
        { RW_READ, 50, 'R' }, { RW_RANDREAD, 50, 'r' },
        { RW_WRITE, 50, 'W' }, { RW_RANDWRITE, 50, 'w' },
        { RW_RW, 50, 'M' }, { RW_RANDRW, 50, 'm' }, { RW_RW, 100, 'R' },
        { RW_RANDRW, 0, 'w' }, { RW_TRIM, 50, 'D' }, { RW_RANDTRIM, 50, 'd' },
    };
    for (size_t i = 0; i < sizeof(letters) / sizeof(letters[0]); i++) {
        struct job_result one;
        char want[32];
        job.rw = letters[i].rw;
        job.rwmixread = letters[i].rwmixread;
        bench_result_init(&one, &job, 0);
        atomic_store(&one.progress.state, STATE_RUNNING);
        status_line(line, sizeof(line), &one, 1, 10 * SEC, 16 * SEC, &prev);
        snprintf(want, sizeof(want), "Jobs: 1 (f=1): [%c(1)]",
                 letters[i].letter);
        assert_memory_equal(line, want, strlen(want));
        atomic_store(&one.progress.state, STATE_RAMP);
        status_line(line, sizeof(line), &one, 1, 10 * SEC, 16 * SEC, &prev);
        assert_memory_equal(line, "Jobs: 1 (f=1): [/(1)]", 21);
        bench_result_free(&one);
    }
    job.rw = RW_RANDREAD;

    /* A line never overflows its buffer. */
    char small[20];
    status_line(small, sizeof(small), r, 3, 10 * SEC, 16 * SEC, &prev);
    assert_int_equal(strlen(small), sizeof(small) - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_line),
    };

    return cmocka_run_group_tests_name("bench-status", tests, NULL, NULL);
}
