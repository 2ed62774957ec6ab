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
    assert_string_equal(line, "Jobs: 2 (f=2): [R(2),_(1)][20.0%]"
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
    assert_string_equal(line, "Jobs: 2 (f=2): [R(1),V(1),_(1)][25.0%][-]"
                              "[- IOPS][eta 00m:12s]");

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
